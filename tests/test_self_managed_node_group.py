"""CapacityBlockSelfManagedNodeGroup: ASG, controller registration, drain, bootstrap, validation.

Expected values come from the AWS rules the construct follows, not from its output:

- EC2 starts terminating a Capacity Block's instances 30 minutes before its end, 60 for
  UltraServer blocks (EC2 user guide, "How Capacity Blocks work").
- An EC2 Auto Scaling lifecycle hook's heartbeat is 30 to 7200 seconds, and with
  ``DefaultResult: CONTINUE`` an instance nobody releases terminates when it expires
  (EC2 Auto Scaling user guide, "Amazon EC2 Auto Scaling lifecycle hooks").
- The controller acts on a moment at most its period plus one minute of invocation latency
  late, so a group holds no instance at the reclaim start when
  ``drain_lead >= reclaim lead + period + 1 min + heartbeat``.
- A template that leaves out ``DesiredCapacity`` never resets a running group on a deploy
  (the CDK's ``AutoScalingGroup.desiredCapacity`` documentation); a new group starts at
  ``MinSize``.

Synthesized stacks are module-scoped, each built once:

- future: the block starts later, imported cluster, labels, taints, a pre-bootstrap script,
  checked by cdk-nag's AwsSolutions pack;
- active: now inside the block, Bottlerocket nodes;
- clock: one group built the same way at three pinned "now" values (before the start, during
  the block, after the drain time before the end); "draining" is the last of them;
- in_app: an aws_eks_v2 cluster of the app, EFA, the Helm-installed handler;
- ultra: a Trn2 UltraServer block with the AL2023 Neuron AMI pinned by a synth-time lookup;
- shared: two blocks' groups sharing one node role, one controller and, without being told,
  one handler queue, checked by cdk-nag.

Validation failures raise before synthesis, so they build constructs but never synthesize.
"""

from __future__ import annotations

import email
import json
import re
import sys
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped, unused-ignore]
from aws_cdk import App, Duration, Fn, Stack, Validations
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_eks as eks
from aws_cdk import aws_eks_v2 as eks_v2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk.assertions import Annotations, Match, Template
from aws_cdk.cx_api import SynthesisMessageLevel
from cdk_nag import AwsSolutionsChecks

from capblock_constructs import (
    RESERVATION_LABEL,
    CapacityBlockController,
    CapacityBlockError,
    NodeTaint,
)
from capblock_constructs._problems import Problems
from capblock_constructs.ami import AmiResolution, EksOptimizedAmi, resolve_image_id
from capblock_constructs.device_plugins import EFA_DEVICE_PLUGIN, NVIDIA_DEVICE_PLUGIN
from capblock_constructs.self_managed_node_group import CapacityBlockSelfManagedNodeGroup
from capblock_constructs.termination import NodeTerminationHandlerQueue
from tests.support import (
    ACCOUNT,
    BEFORE_START,
    DURING,
    EKS_NODE_ROLE_POLICIES,
    END,
    REGION,
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
ULTRA_SSM_KEY = (
    "ssm:account=123456789012:parameterName=/aws/service/eks/optimized-ami/1.33/"
    "amazon-linux-2023/x86_64/neuron/recommended/image_id:region=us-east-2"
)
BOTTLEROCKET_NVIDIA_X86 = "/aws/service/bottlerocket/aws-k8s-1.33-nvidia/x86_64/latest/image_id"
NEXT_RESERVATION_ID = "cr-0fedcba9876543210"
CONFIG_VARIABLE = "CAPBLOCK_CONTROLLER_CONFIG"

# The rules (see the module docstring).
RECLAIM_LEAD = timedelta(minutes=30)
ULTRA_RECLAIM_LEAD = timedelta(minutes=60)
INVOCATION_LATENCY = timedelta(minutes=1)
DEFAULT_PERIOD = timedelta(minutes=1)
MIN_HEARTBEAT = timedelta(seconds=30)
MAX_HEARTBEAT = timedelta(seconds=7200)
# The documented defaults: 40 minutes (70 for UltraServer blocks), leaving 10 minutes of drain
# beyond EC2's reclaim lead as EKS does for managed node groups.
DEFAULT_DRAIN_LEAD = timedelta(minutes=40)
ULTRA_DEFAULT_DRAIN_LEAD = timedelta(minutes=70)


def utc(moment: Any) -> str:
    """A datetime as the ISO 8601 UTC text the pinned clock and the messages use."""
    return str(moment.strftime("%Y-%m-%dT%H:%M:%SZ"))


# Three moments the template must not depend on: before the start, during the block, and after
# the default drain time (END - 40 min) but before EC2's reclaim start (END - 30 min).
CLOCK = {
    "before-start": BEFORE_START,
    "during": DURING,
    "draining": utc(END - timedelta(minutes=35)),
}


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


def built(name: str, **kwargs: Any) -> CapacityBlockSelfManagedNodeGroup:
    """A node group in a fresh stack (pinned before the start), not synthesized."""
    return node_group(make_stack(make_app(), name), **kwargs)


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


def asg_properties(template: dict[str, Any]) -> dict[str, Any]:
    properties: dict[str, Any] = one(template, "AWS::AutoScaling::AutoScalingGroup")["Properties"]
    return properties


def hook_heartbeat(template: dict[str, Any]) -> timedelta:
    hook = one(template, "AWS::AutoScaling::LifecycleHook")["Properties"]
    return timedelta(seconds=hook["HeartbeatTimeout"])


def placeholder(part: Any) -> str:
    """Plain text for a piece of a Fn::Join: ``<Ref:Id>`` or ``<GetAtt:Id.Attr>``."""
    if isinstance(part, str):
        return part
    if "Ref" in part:
        return f"<Ref:{part['Ref']}>"
    return f"<GetAtt:{'.'.join(part['Fn::GetAtt'])}>"


def joined(value: Any) -> str:
    """A string CloudFormation builds with Fn::Join (or a plain one), tokens as placeholders."""
    if isinstance(value, str):
        return value
    if "Fn::Join" not in value:
        return placeholder(value)
    separator, parts = value["Fn::Join"]
    return str(separator).join(placeholder(part) for part in parts)


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def user_data_text(template: dict[str, Any]) -> str:
    """The launch template's user data, with deploy-time values replaced by placeholders."""
    data = one(template, "AWS::EC2::LaunchTemplate")["Properties"]["LaunchTemplateData"]
    return joined(data["UserData"]["Fn::Base64"])


def data_of(template: dict[str, Any]) -> dict[str, Any]:
    data: dict[str, Any] = one(template, "AWS::EC2::LaunchTemplate")["Properties"][
        "LaunchTemplateData"
    ]
    return data


def node_config(template: dict[str, Any]) -> dict[str, Any]:
    message = email.message_from_string(user_data_text(template))
    assert message.get_content_type() == "multipart/mixed"
    (part,) = [p for p in message.walk() if p.get_content_type() == "application/node.eks.aws"]
    document: dict[str, Any] = yaml.safe_load(str(part.get_payload()))
    return document


def controller_run(template: dict[str, Any]) -> dict[str, Any]:
    """The custom resource that runs the controller on deploys (one per stack)."""
    return one(template, "Custom::CapacityBlockController")


def controller_config(template: dict[str, Any]) -> dict[str, Any]:
    """The controller's configuration as the custom resource carries it."""
    config: dict[str, Any] = json.loads(
        joined(controller_run(template)["Properties"]["Configuration"])
    )
    return config


def function_config(template: dict[str, Any]) -> dict[str, Any]:
    """The controller's configuration as its Lambda function reads it."""
    (function,) = [
        f
        for f in of_type(template, "AWS::Lambda::Function").values()
        if CONFIG_VARIABLE in f["Properties"].get("Environment", {}).get("Variables", {})
    ]
    config: dict[str, Any] = json.loads(
        joined(function["Properties"]["Environment"]["Variables"][CONFIG_VARIABLE])
    )
    return config


def controller_statements(template: dict[str, Any]) -> list[dict[str, Any]]:
    """Every IAM statement of the role the controller's function runs as."""
    token = controller_run(template)["Properties"]["ServiceToken"]["Fn::GetAtt"][0]
    function = template["Resources"][token]
    role = {"Ref": function["Properties"]["Role"]["Fn::GetAtt"][0]}
    return [
        statement
        for policy in of_type(template, "AWS::IAM::Policy").values()
        if role in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]


def asg_arn(asg_id: str) -> str:
    """The ARN pattern of a group known only by name (Service Authorization Reference)."""
    return (
        f"arn:<Ref:AWS::Partition>:autoscaling:{REGION}:{ACCOUNT}:autoScalingGroup:*:"
        f"autoScalingGroupName/<Ref:{asg_id}>"
    )


def handler_rules(template: dict[str, Any], queue_id: str) -> list[dict[str, Any]]:
    """The event patterns of the rules that feed the termination handler's queue."""
    queue_arn = {"Fn::GetAtt": [queue_id, "Arn"]}
    return [
        rule["Properties"]["EventPattern"]
        for rule in of_type(template, "AWS::Events::Rule").values()
        if any(target["Arn"] == queue_arn for target in rule["Properties"]["Targets"])
    ]


def warnings_of(app: App, stack_name: str) -> list[str]:
    """The warning texts synthesis recorded for a stack (read from the cloud assembly)."""
    artifact = app.synth().get_stack_by_name(stack_name)
    return [
        str(message.entry.data)
        for message in artifact.messages
        if message.level == SynthesisMessageLevel.WARNING
    ]


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
def active() -> dict[str, Any]:
    stack = make_stack(make_app(now=DURING), "Active")
    node_group(
        stack,
        # No taints given: the NVIDIA default applies.
        ami=EksOptimizedAmi(operating_system="bottlerocket"),
    )
    return synthesized(stack)


@dataclass(frozen=True)
class Synth:
    template: dict[str, Any]
    warnings: list[str]


@pytest.fixture(scope="module")
def clock() -> dict[str, Synth]:
    """The same node group synthesized at each pinned moment of CLOCK (same stack name)."""
    results: dict[str, Synth] = {}
    for name, now in CLOCK.items():
        app = make_app(now=now)
        stack = make_stack(app, "Clock")
        # Imported with attributes only: nothing says how the cluster authenticates.
        node_group(stack, access_entry=None, taints=[])
        results[name] = Synth(template=synthesized(stack), warnings=warnings_of(app, "Clock"))
    return results


@pytest.fixture(scope="module")
def draining(clock: dict[str, Synth]) -> dict[str, Any]:
    return clock["draining"].template


@pytest.fixture(scope="module")
def in_app() -> dict[str, Any]:
    """An in-app cluster's EFA group that installs the handler and the device plugins."""
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
        install_device_plugins=True,
    )
    return synthesized(stack)


@pytest.fixture(scope="module")
def ultra() -> dict[str, Any]:
    app = make_app(now=BEFORE_START, context={ULTRA_SSM_KEY: "ami-0fedcba9876543210"})
    stack = make_stack(app, "Ultra")
    node_group(
        stack,
        capacity_block=block(
            # A u-trn2x64 block really holds trn2u.48xlarge instances, which cfn-lint's region
            # data (pricing offers, where UltraServer-only types are missing) rejects (E3628);
            # trn2.48xlarge has the same chips, AMI and drain rules.
            instance_type="trn2.48xlarge",
            ultraserver_type="u-trn2x64",
            instance_count=16,
        ),
        ami=EksOptimizedAmi(resolution=AmiResolution.SYNTH_TIME),
    )
    return synthesized(stack)


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    """Two blocks' node groups sharing a role, a handler queue and the controller; cdk-nag."""
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
            capacity_reservation_id=NEXT_RESERVATION_ID,
            start=END,
            end=END + timedelta(days=7),
        ),
        vpc=vpc,
        kubernetes_version="1.33",
        service_ipv4_cidr=SERVICE_CIDR,
        access_entry=True,
        desired_size=1,
        max_size=2,
        # One handler installation reads one queue: the second group feeds the first's.
        termination_handler=first.termination_handler,
        node_role=first.node_role,
    )
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return synthesized(stack), outdir


ALL = ("future", "active", "draining", "in_app", "ultra")
NTH_CHART = "aws-node-termination-handler"


def nag_violations(outdir: Path) -> list[tuple[str, str]]:
    """What the validation plugins reported during synth (errors also fail the synth)."""
    report = json.loads((outdir / "validation-report.json").read_text())
    return [
        (violation["ruleName"], violation["severity"])
        for plugin in report["pluginReports"]
        for violation in plugin.get("violations", [])
    ]


@pytest.mark.parametrize("name", ALL)
def test_every_template_passes_cfn_lint(name: str, request: pytest.FixtureRequest) -> None:
    assert cfn_lint_errors(request.getfixturevalue(name)) == []


def test_cdk_nag_reports_nothing(future: dict[str, Any], nag_outdir: Path) -> None:
    # The AwsSolutions pack ran as a validation plugin of the future stack's app: errors
    # would have failed the synth, and warnings must be zero as well.
    assert nag_violations(nag_outdir) == []


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
    # Only the reservation ID identifies the block: an end-date label would go stale when the
    # block is extended (same reservation ID, later end).
    labels = f"{RESERVATION_LABEL}={RESERVATION_ID},example.com/team=ml"
    assert f"--node-labels={labels}" in flags
    assert "--register-with-taints=dedicated=training:NoExecute" in flags
    assert "capacity-block-end" not in user_data_text(future)


def test_taints_can_be_removed(draining: dict[str, Any]) -> None:
    flags = node_config(draining)["spec"]["kubelet"]["flags"]
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


def test_device_plugins_for_nvidia_and_efa_nodes(in_app: dict[str, Any]) -> None:
    # AL2023 NVIDIA nodes lack the NVIDIA plugin and every AMI lacks the EFA one; without them
    # p5 nodes join but advertise no nvidia.com/gpu or vpc.amazonaws.com/efa.
    charts = sorted(
        r["Properties"]["Chart"]
        for r in in_app["Resources"].values()
        if r["Type"].endswith("HelmChart") and r["Properties"]["Chart"] != NTH_CHART
    )
    assert charts == sorted([NVIDIA_DEVICE_PLUGIN.chart, EFA_DEVICE_PLUGIN.chart])
    # The plugins select nodes by label, so kubelet must register the nodes with those labels.
    (flag,) = [
        f for f in node_config(in_app)["spec"]["kubelet"]["flags"] if f.startswith("--node-labels=")
    ]
    registered = dict(pair.split("=", 1) for pair in flag.removeprefix("--node-labels=").split(","))
    for plugin in (NVIDIA_DEVICE_PLUGIN, EFA_DEVICE_PLUGIN):
        assert plugin.node_labels.items() <= registered.items()


def test_bottlerocket_nvidia_nodes_bring_their_own_nvidia_plugin() -> None:
    stack = make_stack(make_app(now=BEFORE_START), "BottlerocketPlugins")
    group = node_group(
        stack,
        cluster=in_app_cluster(
            stack,
            kubectl_provider_options=eks_v2.KubectlProviderOptions(
                kubectl_layer=lambda_.LayerVersion.from_layer_version_arn(
                    stack, "Kubectl", f"arn:aws:lambda:{REGION}:{ACCOUNT}:layer:kubectl:1"
                )
            ),
        ),
        ami=EksOptimizedAmi(operating_system="bottlerocket"),
        install_device_plugins=True,
    )
    assert group.device_plugins is not None
    assert [plugin.chart for plugin in group.device_plugins.plugins] == []


def test_efa_puts_an_interface_on_every_card_with_the_efa_group(in_app: dict[str, Any]) -> None:
    data = one(in_app, "AWS::EC2::LaunchTemplate")["Properties"]["LaunchTemplateData"]
    interfaces = data["NetworkInterfaces"]
    # The layout the EC2 and EKS user guides document: an ENA primary interface (CloudFormation
    # omits InterfaceType for it), efa-only at card 0 device 1 and at device 0 of the other 31
    # of p5.48xlarge's 32 network cards.
    assert [
        (i["NetworkCardIndex"], i["DeviceIndex"], i.get("InterfaceType", "interface"))
        for i in interfaces
    ] == [(0, 0, "interface"), (0, 1, "efa-only")] + [
        (card, 0, "efa-only") for card in range(1, 32)
    ]
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
    assert settings["node-labels"] == {RESERVATION_LABEL: RESERVATION_ID}
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


@pytest.mark.parametrize(
    ("name", "count"),
    [("future", 4), ("active", 4), ("draining", 4), ("in_app", 4), ("ultra", 16)],
)
def test_asg_sizes_are_the_block_constants_with_no_desired_capacity(
    name: str, count: int, request: pytest.FixtureRequest
) -> None:
    template = request.getfixturevalue(name)
    asg = asg_properties(template)
    # MinSize 0 and MaxSize the block's instance count whatever the moment; no DesiredCapacity,
    # so a deploy never resets the size the controller set and a new group starts at MinSize 0.
    assert (asg["MinSize"], asg["MaxSize"]) == ("0", str(count))
    assert "DesiredCapacity" not in asg
    # The controller does all the timing: no one-time scheduled actions.
    assert not of_type(template, "AWS::AutoScaling::ScheduledAction")


def test_asg_subnets_and_pinned_launch_template_version(future: dict[str, Any]) -> None:
    asg = asg_properties(future)
    # Only the block's AZ (us-east-2a) subnet, not the us-east-2b one.
    assert asg["VPCZoneIdentifier"] == ["subnet-0a"]
    (template_id,) = of_type(future, "AWS::EC2::LaunchTemplate")
    assert asg["LaunchTemplate"] == {
        "LaunchTemplateId": {"Ref": template_id},
        "Version": {"Fn::GetAtt": [template_id, "LatestVersionNumber"]},
    }
    assert "MixedInstancesPolicy" not in asg
    assert not of_type(future, "AWS::AutoScaling::WarmPool")


def test_asg_keeps_the_controller_sizes_on_stack_updates(future: dict[str, Any]) -> None:
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


# -- the template does not depend on when it is synthesized -----------------------------------


@pytest.mark.parametrize("name", [name for name in CLOCK if name != "before-start"])
def test_template_is_the_same_whenever_it_is_synthesized(
    name: str, clock: dict[str, Synth]
) -> None:
    assert clock[name].template == clock["before-start"].template


@pytest.mark.parametrize("name", list(CLOCK))
def test_the_only_construct_warning_is_the_unmapped_node_role(
    name: str, clock: dict[str, Synth]
) -> None:
    # No warning about a scale-up or scale-down left out because of the moment of synthesis.
    ours = [w for w in clock[name].warnings if "capblock-constructs:" in w]
    assert len(ours) == 1, ours
    assert "capblock-constructs:node-role-not-mapped" in ours[0]


@pytest.mark.parametrize("after_end", [timedelta(0), timedelta(hours=1)])
def test_fails_once_the_block_has_ended(after_end: timedelta) -> None:
    message = failure_of(app={"now": utc(END + after_end)})
    assert f"ended at {utc(END)}" in message
    assert "Use an active or scheduled block" in message


def test_builds_until_the_last_second_of_the_block() -> None:
    stack = make_stack(make_app(now=utc(END - timedelta(seconds=1))), "LastSecond")
    group = node_group(stack)
    # Past its drain time the group still builds; the controller keeps it at 0.
    assert group.drain_time == END - DEFAULT_DRAIN_LEAD


# -- the controller ------------------------------------------------------------------------


def test_group_registers_its_sizes_and_drain_lead_with_the_controller(
    future: dict[str, Any],
) -> None:
    (asg_id,) = of_type(future, "AWS::AutoScaling::AutoScalingGroup")
    config = controller_config(future)
    assert config["periodSeconds"] == DEFAULT_PERIOD.total_seconds()
    assert config["groups"] == [
        {
            "id": "Future/Nodes",
            "kind": "self-managed",
            "reservation": RESERVATION_ID,
            "ultraserver": False,
            "targetSize": 4,
            "maxSize": 4,
            "drainLeadSeconds": DEFAULT_DRAIN_LEAD.total_seconds(),
            "autoScalingGroupName": f"<Ref:{asg_id}>",
        }
    ]
    # The function's periodic runs read what the deploy-time run was given.
    assert function_config(future) == config


def test_controller_first_runs_once_the_group_and_its_hook_exist(
    future: dict[str, Any],
) -> None:
    (asg_id,) = of_type(future, "AWS::AutoScaling::AutoScalingGroup")
    (hook_id,) = of_type(future, "AWS::AutoScaling::LifecycleHook")
    # Without the hook, a drain the first run starts would skip the termination handler.
    assert {asg_id, hook_id} <= set(controller_run(future)["DependsOn"])


def test_controller_may_update_only_this_auto_scaling_group(future: dict[str, Any]) -> None:
    (asg_id,) = of_type(future, "AWS::AutoScaling::AutoScalingGroup")
    sizing = [
        s
        for s in controller_statements(future)
        if {"autoscaling:UpdateAutoScalingGroup", "autoscaling:*", "*"} & set(as_list(s["Action"]))
    ]
    (update,) = sizing
    assert as_list(update["Action"]) == ["autoscaling:UpdateAutoScalingGroup"]
    # By name: the group ID in the ARN is unknown until the group exists.
    assert [joined(arn) for arn in as_list(update["Resource"])] == [asg_arn(asg_id)]


def test_two_groups_of_a_stack_share_one_controller(shared: tuple[dict[str, Any], Path]) -> None:
    template, _ = shared
    asg_ids = sorted(of_type(template, "AWS::AutoScaling::AutoScalingGroup"))
    run = controller_run(template)  # one, or this would fail
    groups = {g["reservation"]: g for g in controller_config(template)["groups"]}
    assert set(groups) == {RESERVATION_ID, NEXT_RESERVATION_ID}
    assert sorted(g["id"] for g in groups.values()) == ["Shared/NextBlock", "Shared/Nodes"]
    assert (groups[RESERVATION_ID]["targetSize"], groups[RESERVATION_ID]["maxSize"]) == (4, 4)
    assert (groups[NEXT_RESERVATION_ID]["targetSize"], groups[NEXT_RESERVATION_ID]["maxSize"]) == (
        1,
        2,
    )
    assert sorted(g["autoScalingGroupName"] for g in groups.values()) == [
        f"<Ref:{asg_id}>" for asg_id in asg_ids
    ]
    assert function_config(template) == controller_config(template)
    (update,) = [
        s
        for s in controller_statements(template)
        if "autoscaling:UpdateAutoScalingGroup" in as_list(s["Action"])
    ]
    assert sorted(joined(arn) for arn in as_list(update["Resource"])) == sorted(
        asg_arn(asg_id) for asg_id in asg_ids
    )
    assert set(asg_ids) <= set(run["DependsOn"])
    # max_size=2 limits the controller; the template keeps the block's count.
    for asg in of_type(template, "AWS::AutoScaling::AutoScalingGroup").values():
        assert asg["Properties"]["MaxSize"] == "4"
        assert "DesiredCapacity" not in asg["Properties"]


# -- drain timing -----------------------------------------------------------------------------


def test_lifecycle_hook_holds_terminating_instances_for_the_drain(future: dict[str, Any]) -> None:
    hook = one(future, "AWS::AutoScaling::LifecycleHook")["Properties"]
    (asg_id,) = of_type(future, "AWS::AutoScaling::AutoScalingGroup")
    assert hook["AutoScalingGroupName"] == {"Ref": asg_id}
    assert hook["LifecycleTransition"] == "autoscaling:EC2_INSTANCE_TERMINATING"
    assert hook["DefaultResult"] == "CONTINUE"
    # drain lead (40 min) - reclaim lead (30 min) - lateness (1 min period + 1 min).
    assert hook["HeartbeatTimeout"] == 8 * 60


def test_ultraserver_default_drain_lead_is_70_minutes_with_an_8_minute_heartbeat(
    ultra: dict[str, Any],
) -> None:
    (entry,) = controller_config(ultra)["groups"]
    assert entry["ultraserver"] is True
    assert entry["drainLeadSeconds"] == ULTRA_DEFAULT_DRAIN_LEAD.total_seconds()
    assert (entry["targetSize"], entry["maxSize"]) == (16, 16)
    # 70 min - 60 min UltraServer reclaim lead - 2 min lateness.
    assert hook_heartbeat(ultra) == timedelta(minutes=8)


@pytest.mark.parametrize(
    ("name", "reclaim_lead"), [("future", RECLAIM_LEAD), ("ultra", ULTRA_RECLAIM_LEAD)]
)
def test_undrained_instances_terminate_before_ec2_reclaims_them(
    name: str, reclaim_lead: timedelta, request: pytest.FixtureRequest
) -> None:
    # Worst case without a handler: the controller scales to zero as late as it can, then
    # the hook holds each instance for the whole heartbeat and CONTINUE terminates it.
    template = request.getfixturevalue(name)
    assert one(template, "AWS::AutoScaling::LifecycleHook")["Properties"]["DefaultResult"] == (
        "CONTINUE"
    )
    config = controller_config(template)
    (entry,) = config["groups"]
    latest_scale_down = (
        END
        - timedelta(seconds=entry["drainLeadSeconds"])
        + timedelta(seconds=config["periodSeconds"])
        + INVOCATION_LATENCY
    )
    assert latest_scale_down + hook_heartbeat(template) <= END - reclaim_lead


def test_a_five_minute_controller_period_shortens_the_default_heartbeat() -> None:
    stack = make_stack(make_app(), "SlowController")
    controller = CapacityBlockController(stack, "Controller", period=Duration.minutes(5))
    group = node_group(stack, controller=controller)
    # 40 min drain lead - 30 min reclaim lead - (5 min period + 1 min latency).
    assert group.heartbeat_timeout == timedelta(minutes=4)
    assert group.lifecycle_hook.heartbeat_timeout == 4 * 60
    assert group.controller is controller
    # The group registered with the controller it was given; no default one was made.
    assert stack.node.try_find_child("CapacityBlockController") is None
    config = stack.resolve(controller.configuration)
    assert config["periodSeconds"] == 5 * 60
    (entry,) = config["groups"]
    assert entry["drainLeadSeconds"] == DEFAULT_DRAIN_LEAD.total_seconds()


def test_a_five_minute_controller_period_counts_against_an_explicit_heartbeat() -> None:
    stack = make_stack(make_app(), "SlowController")
    controller = CapacityBlockController(stack, "Controller", period=Duration.minutes(5))
    with pytest.raises(CapacityBlockError) as failure:
        node_group(stack, controller=controller, heartbeat_timeout=Duration.minutes(8))
    # 30 min reclaim lead + 6 min lateness + 8 min heartbeat.
    assert "The earliest valid drain_lead is 44 min" in str(failure.value)


def test_a_39_minute_drain_lead_is_valid_with_the_heartbeat_it_leaves() -> None:
    group = built("ThirtyNine", drain_lead=Duration.minutes(39))
    # The default heartbeat comes from the lead itself: 39 - 30 - 2 = 7 minutes, so the
    # earliest valid lead (30 + 2 + 7 = 39 minutes) is the lead.
    assert group.heartbeat_timeout == timedelta(minutes=7)
    assert group.drain_lead == timedelta(minutes=39)
    assert group.drain_time == END - timedelta(minutes=39)


@pytest.mark.parametrize(("lead", "heartbeat"), [(40, 8), (42, 10)])
def test_an_explicit_heartbeat_the_drain_lead_covers_exactly_is_accepted(
    lead: int, heartbeat: int
) -> None:
    # lead = 30 min reclaim lead + 2 min lateness + heartbeat.
    group = built(
        "Boundary",
        drain_lead=Duration.minutes(lead),
        heartbeat_timeout=Duration.minutes(heartbeat),
    )
    assert group.heartbeat_timeout == timedelta(minutes=heartbeat)
    assert group.drain_time == END - timedelta(minutes=lead)


def test_an_explicit_heartbeat_the_drain_lead_cannot_cover_fails() -> None:
    message = failure_of(drain_lead=Duration.minutes(40), heartbeat_timeout=Duration.minutes(10))
    # 30 min reclaim lead + 2 min lateness + 10 min heartbeat.
    assert "The earliest valid drain_lead is 42 min" in message
    assert "the default is 40 min" in message
    # The user chose the heartbeat, so shortening it is a fix.
    assert "heartbeat_timeout" in message


def test_a_drain_lead_too_short_for_the_shortest_heartbeat_fails() -> None:
    message = failure_of(drain_lead=Duration.minutes(32))
    # What the lead leaves (32 - 30 - 2 = 0) clamps to the 30 s minimum: 30 + 2 min + 30 s.
    assert "The earliest valid drain_lead is 32 min 30 s" in message
    assert "the default is 40 min" in message
    # No heartbeat was set, so the fix does not send the user to one.
    assert "heartbeat_timeout" not in message


def test_the_shortest_valid_drain_lead_gets_the_shortest_heartbeat() -> None:
    group = built("Shortest", drain_lead=timedelta(minutes=32, seconds=30))
    assert group.heartbeat_timeout == MIN_HEARTBEAT


def test_an_ultraserver_drain_lead_must_cover_its_60_minute_reclaim() -> None:
    message = failure_of(
        capacity_block=block(instance_type="trn2u.48xlarge", ultraserver_type="u-trn2x64"),
        drain_lead=Duration.minutes(45),
    )
    # 60 min reclaim lead + 2 min lateness + the 30 s minimum heartbeat.
    assert "The earliest valid drain_lead is 1 h 2 min 30 s" in message
    assert "the default is 1 h 10 min" in message
    assert "heartbeat_timeout" not in message


def test_a_drain_lead_as_long_as_the_block_fails() -> None:
    message = failure_of(
        capacity_block=block(end=START + timedelta(hours=1)), drain_lead=Duration.hours(1)
    )
    assert "drain_lead 1 h is not shorter than Capacity Block" in message


def test_a_drain_lead_just_shorter_than_the_block_is_accepted() -> None:
    group = built(
        "Short",
        capacity_block=block(end=START + timedelta(hours=1)),
        drain_lead=Duration.minutes(59),
    )
    assert group.drain_time == START + timedelta(minutes=1)


@pytest.mark.parametrize("heartbeat", [MIN_HEARTBEAT, MAX_HEARTBEAT])
def test_heartbeats_of_30_seconds_to_2_hours_are_accepted(heartbeat: timedelta) -> None:
    # 152 min = 30 min reclaim lead + 2 min lateness + the 2 h longest heartbeat.
    group = built("Heartbeat", drain_lead=Duration.minutes(152), heartbeat_timeout=heartbeat)
    assert group.heartbeat_timeout == heartbeat
    assert group.lifecycle_hook.heartbeat_timeout == heartbeat.total_seconds()


@pytest.mark.parametrize(
    "heartbeat", [MIN_HEARTBEAT - timedelta(seconds=1), MAX_HEARTBEAT + timedelta(seconds=1)]
)
def test_heartbeats_outside_30_seconds_to_2_hours_fail(heartbeat: timedelta) -> None:
    message = failure_of(drain_lead=Duration.minutes(152), heartbeat_timeout=heartbeat)
    assert message.startswith("Test/Nodes: heartbeat_timeout ")
    assert "is outside the 30 s to 2 h" in message


# -- sizes ----------------------------------------------------------------------------------


def test_desired_size_zero_keeps_the_group_empty_during_the_block() -> None:
    group = built("Empty", desired_size=0)
    assert (group.target_size, group.max_size) == (0, 4)
    stack = Stack.of(group)
    (entry,) = stack.resolve(group.controller.configuration)["groups"]
    assert (entry["targetSize"], entry["maxSize"]) == (0, 4)
    # The template's sizes are the block's, whatever the target.
    assert stack.resolve(group.auto_scaling_group.max_size) == "4"
    assert group.auto_scaling_group.desired_capacity is None


def test_max_size_limits_the_controller_not_the_template() -> None:
    group = built("Smaller", max_size=2)
    # desired_size defaults to max_size.
    assert (group.target_size, group.max_size) == (2, 2)
    stack = Stack.of(group)
    (entry,) = stack.resolve(group.controller.configuration)["groups"]
    assert (entry["targetSize"], entry["maxSize"]) == (2, 2)
    assert stack.resolve(group.auto_scaling_group.max_size) == "4"


@pytest.mark.parametrize("max_size", [0, 5])
def test_max_size_must_be_1_to_the_instance_count(max_size: int) -> None:
    message = failure_of(max_size=max_size)
    assert (
        f"max_size {max_size} must be a whole number from 1 to the block's instance count (4)"
        in (message)
    )


@pytest.mark.parametrize(
    ("desired_size", "max_size", "limit"), [(5, None, 4), (3, 2, 2), (-1, None, 4)]
)
def test_desired_size_must_be_0_to_max_size(
    desired_size: int, max_size: int | None, limit: int
) -> None:
    message = failure_of(desired_size=desired_size, max_size=max_size)
    assert f"desired_size {desired_size} must be a whole number from 0 to max_size ({limit})" in (
        message
    )


def test_termination_queue_rule_is_scoped_to_this_asg(future: dict[str, Any]) -> None:
    (asg_id,) = of_type(future, "AWS::AutoScaling::AutoScalingGroup")
    (queue_id,) = of_type(future, "AWS::SQS::Queue")
    rules = handler_rules(future, queue_id)
    assert len(rules) == 3
    (lifecycle,) = [p for p in rules if p["source"] == ["aws.autoscaling"]]
    assert lifecycle["detail"] == {"AutoScalingGroupName": [{"Ref": asg_id}]}
    # The handler's queueURL.
    assert {"Ref": queue_id} in [output["Value"] for output in future["Outputs"].values()]


def test_node_groups_of_a_cluster_share_one_handler_queue(
    shared: tuple[dict[str, Any], Path],
) -> None:
    # One handler installation reads one queue: the second block's group, given no queue,
    # feeds the first's.
    template, outdir = shared
    asg_ids = sorted(of_type(template, "AWS::AutoScaling::AutoScalingGroup"))
    assert len(asg_ids) == 2
    (queue_id,) = of_type(template, "AWS::SQS::Queue")
    rules = handler_rules(template, queue_id)
    assert len(rules) == 3
    (lifecycle,) = [p for p in rules if p["source"] == ["aws.autoscaling"]]
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
    # The AwsSolutions pack ran during synth; the second group's ARNs are acknowledged too.
    assert nag_violations(outdir) == []


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


def another_group(
    stack: Stack, id: str, cluster: Any, vpc: ec2.IVpc, **kwargs: Any
) -> CapacityBlockSelfManagedNodeGroup:
    """A further group in ``stack`` on ``cluster``, built like :func:`node_group`'s."""
    options: dict[str, Any] = {
        "capacity_block": block(),
        "kubernetes_version": "1.33",
        "service_ipv4_cidr": SERVICE_CIDR,
        "access_entry": True,
        "desired_size": 1,
    }
    options.update(kwargs)
    return CapacityBlockSelfManagedNodeGroup(stack, id, cluster=cluster, vpc=vpc, **options)


def test_a_single_group_keeps_its_queue_where_it_always_was() -> None:
    # Construct paths make the logical IDs, so a stack with one group deploys unchanged.
    group = built("Single")
    assert group.termination_handler.node.path == "Single/Nodes/TerminationHandler"
    assert group.termination_queue.node.path == "Single/Nodes/TerminationHandler/Queue"
    assert group.termination_handler.auto_scaling_group_names == (group.auto_scaling_group_name,)


def queue_warnings(stack: Stack) -> list[str]:
    """The texts of the not-shared-queue warnings ``stack`` carries (synthesizes it)."""
    return [
        str(entry.entry.data)
        for entry in Annotations.from_stack(stack).find_warning("*", Match.any_value())
        if "capblock-constructs:termination-queue-not-shared" in str(entry.entry.data)
    ]


def test_a_second_group_with_a_queue_of_its_own_warns() -> None:
    stack = make_stack(make_app(), "OwnQueues")
    cluster, vpc = imported_cluster(stack), imported_vpc(stack)
    first = node_group(stack, cluster=cluster, vpc=vpc)
    # Another import of the same cluster (by name) is the same cluster.
    again = eks_v2.Cluster.from_cluster_attributes(
        stack,
        "SameClusterAgain",
        cluster_name=CLUSTER,
        cluster_endpoint=ENDPOINT,
        cluster_certificate_authority_data=CA,
        cluster_security_group_id=CLUSTER_SG,
    )
    second = another_group(stack, "Second", again, vpc)
    # Each keeps a queue of its own, under itself: removing the first group once its block
    # has ended must not move the queue the second one's handler reads.
    assert second.termination_handler is not first.termination_handler
    assert second.termination_handler.node.path == "OwnQueues/Second/TerminationHandler"
    (warning,) = queue_warnings(stack)
    assert (
        "OwnQueues/Second feeds the termination-handler queue OwnQueues/Second/TerminationHandler, "
        "but OwnQueues/Nodes on the same cluster feeds OwnQueues/Nodes/TerminationHandler"
    ) in warning


def test_a_group_with_its_own_queue_beside_a_stack_queue_warns() -> None:
    # The recommended setup (one queue at the stack's root, given to every group) broken by
    # one group that was not given it: its nodes would never be drained.
    stack = make_stack(make_app(), "RootQueue")
    cluster, vpc = imported_cluster(stack), imported_vpc(stack)
    root_queue = NodeTerminationHandlerQueue(stack, "TerminationHandler")
    node_group(stack, cluster=cluster, vpc=vpc, termination_handler=root_queue)
    another_group(stack, "Forgotten", cluster, vpc)
    (warning,) = queue_warnings(stack)
    assert "RootQueue/Forgotten feeds the termination-handler queue" in warning
    assert "RootQueue/Nodes on the same cluster feeds RootQueue/TerminationHandler" in warning


def test_groups_that_share_a_queue_do_not_warn() -> None:
    stack = make_stack(make_app(), "SharedQueue")
    cluster, vpc = imported_cluster(stack), imported_vpc(stack)
    first = node_group(stack, cluster=cluster, vpc=vpc)
    second = another_group(
        stack, "Second", cluster, vpc, termination_handler=first.termination_handler
    )
    assert second.termination_handler is first.termination_handler
    assert first.termination_handler.auto_scaling_group_names == (
        first.auto_scaling_group_name,
        second.auto_scaling_group_name,
    )
    assert queue_warnings(stack) == []


def test_a_queue_given_explicitly_still_wins() -> None:
    stack = make_stack(make_app(), "Explicit")
    cluster, vpc = imported_cluster(stack), imported_vpc(stack)
    first = node_group(stack, cluster=cluster, vpc=vpc)
    own = NodeTerminationHandlerQueue(stack, "Own")
    second = another_group(stack, "Second", cluster, vpc, termination_handler=own)
    assert second.termination_handler is own
    assert own.auto_scaling_group_names == (second.auto_scaling_group_name,)
    assert first.termination_handler.auto_scaling_group_names == (first.auto_scaling_group_name,)


def test_groups_of_another_cluster_get_their_own_queue() -> None:
    stack = make_stack(make_app(), "TwoClusters")
    vpc = imported_vpc(stack)
    first = node_group(stack, vpc=vpc)
    other = eks_v2.Cluster.from_cluster_attributes(
        stack,
        "OtherCluster",
        cluster_name="other",
        cluster_endpoint=ENDPOINT,
        cluster_certificate_authority_data=CA,
        cluster_security_group_id=CLUSTER_SG,
    )
    second = another_group(stack, "Second", other, vpc)
    assert second.termination_handler is not first.termination_handler
    assert second.termination_handler.node.path == "TwoClusters/Second/TerminationHandler"
    assert queue_warnings(stack) == []


def _kubectl(stack: Stack) -> eks_v2.KubectlProviderOptions:
    return eks_v2.KubectlProviderOptions(
        kubectl_layer=lambda_.LayerVersion.from_layer_version_arn(
            stack, "Kubectl", "arn:aws:lambda:us-east-2:123456789012:layer:kubectl:1"
        )
    )


def test_fails_to_install_the_handler_twice_on_one_cluster() -> None:
    stack = make_stack(make_app(), "InstallTwice")
    vpc = imported_vpc(stack)
    cluster = in_app_cluster(stack, kubectl_provider_options=_kubectl(stack))
    node_group(stack, cluster=cluster, vpc=vpc, install_termination_handler=True)
    # A second installation would take over the first one's Helm release and read only its
    # own queue; the error says where the handler is and what to pass instead.
    with pytest.raises(CapacityBlockError) as failure:
        another_group(stack, "Second", cluster, vpc, install_termination_handler=True)
    message = str(failure.value)
    assert message.startswith("InstallTwice/Second")
    assert (
        "aws-node-termination-handler is already installed on this cluster "
        "(InstallTwice/InAppCluster/chart-NodeTerminationHandler)"
    ) in message
    assert "drop install_termination_handler here" in message


def test_fails_to_install_beside_a_handler_installed_from_a_stack_queue() -> None:
    app = make_app()
    cluster_stack = make_stack(app, "ClusterStack")
    cluster = in_app_cluster(cluster_stack, kubectl_provider_options=_kubectl(cluster_stack))
    NodeTerminationHandlerQueue(cluster_stack, "TerminationHandler").install_handler(cluster)
    # Another stack's group: the installed chart is found on the cluster, wherever it is.
    nodes_stack = make_stack(app, "NodesStack")
    with pytest.raises(CapacityBlockError) as failure:
        node_group(
            nodes_stack,
            cluster=cluster,
            vpc=imported_vpc(nodes_stack),
            install_termination_handler=True,
        )
    assert "already installed on this cluster (ClusterStack/InAppCluster/" in str(failure.value)
    # And the queue's own install refuses a second handler the same way.
    with pytest.raises(CapacityBlockError, match="already installed on this cluster"):
        NodeTerminationHandlerQueue(cluster_stack, "Another").install_handler(cluster)


def test_handler_values_merge_and_keep_the_pod_identity_service_account() -> None:
    stack = make_stack(make_app(), "Values")
    cluster = in_app_cluster(stack, kubectl_provider_options=_kubectl(stack))
    NodeTerminationHandlerQueue(stack, "TerminationHandler").install_handler(
        cluster,
        values={"serviceAccount": {"annotations": {"team": "ml"}}, "logLevel": "debug"},
        pod_identity_agent=False,
    )
    template = synthesized(stack)
    (chart,) = of_type(template, "Custom::AWSCDK-EKS-HelmChart").values()
    values = json.loads(joined(chart["Properties"]["Values"]))
    # One key of a section overridden, the section's other keys kept (as Helm merges values).
    assert values["serviceAccount"]["annotations"] == {"team": "ml"}
    assert values["serviceAccount"]["create"] is True
    assert values["logLevel"] == "debug"
    association = one(template, "AWS::EKS::PodIdentityAssociation")["Properties"]
    assert association["ServiceAccount"] == values["serviceAccount"]["name"]


def test_handler_chart_is_installed_in_queue_mode_with_pod_identity(
    in_app: dict[str, Any],
) -> None:
    (chart,) = [
        r
        for r in in_app["Resources"].values()
        if r["Type"].endswith("HelmChart") and r["Properties"]["Chart"] == NTH_CHART
    ]
    properties = chart["Properties"]
    assert properties["Chart"] == "aws-node-termination-handler"
    # The CDK's kubectl handler pulls an oci:// chart by its repository alone ('helm pull
    # <repository> --untar', then reads the folder named by its last segment), so the
    # repository must be the chart's full reference: the one AWS publishes it under.
    assert properties["Repository"] == (
        "oci://public.ecr.aws/aws-ec2/helm/aws-node-termination-handler"
    )
    assert properties["Repository"].rsplit("/", 1)[1] == properties["Chart"]
    # Not the release AWS's instructions install (the chart's name): upgrading or uninstalling
    # ours must leave a handler the user installed alone, objects included.
    assert properties["Release"] != "aws-node-termination-handler"
    assert properties["Release"].startswith("capblock-")
    assert properties["Namespace"] == "kube-system"
    values = json.loads(joined(properties["Values"]))
    assert values["enableSqsTerminationDraining"] is True
    # Every object the chart names from its fullname carries the release's name.
    assert values["fullnameOverride"] == properties["Release"]
    (queue_id,) = of_type(in_app, "AWS::SQS::Queue")
    assert values["queueURL"] == f"<Ref:{queue_id}>"
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
    # Deployed during the block, the controller's first run sizes the group at once: nodes
    # must be able to join.
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
    (role,) = one(in_app, "AWS::IAM::InstanceProfile")["Properties"]["Roles"]
    assert entries[0]["PrincipalArn"] == {"Fn::GetAtt": [role["Ref"], "Arn"]}


def test_unknown_authentication_mode_warns_instead_of_guessing(
    clock: dict[str, Synth],
) -> None:
    synth = clock["draining"]
    assert not of_type(synth.template, "AWS::EKS::AccessEntry")
    (warning,) = [w for w in synth.warnings if "capblock-constructs:" in w]
    assert "pass access_entry=True" in warning
    assert "capblock-constructs:node-role-not-mapped" in warning


def test_exposes_its_parts() -> None:
    group = built("Parts")
    assert group.auto_scaling_group.cfn_resource_type == "AWS::AutoScaling::AutoScalingGroup"
    assert group.launch_template.resource.cfn_resource_type == "AWS::EC2::LaunchTemplate"
    assert group.security_group.node.id == "SecurityGroup"
    assert group.termination_queue is group.termination_handler.queue
    assert group.node_role.node.id == "NodeRole"
    assert group.drain_lead == DEFAULT_DRAIN_LEAD
    assert group.heartbeat_timeout == timedelta(minutes=8)
    assert group.drain_time == END - DEFAULT_DRAIN_LEAD
    assert (group.target_size, group.max_size) == (4, 4)
    # The stack's shared controller, at its root.
    assert group.controller.node.path == "Parts/CapacityBlockController"
    assert CapacityBlockController.of(group).node.path == group.controller.node.path
    for removed in ("schedule", "scale_up_action", "scale_down_action", "scale_down_time"):
        assert not hasattr(group, removed), removed


# -- validation ------------------------------------------------------------------------------


def test_fails_without_a_subnet_in_the_block_zone() -> None:
    stack = make_stack(make_app())
    with pytest.raises(CapacityBlockError) as failure:
        node_group(stack, vpc=imported_vpc(stack, ("us-east-2b", "us-east-2c"), "OtherVpc"))
    assert "no subnet in us-east-2a" in str(failure.value)


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


def test_fails_to_install_device_plugins_on_an_imported_cluster() -> None:
    message = failure_of(install_device_plugins=True)
    assert "install_device_plugins" in message
    assert NVIDIA_DEVICE_PLUGIN.chart in message


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
    # The role the nodes' instance profile carries.
    (role,) = one(template, "AWS::IAM::InstanceProfile")["Properties"]["Roles"]
    # The aws-auth entry EKS documents for self-managed node roles.
    assert mapping == {
        "rolearn": f"<GetAtt:{role['Ref']}.Arn>",
        "username": "system:node:{{EC2PrivateDNSName}}",
        "groups": ["system:bootstrappers", "system:nodes"],
    }


def test_an_unknown_type_takes_its_accelerator_from_the_ami() -> None:
    # A type newer than the table, on an AMI named NVIDIA: the nodes still need the GPU
    # taint and the NVIDIA device plugin, as a managed group with an NVIDIA ami_type gets.
    stack = make_stack(make_app(now=BEFORE_START), "NewType")
    cluster = in_app_cluster(stack, kubectl_provider_options=_kubectl(stack))
    group = node_group(
        stack,
        cluster=cluster,
        capacity_block=block(instance_type="p9.48xlarge"),
        ami=EksOptimizedAmi(accelerator="nvidia", architecture="x86_64"),
        install_device_plugins=True,
    )
    assert group.device_plugins is not None
    assert [plugin.chart for plugin in group.device_plugins.plugins] == [NVIDIA_DEVICE_PLUGIN.chart]
    flags = node_config(synthesized(stack))["spec"]["kubelet"]["flags"]
    assert "--register-with-taints=nvidia.com/gpu:NoSchedule" in flags


def test_fails_for_an_unknown_instance_type_with_efa_and_no_ami_hint() -> None:
    message = failure_of(capacity_block=block(instance_type="p9.48xlarge"), efa=True)
    # Why the type is unknown comes first, then what each part needs instead.
    assert "instance type 'p9.48xlarge' is not one that EC2 sells as a Capacity Block" in message
    assert "ami=EksOptimizedAmi(architecture='x86_64', accelerator='nvidia')" in message
    assert "EFA interfaces cannot be laid out" in message


def test_fails_for_bottlerocket_on_neuron() -> None:
    message = failure_of(
        capacity_block=block(instance_type="trn2.48xlarge"),
        ami=EksOptimizedAmi(operating_system="bottlerocket"),
    )
    assert "no Bottlerocket Neuron variant" in message
    assert "EksOptimizedAmi.pinned('ami-...'" in message


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
    assert re.match(r"^Test/Nodes: 3 problems:", message)
    assert "desired_size 9 must be a whole number from 0 to max_size (4)" in message
    assert "is outside the 30 s to 2 h" in message
    assert "the AMI is for arm64" in message
