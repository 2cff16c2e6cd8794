"""Which EKS-optimized accelerated AMI self-managed nodes run, and when its ID is resolved."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from aws_cdk import Token
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from ._problems import Problems
from ._warnings import warn
from .instance_types import describe_unknown_instance_type, instance_type_info

__all__ = ["AmiResolution", "EksOptimizedAmi"]

_OPERATING_SYSTEMS = ("al2023", "bottlerocket")
_ARCHITECTURES = ("x86_64", "arm64")
_ACCELERATORS = ("nvidia", "neuron")
# What CDK returns from a context lookup that the CLI has not filled yet.
_LOOKUP_DUMMY_PREFIX = "dummy-value-for-"
# Stands in for the AMI until the CDK CLI fills the lookup; EC2 rejects it, so it cannot deploy.
_PLACEHOLDER_IMAGE_ID = "ami-00000000000000000"


class AmiResolution(enum.Enum):
    """When the AMI ID behind AWS's public SSM parameter is read."""

    DEPLOY_TIME = "deploy-time"
    """A CloudFormation parameter of type ``AWS::SSM::Parameter::Value<AWS::EC2::Image::Id>``.

    Synthesis needs no AWS access, but CloudFormation reads the parameter on
    every deploy: when AWS publishes a new recommended AMI, the next deploy
    creates a new launch template version and the group's replacement or
    newly launched nodes use it (running nodes are not replaced).
    """
    SYNTH_TIME = "synth-time"
    """A CDK context lookup (``ssm:...`` key in ``cdk.context.json``).

    The AMI stays pinned until the entry is reset (``cdk context --reset``),
    so deploys never change it by surprise. Needs the CDK CLI and AWS
    credentials on the first synth.
    """


@dataclass(frozen=True, kw_only=True)
class EksOptimizedAmi:
    """The node image: an EKS-optimized accelerated AMI from AWS's SSM parameters, or a pinned ID.

    By default the AMI fits the instance type: Amazon Linux 2023 NVIDIA
    (x86_64 or arm64) for GPU types and AL2023 Neuron for Trainium, for the
    cluster's Kubernetes version, read from
    ``/aws/service/eks/optimized-ami/<version>/amazon-linux-2023/<arch>/<nvidia|neuron>/recommended/image_id``;
    Bottlerocket uses ``/aws/service/bottlerocket/aws-k8s-<version>-nvidia/<arch>/latest/image_id``.

    To keep deploys from changing the AMI, pin it with :meth:`pinned` (an
    explicit ``ami-`` ID, reviewed in code) or resolve at synth time
    (:attr:`AmiResolution.SYNTH_TIME`, pinned in ``cdk.context.json``).
    """

    operating_system: str = "al2023"
    """``al2023`` (nodeadm) or ``bottlerocket``. Defaults to Amazon Linux 2023."""
    kubernetes_version: str | None = None
    """The Kubernetes version of the AMI. Defaults to the cluster's version."""
    architecture: str | None = None
    """``x86_64`` or ``arm64``. Defaults to the instance type's architecture."""
    accelerator: str | None = None
    """``nvidia`` or ``neuron``. Defaults to the instance type's accelerator."""
    image_id: str | None = None
    """A fixed AMI ID. Defaults to reading the public SSM parameter."""
    resolution: AmiResolution = AmiResolution.DEPLOY_TIME
    """When the SSM parameter is read. Defaults to deploy time (no lookup at synth)."""

    @classmethod
    def pinned(
        cls,
        image_id: str,
        *,
        operating_system: str = "al2023",
        architecture: str | None = None,
    ) -> EksOptimizedAmi:
        """A fixed AMI ID; name its architecture so synthesis can check it fits the instance."""
        return cls(image_id=image_id, operating_system=operating_system, architecture=architecture)

    def parameter_name(
        self, *, kubernetes_version: str, architecture: str, accelerator: str
    ) -> str:
        """The public SSM parameter that holds the recommended AMI ID."""
        if self.operating_system == "bottlerocket":
            return (
                f"/aws/service/bottlerocket/aws-k8s-{kubernetes_version}-nvidia/"
                f"{architecture}/latest/image_id"
            )
        return (
            f"/aws/service/eks/optimized-ami/{kubernetes_version}/amazon-linux-2023/"
            f"{architecture}/{accelerator}/recommended/image_id"
        )


def resolve_image_id(
    scope: Construct,
    ami: EksOptimizedAmi,
    *,
    instance_type: str,
    cluster_kubernetes_version: str | None,
    problems: Problems,
) -> str | None:
    """The ``ImageId`` for the launch template, or ``None`` with problems added."""
    if ami.operating_system not in _OPERATING_SYSTEMS:
        problems.add(
            f"ami.operating_system {ami.operating_system!r} is not supported; use "
            f"{' or '.join(_OPERATING_SYSTEMS)}."
        )
        return None
    if ami.architecture is not None and ami.architecture not in _ARCHITECTURES:
        problems.add(
            f"ami.architecture {ami.architecture!r} is not one of {', '.join(_ARCHITECTURES)}."
        )
        return None
    if ami.accelerator is not None and ami.accelerator not in _ACCELERATORS:
        problems.add(
            f"ami.accelerator {ami.accelerator!r} is not one of {', '.join(_ACCELERATORS)}."
        )
        return None
    info = instance_type_info(instance_type)
    if info is not None and ami.architecture is not None and ami.architecture != info.architecture:
        problems.add(
            f"the AMI is for {ami.architecture} but {instance_type} is an {info.architecture} "
            f"instance type, so the nodes would not boot; use an {info.architecture} AMI "
            f"(architecture={info.architecture!r})."
        )
        return None
    if info is not None and ami.accelerator is not None and ami.accelerator != info.accelerator:
        problems.add(
            f"the AMI is for {ami.accelerator} accelerators but {instance_type} has "
            f"{info.accelerator} ones; use accelerator={info.accelerator!r} or leave it unset."
        )
        return None
    if ami.image_id is not None:
        if ami.architecture is None and info is not None:
            # A pinned ID says nothing about its architecture, so a mismatch with the
            # instance type would only show when the nodes fail to boot.
            warn(
                scope,
                "ami-architecture-unchecked",
                f"image_id {ami.image_id!r} is pinned without its architecture, so synthesis "
                f"cannot check that it fits {instance_type} ({info.architecture}); pass "
                f"EksOptimizedAmi.pinned({ami.image_id!r}, architecture={info.architecture!r}).",
            )
        return ami.image_id

    architecture = ami.architecture or (info.architecture if info else None)
    accelerator = ami.accelerator or (info.accelerator if info else None)
    if architecture is None or accelerator is None:
        problems.add(
            f"{describe_unknown_instance_type(instance_type)}, so its AMI cannot be chosen; "
            "check the reservation's instance type, or pass "
            "ami=EksOptimizedAmi(architecture='x86_64', accelerator='nvidia') (or the right "
            "values), or EksOptimizedAmi.pinned('ami-...')."
        )
        return None
    if ami.operating_system == "bottlerocket" and accelerator == "neuron":
        problems.add(
            f"{instance_type} has Neuron accelerators, and the EKS documentation lists no "
            "Bottlerocket Neuron variant; use operating_system='al2023' or pin a Bottlerocket "
            "AMI that carries the Neuron driver with EksOptimizedAmi.pinned('ami-...', "
            "operating_system='bottlerocket')."
        )
        return None
    version = ami.kubernetes_version or cluster_kubernetes_version
    if version is None:
        # The cluster resolution has already explained what is missing.
        return None
    if Token.is_unresolved(version):
        problems.add(
            "the Kubernetes version is a deploy-time value, so the AMI parameter cannot be named; "
            "pass kubernetes_version='1.33' (the cluster's version)."
        )
        return None
    name = ami.parameter_name(
        kubernetes_version=version, architecture=architecture, accelerator=accelerator
    )
    if ami.resolution is AmiResolution.SYNTH_TIME:
        value = ssm.StringParameter.value_from_lookup(scope, name)
        if value.startswith(_LOOKUP_DUMMY_PREFIX):
            # The CDK CLI fills the lookup and synthesizes again; until then, a
            # placeholder that EC2 rejects keeps the first pass from failing.
            return _PLACEHOLDER_IMAGE_ID
        return value
    return ec2.MachineImage.from_ssm_parameter(name).get_image(scope).image_id
