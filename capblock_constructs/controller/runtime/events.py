"""What invoked the controller: a schedule, an EC2 Capacity Block event or CloudFormation.

Every invocation is handled the same way (read the live reservations, size every
group); the event only decides the moment the run acts for and what else it says.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

__all__ = [
    "CAPACITY_BLOCK_DETAIL_TYPES",
    "INTERRUPTION_DETAIL_TYPE",
    "SCHEDULED_DETAIL_TYPE",
    "Invocation",
    "Trigger",
    "format_time",
    "is_custom_resource_request",
    "parse_invocation",
    "parse_time",
]

CAPACITY_BLOCK_DETAIL_TYPES = frozenset(
    {
        # The EC2 monitoring page spells these two ways across its versions; real events
        # have used both, so both are read.
        "Capacity Block Delivered",
        "Capacity Block Reservation Delivered",
        "Capacity Block Expiration Warning",
        "Capacity Block Reservation Expiration Warning",
    }
)
INTERRUPTION_DETAIL_TYPE = "EC2 Capacity Reservation Instance Interruption Warning"
SCHEDULED_DETAIL_TYPE = "Scheduled Event"


class Trigger(enum.Enum):
    """What kind of invocation a run serves."""

    SCHEDULE = "schedule"
    """The periodic EventBridge rule: the only trigger that sends reminders, since only its
    moments tile the timeline one period apart."""
    CAPACITY_BLOCK = "capacity-block"
    """An EC2 Capacity Block delivered or expiration-warning event."""
    INTERRUPTION = "interruption"
    """An EC2 instance interruption warning for a Capacity Block instance."""
    CUSTOM_RESOURCE = "custom-resource"
    """A CloudFormation custom resource request (deploy time)."""
    OTHER = "other"
    """Anything else, for example a test invocation from the console: a run at the clock."""


@dataclass(frozen=True, kw_only=True)
class Invocation:
    """The parts of an event the controller uses."""

    trigger: Trigger
    moment: datetime | None
    """The event's own ``time``; ``None`` when it carries none (the run then uses the clock)."""
    detail_type: str | None = None
    reservation_id: str | None = None
    """Capacity Block events: the reservation the event is about."""
    instance_id: str | None = None
    """Interruption warnings: the instance EC2 will reclaim."""
    termination_time: str | None = None
    """Interruption warnings: when EC2 reclaims it, as the event wrote it."""
    request_type: str | None = None
    """Custom resource requests: ``Create``, ``Update`` or ``Delete``."""
    time_problem: str | None = None
    """Why the event's ``time`` could not be read, when it could not."""


def parse_time(text: str) -> datetime:
    """An ISO 8601 timestamp with an offset (``Z`` allowed), in UTC.

    :raises ValueError: when the text is not such a timestamp or names no offset.
    """
    value = text.strip()
    # datetime.fromisoformat takes no trailing "Z" before Python 3.11.
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError(f"{text!r} names no UTC offset")
    return parsed.astimezone(timezone.utc)


def format_time(moment: datetime) -> str:
    """A moment as ``2031-03-15T11:30:00Z`` (UTC, whole seconds)."""
    return moment.astimezone(timezone.utc).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def is_custom_resource_request(event: Mapping[str, Any]) -> bool:
    """Whether the event is a CloudFormation custom resource request."""
    return "RequestType" in event and "ResponseURL" in event


def parse_invocation(event: Mapping[str, Any]) -> Invocation:
    """Classify an event and read its moment; never raises, whatever the event holds."""
    if is_custom_resource_request(event):
        return Invocation(
            trigger=Trigger.CUSTOM_RESOURCE,
            moment=None,
            request_type=str(event.get("RequestType")),
        )
    moment: datetime | None = None
    time_problem: str | None = None
    raw_time = event.get("time")
    if isinstance(raw_time, str):
        try:
            moment = parse_time(raw_time)
        except ValueError:
            time_problem = (
                f"the event's time {raw_time!r} is not an ISO 8601 timestamp with an offset; "
                "the run used the clock instead"
            )
    elif raw_time is not None:
        time_problem = f"the event's time {raw_time!r} is not a string; the run used the clock"
    detail_type = event.get("detail-type")
    detail = event.get("detail")
    detail = detail if isinstance(detail, Mapping) else {}
    source = event.get("source")
    if source == "aws.events" and detail_type == SCHEDULED_DETAIL_TYPE:
        trigger = Trigger.SCHEDULE
    elif source == "aws.ec2" and detail_type in CAPACITY_BLOCK_DETAIL_TYPES:
        trigger = Trigger.CAPACITY_BLOCK
    elif source == "aws.ec2" and detail_type == INTERRUPTION_DETAIL_TYPE:
        trigger = Trigger.INTERRUPTION
    else:
        trigger = Trigger.OTHER

    def text(key: str) -> str | None:
        value = detail.get(key)
        return value if isinstance(value, str) else None

    return Invocation(
        trigger=trigger,
        moment=moment,
        detail_type=detail_type if isinstance(detail_type, str) else None,
        reservation_id=text("capacity-reservation-id"),
        instance_id=text("instance-id"),
        termination_time=text("instance-termination-time"),
        time_problem=time_problem,
    )
