"""CB5xx: termination lifecycle hooks of Auto Scaling groups on a Capacity Block."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

from .._time import format_duration, format_utc
from ..controller.runtime.phase import (
    DEFAULT_CONTROLLER_PERIOD,
    MIN_HEARTBEAT,
    drain_time,
    worst_case_lateness,
)
from . import _sources
from ._model import AUTO_SCALING_GROUP, LIFECYCLE_HOOK, TERMINATING, group_of
from ._scope import Scope
from .finding import Finding, Rule, Severity
from .scheduled_actions import SCHEDULED_ACTION_DELAY, scale_down_times

DEFAULT_HEARTBEAT = timedelta(seconds=3600)
"""The heartbeat of a lifecycle hook that does not set ``HeartbeatTimeout`` (EC2 Auto Scaling)."""

HEARTBEAT_TOO_LONG = Rule(
    id="CB501",
    severity=Severity.WARNING,
    title="termination hook's heartbeat can outlast the time left before EC2 reclaims",
    source=_sources.ASG_CAPACITY_BLOCKS,
    resource_types=(LIFECYCLE_HOOK, AUTO_SCALING_GROUP),
)

RULES = (HEARTBEAT_TOO_LONG,)


def check(scope: Scope) -> Iterator[Finding]:
    """Every CB5xx finding of the template."""
    template = scope.template
    for logical_id, properties in template.of_type(LIFECYCLE_HOOK):
        group = group_of(template, properties.get("AutoScalingGroupName"), scope.groups)
        if group is not None:
            yield from _hook(scope, group, logical_id, properties, ("Properties",))
    for group in scope.groups:
        hooks = template.items(scope.groups[group].properties, "LifecycleHookSpecificationList")
        for index, hook in enumerate(hooks if isinstance(hooks, list) else []):
            specification = template.resolve(hook)
            if isinstance(specification, dict):
                path = ("Properties", "LifecycleHookSpecificationList", index)
                yield from _hook(scope, group, group, specification, path)


def _scale_down(scope: Scope, group: str) -> tuple[datetime, str] | None:
    """When the group is scaled to zero at the latest, by the first thing that does it."""
    block = scope.groups[group].block
    assert block is not None
    candidates: list[tuple[datetime, str]] = []
    managed = scope.managed.get(group)
    if managed is not None and managed.drain_lead is not None:
        lateness = worst_case_lateness(managed.period or DEFAULT_CONTROLLER_PERIOD)
        candidates.append(
            (
                drain_time(block.end, managed.drain_lead) + lateness,
                f"the controller's drain {format_duration(managed.drain_lead)} before the end, "
                f"up to {format_duration(lateness)} late",
            )
        )
    for start in scale_down_times(group, scope.actions):
        candidates.append(
            (
                start + SCHEDULED_ACTION_DELAY,
                f"the scheduled scale-down at {format_utc(start)}, up to "
                f"{format_duration(SCHEDULED_ACTION_DELAY)} late",
            )
        )
    return min(candidates) if candidates else None


def _hook(
    scope: Scope,
    group: str,
    resource: str,
    properties: dict[str, Any],
    path: tuple[str | int, ...],
) -> Iterator[Finding]:
    """CB501: the lifecycle action must finish before EC2 forcibly terminates instances."""
    template = scope.template
    block = scope.groups[group].block
    if block is None or template.text(properties, "LifecycleTransition") != TERMINATING:
        return
    seconds = template.integer(properties, "HeartbeatTimeout")
    if seconds is not None and not isinstance(seconds, int):
        return
    heartbeat = DEFAULT_HEARTBEAT if seconds is None else timedelta(seconds=seconds)
    scale_down = _scale_down(scope, group)
    if scale_down is None:
        return
    moment, how = scale_down
    if moment + heartbeat <= block.reclaim_start:
        return
    left = block.reclaim_start - moment
    setting = (
        f"HeartbeatTimeout is not set, so it is {int(DEFAULT_HEARTBEAT.total_seconds())} s"
        if seconds is None
        else (f"HeartbeatTimeout is {seconds} s")
    )
    if left >= MIN_HEARTBEAT:
        fix = (
            f"set HeartbeatTimeout to at most {int(left.total_seconds())} s, or scale the group "
            "down earlier"
        )
    else:
        fix = f"scale the group down at least {format_duration(heartbeat)} earlier"
    yield scope.finding(
        HEARTBEAT_TOO_LONG,
        resource,
        f"{setting}: an instance of {group} that starts terminating at {format_utc(moment)} "
        f"({how}) may wait until {format_utc(moment + heartbeat)}, after EC2 starts reclaiming "
        f"Capacity Block {block.capacity_reservation_id} at {format_utc(block.reclaim_start)}, "
        f"so its drain can be cut short; {fix}.",
        (*path, "HeartbeatTimeout"),
    )
