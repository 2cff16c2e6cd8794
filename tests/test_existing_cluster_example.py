"""examples/existing_cluster.py: node groups in a looked-up VPC and an imported cluster.

The example is not in the example app, so it is synthesized here, from the
context a user commits after one synth with credentials: the VPC lookup
(``vpc-provider:...``, which the CDK CLI fills) and the reservation.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Stack
from aws_cdk.assertions import Annotations, Match, Template

from capblock_constructs import CapacityBlock
from capblock_constructs.testing import capacity_block_app
from examples.environment import EXAMPLE_ACCOUNT, EXAMPLE_REGION, EXAMPLE_RESERVATION_ID
from examples.existing_cluster import EXAMPLE_VPC_ID, build_app
from tests.support import cfn_lint_errors

BLOCK_ZONE_PRIVATE_SUBNET = "subnet-0a1b2c3d4e5f60001"

VPC_CONTEXT_KEY = (
    f"vpc-provider:account={EXAMPLE_ACCOUNT}:filter.vpc-id={EXAMPLE_VPC_ID}"
    f":region={EXAMPLE_REGION}:returnAsymmetricSubnets=true"
)


def vpc_context_value(vpc_id: str, account: str) -> dict[str, Any]:
    """What the CDK CLI caches for a VPC with public and private subnets in two zones."""

    def subnet(number: int, zone: str) -> dict[str, str]:
        return {
            "subnetId": f"subnet-0a1b2c3d4e5f6000{number}",
            "cidr": f"10.0.{number}.0/24",
            "availabilityZone": zone,
            "routeTableId": f"rtb-0a1b2c3d4e5f6000{number}",
        }

    return {
        "vpcId": vpc_id,
        "vpcCidrBlock": "10.0.0.0/16",
        "ownerAccountId": account,
        "availabilityZones": [],
        "subnetGroups": [
            {
                "name": "Private",
                "type": "Private",
                "subnets": [
                    subnet(1, "us-east-2a"),
                    subnet(2, "us-east-2b"),
                ],
            },
            {
                "name": "Public",
                "type": "Public",
                "subnets": [
                    subnet(3, "us-east-2a"),
                    subnet(4, "us-east-2b"),
                ],
            },
        ],
    }


# The example reservation, as the repository's cdk.context.json caches it.
BLOCK = CapacityBlock(
    capacity_reservation_id=EXAMPLE_RESERVATION_ID,
    instance_type="p5.48xlarge",
    availability_zone="us-east-2a",
    instance_count=4,
    start=datetime(2031, 3, 3, 11, 30, tzinfo=timezone.utc),
    end=datetime(2031, 3, 17, 11, 30, tzinfo=timezone.utc),
)


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> App:
    app = capacity_block_app(
        now=datetime(2031, 3, 1, tzinfo=timezone.utc),
        blocks=[BLOCK],
        account=EXAMPLE_ACCOUNT,
        context={VPC_CONTEXT_KEY: vpc_context_value(EXAMPLE_VPC_ID, EXAMPLE_ACCOUNT)},
        outdir=str(tmp_path_factory.mktemp("cdk.out")),
        # cfn-lint checks the template below; the CDK's own validation would add 1.5 s.
        builtin_cloud_formation_validation=False,
    )
    return build_app(app)


@pytest.fixture(scope="module")
def stack(app: App) -> Stack:
    found = app.node.find_child("CapblockExistingCluster")
    assert isinstance(found, Stack)
    return found


def test_nothing_is_left_to_look_up(app: App) -> None:
    # A missing key would make `cdk synth` reach for AWS: the two documented
    # entries are all the example needs.
    assembly = app.synth()
    manifest = json.loads((Path(assembly.directory) / "manifest.json").read_text())
    assert [entry["key"] for entry in manifest.get("missing", [])] == []


def test_the_node_group_uses_the_block_zone_subnet_of_the_looked_up_vpc(stack: Stack) -> None:
    template = Template.from_stack(stack)
    template.has_resource_properties(
        "AWS::EKS::Nodegroup",
        {
            "ClusterName": "ml-training",
            "CapacityType": "CAPACITY_BLOCK",
            "Subnets": [BLOCK_ZONE_PRIVATE_SUBNET],
        },
    )
    # Only the node group's own resources and the controller: no VPC, no cluster.
    assert template.find_resources("AWS::EC2::VPC") == {}
    assert template.find_resources("AWS::EKS::Cluster") == {}


def test_the_template_is_clean(stack: Stack) -> None:
    template = Template.from_stack(stack)
    assert cfn_lint_errors(template) == []
    warnings = Annotations.from_stack(stack).find_warning("*", Match.any_value())
    assert [warning.entry.data for warning in warnings] == []


def test_the_first_synth_reports_the_vpc_lookup_for_the_cli_to_fill(
    tmp_path: Path,
) -> None:
    app = capacity_block_app(
        now=datetime(2031, 3, 1, tzinfo=timezone.utc),
        blocks=[BLOCK],
        account=EXAMPLE_ACCOUNT,
        outdir=str(tmp_path),
        builtin_cloud_formation_validation=False,
    )
    assembly = build_app(app).synth()
    manifest = json.loads((Path(assembly.directory) / "manifest.json").read_text())
    assert [entry["key"] for entry in manifest.get("missing", [])] == [VPC_CONTEXT_KEY]
