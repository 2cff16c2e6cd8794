"""NodeTaint spellings and the default accelerator taint."""

from __future__ import annotations

import pytest

from capblock_constructs import NodeTaint, accelerator_taints
from capblock_constructs.taints import accelerator_of


@pytest.mark.parametrize(
    ("given", "kubernetes", "eks"),
    [
        ("NoSchedule", "NoSchedule", "NO_SCHEDULE"),
        ("NO_EXECUTE", "NoExecute", "NO_EXECUTE"),
        ("PREFER_NO_SCHEDULE", "PreferNoSchedule", "PREFER_NO_SCHEDULE"),
    ],
)
def test_both_spellings_of_the_effect(given: str, kubernetes: str, eks: str) -> None:
    taint = NodeTaint(key="k", effect=given)
    assert taint.effect == kubernetes
    assert taint.eks_effect == eks


def test_kubelet_form() -> None:
    # kubelet --register-with-taints takes key[=value]:Effect.
    assert NodeTaint(key="nvidia.com/gpu").kubelet_form == "nvidia.com/gpu:NoSchedule"
    assert (
        NodeTaint(key="dedicated", value="ml", effect="NoExecute").kubelet_form
        == "dedicated=ml:NoExecute"
    )


@pytest.mark.parametrize(
    ("instance_type", "ami_type", "key"),
    [
        ("p5.48xlarge", None, "nvidia.com/gpu"),
        ("p6e-gb200.36xlarge", None, "nvidia.com/gpu"),
        ("trn1.32xlarge", None, "aws.amazon.com/neuron"),
        ("p9.48xlarge", "AL2023_x86_64_NVIDIA", "nvidia.com/gpu"),
        ("inf9.48xlarge", "AL2023_x86_64_NEURON", "aws.amazon.com/neuron"),
    ],
)
def test_accelerator_taint(instance_type: str, ami_type: str | None, key: str) -> None:
    assert accelerator_taints(instance_type, ami_type=ami_type) == [NodeTaint(key=key)]


def test_unknown_type_without_ami_type_gets_no_taint() -> None:
    assert accelerator_taints("p9.48xlarge") == []


@pytest.mark.parametrize(
    ("instance_type", "ami_type", "accelerator"),
    [
        # The table decides for the types it knows, whatever the AMI type says.
        ("p5.48xlarge", "AL2023_x86_64_NEURON", "nvidia"),
        ("trn2.48xlarge", None, "neuron"),
        # Otherwise the AMI type names it; with neither, none.
        ("p9.48xlarge", "BOTTLEROCKET_x86_64_NVIDIA", "nvidia"),
        ("inf9.48xlarge", "AL2023_x86_64_NEURON", "neuron"),
        ("p9.48xlarge", "AL2023_x86_64_STANDARD", None),
        ("p9.48xlarge", None, None),
    ],
)
def test_accelerator_of(instance_type: str, ami_type: str | None, accelerator: str | None) -> None:
    assert accelerator_of(instance_type, ami_type=ami_type) == accelerator
