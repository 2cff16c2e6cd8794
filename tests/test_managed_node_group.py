"""CapacityBlockManagedNodeGroup against the EKS and Capacity Block rules.

The node group hands all timing to the stack's CapacityBlockController, so its
template must not depend on when it is synthesized: the same stack is built at
three pinned moments of the block's life and the templates compared. Three
kinds of cluster are covered by the shared stacks; the example stack is checked
in tests/test_example_app.py. Validation errors are raised while constructing,
so their tests never synthesize.

Expected values come from the AWS rules, written out here rather than imported
from the library:

- EKS scales a ``CAPACITY_BLOCK`` managed node group to zero 40 minutes before
  the block's end (EKS user guide, Capacity Blocks for managed node groups).
- EC2 starts reclaiming an instance block's instances 30 minutes before its
  end, an UltraServer block's 60 minutes before (EC2 user guide, How Capacity
  Blocks work); the group drains 10 minutes before that, the margin EKS leaves
  for instance blocks: 40 and 70 minutes.
- The EKS API wants all of ``NodegroupScalingConfig`` or none when a group is
  created, and AWS asks for desired size 0 before the block is active.
- The EKS API limits a managed node group's label keys and taint keys to 63
  characters prefix included, its label values to 1-63 characters and its
  taints to 50 (botocore's EKS model; EKS API reference, "Taint").
- EKS node auto repair is configured by ``NodeRepairConfig`` (botocore's EKS
  model, the CloudFormation schema); counts and percentages are exclusive.
- Nodes advertise GPUs, Neuron devices and EFA interfaces only once the device
  plugins run on them (see tests/test_device_plugins.py).
"""

from __future__ import annotations

import json
import re
from datetime import timedelta
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
    RESERVATION_LABEL,
    CapacityBlockController,
    CapacityBlockError,
    NodeTaint,
    RootVolume,
)
from capblock_constructs import efa as efa_module
from capblock_constructs._eks_limits import EKS_LABEL_KEY_LENGTH, EKS_MAX_TAINTS
from capblock_constructs._time import format_utc
from capblock_constructs.controller import CONTROLLER_CONFIG_VARIABLE
from capblock_constructs.device_plugins import (
    EFA_DEVICE_PLUGIN,
    NEURON_DEVICE_PLUGIN,
    NVIDIA_DEVICE_PLUGIN,
    NVIDIA_DEVICE_PLUGIN_LABEL,
)
from capblock_constructs.instance_types import (
    InstanceTypeInfo,
    instance_type_info,
    known_instance_types,
)
from capblock_constructs.managed_node_group import (
    _AMI_TYPES,
    _REPAIR_ACTIONS,
    CapacityBlockManagedNodeGroup,
    NodeRepair,
    NodeRepairOverride,
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
from tests.test_device_plugins import runs_on

SUBNET_IN_BLOCK_ZONE = "subnet-aaaa1111"
SUBNET_ELSEWHERE = "subnet-bbbb2222"
CLUSTER_SG = "sg-0c1c1c1c1c1c1c1c1"
CUSTOM_AMI = "ami-0123456789abcdef0"
SECOND = timedelta(seconds=1)
# Trn2 UltraServers are sold in us-east-2, the test Region.
ULTRA = {"ultraserver_type": "u-trn2x64", "instance_type": "trn2.48xlarge"}

# The AWS rules (see the module docstring).
EKS_SCALE_DOWN_LEAD = timedelta(minutes=40)
INSTANCE_RECLAIM_LEAD = timedelta(minutes=30)
ULTRA_RECLAIM_LEAD = timedelta(minutes=60)
DRAIN_MARGIN = EKS_SCALE_DOWN_LEAD - INSTANCE_RECLAIM_LEAD
INSTANCE_DRAIN_LEAD = EKS_SCALE_DOWN_LEAD  # 40 minutes
ULTRA_DRAIN_LEAD = ULTRA_RECLAIM_LEAD + DRAIN_MARGIN  # 70 minutes
# What the template's ScalingConfig must always be for the 4-instance reference block.
CONSTANT_SCALING = {"MinSize": 0, "MaxSize": 4, "DesiredSize": 0}

# Three moments of the block's life: before the start, while it is active, and after every
# group's drain time (end - 40 min, end - 70 min for UltraServer) but before the end.
AFTER_DRAIN = format_utc(END - INSTANCE_DRAIN_LEAD + timedelta(minutes=5))
MOMENTS = {
    "before the start": BEFORE_START,
    "during the block": DURING,
    "after the drain": AFTER_DRAIN,
}


def _vpc(scope: Construct) -> ec2.IVpc:
    return ec2.Vpc.from_vpc_attributes(
        scope,
        "Vpc",
        vpc_id="vpc-12345678",
        availability_zones=["us-east-2a", "us-east-2b"],
        private_subnet_ids=[SUBNET_IN_BLOCK_ZONE, SUBNET_ELSEWHERE],
        public_subnet_ids=["subnet-cccc3333", "subnet-dddd4444"],
    )


def _decode_config(value: Any) -> dict[str, Any]:
    """The controller's JSON configuration, each deploy-time token back in its place.

    In the template it is a string or an ``Fn::Join`` of strings and tokens; a token
    always stands for a whole JSON string value.
    """
    if isinstance(value, str):
        plain: dict[str, Any] = json.loads(value)
        return plain
    separator, parts = value["Fn::Join"]
    assert separator == ""
    tokens: dict[str, Any] = {}
    text = []
    for part in parts:
        if isinstance(part, str):
            text.append(part)
        else:
            placeholder = f"<token {len(tokens)}>"
            tokens[placeholder] = part
            text.append(placeholder)

    def restore(node: Any) -> Any:
        if isinstance(node, dict):
            return {key: restore(item) for key, item in node.items()}
        if isinstance(node, list):
            return [restore(item) for item in node]
        if isinstance(node, str) and node in tokens:
            return tokens[node]
        assert not (isinstance(node, str) and "<token " in node), node
        return node

    decoded: dict[str, Any] = restore(json.loads("".join(text)))
    return decoded


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

    def of_type(self, resource_type: str) -> list[dict[str, Any]]:
        return [r for r in self.resources.values() if r["Type"] == resource_type]

    def warnings(self, name: str) -> list[str]:
        path = "/" + self.groups[name].node.path
        found = Annotations.from_stack(self.stack).find_warning(path, Match.any_value())
        return [str(message.entry.data) for message in found]

    # -- the controller ---------------------------------------------------------------------

    def controller_functions(self) -> list[dict[str, Any]]:
        """Every Lambda function that carries a controller configuration."""
        return [
            function
            for function in self.of_type("AWS::Lambda::Function")
            if CONTROLLER_CONFIG_VARIABLE
            in function["Properties"].get("Environment", {}).get("Variables", {})
        ]

    def controller_config(self) -> dict[str, Any]:
        """The one controller's configuration, as its function and its custom resource carry it."""
        (function,) = self.controller_functions()
        raw = function["Properties"]["Environment"]["Variables"][CONTROLLER_CONFIG_VARIABLE]
        (trigger,) = self.of_type("Custom::CapacityBlockController")
        assert trigger["Properties"]["Configuration"] == raw
        return _decode_config(raw)

    def group_config(self, name: str) -> dict[str, Any]:
        path = self.groups[name].node.path
        entries: list[dict[str, Any]] = self.controller_config()["groups"]
        (entry,) = [e for e in entries if e["id"] == path]
        return entry

    def controller_policy(self, controller: CapacityBlockController) -> dict[str, Any]:
        role = {"Ref": self.logical_id(controller.role.node.default_child)}
        (policy,) = [
            p for p in self.of_type("AWS::IAM::Policy") if role in p["Properties"]["Roles"]
        ]
        document: dict[str, Any] = policy["Properties"]["PolicyDocument"]
        return document


def _template_json(stack: Stack) -> dict[str, Any]:
    return dict(Template.from_stack(stack).to_json())


def _nodegroup_arn(synth: Synth, name: str) -> dict[str, Any]:
    return {"Fn::GetAtt": [synth.logical_id(synth.groups[name].resource), "Arn"]}


def _nodegroup_name(synth: Synth, name: str) -> dict[str, Any]:
    return {"Fn::GetAtt": [synth.logical_id(synth.groups[name].resource), "NodegroupName"]}


# -- the shared stacks ----------------------------------------------------------------------


def _groups_stack(now: str) -> Synth:
    """Four groups on an aws_eks_v2 cluster built in the same app, with the clock at ``now``.

    The stack name is the same at every moment, so the templates can be compared whole.
    """
    stack = make_stack(make_app(now=now), "Groups")
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
            node_repair=NodeRepair(
                max_unhealthy_node_threshold_percentage=50,
                max_parallel_nodes_repaired_count=1,
                overrides=[
                    NodeRepairOverride(
                        node_monitoring_condition="AcceleratedHardwareReady",
                        node_unhealthy_reason="NvidiaXID64Error",
                        min_repair_wait=Duration.minutes(15),
                        repair_action="Reboot",
                    )
                ],
            ),
        ),
        "Ultra": CapacityBlockManagedNodeGroup(
            stack,
            "Ultra",
            cluster=cluster,
            capacity_block=block(**ULTRA, instance_count=4),
            vpc=vpc,
        ),
        "Trainium": CapacityBlockManagedNodeGroup(
            stack,
            "Trainium",
            cluster=cluster,
            capacity_block=block(instance_type="trn2.48xlarge"),
            vpc=vpc,
            taints=[NodeTaint(key="aws.amazon.com/neuron", value="present", effect="NO_EXECUTE")],
            node_repair=False,
        ),
    }
    return Synth(stack, groups)


@pytest.fixture(scope="module")
def future() -> Synth:
    """The four-group stack before the start."""
    return _groups_stack(BEFORE_START)


@pytest.fixture(scope="module")
def efa() -> Synth:
    """An imported aws_eks_v2 cluster with its cluster security group; EFA."""
    stack = make_stack(make_app(now=DURING), "Efa")
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
def v1() -> Synth:
    """An imported aws_eks cluster and a built aws_eks cluster."""
    stack = make_stack(make_app(now=DURING), "V1")
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
def moments(future: Synth) -> dict[str, Synth]:
    """The four-group stack at each of the three moments (before the start is ``future``)."""
    return {
        label: future if now == BEFORE_START else _groups_stack(now)
        for label, now in MOMENTS.items()
    }


@pytest.fixture(scope="module")
def own_controller() -> Synth:
    """A group given a controller of its own, with a five-minute period."""
    stack = make_stack(make_app(now=BEFORE_START), "OwnController")
    vpc = _vpc(stack)
    cluster = eks_v2.Cluster.from_cluster_attributes(stack, "Cluster", cluster_name="c")
    other = CapacityBlockController(stack, "Other", period=Duration.minutes(5))
    groups = {
        "Gpu": CapacityBlockManagedNodeGroup(
            stack, "Gpu", cluster=cluster, capacity_block=block(), vpc=vpc, controller=other
        ),
        "Ultra": CapacityBlockManagedNodeGroup(
            stack,
            "Ultra",
            cluster=cluster,
            capacity_block=block(**ULTRA),
            vpc=vpc,
            controller=other,
        ),
    }
    return Synth(stack, groups)


@pytest.fixture(scope="module")
def plugins() -> Synth:
    """Groups on an aws_eks_v2 cluster with a kubectl provider, most asking for device plugins."""
    stack = make_stack(make_app(now=BEFORE_START), "Plugins")
    vpc = _vpc(stack)
    cluster = eks_v2.Cluster(
        stack,
        "Cluster",
        vpc=vpc,
        version=eks_v2.KubernetesVersion.V1_34,
        kubectl_provider_options=eks_v2.KubectlProviderOptions(
            kubectl_layer=lambda_.LayerVersion.from_layer_version_arn(
                stack, "Kubectl", f"arn:aws:lambda:us-east-2:{ACCOUNT}:layer:kubectl:1"
            )
        ),
    )

    def group(name: str, **options: Any) -> CapacityBlockManagedNodeGroup:
        options.setdefault("capacity_block", block())
        return CapacityBlockManagedNodeGroup(stack, name, cluster=cluster, vpc=vpc, **options)

    groups = {
        "Efa": group("Efa", efa=True, install_device_plugins=True),
        "Gpu": group("Gpu", install_device_plugins=True),
        "Bottlerocket": group(
            "Bottlerocket", ami_type="BOTTLEROCKET_x86_64_NVIDIA", install_device_plugins=True
        ),
        "Trainium": group(
            "Trainium",
            capacity_block=block(instance_type="trn2.48xlarge"),
            install_device_plugins=True,
        ),
        "Plain": group("Plain"),
    }
    return Synth(stack, groups)


@pytest.fixture(scope="module", params=["future", "efa", "v1"])
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


def test_labels_identify_only_the_reservation_in_label_safe_form(future: Synth) -> None:
    # No label with the block's end: it would go stale when the block is extended.
    assert future.nodegroup("Gpu")["Labels"] == {RESERVATION_LABEL: RESERVATION_ID}
    assert future.nodegroup("Custom")["Labels"] == {
        "team": "research",
        RESERVATION_LABEL: RESERVATION_ID,
    }
    for name in future.groups:
        for value in future.nodegroup(name)["Labels"].values():
            assert len(value) <= 63
            assert re.fullmatch(r"[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?", value)


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
    assert future.stack.resolve(group.nodegroup_name) == _nodegroup_name(future, "Gpu")
    assert future.stack.resolve(group.nodegroup_arn) == _nodegroup_arn(future, "Gpu")
    assert group.launch_template.resource.cfn_resource_type == "AWS::EC2::LaunchTemplate"
    # The role attribute is the role the node group runs with, not just any value.
    role_id = future.logical_id(group.node_role.node.default_child)
    assert future.stack.resolve(group.node_role.role_arn) == {"Fn::GetAtt": [role_id, "Arn"]}
    assert future.nodegroup("Gpu")["NodeRole"] == future.stack.resolve(group.node_role.role_arn)
    assert future.nodegroup("Custom")["NodegroupName"] == "custom-gpu"


def test_exposes_sizes_drain_and_controller(future: Synth) -> None:
    gpu, custom, ultra = (future.groups[name] for name in ("Gpu", "Custom", "Ultra"))
    assert (gpu.max_size, gpu.target_size) == (4, 4)
    assert (custom.max_size, custom.target_size) == (3, 2)
    assert gpu.drain_lead == INSTANCE_DRAIN_LEAD
    assert gpu.drain_time == END - INSTANCE_DRAIN_LEAD
    assert ultra.drain_lead == ULTRA_DRAIN_LEAD
    assert ultra.drain_time == END - ULTRA_DRAIN_LEAD
    shared = future.stack.node.find_child("CapacityBlockController")
    assert isinstance(shared, CapacityBlockController)
    assert all(group.controller is shared for group in future.groups.values())
    for removed in ("desired_size", "scale_up_role", "scale_up_schedule", "scale_down_schedule"):
        assert not hasattr(gpu, removed), removed


# -- scaling: constant in the template, sized by the controller -----------------------------


def test_scaling_config_is_constant_zero_to_block_count(future: Synth) -> None:
    # MaxSize is the block's count even where max_size is smaller (Custom: 3): the
    # controller's configuration carries the group's own limits.
    for name in future.groups:
        assert future.nodegroup(name)["ScalingConfig"] == CONSTANT_SCALING, name


def test_scaling_config_has_every_field_the_eks_api_takes(future: Synth) -> None:
    # "When creating a node group, you must specify all or none of the properties."
    model = botocore.session.get_session().get_service_model("eks")
    shape: Any = model.shape_for("NodegroupScalingConfig")
    fields = {name[0].upper() + name[1:] for name in shape.members}
    assert set(future.nodegroup("Gpu")["ScalingConfig"]) == fields


def test_template_is_the_same_before_during_and_after_the_drain(
    moments: dict[str, Synth],
) -> None:
    before = moments["before the start"].template
    for label, synth in moments.items():
        assert synth.template == before, label
        for name in synth.groups:
            assert synth.nodegroup(name)["ScalingConfig"] == CONSTANT_SCALING, (label, name)


def test_nothing_schedules_the_group_at_synth_time(every: Synth) -> None:
    # No EventBridge Scheduler schedules and no scheduled actions: EKS's own end - 40
    # scale-down stays EKS's, and the controller does the rest at run time.
    types = {resource["Type"] for resource in every.resources.values()}
    assert not {t for t in types if t.startswith("AWS::Scheduler::")}
    assert "AWS::AutoScaling::ScheduledAction" not in types


@pytest.mark.parametrize(
    ("ultra", "moment"),
    [
        (False, START - timedelta(days=1)),
        (False, START - SECOND),
        (False, START),
        (False, END - INSTANCE_DRAIN_LEAD - SECOND),
        (False, END - INSTANCE_DRAIN_LEAD),
        (False, END - INSTANCE_RECLAIM_LEAD),
        (False, END - SECOND),
        (True, START - SECOND),
        (True, END - ULTRA_DRAIN_LEAD - SECOND),
        (True, END - ULTRA_DRAIN_LEAD),
        (True, END - EKS_SCALE_DOWN_LEAD),
        (True, END - SECOND),
    ],
)
def test_nothing_depends_on_when_it_is_synthesized(ultra: bool, moment: Any) -> None:
    group = _build(now=format_utc(moment), capacity_block=block(**ULTRA) if ultra else block())
    scaling = group.resource.scaling_config
    assert isinstance(scaling, eks_v1.CfnNodegroup.ScalingConfigProperty)
    assert (scaling.min_size, scaling.max_size, scaling.desired_size) == (0, 4, 0)
    lead = ULTRA_DRAIN_LEAD if ultra else INSTANCE_DRAIN_LEAD
    assert (group.target_size, group.drain_lead, group.drain_time) == (4, lead, END - lead)


# -- the controller -------------------------------------------------------------------------


def test_each_group_is_registered_with_its_sizes_and_drain_lead(future: Synth) -> None:
    built: Any = future.stack.node.find_child("Cluster")
    cluster = future.stack.resolve(built.cluster_name)

    def entry(name: str, **fields: Any) -> dict[str, Any]:
        return {
            "id": future.groups[name].node.path,
            "kind": "managed",
            "reservation": RESERVATION_ID,
            "clusterName": cluster,
            "nodegroupName": _nodegroup_name(future, name),
            **fields,
        }

    instance = {"ultraserver": False, "drainLeadSeconds": 2400}
    assert future.group_config("Gpu") == entry("Gpu", targetSize=4, maxSize=4, **instance)
    assert future.group_config("Custom") == entry("Custom", targetSize=2, maxSize=3, **instance)
    assert future.group_config("Trainium") == entry("Trainium", targetSize=4, maxSize=4, **instance)
    assert future.group_config("Ultra") == entry(
        "Ultra", targetSize=4, maxSize=4, ultraserver=True, drainLeadSeconds=4200
    )


def test_groups_of_a_stack_share_one_controller(future: Synth) -> None:
    assert len(future.controller_functions()) == 1
    assert len(future.of_type("Custom::CapacityBlockController")) == 1
    ids = [group["id"] for group in future.controller_config()["groups"]]
    assert sorted(ids) == sorted(group.node.path for group in future.groups.values())
    # At the stack root, under the documented ID.
    assert (
        future.groups["Gpu"].controller.node.path
        == f"{future.stack.node.path}/CapacityBlockController"
    )


def test_controller_may_size_only_these_node_groups(future: Synth) -> None:
    # The IAM actions are the EKS API operations the controller calls.
    operations = set(botocore.session.get_session().get_service_model("eks").operation_names)
    assert {"DescribeNodegroup", "UpdateNodegroupConfig"} <= operations
    document = future.controller_policy(future.groups["Gpu"].controller)
    eks = [
        s for s in document["Statement"] if any(a.startswith("eks:") for a in _list(s["Action"]))
    ]
    assert len(eks) == 1
    (statement,) = eks
    assert statement["Effect"] == "Allow"
    assert set(_list(statement["Action"])) == {"eks:DescribeNodegroup", "eks:UpdateNodegroupConfig"}
    assert "Condition" not in statement
    assert sorted(_list(statement["Resource"]), key=json.dumps) == sorted(
        (_nodegroup_arn(future, name) for name in future.groups), key=json.dumps
    )


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_deploy_runs_the_controller_after_the_node_groups_exist(future: Synth) -> None:
    (trigger,) = future.of_type("Custom::CapacityBlockController")
    for name, group in future.groups.items():
        assert future.logical_id(group.resource) in trigger["DependsOn"], name


def test_a_given_controller_is_used_instead_of_the_shared_one(own_controller: Synth) -> None:
    stack = own_controller.stack
    other = stack.node.find_child("Other")
    assert isinstance(other, CapacityBlockController)
    assert all(group.controller is other for group in own_controller.groups.values())
    assert stack.node.try_find_child("CapacityBlockController") is None
    config = own_controller.controller_config()
    assert config["periodSeconds"] == 300
    # With a five-minute period the controller may act up to six minutes late: 30 + 6 and
    # 60 + 6 minutes are still within the default 40 and 70.
    assert own_controller.group_config("Gpu")["drainLeadSeconds"] == 2400
    assert own_controller.group_config("Ultra")["drainLeadSeconds"] == 4200
    document = own_controller.controller_policy(other)
    (statement,) = [s for s in document["Statement"] if s.get("Sid") == "SizeManagedNodeGroups"]
    assert sorted(_list(statement["Resource"]), key=json.dumps) == sorted(
        (_nodegroup_arn(own_controller, name) for name in own_controller.groups), key=json.dumps
    )


# -- drain lead -----------------------------------------------------------------------------


def _config_of(group: CapacityBlockManagedNodeGroup) -> dict[str, Any]:
    synth = Synth(Stack.of(group), {"Group": group})
    return synth.group_config("Group")


def test_desired_size_zero_keeps_the_group_empty() -> None:
    group = _build(desired_size=0)
    assert (group.target_size, group.max_size) == (0, 4)
    config = _config_of(group)
    assert (config["targetSize"], config["maxSize"]) == (0, 4)
    scaling = group.resource.scaling_config
    assert isinstance(scaling, eks_v1.CfnNodegroup.ScalingConfigProperty)
    assert (scaling.min_size, scaling.max_size, scaling.desired_size) == (0, 4, 0)


def test_desired_size_defaults_to_max_size() -> None:
    group = _build(max_size=2)
    assert (group.target_size, group.max_size) == (2, 2)


def test_a_longer_drain_lead_is_written_into_the_config() -> None:
    group = _build(drain_lead=timedelta(minutes=90))
    assert group.drain_lead == timedelta(minutes=90)
    assert group.drain_time == END - timedelta(minutes=90)
    assert _config_of(group)["drainLeadSeconds"] == 90 * 60


@pytest.mark.parametrize(
    ("ultra", "lead", "earliest"),
    [
        # A managed group may not drain after EKS's own scale-down at end - 40 minutes.
        (False, Duration.minutes(39), "40 min"),
        (False, timedelta(minutes=40) - SECOND, "40 min"),
        (False, Duration.minutes(0), "40 min"),
        # EC2 reclaims UltraServer instances from end - 60 minutes; the drain starts 10
        # minutes before that.
        (True, Duration.minutes(69), "1 h 10 min"),
        (True, Duration.minutes(40), "1 h 10 min"),
    ],
)
def test_drain_lead_below_the_floor_is_an_error(ultra: bool, lead: Any, earliest: str) -> None:
    message = _error(capacity_block=block(**ULTRA) if ultra else block(), drain_lead=lead)
    assert f"The earliest valid drain_lead is {earliest}" in message
    assert RESERVATION_ID in message


@pytest.mark.parametrize(("ultra", "minutes"), [(False, 40), (True, 70)])
def test_drain_lead_at_the_floor_is_accepted(ultra: bool, minutes: int) -> None:
    group = _build(
        capacity_block=block(**ULTRA) if ultra else block(), drain_lead=Duration.minutes(minutes)
    )
    assert group.drain_lead == timedelta(minutes=minutes)


def test_drain_lead_must_be_shorter_than_the_block() -> None:
    one_day = block(end=START + timedelta(days=1))
    message = _error(capacity_block=one_day, drain_lead=Duration.days(1))
    assert "drain_lead 1 day is not shorter than Capacity Block" in message
    assert RESERVATION_ID in message
    assert "drain at or before the start" in message
    assert re.search(r"is not shorter", _error(capacity_block=one_day, drain_lead=Duration.days(2)))
    # A second shorter than the block is allowed.
    group = _build(capacity_block=one_day, drain_lead=timedelta(days=1) - SECOND)
    assert group.drain_time == START + SECOND


@pytest.mark.parametrize("lead", [40, "40m", 2400.0])
def test_drain_lead_must_be_a_duration(lead: Any) -> None:
    message = _error(drain_lead=lead)
    assert f"drain_lead {lead!r} is not a duration" in message
    assert "Duration.minutes(...)" in message


# -- warnings -------------------------------------------------------------------------------


def _warning_ids(group: CapacityBlockManagedNodeGroup) -> set[str]:
    found = set()
    for entry in group.node.metadata:
        if entry.type == "aws:cdk:warning":
            found.update(re.findall(r"\[ack: (capblock-constructs:[\w-]+)\]", str(entry.data)))
    return found


def test_no_warnings_for_groups_set_up_as_aws_asks(future: Synth) -> None:
    # UltraServer groups included: the controller drains them before EC2 reclaims.
    for name in future.groups:
        assert not [w for w in future.warnings(name) if "capblock-constructs" in w], name


def test_efa_on_a_type_whose_network_cards_are_unconfirmed_warns() -> None:
    # Too many interfaces fail every launch, and on a block that happens when it starts; a
    # layout from unconfirmed numbers must be pointed out at synth time, with the check.
    (unconfirmed,) = [
        name
        for name in known_instance_types()
        if not instance_type_info(name).network_cards_confirmed  # type: ignore[union-attr]
    ]
    group = _build(
        capacity_block=block(instance_type=unconfirmed),
        efa=True,
        cluster_security_group_id=CLUSTER_SG,
    )
    assert _warning_ids(group) == {"capblock-constructs:efa-layout-unconfirmed"}
    (text,) = [str(e.data) for e in group.node.metadata if e.type == "aws:cdk:warning"]
    assert f"describe-instance-types --instance-types {unconfirmed}" in text
    confirmed = _build(efa=True, cluster_security_group_id=CLUSTER_SG)
    assert _warning_ids(confirmed) == set()


def test_custom_ami_without_user_data_warns() -> None:
    group = _build(image_id=CUSTOM_AMI)
    assert _warning_ids(group) == {"capblock-constructs:custom-ami-without-user-data"}


# -- EFA and security groups ----------------------------------------------------------------


def test_efa_puts_an_efa_device_on_every_card_with_cluster_and_efa_groups(efa: Synth) -> None:
    data = efa.launch_data("Efa")
    interfaces = data["NetworkInterfaces"]
    # The layout is efa_network_interfaces' (checked in tests/test_efa.py); the group uses it
    # as is, and every one of p5.48xlarge's 32 network cards carries an EFA device.
    layout = efa_module.efa_network_interfaces("p5.48xlarge")
    # A plain ENA interface is written without InterfaceType, which EC2 reads as "interface".
    kinds = [nic.get("InterfaceType", "interface") for nic in interfaces]
    assert [
        (nic["NetworkCardIndex"], nic["DeviceIndex"], kind)
        for nic, kind in zip(interfaces, kinds, strict=True)
    ] == [(n.network_card_index, n.device_index, n.interface_type) for n in layout]
    efa_cards = {
        nic["NetworkCardIndex"]
        for nic, kind in zip(interfaces, kinds, strict=True)
        if kind in ("efa", "efa-only")
    }
    assert efa_cards == set(range(32))
    efa_group = efa.groups["Efa"].efa_security_group
    assert efa_group is not None
    efa_id = efa.logical_id(efa_group.security_group.node.default_child)
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


def test_each_kind_of_cluster_gives_the_cluster_name(future: Synth, efa: Synth, v1: Synth) -> None:
    v2 = future.logical_id(future.stack.node.find_child("Cluster").node.default_child)
    assert future.nodegroup("Gpu")["ClusterName"] == {"Ref": v2}
    assert efa.nodegroup("Efa")["ClusterName"] == "imported-v2"
    assert v1.nodegroup("OnImported")["ClusterName"] == "imported-v1"
    cluster: Any = v1.stack.node.find_child("V1")
    built = v1.stack.resolve(cluster.cluster_name)
    assert isinstance(built, dict)
    assert set(built) == {"Ref"}
    assert v1.nodegroup("OnV1")["ClusterName"] == built
    # The controller sizes the group in the same cluster.
    assert efa.group_config("Efa")["clusterName"] == "imported-v2"
    assert v1.group_config("OnImported")["clusterName"] == "imported-v1"
    assert v1.group_config("OnV1")["clusterName"] == built


def test_built_v1_cluster_maps_the_node_role_in_aws_auth(v1: Synth) -> None:
    role_id = v1.logical_id(v1.groups["OnV1"].node_role.node.default_child)
    manifests = json.dumps(v1.of_type("Custom::AWSCDK-EKS-KubernetesResource"))
    assert "aws-auth" in manifests
    assert json.dumps({"Fn::GetAtt": [role_id, "Arn"]}) in manifests


# -- node auto repair -----------------------------------------------------------------------


def test_node_repair_is_on_by_default(future: Synth) -> None:
    assert future.nodegroup("Gpu")["NodeRepairConfig"] == {"Enabled": True}
    assert future.groups["Gpu"].node_repair == NodeRepair()


def test_node_repair_settings_are_written_as_eks_takes_them(future: Synth) -> None:
    assert future.nodegroup("Custom")["NodeRepairConfig"] == {
        "Enabled": True,
        "MaxUnhealthyNodeThresholdPercentage": 50,
        "MaxParallelNodesRepairedCount": 1,
        "NodeRepairConfigOverrides": [
            {
                "NodeMonitoringCondition": "AcceleratedHardwareReady",
                "NodeUnhealthyReason": "NvidiaXID64Error",
                "MinRepairWaitTimeMins": 15,
                "RepairAction": "Reboot",
            }
        ],
    }


def test_node_repair_can_be_turned_off(future: Synth) -> None:
    assert future.nodegroup("Trainium")["NodeRepairConfig"] == {"Enabled": False}


def test_node_repair_covers_the_eks_api() -> None:
    model = botocore.session.get_session().get_service_model("eks")
    config: Any = model.shape_for("NodeRepairConfig")
    override: Any = model.shape_for("NodeRepairConfigOverrides")
    action: Any = model.shape_for("RepairAction")

    def camel(name: str) -> str:
        head, *rest = name.split("_")
        return head + "".join(part.title() for part in rest)

    fields = {camel(name) for name in NodeRepair.__dataclass_fields__}
    assert fields - {"overrides"} | {"nodeRepairConfigOverrides"} == set(config.members)
    # min_repair_wait is a duration here, minutes in the API.
    override_fields = {camel(name) for name in NodeRepairOverride.__dataclass_fields__}
    assert override_fields - {"minRepairWait"} | {"minRepairWaitTimeMins"} == set(override.members)
    assert set(_REPAIR_ACTIONS) == set(action.enum)


def test_node_repair_problems_come_in_one_error() -> None:
    message = _error(
        node_repair=NodeRepair(
            max_unhealthy_node_threshold_count=2,
            max_unhealthy_node_threshold_percentage=101,
            max_parallel_nodes_repaired_count=0,
            overrides=[
                NodeRepairOverride(
                    node_monitoring_condition="",
                    node_unhealthy_reason="NvidiaXID31Error",
                    min_repair_wait=timedelta(seconds=90),
                    repair_action="Restart",  # type: ignore[arg-type]
                ),
                "Reboot",  # type: ignore[list-item]
            ],
        )
    )
    assert "7 problems" in message
    assert "node_repair.max_unhealthy_node_threshold_percentage 101 must be" in message
    assert "sets both max_unhealthy_node_threshold_count (2) and" in message
    assert "node_repair.max_parallel_nodes_repaired_count 0 must be a whole number" in message
    assert "'NvidiaXID31Error': node_monitoring_condition '' must name" in message
    assert "repair_action 'Restart' is not one of Replace, Reboot, NoAction" in message
    assert "min_repair_wait" in message
    assert "whole number of minutes" in message
    assert "node_repair.overrides holds 'Reboot'" in message


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("yes", r"node_repair 'yes' is a str; pass True, False or NodeRepair"),
        (
            NodeRepair(max_parallel_nodes_repaired_percentage=0),
            r"max_parallel_nodes_repaired_percentage 0 must be a whole percentage from 1 to 100",
        ),
        (
            NodeRepair(
                max_parallel_nodes_repaired_count=1, max_parallel_nodes_repaired_percentage=10
            ),
            r"sets both max_parallel_nodes_repaired_count \(1\) and "
            r"max_parallel_nodes_repaired_percentage \(10\); EKS takes one or the other",
        ),
        (
            NodeRepair(
                overrides=[
                    NodeRepairOverride(
                        node_monitoring_condition="AcceleratedHardwareReady",
                        node_unhealthy_reason="NvidiaXID13Error",
                        min_repair_wait=Duration.seconds(0),
                        repair_action="Replace",
                    )
                ]
            ),
            r"'NvidiaXID13Error': min_repair_wait .* at least 1",
        ),
        (
            NodeRepair(
                overrides=NodeRepairOverride(  # type: ignore[arg-type]
                    node_monitoring_condition="KernelReady",
                    node_unhealthy_reason="ForkFailedOutOfPIDs",
                    min_repair_wait=Duration.minutes(30),
                    repair_action="Replace",
                )
            ),
            r"node_repair.overrides NodeRepairOverride\(.*\) is not a list; pass "
            r"\[NodeRepairOverride\(...\), ...\]",
        ),
    ],
)
def test_fails_on_invalid_node_repair(value: Any, expected: str) -> None:
    assert re.search(expected, _error(node_repair=value))


def test_node_repair_accepts_the_limits_eks_accepts() -> None:
    group = _build(
        node_repair=NodeRepair(
            max_unhealthy_node_threshold_count=1,
            max_parallel_nodes_repaired_percentage=100,
            overrides=[
                NodeRepairOverride(
                    node_monitoring_condition="NetworkingReady",
                    node_unhealthy_reason="IPAMDNotRunning",
                    min_repair_wait=timedelta(minutes=1),
                    repair_action="NoAction",
                )
            ],
        )
    )
    config = group.resource.node_repair_config
    assert isinstance(config, eks_v1.CfnNodegroup.NodeRepairConfigProperty)
    assert config.max_unhealthy_node_threshold_count == 1
    assert config.max_parallel_nodes_repaired_percentage == 100


# -- device plugins -------------------------------------------------------------------------


def _node(synth: Synth, name: str) -> tuple[dict[str, str], list[dict[str, Any]]]:
    """Labels and taints a node of the group registers with, from its template."""
    props = synth.nodegroup(name)
    effects = {"NO_SCHEDULE": "NoSchedule", "NO_EXECUTE": "NoExecute"}
    taints = [
        {"key": t["Key"], "value": t.get("Value"), "effect": effects.get(t["Effect"], "x")}
        for t in props.get("Taints", [])
    ]
    instance_type = synth.groups[name].capacity_block.instance_type
    return {**props["Labels"], "node.kubernetes.io/instance-type": instance_type}, taints


def test_each_device_plugin_is_installed_once_per_cluster(plugins: Synth) -> None:
    charts = sorted(
        r["Properties"]["Chart"] for r in plugins.of_type("Custom::AWSCDK-EKS-HelmChart")
    )
    assert charts == sorted(
        c.chart for c in (NVIDIA_DEVICE_PLUGIN, EFA_DEVICE_PLUGIN, NEURON_DEVICE_PLUGIN)
    )


def test_device_plugins_run_on_exactly_the_nodes_that_need_them(plugins: Synth) -> None:
    # AL2023 NVIDIA needs the NVIDIA plugin, Bottlerocket NVIDIA has it built in, Neuron needs
    # its plugin, EFA its own; a group that did not ask gets none.
    needs = {
        "Efa": {"nvidia", "efa"},
        "Gpu": {"nvidia"},
        "Bottlerocket": set(),
        "Trainium": {"neuron"},
        "Plain": set(),
    }
    for name, expected in needs.items():
        labels, taints = _node(plugins, name)
        running = {
            chart.plugin
            for chart in (NVIDIA_DEVICE_PLUGIN, EFA_DEVICE_PLUGIN, NEURON_DEVICE_PLUGIN)
            if runs_on(chart, labels, taints)
        }
        assert running == expected, name


def test_groups_expose_the_plugins_they_installed(plugins: Synth) -> None:
    installed = plugins.groups["Efa"].device_plugins
    assert installed is not None
    assert [p.plugin for p in installed.plugins] == ["nvidia", "efa"]
    assert plugins.groups["Plain"].device_plugins is None


def test_plugins_template_passes_cfn_lint_and_cdk_nag(plugins: Synth) -> None:
    assert cfn_lint_errors(plugins.template) == []
    report = cdk_nag.AwsSolutionsChecks().validate_scope(plugins.stack)
    prefixes = [group.node.path + "/" for group in plugins.groups.values()]
    prefixes.append("Plugins/Cluster/chart-")
    ours = [
        (violation.rule_name, resource.construct_path)
        for violation in report.violations
        for resource in violation.violating_resources
        if any(str(resource.construct_path).startswith(prefix) for prefix in prefixes)
    ]
    assert ours == []


def test_fails_to_install_device_plugins_on_an_imported_cluster() -> None:
    message = _error(install_device_plugins=True)
    assert message.startswith("Invalid/Group: ")
    assert "install_device_plugins=True needs a cluster built in this app" in message
    assert "drop install_device_plugins" in message


def test_fails_to_install_device_plugins_without_a_kubectl_provider() -> None:
    stack = make_stack(make_app(), "NoKubectl")
    cluster = eks_v2.Cluster(stack, "Cluster", version=eks_v2.KubernetesVersion.V1_34)
    with pytest.raises(CapacityBlockError) as raised:
        CapacityBlockManagedNodeGroup(
            stack,
            "Group",
            cluster=cluster,
            capacity_block=block(),
            vpc=_vpc(stack),
            install_device_plugins=True,
            labels={NVIDIA_DEVICE_PLUGIN_LABEL: "false"},
        )
    message = str(raised.value)
    assert "2 problems" in message
    assert "kubectl_provider_options=eks_v2.KubectlProviderOptions" in message
    assert (
        f"label {NVIDIA_DEVICE_PLUGIN_LABEL!r} is set by the construct to select the nodes "
        "for the device plugins it installs" in message
    )


# -- EKS label and taint limits ---------------------------------------------------------------


def _key(length: int, prefix: str = "example.com/") -> str:
    return prefix + "k" * (length - len(prefix))


def test_labels_and_taints_at_the_eks_limits_are_accepted() -> None:
    longest = _key(EKS_LABEL_KEY_LENGTH[1])
    taints = [NodeTaint(key=f"example.com/t{i}") for i in range(EKS_MAX_TAINTS - 1)]
    group = _build(
        labels={longest: "x"},
        taints=[*taints, NodeTaint(key=longest, value="")],
    )
    assert group.resource.labels is not None
    written = group.resource.taints
    assert isinstance(written, list)
    assert len(written) == EKS_MAX_TAINTS


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (
            {"labels": {_key(64): "x"}},
            r"label key 'example.com/k+' is 64 characters \(its prefix 'example.com/' counts "
            r"too\), but the EKS API allows at most 63 .* shorten the key or its prefix",
        ),
        (
            {"taints": [NodeTaint(key=_key(64, "nvidia.com/"))]},
            r"taint key 'nvidia.com/k+' is 64 characters .* at most 63 for a managed node "
            r"group's taint keys",
        ),
        (
            {"labels": {"team": ""}},
            r"label 'team' has an empty value, which Kubernetes allows but the EKS API rejects"
            r".*set a value such as 'true'",
        ),
        (
            {"taints": [NodeTaint(key=f"t{i}") for i in range(EKS_MAX_TAINTS + 1)]},
            r"51 taints are given, but the EKS API allows at most 50 on a managed node group; "
            r"remove 1",
        ),
    ],
)
def test_fails_beyond_the_eks_limits(options: dict[str, Any], expected: str) -> None:
    assert re.search(expected, _error(**options))


# -- templates ------------------------------------------------------------------------------


def test_templates_pass_cfn_lint(every: Synth) -> None:
    assert cfn_lint_errors(every.template) == []


def test_own_controller_template_passes_cfn_lint(own_controller: Synth) -> None:
    assert cfn_lint_errors(own_controller.template) == []


def test_node_groups_and_controller_have_no_cdk_nag_findings(future: Synth, efa: Synth) -> None:
    for synth in (future, efa):
        report = cdk_nag.AwsSolutionsChecks().validate_scope(synth.stack)
        prefixes = [group.node.path + "/" for group in synth.groups.values()]
        prefixes.append(synth.groups[next(iter(synth.groups))].controller.node.path + "/")
        ours = [
            (violation.rule_name, resource.construct_path)
            for violation in report.violations
            for resource in violation.violating_resources
            if any(str(resource.construct_path).startswith(prefix) for prefix in prefixes)
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
        (
            {"max_size": 5},
            r"max_size 5 must be a whole number from 1 to the block's instance count \(4\)",
        ),
        ({"max_size": 0}, r"max_size 0 must be a whole number from 1"),
        ({"desired_size": 5}, r"desired_size 5 must be a whole number from 0 to max_size \(4\)"),
        (
            {"max_size": 2, "desired_size": 3},
            r"desired_size 3 must be a whole number from 0 to max_size \(2\)",
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
        (
            {"max_size": True},
            r"max_size True must be a whole number from 1 to the block's instance count",
        ),
        ({"desired_size": -1}, r"desired_size -1 must be a whole number from 0 to max_size \(4\)"),
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
            r"'p9.48xlarge' is not one that EC2 sells as a Capacity Block.*pass ami_type",
        ),
        (
            {
                "capacity_block": block(instance_type="p9.48xlarge"),
                "ami_type": "AL2023_x86_64_NVIDIA",
                "efa": True,
                "cluster_security_group_id": CLUSTER_SG,
            },
            r"efa=True: instance type 'p9.48xlarge' is not .*turn EFA off",
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
    shape: Any = model.shape_for("AMITypes")
    assert set(shape.enum) == _AMI_TYPES


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


@pytest.mark.parametrize("after", [timedelta(0), timedelta(days=1)])
def test_fails_when_the_block_has_ended(after: timedelta) -> None:
    # The one thing still judged against the synth-time clock: the instances are gone.
    message = _error(now=format_utc(END + after))
    assert RESERVATION_ID in message
    assert f"ended at {format_utc(END)}" in message


def test_a_block_a_second_before_its_end_is_still_accepted() -> None:
    group = _build(now=format_utc(END - SECOND))
    assert group.drain_time == END - INSTANCE_DRAIN_LEAD


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
    assert "max_size 9 must be a whole number from 1" in message


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
