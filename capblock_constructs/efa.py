"""Elastic Fabric Adapter pieces shared by the node groups: interfaces and a security group.

No placement group is created anywhere: the instances of a Capacity Block are
already co-located ("no need to use a cluster placement group", EC2 user
guide), and forcing a cluster placement group onto a reservation causes
partial launches (eksctl #7949, terraform-aws-eks PR #3730).
"""

from __future__ import annotations

from aws_cdk import aws_ec2 as ec2
from constructs import Construct

from .errors import CapacityBlockError
from .instance_types import instance_type_info, known_instance_types
from .launch_template import NetworkInterface

__all__ = ["EfaSecurityGroup", "efa_network_interfaces"]


def efa_network_interfaces(instance_type: str) -> list[NetworkInterface]:
    """One EFA interface per network card of ``instance_type``, for a launch template.

    Card 0 gets the primary interface at device index 0, of type ``efa``
    (EFA with ENA, so the node keeps its IP networking there). Every other
    card gets an ``efa-only`` interface at device index 1, the layout
    terraform-aws-eks and aws-k8s-tester use and the EC2 user guide's "EFA
    with ENA or EFA-only on device index 1" recommendation. Two types differ,
    as their hardware requires: on ``p6-b300.48xlarge`` card 0 is ENA only,
    so its primary interface is a plain ``interface``; on
    ``p6e-gb200.36xlarge`` the odd cards take a single interface, so theirs
    sits at device index 0.

    Raises:
        CapacityBlockError: when the type has no EFA, or is not in the
            instance-type table (its network cards are then unknown).
    """
    info = instance_type_info(instance_type)
    if info is None:
        raise CapacityBlockError(
            f"instance type {instance_type!r} is not in the capblock-constructs instance-type "
            "table, so its network cards are unknown and EFA interfaces cannot be laid out; "
            f"use one of {', '.join(known_instance_types())}, or turn EFA off and pass the "
            "launch template's network interfaces yourself."
        )
    if not info.efa_supported:
        raise CapacityBlockError(
            f"instance type {instance_type!r} does not support Elastic Fabric Adapter; "
            "turn EFA off for it."
        )
    interfaces = [
        NetworkInterface(
            network_card_index=0,
            device_index=0,
            interface_type="efa" if info.primary_card_efa else "interface",
        )
    ]
    for card in range(1, info.network_cards):
        interfaces.append(
            NetworkInterface(
                network_card_index=card,
                device_index=0 if card in info.single_interface_cards else 1,
                interface_type="efa-only",
            )
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
