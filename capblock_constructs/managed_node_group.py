"""An EKS managed node group on a Capacity Block, scaled up when the block starts.

How the desired size follows the block
--------------------------------------
EKS creates no scale-up when a Capacity Block starts; it only scales a
``CAPACITY_BLOCK`` node group to zero 40 minutes before the end ("Amazon EKS
Node Group Capacity Scaledown Before Reservation End"). This construct
therefore writes the desired size that fits the block's phase at synth time
(``_time.now``, pinnable with context ``capblock-constructs:now``):

- before the start: ``DesiredSize`` 0, plus a one-time EventBridge Scheduler
  schedule at the start that calls ``eks:UpdateNodegroupConfig`` with the
  target size (no Lambda function);
- within ``schedule_safety_margin`` of the start: the target size at once
  (the Auto Scaling group reports launch errors until the block is active,
  then launches), no schedule, and a warning;
- while the block is active: the target size, no schedule;
- from the scale-down time: 0, so a late deployment never scales a draining
  group back up. For instance blocks that is EKS's own scale-down, 40 minutes
  before the end. UltraServer blocks, whose instances EC2 starts reclaiming
  60 minutes before the end, scale down 70 minutes before it: EKS's action
  at 40 minutes would come after EC2 began terminating, so the construct adds
  a second one-time schedule that sets the desired size to 0 then (and keeps
  the group at 0 from ``schedule_safety_margin`` before that time, when the
  schedule could no longer be created in time);
- at or after the end: an error.

When the scale-up schedule fires, the node group's live desired size differs
from the template's 0 until the next synth and deploy, which writes the target size
(the block is active by then) and drops the schedule. CloudFormation only
calls EKS when the template value changes, so an unchanged template does not
undo the scale-up; a template synthesized before the start and deployed after
it would, so deploy from a fresh synth.

Both schedules hold times computed from the block at synth time. An extended
block keeps its reservation ID but gets a new end, so refresh the cached
lookup and deploy again after buying an extension: until then an UltraServer
block's scale-down schedule still fires 70 minutes before the old end.

The schedules use the API's default ``ActionAfterCompletion`` of ``NONE``:
the CloudFormation resource has no such property (registry schema of
``AWS::Scheduler::Schedule``), and ``DELETE`` would make a schedule vanish
behind CloudFormation's back.

Updates and replacement
-----------------------
Any change to the launch template (user data, AMI, root volume, security
groups, tags) becomes a new template version, and EKS rolls every node to it.
EKS's default update strategy launches the new nodes before it terminates the
old ones, but a Capacity Block has no spare instances, and AWS says: "When
upgrading managed node groups with Capacity Blocks, make sure that the desired
size of the node group is set to 0" (EKS user guide, Capacity Blocks for
managed node groups). Change the template, or the cluster's Kubernetes
version, before the block starts or after it ends, or scale the group to 0
first (``aws eks update-nodegroup-config --scaling-config desiredSize=0``).
``CapacityType``, ``AmiType``, ``Subnets``, ``NodeRole`` and
``NodegroupName`` are create-only (CloudFormation registry schema of
``AWS::EKS::Nodegroup``): changing one replaces the node group, which fails
while ``nodegroup_name`` pins the name. Moving the construct to a later
block in another Availability Zone changes ``Subnets`` and so replaces the
group; a later block in the same zone is a template update, best deployed
while the group is at 0.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol

from aws_cdk import Annotations, Duration, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_eks as eks_v1
from aws_cdk import aws_iam as iam
from aws_cdk import aws_scheduler as scheduler
from constructs import Construct

from . import _time
from ._node_labels import merge_labels, validate_labels_and_taints
from ._node_role import default_node_role
from ._problems import Problems
from ._subnets import check_block_region, select_block_subnets
from .capacity_block import DEFAULT_SCHEDULE_SAFETY_MARGIN, CapacityBlock, require_capacity_block
from .efa import EfaSecurityGroup, efa_network_interfaces
from .errors import CapacityBlockError
from .instance_types import InstanceTypeInfo, instance_type_info
from .launch_template import (
    CapacityBlockLaunchTemplate,
    NetworkInterface,
    RootVolume,
    check_options,
)
from .taints import NodeTaint, accelerator_taints

__all__ = ["CapacityBlockManagedNodeGroup"]


_AMI_TYPES = frozenset(
    {
        "AL2_x86_64",
        "AL2_x86_64_GPU",
        "AL2_ARM_64",
        "CUSTOM",
        "BOTTLEROCKET_ARM_64",
        "BOTTLEROCKET_x86_64",
        "BOTTLEROCKET_ARM_64_FIPS",
        "BOTTLEROCKET_x86_64_FIPS",
        "BOTTLEROCKET_ARM_64_NVIDIA",
        "BOTTLEROCKET_x86_64_NVIDIA",
        "BOTTLEROCKET_ARM_64_NVIDIA_FIPS",
        "BOTTLEROCKET_x86_64_NVIDIA_FIPS",
        "WINDOWS_CORE_2019_x86_64",
        "WINDOWS_FULL_2019_x86_64",
        "WINDOWS_CORE_2022_x86_64",
        "WINDOWS_FULL_2022_x86_64",
        "WINDOWS_CORE_2025_x86_64",
        "WINDOWS_FULL_2025_x86_64",
        "AL2023_x86_64_STANDARD",
        "AL2023_ARM_64_STANDARD",
        "AL2023_x86_64_NEURON",
        "AL2023_x86_64_NVIDIA",
        "AL2023_ARM_64_NVIDIA",
    }
)
_MIME_BOUNDARY = "==CAPBLOCK-CONSTRUCTS-BOUNDARY=="
_SCHEDULER_RETRY_ATTEMPTS = 10
_SCHEDULER_MAX_EVENT_AGE_SECONDS = 3600


class _HasClusterName(Protocol):
    @property
    def cluster_name(self) -> str: ...


class CapacityBlockManagedNodeGroup(Construct):
    """An ``AWS::EKS::Nodegroup`` with ``CapacityType: CAPACITY_BLOCK`` on one Capacity Block.

    It creates a :class:`CapacityBlockLaunchTemplate` (the block's instance
    type, market type and reservation; no instance profile; IMDSv2; an
    encrypted gp3 root volume), the node group pinned to that template's
    version with ``MinSize`` 0 and ``MaxSize`` the block's instance count,
    and, for a block that has not started, a one-time EventBridge Scheduler
    schedule that scales the group up at the start (see the module docstring
    for how the desired size follows the block). EKS scales the group down
    itself 40 minutes before the end; only UltraServer blocks, which EC2
    reclaims 60 minutes before the end, get a scale-down schedule of their own
    70 minutes before it. Changing the launch template rolls the nodes, which
    AWS asks to do at desired size 0 (see "Updates and replacement" in the
    module docstring).

    Nodes get the labels :data:`RESERVATION_LABEL` and
    :data:`BLOCK_END_LABEL`, and a ``NoSchedule`` taint for the accelerator
    (``nvidia.com/gpu`` or ``aws.amazon.com/neuron``) that keeps pods without
    the toleration off. Invalid input raises :class:`CapacityBlockError`
    listing every problem.

    :param cluster: The EKS cluster: an ``aws_eks_v2`` or ``aws_eks`` cluster,
        or either module's ``Cluster.from_cluster_attributes``; anything with
        a ``cluster_name``. Its ``cluster_security_group_id`` is read when
        there is one.
    :param capacity_block: The block the nodes run on.
    :param vpc: The VPC of the cluster.
    :param vpc_subnets: Which subnets to consider. Defaults to the VPC's
        private subnets, as ``eks.Nodegroup`` does; only subnets in the
        block's Availability Zone are used, and a subnet listed explicitly in
        another zone is an error.
    :param nodegroup_name: The node group's name. Defaults to one
        CloudFormation generates.
    :param node_role: The node IAM role. Defaults to a new role with
        AmazonEKSWorkerNodePolicy, AmazonEKS_CNI_Policy,
        AmazonEC2ContainerRegistryPullOnly and AmazonSSMManagedInstanceCore.
    :param ami_type: The EKS AMI type. Defaults to the AL2023 accelerated
        type for the block's instance type (NVIDIA x86, NVIDIA ARM for
        Grace-based types, Neuron for Trainium); required for instance types
        the library does not know. Not allowed with ``image_id`` (AWS: do not
        specify an AMI type when the launch template has a custom AMI), except
        ``CUSTOM``, which is then left out as AWS asks.
    :param image_id: A custom AMI for the launch template. Defaults to the
        EKS-optimized AMI of the AMI type. With a custom AMI, EKS does not
        merge user data: the user data must bootstrap the node itself.
    :param user_data: User data. For EKS AMIs (no ``image_id``) it must be
        MIME multi-part so EKS can merge its own part; a plain script or
        nodeadm ``NodeConfig`` is wrapped in MIME multi-part here. With
        ``image_id`` it is passed as is. Defaults to none.
    :param root_volume: The root volume. Defaults to an encrypted 200 GiB
        gp3 volume.
    :param http_put_response_hop_limit: IMDSv2 hop limit. Defaults to 1:
        only the host and host-network pods (VPC CNI, device plugins) reach
        instance metadata; other pods should use EKS Pod Identity or IRSA.
    :param efa: Attach one EFA interface per network card and an
        :class:`EfaSecurityGroup`. Defaults to no EFA. No placement group is
        created: a Capacity Block is already co-located.
    :param security_groups: Extra security groups for the nodes. Defaults to
        none. With these or with EFA the launch template names security
        groups, so EKS no longer adds the cluster security group itself; it
        is then added here, which needs the cluster's
        ``cluster_security_group_id`` or ``cluster_security_group_id=``.
    :param cluster_security_group_id: The cluster security group, for
        clusters imported without one. Defaults to the cluster's.
    :param labels: Extra Kubernetes labels for the nodes.
    :param taints: The node taints. Defaults to ``NoSchedule`` on
        ``nvidia.com/gpu`` (NVIDIA) or ``aws.amazon.com/neuron`` (Neuron);
        pass ``[]`` for none.
    :param max_size: The largest group size. Defaults to the block's
        instance count, which it may not exceed.
    :param desired_size: How many nodes to run while the block is active.
        Defaults to ``max_size``.
    :param schedule_safety_margin: A schedule is only created for a time more
        than this long after synth, so it is never in the past when the stack
        deploys; closer to the start, the group is sized as if the block were
        active, and closer to an UltraServer block's scale-down time, it is
        kept at 0. Defaults to 15 minutes.
    :param instance_types: Not supported: the instance type is the block's,
        set in the launch template, and EKS fails a node group that also
        names instance types. Any value is an error.
    :param capacity_reservation_resource_group_arn: Launch into this
        resource group instead of targeting the reservation ID, as UltraServer
        blocks can. Defaults to the reservation ID. Only for UltraServer
        blocks: EC2 does not let instance blocks be used through resource
        groups.
    :param tags: Tags for the node group and the launch template's instances.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        cluster: _HasClusterName,
        capacity_block: CapacityBlock,
        vpc: ec2.IVpc,
        vpc_subnets: ec2.SubnetSelection | None = None,
        nodegroup_name: str | None = None,
        node_role: iam.IRole | None = None,
        ami_type: str | None = None,
        image_id: str | None = None,
        user_data: str | ec2.UserData | None = None,
        root_volume: RootVolume | None = None,
        http_put_response_hop_limit: int = 1,
        efa: bool = False,
        security_groups: Sequence[ec2.ISecurityGroup] | None = None,
        cluster_security_group_id: str | None = None,
        labels: Mapping[str, str] | None = None,
        taints: Sequence[NodeTaint] | None = None,
        max_size: int | None = None,
        desired_size: int | None = None,
        schedule_safety_margin: Duration | timedelta | None = None,
        instance_types: Sequence[str] | None = None,
        capacity_reservation_resource_group_arn: str | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(scope, id)
        require_capacity_block(capacity_block, path=self.node.path)
        block = capacity_block
        problems = Problems(self.node.path)
        margin = _margin(schedule_safety_margin, problems)
        check_block_region(self, block, problems)
        if not isinstance(getattr(cluster, "cluster_name", None), str):
            problems.add(
                f"cluster {cluster!r} has no cluster_name; pass an EKS cluster, or import one "
                "with Cluster.from_cluster_attributes(self, 'Cluster', cluster_name='<name>')."
            )
        for group in security_groups or ():
            if not hasattr(group, "security_group_id"):
                problems.add(
                    f"security_groups holds {group!r}, not a security group; wrap IDs with "
                    "ec2.SecurityGroup.from_security_group_id(self, 'Sg', 'sg-...')."
                )

        if instance_types is not None:
            problems.add(
                f"instance_types {list(instance_types)!r} cannot be set: the instance type is "
                f"the Capacity Block's ({block.instance_type}), set in the launch template, and "
                "EKS fails a node group that names instance types as well; remove "
                "instance_types."
            )

        if capacity_reservation_resource_group_arn is not None and not block.is_ultraserver:
            problems.add(
                f"capacity_reservation_resource_group_arn "
                f"{capacity_reservation_resource_group_arn!r} is set, but Capacity Block "
                f"{block.capacity_reservation_id} is an instance block, which EC2 does not "
                "let you use through a resource group; remove "
                "capacity_reservation_resource_group_arn."
            )

        subnets = select_block_subnets(
            vpc=vpc, vpc_subnets=vpc_subnets, capacity_block=block, problems=problems
        )

        resolved_ami_type = _check_ami_type(problems, block, ami_type, image_id)
        size_max, size_target = _check_sizes(problems, block, max_size, desired_size)
        chosen_taints = (
            accelerator_taints(block.instance_type, ami_type=ami_type)
            if taints is None
            else list(taints)
        )
        all_labels = merge_labels(block, labels, problems)
        validate_labels_and_taints(all_labels, chosen_taints, problems)

        interfaces: list[NetworkInterface] | None = None
        if efa:
            try:
                interfaces = efa_network_interfaces(block.instance_type)
            except CapacityBlockError as error:
                problems.add(f"efa=True: {'; '.join(error.problems)}")

        cluster_sg = cluster_security_group_id or _cluster_security_group_id(cluster)
        if (efa or security_groups) and cluster_sg is None:
            problems.add(
                "the launch template names security groups (efa=True or security_groups), so "
                "EKS will not add the cluster security group and the nodes could not reach the "
                "control plane; the cluster has no known cluster_security_group_id, so pass "
                "cluster_security_group_id='sg-...' (aws eks describe-cluster --query "
                "cluster.resourcesVpcConfig.clusterSecurityGroupId) or import the cluster with it."
            )

        # The launch template checks its own inputs when it is built, after this
        # point; checking them now as well puts its problems in the same error.
        check_options(
            problems,
            user_data=user_data,
            image_id=image_id,
            network_interfaces=interfaces,
            root_volume=root_volume or RootVolume(),
            hop_limit=http_put_response_hop_limit,
        )

        margin_seconds = margin.total_seconds()

        now = _time.now(self)
        # 40 minutes before the end (EKS's own action) for instance blocks; 70 for
        # UltraServer blocks, which EC2 starts reclaiming 60 minutes before the end.
        scale_down_at = min(block.eks_managed_scale_down, block.end - block.default_drain_lead)
        # EKS's action comes too late for UltraServer blocks, so they get one of ours.
        own_scale_down = scale_down_at < block.eks_managed_scale_down
        if now >= block.end:
            problems.add(
                f"Capacity Block {block.capacity_reservation_id} ended at "
                f"{_time.format_utc(block.end)} (now {_time.format_utc(now)}); its instances "
                "are gone. Use a current reservation."
            )
        problems.raise_if_any()

        schedule_up_at: datetime | None = None
        schedule_down_at: datetime | None = None
        if now >= scale_down_at:
            desired = 0
            self._warn(
                "pastScaleDown",
                f"Capacity Block {block.capacity_reservation_id} is past the scale-down time "
                f"{_time.format_utc(scale_down_at)} (now {_time.format_utc(now)}); the node "
                "group is kept at 0 nodes because EC2 is about to reclaim the instances.",
            )
        elif own_scale_down and (scale_down_at - now).total_seconds() <= margin_seconds:
            desired = 0
            self._warn(
                "scaleDownWithinMargin",
                f"Capacity Block {block.capacity_reservation_id} is an UltraServer block whose "
                f"scale-down time {_time.format_utc(scale_down_at)} is within "
                f"schedule_safety_margin of now ({_time.format_utc(now)}); a scale-down "
                "schedule might not be in place by then, so the node group is kept at 0 nodes.",
            )
        elif now >= block.start:
            desired = size_target
        elif (block.start - now).total_seconds() <= margin_seconds:
            desired = size_target
            self._warn(
                "startsWithinMargin",
                f"Capacity Block {block.capacity_reservation_id} starts at "
                f"{_time.format_utc(block.start)}, within schedule_safety_margin of now "
                f"({_time.format_utc(now)}); no scale-up schedule is created and the node group "
                f"asks for {desired} nodes at once. The Auto Scaling group reports launch "
                "errors until the block is active, then launches them.",
            )
        else:
            desired = 0
            # A target of zero needs no scale-up.
            schedule_up_at = block.start if size_target > 0 else None
        if own_scale_down and (desired > 0 or schedule_up_at is not None):
            # Only reached while the scale-down time is more than the margin away.
            schedule_down_at = scale_down_at

        if block.is_ultraserver:
            self._warn(
                "ultraServerScaleDown",
                f"Capacity Block {block.capacity_reservation_id} is an UltraServer block "
                f"({block.ultraserver_type}): EC2 starts reclaiming its instances at "
                f"{_time.format_utc(block.reclaim_start)} (60 minutes before the end), before "
                "EKS's own scale-down at "
                f"{_time.format_utc(block.eks_managed_scale_down)} (40 minutes). This node "
                "group therefore also scales itself to 0 at "
                f"{_time.format_utc(scale_down_at)} (ScaleDownSchedule). After extending the "
                "block, refresh it (capblock lookup <id> --refresh) and deploy again, or that "
                "schedule drains the nodes before the old end.",
            )
        if image_id is not None and user_data is None:
            self._warn(
                "customAmiWithoutUserData",
                f"image_id {image_id!r} is set without user_data: EKS does not bootstrap custom "
                "AMIs, so the nodes only join if the AMI bootstraps itself. Pass user_data with "
                "a nodeadm NodeConfig (apiVersion node.eks.aws/v1alpha1), or use an AMI that "
                "joins the cluster on its own.",
            )

        self.capacity_block = block
        # The desired size written for the block's phase at synth time, the
        # largest size, and how many nodes run while the block is active.
        self.desired_size = desired
        self.max_size = size_max
        self.target_size = size_target

        self.node_role: iam.IRole = node_role or default_node_role(
            self, description="EKS managed node group on a Capacity Block"
        )
        if isinstance(cluster, eks_v1.Cluster) and (
            cluster.authentication_mode != eks_v1.AuthenticationMode.API
        ):
            # The CDK owns aws-auth for its v1 clusters and would overwrite the
            # entry EKS adds for the node role, as eks.Nodegroup also handles.
            cluster.aws_auth.add_role_mapping(
                self.node_role,
                username="system:node:{{EC2PrivateDNSName}}",
                groups=["system:bootstrappers", "system:nodes"],
            )

        self.efa_security_group: EfaSecurityGroup | None = None
        group_ids: list[str] | None = None
        if efa or security_groups:
            group_ids = [cluster_sg] if cluster_sg else []
            if efa:
                self.efa_security_group = EfaSecurityGroup(self, "EfaSecurityGroup", vpc=vpc)
                group_ids.append(self.efa_security_group.security_group_id)
            group_ids.extend(group.security_group_id for group in security_groups or ())

        self.launch_template = CapacityBlockLaunchTemplate(
            self,
            "LaunchTemplate",
            capacity_block=block,
            image_id=image_id,
            user_data=_render_user_data(user_data, custom_ami=image_id is not None),
            security_group_ids=group_ids,
            network_interfaces=interfaces,
            root_volume=root_volume,
            http_put_response_hop_limit=http_put_response_hop_limit,
            capacity_reservation_resource_group_arn=capacity_reservation_resource_group_arn,
            tags=tags,
        )

        self.resource = eks_v1.CfnNodegroup(
            self,
            "Resource",
            cluster_name=cluster.cluster_name,
            nodegroup_name=nodegroup_name,
            node_role=self.node_role.role_arn,
            subnets=[subnet.subnet_id for subnet in subnets],
            capacity_type="CAPACITY_BLOCK",
            ami_type=resolved_ami_type,
            launch_template=eks_v1.CfnNodegroup.LaunchTemplateSpecificationProperty(
                id=self.launch_template.launch_template_id,
                version=self.launch_template.version_number,
            ),
            scaling_config=eks_v1.CfnNodegroup.ScalingConfigProperty(
                min_size=0, max_size=size_max, desired_size=desired
            ),
            labels=all_labels,
            taints=[
                eks_v1.CfnNodegroup.TaintProperty(key=t.key, value=t.value, effect=t.eks_effect)
                for t in chosen_taints
            ]
            or None,
            tags=dict(tags) if tags else None,
        )

        # The role both schedules use (its ID predates the scale-down schedule).
        self.scale_up_role: iam.Role | None = None
        self.scale_up_schedule: scheduler.CfnSchedule | None = None
        self.scale_down_schedule: scheduler.CfnSchedule | None = None
        if schedule_up_at is not None:
            self.scale_up_schedule = self._add_schedule(
                cluster,
                "ScaleUpSchedule",
                at=schedule_up_at,
                desired_size=self.target_size,
                description=(
                    f"Scale the node group on Capacity Block {block.capacity_reservation_id} "
                    f"to {self.target_size} at its start"
                ),
            )
        if schedule_down_at is not None:
            self.scale_down_schedule = self._add_schedule(
                cluster,
                "ScaleDownSchedule",
                at=schedule_down_at,
                desired_size=0,
                description=(
                    f"Scale the node group on UltraServer Capacity Block "
                    f"{block.capacity_reservation_id} to 0 before EC2 reclaims its instances"
                ),
            )

    # -- public attributes ---------------------------------------------------------

    @property
    def nodegroup_name(self) -> str:
        """The node group's name, a deploy-time token."""
        return self.resource.attr_nodegroup_name

    @property
    def nodegroup_arn(self) -> str:
        """The node group's ARN, a deploy-time token."""
        return self.resource.attr_arn

    # -- helpers ------------------------------------------------------------------

    def _warn(self, key: str, message: str) -> None:
        Annotations.of(self).add_warning_v2(f"capblock-constructs:{key}", message)

    def _schedule_role(self, cluster: _HasClusterName) -> iam.Role:
        if self.scale_up_role is not None:
            return self.scale_up_role
        stack = Stack.of(self)
        # eks:UpdateNodegroupConfig authorizes on the nodegroup resource type
        # (arn:...:nodegroup/<cluster>/<name>/<uuid>, the Arn attribute), per the
        # Service Authorization Reference for Amazon EKS; no wildcard is needed.
        self.scale_up_role = iam.Role(
            self,
            "ScaleUpRole",
            assumed_by=iam.ServicePrincipal(
                "scheduler.amazonaws.com",
                conditions={"StringEquals": {"aws:SourceAccount": stack.account}},
            ),
            description="Lets EventBridge Scheduler resize one Capacity Block node group",
            inline_policies={
                "UpdateThisNodegroup": iam.PolicyDocument(
                    statements=[
                        iam.PolicyStatement(
                            actions=["eks:UpdateNodegroupConfig"],
                            resources=[self.nodegroup_arn],
                        )
                    ]
                )
            },
        )
        return self.scale_up_role

    def _add_schedule(
        self,
        cluster: _HasClusterName,
        id: str,
        *,
        at: datetime,
        desired_size: int,
        description: str,
    ) -> scheduler.CfnSchedule:
        stack = Stack.of(self)
        role = self._schedule_role(cluster)
        # Universal target: arn:aws:scheduler:::aws-sdk:<service>:<apiAction>, where
        # <service> is the AWS SDK service identifier ("eks", botocore's service id
        # "EKS" in lower case) and <apiAction> the operation in camelCase
        # (EventBridge Scheduler user guide, "Using universal targets"). Input takes
        # the operation's request members in PascalCase (ClusterName, not the REST
        # body's clusterName), as in the CDK's own universal-target example
        # ({"DbClusterIdentifier": ...} for rds:stopDBCluster) and as users report
        # from CreateSchedule, which rejected camelCase input for this very call with
        # a ValidationException naming the missing ClusterName.
        payload: dict[str, Any] = {
            "ClusterName": cluster.cluster_name,
            "NodegroupName": self.nodegroup_name,
            "ScalingConfig": {
                "MinSize": 0,
                "MaxSize": self.max_size,
                "DesiredSize": desired_size,
            },
        }
        return scheduler.CfnSchedule(
            self,
            id,
            description=description,
            schedule_expression=_at_expression(at),
            schedule_expression_timezone="UTC",
            flexible_time_window=scheduler.CfnSchedule.FlexibleTimeWindowProperty(mode="OFF"),
            state="ENABLED",
            target=scheduler.CfnSchedule.TargetProperty(
                arn=f"arn:{stack.partition}:scheduler:::aws-sdk:eks:updateNodegroupConfig",
                role_arn=role.role_arn,
                input=stack.to_json_string(payload),
                retry_policy=scheduler.CfnSchedule.RetryPolicyProperty(
                    maximum_event_age_in_seconds=_SCHEDULER_MAX_EVENT_AGE_SECONDS,
                    maximum_retry_attempts=_SCHEDULER_RETRY_ATTEMPTS,
                ),
            ),
        )


def _margin(value: Duration | timedelta | None, problems: Problems) -> timedelta:
    """The schedule safety margin as a timedelta; 15 minutes when not given."""
    if value is None:
        return DEFAULT_SCHEDULE_SAFETY_MARGIN
    margin = _time.as_timedelta(value)
    if margin is not None and margin >= timedelta(0):
        return margin
    problems.add(
        f"schedule_safety_margin {value!r} is not a duration of zero or more; pass "
        "Duration.minutes(15) or timedelta(minutes=15)."
    )
    return DEFAULT_SCHEDULE_SAFETY_MARGIN


def _cluster_security_group_id(cluster: _HasClusterName) -> str | None:
    try:
        value = getattr(cluster, "cluster_security_group_id", None)
    except RuntimeError:
        # Imported clusters raise when asked for an attribute they were not given.
        return None
    return value if isinstance(value, str) else None


def _check_ami_type(
    problems: Problems, block: CapacityBlock, ami_type: str | None, image_id: str | None
) -> str | None:
    """The AmiType to write (``None`` leaves it out), adding problems for bad combinations."""
    if ami_type is not None and ami_type not in _AMI_TYPES:
        problems.add(
            f"ami_type {ami_type!r} is not an EKS AMI type; use one of "
            "AL2023_x86_64_NVIDIA, AL2023_ARM_64_NVIDIA, AL2023_x86_64_NEURON (or another "
            "EKS AmiType)."
        )
        return None
    if image_id is not None:
        if ami_type not in (None, "CUSTOM"):
            problems.add(
                f"ami_type {ami_type!r} conflicts with the custom AMI image_id {image_id!r}: "
                "EKS uses the launch template's AMI and AWS says not to name an AMI type with "
                "it; remove ami_type or image_id."
            )
        return None
    if ami_type == "CUSTOM":
        problems.add(
            "ami_type 'CUSTOM' needs a custom AMI in the launch template; pass image_id "
            "or choose an EKS AMI type such as AL2023_x86_64_NVIDIA."
        )
        return None
    info = instance_type_info(block.instance_type)
    if ami_type is not None:
        if info is not None:
            _check_ami_type_fits(problems, info, ami_type)
        return ami_type
    if info is None:
        problems.add(
            f"instance type {block.instance_type!r} is not in the capblock-constructs "
            "instance-type table, so its EKS AMI type is unknown; pass ami_type (for example "
            "AL2023_x86_64_NVIDIA) or image_id."
        )
        return None
    return info.eks_ami_type


def _check_ami_type_fits(problems: Problems, info: InstanceTypeInfo, ami_type: str) -> None:
    """Add a problem when the AMI type cannot run on the instance type at all."""
    ami_architecture = "arm64" if "ARM_64" in ami_type else "x86_64"
    if ami_architecture != info.architecture:
        problems.add(
            f"ami_type {ami_type!r} is built for {ami_architecture}, but "
            f"{info.instance_type} has {info.architecture} CPUs, so its instances could "
            f"not boot it; use {info.eks_ami_type}."
        )
        return
    wrong_accelerator = ("NEURON" if info.accelerator == "nvidia" else "NVIDIA") in ami_type
    if wrong_accelerator:
        problems.add(
            f"ami_type {ami_type!r} carries the drivers of another accelerator than "
            f"{info.instance_type}'s ({info.accelerator}); use {info.eks_ami_type}."
        )


def _check_sizes(
    problems: Problems, block: CapacityBlock, max_size: int | None, desired_size: int | None
) -> tuple[int, int]:
    count = block.instance_count
    size_max = count if max_size is None else max_size
    if isinstance(size_max, bool) or not isinstance(size_max, int) or not 1 <= size_max <= count:
        problems.add(
            f"max_size {max_size!r} must be between 1 and the block's instance count "
            f"({count}); a node group cannot use more instances than Capacity Block "
            f"{block.capacity_reservation_id} reserves."
        )
        size_max = count
    target = size_max if desired_size is None else desired_size
    if isinstance(target, bool) or not isinstance(target, int) or not 0 <= target <= size_max:
        problems.add(
            f"desired_size {desired_size!r} must be between 0 and max_size ({size_max}), "
            f"and no more than the block's instance count ({count})."
        )
        target = size_max
    return size_max, target


def _render_user_data(user_data: str | ec2.UserData | None, *, custom_ami: bool) -> str | None:
    """User data as the launch template should carry it.

    EKS merges its bootstrap into AL2023 user data only if that is MIME
    multi-part, so anything else is wrapped; custom AMIs get it unchanged.
    """
    if user_data is None:
        return None
    text = user_data.render() if isinstance(user_data, ec2.UserData) else user_data
    if custom_ami or _is_mime_multipart(text):
        return text
    return (
        "MIME-Version: 1.0\n"
        f'Content-Type: multipart/mixed; boundary="{_MIME_BOUNDARY}"\n'
        "\n"
        f"--{_MIME_BOUNDARY}\n"
        f"Content-Type: {_content_type(text)}\n"
        "\n"
        f"{text.rstrip()}\n"
        "\n"
        f"--{_MIME_BOUNDARY}--\n"
    )


def _is_mime_multipart(text: str) -> bool:
    head = text.lstrip().split("\n\n", 1)[0].lower()
    return head.startswith("mime-version:") and "content-type: multipart/" in head


def _content_type(text: str) -> str:
    stripped = text.lstrip()
    if "apiVersion: node.eks.aws/" in stripped:
        return "application/node.eks.aws"
    if stripped.startswith("#cloud-config"):
        return 'text/cloud-config; charset="us-ascii"'
    return 'text/x-shellscript; charset="us-ascii"'


def _at_expression(moment: datetime) -> str:
    """An EventBridge Scheduler one-time expression, ``at(yyyy-mm-ddThh:mm:ss)``, in UTC."""
    return f"at({_time.format_utc(moment)[:-1]})"
