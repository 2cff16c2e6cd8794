"""Issue 5: every mistake a user can make is caught at synth time with a message that helps.

One table, one row per mistake. Each row performs the mistake through a public
entry point and names what the user must read: the offending value and the
fix. A row either raises (:class:`CapacityBlockError`, never a jsii or
botocore error, with no such exception chained), annotates (a warning on the
construct, read with ``aws_cdk.assertions.Annotations``) or is a ``capblock``
command that exits 2 with the message on stderr.

Raising rows only construct: validation runs in the constructors, so nothing
is synthesized. The annotation rows share one stack, synthesized once.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from aws_cdk import Duration, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_eks_v2 as eks_v2
from aws_cdk.assertions import Annotations, Match
from botocore.stub import Stubber
from constructs import Construct

from capblock_constructs import (
    CapacityBlock,
    CapacityBlockController,
    CapacityBlockError,
    CapacityBlockLaunchTemplate,
    CapacityBlockManagedNodeGroup,
    CapacityBlockSelfManagedNodeGroup,
    EksOptimizedAmi,
    NetworkInterface,
    NodeTaint,
    RootVolume,
    _aws,
)
from capblock_constructs import _cluster_info as cluster_lookup_module
from capblock_constructs import _reservation_lookup as lookup_module
from capblock_constructs.cli import main

from .support import (
    ACCOUNT,
    BEFORE_START,
    END,
    REGION,
    RESERVATION_ID,
    START,
    block,
    make_app,
    make_stack,
)

LOOKUP_REQUEST = {"CapacityReservationIds": [RESERVATION_ID]}
PLANNED_TAG = "aws:ec2capacityreservation:incrementalRequestedQuantity"
CLUSTER_SG = "sg-0123456789abcdef0"
ENDPOINT = "https://ABCDEF.gr7.us-east-2.eks.amazonaws.com"
CA = "LS0tLS1CRUdJTg=="
SERVICE_CIDR = "10.100.0.0/16"
IN_ZONE_SUBNET = "subnet-0a"  # us-east-2a, the reference block's zone
OTHER_ZONE_SUBNET = "subnet-0b"  # us-east-2b
AFTER_END = "2027-03-16T00:00:00Z"
FIX_THE_ID = "followed by 8 or 17 lowercase hex digits"
# Text a user must never see: a raw jsii or botocore failure, or an object's default repr.
LEAKS = ("traceback", "jsii", "botocore", "object at 0x")


class Outcome(enum.Enum):
    RAISES = "raises CapacityBlockError"
    WARNS = "adds a warning annotation"
    EXITS_2 = "capblock exits 2 with the message on stderr"


@dataclass
class World:
    """What a row may use to perform its mistake."""

    ec2: Stubber
    """Stubs the EC2 client that lookups (and ``capblock lookup``) use."""
    eks: Stubber
    """Stubs the EKS client that cluster lookups use."""
    real_clients: Callable[[], None]
    """Puts back the real EC2 client factory, for mistakes caught before any call."""
    tmp_path: Path
    """The working directory, where a lookup would write ``cdk.context.json``."""
    scope: Construct | None = None
    """For annotation rows: the scope to build in (inside the shared stack)."""


@dataclass(frozen=True)
class Mistake:
    """One mistake: how to make it, what must happen and what the user must read."""

    id: str
    make: Callable[[World], Any]
    """Performs the mistake. Annotation rows return the construct that must carry the warning;
    command rows return the exit code."""
    value: str
    """The offending value, as the message must quote it."""
    fix: str
    """The phrase of the message that tells the user what to do."""
    outcome: Outcome = Outcome.RAISES
    extra: tuple[str, ...] = field(default=())
    """Further text the message must hold (the zone of the block, the command to run, ...)."""
    absent: tuple[str, ...] = field(default=())
    """Text the message must not hold (a fix that does not apply to this mistake)."""
    known_bug: str = ""
    """Why the library still gets this row wrong; the row is a strict expected failure."""


# -- builders ------------------------------------------------------------------------------


def stack(now: str | None = BEFORE_START, context: dict[str, Any] | None = None) -> Stack:
    return make_stack(make_app(now=now, context=context))


def imported_vpc(scope: Construct) -> ec2.IVpc:
    return ec2.Vpc.from_vpc_attributes(
        scope,
        "Vpc",
        vpc_id="vpc-0123456789abcdef0",
        availability_zones=["us-east-2a", "us-east-2b"],
        private_subnet_ids=[IN_ZONE_SUBNET, OTHER_ZONE_SUBNET],
    )


def subnet(scope: Construct, subnet_id: str, zone: str | None) -> ec2.ISubnet:
    if zone is None:
        return ec2.Subnet.from_subnet_id(scope, subnet_id, subnet_id)
    return ec2.Subnet.from_subnet_attributes(
        scope, subnet_id, subnet_id=subnet_id, availability_zone=zone
    )


def managed(scope: Construct | None = None, **overrides: Any) -> CapacityBlockManagedNodeGroup:
    scope = scope or stack()
    options: dict[str, Any] = {
        "cluster": eks_v2.Cluster.from_cluster_attributes(
            scope, "Cluster", cluster_name="ml", cluster_security_group_id=CLUSTER_SG
        ),
        "capacity_block": block(),
        "vpc": imported_vpc(scope),
    }
    options.update(overrides)
    return CapacityBlockManagedNodeGroup(scope, "Nodes", **options)


def self_managed(
    scope: Construct | None = None, **overrides: Any
) -> CapacityBlockSelfManagedNodeGroup:
    scope = scope or stack()
    options: dict[str, Any] = {
        "cluster": eks_v2.Cluster.from_cluster_attributes(
            scope,
            "Cluster",
            cluster_name="ml",
            cluster_endpoint=ENDPOINT,
            cluster_certificate_authority_data=CA,
            cluster_security_group_id=CLUSTER_SG,
        ),
        "capacity_block": block(),
        "vpc": imported_vpc(scope),
        "kubernetes_version": "1.33",
        "service_ipv4_cidr": SERVICE_CIDR,
        "access_entry": True,
    }
    options.update(overrides)
    return CapacityBlockSelfManagedNodeGroup(scope, "Nodes", **options)


def bare_cluster(scope: Construct) -> eks_v2.ICluster:
    """An imported cluster that names nothing but itself, so nodes need a cluster lookup."""
    return eks_v2.Cluster.from_cluster_attributes(scope, "Bare", cluster_name="ml")


def self_managed_on_looked_up_cluster(world: World, answer: dict[str, Any] | None) -> Any:
    """A self-managed group on a bare imported cluster; EKS answers ``answer`` or not found."""
    if answer is None:
        world.eks.add_client_error(
            "describe_cluster",
            service_error_code="ResourceNotFoundException",
            service_message="No cluster found for name: ml.",
            http_status_code=404,
            expected_params={"name": "ml"},
        )
    else:
        world.eks.add_response("describe_cluster", {"cluster": answer}, {"name": "ml"})
    scope = stack()
    return self_managed(scope, cluster=bare_cluster(scope))


def self_managed_on_in_app_cluster(**overrides: Any) -> CapacityBlockSelfManagedNodeGroup:
    """A self-managed group on an aws_eks_v2 cluster of the app, created without options."""
    scope = stack()
    vpc = imported_vpc(scope)
    cluster = eks_v2.Cluster(
        scope, "InApp", version=eks_v2.KubernetesVersion.V1_33, vpc=vpc, vpc_subnets=[]
    )
    return CapacityBlockSelfManagedNodeGroup(
        scope, "Nodes", cluster=cluster, capacity_block=block(), vpc=vpc, **overrides
    )


def groups_over_committing_a_block(world: World) -> CapacityBlockController:
    """Two managed groups targeting 4 and 2 of a 4-instance block; the warning is the
    controller's, which sees both. Managed groups register without a count, so the
    controller must take it from their capacity_block."""
    assert world.scope is not None
    controller = CapacityBlockController(world.scope, "Controller")
    managed(world.scope, controller=controller)
    CapacityBlockManagedNodeGroup(
        world.scope,
        "MoreNodes",
        cluster=eks_v2.Cluster.from_cluster_attributes(
            world.scope, "SameCluster", cluster_name="ml", cluster_security_group_id=CLUSTER_SG
        ),
        capacity_block=block(),
        vpc=ec2.Vpc.from_vpc_attributes(
            world.scope,
            "SameVpc",
            vpc_id="vpc-0123456789abcdef0",
            availability_zones=["us-east-2a"],
            private_subnet_ids=[IN_ZONE_SUBNET],
        ),
        desired_size=2,
        controller=controller,
    )
    return controller


def launch_template(**overrides: Any) -> CapacityBlockLaunchTemplate:
    options: dict[str, Any] = {"capacity_block": block()}
    options.update(overrides)
    return CapacityBlockLaunchTemplate(stack(), "LaunchTemplate", **options)


def with_ec2_reservation(world: World, **overrides: Any) -> None:
    """Queue a DescribeCapacityReservations answer: a scheduled 4-instance block, changed."""
    item: dict[str, Any] = {
        "CapacityReservationId": RESERVATION_ID,
        "OwnerId": ACCOUNT,
        "AvailabilityZoneId": "use2-az1",
        "InstanceType": "p5.48xlarge",
        "InstancePlatform": "Linux/UNIX",
        "AvailabilityZone": "us-east-2a",
        "TotalInstanceCount": 0,
        "State": "scheduled",
        "StartDate": START,
        "EndDate": END,
        "ReservationType": "capacity-block",
        "Tags": [{"Key": PLANNED_TAG, "Value": "4"}],
    }
    item.update(overrides)
    world.ec2.add_response(
        "describe_capacity_reservations", {"CapacityReservations": [item]}, LOOKUP_REQUEST
    )


def with_ec2_error(world: World, code: str, status: int) -> None:
    world.ec2.add_client_error(
        "describe_capacity_reservations",
        service_error_code=code,
        service_message="Some message from EC2.",
        http_status_code=status,
        expected_params=LOOKUP_REQUEST,
    )


def lookup(scope: Construct | None = None, reservation_id: str = RESERVATION_ID) -> CapacityBlock:
    return CapacityBlock.from_lookup(scope or stack(), reservation_id)


def lookup_after(world: World, *, reservation: dict[str, Any] | None = None) -> CapacityBlock:
    with_ec2_reservation(world, **(reservation or {}))
    return lookup()


def lookup_failing(world: World, code: str, status: int) -> CapacityBlock:
    with_ec2_error(world, code, status)
    return lookup()


def lookup_with_context_file(world: World, text: str) -> CapacityBlock:
    (world.tmp_path / "cdk.context.json").write_text(text, encoding="utf-8")
    return lookup()


def capblock(*argv: str) -> Callable[[World], int]:
    return lambda world: main(list(argv))


def capblock_with_real_clients(*argv: str) -> Callable[[World], int]:
    def run(world: World) -> int:
        world.real_clients()
        return main(list(argv))

    return run


def capblock_after(reservation: dict[str, Any], *argv: str) -> Callable[[World], int]:
    def run(world: World) -> int:
        with_ec2_reservation(world, **reservation)
        return main(list(argv))

    return run


# -- the mistakes --------------------------------------------------------------------------

NAIVE_START = datetime(2027, 3, 1, 11, 30)
CACHE_KEY = lookup_module.reservation_context_key(ACCOUNT, REGION, RESERVATION_ID)
CACHED_VALUE = {
    "capacityReservationId": RESERVATION_ID,
    "instanceType": "p5.48xlarge",
    "availabilityZone": "us-east-2a",
    "instanceCount": 4,
    "startDate": "2027-03-01T11:30:00Z",
    "endDate": "2027-03-15T11:30:00Z",
}

MISTAKES: list[Mistake] = [
    # CapacityBlock(...) by hand
    Mistake(
        id="block-naive-datetime",
        make=lambda world: block(start=NAIVE_START),
        value="2027-03-01T11:30:00",
        fix="tzinfo=timezone.utc",
    ),
    Mistake(
        id="block-start-as-string",
        make=lambda world: block(start="2027-03-01T11:30:00Z"),
        value="'2027-03-01T11:30:00Z'",
        fix="pass a timezone-aware datetime",
    ),
    Mistake(
        id="block-start-and-end-swapped",
        make=lambda world: block(start=END, end=START),
        value="2027-03-01T11:30:00Z",
        fix="not swapped",
        extra=("2027-03-15T11:30:00Z",),
    ),
    Mistake(
        id="block-malformed-reservation-id",
        make=lambda world: block(capacity_reservation_id="cr-123"),
        value="'cr-123'",
        fix=FIX_THE_ID,
    ),
    Mistake(
        id="block-capacity-block-id-instead-of-reservation-id",
        make=lambda world: block(capacity_reservation_id="cb-0123456789abcdef0"),
        value="'cb-0123456789abcdef0'",
        fix="use the 'cr-' ID",
    ),
    Mistake(
        id="block-zero-instances",
        make=lambda world: block(instance_count=0),
        value="instance_count 0",
        fix="use the number of instances the block reserves",
    ),
    Mistake(
        id="block-instance-family-not-type",
        make=lambda world: block(instance_type="p5"),
        value="'p5'",
        fix="for example 'p5.48xlarge'",
    ),
    Mistake(
        id="block-zone-id-as-zone-name",
        make=lambda world: block(availability_zone="use2-az1"),
        value="'use2-az1'",
        fix="for example 'us-east-2a'",
    ),
    Mistake(
        id="block-zone-name-as-zone-id",
        make=lambda world: block(availability_zone_id="us-east-2a"),
        value="'us-east-2a'",
        fix="use a value like 'use2-az1'",
    ),
    Mistake(
        id="block-uppercase-reservation-id",
        make=lambda world: block(capacity_reservation_id="cr-0123456789ABCDEF0"),
        value="'cr-0123456789ABCDEF0'",
        fix="lowercase hex digits",
    ),
    # CapacityBlock.from_lookup
    Mistake(
        id="lookup-malformed-reservation-id",
        make=lambda world: lookup(reservation_id="cr-0123"),
        value="'cr-0123'",
        fix=FIX_THE_ID,
    ),
    Mistake(
        id="lookup-on-demand-reservation-not-block",
        make=lambda world: lookup_after(world, reservation={"ReservationType": "default"}),
        value="'default'",
        fix="use a Capacity Block's reservation ID",
        extra=(RESERVATION_ID,),
    ),
    Mistake(
        id="lookup-expired-block",
        make=lambda world: lookup_after(world, reservation={"State": "expired"}),
        value="'expired'",
        fix="Buy a new Capacity Block",
        extra=(RESERVATION_ID,),
    ),
    Mistake(
        id="lookup-payment-failed-block",
        make=lambda world: lookup_after(world, reservation={"State": "payment-failed"}),
        value="'payment-failed'",
        fix="Buy a new Capacity Block",
    ),
    Mistake(
        id="lookup-environment-agnostic-stack",
        make=lambda world: lookup(Stack(make_app(), "Agnostic")),
        value="'Agnostic'",
        fix="env=Environment(account=",
        extra=("environment-agnostic",),
    ),
    Mistake(
        id="lookup-scope-outside-any-stack",
        make=lambda world: lookup(make_app()),
        value="is not inside a Stack",
        fix="Pass a construct from a stack",
    ),
    Mistake(
        id="lookup-lookups-off-and-empty-cache",
        make=lambda world: lookup(stack(context={"capblock-constructs:lookups": False})),
        value=RESERVATION_ID,
        fix=f"capblock lookup {RESERVATION_ID} --region {REGION} --account {ACCOUNT}",
        extra=(
            "lookups are switched off",
            # How else to supply it, spelt out (the CDK CLI's --context cannot carry the key).
            'add the entry to the "context" object of cdk.json',
            f"'capblock lookup {RESERVATION_ID} --region {REGION} --account {ACCOUNT} --json'",
        ),
        absent=("pass the value with --context",),
    ),
    Mistake(
        id="lookup-unknown-reservation",
        make=lambda world: lookup_failing(world, "InvalidCapacityReservationId.NotFound", 400),
        value=RESERVATION_ID,
        fix="Check the ID, that the stack's region is the one the block was bought in",
    ),
    Mistake(
        id="lookup-credentials-lack-permission",
        make=lambda world: lookup_failing(world, "UnauthorizedOperation", 403),
        value="ec2:DescribeCapacityReservations",
        fix="Grant it to the identity that synthesizes",
    ),
    Mistake(
        id="lookup-expired-credentials",
        make=lambda world: lookup_failing(world, "ExpiredToken", 400),
        value="ExpiredToken",
        fix="aws sso login",
    ),
    Mistake(
        id="lookup-corrupt-context-file",
        make=lambda world: lookup_with_context_file(world, '{"a": 1,'),
        value="cdk.context.json",
        fix="Fix the file (it must be one JSON object), or delete it",
    ),
    Mistake(
        id="lookup-cached-entry-missing-fields",
        make=lambda world: lookup(
            stack(context={CACHE_KEY: {"capacityReservationId": RESERVATION_ID}})
        ),
        value="instanceType",
        fix="refresh it with 'capblock lookup <id> --refresh'",
    ),
    Mistake(
        id="lookup-cached-entry-not-json",
        make=lambda world: lookup(stack(context={CACHE_KEY: "{not json"})),
        value="the cached value is str",
        fix="delete the entry (cdk context --reset <key>)",
    ),
    Mistake(
        id="lookup-cached-entry-without-utc-offset",
        make=lambda world: lookup(
            stack(context={CACHE_KEY: {**CACHED_VALUE, "startDate": "2027-03-01T11:30:00"}})
        ),
        value="'2027-03-01T11:30:00'",
        fix="append 'Z' (UTC)",
    ),
    # the pinned clock, capblock-constructs:now
    Mistake(
        id="now-pin-not-a-timestamp",
        make=lambda world: managed(stack(now="next tuesday")),
        value="'next tuesday'",
        fix="write it like '2027-03-01T11:30:00Z'",
    ),
    Mistake(
        id="now-pin-without-offset",
        make=lambda world: self_managed(stack(now="2027-02-20T09:00:00")),
        value="'2027-02-20T09:00:00'",
        fix="append 'Z' (UTC)",
    ),
    Mistake(
        id="now-pin-not-a-string",
        make=lambda world: managed(
            stack(now=None, context={"capblock-constructs:now": 1800000000})
        ),
        value="1800000000",
        fix="set it to an ISO 8601 UTC timestamp string",
    ),
    # CapacityBlockLaunchTemplate
    Mistake(
        id="launch-template-image-id-not-ami",
        make=lambda world: launch_template(image_id="al2023-nvidia"),
        value="'al2023-nvidia'",
        fix="pass an 'ami-...' ID",
    ),
    Mistake(
        id="launch-template-hop-limit-zero",
        make=lambda world: launch_template(http_put_response_hop_limit=0),
        value="http_put_response_hop_limit 0",
        fix="use 1 to keep pods off instance metadata",
    ),
    Mistake(
        id="launch-template-io2-without-iops",
        make=lambda world: launch_template(root_volume=RootVolume(volume_type="io2")),
        value="'io2'",
        fix="set root_volume.iops",
    ),
    Mistake(
        id="launch-template-root-volume-too-large",
        make=lambda world: launch_template(root_volume=RootVolume(size_gib=100_000)),
        value="100000",
        fix="between 1 and 65536",
    ),
    Mistake(
        id="launch-template-efa-only-on-card-0",
        make=lambda world: launch_template(
            network_interfaces=[NetworkInterface(interface_type="efa-only")]
        ),
        value="'efa-only'",
        fix="put an 'interface' (ENA) or 'efa' interface there",
        # The EC2 user guide's layout puts an efa-only interface on card 0, at device index 1.
        extra=("the 'efa-only' one at device index 1",),
    ),
    Mistake(
        id="launch-template-efa-only-as-primary-beside-ena",
        make=lambda world: launch_template(
            network_interfaces=[
                NetworkInterface(interface_type="efa-only"),
                NetworkInterface(device_index=1),
            ]
        ),
        value="'efa-only' interface cannot be the primary network interface",
        fix="put an 'interface' (ENA) or 'efa' interface there",
    ),
    Mistake(
        id="launch-template-unknown-interface-type",
        make=lambda world: launch_template(
            network_interfaces=[NetworkInterface(interface_type="ena")]
        ),
        value="'ena'",
        fix="use one of interface, efa, efa-only",
    ),
    Mistake(
        id="launch-template-two-interfaces-in-one-slot",
        make=lambda world: launch_template(
            network_interfaces=[NetworkInterface(), NetworkInterface(interface_type="efa")]
        ),
        value="network card 0 and device index 0",
        fix="each pair must be unique",
    ),
    Mistake(
        id="launch-template-unknown-volume-type",
        make=lambda world: launch_template(root_volume=RootVolume(volume_type="st1")),
        value="'st1'",
        fix="is not one of gp3, gp2, io1, io2",
    ),
    Mistake(
        id="launch-template-iops-on-gp2",
        make=lambda world: launch_template(root_volume=RootVolume(volume_type="gp2", iops=3000)),
        value="gp2",
        fix="use gp3, io1 or io2, or drop iops",
    ),
    Mistake(
        id="launch-template-throughput-on-io2",
        make=lambda world: launch_template(
            root_volume=RootVolume(volume_type="io2", iops=3000, throughput_mibps=500)
        ),
        value="'io2'",
        fix="only gp3 takes a throughput",
    ),
    # Gaps the first version of this table found, now caught.
    Mistake(
        id="launch-template-reservation-id-instead-of-block",
        make=lambda world: CapacityBlockLaunchTemplate(
            stack(),
            "LaunchTemplate",
            capacity_block=RESERVATION_ID,  # type: ignore[arg-type]  # the mistake under test
        ),
        value=f"capacity_block '{RESERVATION_ID}' is a str",
        fix="pass CapacityBlock.from_lookup(self, 'cr-...')",
    ),
    Mistake(
        id="launch-template-user-data-as-bytes",
        make=lambda world: CapacityBlockLaunchTemplate(
            stack(),
            "LaunchTemplate",
            capacity_block=block(),
            user_data=b"#!/bin/bash\n",  # type: ignore[arg-type]  # the mistake under test
        ),
        value="user_data is bytes",
        fix="pass a str (decode bytes first) or an ec2.UserData",
    ),
    Mistake(
        id="launch-template-gp3-iops-too-high",
        make=lambda world: CapacityBlockLaunchTemplate(
            stack(), "LaunchTemplate", capacity_block=block(), root_volume=RootVolume(iops=500000)
        ),
        value="root_volume.iops 500000",
        fix="pick a value in that range",
        extra=("3000-80000",),
    ),
    Mistake(
        id="managed-reservation-id-instead-of-block",
        make=lambda world: managed(capacity_block=RESERVATION_ID),
        value=f"capacity_block '{RESERVATION_ID}' is a str",
        fix="pass CapacityBlock.from_lookup(self, 'cr-...')",
    ),
    Mistake(
        id="managed-drain-lead-as-plain-number",
        make=lambda world: managed(drain_lead=40),
        value="drain_lead 40 is not a duration",
        fix="pass Duration.minutes(...) or a timedelta",
        extra=("the default is 40 min",),
    ),
    Mistake(
        id="managed-security-group-ids-instead-of-groups",
        make=lambda world: managed(security_groups=["sg-0123"]),
        value="security_groups holds 'sg-0123'",
        fix="ec2.SecurityGroup.from_security_group_id",
    ),
    Mistake(
        id="managed-block-in-another-region",
        make=lambda world: managed(
            capacity_block=block(availability_zone="us-west-2a", availability_zone_id=None)
        ),
        value="us-west-2a, which is not in the stack's region us-east-2",
        fix="deploy this node group in a stack for the block's region",
    ),
    Mistake(
        id="managed-label-value-not-a-string",
        make=lambda world: managed(labels={"gpus": 8}),
        value="label 'gpus' has the value 8 (int)",
        fix="pass '8'",
    ),
    Mistake(
        id="managed-taint-as-dict",
        make=lambda world: managed(taints=[{"key": "nvidia.com/gpu"}]),
        value="{'key': 'nvidia.com/gpu'} is a dict",
        fix="pass NodeTaint(key=..., value=..., effect='NoSchedule') objects",
    ),
    Mistake(
        id="self-managed-reservation-id-instead-of-block",
        make=lambda world: self_managed(capacity_block=RESERVATION_ID),
        value=f"capacity_block '{RESERVATION_ID}' is a str",
        fix="pass CapacityBlock.from_lookup(self, 'cr-...')",
    ),
    Mistake(
        id="self-managed-block-in-another-region",
        make=lambda world: self_managed(
            capacity_block=block(availability_zone="us-west-2a", availability_zone_id=None)
        ),
        value="us-west-2a, which is not in the stack's region us-east-2",
        fix="deploy this node group in a stack for the block's region",
    ),
    Mistake(
        id="self-managed-service-cidr-not-a-network",
        make=lambda world: self_managed(service_ipv4_cidr="10.100.0.0"),
        value="service_ipv4_cidr '10.100.0.0'",
        fix="(CIDR notation, /12 to /24)",
        extra=("for example '172.20.0.0/16'",),
    ),
    Mistake(
        id="self-managed-kubernetes-version-with-v",
        make=lambda world: self_managed(kubernetes_version="v1.33"),
        value="kubernetes_version 'v1.33'",
        fix="for example '1.33' (no 'v', no patch number)",
    ),
    # CapacityBlockManagedNodeGroup
    Mistake(
        id="managed-subnet-in-another-zone",
        make=lambda world: managed(
            (scope := stack()),
            vpc_subnets=ec2.SubnetSelection(
                subnets=[
                    subnet(scope, IN_ZONE_SUBNET, "us-east-2a"),
                    subnet(scope, OTHER_ZONE_SUBNET, "us-east-2b"),
                ]
            ),
        ),
        value=f"{OTHER_ZONE_SUBNET} is in us-east-2b",
        fix="remove the subnet from vpc_subnets.subnets",
        extra=("us-east-2a",),
    ),
    Mistake(
        id="self-managed-subnet-in-another-zone",
        make=lambda world: self_managed(
            (scope := stack()),
            vpc_subnets=ec2.SubnetSelection(
                subnets=[
                    subnet(scope, IN_ZONE_SUBNET, "us-east-2a"),
                    subnet(scope, OTHER_ZONE_SUBNET, "us-east-2b"),
                ]
            ),
        ),
        value=f"{OTHER_ZONE_SUBNET} is in us-east-2b",
        fix="remove the subnet from vpc_subnets.subnets",
        extra=("us-east-2a",),
    ),
    Mistake(
        id="self-managed-pinned-ami-without-architecture",
        make=lambda world: self_managed(
            world.scope, ami=EksOptimizedAmi.pinned("ami-0123456789abcdef0")
        ),
        value="image_id 'ami-0123456789abcdef0' is pinned without its architecture",
        fix="architecture='x86_64'",
        outcome=Outcome.WARNS,
        extra=("capblock-constructs:ami-architecture-unchecked",),
    ),
    Mistake(
        id="managed-vpc-without-subnet-in-block-zone",
        make=lambda world: managed(capacity_block=block(availability_zone="us-east-2c")),
        value="us-east-2c",
        fix="Add a subnet in us-east-2c to the VPC",
        extra=(IN_ZONE_SUBNET, OTHER_ZONE_SUBNET),
        # The stack has an account and region and every subnet's zone is known.
        absent=("explicit account and region", "unknown at synth time"),
    ),
    Mistake(
        id="managed-vpc-in-environment-agnostic-stack",
        make=lambda world: managed(
            (scope := make_stack(make_app(), env=None)), vpc=ec2.Vpc(scope, "AgnosticVpc")
        ),
        value="(unknown at synth time)",
        fix="give stack 'Test' an explicit account and region",
        extra=("no subnet in us-east-2a",),
    ),
    Mistake(
        id="managed-subnet-type-the-vpc-lacks",
        make=lambda world: managed(
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PUBLIC)
        ),
        value="'Public'",
        fix="pass them as vpc_subnets.subnets",
    ),
    Mistake(
        id="managed-label-key-invalid",
        make=lambda world: managed(labels={"-team": "ml"}),
        value="'-team'",
        fix="for example 'example.com/team'",
    ),
    Mistake(
        id="managed-desired-above-instance-count",
        make=lambda world: managed(desired_size=5),
        value="desired_size 5",
        fix="lower desired_size to at most 4, the block's instance count",
    ),
    Mistake(
        id="managed-max-above-instance-count",
        make=lambda world: managed(max_size=8),
        value="max_size 8",
        fix="from 1 to the block's instance count (4)",
    ),
    Mistake(
        id="managed-instance-types-set",
        make=lambda world: managed(instance_types=["p5.48xlarge"]),
        value="['p5.48xlarge']",
        fix="remove instance_types",
    ),
    Mistake(
        id="managed-unknown-ami-type",
        make=lambda world: managed(ami_type="AL2023_NVIDIA"),
        value="'AL2023_NVIDIA'",
        fix="use one of AL2023_x86_64_NVIDIA",
    ),
    Mistake(
        id="managed-ami-type-with-custom-image",
        make=lambda world: managed(
            ami_type="AL2023_x86_64_NVIDIA", image_id="ami-0123456789abcdef0"
        ),
        value="'ami-0123456789abcdef0'",
        fix="remove ami_type or image_id",
        extra=("'AL2023_x86_64_NVIDIA'",),
    ),
    Mistake(
        id="managed-custom-ami-type-without-image",
        make=lambda world: managed(ami_type="CUSTOM"),
        value="'CUSTOM'",
        fix="pass image_id",
    ),
    Mistake(
        id="managed-unknown-instance-type-without-ami-type",
        make=lambda world: managed(capacity_block=block(instance_type="x9z.96xlarge")),
        value="'x9z.96xlarge'",
        fix="pass ami_type",
        # First why the table lacks the type, then what to pass instead.
        extra=("is not one that EC2 sells as a Capacity Block, or is newer than",),
    ),
    Mistake(
        id="self-managed-efa-on-unknown-instance-type",
        make=lambda world: self_managed(
            capacity_block=block(instance_type="x9z.96xlarge"),
            efa=True,
            ami=EksOptimizedAmi(architecture="x86_64", accelerator="nvidia"),
        ),
        value="'x9z.96xlarge'",
        fix="turn EFA off and pass the launch template's network interfaces yourself",
        extra=("is not one that EC2 sells as a Capacity Block, or is newer than",),
    ),
    Mistake(
        id="managed-efa-on-type-without-efa",
        make=lambda world: managed(capacity_block=block(instance_type="g6.xlarge"), efa=True),
        value="'g6.xlarge'",
        fix="turn EFA off",
    ),
    Mistake(
        id="managed-efa-without-cluster-security-group",
        make=lambda world: managed(
            (scope := stack()),
            cluster=eks_v2.Cluster.from_cluster_attributes(scope, "Bare", cluster_name="ml"),
            efa=True,
        ),
        value="efa=True",
        fix="pass cluster_security_group_id='sg-...'",
    ),
    Mistake(
        id="managed-taint-effect-misspelt",
        make=lambda world: managed(taints=[NodeTaint(key="nvidia.com/gpu", effect="NoSchedul")]),
        value="'NoSchedul'",
        fix="use one of NoSchedule, PreferNoSchedule, NoExecute",
    ),
    Mistake(
        id="managed-label-overrides-reservation-label",
        make=lambda world: managed(labels={"capblock-constructs/capacity-reservation-id": "mine"}),
        value="'capblock-constructs/capacity-reservation-id'",
        fix="remove it from labels",
    ),
    Mistake(
        id="managed-block-already-ended",
        make=lambda world: managed(stack(now=AFTER_END)),
        value="2027-03-15T11:30:00Z",
        fix="Use an active or scheduled block",
        extra=(RESERVATION_ID, AFTER_END),
    ),
    Mistake(
        # EKS scales CAPACITY_BLOCK node groups to zero 40 minutes before the end; the
        # controller must not drain later.
        id="managed-drain-lead-after-eks-scale-down",
        make=lambda world: managed(drain_lead=Duration.minutes(35)),
        value="drain_lead 35 min",
        fix="raise drain_lead or leave it unset",
        extra=("The earliest valid drain_lead is 40 min",),
        absent=("heartbeat",),
    ),
    Mistake(
        # EC2 reclaims UltraServer instances 60 minutes before the end; the default and
        # shortest lead is 70.
        id="managed-drain-lead-too-short-for-ultraserver",
        make=lambda world: managed(
            capacity_block=block(instance_type="trn2.48xlarge", ultraserver_type="u-trn2x64"),
            drain_lead=Duration.hours(1),
        ),
        value="drain_lead 1 h",
        fix="raise drain_lead or leave it unset",
        extra=("EC2's reclaim lead (1 h)", "The earliest valid drain_lead is 1 h 10 min"),
    ),
    Mistake(
        id="managed-drain-lead-as-long-as-the-block",
        make=lambda world: managed(drain_lead=Duration.days(14)),
        value="drain_lead 14 days is not shorter than",
        fix="use the default (40 min)",
        extra=(RESERVATION_ID,),
    ),
    # CapacityBlockSelfManagedNodeGroup
    Mistake(
        # What 20 minutes leaves for the heartbeat clamps to the 30 s minimum: the earliest
        # valid lead is 30 min reclaim + 2 min lateness + 30 s. No heartbeat was set, so the
        # fix must not name one.
        id="self-managed-drain-lead-too-short",
        make=lambda world: self_managed(drain_lead=Duration.minutes(20)),
        value="drain_lead 20 min",
        fix="raise drain_lead",
        extra=("The earliest valid drain_lead is 32 min 30 s", "the default is 40 min"),
        absent=("heartbeat_timeout",),
    ),
    Mistake(
        id="self-managed-drain-lead-longer-than-block",
        make=lambda world: self_managed(drain_lead=timedelta(days=15)),
        value="drain_lead 15 days is not shorter than",
        fix="use the default (40 min)",
        extra=("(14 days)",),
    ),
    Mistake(
        id="self-managed-heartbeat-out-of-range",
        make=lambda world: self_managed(heartbeat_timeout=Duration.hours(3)),
        value="heartbeat_timeout 3 h",
        fix="pick a value in that range",
        extra=("30 s to 2 h",),
    ),
    Mistake(
        id="self-managed-max-size-zero",
        make=lambda world: self_managed(max_size=0),
        value="max_size 0",
        fix="from 1 to the block's instance count (4)",
    ),
    Mistake(
        id="self-managed-heartbeat-as-plain-number",
        make=lambda world: self_managed(heartbeat_timeout=480),
        value="heartbeat_timeout 480 is not a duration",
        fix="pass Duration.minutes(...) or a timedelta",
        # What the default 40-minute lead leaves: 40 - 30 min reclaim - 2 min lateness.
        extra=("the default is what the drain lead leaves: 8 min",),
    ),
    Mistake(
        # A 5-minute controller period makes the lateness 6 minutes: 30 + 6 + 8 = 44.
        id="self-managed-heartbeat-with-a-five-minute-controller-period",
        make=lambda world: self_managed(
            (scope := stack()),
            controller=CapacityBlockController(scope, "Controller", period=Duration.minutes(5)),
            heartbeat_timeout=Duration.minutes(8),
        ),
        value="drain_lead 40 min",
        fix="raise drain_lead or shorten heartbeat_timeout",
        extra=("(6 min: its period plus one minute)", "The earliest valid drain_lead is 44 min"),
    ),
    Mistake(
        id="self-managed-desired-above-instance-count",
        make=lambda world: self_managed(desired_size=6),
        value="desired_size 6",
        fix="lower desired_size",
        extra=("from 0 to max_size (4)",),
        # max_size is already the block's count: raising it is a second mistake.
        absent=("raise max_size",),
    ),
    Mistake(
        id="self-managed-desired-above-max",
        make=lambda world: self_managed(desired_size=4, max_size=2),
        value="desired_size 4",
        fix="raise max_size or lower desired_size",
        extra=("from 0 to max_size (2)",),
    ),
    Mistake(
        id="self-managed-subnet-without-known-zone",
        make=lambda world: self_managed(
            (scope := stack()),
            vpc_subnets=ec2.SubnetSelection(subnets=[subnet(scope, "subnet-0f", None)]),
        ),
        value="subnet-0f",
        fix="availability_zone='us-east-2a'",
    ),
    Mistake(
        id="self-managed-service-cidr-unknown",
        make=lambda world: self_managed_on_in_app_cluster(service_ipv4_cidr=None),
        value="service CIDR is unknown",
        fix="Pass",
        extra=("10.100.0.0/16", "172.20.0.0/16"),
    ),
    Mistake(
        id="self-managed-termination-handler-on-imported-cluster",
        make=lambda world: self_managed(install_termination_handler=True),
        value="install_termination_handler=True",
        fix="install aws-node-termination-handler yourself",
    ),
    Mistake(
        id="self-managed-pre-bootstrap-on-bottlerocket",
        make=lambda world: self_managed(
            ami=EksOptimizedAmi(operating_system="bottlerocket"), pre_bootstrap_script="echo hi"
        ),
        value="pre_bootstrap_script",
        fix="use Bottlerocket bootstrap containers",
    ),
    Mistake(
        id="self-managed-arm-ami-on-x86-type",
        make=lambda world: self_managed(ami=EksOptimizedAmi(architecture="arm64")),
        value="p5.48xlarge",
        fix="architecture='x86_64'",
        extra=("arm64",),
    ),
    Mistake(
        id="self-managed-taint-key-invalid",
        make=lambda world: self_managed(taints=[NodeTaint(key="gpu only")]),
        value="'gpu only'",
        fix="for example 'nvidia.com/gpu'",
    ),
    Mistake(
        id="self-managed-taint-value-invalid",
        make=lambda world: self_managed(taints=[NodeTaint(key="team", value="ml/research")]),
        value="'ml/research'",
        fix="at most 63 letters, digits",
    ),
    Mistake(
        id="self-managed-label-value-invalid",
        make=lambda world: self_managed(labels={"team": "ML Research"}),
        value="'ML Research'",
        fix="at most 63 letters, digits",
    ),
    Mistake(
        id="self-managed-block-already-ended",
        make=lambda world: self_managed(stack(now=AFTER_END)),
        value="2027-03-15T11:30:00Z",
        fix="Use an active or scheduled block",
        extra=(RESERVATION_ID,),
    ),
    Mistake(
        id="self-managed-drain-lead-too-short-for-ultraserver",
        make=lambda world: self_managed(
            capacity_block=block(
                instance_type="trn2.48xlarge", ultraserver_type="u-trn2x64", instance_count=4
            ),
            drain_lead=Duration.minutes(45),
        ),
        value="drain_lead 45 min",
        fix="raise drain_lead",
        # 60 min UltraServer reclaim + 2 min lateness + the clamped 30 s heartbeat.
        extra=(
            "EC2's reclaim lead (1 h)",
            "The earliest valid drain_lead is 1 h 2 min 30 s",
            "the default is 1 h 10 min",
        ),
        absent=("heartbeat_timeout",),
    ),
    Mistake(
        id="self-managed-drain-lead-as-plain-number",
        make=lambda world: self_managed(drain_lead=40),
        value="drain_lead 40 is not a duration",
        fix="pass Duration.minutes(...) or a timedelta",
    ),
    Mistake(
        id="self-managed-imported-cluster-with-lookups-off",
        make=lambda world: self_managed(
            (scope := stack(context={"capblock-constructs:lookups": False})),
            cluster=bare_cluster(scope),
            service_ipv4_cidr=None,
        ),
        value="'ml'",
        fix="capblock lookup-cluster ml --region us-east-2",
        extra=("service_ipv4_cidr",),
    ),
    Mistake(
        id="self-managed-imported-cluster-not-found",
        make=lambda world: self_managed_on_looked_up_cluster(world, None),
        value="EKS has no cluster 'ml'",
        fix="Check the cluster name and that the stack's region is the cluster's region",
    ),
    Mistake(
        id="self-managed-imported-cluster-not-active",
        make=lambda world: self_managed_on_looked_up_cluster(
            world, {"name": "ml", "status": "CREATING"}
        ),
        value="'CREATING'",
        fix="Wait until it is ACTIVE",
    ),
    Mistake(
        id="self-managed-cluster-without-name",
        make=lambda world: self_managed(cluster=object()),
        value="cluster has no cluster_name",
        fix="Cluster.from_cluster_attributes(..., cluster_name='<name>')",
    ),
    Mistake(
        id="self-managed-unsupported-operating-system",
        make=lambda world: self_managed(ami=EksOptimizedAmi(operating_system="ubuntu")),
        value="'ubuntu'",
        fix="use al2023 or bottlerocket",
    ),
    Mistake(
        id="self-managed-bottlerocket-on-neuron-type",
        make=lambda world: self_managed(
            capacity_block=block(instance_type="trn2.48xlarge"),
            ami=EksOptimizedAmi(operating_system="bottlerocket"),
        ),
        value="trn2.48xlarge",
        fix="use operating_system='al2023'",
    ),
    Mistake(
        id="self-managed-heartbeat-longer-than-drain-allows",
        make=lambda world: self_managed(heartbeat_timeout=Duration.minutes(30)),
        value="heartbeat (30 min)",
        fix="raise drain_lead or shorten heartbeat_timeout",
        # 30 min reclaim + 2 min lateness + 30 min heartbeat.
        extra=("The earliest valid drain_lead is 1 h 2 min",),
    ),
    Mistake(
        id="controller-period-too-long",
        make=lambda world: CapacityBlockController(
            stack(), "Controller", period=Duration.minutes(10)
        ),
        value="period 10 min",
        fix="Duration.minutes(5)",
        extra=("from 1 to 5",),
    ),
    Mistake(
        id="self-managed-termination-handler-without-kubectl-provider",
        make=lambda world: self_managed_on_in_app_cluster(
            service_ipv4_cidr=SERVICE_CIDR, access_entry=True, install_termination_handler=True
        ),
        value="no kubectl provider",
        fix="kubectl_provider_options=eks_v2.KubectlProviderOptions(kubectl_layer=...)",
    ),
    # warnings, read with aws_cdk.assertions.Annotations from one shared synth
    Mistake(
        id="self-managed-node-role-never-mapped",
        make=lambda world: self_managed(world.scope, access_entry=None),
        value="authentication mode is unknown",
        fix="pass access_entry=True",
        outcome=Outcome.WARNS,
        extra=("capblock-constructs:node-role-not-mapped",),
    ),
    Mistake(
        id="managed-groups-over-commit-their-block",
        make=lambda world: groups_over_committing_a_block(world),
        value="reserves 4 instances, but the node groups on it target 6",
        fix="Lower the groups' desired_size so the targets add up to at most 4",
        outcome=Outcome.WARNS,
        extra=(
            "capblock-constructs:capacity-block-over-committed",
            "/Nodes 4, ",
            "/MoreNodes 2",
        ),
    ),
    # the capblock command
    Mistake(
        id="cli-malformed-reservation-id",
        make=capblock("lookup", "cr-XYZ", "--region", REGION),
        value="'cr-XYZ'",
        fix=FIX_THE_ID,
        outcome=Outcome.EXITS_2,
    ),
    Mistake(
        id="cli-account-not-twelve-digits",
        make=capblock("lookup", RESERVATION_ID, "--region", REGION, "--account", "12345"),
        value="'12345'",
        fix="pass the 12 digits of the stack's account",
        outcome=Outcome.EXITS_2,
    ),
    Mistake(
        id="cli-zone-as-region",
        make=capblock("lookup", RESERVATION_ID, "--region", "us-east-2a"),
        value="'us-east-2a'",
        fix="--region us-east-2",
        outcome=Outcome.EXITS_2,
    ),
    Mistake(
        id="cli-on-demand-reservation-not-block",
        make=capblock_after(
            {"ReservationType": "default"}, "lookup", RESERVATION_ID, "--region", REGION
        ),
        value="'default'",
        fix="use a Capacity Block's reservation ID",
        outcome=Outcome.EXITS_2,
    ),
    Mistake(
        id="cli-expired-block",
        make=capblock_after({"State": "expired"}, "lookup", RESERVATION_ID, "--region", REGION),
        value="'expired'",
        fix="Buy a new Capacity Block",
        outcome=Outcome.EXITS_2,
    ),
    Mistake(
        id="cli-unknown-profile",
        make=capblock_with_real_clients(
            "lookup", RESERVATION_ID, "--region", REGION, "--profile", "nope"
        ),
        value="(nope)",
        fix="Check the profile name (--profile or AWS_PROFILE)",
        outcome=Outcome.EXITS_2,
    ),
    Mistake(
        id="cli-cluster-arn-instead-of-name",
        make=capblock(
            "lookup-cluster", "arn:aws:eks:us-east-2:123456789012:cluster/ml", "--region", REGION
        ),
        value="'arn:aws:eks:us-east-2:123456789012:cluster/ml'",
        fix="aws eks list-clusters",
        outcome=Outcome.EXITS_2,
    ),
]


# -- the checks ------------------------------------------------------------------------------


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[World]:
    """A stubbed EC2 client for lookups; the working directory is an empty tmp_path."""
    monkeypatch.chdir(tmp_path)
    ec2_client = boto3.client("ec2", region_name=REGION)
    eks_client = boto3.client("eks", region_name=REGION)
    monkeypatch.setattr(lookup_module, "ec2_client", lambda **_: ec2_client)
    monkeypatch.setattr(cluster_lookup_module, "_eks_client", lambda **_: eks_client)
    with Stubber(ec2_client) as ec2_stub, Stubber(eks_client) as eks_stub:
        yield World(
            ec2=ec2_stub,
            eks=eks_stub,
            real_clients=lambda: monkeypatch.setattr(lookup_module, "ec2_client", _aws.ec2_client),
            tmp_path=tmp_path,
        )
        # A row that queued an AWS answer must have made that call with the expected request.
        ec2_stub.assert_no_pending_responses()
        eks_stub.assert_no_pending_responses()


@dataclass(frozen=True)
class Warned:
    stack: Stack
    constructs: dict[str, Construct]


@pytest.fixture(scope="module")
def warned(tmp_path_factory: pytest.TempPathFactory) -> Warned:
    """Every WARNS row built side by side in one stack, synthesized once."""
    shared = make_stack(make_app(), "Warnings")
    ec2_client = boto3.client("ec2", region_name=REGION)
    eks_client = boto3.client("eks", region_name=REGION)
    constructs: dict[str, Construct] = {}
    for mistake in MISTAKES:
        if mistake.outcome is Outcome.WARNS:
            scope = Construct(shared, mistake.id)
            world = World(
                ec2=Stubber(ec2_client),
                eks=Stubber(eks_client),
                real_clients=lambda: None,
                tmp_path=tmp_path_factory.mktemp("warned"),
                scope=scope,
            )
            constructs[mistake.id] = mistake.make(world)
    return Warned(stack=shared, constructs=constructs)


def rows(outcome: Outcome) -> list[Any]:
    return [
        pytest.param(
            m,
            id=m.id,
            marks=[pytest.mark.xfail(strict=True, reason=m.known_bug)] if m.known_bug else [],
        )
        for m in MISTAKES
        if m.outcome is outcome
    ]


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    pending: list[BaseException | None] = [exc.__cause__, exc.__context__]
    while pending:
        item = pending.pop()
        if item is None or id(item) in seen:
            continue
        seen.add(id(item))
        yield item
        pending.extend([item.__cause__, item.__context__])


def assert_readable(message: str, mistake: Mistake) -> None:
    for wanted in (mistake.value, mistake.fix, *mistake.extra):
        assert wanted in message, f"{wanted!r} missing from the message:\n{message}"
    for unwanted in mistake.absent:
        assert unwanted not in message, f"{unwanted!r} should not be in the message:\n{message}"
    lowered = message.lower()
    leaked = [word for word in LEAKS if word in lowered]
    assert not leaked, f"the message shows {leaked}:\n{message}"


@pytest.mark.parametrize("mistake", rows(Outcome.RAISES))
def test_mistake_raises_a_readable_error(mistake: Mistake, world: World) -> None:
    try:
        mistake.make(world)
    except Exception as exc:  # noqa: BLE001 - the type itself is under test
        error: BaseException = exc
    else:
        pytest.fail(f"{mistake.id}: no error was raised")

    assert type(error) is CapacityBlockError, f"{type(error).__module__}.{type(error).__name__}"
    assert_readable(str(error), mistake)
    # Shown as one message: nothing chained for Python to print above it.
    assert error.__cause__ is None, f"raised from {error.__cause__!r}"
    assert error.__context__ is None or error.__suppress_context__, (
        f"raised while handling {error.__context__!r}"
    )
    foreign = [
        f"{type(item).__module__}.{type(item).__name__}"
        for item in _chain(error)
        if type(item).__module__.split(".")[0] in ("botocore", "boto3", "jsii")
        or isinstance(item, RuntimeError)
    ]
    assert not foreign, f"chained: {foreign}"


@pytest.mark.parametrize("mistake", rows(Outcome.WARNS))
def test_mistake_is_annotated_with_a_readable_warning(mistake: Mistake, warned: Warned) -> None:
    path = "/" + warned.constructs[mistake.id].node.path
    found = Annotations.from_stack(warned.stack).find_warning(path, Match.any_value())
    messages = [str(message.entry.data) for message in found]
    matching = [text for text in messages if mistake.value in text]
    assert len(matching) == 1, f"warnings at {path}: {messages}"
    assert_readable(matching[0], mistake)


@pytest.mark.parametrize("mistake", rows(Outcome.EXITS_2))
def test_command_mistake_exits_2_with_a_readable_error(
    mistake: Mistake, world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    code = mistake.make(world)

    out, err = capsys.readouterr()
    assert code == 2, err
    assert out == ""
    assert err.startswith("capblock lookup"), err
    assert ": error: " in err
    assert_readable(err, mistake)
    assert not (world.tmp_path / "cdk.context.json").exists()


def test_the_table_covers_the_issue() -> None:
    """Issue 5 asks for at least 25 distinct mistakes over every public entry point."""
    ids = [mistake.id for mistake in MISTAKES]
    assert len(ids) == len(set(ids))
    assert len(ids) >= 25
    prefixes = {mistake_id.split("-")[0] for mistake_id in ids}
    assert {"block", "lookup", "now", "launch", "managed", "self", "cli"} <= prefixes
