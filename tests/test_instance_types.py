"""The instance-type table: coverage, EKS AMI types, network cards and their sources."""

from __future__ import annotations

import dataclasses

import pytest

from capblock_constructs.efa import efa_network_interfaces
from capblock_constructs.instance_types import (
    InstanceTypeInfo,
    describe_unknown_instance_type,
    eks_ami_type,
    instance_type_info,
    known_instance_types,
)

# Every type EC2 sells as a Capacity Block (EC2 user guide "Capacity Blocks for ML"), and
# trn2u.48xlarge, the instance type of the Trn2 UltraServer blocks it sells (a u-trn2x64
# UltraServer is four trn2u.48xlarge instances, AWS Neuron documentation).
CAPACITY_BLOCK_TYPES = (
    "p4d.24xlarge",
    "p4de.24xlarge",
    "p5.4xlarge",
    "p5.48xlarge",
    "p5e.48xlarge",
    "p5en.48xlarge",
    "p6-b200.48xlarge",
    "p6-b300.48xlarge",
    "p6e-gb200.36xlarge",
    "trn1.32xlarge",
    "trn2.3xlarge",
    "trn2.48xlarge",
    "trn2u.48xlarge",
)


@pytest.mark.parametrize("instance_type", CAPACITY_BLOCK_TYPES)
def test_every_capacity_block_type_is_known_with_a_source(instance_type: str) -> None:
    info = instance_type_info(instance_type)
    assert info is not None
    assert info.instance_type == instance_type
    assert info.network_cards >= 1
    assert info.efa_supported
    assert len(info.source) > 20, "every row names where its numbers come from"
    assert instance_type in known_instance_types()


def test_the_table_holds_exactly_the_capacity_block_types() -> None:
    assert known_instance_types() == tuple(sorted(CAPACITY_BLOCK_TYPES))


# MaximumNetworkCards and card 0's MaximumNetworkInterfaces from DescribeInstanceTypes, as
# generated into aws/amazon-vpc-cni-k8s pkg/vpc/vpc_ip_resource_limit.go (@6152e01c).
VPC_CNI_CARDS = {
    "p4d.24xlarge": (4, 15),
    "p4de.24xlarge": (4, 15),
    "p5.4xlarge": (1, 4),
    "p5.48xlarge": (32, 2),
    "p5e.48xlarge": (32, 2),
    "p5en.48xlarge": (16, 4),
    "p6-b200.48xlarge": (8, 4),
    "p6-b300.48xlarge": (17, 4),
    "trn1.32xlarge": (8, 5),
    "trn2.3xlarge": (1, 2),
    "trn2.48xlarge": (16, 2),
}


@pytest.mark.parametrize(("instance_type", "cards"), VPC_CNI_CARDS.items())
def test_network_cards_match_describe_instance_types(
    instance_type: str, cards: tuple[int, int]
) -> None:
    info = instance_type_info(instance_type)
    assert info is not None
    assert info.network_cards == cards[0]
    assert "vpc_ip_resource_limit.go" in info.source


@pytest.mark.parametrize(("instance_type", "cards"), VPC_CNI_CARDS.items())
def test_card_zero_takes_the_interfaces_the_efa_layout_puts_there(
    instance_type: str, cards: tuple[int, int]
) -> None:
    on_card_zero = [
        nic for nic in efa_network_interfaces(instance_type) if nic.network_card_index == 0
    ]
    assert len(on_card_zero) <= cards[1]


@pytest.mark.parametrize(
    ("instance_type", "cards"),
    [
        # 17 cards (aws-parallelcluster PR #6930); not in the vpc-cni table.
        ("p6e-gb200.36xlarge", 17),
        # Assumed from trn2.48xlarge (same chips, same EFA bandwidth).
        ("trn2u.48xlarge", 16),
    ],
)
def test_numbers_no_aws_source_confirms_say_so(instance_type: str, cards: int) -> None:
    info = instance_type_info(instance_type)
    assert info is not None
    assert info.network_cards == cards
    assert "UNCONFIRMED" in info.source


# Card 0 is ENA only on these (and carries EFA on every other type): "the primary network
# card (network card index 0) only supports ENA" (AWS engineering, aws-parallelcluster #7143);
# the primary network card "must be of type interface" (EKS user guide, P6e-GB200 UltraServers).
ENA_ONLY_CARD_ZERO = ("p6-b300.48xlarge", "p6e-gb200.36xlarge")


@pytest.mark.parametrize("instance_type", CAPACITY_BLOCK_TYPES)
def test_card_zero_carries_efa_except_on_b300_and_gb200(instance_type: str) -> None:
    info = instance_type_info(instance_type)
    assert info is not None
    assert info.primary_card_efa is (instance_type not in ENA_ONLY_CARD_ZERO)


@pytest.mark.parametrize(
    ("instance_type", "ami_type"),
    [
        ("p4d.24xlarge", "AL2023_x86_64_NVIDIA"),
        ("p5.48xlarge", "AL2023_x86_64_NVIDIA"),
        ("p5en.48xlarge", "AL2023_x86_64_NVIDIA"),
        ("p6-b200.48xlarge", "AL2023_x86_64_NVIDIA"),
        ("p6-b300.48xlarge", "AL2023_x86_64_NVIDIA"),
        # Grace CPU: the EKS guide recommends the AL2023 ARM NVIDIA variant.
        ("p6e-gb200.36xlarge", "AL2023_ARM_64_NVIDIA"),
        ("trn1.32xlarge", "AL2023_x86_64_NEURON"),
        ("trn2.3xlarge", "AL2023_x86_64_NEURON"),
        ("trn2.48xlarge", "AL2023_x86_64_NEURON"),
        ("trn2u.48xlarge", "AL2023_x86_64_NEURON"),
    ],
)
def test_eks_ami_type_follows_accelerator_and_architecture(
    instance_type: str, ami_type: str
) -> None:
    assert eks_ami_type(instance_type) == ami_type


def test_grace_and_trainium_rows() -> None:
    gb200 = instance_type_info("p6e-gb200.36xlarge")
    trn2 = instance_type_info("trn2.48xlarge")
    assert gb200 is not None
    assert trn2 is not None
    assert (gb200.accelerator, gb200.architecture) == ("nvidia", "arm64")
    assert (trn2.accelerator, trn2.architecture) == ("neuron", "x86_64")


@pytest.mark.parametrize("instance_type", ["m5.large", "p9.48xlarge", ""])
def test_unknown_types_give_none_instead_of_failing(instance_type: str) -> None:
    assert instance_type_info(instance_type) is None
    assert eks_ami_type(instance_type) is None


def test_an_unknown_type_is_explained_before_anything_is_asked_for() -> None:
    reason = describe_unknown_instance_type("m5.large")
    assert reason.startswith("instance type 'm5.large' is not one that EC2 sells as a Capacity")
    assert "or is newer than the capblock-constructs instance-type table" in reason
    assert all(name in reason for name in CAPACITY_BLOCK_TYPES)


def test_rows_are_frozen() -> None:
    info = instance_type_info("p5.48xlarge")
    assert isinstance(info, InstanceTypeInfo)
    with pytest.raises(dataclasses.FrozenInstanceError):
        info.network_cards = 1  # type: ignore[misc]
