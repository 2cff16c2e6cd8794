"""The Capacity Block value object and its synth-time lookup."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from ._ids import is_reservation_id
from ._problems import Problems
from ._time import format_utc, parse_utc
from .controller.runtime import phase
from .controller.runtime.phase import (
    EC2_RECLAIM_LEAD,
    EC2_RECLAIM_LEAD_ULTRASERVER,
    EKS_MANAGED_SCALE_DOWN_LEAD,
    MAX_HEARTBEAT,
    MIN_HEARTBEAT,
)
from .errors import CapacityBlockError

if TYPE_CHECKING:
    # Only for annotations: the value object and the CLI need no jsii runtime.
    from constructs import Construct

# The AWS rules are defined once, in the controller's phase rule, and re-exported here
# because they are public API: constructs, controller and plan cannot disagree on them.
__all__ = [
    "EC2_RECLAIM_LEAD",
    "EC2_RECLAIM_LEAD_ULTRASERVER",
    "EKS_MANAGED_SCALE_DOWN_LEAD",
    "MAX_HEARTBEAT",
    "MIN_HEARTBEAT",
    "BlockPhase",
    "CapacityBlock",
]

_INSTANCE_TYPE = re.compile(r"^[a-z][a-z0-9-]*\.[a-z0-9-]+$")
_AVAILABILITY_ZONE = re.compile(r"^[a-z]{2}(?:-[a-z0-9]+)+[a-z]$")
_AVAILABILITY_ZONE_ID = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*-az[0-9]+$")
_ULTRASERVER_TYPE = re.compile(r"^u-[a-z0-9-]+$")


def require_capacity_block(value: object, *, path: str) -> None:
    """Fail clearly when a construct is handed something other than a CapacityBlock.

    The likely mistake is the reservation ID itself; without this check it
    surfaces as an AttributeError deep inside the construct.
    """
    if isinstance(value, CapacityBlock):
        return
    raise CapacityBlockError(
        f"capacity_block {value!r} is a {type(value).__name__}, not a CapacityBlock; pass "
        "CapacityBlock.from_lookup(self, 'cr-...') or a CapacityBlock(...) built by hand.",
        subject=path,
    )


class BlockPhase(enum.Enum):
    """Where a point in time falls relative to a Capacity Block."""

    SCHEDULED = "scheduled"
    """Before the start: no instance can launch yet."""
    ACTIVE = "active"
    """From the start until EC2 begins reclaiming instances."""
    RECLAIMING = "reclaiming"
    """From EC2's reclaim start until the end: instances are being terminated."""
    ENDED = "ended"
    """At or after the end."""


@dataclass(frozen=True, kw_only=True)
class CapacityBlock:
    """An EC2 Capacity Block for ML reservation, as the constructs need it.

    Build one by hand for tests and offline use, or resolve it from the
    reservation at synth time with :meth:`from_lookup`. Construction validates
    every field and raises :class:`CapacityBlockError` listing all problems.
    Datetimes must carry a timezone; they are stored in UTC.
    """

    capacity_reservation_id: str
    """The reservation ID, ``cr-`` followed by 8 or 17 hex digits."""
    instance_type: str
    """The reserved instance type, for example ``p5.48xlarge``."""
    availability_zone: str
    """The one Availability Zone the reservation lives in, for example ``us-east-2a``."""
    instance_count: int
    """How many instances the block reserves (the planned count before it starts)."""
    start: datetime
    """When the reservation becomes active, in UTC."""
    end: datetime
    """When the reservation ends, in UTC. EC2 starts reclaiming instances before this."""
    availability_zone_id: str | None = None
    """The zone ID (for example ``use2-az1``), the same in every account.

    Unknown (None) when the block is built by hand.
    """
    ultraserver_type: str | None = None
    """The UltraServer type (for example ``u-p6e-gb200x72``) for an UltraServer block.

    Defaults to an instance block, which EC2 reclaims 30 minutes before the end
    instead of 60.
    """
    capacity_block_id: str | None = None
    """The Capacity Block ID (``cb-...``) that the reservation belongs to, when known."""
    instance_platform: str | None = None
    """The reserved platform, for example ``Linux/UNIX``, when known."""
    owner_id: str | None = None
    """The account that owns the reservation, when known."""

    def __post_init__(self) -> None:
        problems = Problems(f"Capacity Block {self.capacity_reservation_id!r}")
        if not is_reservation_id(self.capacity_reservation_id):
            problems.add(
                f"capacity_reservation_id {self.capacity_reservation_id!r} is not a reservation "
                "ID; use the 'cr-' ID followed by 8 or 17 lowercase hex digits, "
                "for example 'cr-0123456789abcdef0'."
            )
        if not isinstance(self.instance_type, str) or not _INSTANCE_TYPE.match(self.instance_type):
            problems.add(
                f"instance_type {self.instance_type!r} is not an EC2 instance type; "
                "use the reserved type, for example 'p5.48xlarge'."
            )
        if not isinstance(self.availability_zone, str) or not _AVAILABILITY_ZONE.match(
            self.availability_zone
        ):
            problems.add(
                f"availability_zone {self.availability_zone!r} is not an Availability Zone "
                "name; use the reservation's zone, for example 'us-east-2a'."
            )
        if self.ultraserver_type is not None and not _ULTRASERVER_TYPE.match(
            str(self.ultraserver_type)
        ):
            problems.add(
                f"ultraserver_type {self.ultraserver_type!r} is not an UltraServer type; use the "
                "type EC2 reports, for example 'u-p6e-gb200x72', or leave it unset for an "
                "instance block."
            )
        if self.availability_zone_id is not None and not _AVAILABILITY_ZONE_ID.match(
            str(self.availability_zone_id)
        ):
            problems.add(
                f"availability_zone_id {self.availability_zone_id!r} is not a zone ID; "
                "use a value like 'use2-az1' or leave it unset."
            )
        if (
            isinstance(self.instance_count, bool)
            or not isinstance(self.instance_count, int)
            or self.instance_count < 1
        ):
            problems.add(
                f"instance_count {self.instance_count!r} must be a whole number of at least 1; "
                "use the number of instances the block reserves."
            )
        for name in ("start", "end"):
            value = getattr(self, name)
            if not isinstance(value, datetime):
                problems.add(
                    f"{name} {value!r} is not a datetime; pass a timezone-aware datetime "
                    "such as datetime(2027, 3, 1, 11, 30, tzinfo=timezone.utc)."
                )
            elif value.tzinfo is None or value.utcoffset() is None:
                problems.add(
                    f"{name} {value.isoformat()} is a naive datetime; it is not assumed to be "
                    "UTC. Pass tzinfo=timezone.utc (Capacity Block times are UTC)."
                )
            else:
                object.__setattr__(self, name, value.astimezone(timezone.utc))
        if (
            isinstance(self.start, datetime)
            and isinstance(self.end, datetime)
            and self.start.tzinfo is not None
            and self.end.tzinfo is not None
            and self.end <= self.start
        ):
            problems.add(
                f"end {format_utc(self.end)} is not after start {format_utc(self.start)}; "
                "check that the two were not swapped."
            )
        problems.raise_if_any()

    # -- derived times -------------------------------------------------------------

    @property
    def is_ultraserver(self) -> bool:
        """Whether this is an UltraServer block (EC2 reclaims 60 minutes before the end)."""
        return self.ultraserver_type is not None

    @property
    def reclaim_lead(self) -> timedelta:
        """How long before the end EC2 starts terminating instances.

        30 minutes for instance blocks, 60 for UltraServer blocks.
        """
        return phase.reclaim_lead(ultraserver=self.is_ultraserver)

    @property
    def reclaim_start(self) -> datetime:
        """When EC2 starts terminating the block's instances; nodes must be drained by then."""
        return self.end - self.reclaim_lead

    @property
    def default_drain_lead(self) -> timedelta:
        """How long before the end node groups scale to zero by default: 40 minutes, 70 for
        UltraServer blocks.

        This leaves ten minutes of drain before EC2 starts reclaiming, matching
        the lead EKS uses for managed node groups on instance blocks; it is the
        controller's default for both kinds of node group.
        """
        return phase.default_drain_lead(ultraserver=self.is_ultraserver)

    @property
    def eks_managed_scale_down(self) -> datetime:
        """When EKS's own action scales a managed node group to zero: 40 minutes before the end.

        The controller drains managed groups at the drain time, no later than
        this; EKS's action is a second line (and, on UltraServer blocks, comes
        after EC2 starts reclaiming).
        """
        return self.end - EKS_MANAGED_SCALE_DOWN_LEAD

    @property
    def duration(self) -> timedelta:
        """The paid length of the block, start to end."""
        return self.end - self.start

    def phase_at(self, moment: datetime) -> BlockPhase:
        """Which phase of the block ``moment`` (timezone-aware) falls in."""
        if moment.tzinfo is None:
            raise CapacityBlockError(
                f"phase_at() got the naive datetime {moment.isoformat()}; "
                "pass a timezone-aware one."
            )
        if moment < self.start:
            return BlockPhase.SCHEDULED
        if moment < self.reclaim_start:
            return BlockPhase.ACTIVE
        if moment < self.end:
            return BlockPhase.RECLAIMING
        return BlockPhase.ENDED

    # -- lookup and cache ------------------------------------------------------------

    @classmethod
    def from_lookup(cls, scope: Construct, capacity_reservation_id: str) -> CapacityBlock:
        """Resolve a reservation at synth time, served from the CDK context cache when possible.

        The stack that holds ``scope`` must name its account and region. The
        value is read from the CDK context key
        ``capblock-constructs:capacity-block:account=<account>:region=<region>:capacityReservationId=<id>``
        (which ``cdk.context.json`` feeds); on a miss it is read from EC2 with
        boto3's default credentials and written back to ``cdk.context.json``
        in the working directory, so later synths make no AWS call. With
        lookups switched off (``CAPBLOCK_LOOKUPS=off`` or context
        ``capblock-constructs:lookups`` = ``false``), a miss is an error that
        names the command that fills the cache.

        After a Capacity Block is extended (same ID, new end date), refresh
        the entry with ``capblock lookup <id> --refresh`` or
        ``cdk context --reset <key>``.
        """
        # Imported here: the lookup needs boto3, which the value object does not.
        from ._reservation_lookup import lookup_capacity_block

        return lookup_capacity_block(scope, capacity_reservation_id, build=cls.from_context_value)

    def to_context_value(self) -> dict[str, Any]:
        """The JSON object stored in ``cdk.context.json`` for this block."""
        value: dict[str, Any] = {
            "capacityReservationId": self.capacity_reservation_id,
            "instanceType": self.instance_type,
            "availabilityZone": self.availability_zone,
            "instanceCount": self.instance_count,
            "startDate": format_utc(self.start),
            "endDate": format_utc(self.end),
        }
        optional = {
            "availabilityZoneId": self.availability_zone_id,
            "ultraserverType": self.ultraserver_type,
            "capacityBlockId": self.capacity_block_id,
            "instancePlatform": self.instance_platform,
            "ownerId": self.owner_id,
        }
        value.update({key: item for key, item in optional.items() if item is not None})
        return value

    @classmethod
    def from_context_value(cls, value: Any, *, source: str) -> CapacityBlock:
        """Rebuild a block from a cached context value; ``source`` names where it came from."""
        problems = Problems(source)
        if not isinstance(value, dict):
            problems.add(
                f"the cached value is {type(value).__name__}, not an object; delete the entry "
                "(cdk context --reset <key>) and look the reservation up again."
            )
            problems.raise_if_any()
        required = (
            "capacityReservationId",
            "instanceType",
            "availabilityZone",
            "instanceCount",
            "startDate",
            "endDate",
        )
        missing = [key for key in required if key not in value]
        if missing:
            problems.add(
                f"the cached value lacks {', '.join(missing)}; refresh it with "
                "'capblock lookup <id> --refresh'."
            )
            problems.raise_if_any()
        return cls(
            capacity_reservation_id=value["capacityReservationId"],
            instance_type=value["instanceType"],
            availability_zone=value["availabilityZone"],
            instance_count=value["instanceCount"],
            start=parse_utc(str(value["startDate"]), what=f"{source} startDate"),
            end=parse_utc(str(value["endDate"]), what=f"{source} endDate"),
            availability_zone_id=value.get("availabilityZoneId"),
            ultraserver_type=value.get("ultraserverType"),
            capacity_block_id=value.get("capacityBlockId"),
            instance_platform=value.get("instancePlatform"),
            owner_id=value.get("ownerId"),
        )
