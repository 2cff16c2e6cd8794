"""The instance-type table: coverage, EKS AMI types, network cards and their sources."""

from __future__ import annotations

import dataclasses

import pytest

from capblock_constructs.instance_types import (
    InstanceTypeInfo,
    eks_ami_type,
    instance_type_info,
    known_instance_types,
)

# Every type EC2 sells as a Capacity Block (EC2 user guide "Capacity Blocks for ML").
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


@pytest.mark.parametrize(
    ("instance_type", "cards"),
    [
        # MaximumNetworkCards from DescribeInstanceTypes, as generated into
        # aws/amazon-vpc-cni-k8s pkg/vpc/vpc_ip_resource_limit.go.
        ("p4d.24xlarge", 4),
        ("p4de.24xlarge", 4),
        ("p5.4xlarge", 1),
        ("p5.48xlarge", 32),
        ("p5e.48xlarge", 32),
        ("p5en.48xlarge", 16),
        ("p6-b200.48xlarge", 8),
        ("trn1.32xlarge", 8),
        ("trn2.48xlarge", 16),
        # aws-parallelcluster #7143 (AWS engineering) and PR #6930.
        ("p6-b300.48xlarge", 17),
        ("p6e-gb200.36xlarge", 17),
    ],
)
def test_network_cards_match_describe_instance_types(instance_type: str, cards: int) -> None:
    info = instance_type_info(instance_type)
    assert info is not None
    assert info.network_cards == cards


def test_unconfirmed_numbers_say_so() -> None:
    info = instance_type_info("trn2.3xlarge")
    assert info is not None
    assert "UNCONFIRMED" in info.source


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


def test_rows_are_frozen() -> None:
    info = instance_type_info("p5.48xlarge")
    assert isinstance(info, InstanceTypeInfo)
    with pytest.raises(dataclasses.FrozenInstanceError):
        info.network_cards = 1  # type: ignore[misc]
