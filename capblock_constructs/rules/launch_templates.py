"""CB1xx: launch templates that launch into, or target, a Capacity Block."""

from __future__ import annotations

from collections.abc import Iterator

from . import _sources
from ._model import (
    CAPACITY_BLOCK_MARKET,
    CAPACITY_RESERVATION,
    LAUNCH_TEMPLATE,
    LaunchTemplate,
)
from ._scope import Scope
from .finding import Finding, Rule, Severity

_TYPES = (LAUNCH_TEMPLATE,)
_DATA = ("Properties", "LaunchTemplateData")
_SPECIFICATION = (*_DATA, "CapacityReservationSpecification")
_ONLY_RESERVATIONS = "capacity-reservations-only"

NO_TARGET = Rule(
    id="CB101",
    severity=Severity.ERROR,
    title="capacity-block market type without a CapacityReservationTarget EC2 accepts",
    source=_sources.EC2_CAPACITY_RESERVATION_SPECIFICATION,
    resource_types=_TYPES,
)
NO_INSTANCE_TYPE = Rule(
    id="CB102",
    severity=Severity.ERROR,
    title="capacity-block market type without an InstanceType",
    source=_sources.EKS_NODE_GROUPS,
    resource_types=_TYPES,
)
ON_DEMAND_RESERVATION = Rule(
    id="CB103",
    severity=Severity.ERROR,
    title="capacity-block market type on an On-Demand Capacity Reservation of the template",
    source=_sources.CFN_CAPACITY_RESERVATION,
    resource_types=_TYPES,
)
WRONG_INSTANCE_TYPE = Rule(
    id="CB104",
    severity=Severity.ERROR,
    title="InstanceType differs from the cached Capacity Block's instance type",
    source=_sources.EC2_CAPACITY_BLOCKS_LAUNCH,
    resource_types=_TYPES,
)
CLUSTER_PLACEMENT_GROUP = Rule(
    id="CB105",
    severity=Severity.WARNING,
    title="Capacity Block launch template places instances in a cluster placement group",
    source=_sources.EC2_CAPACITY_BLOCKS_USING,
    resource_types=_TYPES,
)
NO_MARKET_TYPE = Rule(
    id="CB106",
    severity=Severity.ERROR,
    title="launch template targets a cached Capacity Block without the capacity-block market type",
    source=_sources.EKS_NODE_GROUPS,
    resource_types=_TYPES,
)

RULES = (
    NO_TARGET,
    NO_INSTANCE_TYPE,
    ON_DEMAND_RESERVATION,
    WRONG_INSTANCE_TYPE,
    CLUSTER_PLACEMENT_GROUP,
    NO_MARKET_TYPE,
)

_SET_TARGET = (
    "set CapacityReservationSpecification.CapacityReservationTarget.CapacityReservationId to "
    "the block's reservation ID (cr-...)"
)


def check(scope: Scope) -> Iterator[Finding]:
    """Every CB1xx finding of the template."""
    for template in scope.launch_templates.values():
        if template.market_type == CAPACITY_BLOCK_MARKET:
            yield from _target(scope, template)
            yield from _instance_type(scope, template)
            yield from _on_demand_reservation(scope, template)
        if template.uses_capacity_block:
            yield from _placement(scope, template)
        yield from _block_mismatch(scope, template)


def _target(scope: Scope, template: LaunchTemplate) -> Iterator[Finding]:
    """CB101: EC2 launches into a Capacity Block only when the reservation is targeted.

    That a capacity-block launch template needs CapacityReservationTarget is the EKS user
    guide's rule (:data:`~._sources.EKS_NODE_GROUPS`). What may stand next to the target
    follows the EC2 API reference for CapacityReservationSpecification, the rule's source:
    "You can only specify CapacityReservationPreference and CapacityReservationTarget if the
    CapacityReservationPreference is capacity-reservations-only."

    The launch template's own request shape, LaunchTemplateCapacityReservationSpecificationRequest
    (and CloudFormation's AWS::EC2::LaunchTemplate CapacityReservationSpecification, which
    repeats it), still says "You can specify only one option at a time", while listing
    capacity-reservations-only ("only run in a Capacity Reservation or Capacity Reservation
    group") among its values. The pages disagree, so the rule keeps the reading that cannot
    reject a valid template: capacity-reservations-only next to a target passes; open or none
    next to a target is an error under both pages.
    """
    resolve = scope.template.at
    lead = "InstanceMarketOptions.MarketType is capacity-block but"
    specification = resolve(template.data, "CapacityReservationSpecification")
    if not scope.known(specification):
        return
    if specification is None:
        yield scope.finding(
            NO_TARGET,
            template.logical_id,
            f"{lead} LaunchTemplateData has no CapacityReservationSpecification; {_SET_TARGET}.",
            _DATA,
        )
        return
    if not isinstance(specification, dict):
        return
    target = resolve(specification, "CapacityReservationTarget")
    preference = scope.template.text(specification, "CapacityReservationPreference")
    if target is None:
        if isinstance(preference, str):
            message = (
                f"{lead} CapacityReservationSpecification has CapacityReservationPreference "
                f"{preference!r} instead of a CapacityReservationTarget (a Capacity Block is a "
                f"targeted reservation); remove the preference and {_SET_TARGET}."
            )
        else:
            message = f"{lead} CapacityReservationSpecification has no CapacityReservationTarget; "
            message += f"{_SET_TARGET}."
        yield scope.finding(NO_TARGET, template.logical_id, message, _SPECIFICATION)
        return
    if not isinstance(target, dict):
        return
    reservation = resolve(target, "CapacityReservationId")
    group = resolve(target, "CapacityReservationResourceGroupArn")
    if reservation is None and group is None:
        yield scope.finding(
            NO_TARGET,
            template.logical_id,
            f"{lead} its CapacityReservationTarget is empty; {_SET_TARGET} (or, for an "
            "UltraServer block, CapacityReservationResourceGroupArn to its resource group).",
            (*_SPECIFICATION, "CapacityReservationTarget"),
        )
    elif isinstance(preference, str) and preference != _ONLY_RESERVATIONS:
        # EC2 takes a preference next to a target only when it is capacity-reservations-only.
        yield scope.finding(
            NO_TARGET,
            template.logical_id,
            f"CapacityReservationPreference {preference!r} next to a CapacityReservationTarget: "
            "EC2 accepts a preference beside a target only when it is capacity-reservations-only, "
            "so it rejects this one; remove CapacityReservationPreference and keep the target.",
            (*_SPECIFICATION, "CapacityReservationPreference"),
        )


def _instance_type(scope: Scope, template: LaunchTemplate) -> Iterator[Finding]:
    """CB102: the block's instance type must be in the launch template."""
    if template.instance_type is not None:
        return
    requirements = scope.template.at(template.data, "InstanceRequirements")
    instead = " (InstanceRequirements cannot stand in for it)" if requirements else ""
    example = f"'{template.block.instance_type}'" if template.block else "for example 'p5.48xlarge'"
    yield scope.finding(
        NO_INSTANCE_TYPE,
        template.logical_id,
        "InstanceMarketOptions.MarketType is capacity-block but LaunchTemplateData has no "
        f"InstanceType{instead}; set InstanceType to the block's instance type, {example}.",
        _DATA,
    )


def _on_demand_reservation(scope: Scope, template: LaunchTemplate) -> Iterator[Finding]:
    """CB103: a reservation the template creates is an On-Demand Capacity Reservation."""
    reference = template.reservation_ref
    if reference is None or scope.template.type_of(reference.logical_id) != CAPACITY_RESERVATION:
        return
    yield scope.finding(
        ON_DEMAND_RESERVATION,
        template.logical_id,
        "InstanceMarketOptions.MarketType is capacity-block but CapacityReservationTarget "
        f"targets {reference.logical_id}, an AWS::EC2::CapacityReservation, which is an "
        "On-Demand Capacity Reservation (CloudFormation cannot create Capacity Blocks), and EC2 "
        "takes the capacity-block market type only for Capacity Blocks; remove "
        "InstanceMarketOptions to launch into the On-Demand Capacity Reservation, or target a "
        "Capacity Block's reservation ID.",
        (*_DATA, "InstanceMarketOptions", "MarketType"),
    )


def _placement(scope: Scope, template: LaunchTemplate) -> Iterator[Finding]:
    """CB105: a Capacity Block is in no placement group, so a cluster group only constrains it."""
    for key in ("GroupName", "GroupId"):
        group = scope.cluster_placement_group(scope.template.at(template.data, "Placement", key))
        if group is None:
            continue
        yield scope.finding(
            CLUSTER_PLACEMENT_GROUP,
            template.logical_id,
            f"Placement.{key} names {group}, a cluster placement group, but a Capacity Block "
            "already places its instances close together and is in no placement group, so EC2 "
            "may fail launches with InsufficientInstanceCapacity; remove Placement."
            f"{key}.",
            (*_DATA, "Placement", key),
        )
        return


def _block_mismatch(scope: Scope, template: LaunchTemplate) -> Iterator[Finding]:
    """CB104 and CB106: compare the launch template with the cached block it targets."""
    block = template.block
    if block is None:
        return
    wrong = template.wrong_market_type
    if wrong is not None:
        yield scope.finding(
            NO_MARKET_TYPE,
            template.logical_id,
            f"it targets Capacity Block {block.capacity_reservation_id} but {wrong}; EC2 and EKS "
            "launch into a Capacity Block only with the capacity-block market type, so set "
            "InstanceMarketOptions.MarketType to 'capacity-block'.",
            (*_DATA, "InstanceMarketOptions"),
        )
    instance_type = template.instance_type
    if isinstance(instance_type, str) and instance_type != block.instance_type:
        yield scope.finding(
            WRONG_INSTANCE_TYPE,
            template.logical_id,
            f"InstanceType is {instance_type!r} but Capacity Block "
            f"{block.capacity_reservation_id} reserves {block.instance_type!r}, so no instance "
            f"can launch into it; set InstanceType to {block.instance_type!r}.",
            (*_DATA, "InstanceType"),
        )
