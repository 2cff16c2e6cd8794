"""What every rule module gets: the template, its linked resources, the blocks and the clock."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..capacity_block import CapacityBlock
from ._model import (
    PLACEMENT_GROUP,
    SUBNET,
    UNKNOWN,
    AutoScalingGroup,
    LaunchTemplate,
    ManagedGroup,
    Reference,
    ScheduledAction,
    Template,
    auto_scaling_groups,
    controller_groups,
    launch_templates,
    scheduled_actions,
)
from .finding import Finding, Rule

SHORT_TYPE_NAMES = {
    "AWS::EC2::LaunchTemplate": "LaunchTemplate",
    "AWS::EKS::Nodegroup": "Nodegroup",
    "AWS::AutoScaling::AutoScalingGroup": "AutoScalingGroup",
    "AWS::AutoScaling::ScheduledAction": "ScheduledAction",
    "AWS::AutoScaling::LifecycleHook": "LifecycleHook",
    "AWS::AutoScaling::WarmPool": "WarmPool",
}


@dataclass(frozen=True, kw_only=True)
class Scope:
    """One check of one template: shared lookups, and the factory for findings."""

    template: Template
    template_path: str
    now: datetime | None
    launch_templates: dict[str, LaunchTemplate]
    groups: dict[str, AutoScalingGroup]
    """Every Auto Scaling group, by logical ID."""
    managed: dict[str, ManagedGroup]
    """Groups that a Capacity Block controller in the template sizes, by logical ID."""
    actions: tuple[ScheduledAction, ...]
    """Every scheduled action of the template, with the group it scales."""

    @classmethod
    def build(
        cls,
        body: Mapping[str, Any],
        *,
        template_path: str,
        blocks: Mapping[str, CapacityBlock],
        now: datetime | None,
    ) -> Scope:
        template = Template(body)
        templates = launch_templates(template, blocks)
        groups = auto_scaling_groups(template, templates)
        return cls(
            template=template,
            template_path=template_path,
            now=now,
            launch_templates=templates,
            groups=groups,
            managed=controller_groups(template),
            actions=scheduled_actions(template, groups),
        )

    def finding(
        self, rule: Rule, resource: str, message: str, path: tuple[str | int, ...] = ()
    ) -> Finding:
        """A finding of ``rule`` on ``resource``; the message is led by the resource's name."""
        kind = SHORT_TYPE_NAMES.get(self.template.type_of(resource) or "", "Resource")
        return Finding(
            rule=rule.id,
            severity=rule.severity,
            template=self.template_path,
            resource=resource,
            message=f"{kind} {resource}: {message}",
            path=path,
        )

    # shared judgements ------------------------------------------------------------------------

    def cluster_placement_group(self, value: Any) -> str | None:
        """The logical ID of the template's cluster placement group that ``value`` names.

        ``value`` is a group name or ID (``Ref``, ``Fn::GetAtt`` or a literal name
        matching a placement group's ``GroupName``). None when it names no
        placement group of the template, or one whose strategy is not ``cluster``
        (or not known here): a group defined elsewhere cannot be judged.
        """
        template = self.template
        named = template.resolve(value)
        candidates: list[str] = []
        if isinstance(named, Reference) and template.type_of(named.logical_id) == PLACEMENT_GROUP:
            candidates = [named.logical_id]
        elif isinstance(named, str):
            candidates = [
                logical_id
                for logical_id, properties in template.of_type(PLACEMENT_GROUP)
                if template.text(properties, "GroupName") == named
            ]
        for logical_id in candidates:
            if template.text(template.properties(logical_id), "Strategy") == "cluster":
                return logical_id
        return None

    def subnet_zone(self, value: Any, block: CapacityBlock) -> tuple[str, str] | None:
        """``(subnet, its zone)`` when ``value`` is a subnet of the template known to lie
        outside the block's zone; None when it is inside or its zone is not known here."""
        template = self.template
        subnet = template.resolve(value)
        if not isinstance(subnet, Reference) or template.type_of(subnet.logical_id) != SUBNET:
            return None
        if subnet.attribute not in (None, "SubnetId"):
            return None
        properties = template.properties(subnet.logical_id)
        zone = template.text(properties, "AvailabilityZone")
        if isinstance(zone, str):
            return None if zone == block.availability_zone else (subnet.logical_id, zone)
        zone_id = template.text(properties, "AvailabilityZoneId")
        if (
            isinstance(zone_id, str)
            and block.availability_zone_id is not None
            and zone_id != block.availability_zone_id
        ):
            return (subnet.logical_id, zone_id)
        return None

    def known(self, value: Any) -> bool:
        """Whether a resolved value is known in the template (not a deployment-time value)."""
        return value is not UNKNOWN and not isinstance(value, Reference)
