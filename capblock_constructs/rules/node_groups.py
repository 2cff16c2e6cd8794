"""CB2xx: EKS managed node groups with ``CapacityType: CAPACITY_BLOCK``."""

from __future__ import annotations

from collections.abc import Generator, Iterator
from typing import Any

from .._eks_limits import (
    EKS_LABEL_KEY_LENGTH,
    EKS_LABEL_VALUE_LENGTH,
    EKS_MAX_TAINTS,
    EKS_TAINT_KEY_LENGTH,
    EKS_TAINT_VALUE_LENGTH,
)
from ..capacity_block import CapacityBlock
from . import _sources
from ._model import CAPACITY_BLOCK_NODE_GROUP, NODE_GROUP, launch_template_of
from ._scope import Scope
from .finding import Finding, Rule, Severity

_TYPES = (NODE_GROUP,)

INSTANCE_TYPES = Rule(
    id="CB201",
    severity=Severity.ERROR,
    title="CAPACITY_BLOCK node group sets InstanceTypes",
    source=_sources.EKS_LAUNCH_TEMPLATES,
    resource_types=_TYPES,
)
NO_LAUNCH_TEMPLATE = Rule(
    id="CB202",
    severity=Severity.ERROR,
    title="CAPACITY_BLOCK node group has no launch template",
    source=_sources.EKS_CAPACITY_BLOCKS_MNG,
    resource_types=_TYPES,
)
NO_MARKET_TYPE = Rule(
    id="CB203",
    severity=Severity.ERROR,
    title="CAPACITY_BLOCK node group's launch template lacks the capacity-block market type",
    source=_sources.EKS_CAPACITY_BLOCKS_MNG,
    resource_types=_TYPES,
)
DESIRED_ABOVE_COUNT = Rule(
    id="CB204",
    severity=Severity.ERROR,
    title="CAPACITY_BLOCK node group's DesiredSize exceeds the block's instance count",
    source=_sources.EKS_NODE_GROUPS,
    resource_types=_TYPES,
)
MAX_ABOVE_COUNT = Rule(
    id="CB205",
    severity=Severity.WARNING,
    title="CAPACITY_BLOCK node group's MaxSize exceeds the block's instance count",
    source=_sources.EKS_NODE_GROUPS,
    resource_types=_TYPES,
)
LABEL_LIMITS = Rule(
    id="CB206",
    severity=Severity.ERROR,
    title="CAPACITY_BLOCK node group label outside EKS's API limits",
    source=_sources.EKS_CREATE_NODEGROUP,
    resource_types=_TYPES,
)
TAINT_LIMITS = Rule(
    id="CB207",
    severity=Severity.ERROR,
    title="CAPACITY_BLOCK node group taints outside EKS's API limits",
    source=_sources.EKS_TAINT,
    resource_types=_TYPES,
)
WARM_POOL = Rule(
    id="CB208",
    severity=Severity.ERROR,
    title="CAPACITY_BLOCK node group enables a warm pool",
    source=_sources.ASG_CAPACITY_BLOCKS,
    resource_types=_TYPES,
)
SUBNET_ZONE = Rule(
    id="CB209",
    severity=Severity.ERROR,
    title="CAPACITY_BLOCK node group subnet outside the block's Availability Zone",
    source=_sources.EKS_NODE_GROUPS,
    resource_types=_TYPES,
)

RULES = (
    INSTANCE_TYPES,
    NO_LAUNCH_TEMPLATE,
    NO_MARKET_TYPE,
    DESIRED_ABOVE_COUNT,
    MAX_ABOVE_COUNT,
    LABEL_LIMITS,
    TAINT_LIMITS,
    WARM_POOL,
    SUBNET_ZONE,
)

_PROPERTIES = ("Properties",)


def check(scope: Scope) -> Iterator[Finding]:
    """Every CB2xx finding of the template."""
    template = scope.template
    for logical_id, properties in template.of_type(NODE_GROUP):
        if template.text(properties, "CapacityType") != CAPACITY_BLOCK_NODE_GROUP:
            continue
        yield from _instance_types(scope, logical_id, properties)
        yield from _labels(scope, logical_id, properties)
        yield from _taints(scope, logical_id, properties)
        yield from _warm_pool(scope, logical_id, properties)
        block = yield from _launch_template(scope, logical_id, properties)
        if block is not None:
            yield from _sizes(scope, logical_id, properties, block)
            yield from _subnets(scope, logical_id, properties, block)


def _instance_types(scope: Scope, logical_id: str, properties: dict[str, Any]) -> Iterator[Finding]:
    """CB201: EKS rejects node-group instance types when the launch template has one."""
    types = scope.template.items(properties, "InstanceTypes")
    if not isinstance(types, list) or not types:
        return
    names = [scope.template.text(item) for item in types]
    shown = ", ".join(name if isinstance(name, str) else "<token>" for name in names)
    yield scope.finding(
        INSTANCE_TYPES,
        logical_id,
        f"InstanceTypes is [{shown}] on a CAPACITY_BLOCK node group, whose launch template must "
        "carry the instance type, and EKS fails the node group when both name one; remove "
        "InstanceTypes and set InstanceType in the launch template.",
        (*_PROPERTIES, "InstanceTypes"),
    )


def _launch_template(
    scope: Scope, logical_id: str, properties: dict[str, Any]
) -> Generator[Finding, None, CapacityBlock | None]:
    """CB202 and CB203; returns the cached block the launch template targets, if any."""
    template = scope.template
    specification = template.at(properties, "LaunchTemplate")
    if specification is None:
        yield scope.finding(
            NO_LAUNCH_TEMPLATE,
            logical_id,
            "CapacityType is CAPACITY_BLOCK but the node group has no LaunchTemplate, and EKS "
            "creates such node groups only from a custom launch template; add a LaunchTemplate "
            "with InstanceMarketOptions.MarketType 'capacity-block', the block's "
            "CapacityReservationTarget and its InstanceType.",
            _PROPERTIES,
        )
        return None
    target = launch_template_of(template, specification, id_key="Id", name_key="Name")
    launch_template = scope.launch_templates.get(target) if target else None
    if launch_template is None:
        return None
    wrong = launch_template.wrong_market_type
    if wrong is not None:
        yield scope.finding(
            NO_MARKET_TYPE,
            logical_id,
            f"CapacityType is CAPACITY_BLOCK but its launch template {target} {wrong}, and EKS "
            "rejects a CAPACITY_BLOCK node group whose launch template lacks it; set "
            f"InstanceMarketOptions.MarketType to 'capacity-block' in {target}.",
            (*_PROPERTIES, "LaunchTemplate"),
        )
    return launch_template.block


def _sizes(
    scope: Scope, logical_id: str, properties: dict[str, Any], block: CapacityBlock
) -> Iterator[Finding]:
    """CB204 and CB205: the block holds ``instance_count`` instances, never more."""
    count = block.instance_count
    reservation = block.capacity_reservation_id
    desired = scope.template.integer(properties, "ScalingConfig", "DesiredSize")
    if isinstance(desired, int) and desired > count:
        yield scope.finding(
            DESIRED_ABOVE_COUNT,
            logical_id,
            f"ScalingConfig.DesiredSize is {desired} but Capacity Block {reservation} holds "
            f"{count} instances, so the group can never reach it and keeps failing launches; "
            f"set DesiredSize to at most {count} (0 before the block starts).",
            (*_PROPERTIES, "ScalingConfig", "DesiredSize"),
        )
    maximum = scope.template.integer(properties, "ScalingConfig", "MaxSize")
    if isinstance(maximum, int) and maximum > count:
        yield scope.finding(
            MAX_ABOVE_COUNT,
            logical_id,
            f"ScalingConfig.MaxSize is {maximum} but Capacity Block {reservation} holds {count} "
            f"instances, so scaling above {count} only fails launches; set MaxSize to {count}.",
            (*_PROPERTIES, "ScalingConfig", "MaxSize"),
        )


def _length_problem(text: str, limits: tuple[int, int], what: str, after: str = "") -> str | None:
    """What is wrong with the length of ``text`` and how to fix it; None when it fits."""
    low, high = limits
    if low <= len(text) <= high:
        return None
    fix = (
        f"shorten it to at most {high}"
        if len(text) > high
        else f"give it at least {low} character{'' if low == 1 else 's'}"
    )
    return (
        f"{what} {text!r}{after} has {len(text)} characters, and EKS accepts {low} to {high}: {fix}"
    )


def _labels(scope: Scope, logical_id: str, properties: dict[str, Any]) -> Iterator[Finding]:
    """CB206: EKS's label limits are tighter than Kubernetes' (63 characters, prefix included)."""
    labels = scope.template.at(properties, "Labels")
    if not isinstance(labels, dict):
        return
    for key in sorted(labels, key=str):
        value = scope.template.text(labels[key])
        found = [_length_problem(str(key), EKS_LABEL_KEY_LENGTH, "label key", " (prefix included)")]
        if isinstance(value, str):
            found.append(
                _length_problem(value, EKS_LABEL_VALUE_LENGTH, "the value", f" of label {key!r}")
            )
        problems = [problem for problem in found if problem]
        if problems:
            yield scope.finding(
                LABEL_LIMITS,
                logical_id,
                f"{'; '.join(problems)}.",
                (*_PROPERTIES, "Labels", str(key)),
            )


def _taints(scope: Scope, logical_id: str, properties: dict[str, Any]) -> Iterator[Finding]:
    """CB207: at most 50 taints, keys 1-63 and values 0-63 characters."""
    taints = scope.template.items(properties, "Taints")
    if not isinstance(taints, list):
        return
    if len(taints) > EKS_MAX_TAINTS:
        yield scope.finding(
            TAINT_LIMITS,
            logical_id,
            f"Taints has {len(taints)} entries, and EKS accepts at most {EKS_MAX_TAINTS} per node "
            f"group; drop {len(taints) - EKS_MAX_TAINTS}.",
            (*_PROPERTIES, "Taints"),
        )
    for index, taint in enumerate(taints):
        key = scope.template.text(taint, "Key")
        value = scope.template.text(taint, "Value")
        problems = []
        if isinstance(key, str):
            problems.append(_length_problem(key, EKS_TAINT_KEY_LENGTH, "taint key"))
        if isinstance(value, str):
            problems.append(_length_problem(value, EKS_TAINT_VALUE_LENGTH, "taint value"))
        found = [problem for problem in problems if problem]
        if found:
            yield scope.finding(
                TAINT_LIMITS,
                logical_id,
                f"Taints[{index}]: {'; '.join(found)}.",
                (*_PROPERTIES, "Taints", index),
            )


def _warm_pool(scope: Scope, logical_id: str, properties: dict[str, Any]) -> Iterator[Finding]:
    """CB208: Auto Scaling groups on Capacity Blocks cannot have warm pools."""
    if scope.template.at(properties, "WarmPoolConfig", "Enabled") is True:
        yield scope.finding(
            WARM_POOL,
            logical_id,
            "WarmPoolConfig.Enabled is true, but EC2 Auto Scaling groups on a Capacity Block "
            "cannot have a warm pool (and a block's instances cannot wait stopped); remove "
            "WarmPoolConfig.",
            (*_PROPERTIES, "WarmPoolConfig", "Enabled"),
        )


def _subnets(
    scope: Scope, logical_id: str, properties: dict[str, Any], block: CapacityBlock
) -> Iterator[Finding]:
    """CB209: a Capacity Block lives in one zone; nodes elsewhere cannot use it."""
    subnets = scope.template.items(properties, "Subnets")
    if not isinstance(subnets, list):
        return
    for index, subnet in enumerate(subnets):
        outside = scope.subnet_zone(subnet, block)
        if outside is None:
            continue
        name, zone = outside
        yield scope.finding(
            SUBNET_ZONE,
            logical_id,
            f"Subnets[{index}] is {name} in {zone}, but Capacity Block "
            f"{block.capacity_reservation_id} is in {block.availability_zone}, and EKS needs the "
            f"block's zone only; keep only subnets in {block.availability_zone}.",
            (*_PROPERTIES, "Subnets", index),
        )
