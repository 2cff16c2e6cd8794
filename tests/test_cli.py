"""The `capblock` command: `capblock lookup` against a stubbed EC2, and the timeline text."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import NoCredentialsError
from botocore.stub import Stubber

from capblock_constructs import _context_cache
from capblock_constructs.cli import main
from capblock_constructs.timeline import format_duration, timeline

from .ec2_stub import StubbedEC2, expected_value
from .support import ACCOUNT, REGION, RESERVATION_ID, block

BLOCK_ID = "cb-0123456789abcdef0"
SHARING_ACCOUNT = "999988887777"
# The reference block: 14 days ending 2027-03-15 at 11:30 UTC.
END = datetime(2027, 3, 15, 11, 30, tzinfo=timezone.utc)


def key_for(account: str = ACCOUNT, region: str = REGION) -> str:
    return (
        f"capblock-constructs:capacity-block:account={account}:region={region}:"
        f"capacityReservationId={RESERVATION_ID}"
    )


def utc(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def context_file(tmp_path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((tmp_path / "cdk.context.json").read_text())
    return data


def timeline_lines(output: str, moment: datetime) -> list[str]:
    """Every timeline line for ``moment``, in order."""
    return [line for line in output.splitlines() if line.strip().startswith(utc(moment))]


def timeline_line(output: str, moment: datetime) -> str:
    """The one timeline line for ``moment`` (fails if there is none or several)."""
    lines = timeline_lines(output, moment)
    assert len(lines) == 1, f"{len(lines)} timeline lines at {utc(moment)}, not 1, in:\n{output}"
    return lines[0]


# -- lookup: fetch, print, write -------------------------------------------------------------


def test_lookup_writes_the_cache_entry_and_prints_the_timeline(
    ec2: StubbedEC2, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "cdk.context.json").write_text(json.dumps({"zz": 1, "aa": 2}))
    ec2.add_reservation()
    calls_before = _context_cache.aws_call_count

    code = main(["lookup", RESERVATION_ID, "--region", REGION])

    out, err = capsys.readouterr()
    assert code == 0, err
    assert err == ""
    assert _context_cache.aws_call_count == calls_before + 1
    assert [(c["region"], c["profile"]) for c in ec2.factory_calls] == [(REGION, None)]
    # Same key and value as CapacityBlock.from_lookup; other keys kept; keys sorted.
    written = context_file(tmp_path)
    assert written == {"zz": 1, "aa": 2, key_for(): expected_value()}
    assert list(written) == sorted(written)

    assert "p5.48xlarge" in out
    assert re.search(r"Instances:\s+4$", out, re.MULTILINE)
    assert "us-east-2a (use2-az1)" in out
    assert re.search(r"Duration:\s+14 days$", out, re.MULTILINE)
    assert re.search(r"State at lookup:\s+scheduled$", out, re.MULTILINE)
    start = timeline_line(out, datetime(2027, 3, 1, 11, 30, tzinfo=timezone.utc))
    assert "capblock-constructs controller scales node groups up" in start
    assert "EKS does not scale node groups up by itself" in start
    # EC2 reclaims instance blocks 30 minutes before the end.
    assert "EC2 starts terminating" in timeline_line(out, END - timedelta(minutes=30))
    # The controller's default drain for both kinds comes 40 minutes before the end (30 +
    # 10), and EKS's own scale-down of managed node groups then too, as a second line.
    controller, eks = timeline_lines(out, END - timedelta(minutes=40))
    assert "controller scales node groups to zero by default (managed and self-managed)" in (
        controller
    )
    assert "EKS scales CAPACITY_BLOCK managed node groups to zero" in eks
    assert "second line" in eks
    assert "the reservation ends" in timeline_line(out, END)
    assert key_for() in out
    assert "Written to" in out


def test_timeline_is_in_time_order(ec2: StubbedEC2, capsys: pytest.CaptureFixture[str]) -> None:
    ec2.add_reservation()

    assert main(["lookup", RESERVATION_ID, "--region", REGION]) == 0

    stamps = re.findall(r"^  (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)  ", capsys.readouterr().out, re.M)
    assert len(stamps) == 5
    assert stamps == sorted(stamps)


def test_lookup_json_prints_the_cache_value(
    ec2: StubbedEC2, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ec2.add_reservation()

    assert main(["lookup", RESERVATION_ID, "--region", REGION, "--json"]) == 0

    out = capsys.readouterr().out
    assert json.loads(out) == expected_value()
    assert context_file(tmp_path) == {key_for(): expected_value()}


def test_existing_entry_is_shown_without_calling_ec2(
    ec2: StubbedEC2, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cached = expected_value(endDate="2027-03-08T11:30:00Z")
    (tmp_path / "cdk.context.json").write_text(json.dumps({key_for(): cached}))
    calls_before = _context_cache.aws_call_count

    assert main(["lookup", RESERVATION_ID, "--region", REGION]) == 0

    out = capsys.readouterr().out
    assert ec2.factory_calls == []
    assert _context_cache.aws_call_count == calls_before
    assert "the reservation ends" in timeline_line(
        out, datetime(2027, 3, 8, 11, 30, tzinfo=timezone.utc)
    )
    assert "EC2 not called" in out
    assert "--refresh" in out
    assert "State at lookup" not in out  # the state is never cached
    assert context_file(tmp_path) == {key_for(): cached}


def test_refresh_refetches_and_replaces_the_entry(
    ec2: StubbedEC2, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The documented refresh after an extension: same ID, later end date.
    stale = expected_value(endDate="2027-03-08T11:30:00Z")
    (tmp_path / "cdk.context.json").write_text(json.dumps({key_for(): stale, "other": True}))
    ec2.add_reservation(State="active", TotalInstanceCount=4)

    assert main(["lookup", RESERVATION_ID, "--region", REGION, "--refresh"]) == 0

    assert context_file(tmp_path) == {key_for(): expected_value(), "other": True}
    out = capsys.readouterr().out
    assert "the reservation ends" in timeline_line(out, END)
    assert re.search(r"State at lookup:\s+active$", out, re.MULTILINE)


def test_shared_block_is_keyed_for_the_given_account(
    ec2: StubbedEC2, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ec2.add_reservation(OwnerId=SHARING_ACCOUNT)

    assert main(["lookup", RESERVATION_ID, "--region", REGION, "--account", ACCOUNT]) == 0

    assert context_file(tmp_path) == {key_for(ACCOUNT): expected_value(ownerId=SHARING_ACCOUNT)}
    out = capsys.readouterr().out
    assert f"owned by account {SHARING_ACCOUNT} and keyed for account {ACCOUNT}" in out


def test_without_account_the_key_uses_the_owner(
    ec2: StubbedEC2, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ec2.add_reservation(OwnerId=SHARING_ACCOUNT)

    assert main(["lookup", RESERVATION_ID, "--region", REGION]) == 0

    assert list(context_file(tmp_path)) == [key_for(SHARING_ACCOUNT)]
    assert "run again with --account" in capsys.readouterr().out


def test_cached_entry_of_another_account_is_not_shown_for_account(
    ec2: StubbedEC2, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "cdk.context.json").write_text(
        json.dumps({key_for(SHARING_ACCOUNT): expected_value(ownerId=SHARING_ACCOUNT)})
    )
    ec2.add_reservation(OwnerId=SHARING_ACCOUNT)

    assert main(["lookup", RESERVATION_ID, "--region", REGION, "--account", ACCOUNT]) == 0

    assert sorted(context_file(tmp_path)) == sorted([key_for(SHARING_ACCOUNT), key_for(ACCOUNT)])


def test_entries_under_several_accounts_need_account(
    ec2: StubbedEC2, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "cdk.context.json").write_text(
        json.dumps({key_for(ACCOUNT): expected_value(), key_for(SHARING_ACCOUNT): expected_value()})
    )

    assert main(["lookup", RESERVATION_ID, "--region", REGION]) == 2

    err = capsys.readouterr().err
    assert f"{ACCOUNT}, {SHARING_ACCOUNT}" in err
    assert "pass --account" in err


def test_ultraserver_timeline_reclaims_an_hour_before_the_end(
    ec2: StubbedEC2, capsys: pytest.CaptureFixture[str]
) -> None:
    ec2.add_reservation(CapacityBlockId=BLOCK_ID)
    ec2.stubber.add_response(
        "describe_capacity_blocks",
        {"CapacityBlocks": [{"CapacityBlockId": BLOCK_ID, "UltraserverType": "u-p6e-gb200x72"}]},
        {"CapacityBlockIds": [BLOCK_ID]},
    )

    assert main(["lookup", RESERVATION_ID, "--region", REGION]) == 0

    out = capsys.readouterr().out
    assert "UltraServer (u-p6e-gb200x72)" in out
    assert "EC2 starts terminating" in timeline_line(out, END - timedelta(minutes=60))
    drain = timeline_line(out, END - timedelta(minutes=70))
    assert "controller scales node groups to zero by default" in drain
    # EKS's own scale-down (end - 40 min) comes after EC2's UltraServer reclaim.
    eks = timeline_line(out, END - timedelta(minutes=40))
    assert "after EC2 starts reclaiming UltraServer instances" in eks
    assert "the controller drains managed node groups before it, at end - 1 h 10 min" in eks


# -- region and profile ------------------------------------------------------------------


def test_region_comes_from_aws_region(
    ec2: StubbedEC2,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("AWS_REGION", "us-west-2")
    ec2.add_reservation()

    assert main(["lookup", RESERVATION_ID]) == 0

    assert [(c["region"], c["profile"]) for c in ec2.factory_calls] == [("us-west-2", None)]
    assert list(context_file(tmp_path)) == [key_for(region="us-west-2")]


def test_region_falls_back_to_aws_default_region(
    ec2: StubbedEC2, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-2")
    ec2.add_reservation()

    assert main(["lookup", RESERVATION_ID]) == 0

    assert ec2.factory_calls[0]["region"] == "eu-west-2"


def test_region_comes_from_the_profile(
    ec2: StubbedEC2,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = tmp_path / "aws-config"
    config.write_text("[profile gpu]\nregion = ap-northeast-1\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    ec2.add_reservation()

    assert main(["lookup", RESERVATION_ID, "--profile", "gpu"]) == 0

    assert [(c["region"], c["profile"]) for c in ec2.factory_calls] == [("ap-northeast-1", "gpu")]


def test_no_region_anywhere_is_an_error(
    ec2: StubbedEC2, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)

    assert main(["lookup", RESERVATION_ID]) == 2

    assert "pass --region" in capsys.readouterr().err.lower()
    assert ec2.factory_calls == []


def test_unknown_profile_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # The real client factory: the profile fails before any request.
    monkeypatch.chdir(tmp_path)

    assert main(["lookup", RESERVATION_ID, "--region", REGION, "--profile", "nope"]) == 2

    out, err = capsys.readouterr()
    assert out == ""
    assert "nope" in err
    assert "--profile" in err
    assert "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


# -- errors ------------------------------------------------------------------------------


def test_aws_error_is_printed_without_traceback_and_exits_2(
    ec2: StubbedEC2, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ec2.stubber.add_client_error(
        "describe_capacity_reservations",
        service_error_code="InvalidCapacityReservationId.NotFound",
        service_message=f"The capacity reservation ID '{RESERVATION_ID}' does not exist",
        http_status_code=400,
        expected_params={"CapacityReservationIds": [RESERVATION_ID]},
    )

    assert main(["lookup", RESERVATION_ID, "--region", REGION]) == 2

    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith(f"capblock lookup: error: Capacity Block {RESERVATION_ID} (region ")
    assert f"EC2 has no reservation {RESERVATION_ID}" in err
    assert "Traceback" not in err
    assert "botocore" not in err
    assert not (tmp_path / "cdk.context.json").exists()


def test_unusable_block_is_an_error_and_writes_nothing(
    ec2: StubbedEC2, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ec2.add_reservation(State="payment-failed")

    assert main(["lookup", RESERVATION_ID, "--region", REGION]) == 2

    assert "state is 'payment-failed'" in capsys.readouterr().err
    assert not (tmp_path / "cdk.context.json").exists()


def test_refresh_failure_keeps_the_old_entry(
    ec2: StubbedEC2, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "cdk.context.json").write_text(json.dumps({key_for(): expected_value()}))
    ec2.add_reservation(State="expired")

    assert main(["lookup", RESERVATION_ID, "--region", REGION, "--refresh"]) == 2

    assert "state is 'expired'" in capsys.readouterr().err
    assert context_file(tmp_path) == {key_for(): expected_value()}


def test_malformed_id_is_rejected_before_any_call(
    ec2: StubbedEC2, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["lookup", "cr-12", "--region", REGION]) == 2

    err = capsys.readouterr().err
    assert "'cr-12' is not a Capacity Block reservation ID" in err
    assert ec2.factory_calls == []


def test_bad_account_is_rejected(ec2: StubbedEC2, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lookup", RESERVATION_ID, "--region", REGION, "--account", "12345"]) == 2

    assert "--account '12345' is not an AWS account ID" in capsys.readouterr().err
    assert ec2.factory_calls == []


def test_corrupt_cached_entry_says_how_to_refresh(
    ec2: StubbedEC2, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "cdk.context.json").write_text(
        json.dumps({key_for(): {"capacityReservationId": RESERVATION_ID}})
    )

    assert main(["lookup", RESERVATION_ID, "--region", REGION]) == 2

    err = capsys.readouterr().err
    assert "lacks instanceType" in err
    assert "--refresh" in err
    assert ec2.factory_calls == []


def test_no_command_prints_help_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2

    err = capsys.readouterr().err
    assert err.startswith("usage: capblock")
    assert "lookup-cluster" in err


def test_help_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lookup", "--help"]) == 0

    out = capsys.readouterr().out
    # The help explains why --account exists: the key uses the stack's account.
    assert "account of the STACK" in out
    assert "--refresh" in out


def test_usage_error_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lookup"]) == 2
    assert "the following arguments are required: CAPACITY_RESERVATION_ID" in (
        capsys.readouterr().err
    )
    assert main(["lookup", RESERVATION_ID, "--bogus"]) == 2
    assert "unrecognized arguments: --bogus" in capsys.readouterr().err


# -- timeline (pure) ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("span", "text"),
    [
        (timedelta(days=14), "14 days"),
        (timedelta(days=1), "1 day"),
        (timedelta(minutes=40), "40 min"),
        (timedelta(hours=1, minutes=10), "1 h 10 min"),
        (timedelta(days=6, hours=6, minutes=35), "6 days 6 h 35 min"),
        (timedelta(minutes=32, seconds=30), "32 min 30 s"),
        (timedelta(hours=1, seconds=30), "1 h 30 s"),
        (timedelta(seconds=30), "30 s"),
        (timedelta(0), "0 min"),
    ],
)
def test_format_duration(span: timedelta, text: str) -> None:
    assert format_duration(span) == text


def test_timeline_events_follow_the_rules() -> None:
    events = [(event.offset, event.at) for event in timeline(block())]

    # 2027-03-15T11:30Z end: the controller and EKS at 10:50, EC2 reclaims at 11:00.
    assert events == [
        ("start", datetime(2027, 3, 1, 11, 30, tzinfo=timezone.utc)),
        ("end - 40 min", datetime(2027, 3, 15, 10, 50, tzinfo=timezone.utc)),
        ("end - 40 min", datetime(2027, 3, 15, 10, 50, tzinfo=timezone.utc)),
        ("end - 30 min", datetime(2027, 3, 15, 11, 0, tzinfo=timezone.utc)),
        ("end", END),
    ]


def test_ultraserver_timeline_events_follow_the_rules() -> None:
    ultra = block(ultraserver_type="u-p6e-gb200x72", instance_type="p6e-gb200.36xlarge")

    events = [(event.offset, event.at) for event in timeline(ultra)]

    # EC2 reclaims at 10:30 (end - 60 min), the controller drains at 10:20 (end - 70 min),
    # and EKS's own action stays at 10:50, after the reclaim start.
    assert events == [
        ("start", datetime(2027, 3, 1, 11, 30, tzinfo=timezone.utc)),
        ("end - 1 h 10 min", datetime(2027, 3, 15, 10, 20, tzinfo=timezone.utc)),
        ("end - 1 h", datetime(2027, 3, 15, 10, 30, tzinfo=timezone.utc)),
        ("end - 40 min", datetime(2027, 3, 15, 10, 50, tzinfo=timezone.utc)),
        ("end", END),
    ]


def test_reservation_without_owner_needs_account(
    ec2: StubbedEC2, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ec2.add_reservation(OwnerId=None)

    assert main(["lookup", RESERVATION_ID, "--region", REGION]) == 2

    assert "pass --account" in capsys.readouterr().err
    assert not (tmp_path / "cdk.context.json").exists()


# -- lookup-cluster ----------------------------------------------------------------------

CLUSTER = "gpu-cluster"
CLUSTER_VALUE = {
    "name": CLUSTER,
    "endpoint": "https://ABCDEF0123456789.gr7.us-east-2.eks.amazonaws.com",
    "certificateAuthority": "LS0tLS1CRUdJTi==",
    "serviceCidr": "172.20.0.0/16",
    "ipFamily": "ipv4",
    "kubernetesVersion": "1.33",
    "clusterSecurityGroupId": "sg-0123456789abcdef0",
    "authenticationMode": "API",
}


def cluster_key(account: str = ACCOUNT) -> str:
    return (
        f"capblock-constructs:eks-cluster:account={account}:region={REGION}:clusterName={CLUSTER}"
    )


@dataclass
class StubbedClusterAWS:
    eks: Stubber
    sts: Stubber


@pytest.fixture
def cluster_aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[StubbedClusterAWS]:
    from capblock_constructs import _aws, _cluster_info

    monkeypatch.chdir(tmp_path)
    eks = boto3.client("eks", region_name=REGION)
    sts = boto3.client("sts", region_name=REGION)
    monkeypatch.setattr(_cluster_info, "_eks_client", lambda **_: eks)
    real_client = _aws.client

    def client(service: str, **kwargs: Any) -> Any:
        return sts if service == "sts" else real_client(service, **kwargs)

    monkeypatch.setattr(_aws, "client", client)
    stubbed = StubbedClusterAWS(eks=Stubber(eks), sts=Stubber(sts))
    with stubbed.eks, stubbed.sts:
        yield stubbed
        stubbed.eks.assert_no_pending_responses()
        stubbed.sts.assert_no_pending_responses()


def add_cluster(stubbed: StubbedClusterAWS) -> None:
    stubbed.eks.add_response(
        "describe_cluster",
        {
            "cluster": {
                "name": CLUSTER,
                "arn": f"arn:aws:eks:{REGION}:{ACCOUNT}:cluster/{CLUSTER}",
                "version": "1.33",
                "endpoint": CLUSTER_VALUE["endpoint"],
                "status": "ACTIVE",
                "certificateAuthority": {"data": CLUSTER_VALUE["certificateAuthority"]},
                "kubernetesNetworkConfig": {"serviceIpv4Cidr": "172.20.0.0/16", "ipFamily": "ipv4"},
                "resourcesVpcConfig": {"clusterSecurityGroupId": "sg-0123456789abcdef0"},
                "accessConfig": {"authenticationMode": "API"},
            }
        },
        {"name": CLUSTER},
    )


def test_lookup_cluster_keys_by_the_callers_account(
    cluster_aws: StubbedClusterAWS, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cluster_aws.sts.add_response(
        "get_caller_identity",
        {"Account": ACCOUNT, "Arn": f"arn:aws:iam::{ACCOUNT}:user/me", "UserId": "AIDAEXAMPLE"},
        {},
    )
    add_cluster(cluster_aws)

    assert main(["lookup-cluster", CLUSTER, "--region", REGION]) == 0

    out = capsys.readouterr().out
    assert context_file(tmp_path) == {cluster_key(): CLUSTER_VALUE}
    assert re.search(r"Kubernetes:\s+1\.33$", out, re.MULTILINE)
    assert "Written to" in out


def test_lookup_cluster_with_account_skips_sts(
    cluster_aws: StubbedClusterAWS, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    add_cluster(cluster_aws)

    assert (
        main(["lookup-cluster", CLUSTER, "--region", REGION, "--account", ACCOUNT, "--json"]) == 0
    )

    assert json.loads(capsys.readouterr().out) == CLUSTER_VALUE
    assert list(context_file(tmp_path)) == [cluster_key()]


def test_lookup_cluster_shows_an_existing_entry_without_calls(
    cluster_aws: StubbedClusterAWS, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "cdk.context.json").write_text(json.dumps({cluster_key(): CLUSTER_VALUE}))

    assert main(["lookup-cluster", CLUSTER, "--region", REGION]) == 0

    assert "AWS not called" in capsys.readouterr().out


def test_lookup_cluster_rejects_a_bad_name(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from capblock_constructs import _aws, _cluster_info

    monkeypatch.chdir(tmp_path)
    calls: list[str] = []

    # Recorded, not raised: the command turns any failure of a call into exit code 2, so
    # only the message and the absence of calls show that the name check stopped it.
    def caller_account(**_: Any) -> str:
        calls.append("sts")
        return ACCOUNT

    def fetch_cluster(*_: Any, **__: Any) -> dict[str, Any]:
        calls.append("eks")
        return dict(CLUSTER_VALUE)

    monkeypatch.setattr(_aws, "caller_account", caller_account)
    monkeypatch.setattr(_cluster_info, "fetch_cluster", fetch_cluster)

    assert main(["lookup-cluster", "-bad name", "--region", REGION]) == 2

    err = capsys.readouterr().err
    assert err.startswith("capblock lookup-cluster: error: '-bad name' is not an EKS cluster name")
    assert calls == []
    assert list(tmp_path.iterdir()) == []


def test_lookup_cluster_not_found_is_one_clear_error(
    cluster_aws: StubbedClusterAWS, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cluster_aws.eks.add_client_error(
        "describe_cluster",
        service_error_code="ResourceNotFoundException",
        http_status_code=404,
        expected_params={"name": CLUSTER},
    )

    assert main(["lookup-cluster", CLUSTER, "--region", REGION, "--account", ACCOUNT]) == 2

    err = capsys.readouterr().err
    assert f"EKS has no cluster {CLUSTER!r}" in err
    assert "Traceback" not in err
    assert not (tmp_path / "cdk.context.json").exists()


def test_lookup_cluster_sts_failure_is_one_clear_error(
    cluster_aws: StubbedClusterAWS, capsys: pytest.CaptureFixture[str]
) -> None:
    cluster_aws.sts.add_client_error(
        "get_caller_identity", service_error_code="ExpiredToken", http_status_code=403
    )

    assert main(["lookup-cluster", CLUSTER, "--region", REGION]) == 2

    assert "rejected the credentials (ExpiredToken" in capsys.readouterr().err


def test_lookup_cluster_without_credentials_names_the_command_that_fills_its_cache(
    cluster_aws: StubbedClusterAWS,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    def no_credentials(**_: Any) -> Any:
        raise NoCredentialsError()

    # Without --account the command first asks STS whose credentials these are.
    monkeypatch.setattr(cluster_aws.sts.client, "get_caller_identity", no_credentials)

    assert main(["lookup-cluster", CLUSTER, "--region", REGION]) == 2

    err = capsys.readouterr().err
    assert "no usable AWS credentials were found" in err
    assert "'capblock lookup-cluster" in err
    # Not the Capacity Block command, which fills another cache entry.
    assert "'capblock lookup'" not in err
    assert not (tmp_path / "cdk.context.json").exists()


def test_lookup_cluster_with_account_without_credentials_names_the_exact_command(
    cluster_aws: StubbedClusterAWS,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    def no_credentials(**_: Any) -> Any:
        raise NoCredentialsError()

    monkeypatch.setattr(cluster_aws.eks.client, "describe_cluster", no_credentials)

    assert main(["lookup-cluster", CLUSTER, "--region", REGION, "--account", ACCOUNT]) == 2

    err = capsys.readouterr().err
    assert f"the cache is filled by 'capblock lookup-cluster {CLUSTER} --region {REGION}'" in err


@pytest.mark.parametrize("region", ["us-east-2:x", "useast2", "US-EAST-2"])
def test_bad_region_is_rejected_before_any_call(
    ec2: StubbedEC2, capsys: pytest.CaptureFixture[str], region: str
) -> None:
    assert main(["lookup", RESERVATION_ID, "--region", region]) == 2

    assert f"{region!r} is not an AWS region name" in capsys.readouterr().err
    assert ec2.factory_calls == []
