"""The controller run every 5 simulated minutes against an in-memory account.

Each scenario invokes the handler with a schedule event per tick, from a day before
the block starts until after it ends, and checks at every tick the invariants the
controller exists for: never more nodes than the block holds, none before the start,
up at the first tick at or after the start, none from the drain time on; and the
notifications sent (how many, and what they say).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from functools import cache
from typing import Any

import pytest

from capblock_constructs.controller.runtime.events import format_time
from capblock_constructs.controller.runtime.handler import handle

from .controller_fakes import (
    ACCOUNT,
    EKS_SCALE_DOWN_LEAD,
    REGION,
    STATE_PARAMETER,
    TOPIC_ARN,
    FakeAccount,
    FakeReservation,
)

TICK = timedelta(minutes=5)
RESERVATION = "cr-0a1b2c3d4e5f67890"
START = datetime(2031, 3, 1, 11, 30, tzinfo=timezone.utc)
END = datetime(2031, 3, 3, 11, 30, tzinfo=timezone.utc)
"""The simulated block: the scenarios' own input, defined here once (not the example cache's
block); every expected time below is derived from these."""
FIRST_TICK = START - timedelta(days=1)
"""The simulation runs from a day before the start; the stack is deployed then by default."""
MID_BLOCK = START + timedelta(hours=12, minutes=30)
"""When the extension is bought, or the block cancelled: while it is active, before any
reminder or drain."""
CLUSTER = "ml"
MANAGED = "Sim/GpuNodes"
SELF_MANAGED = "Sim/SelfNodes"
NODEGROUP = "GpuNodes-abc"
SELF_ASG = "Sim-SelfNodes-XYZ"
COUNT = 4
"""Each group's target; the block holds both groups' nodes."""
BLOCK_COUNT = 2 * COUNT
INSTANCE_LEAD = timedelta(minutes=40)
ULTRASERVER_LEAD = timedelta(minutes=70)


@pytest.fixture(autouse=True)
def _quiet_controller() -> Iterator[None]:
    """Thousands of runs: keep the per-group INFO lines out of the captured log."""
    logger = logging.getLogger("capblock_constructs.controller")
    level = logger.level
    logger.setLevel(logging.WARNING)
    yield
    logger.setLevel(level)


def config(*, drain_lead: timedelta, ultraserver: bool = False) -> str:
    common = {
        "reservation": RESERVATION,
        "ultraserver": ultraserver,
        "targetSize": COUNT,
        "maxSize": COUNT,
        "drainLeadSeconds": int(drain_lead.total_seconds()),
    }
    return json.dumps(
        {
            "version": 1,
            "periodSeconds": int(TICK.total_seconds()),
            "reminderSeconds": [86400, 3600],
            "topicArn": TOPIC_ARN,
            "stateParameter": STATE_PARAMETER,
            "groups": [
                {
                    "id": MANAGED,
                    "kind": "managed",
                    "clusterName": CLUSTER,
                    "nodegroupName": NODEGROUP,
                    **common,
                },
                {
                    "id": SELF_MANAGED,
                    "kind": "self-managed",
                    "autoScalingGroupName": SELF_ASG,
                    **common,
                },
            ],
        }
    )


def schedule_event(moment: datetime) -> dict[str, Any]:
    return {
        "version": "0",
        "id": f"tick-{moment:%Y%m%d%H%M}",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": ACCOUNT,
        "time": format_time(moment),
        "region": REGION,
        "resources": [f"arn:aws:events:{REGION}:{ACCOUNT}:rule/CapacityBlockController"],
        "detail": {},
    }


@dataclass(frozen=True)
class Tick:
    """What one tick saw after the handler ran."""

    at: datetime
    phases: dict[str, str]
    sizes: dict[str, int]
    running: dict[str, int]
    subjects: tuple[str, ...]
    notes: tuple[str, ...] = ()


@dataclass
class Scenario:
    """A block, its changes over time, and when the stack (groups and controller) appears."""

    name: str
    end: datetime = END
    ultraserver: bool = False
    deploy_at: datetime = FIRST_TICK
    extend_at: datetime | None = None
    extend_by: timedelta = timedelta(days=7)
    cancel_at: datetime | None = None
    launch_limit: int | None = None
    """At most this many instances launch on the block (a capacity shortfall)."""
    ticks: list[Tick] = field(default_factory=list)
    account: FakeAccount | None = None

    @property
    def drain_lead(self) -> timedelta:
        return ULTRASERVER_LEAD if self.ultraserver else INSTANCE_LEAD

    @property
    def last_end(self) -> datetime:
        return self.end + (self.extend_by if self.extend_at else timedelta(0))


def simulate(scenario: Scenario) -> Scenario:
    """Run the handler every tick from a day before the start to two hours after the end."""
    account = FakeAccount(FIRST_TICK, launch_limit=scenario.launch_limit)
    scenario.account = account
    reservation = FakeReservation(RESERVATION, START, scenario.end, BLOCK_COUNT)
    account.add_reservation(reservation)
    text = config(drain_lead=scenario.drain_lead, ultraserver=scenario.ultraserver)
    clients = account.clients()
    deployed = False

    def put(url: str, body: bytes, headers: Any) -> None:
        raise AssertionError("no custom resource request in the simulation")

    moment = FIRST_TICK
    while moment <= scenario.last_end + timedelta(hours=2):
        account.advance_to(moment)
        notes: list[str] = []
        if not deployed and moment >= scenario.deploy_at:
            # The stack creates the groups at zero (before EKS's action, which then sits at
            # the end known at creation) and the controller starts running.
            account.add_nodegroup(CLUSTER, NODEGROUP, RESERVATION, max_size=COUNT)
            account.add_asg(SELF_ASG, RESERVATION, max_size=COUNT)
            deployed = True
            notes.append("stack deployed")
        if scenario.extend_at is not None and moment == scenario.extend_at:
            reservation.end = scenario.end + scenario.extend_by
            notes.append(f"extension bought: end -> {format_time(reservation.end)}")
        if scenario.cancel_at is not None and moment == scenario.cancel_at:
            reservation.cancelled_at = moment
            notes.append("reservation cancelled")
        before = len(account.published)
        eks_asg = account.asg_of(NODEGROUP) if deployed else None
        if (
            eks_asg is not None
            and scenario.ticks
            and eks_asg.desired < scenario.ticks[-1].sizes[MANAGED]
        ):
            notes.append(f"EKS's scheduled action set {NODEGROUP} to {eks_asg.desired}")
        phases: dict[str, str] = {}
        if deployed:
            report = handle(
                schedule_event(moment),
                config_text=text,
                clients=clients,
                clock=lambda now=moment: now,
                put=put,
            )
            phases = {group["group"]: group["phase"] for group in report["groups"]}
            assert report["errors"] == []
        sizes = {
            MANAGED: account.asg_of(NODEGROUP).desired if deployed else 0,
            SELF_MANAGED: account.asg_of(SELF_ASG).desired if deployed else 0,
        }
        running = {
            MANAGED: account.in_service(NODEGROUP) if deployed else 0,
            SELF_MANAGED: account.in_service(SELF_ASG) if deployed else 0,
        }
        scenario.ticks.append(
            Tick(
                at=moment,
                phases=phases,
                sizes=sizes,
                running=running,
                subjects=tuple(p.subject for p in account.published[before:]),
                notes=tuple(notes),
            )
        )
        check_invariants(scenario, reservation, scenario.ticks[-1])
        moment += TICK
    return scenario


def check_invariants(scenario: Scenario, reservation: FakeReservation, tick: Tick) -> None:
    """What must hold after every run, whatever the scenario."""
    end = reservation.end
    drain_at = end - scenario.drain_lead
    reclaim_at = end - (timedelta(minutes=60) if scenario.ultraserver else timedelta(minutes=30))
    usable = reservation.state(tick.at) == "active"
    for group, size in tick.sizes.items():
        where = f"{scenario.name} at {format_time(tick.at)}: {group}"
        assert size <= COUNT, f"{where} has {size} > {COUNT} nodes"
        if tick.at < START:
            assert size == 0, f"{where} rose before the start"
        if tick.at >= drain_at:
            assert size == 0, f"{where} is {size} at/after the drain time {format_time(drain_at)}"
        if tick.at >= reclaim_at:
            assert not scenario_instances(scenario, group), f"{where} has nodes when EC2 reclaims"
        if usable and START <= tick.at < drain_at and tick.at >= scenario.deploy_at:
            # Up at the first tick at or after the start (or the deploy), and every tick after.
            assert size == COUNT, f"{where} is {size}, not {COUNT}, while the block is active"


def scenario_instances(scenario: Scenario, group: str) -> int:
    """Instances in any state (Pending too) in the group's Auto Scaling group."""
    assert scenario.account is not None
    name = NODEGROUP if group == MANAGED else SELF_ASG
    return len(scenario.account.asg_of(name).instances) if name in _deployed(scenario) else 0


def _deployed(scenario: Scenario) -> set[str]:
    assert scenario.account is not None
    return {ng.name for ng in scenario.account.nodegroups.values()} | set(scenario.account.asgs)


def subjects(scenario: Scenario) -> list[str]:
    return [subject for tick in scenario.ticks for subject in tick.subjects]


def at(scenario: Scenario, subject_part: str) -> list[str]:
    """The tick times of the notifications whose subject contains ``subject_part``."""
    return [
        format_time(tick.at) for tick in scenario.ticks for s in tick.subjects if subject_part in s
    ]


def render_timeline(scenario: Scenario) -> str:
    """The scenario as text: every tick at which a phase, a size or the running count changed,
    or a notification went out, plus the first and last ticks."""
    groups = [MANAGED, SELF_MANAGED]
    width = max(len(g) for g in groups) + 2
    header = f"{'time (UTC)':<22}{'phase':<10}" + "".join(f"{g:<{width}}" for g in groups)
    lines = [header + "events", "-" * (len(header) + 6)]
    previous: Tick | None = None
    for index, tick in enumerate(scenario.ticks):
        changed = (
            previous is None
            or index == len(scenario.ticks) - 1
            or tick.phases != previous.phases
            or tick.sizes != previous.sizes
            or tick.running != previous.running
            or tick.subjects
            or tick.notes
        )
        previous = tick
        if not changed:
            continue
        phase = tick.phases.get(MANAGED, "-")
        cells = "".join(f"{f'{tick.sizes[g]} ({tick.running[g]} up)':<{width}}" for g in groups)
        events = [*tick.notes, *(f"SNS: {s}" for s in tick.subjects)]
        lines.append(
            f"{format_time(tick.at):<22}{phase:<10}{cells}{events[0] if events else ''}".rstrip()
        )
        lines.extend(f"{'':<{22 + 10 + width * len(groups)}}{e}" for e in events[1:])
    lines.append("Group columns: desired size (InService instances) after the tick's run.")
    return "\n".join(lines)


def extension_timeline() -> str:
    """The extension case's timeline, ready to paste into a note."""
    return render_timeline(extension_run())


@cache
def extension_run() -> Scenario:
    """The extension case (a 2-day block extended by 7 days on its second day), run once."""
    return simulate(Scenario(name="extension", extend_at=MID_BLOCK))


# ------------------------------------------------------------------------------- scenarios


def test_plain_block() -> None:
    scenario = simulate(Scenario(name="plain"))
    assert at(scenario, "scaled up") == [format_time(START)] * 2
    assert at(scenario, "ends in 1 day") == [format_time(END - timedelta(days=1))]
    assert at(scenario, "ends in 1 hour") == [format_time(END - timedelta(hours=1))]
    assert at(scenario, "draining") == [format_time(END - INSTANCE_LEAD)] * 2
    assert at(scenario, "has expired") == [format_time(END)]
    assert len(subjects(scenario)) == 7
    assert subjects(scenario)[:2] == [
        f"Capacity Block {RESERVATION}: {MANAGED} scaled up 0 -> {COUNT}",
        f"Capacity Block {RESERVATION}: {SELF_MANAGED} scaled up 0 -> {COUNT}",
    ]
    assert scenario.account is not None
    drained = [p.message for p in scenario.account.published if "draining" in p.subject]
    assert f"EKS node group {CLUSTER}/{NODEGROUP}" in drained[0]
    assert f"Auto Scaling group {SELF_ASG}" in drained[1]
    # The self-managed group's MaxSize follows the phase: 0 again once drained.
    assert scenario.account.asgs[SELF_ASG].max_size == 0


def _stale_eks_action_undone() -> datetime:
    """When the extension case brings the managed group back up after EKS's stale action.

    EKS's action still aims at the old end - 40 min; the account fires it at the first tick
    after that (one due at exactly a tick loses to the controller's run), and that tick's run
    sets the group back to its size for the new end.
    """
    return END - EKS_SCALE_DOWN_LEAD + TICK


def test_extension_moves_the_drain_and_is_notified_once() -> None:
    scenario = extension_run()
    new_end = scenario.last_end
    assert new_end > END
    assert at(scenario, "end moved") == [format_time(MID_BLOCK)]
    assert at(scenario, "EKS scale-down") == [format_time(MID_BLOCK)]
    # The stale EKS action at the old end - 40 min drained the managed group; the next run
    # brought it back, and the groups drain for the new end.
    assert at(scenario, f"{MANAGED} scaled up") == [
        format_time(START),
        format_time(_stale_eks_action_undone()),
    ]
    assert at(scenario, "draining") == [format_time(new_end - INSTANCE_LEAD)] * 2
    assert at(scenario, "ends in 1 day") == [format_time(new_end - timedelta(days=1))]
    assert at(scenario, "ends in 1 hour") == [format_time(new_end - timedelta(hours=1))]
    assert at(scenario, "has expired") == [format_time(new_end)]
    assert len(subjects(scenario)) == 10
    assert scenario.account is not None
    moved = next(p.message for p in scenario.account.published if "end moved" in p.subject)
    assert f"from {format_time(END)} to {format_time(new_end)}" in moved
    assert f"{MANAGED} drains at {format_time(new_end - INSTANCE_LEAD)}" in moved
    # Past the old drain time the self-managed group never dipped.
    old_drain = END - INSTANCE_LEAD
    assert all(
        t.sizes[SELF_MANAGED] == COUNT for t in scenario.ticks if START <= t.at <= old_drain + TICK
    )


def test_deploy_hours_after_the_start_comes_up_at_once() -> None:
    deploy = START + timedelta(hours=5)
    scenario = simulate(Scenario(name="late deploy", deploy_at=deploy))
    assert at(scenario, "scaled up") == [format_time(deploy)] * 2
    assert len(subjects(scenario)) == 7


def test_deploy_after_the_drain_time_never_rises() -> None:
    deploy = END - timedelta(minutes=20)
    scenario = simulate(Scenario(name="deploy after drain", deploy_at=deploy))
    assert all(tick.sizes == {MANAGED: 0, SELF_MANAGED: 0} for tick in scenario.ticks)
    assert subjects(scenario) == [f"Capacity Block {RESERVATION} has expired"]


def test_cancellation_mid_block() -> None:
    scenario = simulate(Scenario(name="cancelled", cancel_at=MID_BLOCK))
    assert at(scenario, "is cancelled") == [format_time(MID_BLOCK)]
    assert at(scenario, f"scaled down {COUNT} -> 0") == [format_time(MID_BLOCK)] * 2
    assert all(
        t.sizes == {MANAGED: 0, SELF_MANAGED: 0} for t in scenario.ticks if t.at >= MID_BLOCK
    )
    # No reminder for a cancelled block, and "cancelled" is said once.
    assert len(subjects(scenario)) == 5


def test_ultraserver_block_drains_70_minutes_before_the_end() -> None:
    scenario = simulate(Scenario(name="ultraserver", ultraserver=True))
    assert at(scenario, "draining") == [format_time(END - ULTRASERVER_LEAD)] * 2
    # The 1-hour reminder falls after the drain: nothing is left to remind about.
    assert at(scenario, "ends in 1 hour") == []
    assert at(scenario, "ends in 1 day") == [format_time(END - timedelta(days=1))]
    assert len(subjects(scenario)) == 6


def test_capacity_shortfall_is_reported_once_per_setting() -> None:
    # Only two instances launch on the whole block: the managed group, sized first, gets both.
    limit = 2
    scenario = simulate(Scenario(name="shortfall", launch_limit=limit))
    managed_up = min(limit, COUNT)
    self_managed_up = limit - managed_up
    # Reported max(5 periods, 10 minutes) after the size was set at the start.
    reported = START + max(5 * TICK, timedelta(minutes=10))
    assert at(scenario, f"of {COUNT} nodes") == [format_time(reported)] * 2
    assert sorted(s for s in subjects(scenario) if f"of {COUNT} nodes" in s) == [
        f"Capacity Block {RESERVATION}: {MANAGED} has {managed_up} of {COUNT} nodes",
        f"Capacity Block {RESERVATION}: {SELF_MANAGED} has {self_managed_up} of {COUNT} nodes",
    ]


def _timeline_row(moment: datetime, phase: str, managed_cell: str = "") -> str:
    """The start of a timeline line: time, phase and the managed group's column."""
    return f"{format_time(moment):<22}{phase:<10}{managed_cell}".rstrip()


def test_extension_timeline_text() -> None:
    text = extension_timeline()
    lines = text.splitlines()
    assert lines[0].startswith("time (UTC)")
    new_end = extension_run().last_end
    full, empty = f"{COUNT} ({COUNT} up)", f"{COUNT} (0 up)"
    expected = [
        _timeline_row(FIRST_TICK, "waiting", "0 (0 up)"),
        _timeline_row(START, "running", empty),
        # Launched instances come InService one tick after they were asked for.
        _timeline_row(START + TICK, "running", full),
        _timeline_row(MID_BLOCK, "running", full),
        _timeline_row(_stale_eks_action_undone(), "running", empty),
        f"extension bought: end -> {format_time(new_end)}",
        f"SNS: Capacity Block {RESERVATION}: end moved to {new_end:%Y-%m-%d %H:%M} UTC",
        _timeline_row(new_end - INSTANCE_LEAD, "draining", "0 (0 up)"),
        _timeline_row(new_end, "ended"),
    ]
    for part in expected:
        assert any(part in line for line in lines), f"{part!r} not in:\n{text}"
    assert len(lines) < 60
