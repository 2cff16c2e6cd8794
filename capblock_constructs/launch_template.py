"""A launch template that places instances on a Capacity Block."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from aws_cdk import CfnTag, Fn, Token
from aws_cdk import aws_ec2 as ec2
from constructs import Construct

from ._problems import Problems
from .capacity_block import CapacityBlock, require_capacity_block

__all__ = [
    "RESERVATION_TAG_KEY",
    "CapacityBlockLaunchTemplate",
    "NetworkInterface",
    "RootVolume",
]

RESERVATION_TAG_KEY = "capblock-constructs:capacity-reservation-id"
"""Tag key that carries the reservation ID on instances, volumes and network interfaces."""

_INTERFACE_TYPES = ("interface", "efa", "efa-only")
_VOLUME_TYPES = ("gp3", "gp2", "io1", "io2")
# EBS limits per volume type (EBS user guide, volume types; gp3 raised to 80,000 IOPS and
# 2,000 MiB/s in 2025). gp2 takes no IOPS setting.
_IOPS_RANGES = {"gp3": (3000, 80000), "io1": (100, 64000), "io2": (100, 256000)}
_GP3_THROUGHPUT = (125, 2000)


@dataclass(frozen=True, kw_only=True)
class RootVolume:
    """The root EBS volume of each node. Always encrypted."""

    size_gib: int = 200
    """Size in GiB. Defaults to 200 GiB, room for CUDA or Neuron container images."""
    device_name: str = "/dev/xvda"
    """Device name of the AMI's root volume.

    Defaults to ``/dev/xvda``, the root device of Amazon Linux 2023 and Bottlerocket AMIs.
    """
    volume_type: str = "gp3"
    """EBS volume type. Defaults to gp3."""
    iops: int | None = None
    """Provisioned IOPS. Defaults to the volume type's baseline."""
    throughput_mibps: int | None = None
    """gp3 throughput in MiB/s. Defaults to gp3's baseline of 125 MiB/s."""
    kms_key_arn: str | None = None
    """KMS key for encryption. Defaults to the account's default EBS key."""


@dataclass(frozen=True, kw_only=True)
class NetworkInterface:
    """One network interface in the launch template (EFA setups have one per network card)."""

    network_card_index: int = 0
    """The network card the interface sits on. Defaults to card 0."""
    device_index: int = 0
    """The device index. Defaults to 0, the primary interface."""
    interface_type: str = "interface"
    """``interface`` (ENA), ``efa`` (EFA with IP) or ``efa-only``. Defaults to ``interface``."""


class CapacityBlockLaunchTemplate(Construct):
    """An ``AWS::EC2::LaunchTemplate`` whose instances run on one Capacity Block.

    The template data always carries what EC2 and EKS require for a Capacity
    Block: ``InstanceMarketOptions.MarketType`` ``capacity-block``, the
    reservation as ``CapacityReservationTarget`` and the block's
    ``InstanceType``. Instances require IMDSv2. Instances, volumes and network
    interfaces are tagged with the reservation ID.

    Node groups reference it by :attr:`launch_template_id` and the pinned
    :attr:`version_number`, so a change to the template becomes a new version
    that the node group rolls to explicitly.

    :param capacity_block: The block the instances launch into.
    :param image_id: AMI ID. Defaults to none in the template: EKS managed node
        groups then pick the AMI from their AMI type.
    :param user_data: User data, plain text (it is base64-encoded here), or an
        ``ec2.UserData``. Defaults to none.
    :param instance_profile_arn: Instance profile ARN for self-managed nodes.
        Defaults to none, as EKS managed node groups require.
    :param security_group_ids: Security groups of the instances. Defaults to
        none (EKS managed node groups then attach the cluster security group).
        With ``network_interfaces`` they are set on every interface.
    :param network_interfaces: Explicit interfaces, for EFA. Defaults to the
        single interface EC2 creates.
    :param root_volume: The root EBS volume. Defaults to an encrypted 200 GiB
        gp3 volume on ``/dev/xvda``.
    :param http_put_response_hop_limit: IMDS hop limit. Defaults to 1, so only
        processes on the host and host-network pods (VPC CNI, device plugins)
        reach instance metadata; other pods should get credentials from EKS
        Pod Identity or IRSA rather than from the node role.
    :param key_name: EC2 key pair for SSH. Defaults to none; use SSM Session
        Manager instead.
    :param capacity_reservation_resource_group_arn: Target this resource group
        instead of the reservation ID, as UltraServer blocks launch. Defaults to
        targeting the reservation ID.
    :param launch_template_name: A fixed name. Defaults to a name CloudFormation
        generates, so the stack can be deployed more than once per region.
    :param tags: Extra tags for instances, volumes and network interfaces.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        capacity_block: CapacityBlock,
        image_id: str | None = None,
        user_data: str | ec2.UserData | None = None,
        instance_profile_arn: str | None = None,
        security_group_ids: Sequence[str] | None = None,
        network_interfaces: Sequence[NetworkInterface] | None = None,
        root_volume: RootVolume | None = None,
        http_put_response_hop_limit: int = 1,
        key_name: str | None = None,
        capacity_reservation_resource_group_arn: str | None = None,
        launch_template_name: str | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(scope, id)
        require_capacity_block(capacity_block, path=self.node.path)
        volume = root_volume or RootVolume()
        problems = Problems(self.node.path)
        check_options(
            problems,
            user_data=user_data,
            image_id=image_id,
            network_interfaces=network_interfaces,
            root_volume=volume,
            hop_limit=http_put_response_hop_limit,
        )
        problems.raise_if_any()
        self.capacity_block = capacity_block
        self.root_volume = volume
        self.network_interfaces = tuple(network_interfaces or ())

        if capacity_reservation_resource_group_arn is not None:
            target = ec2.CfnLaunchTemplate.CapacityReservationTargetProperty(
                capacity_reservation_resource_group_arn=capacity_reservation_resource_group_arn
            )
        else:
            target = ec2.CfnLaunchTemplate.CapacityReservationTargetProperty(
                capacity_reservation_id=capacity_block.capacity_reservation_id
            )

        groups = list(security_group_ids) if security_group_ids else None
        interfaces = None
        if network_interfaces:
            interfaces = [
                ec2.CfnLaunchTemplate.NetworkInterfaceProperty(
                    network_card_index=nic.network_card_index,
                    device_index=nic.device_index,
                    interface_type=None
                    if nic.interface_type == "interface"
                    else nic.interface_type,
                    groups=groups,
                    delete_on_termination=True,
                )
                for nic in network_interfaces
            ]

        rendered_user_data: str | None
        if isinstance(user_data, ec2.UserData):
            rendered_user_data = user_data.render()
        else:
            rendered_user_data = user_data

        all_tags = {RESERVATION_TAG_KEY: capacity_block.capacity_reservation_id, **(tags or {})}
        tag_list = [CfnTag(key=key, value=value) for key, value in sorted(all_tags.items())]

        self.resource = ec2.CfnLaunchTemplate(
            self,
            "Resource",
            launch_template_name=launch_template_name,
            launch_template_data=ec2.CfnLaunchTemplate.LaunchTemplateDataProperty(
                instance_type=capacity_block.instance_type,
                instance_market_options=ec2.CfnLaunchTemplate.InstanceMarketOptionsProperty(
                    market_type="capacity-block"
                ),
                capacity_reservation_specification=(
                    ec2.CfnLaunchTemplate.CapacityReservationSpecificationProperty(
                        capacity_reservation_target=target
                    )
                ),
                image_id=image_id,
                user_data=Fn.base64(rendered_user_data) if rendered_user_data else None,
                iam_instance_profile=(
                    ec2.CfnLaunchTemplate.IamInstanceProfileProperty(arn=instance_profile_arn)
                    if instance_profile_arn
                    else None
                ),
                security_group_ids=None if interfaces else groups,
                network_interfaces=interfaces,
                key_name=key_name,
                metadata_options=ec2.CfnLaunchTemplate.MetadataOptionsProperty(
                    http_endpoint="enabled",
                    http_tokens="required",
                    http_put_response_hop_limit=http_put_response_hop_limit,
                ),
                block_device_mappings=[
                    ec2.CfnLaunchTemplate.BlockDeviceMappingProperty(
                        device_name=volume.device_name,
                        ebs=ec2.CfnLaunchTemplate.EbsProperty(
                            volume_size=volume.size_gib,
                            volume_type=volume.volume_type,
                            iops=volume.iops,
                            throughput=volume.throughput_mibps,
                            encrypted=True,
                            kms_key_id=volume.kms_key_arn,
                            delete_on_termination=True,
                        ),
                    )
                ],
                tag_specifications=[
                    ec2.CfnLaunchTemplate.TagSpecificationProperty(
                        resource_type=resource_type, tags=tag_list
                    )
                    for resource_type in ("instance", "volume", "network-interface")
                ],
            ),
        )

    @property
    def launch_template_id(self) -> str:
        """The launch template ID (``lt-...``), a deploy-time token."""
        return self.resource.ref

    @property
    def version_number(self) -> str:
        """The template's latest version number, so node groups pin the exact version."""
        return self.resource.attr_latest_version_number


def check_options(
    problems: Problems,
    *,
    user_data: object,
    image_id: str | None,
    network_interfaces: Sequence[NetworkInterface] | None,
    root_volume: RootVolume,
    hop_limit: int,
) -> None:
    """Add a problem for each launch-template option EC2 would reject.

    Node groups call it before building their launch template, so that its
    problems come in the same error as their own.
    """
    if user_data is not None and not isinstance(user_data, (str, ec2.UserData)):
        problems.add(
            f"user_data is {type(user_data).__name__}, not text; pass a str (decode bytes "
            "first) or an ec2.UserData."
        )
    if (
        image_id is not None
        and not Token.is_unresolved(image_id)
        and not image_id.startswith("ami-")
    ):
        problems.add(f"image_id {image_id!r} is not an AMI ID; pass an 'ami-...' ID.")
    if isinstance(hop_limit, bool) or not isinstance(hop_limit, int) or not 1 <= hop_limit <= 64:
        problems.add(
            f"http_put_response_hop_limit {hop_limit!r} must be between 1 and 64; use 1 to keep "
            "pods off instance metadata or 2 to let them reach it."
        )
    if root_volume.volume_type not in _VOLUME_TYPES:
        problems.add(
            f"root_volume.volume_type {root_volume.volume_type!r} is not one of "
            f"{', '.join(_VOLUME_TYPES)}."
        )
    if root_volume.volume_type in ("io1", "io2") and root_volume.iops is None:
        problems.add(
            f"root_volume.volume_type {root_volume.volume_type!r} needs iops; set "
            "root_volume.iops (for example 3000)."
        )
    if root_volume.iops is not None and root_volume.volume_type == "gp2":
        problems.add(
            "root_volume.iops is set but gp2 takes no IOPS; use gp3, io1 or io2, or drop iops."
        )
    if (
        isinstance(root_volume.size_gib, bool)
        or not isinstance(root_volume.size_gib, int)
        or not 1 <= root_volume.size_gib <= 65536
    ):
        problems.add(
            f"root_volume.size_gib {root_volume.size_gib!r} must be a whole number of GiB "
            "between 1 and 65536."
        )
    if root_volume.throughput_mibps is not None and root_volume.volume_type != "gp3":
        problems.add(
            f"root_volume.throughput_mibps is set but the volume type is "
            f"{root_volume.volume_type!r}; only gp3 takes a throughput."
        )
    elif root_volume.throughput_mibps is not None and not (
        _GP3_THROUGHPUT[0] <= root_volume.throughput_mibps <= _GP3_THROUGHPUT[1]
    ):
        problems.add(
            f"root_volume.throughput_mibps {root_volume.throughput_mibps!r} is outside gp3's "
            f"{_GP3_THROUGHPUT[0]}-{_GP3_THROUGHPUT[1]} MiB/s; pick a value in that range."
        )
    iops_range = _IOPS_RANGES.get(root_volume.volume_type)
    if root_volume.iops is not None and iops_range is not None:
        low, high = iops_range
        if not low <= root_volume.iops <= high:
            problems.add(
                f"root_volume.iops {root_volume.iops!r} is outside {root_volume.volume_type}'s "
                f"{low}-{high} IOPS; pick a value in that range."
            )
    seen: set[tuple[int, int]] = set()
    for nic in network_interfaces or ():
        if nic.network_card_index < 0 or nic.device_index < 0:
            problems.add(
                f"network interface (card {nic.network_card_index}, device "
                f"{nic.device_index}) has a negative index; indexes start at 0."
            )
        if nic.interface_type not in _INTERFACE_TYPES:
            problems.add(
                f"network interface on card {nic.network_card_index} has interface_type "
                f"{nic.interface_type!r}; use one of {', '.join(_INTERFACE_TYPES)}."
            )
        # EC2 user guide, "Maximize network bandwidth on Amazon EC2 instances with multiple
        # network cards": an EFA-only interface cannot be the primary; card 0, device 1 is fine.
        if nic.interface_type == "efa-only" and (nic.network_card_index, nic.device_index) == (
            0,
            0,
        ):
            problems.add(
                "an 'efa-only' interface cannot be the primary network interface (network card "
                "0, device index 0); put an 'interface' (ENA) or 'efa' interface there and the "
                "'efa-only' one at device index 1."
            )
        slot = (nic.network_card_index, nic.device_index)
        if slot in seen:
            problems.add(
                f"two network interfaces use network card {slot[0]} and device index {slot[1]}; "
                "each pair must be unique."
            )
        seen.add(slot)
    if network_interfaces and (0, 0) not in seen:
        problems.add(
            "the network interfaces have none at network card 0, device index 0; the primary "
            "interface must be there."
        )
