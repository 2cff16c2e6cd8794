"""CapacityBlock.from_lookup: the context cache, cdk.context.json, and EC2 through Stubber.

Every EC2 call goes through botocore's Stubber on a real EC2 client, which
checks each request and response against the EC2 API model.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import botocore.endpoint
import pytest
from aws_cdk import App, Stack
from botocore.awsrequest import AWSResponse
from botocore.compat import HTTPHeaders
from botocore.exceptions import (
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    ParamValidationError,
    PartialCredentialsError,
    ProfileNotFound,
    ReadTimeoutError,
    TokenRetrievalError,
)

from capblock_constructs import CapacityBlock, CapacityBlockError, _aws, _context_cache
from capblock_constructs import _reservation_lookup as lookup_module

from .ec2_stub import PLANNED_TAG, REQUEST, StubbedEC2, expected_value, reservation
from .support import ACCOUNT, END, REGION, RESERVATION_ID, START, make_app, make_stack

# Saved before conftest's per-test guard replaces it, for the tests that drive botocore's
# real retry loop with the network (Endpoint._send) replaced.
_REAL_MAKE_REQUEST = botocore.endpoint.Endpoint.make_request

KEY = (
    "capblock-constructs:capacity-block:"
    f"account={ACCOUNT}:region={REGION}:capacityReservationId={RESERVATION_ID}"
)
BLOCK_ID = "cb-0123456789abcdef0"
END_TEXT = "2027-03-15T11:30:00Z"


def add_reservation(ec2: StubbedEC2, **overrides: Any) -> None:
    ec2.add_reservation(**overrides)


def lookup(app: App | None = None, reservation_id: str = RESERVATION_ID) -> CapacityBlock:
    stack = make_stack(app or make_app())
    return CapacityBlock.from_lookup(stack, reservation_id)


def read_json(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def assert_clean_error(error: CapacityBlockError) -> None:
    """One readable message: no chained botocore exception, no traceback text."""
    message = str(error)
    assert error.__cause__ is None
    assert error.__context__ is None
    assert "Traceback" not in message
    assert "botocore" not in message.lower()


def assert_names_reservation(message: str) -> None:
    assert RESERVATION_ID in message
    assert f"account {ACCOUNT}" in message
    assert f"region {REGION}" in message


# -- the cache ------------------------------------------------------------------------------


def test_context_hit_makes_no_aws_call(ec2: StubbedEC2, tmp_path: Path) -> None:
    calls_before = _context_cache.aws_call_count
    app = make_app(context={KEY: expected_value()})

    block = lookup(app)

    assert block.capacity_reservation_id == RESERVATION_ID
    assert block.instance_type == "p5.48xlarge"
    assert block.availability_zone == "us-east-2a"
    assert block.instance_count == 4
    assert (block.start, block.end) == (START, END)
    assert _context_cache.aws_call_count == calls_before
    assert ec2.factory_calls == []
    assert list(tmp_path.iterdir()) == [], "a context hit must not write cdk.context.json"


def test_context_value_passed_as_a_json_string_is_read(ec2: StubbedEC2) -> None:
    # `cdk -c key=value` hands the value over as a string.
    app = make_app(context={KEY: json.dumps(expected_value())})

    assert lookup(app).instance_count == 4
    assert ec2.factory_calls == []


def test_file_hit_makes_no_aws_call(ec2: StubbedEC2, tmp_path: Path) -> None:
    (tmp_path / "cdk.context.json").write_text(json.dumps({KEY: expected_value()}))
    calls_before = _context_cache.aws_call_count

    block = lookup()

    assert (block.start, block.end, block.instance_count) == (START, END, 4)
    assert _context_cache.aws_call_count == calls_before
    assert ec2.factory_calls == []


def test_context_wins_over_the_file(ec2: StubbedEC2, tmp_path: Path) -> None:
    (tmp_path / "cdk.context.json").write_text(json.dumps({KEY: expected_value(instanceCount=2)}))

    block = lookup(make_app(context={KEY: expected_value(instanceCount=8)}))

    assert block.instance_count == 8


def test_miss_calls_ec2_once_and_writes_through(ec2: StubbedEC2, tmp_path: Path) -> None:
    path = tmp_path / "cdk.context.json"
    others = {
        "zz-last": [1, 2],
        "availability-zones:account=123456789012:region=us-east-2": ["us-east-2a"],
        "acknowledged-issue-numbers": [32775],
    }
    path.write_text(json.dumps(others))
    add_reservation(ec2)  # no CapacityBlockId: one call only
    calls_before = _context_cache.aws_call_count

    block = lookup()

    assert _context_cache.aws_call_count == calls_before + 1
    # The client's subject leads any error message: the reservation, account and region.
    assert ec2.factory_calls == [
        {
            "region": REGION,
            "profile": None,
            "subject": f"Capacity Block {RESERVATION_ID} (account {ACCOUNT}, region {REGION})",
        }
    ]
    assert (block.start, block.end, block.instance_count) == (START, END, 4)
    written = read_json(path)
    assert written == {**others, KEY: expected_value()}
    assert list(written) == sorted(written), "keys must be written sorted"
    assert list(written[KEY]) == sorted(written[KEY])
    # The atomic replace leaves no temporary file behind.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cdk.context.json"]

    # A fresh app (as on the next `cdk synth`) is served from the file: no call.
    again = lookup(make_app())
    assert again == block
    assert _context_cache.aws_call_count == calls_before + 1


def test_miss_creates_the_file_when_there_is_none(ec2: StubbedEC2, tmp_path: Path) -> None:
    add_reservation(ec2)

    lookup()

    assert read_json(tmp_path / "cdk.context.json") == {KEY: expected_value()}


def test_key_and_client_use_the_stacks_account_and_region(ec2: StubbedEC2, tmp_path: Path) -> None:
    from aws_cdk import Environment

    add_reservation(ec2)
    stack = make_stack(make_app(), env=Environment(account="210987654321", region="us-west-2"))

    CapacityBlock.from_lookup(stack, RESERVATION_ID)

    assert ec2.factory_calls[0]["region"] == "us-west-2"
    key = (
        "capblock-constructs:capacity-block:account=210987654321:region=us-west-2:"
        f"capacityReservationId={RESERVATION_ID}"
    )
    assert list(read_json(tmp_path / "cdk.context.json")) == [key]


def test_corrupt_context_file_is_a_clear_error(ec2: StubbedEC2, tmp_path: Path) -> None:
    path = tmp_path / "cdk.context.json"
    path.write_text('{"a": 1,,}')

    with pytest.raises(CapacityBlockError) as raised:
        lookup()

    message = str(raised.value)
    assert str(path) in message
    assert "line 1" in message
    assert "delete it" in message
    assert_clean_error(raised.value)
    assert ec2.factory_calls == []
    assert path.read_text() == '{"a": 1,,}', "a corrupt file must not be overwritten"


def test_context_file_that_is_not_an_object_is_a_clear_error(
    ec2: StubbedEC2, tmp_path: Path
) -> None:
    (tmp_path / "cdk.context.json").write_text("[1, 2]")

    with pytest.raises(CapacityBlockError, match=r"JSON list, not an object.*one JSON object"):
        lookup()


def test_cached_value_missing_fields_says_how_to_refresh(ec2: StubbedEC2) -> None:
    app = make_app(context={KEY: {"capacityReservationId": RESERVATION_ID}})

    with pytest.raises(CapacityBlockError, match=r"lacks instanceType.*--refresh"):
        lookup(app)


# -- interpreting the reservation -----------------------------------------------------------


def test_before_activation_the_count_comes_from_the_tag(ec2: StubbedEC2) -> None:
    add_reservation(ec2, TotalInstanceCount=0, Tags=[{"Key": PLANNED_TAG, "Value": "16"}])

    assert lookup().instance_count == 16


def test_active_block_count_comes_from_total_instance_count(ec2: StubbedEC2) -> None:
    add_reservation(ec2, State="active", TotalInstanceCount=8, AvailableInstanceCount=8, Tags=[])

    assert lookup().instance_count == 8


def test_zero_count_without_the_tag_is_an_error(ec2: StubbedEC2, tmp_path: Path) -> None:
    add_reservation(ec2, TotalInstanceCount=0, Tags=[{"Key": PLANNED_TAG, "Value": "four"}])

    with pytest.raises(CapacityBlockError) as raised:
        lookup()

    assert "TotalInstanceCount is 0" in str(raised.value)
    assert PLANNED_TAG in str(raised.value)
    assert not (tmp_path / "cdk.context.json").exists()


def test_start_date_milliseconds_are_dropped(ec2: StubbedEC2, tmp_path: Path) -> None:
    add_reservation(ec2, StartDate=datetime(2027, 3, 1, 11, 30, 0, 999000, tzinfo=timezone.utc))

    block = lookup()

    # Scheduled actions take YYYY-MM-DDThh:mm:ssZ: whole seconds, UTC.
    assert read_json(tmp_path / "cdk.context.json")[KEY]["startDate"] == "2027-03-01T11:30:00Z"
    assert block.start == datetime(2027, 3, 1, 11, 30, tzinfo=timezone.utc)


def test_dates_in_another_offset_are_stored_in_utc(ec2: StubbedEC2, tmp_path: Path) -> None:
    plus_two = timezone(timedelta(hours=2))
    add_reservation(ec2, EndDate=datetime(2027, 3, 15, 13, 30, tzinfo=plus_two))

    lookup()

    assert read_json(tmp_path / "cdk.context.json")[KEY]["endDate"] == "2027-03-15T11:30:00Z"


def test_ordinary_capacity_reservation_is_rejected(ec2: StubbedEC2, tmp_path: Path) -> None:
    add_reservation(ec2, ReservationType="default", State="active", TotalInstanceCount=4)

    with pytest.raises(CapacityBlockError) as raised:
        lookup()

    message = str(raised.value)
    assert "'default'" in message
    assert "On-Demand Capacity Reservation" in message
    assert "capacity-block" in message
    assert RESERVATION_ID in message
    assert not (tmp_path / "cdk.context.json").exists()


@pytest.mark.parametrize(
    "state",
    ["payment-failed", "cancelled", "expired", "failed", "pending", "unavailable", "cancelling"],
)
def test_unusable_state_is_an_error_naming_it(ec2: StubbedEC2, tmp_path: Path, state: str) -> None:
    add_reservation(ec2, State=state)

    with pytest.raises(CapacityBlockError) as raised:
        lookup()

    message = str(raised.value)
    assert f"state is {state!r}" in message
    assert_names_reservation(message)
    dead = state in {"payment-failed", "cancelled", "expired", "failed"}
    fix = "Buy a new Capacity Block" if dead else "aws ec2 describe-capacity-reservations"
    assert fix in message
    assert not (tmp_path / "cdk.context.json").exists()


@pytest.mark.parametrize(
    ("state", "total"), [("payment-pending", 0), ("scheduled", 0), ("active", 4)]
)
def test_usable_states_are_accepted(ec2: StubbedEC2, state: str, total: int) -> None:
    add_reservation(ec2, State=state, TotalInstanceCount=total)

    assert lookup().instance_count == 4


def test_several_problems_are_reported_together(ec2: StubbedEC2) -> None:
    add_reservation(ec2, ReservationType="default", State="expired")

    with pytest.raises(CapacityBlockError) as raised:
        lookup()

    assert raised.value.problems[0].startswith("its ReservationType is 'default'")
    assert raised.value.problems[1].startswith("its state is 'expired'")


def test_ultraserver_block_reclaims_an_hour_before_the_end(ec2: StubbedEC2, tmp_path: Path) -> None:
    add_reservation(
        ec2,
        CapacityBlockId=BLOCK_ID,
        InstanceType="p6e-gb200.36xlarge",
        AvailabilityZone="us-east-1-dfw-2a",
        AvailabilityZoneId="use1-dfw2-az1",
        Tags=[{"Key": PLANNED_TAG, "Value": "18"}],
    )
    ec2.stubber.add_response(
        "describe_capacity_blocks",
        {
            "CapacityBlocks": [
                {
                    "CapacityBlockId": BLOCK_ID,
                    "UltraserverType": "u-p6e-gb200x72",
                    "CapacityReservationIds": [RESERVATION_ID],
                    "State": "scheduled",
                }
            ]
        },
        {"CapacityBlockIds": [BLOCK_ID]},
    )
    calls_before = _context_cache.aws_call_count

    block = lookup()

    assert _context_cache.aws_call_count == calls_before + 2
    assert block.ultraserver_type == "u-p6e-gb200x72"
    assert block.capacity_block_id == BLOCK_ID
    assert block.reclaim_start == END - timedelta(minutes=60)
    cached = read_json(tmp_path / "cdk.context.json")[KEY]
    assert cached["ultraserverType"] == "u-p6e-gb200x72"
    assert cached["capacityBlockId"] == BLOCK_ID


def test_instance_block_with_a_block_id_stays_an_instance_block(ec2: StubbedEC2) -> None:
    add_reservation(ec2, CapacityBlockId=BLOCK_ID)
    ec2.stubber.add_response(
        "describe_capacity_blocks",
        {"CapacityBlocks": [{"CapacityBlockId": BLOCK_ID, "State": "scheduled"}]},
        {"CapacityBlockIds": [BLOCK_ID]},
    )

    block = lookup()

    assert block.ultraserver_type is None
    assert block.reclaim_start == END - timedelta(minutes=30)


def test_empty_answer_is_an_error(ec2: StubbedEC2) -> None:
    ec2.stubber.add_response(
        "describe_capacity_reservations", {"CapacityReservations": []}, REQUEST
    )

    with pytest.raises(CapacityBlockError, match="returned no reservation"):
        lookup()


# -- input checks -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad_id",
    ["cr-123", "CR-0123456789ABCDEF0", "cb-0123456789abcdef0", "", "cr-0123456789abcdef", "x"],
)
def test_malformed_id_is_rejected_before_any_call(ec2: StubbedEC2, bad_id: str) -> None:
    calls_before = _context_cache.aws_call_count

    with pytest.raises(CapacityBlockError) as raised:
        lookup(reservation_id=bad_id)

    message = str(raised.value)
    assert repr(bad_id) in message
    assert "cr-0123456789abcdef0" in message  # an example of the right form
    assert _context_cache.aws_call_count == calls_before
    assert ec2.factory_calls == []


def test_environment_agnostic_stack_is_an_error_showing_the_fix(ec2: StubbedEC2) -> None:
    stack = Stack(make_app(), "Agnostic")

    with pytest.raises(CapacityBlockError) as raised:
        CapacityBlock.from_lookup(stack, RESERVATION_ID)

    message = str(raised.value)
    assert "environment-agnostic" in message
    assert "'Agnostic'" in message
    assert "env=Environment(account='123456789012', region='us-east-2')" in message
    assert ec2.factory_calls == []


def test_scope_outside_a_stack_is_a_clear_error(ec2: StubbedEC2) -> None:
    with pytest.raises(CapacityBlockError) as raised:
        CapacityBlock.from_lookup(make_app(), RESERVATION_ID)

    assert "not inside a Stack" in str(raised.value)
    assert_clean_error(raised.value)


# -- lookups switched off -----------------------------------------------------------------


def _assert_lookups_off_error(error: CapacityBlockError) -> None:
    message = str(error)
    assert KEY in message
    fill = f"capblock lookup {RESERVATION_ID} --region {REGION} --account {ACCOUNT}"
    assert f"Fill it where AWS credentials are available with '{fill}'" in message
    assert "lookups are switched off" in message
    # The other way in, spelt out: cdk.json's context, with the value the lookup prints. Not
    # --context, which the CDK CLI cuts at the first '=' of the key.
    assert """add the entry to the "context" object of cdk.json""" in message
    assert f"'{fill} --json' prints" in message
    assert "'cdk synth --context' cannot carry it" in message


@pytest.mark.parametrize("setting", ["off", "OFF", "false", "0"])
def test_lookups_off_by_environment_makes_a_miss_an_error(
    ec2: StubbedEC2, monkeypatch: pytest.MonkeyPatch, setting: str
) -> None:
    monkeypatch.setenv("CAPBLOCK_LOOKUPS", setting)
    calls_before = _context_cache.aws_call_count

    with pytest.raises(CapacityBlockError) as raised:
        lookup()

    _assert_lookups_off_error(raised.value)
    assert _context_cache.aws_call_count == calls_before
    assert ec2.factory_calls == []


@pytest.mark.parametrize("flag", [False, "false", "False", "off"])
def test_lookups_off_by_context_makes_a_miss_an_error(ec2: StubbedEC2, flag: object) -> None:
    app = make_app(context={"capblock-constructs:lookups": flag})

    with pytest.raises(CapacityBlockError) as raised:
        lookup(app)

    _assert_lookups_off_error(raised.value)
    assert ec2.factory_calls == []


@pytest.mark.parametrize("flag", [True, "true"])
def test_lookups_on_by_context_still_fetches(ec2: StubbedEC2, flag: object) -> None:
    add_reservation(ec2)

    assert lookup(make_app(context={"capblock-constructs:lookups": flag})).instance_count == 4


def test_lookups_off_still_serves_the_cache(
    ec2: StubbedEC2, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CAPBLOCK_LOOKUPS", "off")
    (tmp_path / "cdk.context.json").write_text(json.dumps({KEY: expected_value()}))

    assert lookup().instance_count == 4
    assert lookup(make_app(context={KEY: expected_value(instanceCount=2)})).instance_count == 2


@pytest.mark.parametrize("flag", [False, "false", "off"])
def test_context_file_off_neither_reads_nor_writes_the_file(
    ec2: StubbedEC2, tmp_path: Path, flag: object
) -> None:
    on_disk = {KEY: expected_value(instanceCount=2)}
    (tmp_path / "cdk.context.json").write_text(json.dumps(on_disk))
    add_reservation(ec2)

    # Fetched (4 instances), not served from the file (2), and the file is left as it was.
    app = make_app(context={"capblock-constructs:context-file": flag})
    assert lookup(app).instance_count == 4
    assert json.loads((tmp_path / "cdk.context.json").read_text()) == on_disk


# -- AWS failures -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "status", "expected"),
    [
        ("InvalidCapacityReservationId.NotFound", 400, "EC2 has no reservation"),
        ("InvalidCapacityReservationId.Malformed", 400, "malformed"),
        ("UnauthorizedOperation", 403, "not allowed to call ec2:DescribeCapacityReservations"),
        ("AccessDenied", 403, "not allowed to call ec2:DescribeCapacityReservations"),
        ("RequestLimitExceeded", 503, "kept throttling"),
        ("ExpiredToken", 400, "rejected the credentials"),
        ("RequestExpired", 400, "rejected the credentials"),
        ("AuthFailure", 401, "rejected the credentials"),
        ("OptInRequired", 401, "not opted in"),
        ("InternalError", 500, "failed with InternalError"),
    ],
)
def test_ec2_error_becomes_one_clear_error(
    ec2: StubbedEC2, tmp_path: Path, code: str, status: int, expected: str
) -> None:
    ec2.stubber.add_client_error(
        "describe_capacity_reservations",
        service_error_code=code,
        service_message="Some message from EC2.",
        http_status_code=status,
        expected_params=REQUEST,
    )

    with pytest.raises(CapacityBlockError) as raised:
        lookup()

    message = str(raised.value)
    assert expected in message
    assert message.startswith(
        f"Capacity Block {RESERVATION_ID} (account {ACCOUNT}, region {REGION}): "
    )
    assert_clean_error(raised.value)
    assert not (tmp_path / "cdk.context.json").exists()


def test_a_denied_lookup_names_the_command_that_fills_this_reservation(ec2: StubbedEC2) -> None:
    ec2.stubber.add_client_error(
        "describe_capacity_reservations",
        service_error_code="UnauthorizedOperation",
        http_status_code=403,
        expected_params=REQUEST,
    )

    with pytest.raises(CapacityBlockError) as raised:
        lookup()

    # The key holds the stack's account, so the command names it (a shared block's owner
    # may be another account).
    command = f"capblock lookup {RESERVATION_ID} --region {REGION} --account {ACCOUNT}"
    assert f"fill the cache elsewhere with '{command}'" in str(raised.value)


def test_error_on_describe_capacity_blocks_names_that_action(ec2: StubbedEC2) -> None:
    add_reservation(ec2, CapacityBlockId=BLOCK_ID)
    ec2.stubber.add_client_error(
        "describe_capacity_blocks",
        service_error_code="UnauthorizedOperation",
        http_status_code=403,
        expected_params={"CapacityBlockIds": [BLOCK_ID]},
    )

    with pytest.raises(CapacityBlockError) as raised:
        lookup()

    assert "ec2:DescribeCapacityBlocks" in str(raised.value)
    assert_clean_error(raised.value)


@pytest.mark.parametrize(
    ("failure", "expected"),
    [
        (NoCredentialsError(), "no usable AWS credentials were found"),
        (
            TokenRetrievalError(provider="sso", error_msg="Token has expired"),
            "could not be loaded or have expired",
        ),
        (
            EndpointConnectionError(endpoint_url="https://ec2.us-east-2.amazonaws.com/"),
            "could not reach the EC2 endpoint",
        ),
        (
            ConnectTimeoutError(endpoint_url="https://ec2.us-east-2.amazonaws.com/"),
            "could not reach the EC2 endpoint",
        ),
    ],
)
def test_client_side_failure_becomes_one_clear_error(
    ec2: StubbedEC2, monkeypatch: pytest.MonkeyPatch, failure: Exception, expected: str
) -> None:
    def fail(**request: Any) -> Any:
        assert request == REQUEST
        raise failure

    monkeypatch.setattr(ec2.client, "describe_capacity_reservations", fail)

    with pytest.raises(CapacityBlockError) as raised:
        lookup()

    message = str(raised.value)
    assert expected in message
    assert_names_reservation(message)
    assert "CAPBLOCK_LOOKUPS=off" in message  # the offline way out
    assert_clean_error(raised.value)


def test_unknown_profile_is_a_clear_error() -> None:
    with pytest.raises(CapacityBlockError) as raised:
        _aws.client("ec2", region=REGION, profile="no-such-profile", subject="Capacity Block X")

    message = str(raised.value)
    assert message.startswith("Capacity Block X: could not set up an AWS ec2 client")
    assert "no-such-profile" in message
    assert_clean_error(raised.value)


def test_real_client_factory_builds_an_ec2_client_for_the_region() -> None:
    client = _aws.ec2_client(region="eu-west-2", profile=None, subject="X")

    assert client.meta.service_model.service_name == "ec2"
    assert client.meta.region_name == "eu-west-2"
    assert client.meta.config.retries["mode"] == "standard"


@pytest.mark.parametrize(
    ("failure", "expected"),
    [
        (PartialCredentialsError(provider="env", cred_var="AWS_SECRET_ACCESS_KEY"), "no usable"),
        (ProfileNotFound(profile="gpu"), "check AWS_PROFILE or --profile"),
        (NoRegionError(), "pass --region"),
        (ReadTimeoutError(endpoint_url="https://eks.us-east-2.amazonaws.com/"), "EKS endpoint"),
        (ParamValidationError(report="bad"), "eks:DescribeCluster failed: "),
        (KeyError("x"), "failed unexpectedly: KeyError"),
    ],
)
def test_describe_error_covers_every_kind_of_failure(failure: Exception, expected: str) -> None:
    error = _aws.describe_error(
        failure,
        subject="Cluster c",
        action="eks:DescribeCluster",
        not_found="No such cluster",
        fill_command="capblock lookup-cluster c --region us-east-2",
    )

    assert expected in str(error)
    assert str(error).startswith("Cluster c: ")


@pytest.mark.parametrize(
    ("fill_command", "named"),
    [
        (
            "capblock lookup cr-0123456789abcdef0 --region us-east-2",
            ("'capblock lookup cr-0123456789abcdef0 --region us-east-2'",),
        ),
        ("capblock lookup-cluster ml --region us-east-2", ("'capblock lookup-cluster ml",)),
    ],
)
@pytest.mark.parametrize(
    "failure",
    [
        NoCredentialsError(),
        ClientError(
            {"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "DescribeCluster"
        ),
    ],
    ids=["no-credentials", "access-denied"],
)
def test_describe_error_names_the_command_that_fills_this_cache(
    failure: Exception, fill_command: str, named: tuple[str, ...]
) -> None:
    message = str(
        _aws.describe_error(
            failure,
            subject="EKS cluster 'ml'",
            action="eks:DescribeCluster",
            not_found="n",
            fill_command=fill_command,
        )
    )
    assert all(command in message for command in named), message
    # Never the Capacity Block command alone for what another command fills.
    assert "'capblock lookup'" not in message


def test_describe_error_passes_a_capacity_block_error_through() -> None:
    original = CapacityBlockError("already clear")

    assert (
        _aws.describe_error(original, subject="s", action="a", not_found="n", fill_command="f")
        is original
    )


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"InstanceType": None}, "EC2 returned no InstanceType"),
        ({"AvailabilityZone": None, "InstanceType": None}, "no InstanceType, AvailabilityZone"),
        ({"EndDate": None}, "EC2 returned no EndDate"),
    ],
)
def test_incomplete_reservation_is_an_error(overrides: dict[str, Any], expected: str) -> None:
    with pytest.raises(CapacityBlockError, match=expected):
        lookup_module.interpret_reservation(reservation(**overrides), subject="s")


def test_string_and_naive_dates_are_read_as_utc() -> None:
    value = lookup_module.interpret_reservation(
        reservation(StartDate="2027-03-01T11:30:00.250Z", EndDate=datetime(2027, 3, 15, 11, 30)),
        subject="s",
    )

    assert (value["startDate"], value["endDate"]) == ("2027-03-01T11:30:00Z", END_TEXT)


def test_write_keeps_the_file_mode(tmp_path: Path) -> None:
    path = tmp_path / "cdk.context.json"
    path.write_text("{}")
    path.chmod(0o640)

    _context_cache.write_context_value("k", {"v": 1}, path)

    assert path.stat().st_mode & 0o777 == 0o640
    assert read_json(path) == {"k": {"v": 1}}


def test_reservation_that_cannot_make_a_block_is_not_cached(
    ec2: StubbedEC2, tmp_path: Path
) -> None:
    add_reservation(ec2, EndDate=datetime(2027, 2, 1, 11, 30, tzinfo=timezone.utc))

    with pytest.raises(CapacityBlockError, match="is not after start"):
        lookup()

    assert not (tmp_path / "cdk.context.json").exists()


def test_the_lookup_builds_the_block_with_what_it_is_given(ec2: StubbedEC2, tmp_path: Path) -> None:
    # The lookup knows no value object: from_lookup hands it CapacityBlock.from_context_value.
    add_reservation(ec2)
    built: list[tuple[Any, str]] = []

    def build(value: Any, *, source: str) -> str:
        built.append((value, source))
        return "the block"

    result = lookup_module.lookup_capacity_block(make_stack(), RESERVATION_ID, build=build)

    assert result == "the block"
    # Once to check the fetched value before it is cached, once for the cached value.
    assert [value for value, _ in built] == [expected_value(), expected_value()]
    assert built[0][1] == f"Capacity Block {RESERVATION_ID} (account {ACCOUNT}, region {REGION})"
    assert built[1][1] == f"cache entry {KEY!r}"
    assert read_json(tmp_path / "cdk.context.json") == {KEY: expected_value()}


def test_a_value_the_builder_rejects_is_not_cached(ec2: StubbedEC2, tmp_path: Path) -> None:
    add_reservation(ec2)

    def build(value: Any, *, source: str) -> object:
        raise CapacityBlockError("rejected", subject=source)

    with pytest.raises(CapacityBlockError, match="rejected"):
        lookup_module.lookup_capacity_block(make_stack(), RESERVATION_ID, build=build)

    assert not (tmp_path / "cdk.context.json").exists()


def test_the_lookup_module_does_not_import_the_value_object() -> None:
    # capacity_block imports the lookup (lazily, in from_lookup); the lookup must not
    # import it back, or the two would form a circle.
    code = (
        "import sys\n"
        "import capblock_constructs._reservation_lookup\n"
        "print('capblock_constructs.capacity_block' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )

    assert result.stdout.strip() == "False"


class _Body:
    def __init__(self, payload: bytes) -> None:
        self.payload = payload

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.payload


_THROTTLED = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error>'
    b"<Code>RequestLimitExceeded</Code><Message>Request limit exceeded.</Message>"
    b"</Error></Errors><RequestID>1234</RequestID></Response>"
)


@pytest.fixture
def offline_endpoint(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[float]:
    """botocore's real request and retry path, with no network and no real sleeping."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(botocore.endpoint.Endpoint, "make_request", _REAL_MAKE_REQUEST)
    sleeps: list[float] = []
    monkeypatch.setattr("botocore.endpoint.time.sleep", sleeps.append)
    return sleeps


def test_throttling_is_reported_after_botocores_retries(
    offline_endpoint: list[float], monkeypatch: pytest.MonkeyPatch
) -> None:
    attempts: list[str] = []

    def throttled(self: Any, request: Any) -> AWSResponse:
        attempts.append(request.url)
        return AWSResponse(request.url, 503, HTTPHeaders(), _Body(_THROTTLED))

    monkeypatch.setattr(botocore.endpoint.Endpoint, "_send", throttled)

    with pytest.raises(CapacityBlockError) as raised:
        lookup()

    # The real client (standard retry mode, 5 attempts) retried before giving up.
    assert len(attempts) == 5
    assert len(offline_endpoint) == 4
    assert "kept throttling ec2:DescribeCapacityReservations after retries" in str(raised.value)
    assert_clean_error(raised.value)


def test_unreachable_endpoint_is_reported_after_botocores_retries(
    offline_endpoint: list[float], monkeypatch: pytest.MonkeyPatch
) -> None:
    attempts: list[str] = []

    def unreachable(self: Any, request: Any) -> AWSResponse:
        attempts.append(request.url)
        raise EndpointConnectionError(endpoint_url=request.url)

    monkeypatch.setattr(botocore.endpoint.Endpoint, "_send", unreachable)

    with pytest.raises(CapacityBlockError) as raised:
        lookup()

    assert len(attempts) == 5
    assert "could not reach the EC2 endpoint" in str(raised.value)
    assert_clean_error(raised.value)
