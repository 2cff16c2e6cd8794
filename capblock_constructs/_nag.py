"""Acknowledge a cdk-nag finding on one construct, the same way everywhere.

cdk-nag 3 reads the CDK's own ``Validations.of(...).acknowledge`` records;
cdk-nag 2, still what many teams run, reads ``cdk_nag`` metadata on the
CloudFormation resource. Both are written, so the constructs come out clean
under either version without the library depending on cdk-nag.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from aws_cdk import Acknowledgment, CfnResource, Validations
from constructs import IConstruct


def acknowledge(
    construct: IConstruct, rule: str, *, reason: str, findings: Sequence[str] = ()
) -> None:
    """Acknowledge ``rule`` (``AwsSolutions-IAM4``) on ``construct`` alone.

    :param findings: The rule's findings to acknowledge (``Policy::arn:...``);
        without them the whole rule is, which only suits rules that report
        one finding per resource.
    """
    ids = [f"{rule}[{finding}]" for finding in findings] or [rule]
    Validations.of(construct).acknowledge(
        *(Acknowledgment(id=rule_id, reason=reason) for rule_id in ids)
    )

    resource = construct if isinstance(construct, CfnResource) else construct.node.default_child
    if not isinstance(resource, CfnResource):
        return
    metadata: Any = resource.get_metadata("cdk_nag") or {}
    rules: list[dict[str, Any]] = [dict(entry) for entry in metadata.get("rules_to_suppress", [])]
    same = next((entry for entry in rules if entry["id"] == rule), None)
    if same is None:
        entry: dict[str, Any] = {"id": rule, "reason": reason}
        if findings:
            entry["applies_to"] = list(findings)
        rules.append(entry)
    elif not findings:
        same.pop("applies_to", None)  # the whole rule now
    elif "applies_to" in same:
        # One entry per rule, its findings merged: the resource's acknowledgements so far.
        known = same["applies_to"]
        same["applies_to"] = [*known, *(finding for finding in findings if finding not in known)]
    resource.add_metadata("cdk_nag", {"rules_to_suppress": rules})


def finding_text(value: Any) -> str:
    """A resolved CloudFormation value written the way cdk-nag names it in a finding."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and len(value) == 1:
        ((function, argument),) = value.items()
        if function == "Fn::Join":
            separator, parts = argument
            return str(separator).join(finding_text(part) for part in parts)
        if function == "Ref":
            return f"<{argument}>"
        if function == "Fn::GetAtt":
            return f"<{'.'.join(argument)}>"
    return json.dumps(value, sort_keys=True)
