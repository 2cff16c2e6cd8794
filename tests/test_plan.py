"""`capblock plan` and `timeline.plan`: times from the AWS rules, work share, chart, SVG, errors.

Expected times come from the rules, not from the code: EC2 starts reclaiming
an instance block 30 minutes before its end (60 for UltraServer blocks), EKS
scales a CAPACITY_BLOCK managed node group to zero 40 minutes before the end,
and the controller scales both kinds of node group to zero 40 minutes before
the end by default (70 for UltraServers: 10 minutes of drain before EC2
reclaims). The controller may act up to its period plus one minute late, and
a self-managed group's termination hook holds an instance for at least 30 s,
so a self-managed drain lead must be at least 30 + 2 + 0.5 minutes on an
instance block with a one-minute period; a managed one at least the default.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

import capblock_constructs
from capblock_constructs import _context_cache
from capblock_constructs.cli import main
from capblock_constructs.controller.runtime import phase
from capblock_constructs.errors import CapacityBlockError
from capblock_constructs.timeline import (
    WORK_SHARE_DEFINITION,
    NodeGroupKind,
    Plan,
    plan,
    plan_block,
)
from capblock_constructs.timeline_svg import format_plan_svg
from capblock_constructs.timeline_text import format_plan

from .support import ACCOUNT, REGION, RESERVATION_ID, block

UTC = timezone.utc
END = datetime(2027, 3, 15, 11, 30, tzinfo=UTC)
ULTRA_ID = "cr-0fedcba9876543210"
OTHER_ACCOUNT = "999988887777"
SVG_NS = "{http://www.w3.org/2000/svg}"


def ultra(**overrides: Any) -> Any:
    fields: dict[str, Any] = {
        "capacity_reservation_id": ULTRA_ID,
        "instance_type": "p6e-gb200.36xlarge",
        "availability_zone": "us-east-1-dfw-2a",
        "availability_zone_id": None,
        "instance_count": 18,
        "ultraserver_type": "u-p6e-gb200x72",
        "start": datetime(2027, 3, 14, 11, 30, tzinfo=UTC),
        "end": END,
    }
    fields.update(overrides)
    return block(**fields)


def one_day(**overrides: Any) -> Any:
    return block(start=datetime(2027, 3, 14, 11, 30, tzinfo=UTC), **overrides)


def key(reservation_id: str = RESERVATION_ID, account: str = ACCOUNT, region: str = REGION) -> str:
    return (
        f"capblock-constructs:capacity-block:account={account}:region={region}:"
        f"capacityReservationId={reservation_id}"
    )


def write_cache(directory: Path, entries: dict[str, Any]) -> Path:
    path = directory / "cdk.context.json"
    path.write_text(json.dumps(entries, indent=2, sort_keys=True))
    return path


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A cdk.context.json in the working directory with an instance and an UltraServer block."""
    monkeypatch.chdir(tmp_path)
    return write_cache(
        tmp_path,
        {
            "availability-zones:account=123456789012:region=us-east-2": ["us-east-2a"],
            key(): block().to_context_value(),
            key(ULTRA_ID, region="us-east-1"): ultra().to_context_value(),
        },
    )


def by_kind(planned: Any) -> dict[NodeGroupKind, Any]:
    return {group.kind: group for group in planned.node_groups}


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# -- times and shares from the rules ---------------------------------------------------------


MIN = timedelta(minutes=1)


def test_instance_block_times_follow_the_rules() -> None:
    planned = plan_block(block())
    groups = by_kind(planned)

    # 2027-03-15T11:30Z end: EC2 reclaims at 11:00 (end - 30), both kinds drain at 10:50.
    assert planned.block.reclaim_start == datetime(2027, 3, 15, 11, 0, tzinfo=UTC)
    for kind in NodeGroupKind:
        group = groups[kind]
        assert group.scale_up == datetime(2027, 3, 1, 11, 30, tzinfo=UTC)
        assert group.scale_down == datetime(2027, 3, 15, 10, 50, tzinfo=UTC)
        assert group.drain_lead == timedelta(minutes=40)
        assert group.warnings == ()
    # EKS's own action on managed groups comes at the same moment, end - 40 min.
    assert planned.eks_scale_down == datetime(2027, 3, 15, 10, 50, tzinfo=UTC)


def test_ultraserver_block_times_follow_the_rules() -> None:
    planned = plan_block(ultra())
    groups = by_kind(planned)

    # EC2 reclaims UltraServer blocks at end - 60 min; the controller drains at end - 70 min.
    assert planned.block.reclaim_start == datetime(2027, 3, 15, 10, 30, tzinfo=UTC)
    for kind in NodeGroupKind:
        assert groups[kind].scale_down == datetime(2027, 3, 15, 10, 20, tzinfo=UTC)
    assert groups[NodeGroupKind.SELF_MANAGED].warnings == ()
    # EKS's own action stays at end - 40 min: after EC2 starts reclaiming.
    assert planned.eks_scale_down == datetime(2027, 3, 15, 10, 50, tzinfo=UTC)
    (warning,) = groups[NodeGroupKind.MANAGED].warnings
    assert "2027-03-15T10:50:00Z comes after EC2 starts reclaiming" in warning
    assert "2027-03-15T10:30:00Z" in warning
    assert "controller scales the group to zero at 2027-03-15T10:20:00Z (end - 1 h 10 min)" in (
        " ".join(warning.split())
    )


def test_self_managed_plan_has_no_eks_event() -> None:
    planned = plan_block(block(), node_group=NodeGroupKind.SELF_MANAGED)

    assert planned.eks_scale_down is None
    assert "K" not in [event.marker for event in planned.events]


@pytest.mark.parametrize("planned_block", [block(), ultra()], ids=["instances", "ultraserver"])
def test_the_plan_drains_when_the_controllers_rule_does(planned_block: Any) -> None:
    # The plan, the constructs and the controller share one rule: phase.decide
    # switches to DRAINING exactly at the plan's scale-down.
    facts = phase.ReservationFacts(
        state="active",
        start=planned_block.start,
        end=planned_block.end,
        instance_count=planned_block.instance_count,
    )
    for group in plan_block(planned_block).node_groups:
        before = phase.decide(
            facts,
            moment=group.scale_down - timedelta(seconds=1),
            drain_lead=group.drain_lead,
            target_size=2,
        )
        at = phase.decide(
            facts, moment=group.scale_down, drain_lead=group.drain_lead, target_size=2
        )
        assert (before.phase, before.size) == (phase.Phase.RUNNING, 2)
        assert (at.phase, at.size) == (phase.Phase.DRAINING, 0)
        assert at.drain_at == group.scale_down


def test_instance_block_events_are_in_time_order_with_their_markers() -> None:
    events = plan_block(block()).events

    assert [(event.offset, event.marker, event.node_group) for event in events] == [
        ("start", "S", None),
        ("end - 40 min", "D", NodeGroupKind.MANAGED),
        ("end - 40 min", "D", NodeGroupKind.SELF_MANAGED),
        ("end - 40 min", "K", NodeGroupKind.MANAGED),  # EKS's own action, the second line
        ("end - 30 min", "R", None),
        ("end", "E", None),
    ]
    start, drain, _, eks, *_ = events
    assert "controller scales the node groups up" in start.what
    assert "EKS does not scale node groups up by itself" in start.what
    assert "capblock-constructs controller scales the node group to zero" in drain.what
    assert "EKS scales CAPACITY_BLOCK managed node groups to zero" in eks.what


def test_ultraserver_events_put_eks_after_ec2s_reclaim_start() -> None:
    events = plan_block(ultra()).events

    assert [event.at for event in events] == sorted(event.at for event in events)
    assert [(event.offset, event.marker) for event in events] == [
        ("start", "S"),
        ("end - 1 h 10 min", "D"),  # managed: the controller
        ("end - 1 h 10 min", "D"),  # self-managed: the controller
        ("end - 1 h", "R"),
        ("end - 40 min", "K"),  # EKS's own action, after EC2 starts reclaiming
        ("end", "E"),
    ]
    eks = events[4].what
    assert "after EC2 starts reclaiming" in eks
    assert "drains managed node groups before it, at end - 1 h 10 min" in eks


@pytest.mark.parametrize(
    ("planned_block", "node_group", "drain_lead", "share"),
    [
        # 14 days = 20160 min; 40 min lead: 20120 / 20160 = 99.80 %.
        (block(), NodeGroupKind.MANAGED, None, "99.8%"),
        # 1 day = 1440 min; 40 min lead: 1400 / 1440 = 97.22 %.
        (one_day(), NodeGroupKind.MANAGED, None, "97.2%"),
        # UltraServer default lead 70 min, both kinds: 1370 / 1440 = 95.14 %.
        (ultra(), NodeGroupKind.SELF_MANAGED, None, "95.1%"),
        (ultra(), NodeGroupKind.MANAGED, None, "95.1%"),
        # 90 min lead: 1350 / 1440 = 93.75 % exactly, rounded half up.
        (one_day(), NodeGroupKind.SELF_MANAGED, timedelta(minutes=90), "93.8%"),
        (one_day(), NodeGroupKind.MANAGED, timedelta(minutes=90), "93.8%"),
    ],
)
def test_work_share_is_scale_down_minus_start_over_the_paid_time(
    planned_block: Any, node_group: NodeGroupKind, drain_lead: timedelta | None, share: str
) -> None:
    (group,) = plan_block(planned_block, node_group=node_group, drain_lead=drain_lead).node_groups

    assert group.work_share_text == share
    assert group.work_time == group.scale_down - planned_block.start
    assert group.work_share == pytest.approx(
        (group.scale_down - planned_block.start) / (planned_block.end - planned_block.start)
    )


def test_drain_lead_applies_to_both_kinds() -> None:
    planned = plan_block(block(), drain_lead=timedelta(minutes=60))
    groups = by_kind(planned)

    for kind in NodeGroupKind:
        assert groups[kind].scale_down == datetime(2027, 3, 15, 10, 30, tzinfo=UTC)
    # EKS's own action does not move with the controller's drain lead.
    assert planned.eks_scale_down == datetime(2027, 3, 15, 10, 50, tzinfo=UTC)


@pytest.mark.parametrize(
    ("planned_block", "lead", "period", "earliest"),
    [
        # 30 min reclaim + 2 min lateness (1 min period + 1 min) + 30 s heartbeat.
        (block(), timedelta(minutes=31), None, "32 min 30 s"),
        (block(), timedelta(minutes=32, seconds=29), MIN, "32 min 30 s"),
        # A 5 min period: 30 + 6 min + 30 s.
        (block(), timedelta(minutes=36), 5 * MIN, "36 min 30 s"),
        # UltraServer: 60 min reclaim + 2 min + 30 s.
        (ultra(), timedelta(minutes=60), None, "1 h 2 min 30 s"),
    ],
)
def test_fails_for_a_self_managed_drain_lead_that_leaves_no_drain_time(
    planned_block: Any, lead: timedelta, period: timedelta | None, earliest: str
) -> None:
    with pytest.raises(CapacityBlockError) as caught:
        plan_block(
            planned_block, node_group=NodeGroupKind.SELF_MANAGED, drain_lead=lead, period=period
        )

    (problem,) = caught.value.problems
    message = " ".join(str(caught.value).split())
    assert caught.value.subject == f"Capacity Block {planned_block.capacity_reservation_id}"
    assert "too short for a self-managed node group" in problem
    assert f"at least {earliest}" in message
    default = "1 h 10 min" if planned_block.is_ultraserver else "40 min"
    assert f"leave it out for the default {default}" in message


@pytest.mark.parametrize(
    ("lead", "period"),
    [
        (timedelta(minutes=32, seconds=30), None),  # exactly 30 + 2 min + 30 s
        (timedelta(minutes=36, seconds=30), 5 * MIN),
    ],
)
def test_the_shortest_self_managed_drain_lead_is_accepted(
    lead: timedelta, period: timedelta | None
) -> None:
    (group,) = plan_block(
        block(), node_group=NodeGroupKind.SELF_MANAGED, drain_lead=lead, period=period
    ).node_groups

    assert group.scale_down == END - lead


@pytest.mark.parametrize(
    ("planned_block", "lead", "earliest"),
    [
        # A managed group may not drain after EKS's own action at end - 40 min...
        (block(), timedelta(minutes=39), "40 min"),
        # ... nor, on an UltraServer block, later than 10 min before EC2 reclaims (60 + 10).
        (ultra(), timedelta(minutes=69), "1 h 10 min"),
    ],
)
def test_fails_for_a_managed_drain_lead_below_the_default(
    planned_block: Any, lead: timedelta, earliest: str
) -> None:
    with pytest.raises(CapacityBlockError) as caught:
        plan_block(planned_block, node_group=NodeGroupKind.MANAGED, drain_lead=lead)

    message = " ".join(str(caught.value).split())
    assert "too short for a managed node group" in message
    assert "EKS's own scale-down at end - 40 min" in message
    assert f"at least {earliest}, or leave it out for the default {earliest}" in message


def test_a_managed_drain_lead_at_or_above_the_default_is_accepted() -> None:
    (at_default,) = plan_block(
        block(), node_group=NodeGroupKind.MANAGED, drain_lead=timedelta(minutes=40)
    ).node_groups
    (longer,) = plan_block(
        block(), node_group=NodeGroupKind.MANAGED, drain_lead=timedelta(minutes=50), period=5 * MIN
    ).node_groups

    assert at_default.scale_down == datetime(2027, 3, 15, 10, 50, tzinfo=UTC)
    assert longer.scale_down == datetime(2027, 3, 15, 10, 40, tzinfo=UTC)


def test_both_kinds_report_their_own_floor_at_once() -> None:
    with pytest.raises(CapacityBlockError) as caught:
        plan_block(ultra(), drain_lead=timedelta(minutes=45))

    managed, self_managed = caught.value.problems
    assert "managed node group" in managed
    assert "at least 1 h 10 min" in managed
    assert "self-managed node group" in self_managed
    assert "at least 1 h 2 min 30 s" in self_managed


def test_fails_for_a_drain_lead_as_long_as_the_block() -> None:
    with pytest.raises(CapacityBlockError, match=r"drain lead 1 day is not shorter than the block"):
        plan_block(one_day(), drain_lead=timedelta(days=1))


@pytest.mark.parametrize("period", [timedelta(0), timedelta(seconds=30), 6 * MIN])
def test_fails_for_a_period_outside_one_to_five_minutes(period: timedelta) -> None:
    with pytest.raises(CapacityBlockError) as caught:
        plan_block(block(), period=period)

    assert "is outside 1 min to 5 min" in str(caught.value)
    assert "the default is 1 min" in str(caught.value)


# -- text chart ------------------------------------------------------------------------------


def chart_rows(text: str, label: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(f"  {label} ")]


def test_chart_has_legend_definition_bars_and_events() -> None:
    text = format_plan(Plan(blocks=(plan_block(block(), region=REGION),)), width=100)

    assert text.isascii()
    assert "Legend:" in text
    assert "S start" in text
    assert "K EKS's own scale-down of managed node groups" in " ".join(text.split())
    assert "R EC2 starts" in text
    assert " ".join(WORK_SHARE_DEFINITION.split()) in " ".join(text.split())
    (managed,) = chart_rows(text, "managed")
    (self_managed,) = chart_rows(text, "self-managed")
    for row in (managed, self_managed):
        assert len(row) == 100
        assert row.endswith("99.8%")
        bar = row.split()[1]
        assert bar.startswith("S=")
        assert "//" in bar
        # Drain start, then EC2's reclaim start, then the end, left to right.
        assert bar.index("D") < bar.index("R") < bar.index("E") == len(bar) - 1
        assert "-" in bar[bar.index("D") : bar.index("R")]
        assert set(bar[bar.index("R") + 1 : -1]) == {"x"}
    # EKS's own action shares the drain start's cell; the row's drain start wins it.
    assert "K" not in managed.split()[1]
    for line in (
        "2027-03-01T11:30:00Z  start",
        "2027-03-15T10:50:00Z  end - 40 min  D",
        "2027-03-15T10:50:00Z  end - 40 min  K",
        "2027-03-15T11:00:00Z  end - 30 min  R",
        "2027-03-15T11:30:00Z  end           E",
    ):
        assert line in text
    assert "Work share, managed: 99.8% (13 days 23 h 20 min of 14 days" in text


def test_chart_shows_both_kinds_draining_before_ec2_reclaims_an_ultraserver_block() -> None:
    text = format_plan(Plan(blocks=(plan_block(ultra()),)), width=120)

    managed_bar = chart_rows(text, "managed")[0].split()[1]
    self_bar = chart_rows(text, "self-managed")[0].split()[1]
    # Both drain from end - 70 min, before EC2 reclaims at end - 60 min; EKS's own action
    # (managed row only) comes at end - 40 min, inside EC2's reclaim.
    assert self_bar.index("D") < self_bar.index("R")
    assert managed_bar.index("D") < managed_bar.index("R") < managed_bar.index("K")
    assert "K" not in self_bar
    assert managed_bar[managed_bar.index("R") + 1 : managed_bar.index("K")].strip("x") == ""
    assert chart_rows(text, "self-managed")[0].endswith("95.1%")
    assert chart_rows(text, "managed")[0].endswith("95.1%")
    assert "2027-03-15T10:50:00Z  end - 40 min      K" in text
    assert "Warning: EKS's own scale-down at 2027-03-15T10:50:00Z comes after" in text


@pytest.mark.parametrize("width", [60, 80, 132])
def test_chart_rows_fit_the_width(width: int) -> None:
    text = format_plan(Plan(blocks=(plan_block(block()),)), width=width)

    rows = chart_rows(text, "managed") + chart_rows(text, "self-managed")
    assert [len(row) for row in rows] == [width, width]
    assert all(len(line) <= width for line in text.splitlines() if "cdk.context" not in line)


def test_unicode_chart_uses_block_characters() -> None:
    text = format_plan(Plan(blocks=(plan_block(block()),)), unicode=True)

    assert "\u2588" in chart_rows(text, "managed")[0]
    assert not text.isascii()


def test_now_is_marked_only_when_given() -> None:
    planned = (plan_block(block()),)
    during = datetime(2027, 3, 8, tzinfo=UTC)

    without = format_plan(Plan(blocks=planned))
    marked = format_plan(Plan(blocks=planned, now=during))

    assert "Now:" not in without
    assert chart_rows(without, "now") == []
    assert "Now: 2027-03-08T00:00:00Z" in marked
    assert "Phase now: active" in marked
    (now_row,) = chart_rows(marked, "now")
    managed_bar = chart_rows(marked, "managed")[0]
    # Day 6.5 of 14 lies in the head of the bar, between S and the axis break.
    assert managed_bar.index("S") < now_row.index("N") < managed_bar.index("//")


def test_now_before_the_start_gives_the_phase_without_a_marker() -> None:
    text = format_plan(
        Plan(blocks=(plan_block(block()),), now=datetime(2027, 2, 20, 9, tzinfo=UTC))
    )

    assert "Phase now: scheduled" in text
    assert chart_rows(text, "now") == []


def test_legend_leaves_k_out_without_managed_node_groups() -> None:
    text = format_plan(
        Plan(blocks=(plan_block(block(), node_group=NodeGroupKind.SELF_MANAGED),)), width=100
    )

    assert "K EKS" not in text
    assert " K " not in text


_RENDER = """
from datetime import datetime, timezone
from capblock_constructs.capacity_block import CapacityBlock
from capblock_constructs.timeline import Plan, plan_block
from capblock_constructs.timeline_svg import format_plan_svg
from capblock_constructs.timeline_text import format_plan

UTC = timezone.utc
END = datetime(2027, 3, 15, 11, 30, tzinfo=UTC)
blocks = [
    CapacityBlock(
        capacity_reservation_id="cr-0123456789abcdef0", instance_type="p5.48xlarge",
        availability_zone="us-east-2a", instance_count=4,
        start=datetime(2027, 3, 1, 11, 30, tzinfo=UTC), end=END,
    ),
    CapacityBlock(
        capacity_reservation_id="cr-0fedcba9876543210", instance_type="p6e-gb200.36xlarge",
        availability_zone="us-east-1-dfw-2a", instance_count=18, ultraserver_type="u-p6e-gb200x72",
        start=datetime(2027, 3, 14, 11, 30, tzinfo=UTC), end=END,
    ),
]
planned = Plan(blocks=tuple(plan_block(b) for b in blocks), now=datetime(2027, 3, 8, tzinfo=UTC))
print(format_plan(planned, width=90))
print(format_plan_svg(planned))
"""


def test_chart_and_svg_are_the_same_in_any_process() -> None:
    # Fresh interpreters with different hash seeds (set and dict orders) and time zones
    # (a local-time conversion) must print the same bytes: nothing reads the clock, the
    # host's zone or an unordered collection's order.
    outputs = []
    for seed, zone in (("1", "UTC"), ("2", "Asia/Tokyo"), ("3", "America/Los_Angeles")):
        env = {**os.environ, "PYTHONHASHSEED": seed, "TZ": zone}
        result = subprocess.run(
            [sys.executable, "-c", _RENDER], capture_output=True, text=True, env=env, check=True
        )
        outputs.append(result.stdout)

    assert "cr-0fedcba9876543210" in outputs[0]
    assert "</svg>" in outputs[0]
    assert outputs[1] == outputs[0]
    assert outputs[2] == outputs[0]


# -- SVG ---------------------------------------------------------------------------------------


def svg_texts(document: str) -> str:
    root = ET.fromstring(document.encode("utf-8"))
    assert root.tag == f"{SVG_NS}svg"
    return "\n".join("".join(node.itertext()) for node in root.iter(f"{SVG_NS}text"))


def test_svg_parses_and_holds_the_events() -> None:
    document = format_plan_svg(
        Plan(
            blocks=(plan_block(block()), plan_block(ultra())),
            now=datetime(2027, 3, 8, tzinfo=UTC),
        )
    )

    texts = svg_texts(document)
    for moment in (
        "2027-03-01T11:30:00Z",  # instance block start
        "2027-03-15T10:50:00Z",  # default drain of both kinds, and EKS's own scale-down
        "2027-03-15T11:00:00Z",  # EC2 reclaim start, instance block
        "2027-03-15T10:30:00Z",  # EC2 reclaim start, UltraServer block
        "2027-03-15T10:20:00Z",  # UltraServer drain of both kinds
        "2027-03-15T11:30:00Z",  # end
        "now 2027-03-08T00:00:00Z",
    ):
        assert moment in texts
    for share in ("99.8%", "95.1%"):
        assert share in texts
    assert WORK_SHARE_DEFINITION in texts
    assert RESERVATION_ID in texts
    assert ULTRA_ID in texts


def test_svg_marks_eks_with_the_drain_start_it_shares_a_moment_with() -> None:
    root = ET.fromstring(
        format_plan_svg(Plan(blocks=(plan_block(block()), plan_block(ultra())))).encode("utf-8")
    )

    markers = [
        [text.text for text in group.iter(f"{SVG_NS}text") if text.get("font-size") == "10"]
        for group in root.iter(f"{SVG_NS}g")
        if group.get("class") == "block"
    ]
    # After the axis labels: instance block D and K both at end - 40 min, one label;
    # UltraServer block D at end - 70 min, R at end - 60 min, K at end - 40 min.
    assert [item[-4:] for item in markers] == [["S", "D/K", "R", "E"], ["D", "R", "K", "E"]]


def test_svg_draws_a_group_per_node_group() -> None:
    root = ET.fromstring(format_plan_svg(Plan(blocks=(plan_block(block()),))).encode("utf-8"))

    kinds = [
        group.get("data-kind")
        for group in root.iter(f"{SVG_NS}g")
        if group.get("class") == "node-group"
    ]
    assert kinds == ["managed", "self-managed"]


# -- reading cdk.context.json ----------------------------------------------------------------


def test_plan_reads_every_cached_block_in_start_order(cache: Path) -> None:
    calls = _context_cache.aws_call_count

    result = plan()

    assert result.source == cache
    assert [item.block.capacity_reservation_id for item in result.blocks] == [
        RESERVATION_ID,
        ULTRA_ID,
    ]
    assert [(item.region, item.accounts) for item in result.blocks] == [
        (REGION, (ACCOUNT,)),
        ("us-east-1", (ACCOUNT,)),
    ]
    assert result.now is None
    assert _context_cache.aws_call_count == calls


def test_plan_filters_by_id_region_and_account(cache: Path, tmp_path: Path) -> None:
    assert [b.block.capacity_reservation_id for b in plan([ULTRA_ID]).blocks] == [ULTRA_ID]
    assert [b.block.capacity_reservation_id for b in plan(region="us-east-1").blocks] == [ULTRA_ID]
    assert len(plan(account=ACCOUNT).blocks) == 2


def test_a_shared_block_cached_for_two_accounts_is_shown_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    value = block().to_context_value()
    write_cache(tmp_path, {key(): value, key(account=OTHER_ACCOUNT): value})

    (only,) = plan().blocks

    assert only.accounts == (ACCOUNT, OTHER_ACCOUNT)
    assert only.warnings == ()
    assert [b.accounts for b in plan(account=OTHER_ACCOUNT).blocks] == [(OTHER_ACCOUNT,)]


def test_disagreeing_entries_are_both_shown_with_a_refresh_hint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    extended = block(end=END + timedelta(days=7)).to_context_value()
    write_cache(tmp_path, {key(): block().to_context_value(), key(account=OTHER_ACCOUNT): extended})

    stale, fresh = plan().blocks

    assert (stale.accounts, fresh.accounts) == ((ACCOUNT,), (OTHER_ACCOUNT,))
    for item in (stale, fresh):
        (warning,) = item.warnings
        assert "2027-03-22T11:30:00Z" in warning
        assert f"capblock lookup {RESERVATION_ID} --region {REGION}" in warning
        assert "--refresh" in warning


def test_now_comes_from_the_context_key_in_the_cache_or_cdk_json(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    write_cache(tmp_path, {key(): block().to_context_value()})
    (tmp_path / "cdk.json").write_text(
        json.dumps(
            {"app": "python app.py", "context": {"capblock-constructs:now": "2027-03-08T00:00:00Z"}}
        )
    )
    assert plan().now == datetime(2027, 3, 8, tzinfo=UTC)

    write_cache(
        tmp_path,
        {key(): block().to_context_value(), "capblock-constructs:now": "2027-02-20T09:00:00Z"},
    )
    assert plan().now == datetime(2027, 2, 20, 9, tzinfo=UTC)
    # A given moment wins over the context.
    assert plan(now=datetime(2027, 3, 15, tzinfo=UTC)).now == datetime(2027, 3, 15, tzinfo=UTC)


def test_fails_when_the_cache_file_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)

    with pytest.raises(CapacityBlockError) as caught:
        plan()

    assert "does not exist" in str(caught.value)
    assert "capblock lookup <reservation-id> --region <region>" in str(caught.value)


def test_fails_listing_every_problem(cache: Path) -> None:
    with pytest.raises(CapacityBlockError) as caught:
        plan(["cr-x", "cr-0123456789abcdef1"], region="Ohio", account="12")

    problems = caught.value.problems
    assert any("region 'Ohio'" in problem for problem in problems)
    assert any("account '12'" in problem for problem in problems)
    assert any("'cr-x'" in problem for problem in problems)


# -- the command -------------------------------------------------------------------------------


def test_plan_command_prints_the_chart(cache: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["plan", "--width", "100"], capsys)

    assert (code, err) == (0, "")
    assert f"2 blocks from {cache}" in " ".join(out.split())
    assert out.isascii()
    assert len(chart_rows(out, "managed")) == 2
    assert "2027-03-15T10:20:00Z  end - 1 h 10 min  D" in out
    assert "Now:" not in out


def test_plan_command_options(cache: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        [
            "plan",
            RESERVATION_ID,
            "--node-group",
            "self-managed",
            "--drain-lead",
            "90",
            "--now",
            "2027-03-08T00:00:00Z",
        ],
        capsys,
    )

    assert code == 0
    assert ULTRA_ID not in out
    assert chart_rows(out, "managed") == []
    # 14 days with a 90 min lead: (20160 - 90) / 20160 = 99.55 %, rounded half up.
    assert chart_rows(out, "self-managed")[0].endswith("99.6%")
    assert "2027-03-15T10:00:00Z  end - 1 h 30 min  D" in out
    assert "Phase now: active" in out


def test_plan_command_writes_the_svg(
    cache: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "plan.svg"

    code, out, _ = run(["plan", "--svg", str(target)], capsys)

    assert code == 0
    assert f"SVG written to {target}" in out
    assert "2027-03-15T10:30:00Z" in svg_texts(target.read_text(encoding="utf-8"))


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["plan", "cr-0123456789abcdef1"], "no entry for cr-0123456789abcdef1"),
        (["plan", "--region", "eu-west-1"], "none of the Capacity Blocks"),
        (["plan", "--drain-lead", "30", RESERVATION_ID], "at least 32 min 30 s"),
        (["plan", "--node-group", "managed", "--drain-lead", "39"], "at least 40 min"),
        (["plan", "--drain-lead", "36", "--period", "5", RESERVATION_ID], "at least 36 min 30 s"),
        (["plan", "--period", "6"], "controller period 6 min is outside 1 min to 5 min"),
        (["plan", "--period", "0"], "controller period 0 min is outside 1 min to 5 min"),
        (["plan", "--now", "yesterday"], "--now 'yesterday' is not an ISO 8601 timestamp"),
        (["plan", "--svg", "/nonexistent-dir/plan.svg"], "cannot write the SVG"),
    ],
)
def test_plan_command_errors_exit_2_without_traceback(
    cache: Path, capsys: pytest.CaptureFixture[str], argv: list[str], expected: str
) -> None:
    code, out, err = run(argv, capsys)

    assert code == 2
    assert out == ""
    assert err.startswith("capblock plan: error: ")
    assert expected in err
    assert "Traceback" not in err


def test_plan_command_with_an_empty_cache_names_capblock_lookup(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    write_cache(tmp_path, {"availability-zones:account=123456789012:region=us-east-2": []})

    code, out, err = run(["plan"], capsys)

    assert (code, out) == (2, "")
    assert "holds no Capacity Block entries" in err
    assert "capblock lookup <reservation-id> --region <region>" in err


def test_plan_command_reports_a_corrupt_entry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    write_cache(tmp_path, {key(): {"capacityReservationId": RESERVATION_ID}})

    code, _, err = run(["plan"], capsys)

    assert code == 2
    assert key() in err
    assert "capblock lookup <id> --refresh" in err


def test_plan_command_rejects_a_drain_lead_that_is_not_minutes(
    cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(["plan", "--drain-lead", "40m"], capsys)

    assert code == 2
    assert "'40m' is not a whole number of minutes" in err


def test_plan_command_takes_a_managed_drain_lead(
    cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(
        ["plan", RESERVATION_ID, "--node-group", "managed", "--drain-lead", "50", "--period", "5"],
        capsys,
    )

    assert code == 0
    assert chart_rows(out, "self-managed") == []
    assert "2027-03-15T10:40:00Z  end - 50 min  D" in out
    assert "2027-03-15T10:50:00Z  end - 40 min  K" in out


def test_a_bad_period_is_reported_once_for_all_blocks(
    cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(["plan", "--period", "9"], capsys)

    assert code == 2
    assert err.count("controller period 9 min is outside") == 1


def test_drain_lead_problems_name_each_block(cache: Path) -> None:
    # 45 min suits the instance block (floors 40 min managed, 32 min 30 s self-managed),
    # not the UltraServer one (1 h 10 min managed, 1 h 2 min 30 s self-managed).
    with pytest.raises(CapacityBlockError) as caught:
        plan(drain_lead=timedelta(minutes=45))

    assert len(caught.value.problems) == 2
    for problem, kind in zip(caught.value.problems, ("managed", "self-managed"), strict=True):
        assert problem.startswith(
            f"Capacity Block {ULTRA_ID}: drain lead 45 min is too short for a {kind} node group"
        )


def test_plan_help_states_the_work_share_definition(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["plan", "--help"], capsys)

    assert code == 0
    assert "--drain-lead MINUTES" in out
    assert "--period MINUTES" in out
    assert "--node-group {managed,self-managed,both}" in out
    flat = " ".join(out.split())
    assert "scales node groups (managed and self-managed) to zero" in flat
    assert "EKS's own action also scales managed node groups to zero 40 minutes" in flat
    assert "Work share = (scale-down time - start) / (end - start)" in out


# -- module structure --------------------------------------------------------------------------

PACKAGE_DIR = Path(capblock_constructs.__file__).parent
# The modules this layering concerns: the plan model and its renderers, the value object
# and its lookup, and the command that uses them all.
LAYERED = {
    "capblock_constructs._chart_axis",
    "capblock_constructs._context_cache",
    "capblock_constructs._ids",
    "capblock_constructs._reservation_lookup",
    "capblock_constructs.capacity_block",
    "capblock_constructs.cli",
    "capblock_constructs.timeline",
    "capblock_constructs.timeline_svg",
    "capblock_constructs.timeline_text",
}


def module_imports() -> dict[str, set[str]]:
    """Each package module and the package modules it imports anywhere (lazily too).

    Package ``__init__`` modules are left out: the top-level one maps names to modules
    for lazy loading, and importing any submodule runs it.
    """
    modules = {
        ".".join(path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts): path
        for path in PACKAGE_DIR.rglob("*.py")
        if path.name != "__init__.py"
    }
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name.rsplit(".", 1)[0]
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")
                    parts = parts[: len(parts) - node.level + 1]
                    base = ".".join(parts + ([node.module] if node.module else []))
                found.add(base)
                found |= {f"{base}.{alias.name}" for alias in node.names}
        graph[name] = found & set(modules)
    return graph


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = list(graph[start])
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(graph[name])
    return seen


def test_the_import_graph_sees_relative_imports() -> None:
    graph = module_imports()

    # The graph must see what the checks below rely on, or they would pass vacuously.
    assert "capblock_constructs.timeline" in graph["capblock_constructs.timeline_text"]
    assert "capblock_constructs._chart_axis" in graph["capblock_constructs.timeline_svg"]
    assert "capblock_constructs.controller.runtime.phase" in graph["capblock_constructs.timeline"]
    assert "capblock_constructs._reservation_lookup" in graph["capblock_constructs.capacity_block"]


def test_no_module_imports_another_in_a_circle() -> None:
    graph = module_imports()

    circles = sorted(name for name in LAYERED if name in reachable(graph, name))
    assert circles == []


def test_the_plan_model_imports_no_renderer_and_the_lookup_no_value_object() -> None:
    graph = module_imports()

    renderers = {
        "capblock_constructs._chart_axis",
        "capblock_constructs.timeline_svg",
        "capblock_constructs.timeline_text",
    }
    assert reachable(graph, "capblock_constructs.timeline") & renderers == set()
    assert "capblock_constructs.capacity_block" not in reachable(
        graph, "capblock_constructs._reservation_lookup"
    )
    # The phase rule ships alone in the controller's Lambda asset.
    assert reachable(graph, "capblock_constructs.controller.runtime.phase") == set()
