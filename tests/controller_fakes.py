"""An in-memory AWS account for the controller's simulation tests.

Fake EC2, EKS, EC2 Auto Scaling, SNS and SSM clients implement just the calls the
controller makes. Every request and every response is checked against botocore's
real service model (as the Stubber does), so the fakes cannot drift from boto3's
shapes. Time is the account's own clock: :meth:`FakeAccount.advance_to` moves it,
flips reservation states, fires due scheduled actions and brings launched
instances InService one tick after they were asked for.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache
from typing import Any

import botocore.session
from botocore.exceptions import ClientError
from botocore.validate import ParamValidator

from capblock_constructs.controller.runtime.aws import Clients

ACCOUNT = "123456789012"
REGION = "us-east-2"
ZONE = f"{REGION}a"
"""The Availability Zone of every fake reservation, Auto Scaling group and instance."""
TOPIC_ARN = f"arn:aws:sns:{REGION}:{ACCOUNT}:capblock-controller"
STATE_PARAMETER = "/capblock-constructs/Sim/CapacityBlockController/state"
EKS_ACTION_NAME = "Amazon EKS Node Group Capacity Scaledown Before Reservation End"
EKS_SCALE_DOWN_LEAD = timedelta(minutes=40)


@cache
def _service_model(service: str) -> Any:
    return botocore.session.get_session().get_service_model(service)


_CHECKED: set[str] = set()


def _check(service: str, operation: str, shape_kind: str, value: dict[str, Any]) -> None:
    """Fail the test when a request or response does not fit botocore's model.

    A simulation repeats the same calls thousands of times; each distinct value is checked once.
    """
    key = f"{service}.{operation}.{shape_kind}:{value!r}"
    if key in _CHECKED:
        return
    model = _service_model(service).operation_model(operation)
    shape = model.input_shape if shape_kind == "input" else model.output_shape
    report = ParamValidator().validate(value, shape)
    if report.has_errors():
        raise AssertionError(f"{service}.{operation} {shape_kind}: {report.generate_report()}")
    _CHECKED.add(key)


def client_error(code: str, message: str, operation: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, operation)


@dataclass
class FakeReservation:
    reservation_id: str
    start: datetime
    end: datetime
    count: int
    cancelled_at: datetime | None = None

    def state(self, now: datetime) -> str:
        if self.cancelled_at is not None and now >= self.cancelled_at:
            return "cancelled"
        if now >= self.end:
            return "expired"
        return "active" if now >= self.start else "scheduled"


@dataclass
class FakeInstance:
    instance_id: str
    lifecycle_state: str  # "Pending" until the next tick, then "InService"


@dataclass
class FakeScheduledAction:
    name: str
    start: datetime
    desired: int


@dataclass
class FakeAsg:
    name: str
    reservation_id: str
    desired: int = 0
    min_size: int = 0
    max_size: int = 0
    instances: list[FakeInstance] = field(default_factory=list)
    actions: list[FakeScheduledAction] = field(default_factory=list)


@dataclass
class FakeNodegroup:
    cluster: str
    name: str
    asg_name: str
    status: str = "ACTIVE"


@dataclass
class Published:
    at: datetime
    subject: str
    message: str


class FakeAccount:
    """The account's state and clock; hands out fake clients over it."""

    def __init__(self, now: datetime, *, launch_limit: int | None = None) -> None:
        self.now = now
        self.reservations: dict[str, FakeReservation] = {}
        self.asgs: dict[str, FakeAsg] = {}
        self.nodegroups: dict[tuple[str, str], FakeNodegroup] = {}
        self.published: list[Published] = []
        self.parameters: dict[str, str] = {STATE_PARAMETER: "{}"}
        self.calls: list[str] = []
        self.launch_limit = launch_limit
        """At most this many instances launch per reservation (a capacity shortfall)."""
        self._ids = itertools.count(1)

    # ------------------------------------------------------------------ set-up

    def add_reservation(self, reservation: FakeReservation) -> None:
        self.reservations[reservation.reservation_id] = reservation

    def add_asg(self, name: str, reservation_id: str, *, max_size: int) -> FakeAsg:
        asg = FakeAsg(name=name, reservation_id=reservation_id, max_size=max_size)
        self.asgs[name] = asg
        return asg

    def add_nodegroup(
        self, cluster: str, name: str, reservation_id: str, *, max_size: int
    ) -> FakeNodegroup:
        """A managed node group at desiredSize 0, with the scale-down action EKS adds."""
        asg = self.add_asg(f"eks-{name}-0000", reservation_id, max_size=max_size)
        end = self.reservations[reservation_id].end
        if end - EKS_SCALE_DOWN_LEAD > self.now:
            asg.actions.append(
                FakeScheduledAction(
                    name=EKS_ACTION_NAME, start=end - EKS_SCALE_DOWN_LEAD, desired=0
                )
            )
        nodegroup = FakeNodegroup(cluster=cluster, name=name, asg_name=asg.name)
        self.nodegroups[(cluster, name)] = nodegroup
        return nodegroup

    def clients(self) -> Clients:
        def refuse(service: str) -> Any:
            raise AssertionError(f"the controller asked for an unexpected {service} client")

        return Clients(
            factory=refuse,
            ec2=FakeEC2(self),
            eks=FakeEKS(self),
            autoscaling=FakeAutoScaling(self),
            sns=FakeSNS(self),
            ssm=FakeSSM(self),
        )

    # ------------------------------------------------------------------ time

    def advance_to(self, now: datetime) -> None:
        """Move the clock: instances asked for before now come InService, scheduled actions
        due strictly before now fire (one at exactly now races the controller's run at now, and
        the controller is let to win), and EC2 takes back instances of unusable blocks."""
        assert now >= self.now
        self.now = now
        for asg in self.asgs.values():
            for action in [a for a in asg.actions if a.start < now]:
                asg.actions.remove(action)
                self._set_desired(asg, action.desired)
            for instance in asg.instances:
                instance.lifecycle_state = "InService"
            if self.reservations[asg.reservation_id].state(now) != "active":
                asg.instances.clear()
            self._launch(asg)

    def _set_desired(self, asg: FakeAsg, desired: int) -> None:
        asg.desired = desired
        del asg.instances[desired:]
        self._launch(asg)

    def _launch(self, asg: FakeAsg) -> None:
        reservation = self.reservations[asg.reservation_id]
        if reservation.state(self.now) != "active":
            return
        limit = reservation.count if self.launch_limit is None else self.launch_limit
        in_use = sum(
            len(other.instances)
            for other in self.asgs.values()
            if other.reservation_id == asg.reservation_id
        )
        while len(asg.instances) < asg.desired and in_use < limit:
            asg.instances.append(FakeInstance(f"i-{next(self._ids):017x}", "Pending"))
            in_use += 1

    def in_service(self, group: str) -> int:
        """InService instances of a node group (by name) or an Auto Scaling group."""
        return sum(i.lifecycle_state == "InService" for i in self.asg_of(group).instances)

    def asg_of(self, group: str) -> FakeAsg:
        """The Auto Scaling group behind a node group name or an ASG name."""
        for nodegroup in self.nodegroups.values():
            if nodegroup.name == group:
                return self.asgs[nodegroup.asg_name]
        return self.asgs[group]


class _FakeClient:
    service = ""

    def __init__(self, account: FakeAccount) -> None:
        self.account = account

    def _call(self, operation: str, params: dict[str, Any]) -> None:
        _check(self.service, operation, "input", params)
        self.account.calls.append(f"{self.service}:{operation}")

    def _answer(self, operation: str, response: dict[str, Any]) -> dict[str, Any]:
        _check(self.service, operation, "output", response)
        return response


class FakeEC2(_FakeClient):
    service = "ec2"

    def describe_capacity_reservations(self, **params: Any) -> dict[str, Any]:
        self._call("DescribeCapacityReservations", params)
        now = self.account.now
        items = []
        for rid in params["CapacityReservationIds"]:
            reservation = self.account.reservations.get(rid)
            if reservation is None:
                raise client_error(
                    "InvalidCapacityReservationId.NotFound",
                    f"The capacity reservation ID '{rid}' does not exist",
                    "DescribeCapacityReservations",
                )
            state = reservation.state(now)
            count = reservation.count if state == "active" else 0
            in_use = sum(
                len(asg.instances)
                for asg in self.account.asgs.values()
                if asg.reservation_id == rid
            )
            items.append(
                {
                    "CapacityReservationId": rid,
                    "InstanceType": "p5.48xlarge",
                    "AvailabilityZone": ZONE,
                    "TotalInstanceCount": count,
                    "AvailableInstanceCount": max(0, count - in_use),
                    "State": state,
                    "StartDate": reservation.start,
                    "EndDate": reservation.end,
                    "EndDateType": "limited",
                    "InstanceMatchCriteria": "targeted",
                    "ReservationType": "capacity-block",
                }
            )
        return self._answer("DescribeCapacityReservations", {"CapacityReservations": items})


class FakeEKS(_FakeClient):
    service = "eks"

    def _nodegroup(self, params: dict[str, Any], operation: str) -> FakeNodegroup:
        key = (params["clusterName"], params["nodegroupName"])
        nodegroup = self.account.nodegroups.get(key)
        if nodegroup is None:
            raise client_error(
                "ResourceNotFoundException", f"No node group found for name: {key[1]}.", operation
            )
        return nodegroup

    def describe_nodegroup(self, **params: Any) -> dict[str, Any]:
        self._call("DescribeNodegroup", params)
        nodegroup = self._nodegroup(params, "DescribeNodegroup")
        asg = self.account.asgs[nodegroup.asg_name]
        return self._answer(
            "DescribeNodegroup",
            {
                "nodegroup": {
                    "nodegroupName": nodegroup.name,
                    "clusterName": nodegroup.cluster,
                    "status": nodegroup.status,
                    "capacityType": "CAPACITY_BLOCK",
                    "scalingConfig": {
                        "minSize": asg.min_size,
                        "maxSize": asg.max_size,
                        "desiredSize": asg.desired,
                    },
                    "resources": {"autoScalingGroups": [{"name": asg.name}]},
                }
            },
        )

    def update_nodegroup_config(self, **params: Any) -> dict[str, Any]:
        self._call("UpdateNodegroupConfig", params)
        nodegroup = self._nodegroup(params, "UpdateNodegroupConfig")
        if nodegroup.status not in ("ACTIVE", "DEGRADED"):
            raise client_error(
                "ResourceInUseException", "Nodegroup is busy", "UpdateNodegroupConfig"
            )
        asg = self.account.asgs[nodegroup.asg_name]
        scaling = params["scalingConfig"]
        asg.min_size, asg.max_size = scaling["minSize"], scaling["maxSize"]
        self.account._set_desired(asg, scaling["desiredSize"])
        return self._answer(
            "UpdateNodegroupConfig",
            {"update": {"id": f"update-{len(self.account.calls)}", "status": "InProgress"}},
        )


class FakeAutoScaling(_FakeClient):
    service = "autoscaling"

    def describe_auto_scaling_groups(self, **params: Any) -> dict[str, Any]:
        self._call("DescribeAutoScalingGroups", params)
        groups = []
        for name in params.get("AutoScalingGroupNames", []):
            asg = self.account.asgs.get(name)
            if asg is None:
                continue  # EC2 Auto Scaling leaves unknown names out, without an error
            groups.append(
                {
                    "AutoScalingGroupName": asg.name,
                    "MinSize": asg.min_size,
                    "MaxSize": asg.max_size,
                    "DesiredCapacity": asg.desired,
                    "DefaultCooldown": 300,
                    "AvailabilityZones": [ZONE],
                    "HealthCheckType": "EC2",
                    "CreatedTime": datetime(2031, 1, 1),
                    "Instances": [
                        {
                            "InstanceId": instance.instance_id,
                            "AvailabilityZone": ZONE,
                            "LifecycleState": instance.lifecycle_state,
                            "HealthStatus": "Healthy",
                            "ProtectedFromScaleIn": False,
                        }
                        for instance in asg.instances
                    ],
                }
            )
        return self._answer("DescribeAutoScalingGroups", {"AutoScalingGroups": groups})

    def update_auto_scaling_group(self, **params: Any) -> dict[str, Any]:
        self._call("UpdateAutoScalingGroup", params)
        asg = self.account.asgs.get(params["AutoScalingGroupName"])
        if asg is None:
            raise client_error("ValidationError", "AutoScalingGroup name not found", "Update")
        asg.min_size = params.get("MinSize", asg.min_size)
        asg.max_size = params.get("MaxSize", asg.max_size)
        if params.get("DesiredCapacity", asg.desired) > asg.max_size:
            raise client_error("ValidationError", "Desired > max", "UpdateAutoScalingGroup")
        self.account._set_desired(asg, params.get("DesiredCapacity", asg.desired))
        return {}

    def describe_scheduled_actions(self, **params: Any) -> dict[str, Any]:
        self._call("DescribeScheduledActions", params)
        asg = self.account.asgs[params["AutoScalingGroupName"]]
        return self._answer(
            "DescribeScheduledActions",
            {
                "ScheduledUpdateGroupActions": [
                    {
                        "AutoScalingGroupName": asg.name,
                        "ScheduledActionName": action.name,
                        "StartTime": action.start,
                        "Time": action.start,
                        "DesiredCapacity": action.desired,
                    }
                    for action in asg.actions
                ]
            },
        )


class FakeSNS(_FakeClient):
    service = "sns"

    def publish(self, **params: Any) -> dict[str, Any]:
        self._call("Publish", params)
        assert params["TopicArn"] == TOPIC_ARN
        subject = params.get("Subject", "")
        assert len(subject) <= 100, subject
        assert subject.isascii(), subject
        self.account.published.append(
            Published(at=self.account.now, subject=subject, message=params["Message"])
        )
        return self._answer("Publish", {"MessageId": f"m-{len(self.account.published)}"})


class FakeSSM(_FakeClient):
    service = "ssm"

    def get_parameter(self, **params: Any) -> dict[str, Any]:
        self._call("GetParameter", params)
        name = params["Name"]
        if name not in self.account.parameters:
            raise client_error("ParameterNotFound", "", "GetParameter")
        return self._answer(
            "GetParameter",
            {"Parameter": {"Name": name, "Type": "String", "Value": self.account.parameters[name]}},
        )

    def put_parameter(self, **params: Any) -> dict[str, Any]:
        self._call("PutParameter", params)
        assert params.get("Overwrite") is True
        assert params.get("Type", "String") == "String"
        assert len(params["Value"].encode()) <= 4096
        self.account.parameters[params["Name"]] = params["Value"]
        return self._answer("PutParameter", {"Version": 1})
