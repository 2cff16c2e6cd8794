"""The controller's Lambda handler against botocore Stubbers on real clients.

Each test queues exactly the calls a run must make, with their expected parameters;
the Stubber checks both against the real API models, and a call nobody queued (an
update when the size is already right, say) fails the test.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber

from capblock_constructs.controller.runtime.aws import Clients
from capblock_constructs.controller.runtime.config import ConfigError, parse_config
from capblock_constructs.controller.runtime.custom_resource import http_put
from capblock_constructs.controller.runtime.handler import RunFailedError, handle, main
from capblock_constructs.controller.runtime.memory import Memory

REGION = "us-east-2"
ACCOUNT = "123456789012"
RID = "cr-0123456789abcdef0"
TOPIC = f"arn:aws:sns:{REGION}:{ACCOUNT}:topic"
PARAMETER = "/capblock-constructs/Stack/CapacityBlockController/state"
START = datetime(2031, 3, 1, 11, 30, tzinfo=timezone.utc)
END = datetime(2031, 3, 15, 11, 30, tzinfo=timezone.utc)
DRAIN = END - timedelta(minutes=40)
CLUSTER, NODEGROUP = "ml", "GpuNodes-abc"
EKS_ASG = "eks-GpuNodes-abc-12345678"
SELF_ASG = "Stack-SelfNodes-XYZ"
MANAGED_ID, SELF_ID = "Stack/GpuNodes", "Stack/SelfNodes"
RESPONSE_URL = "https://cloudformation-custom-resource-response-useast2.s3.amazonaws.com/x?sig=1"


def config_dict(**overrides: Any) -> dict[str, Any]:
    common = {
        "reservation": RID,
        "ultraserver": False,
        "targetSize": 4,
        "maxSize": 4,
        "drainLeadSeconds": 2400,
    }
    value: dict[str, Any] = {
        "version": 1,
        "periodSeconds": 60,
        "reminderSeconds": [86400, 3600],
        "topicArn": TOPIC,
        "stateParameter": PARAMETER,
        "groups": [
            {
                "id": MANAGED_ID,
                "kind": "managed",
                "clusterName": CLUSTER,
                "nodegroupName": NODEGROUP,
                **common,
            },
            {"id": SELF_ID, "kind": "self-managed", "autoScalingGroupName": SELF_ASG, **common},
        ],
    }
    value.update(overrides)
    return value


CONFIG = json.dumps(config_dict())
SETTLED = Memory.loads(json.dumps({"r": {RID: {"end": "2031-03-15T11:30:00Z"}}})).dumps()
"""The memory a run leaves when nothing new happened: it records the end, and is not rewritten."""


@dataclass
class Stubs:
    """One Stubber per client; ``clients`` is what the handler gets."""

    clients: Clients
    ec2: Stubber
    eks: Stubber
    autoscaling: Stubber
    sns: Stubber
    ssm: Stubber
    puts: list[tuple[str, dict[str, Any], dict[str, str]]] = field(default_factory=list)

    # ---- queued answers, in the order a run makes the calls (per client)

    def memory(self, value: str = SETTLED) -> None:
        self.ssm.add_response(
            "get_parameter",
            {"Parameter": {"Name": PARAMETER, "Type": "String", "Value": value}},
            {"Name": PARAMETER},
        )

    def saves_memory(self) -> None:
        self.ssm.add_response(
            "put_parameter",
            {"Version": 2},
            {"Name": PARAMETER, "Value": ANY, "Type": "String", "Overwrite": True},
        )

    def reservation(
        self,
        state: str = "active",
        count: int = 4,
        *,
        end: datetime = END,
        ids: list[str] | None = None,
    ) -> None:
        self.ec2.add_response(
            "describe_capacity_reservations",
            {
                "CapacityReservations": [
                    {
                        "CapacityReservationId": RID,
                        "InstanceType": "p5.48xlarge",
                        "AvailabilityZone": "us-east-2a",
                        "TotalInstanceCount": count,
                        "AvailableInstanceCount": count,
                        "State": state,
                        "StartDate": START,
                        "EndDate": end,
                        "EndDateType": "limited",
                        "ReservationType": "capacity-block",
                    }
                ]
            },
            {"CapacityReservationIds": ids or [RID]},
        )

    def asg(self, desired: int, max_size: int, *, in_service: int | None = None) -> None:
        self.autoscaling.add_response(
            "describe_auto_scaling_groups",
            {"AutoScalingGroups": [asg_item(SELF_ASG, desired, max_size, in_service)]},
            {"AutoScalingGroupNames": [SELF_ASG]},
        )

    def nodegroup(self, desired: int, *, status: str = "ACTIVE", max_size: int = 4) -> None:
        self.eks.add_response(
            "describe_nodegroup",
            {
                "nodegroup": {
                    "nodegroupName": NODEGROUP,
                    "clusterName": CLUSTER,
                    "status": status,
                    "capacityType": "CAPACITY_BLOCK",
                    "scalingConfig": {"minSize": 0, "maxSize": max_size, "desiredSize": desired},
                    "resources": {"autoScalingGroups": [{"name": EKS_ASG}]},
                }
            },
            {"clusterName": CLUSTER, "nodegroupName": NODEGROUP},
        )

    def updates_nodegroup(self, desired: int, max_size: int = 4) -> None:
        self.eks.add_response(
            "update_nodegroup_config",
            {"update": {"id": "u-1", "status": "InProgress"}},
            {
                "clusterName": CLUSTER,
                "nodegroupName": NODEGROUP,
                "scalingConfig": {"minSize": 0, "maxSize": max_size, "desiredSize": desired},
            },
        )

    def updates_asg(self, desired: int, max_size: int) -> None:
        self.autoscaling.add_response(
            "update_auto_scaling_group",
            {},
            {
                "AutoScalingGroupName": SELF_ASG,
                "MinSize": 0,
                "MaxSize": max_size,
                "DesiredCapacity": desired,
            },
        )

    def publishes(self, count: int = 1) -> None:
        for _ in range(count):
            self.sns.add_response(
                "publish",
                {"MessageId": "m-1"},
                {"TopicArn": TOPIC, "Subject": ANY, "Message": ANY},
            )

    def run(
        self,
        event: dict[str, Any],
        *,
        clock: datetime | None = None,
        config: str = CONFIG,
    ) -> dict[str, Any]:
        moment = clock or _event_time(event)
        report = handle(
            event,
            config_text=config,
            clients=self.clients,
            clock=lambda: moment,
            put=self._put,
        )
        # What Lambda returns must survive JSON.
        assert json.loads(json.dumps(report)) == report
        return report

    def _put(self, url: str, body: bytes, headers: Any) -> None:
        self.puts.append((url, json.loads(body), dict(headers)))


def asg_item(name: str, desired: int, max_size: int, in_service: int | None) -> dict[str, Any]:
    running = desired if in_service is None else in_service
    return {
        "AutoScalingGroupName": name,
        "MinSize": 0,
        "MaxSize": max_size,
        "DesiredCapacity": desired,
        "DefaultCooldown": 300,
        "AvailabilityZones": ["us-east-2a"],
        "HealthCheckType": "EC2",
        "CreatedTime": datetime(2031, 1, 1, tzinfo=timezone.utc),
        "Instances": [
            {
                "InstanceId": f"i-{index:017x}",
                "AvailabilityZone": "us-east-2a",
                "LifecycleState": "InService",
                "HealthStatus": "Healthy",
                "ProtectedFromScaleIn": False,
            }
            for index in range(running)
        ],
    }


def _event_time(event: dict[str, Any]) -> datetime:
    text = event.get("time", "2031-03-05T00:00:00Z")
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def schedule(time: str) -> dict[str, Any]:
    return {
        "version": "0",
        "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": ACCOUNT,
        "time": time,
        "region": REGION,
        "resources": [f"arn:aws:events:{REGION}:{ACCOUNT}:rule/Controller"],
        "detail": {},
    }


def ec2_event(detail_type: str, time: str, detail: dict[str, Any]) -> dict[str, Any]:
    return {
        "version": "0",
        "id": "7bf73129-1428-4cd3-a780-95db273d1602",
        "detail-type": detail_type,
        "source": "aws.ec2",
        "account": ACCOUNT,
        "time": time,
        "region": REGION,
        "resources": [f"arn:aws:ec2:{REGION}:{ACCOUNT}:capacity-reservation/{RID}"],
        "detail": detail,
    }


def custom_resource(request_type: str) -> dict[str, Any]:
    event: dict[str, Any] = {
        "RequestType": request_type,
        "ServiceToken": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:Controller",
        "ResponseURL": RESPONSE_URL,
        "StackId": f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/Stack/guid",
        "RequestId": "req-1",
        "LogicalResourceId": "ControllerKick",
        "ResourceType": "Custom::CapacityBlockController",
        "ResourceProperties": {"ServiceToken": "x", "ConfigHash": "abc"},
    }
    if request_type != "Create":
        event["PhysicalResourceId"] = "capacity-block-controller"
    return event


@pytest.fixture(scope="module")
def real_clients() -> dict[str, Any]:
    """Real botocore clients, made once: making them is the slow part of these tests."""
    return {
        service: boto3.client(service, region_name=REGION)  # type: ignore[call-overload]
        for service in ("ec2", "eks", "autoscaling", "sns", "ssm")
    }


@pytest.fixture
def stubs(real_clients: dict[str, Any]) -> Iterator[Stubs]:
    stubbers = {service: Stubber(client) for service, client in real_clients.items()}

    def refuse(service: str) -> Any:
        raise AssertionError(f"unexpected {service} client")

    for stubber in stubbers.values():
        stubber.activate()
    try:
        yield Stubs(clients=Clients(factory=refuse, **real_clients), **stubbers)
        for stubber in stubbers.values():
            stubber.assert_no_pending_responses()
    finally:
        for stubber in stubbers.values():
            stubber.deactivate()


def groups(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {group["group"]: group for group in report["groups"]}


def kinds(report: dict[str, Any]) -> list[str]:
    return [notice["kind"] for notice in report["notifications"]]


# ---------------------------------------------------------------------------- phases


def test_before_the_start_both_groups_stay_at_zero(stubs: Stubs) -> None:
    stubs.memory()
    stubs.reservation("scheduled", 0)  # EC2 reports no instances before the start
    stubs.asg(0, 0)
    stubs.nodegroup(0)
    report = stubs.run(schedule("2031-02-28T12:00:00Z"))
    assert {g["phase"] for g in report["groups"]} == {"waiting"}
    assert {g["action"] for g in report["groups"]} == {"none"}
    assert report["moment"] == "2031-02-28T12:00:00Z"


def test_active_block_scales_both_groups_up_and_says_so(stubs: Stubs) -> None:
    stubs.memory()
    stubs.reservation()
    stubs.asg(0, 0)
    stubs.nodegroup(0)
    stubs.updates_nodegroup(4)
    stubs.publishes()
    stubs.updates_asg(4, 4)
    stubs.publishes()
    stubs.saves_memory()
    report = stubs.run(schedule("2031-03-01T11:31:00Z"))
    assert groups(report)[MANAGED_ID] | {"detail": ""} == {
        "group": MANAGED_ID,
        "kind": "managed",
        "reservation": RID,
        "resource": f"EKS node group {CLUSTER}/{NODEGROUP}",
        "phase": "running",
        "current": 0,
        "wanted": 4,
        "action": "scaled",
        "detail": "",
        "drainAt": "2031-03-15T10:50:00Z",
    }
    assert [n["subject"] for n in report["notifications"]] == [
        f"Capacity Block {RID}: {MANAGED_ID} scaled up 0 -> 4",
        f"Capacity Block {RID}: {SELF_ID} scaled up 0 -> 4",
    ]
    assert report["memoryWritten"] is True


def test_drain_time_scales_both_groups_to_zero(stubs: Stubs) -> None:
    stubs.memory()
    stubs.reservation()
    stubs.asg(4, 4)
    stubs.nodegroup(4)
    stubs.updates_nodegroup(0)
    stubs.publishes()
    # MaxSize 0 too: nothing may scale the group up while it drains.
    stubs.updates_asg(0, 0)
    stubs.publishes()
    stubs.saves_memory()
    report = stubs.run(schedule("2031-03-15T10:50:00Z"))
    assert {g["phase"] for g in report["groups"]} == {"draining"}
    assert kinds(report) == ["drain", "drain"]


def test_just_before_the_drain_time_the_groups_stay_up(stubs: Stubs) -> None:
    stubs.memory()
    stubs.reservation()
    stubs.asg(4, 4)
    stubs.nodegroup(4)
    report = stubs.run(schedule("2031-03-15T10:49:00Z"))
    assert {g["phase"] for g in report["groups"]} == {"running"}


def test_after_the_end_groups_stay_at_zero_and_expiry_is_said_once(stubs: Stubs) -> None:
    stubs.memory()
    stubs.reservation("expired", 0)
    stubs.publishes()
    stubs.asg(0, 0)
    stubs.nodegroup(0)
    stubs.saves_memory()
    report = stubs.run(schedule("2031-03-15T11:31:00Z"))
    assert {g["phase"] for g in report["groups"]} == {"ended"}
    assert report["notifications"][0]["subject"] == f"Capacity Block {RID} has expired"


# ------------------------------------------------------------------------- bad states


@pytest.mark.parametrize("state", ["payment-pending", "scheduled"])
def test_not_yet_active_after_the_start_is_zero_without_a_notice(stubs: Stubs, state: str) -> None:
    stubs.memory()
    stubs.reservation(state, 0)
    stubs.asg(0, 0)
    stubs.nodegroup(0)
    report = stubs.run(schedule("2031-03-01T12:00:00Z"))
    assert {g["phase"] for g in report["groups"]} == {"waiting"}
    assert report["notifications"] == []


@pytest.mark.parametrize("state", ["cancelled", "payment-failed", "failed", "expired"])
def test_bad_state_holds_zero_and_is_notified_once(stubs: Stubs, state: str) -> None:
    stubs.memory()
    stubs.reservation(state, 0)
    stubs.publishes()
    stubs.asg(0, 0)
    stubs.nodegroup(0)
    stubs.saves_memory()
    report = stubs.run(schedule("2031-03-05T00:00:00Z"))
    assert {g["wanted"] for g in report["groups"]} == {0}
    notice = report["notifications"][0]
    assert notice["kind"] == "bad-state"
    assert RID in notice["subject"]
    assert state in notice["subject"]
    # The next run remembers it said so.
    remembered = Memory.loads(SETTLED)
    remembered.reservation(RID).bad = state
    stubs.memory(remembered.dumps())
    stubs.reservation(state, 0)
    stubs.asg(0, 0)
    stubs.nodegroup(0)
    assert stubs.run(schedule("2031-03-05T00:01:00Z"))["notifications"] == []


def test_cancelled_mid_block_scales_running_groups_down(stubs: Stubs) -> None:
    stubs.memory()
    stubs.reservation("cancelled", 0)
    stubs.publishes()  # the state
    stubs.asg(4, 4)
    stubs.nodegroup(4)
    stubs.updates_nodegroup(0)
    stubs.publishes()
    stubs.updates_asg(0, 0)
    stubs.publishes()
    stubs.saves_memory()
    report = stubs.run(schedule("2031-03-05T00:00:00Z"))
    assert kinds(report) == ["bad-state", "scaled-down", "scaled-down"]
    assert {g["phase"] for g in report["groups"]} == {"unusable"}


def test_reservation_missing_from_the_answer_is_unusable(stubs: Stubs) -> None:
    stubs.memory()
    stubs.ec2.add_response(
        "describe_capacity_reservations",
        {"CapacityReservations": []},
        {"CapacityReservationIds": [RID]},
    )
    stubs.publishes()
    stubs.asg(4, 4)
    stubs.nodegroup(0)
    stubs.updates_asg(0, 0)
    stubs.publishes()
    stubs.saves_memory()
    report = stubs.run(schedule("2031-03-05T00:00:00Z"))
    assert (
        report["notifications"][0]["subject"] == f"Capacity Block {RID} not found: groups held at 0"
    )
    assert report["reservations"][RID] == {"state": "not-found"}
    assert {g["wanted"] for g in report["groups"]} == {0}


def test_not_found_error_is_unusable_too(stubs: Stubs) -> None:
    stubs.memory()
    stubs.ec2.add_client_error(
        "describe_capacity_reservations",
        service_error_code="InvalidCapacityReservationId.NotFound",
        service_message=f"The capacity reservation ID '{RID}' does not exist",
        expected_params={"CapacityReservationIds": [RID]},
    )
    # With one ID the retry one by one asks for the same ID again.
    stubs.ec2.add_client_error(
        "describe_capacity_reservations",
        service_error_code="InvalidCapacityReservationId.NotFound",
        expected_params={"CapacityReservationIds": [RID]},
    )
    stubs.publishes()
    stubs.asg(0, 0)
    stubs.nodegroup(0)
    stubs.saves_memory()
    report = stubs.run(schedule("2031-03-05T00:00:00Z"))
    assert kinds(report) == ["bad-state"]
    assert {g["phase"] for g in report["groups"]} == {"unusable"}


# ----------------------------------------------------------------- busy and failing groups


def test_nodegroup_updating_is_left_for_the_next_period(stubs: Stubs) -> None:
    stubs.memory()
    stubs.reservation()
    stubs.asg(0, 0)
    stubs.nodegroup(0, status="UPDATING")
    stubs.updates_asg(4, 4)
    stubs.publishes()
    stubs.saves_memory()
    report = stubs.run(schedule("2031-03-05T00:00:00Z"))
    assert groups(report)[MANAGED_ID]["action"] == "skipped"
    assert "UPDATING" in report["deferred"][0]
    assert groups(report)[SELF_ID]["action"] == "scaled"
    assert report["errors"] == []


def test_resource_in_use_is_left_for_the_next_period(stubs: Stubs) -> None:
    stubs.memory()
    stubs.reservation()
    stubs.asg(4, 4)
    stubs.nodegroup(0)
    stubs.eks.add_client_error(
        "update_nodegroup_config",
        service_error_code="ResourceInUseException",
        http_status_code=409,
        expected_params={
            "clusterName": CLUSTER,
            "nodegroupName": NODEGROUP,
            "scalingConfig": {"minSize": 0, "maxSize": 4, "desiredSize": 4},
        },
    )
    report = stubs.run(schedule("2031-03-05T00:00:00Z"))
    assert groups(report)[MANAGED_ID]["action"] == "skipped"
    assert "ResourceInUseException" in report["deferred"][0]


@pytest.mark.parametrize("code", ["ThrottlingException", "AccessDeniedException"])
def test_an_eks_error_on_one_group_still_sizes_the_other_then_fails_the_run(
    stubs: Stubs, code: str
) -> None:
    stubs.memory()
    stubs.reservation()
    stubs.asg(0, 0)
    stubs.eks.add_client_error("describe_nodegroup", service_error_code=code, http_status_code=400)
    stubs.updates_asg(4, 4)
    stubs.publishes()
    stubs.saves_memory()
    with pytest.raises(RunFailedError, match=f"{MANAGED_ID}.*{code}") as caught:
        stubs.run(schedule("2031-03-05T00:00:00Z"))
    report = caught.value.report.to_dict()
    assert groups(report)[SELF_ID]["action"] == "scaled"
    assert groups(report)[MANAGED_ID]["action"] == "error"


@pytest.mark.parametrize("code", ["Throttling", "AccessDenied"])
def test_an_autoscaling_error_still_sizes_the_managed_group(stubs: Stubs, code: str) -> None:
    stubs.memory()
    stubs.reservation()
    stubs.asg(0, 0)
    stubs.nodegroup(0)
    stubs.updates_nodegroup(4)
    stubs.publishes()
    stubs.autoscaling.add_client_error("update_auto_scaling_group", service_error_code=code)
    stubs.saves_memory()
    with pytest.raises(RunFailedError, match=f"{SELF_ID}.*{code}") as caught:
        stubs.run(schedule("2031-03-05T00:00:00Z"))
    assert groups(caught.value.report.to_dict())[MANAGED_ID]["action"] == "scaled"


def test_sizes_already_right_make_no_update_call(stubs: Stubs) -> None:
    # No update response is queued: any update call would fail the Stubber.
    for minute in (0, 1):
        stubs.memory()
        stubs.reservation()
        stubs.asg(4, 4)
        stubs.nodegroup(4)
        report = stubs.run(schedule(f"2031-03-05T00:0{minute}:00Z"))
        assert {g["action"] for g in report["groups"]} == {"none"}
        assert report["memoryWritten"] is False


def test_missing_groups_are_notified_once_and_do_not_fail_the_run(stubs: Stubs) -> None:
    stubs.memory()
    stubs.reservation()
    stubs.autoscaling.add_response(
        "describe_auto_scaling_groups",
        {"AutoScalingGroups": []},
        {"AutoScalingGroupNames": [SELF_ASG]},
    )
    stubs.eks.add_client_error(
        "describe_nodegroup", service_error_code="ResourceNotFoundException", http_status_code=404
    )
    stubs.publishes(2)
    stubs.saves_memory()
    report = stubs.run(schedule("2031-03-05T00:00:00Z"))
    assert kinds(report) == ["group-missing", "group-missing"]
    assert {g["action"] for g in report["groups"]} == {"not-found"}


# --------------------------------------------------------------------- stale events


def test_late_event_from_before_the_drain_does_not_raise_a_drained_group(stubs: Stubs) -> None:
    stubs.memory()
    stubs.reservation()
    stubs.asg(0, 0)
    stubs.nodegroup(0)
    # The event says 10:49 (before the drain), but it runs at 10:52: no scale-up.
    report = stubs.run(
        schedule("2031-03-15T10:49:00Z"), clock=datetime(2031, 3, 15, 10, 52, tzinfo=timezone.utc)
    )
    assert {(g["current"], g["wanted"], g["action"]) for g in report["groups"]} == {(0, 0, "none")}


def test_late_event_from_before_the_drain_still_drains_a_running_group(stubs: Stubs) -> None:
    stubs.memory()
    stubs.reservation()
    stubs.asg(4, 4)
    stubs.nodegroup(4)
    stubs.updates_nodegroup(0)
    stubs.publishes()
    stubs.updates_asg(0, 0)
    stubs.publishes()
    stubs.saves_memory()
    report = stubs.run(
        schedule("2031-03-15T10:49:00Z"), clock=datetime(2031, 3, 15, 10, 52, tzinfo=timezone.utc)
    )
    assert {g["wanted"] for g in report["groups"]} == {0}


def test_late_event_from_before_the_start_does_not_lower_a_running_group(stubs: Stubs) -> None:
    stubs.memory()
    stubs.reservation()
    stubs.asg(4, 4)
    stubs.nodegroup(4)
    report = stubs.run(
        schedule("2031-03-01T11:29:00Z"), clock=datetime(2031, 3, 1, 11, 32, tzinfo=timezone.utc)
    )
    assert {g["wanted"] for g in report["groups"]} == {4}


def test_late_event_from_before_the_start_does_not_raise_either(stubs: Stubs) -> None:
    stubs.memory()
    stubs.reservation()
    stubs.asg(0, 0)
    stubs.nodegroup(0)
    report = stubs.run(
        schedule("2031-03-01T11:29:00Z"), clock=datetime(2031, 3, 1, 11, 32, tzinfo=timezone.utc)
    )
    assert {g["wanted"] for g in report["groups"]} == {0}


# ------------------------------------------------------------------------- EC2 events


@pytest.mark.parametrize(
    "detail_type",
    [
        "Capacity Block Expiration Warning",
        "Capacity Block Reservation Expiration Warning",
    ],
)
def test_expiration_warning_of_either_spelling_drains(stubs: Stubs, detail_type: str) -> None:
    stubs.memory()
    stubs.reservation()
    stubs.asg(4, 4)
    stubs.nodegroup(4)
    stubs.updates_nodegroup(0)
    stubs.publishes()
    stubs.updates_asg(0, 0)
    stubs.publishes()
    stubs.saves_memory()
    event = ec2_event(
        detail_type,
        "2031-03-15T10:50:00Z",
        {"capacity-reservation-id": RID, "end-date": "2031-03-15T11:30:00Z"},
    )
    report = stubs.run(event)
    assert report["trigger"] == "capacity-block"
    assert kinds(report) == ["drain", "drain"]


@pytest.mark.parametrize(
    "detail_type", ["Capacity Block Delivered", "Capacity Block Reservation Delivered"]
)
def test_delivered_of_either_spelling_scales_up(stubs: Stubs, detail_type: str) -> None:
    stubs.memory()
    stubs.reservation()
    stubs.asg(0, 0)
    stubs.nodegroup(0)
    stubs.updates_nodegroup(4)
    stubs.publishes()
    stubs.updates_asg(4, 4)
    stubs.publishes()
    stubs.saves_memory()
    event = ec2_event(
        detail_type,
        "2031-03-01T11:30:00Z",
        {"capacity-reservation-id": RID, "end-date": "2031-03-15T11:30:00Z"},
    )
    report = stubs.run(event)
    assert report["moment"] == "2031-03-01T11:30:00Z"
    assert kinds(report) == ["scaled-up", "scaled-up"]


def test_interruption_warning_is_notified_then_reconciled(stubs: Stubs) -> None:
    stubs.memory()
    stubs.publishes()
    stubs.reservation()
    stubs.asg(4, 4)
    stubs.nodegroup(4)
    event = ec2_event(
        "EC2 Capacity Reservation Instance Interruption Warning",
        "2031-03-05T00:00:00Z",
        {
            "instance-id": "i-0123456789abcdef0",
            "instance-action": "terminate",
            "instance-termination-time": "2031-03-05T00:02:00Z",
            "availability-zone-id": "use2-az1",
            "instance-lifecycle": "capacity-block",
        },
    )
    report = stubs.run(event)
    assert report["notifications"][0]["subject"] == (
        "Capacity Block instance i-0123456789abcdef0 is reclaimed at 2031-03-05T00:02:00Z"
    )
    assert {g["action"] for g in report["groups"]} == {"none"}


def test_reminders_are_sent_by_the_schedule_run_at_the_offset_only(stubs: Stubs) -> None:
    stubs.memory()
    stubs.reservation()
    stubs.asg(4, 4)
    stubs.nodegroup(4)
    stubs.publishes()
    stubs.saves_memory()
    report = stubs.run(schedule("2031-03-14T11:30:00Z"))
    assert [n["subject"] for n in report["notifications"]] == [
        f"Capacity Block {RID} ends in 1 day (2031-03-15 11:30 UTC)"
    ]
    # A minute later the window has passed.
    stubs.memory()
    stubs.reservation()
    stubs.asg(4, 4)
    stubs.nodegroup(4)
    assert stubs.run(schedule("2031-03-14T11:31:00Z"))["notifications"] == []
    # An EC2 event at the reminder time sends none: only periodic runs tile the timeline.
    stubs.memory()
    stubs.reservation()
    stubs.asg(4, 4)
    stubs.nodegroup(4)
    event = ec2_event("Capacity Block Delivered", "2031-03-14T11:30:00Z", {})
    assert stubs.run(event)["notifications"] == []


# --------------------------------------------------------------- memory-based notices


def test_moved_end_is_notified_once_with_the_stale_eks_action(stubs: Stubs) -> None:
    new_end = END + timedelta(days=7)
    stubs.memory()  # remembers the old end
    stubs.reservation(end=new_end)
    stubs.publishes()  # end moved
    stubs.asg(4, 4)
    stubs.nodegroup(4)
    stubs.autoscaling.add_response(
        "describe_scheduled_actions",
        {
            "ScheduledUpdateGroupActions": [
                {
                    "AutoScalingGroupName": EKS_ASG,
                    "ScheduledActionName": "Amazon EKS Node Group Capacity Scaledown Before "
                    "Reservation End",
                    "StartTime": END - timedelta(minutes=40),
                    "DesiredCapacity": 0,
                }
            ]
        },
        {"AutoScalingGroupName": EKS_ASG},
    )
    stubs.publishes()  # EKS's action is stale
    stubs.saves_memory()
    report = stubs.run(schedule("2031-03-10T00:00:00Z"))
    assert kinds(report) == ["end-moved", "eks-action"]
    assert groups(report)[MANAGED_ID]["drainAt"] == "2031-03-22T10:50:00Z"
    # The next run has nothing new to say, and makes no scheduled-action call.
    after = Memory.loads(SETTLED)
    after.reservation(RID).end = "2031-03-22T11:30:00Z"
    after.reservation(RID).moved = True
    after.group(MANAGED_ID).eks_checked = "2031-03-22T11:30:00Z"
    stubs.memory(after.dumps())
    stubs.reservation(end=new_end)
    stubs.asg(4, 4)
    stubs.nodegroup(4)
    assert stubs.run(schedule("2031-03-10T00:01:00Z"))["notifications"] == []


def test_group_below_its_size_for_five_periods_is_reported_once(stubs: Stubs) -> None:
    memory = Memory.loads(SETTLED)
    for group in (MANAGED_ID, SELF_ID):
        memory.group(group).size = 4
        memory.group(group).since = "2031-03-05T00:00:00Z"
    stubs.memory(memory.dumps())
    stubs.reservation()
    stubs.asg(4, 4, in_service=1)
    stubs.publishes()  # the self-managed group, judged as it is sized
    stubs.nodegroup(4)
    stubs.autoscaling.add_response(
        "describe_auto_scaling_groups",
        {"AutoScalingGroups": [asg_item(EKS_ASG, 4, 4, 3)]},
        {"AutoScalingGroupNames": [EKS_ASG]},
    )
    stubs.publishes()
    stubs.saves_memory()
    # 10 minutes = max(5 periods of 1 minute, 10 minutes) after the size was set.
    report = stubs.run(schedule("2031-03-05T00:10:00Z"))
    assert [n["subject"] for n in report["notifications"]] == [
        f"Capacity Block {RID}: {SELF_ID} has 1 of 4 nodes",
        f"Capacity Block {RID}: {MANAGED_ID} has 3 of 4 nodes",
    ]


def test_unreadable_memory_still_sizes_the_groups(stubs: Stubs) -> None:
    stubs.ssm.add_client_error("get_parameter", service_error_code="AccessDeniedException")
    stubs.reservation("cancelled", 0)  # no bad-state notice: it could not be kept from repeating
    stubs.asg(0, 0)
    stubs.nodegroup(4)
    stubs.updates_nodegroup(0)
    stubs.publishes()  # the scale-down itself is still said
    report = stubs.run(schedule("2031-03-05T00:00:00Z"))
    assert kinds(report) == ["scaled-down"]
    assert "ssm:GetParameter" in report["warnings"][0]
    assert report["memoryWritten"] is False


def test_memory_write_failure_is_a_warning(stubs: Stubs) -> None:
    stubs.memory("{}")
    stubs.reservation()
    stubs.asg(4, 4)
    stubs.nodegroup(4)
    stubs.ssm.add_client_error("put_parameter", service_error_code="AccessDeniedException")
    report = stubs.run(schedule("2031-03-05T00:00:00Z"))
    assert report["errors"] == []
    assert "ssm:PutParameter" in report["warnings"][0]


# ------------------------------------------------------------------ custom resources


def test_create_runs_once_and_answers_success(stubs: Stubs) -> None:
    stubs.memory()
    stubs.reservation()
    stubs.asg(0, 0)
    stubs.nodegroup(0)
    stubs.updates_nodegroup(4)
    stubs.publishes()
    stubs.updates_asg(4, 4)
    stubs.publishes()
    stubs.saves_memory()
    stubs.run(custom_resource("Create"), clock=datetime(2031, 3, 5, tzinfo=timezone.utc))
    [(url, body, headers)] = stubs.puts
    assert url == RESPONSE_URL
    assert headers["Content-Type"] == ""
    assert body == {
        "Status": "SUCCESS",
        "Reason": body["Reason"],
        "PhysicalResourceId": "capacity-block-controller",
        "StackId": f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/Stack/guid",
        "RequestId": "req-1",
        "LogicalResourceId": "ControllerKick",
        "NoEcho": False,
        "Data": {},
    }
    assert "Stack/GpuNodes: running, 0->4 (scaled)" in body["Reason"]


def test_update_with_a_busy_group_still_succeeds_and_says_what_is_left(stubs: Stubs) -> None:
    stubs.memory()
    stubs.reservation()
    stubs.asg(4, 4)
    stubs.nodegroup(0, status="CREATING")
    stubs.run(custom_resource("Update"), clock=datetime(2031, 3, 5, tzinfo=timezone.utc))
    [(_, body, _)] = stubs.puts
    assert body["Status"] == "SUCCESS"
    assert "Left for the next period: Stack/GpuNodes: node group is CREATING" in body["Reason"]


def test_update_with_throttling_still_succeeds(stubs: Stubs) -> None:
    stubs.memory()
    stubs.ec2.add_client_error(
        "describe_capacity_reservations", service_error_code="RequestLimitExceeded"
    )
    stubs.asg(4, 4)
    response = stubs.run(custom_resource("Update"), clock=datetime(2031, 3, 5, tzinfo=timezone.utc))
    [(_, body, _)] = stubs.puts
    assert body["Status"] == "SUCCESS"
    assert "RequestLimitExceeded" in body["Reason"]
    assert response["Status"] == "SUCCESS"


def test_delete_touches_nothing(stubs: Stubs) -> None:
    # No response queued on any client: any call fails the test.
    stubs.run(custom_resource("Delete"), config="not even JSON")
    [(_, body, _)] = stubs.puts
    assert body["Status"] == "SUCCESS"
    assert body["PhysicalResourceId"] == "capacity-block-controller"


def test_malformed_config_answers_failed(stubs: Stubs) -> None:
    bad = json.dumps(config_dict(periodSeconds=30, version=2))
    stubs.run(custom_resource("Create"), config=bad)
    [(_, body, _)] = stubs.puts
    assert body["Status"] == "FAILED"
    assert "periodSeconds is 30; use 60 to 300" in body["Reason"]
    assert "version is 2" in body["Reason"]


def test_the_response_is_sent_even_when_the_run_breaks(stubs: Stubs) -> None:
    def broken_clock() -> datetime:
        raise RuntimeError("clock broke")

    handle(
        custom_resource("Create"),
        config_text=CONFIG,
        clients=stubs.clients,
        clock=broken_clock,
        put=stubs._put,
    )
    [(_, body, _)] = stubs.puts
    assert body["Status"] == "SUCCESS"
    assert "clock broke" in body["Reason"]


def test_a_failed_put_raises_so_lambda_retries(stubs: Stubs) -> None:
    def failing_put(url: str, body: bytes, headers: Any) -> None:
        raise OSError("connection reset")

    with pytest.raises(OSError, match="connection reset"):
        handle(
            custom_resource("Delete"),
            config_text=CONFIG,
            clients=stubs.clients,
            clock=lambda: START,
            put=failing_put,
        )


# ------------------------------------------------------------ configuration and entry


def test_malformed_config_lists_every_problem() -> None:
    value = config_dict(periodSeconds=30, topicArn="topic", reminderSeconds=[3600, 3600, -1])
    value["groups"][0].update(reservation="cr-123", kind="managed", drainLeadSeconds=600)
    del value["groups"][1]["autoScalingGroupName"]
    value["groups"].append(dict(value["groups"][0]))
    with pytest.raises(ConfigError) as caught:
        parse_config(json.dumps(value))
    text = str(caught.value)
    for part in [
        "periodSeconds is 30; use 60 to 300",
        "topicArn 'topic' is not an SNS topic ARN",
        "reminderSeconds[1] repeats 3600",
        "reminderSeconds[2] is -1",
        "groups[0] (Stack/GpuNodes): reservation 'cr-123' is not a reservation ID",
        "groups[1] (Stack/SelfNodes): autoScalingGroupName is missing",
    ]:
        assert part in text


def test_drain_lead_below_the_floor_is_refused() -> None:
    value = config_dict()
    value["groups"][0]["drainLeadSeconds"] = 2000
    with pytest.raises(ConfigError, match=r"drainLeadSeconds is 2000; .* needs at least 2400 s"):
        parse_config(value)


def test_main_reads_the_config_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CAPBLOCK_CONTROLLER_CONFIG", raising=False)
    with pytest.raises(ConfigError, match="CAPBLOCK_CONTROLLER_CONFIG is not set"):
        main(schedule("2031-03-05T00:00:00Z"), object())


def test_subjects_stay_within_the_sns_limit(stubs: Stubs) -> None:
    value = config_dict()
    value["groups"][0]["id"] = "VeryLongStackName/" + "Nested" * 12 + "/GpuNod\u00e9s"
    stubs.memory()
    stubs.reservation()
    stubs.asg(4, 4)
    stubs.nodegroup(0)
    stubs.updates_nodegroup(4)
    # SNS takes at most 100 ASCII characters: cut, with the non-ASCII letter replaced.
    full = f"Capacity Block {RID}: {value['groups'][0]['id']} scaled up 0 -> 4"
    sent = full.replace("\u00e9", "?")[:97] + "..."
    stubs.sns.add_response(
        "publish", {"MessageId": "m-1"}, {"TopicArn": TOPIC, "Subject": sent, "Message": ANY}
    )
    stubs.saves_memory()
    report = stubs.run(schedule("2031-03-05T00:00:00Z"), config=json.dumps(value))
    assert report["notifications"][0]["subject"] == full
    assert len(sent) == 100


def test_the_asset_imports_as_the_lambda_runtime_does() -> None:
    # In Lambda the asset root is controller/, so the package is "runtime" and the handler
    # string is "runtime.handler.main"; nothing outside the package may be imported.
    controller = Path(__file__).parent.parent / "capblock_constructs" / "controller"
    probe = (
        "import sys, runtime.handler as h; assert callable(h.main); "
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('capblock_constructs', 'aws_cdk', 'constructs', 'jsii')); print(bad)"
    )
    result = subprocess.run(
        [sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, '.'); {probe}"],
        cwd=controller,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_the_response_goes_only_to_https() -> None:
    with pytest.raises(ValueError, match="not an HTTPS URL"):
        http_put("http://example.com/x", b"{}", {"Content-Type": ""})
