"""CapacityBlockSelfManagedNodeGroup: ASG, schedule, drain, bootstrap and validation.

Expected values come from the rules in capacity-blocks-facts.md (sections 1.8-1.10, 3.6,
3.7, 4, 5), not from the implementation. Seven stacks are synthesized, once each:

- future: the block starts later (pinned now before the start), imported cluster;
- active: now inside the block, Bottlerocket nodes;
- ending: now within the safety margin of the scale-down, authentication mode unknown;
- in_app: an aws_eks_v2 cluster of the app, EFA, the Helm-installed handler;
- ultra: a Trn2 UltraServer block with the AL2023 Neuron AMI pinned by a synth-time lookup;
- an aws_eks (v1) CONFIG_MAP cluster, for the aws-auth mapping;
- the example stack (cdk-nag, cfn-lint, snapshot).

Validation failures raise before synthesis, so they build stacks but never synthesize them.

To update the example snapshot after an intended change:
    .venv/bin/python -m pytest tests/test_self_managed_node_group.py --snapshot-update
"""

from __future__ import annotations

import email
import json
import re
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]
from aws_cdk import App, Duration, Fn, Stack, Validations
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_eks as eks
from aws_cdk import aws_eks_v2 as eks_v2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk.assertions import Annotations, Match, Template
from cdk_nag import AwsSolutionsChecks

from capblock_constructs import BLOCK_END_LABEL, RESERVATION_LABEL, CapacityBlockError, NodeTaint
from capblock_constructs._problems import Problems
from capblock_constructs._time import format_utc, parse_utc
from capblock_constructs.ami import AmiResolution, EksOptimizedAmi, resolve_image_id
from capblock_constructs.self_managed_node_group import (
    CapacityBlockSelfManagedNodeGroup,
    plan_schedule,
)
from capblock_constructs.termination import NodeTerminationHandlerQueue
from tests.support import (
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

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib  # type: ignore[import-not-found, unused-ignore]

ROOT = Path(__file__).resolve().parent.parent
CLUSTER = "ml"
ENDPOINT = "https://ABCDEF.gr7.us-east-2.eks.amazonaws.com"
CA = "LS0tLS1CRUdJTg=="
CLUSTER_SG = "sg-0123456789abcdef0"
SERVICE_CIDR = "10.100.0.0/16"
AL2023_NVIDIA_X86 = (
    "/aws/service/eks/optimized-ami/1.33/amazon-linux-2023/x86_64/nvidia/recommended/image_id"
)
ENDING = format_utc(END - timedelta(minutes=40) - timedelta(minutes=5))
# EC2 starts reclaiming 30 minutes before the end (60 for UltraServer blocks), and EC2 Auto
# Scaling may run a scheduled action up to two minutes late (capacity-blocks-facts.md 2.2, 3.6).
RECLAIM_LEAD = timedelta(minutes=30)
ULTRA_RECLAIM_LEAD = timedelta(minutes=60)
SCHEDULE_DELAY = timedelta(minutes=2)
ULTRA_SSM_KEY = (
    "ssm:account=123456789012:parameterName=/aws/service/eks/optimized-ami/1.33/"
    "amazon-linux-2023/x86_64/neuron/recommended/image_id:region=us-east-2"
)
BOTTLEROCKET_NVIDIA_X86 = "/aws/service/bottlerocket/aws-k8s-1.33-nvidia/x86_64/latest/image_id"


# -- builders ----------------------------------------------------------------------------


def imported_vpc(
    stack: Stack, zones: tuple[str, ...] = ("us-east-2a", "us-east-2b"), id: str = "Vpc"
) -> ec2.IVpc:
    return ec2.Vpc.from_vpc_attributes(
        stack,
        id,
        vpc_id="vpc-0123456789abcdef0",
        availability_zones=list(zones),
        private_subnet_ids=[f"subnet-0{zone[-1]}" for zone in zones],
    )


def imported_cluster(stack: Stack) -> eks_v2.ICluster:
    return eks_v2.Cluster.from_cluster_attributes(
        stack,
        "Cluster",
        cluster_name=CLUSTER,
        cluster_endpoint=ENDPOINT,
        cluster_certificate_authority_data=CA,
        cluster_security_group_id=CLUSTER_SG,
    )


def node_group(stack: Stack, **kwargs: Any) -> CapacityBlockSelfManagedNodeGroup:
    options: dict[str, Any] = {
        "capacity_block": block(),
        "kubernetes_version": "1.33",
        "service_ipv4_cidr": SERVICE_CIDR,
        "access_entry": True,
    }
    options.update(kwargs)
    # Built only when not given, so a test can pass its own without construct ID clashes.
    if "cluster" not in options:
        options["cluster"] = imported_cluster(stack)
    if "vpc" not in options:
        options["vpc"] = imported_vpc(stack)
    return CapacityBlockSelfManagedNodeGroup(stack, "Nodes", **options)


def failure_of(**kwargs: Any) -> str:
    """The message of the error raised when building a node group (in a fresh stack)."""
    app_options = kwargs.pop("app", {})
    stack = make_stack(make_app(**app_options))
    with pytest.raises(CapacityBlockError) as failure:
        node_group(stack, **kwargs)
    return str(failure.value)


def synthesized(stack: Stack) -> dict[str, Any]:
    app = stack.node.root
    assert isinstance(app, App)
    body: dict[str, Any] = app.synth().get_stack_by_name(stack.stack_name).template
    return body


def of_type(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == kind}


def one(template: dict[str, Any], kind: str) -> dict[str, Any]:
    (resource,) = of_type(template, kind).values()
    return resource


def scheduled_actions(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: r["Properties"]
        for name, r in of_type(template, "AWS::AutoScaling::ScheduledAction").items()
    }


def asg_properties(template: dict[str, Any]) -> dict[str, Any]:
    properties: dict[str, Any] = one(template, "AWS::AutoScaling::AutoScalingGroup")["Properties"]
    return properties


def user_data_text(template: dict[str, Any]) -> str:
    """The launch template's user data, with deploy-time values replaced by placeholders."""
    data = one(template, "AWS::EC2::LaunchTemplate")["Properties"]["LaunchTemplateData"]
    encoded = data["UserData"]["Fn::Base64"]
    if isinstance(encoded, str):
        return encoded
    separator, parts = encoded["Fn::Join"]
    return str(separator).join(placeholder(part) for part in parts)


def placeholder(part: Any) -> str:
    """Plain text for a piece of a Fn::Join: ``<Ref:Id>`` or ``<GetAtt:Id.Attr>``."""
    if isinstance(part, str):
        return part
    if "Ref" in part:
        return f"<Ref:{part['Ref']}>"
    return f"<GetAtt:{'.'.join(part['Fn::GetAtt'])}>"


def data_of(template: dict[str, Any]) -> dict[str, Any]:
    data: dict[str, Any] = one(template, "AWS::EC2::LaunchTemplate")["Properties"][
        "LaunchTemplateData"
    ]
    return data


def node_config(template: dict[str, Any]) -> dict[str, Any]:
    message = email.message_from_string(user_data_text(template))
    assert message.get_content_type() == "multipart/mixed"
    (part,) = [p for p in message.walk() if p.get_content_type() == "application/node.eks.aws"]
    document: dict[str, Any] = yaml.safe_load(part.get_payload())
    return document


# -- synthesized stacks (module-scoped: each is built once) -------------------------------


@pytest.fixture(scope="module")
def nag_outdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cdk.out")


@pytest.fixture(scope="module")
def future(nag_outdir: Path) -> dict[str, Any]:
    app = App(
        context={"capblock-constructs:now": BEFORE_START},
        analytics_reporting=False,
        outdir=str(nag_outdir),
    )
    stack = make_stack(app, "Future")
    node_group(
        stack,
        labels={"example.com/team": "ml"},
        taints=[NodeTaint(key="dedicated", value="training", effect="NoExecute")],
        pre_bootstrap_script="#!/bin/bash\necho prepare\n",
    )
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return synthesized(stack)


@pytest.fixture(scope="module")
def active_stack() -> Stack:
    stack = make_stack(make_app(now=DURING), "Active")
    node_group(
        stack,
        # No taints given: the NVIDIA default applies.
        ami=EksOptimizedAmi(operating_system="bottlerocket"),
    )
    return stack


@pytest.fixture(scope="module")
def active(active_stack: Stack) -> dict[str, Any]:
    return synthesized(active_stack)


@pytest.fixture(scope="module")
def ending_stack() -> Stack:
    stack = make_stack(make_app(now=ENDING), "Ending")
    # Imported with attributes only: nothing says how the cluster authenticates.
    node_group(stack, access_entry=None, taints=[])
    return stack


@pytest.fixture(scope="module")
def ending(ending_stack: Stack) -> dict[str, Any]:
    return synthesized(ending_stack)


@pytest.fixture(scope="module")
def in_app() -> dict[str, Any]:
    stack = make_stack(make_app(now=BEFORE_START), "InApp")
    vpc = ec2.Vpc(stack, "Vpc", availability_zones=["us-east-2a", "us-east-2b"], nat_gateways=1)
    cluster = eks_v2.Cluster(
        stack,
        "Cluster",
        version=eks_v2.KubernetesVersion.V1_33,
        vpc=vpc,
        default_capacity=0,
        default_capacity_type=eks_v2.DefaultCapacityType.NODEGROUP,
        service_ipv4_cidr="172.20.0.0/16",
        kubectl_provider_options=eks_v2.KubectlProviderOptions(
            kubectl_layer=lambda_.LayerVersion.from_layer_version_arn(
                stack, "Kubectl", "arn:aws:lambda:us-east-2:123456789012:layer:kubectl:1"
            )
        ),
    )
    CapacityBlockSelfManagedNodeGroup(
        stack,
        "Nodes",
        cluster=cluster,
        capacity_block=block(),
        vpc=vpc,
        efa=True,
        install_termination_handler=True,
    )
    return synthesized(stack)


@pytest.fixture(scope="module")
def ultra() -> dict[str, Any]:
    app = make_app(now=BEFORE_START, context={ULTRA_SSM_KEY: "ami-0fedcba9876543210"})
    stack = make_stack(app, "Ultra")
    node_group(
        stack,
        capacity_block=block(
            instance_type="trn2.48xlarge", ultraserver_type="u-trn2x64", instance_count=16
        ),
        ami=EksOptimizedAmi(resolution=AmiResolution.SYNTH_TIME),
    )
    return synthesized(stack)


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    """Two blocks' node groups feeding one handler queue, checked by cdk-nag."""
    outdir = tmp_path_factory.mktemp("shared.out")
    app = App(
        context={"capblock-constructs:now": BEFORE_START},
        analytics_reporting=False,
        outdir=str(outdir),
    )
    stack = make_stack(app, "Shared")
    cluster = imported_cluster(stack)
    vpc = imported_vpc(stack)
    first = node_group(stack, cluster=cluster, vpc=vpc)
    CapacityBlockSelfManagedNodeGroup(
        stack,
        "NextBlock",
        cluster=cluster,
        capacity_block=block(
            capacity_reservation_id="cr-0fedcba9876543210",
            start=END,
            end=END + timedelta(days=7),
        ),
        vpc=vpc,
        kubernetes_version="1.33",
        service_ipv4_cidr=SERVICE_CIDR,
        access_entry=True,
        node_role=first.node_role,
        termination_handler=first.termination_handler,
    )
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return synthesized(stack), outdir


ALL = ("future", "active", "ending", "in_app", "ultra")


@pytest.mark.parametrize("name", ALL)
def test_every_template_passes_cfn_lint(name: str, request: pytest.FixtureRequest) -> None:
    assert cfn_lint_errors(request.getfixturevalue(name)) == []


def test_cdk_nag_reports_nothing(future: dict[str, Any], nag_outdir: Path) -> None:
    # The AwsSolutions pack ran as a validation plugin of the future stack's app: errors
    # would have failed the synth, and warnings must be zero as well.
    report = json.loads((nag_outdir / "validation-report.json").read_text())
    violations = [
        (violation["ruleName"], violation["severity"])
        for plugin in report["pluginReports"]
        for violation in plugin.get("violations", [])
    ]
    assert violations == []


# -- launch template -----------------------------------------------------------------------


def test_launch_template_has_the_capacity_block_and_self_managed_fields(
    future: dict[str, Any],
) -> None:
    data = one(future, "AWS::EC2::LaunchTemplate")["Properties"]["LaunchTemplateData"]
    assert data["InstanceMarketOptions"] == {"MarketType": "capacity-block"}
    assert data["CapacityReservationSpecification"] == {
        "CapacityReservationTarget": {"CapacityReservationId": RESERVATION_ID}
    }
    assert data["InstanceType"] == "p5.48xlarge"
    profile = data["IamInstanceProfile"]["Arn"]["Fn::GetAtt"]
    assert future["Resources"][profile[0]]["Type"] == "AWS::IAM::InstanceProfile"
    assert data["MetadataOptions"]["HttpTokens"] == "required"


def test_image_is_the_al2023_nvidia_ami_resolved_at_deploy_time(future: dict[str, Any]) -> None:
    data = one(future, "AWS::EC2::LaunchTemplate")["Properties"]["LaunchTemplateData"]
    parameter = future["Parameters"][data["ImageId"]["Ref"]]
    assert parameter["Type"] == "AWS::SSM::Parameter::Value<AWS::EC2::Image::Id>"
    assert parameter["Default"] == AL2023_NVIDIA_X86


def test_security_groups_are_the_cluster_group_and_the_node_group_own(
    future: dict[str, Any],
) -> None:
    data = one(future, "AWS::EC2::LaunchTemplate")["Properties"]["LaunchTemplateData"]
    cluster_group, own = data["SecurityGroupIds"]
    assert cluster_group == CLUSTER_SG
    assert future["Resources"][own["Fn::GetAtt"][0]]["Type"] == "AWS::EC2::SecurityGroup"


def test_user_data_is_a_nodeconfig_that_joins_the_cluster(future: dict[str, Any]) -> None:
    document = node_config(future)
    assert (document["apiVersion"], document["kind"]) == ("node.eks.aws/v1alpha1", "NodeConfig")
    assert document["spec"]["cluster"] == {
        "name": CLUSTER,
        "apiServerEndpoint": ENDPOINT,
        "certificateAuthority": CA,
        "cidr": SERVICE_CIDR,
    }
    flags = document["spec"]["kubelet"]["flags"]
    labels = f"{BLOCK_END_LABEL}=20270315T113000Z,{RESERVATION_LABEL}={RESERVATION_ID}"
    assert f"--node-labels={labels},example.com/team=ml" in flags
    assert "--register-with-taints=dedicated=training:NoExecute" in flags


def test_taints_can_be_removed(ending: dict[str, Any]) -> None:
    flags = node_config(ending)["spec"]["kubelet"]["flags"]
    assert not [flag for flag in flags if flag.startswith("--register-with-taints")]


def test_user_data_runs_the_pre_bootstrap_script_first(future: dict[str, Any]) -> None:
    message = email.message_from_string(user_data_text(future))
    types = [p.get_content_type() for p in message.walk() if not p.is_multipart()]
    assert types == ["text/x-shellscript", "application/node.eks.aws"]


def test_in_app_cluster_values_are_joined_in_at_deploy_time(in_app: dict[str, Any]) -> None:
    (cluster_id,) = of_type(in_app, "AWS::EKS::Cluster")
    cluster = node_config(in_app)["spec"]["cluster"]
    assert cluster["name"] == f"<Ref:{cluster_id}>"
    assert cluster["apiServerEndpoint"] == f"<GetAtt:{cluster_id}.Endpoint>"
    assert cluster["certificateAuthority"] == f"<GetAtt:{cluster_id}.CertificateAuthorityData>"
    # The service CIDR the cluster was created with.
    assert cluster["cidr"] == "172.20.0.0/16"
    image = data_of(in_app)["ImageId"]["Ref"]
    # The AMI follows the cluster's configured Kubernetes version.
    assert in_app["Parameters"][image]["Default"] == AL2023_NVIDIA_X86
    data = one(in_app, "AWS::EC2::LaunchTemplate")["Properties"]["LaunchTemplateData"]
    groups = data["NetworkInterfaces"][0]["Groups"]
    assert groups[0] == {"Fn::GetAtt": [cluster_id, "ClusterSecurityGroupId"]}


def test_efa_puts_an_interface_on_every_card_with_the_efa_group(in_app: dict[str, Any]) -> None:
    data = one(in_app, "AWS::EC2::LaunchTemplate")["Properties"]["LaunchTemplateData"]
    interfaces = data["NetworkInterfaces"]
    assert len(interfaces) == 32  # p5.48xlarge has 32 network cards
    assert interfaces[0]["InterfaceType"] == "efa"
    assert {i["InterfaceType"] for i in interfaces[1:]} == {"efa-only"}
    efa_groups = [
        name
        for name, r in of_type(in_app, "AWS::EC2::SecurityGroup").items()
        if "EFA" in r["Properties"]["GroupDescription"]
    ]
    assert len(efa_groups) == 1
    assert all({"Fn::GetAtt": [efa_groups[0], "GroupId"]} in i["Groups"] for i in interfaces)
    assert not of_type(in_app, "AWS::EC2::PlacementGroup")


def test_bottlerocket_user_data_is_toml_with_labels_and_taints(active: dict[str, Any]) -> None:
    settings = tomllib.loads(user_data_text(active))["settings"]["kubernetes"]
    assert settings["cluster-name"] == CLUSTER
    assert settings["api-server"] == ENDPOINT
    assert settings["cluster-certificate"] == CA
    assert settings["cluster-dns-ip"] == "10.100.0.10"
    assert settings["node-labels"] == {
        RESERVATION_LABEL: RESERVATION_ID,
        BLOCK_END_LABEL: "20270315T113000Z",
    }
    assert settings["node-taints"] == {"nvidia.com/gpu": [":NoSchedule"]}


def test_bottlerocket_image_is_the_nvidia_variant(active: dict[str, Any]) -> None:
    data = one(active, "AWS::EC2::LaunchTemplate")["Properties"]["LaunchTemplateData"]
    assert active["Parameters"][data["ImageId"]["Ref"]]["Default"] == BOTTLEROCKET_NVIDIA_X86


def test_synth_time_ami_is_pinned_from_context(ultra: dict[str, Any]) -> None:
    data = one(ultra, "AWS::EC2::LaunchTemplate")["Properties"]["LaunchTemplateData"]
    # The AL2023 Neuron AMI for Trainium, read from the context entry.
    assert data["ImageId"] == "ami-0fedcba9876543210"
    assert "Parameters" not in ultra or not any(
        "Image::Id" in p["Type"] for p in ultra["Parameters"].values()
    )


# -- Auto Scaling group --------------------------------------------------------------------


def test_asg_sizes_subnets_and_pinned_launch_template_version(future: dict[str, Any]) -> None:
    asg = asg_properties(future)
    assert (asg["MinSize"], asg["MaxSize"], asg["DesiredCapacity"]) == ("0", "4", "0")
    # Only the block's AZ (us-east-2a) subnet, not the us-east-2b one.
    assert asg["VPCZoneIdentifier"] == ["subnet-0a"]
    (template_id,) = of_type(future, "AWS::EC2::LaunchTemplate")
    assert asg["LaunchTemplate"] == {
        "LaunchTemplateId": {"Ref": template_id},
        "Version": {"Fn::GetAtt": [template_id, "LatestVersionNumber"]},
    }
    assert "MixedInstancesPolicy" not in asg
    assert not of_type(future, "AWS::AutoScaling::WarmPool")


def test_asg_keeps_scheduled_sizes_on_stack_updates(future: dict[str, Any]) -> None:
    asg = one(future, "AWS::AutoScaling::AutoScalingGroup")
    assert asg["UpdatePolicy"] == {
        "AutoScalingScheduledAction": {"IgnoreUnmodifiedGroupSizeProperties": True}
    }


def test_asg_tags_for_kubernetes_and_the_handler(future: dict[str, Any]) -> None:
    tags = {t["Key"]: t for t in asg_properties(future)["Tags"]}
    assert tags[f"kubernetes.io/cluster/{CLUSTER}"]["Value"] == "owned"
    assert tags[f"kubernetes.io/cluster/{CLUSTER}"]["PropagateAtLaunch"] is True
    assert tags["aws-node-termination-handler/managed"]["PropagateAtLaunch"] is True
    assert tags["capblock-constructs:capacity-reservation-id"]["Value"] == RESERVATION_ID


# -- schedule through the pinned now ---------------------------------------------------------


def test_future_block_scales_up_at_start_and_down_at_end_minus_drain_lead(
    future: dict[str, Any],
) -> None:
    actions = sorted(scheduled_actions(future).values(), key=lambda a: str(a["StartTime"]))
    up, down = actions
    assert up["StartTime"] == START.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert up["DesiredCapacity"] == 4
    # Default drain lead: 40 minutes before the end for an instance block.
    assert down["StartTime"] == (END - timedelta(minutes=40)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert (down["DesiredCapacity"], down["MinSize"]) == (0, 0)
    (asg_id,) = of_type(future, "AWS::AutoScaling::AutoScalingGroup")
    assert up["AutoScalingGroupName"] == down["AutoScalingGroupName"] == {"Ref": asg_id}
    assert "Recurrence" not in up
    assert "EndTime" not in up


def test_active_block_has_only_the_scale_down_and_runs_the_count(
    active: dict[str, Any], active_stack: Stack
) -> None:
    (action,) = scheduled_actions(active).values()
    assert action["StartTime"] == format_utc(END - timedelta(minutes=40))
    asg = asg_properties(active)
    assert (asg["MinSize"], asg["MaxSize"], asg["DesiredCapacity"]) == ("0", "4", "4")
    # The scale-down also caps MaxSize, so nothing scales the group up while it drains.
    assert (action["DesiredCapacity"], action["MinSize"], action["MaxSize"]) == (0, 0, 0)
    Annotations.from_stack(active_stack).has_warning(
        "/Active/Nodes", Match.string_like_regexp("no scale-up action was scheduled")
    )


def test_ending_block_has_no_action_and_is_drained(
    ending: dict[str, Any], ending_stack: Stack
) -> None:
    assert scheduled_actions(ending) == {}
    asg = asg_properties(ending)
    # A late deploy must not scale a draining group back up. IgnoreUnmodifiedGroupSizeProperties
    # skips a DesiredCapacity that is 0 in the old template too (a deploy before the start),
    # although the scale-up has since run; MaxSize 0 always differs from the old template
    # (the block's count), so CloudFormation applies it and the group drains.
    assert (asg["MinSize"], asg["MaxSize"], asg["DesiredCapacity"]) == ("0", "0", "0")
    Annotations.from_stack(ending_stack).has_warning(
        "/Ending/Nodes", Match.string_like_regexp("no scale-down action was scheduled")
    )
    # Synthesized 45 min before the end: deploy margin (15 min) + heartbeat runs past end - 30.
    Annotations.from_stack(ending_stack).has_warning(
        "/Ending/Nodes",
        Match.string_like_regexp(f"reclaiming the instances at {format_utc(END - RECLAIM_LEAD)}"),
    )


def test_ultraserver_block_scales_down_70_minutes_before_the_end(ultra: dict[str, Any]) -> None:
    times = sorted(str(a["StartTime"]) for a in scheduled_actions(ultra).values())
    assert times == [format_utc(START), format_utc(END - timedelta(minutes=70))]
    hook = one(ultra, "AWS::AutoScaling::LifecycleHook")["Properties"]
    # 70 min drain lead - 60 min UltraServer reclaim lead - 2 min scheduled action delay.
    assert hook["HeartbeatTimeout"] == 8 * 60
    assert asg_properties(ultra)["MaxSize"] == "16"


def at(text: str) -> datetime:
    return parse_utc(text, what="test")


@pytest.mark.parametrize(
    ("now", "up", "down", "desired"),
    [
        (BEFORE_START, True, True, 0),
        # Start is 10 minutes away, inside the 15-minute margin: size for the active block.
        (format_utc(START - timedelta(minutes=10)), False, True, 3),
        (DURING, False, True, 3),
        (format_utc(END - timedelta(minutes=50)), False, False, 0),
        (format_utc(END - timedelta(minutes=20)), False, False, 0),
        # EC2 is already reclaiming.
        (format_utc(END - timedelta(minutes=10)), False, False, 0),
    ],
)
def test_plan_schedule_by_phase(now: str, up: bool, down: bool, desired: int) -> None:
    plan = plan_schedule(
        block(),
        now=at(now),
        drain_lead=timedelta(minutes=40),
        safety_margin=timedelta(minutes=15),
        active_size=3,
    )
    assert (plan.scale_up_at is not None, plan.scale_down_at is not None) == (up, down)
    assert plan.desired_capacity == desired
    assert plan.drained is not down
    if plan.scale_up_at and plan.scale_down_at:
        assert plan.scale_up_at != plan.scale_down_at


def test_plan_schedule_honours_a_custom_margin() -> None:
    plan = plan_schedule(
        block(),
        now=START - timedelta(minutes=10),
        drain_lead=timedelta(minutes=40),
        safety_margin=timedelta(minutes=5),
        active_size=4,
    )
    assert plan.scale_up_at == START
    assert plan.desired_capacity == 0


# -- graceful drain ---------------------------------------------------------------------------


def test_lifecycle_hook_holds_terminating_instances_for_the_drain(future: dict[str, Any]) -> None:
    hook = one(future, "AWS::AutoScaling::LifecycleHook")["Properties"]
    assert hook["LifecycleTransition"] == "autoscaling:EC2_INSTANCE_TERMINATING"
    assert hook["DefaultResult"] == "CONTINUE"
    # drain_lead (40 min) - reclaim lead (30 min) - scheduled action delay (2 min).
    assert hook["HeartbeatTimeout"] == 8 * 60


@pytest.mark.parametrize(
    ("name", "reclaim_lead"), [("future", RECLAIM_LEAD), ("ultra", ULTRA_RECLAIM_LEAD)]
)
def test_undrained_instances_terminate_before_ec2_reclaims_them(
    name: str, reclaim_lead: timedelta, request: pytest.FixtureRequest
) -> None:
    # Worst case without a handler: the scale-down runs two minutes late, then the hook
    # holds each instance for the whole heartbeat and CONTINUE terminates it.
    template = request.getfixturevalue(name)
    hook = one(template, "AWS::AutoScaling::LifecycleHook")["Properties"]
    assert hook["DefaultResult"] == "CONTINUE"
    scale_down = max(at(str(a["StartTime"])) for a in scheduled_actions(template).values())
    released = scale_down + SCHEDULE_DELAY + timedelta(seconds=hook["HeartbeatTimeout"])
    assert released <= END - reclaim_lead


def test_termination_queue_rule_is_scoped_to_this_asg(future: dict[str, Any]) -> None:
    (asg_id,) = of_type(future, "AWS::AutoScaling::AutoScalingGroup")
    patterns = [
        r["Properties"]["EventPattern"] for r in of_type(future, "AWS::Events::Rule").values()
    ]
    (lifecycle,) = [p for p in patterns if p["source"] == ["aws.autoscaling"]]
    assert lifecycle["detail"] == {"AutoScalingGroupName": [{"Ref": asg_id}]}
    assert len(of_type(future, "AWS::SQS::Queue")) == 1
    assert any(
        o["Value"].get("Ref", "").startswith("NodesTerminationHandlerQueue")
        for o in future["Outputs"].values()
    )


def test_node_groups_can_share_one_handler_queue(
    shared: tuple[dict[str, Any], Path],
) -> None:
    # One handler installation reads one queue: the second block's group feeds the first's.
    template, outdir = shared
    asg_ids = sorted(of_type(template, "AWS::AutoScaling::AutoScalingGroup"))
    assert len(asg_ids) == 2
    assert len(of_type(template, "AWS::SQS::Queue")) == 1
    assert len(of_type(template, "AWS::Events::Rule")) == 3
    (lifecycle,) = [
        r["Properties"]["EventPattern"]
        for r in of_type(template, "AWS::Events::Rule").values()
        if r["Properties"]["EventPattern"]["source"] == ["aws.autoscaling"]
    ]
    assert sorted(g["Ref"] for g in lifecycle["detail"]["AutoScalingGroupName"]) == asg_ids
    (policy,) = of_type(template, "AWS::IAM::ManagedPolicy").values()
    (complete,) = [
        s
        for s in policy["Properties"]["PolicyDocument"]["Statement"]
        if s["Action"] == "autoscaling:CompleteLifecycleAction"
    ]
    named = sorted(
        part["Ref"]
        for arn in complete["Resource"]
        for part in arn["Fn::Join"][1]
        if isinstance(part, dict) and part.get("Ref") in asg_ids
    )
    assert named == asg_ids
    # The groups share the node role, and EKS allows one access entry per principal.
    (entry,) = of_type(template, "AWS::EKS::AccessEntry").values()
    assert entry["Properties"]["Type"] == "EC2_LINUX"
    assert cfn_lint_errors(template) == []
    # The AwsSolutions pack ran during synth; the second group's ARN is acknowledged too.
    report = json.loads((outdir / "validation-report.json").read_text())
    assert [v for r in report["pluginReports"] for v in r.get("violations", [])] == []


def test_fails_to_install_the_handler_twice_on_a_shared_queue() -> None:
    stack = make_stack(make_app(now=BEFORE_START), "Twice")
    queue = NodeTerminationHandlerQueue(stack, "Nth")
    queue.handler_role = iam.Role(
        stack, "Installed", assumed_by=iam.ServicePrincipal("pods.eks.amazonaws.com")
    )
    with pytest.raises(CapacityBlockError) as failure:
        node_group(stack, termination_handler=queue, install_termination_handler=True)
    assert "already has aws-node-termination-handler installed" in str(failure.value)
    assert "drop install_termination_handler" in str(failure.value)


def test_handler_chart_is_installed_in_queue_mode_with_pod_identity(
    in_app: dict[str, Any],
) -> None:
    (chart,) = [r for r in in_app["Resources"].values() if r["Type"].endswith("HelmChart")]
    properties = chart["Properties"]
    assert properties["Chart"] == "aws-node-termination-handler"
    assert properties["Repository"] == "oci://public.ecr.aws/aws-ec2/helm"
    assert properties["Namespace"] == "kube-system"
    values_text = "".join(
        p if isinstance(p, str) else "QUEUE" for p in properties["Values"]["Fn::Join"][1]
    )
    values = json.loads(values_text)
    assert values["enableSqsTerminationDraining"] is True
    assert values["queueURL"] == "QUEUE"
    association = one(in_app, "AWS::EKS::PodIdentityAssociation")["Properties"]
    assert association["ServiceAccount"] == values["serviceAccount"]["name"]
    role = in_app["Resources"][association["RoleArn"]["Fn::GetAtt"][0]]["Properties"]
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "pods.eks.amazonaws.com"}
    assert sorted(trust["Action"]) == ["sts:AssumeRole", "sts:TagSession"]
    # The cluster has node-group capacity, not EKS Auto Mode: Pod Identity needs its agent,
    # and the chart must wait for it.
    (addon_id,) = [k for k, r in in_app["Resources"].items() if r["Type"] == "AWS::EKS::Addon"]
    assert in_app["Resources"][addon_id]["Properties"]["AddonName"] == "eks-pod-identity-agent"
    assert addon_id in chart.get("DependsOn", [])


# -- node identity ---------------------------------------------------------------------------


def test_access_entry_for_the_node_role(future: dict[str, Any]) -> None:
    entry = one(future, "AWS::EKS::AccessEntry")["Properties"]
    assert entry["Type"] == "EC2_LINUX"
    assert entry["ClusterName"] == CLUSTER
    role = future["Resources"][entry["PrincipalArn"]["Fn::GetAtt"][0]]
    assert role["Type"] == "AWS::IAM::Role"
    assert role["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {
        "Service": "ec2.amazonaws.com"
    }


def test_default_node_role_has_the_eks_node_policies(future: dict[str, Any]) -> None:
    entry = one(future, "AWS::EKS::AccessEntry")["Properties"]
    role = future["Resources"][entry["PrincipalArn"]["Fn::GetAtt"][0]]["Properties"]
    profile = one(future, "AWS::IAM::InstanceProfile")["Properties"]
    assert profile["Roles"] == [{"Ref": entry["PrincipalArn"]["Fn::GetAtt"][0]}]
    assert managed_policy_names(role) == EKS_NODE_ROLE_POLICIES


def test_group_is_created_after_the_access_entry(active: dict[str, Any]) -> None:
    # Deployed during the block, the group launches at once: nodes must be able to join.
    (entry_id,) = of_type(active, "AWS::EKS::AccessEntry")
    asg = one(active, "AWS::AutoScaling::AutoScalingGroup")
    assert entry_id in asg["DependsOn"]


def test_api_authenticated_in_app_cluster_gets_an_access_entry(in_app: dict[str, Any]) -> None:
    # aws_eks_v2 clusters always use API authentication; the cluster adds its own entries.
    entries = [
        r["Properties"]
        for r in of_type(in_app, "AWS::EKS::AccessEntry").values()
        if r["Properties"].get("Type") == "EC2_LINUX"
    ]
    assert len(entries) == 1
    assert entries[0]["PrincipalArn"]["Fn::GetAtt"][0].startswith("NodesNodeRole")


def test_unknown_authentication_mode_warns_instead_of_guessing(
    ending: dict[str, Any], ending_stack: Stack
) -> None:
    assert not of_type(ending, "AWS::EKS::AccessEntry")
    Annotations.from_stack(ending_stack).has_warning(
        "/Ending/Nodes", Match.string_like_regexp("pass access_entry=True")
    )


def test_exposes_its_parts() -> None:
    group = node_group(make_stack(make_app(), "Parts"))
    assert group.auto_scaling_group.cfn_resource_type == "AWS::AutoScaling::AutoScalingGroup"
    assert group.launch_template.resource.cfn_resource_type == "AWS::EC2::LaunchTemplate"
    assert group.security_group.node.id == "SecurityGroup"
    assert group.termination_queue is group.termination_handler.queue
    assert group.drain_lead == timedelta(minutes=40)
    assert group.node_role.node.id == "NodeRole"


# -- validation ------------------------------------------------------------------------------


def test_fails_for_an_expired_block() -> None:
    message = failure_of(app={"now": format_utc(END + timedelta(hours=1))})
    assert f"ended at {format_utc(END)}" in message
    assert "Use an active or scheduled block" in message


def test_fails_without_a_subnet_in_the_block_zone() -> None:
    stack = make_stack(make_app())
    with pytest.raises(CapacityBlockError) as failure:
        node_group(stack, vpc=imported_vpc(stack, ("us-east-2b", "us-east-2c"), "OtherVpc"))
    assert "no subnet in us-east-2a" in str(failure.value)


def test_fails_when_drain_lead_leaves_no_room_for_the_heartbeat() -> None:
    # 40 min = reclaim lead + 10 min heartbeat, but the scale-down may run 2 minutes late, so
    # the heartbeat would expire 2 minutes into EC2's reclaim.
    message = failure_of(drain_lead=Duration.minutes(40), heartbeat_timeout=Duration.minutes(10))
    assert "drain_lead 40 min does not leave" in message
    assert "earliest valid drain_lead is 42 min" in message
    assert "Raise drain_lead or shorten heartbeat_timeout" in message


def test_fails_for_an_ultraserver_drain_lead_below_its_60_minute_reclaim() -> None:
    message = failure_of(
        capacity_block=block(instance_type="trn2.48xlarge", ultraserver_type="u-trn2x64"),
        drain_lead=Duration.minutes(40),
        heartbeat_timeout=Duration.minutes(5),
    )
    # 60 min reclaim lead + 2 min delay + 5 min heartbeat.
    assert "earliest valid drain_lead is 67 min" in message


def test_drain_lead_covering_reclaim_delay_and_heartbeat_is_accepted() -> None:
    group = node_group(
        make_stack(make_app(), "Boundary"),
        drain_lead=Duration.minutes(42),
        heartbeat_timeout=Duration.minutes(10),
    )
    assert group.heartbeat_timeout == timedelta(minutes=10)
    assert group.scale_down_time == END - timedelta(minutes=42)


def test_fails_when_drain_lead_is_not_beyond_the_reclaim_lead() -> None:
    message = failure_of(drain_lead=timedelta(minutes=30))
    # The shortest heartbeat (30 s) still needs reclaim lead + 2 min before it.
    assert "earliest valid drain_lead is 32 min 30 s" in message


@pytest.mark.parametrize("name", ["desired_size", "max_size"])
def test_fails_for_sizes_below_one(name: str) -> None:
    message = failure_of(**{name: 0})
    assert f"{name} 0 must be a whole number of at least 1" in message


@pytest.mark.parametrize("seconds", [10, 7201])
def test_fails_for_a_heartbeat_outside_30_to_7200_seconds(seconds: int) -> None:
    message = failure_of(drain_lead=Duration.hours(3), heartbeat_timeout=Duration.seconds(seconds))
    assert f"heartbeat_timeout {seconds} s is outside the 30-7200 s" in message


def test_fails_for_sizes_above_the_instance_count() -> None:
    message = failure_of(desired_size=5, max_size=6)
    assert "desired_size 5 is above the block's instance count 4" in message
    assert "max_size 6 is above the block's instance count 4" in message
    assert "Use at most 4" in message


def test_fails_for_desired_above_max() -> None:
    assert "desired_size 3 is above max_size 2" in failure_of(desired_size=3, max_size=2)


def test_fails_for_an_ami_of_the_wrong_architecture() -> None:
    message = failure_of(ami=EksOptimizedAmi.pinned("ami-0123456789abcdef0", architecture="arm64"))
    assert "the AMI is for arm64 but p5.48xlarge is an x86_64 instance type" in message
    assert "architecture='x86_64'" in message


def test_fails_when_cluster_data_is_missing_and_lookups_are_off() -> None:
    stack = make_stack(make_app(context={"capblock-constructs:lookups": False}))
    cluster = eks_v2.Cluster.from_cluster_attributes(stack, "ByName", cluster_name=CLUSTER)
    with pytest.raises(CapacityBlockError) as failure:
        node_group(stack, cluster=cluster, kubernetes_version=None, service_ipv4_cidr=None)
    message = str(failure.value)
    assert "endpoint, certificate authority, service CIDR, Kubernetes version" in message
    assert "capblock lookup-cluster ml --region us-east-2" in message


def test_fails_when_drain_lead_covers_the_whole_block() -> None:
    message = failure_of(
        capacity_block=block(end=START + timedelta(hours=1)),
        drain_lead=Duration.hours(2),
    )
    assert "is not shorter than the block itself (60 min)" in message


def test_fails_for_an_access_entry_on_a_config_map_cluster() -> None:
    key = "capblock-constructs:eks-cluster:account=123456789012:region=us-east-2:clusterName=ml"
    cached = {
        "name": CLUSTER,
        "endpoint": ENDPOINT,
        "certificateAuthority": CA,
        "serviceCidr": SERVICE_CIDR,
        "kubernetesVersion": "1.33",
        "clusterSecurityGroupId": CLUSTER_SG,
        "authenticationMode": "CONFIG_MAP",
    }
    stack = make_stack(make_app(context={key: cached}))
    cluster = eks_v2.Cluster.from_cluster_attributes(stack, "ByName", cluster_name=CLUSTER)
    with pytest.raises(CapacityBlockError) as failure:
        node_group(stack, cluster=cluster, access_entry=True)
    assert "CONFIG_MAP authentication, where EKS rejects access entries" in str(failure.value)


def test_fails_to_install_the_handler_on_an_imported_cluster() -> None:
    message = failure_of(install_termination_handler=True)
    assert "install_termination_handler=True needs a cluster built in this app" in message
    assert "queueURL" in message


def test_fails_for_a_script_on_bottlerocket() -> None:
    message = failure_of(
        ami=EksOptimizedAmi(operating_system="bottlerocket"), pre_bootstrap_script="echo"
    )
    assert "Bottlerocket runs no user data scripts" in message


def v1_cluster(stack: Stack) -> eks.Cluster:
    """An aws_eks (v1) cluster of the app; it exposes neither version nor service CIDR."""
    return eks.Cluster(
        stack,
        "V1",
        version=eks.KubernetesVersion.V1_33,
        vpc=imported_vpc(stack, id="V1Vpc"),
        vpc_subnets=[ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS)],
        default_capacity=0,
        kubectl_layer=lambda_.LayerVersion.from_layer_version_arn(
            stack, "Kubectl", "arn:aws:lambda:us-east-2:123456789012:layer:kubectl:1"
        ),
    )


def test_fails_for_a_v1_cluster_without_version_and_service_cidr() -> None:
    stack = make_stack(make_app())
    cluster = v1_cluster(stack)
    with pytest.raises(CapacityBlockError) as failure:
        node_group(stack, cluster=cluster, kubernetes_version=None, service_ipv4_cidr=None)
    message = str(failure.value)
    assert "service_ipv4_cidr=" in message
    assert "kubernetes_version='1.33'" in message


def in_app_cluster(stack: Stack, **kwargs: Any) -> eks_v2.Cluster:
    return eks_v2.Cluster(
        stack,
        "InAppCluster",
        version=eks_v2.KubernetesVersion.V1_33,
        vpc=imported_vpc(stack, id="ClusterVpc"),
        vpc_subnets=[ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS)],
        default_capacity=0,
        default_capacity_type=eks_v2.DefaultCapacityType.NODEGROUP,
        **kwargs,
    )


def test_fails_for_an_in_app_cluster_created_without_a_service_cidr() -> None:
    stack = make_stack(make_app())
    with pytest.raises(CapacityBlockError) as failure:
        node_group(stack, cluster=in_app_cluster(stack), service_ipv4_cidr=None)
    message = str(failure.value)
    assert "service CIDR is unknown" in message
    assert "10.100.0.0/16 or 172.20.0.0/16" in message
    assert "Pass service_ipv4_cidr=" in message


def test_fails_to_install_the_handler_without_a_kubectl_provider() -> None:
    stack = make_stack(make_app())
    with pytest.raises(CapacityBlockError) as failure:
        node_group(stack, cluster=in_app_cluster(stack), install_termination_handler=True)
    assert "kubectl_provider_options" in str(failure.value)


def test_config_map_v1_cluster_maps_the_node_role_in_aws_auth() -> None:
    stack = make_stack(make_app(), "AwsAuth")
    cluster = v1_cluster(stack)
    group = node_group(stack, cluster=cluster, access_entry=None)
    assert group.access_entry is None
    template = synthesized(stack)
    assert not of_type(template, "AWS::EKS::AccessEntry")
    (manifest,) = [
        r["Properties"]["Manifest"]
        for r in template["Resources"].values()
        if r["Type"] == "Custom::AWSCDK-EKS-KubernetesResource" and "aws-auth" in str(r)
    ]
    (config_map,) = json.loads("".join(placeholder(p) for p in manifest["Fn::Join"][1]))
    (mapping,) = json.loads(config_map["data"]["mapRoles"])
    # The aws-auth entry EKS documents for self-managed node roles.
    assert mapping == {
        "rolearn": "<GetAtt:NodesNodeRoleA488D2F3.Arn>",
        "username": "system:node:{{EC2PrivateDNSName}}",
        "groups": ["system:bootstrappers", "system:nodes"],
    }


def test_fails_for_an_unknown_instance_type_with_efa_and_no_ami_hint() -> None:
    message = failure_of(capacity_block=block(instance_type="p9.48xlarge"), efa=True)
    assert "instance type 'p9.48xlarge' is not in the instance-type table" in message
    assert "ami=EksOptimizedAmi(architecture='x86_64', accelerator='nvidia')" in message
    assert "EFA interfaces cannot be laid out" in message


def test_fails_for_bottlerocket_on_neuron() -> None:
    message = failure_of(
        capacity_block=block(instance_type="trn2.48xlarge"),
        ami=EksOptimizedAmi(operating_system="bottlerocket"),
    )
    assert "no Bottlerocket Neuron variant" in message
    assert "EksOptimizedAmi.pinned('ami-...'" in message


def test_fails_for_a_negative_safety_margin() -> None:
    message = failure_of(schedule_safety_margin=timedelta(minutes=-5))
    assert "schedule_safety_margin -5 min is negative; use zero or more" in message


def test_fails_for_a_drain_lead_that_is_not_a_duration() -> None:
    assert "drain_lead 40 is not a duration" in failure_of(drain_lead=40)


def test_synth_time_ami_without_a_cached_value_cannot_deploy() -> None:
    stack = make_stack(make_app(), "Missing")
    group = node_group(stack, ami=EksOptimizedAmi(resolution=AmiResolution.SYNTH_TIME))
    # The CDK CLI fills the lookup and synthesizes again; until then EC2 would reject this ID.
    assert group.image_id == "ami-00000000000000000"


@pytest.mark.parametrize(
    ("ami", "architecture", "accelerator", "expected"),
    [
        (EksOptimizedAmi(), "x86_64", "nvidia", AL2023_NVIDIA_X86),
        (
            EksOptimizedAmi(),
            "arm64",
            "nvidia",
            "/aws/service/eks/optimized-ami/1.33/amazon-linux-2023/arm64/nvidia/recommended/image_id",
        ),
        (
            EksOptimizedAmi(),
            "x86_64",
            "neuron",
            "/aws/service/eks/optimized-ami/1.33/amazon-linux-2023/x86_64/neuron/recommended/image_id",
        ),
        (
            EksOptimizedAmi(operating_system="bottlerocket"),
            "arm64",
            "nvidia",
            "/aws/service/bottlerocket/aws-k8s-1.33-nvidia/arm64/latest/image_id",
        ),
    ],
)
def test_ami_parameter_names_follow_the_eks_documentation(
    ami: EksOptimizedAmi, architecture: str, accelerator: str, expected: str
) -> None:
    assert (
        ami.parameter_name(
            kubernetes_version="1.33", architecture=architecture, accelerator=accelerator
        )
        == expected
    )


@pytest.mark.parametrize(
    ("ami", "instance_type", "version", "expected"),
    [
        (
            EksOptimizedAmi(operating_system="ubuntu"),
            "p5.48xlarge",
            "1.33",
            "ami.operating_system 'ubuntu' is not supported; use al2023 or bottlerocket",
        ),
        (
            EksOptimizedAmi(architecture="aarch64"),
            "p5.48xlarge",
            "1.33",
            "ami.architecture 'aarch64' is not one of x86_64, arm64",
        ),
        (
            EksOptimizedAmi(accelerator="cuda"),
            "p5.48xlarge",
            "1.33",
            "ami.accelerator 'cuda' is not one of nvidia, neuron",
        ),
        (
            EksOptimizedAmi(accelerator="neuron"),
            "p5.48xlarge",
            "1.33",
            "the AMI is for neuron accelerators but p5.48xlarge has nvidia ones; use "
            "accelerator='nvidia'",
        ),
        (
            # P6e-GB200 runs on Grace (arm64): an x86_64 AMI would not boot.
            EksOptimizedAmi(architecture="x86_64"),
            "p6e-gb200.36xlarge",
            "1.33",
            "the AMI is for x86_64 but p6e-gb200.36xlarge is an arm64 instance type",
        ),
        (
            EksOptimizedAmi(),
            "p5.48xlarge",
            Fn.import_value("ClusterKubernetesVersion"),
            "the Kubernetes version is a deploy-time value, so the AMI parameter cannot be "
            "named; pass kubernetes_version='1.33'",
        ),
    ],
)
def test_ami_choices_that_cannot_boot_are_rejected(
    ami: EksOptimizedAmi, instance_type: str, version: str, expected: str
) -> None:
    problems = Problems("test")
    image = resolve_image_id(
        make_stack(make_app(), "Ami"),
        ami,
        instance_type=instance_type,
        cluster_kubernetes_version=version,
        problems=problems,
    )
    assert image is None
    with pytest.raises(CapacityBlockError) as failure:
        problems.raise_if_any()
    assert expected in str(failure.value)


def test_arm64_nvidia_instance_gets_the_arm64_nvidia_parameter() -> None:
    stack = make_stack(make_app(), "Arm")
    image = resolve_image_id(
        stack,
        EksOptimizedAmi(),
        instance_type="p6e-gb200.36xlarge",
        cluster_kubernetes_version="1.33",
        problems=Problems("test"),
    )
    assert image is not None
    parameters = Template.from_stack(stack).to_json()["Parameters"]
    (parameter,) = [p for p in parameters.values() if p.get("Default", "").startswith("/aws/")]
    assert parameter["Type"] == "AWS::SSM::Parameter::Value<AWS::EC2::Image::Id>"
    assert parameter["Default"] == (
        "/aws/service/eks/optimized-ami/1.33/amazon-linux-2023/arm64/nvidia/recommended/image_id"
    )


def test_reports_all_problems_at_once() -> None:
    message = failure_of(
        desired_size=9,
        heartbeat_timeout=Duration.seconds(5),
        ami=EksOptimizedAmi(architecture="arm64"),
    )
    assert re.match(r"^Test/Nodes: 4 problems:", message)
    assert "desired_size 9 is above the block's instance count 4" in message
    assert "desired_size 9 is above max_size 4" in message
    assert "heartbeat_timeout 5 s" in message
    assert "the AMI is for arm64" in message
