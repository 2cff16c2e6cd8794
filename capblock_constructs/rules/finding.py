"""The rule and finding types shared by every rule, the CLI and the adapters."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

__all__ = ["Finding", "Rule", "Severity"]


class Severity(enum.Enum):
    """How bad a finding is; ``capblock check`` exits 1 when any finding is an error."""

    ERROR = "error"
    """AWS rejects the template, or the reservation cannot be used as written."""
    WARNING = "warning"
    """The template deploys, but the group is likely to misbehave on the block."""


@dataclass(frozen=True, kw_only=True)
class Rule:
    """One check, with a stable ID and the AWS source it enforces."""

    id: str
    """Stable ID, ``CB`` and three digits: CB1xx launch templates, CB2xx EKS node groups,
    CB3xx Auto Scaling groups, CB4xx scheduled actions, CB5xx lifecycle hooks."""
    severity: Severity
    """The severity of every finding of this rule."""
    title: str
    """One line saying what the rule catches."""
    source: str
    """The AWS document (URL) whose rule this enforces."""
    resource_types: tuple[str, ...]
    """The CloudFormation resource types its findings are reported on."""


@dataclass(frozen=True, kw_only=True)
class Finding:
    """One rule broken by one resource of one template."""

    rule: str
    """The rule ID, for example ``CB101``."""
    severity: Severity
    """The rule's severity."""
    template: str
    """The template's path as given to the check."""
    resource: str
    """The logical ID of the offending resource."""
    message: str
    """What is wrong: the resource, the offending value and the fix."""
    path: tuple[str | int, ...] = ()
    """Where in the resource, for example ``("Properties", "LaunchTemplateData", "InstanceType")``;
    empty for the whole resource."""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping with the keys rule, severity, template, resource, message, path."""
        return {
            "rule": self.rule,
            "severity": self.severity.value,
            "template": self.template,
            "resource": self.resource,
            "message": self.message,
            "path": list(self.path),
        }
