"""An EKS managed node group on a Capacity Block, sized at run time by the controller.

How the desired size follows the block
--------------------------------------
EKS creates no scale-up when a Capacity Block starts; it only scales a
``CAPACITY_BLOCK`` node group to zero 40 minutes before the end ("Amazon EKS
Node Group Capacity Scaledown Before Reservation End"). The stack's
:class:`~capblock_constructs.controller.CapacityBlockController` does the
rest at run time: it reads the live reservation every period and sets the
node group's desired size through ``eks:UpdateNodegroupConfig``: 0 until the
block is active, the target size while it is, and 0 from ``end - drain_lead``
(40 minutes, 70 for UltraServer blocks, whose instances EC2 starts reclaiming
60 minutes before the end, before EKS's own action). An extension moves the
live end and the drain with it; EKS's own action stays as a second line.

The template does not depend on when it is synthesized. ``ScalingConfig`` is
always ``MinSize`` 0, ``DesiredSize`` 0 and ``MaxSize`` the block's instance
count: the EKS API needs all three when the group is created ("When creating a
node group, you must specify all or none of the properties", EKS API reference,
NodegroupScalingConfig), and AWS asks for desired size 0 when the group is
created before the block is active. The values never change afterwards, so a
stack update never sends EKS a smaller desired size for a running group:
"Whenever this parameter changes, the number of worker nodes in the node group
is updated to the specified size ... When using CloudFormation, no action
occurs if you remove this parameter from your CFN template" (EKS API,
``NodegroupScalingConfig.desiredSize``). The target and largest size live in
the controller's configuration instead.

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
first (set ``desired_size=0`` and deploy; the controller then drains it).
``CapacityType``, ``AmiType``, ``Subnets``, ``NodeRole`` and
``NodegroupName`` are create-only (CloudFormation registry schema of
``AWS::EKS::Nodegroup``): changing one replaces the node group, which fails
while ``nodegroup_name`` pins the name. Moving the construct to a later
block in another Availability Zone changes ``Subnets`` and so replaces the
group; a later block in the same zone is a template update, best deployed
while the group is at 0.

Node auto repair
----------------
EKS node auto repair is on by default here (:class:`NodeRepair`), though the
EKS API leaves it off: the block's instances are paid for up front, and an
unhealthy node wastes its slot until someone acts. EKS watches the kubelet's
``Ready`` condition by itself, and with the EKS node monitoring agent add-on
(``eks-node-monitoring-agent``, not installed here) also GPU, Neuron, network,
storage and kernel conditions; it reboots or replaces a node after 10 minutes
(accelerator conditions) or 30 minutes (the others), and stops on its own when
more than 20% of a group of more than five nodes is unhealthy (EKS user guide,
"Automatically repair nodes in EKS clusters").

A reboot keeps the instance. A replacement launches into the same Capacity
Block, because the node group's only launch template targets its reservation;
the block has a fixed instance count, so the new instance needs a free slot.
EC2 frees a terminated instance's slot "several minutes" after it stops (EC2
user guide, Launch instances into Capacity Blocks), so the replacement of the
one instance a full block loses launches once EC2 has cleaned it up, with
launch errors in the meantime. EKS does not document whether it terminates
the unhealthy instance before or after launching the replacement
(UNCONFIRMED); if after, a full block has no slot for it and the node is not
replaced until one frees.

Repair and the controller do not compete: the controller sets only the node
group's desired size (0 before the block, the target while it runs, 0 from
``drain_time``), and repair replaces or reboots nodes *within* that size,
never changing it. Once the controller (or EKS's own end-of-block action) has
set the size to 0, the Auto Scaling group terminates every instance, a
replacement still in flight included, and there is nothing left to repair.
Before the block starts the group is at 0, so repair has nothing to act on.

Device plugins
--------------
Nodes join without advertising their accelerators until the NVIDIA, Neuron
or EFA device plugin runs on them. ``install_device_plugins=True`` installs
the ones the nodes need (see :mod:`capblock_constructs.device_plugins`) on a
cluster built in the same app, once per cluster.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal, Protocol

from aws_cdk import Duration
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_eks as eks_v1
from aws_cdk import aws_eks_v2 as eks_v2
from aws_cdk import aws_iam as iam
from constructs import Construct

from ._node_group_checks import check_drain_lead, check_not_ended, check_sizes
from ._node_labels import merge_labels, validate_labels_and_taints
from ._node_role import default_node_role, map_node_role
from ._problems import Problems
from ._subnets import check_block_region, select_block_subnets
from ._time import as_timedelta
from ._warnings import warn
from .capacity_block import CapacityBlock, require_capacity_block
from .controller.construct import CapacityBlockController
from .controller.runtime.phase import GroupKind, drain_time
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
from .instance_types import InstanceTypeInfo, describe_unknown_instance_type, instance_type_info
from .launch_template import (
    CapacityBlockLaunchTemplate,
    NetworkInterface,
    RootVolume,
    check_options,
)
from .taints import NodeTaint, accelerator_taints

__all__ = ["CapacityBlockManagedNodeGroup", "NodeRepair", "NodeRepairOverride"]


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
_REPAIR_ACTIONS = ("Replace", "Reboot", "NoAction")


@dataclass(frozen=True, kw_only=True)
class NodeRepairOverride:
    """How EKS node auto repair treats one condition and reason the node monitoring agent
    reports, instead of its default (``NodeRepairConfigOverrides``; EKS wants all four fields).

    For example, reboot instead of replace after 15 minutes of ``NvidiaXID64Error``, which
    keeps the instance in the Capacity Block::

        NodeRepairOverride(
            node_monitoring_condition="AcceleratedHardwareReady",
            node_unhealthy_reason="NvidiaXID64Error",
            min_repair_wait=Duration.minutes(15),
            repair_action="Reboot",
        )
    """

    node_monitoring_condition: str
    """The node condition, for example ``AcceleratedHardwareReady`` or ``NetworkingReady``."""
    node_unhealthy_reason: str
    """The reason, for example ``NvidiaXID64Error`` or ``IPAMDNotRunning``."""
    min_repair_wait: Duration | timedelta
    """How long the condition must last before the node is repaired; whole minutes, at
    least one."""
    repair_action: Literal["Replace", "Reboot", "NoAction"]
    """``Replace`` (terminate, launch another), ``Reboot`` or ``NoAction``."""


@dataclass(frozen=True, kw_only=True)
class NodeRepair:
    """EKS node auto repair for a managed node group (``NodeRepairConfig``).

    The defaults turn repair on with EKS's own thresholds and actions; see
    "Node auto repair" in the module docstring for how it works on a Capacity
    Block and with the controller. Each pair of count and percentage settings
    is exclusive: set one or neither.
    """

    enabled: bool = True
    """Whether EKS repairs unhealthy nodes. Defaults to on."""
    max_unhealthy_node_threshold_count: int | None = None
    """Repair stops while more nodes than this are unhealthy. Defaults to EKS's rule (stop
    above 20% unhealthy in a group of more than five nodes)."""
    max_unhealthy_node_threshold_percentage: int | None = None
    """The same as a percentage of the group (1-100). Defaults to EKS's rule."""
    max_parallel_nodes_repaired_count: int | None = None
    """The most nodes repaired at once. Defaults to EKS's choice."""
    max_parallel_nodes_repaired_percentage: int | None = None
    """The same as a percentage of the unhealthy nodes (1-100). Defaults to EKS's choice."""
    overrides: Sequence[NodeRepairOverride] = ()
    """Per condition and reason actions and waits. Defaults to none: EKS's table applies."""


class _HasClusterName(Protocol):
    @property
    def cluster_name(self) -> str: ...


@dataclass(frozen=True, kw_only=True)
class _CheckedInputs:
    """The managed node group's inputs after validation."""

    subnets: list[ec2.ISubnet]
    ami_type: str | None
    max_size: int
    target_size: int
    drain_lead: timedelta
    labels: dict[str, str]
    taints: list[NodeTaint]
    interfaces: list[NetworkInterface] | None
    cluster_security_group_id: str | None
    node_repair: NodeRepair


class CapacityBlockManagedNodeGroup(Construct):
    """An ``AWS::EKS::Nodegroup`` with ``CapacityType: CAPACITY_BLOCK`` on one Capacity Block.

    It creates a :class:`CapacityBlockLaunchTemplate` (the block's instance
    type, market type and reservation; no instance profile; IMDSv2; an
    encrypted gp3 root volume) and the node group pinned to that template's
    version, in the block's Availability Zone only, then registers the group
    with the stack's :class:`CapacityBlockController`, which sizes it from
    the live reservation: 0 until the block is active, ``desired_size`` while
    it is, and 0 from ``drain_lead`` before the (live) end. The deploy that
    creates the group runs the controller once, so the group has the right
    size when ``cdk deploy`` returns. EKS's own scale-down 40 minutes before
    the end stays in place as a second line. Changing the launch template
    rolls the nodes, which AWS asks to do at desired size 0 (see "Updates and
    replacement" in the module docstring).

    Nodes get the label :data:`RESERVATION_LABEL` and a ``NoSchedule`` taint
    for the accelerator (``nvidia.com/gpu`` or ``aws.amazon.com/neuron``)
    that keeps pods without the toleration off. Invalid input raises
    :class:`CapacityBlockError` listing every problem.

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
        created: a Capacity Block is already co-located. The ``efa-only``
        interfaces among them (EFA without IP addresses) need Amazon VPC CNI
        1.18.5 or later on the cluster ("You must have VPC CNI version 1.18.5
        or later for EFA-only interfaces", EKS user guide, "Run machine
        learning training on Amazon EKS with Elastic Fabric Adapter"). Pods
        see the interfaces as ``vpc.amazonaws.com/efa`` only once the EFA
        device plugin runs (``install_device_plugins``).
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
    :param max_size: The most nodes the controller runs. Defaults to the
        block's instance count, which it may not exceed. The node group's own
        ``MaxSize`` is always the block's count, so changing this never
        changes the template's scaling configuration.
    :param desired_size: How many nodes the controller runs while the block
        is active. Defaults to ``max_size``; 0 keeps the group empty (for
        example to roll a launch template change mid-block).
    :param drain_lead: How long before the block's end the controller scales
        the group to zero. Defaults to 40 minutes (70 for UltraServer
        blocks), when EKS's own action does for instance blocks. It may be
        longer, never shorter: a managed group must not drain after EKS's
        action, nor later than EC2's reclaim start minus the controller's
        worst-case lateness.
    :param controller: The controller that sizes the group. Defaults to the
        stack's shared one (:meth:`CapacityBlockController.of`).
    :param instance_types: Not supported: the instance type is the block's,
        set in the launch template, and EKS fails a node group that also
        names instance types. Any value is an error.
    :param capacity_reservation_resource_group_arn: Launch into this
        resource group instead of targeting the reservation ID, as UltraServer
        blocks can. Defaults to the reservation ID. Only for UltraServer
        blocks: EC2 does not let instance blocks be used through resource
        groups.
    :param tags: Tags for the node group and the launch template's instances.
    :param install_device_plugins: Install the Kubernetes device plugins the
        nodes need and their AMI lacks, as pinned Helm charts through the
        cluster's kubectl provider: NVIDIA (unless the AMI type is a
        Bottlerocket NVIDIA variant, which includes it), Neuron for Trainium
        and Inferentia, and EFA with ``efa``. Each is installed once per
        cluster however many node groups ask, tolerates every taint and runs
        only on nodes carrying its ``capblock-constructs/<plugin>-device-plugin:
        true`` label, which this group's nodes then get. Defaults to off: it
        needs a cluster built in this app (an ``aws_eks_v2`` cluster with
        ``kubectl_provider_options``), and many teams install device plugins
        with their other cluster add-ons. Without the plugins the nodes
        advertise no ``nvidia.com/gpu``, ``aws.amazon.com/neuron`` or
        ``vpc.amazonaws.com/efa`` and GPU pods stay pending. A device plugin
        installed separately may also select these nodes; see
        :mod:`capblock_constructs.device_plugins`.
    :param node_repair: EKS node auto repair: a :class:`NodeRepair`, or a
        bool for the defaults or off. Defaults to on with EKS's thresholds and
        actions; see "Node auto repair" in the module docstring for what
        happens on a Capacity Block.
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
        drain_lead: Duration | timedelta | None = None,
        controller: CapacityBlockController | None = None,
        instance_types: Sequence[str] | None = None,
        capacity_reservation_resource_group_arn: str | None = None,
        tags: Mapping[str, str] | None = None,
        install_device_plugins: bool = False,
        node_repair: NodeRepair | bool = True,
    ) -> None:
        super().__init__(scope, id)
        require_capacity_block(capacity_block, path=self.node.path)
        self.capacity_block = capacity_block
        self.controller = controller or CapacityBlockController.of(self)
        checked = self._check_inputs(
            cluster=cluster,
            vpc=vpc,
            vpc_subnets=vpc_subnets,
            ami_type=ami_type,
            image_id=image_id,
            user_data=user_data,
            root_volume=root_volume,
            http_put_response_hop_limit=http_put_response_hop_limit,
            efa=efa,
            security_groups=security_groups,
            cluster_security_group_id=cluster_security_group_id,
            labels=labels,
            taints=taints,
            max_size=max_size,
            desired_size=desired_size,
            drain_lead=drain_lead,
            instance_types=instance_types,
            capacity_reservation_resource_group_arn=capacity_reservation_resource_group_arn,
            install_device_plugins=install_device_plugins,
            node_repair=node_repair,
        )
        self.node_repair = checked.node_repair
        self.max_size = checked.max_size
        self.target_size = checked.target_size
        self.drain_lead = checked.drain_lead
        self.drain_time = drain_time(capacity_block.end, checked.drain_lead)
        self.node_role = self._node_role(cluster, node_role)
        self.launch_template = self._launch_template(
            vpc=vpc,
            checked=checked,
            image_id=image_id,
            user_data=user_data,
            security_groups=security_groups,
            efa=efa,
            root_volume=root_volume,
            http_put_response_hop_limit=http_put_response_hop_limit,
            capacity_reservation_resource_group_arn=capacity_reservation_resource_group_arn,
            tags=tags,
        )
        self.resource = self._node_group(cluster, checked, nodegroup_name, tags)
        self.device_plugins: DevicePlugins | None = None
        """The device plugins installed for this group, with ``install_device_plugins``."""
        if install_device_plugins:
            assert isinstance(cluster, (eks_v2.Cluster, eks_v1.Cluster))
            self.device_plugins = install_device_plugins_on(
                cluster, instance_type=capacity_block.instance_type, ami_type=ami_type, efa=efa
            )
        self.controller.add_managed_node_group(
            self,
            cluster_name=cluster.cluster_name,
            nodegroup_name=self.nodegroup_name,
            nodegroup_arn=self.nodegroup_arn,
            capacity_reservation_id=capacity_block.capacity_reservation_id,
            ultraserver=capacity_block.is_ultraserver,
            target_size=checked.target_size,
            max_size=checked.max_size,
            drain_lead=checked.drain_lead,
            instance_count=capacity_block.instance_count,
        )
        if image_id is not None and user_data is None:
            warn(
                self,
                "custom-ami-without-user-data",
                f"image_id {image_id!r} is set without user_data: EKS does not bootstrap custom "
                "AMIs, so the nodes only join if the AMI bootstraps itself. Pass user_data with "
                "a nodeadm NodeConfig (apiVersion node.eks.aws/v1alpha1), or use an AMI that "
                "joins the cluster on its own.",
            )

    # -- steps ----------------------------------------------------------------------------

    def _check_inputs(
        self,
        *,
        cluster: _HasClusterName,
        vpc: ec2.IVpc,
        vpc_subnets: ec2.SubnetSelection | None,
        ami_type: str | None,
        image_id: str | None,
        user_data: str | ec2.UserData | None,
        root_volume: RootVolume | None,
        http_put_response_hop_limit: int,
        efa: bool,
        security_groups: Sequence[ec2.ISecurityGroup] | None,
        cluster_security_group_id: str | None,
        labels: Mapping[str, str] | None,
        taints: Sequence[NodeTaint] | None,
        max_size: int | None,
        desired_size: int | None,
        drain_lead: Duration | timedelta | None,
        instance_types: Sequence[str] | None,
        capacity_reservation_resource_group_arn: str | None,
        install_device_plugins: bool,
        node_repair: NodeRepair | bool,
    ) -> _CheckedInputs:
        """Every input problem, raised together; the values the later steps build from."""
        block = self.capacity_block
        problems = Problems(self.node.path)
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
        size_target, size_max = check_sizes(block, desired_size, max_size, problems)
        lead = check_drain_lead(
            drain_lead,
            kind=GroupKind.MANAGED,
            block=block,
            period=self.controller.period,
            problems=problems,
        )
        chosen_taints = (
            accelerator_taints(block.instance_type, ami_type=ami_type)
            if taints is None
            else list(taints)
        )
        plugins: tuple[DevicePluginChart, ...] = ()
        if install_device_plugins:
            check_device_plugin_cluster(cluster, problems)
            plugins = device_plugins_for(
                instance_type=block.instance_type, ami_type=ami_type, efa=efa
            )
        all_labels = merge_labels(
            block, labels, problems, construct_labels=device_plugin_labels(plugins)
        )
        # The EKS API's limits are tighter than Kubernetes' (managed node groups only).
        validate_labels_and_taints(all_labels, chosen_taints, problems, eks_limits=True)
        repair = _check_node_repair(problems, node_repair)

        interfaces = checked_efa_interfaces(self, block.instance_type, problems) if efa else None

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
        check_not_ended(self, block, problems)
        problems.raise_if_any()
        return _CheckedInputs(
            subnets=subnets,
            ami_type=resolved_ami_type,
            max_size=size_max,
            target_size=size_target,
            drain_lead=lead,
            labels=all_labels,
            taints=chosen_taints,
            interfaces=interfaces,
            cluster_security_group_id=cluster_sg,
            node_repair=repair,
        )

    def _node_role(self, cluster: _HasClusterName, node_role: iam.IRole | None) -> iam.IRole:
        role = node_role or default_node_role(
            self, description="EKS managed node group on a Capacity Block"
        )
        if isinstance(cluster, eks_v1.Cluster) and (
            cluster.authentication_mode != eks_v1.AuthenticationMode.API
        ):
            # The CDK owns aws-auth for its v1 clusters and would overwrite the
            # entry EKS adds for the node role, as eks.Nodegroup also handles.
            map_node_role(cluster, role)
        return role

    def _launch_template(
        self,
        *,
        vpc: ec2.IVpc,
        checked: _CheckedInputs,
        image_id: str | None,
        user_data: str | ec2.UserData | None,
        security_groups: Sequence[ec2.ISecurityGroup] | None,
        efa: bool,
        root_volume: RootVolume | None,
        http_put_response_hop_limit: int,
        capacity_reservation_resource_group_arn: str | None,
        tags: Mapping[str, str] | None,
    ) -> CapacityBlockLaunchTemplate:
        self.efa_security_group: EfaSecurityGroup | None = None
        group_ids: list[str] | None = None
        if efa or security_groups:
            cluster_sg = checked.cluster_security_group_id
            group_ids = [cluster_sg] if cluster_sg else []
            if efa:
                self.efa_security_group = EfaSecurityGroup(self, "EfaSecurityGroup", vpc=vpc)
                group_ids.append(self.efa_security_group.security_group_id)
            group_ids.extend(group.security_group_id for group in security_groups or ())
        return CapacityBlockLaunchTemplate(
            self,
            "LaunchTemplate",
            capacity_block=self.capacity_block,
            image_id=image_id,
            user_data=_render_user_data(user_data, custom_ami=image_id is not None),
            security_group_ids=group_ids,
            network_interfaces=checked.interfaces,
            root_volume=root_volume,
            http_put_response_hop_limit=http_put_response_hop_limit,
            capacity_reservation_resource_group_arn=capacity_reservation_resource_group_arn,
            tags=tags,
        )

    def _node_group(
        self,
        cluster: _HasClusterName,
        checked: _CheckedInputs,
        nodegroup_name: str | None,
        tags: Mapping[str, str] | None,
    ) -> eks_v1.CfnNodegroup:
        return eks_v1.CfnNodegroup(
            self,
            "Resource",
            cluster_name=cluster.cluster_name,
            nodegroup_name=nodegroup_name,
            node_role=self.node_role.role_arn,
            subnets=[subnet.subnet_id for subnet in checked.subnets],
            capacity_type="CAPACITY_BLOCK",
            ami_type=checked.ami_type,
            launch_template=eks_v1.CfnNodegroup.LaunchTemplateSpecificationProperty(
                id=self.launch_template.launch_template_id,
                version=self.launch_template.version_number,
            ),
            # Constant for a block (see the module docstring): the controller sets the
            # running size, and a stack update never sends EKS a smaller one.
            scaling_config=eks_v1.CfnNodegroup.ScalingConfigProperty(
                min_size=0, max_size=self.capacity_block.instance_count, desired_size=0
            ),
            labels=checked.labels,
            taints=[
                eks_v1.CfnNodegroup.TaintProperty(key=t.key, value=t.value, effect=t.eks_effect)
                for t in checked.taints
            ]
            or None,
            node_repair_config=_node_repair_config(checked.node_repair),
            tags=dict(tags) if tags else None,
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


def _check_node_repair(problems: Problems, value: object) -> NodeRepair:
    """The node repair settings to write, adding a problem for each the EKS API would reject."""
    if isinstance(value, bool):
        return NodeRepair(enabled=value)
    if not isinstance(value, NodeRepair):
        problems.add(
            f"node_repair {value!r} is a {type(value).__name__}; pass True, False or "
            "NodeRepair(...)."
        )
        return NodeRepair()
    if not isinstance(value.enabled, bool):
        problems.add(f"node_repair.enabled {value.enabled!r} must be True or False.")
    for kind in ("max_unhealthy_node_threshold", "max_parallel_nodes_repaired"):
        count = getattr(value, f"{kind}_count")
        percentage = getattr(value, f"{kind}_percentage")
        if count is not None and (
            isinstance(count, bool) or not isinstance(count, int) or count < 1
        ):
            problems.add(
                f"node_repair.{kind}_count {count!r} must be a whole number of nodes, at least 1."
            )
        if percentage is not None and (
            isinstance(percentage, bool)
            or not isinstance(percentage, int)
            or not 1 <= percentage <= 100
        ):
            problems.add(
                f"node_repair.{kind}_percentage {percentage!r} must be a whole percentage from "
                "1 to 100."
            )
        if count is not None and percentage is not None:
            problems.add(
                f"node_repair sets both {kind}_count ({count!r}) and {kind}_percentage "
                f"({percentage!r}); EKS takes one or the other, so drop one."
            )
    if isinstance(value.overrides, (list, tuple)):
        for override in value.overrides:
            _check_repair_override(problems, override)
    else:
        problems.add(
            f"node_repair.overrides {value.overrides!r} is not a list; pass "
            "[NodeRepairOverride(...), ...]."
        )
    return value


def _check_repair_override(problems: Problems, override: object) -> None:
    if not isinstance(override, NodeRepairOverride):
        problems.add(
            f"node_repair.overrides holds {override!r}, a {type(override).__name__}; pass "
            "NodeRepairOverride(...) objects."
        )
        return
    name = f"node_repair override {override.node_unhealthy_reason!r}"
    for field in ("node_monitoring_condition", "node_unhealthy_reason"):
        text = getattr(override, field)
        if not isinstance(text, str) or not text:
            problems.add(
                f"{name}: {field} {text!r} must name what the node monitoring agent reports, "
                "for example 'AcceleratedHardwareReady' and 'NvidiaXID64Error'."
            )
    if override.repair_action not in _REPAIR_ACTIONS:
        problems.add(
            f"{name}: repair_action {override.repair_action!r} is not one of "
            f"{', '.join(_REPAIR_ACTIONS)}."
        )
    wait = as_timedelta(override.min_repair_wait)
    if wait is None or wait < timedelta(minutes=1) or wait % timedelta(minutes=1):
        problems.add(
            f"{name}: min_repair_wait {override.min_repair_wait!r} must be a whole number of "
            "minutes, at least 1 (EKS counts it in minutes); pass Duration.minutes(...)."
        )


def _node_repair_config(repair: NodeRepair) -> eks_v1.CfnNodegroup.NodeRepairConfigProperty:
    return eks_v1.CfnNodegroup.NodeRepairConfigProperty(
        enabled=repair.enabled,
        max_unhealthy_node_threshold_count=repair.max_unhealthy_node_threshold_count,
        max_unhealthy_node_threshold_percentage=repair.max_unhealthy_node_threshold_percentage,
        max_parallel_nodes_repaired_count=repair.max_parallel_nodes_repaired_count,
        max_parallel_nodes_repaired_percentage=repair.max_parallel_nodes_repaired_percentage,
        node_repair_config_overrides=[
            eks_v1.CfnNodegroup.NodeRepairConfigOverridesProperty(
                node_monitoring_condition=override.node_monitoring_condition,
                node_unhealthy_reason=override.node_unhealthy_reason,
                min_repair_wait_time_mins=_whole_minutes(override.min_repair_wait),
                repair_action=override.repair_action,
            )
            for override in repair.overrides
        ]
        or None,
    )


def _whole_minutes(value: Duration | timedelta) -> int:
    span = as_timedelta(value)
    assert span is not None  # checked before
    return span // timedelta(minutes=1)


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
            f"{describe_unknown_instance_type(block.instance_type)}, so its EKS AMI type is "
            "unknown; check the reservation's instance type, or pass ami_type (for example "
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
