"""CapacityBlock validation and derived times, against the EC2 rules."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from capblock_constructs import BlockPhase, CapacityBlock, CapacityBlockError, capacity_block
from capblock_constructs.controller.runtime import phase
from tests.support import END, START, block


def test_times_are_stored_in_utc() -> None:
    tokyo = timezone(timedelta(hours=9))
    built = block(start=START.astimezone(tokyo), end=END.astimezone(tokyo))
    assert built.start == START
    assert built.start.utcoffset() == timedelta(0)
    assert built.end.tzinfo == timezone.utc


def test_instance_block_is_reclaimed_30_minutes_before_end() -> None:
    # EC2: instances are usable "until 30 minutes (for instance types) ... before the end time".
    built = block()
    assert not built.is_ultraserver
    assert built.reclaim_start == datetime(2027, 3, 15, 11, 0, tzinfo=timezone.utc)
    assert built.default_drain_lead == timedelta(minutes=40)
    assert built.eks_managed_scale_down == datetime(2027, 3, 15, 10, 50, tzinfo=timezone.utc)


def test_ultraserver_block_is_reclaimed_60_minutes_before_end() -> None:
    # EC2: "... or 60 minutes (for UltraServer type) before the end time".
    built = block(ultraserver_type="u-p6e-gb200x72", instance_type="p6e-gb200.36xlarge")
    assert built.is_ultraserver
    assert built.reclaim_start == datetime(2027, 3, 15, 10, 30, tzinfo=timezone.utc)
    assert built.default_drain_lead == timedelta(minutes=70)
    # EKS's own managed-node-group action stays at 40 minutes: too late for UltraServers.
    assert built.eks_managed_scale_down > built.reclaim_start


def test_the_aws_rules_are_the_phase_rules_own() -> None:
    # EC2 user guide (How Capacity Blocks work): 30 min, or 60 for UltraServers. EKS user
    # guide (Capacity Blocks for managed node groups): 40 min. EC2 Auto Scaling
    # PutLifecycleHook: HeartbeatTimeout 30 to 7200 seconds.
    rules = {
        "EC2_RECLAIM_LEAD": timedelta(minutes=30),
        "EC2_RECLAIM_LEAD_ULTRASERVER": timedelta(minutes=60),
        "EKS_MANAGED_SCALE_DOWN_LEAD": timedelta(minutes=40),
        "MIN_HEARTBEAT": timedelta(seconds=30),
        "MAX_HEARTBEAT": timedelta(seconds=7200),
    }

    assert {name: getattr(capacity_block, name) for name in rules} == rules
    # One definition: capacity_block re-exports the phase rule's constants (public API).
    for name in rules:
        assert getattr(capacity_block, name) is getattr(phase, name), name
        assert name in capacity_block.__all__


def test_the_scheduled_action_names_are_gone() -> None:
    # The controller replaced the synth-time scheduled actions and their safety margin.
    assert not hasattr(capacity_block, "SCHEDULED_ACTION_MAX_DELAY")
    assert not hasattr(capacity_block, "DEFAULT_SCHEDULE_SAFETY_MARGIN")


@pytest.mark.parametrize("ultraserver_type", [None, "u-p6e-gb200x72"])
def test_derived_leads_are_the_phase_rules(ultraserver_type: str | None) -> None:
    built = block(ultraserver_type=ultraserver_type)

    assert built.reclaim_lead == phase.reclaim_lead(ultraserver=built.is_ultraserver)
    assert built.default_drain_lead == phase.default_drain_lead(ultraserver=built.is_ultraserver)


def test_duration() -> None:
    assert block().duration == timedelta(days=14)


@pytest.mark.parametrize(
    ("moment", "phase"),
    [
        (START - timedelta(seconds=1), BlockPhase.SCHEDULED),
        (START, BlockPhase.ACTIVE),
        (END - timedelta(minutes=30, seconds=1), BlockPhase.ACTIVE),
        (END - timedelta(minutes=30), BlockPhase.RECLAIMING),
        (END - timedelta(seconds=1), BlockPhase.RECLAIMING),
        (END, BlockPhase.ENDED),
    ],
)
def test_phase_boundaries(moment: datetime, phase: BlockPhase) -> None:
    assert block().phase_at(moment) is phase


def test_phase_at_rejects_naive_datetime() -> None:
    with pytest.raises(CapacityBlockError, match="naive datetime"):
        block().phase_at(datetime(2027, 3, 2))


@pytest.mark.parametrize("reservation_id", ["cr-01234567", "cr-0123456789abcdef0"])
def test_accepts_both_id_lengths(reservation_id: str) -> None:
    assert block(capacity_reservation_id=reservation_id).capacity_reservation_id == reservation_id


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"capacity_reservation_id": "cr-123"}, "'cr-123' is not a reservation ID"),
        ({"capacity_reservation_id": "cr-0123456789ABCDEF0"}, "8 or 17 lowercase hex digits"),
        ({"capacity_reservation_id": "cb-0123456789abcdef0"}, "use the 'cr-' ID"),
        ({"instance_type": "p5"}, "instance_type 'p5' is not an EC2 instance type"),
        (
            {"availability_zone": "us-east-2"},
            "availability_zone 'us-east-2' is not an Availability",
        ),
        ({"availability_zone_id": "use2"}, "availability_zone_id 'use2' is not a zone ID"),
        ({"instance_count": 0}, "instance_count 0 must be a whole number of at least 1"),
        ({"ultraserver_type": "trn2"}, "ultraserver_type 'trn2' is not an UltraServer type"),
        ({"instance_count": True}, "instance_count True must be a whole number"),
        ({"start": datetime(2027, 3, 1, 11, 30)}, "start 2027-03-01T11:30:00 is a naive datetime"),
        ({"end": "2027-03-15"}, "end '2027-03-15' is not a datetime"),
        (
            {"start": END, "end": START},
            "end 2027-03-01T11:30:00Z is not after start 2027-03-15T11:30:00Z",
        ),
    ],
)
def test_rejects_bad_fields(overrides: dict[str, object], expected: str) -> None:
    with pytest.raises(CapacityBlockError) as caught:
        block(**overrides)
    assert expected in str(caught.value)
    assert str(caught.value).startswith("Capacity Block ")


def test_reports_every_problem_at_once() -> None:
    with pytest.raises(CapacityBlockError) as caught:
        CapacityBlock(
            capacity_reservation_id="cr-bad",
            instance_type="p5.48xlarge",
            availability_zone="us-east-2a",
            instance_count=0,
            start=datetime(2027, 3, 1),
            end=END,
        )
    assert len(caught.value.problems) == 3
    assert "3 problems" in str(caught.value)


def test_is_immutable() -> None:
    built = block()
    with pytest.raises(AttributeError):
        built.instance_count = 8  # type: ignore[misc]


def test_context_value_round_trip() -> None:
    built = block(ultraserver_type="u-p6e-gb200x72", capacity_block_id="cb-0123456789abcdef0")
    value = built.to_context_value()
    assert value["startDate"] == "2027-03-01T11:30:00Z"
    assert value["endDate"] == "2027-03-15T11:30:00Z"
    assert CapacityBlock.from_context_value(value, source="test") == built


def test_context_value_omits_unknown_optionals() -> None:
    value = block(availability_zone_id=None).to_context_value()
    assert "availabilityZoneId" not in value
    assert "ultraserverType" not in value


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ([], "not an object"),
        ({"capacityReservationId": "cr-01234567"}, "lacks instanceType"),
        (
            {
                "capacityReservationId": "cr-01234567",
                "instanceType": "p5.48xlarge",
                "availabilityZone": "us-east-2a",
                "instanceCount": 2,
                "startDate": "2027-03-01T11:30:00",
                "endDate": "2027-03-15T11:30:00Z",
            },
            "has no UTC offset",
        ),
    ],
)
def test_corrupt_context_value_is_a_clear_error(value: object, expected: str) -> None:
    with pytest.raises(CapacityBlockError, match=expected):
        CapacityBlock.from_context_value(value, source="context 'k'")
