"""CB3xx: EC2 Auto Scaling groups that launch into a Capacity Block."""

from __future__ import annotations

from collections.abc import Iterator

from . import _sources
from ._model import AUTO_SCALING_GROUP, FLOATING_VERSIONS, WARM_POOL, AutoScalingGroup, group_of
from ._scope import Scope
from .finding import Finding, Rule, Severity

_TYPES = (AUTO_SCALING_GROUP,)
_PROPERTIES = ("Properties",)

MIXED_INSTANCES = Rule(
    id="CB301",
    severity=Severity.ERROR,
    title="Capacity Block Auto Scaling group uses a MixedInstancesPolicy",
    source=_sources.ASG_CAPACITY_BLOCKS,
    resource_types=_TYPES,
)
WARM_POOL_RULE = Rule(
    id="CB302",
    severity=Severity.ERROR,
    title="Capacity Block Auto Scaling group has a warm pool",
    source=_sources.ASG_CAPACITY_BLOCKS,
    resource_types=(WARM_POOL,),
)
FLOATING_VERSION = Rule(
    id="CB303",
    severity=Severity.ERROR,
    title="Capacity Block Auto Scaling group launches $Latest or $Default",
    source=_sources.CFN_ASG_LAUNCH_TEMPLATE,
    resource_types=_TYPES,
)
ZONE = Rule(
    id="CB304",
    severity=Severity.ERROR,
    title="Capacity Block Auto Scaling group uses a zone other than the block's",
    source=_sources.EC2_CAPACITY_BLOCKS_LAUNCH,
    resource_types=_TYPES,
)
MAX_ABOVE_COUNT = Rule(
    id="CB305",
    severity=Severity.WARNING,
    title="Capacity Block Auto Scaling group's MaxSize exceeds the block's instance count",
    source=_sources.ASG_CAPACITY_BLOCKS,
    resource_types=_TYPES,
)
CLUSTER_PLACEMENT_GROUP = Rule(
    id="CB306",
    severity=Severity.WARNING,
    title="Capacity Block Auto Scaling group launches into a cluster placement group",
    source=_sources.EC2_CAPACITY_BLOCKS_USING,
    resource_types=_TYPES,
)

RULES = (
    MIXED_INSTANCES,
    WARM_POOL_RULE,
    FLOATING_VERSION,
    ZONE,
    MAX_ABOVE_COUNT,
    CLUSTER_PLACEMENT_GROUP,
)


def check(scope: Scope) -> Iterator[Finding]:
    """Every CB3xx finding of the template."""
    for group in scope.groups.values():
        if not group.uses_capacity_block:
            continue
        yield from _mixed_instances(scope, group)
        yield from _version(scope, group)
        yield from _zones(scope, group)
        yield from _max_size(scope, group)
        yield from _placement_group(scope, group)
    yield from _warm_pools(scope)


def _mixed_instances(scope: Scope, group: AutoScalingGroup) -> Iterator[Finding]:
    """CB301: "Mixed instances groups ... are not supported" with Capacity Blocks."""
    if group.properties.get("MixedInstancesPolicy") is None:
        return
    template = group.launch_template.logical_id if group.launch_template else "the template"
    yield scope.finding(
        MIXED_INSTANCES,
        group.logical_id,
        "it launches into a Capacity Block but has a MixedInstancesPolicy, which EC2 Auto "
        "Scaling does not support with Capacity Blocks; replace MixedInstancesPolicy with "
        f"LaunchTemplate (LaunchTemplateId of {template} and a pinned Version).",
        (*_PROPERTIES, "MixedInstancesPolicy"),
    )


def _warm_pools(scope: Scope) -> Iterator[Finding]:
    """CB302: "... warm pools are not supported" with Capacity Blocks."""
    for logical_id, properties in scope.template.of_type(WARM_POOL):
        target = group_of(scope.template, properties.get("AutoScalingGroupName"), scope.groups)
        if target is None or not scope.groups[target].uses_capacity_block:
            continue
        yield scope.finding(
            WARM_POOL_RULE,
            logical_id,
            f"it adds a warm pool to {target}, which launches into a Capacity Block, and EC2 "
            "Auto Scaling does not support warm pools with Capacity Blocks; remove the warm pool.",
            (*_PROPERTIES, "AutoScalingGroupName"),
        )


def _version(scope: Scope, group: AutoScalingGroup) -> Iterator[Finding]:
    """CB303: CloudFormation does not support $Latest or $Default as the group's version.

    The CloudFormation reference for AWS::AutoScaling::AutoScalingGroup
    LaunchTemplateSpecification says of Version: "Specifying $Latest or $Default for the
    template version number is not supported", and points to ``Fn::GetAtt``
    LatestVersionNumber or DefaultVersionNumber instead. Hence an error, not a warning.
    """
    specification = scope.template.at(group.properties, *group.launch_template_path)
    version = scope.template.text(specification, "Version")
    if version not in FLOATING_VERSIONS:
        return
    template = group.launch_template.logical_id if group.launch_template else "the template"
    yield scope.finding(
        FLOATING_VERSION,
        group.logical_id,
        f"it launches into a Capacity Block from launch template version {version!r}, which "
        "CloudFormation does not support as an Auto Scaling group's Version (and which moves "
        "whenever a version is created or made the default); set Version to "
        f"{{'Fn::GetAtt': ['{template}', 'LatestVersionNumber']}} or a version number.",
        (*_PROPERTIES, *group.launch_template_path, "Version"),
    )


def _zones(scope: Scope, group: AutoScalingGroup) -> Iterator[Finding]:
    """CB304: instances cannot launch into a Capacity Block from another zone."""
    block = group.block
    if block is None:
        return
    template = scope.template
    fix = f"use only subnets in {block.availability_zone}"
    subnets = template.items(group.properties, "VPCZoneIdentifier")
    for index, subnet in enumerate(subnets if isinstance(subnets, list) else []):
        outside = scope.subnet_zone(subnet, block)
        if outside is not None:
            name, zone = outside
            yield scope.finding(
                ZONE,
                group.logical_id,
                f"VPCZoneIdentifier[{index}] is {name} in {zone}, but Capacity Block "
                f"{block.capacity_reservation_id} is in {block.availability_zone}, so launches "
                f"there fail; {fix}.",
                (*_PROPERTIES, "VPCZoneIdentifier", index),
            )
    for key, wanted in (
        ("AvailabilityZones", block.availability_zone),
        ("AvailabilityZoneIds", block.availability_zone_id),
    ):
        zones = template.items(group.properties, key)
        if wanted is None or not isinstance(zones, list):
            continue
        for index, item in enumerate(zones):
            listed = template.text(item)
            if isinstance(listed, str) and listed != wanted:
                yield scope.finding(
                    ZONE,
                    group.logical_id,
                    f"{key}[{index}] is {listed!r}, but Capacity Block "
                    f"{block.capacity_reservation_id} is in {wanted!r}, so launches there fail; "
                    f"list only {wanted!r}.",
                    (*_PROPERTIES, key, index),
                )


def _max_size(scope: Scope, group: AutoScalingGroup) -> Iterator[Finding]:
    """CB305: the block holds ``instance_count`` instances, never more."""
    block = group.block
    if block is None:
        return
    maximum = scope.template.integer(group.properties, "MaxSize")
    if isinstance(maximum, int) and maximum > block.instance_count:
        count = block.instance_count
        yield scope.finding(
            MAX_ABOVE_COUNT,
            group.logical_id,
            f"MaxSize is {maximum} but Capacity Block {block.capacity_reservation_id} holds "
            f"{count} instances, so scaling above {count} only fails launches; set MaxSize to "
            f"{count}.",
            (*_PROPERTIES, "MaxSize"),
        )


def _placement_group(scope: Scope, group: AutoScalingGroup) -> Iterator[Finding]:
    """CB306: as CB105, for the group's own PlacementGroup."""
    placement = scope.cluster_placement_group(group.properties.get("PlacementGroup"))
    if placement is None:
        return
    yield scope.finding(
        CLUSTER_PLACEMENT_GROUP,
        group.logical_id,
        f"PlacementGroup is {placement}, a cluster placement group, but a Capacity Block already "
        "places its instances close together and is in no placement group, so EC2 may fail "
        "launches with InsufficientInstanceCapacity; remove PlacementGroup.",
        (*_PROPERTIES, "PlacementGroup"),
    )
