"""The UTC timeline and plan of Capacity Blocks, as plain data (pure functions).

This is the model only: ``timeline_text`` draws it as text and
``timeline_svg`` as SVG; both import this module, which imports neither. The
times come from the controller's phase rule
(:mod:`capblock_constructs.controller.runtime.phase`), the one definition the
node-group constructs and the controller use too.
"""

from __future__ import annotations

import contextlib
import enum
import json
from collections.abc import Mapping, Sequence
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
from ._ids import check_reservation_id
from ._problems import Problems
from ._reservation_lookup import RESERVATION_KIND
from ._time import NOW_CONTEXT_KEY, format_duration, format_utc, pinned_now
from .capacity_block import CapacityBlock
from .controller.runtime import phase
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
    "plan",
    "plan_block",
    "timeline",
]

_CONTROLLER = "the capblock-constructs controller"
"""How events name the run-time controller that sizes the node groups."""


@dataclass(frozen=True, kw_only=True)
class TimelineEvent:
    """One moment in the life of a Capacity Block."""

    at: datetime
    """When it happens, in UTC."""
    offset: str
    """Where it sits relative to the block, for example ``end - 30 min``."""
    what: str
    """What happens then."""


def _before_end(lead: timedelta) -> str:
    return f"end - {format_duration(lead)}"


def _eks_scale_down_text(block: CapacityBlock, drain_lead: timedelta) -> str:
    """What EKS's own scale-down of managed node groups does on ``block``."""
    what = (
        "EKS scales CAPACITY_BLOCK managed node groups to zero (its own scheduled action: a "
        f"second line behind {_CONTROLLER})"
    )
    if block.eks_managed_scale_down > block.reclaim_start:
        what += (
            "; this comes after EC2 starts reclaiming UltraServer instances, so the controller "
            f"drains managed node groups before it, at {_before_end(drain_lead)}"
        )
    return what


def timeline(block: CapacityBlock) -> list[TimelineEvent]:
    """The block's events in time order: start, scale-downs, EC2 reclaim start, end.

    The scale-down is the controller's default for both kinds of node group
    (:func:`~capblock_constructs.controller.runtime.phase.default_drain_lead`),
    followed by EKS's own scale-down of managed node groups.
    """
    lead = phase.default_drain_lead(ultraserver=block.is_ultraserver)
    events = [
        TimelineEvent(
            at=block.start,
            offset="start",
            what=f"the reservation becomes active and {_CONTROLLER} scales node groups up "
            "(EKS does not scale node groups up by itself)",
        ),
        TimelineEvent(
            at=phase.drain_time(block.end, lead),
            offset=_before_end(lead),
            what=f"{_CONTROLLER} scales node groups to zero by default (managed and "
            "self-managed): nodes start draining",
        ),
        TimelineEvent(
            at=block.eks_managed_scale_down,
            offset=_before_end(phase.EKS_MANAGED_SCALE_DOWN_LEAD),
            what=_eks_scale_down_text(block, lead),
        ),
        TimelineEvent(
            at=block.reclaim_start,
            offset=_before_end(block.reclaim_lead),
            what="EC2 starts terminating the block's instances",
        ),
        TimelineEvent(at=block.end, offset="end", what="the reservation ends"),
    ]
    # sorted() is stable: events at the same moment keep the order above.
    return sorted(events, key=lambda event: event.at)


# -- plan: when nodes can run work on one or more blocks -------------------------------------

WORK_SHARE_DEFINITION = (
    "Work share = (scale-down time - start) / (end - start): the share of the paid block time "
    "during which nodes can run work."
)
"""How :attr:`NodeGroupPlan.work_share` is defined; every printed plan states it."""

_TICK = timedelta(microseconds=1)


def _add_error(problems: Problems, error: CapacityBlockError) -> None:
    """Add each problem of ``error``, led by its subject, so that none is nested."""
    for problem in error.problems:
        problems.add(f"{error.subject}: {problem}" if error.subject else problem)


class NodeGroupKind(enum.Enum):
    """Which kind of node group a plan describes; it sets the shortest drain lead."""

    MANAGED = "managed"
    """An EKS managed node group: the controller scales it to zero ``drain_lead`` before the
    end, no later than EKS's own action 40 minutes before the end (a second line)."""
    SELF_MANAGED = "self-managed"
    """A self-managed Auto Scaling group: the controller scales it to zero ``drain_lead``
    before the end, and its termination hook holds each instance for at most a heartbeat."""

    @property
    def group_kind(self) -> phase.GroupKind:
        """The same kind as the controller's phase rule names it."""
        return phase.GroupKind(self.value)


@dataclass(frozen=True, kw_only=True)
class NodeGroupPlan:
    """When one kind of node group runs on a block, and how much of the paid time it can work."""

    kind: NodeGroupKind
    """The kind of node group."""
    scale_up: datetime
    """When the controller scales the node group up: the block's start, in UTC."""
    scale_down: datetime
    """When the controller scales the node group to zero and its nodes start draining, in UTC."""
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
    """The chart letter: S start, D drain start, K EKS's own scale-down of managed node
    groups, R EC2 reclaim start, E end."""
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
    def eks_scale_down(self) -> datetime | None:
        """When EKS's own action scales managed node groups to zero (40 minutes before the
        end), or None when no managed node group is planned."""
        if any(group.kind is NodeGroupKind.MANAGED for group in self.node_groups):
            return self.block.eks_managed_scale_down
        return None

    @property
    def events(self) -> list[PlanEvent]:
        """The block's events in time order: start, drain starts, EKS's own scale-down of
        managed node groups, EC2 reclaim start, end."""
        block = self.block
        events = [
            PlanEvent(
                at=block.start,
                offset="start",
                marker="S",
                what=f"the block starts and {_CONTROLLER} scales the node groups up (EKS does "
                "not scale node groups up by itself)",
            )
        ]
        for group in self.node_groups:
            events.append(
                PlanEvent(
                    at=group.scale_down,
                    offset=_before_end(group.drain_lead),
                    marker="D",
                    what=f"drain start, {group.kind.value}: {_CONTROLLER} scales the node group "
                    "to zero",
                    node_group=group.kind,
                )
            )
        managed = [group for group in self.node_groups if group.kind is NodeGroupKind.MANAGED]
        if managed:
            events.append(
                PlanEvent(
                    at=block.eks_managed_scale_down,
                    offset=_before_end(phase.EKS_MANAGED_SCALE_DOWN_LEAD),
                    marker="K",
                    what=_eks_scale_down_text(block, managed[0].drain_lead),
                    node_group=NodeGroupKind.MANAGED,
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


def _period_problem(period: timedelta) -> str | None:
    """Why ``period`` cannot be the controller's period, or None when it can."""
    low, high = phase.MIN_CONTROLLER_PERIOD, phase.MAX_CONTROLLER_PERIOD
    if low <= period <= high:
        return None
    return (
        f"controller period {format_duration(period)} is outside {format_duration(low)} to "
        f"{format_duration(high)}; pass a period in that range (the default is "
        f"{format_duration(phase.DEFAULT_CONTROLLER_PERIOD)})."
    )


def _earliest_drain_lead(
    kind: NodeGroupKind, *, lead: timedelta, ultraserver: bool, period: timedelta
) -> timedelta:
    """The shortest drain lead ``kind`` takes on a block, as the node-group constructs check it.

    A self-managed group's termination hook gets the heartbeat that fits ``lead``
    (:func:`~capblock_constructs.controller.runtime.phase.default_heartbeat`).
    """
    heartbeat = None
    if kind is NodeGroupKind.SELF_MANAGED:
        heartbeat = phase.default_heartbeat(drain_lead=lead, ultraserver=ultraserver, period=period)
    return phase.earliest_drain_lead(
        kind=kind.group_kind, ultraserver=ultraserver, period=period, heartbeat=heartbeat
    )


def _short_lead_problem(
    block: CapacityBlock,
    kind: NodeGroupKind,
    *,
    lead: timedelta,
    earliest: timedelta,
    period: timedelta,
) -> str:
    """Why ``lead`` is too short for ``kind`` on ``block``, and the fix."""
    lateness = phase.worst_case_lateness(period)
    default = phase.default_drain_lead(ultraserver=block.is_ultraserver)
    eks = phase.EKS_MANAGED_SCALE_DOWN_LEAD
    if kind is NodeGroupKind.MANAGED and earliest == default:
        why = (
            f"a managed node group must scale to zero at least {format_duration(default)} "
            "before the end (the default), so that the controller acts no later than EKS's own "
            f"scale-down at {_before_end(eks)}"
        )
        if block.is_ultraserver:
            why += (
                f" and leaves {format_duration(phase.DEFAULT_DRAIN_MARGIN)} of drain before EC2 "
                "starts reclaiming this UltraServer block's instances at "
                f"{_before_end(block.reclaim_lead)}"
            )
    else:
        why = (
            f"EC2 starts reclaiming the instances {format_duration(block.reclaim_lead)} before "
            f"the end and the controller may act up to {format_duration(lateness)} late (a "
            f"{format_duration(period)} period plus "
            f"{format_duration(phase.CONTROLLER_INVOCATION_LATENCY)} for the run itself)"
        )
        if kind is NodeGroupKind.SELF_MANAGED:
            why += (
                ", and the termination hook holds an instance for its heartbeat, at least "
                f"{format_duration(phase.MIN_HEARTBEAT)}"
            )
    return (
        f"drain lead {format_duration(lead)} is too short for a {kind.value} node group: {why}. "
        f"Use a drain lead of at least {format_duration(earliest)}, or leave it out for the "
        f"default {format_duration(default)}."
    )


def plan_block(
    block: CapacityBlock,
    *,
    node_group: NodeGroupKind | None = None,
    drain_lead: timedelta | None = None,
    period: timedelta | None = None,
    region: str | None = None,
    accounts: Sequence[str] = (),
) -> BlockPlan:
    """Plan one block: when its node groups scale up and down, and their work share.

    The times are the controller's: it scales every node group up at the start
    and to zero at
    :func:`~capblock_constructs.controller.runtime.phase.drain_time`
    (``end - drain_lead``); EKS's own scale-down of managed node groups 40
    minutes before the end is a second event.

    :param node_group: Which node group kind to plan. Defaults to both, managed first.
    :param drain_lead: How long before the end the node groups scale to zero.
        Defaults to the controller's default for the block (40 minutes, 70 for
        UltraServer blocks), for both kinds. It must be shorter than the block
        and at least
        :func:`~capblock_constructs.controller.runtime.phase.earliest_drain_lead`
        for each kind planned: for a managed node group the default itself (it
        may not drain after EKS's own action), for a self-managed one EC2's
        reclaim lead plus the controller's lateness plus the termination hook's
        heartbeat (32 minutes 30 seconds on an instance block with a
        one-minute period).
    :param period: How often the controller runs, from 1 to 5 minutes; it sets
        how late the controller may act. Defaults to 1 minute
        (:data:`~capblock_constructs.controller.runtime.phase.DEFAULT_CONTROLLER_PERIOD`).
    :param region: The region to show with the block.
    :param accounts: The accounts to show with the block.
    :raises CapacityBlockError: listing every problem with ``drain_lead`` and ``period``.
    """
    problems = Problems(f"Capacity Block {block.capacity_reservation_id}")
    period = phase.DEFAULT_CONTROLLER_PERIOD if period is None else period
    ultraserver = block.is_ultraserver
    lead = phase.default_drain_lead(ultraserver=ultraserver) if drain_lead is None else drain_lead
    kinds = [node_group] if node_group else list(NodeGroupKind)
    period_problem = _period_problem(period)
    if period_problem:
        problems.add(period_problem)
        problems.raise_if_any()
    if lead >= block.duration:
        problems.add(
            f"drain lead {format_duration(lead)} is not shorter than the block "
            f"({format_duration(block.duration)}), so the scale-down would come at or before "
            "the start; use a drain lead of a few tens of minutes."
        )
    for kind in kinds:
        earliest = _earliest_drain_lead(kind, lead=lead, ultraserver=ultraserver, period=period)
        if lead < earliest:
            problems.add(
                _short_lead_problem(block, kind, lead=lead, earliest=earliest, period=period)
            )
    problems.raise_if_any()

    scale_down = phase.drain_time(block.end, lead)
    groups = []
    for kind in kinds:
        warnings: tuple[str, ...] = ()
        if kind is NodeGroupKind.MANAGED and block.eks_managed_scale_down > block.reclaim_start:
            warnings = (
                f"EKS's own scale-down at {format_utc(block.eks_managed_scale_down)} comes "
                "after EC2 starts reclaiming this UltraServer block's instances at "
                f"{format_utc(block.reclaim_start)}, so it does not protect the nodes: "
                f"{_CONTROLLER} scales the group to zero at {format_utc(scale_down)} "
                f"({_before_end(lead)}). A managed node group without the controller would "
                "lose nodes before they drain.",
            )
        groups.append(
            NodeGroupPlan(
                kind=kind,
                scale_up=block.start,
                scale_down=scale_down,
                drain_lead=lead,
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
    period: timedelta | None = None,
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
    :param period: The controller's period; see :func:`plan_block`. Defaults to 1 minute.
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
    if period is not None:
        # Said once here rather than once per block by plan_block.
        period_problem = _period_problem(period)
        if period_problem:
            problems.add(period_problem)
    wanted: list[str] = []
    for reservation_id in capacity_reservation_ids:
        try:
            wanted.append(check_reservation_id(reservation_id))
        except CapacityBlockError as error:
            _add_error(problems, error)
    problems.raise_if_any()

    data = read_context_file(path)
    entries = _cache_entries(data)
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
                _plan_entry_group(
                    entry_group, node_group=node_group, drain_lead=drain_lead, period=period
                )
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


def _cache_entries(data: Mapping[str, Any]) -> list[_Entry]:
    """The Capacity Block entries of the cache, by key; their values not yet parsed."""
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


def cached_blocks(data: Mapping[str, Any], problems: Problems) -> list[tuple[str, CapacityBlock]]:
    """``(reservation ID, block)`` of every cached Capacity Block entry in ``data``, by key.

    ``data`` is a parsed cdk.context.json (or an App's context); other keys are
    ignored. Each entry whose value cannot be read as a block is added to ``problems``.
    """
    return [
        (entry.reservation_id, entry.block)
        for entry in _parsed(_cache_entries(data), problems)
        if entry.block is not None
    ]


def _parsed(entries: list[_Entry], problems: Problems) -> list[_Entry]:
    """The entries whose values read as blocks, with the block; the others go to problems."""
    parsed = []
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
        parsed.append(
            _Entry(
                key=entry.key,
                account=entry.account,
                region=entry.region,
                reservation_id=entry.reservation_id,
                value=value,
                block=block,
            )
        )
    return parsed


def _group_entries(entries: list[_Entry], problems: Problems) -> list[list[_Entry]]:
    """Entries parsed into blocks, grouped by reservation and region."""
    groups: dict[tuple[str, str], list[_Entry]] = {}
    for entry in _parsed(entries, problems):
        groups.setdefault((entry.region, entry.reservation_id), []).append(entry)
    return list(groups.values())


def _plan_entry_group(
    entries: list[_Entry],
    *,
    node_group: NodeGroupKind | None,
    drain_lead: timedelta | None,
    period: timedelta | None,
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
            period=period,
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
        pinned = pinned_now(value, source=f" in {source}", hint=", or pass --now")
        if pinned is not None:
            return pinned
    return None
