"""Self-managed EKS nodes on a Capacity Block: Auto Scaling group, schedule, drain and bootstrap."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from aws_cdk import (
    Annotations,
    CfnAutoScalingScheduledAction,
    CfnUpdatePolicy,
    Duration,
    Fn,
    Stack,
)
from aws_cdk import aws_autoscaling as autoscaling
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_eks as eks
from aws_cdk import aws_eks_v2 as eks_v2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from ._cluster_info import ClusterInfo, is_cluster_built_in_app, resolve_cluster_info
from ._nag import acknowledge
from ._node_labels import merge_labels, validate_labels_and_taints
from ._node_role import default_node_role
from ._node_user_data import al2023_user_data, bottlerocket_user_data
from ._problems import Problems
from ._subnets import check_block_region, select_block_subnets
from ._time import as_timedelta, format_utc, now
from .ami import EksOptimizedAmi, resolve_image_id
from .capacity_block import (
    DEFAULT_SCHEDULE_SAFETY_MARGIN,
    MAX_HEARTBEAT,
    MIN_HEARTBEAT,
    SCHEDULED_ACTION_MAX_DELAY,
    CapacityBlock,
    require_capacity_block,
)
from .efa import EfaSecurityGroup, efa_network_interfaces
from .errors import CapacityBlockError
from .launch_template import (
    RESERVATION_TAG_KEY,
    CapacityBlockLaunchTemplate,
    NetworkInterface,
    RootVolume,
)
from .taints import NodeTaint, accelerator_taints
from .termination import NTH_CHART_VERSION, NTH_MANAGED_TAG, NodeTerminationHandlerQueue

__all__ = [
    "SCHEDULED_ACTION_MAX_DELAY",
    "CapacityBlockSelfManagedNodeGroup",
    "SchedulePlan",
    "plan_schedule",
]


def _as_timedelta(
    value: Duration | timedelta,
    *,
    name: str,
    problems: Problems,
    fallback: timedelta = timedelta(0),
) -> timedelta:
    converted = as_timedelta(value)
    if converted is not None:
        return converted
    problems.add(f"{name} {value!r} is not a duration; pass Duration.minutes(...) or a timedelta.")
    # The fallback keeps checks that depend on this value from adding confusing problems.
    return fallback


def _minutes(span: timedelta) -> str:
    minutes, seconds = divmod(int(span.total_seconds()), 60)
    if not minutes:
        return f"{seconds} s"
    return f"{minutes} min {seconds} s" if seconds else f"{minutes} min"


@dataclass(frozen=True, kw_only=True)
class SchedulePlan:
    """Which scheduled actions a synthesis at ``now`` can safely create, and the initial size."""

    scale_up_at: datetime | None
    """When the group scales up, or ``None`` when that time is past or too close."""
    scale_down_at: datetime | None
    """When the group scales to zero, or ``None`` when that time is past or too close."""
    desired_capacity: int
    """The group's ``DesiredCapacity``: the size for the phase it will be in after the deploy."""

    @property
    def drained(self) -> bool:
        """Whether the deploy itself must drain the group: the scale-down time is past or too close.

        The group's ``MaxSize`` is then 0 as well, like the scale-down action's.
        """
        return self.scale_down_at is None


def plan_schedule(
    block: CapacityBlock,
    *,
    now: datetime,
    drain_lead: timedelta,
    safety_margin: timedelta,
    active_size: int,
) -> SchedulePlan:
    """Decide the scheduled actions and the initial desired capacity.

    An action is kept only when its time is more than ``safety_margin`` after
    ``now``: CloudFormation deploys take a while and EC2 Auto Scaling
    rejects start times in the past. Without a scale-up action the group is
    sized for the block being active, unless the scale-down is also gone, in
    which case it stays (or goes) to zero (and :attr:`SchedulePlan.drained`
    sets ``MaxSize`` to zero too): a late deploy must not scale a draining
    group back up.
    """
    earliest = now + safety_margin
    scale_down = block.end - drain_lead
    up = block.start if block.start > earliest else None
    down = scale_down if scale_down > earliest else None
    desired = 0 if up is not None or down is None else active_size
    return SchedulePlan(scale_up_at=up, scale_down_at=down, desired_capacity=desired)


class CapacityBlockSelfManagedNodeGroup(Construct):
    """Self-managed EKS nodes that run on one Capacity Block for exactly its usable window.

    The Auto Scaling group has ``MinSize`` 0 and ``MaxSize`` the block's
    instance count, lives only in the block's Availability Zone and launches
    from a :class:`CapacityBlockLaunchTemplate` pinned to its latest version.
    Two one-time scheduled actions size it: up to the count at the block's
    start, and down to zero ``drain_lead`` before the end. A termination
    lifecycle hook holds each instance while aws-node-termination-handler
    (queue-processor mode; its SQS queue, EventBridge rules and IAM policy
    are created here, or shared through ``termination_handler``, as
    :attr:`termination_handler`) drains the node, so
    pods leave before EC2 starts reclaiming the instances (30 minutes before
    the end, 60 for UltraServer blocks).

    The timing holds even without the handler: the hook's ``DefaultResult``
    is ``CONTINUE``, so an instance nobody completes terminates when the
    heartbeat expires. The scale-down may run up to two minutes late
    (:data:`SCHEDULED_ACTION_MAX_DELAY`), so the drain lead must cover the
    reclaim lead, that delay and the whole heartbeat; the default heartbeat
    is what is left (8 minutes with the default 40-minute drain lead).

    Synthesis compares the schedule with now (context
    ``capblock-constructs:now`` pins it). A scheduled action whose time is
    past or closer than ``schedule_safety_margin`` is left out with a
    warning, because CloudFormation rejects a start time in the past, and
    the group's ``DesiredCapacity`` is set for the phase it will be in: zero
    before the start, the count while active, and zero from the scale-down
    on, so a late deploy never scales a draining group back up. Stack updates
    keep sizes changed by the scheduled actions
    (``IgnoreUnmodifiedGroupSizeProperties``); because that setting applies
    only sizes that changed in the template, a deploy that drains the group
    also sets ``MaxSize`` to 0 (as the scale-down action does), which is
    always a change and forces the group to zero even when the previous
    template's ``DesiredCapacity`` was already 0 but the scale-up had run.

    Nodes join with an Amazon Linux 2023 nodeadm ``NodeConfig`` (or
    Bottlerocket settings) carrying the cluster's name, endpoint,
    certificate authority and service CIDR, plus the labels and taints.

    :param cluster: The EKS cluster: an ``aws_eks_v2.Cluster`` or
        ``aws_eks.Cluster`` of this app, or either module's
        ``Cluster.from_cluster_attributes``. An imported cluster that lacks
        its endpoint, certificate authority or security group is described
        at synth time with ``eks:DescribeCluster`` and cached in
        ``cdk.context.json`` (fill it with ``capblock lookup-cluster``).
    :param capacity_block: The block the nodes run on.
    :param vpc: The cluster's VPC.
    :param vpc_subnets: Which subnets to consider. Defaults to the VPC's
        default selection; either way only subnets in the block's
        Availability Zone are used.
    :param drain_lead: How long before the block's end the group scales to
        zero. Defaults to ``capacity_block.default_drain_lead`` (40 minutes,
        70 for UltraServer blocks). It must cover EC2's reclaim lead, the
        scheduled action's possible two-minute delay and the whole lifecycle
        heartbeat, so that instances terminate before EC2 starts reclaiming.
    :param heartbeat_timeout: How long the termination lifecycle hook waits
        for the drain before the instance terminates anyway. Defaults to the
        drain lead minus EC2's reclaim lead minus the two-minute scheduled
        action delay (8 minutes by default), at most 2 hours.
    :param schedule_safety_margin: Scheduled actions closer to now than
        this are left out. Defaults to 15 minutes.
    :param desired_size: Nodes while the block is active. Defaults to the
        block's instance count.
    :param max_size: The group's maximum size. Defaults to the block's
        instance count.
    :param kubernetes_version: The cluster's Kubernetes version (selects the
        AMI). Defaults to what the cluster construct or the lookup knows;
        required for an ``aws_eks`` (v1) cluster.
    :param service_ipv4_cidr: The cluster's service CIDR. Defaults to what
        the cluster was created with or the lookup found; required when the
        cluster left it to EKS (EKS then picks 10.100.0.0/16 or
        172.20.0.0/16 itself).
    :param ami: The node image. Defaults to the EKS-optimized AL2023
        accelerated AMI for the instance type and Kubernetes version,
        resolved at deploy time; see :class:`EksOptimizedAmi` for pinning.
    :param labels: Extra node labels. The reservation ID and the block's end
        are always added as :data:`RESERVATION_LABEL` and
        :data:`BLOCK_END_LABEL`, as on the managed node group; a user label
        with either key is an error.
    :param taints: Taints the nodes register with. Defaults to ``NoSchedule``
        on ``nvidia.com/gpu`` (NVIDIA) or ``aws.amazon.com/neuron`` (Neuron),
        as on the managed node group, so only pods that tolerate the
        accelerator land on the nodes; pass ``[]`` for none.
    :param pre_bootstrap_script: A shell script run before nodeadm (AL2023
        only). Defaults to none.
    :param efa: Give every network card an EFA interface and add the EFA
        security group. Defaults to off.
    :param root_volume: The root volume. Defaults to an encrypted 200 GiB gp3 volume.
    :param key_name: An EC2 key pair. Defaults to none (use SSM Session Manager).
    :param node_role: The node IAM role. Defaults to a new role with
        AmazonEKSWorkerNodePolicy, AmazonEKS_CNI_Policy,
        AmazonEC2ContainerRegistryPullOnly and AmazonSSMManagedInstanceCore.
    :param access_entry: Whether to create an ``EC2_LINUX`` access entry for
        the node role (one that another node group of the stack already
        created for the same role and cluster is reused, as EKS allows only
        one). Defaults to creating one when the cluster uses API
        authentication (``API`` or ``API_AND_CONFIG_MAP``); for an
        ``aws_eks`` cluster in ``CONFIG_MAP`` mode the role is mapped in
        aws-auth instead; otherwise a warning explains what to do.
    :param termination_handler: An existing handler queue to feed, typically
        the ``termination_handler`` of the cluster's first Capacity Block node
        group: one handler installation reads one queue, so every node group
        of a cluster should share it. Defaults to a new queue with its rules
        and policy for this group.
    :param install_termination_handler: Install the aws-node-termination-handler
        Helm chart in queue mode through the cluster's kubectl provider.
        Defaults to off: the chart needs a cluster built in this app with a
        kubectl provider (Lambda functions and assets), one handler serves a
        whole cluster (a second node group must not install it again), and
        many teams install it with their other cluster add-ons.
    :param termination_handler_chart_version: The chart version to install.
        Defaults to ``NTH_CHART_VERSION``.
    :param install_pod_identity_agent: With ``install_termination_handler``,
        create the ``eks-pod-identity-agent`` add-on the handler's credentials
        depend on. Defaults to creating it unless the cluster runs EKS Auto
        Mode (which has the agent built in); pass ``False`` when the cluster
        already has the add-on.
    :param capacity_reservation_resource_group_arn: Launch into this
        resource group (UltraServer blocks). Defaults to the reservation ID.
    :param auto_scaling_group_name: A fixed group name. Defaults to a
        generated one.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        cluster: eks_v2.ICluster | eks.ICluster | eks_v2.Cluster | eks.Cluster,
        capacity_block: CapacityBlock,
        vpc: ec2.IVpc,
        vpc_subnets: ec2.SubnetSelection | None = None,
        drain_lead: Duration | timedelta | None = None,
        heartbeat_timeout: Duration | timedelta | None = None,
        schedule_safety_margin: Duration | timedelta | None = None,
        desired_size: int | None = None,
        max_size: int | None = None,
        kubernetes_version: str | None = None,
        service_ipv4_cidr: str | None = None,
        ami: EksOptimizedAmi | None = None,
        labels: Mapping[str, str] | None = None,
        taints: Sequence[NodeTaint] | None = None,
        pre_bootstrap_script: str | None = None,
        efa: bool = False,
        root_volume: RootVolume | None = None,
        key_name: str | None = None,
        node_role: iam.IRole | None = None,
        access_entry: bool | None = None,
        termination_handler: NodeTerminationHandlerQueue | None = None,
        install_termination_handler: bool = False,
        termination_handler_chart_version: str = NTH_CHART_VERSION,
        install_pod_identity_agent: bool = True,
        capacity_reservation_resource_group_arn: str | None = None,
        auto_scaling_group_name: str | None = None,
    ) -> None:
        super().__init__(scope, id)
        require_capacity_block(capacity_block, path=self.node.path)
        problems = Problems(self.node.path)
        block = capacity_block
        check_block_region(self, block, problems)
        self.capacity_block = block
        self.ami = ami or EksOptimizedAmi()
        node_labels = merge_labels(block, labels, problems)
        node_taints = tuple(accelerator_taints(block.instance_type) if taints is None else taints)

        # -- timing -------------------------------------------------------------------
        moment = now(self)
        lead = (
            _as_timedelta(
                drain_lead, name="drain_lead", problems=problems, fallback=block.default_drain_lead
            )
            if drain_lead is not None
            else block.default_drain_lead
        )
        margin = (
            _as_timedelta(schedule_safety_margin, name="schedule_safety_margin", problems=problems)
            if schedule_safety_margin is not None
            else DEFAULT_SCHEDULE_SAFETY_MARGIN
        )
        if margin < timedelta(0):
            problems.add(
                f"schedule_safety_margin -{_minutes(-margin)} is negative; use zero or more "
                "(the default is 15 minutes)."
            )
        heartbeat = self._heartbeat(block, lead, heartbeat_timeout, problems)
        self.drain_lead = lead
        self.heartbeat_timeout = heartbeat
        self.scale_down_time: datetime = block.end - lead
        if moment >= block.end:
            problems.add(
                f"Capacity Block {block.capacity_reservation_id} ended at {format_utc(block.end)} "
                f"(now is {format_utc(moment)}); its instances are gone. Use an active or "
                "scheduled block, or remove this node group."
            )
        if lead >= block.duration:
            problems.add(
                f"drain_lead {_minutes(lead)} is not shorter than the block itself "
                f"({_minutes(block.duration)}), so the scale-down would come at or before the "
                "start; use a drain lead of a few tens of minutes."
            )

        # -- sizes --------------------------------------------------------------------
        count = block.instance_count
        active_size = count if desired_size is None else desired_size
        maximum = count if max_size is None else max_size
        for name, value in (("desired_size", active_size), ("max_size", maximum)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                problems.add(f"{name} {value!r} must be a whole number of at least 1.")
            elif value > count:
                problems.add(
                    f"{name} {value} is above the block's instance count {count}; instances "
                    f"beyond {count} can never launch on it. Use at most {count}."
                )
        if isinstance(active_size, int) and isinstance(maximum, int) and active_size > maximum:
            problems.add(
                f"desired_size {active_size} is above max_size {maximum}; raise max_size or "
                "lower desired_size."
            )

        # -- placement, cluster, image, bootstrap ---------------------------------------
        subnets = select_block_subnets(
            vpc=vpc, vpc_subnets=vpc_subnets, capacity_block=block, problems=problems
        )
        info = resolve_cluster_info(
            self,
            cluster=cluster,
            kubernetes_version=kubernetes_version,
            service_cidr=service_ipv4_cidr,
            problems=problems,
        )
        image_id = resolve_image_id(
            self,
            self.ami,
            instance_type=block.instance_type,
            cluster_kubernetes_version=info.kubernetes_version if info else kubernetes_version,
            problems=problems,
        )
        validate_labels_and_taints(node_labels, node_taints, problems)
        if pre_bootstrap_script and self.ami.operating_system == "bottlerocket":
            problems.add(
                "pre_bootstrap_script is set but Bottlerocket runs no user data scripts; use "
                "Bottlerocket bootstrap containers, or operating_system='al2023'."
            )
        interfaces: list[NetworkInterface] | None = None
        if efa:
            try:
                interfaces = efa_network_interfaces(block.instance_type)
            except CapacityBlockError as error:
                for problem in error.problems:
                    problems.add(problem)
        mode = info.authentication_mode if info else None
        if access_entry is True and mode == "CONFIG_MAP":
            problems.add(
                "access_entry=True, but the cluster uses CONFIG_MAP authentication, where EKS "
                "rejects access entries; switch the cluster to API_AND_CONFIG_MAP, or pass "
                "access_entry=False and map the node role in aws-auth."
            )
        if (
            install_termination_handler
            and termination_handler is not None
            and termination_handler.handler_role is not None
        ):
            problems.add(
                "install_termination_handler=True, but the shared termination_handler queue "
                "already has aws-node-termination-handler installed, and one installation "
                "serves every node group feeding it; drop install_termination_handler."
            )
        elif install_termination_handler and not is_cluster_built_in_app(cluster):
            problems.add(
                "install_termination_handler=True needs a cluster built in this app "
                "(aws_eks_v2.Cluster or aws_eks.Cluster) to install the Helm chart; for an "
                "imported cluster install aws-node-termination-handler yourself with "
                "enableSqsTerminationDraining=true and queueURL set to this node group's "
                "termination queue URL."
            )
        elif (
            install_termination_handler
            and isinstance(cluster, eks_v2.Cluster)
            and cluster.kubectl_provider is None
        ):
            problems.add(
                "install_termination_handler=True, but the aws_eks_v2 cluster has no kubectl "
                "provider to install Helm charts with; create the cluster with "
                "kubectl_provider_options=eks_v2.KubectlProviderOptions(kubectl_layer=...), or "
                "install aws-node-termination-handler yourself."
            )
        problems.raise_if_any()
        assert info is not None
        assert image_id is not None
        self.cluster_info: ClusterInfo = info
        self.image_id = image_id

        # -- identity -----------------------------------------------------------------
        self.node_role: iam.IRole = node_role or default_node_role(
            self, description="EKS self-managed nodes on a Capacity Block"
        )
        self.instance_profile = iam.InstanceProfile(self, "InstanceProfile", role=self.node_role)

        # -- network ------------------------------------------------------------------
        self.security_group = ec2.SecurityGroup(
            self,
            "SecurityGroup",
            vpc=vpc,
            description="Capacity Block self-managed nodes (plus the cluster security group)",
            allow_all_outbound=True,
        )
        self.security_group.add_ingress_rule(
            self.security_group,
            ec2.Port.all_traffic(),
            "All traffic between the node group's nodes",
        )
        group_ids = [info.cluster_security_group_id, self.security_group.security_group_id]
        self.efa_security_group: EfaSecurityGroup | None = None
        if efa:
            self.efa_security_group = EfaSecurityGroup(self, "EfaSecurityGroup", vpc=vpc)
            group_ids.append(self.efa_security_group.security_group_id)

        # -- launch template ------------------------------------------------------------
        if self.ami.operating_system == "bottlerocket":
            user_data = bottlerocket_user_data(info, labels=node_labels, taints=node_taints)
        else:
            user_data = al2023_user_data(
                info,
                labels=node_labels,
                taints=node_taints,
                pre_bootstrap_script=pre_bootstrap_script,
            )
        self.user_data = user_data
        self.launch_template = CapacityBlockLaunchTemplate(
            self,
            "LaunchTemplate",
            capacity_block=block,
            image_id=image_id,
            user_data=user_data,
            instance_profile_arn=self.instance_profile.instance_profile_arn,
            security_group_ids=group_ids,
            network_interfaces=interfaces,
            root_volume=root_volume,
            key_name=key_name,
            capacity_reservation_resource_group_arn=capacity_reservation_resource_group_arn,
        )

        # -- schedule -------------------------------------------------------------------
        plan = plan_schedule(
            block, now=moment, drain_lead=lead, safety_margin=margin, active_size=active_size
        )
        self.schedule = plan
        initial = plan.desired_capacity

        # -- Auto Scaling group -----------------------------------------------------------
        self.auto_scaling_group = autoscaling.CfnAutoScalingGroup(
            self,
            "Resource",
            auto_scaling_group_name=auto_scaling_group_name,
            min_size="0",
            max_size="0" if plan.drained else str(maximum),
            desired_capacity=str(initial),
            vpc_zone_identifier=[subnet.subnet_id for subnet in subnets],
            launch_template=autoscaling.CfnAutoScalingGroup.LaunchTemplateSpecificationProperty(
                launch_template_id=self.launch_template.launch_template_id,
                version=self.launch_template.version_number,
            ),
            tags=[
                autoscaling.CfnAutoScalingGroup.TagPropertyProperty(
                    key=Fn.join("", ["kubernetes.io/cluster/", info.name]),
                    value="owned",
                    propagate_at_launch=True,
                ),
                autoscaling.CfnAutoScalingGroup.TagPropertyProperty(
                    key=NTH_MANAGED_TAG, value="true", propagate_at_launch=True
                ),
                autoscaling.CfnAutoScalingGroup.TagPropertyProperty(
                    # The launch template already tags the instances with it.
                    key=RESERVATION_TAG_KEY,
                    value=block.capacity_reservation_id,
                    propagate_at_launch=False,
                ),
            ],
        )
        self.auto_scaling_group.cfn_options.update_policy = CfnUpdatePolicy(
            auto_scaling_scheduled_action=CfnAutoScalingScheduledAction(
                ignore_unmodified_group_size_properties=True
            )
        )
        acknowledge(
            self.auto_scaling_group,
            "AwsSolutions-AS3",
            reason=(
                "Scale-in is handled through the termination lifecycle hook and "
                "EventBridge (aws-node-termination-handler); the schedule is fixed by the "
                "Capacity Block, so SNS scaling notifications would add nothing to act on."
            ),
        )
        name = self.auto_scaling_group.ref

        self.scale_up_action: autoscaling.CfnScheduledAction | None = None
        self.scale_down_action: autoscaling.CfnScheduledAction | None = None
        if plan.scale_up_at is not None:
            self.scale_up_action = autoscaling.CfnScheduledAction(
                self,
                "ScaleUpAtStart",
                auto_scaling_group_name=name,
                start_time=format_utc(plan.scale_up_at),
                desired_capacity=active_size,
                max_size=maximum,
            )
        if plan.scale_down_at is not None:
            # MaxSize 0 too, so nothing (a cluster autoscaler, a manual change) scales the
            # group back up while it drains.
            self.scale_down_action = autoscaling.CfnScheduledAction(
                self,
                "ScaleDownBeforeEnd",
                auto_scaling_group_name=name,
                start_time=format_utc(plan.scale_down_at),
                desired_capacity=0,
                min_size=0,
                max_size=0,
            )
        if moment < block.end:
            self._warn_about_schedule(moment, margin, plan)

        # -- graceful drain -----------------------------------------------------------------
        self.lifecycle_hook = autoscaling.CfnLifecycleHook(
            self,
            "TerminationHook",
            auto_scaling_group_name=name,
            lifecycle_transition="autoscaling:EC2_INSTANCE_TERMINATING",
            heartbeat_timeout=int(heartbeat.total_seconds()),
            default_result="CONTINUE",
        )
        if termination_handler is None:
            self.termination_handler = NodeTerminationHandlerQueue(
                self, "TerminationHandler", auto_scaling_group_names=[name]
            )
        else:
            self.termination_handler = termination_handler
            termination_handler.add_auto_scaling_group(name)
        if install_termination_handler:
            assert isinstance(cluster, (eks_v2.Cluster, eks.Cluster))
            self.termination_handler.install_handler(
                cluster,
                chart_version=termination_handler_chart_version,
                pod_identity_agent=install_pod_identity_agent,
            )

        # -- node identity in the cluster -----------------------------------------------------
        self.access_entry: eks.CfnAccessEntry | None = None
        create_entry = (
            access_entry
            if access_entry is not None
            else mode
            in (
                "API",
                "API_AND_CONFIG_MAP",
            )
        )
        # Only a role the user passed can be shared with another node group; walking the
        # whole stack through jsii for a role created here would cost time for nothing.
        existing = (
            self._existing_access_entry(info.name)
            if create_entry and node_role is not None
            else None
        )
        if existing is not None:
            # EKS allows one access entry per principal and cluster; another node group sharing
            # the role already created it.
            self.access_entry = existing
        elif create_entry:
            self.access_entry = eks.CfnAccessEntry(
                self,
                "AccessEntry",
                cluster_name=info.name,
                principal_arn=self.node_role.role_arn,
                type="EC2_LINUX",
            )
        if self.access_entry is not None:
            # Instances launch as soon as the group exists when it is deployed during the
            # block; with the entry in place first, their kubelets register at once.
            self.auto_scaling_group.add_resource_dependency(self.access_entry)
        elif access_entry is None and mode == "CONFIG_MAP" and isinstance(cluster, eks.Cluster):
            cluster.aws_auth.add_role_mapping(
                self.node_role,
                username="system:node:{{EC2PrivateDNSName}}",
                groups=["system:bootstrappers", "system:nodes"],
            )
        elif access_entry is None:
            Annotations.of(self).add_warning_v2(
                "capblock-constructs:node-role-not-mapped",
                (
                    f"the cluster's authentication mode is {mode or 'unknown'}, so no access "
                    "entry was created for the node role and nodes cannot join until it is "
                    "mapped. For API or API_AND_CONFIG_MAP clusters pass access_entry=True; for "
                    "CONFIG_MAP clusters add the node role to the aws-auth ConfigMap's mapRoles "
                    "with username system:node:{{EC2PrivateDNSName}} and groups "
                    "system:bootstrappers and system:nodes."
                ),
            )

    # -- helpers -----------------------------------------------------------------------------

    @staticmethod
    def _heartbeat(
        block: CapacityBlock,
        lead: timedelta,
        heartbeat_timeout: Duration | timedelta | None,
        problems: Problems,
    ) -> timedelta:
        reclaim = block.reclaim_lead
        if heartbeat_timeout is not None:
            heartbeat = _as_timedelta(
                heartbeat_timeout, name="heartbeat_timeout", problems=problems
            )
            if not MIN_HEARTBEAT <= heartbeat <= MAX_HEARTBEAT:
                problems.add(
                    f"heartbeat_timeout {int(heartbeat.total_seconds())} s is outside the "
                    "30-7200 s that EC2 Auto Scaling lifecycle hooks accept; pick a value in "
                    "that range."
                )
                return heartbeat
        else:
            heartbeat = min(
                max(lead - reclaim - SCHEDULED_ACTION_MAX_DELAY, MIN_HEARTBEAT), MAX_HEARTBEAT
            )
        # Worst case without a handler: the scale-down runs two minutes late and the
        # instance waits out the whole heartbeat before it terminates (DefaultResult CONTINUE).
        earliest = reclaim + SCHEDULED_ACTION_MAX_DELAY + heartbeat
        if lead < earliest:
            problems.add(
                f"drain_lead {_minutes(lead)} does not leave the termination lifecycle hook's "
                f"heartbeat ({_minutes(heartbeat)}) before EC2 starts reclaiming the instances "
                f"{_minutes(reclaim)} before the end, allowing for EC2 Auto Scaling running the "
                f"scale-down up to {_minutes(SCHEDULED_ACTION_MAX_DELAY)} late; the earliest "
                f"valid drain_lead is {_minutes(earliest)} (reclaim lead + "
                f"{_minutes(SCHEDULED_ACTION_MAX_DELAY)} + heartbeat). Raise drain_lead or "
                "shorten heartbeat_timeout."
            )
        return heartbeat

    def _existing_access_entry(self, cluster_name: str) -> eks.CfnAccessEntry | None:
        """An ``EC2_LINUX`` entry for this node role and cluster already in the stack."""
        for child in Stack.of(self).node.find_all():
            if (
                isinstance(child, eks.CfnAccessEntry)
                and child.principal_arn == self.node_role.role_arn
                and child.cluster_name == cluster_name
                and child.type == "EC2_LINUX"
            ):
                return child
        return None

    def _warn_about_schedule(
        self,
        moment: datetime,
        margin: timedelta,
        plan: SchedulePlan,
    ) -> None:
        block = self.capacity_block
        if plan.scale_up_at is None:
            early = (
                " Until the block starts the group reports launch errors, then launches."
                if plan.desired_capacity and moment < block.start
                else ""
            )
            Annotations.of(self).add_warning_v2(
                "capblock-constructs:scale-up-omitted",
                (
                    f"the block starts at {format_utc(block.start)}, which is past or within "
                    f"{_minutes(margin)} of now ({format_utc(moment)}), so no scale-up action "
                    "was scheduled (EC2 Auto Scaling rejects start times in the past); the group's "
                    f"DesiredCapacity is {plan.desired_capacity} instead.{early}"
                ),
            )
        if plan.scale_down_at is None:
            late = (
                f" EC2 starts reclaiming the instances at {format_utc(block.reclaim_start)}, "
                "possibly before the drain of this deploy is complete."
                # The deploy reaches the group up to ``margin`` after synthesis.
                if moment + margin + self.heartbeat_timeout > block.reclaim_start
                else ""
            )
            Annotations.of(self).add_warning_v2(
                "capblock-constructs:scale-down-omitted",
                (
                    f"the scale-down time {format_utc(self.scale_down_time)} (end - "
                    f"{_minutes(self.drain_lead)}) is past or within {_minutes(margin)} of now "
                    f"({format_utc(moment)}), so no scale-down action was scheduled; the group's "
                    "DesiredCapacity and MaxSize are 0 so this deploy drains it."
                    f"{late}"
                ),
            )

    # -- public views ----------------------------------------------------------------------

    @property
    def auto_scaling_group_name(self) -> str:
        """The Auto Scaling group's name (a deploy-time token unless fixed)."""
        return self.auto_scaling_group.ref

    @property
    def termination_queue(self) -> sqs.Queue:
        """The SQS queue aws-node-termination-handler reads (``queueURL``)."""
        return self.termination_handler.queue

    @property
    def launch_template_id(self) -> str:
        """The launch template ID."""
        return self.launch_template.launch_template_id
