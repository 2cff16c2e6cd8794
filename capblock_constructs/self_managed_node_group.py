"""Self-managed EKS nodes on a Capacity Block: Auto Scaling group, drain hook and bootstrap."""

from __future__ import annotations

import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta

from aws_cdk import CfnAutoScalingScheduledAction, CfnUpdatePolicy, Duration, Fn, Stack, Token
from aws_cdk import aws_autoscaling as autoscaling
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_eks as eks
from aws_cdk import aws_eks_v2 as eks_v2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sqs as sqs
from constructs import Construct, IConstruct

from ._cluster_info import (
    ClusterInfo,
    check_helm_cluster,
    resolve_cluster_info,
)
from ._nag import acknowledge
from ._node_group_checks import check_drain_lead, check_not_ended, check_sizes
from ._node_labels import merge_labels, validate_labels_and_taints
from ._node_role import default_node_role, map_node_role
from ._node_user_data import al2023_user_data, bottlerocket_user_data
from ._problems import Problems
from ._subnets import check_block_region, select_block_subnets
from ._time import as_timedelta, format_duration
from ._warnings import warn
from .ami import EksOptimizedAmi, resolve_image_id
from .capacity_block import MAX_HEARTBEAT, MIN_HEARTBEAT, CapacityBlock, require_capacity_block
from .controller.construct import CapacityBlockController
from .controller.runtime.phase import GroupKind, default_heartbeat, drain_time
from .device_plugins import (
    DevicePluginChart,
    DevicePlugins,
    check_device_plugin_cluster,
    device_plugin_labels,
    device_plugins_for,
)
from .device_plugins import (
    install_device_plugins as install_device_plugins_on,  # the option has the plain name
)
from .efa import EfaSecurityGroup, checked_efa_interfaces
from .instance_types import instance_type_info
from .launch_template import (
    RESERVATION_TAG_KEY,
    CapacityBlockLaunchTemplate,
    NetworkInterface,
    RootVolume,
)
from .taints import NodeTaint, accelerator_taints
from .termination import (
    NTH_CHART_VERSION,
    NTH_MANAGED_TAG,
    NodeTerminationHandlerQueue,
    installed_handler_chart,
)

__all__ = ["CapacityBlockSelfManagedNodeGroup"]

# Per app and cluster, the first self-managed group and the queue it feeds: one handler
# installation reads one queue, so a later group of the cluster feeding another is warned
# about. Groups are not joined to that queue by themselves: it may live under the first
# group, and removing the group once its block has ended would replace the queue under a
# running handler. Keyed by the app's root, weakly (jsii keeps constructs alive anyway).
_CLUSTER_QUEUES: weakref.WeakKeyDictionary[
    IConstruct, dict[str, tuple[CapacityBlockSelfManagedNodeGroup, NodeTerminationHandlerQueue]]
] = weakref.WeakKeyDictionary()


@dataclass(frozen=True, kw_only=True)
class _CheckedInputs:
    """The self-managed node group's inputs after validation."""

    drain_lead: timedelta
    heartbeat: timedelta
    target_size: int
    max_size: int
    subnets: list[ec2.ISubnet]
    cluster_info: ClusterInfo
    image_id: str
    labels: dict[str, str]
    taints: tuple[NodeTaint, ...]
    interfaces: list[NetworkInterface] | None


class CapacityBlockSelfManagedNodeGroup(Construct):
    """Self-managed EKS nodes that run on one Capacity Block for exactly its usable window.

    The Auto Scaling group has ``MinSize`` 0 and ``MaxSize`` the block's
    instance count, no ``DesiredCapacity`` (so a deploy never resets a running
    group, as the CDK's own ``AutoScalingGroup`` recommends), lives only in
    the block's Availability Zone and launches from a
    :class:`CapacityBlockLaunchTemplate` pinned to its latest version. The
    stack's :class:`CapacityBlockController` sizes it from the live
    reservation: 0 (and ``MaxSize`` 0) until the block is active, the target
    size while it is, and 0 from ``drain_lead`` before the live end, so an
    extension moves the drain with it. The deploy that creates the group runs
    the controller once, so the group is right when ``cdk deploy`` returns.
    Stack updates keep the sizes the controller set
    (``IgnoreUnmodifiedGroupSizeProperties``, and the template's sizes never
    change for a block).

    A termination lifecycle hook holds each instance while
    aws-node-termination-handler (queue-processor mode; its SQS queue,
    EventBridge rules and IAM policy, as :attr:`termination_handler`, are
    created by the stack's first group on the cluster and shared by the
    others) drains the node,
    so pods leave before EC2 starts reclaiming the instances (30 minutes
    before the end, 60 for UltraServer blocks). The timing holds even
    without the handler: the hook's ``DefaultResult`` is ``CONTINUE``, so an
    instance nobody completes terminates when the heartbeat expires. The
    controller may act up to its period plus a minute late, so the drain lead
    must cover the reclaim lead, that lateness and the whole heartbeat; the
    default heartbeat is what is left (8 minutes with the default 40-minute
    drain lead and a 1-minute period).

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
    :param drain_lead: How long before the block's end the controller scales
        the group to zero. Defaults to 40 minutes (70 for UltraServer
        blocks). It must cover EC2's reclaim lead, the controller's
        worst-case lateness and the whole lifecycle heartbeat, so that
        instances terminate before EC2 starts reclaiming.
    :param heartbeat_timeout: How long the termination lifecycle hook waits
        for the drain before the instance terminates anyway. Defaults to the
        drain lead minus EC2's reclaim lead minus the controller's worst-case
        lateness (8 minutes by default), from 30 seconds to 2 hours.
    :param desired_size: Nodes while the block is active. Defaults to
        ``max_size``.
    :param max_size: The most nodes the controller runs. Defaults to the
        block's instance count, which it may not exceed.
    :param controller: The controller that sizes the group. Defaults to the
        stack's shared one (:meth:`CapacityBlockController.of`).
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
    :param labels: Extra node labels. The reservation ID is always added as
        :data:`RESERVATION_LABEL`, as on the managed node group; a user label
        with that key is an error.
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
    :param termination_handler: An existing handler queue to feed: one
        handler installation reads one queue, so give every further group of
        the cluster the first group's (``first.termination_handler``) or one
        :class:`NodeTerminationHandlerQueue` built at the stack's root.
        Defaults to a queue of this group's own (``<group>/TerminationHandler``),
        with its rules and policy; a second group of the same cluster in the
        stack that creates its own gets a warning.
    :param install_termination_handler: Install the aws-node-termination-handler
        Helm chart in queue mode through the cluster's kubectl provider, reading
        this group's queue. Defaults to off: the chart needs a cluster built in
        this app with a kubectl provider (Lambda functions and assets), and many
        teams install it with their other cluster add-ons. One group per
        cluster may install it; asking twice is an error.
    :param termination_handler_chart_version: The chart version to install.
        Defaults to ``NTH_CHART_VERSION``.
    :param install_device_plugins: Install the Kubernetes device plugins the
        nodes need and their AMI lacks (NVIDIA, except on Bottlerocket NVIDIA
        images, which ship it; Neuron; EFA with ``efa``), as Helm charts through
        the cluster's kubectl provider, once per cluster; the nodes get the
        labels the plugins select. Defaults to off: without the plugins the
        nodes join but advertise no ``nvidia.com/gpu``, ``aws.amazon.com/neuron``
        or ``vpc.amazonaws.com/efa``, so install them yourself (see
        :mod:`capblock_constructs.device_plugins`) or turn this on for a cluster
        built in this app. A device plugin installed separately may also select
        these nodes; see that module.
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
        desired_size: int | None = None,
        max_size: int | None = None,
        controller: CapacityBlockController | None = None,
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
        install_device_plugins: bool = False,
        install_pod_identity_agent: bool = True,
        capacity_reservation_resource_group_arn: str | None = None,
        auto_scaling_group_name: str | None = None,
    ) -> None:
        super().__init__(scope, id)
        require_capacity_block(capacity_block, path=self.node.path)
        self.capacity_block = capacity_block
        self.ami = ami or EksOptimizedAmi()
        self.controller = controller or CapacityBlockController.of(self)
        checked = self._check_inputs(
            cluster=cluster,
            vpc=vpc,
            vpc_subnets=vpc_subnets,
            drain_lead=drain_lead,
            heartbeat_timeout=heartbeat_timeout,
            desired_size=desired_size,
            max_size=max_size,
            kubernetes_version=kubernetes_version,
            service_ipv4_cidr=service_ipv4_cidr,
            labels=labels,
            taints=taints,
            pre_bootstrap_script=pre_bootstrap_script,
            efa=efa,
            access_entry=access_entry,
            termination_handler=termination_handler,
            install_termination_handler=install_termination_handler,
            install_device_plugins=install_device_plugins,
        )
        self.cluster_info: ClusterInfo = checked.cluster_info
        self.image_id = checked.image_id
        self.drain_lead = checked.drain_lead
        self.heartbeat_timeout = checked.heartbeat
        self.drain_time = drain_time(capacity_block.end, checked.drain_lead)
        self.target_size = checked.target_size
        self.max_size = checked.max_size

        self.node_role: iam.IRole = node_role or default_node_role(
            self, description="EKS self-managed nodes on a Capacity Block"
        )
        self.instance_profile = iam.InstanceProfile(self, "InstanceProfile", role=self.node_role)
        self.launch_template = self._launch_template(
            vpc=vpc,
            checked=checked,
            efa=efa,
            pre_bootstrap_script=pre_bootstrap_script,
            root_volume=root_volume,
            key_name=key_name,
            capacity_reservation_resource_group_arn=capacity_reservation_resource_group_arn,
        )
        self.auto_scaling_group = self._auto_scaling_group(checked, auto_scaling_group_name)
        self._drain_hook(
            cluster=cluster,
            heartbeat=checked.heartbeat,
            termination_handler=termination_handler,
            install_termination_handler=install_termination_handler,
            chart_version=termination_handler_chart_version,
            pod_identity_agent=install_pod_identity_agent,
        )
        self._node_access(cluster, access_entry, node_role_given=node_role is not None)
        self.device_plugins: DevicePlugins | None = None
        """The device plugins installed for this group, with ``install_device_plugins``."""
        if install_device_plugins:
            assert isinstance(cluster, (eks_v2.Cluster, eks.Cluster))
            self.device_plugins = install_device_plugins_on(
                cluster,
                instance_type=capacity_block.instance_type,
                ami_type=self._eks_ami_type(),
                efa=efa,
            )
        self.controller.add_auto_scaling_group(
            self,
            auto_scaling_group_name=self.auto_scaling_group_name,
            capacity_reservation_id=capacity_block.capacity_reservation_id,
            ultraserver=capacity_block.is_ultraserver,
            target_size=checked.target_size,
            max_size=checked.max_size,
            drain_lead=checked.drain_lead,
            instance_count=capacity_block.instance_count,
        )

    # -- steps ----------------------------------------------------------------------------

    def _check_inputs(
        self,
        *,
        cluster: eks_v2.ICluster | eks.ICluster | eks_v2.Cluster | eks.Cluster,
        vpc: ec2.IVpc,
        vpc_subnets: ec2.SubnetSelection | None,
        drain_lead: Duration | timedelta | None,
        heartbeat_timeout: Duration | timedelta | None,
        desired_size: int | None,
        max_size: int | None,
        kubernetes_version: str | None,
        service_ipv4_cidr: str | None,
        labels: Mapping[str, str] | None,
        taints: Sequence[NodeTaint] | None,
        pre_bootstrap_script: str | None,
        efa: bool,
        access_entry: bool | None,
        termination_handler: NodeTerminationHandlerQueue | None,
        install_termination_handler: bool,
        install_device_plugins: bool,
    ) -> _CheckedInputs:
        """Every input problem, raised together; the values the later steps build from."""
        block = self.capacity_block
        problems = Problems(self.node.path)
        check_block_region(self, block, problems)
        plugins: tuple[DevicePluginChart, ...] = ()
        if install_device_plugins:
            check_device_plugin_cluster(cluster, problems)
            plugins = device_plugins_for(
                instance_type=block.instance_type,
                ami_type=self._eks_ami_type(),
                efa=efa,
            )
        node_labels = merge_labels(
            block, labels, problems, construct_labels=device_plugin_labels(plugins)
        )
        node_taints = tuple(
            accelerator_taints(block.instance_type, ami_type=self._eks_ami_type())
            if taints is None
            else taints
        )
        lead, heartbeat = self._drain_timing(drain_lead, heartbeat_timeout, problems)
        check_not_ended(self, block, problems)
        target, maximum = check_sizes(block, desired_size, max_size, problems)

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
        interfaces = checked_efa_interfaces(self, block.instance_type, problems) if efa else None
        mode = info.authentication_mode if info else None
        if access_entry is True and mode == "CONFIG_MAP":
            problems.add(
                "access_entry=True, but the cluster uses CONFIG_MAP authentication, where EKS "
                "rejects access entries; switch the cluster to API_AND_CONFIG_MAP, or pass "
                "access_entry=False and map the node role in aws-auth."
            )
        _check_handler_install(cluster, termination_handler, install_termination_handler, problems)
        problems.raise_if_any()
        assert info is not None
        assert image_id is not None
        return _CheckedInputs(
            drain_lead=lead,
            heartbeat=heartbeat,
            target_size=target,
            max_size=maximum,
            subnets=subnets,
            cluster_info=info,
            image_id=image_id,
            labels=node_labels,
            taints=node_taints,
            interfaces=interfaces,
        )

    def _eks_ami_type(self) -> str | None:
        """The EKS AMI type (``AmiType`` spelling) the nodes' image matches, or ``None`` when
        neither the AMI nor the instance-type table names an accelerator.

        The accelerator rules shared with managed groups (default taints, device plugins)
        read it: the accelerator for a type the table does not know, and whether the image
        is Bottlerocket's NVIDIA variant, which ships the NVIDIA plugin.
        """
        info = instance_type_info(self.capacity_block.instance_type)
        accelerator = self.ami.accelerator or (info.accelerator if info else None)
        if accelerator is None:
            return None
        architecture = self.ami.architecture or (info.architecture if info else "x86_64")
        family = "BOTTLEROCKET" if self.ami.operating_system == "bottlerocket" else "AL2023"
        cpu = "ARM_64" if architecture == "arm64" else "x86_64"
        return f"{family}_{cpu}_{accelerator.upper()}"

    def _drain_timing(
        self,
        drain_lead: Duration | timedelta | None,
        heartbeat_timeout: Duration | timedelta | None,
        problems: Problems,
    ) -> tuple[timedelta, timedelta]:
        """The drain lead and the termination hook's heartbeat, checked against each other."""
        block = self.capacity_block
        period = self.controller.period
        # The lead first, unchecked, to derive the default heartbeat from it.
        lead = as_timedelta(drain_lead) if drain_lead is not None else None
        lead = lead or block.default_drain_lead
        heartbeat = default_heartbeat(
            drain_lead=lead, ultraserver=block.is_ultraserver, period=period
        )
        if heartbeat_timeout is not None:
            given = as_timedelta(heartbeat_timeout)
            if given is None:
                problems.add(
                    f"heartbeat_timeout {heartbeat_timeout!r} is not a duration; pass "
                    "Duration.minutes(...) or a timedelta, or leave it unset (the default is "
                    f"what the drain lead leaves: {format_duration(heartbeat)})."
                )
            elif not MIN_HEARTBEAT <= given <= MAX_HEARTBEAT:
                problems.add(
                    f"heartbeat_timeout {format_duration(given)} is outside the 30 s to 2 h that "
                    "EC2 Auto Scaling lifecycle hooks accept; pick a value in that range, or leave "
                    f"it unset (the default is what the drain lead leaves: "
                    f"{format_duration(heartbeat)})."
                )
            else:
                heartbeat = given
        checked_lead = check_drain_lead(
            drain_lead,
            kind=GroupKind.SELF_MANAGED,
            block=block,
            period=period,
            problems=problems,
            heartbeat=heartbeat,
            heartbeat_given=heartbeat_timeout is not None,
        )
        return checked_lead, heartbeat

    def _launch_template(
        self,
        *,
        vpc: ec2.IVpc,
        checked: _CheckedInputs,
        efa: bool,
        pre_bootstrap_script: str | None,
        root_volume: RootVolume | None,
        key_name: str | None,
        capacity_reservation_resource_group_arn: str | None,
    ) -> CapacityBlockLaunchTemplate:
        info = checked.cluster_info
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

        if self.ami.operating_system == "bottlerocket":
            user_data = bottlerocket_user_data(info, labels=checked.labels, taints=checked.taints)
        else:
            user_data = al2023_user_data(
                info,
                labels=checked.labels,
                taints=checked.taints,
                pre_bootstrap_script=pre_bootstrap_script,
            )
        self.user_data = user_data
        return CapacityBlockLaunchTemplate(
            self,
            "LaunchTemplate",
            capacity_block=self.capacity_block,
            image_id=checked.image_id,
            user_data=user_data,
            instance_profile_arn=self.instance_profile.instance_profile_arn,
            security_group_ids=group_ids,
            network_interfaces=checked.interfaces,
            root_volume=root_volume,
            key_name=key_name,
            capacity_reservation_resource_group_arn=capacity_reservation_resource_group_arn,
        )

    def _auto_scaling_group(
        self, checked: _CheckedInputs, name: str | None
    ) -> autoscaling.CfnAutoScalingGroup:
        group = autoscaling.CfnAutoScalingGroup(
            self,
            "Resource",
            auto_scaling_group_name=name,
            # Sizes that never change for a block and no DesiredCapacity: CloudFormation
            # never resets what the controller set ("If this is set to a number, every
            # deployment will reset the amount of instances to this number. It is
            # recommended to leave this value blank", the CDK's AutoScalingGroup). A new
            # group starts at MinSize, 0.
            min_size="0",
            max_size=str(self.capacity_block.instance_count),
            vpc_zone_identifier=[subnet.subnet_id for subnet in checked.subnets],
            launch_template=autoscaling.CfnAutoScalingGroup.LaunchTemplateSpecificationProperty(
                launch_template_id=self.launch_template.launch_template_id,
                version=self.launch_template.version_number,
            ),
            tags=[
                autoscaling.CfnAutoScalingGroup.TagPropertyProperty(
                    key=Fn.join("", ["kubernetes.io/cluster/", checked.cluster_info.name]),
                    value="owned",
                    propagate_at_launch=True,
                ),
                autoscaling.CfnAutoScalingGroup.TagPropertyProperty(
                    key=NTH_MANAGED_TAG, value="true", propagate_at_launch=True
                ),
                autoscaling.CfnAutoScalingGroup.TagPropertyProperty(
                    # The launch template already tags the instances with it.
                    key=RESERVATION_TAG_KEY,
                    value=self.capacity_block.capacity_reservation_id,
                    propagate_at_launch=False,
                ),
            ],
        )
        group.cfn_options.update_policy = CfnUpdatePolicy(
            auto_scaling_scheduled_action=CfnAutoScalingScheduledAction(
                ignore_unmodified_group_size_properties=True
            )
        )
        acknowledge(
            group,
            "AwsSolutions-AS3",
            reason=(
                "Scale-in is handled through the termination lifecycle hook and "
                "EventBridge (aws-node-termination-handler), and the Capacity Block "
                "controller notifies its SNS topic of every size it sets; ASG scaling "
                "notifications would add nothing to act on."
            ),
        )
        return group

    def _drain_hook(
        self,
        *,
        cluster: eks_v2.ICluster | eks.ICluster | eks_v2.Cluster | eks.Cluster,
        heartbeat: timedelta,
        termination_handler: NodeTerminationHandlerQueue | None,
        install_termination_handler: bool,
        chart_version: str,
        pod_identity_agent: bool,
    ) -> None:
        name = self.auto_scaling_group_name
        self.lifecycle_hook = autoscaling.CfnLifecycleHook(
            self,
            "TerminationHook",
            auto_scaling_group_name=name,
            lifecycle_transition="autoscaling:EC2_INSTANCE_TERMINATING",
            heartbeat_timeout=int(heartbeat.total_seconds()),
            default_result="CONTINUE",
        )
        key = _cluster_key(cluster)
        if termination_handler is not None:
            self.termination_handler = termination_handler
            termination_handler.add_auto_scaling_group(name)
        else:
            self.termination_handler = NodeTerminationHandlerQueue(
                self, "TerminationHandler", auto_scaling_group_names=[name]
            )
        queues = _CLUSTER_QUEUES.setdefault(self.node.root, {})
        first, first_queue = queues.setdefault(key, (self, self.termination_handler))
        if self.termination_handler is not first_queue:
            warn(
                self,
                "termination-queue-not-shared",
                f"{self.node.path} feeds the termination-handler queue "
                f"{self.termination_handler.node.path}, but {first.node.path} on the same "
                f"cluster feeds {first_queue.node.path}, and one aws-node-termination-handler "
                "installation reads one queue: the nodes of the group whose queue it does not "
                "read are not drained. Give every group of the cluster the same queue "
                f"(termination_handler=, for example the one {first.node.path} feeds, or one "
                "NodeTerminationHandlerQueue built at the stack's root).",
            )
        # A second installation on the cluster is an error (_check_inputs).
        if install_termination_handler:
            assert isinstance(cluster, (eks_v2.Cluster, eks.Cluster))
            self.termination_handler.install_handler(
                cluster, chart_version=chart_version, pod_identity_agent=pod_identity_agent
            )

    def _node_access(
        self,
        cluster: eks_v2.ICluster | eks.ICluster | eks_v2.Cluster | eks.Cluster,
        access_entry: bool | None,
        *,
        node_role_given: bool,
    ) -> None:
        info = self.cluster_info
        mode = info.authentication_mode
        self.access_entry: eks.CfnAccessEntry | None = None
        create_entry = (
            access_entry if access_entry is not None else mode in ("API", "API_AND_CONFIG_MAP")
        )
        # Only a role the user passed can be shared with another node group; walking the
        # whole stack through jsii for a role created here would cost time for nothing.
        existing = (
            self._existing_access_entry(info.name) if create_entry and node_role_given else None
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
            # Instances launch as soon as the controller sizes the group during the block;
            # with the entry in place first, their kubelets register at once.
            self.auto_scaling_group.add_resource_dependency(self.access_entry)
        elif access_entry is None and mode == "CONFIG_MAP" and isinstance(cluster, eks.Cluster):
            map_node_role(cluster, self.node_role)
        elif access_entry is None:
            warn(
                self,
                "node-role-not-mapped",
                f"the cluster's authentication mode is {mode or 'unknown'}, so no access "
                "entry was created for the node role and nodes cannot join until it is "
                "mapped. For API or API_AND_CONFIG_MAP clusters pass access_entry=True; for "
                "CONFIG_MAP clusters add the node role to the aws-auth ConfigMap's mapRoles "
                "with username system:node:{{EC2PrivateDNSName}} and groups "
                "system:bootstrappers and system:nodes.",
            )

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


def _cluster_key(cluster: eks_v2.ICluster | eks.ICluster | eks_v2.Cluster | eks.Cluster) -> str:
    """What identifies the cluster among a stack's groups: its name when known at synth time
    (two imports of one cluster are one cluster), else the cluster construct."""
    # Also called before the inputs are checked, so a cluster of the wrong kind gets a key
    # and is then reported by the cluster check rather than failing here.
    name = getattr(cluster, "cluster_name", None)
    if isinstance(name, str) and not Token.is_unresolved(name):
        return f"name:{name}"
    node = getattr(cluster, "node", None)
    return f"construct:{node.path}" if node is not None else f"object:{id(cluster)}"


def _check_handler_install(
    cluster: eks_v2.ICluster | eks.ICluster | eks_v2.Cluster | eks.Cluster,
    termination_handler: NodeTerminationHandlerQueue | None,
    install: bool,
    problems: Problems,
) -> None:
    if not install:
        return
    installed = (
        installed_handler_chart(cluster)
        if isinstance(cluster, (eks_v2.Cluster, eks.Cluster))
        else None
    )
    if termination_handler is not None and termination_handler.handler_role is not None:
        problems.add(
            "install_termination_handler=True, but the shared termination_handler queue "
            "already has aws-node-termination-handler installed, and one installation "
            "serves every node group feeding it; drop install_termination_handler."
        )
    elif installed is not None:
        problems.add(
            "install_termination_handler=True, but aws-node-termination-handler is already "
            f"installed on this cluster ({installed.node.path}), and one installation reads "
            "one queue; pass termination_handler= the queue it reads and drop "
            "install_termination_handler here."
        )
    else:
        check_helm_cluster(
            cluster,
            problems,
            option="install_termination_handler",
            charts="the Helm chart",
            install_yourself=(
                "install aws-node-termination-handler yourself with "
                "enableSqsTerminationDraining=true and queueURL set to this node group's "
                "termination queue URL"
            ),
        )
