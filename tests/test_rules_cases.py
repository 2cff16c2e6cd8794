"""Every template rule against one template that breaks it and one that does not.

The templates are hand-written YAML (CloudFormation short-form tags included) in
tests/data/rules/cases/<rule>-fail.yaml and <rule>-pass.yaml; they use the
Capacity Blocks and the pinned "now" of tests/data/rules/cdk.context.json. The
expectations below are worked out from the AWS rule each check enforces, not
copied from the output.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import pytest

from capblock_constructs._time import format_utc as utc
from capblock_constructs.controller.runtime.phase import EC2_RECLAIM_LEAD
from capblock_constructs.rules import (
    RULES,
    Finding,
    Severity,
    blocks_from_context,
    check_template,
    load_template,
    now_from_context,
    rule,
)
from tests.rules_support import CASES, CONTEXT

BLOCKS = blocks_from_context(CONTEXT)
NOW = now_from_context(CONTEXT)

# The block of the cases: 4 x p5.48xlarge in us-east-2a, 2031-03-03 11:30 to 2031-03-17 11:30 UTC.
BLOCK = BLOCKS["cr-0123456789abcdef0"]
END = datetime(2031, 3, 17, 11, 30, tzinfo=timezone.utc)
RECLAIM = END - EC2_RECLAIM_LEAD  # EC2 starts terminating instances 30 minutes before the end.
SCALE_DOWN = datetime(2031, 3, 17, 10, 50, tzinfo=timezone.utc)  # the cases' scale-down action
ACTION_DELAY = timedelta(minutes=2)  # "might be delayed for up to two minutes" (EC2 Auto Scaling)


@dataclass(frozen=True)
class Expected:
    """What a failing case must report: where, and words of the offending value and the fix."""

    resource: str
    path: tuple[str | int, ...]
    says: tuple[str, ...]


LAUNCH_DATA = ("Properties", "LaunchTemplateData")

EXPECTED: dict[str, list[Expected]] = {
    "CB101": [
        Expected(
            "GpuTemplate",
            (*LAUNCH_DATA, "CapacityReservationSpecification"),
            ("capacity-reservations-only", "CapacityReservationTarget.CapacityReservationId"),
        )
    ],
    "CB102": [Expected("GpuTemplate", LAUNCH_DATA, ("no InstanceType", "set InstanceType"))],
    "CB103": [
        Expected(
            "GpuTemplate",
            (*LAUNCH_DATA, "InstanceMarketOptions", "MarketType"),
            ("Odcr", "On-Demand Capacity Reservation", "remove InstanceMarketOptions"),
        )
    ],
    "CB104": [
        Expected(
            "GpuTemplate",
            (*LAUNCH_DATA, "InstanceType"),
            ("'p4d.24xlarge'", f"set InstanceType to {BLOCK.instance_type!r}"),
        )
    ],
    "CB105": [
        Expected(
            "GpuTemplate",
            (*LAUNCH_DATA, "Placement", "GroupName"),
            ("Cluster", "cluster placement group", "remove Placement.GroupName"),
        )
    ],
    "CB106": [
        Expected(
            "GpuTemplate",
            (*LAUNCH_DATA, "InstanceMarketOptions"),
            (BLOCK.capacity_reservation_id, "MarketType to 'capacity-block'"),
        )
    ],
    "CB201": [
        Expected(
            "GpuNodes", ("Properties", "InstanceTypes"), ("[p5.48xlarge]", "remove InstanceTypes")
        )
    ],
    "CB202": [Expected("GpuNodes", ("Properties",), ("no LaunchTemplate", "add a LaunchTemplate"))],
    "CB203": [
        Expected(
            "GpuNodes",
            ("Properties", "LaunchTemplate"),
            ("GpuTemplate", "MarketType to 'capacity-block'"),
        )
    ],
    "CB204": [
        Expected(
            "GpuNodes",
            ("Properties", "ScalingConfig", "DesiredSize"),
            ("DesiredSize is 5", f"at most {BLOCK.instance_count}"),
        )
    ],
    "CB205": [
        Expected(
            "GpuNodes",
            ("Properties", "ScalingConfig", "MaxSize"),
            ("MaxSize is 8", f"set MaxSize to {BLOCK.instance_count}"),
        )
    ],
    "CB206": [
        # EKS: label keys 1-63 characters including the prefix; values 1-63 (so not empty).
        Expected(
            "GpuNodes",
            ("Properties", "Labels", "example.com/" + "k" * 52),
            ("64 characters", "1 to 63"),
        ),
        Expected("GpuNodes", ("Properties", "Labels", "team"), ("'team'", "0 characters")),
    ],
    "CB207": [
        # EKS: taint keys 1-63 characters, values 0-63.
        Expected("GpuNodes", ("Properties", "Taints", 0), ("taint key", "64 characters")),
        Expected("GpuNodes", ("Properties", "Taints", 1), ("taint value", "0 to 63")),
    ],
    "CB208": [
        Expected(
            "GpuNodes",
            ("Properties", "WarmPoolConfig", "Enabled"),
            ("warm pool", "remove WarmPoolConfig"),
        )
    ],
    "CB209": [
        Expected(
            "GpuNodes",
            ("Properties", "Subnets", 1),
            ("OtherSubnet", "us-east-2b", f"only subnets in {BLOCK.availability_zone}"),
        )
    ],
    "CB301": [
        Expected("Group", ("Properties", "MixedInstancesPolicy"), ("replace MixedInstancesPolicy",))
    ],
    "CB302": [
        Expected("WarmPool", ("Properties", "AutoScalingGroupName"), ("Group", "remove the warm"))
    ],
    "CB303": [
        Expected(
            "Group",
            ("Properties", "LaunchTemplate", "Version"),
            ("'$Latest'", "CloudFormation does not support", "LatestVersionNumber"),
        )
    ],
    "CB304": [
        Expected(
            "Group",
            ("Properties", "VPCZoneIdentifier", 1),
            ("OtherSubnet", "us-east-2c", f"only subnets in {BLOCK.availability_zone}"),
        )
    ],
    "CB305": [
        Expected(
            "Group",
            ("Properties", "MaxSize"),
            ("MaxSize is 6", f"set MaxSize to {BLOCK.instance_count}"),
        )
    ],
    "CB306": [
        Expected("Group", ("Properties", "PlacementGroup"), ("Cluster", "remove PlacementGroup"))
    ],
    "CB401": [
        Expected(
            "ScaleUp", ("Properties", "StartTime"), ("2031-02-28T23:00:00Z", "into the future")
        )
    ],
    "CB402": [Expected("ScaleUp", ("Properties", "StartTime"), ("2031-03-01T00:10:00Z", "10 min"))],
    # The second action in logical-ID order is reported, naming the first.
    "CB403": [Expected("ScaleUp", ("Properties", "StartTime"), ("2031-03-03T11:30:00Z", "AlsoUp"))],
    "CB404": [
        Expected(
            "ScaleDown",
            ("Properties", "StartTime"),
            (f"at {utc(RECLAIM)}", f"before {utc(RECLAIM)}"),
        )
    ],
    "CB405": [
        Expected(
            "Group",
            (),
            # The suggested time: 40 minutes before the end (EC2's 30-minute reclaim lead and
            # 10 minutes to drain, the lead EKS itself scales managed node groups down with).
            (utc(RECLAIM), "DesiredCapacity 0", utc(END - timedelta(minutes=40))),
        )
    ],
    "CB501": [
        # Scale-down at 10:50, up to 2 minutes late: 10:52; EC2 reclaims at 11:00; so the
        # default 3600 s heartbeat must come down to 8 minutes.
        Expected(
            "DrainHook",
            ("Properties", "HeartbeatTimeout"),
            ("3600 s", f"at most {int((RECLAIM - SCALE_DOWN - ACTION_DELAY).total_seconds())} s"),
        )
    ],
}


def run(case: str) -> list[Finding]:
    path = CASES / f"{case}.yaml"
    return check_template(load_template(path), template_path=str(path), blocks=BLOCKS, now=NOW)


def test_every_rule_has_a_failing_and_a_passing_case() -> None:
    files = {path.name for path in CASES.glob("*.yaml")}
    wanted = {f"{item.id}-{kind}.yaml" for item in RULES for kind in ("fail", "pass")}
    assert files == wanted
    assert set(EXPECTED) == {item.id for item in RULES}


@pytest.mark.parametrize("rule_id", [item.id for item in RULES])
def test_failing_case_breaks_only_its_rule(rule_id: str) -> None:
    findings = run(f"{rule_id}-fail")
    assert {finding.rule for finding in findings} == {rule_id}
    assert all(finding.severity is rule(rule_id).severity for finding in findings)
    expected = EXPECTED[rule_id]
    assert [(finding.resource, finding.path) for finding in findings] == [
        (item.resource, item.path) for item in expected
    ]
    for finding, item in zip(findings, expected, strict=True):
        # The message names the resource first, then the offending value and the fix.
        assert finding.message.split(":", 1)[0].endswith(f" {item.resource}")
        for words in item.says:
            assert words in finding.message, (words, finding.message)


@pytest.mark.parametrize("rule_id", [item.id for item in RULES])
def test_passing_case_has_no_finding(rule_id: str) -> None:
    assert run(f"{rule_id}-pass") == []


def test_rule_table() -> None:
    ids = [item.id for item in RULES]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    families = {"1": "AWS::EC2::LaunchTemplate", "2": "AWS::EKS::Nodegroup"}
    for item in RULES:
        assert len(item.id) == 5
        assert item.id.startswith("CB")
        assert item.id[2:].isdigit()
        assert "\n" not in item.title
        assert item.source.startswith("https://docs.aws.amazon.com/")
        assert item.resource_types
        if item.id[2] in families:
            assert item.resource_types == (families[item.id[2]],)
    assert rule("CB101") is RULES[0]
    with pytest.raises(KeyError, match="CB999"):
        rule("CB999")


def test_severities_follow_what_aws_does() -> None:
    # Errors: AWS rejects the request or the block cannot be used. Warnings: AWS advice.
    warnings = {item.id for item in RULES if item.severity is Severity.WARNING}
    assert warnings == {"CB105", "CB205", "CB305", "CB306", "CB402", "CB405", "CB501"}
    # CloudFormation does not support $Latest or $Default as a group's launch template version.
    assert rule("CB303").severity is Severity.ERROR
