"""The Capacity Block phase rule: how many nodes a group should run at a given moment.

One definition serves three callers: the controller's Lambda handler (which
applies it to the live reservation every period), the node-group constructs
(which validate drain leads and heartbeats against it at synth time) and
``capblock plan`` (which draws the times it acts at). It is a pure function
of the reservation's facts and a moment, so it imports only the standard
library: this module ships inside the Lambda function's code asset.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta

__all__ = [
    "ACTIVE_STATE",
    "CONTROLLER_INVOCATION_LATENCY",
    "DEFAULT_CONTROLLER_PERIOD",
    "DEFAULT_DRAIN_MARGIN",
    "EC2_RECLAIM_LEAD",
    "EC2_RECLAIM_LEAD_ULTRASERVER",
    "EKS_MANAGED_SCALE_DOWN_LEAD",
    "MAX_CONTROLLER_PERIOD",
    "MAX_HEARTBEAT",
    "MIN_CONTROLLER_PERIOD",
    "MIN_HEARTBEAT",
    "UNUSABLE_STATES",
    "Decision",
    "GroupKind",
    "Phase",
    "ReservationFacts",
    "decide",
    "default_drain_lead",
    "default_heartbeat",
    "drain_time",
    "earliest_drain_lead",
    "reclaim_lead",
    "worst_case_lateness",
]

EC2_RECLAIM_LEAD = timedelta(minutes=30)
"""EC2 starts terminating instances in an instance Capacity Block this long before its end
("You can use all the instances you reserved until 30 minutes ... before the end time",
EC2 user guide, How Capacity Blocks work)."""

EC2_RECLAIM_LEAD_ULTRASERVER = timedelta(minutes=60)
"""EC2 starts terminating instances in an UltraServer Capacity Block this long before its end
("... or 60 minutes (for UltraServer type)", same page)."""

EKS_MANAGED_SCALE_DOWN_LEAD = timedelta(minutes=40)
"""EKS's own scheduled action scales a ``CAPACITY_BLOCK`` managed node group to zero this long
before the end ("Amazon EKS Node Group Capacity Scaledown Before Reservation End", EKS user
guide, Capacity Blocks for managed node groups)."""

DEFAULT_DRAIN_MARGIN = timedelta(minutes=10)
"""Drain time left before EC2 starts reclaiming by default: the margin EKS leaves for instance
blocks (40 - 30 minutes), applied to UltraServer blocks too (70 - 60)."""

DEFAULT_CONTROLLER_PERIOD = timedelta(minutes=1)
"""How often the controller re-reads every reservation by default."""
MIN_CONTROLLER_PERIOD = timedelta(minutes=1)
"""The shortest period: EventBridge schedules fire at most once a minute."""
MAX_CONTROLLER_PERIOD = timedelta(minutes=5)
"""The longest period the controller accepts; longer ones eat into the drain."""

CONTROLLER_INVOCATION_LATENCY = timedelta(minutes=1)
"""A bound on how late a periodic run starts and finishes after its scheduled minute:
EventBridge schedules fire within their minute, Lambda's asynchronous queue adds seconds, and
the handler's calls take seconds. The controller's event settings drop events older than a
period, so a run is either on time by this bound or replaced by the next one."""

MIN_HEARTBEAT = timedelta(seconds=30)
"""The shortest heartbeat an EC2 Auto Scaling lifecycle hook accepts."""
MAX_HEARTBEAT = timedelta(seconds=7200)
"""The longest heartbeat an EC2 Auto Scaling lifecycle hook accepts."""

ACTIVE_STATE = "active"
"""The only ``DescribeCapacityReservations`` state in which instances can launch."""

UNUSABLE_STATES = frozenset({"cancelled", "expired", "payment-failed", "failed"})
"""States from which a reservation never becomes usable again (EC2 user guide, View Capacity
Blocks; ``CapacityReservationState`` in the EC2 API)."""


class GroupKind(enum.Enum):
    """Which kind of node group the controller sizes; it sets the floor of the drain lead."""

    MANAGED = "managed"
    """An EKS managed node group, sized through ``eks:UpdateNodegroupConfig``."""
    SELF_MANAGED = "self-managed"
    """A self-managed Auto Scaling group, sized through the EC2 Auto Scaling API."""


class Phase(enum.Enum):
    """Where a moment falls for a node group on a Capacity Block, as the controller sees it."""

    WAITING = "waiting"
    """Before the start, or after it while the reservation is not yet ``active``: size 0."""
    RUNNING = "running"
    """Active and before the drain time: the target size (never above the live count)."""
    DRAINING = "draining"
    """From the drain time (``end - drain_lead``) until the end: size 0."""
    ENDED = "ended"
    """At or after the end, or the reservation has expired: size 0."""
    UNUSABLE = "unusable"
    """Cancelled, payment failed or failed: size 0, and it never becomes usable."""


@dataclass(frozen=True, kw_only=True)
class ReservationFacts:
    """What ``DescribeCapacityReservations`` says about a Capacity Block at one moment."""

    state: str
    """The reservation's ``State``, for example ``scheduled`` or ``active``."""
    start: datetime
    """``StartDate``, timezone-aware."""
    end: datetime
    """``EndDate``, timezone-aware; an extension moves it and keeps the reservation ID."""
    instance_count: int
    """How many instances the group may use: ``TotalInstanceCount`` once active (EC2 reports 0
    before), or the planned count before."""


@dataclass(frozen=True, kw_only=True)
class Decision:
    """The size a group should have at one moment, and why."""

    phase: Phase
    size: int
    drain_at: datetime
    """When the group scales to zero for the block's current end."""


def reclaim_lead(*, ultraserver: bool) -> timedelta:
    """How long before the end EC2 starts terminating the block's instances."""
    return EC2_RECLAIM_LEAD_ULTRASERVER if ultraserver else EC2_RECLAIM_LEAD


def default_drain_lead(*, ultraserver: bool) -> timedelta:
    """The drain lead used when none is given: 40 minutes, 70 for UltraServer blocks.

    For managed node groups on instance blocks this is EKS's own scale-down time, so the
    controller and EKS act together; it is also the shortest drain lead a managed group takes.
    """
    return reclaim_lead(ultraserver=ultraserver) + DEFAULT_DRAIN_MARGIN


def worst_case_lateness(period: timedelta) -> timedelta:
    """How long after a moment the controller may act on it at the latest.

    The moment can fall just after a run (one period) and that run can start and finish
    late (:data:`CONTROLLER_INVOCATION_LATENCY`).
    """
    return period + CONTROLLER_INVOCATION_LATENCY


def earliest_drain_lead(
    *,
    kind: GroupKind,
    ultraserver: bool,
    period: timedelta,
    heartbeat: timedelta | None = None,
) -> timedelta:
    """The shortest drain lead with which nodes are gone before EC2 starts reclaiming.

    EC2's reclaim lead, plus the controller's worst-case lateness, plus (self-managed
    groups) the termination lifecycle hook's heartbeat: an instance nobody releases still
    terminates when the heartbeat expires. Managed groups also never drain later than the
    default (EKS's own 40 minutes, 70 for UltraServer blocks, whose instances EC2 reclaims
    before EKS's action).
    """
    lead = reclaim_lead(ultraserver=ultraserver) + worst_case_lateness(period)
    if kind is GroupKind.SELF_MANAGED:
        return lead + (heartbeat or timedelta(0))
    return max(lead, default_drain_lead(ultraserver=ultraserver))


def default_heartbeat(*, drain_lead: timedelta, ultraserver: bool, period: timedelta) -> timedelta:
    """The termination hook's heartbeat that fits a drain lead: what is left of it after EC2's
    reclaim lead and the controller's lateness, within the 30-7200 s lifecycle hooks accept."""
    left = drain_lead - reclaim_lead(ultraserver=ultraserver) - worst_case_lateness(period)
    return min(max(left, MIN_HEARTBEAT), MAX_HEARTBEAT)


def drain_time(end: datetime, drain_lead: timedelta) -> datetime:
    """When a group on a block that ends at ``end`` scales to zero."""
    return end - drain_lead


def decide(
    facts: ReservationFacts,
    *,
    moment: datetime,
    drain_lead: timedelta,
    target_size: int,
) -> Decision:
    """The size a group should have at ``moment`` (timezone-aware).

    0 before the start and while the reservation is not ``active``; the target size (at
    most the live instance count) while active and before ``end - drain_lead``; 0 from
    then on, and for reservations that are cancelled, expired or whose payment failed.
    The drain time follows the live end, so an extension moves it.
    """
    if moment.tzinfo is None:
        raise ValueError(f"decide() got the naive datetime {moment.isoformat()}")
    drain_at = drain_time(facts.end, drain_lead)
    if moment >= facts.end or facts.state == "expired":
        return Decision(phase=Phase.ENDED, size=0, drain_at=drain_at)
    if facts.state in UNUSABLE_STATES:
        return Decision(phase=Phase.UNUSABLE, size=0, drain_at=drain_at)
    if moment >= drain_at:
        return Decision(phase=Phase.DRAINING, size=0, drain_at=drain_at)
    if moment < facts.start or facts.state != ACTIVE_STATE:
        return Decision(phase=Phase.WAITING, size=0, drain_at=drain_at)
    size = max(0, min(target_size, facts.instance_count))
    return Decision(phase=Phase.RUNNING, size=size, drain_at=drain_at)
