"""Synth-time checks both node-group kinds share: sizes, the drain lead against the controller's
phase rule, and whether the block has ended."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from ._problems import Problems
from ._time import as_timedelta, format_duration, format_utc, now
from .capacity_block import CapacityBlock
from .controller.runtime.phase import (
    EKS_MANAGED_SCALE_DOWN_LEAD,
    GroupKind,
    default_drain_lead,
    earliest_drain_lead,
    reclaim_lead,
    worst_case_lateness,
)

if TYPE_CHECKING:
    from aws_cdk import Duration
    from constructs import Construct


def check_drain_lead(
    value: Duration | timedelta | None,
    *,
    kind: GroupKind,
    block: CapacityBlock,
    period: timedelta,
    problems: Problems,
    heartbeat: timedelta | None = None,
    heartbeat_given: bool = False,
) -> timedelta:
    """The drain lead to use (the default when ``value`` is None), adding a problem when the
    group would still hold instances when EC2 starts reclaiming them, or drain at or before the
    start.

    :param heartbeat: The termination hook's heartbeat (self-managed groups).
    :param heartbeat_given: Whether the user chose the heartbeat, so the fix may name it.
    """
    ultraserver = block.is_ultraserver
    default = default_drain_lead(ultraserver=ultraserver)
    if value is None:
        lead = default
    else:
        converted = as_timedelta(value)
        if converted is None:
            problems.add(
                f"drain_lead {value!r} is not a duration; pass Duration.minutes(...) or a "
                f"timedelta (the default is {format_duration(default)})."
            )
            return default
        lead = converted
    earliest = earliest_drain_lead(
        kind=kind, ultraserver=ultraserver, period=period, heartbeat=heartbeat
    )
    if lead < earliest:
        reclaim = reclaim_lead(ultraserver=ultraserver)
        lateness = worst_case_lateness(period)
        parts = [
            f"EC2's reclaim lead ({format_duration(reclaim)})",
            f"the controller's worst-case lateness ({format_duration(lateness)}: its period "
            "plus one minute)",
        ]
        if kind is GroupKind.SELF_MANAGED:
            parts.append(
                f"the termination hook's heartbeat ({format_duration(heartbeat or timedelta(0))})"
            )
            fix = (
                "raise drain_lead or shorten heartbeat_timeout"
                if heartbeat_given
                else "raise drain_lead"
            )
        else:
            floor = (
                f"and a managed group may not drain later than EKS's own scale-down "
                f"({format_duration(EKS_MANAGED_SCALE_DOWN_LEAD)} before the end)"
            )
            if ultraserver:
                floor += (
                    f", nor, on an UltraServer block, later than {format_duration(default)} "
                    "before the end"
                )
            parts.append(floor)
            fix = "raise drain_lead or leave it unset"
        problems.add(
            f"drain_lead {format_duration(lead)} would leave nodes running when EC2 starts "
            f"reclaiming Capacity Block {block.capacity_reservation_id}'s instances; it must "
            f"cover {', '.join(parts)}. The earliest valid drain_lead is "
            f"{format_duration(earliest)} (the default is {format_duration(default)}); {fix}."
        )
    elif lead >= block.duration:
        problems.add(
            f"drain_lead {format_duration(lead)} is not shorter than Capacity Block "
            f"{block.capacity_reservation_id} itself ({format_duration(block.duration)}), so the "
            f"group would drain at or before the start; use the default "
            f"({format_duration(default)}) or a few tens of minutes."
        )
    return lead


def check_not_ended(scope: Construct, block: CapacityBlock, problems: Problems) -> None:
    """Add a problem when the block has already ended (compared with context ``now``)."""
    moment = now(scope)
    if moment >= block.end:
        problems.add(
            f"Capacity Block {block.capacity_reservation_id} ended at {format_utc(block.end)} "
            f"(now {format_utc(moment)}); its instances are gone. Use an active or scheduled "
            "block, or remove this node group."
        )


def check_sizes(
    block: CapacityBlock, desired_size: int | None, max_size: int | None, problems: Problems
) -> tuple[int, int]:
    """The target and largest size the controller runs: the largest from 1 to the block's
    count (default: the count), the target from 0 to the largest (default: the largest)."""
    count = block.instance_count
    maximum = count if max_size is None else max_size
    if isinstance(maximum, bool) or not isinstance(maximum, int) or not 1 <= maximum <= count:
        problems.add(
            f"max_size {max_size!r} must be a whole number from 1 to the block's instance count "
            f"({count}); instances beyond {count} can never launch on Capacity Block "
            f"{block.capacity_reservation_id}."
        )
        maximum = count
    target = maximum if desired_size is None else desired_size
    if isinstance(target, bool) or not isinstance(target, int) or not 0 <= target <= maximum:
        fix = (
            f"lower desired_size to at most {count}, the block's instance count"
            if maximum == count
            else "raise max_size or lower desired_size"
        )
        problems.add(
            f"desired_size {desired_size!r} must be a whole number from 0 to max_size "
            f"({maximum}); {fix}."
        )
        target = maximum
    return target, maximum
