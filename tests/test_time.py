"""The deterministic clock and the UTC timestamp format of the cache and the plan."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from aws_cdk import App

from capblock_constructs import CapacityBlockError
from capblock_constructs._time import format_utc, now, parse_utc


def test_pinned_now_is_read_from_context() -> None:
    app = App(context={"capblock-constructs:now": "2027-02-20T09:00:00Z"})
    assert now(app) == datetime(2027, 2, 20, 9, 0, tzinfo=timezone.utc)


def test_pinned_now_with_offset_is_converted_to_utc() -> None:
    app = App(context={"capblock-constructs:now": "2027-02-20T18:00:00+09:00"})
    assert now(app) == datetime(2027, 2, 20, 9, 0, tzinfo=timezone.utc)


def test_unpinned_now_is_the_clock() -> None:
    before = datetime.now(timezone.utc) - timedelta(seconds=1)
    assert before <= now(App()) <= datetime.now(timezone.utc)


@pytest.mark.parametrize(
    ("pinned", "expected"),
    [
        ("2027-02-20T09:00:00", "has no UTC offset"),
        ("next tuesday", "is not an ISO 8601 timestamp"),
        (1700000000, "set it to an ISO 8601 UTC timestamp string"),
    ],
)
def test_bad_pinned_now_is_a_clear_error(pinned: object, expected: str) -> None:
    app = App(context={"capblock-constructs:now": pinned})
    with pytest.raises(CapacityBlockError, match=expected):
        now(app)


def test_format_is_whole_seconds_in_utc_with_z() -> None:
    # The form cache entries, `capblock` output and EC2's own timestamps use: UTC, whole
    # seconds, a trailing Z.
    moment = datetime(2027, 3, 1, 20, 30, 15, 123000, tzinfo=timezone(timedelta(hours=9)))
    assert format_utc(moment) == "2027-03-01T11:30:15Z"


def test_parse_accepts_z_suffix() -> None:
    assert parse_utc("2027-03-01T11:30:00Z", what="t") == datetime(
        2027, 3, 1, 11, 30, tzinfo=timezone.utc
    )


def test_format_refuses_naive_datetimes() -> None:
    # A naive value would be read as host-local time and silently shifted.
    with pytest.raises(CapacityBlockError, match="naive datetime"):
        format_utc(datetime(2027, 3, 1, 11, 30))


def test_durations_convert_from_either_type() -> None:
    from aws_cdk import Duration

    from capblock_constructs._time import as_timedelta

    assert as_timedelta(Duration.minutes(40)) == timedelta(minutes=40)
    assert as_timedelta(timedelta(minutes=40)) == timedelta(minutes=40)
    assert as_timedelta(40) is None
