"""Construct warnings: one prefix, and every ID the library uses listed in one place."""

from __future__ import annotations

from constructs import IConstruct

WARNING_PREFIX = "capblock-constructs"

WARNING_IDS = frozenset(
    {
        # A custom AMI with no user data: EKS does not bootstrap custom AMIs.
        "custom-ami-without-user-data",
        # A self-managed group's node role is not mapped into the cluster.
        "node-role-not-mapped",
        # An AMI pinned by ID without its architecture, which synthesis cannot check.
        "ami-architecture-unchecked",
        # Node groups of one controller whose target sizes add up to more instances than
        # their Capacity Block reserves: the instances beyond its count can never launch.
        "capacity-block-over-committed",
        # A self-managed group that feeds another termination-handler queue than the first
        # group of its cluster, which the cluster's one handler installation does not read.
        "termination-queue-not-shared",
        # EFA interfaces laid out from a network-card count no AWS source confirms yet.
        "efa-layout-unconfirmed",
    }
)
"""The warnings the constructs add, as ``capblock-constructs:<id>``; acknowledge one with
``Annotations``/``Validations`` using that full ID."""


def warn(scope: IConstruct, key: str, message: str) -> None:
    """Add the warning ``capblock-constructs:<key>`` to ``scope``."""
    if key not in WARNING_IDS:
        raise ValueError(f"unknown warning ID {key!r}; add it to WARNING_IDS")
    from aws_cdk import Annotations

    Annotations.of(scope).add_warning_v2(f"{WARNING_PREFIX}:{key}", message)
