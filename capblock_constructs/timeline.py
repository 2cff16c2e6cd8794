"""The UTC timeline of a Capacity Block, as plain data and as text (pure functions)."""

from __future__ import annotations

import contextlib
import enum
import json
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from fractions import Fraction
from pathlib import Path
from typing import Any

from ._context_cache import (
    ACCOUNT_ID_PATTERN,
    CONTEXT_FILE_NAME,
    KEY_PREFIX,
    REGION_NAME_PATTERN,
    read_context_file,
)
from ._problems import Problems
from ._reservation_lookup import RESERVATION_KIND
from ._time import NOW_CONTEXT_KEY, format_utc, parse_utc
from .capacity_block import (
    EKS_MANAGED_SCALE_DOWN_LEAD,
    MIN_HEARTBEAT,
    SCHEDULED_ACTION_MAX_DELAY,
    CapacityBlock,
)
from .errors import CapacityBlockError

__all__ = [
    "WORK_SHARE_DEFINITION",
    "BlockPlan",
    "NodeGroupKind",
    "NodeGroupPlan",
    "Plan",
    "PlanEvent",
    "TimelineEvent",
    "format_duration",
    "format_facts",
    "format_plan",
    "format_plan_svg",
    "format_timeline",
    "plan",
    "plan_block",
    "timeline",
]


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
    """A duration as ``14 days``, ``1 day 2 h 5 min``, ``40 min`` or ``32 min 30 s``."""
    total = int(span.total_seconds())
    minutes, seconds = divmod(total, 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    parts = []
    if days:
        parts.append(f"{days} day{'s' if days != 1 else ''}")
    if hours:
        parts.append(f"{hours} h")
    if minutes or not parts:
        parts.append(f"{minutes} min")
    if seconds:
        parts.append(f"{seconds} s")
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


# -- plan: when nodes can run work on one or more blocks -------------------------------------

WORK_SHARE_DEFINITION = (
    "Work share = (scale-down time - start) / (end - start): the share of the paid block time "
    "during which nodes can run work."
)
"""How :attr:`NodeGroupPlan.work_share` is defined; every printed plan states it."""

_TICK = timedelta(microseconds=1)
_MANAGED_DRAIN_LEAD = (
    "a drain lead of {lead} was given for a managed node group, but EKS scales managed node "
    "groups to zero 40 minutes before the end by itself; drop the drain lead or plan the "
    "self-managed node group."
)


def _add_error(problems: Problems, error: CapacityBlockError) -> None:
    """Add each problem of ``error``, led by its subject, so that none is nested."""
    for problem in error.problems:
        problems.add(f"{error.subject}: {problem}" if error.subject else problem)


class NodeGroupKind(enum.Enum):
    """Which kind of node group a plan describes; it decides when the nodes scale to zero."""

    MANAGED = "managed"
    """An EKS managed node group: EKS's own action scales it to zero 40 minutes before the end."""
    SELF_MANAGED = "self-managed"
    """A self-managed Auto Scaling group: it scales to zero ``drain_lead`` before the end."""


@dataclass(frozen=True, kw_only=True)
class NodeGroupPlan:
    """When one kind of node group runs on a block, and how much of the paid time it can work."""

    kind: NodeGroupKind
    """The kind of node group."""
    scale_up: datetime
    """When the node group scales up: the block's start, in UTC."""
    scale_down: datetime
    """When the node group scales to zero and its nodes start draining, in UTC."""
    drain_lead: timedelta
    """How long before the block's end the scale-down comes."""
    paid_time: timedelta
    """The block's paid length, start to end."""
    warnings: tuple[str, ...] = ()
    """Problems with this schedule that do not stop the plan, one sentence each."""

    @property
    def work_time(self) -> timedelta:
        """How long nodes can run work: from the scale-up (the start) to the scale-down."""
        return self.scale_down - self.scale_up

    @property
    def work_share(self) -> float:
        """``work_time / paid_time``, from 0 to 1 (see :data:`WORK_SHARE_DEFINITION`)."""
        return self.work_time / self.paid_time

    @property
    def work_share_text(self) -> str:
        """The work share as a percentage with one decimal, rounded half up, e.g. ``99.8%``."""
        # Integer arithmetic: a float product could round a value like 97.25 either way.
        tenths = Fraction(self.work_time // _TICK * 1000, self.paid_time // _TICK)
        value = int(tenths + Fraction(1, 2))
        return f"{value // 10}.{value % 10}%"


@dataclass(frozen=True, kw_only=True)
class PlanEvent:
    """One moment of a block's plan, with the letter that marks it on the chart."""

    at: datetime
    """When it happens, in UTC."""
    offset: str
    """Where it sits relative to the block, for example ``end - 30 min``."""
    marker: str
    """The chart letter: S start, D drain start, R EC2 reclaim start, E end."""
    what: str
    """What happens then."""
    node_group: NodeGroupKind | None = None
    """The node group kind the event belongs to; None for events of the block itself."""


@dataclass(frozen=True, kw_only=True)
class BlockPlan:
    """The plan of one Capacity Block: its node groups' schedules and its events."""

    block: CapacityBlock
    """The block."""
    node_groups: tuple[NodeGroupPlan, ...]
    """One schedule per node group kind asked for, managed first."""
    region: str | None = None
    """The region of the cache entry; None for a block built by hand."""
    accounts: tuple[str, ...] = ()
    """The accounts whose cache entries hold this block; empty for a block built by hand."""
    warnings: tuple[str, ...] = ()
    """Problems with the block or its cache entries that do not stop the plan."""

    @property
    def events(self) -> list[PlanEvent]:
        """The block's events in time order: start, drain starts, EC2 reclaim start, end."""
        block = self.block
        events = [
            PlanEvent(
                at=block.start,
                offset="start",
                marker="S",
                what="the block starts and node groups scale up (EKS does not scale up by "
                "itself; capblock-constructs schedules it)",
            )
        ]
        for group in self.node_groups:
            if (
                group.kind is NodeGroupKind.MANAGED
                and group.scale_down == block.eks_managed_scale_down
            ):
                what = "drain start, managed: EKS scales the node group to zero (its own action)"
            elif group.kind is NodeGroupKind.MANAGED:
                what = "drain start, managed: the construct's schedule scales the group to zero"
            else:
                what = "drain start, self-managed: the scheduled action scales the group to zero"
            events.append(
                PlanEvent(
                    at=group.scale_down,
                    offset=_before_end(group.drain_lead),
                    marker="D",
                    what=what,
                    node_group=group.kind,
                )
            )
        events.append(
            PlanEvent(
                at=block.reclaim_start,
                offset=_before_end(block.reclaim_lead),
                marker="R",
                what="EC2 starts reclaiming (terminating) the block's instances",
            )
        )
        events.append(PlanEvent(at=block.end, offset="end", marker="E", what="the block ends"))
        # sorted() is stable: events at the same moment keep the order above.
        return sorted(events, key=lambda event: event.at)


@dataclass(frozen=True, kw_only=True)
class Plan:
    """The plans of several blocks, in start order, and the moment marked as now."""

    blocks: tuple[BlockPlan, ...]
    """One plan per block, ordered by start, then reservation ID, region and accounts."""
    now: datetime | None = None
    """The moment to mark as now, or None to mark none (the clock is never read)."""
    source: Path | None = None
    """The cdk.context.json the blocks came from; None when they were given directly."""


def plan_block(
    block: CapacityBlock,
    *,
    node_group: NodeGroupKind | None = None,
    drain_lead: timedelta | None = None,
    region: str | None = None,
    accounts: Sequence[str] = (),
) -> BlockPlan:
    """Plan one block: when its node groups scale up and down, and their work share.

    :param node_group: Which node group kind to plan. Defaults to both, managed first.
    :param drain_lead: How long before the end a self-managed group scales to zero.
        Defaults to the block's ``default_drain_lead`` (40 minutes, 70 for
        UltraServer blocks). It must be longer than EC2's reclaim lead (30 or 60
        minutes) and shorter than the block. A managed node group ignores it:
        EKS scales it to zero 40 minutes before the end, so passing it with
        ``node_group=NodeGroupKind.MANAGED`` is an error.
    :param region: The region to show with the block.
    :param accounts: The accounts to show with the block.
    :raises CapacityBlockError: listing every problem with ``drain_lead``.
    """
    problems = Problems(f"Capacity Block {block.capacity_reservation_id}")
    lead = block.default_drain_lead if drain_lead is None else drain_lead
    if drain_lead is not None and node_group is NodeGroupKind.MANAGED:
        problems.add(_MANAGED_DRAIN_LEAD.format(lead=format_duration(drain_lead)))
    # The self-managed node group's own rule: EC2's reclaim lead, plus the up to two
    # minutes Auto Scaling may run a scheduled action late, plus the shortest heartbeat.
    earliest = block.reclaim_lead + SCHEDULED_ACTION_MAX_DELAY + MIN_HEARTBEAT
    if lead < earliest:
        problems.add(
            f"drain lead {format_duration(lead)} leaves no time to drain: EC2 starts reclaiming "
            f"the instances {format_duration(block.reclaim_lead)} before the end and a "
            "scheduled action may run up to 2 min late; use at least "
            f"{format_duration(earliest)} (the default is "
            f"{format_duration(block.default_drain_lead)})."
        )
    elif lead >= block.duration:
        problems.add(
            f"drain lead {format_duration(lead)} is not shorter than the block "
            f"({format_duration(block.duration)}), so the scale-down would come at or before "
            "the start; use a drain lead of a few tens of minutes."
        )
    problems.raise_if_any()

    kinds = [node_group] if node_group else list(NodeGroupKind)
    groups = []
    for kind in kinds:
        if kind is NodeGroupKind.MANAGED:
            # As CapacityBlockManagedNodeGroup does: EKS's own action at end - 40 min, or,
            # where that comes after EC2 starts reclaiming (UltraServer blocks), the
            # construct's own schedule at end - default drain lead.
            scale_down = min(block.eks_managed_scale_down, block.end - block.default_drain_lead)
            warnings: tuple[str, ...] = ()
            if block.eks_managed_scale_down > block.reclaim_start:
                warnings = (
                    f"EKS's own scale-down at {format_utc(block.eks_managed_scale_down)} comes "
                    "after EC2 starts reclaiming this UltraServer block's instances at "
                    f"{format_utc(block.reclaim_start)}, so CapacityBlockManagedNodeGroup "
                    f"scales the group to zero itself at {format_utc(scale_down)}; a managed "
                    "node group built without it would lose nodes before they drain.",
                )
        else:
            scale_down = block.end - lead
            warnings = ()
        groups.append(
            NodeGroupPlan(
                kind=kind,
                scale_up=block.start,
                scale_down=scale_down,
                drain_lead=block.end - scale_down,
                paid_time=block.duration,
                warnings=warnings,
            )
        )
    return BlockPlan(
        block=block, node_groups=tuple(groups), region=region, accounts=tuple(accounts)
    )


def plan(
    capacity_reservation_ids: Sequence[str] = (),
    *,
    region: str | None = None,
    account: str | None = None,
    node_group: NodeGroupKind | None = None,
    drain_lead: timedelta | None = None,
    now: datetime | None = None,
    context_file: Path | None = None,
) -> Plan:
    """Plan the Capacity Blocks cached in ``cdk.context.json``; no AWS call is made.

    Reads the ``capblock-constructs:capacity-block:...`` entries that
    ``capblock lookup`` and ``CapacityBlock.from_lookup`` write. For each block,
    :func:`plan_block` gives the node groups' scale-up (the start) and
    scale-down, EC2's reclaim start and the work share
    (:data:`WORK_SHARE_DEFINITION`). Entries for the same reservation under
    several accounts are shown once when they agree, and separately, with a
    warning, when they do not (one is stale after an extension).

    :param capacity_reservation_ids: The reservations to plan. Defaults to every
        cached Capacity Block.
    :param region: Only blocks cached for this region. Defaults to every region.
    :param account: Only blocks cached for this account. Defaults to every account.
    :param node_group: See :func:`plan_block`. Defaults to both kinds.
    :param drain_lead: See :func:`plan_block`. Defaults to each block's default.
    :param now: The moment to mark as now. Defaults to the context key
        ``capblock-constructs:now`` in the cache file or in ``cdk.json`` next to
        it, and otherwise to no mark: the clock is never read, so the plan is
        the same whenever it is made.
    :param context_file: The cache file. Defaults to ``cdk.context.json`` in the
        working directory.
    :raises CapacityBlockError: listing every problem, for example an empty
        cache, an ID with no entry or an unreadable entry.
    """
    path = context_file or Path.cwd() / CONTEXT_FILE_NAME
    # No subject (an empty one adds no lead): each message names its file or reservation.
    problems = Problems("")
    for name, value, pattern, example in (
        ("region", region, REGION_NAME_PATTERN, "us-east-2"),
        ("account", account, ACCOUNT_ID_PATTERN, "123456789012"),
    ):
        if value is not None and not pattern.match(value):
            problems.add(f"{name} {value!r} is not an AWS {name}; use one like {example!r}.")
    if drain_lead is not None and node_group is NodeGroupKind.MANAGED:
        # Said once here rather than once per block by plan_block.
        problems.add(_MANAGED_DRAIN_LEAD.format(lead=format_duration(drain_lead)))
    from ._reservation_lookup import check_reservation_id

    wanted: list[str] = []
    for reservation_id in capacity_reservation_ids:
        try:
            wanted.append(check_reservation_id(reservation_id))
        except CapacityBlockError as error:
            _add_error(problems, error)
    problems.raise_if_any()

    data = read_context_file(path)
    entries = _cached_blocks(data)
    if not entries:
        missing = "does not exist" if not path.exists() else "holds no Capacity Block entries"
        problems.add(
            f"{path} {missing}, so there is nothing to plan. Fill the cache with 'capblock "
            "lookup <reservation-id> --region <region>' (needs AWS credentials), or run this in "
            "the directory of the CDK app whose cdk.context.json holds the entries."
        )
        problems.raise_if_any()
    selected = [
        entry
        for entry in entries
        if (region is None or entry.region == region)
        and (account is None or entry.account == account)
    ]
    filters = "".join(
        f" {name} {value}" for name, value in (("region", region), ("account", account)) if value
    )
    if wanted:
        for reservation_id in dict.fromkeys(wanted):
            if not any(entry.reservation_id == reservation_id for entry in selected):
                problems.add(
                    f"{path} has no entry for {reservation_id}"
                    f"{' with' + filters if filters else ''}; fill it with 'capblock lookup "
                    f"{reservation_id} --region {region or '<region>'}"
                    f"{' --account ' + account if account else ''}'."
                )
        selected = [entry for entry in selected if entry.reservation_id in wanted]
    elif not selected:
        cached = ", ".join(
            f"{entry.reservation_id} (region {entry.region}, account {entry.account})"
            for entry in entries
        )
        problems.add(
            f"none of the Capacity Blocks in {path} matches{filters}; it holds {cached}. "
            "Drop or change the region or account filter, or fill the cache with 'capblock "
            "lookup <reservation-id> --region <region>'."
        )

    blocks: list[BlockPlan] = []
    for entry_group in _group_entries(selected, problems):
        try:
            blocks.extend(
                _plan_entry_group(entry_group, node_group=node_group, drain_lead=drain_lead)
            )
        except CapacityBlockError as error:
            _add_error(problems, error)
    if now is None:
        try:
            now = _pinned_now(data, path)
        except CapacityBlockError as error:
            _add_error(problems, error)
    problems.raise_if_any()
    blocks.sort(
        key=lambda item: (
            item.block.start,
            item.block.capacity_reservation_id,
            item.region or "",
            item.accounts,
        )
    )
    return Plan(blocks=tuple(blocks), now=now, source=path)


@dataclass(frozen=True)
class _Entry:
    key: str
    account: str
    region: str
    reservation_id: str
    value: Any
    block: CapacityBlock | None = field(default=None, compare=False)


def _cached_blocks(data: dict[str, Any]) -> list[_Entry]:
    prefix = f"{KEY_PREFIX}:{RESERVATION_KIND}:"
    entries = []
    for key, value in sorted(data.items()):
        if not key.startswith(prefix):
            continue
        fields = dict(part.partition("=")[::2] for part in key[len(prefix) :].split(":"))
        names = ("account", "region", "capacityReservationId")
        if not all(fields.get(name) for name in names):
            continue
        entries.append(
            _Entry(
                key=key,
                account=fields["account"],
                region=fields["region"],
                reservation_id=fields["capacityReservationId"],
                value=value,
            )
        )
    return entries


def _group_entries(entries: list[_Entry], problems: Problems) -> list[list[_Entry]]:
    """Entries parsed into blocks, grouped by reservation and region."""
    groups: dict[tuple[str, str], list[_Entry]] = {}
    for entry in entries:
        value = entry.value
        if isinstance(value, str):
            # `cdk -c key=value` stores context values as strings.
            with contextlib.suppress(ValueError):
                value = json.loads(value)
        try:
            block = CapacityBlock.from_context_value(value, source=f"cache entry {entry.key!r}")
        except CapacityBlockError as error:
            _add_error(problems, error)
            continue
        parsed = _Entry(
            key=entry.key,
            account=entry.account,
            region=entry.region,
            reservation_id=entry.reservation_id,
            value=value,
            block=block,
        )
        groups.setdefault((entry.region, entry.reservation_id), []).append(parsed)
    return list(groups.values())


def _plan_entry_group(
    entries: list[_Entry], *, node_group: NodeGroupKind | None, drain_lead: timedelta | None
) -> list[BlockPlan]:
    """One plan per distinct block value among one reservation's entries."""
    distinct: dict[CapacityBlock, list[str]] = {}
    for entry in entries:
        assert entry.block is not None
        distinct.setdefault(entry.block, []).append(entry.account)
    warnings: tuple[str, ...] = ()
    first = entries[0]
    if len(distinct) > 1:
        versions = "; ".join(
            f"account{'s' if len(accounts) > 1 else ''} {', '.join(sorted(accounts))}: "
            f"{format_utc(block.start)} .. {format_utc(block.end)}"
            for block, accounts in distinct.items()
        )
        warnings = (
            f"the cache holds different values for {first.reservation_id} in {first.region} "
            f"({versions}); one is stale, for example after an extension. Refresh each with "
            f"'capblock lookup {first.reservation_id} --region {first.region} --account "
            "<account> --refresh'.",
        )
    plans = []
    for block, accounts in distinct.items():
        planned = plan_block(
            block,
            node_group=node_group,
            drain_lead=drain_lead,
            region=first.region,
            accounts=sorted(accounts),
        )
        plans.append(
            BlockPlan(
                block=planned.block,
                node_groups=planned.node_groups,
                region=planned.region,
                accounts=planned.accounts,
                warnings=warnings,
            )
        )
    return plans


def _pinned_now(data: dict[str, Any], path: Path) -> datetime | None:
    """The context key ``capblock-constructs:now`` from the cache file or cdk.json."""
    sources: list[tuple[str, Any]] = [(str(path), data.get(NOW_CONTEXT_KEY))]
    cdk_json = path.parent / "cdk.json"
    if cdk_json.exists():
        try:
            context = json.loads(cdk_json.read_text(encoding="utf-8")).get("context", {})
        except (ValueError, AttributeError):
            context = {}
        if isinstance(context, dict):
            sources.append((str(cdk_json), context.get(NOW_CONTEXT_KEY)))
    for source, value in sources:
        if value is None:
            continue
        if not isinstance(value, str):
            raise CapacityBlockError(
                f"context {NOW_CONTEXT_KEY!r} in {source} is {value!r}; set it to an ISO 8601 "
                "UTC timestamp string such as '2027-03-01T11:30:00Z', or pass --now."
            )
        return parse_utc(value, what=f"context {NOW_CONTEXT_KEY!r} in {source}")
    return None


# -- plan as a text chart --------------------------------------------------------------------

_ASCII = {"work": "=", "drain": "-", "reclaim": "x", "break": "//"}
_UNICODE = {"work": "\u2588", "drain": "\u2592", "reclaim": "\u2591", "break": "\u2571\u2571"}
_MIN_BAR = 24
_LABEL = max(len(kind.value) for kind in NodeGroupKind)


@dataclass(frozen=True, kw_only=True)
class _ChartAxis:
    """A block's time axis: linear, or broken so that its last hours get a larger scale.

    The events that matter for draining all fall within about an hour of the
    end of a block that lasts days, so a linear axis would draw them on top
    of each other. A broken axis gives the part from ``tail_start`` to the end
    ``tail_width`` of the width.
    """

    start: datetime
    """The left edge: the block's start."""
    end: datetime
    """The right edge: the block's end."""
    tail_start: datetime | None
    """Where the larger-scale tail begins, or None for one linear scale."""

    tail_width: float = 0.4
    """The share of the width the tail takes when the axis is broken."""

    @classmethod
    def for_block(cls, plan: BlockPlan) -> _ChartAxis:
        """The axis for a block: broken when its tail is short next to the block."""
        block = plan.block
        lead = max([block.reclaim_lead, *(group.drain_lead for group in plan.node_groups)])
        hour = timedelta(hours=1)
        # Whole hours that hold the longest lead plus a margin, so markers are not at the edge.
        tail = -(-(lead + timedelta(minutes=20)) // hour) * hour
        if block.duration <= 4 * tail:
            return cls(start=block.start, end=block.end, tail_start=None)
        return cls(start=block.start, end=block.end, tail_start=block.end - tail)

    def split(self, cells: int) -> tuple[int, int]:
        """How many of ``cells`` go to the head and to the tail (a gap of 2 in between)."""
        if self.tail_start is None:
            return cells, 0
        tail = max(10, round(cells * self.tail_width))
        return cells - tail - 2, tail

    def cell(self, moment: datetime, cells: int) -> int:
        """The cell (0 to ``cells - 1``) that holds ``moment``."""
        head, tail = self.split(cells)
        if self.tail_start is None or moment < self.tail_start:
            edge = self.tail_start or self.end
            index = int((moment - self.start) / (edge - self.start) * head)
            return min(max(index, 0), head - 1)
        index = int((moment - self.tail_start) / (self.end - self.tail_start) * tail)
        return head + 2 + min(max(index, 0), tail - 1)

    def position(self, moment: datetime, length: float, gap: float) -> float:
        """Where ``moment`` falls on a line ``length`` long with a ``gap`` at the break."""
        moment = min(max(moment, self.start), self.end)
        if self.tail_start is None:
            return (moment - self.start) / (self.end - self.start) * length
        tail = length * self.tail_width
        head = length - tail - gap
        if moment < self.tail_start:
            return (moment - self.start) / (self.tail_start - self.start) * head
        return head + gap + (moment - self.tail_start) / (self.end - self.tail_start) * tail

    def middle(self, index: int, cells: int) -> datetime | None:
        """The moment in the middle of cell ``index``; None for the two gap cells."""
        head, tail = self.split(cells)
        if index < head:
            edge = self.tail_start or self.end
            return self.start + (edge - self.start) * ((index + 0.5) / head)
        if self.tail_start is None or index < head + 2:
            return None
        return self.tail_start + (self.end - self.tail_start) * ((index - head - 2 + 0.5) / tail)


def _bar(
    plan: BlockPlan, group: NodeGroupPlan, axis: _ChartAxis, cells: int, chars: dict[str, str]
) -> str:
    block = plan.block
    head, _ = axis.split(cells)
    bar: list[str] = []
    for index in range(cells):
        moment = axis.middle(index, cells)
        if moment is None:
            bar.append(chars["break"][index - head])
        elif moment >= block.reclaim_start:
            bar.append(chars["reclaim"])
        elif moment >= group.scale_down:
            bar.append(chars["drain"])
        else:
            bar.append(chars["work"])
    # Later markers win a shared cell: the row's own drain start over the reclaim start.
    for moment, marker in (
        (block.reclaim_start, "R"),
        (group.scale_down, "D"),
        (block.start, "S"),
        (block.end, "E"),
    ):
        bar[axis.cell(moment, cells)] = marker
    return "".join(bar)


def _axis_labels(axis: _ChartAxis, cells: int) -> str:
    line = [" "] * cells
    head, _ = axis.split(cells)
    previous = axis.start if axis.tail_start is None else axis.tail_start
    end_text = axis.end.strftime("%H:%M" if previous.date() == axis.end.date() else "%m-%d %H:%M")
    # Placed in order of importance; a label that would touch a placed one is left out.
    labels = [(0, axis.start.strftime("%m-%d %H:%M")), (cells - len(end_text), end_text)]
    if axis.tail_start is not None:
        labels.append((head + 2, axis.tail_start.strftime("%m-%d %H:%M")))
    for begin, text in labels:
        stop = begin + len(text)
        if begin < 0 or stop > cells or any(c != " " for c in line[max(begin - 1, 0) : stop + 1]):
            continue
        line[begin:stop] = text
    return "".join(line).rstrip()


def _wrap(text: str, width: int, indent: str, subsequent: str | None = None) -> list[str]:
    return textwrap.wrap(
        text,
        # At least 30 columns of text, even when the indent is long and the width small.
        width=max(width, len(indent) + 30),
        break_long_words=False,
        initial_indent=indent,
        subsequent_indent=indent if subsequent is None else subsequent,
        break_on_hyphens=False,
    )


def format_plan(plan: Plan, *, width: int = 80, unicode: bool = False) -> str:
    """The plan as a text chart, ``width`` columns wide, pure ASCII unless ``unicode``.

    A legend and the work share definition come first; then, per block, one
    bar per node group from the start (left) to the end (right), with markers
    S (start and scale-up), D (drain start), R (EC2 reclaim start) and E
    (end), and a row with N at the moment ``plan.now`` when it falls within
    the block; then the events with their exact UTC times and the work shares.
    The output depends only on the plan, the width and the character set.
    """
    chars = _UNICODE if unicode else _ASCII
    width = max(width, _MIN_BAR + _LABEL + 12)
    cells = width - (2 + _LABEL + 2) - (2 + 6)
    count = len(plan.blocks)
    source = f" from {plan.source}" if plan.source else ""
    lines = _wrap(
        f"Capacity Block plan, times in UTC: {count} block{'s' if count != 1 else ''}{source}",
        width,
        "",
        "  ",
    )
    lines += _wrap(
        "Legend: S start (node groups scale up), D drain start (scale to zero), R EC2 starts "
        "reclaiming instances, E end" + (", N now" if plan.now else "") + ". Bars: "
        f"'{chars['work']}' nodes can run work, '{chars['drain']}' draining, "
        f"'{chars['reclaim']}' EC2 reclaiming, '{chars['break']}' axis break (the block's last "
        "hours, after it, are drawn to a larger scale).",
        width,
        "",
        "  ",
    )
    lines += _wrap(WORK_SHARE_DEFINITION, width, "", "  ")
    if plan.now is not None:
        lines.append(f"Now: {format_utc(plan.now)}")
    for block_plan in plan.blocks:
        lines.append("")
        lines += _format_block(block_plan, plan.now, width, cells, chars)
    return "\n".join(lines)


def _format_block(
    plan: BlockPlan, now: datetime | None, width: int, cells: int, chars: dict[str, str]
) -> list[str]:
    block = plan.block
    kind = f"UltraServer {block.ultraserver_type}, " if block.is_ultraserver else ""
    where = [block.availability_zone]
    if plan.region:
        where.append(f"region {plan.region}")
    if plan.accounts:
        where.append(f"account{'s' if len(plan.accounts) > 1 else ''} {', '.join(plan.accounts)}")
    lines = _wrap(
        f"{block.capacity_reservation_id}: {kind}{block.instance_count} x {block.instance_type}, "
        + ", ".join(where),
        width,
        "",
        "  ",
    )
    lines += _wrap(
        f"{format_utc(block.start)} .. {format_utc(block.end)} "
        f"({format_duration(block.duration)} paid)",
        width,
        "  ",
        "    ",
    )
    axis = _ChartAxis.for_block(plan)
    pad = " " * (2 + _LABEL + 2)
    lines.append(pad + _axis_labels(axis, cells))
    for group in plan.node_groups:
        bar = _bar(plan, group, axis, cells, chars)
        lines.append(f"  {group.kind.value.ljust(_LABEL)}  {bar}  {group.work_share_text.rjust(6)}")
    if now is not None:
        phase = block.phase_at(now).value
        if block.start <= now <= block.end:
            row = [" "] * cells
            row[axis.cell(now, cells)] = "N"
            lines.append(f"  {'now'.ljust(_LABEL)}  {''.join(row).rstrip()}")
        lines.append(f"  Phase now: {phase}")
    lines.append("  Events:")
    events = plan.events
    offsets = max(len(event.offset) for event in events)
    for event in events:
        lead = f"    {format_utc(event.at)}  {event.offset.ljust(offsets)}  {event.marker}  "
        if width - len(lead) >= 30:
            lines += _wrap(event.what, width, lead, " " * len(lead))
        else:
            # Too narrow for a second column: the text goes under the time.
            lines.append(lead.rstrip())
            lines += _wrap(event.what, width, "      ")
    for group in plan.node_groups:
        lines += _wrap(
            f"Work share, {group.kind.value}: {group.work_share_text} "
            f"({format_duration(group.work_time)} of {format_duration(group.paid_time)}, "
            f"scale-down at {format_utc(group.scale_down)})",
            width,
            "  ",
            "    ",
        )
    for warning in (*plan.warnings, *(w for group in plan.node_groups for w in group.warnings)):
        lines += _wrap(f"Warning: {warning}", width, "  ", "    ")
    return lines


def format_plan_svg(plan: Plan) -> str:
    """The plan as a standalone SVG document (UTF-8 text), the same for the same plan."""
    from ._svg import render_plan

    return render_plan(plan)
