"""What the constructs need to know about the instance types Capacity Blocks sell.

One table, one row per instance type, each with the source of its numbers.
The table covers the types EC2 sells as Capacity Blocks (p4d, p4de, p5, p5e,
p5en, p6-b200, p6-b300, p6e-gb200, trn1, trn2, and trn2u, the instance type of
Trn2 UltraServer blocks). A type that is not in the table gives ``None``:
callers decide what that means (EFA on an unknown type is an error; an unknown
EKS AMI type means the user must name one) and say why with
:func:`describe_unknown_instance_type`.

Network-card counts come from ``DescribeInstanceTypes``
(``NetworkInfo.MaximumNetworkCards``) as generated into
aws/amazon-vpc-cni-k8s ``pkg/vpc/vpc_ip_resource_limit.go`` (commit
6152e01c, August 2026) where that file has the type; other rows name their
source, and a number no AWS-published source confirmed says so.

Whether network card 0 carries EFA decides the EFA layout (see
:func:`capblock_constructs.efa.efa_network_interfaces`), which follows what AWS
documents today, identically in the EC2 user guide ("Maximize network
bandwidth on Amazon EC2 instances with multiple network cards",
efa-acc-inst-types) and the EKS user guide ("Manage EFA devices on Amazon
EKS", device-management-efa, awsdocs/amazon-eks-user-guide @43d79bdb):

- the primary interface (network card 0, device index 0) is a plain ENA
  ``interface``, never ``efa-only``;
- if network card 0 supports EFA, an ``efa-only`` interface at card 0,
  device index 1;
- an ``efa-only`` interface at device index 0 on every other card.

Older guides (and terraform-aws-eks and aws-k8s-tester, which copied them) put
an ``efa`` (EFA with ENA) interface at card 0 and ``efa-only`` at device index
1 elsewhere; AWS ParallelCluster moved to the layout above in PR #7262. Card 0
lacks EFA on exactly the types whose ``MaximumEfaInterfaces`` is below
``MaximumNetworkCards`` (ParallelCluster's rule): p6-b300 and p6e-gb200.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = [
    "InstanceTypeInfo",
    "describe_unknown_instance_type",
    "eks_ami_type",
    "instance_type_info",
    "known_instance_types",
]

_VPC_CNI = (
    "aws/amazon-vpc-cni-k8s pkg/vpc/vpc_ip_resource_limit.go @6152e01c "
    "(generated from EC2 DescribeInstanceTypes)"
)
# Card 0 carries EFA where MaximumEfaInterfaces equals MaximumNetworkCards (the rule AWS
# ParallelCluster lays interfaces out by); the EC2 user guide's P5 example and the EKS user
# guide's P6-B200 one put an efa-only interface there.
_CARD_ZERO_EFA = "card 0 carries EFA (EC2 user guide efa-acc-inst-types)"


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
    """Whether network card 0 supports EFA, so that it takes an ``efa-only`` interface at
    device index 1 beside the primary ENA interface.

    Defaults to yes. ``p6-b300.48xlarge`` and ``p6e-gb200.36xlarge`` are the
    exceptions: their card 0 is ENA only, so EFA interfaces go on cards 1-16.
    """
    network_cards_confirmed: bool = True
    """Whether an AWS-published source confirms :attr:`network_cards` and
    :attr:`primary_card_efa`.

    Defaults to yes. Where it does not (``trn2u.48xlarge``), a node group with EFA
    warns at synth time: too many interfaces would make every launch fail when the
    block starts, so the numbers must be checked against ``DescribeInstanceTypes``
    before then.
    """
    single_interface_cards: frozenset[int] = frozenset()
    """Network cards that accept only one interface (device index 0).

    Defaults to none. ``p6e-gb200.36xlarge`` allows one interface on its odd
    cards. Kept as a fact of the hardware: the documented layout puts exactly
    one interface, at device index 0, on every card but card 0, which such
    cards accept.
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


def _neuron(
    instance_type: str, cards: int, source: str, *, confirmed: bool = True
) -> InstanceTypeInfo:
    return InstanceTypeInfo(
        instance_type=instance_type,
        accelerator="neuron",
        architecture="x86_64",
        network_cards=cards,
        efa_supported=True,
        source=source,
        network_cards_confirmed=confirmed,
    )


# The EFA layout these rows feed is the one AWS documents today (module docstring):
# EC2 user guide, "Maximize network bandwidth on Amazon EC2 instances with multiple network
# cards" (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/efa-acc-inst-types.html), and
# EKS user guide, "Manage EFA devices on Amazon EKS"
# (https://docs.aws.amazon.com/eks/latest/userguide/device-management-efa.html).
_TABLE: dict[str, InstanceTypeInfo] = {
    info.instance_type: info
    for info in (
        _nvidia("p4d.24xlarge", 4, f"{_VPC_CNI}; {_CARD_ZERO_EFA}"),
        _nvidia("p4de.24xlarge", 4, f"{_VPC_CNI}; {_CARD_ZERO_EFA}"),
        _nvidia(
            "p5.4xlarge",
            1,
            f"{_VPC_CNI} (card 0 takes 4 interfaces); EFA support per third-party tables "
            "(1 EFA interface), not confirmed in an AWS document",
        ),
        _nvidia(
            "p5.48xlarge",
            32,
            f"{_VPC_CNI}; {_CARD_ZERO_EFA}, whose P5 example has 32 EFA devices and one ENA",
        ),
        _nvidia("p5e.48xlarge", 32, f"{_VPC_CNI}; {_CARD_ZERO_EFA} (P5 and P5e section)"),
        _nvidia("p5en.48xlarge", 16, f"{_VPC_CNI}; {_CARD_ZERO_EFA}"),
        _nvidia(
            "p6-b200.48xlarge",
            8,
            f"{_VPC_CNI}; the EKS user guide's P6-B200 launch template: 1 ENA interface and "
            "8 efa-only interfaces, one at card 0 device 1",
        ),
        _nvidia(
            "p6-b300.48xlarge",
            17,
            f"{_VPC_CNI}; card 0 supports ENA only, cards 1-16 EFA and ENA (AWS engineering "
            "quoted in aws/aws-parallelcluster issue #7143; ParallelCluster's layout code)",
            primary_card_efa=False,
        ),
        InstanceTypeInfo(
            instance_type="p6e-gb200.36xlarge",
            accelerator="nvidia",
            architecture="arm64",
            network_cards=17,
            efa_supported=True,
            source=(
                "17 network cards, MaximumNetworkInterfaces 2 on even and 1 on odd cards "
                "(aws/aws-parallelcluster PR #6930, maintainer review; not in the vpc-cni "
                "table); card 0 ENA only: the EKS user guide ml-eks-nvidia-ultraserver says "
                "the primary network card 'must be of type interface', and ParallelCluster "
                "lays out no EFA there; Grace CPU (arm64) and AL2023_ARM_64_NVIDIA per the "
                "same EKS page. UNCONFIRMED: how many EFA devices the instance exposes (the "
                "EKS page counts 4 with one efa-only interface per 'NCI group')"
            ),
            primary_card_efa=False,
            single_interface_cards=frozenset(range(1, 17, 2)),
        ),
        _neuron("trn1.32xlarge", 8, f"{_VPC_CNI}; 8 EFA devices (AWS Neuron documentation)"),
        _neuron("trn2.3xlarge", 1, f"{_VPC_CNI} (card 0 takes 2 interfaces); {_CARD_ZERO_EFA}"),
        _neuron("trn2.48xlarge", 16, f"{_VPC_CNI}; {_CARD_ZERO_EFA}"),
        _neuron(
            "trn2u.48xlarge",
            16,
            "the instance type of Trn2 UltraServer Capacity Blocks (u-trn2x64: four "
            "trn2u.48xlarge instances, 16 Trainium2 chips each, per the AWS Neuron "
            "documentation 'Amazon EC2 Trn2 Architecture'; EC2 sells Trn2 UltraServer "
            "Capacity Blocks in us-east-2 per the EC2 user guide; botocore 1.44.8 lists the "
            "type). UNCONFIRMED: 16 network cards with EFA on card 0, assumed from "
            "trn2.48xlarge, which has the same chips and 3.2 Tbps of EFA; the type is not in "
            "the vpc-cni table",
            confirmed=False,
        ),
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


def describe_unknown_instance_type(instance_type: str) -> str:
    """Why the table has no row for ``instance_type``, to lead a message that then asks for
    what the row would have said (an AMI type, the network interfaces, ...).

    A type outside the table is either not sold as a Capacity Block at all (a
    typo, or an On-Demand type) or newer than this version of the library.
    """
    return (
        f"instance type {instance_type!r} is not one that EC2 sells as a Capacity Block, or is "
        "newer than the capblock-constructs instance-type table (which knows "
        f"{', '.join(known_instance_types())})"
    )
