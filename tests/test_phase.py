"""The phase rule, checked over any block, drain lead and moment, and against AWS's own times.

The examples' expected values come from the AWS documentation, not from the code: EC2
starts reclaiming an instance Capacity Block's instances 30 minutes before its end (60 for
UltraServer blocks), EKS scales a managed node group to zero 40 minutes before the end,
and every block ends at 11:30 UTC.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from capblock_constructs.controller.runtime.phase import (
    MAX_HEARTBEAT,
    MIN_HEARTBEAT,
    UNUSABLE_STATES,
    GroupKind,
    Phase,
    ReservationFacts,
    decide,
    default_drain_lead,
    default_heartbeat,
    drain_time,
    earliest_drain_lead,
    reclaim_lead,
    worst_case_lateness,
)

UTC = timezone.utc
END = datetime(2031, 3, 15, 11, 30, tzinfo=UTC)
START = datetime(2031, 3, 1, 11, 30, tzinfo=UTC)
STATES = [
    "active",
    "expired",
    "cancelled",
    "pending",
    "failed",
    "scheduled",
    "payment-pending",
    "payment-failed",
    "assessing",
    "delayed",
    "unsupported",
    "cancelling",
    "unavailable",
]
# No example database: the tests leave no files behind in the work tree.
PROPERTY_SETTINGS = settings(max_examples=200, deadline=None, database=None)


@st.composite
def scenarios(draw: st.DrawFn) -> dict[str, object]:
    """A block (any kind, 1 to 182 days, starting anywhere), a valid drain lead for a group
    kind, period and heartbeat, a target, a count and a moment (often near an edge)."""
    ultraserver = draw(st.booleans())
    kind = draw(st.sampled_from(GroupKind))
    period = timedelta(minutes=draw(st.integers(1, 5)))
    heartbeat = (
        timedelta(seconds=draw(st.integers(30, 7200))) if kind is GroupKind.SELF_MANAGED else None
    )
    start = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(
        minutes=draw(st.integers(0, 5 * 365 * 24 * 60))
    )
    length = timedelta(minutes=draw(st.integers(24 * 60, 182 * 24 * 60)))
    floor = earliest_drain_lead(
        kind=kind, ultraserver=ultraserver, period=period, heartbeat=heartbeat
    )
    # Any lead from the floor to just under the block's length.
    lead = floor + timedelta(
        seconds=draw(st.integers(0, int((length - floor).total_seconds()) - 1))
    )
    end = start + length
    edges = [start, end - lead, end, end - reclaim_lead(ultraserver=ultraserver)]
    moment = draw(
        st.one_of(
            st.sampled_from(edges).flatmap(
                lambda edge: st.integers(-2, 2).map(lambda s: edge + timedelta(seconds=s))
            ),
            st.integers(-10 * 86400, int(length.total_seconds()) + 10 * 86400).map(
                lambda s: start + timedelta(seconds=s)
            ),
        )
    )
    return {
        "ultraserver": ultraserver,
        "kind": kind,
        "period": period,
        "heartbeat": heartbeat,
        "facts": ReservationFacts(
            state=draw(st.sampled_from(STATES)),
            start=start,
            end=end,
            instance_count=draw(st.integers(1, 64)),
        ),
        "lead": lead,
        "target": draw(st.integers(1, 64)),
        "moment": moment,
    }


@PROPERTY_SETTINGS
@given(scenarios())
def test_size_follows_the_rule_for_any_block_and_moment(case: dict[str, object]) -> None:
    facts = case["facts"]
    lead = case["lead"]
    target = case["target"]
    moment = case["moment"]
    assert isinstance(facts, ReservationFacts)
    assert isinstance(lead, timedelta)
    assert isinstance(target, int)
    assert isinstance(moment, datetime)
    decision = decide(facts, moment=moment, drain_lead=lead, target_size=target)
    drain_at = facts.end - lead
    assert decision.drain_at == drain_at
    assert 0 <= decision.size <= min(facts.instance_count, target)
    if moment < facts.start:
        assert decision.size == 0
    if moment >= drain_at:
        assert decision.size == 0
        assert decision.phase in (Phase.DRAINING, Phase.ENDED, Phase.UNUSABLE)
    if facts.state in UNUSABLE_STATES or facts.state != "active":
        assert decision.size == 0
    if facts.state == "active" and facts.start <= moment < drain_at:
        assert decision.phase is Phase.RUNNING
        assert decision.size == min(target, facts.instance_count)
    if decision.size > 0:
        assert decision.phase is Phase.RUNNING


@PROPERTY_SETTINGS
@given(scenarios())
def test_a_valid_drain_lead_empties_the_group_before_ec2_reclaims(case: dict[str, object]) -> None:
    facts, lead, period = case["facts"], case["lead"], case["period"]
    ultraserver, heartbeat = case["ultraserver"], case["heartbeat"]
    assert isinstance(facts, ReservationFacts)
    assert isinstance(lead, timedelta)
    assert isinstance(period, timedelta)
    assert isinstance(ultraserver, bool)
    assert heartbeat is None or isinstance(heartbeat, timedelta)
    reclaim_start = facts.end - reclaim_lead(ultraserver=ultraserver)
    # The latest the controller acts on the drain, plus the hook's heartbeat (self-managed):
    # an instance nobody releases still terminates then.
    gone_by = drain_time(facts.end, lead) + worst_case_lateness(period) + (heartbeat or timedelta())
    assert gone_by <= reclaim_start


@PROPERTY_SETTINGS
@given(
    ultraserver=st.booleans(),
    period=st.integers(1, 5).map(lambda m: timedelta(minutes=m)),
    extra=st.integers(0, 6 * 3600).map(lambda s: timedelta(seconds=s)),
)
def test_default_heartbeat_fits_its_drain_lead(
    ultraserver: bool, period: timedelta, extra: timedelta
) -> None:
    lead = (
        earliest_drain_lead(
            kind=GroupKind.SELF_MANAGED,
            ultraserver=ultraserver,
            period=period,
            heartbeat=MIN_HEARTBEAT,
        )
        + extra
    )
    heartbeat = default_heartbeat(drain_lead=lead, ultraserver=ultraserver, period=period)
    assert MIN_HEARTBEAT <= heartbeat <= MAX_HEARTBEAT
    floor = earliest_drain_lead(
        kind=GroupKind.SELF_MANAGED, ultraserver=ultraserver, period=period, heartbeat=heartbeat
    )
    assert floor <= lead


@PROPERTY_SETTINGS
@given(scenarios())
def test_size_never_rises_again_after_the_drain(case: dict[str, object]) -> None:
    facts, lead, target = case["facts"], case["lead"], case["target"]
    assert isinstance(facts, ReservationFacts)
    assert isinstance(lead, timedelta)
    assert isinstance(target, int)
    moments = [facts.start + (facts.end - facts.start) * step / 50 for step in range(-5, 56)]
    sizes = [decide(facts, moment=m, drain_lead=lead, target_size=target).size for m in moments]
    rises = [i for i in range(1, len(sizes)) if sizes[i] > sizes[i - 1]]
    assert len(rises) <= 1


# ------------------------------------------------------------------ the AWS documented times


def _active(end: datetime = END) -> ReservationFacts:
    return ReservationFacts(state="active", start=START, end=end, instance_count=4)


def test_instance_block_drains_at_10_50_by_default() -> None:
    # EKS's own action: 40 minutes before the 11:30 end; EC2 reclaims from 11:00.
    lead = default_drain_lead(ultraserver=False)
    assert drain_time(END, lead) == datetime(2031, 3, 15, 10, 50, tzinfo=UTC)
    assert END - reclaim_lead(ultraserver=False) == datetime(2031, 3, 15, 11, 0, tzinfo=UTC)
    at = datetime(2031, 3, 15, 10, 49, 59, tzinfo=UTC)
    assert decide(_active(), moment=at, drain_lead=lead, target_size=4).size == 4
    at = datetime(2031, 3, 15, 10, 50, tzinfo=UTC)
    decision = decide(_active(), moment=at, drain_lead=lead, target_size=4)
    assert (decision.phase, decision.size) == (Phase.DRAINING, 0)


def test_ultraserver_block_drains_at_10_20_by_default() -> None:
    # EC2 reclaims UltraServer blocks 60 minutes before the end; 10 minutes more to drain.
    lead = default_drain_lead(ultraserver=True)
    assert drain_time(END, lead) == datetime(2031, 3, 15, 10, 20, tzinfo=UTC)
    assert END - reclaim_lead(ultraserver=True) == datetime(2031, 3, 15, 10, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("kind", "ultraserver", "period", "heartbeat", "expected"),
    [
        # Managed groups never drain later than EKS's own 40 minutes (70 for UltraServer).
        (GroupKind.MANAGED, False, 1, None, 40),
        (GroupKind.MANAGED, False, 5, None, 40),
        (GroupKind.MANAGED, True, 5, None, 70),
        # Self-managed: 30 (reclaim) + period + 1 (invocation) + heartbeat.
        (GroupKind.SELF_MANAGED, False, 1, 8, 40),
        (GroupKind.SELF_MANAGED, False, 5, 8, 44),
        (GroupKind.SELF_MANAGED, True, 1, 8, 70),
    ],
)
def test_earliest_drain_lead_examples(
    kind: GroupKind, ultraserver: bool, period: int, heartbeat: int | None, expected: int
) -> None:
    lead = earliest_drain_lead(
        kind=kind,
        ultraserver=ultraserver,
        period=timedelta(minutes=period),
        heartbeat=None if heartbeat is None else timedelta(minutes=heartbeat),
    )
    assert lead == timedelta(minutes=expected)


def test_default_heartbeat_of_the_default_drain_lead_is_eight_minutes() -> None:
    # README: 40 minutes = 30 (EC2) + 2 (a 1-minute period, run late by up to 1) + 8 (hook).
    heartbeat = default_heartbeat(
        drain_lead=timedelta(minutes=40), ultraserver=False, period=timedelta(minutes=1)
    )
    assert heartbeat == timedelta(minutes=8)


def test_default_heartbeat_stays_within_what_lifecycle_hooks_accept() -> None:
    long = default_heartbeat(
        drain_lead=timedelta(hours=5), ultraserver=False, period=timedelta(minutes=1)
    )
    short = default_heartbeat(
        drain_lead=timedelta(minutes=31), ultraserver=False, period=timedelta(minutes=1)
    )
    assert (long, short) == (timedelta(seconds=7200), timedelta(seconds=30))


@pytest.mark.parametrize(
    ("state", "moment", "phase"),
    [
        ("scheduled", START - timedelta(days=1), Phase.WAITING),
        ("payment-pending", START + timedelta(hours=1), Phase.WAITING),
        ("active", START - timedelta(seconds=1), Phase.WAITING),
        ("active", START, Phase.RUNNING),
        ("cancelled", START + timedelta(days=1), Phase.UNUSABLE),
        ("payment-failed", START - timedelta(days=1), Phase.UNUSABLE),
        ("expired", START + timedelta(days=1), Phase.ENDED),
        ("active", END, Phase.ENDED),
    ],
)
def test_phase_examples(state: str, moment: datetime, phase: Phase) -> None:
    facts = ReservationFacts(state=state, start=START, end=END, instance_count=4)
    decision = decide(facts, moment=moment, drain_lead=timedelta(minutes=40), target_size=8)
    assert decision.phase is phase
    assert decision.size == (4 if phase is Phase.RUNNING else 0)


def test_extension_moves_the_drain_time() -> None:
    later_end = END + timedelta(days=7)
    at = datetime(2031, 3, 15, 10, 55, tzinfo=UTC)
    lead = timedelta(minutes=40)
    assert decide(_active(), moment=at, drain_lead=lead, target_size=4).size == 0
    decision = decide(_active(later_end), moment=at, drain_lead=lead, target_size=4)
    assert (decision.size, decision.drain_at) == (4, datetime(2031, 3, 22, 10, 50, tzinfo=UTC))


def test_naive_moment_is_refused() -> None:
    with pytest.raises(ValueError, match="naive datetime"):
        decide(
            _active(), moment=datetime(2031, 3, 5), drain_lead=timedelta(minutes=40), target_size=4
        )
