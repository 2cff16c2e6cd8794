"""What the constructs need to know about the instance types Capacity Blocks sell.

One table, one row per instance type, each with the source of its numbers.
The table covers the types EC2 lists for Capacity Blocks (p4d, p4de, p5, p5e,
p5en, p6-b200, p6-b300, p6e-gb200, trn1, trn2). A type that is not in the
table gives ``None``: callers decide what that means (EFA on an unknown type
is an error; an unknown EKS AMI type means the user must name one).

Network-card counts come from ``DescribeInstanceTypes``
(``NetworkInfo.MaximumNetworkCards``) as generated into
aws/amazon-vpc-cni-k8s ``pkg/vpc/vpc_ip_resource_limit.go`` (commit
01c4ad5a) where that file has the type; other rows name their source, and a
number no AWS-published source confirmed says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = [
    "InstanceTypeInfo",
    "eks_ami_type",
    "instance_type_info",
    "known_instance_types",
]

_VPC_CNI = (
    "aws/amazon-vpc-cni-k8s pkg/vpc/vpc_ip_resource_limit.go @01c4ad5a "
    "(generated from EC2 DescribeInstanceTypes)"
)


@dataclass(frozen=True, kw_only=True)
class InstanceTypeInfo:
    """Accelerator, CPU architecture and network cards of one instance type."""

    instance_type: str
    """The EC2 instance type, for example ``p5.48xlarge``."""
    accelerator: Literal["nvidia", "neuron"]
    """``nvidia`` for GPU types, ``neuron`` for Trainium and Inferentia."""
    architecture: Literal["x86_64", "arm64"]
    """The host CPU architecture (``arm64`` for Grace-based types)."""
    network_cards: int
    """``MaximumNetworkCards``: how many network cards an instance has."""
    efa_supported: bool
    """Whether the type supports Elastic Fabric Adapter interfaces."""
    source: str
    """Where the numbers in this row come from, or what is unconfirmed."""
    primary_card_efa: bool = True
    """Whether network card 0 carries EFA.

    Defaults to yes. ``p6-b300.48xlarge`` is the exception: its card 0 is
    ENA only, so EFA interfaces go on cards 1-16 only.
    """
    single_interface_cards: frozenset[int] = frozenset()
    """Network cards that accept only one interface (device index 0).

    Defaults to none. ``p6e-gb200.36xlarge`` allows one interface on its odd
    cards, so an EFA interface there must use device index 0.
    """

    @property
    def eks_ami_type(self) -> str:
        """The EKS-optimized AL2023 accelerated AMI type for this instance type."""
        if self.accelerator == "neuron":
            return "AL2023_x86_64_NEURON"
        if self.architecture == "arm64":
            return "AL2023_ARM_64_NVIDIA"
        return "AL2023_x86_64_NVIDIA"


def _nvidia(
    instance_type: str, cards: int, source: str, *, primary_card_efa: bool = True
) -> InstanceTypeInfo:
    return InstanceTypeInfo(
        instance_type=instance_type,
        accelerator="nvidia",
        architecture="x86_64",
        network_cards=cards,
        efa_supported=True,
        source=source,
        primary_card_efa=primary_card_efa,
    )


def _neuron(instance_type: str, cards: int, source: str) -> InstanceTypeInfo:
    return InstanceTypeInfo(
        instance_type=instance_type,
        accelerator="neuron",
        architecture="x86_64",
        network_cards=cards,
        efa_supported=True,
        source=source,
    )


_TABLE: dict[str, InstanceTypeInfo] = {
    info.instance_type: info
    for info in (
        _nvidia("p4d.24xlarge", 4, _VPC_CNI),
        _nvidia("p4de.24xlarge", 4, _VPC_CNI),
        _nvidia(
            "p5.4xlarge",
            1,
            f"{_VPC_CNI}; EFA support per third-party tables (1 EFA interface), "
            "not confirmed in an AWS document",
        ),
        _nvidia("p5.48xlarge", 32, _VPC_CNI),
        _nvidia("p5e.48xlarge", 32, _VPC_CNI),
        _nvidia("p5en.48xlarge", 16, _VPC_CNI),
        _nvidia("p6-b200.48xlarge", 8, _VPC_CNI),
        _nvidia(
            "p6-b300.48xlarge",
            17,
            "aws/aws-parallelcluster issue #7143 quoting AWS engineering: 17 network "
            "cards, card 0 supports ENA only, cards 1-16 support EFA and ENA "
            "(not in the vpc-cni table; no EC2 user-guide table seen)",
            primary_card_efa=False,
        ),
        InstanceTypeInfo(
            instance_type="p6e-gb200.36xlarge",
            accelerator="nvidia",
            architecture="arm64",
            network_cards=17,
            efa_supported=True,
            source=(
                "aws/aws-parallelcluster PR #6930 (maintainer review): 17 network cards, "
                "MaximumNetworkInterfaces 2 on even and 1 on odd cards; Grace CPU (arm64) "
                "and AL2023_ARM_64_NVIDIA per the EKS user guide ml-eks-nvidia-ultraserver "
                "(no EC2 user-guide table seen)"
            ),
            single_interface_cards=frozenset(range(1, 17, 2)),
        ),
        _neuron("trn1.32xlarge", 8, _VPC_CNI),
        _neuron(
            "trn2.3xlarge",
            1,
            "UNCONFIRMED: not in the vpc-cni table; 1 network card with EFA assumed "
            "from third-party listings",
        ),
        _neuron("trn2.48xlarge", 16, _VPC_CNI),
    )
}


def instance_type_info(instance_type: str) -> InstanceTypeInfo | None:
    """The table row for ``instance_type``, or ``None`` when the table does not know it."""
    return _TABLE.get(instance_type)


def eks_ami_type(instance_type: str) -> str | None:
    """The EKS ``AmiType`` for nodes of ``instance_type``, or ``None`` when unknown.

    ``AL2023_x86_64_NVIDIA`` for x86 NVIDIA types, ``AL2023_ARM_64_NVIDIA``
    for Grace-based types (p6e-gb200), ``AL2023_x86_64_NEURON`` for Trainium.
    With ``None`` the caller should ask the user for an AMI type.
    """
    info = _TABLE.get(instance_type)
    return info.eks_ami_type if info else None


def known_instance_types() -> tuple[str, ...]:
    """Every instance type in the table, sorted."""
    return tuple(sorted(_TABLE))
