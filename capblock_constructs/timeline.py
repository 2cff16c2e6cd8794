"""The UTC timeline of a Capacity Block, as plain data and as text (pure functions)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from ._time import format_utc
from .capacity_block import EKS_MANAGED_SCALE_DOWN_LEAD, CapacityBlock

__all__ = ["TimelineEvent", "format_duration", "format_facts", "format_timeline", "timeline"]


@dataclass(frozen=True, kw_only=True)
class TimelineEvent:
    """One moment in the life of a Capacity Block."""

    at: datetime
    """When it happens, in UTC."""
    offset: str
    """Where it sits relative to the block, for example ``end - 30 min``."""
    what: str
    """What happens then."""


def format_duration(span: timedelta) -> str:
    """A duration as ``14 days``, ``1 day 2 h 5 min`` or ``40 min``."""
    minutes = int(span.total_seconds() // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    parts = []
    if days:
        parts.append(f"{days} day{'s' if days != 1 else ''}")
    if hours:
        parts.append(f"{hours} h")
    if minutes or not parts:
        parts.append(f"{minutes} min")
    return " ".join(parts)


def _before_end(lead: timedelta) -> str:
    return f"end - {format_duration(lead)}"


def timeline(block: CapacityBlock) -> list[TimelineEvent]:
    """The block's events in time order: start, scale-downs, EC2 reclaim start, end."""
    reclaim = "EC2 starts terminating the block's instances"
    eks = "EKS scales CAPACITY_BLOCK managed node groups to zero (its own scheduled action)"
    if block.is_ultraserver:
        eks += "; this is after EC2 starts reclaiming UltraServer instances, so drain earlier"
    events = [
        TimelineEvent(
            at=block.start,
            offset="start",
            what="the reservation becomes active and instances can launch (EKS does not "
            "scale node groups up by itself)",
        ),
        TimelineEvent(
            at=block.end - block.default_drain_lead,
            offset=_before_end(block.default_drain_lead),
            what="capblock-constructs' default scale to zero: nodes start draining",
        ),
        TimelineEvent(
            at=block.eks_managed_scale_down,
            offset=_before_end(EKS_MANAGED_SCALE_DOWN_LEAD),
            what=eks,
        ),
        TimelineEvent(at=block.reclaim_start, offset=_before_end(block.reclaim_lead), what=reclaim),
        TimelineEvent(at=block.end, offset="end", what="the reservation ends"),
    ]
    # sorted() is stable: events at the same moment keep the order above.
    return sorted(events, key=lambda event: event.at)


def format_timeline(block: CapacityBlock) -> str:
    """The timeline as aligned text lines, one event a line, times in UTC."""
    events = timeline(block)
    width = max(len(event.offset) for event in events)
    return "\n".join(
        f"  {format_utc(event.at)}  {event.offset.ljust(width)}  {event.what}" for event in events
    )


def format_facts(block: CapacityBlock, *, state: str | None = None) -> str:
    """The block's facts as aligned ``label: value`` lines."""
    zone = block.availability_zone
    if block.availability_zone_id:
        zone += f" ({block.availability_zone_id})"
    rows = [
        ("Reservation", block.capacity_reservation_id),
        ("Capacity Block", block.capacity_block_id or "unknown"),
        (
            "Kind",
            f"UltraServer ({block.ultraserver_type})" if block.is_ultraserver else "instances",
        ),
        ("Instance type", block.instance_type),
        ("Instances", str(block.instance_count)),
        ("Availability Zone", zone),
        ("Platform", block.instance_platform or "unknown"),
        ("Owner account", block.owner_id or "unknown"),
        ("Duration", format_duration(block.duration)),
    ]
    if state is not None:
        rows.append(("State at lookup", state))
    width = max(len(label) for label, _ in rows) + 1
    return "\n".join(f"  {(label + ':').ljust(width)} {value}" for label, value in rows)
