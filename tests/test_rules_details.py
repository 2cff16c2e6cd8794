"""The template rules beyond one case each: variants, silence when undecidable, intrinsics,
controller-managed groups, UltraServer blocks."""

from __future__ import annotations

import copy
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from capblock_constructs._time import format_utc as utc
from capblock_constructs.capacity_block import CapacityBlock
from capblock_constructs.controller.runtime.phase import (
    EC2_RECLAIM_LEAD_ULTRASERVER,
    worst_case_lateness,
)
from capblock_constructs.rules import Finding, check_template, rule
from capblock_constructs.rules._model import UNKNOWN, Reference, Template

RESERVATION = "cr-0123456789abcdef0"
ULTRA_RESERVATION = "cr-0fedcba9876543210"
START = datetime(2031, 3, 3, 11, 30, tzinfo=timezone.utc)
END = datetime(2031, 3, 17, 11, 30, tzinfo=timezone.utc)
NOW = datetime(2031, 3, 1, tzinfo=timezone.utc)
BLOCK = CapacityBlock(
    capacity_reservation_id=RESERVATION,
    instance_type="p5.48xlarge",
    availability_zone="us-east-2a",
    availability_zone_id="use2-az1",
    instance_count=4,
    start=START,
    end=END,
)
ULTRA = CapacityBlock(
    capacity_reservation_id=ULTRA_RESERVATION,
    instance_type="p6e-gb200.36xlarge",
    availability_zone="us-east-2b",
    instance_count=18,
    start=START,
    end=END,
    ultraserver_type="u-p6e-gb200x72",
)
BLOCKS = {RESERVATION: BLOCK, ULTRA_RESERVATION: ULTRA}


def launch_template(**data: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "InstanceType": "p5.48xlarge",
        "InstanceMarketOptions": {"MarketType": "capacity-block"},
        "CapacityReservationSpecification": {
            "CapacityReservationTarget": {"CapacityReservationId": RESERVATION}
        },
    }
    body.update(data)
    return {
        "Type": "AWS::EC2::LaunchTemplate",
        "Properties": {"LaunchTemplateData": {k: v for k, v in body.items() if v is not None}},
    }


def group_template(
    *actions: tuple[str, int], group: dict[str, Any] | None = None, **extra: Any
) -> dict[str, Any]:
    """A Capacity Block Auto Scaling group with one-time actions (StartTime, DesiredCapacity)."""
    resources: dict[str, Any] = {
        "GpuTemplate": launch_template(),
        "Group": {
            "Type": "AWS::AutoScaling::AutoScalingGroup",
            "Properties": {
                "MinSize": "0",
                "MaxSize": "4",
                "VPCZoneIdentifier": ["subnet-0a1b2c3d4e5f60001"],
                "LaunchTemplate": {
                    "LaunchTemplateId": {"Ref": "GpuTemplate"},
                    "Version": {"Fn::GetAtt": ["GpuTemplate", "LatestVersionNumber"]},
                },
                **(group or {}),
            },
        },
    }
    for index, (start, desired) in enumerate(actions):
        resources[f"Action{index}"] = {
            "Type": "AWS::AutoScaling::ScheduledAction",
            "Properties": {
                "AutoScalingGroupName": {"Ref": "Group"},
                "DesiredCapacity": desired,
                "StartTime": start,
            },
        }
    resources.update(extra)
    return {"Resources": resources}


def check(
    template: dict[str, Any],
    *,
    blocks: dict[str, CapacityBlock] | None = BLOCKS,
    now: datetime | None = NOW,
) -> list[Finding]:
    return check_template(template, template_path="t.json", blocks=blocks, now=now)


def rules(findings: list[Finding]) -> list[str]:
    return [finding.rule for finding in findings]


# -- CB101 variants ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("specification", "path_end", "says"),
    [
        (None, "LaunchTemplateData", "no CapacityReservationSpecification"),
        ({}, "CapacityReservationSpecification", "no CapacityReservationTarget"),
        (
            {"CapacityReservationTarget": {}},
            "CapacityReservationTarget",
            "CapacityReservationTarget is empty",
        ),
        (
            {
                "CapacityReservationPreference": "open",
                "CapacityReservationTarget": {"CapacityReservationId": RESERVATION},
            },
            "CapacityReservationPreference",
            "'open' next to a CapacityReservationTarget",
        ),
        (
            {
                "CapacityReservationPreference": "none",
                "CapacityReservationTarget": {"CapacityReservationId": RESERVATION},
            },
            "CapacityReservationPreference",
            "'none' next to a CapacityReservationTarget",
        ),
    ],
)
def test_capacity_block_market_needs_a_lone_target(
    specification: Any, path_end: str, says: str
) -> None:
    template = {
        "Resources": {"Lt": launch_template(CapacityReservationSpecification=specification)}
    }
    (finding,) = check(template, blocks=None)
    assert finding.rule == "CB101"
    assert finding.path[-1] == path_end
    assert says in finding.message


def test_capacity_reservations_only_may_stand_next_to_a_target() -> None:
    # EC2 API reference, CapacityReservationSpecification (CB101's source): "You can only specify
    # CapacityReservationPreference and CapacityReservationTarget if the
    # CapacityReservationPreference is capacity-reservations-only." The launch template request
    # shape still says "only one option at a time"; the rule must not reject what EC2 documents.
    specification = {
        "CapacityReservationPreference": "capacity-reservations-only",
        "CapacityReservationTarget": {"CapacityReservationId": RESERVATION},
    }
    template = {
        "Resources": {"Lt": launch_template(CapacityReservationSpecification=specification)}
    }
    assert check(template, blocks=None) == []
    assert rule("CB101").source.endswith("/API_CapacityReservationSpecification.html")


@pytest.mark.parametrize(
    "specification",
    [
        {"Fn::If": ["UseBlock", {"CapacityReservationTarget": {}}, {"Ref": "AWS::NoValue"}]},
        {"CapacityReservationTarget": {"CapacityReservationId": {"Ref": "Reservation"}}},
    ],
)
def test_target_rule_is_silent_when_it_cannot_decide(specification: Any) -> None:
    template = {
        "Parameters": {"Reservation": {"Type": "String"}},
        "Resources": {"Lt": launch_template(CapacityReservationSpecification=specification)},
    }
    assert check(template) == []


# -- silence: tokens, parameters, blocks not in the context, no clock ---------------------------


def test_values_only_known_at_deployment_give_no_finding() -> None:
    template = {
        "Parameters": {
            "Type": {"Type": "String"},
            "Market": {"Type": "AWS::SSM::Parameter::Value<String>", "Default": "/market"},
        },
        "Resources": {
            "NoType": launch_template(InstanceType={"Ref": "Type"}),
            "NoMarket": launch_template(InstanceMarketOptions={"MarketType": {"Ref": "Market"}}),
            "Imported": launch_template(InstanceType={"Fn::ImportValue": "type"}),
        },
    }
    assert check(template) == []


def test_parameter_defaults_are_followed() -> None:
    template = {
        "Parameters": {"Type": {"Type": "String", "Default": "p4d.24xlarge"}},
        "Resources": {"Lt": launch_template(InstanceType={"Ref": "Type"})},
    }
    assert rules(check(template)) == ["CB104"]


def test_rules_that_need_the_block_are_silent_without_it() -> None:
    later = END - timedelta(minutes=10)
    template = group_template(
        (utc(later), 0),
        group={"MaxSize": "9", "AvailabilityZones": ["us-east-2c"]},
        Lt=launch_template(InstanceType="p4d.24xlarge"),
    )
    assert sorted(rules(check(template))) == ["CB104", "CB304", "CB305", "CB404"]
    assert check(template, blocks=None) == []
    other = json.loads(json.dumps(template).replace(RESERVATION, "cr-0aaaaaaaaaaaaaaaa"))
    assert check(other) == []


def test_rules_that_compare_with_now_are_silent_without_it() -> None:
    template = group_template(("2001-01-01T00:00:00Z", 4), (utc(END - timedelta(hours=1)), 0))
    assert rules(check(template)) == ["CB401"]
    assert check(template, now=None) == []


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        check_template({"Resources": {}}, template_path="t", now=datetime(2031, 1, 1))


def test_scheduled_action_window() -> None:
    # EC2 Auto Scaling rejects a StartTime in the past; less than 15 minutes ahead only warns.
    down = (utc(END - timedelta(minutes=40)), 0)
    assert rules(check(group_template((utc(NOW), 4), down))) == ["CB401"]
    soon = NOW + timedelta(minutes=14, seconds=59)
    assert rules(check(group_template((utc(soon), 4), down))) == ["CB402"]
    assert check(group_template((utc(NOW + timedelta(minutes=15)), 4), down)) == []


def test_recurring_actions_are_not_judged_as_one_time_scale_downs() -> None:
    template = group_template()
    template["Resources"]["Nightly"] = {
        "Type": "AWS::AutoScaling::ScheduledAction",
        "Properties": {
            "AutoScalingGroupName": {"Ref": "Group"},
            "DesiredCapacity": 0,
            "Recurrence": "0 23 * * *",
            "StartTime": utc(END - timedelta(minutes=5)),
        },
    }
    # Not a late one-time scale-down (CB404), and it does scale to zero (no CB405).
    assert check(template) == []


def test_a_scale_down_by_max_size_counts() -> None:
    template = group_template()
    template["Resources"]["Down"] = {
        "Type": "AWS::AutoScaling::ScheduledAction",
        "Properties": {
            "AutoScalingGroupName": {"Fn::Sub": "${Group}"},
            "MaxSize": "0",
            "MinSize": "0",
            "StartTime": utc(END - timedelta(minutes=10)),
        },
    }
    assert rules(check(template)) == ["CB404"]


def test_no_scale_down_rule_is_silent_when_an_action_names_an_unknown_group() -> None:
    template = group_template()
    template["Parameters"] = {"GroupName": {"Type": "String"}}
    template["Resources"]["Elsewhere"] = {
        "Type": "AWS::AutoScaling::ScheduledAction",
        "Properties": {
            "AutoScalingGroupName": {"Ref": "GroupName"},
            "DesiredCapacity": 0,
            "StartTime": utc(END - timedelta(hours=1)),
        },
    }
    assert check(template) == []
    del template["Resources"]["Elsewhere"]
    assert rules(check(template)) == ["CB405"]


def test_groups_found_by_name_and_through_mixed_instances() -> None:
    template = group_template(
        group={
            "AutoScalingGroupName": "gpu-nodes",
            "LaunchTemplate": None,
            "MixedInstancesPolicy": {
                "LaunchTemplate": {
                    "LaunchTemplateSpecification": {
                        "LaunchTemplateName": "gpu",
                        "Version": "$Default",
                    }
                }
            },
        }
    )
    template["Resources"]["GpuTemplate"]["Properties"]["LaunchTemplateName"] = "gpu"
    template["Resources"]["Group"]["Properties"].pop("LaunchTemplate")
    template["Resources"]["Down"] = {
        "Type": "AWS::AutoScaling::ScheduledAction",
        "Properties": {
            "AutoScalingGroupName": "gpu-nodes",
            "DesiredCapacity": 0,
            "StartTime": utc(END - timedelta(minutes=40)),
        },
    }
    found = check(template)
    assert rules(found) == ["CB301", "CB303"]
    assert found[1].path == (
        "Properties",
        "MixedInstancesPolicy",
        "LaunchTemplate",
        "LaunchTemplateSpecification",
        "Version",
    )


def test_a_launch_template_that_only_targets_a_cached_block_makes_a_capacity_block_group() -> None:
    # Without the market type (CB106) the group still launches into the block's reservation.
    template = group_template(
        (utc(END - timedelta(minutes=40)), 0), group={"MixedInstancesPolicy": {}}
    )
    template["Resources"]["GpuTemplate"] = launch_template(InstanceMarketOptions=None)
    assert rules(check(template)) == ["CB106", "CB301"]


# -- UltraServer blocks: EC2 reclaims 60 minutes before the end -----------------------------------


def ultra_group(scale_down: datetime) -> dict[str, Any]:
    template = group_template((utc(scale_down), 0))
    template["Resources"]["GpuTemplate"] = launch_template(
        InstanceType="p6e-gb200.36xlarge",
        CapacityReservationSpecification={
            "CapacityReservationTarget": {"CapacityReservationId": ULTRA_RESERVATION}
        },
    )
    return template


def test_ultraserver_blocks_are_reclaimed_an_hour_before_the_end() -> None:
    reclaim = END - EC2_RECLAIM_LEAD_ULTRASERVER
    (finding,) = check(ultra_group(END - timedelta(minutes=45)))
    assert finding.rule == "CB404"
    assert f"at {utc(reclaim)}" in finding.message
    assert "1 h before its end" in finding.message
    assert check(ultra_group(reclaim - timedelta(minutes=1))) == []


# -- lifecycle hooks --------------------------------------------------------------------------


def controller(configuration: Any) -> dict[str, Any]:
    return {
        "Type": "Custom::CapacityBlockController",
        "Properties": {
            "ServiceToken": "arn:aws:lambda:::function:x",
            "Configuration": configuration,
        },
    }


def managed_configuration(drain_lead: timedelta, *, name: Any, period: int = 60) -> Any:
    head = json.dumps(
        {
            "version": 1,
            "periodSeconds": period,
            "groups": [
                {
                    "id": "Stack/Group",
                    "kind": "self-managed",
                    "reservation": RESERVATION,
                    "drainLeadSeconds": int(drain_lead.total_seconds()),
                    "autoScalingGroupName": "@@",
                }
            ],
        }
    )
    before, after = head.split("@@")
    return {"Fn::Join": ["", [before, name, after]]}


def hooked(heartbeat: int | None, *, drain_lead: timedelta, inline: bool = False) -> dict[str, Any]:
    hook: dict[str, Any] = {"LifecycleTransition": "autoscaling:EC2_INSTANCE_TERMINATING"}
    if heartbeat is not None:
        hook["HeartbeatTimeout"] = heartbeat
    extra: dict[str, Any] = {
        "Controller": controller(managed_configuration(drain_lead, name={"Ref": "Group"}))
    }
    group: dict[str, Any] = {}
    if inline:
        group["LifecycleHookSpecificationList"] = [{"LifecycleHookName": "drain", **hook}]
    else:
        extra["Hook"] = {
            "Type": "AWS::AutoScaling::LifecycleHook",
            "Properties": {"AutoScalingGroupName": {"Ref": "Group"}, **hook},
        }
    return group_template(group=group, **extra)


@pytest.mark.parametrize("inline", [False, True])
def test_heartbeat_must_end_before_ec2_reclaims(inline: bool) -> None:
    # The controller drains 40 minutes before the end, up to its period plus a minute late;
    # what is left before EC2 reclaims (30 minutes before the end) bounds the heartbeat.
    drain_lead = timedelta(minutes=40)
    left = drain_lead - worst_case_lateness(timedelta(minutes=1)) - timedelta(minutes=30)
    fits = int(left.total_seconds())
    assert check(hooked(fits, drain_lead=drain_lead, inline=inline)) == []
    (finding,) = check(hooked(fits + 1, drain_lead=drain_lead, inline=inline))
    assert finding.rule == "CB501"
    assert f"at most {fits} s" in finding.message
    assert finding.resource == ("Group" if inline else "Hook")
    assert finding.path[-1] == "HeartbeatTimeout"
    (default,) = check(hooked(None, drain_lead=drain_lead, inline=inline))
    assert "3600 s" in default.message


def test_launch_hooks_and_unknown_heartbeats_are_not_judged() -> None:
    template = hooked(7200, drain_lead=timedelta(minutes=40))
    template["Resources"]["Hook"]["Properties"]["LifecycleTransition"] = (
        "autoscaling:EC2_INSTANCE_LAUNCHING"
    )
    assert check(template) == []
    template = hooked(7200, drain_lead=timedelta(minutes=40))
    template["Resources"]["Hook"]["Properties"]["HeartbeatTimeout"] = {"Ref": "Heartbeat"}
    assert check(template) == []


# -- the controller's configuration ----------------------------------------------------------


def test_controller_groups_found_by_literal_name() -> None:
    template = group_template(group={"AutoScalingGroupName": "gpu-nodes"})
    template["Resources"]["Controller"] = controller(
        json.dumps({"groups": [{"kind": "self-managed", "autoScalingGroupName": "gpu-nodes"}]})
    )
    assert check(template) == []


def test_controller_configuration_that_cannot_be_read_still_counts_its_groups() -> None:
    template = group_template()
    template["Resources"]["Controller"] = controller(
        {"Fn::Join": ["", ['{"groups":[', {"Fn::If": ["C", {"Ref": "Group"}, "x"]}, "]}"]]}
    )
    assert check(template) == []


def test_a_controller_for_another_group_does_not_count() -> None:
    template = group_template(
        Other={"Type": "AWS::AutoScaling::AutoScalingGroup", "Properties": {}},
        Controller=controller(managed_configuration(timedelta(minutes=40), name={"Ref": "Other"})),
    )
    assert rules(check(template)) == ["CB405"]


# -- intrinsic functions -------------------------------------------------------------------------

BODY: dict[str, Any] = {
    "Parameters": {
        "Name": {"Type": "String", "Default": "gpu"},
        "Zones": {"Type": "CommaDelimitedList", "Default": "us-east-2a, us-east-2b"},
        "Secret": {"Type": "String"},
    },
    "Mappings": {"Map": {"A": {"B": "found"}}},
    "Resources": {"Lt": {"Type": "AWS::EC2::LaunchTemplate"}},
}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("plain", "plain"),
        ({"Ref": "Lt"}, Reference("Lt")),
        ({"Ref": "Name"}, "gpu"),
        ({"Ref": "Zones"}, ["us-east-2a", "us-east-2b"]),
        ({"Ref": "Secret"}, UNKNOWN),
        ({"Ref": "AWS::Region"}, UNKNOWN),
        ({"Ref": "AWS::NoValue"}, None),
        ({"Fn::GetAtt": ["Lt", "LatestVersionNumber"]}, Reference("Lt", "LatestVersionNumber")),
        ({"Fn::GetAtt": "Lt.DefaultVersionNumber"}, Reference("Lt", "DefaultVersionNumber")),
        ({"Fn::GetAtt": ["Missing", "Arn"]}, UNKNOWN),
        ({"Fn::Sub": "${Lt}"}, Reference("Lt")),
        ({"Fn::Sub": "${Lt.LatestVersionNumber}"}, Reference("Lt", "LatestVersionNumber")),
        ({"Fn::Sub": "${Name}-nodes-${!Literal}"}, "gpu-nodes-${Literal}"),
        ({"Fn::Sub": ["${X}-${Name}", {"X": {"Ref": "Name"}}]}, "gpu-gpu"),
        ({"Fn::Sub": "${AWS::Region}-x"}, UNKNOWN),
        ({"Fn::Join": ["", [{"Ref": "Lt"}]]}, Reference("Lt")),
        ({"Fn::Join": ["-", ["a", {"Ref": "Name"}, 3]]}, "a-gpu-3"),
        ({"Fn::Join": ["-", ["a", {"Ref": "Lt"}]]}, UNKNOWN),
        ({"Fn::Select": [1, {"Ref": "Zones"}]}, "us-east-2b"),
        ({"Fn::Select": ["0", ["x", "y"]]}, "x"),
        ({"Fn::Select": [0, {"Fn::GetAZs": ""}]}, UNKNOWN),
        ({"Fn::FindInMap": ["Map", "A", "B"]}, "found"),
        ({"Fn::FindInMap": ["Map", "A", "Missing"]}, UNKNOWN),
        ({"Fn::If": ["C", "a", "b"]}, UNKNOWN),
        ({"Fn::ImportValue": "x"}, UNKNOWN),
    ],
)
def test_intrinsic_functions_resolve_as_far_as_the_template_allows(
    value: Any, expected: Any
) -> None:
    assert Template(copy.deepcopy(BODY)).resolve(value) == expected


def test_check_is_pure() -> None:
    template = group_template(("2001-01-01T00:00:00Z", 4))
    before = copy.deepcopy(template)
    first = check(template)
    assert check(template) == first
    assert template == before
    assert rules(first) == ["CB401", "CB405"]


def test_findings_are_sorted_by_template_resource_rule_and_path() -> None:
    path = Path(__file__).parent / "data" / "rules" / "cases" / "CB207-fail.yaml"
    from capblock_constructs.rules import load_template

    found = check(load_template(path))
    assert [finding.path for finding in found] == sorted(
        (finding.path for finding in found), key=lambda path: tuple(map(str, path))
    )
