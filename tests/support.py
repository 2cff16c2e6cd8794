"""Shared builders for the tests: apps with a pinned clock, blocks, templates, cfn-lint."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from functools import lru_cache
from typing import Any

from aws_cdk import App, DefaultStackSynthesizer, Environment, Stack
from aws_cdk.assertions import Template

from capblock_constructs import CapacityBlock

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
) -> App:
    """An App with analytics off, the clock pinned and (by default) no built-in validation.

    The CDK's built-in template validation costs about 1.5 s per synth; the
    example-app tests keep it on, unit tests that build many stacks turn it off.
    """
    ctx: dict[str, Any] = dict(context or {})
    if now is not None:
        ctx["capblock-constructs:now"] = now
    return App(
        context=ctx,
        analytics_reporting=False,
        builtin_cloud_formation_validation=validation,
    )


def make_stack(app: App | None = None, name: str = "Test", **kwargs: Any) -> Stack:
    return Stack(
        app or make_app(),
        name,
        env=kwargs.pop("env", ENV),
        synthesizer=DefaultStackSynthesizer(generate_bootstrap_version_rule=False),
        **kwargs,
    )


def template_of(stack: Stack) -> Template:
    return Template.from_stack(stack)


def resources_of_type(template: Template, resource_type: str) -> dict[str, Any]:
    found = template.find_resources(resource_type)
    return dict(found)


def only_resource(template: Template, resource_type: str) -> dict[str, Any]:
    found = resources_of_type(template, resource_type)
    assert len(found) == 1, f"expected one {resource_type}, found {sorted(found)}"
    return next(iter(found.values()))


@lru_cache(maxsize=1)
def _lint_config() -> Any:
    from cfnlint.api import ManualArgs

    return ManualArgs(regions=[REGION])


def cfn_lint_errors(template: dict[str, Any] | Template) -> list[str]:
    """cfn-lint error-level findings (E rules) for a template, as readable strings."""
    from cfnlint.api import lint

    body = template.to_json() if isinstance(template, Template) else template
    matches = lint(json.dumps(body), config=_lint_config())
    return [
        f"{match.rule.id} {match.message} ({'/'.join(str(p) for p in match.path)})"
        for match in matches
        if match.rule.id.startswith("E")
    ]
