"""Kubernetes taints for Capacity Block nodes, shared by both node-group kinds."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .instance_types import instance_type_info

__all__ = ["TAINT_EFFECTS", "NodeTaint", "accelerator_taints"]

TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
"""The taint effects Kubernetes knows, as kubectl and pod tolerations spell them."""

# EKS's node group API spells the same effects in upper snake case.
_EKS_EFFECTS = {
    "NoSchedule": "NO_SCHEDULE",
    "PreferNoSchedule": "PREFER_NO_SCHEDULE",
    "NoExecute": "NO_EXECUTE",
}
_FROM_EKS = {eks: kubernetes for kubernetes, eks in _EKS_EFFECTS.items()}


@dataclass(frozen=True, kw_only=True)
class NodeTaint:
    """A taint every node of a group carries from the moment it registers.

    The effect is spelled as in Kubernetes (``NoSchedule``); the EKS API's
    spelling (``NO_SCHEDULE``) is accepted too and stored in Kubernetes form.
    The node group constructs validate keys, values and effects and report
    every bad taint at once.
    """

    key: str
    """The taint key, for example ``nvidia.com/gpu``."""
    value: str | None = None
    """The taint value. Defaults to none."""
    effect: str = "NoSchedule"
    """``NoSchedule``, ``PreferNoSchedule`` or ``NoExecute``. Defaults to ``NoSchedule``."""

    def __post_init__(self) -> None:
        if self.effect in _FROM_EKS:
            object.__setattr__(self, "effect", _FROM_EKS[self.effect])

    @property
    def eks_effect(self) -> str:
        """The effect as ``AWS::EKS::Nodegroup`` spells it (``NO_SCHEDULE``)."""
        return _EKS_EFFECTS.get(self.effect, self.effect)

    @property
    def kubelet_form(self) -> str:
        """The taint as ``--register-with-taints`` takes it: ``key[=value]:Effect``."""
        head = f"{self.key}={self.value}" if self.value else self.key
        return f"{head}:{self.effect}"


def accelerator_of(
    instance_type: str, *, ami_type: str | None = None
) -> Literal["nvidia", "neuron"] | None:
    """The accelerator of ``instance_type``: ``nvidia``, ``neuron`` or ``None``.

    The instance-type table decides; for a type it does not know, the EKS
    AMI type does (``...NVIDIA`` or ``...NEURON``); with neither, ``None``.
    """
    info = instance_type_info(instance_type)
    if info is not None:
        return info.accelerator
    if ami_type is not None:
        if "NVIDIA" in ami_type:
            return "nvidia"
        if "NEURON" in ami_type:
            return "neuron"
    return None


def accelerator_taints(instance_type: str, *, ami_type: str | None = None) -> list[NodeTaint]:
    """The default taint that keeps pods without the accelerator's toleration off the nodes.

    ``nvidia.com/gpu`` for NVIDIA types, ``aws.amazon.com/neuron`` for
    Trainium and Inferentia (the resource names the device plugins expose, so
    the pods that request them usually tolerate them). For an instance type
    the library does not know, the EKS AMI type decides; with neither, none.
    """
    accelerator = accelerator_of(instance_type, ami_type=ami_type)
    if accelerator == "nvidia":
        return [NodeTaint(key="nvidia.com/gpu")]
    if accelerator == "neuron":
        return [NodeTaint(key="aws.amazon.com/neuron")]
    return []
