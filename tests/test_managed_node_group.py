"""CapacityBlockManagedNodeGroup against the EKS and Capacity Block rules.

Four stacks cover the block's phases (before the start, within the safety
margin, active, past EKS's scale-down) and the three kinds of cluster; the
example stack is checked in tests/test_example_app.py. Validation errors are
raised while constructing, so their tests never synthesize.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import botocore.session
import cdk_nag
import pytest
from aws_cdk import Aws, Duration, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_eks as eks_v1
from aws_cdk import aws_eks_v2 as eks_v2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk.assertions import Annotations, Match, Template
from constructs import Construct

from capblock_constructs import (
    BLOCK_END_LABEL,
    RESERVATION_LABEL,
    CapacityBlockError,
    NodeTaint,
    RootVolume,
)
from capblock_constructs import efa as efa_module
from capblock_constructs._time import format_utc
from capblock_constructs.instance_types import InstanceTypeInfo
from capblock_constructs.managed_node_group import (
    _AMI_TYPES,
    CapacityBlockManagedNodeGroup,
    _render_user_data,
)
from tests.support import (
    ACCOUNT,
    BEFORE_START,
    DURING,
    EKS_NODE_ROLE_POLICIES,
    END,
    RESERVATION_ID,
    START,
    block,
    cfn_lint_errors,
    make_app,
    make_stack,
    managed_policy_names,
)

ROOT = Path(__file__).resolve().parent.parent
SUBNET_IN_BLOCK_ZONE = "subnet-aaaa1111"
SUBNET_ELSEWHERE = "subnet-bbbb2222"
CLUSTER_SG = "sg-0c1c1c1c1c1c1c1c1"
SOON = format_utc(START - timedelta(minutes=10))
LATE = format_utc(END - timedelta(minutes=35))
CUSTOM_AMI = "ami-0123456789abcdef0"


def _vpc(scope: Construct) -> ec2.IVpc:
    return ec2.Vpc.from_vpc_attributes(
        scope,
        "Vpc",
        vpc_id="vpc-12345678",
        availability_zones=["us-east-2a", "us-east-2b"],
        private_subnet_ids=[SUBNET_IN_BLOCK_ZONE, SUBNET_ELSEWHERE],
        public_subnet_ids=["subnet-cccc3333", "subnet-dddd4444"],
    )


class Synth:
    """One synthesized stack and lookups of one node group's resources in it."""

    def __init__(self, stack: Stack, groups: dict[str, CapacityBlockManagedNodeGroup]) -> None:
        self.stack = stack
        self.groups = groups
        self.template: dict[str, Any] = _template_json(stack)
        self.resources: dict[str, Any] = self.template["Resources"]

    def logical_id(self, construct: Any) -> str:
        value: str = self.stack.resolve(construct.logical_id)
        return value

    def nodegroup(self, name: str) -> dict[str, Any]:
        props: dict[str, Any] = self.resources[self.logical_id(self.groups[name].resource)][
            "Properties"
        ]
        return props

    def launch_data(self, name: str) -> dict[str, Any]:
        template = self.groups[name].launch_template.resource
        data: dict[str, Any] = self.resources[self.logical_id(template)]["Properties"][
            "LaunchTemplateData"
        ]
        return data

    def schedule(self, name: str, *, down: bool = False) -> dict[str, Any] | None:
        group = self.groups[name]
        schedule = group.scale_down_schedule if down else group.scale_up_schedule
        if schedule is None:
            return None
        props: dict[str, Any] = self.resources[self.logical_id(schedule)]["Properties"]
        return props

    def of_type(self, resource_type: str) -> list[dict[str, Any]]:
        return [r for r in self.resources.values() if r["Type"] == resource_type]

    def warnings(self, name: str) -> list[str]:
        path = "/" + self.groups[name].node.path
        found = Annotations.from_stack(self.stack).find_warning(path, Match.any_value())
        return [str(message.entry.data) for message in found]


def _template_json(stack: Stack) -> dict[str, Any]:
    return dict(Template.from_stack(stack).to_json())


# -- the four phase stacks ----------------------------------------------------------------


@pytest.fixture(scope="module")
def future() -> Synth:
    """Before the start; an aws_eks_v2 cluster built in the same app."""
    stack = make_stack(make_app(now=BEFORE_START), "Future")
    vpc = _vpc(stack)
    cluster = eks_v2.Cluster(stack, "Cluster", vpc=vpc, version=eks_v2.KubernetesVersion.V1_34)
    own_role = iam.Role(stack, "OwnRole", assumed_by=iam.ServicePrincipal("ec2.amazonaws.com"))
    groups = {
        "Gpu": CapacityBlockManagedNodeGroup(
            stack,
            "Gpu",
            cluster=cluster,
            capacity_block=block(),
            vpc=vpc,
            user_data="#!/bin/bash\necho tuned > /etc/motd\n",
        ),
        "Custom": CapacityBlockManagedNodeGroup(
            stack,
            "Custom",
            cluster=cluster,
            capacity_block=block(),
            vpc=vpc,
            image_id=CUSTOM_AMI,
            user_data="#!/bin/bash\n/usr/bin/nodeadm init\n",
            node_role=own_role,
            taints=[],
            labels={"team": "research"},
            max_size=3,
            desired_size=2,
            http_put_response_hop_limit=2,
            root_volume=RootVolume(size_gib=500),
            nodegroup_name="custom-gpu",
        ),
        "Ultra": CapacityBlockManagedNodeGroup(
            stack,
            "Ultra",
            cluster=cluster,
            # Trn2 UltraServers are sold in us-east-2, the test Region.
            capacity_block=block(
                instance_type="trn2.48xlarge", ultraserver_type="u-trn2x64", instance_count=4
            ),
            vpc=vpc,
        ),
        "Trainium": CapacityBlockManagedNodeGroup(
            stack,
            "Trainium",
            cluster=cluster,
            capacity_block=block(instance_type="trn2.48xlarge"),
            vpc=vpc,
            taints=[NodeTaint(key="aws.amazon.com/neuron", value="present", effect="NO_EXECUTE")],
        ),
    }
    return Synth(stack, groups)


@pytest.fixture(scope="module")
def soon() -> Synth:
    """Ten minutes before the start; an imported aws_eks_v2 cluster; EFA."""
    stack = make_stack(make_app(now=SOON), "Soon")
    vpc = _vpc(stack)
    cluster = eks_v2.Cluster.from_cluster_attributes(
        stack, "Cluster", cluster_name="imported-v2", cluster_security_group_id=CLUSTER_SG
    )
    groups = {
        "Efa": CapacityBlockManagedNodeGroup(
            stack, "Efa", cluster=cluster, capacity_block=block(), vpc=vpc, efa=True
        )
    }
    return Synth(stack, groups)


@pytest.fixture(scope="module")
def active() -> Synth:
    """While the block is active; an imported aws_eks cluster and a built aws_eks cluster."""
    stack = make_stack(make_app(now=DURING), "Active")
    vpc = _vpc(stack)
    imported = eks_v1.Cluster.from_cluster_attributes(stack, "Imported", cluster_name="imported-v1")
    built = eks_v1.Cluster(
        stack,
        "V1",
        vpc=vpc,
        version=eks_v1.KubernetesVersion.V1_32,
        default_capacity=0,
        kubectl_layer=lambda_.LayerVersion.from_layer_version_arn(
            stack, "Kubectl", f"arn:aws:lambda:us-east-2:{ACCOUNT}:layer:kubectl:1"
        ),
    )
    groups = {
        "OnImported": CapacityBlockManagedNodeGroup(
            stack, "OnImported", cluster=imported, capacity_block=block(), vpc=vpc
        ),
        "OnV1": CapacityBlockManagedNodeGroup(
            stack, "OnV1", cluster=built, capacity_block=block(), vpc=vpc
        ),
    }
    return Synth(stack, groups)


@pytest.fixture(scope="module")
def late() -> Synth:
    """35 minutes before the end, past EKS's own scale-down at end - 40 minutes."""
    stack = make_stack(make_app(now=LATE), "Late")
    vpc = _vpc(stack)
    cluster = eks_v2.Cluster.from_cluster_attributes(stack, "Cluster", cluster_name="late")
    groups = {
        "Draining": CapacityBlockManagedNodeGroup(
            stack, "Draining", cluster=cluster, capacity_block=block(), vpc=vpc
        )
    }
    return Synth(stack, groups)


@pytest.fixture(scope="module", params=["future", "soon", "active", "late"])
def every(request: pytest.FixtureRequest) -> Synth:
    synth: Synth = request.getfixturevalue(request.param)
    return synth


# -- launch template ------------------------------------------------------------------------


def test_launch_template_carries_the_capacity_block(future: Synth) -> None:
    data = future.launch_data("Gpu")
    assert data["InstanceType"] == "p5.48xlarge"
    assert data["InstanceMarketOptions"] == {"MarketType": "capacity-block"}
    assert data["CapacityReservationSpecification"] == {
        "CapacityReservationTarget": {"CapacityReservationId": RESERVATION_ID}
    }


def test_launch_template_has_nothing_managed_node_groups_forbid(every: Synth) -> None:
    for name in every.groups:
        data = every.launch_data(name)
        assert "IamInstanceProfile" not in data
        assert all("SubnetId" not in nic for nic in data.get("NetworkInterfaces", []))
        assert "InstanceInitiatedShutdownBehavior" not in data


def test_imdsv2_required_with_hop_limit_one_by_default(future: Synth) -> None:
    assert future.launch_data("Gpu")["MetadataOptions"] == {
        "HttpEndpoint": "enabled",
        "HttpTokens": "required",
        "HttpPutResponseHopLimit": 1,
    }
    assert future.launch_data("Custom")["MetadataOptions"]["HttpPutResponseHopLimit"] == 2


def test_root_volume_is_encrypted_gp3_with_configurable_size(future: Synth) -> None:
    default = future.launch_data("Gpu")["BlockDeviceMappings"][0]["Ebs"]
    assert (default["VolumeType"], default["Encrypted"], default["VolumeSize"]) == (
        "gp3",
        True,
        200,
    )
    custom = future.launch_data("Custom")["BlockDeviceMappings"][0]["Ebs"]
    assert (custom["VolumeType"], custom["Encrypted"], custom["VolumeSize"]) == ("gp3", True, 500)


def test_plain_user_data_is_wrapped_in_mime_multipart_for_eks_amis(future: Synth) -> None:
    text = future.launch_data("Gpu")["UserData"]["Fn::Base64"]
    assert text.startswith("MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=")
    boundary = re.search(r'boundary="([^"]+)"', text)
    assert boundary is not None
    assert f"--{boundary.group(1)}\nContent-Type: text/x-shellscript" in text
    assert "#!/bin/bash\necho tuned > /etc/motd\n" in text
    assert text.rstrip().endswith(f"--{boundary.group(1)}--")


def test_custom_ami_gets_its_user_data_unchanged(future: Synth) -> None:
    data = future.launch_data("Custom")
    assert data["ImageId"] == CUSTOM_AMI
    assert data["UserData"] == {"Fn::Base64": "#!/bin/bash\n/usr/bin/nodeadm init\n"}


def test_user_data_rendering_rules() -> None:
    mime = 'MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="b"\n\n--b\n\nx\n--b--\n'
    assert _render_user_data(mime, custom_ami=False) == mime
    assert _render_user_data(None, custom_ami=False) is None
    node_config = "---\napiVersion: node.eks.aws/v1alpha1\nkind: NodeConfig\n"
    wrapped = _render_user_data(node_config, custom_ami=False)
    assert wrapped is not None
    assert "Content-Type: application/node.eks.aws\n\n---\napiVersion: node.eks.aws" in wrapped
    linux = ec2.UserData.for_linux()
    linux.add_commands("echo hi")
    rendered = _render_user_data(linux, custom_ami=False)
    assert rendered is not None
    assert "Content-Type: text/x-shellscript" in rendered
    assert "echo hi" in rendered


# -- node group -----------------------------------------------------------------------------


def test_nodegroup_is_a_capacity_block_group_without_forbidden_fields(every: Synth) -> None:
    for name in every.groups:
        props = every.nodegroup(name)
        assert props["CapacityType"] == "CAPACITY_BLOCK"
        for forbidden in ("InstanceTypes", "DiskSize", "RemoteAccess"):
            assert forbidden not in props, (name, forbidden)


def test_nodegroup_pins_the_launch_template_version(future: Synth) -> None:
    template_id = future.logical_id(future.groups["Gpu"].launch_template.resource)
    assert future.nodegroup("Gpu")["LaunchTemplate"] == {
        "Id": {"Ref": template_id},
        "Version": {"Fn::GetAtt": [template_id, "LatestVersionNumber"]},
    }


def test_nodegroup_uses_only_the_subnet_in_the_block_zone(every: Synth) -> None:
    for name in every.groups:
        assert every.nodegroup(name)["Subnets"] == [SUBNET_IN_BLOCK_ZONE]


def test_ami_type_follows_the_instance_type(future: Synth) -> None:
    assert future.nodegroup("Gpu")["AmiType"] == "AL2023_x86_64_NVIDIA"
    assert future.nodegroup("Ultra")["AmiType"] == "AL2023_x86_64_NEURON"
    assert future.nodegroup("Trainium")["AmiType"] == "AL2023_x86_64_NEURON"


def test_ami_type_is_left_out_with_a_custom_ami(future: Synth) -> None:
    assert "AmiType" not in future.nodegroup("Custom")


def test_labels_identify_the_reservation_in_label_safe_form(future: Synth) -> None:
    labels = future.nodegroup("Gpu")["Labels"]
    assert labels[RESERVATION_LABEL] == RESERVATION_ID
    assert labels[BLOCK_END_LABEL] == END.strftime("%Y%m%dT%H%M%SZ")
    for value in labels.values():
        assert len(value) <= 63
        assert re.fullmatch(r"[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?", value)
    assert future.nodegroup("Custom")["Labels"]["team"] == "research"


def test_default_taint_keeps_non_accelerator_pods_off(future: Synth) -> None:
    assert future.nodegroup("Gpu")["Taints"] == [{"Key": "nvidia.com/gpu", "Effect": "NO_SCHEDULE"}]
    assert "Taints" not in future.nodegroup("Custom")
    assert future.nodegroup("Ultra")["Taints"] == [
        {"Key": "aws.amazon.com/neuron", "Effect": "NO_SCHEDULE"}
    ]
    assert future.nodegroup("Trainium")["Taints"] == [
        {"Key": "aws.amazon.com/neuron", "Value": "present", "Effect": "NO_EXECUTE"}
    ]


def test_default_node_role_has_the_eks_node_policies(future: Synth) -> None:
    role_id = future.logical_id(future.groups["Gpu"].node_role.node.default_child)
    assert future.nodegroup("Gpu")["NodeRole"] == {"Fn::GetAtt": [role_id, "Arn"]}
    role = future.resources[role_id]["Properties"]
    assert role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {
        "Service": "ec2.amazonaws.com"
    }
    assert managed_policy_names(role) == EKS_NODE_ROLE_POLICIES


def test_given_node_role_is_used_and_none_is_created(future: Synth) -> None:
    own = future.logical_id(future.stack.node.find_child("OwnRole").node.default_child)
    assert future.nodegroup("Custom")["NodeRole"] == {"Fn::GetAtt": [own, "Arn"]}
    assert future.groups["Custom"].node.try_find_child("NodeRole") is None


def test_exposes_nodegroup_name_arn_launch_template_and_role(future: Synth) -> None:
    group = future.groups["Gpu"]
    ng = future.logical_id(group.resource)
    assert future.stack.resolve(group.nodegroup_name) == {"Fn::GetAtt": [ng, "NodegroupName"]}
    assert future.stack.resolve(group.nodegroup_arn) == {"Fn::GetAtt": [ng, "Arn"]}
    assert group.launch_template.resource.cfn_resource_type == "AWS::EC2::LaunchTemplate"
    assert group.node_role.role_arn
    assert future.nodegroup("Custom")["NodegroupName"] == "custom-gpu"


# -- scaling --------------------------------------------------------------------------------


def test_before_start_the_group_waits_at_zero(future: Synth) -> None:
    assert future.nodegroup("Gpu")["ScalingConfig"] == {
        "MinSize": 0,
        "MaxSize": 4,
        "DesiredSize": 0,
    }
    assert future.nodegroup("Custom")["ScalingConfig"] == {
        "MinSize": 0,
        "MaxSize": 3,
        "DesiredSize": 0,
    }


def _input(schedule: dict[str, Any]) -> dict[str, Any]:
    """The schedule input with every deploy-time token replaced by '<token>'."""
    raw = schedule["Target"]["Input"]
    if isinstance(raw, dict):
        raw = "".join(part if isinstance(part, str) else "<token>" for part in raw["Fn::Join"][1])
    parsed: dict[str, Any] = json.loads(raw)
    return parsed


def test_scale_up_schedule_fires_once_at_the_block_start(future: Synth) -> None:
    schedule = future.schedule("Gpu")
    assert schedule is not None
    assert schedule["ScheduleExpression"] == f"at({START.strftime('%Y-%m-%dT%H:%M:%S')})"
    assert schedule["ScheduleExpressionTimezone"] == "UTC"
    assert schedule["FlexibleTimeWindow"] == {"Mode": "OFF"}
    # CloudFormation has no ActionAfterCompletion; the API default NONE keeps it.
    assert "ActionAfterCompletion" not in schedule
    retry = schedule["Target"]["RetryPolicy"]
    assert retry["MaximumRetryAttempts"] >= 1
    assert 60 <= retry["MaximumEventAgeInSeconds"] <= 86400


def _universal_target_rule() -> tuple[str, set[str], set[str], set[str]]:
    """What the universal-target rule asks of a call to UpdateNodegroupConfig.

    EventBridge Scheduler user guide, "Using universal targets": the ARN is
    arn:aws:scheduler:::aws-sdk:<SDK service identifier>:<apiAction in camelCase>;
    Input holds the request members, in PascalCase.
    """
    model = botocore.session.get_session().get_service_model("eks")
    operation = model.operation_model("UpdateNodegroupConfig")
    action = operation.name[0].lower() + operation.name[1:]
    arn_tail = f":scheduler:::aws-sdk:{model.service_id.lower().replace(' ', '')}:{action}"

    def pascal(names: Any) -> set[str]:
        return {name[0].upper() + name[1:] for name in names}

    members = pascal(operation.input_shape.members)
    required = pascal(operation.input_shape.required_members)
    scaling = pascal(model.shape_for("NodegroupScalingConfig").members)
    return arn_tail, members, required, scaling


def test_scale_up_schedule_calls_update_nodegroup_config_with_pascal_case_input(
    future: Synth,
) -> None:
    arn_tail, members, required, scaling = _universal_target_rule()
    schedule = future.schedule("Custom")
    assert schedule is not None
    assert schedule["Target"]["Arn"] == {
        "Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, arn_tail]]
    }
    body = _input(schedule)
    assert required <= set(body) <= members
    assert set(body["ScalingConfig"]) == scaling
    assert _input(schedule) == {
        "ClusterName": "<token>",
        "NodegroupName": "<token>",
        "ScalingConfig": {"MinSize": 0, "MaxSize": 3, "DesiredSize": 2},
    }
    parts = schedule["Target"]["Input"]["Fn::Join"][1]
    ng = future.logical_id(future.groups["Custom"].resource)
    assert {"Fn::GetAtt": [ng, "NodegroupName"]} in parts


def test_scheduler_role_may_only_update_this_nodegroup(future: Synth) -> None:
    group = future.groups["Gpu"]
    assert group.scale_up_role is not None
    role = future.resources[future.logical_id(group.scale_up_role.node.default_child)]["Properties"]
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "scheduler.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": ACCOUNT}}
    (policy,) = role["Policies"]
    ng = future.logical_id(group.resource)
    assert policy["PolicyDocument"]["Statement"] == [
        {
            "Action": "eks:UpdateNodegroupConfig",
            "Effect": "Allow",
            "Resource": {"Fn::GetAtt": [ng, "Arn"]},
        }
    ]
    schedule = future.schedule("Gpu")
    assert schedule is not None
    role_id = future.logical_id(group.scale_up_role.node.default_child)
    assert schedule["Target"]["RoleArn"] == {"Fn::GetAtt": [role_id, "Arn"]}


def test_instance_blocks_get_no_scale_down_of_our_own(every: Synth) -> None:
    # EKS creates its own scale-down 40 minutes before the end of an instance block.
    assert every.of_type("AWS::AutoScaling::ScheduledAction") == []
    for name, group in every.groups.items():
        if group.capacity_block.is_ultraserver:
            continue
        assert group.scale_down_schedule is None
        schedule = every.schedule(name)
        if schedule is not None:
            assert _input(schedule)["ScalingConfig"]["DesiredSize"] > 0


def test_within_the_safety_margin_the_group_is_sized_as_if_active(soon: Synth) -> None:
    assert soon.nodegroup("Efa")["ScalingConfig"] == {"MinSize": 0, "MaxSize": 4, "DesiredSize": 4}
    assert soon.of_type("AWS::Scheduler::Schedule") == []
    assert soon.groups["Efa"].scale_up_schedule is None
    assert any("startsWithinMargin" in w for w in soon.warnings("Efa"))


def test_active_block_runs_the_instances_without_a_schedule(active: Synth) -> None:
    for name in active.groups:
        assert active.nodegroup(name)["ScalingConfig"] == {
            "MinSize": 0,
            "MaxSize": 4,
            "DesiredSize": 4,
        }
    assert active.of_type("AWS::Scheduler::Schedule") == []


def test_past_eks_scale_down_the_group_stays_at_zero(late: Synth) -> None:
    assert late.nodegroup("Draining")["ScalingConfig"]["DesiredSize"] == 0
    assert late.of_type("AWS::Scheduler::Schedule") == []
    assert any("pastScaleDown" in w for w in late.warnings("Draining"))


def test_safety_margin_is_configurable() -> None:
    stack = make_stack(make_app(now=SOON), "Margin")
    cluster = eks_v2.Cluster.from_cluster_attributes(stack, "Cluster", cluster_name="c")
    group = CapacityBlockManagedNodeGroup(
        stack,
        "Group",
        cluster=cluster,
        capacity_block=block(),
        vpc=_vpc(stack),
        schedule_safety_margin=Duration.minutes(5),
    )
    # Ten minutes ahead is outside a five-minute margin: schedule, start at zero.
    assert group.scale_up_schedule is not None
    assert group.desired_size == 0


def test_a_target_of_zero_needs_no_schedule() -> None:
    group = _build(desired_size=0)
    assert group.desired_size == 0
    assert group.scale_up_schedule is None


# -- timing edges (constructed, not synthesized: the sizes and schedules are attributes) ---

MARGIN = timedelta(minutes=15)  # the documented default schedule_safety_margin
SECOND = timedelta(seconds=1)
ULTRA = {"ultraserver_type": "u-trn2x64", "instance_type": "trn2.48xlarge"}
# EKS's own scale-down for instance blocks; EC2's 60-minute reclaim plus ten minutes
# of drain for UltraServer blocks.
INSTANCE_SCALE_DOWN = END - timedelta(minutes=40)
ULTRA_SCALE_DOWN = END - timedelta(minutes=70)


def _at(moment: Any) -> str:
    return f"at({moment.strftime('%Y-%m-%dT%H:%M:%S')})"


def _warning_ids(group: CapacityBlockManagedNodeGroup) -> set[str]:
    found = set()
    for entry in group.node.metadata:
        if entry.type == "aws:cdk:warning":
            found.update(re.findall(r"capblock-constructs:(\w+)", str(entry.data)))
    return found


def _phase(now: Any, ultra: bool = False) -> CapacityBlockManagedNodeGroup:
    overrides = ULTRA if ultra else {}
    return _build(now=format_utc(now), capacity_block=block(**overrides))


@pytest.mark.parametrize(
    ("label", "now", "ultra", "desired", "up_at", "down_at", "warnings"),
    [
        (
            "margin and a second before the start",
            START - MARGIN - SECOND,
            False,
            0,
            START,
            None,
            set(),
        ),
        (
            "exactly the margin before the start",
            START - MARGIN,
            False,
            4,
            None,
            None,
            {"startsWithinMargin"},
        ),
        ("a second before the start", START - SECOND, False, 4, None, None, {"startsWithinMargin"}),
        ("exactly at the start", START, False, 4, None, None, set()),
        (
            "a second before EKS's scale-down",
            INSTANCE_SCALE_DOWN - SECOND,
            False,
            4,
            None,
            None,
            set(),
        ),
        (
            "exactly at EKS's scale-down",
            INSTANCE_SCALE_DOWN,
            False,
            0,
            None,
            None,
            {"pastScaleDown"},
        ),
        (
            "in EC2's reclaim window",
            END - timedelta(minutes=10),
            False,
            0,
            None,
            None,
            {"pastScaleDown"},
        ),
        (
            "UltraServer before the start",
            START - timedelta(days=1),
            True,
            0,
            START,
            ULTRA_SCALE_DOWN,
            set(),
        ),
        (
            "UltraServer within the margin of the start",
            START - SECOND,
            True,
            4,
            None,
            ULTRA_SCALE_DOWN,
            {"startsWithinMargin"},
        ),
        ("UltraServer active", START, True, 4, None, ULTRA_SCALE_DOWN, set()),
        (
            "UltraServer margin and a second before its scale-down",
            ULTRA_SCALE_DOWN - MARGIN - SECOND,
            True,
            4,
            None,
            ULTRA_SCALE_DOWN,
            set(),
        ),
        (
            "UltraServer exactly the margin before its scale-down",
            ULTRA_SCALE_DOWN - MARGIN,
            True,
            0,
            None,
            None,
            {"scaleDownWithinMargin"},
        ),
        ("UltraServer at its scale-down", ULTRA_SCALE_DOWN, True, 0, None, None, {"pastScaleDown"}),
        (
            "UltraServer between its scale-down and EKS's",
            END - timedelta(minutes=50),
            True,
            0,
            None,
            None,
            {"pastScaleDown"},
        ),
    ],
)
def test_desired_size_and_schedules_follow_the_block(
    label: str,
    now: Any,
    ultra: bool,
    desired: int,
    up_at: Any,
    down_at: Any,
    warnings: set[str],
) -> None:
    group = _phase(now, ultra)
    assert group.desired_size == desired, label
    up, down = group.scale_up_schedule, group.scale_down_schedule
    assert (up.schedule_expression if up else None) == (_at(up_at) if up_at else None), label
    assert (down.schedule_expression if down else None) == (_at(down_at) if down_at else None), (
        label
    )
    # Every UltraServer group says that EKS's own scale-down is too late for it.
    expected = warnings | ({"ultraServerScaleDown"} if ultra else set())
    assert _warning_ids(group) == expected, label


@pytest.mark.parametrize("ultra", [False, True])
def test_no_schedule_is_ever_in_the_past_or_within_the_margin(ultra: bool) -> None:
    # Moments around every edge of the block's life: each schedule created lies more
    # than the margin after now.
    edges = (START, INSTANCE_SCALE_DOWN, ULTRA_SCALE_DOWN)
    offsets = (-MARGIN - SECOND, -MARGIN, -MARGIN + SECOND, -SECOND, timedelta(0), SECOND)
    moments = [START - timedelta(days=1)] + [edge + offset for edge in edges for offset in offsets]
    checked = 0
    for moment in moments:
        group = _phase(moment, ultra)
        for schedule in (group.scale_up_schedule, group.scale_down_schedule):
            if schedule is not None:
                at = datetime.strptime(schedule.schedule_expression, "at(%Y-%m-%dT%H:%M:%S)")
                assert at.replace(tzinfo=timezone.utc) - moment > MARGIN, format_utc(moment)
                checked += 1
    assert checked > 0


def test_ultraserver_block_scales_to_zero_70_minutes_before_the_end(future: Synth) -> None:
    # EC2 reclaims UltraServer instances 60 minutes before the end; EKS's own
    # scale-down at 40 minutes is too late, so the group drains ten minutes earlier.
    group = future.groups["Ultra"]
    down = future.schedule("Ultra", down=True)
    assert down is not None
    drain_from = END - timedelta(minutes=70)
    assert down["ScheduleExpression"] == f"at({drain_from.strftime('%Y-%m-%dT%H:%M:%S')})"
    assert down["ScheduleExpressionTimezone"] == "UTC"
    assert _input(down)["ScalingConfig"] == {"MinSize": 0, "MaxSize": 4, "DesiredSize": 0}
    up = future.schedule("Ultra")
    assert up is not None
    assert _input(up)["ScalingConfig"]["DesiredSize"] == 4
    # Both schedules use the one role, which may only resize this node group.
    assert group.scale_up_role is not None
    role_id = future.logical_id(group.scale_up_role.node.default_child)
    assert down["Target"]["RoleArn"] == up["Target"]["RoleArn"] == {"Fn::GetAtt": [role_id, "Arn"]}
    assert len(future.resources[role_id]["Properties"]["Policies"]) == 1
    # The rule: warn that EKS's 40-minute action is too late, and say what happens.
    (warning,) = [w for w in future.warnings("Ultra") if "ultraServerScaleDown" in w]
    assert "EKS's own scale-down at 2027-03-15T10:50:00Z (40 minutes)" in warning
    assert "scales itself to 0 at 2027-03-15T10:20:00Z" in warning
    assert "capblock lookup <id> --refresh" in warning


# -- EFA and security groups ----------------------------------------------------------------


def test_efa_adds_one_interface_per_card_with_cluster_and_efa_groups(soon: Synth) -> None:
    data = soon.launch_data("Efa")
    interfaces = data["NetworkInterfaces"]
    assert len(interfaces) == 32
    assert interfaces[0]["InterfaceType"] == "efa"
    assert {nic["InterfaceType"] for nic in interfaces[1:]} == {"efa-only"}
    efa_group = soon.groups["Efa"].efa_security_group
    assert efa_group is not None
    efa_id = soon.logical_id(efa_group.security_group.node.default_child)
    for nic in interfaces:
        assert nic["Groups"] == [CLUSTER_SG, {"Fn::GetAtt": [efa_id, "GroupId"]}]
    assert "SecurityGroupIds" not in data


def test_no_placement_group_anywhere(every: Synth) -> None:
    assert every.of_type("AWS::EC2::PlacementGroup") == []
    for name in every.groups:
        assert "Placement" not in every.launch_data(name)


def test_without_efa_eks_attaches_the_cluster_security_group(future: Synth) -> None:
    data = future.launch_data("Gpu")
    assert "NetworkInterfaces" not in data
    assert "SecurityGroupIds" not in data


# -- clusters -------------------------------------------------------------------------------


def test_each_kind_of_cluster_gives_the_cluster_name(
    future: Synth, soon: Synth, active: Synth
) -> None:
    v2 = future.logical_id(future.stack.node.find_child("Cluster").node.default_child)
    assert future.nodegroup("Gpu")["ClusterName"] == {"Ref": v2}
    assert soon.nodegroup("Efa")["ClusterName"] == "imported-v2"
    assert active.nodegroup("OnImported")["ClusterName"] == "imported-v1"
    assert "Ref" in active.nodegroup("OnV1")["ClusterName"]


def test_built_v1_cluster_maps_the_node_role_in_aws_auth(active: Synth) -> None:
    role_id = active.logical_id(active.groups["OnV1"].node_role.node.default_child)
    manifests = json.dumps(active.of_type("Custom::AWSCDK-EKS-KubernetesResource"))
    assert "aws-auth" in manifests
    assert json.dumps({"Fn::GetAtt": [role_id, "Arn"]}) in manifests


# -- templates ------------------------------------------------------------------------------


def test_templates_pass_cfn_lint(every: Synth) -> None:
    assert cfn_lint_errors(every.template) == []


def test_node_groups_have_no_cdk_nag_findings(future: Synth, soon: Synth) -> None:
    for synth in (future, soon):
        report = cdk_nag.AwsSolutionsChecks().validate_scope(synth.stack)
        ours = [
            (violation.rule_name, resource.construct_path)
            for violation in report.violations
            for resource in violation.violating_resources
            if any(
                str(resource.construct_path).startswith(group.node.path + "/")
                for group in synth.groups.values()
            )
        ]
        assert ours == []


# -- validation -----------------------------------------------------------------------------


def _build(now: str = BEFORE_START, **options: Any) -> CapacityBlockManagedNodeGroup:
    stack = make_stack(make_app(now=now), "Invalid")
    fields: dict[str, Any] = {
        "cluster": eks_v2.Cluster.from_cluster_attributes(stack, "Cluster", cluster_name="c"),
        "capacity_block": block(),
        "vpc": _vpc(stack),
    }
    fields.update(options)
    return CapacityBlockManagedNodeGroup(stack, "Group", **fields)


def _error(now: str = BEFORE_START, **options: Any) -> str:
    with pytest.raises(CapacityBlockError) as raised:
        _build(now, **options)
    return str(raised.value)


def test_fails_when_an_explicit_subnet_is_in_another_zone() -> None:
    stack = make_stack(make_app(), "Explicit")
    other = ec2.Subnet.from_subnet_attributes(
        stack, "Other", subnet_id="subnet-0ther000", availability_zone="us-east-2c"
    )
    good = ec2.Subnet.from_subnet_attributes(
        stack, "Good", subnet_id="subnet-g00d0000", availability_zone="us-east-2a"
    )
    with pytest.raises(CapacityBlockError) as raised:
        CapacityBlockManagedNodeGroup(
            stack,
            "Group",
            cluster=eks_v2.Cluster.from_cluster_attributes(stack, "Cluster", cluster_name="c"),
            capacity_block=block(),
            vpc=_vpc(stack),
            vpc_subnets=ec2.SubnetSelection(subnets=[good, other]),
        )
    message = str(raised.value)
    assert "subnet subnet-0ther000 is in us-east-2c" in message
    assert "us-east-2a" in message
    assert "remove the subnet" in message


def test_fails_when_no_subnet_is_in_the_block_zone() -> None:
    message = _error(capacity_block=block(availability_zone="us-east-2c"))
    assert "no subnet in us-east-2c" in message
    assert f"{SUBNET_IN_BLOCK_ZONE} (us-east-2a)" in message
    assert f"{SUBNET_ELSEWHERE} (us-east-2b)" in message


def test_fails_when_an_explicit_subnet_has_no_known_zone() -> None:
    stack = make_stack(make_app(), "NoZone")
    bare = ec2.Subnet.from_subnet_id(stack, "Bare", "subnet-0bare000")
    with pytest.raises(CapacityBlockError, match=r"subnet-0bare000 has no Availability Zone"):
        CapacityBlockManagedNodeGroup(
            stack,
            "Group",
            cluster=eks_v2.Cluster.from_cluster_attributes(stack, "Cluster", cluster_name="c"),
            capacity_block=block(),
            vpc=_vpc(stack),
            vpc_subnets=ec2.SubnetSelection(subnets=[bare]),
        )


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"max_size": 5}, r"max_size 5 must be between 1 and the block's instance count \(4\)"),
        ({"max_size": 0}, r"max_size 0 must be between 1"),
        ({"desired_size": 5}, r"desired_size 5 must be between 0 and max_size \(4\)"),
        (
            {"max_size": 2, "desired_size": 3},
            r"desired_size 3 must be between 0 and max_size \(2\)",
        ),
        ({"instance_types": ["p5.48xlarge"]}, r"instance_types \['p5.48xlarge'\] cannot be set"),
        (
            {"image_id": CUSTOM_AMI, "ami_type": "AL2023_x86_64_NVIDIA"},
            r"ami_type 'AL2023_x86_64_NVIDIA' conflicts with the custom AMI",
        ),
        ({"ami_type": "CUSTOM"}, r"'CUSTOM' needs a custom AMI .* pass image_id"),
        ({"ami_type": "AL2023_GPU"}, r"ami_type 'AL2023_GPU' is not an EKS AMI type"),
        (
            {
                "capacity_block": block(instance_type="p6e-gb200.36xlarge"),
                "ami_type": "AL2023_x86_64_NVIDIA",
            },
            r"ami_type 'AL2023_x86_64_NVIDIA' is built for x86_64, but p6e-gb200.36xlarge "
            r"has arm64 CPUs.*use AL2023_ARM_64_NVIDIA",
        ),
        (
            {"ami_type": "AL2023_x86_64_NEURON"},
            r"ami_type 'AL2023_x86_64_NEURON' carries the drivers of another accelerator than "
            r"p5.48xlarge's \(nvidia\); use AL2023_x86_64_NVIDIA",
        ),
        (
            {
                "capacity_block": block(instance_type="trn2.48xlarge"),
                "ami_type": "AL2023_x86_64_NVIDIA",
            },
            r"'AL2023_x86_64_NVIDIA' carries the drivers .* \(neuron\); use AL2023_x86_64_NEURON",
        ),
        (
            {"capacity_reservation_resource_group_arn": "arn:aws:resource-groups:x"},
            r"capacity_reservation_resource_group_arn 'arn:aws:resource-groups:x' is set, but "
            r"Capacity Block cr-0123456789abcdef0 is an instance block.*remove",
        ),
        ({"max_size": True}, r"max_size True must be between 1 and the block's instance count"),
        ({"desired_size": -1}, r"desired_size -1 must be between 0 and max_size \(4\)"),
        (
            {"labels": {"-bad key": "x"}},
            r"label key '-bad key' is not a valid Kubernetes label key",
        ),
        (
            {"taints": [NodeTaint(key="bad key")]},
            r"taint key 'bad key' is not a valid Kubernetes key",
        ),
        (
            {"taints": [NodeTaint(key="nvidia.com/gpu", value="a b")]},
            r"taint 'nvidia.com/gpu' has the value 'a b', which Kubernetes rejects",
        ),
        (
            {"capacity_block": block(instance_type="p9.48xlarge")},
            r"'p9.48xlarge' is not in the capblock-constructs instance-type table.*pass ami_type",
        ),
        (
            {
                "capacity_block": block(instance_type="p9.48xlarge"),
                "ami_type": "AL2023_x86_64_NVIDIA",
                "efa": True,
                "cluster_security_group_id": CLUSTER_SG,
            },
            r"efa=True: instance type 'p9.48xlarge' is not in .*turn EFA off",
        ),
        ({"efa": True}, r"no known cluster_security_group_id, so pass cluster_security_group_id"),
        (
            {"taints": [NodeTaint(key="x", effect="NOPE")]},
            r"taint 'x' has the effect 'NOPE'; use one of NoSchedule, PreferNoSchedule, NoExecute",
        ),
        ({"labels": {"team": "a b"}}, r"label 'team' has the value 'a b'"),
        (
            {"labels": {RESERVATION_LABEL: "cr-00000000"}},
            r"is set by the construct to identify the Capacity Block; remove it from labels",
        ),
    ],
)
def test_fails_on_invalid_options(options: dict[str, Any], expected: str) -> None:
    assert re.search(expected, _error(**options))


def test_ultraserver_block_may_launch_through_its_resource_group() -> None:
    arn = "arn:aws:resource-groups:us-east-2:123456789012:group/ultra"
    group = _build(capacity_block=block(**ULTRA), capacity_reservation_resource_group_arn=arn)
    data = group.launch_template.resource.launch_template_data
    assert isinstance(data, ec2.CfnLaunchTemplate.LaunchTemplateDataProperty)
    spec = data.capacity_reservation_specification
    assert isinstance(spec, ec2.CfnLaunchTemplate.CapacityReservationSpecificationProperty)
    target = spec.capacity_reservation_target
    assert isinstance(target, ec2.CfnLaunchTemplate.CapacityReservationTargetProperty)
    assert target.capacity_reservation_resource_group_arn == arn
    assert target.capacity_reservation_id is None


def test_custom_ami_type_with_an_image_is_left_out() -> None:
    # AWS: with a custom AMI in the launch template, do not specify amiType.
    group = _build(image_id=CUSTOM_AMI, ami_type="CUSTOM", user_data="#!/bin/bash\n")
    assert group.resource.ami_type is None


def test_every_eks_ami_type_is_accepted_and_nothing_else() -> None:
    model = botocore.session.get_session().get_service_model("eks")
    assert set(model.shape_for("AMITypes").enum) == _AMI_TYPES


def test_fails_on_efa_for_a_type_without_efa(monkeypatch: pytest.MonkeyPatch) -> None:
    no_efa = InstanceTypeInfo(
        instance_type="p5.48xlarge",
        accelerator="nvidia",
        architecture="x86_64",
        network_cards=32,
        efa_supported=False,
        source="test",
    )
    monkeypatch.setattr(efa_module, "instance_type_info", lambda _: no_efa)
    message = _error(efa=True, cluster_security_group_id=CLUSTER_SG)
    assert "'p5.48xlarge' does not support Elastic Fabric Adapter" in message


def test_fails_when_the_block_has_ended() -> None:
    message = _error(now=format_utc(END))
    assert f"ended at {format_utc(END)}" in message
    assert "Use a current reservation" in message


def test_reports_every_problem_at_once() -> None:
    message = _error(
        now=format_utc(END + timedelta(days=1)),
        max_size=9,
        instance_types=["p5.48xlarge"],
        capacity_block=block(availability_zone="us-east-2c"),
    )
    assert message.count("\n  - ") == 4
    assert "4 problems" in message


def test_launch_template_problems_come_in_the_same_error() -> None:
    message = _error(
        image_id="my-ami",
        root_volume=RootVolume(size_gib=0),
        http_put_response_hop_limit=0,
        max_size=9,
    )
    assert "4 problems" in message
    assert "image_id 'my-ami' is not an AMI ID; pass an 'ami-...' ID" in message
    assert "root_volume.size_gib 0 must be" in message
    assert "http_put_response_hop_limit 0 must be between 1 and 64" in message
    assert "max_size 9 must be between 1" in message


def test_fails_when_vpc_subnets_select_nothing() -> None:
    message = _error(vpc_subnets=ec2.SubnetSelection(subnet_group_name="Missing"))
    assert "vpc_subnets selects nothing usable in the VPC" in message
    assert "Missing" in message
    assert "select the VPC's subnets in us-east-2a" in message


def test_fails_on_a_deploy_time_label() -> None:
    message = _error(labels={"account": Aws.ACCOUNT_ID})
    assert "label 'account' is a deploy-time value" in message
    assert "pass plain strings" in message


def test_extra_security_groups_come_after_the_cluster_group() -> None:
    stack = make_stack(make_app(), "Groups")
    extra = ec2.SecurityGroup.from_security_group_id(stack, "Extra", "sg-0e0e0e0e0e0e0e0e0")
    group = CapacityBlockManagedNodeGroup(
        stack,
        "Group",
        cluster=eks_v2.Cluster.from_cluster_attributes(
            stack, "Cluster", cluster_name="c", cluster_security_group_id=CLUSTER_SG
        ),
        capacity_block=block(),
        vpc=_vpc(stack),
        security_groups=[extra],
    )
    data = group.launch_template.resource.launch_template_data
    assert isinstance(data, ec2.CfnLaunchTemplate.LaunchTemplateDataProperty)
    # EKS adds the cluster group only when the template names none, so it is named here.
    assert data.security_group_ids == [CLUSTER_SG, "sg-0e0e0e0e0e0e0e0e0"]
    assert data.network_interfaces is None


def test_unknown_keyword_is_rejected() -> None:
    with pytest.raises(TypeError):
        _build(disk_size=100)
