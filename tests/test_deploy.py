"""`cdk deploy` of the example stacks into a local AWS emulator, and what it created, read back.

One moto server (server mode, 127.0.0.1, a free port) serves the whole test session. The
pinned CDK CLI bootstraps it and deploys the example app's ``CapblockLaunchTemplate`` and
``CapblockSelfManagedNodeGroup`` stacks (the lifecycle controller with its Lambda asset
included), then updates the self-managed stack with a changed node label and destroys both.
After each step the resources are read back through the service APIs and compared with what
the constructs promise. Expected values come from the example reservation in
cdk.context.json and from the AWS rules, not from the templates:

- a Capacity Block launch template carries ``MarketType: capacity-block``, the reservation
  as its target and the reserved instance type (EKS user guide, "Create node groups for
  Capacity Blocks"); only the block's Availability Zone can launch;
- a Capacity Block node group waits at zero (``MinSize`` 0, no ``DesiredCapacity``, so a
  deploy never resets a running group: CloudFormation only sets the properties a template
  gives) and has room for the block's instance count;
- the controller runs every minute and on the EC2 Capacity Block events (EC2 user guide,
  "Monitor Capacity Blocks using EventBridge", both spellings of the event names).

The self-managed stack imports an existing VPC and cluster; the test creates both in the
emulator first and synthesizes the example stack with the node group pointed at them.
``CapblockManagedNodeGroup`` cannot deploy on the emulator (moto has no CloudFormation model
for ``AWS::EKS::Cluster`` or ``AWS::EKS::Nodegroup``); a test pins that blocker.
docs/deploy-testing.md tabulates what the emulator creates, ignores or rejects; a test
keeps that table true.
"""

from __future__ import annotations

import ast
import base64
import hashlib
import io
import json
import re
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_eks_v2 as eks

import examples.self_managed_node_group as self_managed_example
from app import build_app
from capblock_constructs import (
    NTH_MANAGED_TAG,
    RESERVATION_LABEL,
    RESERVATION_TAG_KEY,
    CapacityBlock,
    CapacityBlockSelfManagedNodeGroup,
)
from capblock_constructs.controller.construct import CONTROLLER_CONFIG_VARIABLE
from examples.environment import (
    EXAMPLE_ACCOUNT,
    EXAMPLE_CLUSTER_NAME,
    EXAMPLE_ENV,
    EXAMPLE_REGION,
    EXAMPLE_RESERVATION_ID,
    example_block,
    example_context,
)
from examples.self_managed_node_group import (
    EXAMPLE_KUBERNETES_VERSION,
    EXAMPLE_SERVICE_CIDR,
)

from .deploy_support import (
    CHECKED_FOR_DELETION,
    Adaptation,
    CdkRun,
    DeployedResource,
    Emulator,
    adapt_for_emulator,
    deployed_template,
    resource_exists,
    resources_of_type,
    run_cdk,
    stack_resources,
    stack_status,
    start_cdk,
    start_emulator,
)
from .support import node_config

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "deploy-testing.md"
PINNED_NOW = "2026-11-26T00:00:00Z"

LAUNCH_TEMPLATE_STACK = "CapblockLaunchTemplate"
SELF_MANAGED_STACK = "CapblockSelfManagedNodeGroup"
MANAGED_STACK = "CapblockManagedNodeGroup"

# The example's own label, and what the update changes it to.
EXAMPLE_LABELS = {"example.com/workload": "training"}
UPDATED_LABELS = {"example.com/workload": "evaluation"}
# How many nodes run when the stack is updated: set by the test as the controller would once
# the block is active. The update must leave them running.
RUNNING_NODES = 2

# The stand-in for AWS's EKS-optimized AMI parameter, which the emulator cannot hold.
AMI_PARAMETER = "/capblock-deploy-test/eks-optimized-ami"
# p5 instances run the x86_64 NVIDIA variant of the EKS-optimized AL2023 AMI.
EXPECTED_AMI_PARAMETER = (
    f"/aws/service/eks/optimized-ami/{EXAMPLE_KUBERNETES_VERSION}"
    "/amazon-linux-2023/x86_64/nvidia/recommended/image_id"
)
# EC2 user guide, "Monitor Capacity Blocks using EventBridge": the newest page and older
# copies spell the block events differently; the instance event is per instance.
CAPACITY_BLOCK_EVENTS = {
    "Capacity Block Delivered",
    "Capacity Block Reservation Delivered",
    "Capacity Block Expiration Warning",
    "Capacity Block Reservation Expiration Warning",
    "EC2 Capacity Reservation Instance Interruption Warning",
}
# What aws-node-termination-handler reads in queue mode (its README): lifecycle actions,
# instance state changes and AWS Health scheduled changes.
HANDLER_EVENT_SOURCES = {"aws.autoscaling", "aws.ec2", "aws.health"}
# moto 5.2.5 creates these from a template but has no way to delete them with the stack.
EMULATOR_DOES_NOT_DELETE = {"AWS::IAM::ManagedPolicy"}


@pytest.fixture(scope="module")
def block() -> CapacityBlock:
    """The example Capacity Block, as the committed reservation cache describes it."""
    return example_block()


# -- the emulator and what exists in it before any deploy -----------------------------------


@pytest.fixture(scope="session")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    """One moto server for the session, stopped through its own process handle."""
    server = start_emulator(tmp_path_factory.mktemp("emulator"))
    try:
        yield server
    finally:
        server.stop()


@dataclass(frozen=True)
class ExistingCluster:
    """The VPC, subnets, cluster security group and EKS cluster the self-managed nodes join."""

    vpc_id: str
    subnets: dict[str, str]  # Availability Zone -> subnet ID
    route_tables: dict[str, str]
    security_group_id: str
    name: str
    endpoint: str
    certificate_authority: str
    ami_id: str

    def import_vpc(self, scope: Stack) -> ec2.IVpc:
        zones = sorted(self.subnets)
        return ec2.Vpc.from_vpc_attributes(
            scope,
            "EmulatorVpc",
            vpc_id=self.vpc_id,
            availability_zones=zones,
            private_subnet_ids=[self.subnets[zone] for zone in zones],
            private_subnet_route_table_ids=[self.route_tables[zone] for zone in zones],
        )

    def import_cluster(self, scope: Stack, vpc: ec2.IVpc) -> eks.ICluster:
        return eks.Cluster.from_cluster_attributes(
            scope,
            "EmulatorCluster",
            cluster_name=self.name,
            cluster_endpoint=self.endpoint,
            cluster_certificate_authority_data=self.certificate_authority,
            cluster_security_group_id=self.security_group_id,
            vpc=vpc,
        )


@pytest.fixture(scope="module")
def existing(emulator: Emulator, block: CapacityBlock) -> ExistingCluster:
    """What the example imports by attribute, created in the emulator first."""
    ec2_client = emulator.client("ec2")
    vpc_id = ec2_client.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    zones = [block.availability_zone, _neighbour_zone(block.availability_zone)]
    subnets: dict[str, str] = {}
    route_tables: dict[str, str] = {}
    for index, zone in enumerate(zones):
        subnet = ec2_client.create_subnet(
            VpcId=vpc_id, CidrBlock=f"10.0.{16 * index}.0/20", AvailabilityZone=zone
        )["Subnet"]
        subnets[zone] = subnet["SubnetId"]
        table = ec2_client.create_route_table(VpcId=vpc_id)["RouteTable"]["RouteTableId"]
        ec2_client.associate_route_table(RouteTableId=table, SubnetId=subnet["SubnetId"])
        route_tables[zone] = table
    security_group = ec2_client.create_security_group(
        GroupName="eks-cluster-sg-ml-training",
        Description="EKS cluster security group",
        VpcId=vpc_id,
    )["GroupId"]
    role = emulator.client("iam").create_role(
        RoleName="eks-cluster-role",
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "eks.amazonaws.com"},
                        "Action": "sts:AssumeRole",
                    }
                ],
            }
        ),
    )["Role"]["Arn"]
    cluster = emulator.client("eks").create_cluster(
        name=EXAMPLE_CLUSTER_NAME,
        version=EXAMPLE_KUBERNETES_VERSION,
        roleArn=role,
        resourcesVpcConfig={
            "subnetIds": list(subnets.values()),
            "securityGroupIds": [security_group],
        },
        kubernetesNetworkConfig={"serviceIpv4Cidr": EXAMPLE_SERVICE_CIDR},
    )["cluster"]
    # An x86_64 image from the emulator's catalogue stands in for the EKS-optimized AMI.
    images = ec2_client.describe_images(
        Owners=["amazon"], Filters=[{"Name": "architecture", "Values": ["x86_64"]}]
    )["Images"]
    ami_id = sorted(image["ImageId"] for image in images)[0]
    emulator.client("ssm").put_parameter(
        Name=AMI_PARAMETER, Value=ami_id, Type="String", DataType="aws:ec2:image"
    )
    return ExistingCluster(
        vpc_id=vpc_id,
        subnets=subnets,
        route_tables=route_tables,
        security_group_id=security_group,
        name=cluster["name"],
        endpoint=cluster["endpoint"],
        certificate_authority=cluster["certificateAuthority"]["data"],
        ami_id=ami_id,
    )


def _neighbour_zone(zone: str) -> str:
    return zone[:-1] + ("b" if zone.endswith("a") else "a")


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the CDK CLI runs: no cdk.json, so it never synthesizes the app itself."""
    return tmp_path_factory.mktemp("cdk")


@pytest.fixture(scope="module")
def bootstrap(emulator: Emulator, workdir: Path) -> Iterator[CdkRun]:
    """`cdk bootstrap`, started at once: it runs while the test synthesizes the app."""
    run = start_cdk(
        emulator, ["bootstrap", f"aws://{EXAMPLE_ACCOUNT}/{EXAMPLE_REGION}"], workdir=workdir
    )
    yield run
    run.stop()


@pytest.fixture(scope="module")
def bootstrap_output(bootstrap: CdkRun) -> str:
    return bootstrap.wait()


# -- synthesis ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Synthesis:
    directory: Path
    templates: dict[str, dict[str, Any]]
    adaptations: list[Adaptation]


def _synthesize(
    outdir: Path,
    existing: ExistingCluster,
    labels: Mapping[str, str] | None = None,
) -> Synthesis:
    """The example app as app.py builds it, its self-managed nodes joining ``existing``.

    The example imports a VPC and cluster by attribute with fictional IDs; the node group's
    ``vpc`` and ``cluster`` are replaced by imports of the emulator's. Nothing else about the
    stacks changes but :func:`adapt_for_emulator`. With ``labels`` (the update), only the
    self-managed stack is built, as app.py builds it, with the node group's labels replaced.
    The CDK's built-in template validation is off: the deploy is the check here, and
    tests/test_example_app.py validates the same stacks.
    """
    real_node_group = CapacityBlockSelfManagedNodeGroup

    def node_group(scope: Stack, id: str, **kwargs: Any) -> Any:
        kwargs["vpc"] = existing.import_vpc(scope)
        kwargs["cluster"] = existing.import_cluster(scope, kwargs["vpc"])
        if labels is not None:
            kwargs["labels"] = dict(labels)
        return real_node_group(scope, id, **kwargs)

    app = App(
        context=example_context(now=PINNED_NOW),
        analytics_reporting=False,
        builtin_cloud_formation_validation=False,
        outdir=str(outdir),
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(self_managed_example, "CapacityBlockSelfManagedNodeGroup", node_group)
        if labels is None:
            build_app(app)
        else:
            self_managed_example.SelfManagedNodeGroupExampleStack(
                app,
                SELF_MANAGED_STACK,
                env=EXAMPLE_ENV,
                capacity_reservation_id=EXAMPLE_RESERVATION_ID,
            )
    adaptations: list[Adaptation] = []
    for child in app.node.children:
        if isinstance(child, Stack):
            adaptations += adapt_for_emulator(child, ami_parameter=AMI_PARAMETER)
    assembly = app.synth()
    return Synthesis(
        directory=Path(assembly.directory),
        templates={stack.stack_name: stack.template for stack in assembly.stacks},
        adaptations=adaptations,
    )


@pytest.fixture(scope="module")
def synthesis(
    tmp_path_factory: pytest.TempPathFactory, bootstrap: CdkRun, existing: ExistingCluster
) -> Synthesis:
    """The example app, synthesized once while `cdk bootstrap` runs."""
    return _synthesize(tmp_path_factory.mktemp("cdk.out"), existing)


# -- read-back ----------------------------------------------------------------------------


def _one(template: Mapping[str, Any], resource_type: str) -> str:
    (logical_id,) = resources_of_type(template, resource_type)
    return logical_id


def _launch_template_versions(emulator: Emulator, template_id: str) -> dict[int, dict[str, Any]]:
    versions = emulator.client("ec2").describe_launch_template_versions(
        LaunchTemplateId=template_id
    )["LaunchTemplateVersions"]
    return {version["VersionNumber"]: version["LaunchTemplateData"] for version in versions}


def _node_config(launch_template_data: Mapping[str, Any]) -> dict[str, Any]:
    """The nodeadm NodeConfig inside a launch template's MIME multi-part user data."""
    return node_config(base64.b64decode(launch_template_data["UserData"]).decode())


def _kubelet_flags(config: Mapping[str, Any]) -> dict[str, str]:
    flags: dict[str, str] = {}
    for flag in config["spec"]["kubelet"]["flags"]:
        name, _, value = flag.partition("=")
        flags[name] = value
    return flags


def _node_labels(launch_template_data: Mapping[str, Any]) -> dict[str, str]:
    rendered = _kubelet_flags(_node_config(launch_template_data))["--node-labels"]
    return dict(item.split("=", 1) for item in rendered.split(","))


@dataclass(frozen=True)
class LaunchTemplateStack:
    status: str
    template: dict[str, Any]
    resources: dict[str, DeployedResource]
    data: dict[str, Any]


def _read_launch_template_stack(emulator: Emulator) -> LaunchTemplateStack:
    template = deployed_template(emulator, LAUNCH_TEMPLATE_STACK)
    resources = stack_resources(emulator, LAUNCH_TEMPLATE_STACK)
    template_id = resources[_one(template, "AWS::EC2::LaunchTemplate")].physical_id
    versions = _launch_template_versions(emulator, template_id)
    return LaunchTemplateStack(
        status=stack_status(emulator, LAUNCH_TEMPLATE_STACK),
        template=template,
        resources=resources,
        data=versions[max(versions)],
    )


@dataclass(frozen=True)
class SelfManagedStack:
    """Everything the deploy created for the self-managed stack, read back at one moment."""

    status: str
    template: dict[str, Any]
    resources: dict[str, DeployedResource]
    launch_template_id: str
    launch_template_versions: dict[int, dict[str, Any]]
    latest_version: int
    group: dict[str, Any]
    instance_profile_arn: str
    queue: dict[str, str]
    rules: dict[str, dict[str, Any]]  # rule name -> description with "Targets"
    function: dict[str, Any]
    function_policy: dict[str, Any]
    role: dict[str, Any]
    role_policies: list[dict[str, Any]]
    log_group: dict[str, Any]
    topic: dict[str, str]
    key_id: str
    key_rotation: bool
    state_parameter: dict[str, Any]

    def physical_id(self, resource_type: str) -> str:
        return self.resources[_one(self.template, resource_type)].physical_id


def _read_self_managed_stack(emulator: Emulator) -> SelfManagedStack:
    template = deployed_template(emulator, SELF_MANAGED_STACK)
    resources = stack_resources(emulator, SELF_MANAGED_STACK)

    def physical(resource_type: str) -> str:
        return resources[_one(template, resource_type)].physical_id

    template_id = physical("AWS::EC2::LaunchTemplate")
    template_ids = emulator.client("ec2").describe_launch_templates(
        LaunchTemplateIds=[template_id]
    )["LaunchTemplates"]
    groups = emulator.client("autoscaling").describe_auto_scaling_groups(
        AutoScalingGroupNames=[physical("AWS::AutoScaling::AutoScalingGroup")]
    )["AutoScalingGroups"]
    assert len(groups) == 1, groups
    iam = emulator.client("iam")
    profile = iam.get_instance_profile(InstanceProfileName=physical("AWS::IAM::InstanceProfile"))
    events = emulator.client("events")
    rules: dict[str, dict[str, Any]] = {}
    for logical_id in resources_of_type(template, "AWS::Events::Rule"):
        name = resources[logical_id].physical_id
        rule = events.describe_rule(Name=name)
        rule["Targets"] = events.list_targets_by_rule(Rule=name)["Targets"]
        rules[name] = rule
    lambda_client = emulator.client("lambda")
    function = lambda_client.get_function(FunctionName=physical("AWS::Lambda::Function"))
    role_name = resources[_controller_role(template)].physical_id
    role_policies = [
        iam.get_role_policy(RoleName=role_name, PolicyName=name)
        for name in iam.list_role_policies(RoleName=role_name)["PolicyNames"]
    ]
    log_groups = emulator.client("logs").describe_log_groups(
        logGroupNamePrefix=physical("AWS::Logs::LogGroup")
    )["logGroups"]
    kms = emulator.client("kms")
    key_id = physical("AWS::KMS::Key")
    parameter = emulator.client("ssm").get_parameter(Name=physical("AWS::SSM::Parameter"))
    return SelfManagedStack(
        status=stack_status(emulator, SELF_MANAGED_STACK),
        template=template,
        resources=resources,
        launch_template_id=template_id,
        launch_template_versions=_launch_template_versions(emulator, template_id),
        latest_version=template_ids[0]["LatestVersionNumber"],
        group=groups[0],
        instance_profile_arn=profile["InstanceProfile"]["Arn"],
        queue=emulator.client("sqs").get_queue_attributes(
            QueueUrl=physical("AWS::SQS::Queue"), AttributeNames=["All"]
        )["Attributes"],
        rules=rules,
        function=function["Configuration"],
        function_policy=json.loads(
            lambda_client.get_policy(FunctionName=physical("AWS::Lambda::Function"))["Policy"]
        ),
        role=iam.get_role(RoleName=role_name)["Role"],
        role_policies=role_policies,
        log_group=log_groups[0],
        topic=emulator.client("sns").get_topic_attributes(TopicArn=physical("AWS::SNS::Topic"))[
            "Attributes"
        ],
        key_id=key_id,
        key_rotation=kms.get_key_rotation_status(KeyId=key_id)["KeyRotationEnabled"],
        state_parameter=parameter["Parameter"],
    )


def _controller_role(template: Mapping[str, Any]) -> str:
    """The role the Lambda function runs as (the stack has two roles)."""
    function = template["Resources"][_one(template, "AWS::Lambda::Function")]
    role: str = function["Properties"]["Role"]["Fn::GetAtt"][0]
    return role


# -- deploy, update, destroy ----------------------------------------------------------------


@dataclass(frozen=True)
class Deployed:
    launch_template_stack: LaunchTemplateStack
    self_managed_stack: SelfManagedStack


@pytest.fixture(scope="module")
def deployed(
    emulator: Emulator, workdir: Path, synthesis: Synthesis, bootstrap_output: str
) -> Deployed:
    """`cdk deploy` of both stacks with the CLI's default method, CloudFormation change sets."""
    run_cdk(
        emulator,
        [
            "deploy",
            LAUNCH_TEMPLATE_STACK,
            SELF_MANAGED_STACK,
            "--app",
            str(synthesis.directory),
            "--require-approval",
            "never",
        ],
        workdir=workdir,
    )
    return Deployed(
        launch_template_stack=_read_launch_template_stack(emulator),
        self_managed_stack=_read_self_managed_stack(emulator),
    )


@dataclass(frozen=True)
class Updated:
    synthesis: Synthesis
    before: dict[str, Any]  # the group as it ran just before the update
    self_managed_stack: SelfManagedStack


@pytest.fixture(scope="module")
def updated(
    emulator: Emulator,
    workdir: Path,
    tmp_path_factory: pytest.TempPathFactory,
    existing: ExistingCluster,
    deployed: Deployed,
) -> Updated:
    """The node label changed and deployed again while the group runs nodes.

    The CLI updates the stack directly (``--method=direct``, UpdateStack) and passes no
    previous parameter values: moto 5.2.5 breaks both of the CLI's defaults on an update
    (docs/deploy-testing.md says how).
    """
    synthesis = _synthesize(tmp_path_factory.mktemp("cdk.out"), existing, UPDATED_LABELS)
    autoscaling = emulator.client("autoscaling")
    name = deployed.self_managed_stack.group["AutoScalingGroupName"]
    # The controller's scale-up once the block is active: the desired size only.
    autoscaling.update_auto_scaling_group(AutoScalingGroupName=name, DesiredCapacity=RUNNING_NODES)
    before = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[name])[
        "AutoScalingGroups"
    ][0]
    run_cdk(
        emulator,
        [
            "deploy",
            SELF_MANAGED_STACK,
            "--app",
            str(synthesis.directory),
            "--require-approval",
            "never",
            "--method=direct",
            "--no-previous-parameters",
        ],
        workdir=workdir,
    )
    return Updated(
        synthesis=synthesis,
        before=before,
        self_managed_stack=_read_self_managed_stack(emulator),
    )


@dataclass(frozen=True)
class Destroyed:
    missing_before: list[str]  # resources not found even before the destroy (expect none)
    instances: list[str]  # the group's instances just before the destroy
    statuses: dict[str, str]
    remaining: dict[str, str]  # logical ID -> resource type, of what still exists
    retained: dict[str, str]  # logical ID -> resource type, of what the template retains
    running_instances: list[str]


@pytest.fixture(scope="module")
def destroyed(
    emulator: Emulator, workdir: Path, synthesis: Synthesis, updated: Updated
) -> Destroyed:
    """`cdk destroy` of both stacks, then every resource they had looked up again."""
    stacks = {
        LAUNCH_TEMPLATE_STACK: (
            stack_resources(emulator, LAUNCH_TEMPLATE_STACK),
            deployed_template(emulator, LAUNCH_TEMPLATE_STACK),
        ),
        SELF_MANAGED_STACK: (
            updated.self_managed_stack.resources,
            updated.self_managed_stack.template,
        ),
    }
    instances = [
        instance["InstanceId"] for instance in updated.self_managed_stack.group["Instances"]
    ]
    # The same lookups before the destroy, so that "gone" below cannot be a lookup that
    # never finds anything.
    missing_before = sorted(
        logical_id
        for resources, _ in stacks.values()
        for logical_id, resource in resources.items()
        if resource_exists(emulator, resource.resource_type, resource.physical_id) is False
    )
    run_cdk(
        emulator,
        [
            "destroy",
            LAUNCH_TEMPLATE_STACK,
            SELF_MANAGED_STACK,
            "--app",
            str(synthesis.directory),
            "--force",
        ],
        workdir=workdir,
    )
    statuses = {
        summary["StackName"]: summary["StackStatus"]
        for summary in emulator.client("cloudformation").list_stacks()["StackSummaries"]
        if summary["StackName"] in stacks
    }
    remaining: dict[str, str] = {}
    retained: dict[str, str] = {}
    for resources, template in stacks.values():
        for logical_id, resource in resources.items():
            if template["Resources"][logical_id].get("DeletionPolicy") == "Retain":
                retained[logical_id] = resource.resource_type
            if resource_exists(emulator, resource.resource_type, resource.physical_id):
                remaining[logical_id] = resource.resource_type
    reservations = emulator.client("ec2").describe_instances(InstanceIds=instances)
    running = [
        instance["InstanceId"]
        for reservation in reservations["Reservations"]
        for instance in reservation["Instances"]
        if instance["State"]["Name"] not in {"shutting-down", "terminated"}
    ]
    return Destroyed(
        missing_before=missing_before,
        instances=instances,
        statuses=statuses,
        remaining=remaining,
        retained=retained,
        running_instances=running,
    )


# -- bootstrap ------------------------------------------------------------------------------


def test_the_cli_bootstraps_the_emulator(
    emulator: Emulator, deployed: Deployed, bootstrap_output: str
) -> None:
    assert stack_status(emulator, "CDKToolkit") == "CREATE_COMPLETE"
    # What `cdk deploy` needs from the bootstrap: the version parameter its templates check
    # (CheckBootstrapVersion wants 6 or later) and the staging bucket its assets go to.
    version = emulator.client("ssm").get_parameter(Name="/cdk-bootstrap/hnb659fds/version")
    assert int(version["Parameter"]["Value"]) >= 6
    bucket = f"cdk-hnb659fds-assets-{EXAMPLE_ACCOUNT}-{EXAMPLE_REGION}"
    emulator.client("s3").head_bucket(Bucket=bucket)


# -- the launch-template stack --------------------------------------------------------------


def test_launch_template_stack_deploys_unchanged(deployed: Deployed, synthesis: Synthesis) -> None:
    stack = deployed.launch_template_stack
    assert stack.status == "CREATE_COMPLETE"
    # The CLI published exactly the synthesized template; nothing was adapted in it.
    assert stack.template == synthesis.templates[LAUNCH_TEMPLATE_STACK]
    assert [a for a in synthesis.adaptations if a.stack == LAUNCH_TEMPLATE_STACK] == []


def test_launch_template_reads_back_as_a_capacity_block_template(
    deployed: Deployed, block: CapacityBlock
) -> None:
    data = deployed.launch_template_stack.data
    assert data["InstanceMarketOptions"]["MarketType"] == "capacity-block"
    target = data["CapacityReservationSpecification"]["CapacityReservationTarget"]
    assert target == {"CapacityReservationId": block.capacity_reservation_id}
    assert data["InstanceType"] == block.instance_type
    # Instances, volumes and interfaces launched from it name the reservation.
    tagged = {
        spec["ResourceType"]
        for spec in data["TagSpecifications"]
        if {"Key": RESERVATION_TAG_KEY, "Value": block.capacity_reservation_id} in spec["Tags"]
    }
    assert {"instance", "volume", "network-interface"} <= tagged


# -- the self-managed stack, with the lifecycle controller ----------------------------------


def test_self_managed_stack_deploys_with_two_emulator_adaptations(
    deployed: Deployed, synthesis: Synthesis
) -> None:
    stack = deployed.self_managed_stack
    assert stack.status == "CREATE_COMPLETE"
    assert stack.template == synthesis.templates[SELF_MANAGED_STACK]
    adapted = {
        (a.resource_type, a.original)
        for a in synthesis.adaptations
        if a.stack == SELF_MANAGED_STACK
    }
    # The AMI parameter the construct names is AWS's, for the cluster's version and the
    # instance type's architecture and accelerator; only the controller's state parameter
    # needed a name.
    assert adapted == {("Parameter", EXPECTED_AMI_PARAMETER), ("AWS::SSM::Parameter", None)}


def test_node_launch_template_targets_the_block(
    deployed: Deployed, existing: ExistingCluster, block: CapacityBlock
) -> None:
    stack = deployed.self_managed_stack
    data = stack.launch_template_versions[stack.latest_version]
    assert data["InstanceMarketOptions"]["MarketType"] == "capacity-block"
    target = data["CapacityReservationSpecification"]["CapacityReservationTarget"]
    assert target == {"CapacityReservationId": block.capacity_reservation_id}
    assert data["InstanceType"] == block.instance_type
    # The AMI resolved at deploy time from the SSM parameter, and the stack's own profile.
    assert data["ImageId"] == existing.ami_id
    assert data["IamInstanceProfile"]["Arn"] == stack.instance_profile_arn
    # Every interface sits in the stack's node and EFA groups and the cluster's group, which
    # lets the nodes reach the control plane.
    groups = {
        stack.resources[logical_id].physical_id
        for logical_id in resources_of_type(stack.template, "AWS::EC2::SecurityGroup")
    }
    assert len(groups) == 2
    interfaces = data["NetworkInterfaces"]
    assert interfaces
    for interface in interfaces:
        assert set(interface["Groups"]) == groups | {existing.security_group_id}, interface


def test_nodes_join_the_existing_cluster(
    deployed: Deployed, existing: ExistingCluster, block: CapacityBlock
) -> None:
    stack = deployed.self_managed_stack
    config = _node_config(stack.launch_template_versions[stack.latest_version])
    assert config["kind"] == "NodeConfig"
    assert config["spec"]["cluster"] == {
        "name": existing.name,
        "apiServerEndpoint": existing.endpoint,
        "certificateAuthority": existing.certificate_authority,
        "cidr": EXAMPLE_SERVICE_CIDR,
    }
    flags = _kubelet_flags(config)
    labels = _node_labels(stack.launch_template_versions[stack.latest_version])
    assert labels == {RESERVATION_LABEL: block.capacity_reservation_id, **EXAMPLE_LABELS}
    # p5 nodes carry NVIDIA GPUs: only pods that tolerate them land there.
    assert flags["--register-with-taints"] == "nvidia.com/gpu:NoSchedule"


def test_auto_scaling_group_waits_at_zero_in_the_block_zone(
    deployed: Deployed, existing: ExistingCluster, block: CapacityBlock
) -> None:
    stack = deployed.self_managed_stack
    group = stack.group
    assert group["AvailabilityZones"] == [block.availability_zone]
    assert group["VPCZoneIdentifier"] == existing.subnets[block.availability_zone]
    # As CloudFormation creates it. On AWS the deploy's controller run then sets MaxSize 0
    # until the block starts; on the emulator the controller never runs.
    assert (group["MinSize"], group["MaxSize"]) == (0, block.instance_count)
    assert group["DesiredCapacity"] == 0
    assert group["Instances"] == []
    # No desired capacity in the template: a later deploy cannot reset a running group.
    properties = stack.template["Resources"][
        _one(stack.template, "AWS::AutoScaling::AutoScalingGroup")
    ]
    assert "DesiredCapacity" not in properties["Properties"]
    assert group["LaunchTemplate"]["LaunchTemplateId"] == stack.launch_template_id
    assert group["LaunchTemplate"]["Version"] == str(stack.latest_version)
    tags = {tag["Key"]: (tag["Value"], tag["PropagateAtLaunch"]) for tag in group["Tags"]}
    assert tags[RESERVATION_TAG_KEY][0] == block.capacity_reservation_id
    assert tags[f"kubernetes.io/cluster/{existing.name}"] == ("owned", True)
    # The termination handler drains only instances with this tag.
    assert tags[NTH_MANAGED_TAG][1] is True


def test_termination_handler_queue_and_rules(deployed: Deployed) -> None:
    stack = deployed.self_managed_stack
    queue_arn = stack.queue["QueueArn"]
    # The handler acts on events within minutes; older ones are stale (its README).
    assert stack.queue["MessageRetentionPeriod"] == "300"
    assert stack.queue["SqsManagedSseEnabled"] == "true"
    to_queue = {
        name: rule
        for name, rule in stack.rules.items()
        if [target["Arn"] for target in rule["Targets"]] == [queue_arn]
    }
    patterns = [json.loads(rule["EventPattern"]) for rule in to_queue.values()]
    assert {source for pattern in patterns for source in pattern["source"]} == (
        HANDLER_EVENT_SOURCES
    )
    (lifecycle,) = [p for p in patterns if p["source"] == ["aws.autoscaling"]]
    assert lifecycle["detail-type"] == ["EC2 Instance-terminate Lifecycle Action"]
    # Only this stack's group: the name CloudFormation generated, resolved at deploy time.
    assert lifecycle["detail"]["AutoScalingGroupName"] == [stack.group["AutoScalingGroupName"]]
    assert all(rule["State"] == "ENABLED" for rule in to_queue.values())


def test_controller_function_sizes_this_stack_group(
    deployed: Deployed, block: CapacityBlock
) -> None:
    stack = deployed.self_managed_stack
    function = stack.function
    assert function["Runtime"] == "python3.14"
    assert function["Handler"] == "runtime.handler.main"
    assert (function["MemorySize"], function["Timeout"]) == (256, 60)
    assert function["Role"] == stack.role["Arn"]
    # moto drops Architectures from a CloudFormation-created function (it reports x86_64
    # whatever the template says), so arm64 is checked in the template the emulator holds.
    properties = stack.template["Resources"][_one(stack.template, "AWS::Lambda::Function")]
    assert properties["Properties"]["Architectures"] == ["arm64"]
    config = json.loads(function["Environment"]["Variables"][CONTROLLER_CONFIG_VARIABLE])
    # Every name in the configuration resolved to the resource the deploy created.
    assert config["topicArn"] == stack.physical_id("AWS::SNS::Topic")
    assert config["stateParameter"] == stack.state_parameter["Name"]
    assert stack.state_parameter["Value"] == "{}"
    assert config["periodSeconds"] == 60
    (group,) = config["groups"]
    assert group["kind"] == "self-managed"
    assert group["autoScalingGroupName"] == stack.group["AutoScalingGroupName"]
    assert group["reservation"] == block.capacity_reservation_id
    assert (group["targetSize"], group["maxSize"]) == (block.instance_count, block.instance_count)
    # 40 minutes: EC2's 30-minute reclaim lead, the controller's 2-minute worst-case
    # lateness and the lifecycle hook's 8-minute heartbeat (README, "The lifecycle controller").
    assert group["drainLeadSeconds"] == 40 * 60


def test_controller_code_is_the_published_asset(
    deployed: Deployed, emulator: Emulator, synthesis: Synthesis
) -> None:
    stack = deployed.self_managed_stack
    code = stack.template["Resources"][_one(stack.template, "AWS::Lambda::Function")]["Properties"][
        "Code"
    ]
    assert code["S3Bucket"] == f"cdk-hnb659fds-assets-{EXAMPLE_ACCOUNT}-{EXAMPLE_REGION}"
    published = emulator.client("s3").get_object(Bucket=code["S3Bucket"], Key=code["S3Key"])
    archive = published["Body"].read()
    digest = base64.b64encode(hashlib.sha256(archive).digest()).decode()
    assert stack.function["CodeSha256"] == digest
    with zipfile.ZipFile(io.BytesIO(archive)) as bundle:
        names = sorted(bundle.namelist())
        handler = bundle.read("runtime/handler.py").decode()
    # Only the run-time package, as Python sources; its handler is where Lambda looks.
    assert names
    assert all(re.fullmatch(r"runtime/[a-z_]+\.py", name) for name in names), names
    tree = ast.parse(handler)
    assert "main" in {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}
    assert (synthesis.directory / f"asset.{code['S3Key'].removesuffix('.zip')}").is_dir()


def test_controller_runs_every_minute_and_on_capacity_block_events(deployed: Deployed) -> None:
    stack = deployed.self_managed_stack
    function_arn = stack.function["FunctionArn"]
    to_function = {
        name: rule
        for name, rule in stack.rules.items()
        if [target["Arn"] for target in rule["Targets"]] == [function_arn]
    }
    (schedule,) = [rule for rule in to_function.values() if rule.get("ScheduleExpression")]
    assert schedule["ScheduleExpression"] == "rate(1 minute)"
    # A missed run is replaced by the next one, never retried late.
    assert schedule["Targets"][0]["RetryPolicy"]["MaximumRetryAttempts"] == 0
    (events,) = [rule for rule in to_function.values() if rule.get("EventPattern")]
    pattern = json.loads(events["EventPattern"])
    assert pattern["source"] == ["aws.ec2"]
    assert set(pattern["detail-type"]) == CAPACITY_BLOCK_EVENTS
    # EventBridge may invoke the function from exactly these two rules.
    allowed = {
        statement["Condition"]["ArnLike"]["AWS:SourceArn"]
        for statement in stack.function_policy["Statement"]
        if statement["Principal"] == {"Service": "events.amazonaws.com"}
        and statement["Action"] == "lambda:InvokeFunction"
    }
    assert allowed == {rule["Arn"] for rule in to_function.values()}


def test_controller_role_reaches_exactly_this_stack(deployed: Deployed) -> None:
    stack = deployed.self_managed_stack
    trust = stack.role["AssumeRolePolicyDocument"]
    assert [s["Principal"] for s in trust["Statement"]] == [{"Service": "lambda.amazonaws.com"}]
    statements = [
        statement
        for policy in stack.role_policies
        for statement in policy["PolicyDocument"]["Statement"]
    ]

    def resources_for(action: str) -> set[str]:
        found: set[str] = set()
        for statement in statements:
            actions = statement["Action"]
            if action in ([actions] if isinstance(actions, str) else actions):
                found |= set(
                    [statement["Resource"]]
                    if isinstance(statement["Resource"], str)
                    else statement["Resource"]
                )
        return found

    assert resources_for("ec2:DescribeCapacityReservations") == {"*"}
    (group_arn,) = resources_for("autoscaling:UpdateAutoScalingGroup")
    assert group_arn.endswith(f":autoScalingGroupName/{stack.group['AutoScalingGroupName']}")
    assert resources_for("sns:Publish") == {stack.topic["TopicArn"]}
    assert resources_for("ssm:PutParameter") == {stack.state_parameter["ARN"]}
    # Its own log group (CloudFormation's Arn of a log group ends in ":*", moto's does not).
    (log_arn,) = resources_for("logs:PutLogEvents")
    assert log_arn in {stack.log_group["arn"], stack.log_group["logGroupArn"]}
    # README: logs are kept for a month.
    assert stack.log_group["retentionInDays"] == 30


def test_topic_is_encrypted_with_a_rotating_key(deployed: Deployed) -> None:
    stack = deployed.self_managed_stack
    key_arn = f"arn:aws:kms:{EXAMPLE_REGION}:{EXAMPLE_ACCOUNT}:key/{stack.key_id}"
    assert stack.topic["KmsMasterKeyId"] == key_arn
    assert stack.key_rotation is True


# -- update -----------------------------------------------------------------------------


def test_label_update_completes_and_leaves_the_running_nodes(
    updated: Updated, block: CapacityBlock
) -> None:
    stack = updated.self_managed_stack
    assert stack.status == "UPDATE_COMPLETE"
    group, before = stack.group, updated.before
    assert group["AutoScalingGroupName"] == before["AutoScalingGroupName"]
    assert before["DesiredCapacity"] == RUNNING_NODES
    assert (group["MinSize"], group["DesiredCapacity"], group["MaxSize"]) == (
        0,
        RUNNING_NODES,
        block.instance_count,
    )
    assert sorted(i["InstanceId"] for i in group["Instances"]) == sorted(
        i["InstanceId"] for i in before["Instances"]
    )


def test_label_update_adds_a_launch_template_version(
    updated: Updated, deployed: Deployed, block: CapacityBlock
) -> None:
    stack = updated.self_managed_stack
    assert stack.launch_template_id == deployed.self_managed_stack.launch_template_id
    versions = stack.launch_template_versions
    assert stack.latest_version == deployed.self_managed_stack.latest_version + 1
    assert _node_labels(versions[stack.latest_version]) == {
        RESERVATION_LABEL: block.capacity_reservation_id,
        **UPDATED_LABELS,
    }
    # The version the running nodes came from is kept as it was.
    assert _node_labels(versions[stack.latest_version - 1]) == {
        RESERVATION_LABEL: block.capacity_reservation_id,
        **EXAMPLE_LABELS,
    }
    assert versions[stack.latest_version]["InstanceMarketOptions"] == {
        "MarketType": "capacity-block"
    }


# -- destroy ------------------------------------------------------------------------------


def test_destroy_removes_everything_the_templates_do_not_retain(destroyed: Destroyed) -> None:
    assert destroyed.missing_before == []
    assert destroyed.statuses == {
        LAUNCH_TEMPLATE_STACK: "DELETE_COMPLETE",
        SELF_MANAGED_STACK: "DELETE_COMPLETE",
    }
    # What outlives the stacks is what their templates mark DeletionPolicy: Retain, and
    # what moto never deletes with a stack.
    emulator_leftovers = {
        logical_id: resource_type
        for logical_id, resource_type in destroyed.remaining.items()
        if resource_type in EMULATOR_DOES_NOT_DELETE
    }
    assert emulator_leftovers  # when moto learns to delete them, drop the exception
    assert destroyed.remaining == {
        **{
            logical_id: resource_type
            for logical_id, resource_type in destroyed.retained.items()
            if resource_type in CHECKED_FOR_DELETION
        },
        **emulator_leftovers,
    }
    # Deleting the group terminated the nodes it ran.
    assert len(destroyed.instances) == RUNNING_NODES
    assert destroyed.running_instances == []


# -- the managed node group ---------------------------------------------------------------


def test_managed_node_group_stack_is_blocked_by_eks_support(
    emulator: Emulator, workdir: Path, bootstrap_output: str, synthesis: Synthesis
) -> None:
    """moto has no CloudFormation model for EKS clusters or node groups: the first GetAtt fails.

    When this test fails because the deploy succeeds, the emulator has learnt EKS: deploy the
    managed stack and read its node group back like the self-managed one.
    """
    output = run_cdk(
        emulator,
        [
            "deploy",
            MANAGED_STACK,
            "--app",
            str(synthesis.directory),
            "--require-approval",
            "never",
        ],
        workdir=workdir,
        check=False,
    )
    template = synthesis.templates[MANAGED_STACK]
    cluster = _one(template, "AWS::EKS::Cluster")
    assert f"Fn::GetAtt references undefined resource {cluster}" in output, output


# -- docs/deploy-testing.md -------------------------------------------------------------------


def _doc_table() -> dict[str, str]:
    """Resource type -> the emulator column of the table in docs/deploy-testing.md."""
    rows: dict[str, str] = {}
    for line in DOC.read_text().splitlines():
        match = re.match(r"^\|\s*`([A-Za-z0-9:]+)`\s*\|[^|]*\|\s*([a-z ,]+?)\s*\|", line)
        if match:
            rows[match.group(1)] = match.group(2)
    return rows


def test_deploy_testing_doc_matches_what_the_emulator_did(
    deployed: Deployed, synthesis: Synthesis
) -> None:
    table = _doc_table()
    observed: dict[str, set[str]] = {}
    adapted = {(a.stack, a.logical_id) for a in synthesis.adaptations}
    for name, stack in (
        (LAUNCH_TEMPLATE_STACK, deployed.launch_template_stack),
        (SELF_MANAGED_STACK, deployed.self_managed_stack),
    ):
        for logical_id, resource in stack.template["Resources"].items():
            if logical_id not in stack.resources:
                verdict = "ignored"
            elif resource["Type"].startswith("Custom::"):
                # Had the controller run, the group would have MaxSize 0: the block lies ahead.
                ran = deployed.self_managed_stack.group["MaxSize"] == 0
                verdict = "created" if ran else "accepted, never run"
            elif (name, logical_id) in adapted:
                verdict = "created after adaptation"
            else:
                verdict = "created"
            observed.setdefault(resource["Type"], set()).add(verdict)
    documented = {resource_type: table.get(resource_type) for resource_type in observed}
    assert documented == {
        resource_type: ", ".join(sorted(verdicts)) for resource_type, verdicts in observed.items()
    }
    managed_only = {
        resource["Type"] for resource in synthesis.templates[MANAGED_STACK]["Resources"].values()
    } - set(observed)
    assert {t: table.get(t) for t in managed_only} == {
        t: "ignored" if t.startswith("AWS::EKS::") else "not deployed" for t in managed_only
    }
