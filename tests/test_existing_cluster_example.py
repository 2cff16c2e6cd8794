"""examples/existing_cluster.py: node groups in a looked-up VPC and an imported cluster.

The example is not in the example app, so it is synthesized here, from the
context a user commits after one synth with credentials: the VPC lookup
(``vpc-provider:...``, which the CDK CLI fills) and the reservation.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pytest
from aws_cdk import App, Stack
from aws_cdk.assertions import Template
from aws_cdk.cx_api import CloudAssembly, SynthesisMessageLevel

from capblock_constructs.testing import capacity_block_app
from examples.environment import EXAMPLE_ACCOUNT, EXAMPLE_REGION, example_block
from examples.existing_cluster import EXAMPLE_VPC_ID, build_app
from tests.support import cfn_lint_errors, template_of, vpc_lookup_context

BLOCK_ZONE_PRIVATE_SUBNET = "subnet-0a1b2c3d4e5f60001"
NOW = datetime(2031, 3, 1, tzinfo=timezone.utc)

# What the CDK CLI caches for the example VPC: public and private subnets in two zones.
VPC_CONTEXT = vpc_lookup_context(
    account=EXAMPLE_ACCOUNT,
    region=EXAMPLE_REGION,
    vpc_id=EXAMPLE_VPC_ID,
    subnet_groups={
        "Private": [
            (BLOCK_ZONE_PRIVATE_SUBNET, "us-east-2a"),
            ("subnet-0a1b2c3d4e5f60002", "us-east-2b"),
        ],
        "Public": [
            ("subnet-0a1b2c3d4e5f60003", "us-east-2a"),
            ("subnet-0a1b2c3d4e5f60004", "us-east-2b"),
        ],
    },
)
(VPC_CONTEXT_KEY,) = VPC_CONTEXT


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> App:
    app = capacity_block_app(
        now=NOW,
        # The example reservation, as the repository's cdk.context.json caches it.
        blocks=[example_block()],
        account=EXAMPLE_ACCOUNT,
        context=VPC_CONTEXT,
        outdir=str(tmp_path_factory.mktemp("cdk.out")),
        # cfn-lint checks the template below; the CDK's own validation would add 1.5 s.
        builtin_cloud_formation_validation=False,
    )
    return build_app(app)


@pytest.fixture(scope="module")
def assembly(app: App) -> CloudAssembly:
    """The one synth of the app: the template and the warnings below are read from it."""
    return app.synth()


@pytest.fixture(scope="module")
def stack(app: App) -> Stack:
    found = app.node.find_child("CapblockExistingCluster")
    assert isinstance(found, Stack)
    return found


@pytest.fixture(scope="module")
def template(assembly: CloudAssembly, stack: Stack) -> Template:
    # The app is synthesized already: this reads the assembly and checks the rules on it.
    return template_of(stack)


def test_nothing_is_left_to_look_up(assembly: CloudAssembly) -> None:
    # A missing key would make `cdk synth` reach for AWS: the two documented
    # entries are all the example needs.
    manifest = json.loads((Path(assembly.directory) / "manifest.json").read_text())
    assert [entry["key"] for entry in manifest.get("missing", [])] == []


def test_the_node_group_uses_the_block_zone_subnet_of_the_looked_up_vpc(
    template: Template,
) -> None:
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


def test_the_template_is_clean(assembly: CloudAssembly, stack: Stack, template: Template) -> None:
    assert cfn_lint_errors(template) == []
    messages = assembly.get_stack_artifact(stack.artifact_id).messages
    warnings = [m.entry.data for m in messages if m.level == SynthesisMessageLevel.WARNING]
    assert warnings == []


def test_the_first_synth_reports_the_vpc_lookup_for_the_cli_to_fill(
    tmp_path: Path,
) -> None:
    app = capacity_block_app(
        now=NOW,
        blocks=[example_block()],
        account=EXAMPLE_ACCOUNT,
        outdir=str(tmp_path),
        builtin_cloud_formation_validation=False,
    )
    assembly = build_app(app).synth()
    manifest = json.loads((Path(assembly.directory) / "manifest.json").read_text())
    assert [entry["key"] for entry in manifest.get("missing", [])] == [VPC_CONTEXT_KEY]
