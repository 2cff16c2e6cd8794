"""Elastic Fabric Adapter pieces shared by the node groups: interfaces and a security group.

No placement group is created anywhere: the instances of a Capacity Block are
already co-located ("no need to use a cluster placement group", EC2 user
guide), and forcing a cluster placement group onto a reservation causes
partial launches (eksctl #7949, terraform-aws-eks PR #3730).
"""

from __future__ import annotations

from aws_cdk import aws_ec2 as ec2
from constructs import Construct

from ._problems import Problems
from ._warnings import warn
from .errors import CapacityBlockError
from .instance_types import describe_unknown_instance_type, instance_type_info
from .launch_template import NetworkInterface

__all__ = ["MIN_VPC_CNI_VERSION_FOR_EFA_ONLY", "EfaSecurityGroup", "efa_network_interfaces"]

MIN_VPC_CNI_VERSION_FOR_EFA_ONLY = "1.18.5"
"""The oldest Amazon VPC CNI that handles ``efa-only`` interfaces ("You must have VPC CNI
version 1.18.5 or later for EFA-only interfaces", EKS user guide, node-efa)."""


def warn_if_layout_unconfirmed(scope: Construct, instance_type: str) -> None:
    """Warn on ``scope`` when the EFA layout for ``instance_type`` rests on unconfirmed numbers.

    An interface on a network card the instance does not have fails every launch, and on
    a Capacity Block that failure comes when the block starts; the warning says how to
    check the numbers before then.
    """
    info = instance_type_info(instance_type)
    if info is None or info.network_cards_confirmed:
        return
    warn(
        scope,
        "efa-layout-unconfirmed",
        f"efa=True lays out {info.network_cards} network cards for {instance_type} (EFA on "
        f"card 0: {'yes' if info.primary_card_efa else 'no'}), numbers no AWS-published "
        "source confirms yet; before the block starts, check them with 'aws ec2 "
        f"describe-instance-types --instance-types {instance_type} --query "
        '"InstanceTypes[].NetworkInfo.[MaximumNetworkCards,EfaInfo]"\', since an interface '
        "on a card the instance lacks fails every launch.",
    )


def checked_efa_interfaces(
    scope: Construct, instance_type: str, problems: Problems
) -> list[NetworkInterface] | None:
    """A node group's EFA interfaces for ``instance_type``, for ``efa=True``.

    What :func:`efa_network_interfaces` rejects becomes a problem of the node
    group (``None`` is returned then); a layout from unconfirmed numbers warns.
    """
    try:
        interfaces = efa_network_interfaces(instance_type)
    except CapacityBlockError as error:
        problems.add(f"efa=True: {'; '.join(error.problems)}")
        return None
    warn_if_layout_unconfirmed(scope, instance_type)
    return interfaces


def efa_network_interfaces(instance_type: str) -> list[NetworkInterface]:
    """The EFA interfaces AWS recommends for ``instance_type``, for a launch template.

    The layout is the one the EC2 user guide ("Maximize network bandwidth on
    Amazon EC2 instances with multiple network cards") and the EKS user
    guide ("Manage EFA devices on Amazon EKS") document today:

    - network card 0, device index 0: the primary interface, a plain ENA
      ``interface`` that carries the node's and the pods' IP traffic (an
      ``efa-only`` interface cannot be primary);
    - network card 0, device index 1: an ``efa-only`` interface, when card 0
      supports EFA (every type in the table but ``p6-b300.48xlarge`` and
      ``p6e-gb200.36xlarge``);
    - every other network card, device index 0: an ``efa-only`` interface.

    ``efa-only`` interfaces take no IP address, so a node does not drain the
    subnet's addresses; they need VPC CNI
    :data:`MIN_VPC_CNI_VERSION_FOR_EFA_ONLY` or later.

    For a type whose row is not confirmed by AWS
    (:attr:`InstanceTypeInfo.network_cards_confirmed`, ``trn2u.48xlarge``), the
    layout rests on assumed numbers: check them with ``DescribeInstanceTypes``
    before the block starts (the node groups warn about it).

    Raises:
        CapacityBlockError: when the type has no EFA, or is not in the
            instance-type table (its network cards are then unknown).
    """
    info = instance_type_info(instance_type)
    if info is None:
        raise CapacityBlockError(
            f"{describe_unknown_instance_type(instance_type)}, so its network cards are "
            "unknown and EFA interfaces cannot be laid out; check the reservation's instance "
            "type, or turn EFA off and pass the launch template's network interfaces yourself."
        )
    if not info.efa_supported:
        raise CapacityBlockError(
            f"instance type {instance_type!r} does not support Elastic Fabric Adapter; "
            "turn EFA off for it."
        )
    interfaces = [
        NetworkInterface(network_card_index=0, device_index=0, interface_type="interface")
    ]
    if info.primary_card_efa:
        interfaces.append(
            NetworkInterface(network_card_index=0, device_index=1, interface_type="efa-only")
        )
    interfaces.extend(
        NetworkInterface(network_card_index=card, device_index=0, interface_type="efa-only")
        for card in range(1, info.network_cards)
    )
    return interfaces


class EfaSecurityGroup(Construct):
    """A security group that lets EFA traffic flow between the nodes that carry it.

    EFA requires a security group that allows all inbound and all outbound
    traffic to and from the security group itself. This one allows exactly
    that and nothing else: attach it alongside the node's other groups
    (security group rules add up), which keep their own egress.

    :param vpc: The VPC of the nodes.
    :param description: The group's description. Defaults to one naming EFA.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        vpc: ec2.IVpc,
        description: str | None = None,
    ) -> None:
        super().__init__(scope, id)
        self.security_group = ec2.SecurityGroup(
            self,
            "Resource",
            vpc=vpc,
            description=description
            or "EFA: all traffic between members of this group (node to node)",
            allow_all_outbound=False,
        )
        all_traffic = ec2.Port.all_traffic()
        self.security_group.add_ingress_rule(
            self.security_group, all_traffic, "EFA: all traffic from members of this group"
        )
        self.security_group.add_egress_rule(
            self.security_group, all_traffic, "EFA: all traffic to members of this group"
        )

    @property
    def security_group_id(self) -> str:
        """The security group ID (``sg-...``), a deploy-time token."""
        return self.security_group.security_group_id
