"""Shared builders for the tests: apps with a pinned clock, blocks, templates, cfn-lint.

The Capacity Block rules (``capblock_constructs.rules``) are a gate: every App that
:func:`make_app` builds runs them at synth through the CDK plugin, and every template
that passes through :func:`template_of` or :func:`cfn_lint_errors` is checked with
them too. A finding on a template the tests synthesize fails the test.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timezone
from functools import lru_cache
from typing import Any

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
