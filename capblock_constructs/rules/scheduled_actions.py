"""CB4xx: scheduled actions of Auto Scaling groups that launch into a Capacity Block."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta

from .._time import format_duration, format_utc
from ..controller.runtime.phase import drain_time
from . import _sources
from ._model import AUTO_SCALING_GROUP, SCHEDULED_ACTION, ScheduledAction
from ._scope import Scope
from .finding import Finding, Rule, Severity

START_TIME_MARGIN = timedelta(minutes=15)
"""How far ahead of the check a StartTime should be to survive until CloudFormation creates it.

Not an AWS limit (EC2 Auto Scaling only rejects a StartTime in the past); it is
the margin for the time between the check and the deployment reaching the
action, so that the deployment does not fail on "Given start time is in the past".
"""

SCHEDULED_ACTION_DELAY = timedelta(minutes=2)
"""How late EC2 Auto Scaling may run a scheduled action ("might be delayed for up to two
minutes", EC2 Auto Scaling user guide, Scheduled scaling)."""

_TYPES = (SCHEDULED_ACTION,)
_PROPERTIES = ("Properties",)

PAST = Rule(
    id="CB401",
    severity=Severity.ERROR,
    title="scheduled action's StartTime is in the past",
    source=_sources.ASG_PUT_SCHEDULED_ACTION,
    resource_types=_TYPES,
)
SOON = Rule(
    id="CB402",
    severity=Severity.WARNING,
    title="scheduled action's StartTime is less than 15 minutes away",
    source=_sources.ASG_PUT_SCHEDULED_ACTION,
    resource_types=_TYPES,
)
SAME_TIME = Rule(
    id="CB403",
    severity=Severity.ERROR,
    title="two scheduled actions of one group at the same time",
    source=_sources.ASG_SCHEDULED_SCALING,
    resource_types=_TYPES,
)
LATE_SCALE_DOWN = Rule(
    id="CB404",
    severity=Severity.ERROR,
    title="scale-down to zero after EC2 starts reclaiming the Capacity Block",
    source=_sources.ASG_CAPACITY_BLOCKS,
    resource_types=_TYPES,
)
NO_SCALE_DOWN = Rule(
    id="CB405",
    severity=Severity.WARNING,
    title="nothing scales the Capacity Block group to zero before the block ends",
    source=_sources.ASG_CAPACITY_BLOCKS,
    resource_types=(AUTO_SCALING_GROUP,),
)

RULES = (PAST, SOON, SAME_TIME, LATE_SCALE_DOWN, NO_SCALE_DOWN)


def scale_down_times(group: str, found: Sequence[ScheduledAction]) -> list[datetime]:
    """When one-time actions of ``group`` scale it to zero, earliest first."""
    return sorted(
        start
        for action in found
        if action.group == group and action.scales_to_zero
        for start in [action.one_time_start]
        if start is not None
    )


def check(scope: Scope) -> Iterator[Finding]:
    """Every CB4xx finding of the template."""
    on_blocks = [
        action
        for action in scope.actions
        if action.group is not None and scope.groups[action.group].uses_capacity_block
    ]
    for action in on_blocks:
        yield from _start_time(scope, action)
        yield from _late_scale_down(scope, action)
    yield from _same_time(scope, on_blocks)
    yield from _no_scale_down(scope)


def _start_time(scope: Scope, action: ScheduledAction) -> Iterator[Finding]:
    """CB401 and CB402: EC2 Auto Scaling rejects an action scheduled in the past."""
    now, start = scope.now, action.start
    if now is None or not isinstance(start, datetime):
        return
    path = (*_PROPERTIES, "StartTime")
    if start <= now:
        yield scope.finding(
            PAST,
            action.logical_id,
            f"StartTime {format_utc(start)} is not after now ({format_utc(now)}), and EC2 Auto "
            "Scaling rejects an action scheduled in the past, failing the deployment; move "
            "StartTime into the future, or remove the action and set the group's size directly "
            "if its moment (such as the block's start) has passed.",
            path,
        )
    elif start - now < START_TIME_MARGIN:
        yield scope.finding(
            SOON,
            action.logical_id,
            f"StartTime {format_utc(start)} is only {format_duration(start - now)} after now "
            f"({format_utc(now)}), so it is likely to be in the past by the time the deployment "
            "creates the action, which EC2 Auto Scaling then rejects; move StartTime at least "
            f"{format_duration(START_TIME_MARGIN)} ahead, or set the group's size directly.",
            path,
        )


def _same_time(scope: Scope, on_blocks: list[ScheduledAction]) -> Iterator[Finding]:
    """CB403: "A scheduled action must have a unique time value" within its group."""
    first: dict[tuple[str | None, datetime], str] = {}
    for action in on_blocks:  # in logical-ID order, so the first one keeps its time
        if not isinstance(action.start, datetime):
            continue
        key = (action.group, action.start)
        if key not in first:
            first[key] = action.logical_id
            continue
        yield scope.finding(
            SAME_TIME,
            action.logical_id,
            f"StartTime {format_utc(action.start)} is also the StartTime of {first[key]} on the "
            f"same group {action.group}, and EC2 Auto Scaling rejects a second action at a time "
            "already taken; move one of them, even by a minute, or merge them into one action.",
            (*_PROPERTIES, "StartTime"),
        )


def _late_scale_down(scope: Scope, action: ScheduledAction) -> Iterator[Finding]:
    """CB404: scale to zero "more than 30 minutes before the ... end time" (60 for UltraServers)."""
    assert action.group is not None
    block = scope.groups[action.group].block
    start = action.one_time_start
    if block is None or start is None or not action.scales_to_zero:
        return
    if start < block.reclaim_start:
        return
    suggested = drain_time(block.end, block.default_drain_lead)
    yield scope.finding(
        LATE_SCALE_DOWN,
        action.logical_id,
        f"it scales {action.group} to zero at {format_utc(start)}, but EC2 starts reclaiming "
        f"Capacity Block {block.capacity_reservation_id} at {format_utc(block.reclaim_start)} "
        f"({format_duration(block.reclaim_lead)} before its end {format_utc(block.end)}), so "
        "nodes are terminated before they drain; move StartTime before "
        f"{format_utc(block.reclaim_start)}, with time to drain, for example "
        f"{format_utc(suggested)}.",
        (*_PROPERTIES, "StartTime"),
    )


def _no_scale_down(scope: Scope) -> Iterator[Finding]:
    """CB405: a group nothing scales to zero runs until EC2 reclaims its instances."""
    found = scope.actions
    if any(action.group is None for action in found):
        # An action whose group is not known here may be the one that scales down.
        return
    for logical_id, group in scope.groups.items():
        if not group.uses_capacity_block or logical_id in scope.managed:
            continue
        if scope.template.integer(group.properties, "MaxSize") == 0:
            continue
        own = [action for action in found if action.group == logical_id]
        if any(action.scales_to_zero is not False for action in own):
            continue
        block = group.block
        when = (
            f" before EC2 starts reclaiming Capacity Block {block.capacity_reservation_id} at "
            f"{format_utc(block.reclaim_start)}"
            if block
            else " before EC2 starts reclaiming the block's instances"
        )
        example = (
            f", for example at {format_utc(drain_time(block.end, block.default_drain_lead))}"
            if block
            else ""
        )
        yield scope.finding(
            NO_SCALE_DOWN,
            logical_id,
            "it launches into a Capacity Block but no scheduled action and no Capacity Block "
            f"controller scales it to zero{when}, so its nodes are terminated without a drain; "
            "add an AWS::AutoScaling::ScheduledAction with MinSize 0 and DesiredCapacity 0"
            f"{example}, or build the group with CapacityBlockSelfManagedNodeGroup, whose "
            "controller drains it.",
            (),
        )
