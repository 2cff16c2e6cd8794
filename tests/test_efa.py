"""EFA interfaces per network card, and the EFA security group."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk import Stack
from aws_cdk import aws_ec2 as ec2

from capblock_constructs import CapacityBlockError, CapacityBlockLaunchTemplate
from capblock_constructs import efa as efa_module
from capblock_constructs.efa import EfaSecurityGroup, efa_network_interfaces
from capblock_constructs.instance_types import (
    InstanceTypeInfo,
    instance_type_info,
    known_instance_types,
)
from tests.support import block, cfn_lint_errors, make_stack, only_resource, template_of

# What AWS documents today, identically in the EC2 user guide ("Maximize network bandwidth on
# Amazon EC2 instances with multiple network cards") and the EKS user guide ("Manage EFA
# devices on Amazon EKS"):
# - card 0, device 0: the primary interface, ENA ('interface'); never 'efa-only';
# - card 0, device 1: 'efa-only', if card 0 supports EFA;
# - every other card, device 0: 'efa-only'.
PRIMARY = (0, 0, "interface")


def slots(instance_type: str) -> list[tuple[int, int, str]]:
    return [
        (nic.network_card_index, nic.device_index, nic.interface_type)
        for nic in efa_network_interfaces(instance_type)
    ]


def test_p5_gets_an_ena_primary_and_32_efa_only_interfaces() -> None:
    # The EC2 user guide's P5 example: "32 EFA devices and one ENA device".
    layout = slots("p5.48xlarge")
    assert layout[0] == PRIMARY
    efa = [(card, device) for card, device, kind in layout if kind == "efa-only"]
    assert efa == [(0, 1)] + [(card, 0) for card in range(1, 32)]
    assert len(layout) == 33


def test_p6_b200_matches_the_eks_user_guide_launch_template() -> None:
    # EKS user guide, "Example launch template with EFA-only interfaces for P6-B200".
    assert slots("p6-b200.48xlarge") == [
        PRIMARY,
        (0, 1, "efa-only"),
        *[(card, 0, "efa-only") for card in range(1, 8)],
    ]


def test_single_card_types_get_the_ena_primary_and_one_efa_only() -> None:
    # Card 0 supports EFA, so its efa-only interface goes to device index 1.
    for instance_type in ("p5.4xlarge", "trn2.3xlarge"):
        assert slots(instance_type) == [PRIMARY, (0, 1, "efa-only")], instance_type


@pytest.mark.parametrize("instance_type", ["p6-b300.48xlarge", "p6e-gb200.36xlarge"])
def test_types_whose_card_zero_is_ena_only_put_efa_on_cards_1_to_16(instance_type: str) -> None:
    # p6-b300: "the primary network card (network card index 0) only supports ENA" (AWS
    # engineering, aws-parallelcluster #7143). p6e-gb200: the primary network card "must be of
    # type interface" (EKS user guide, P6e-GB200 UltraServers).
    assert slots(instance_type) == [PRIMARY, *[(card, 0, "efa-only") for card in range(1, 17)]]


def test_gb200_single_interface_cards_get_their_one_interface_at_device_zero() -> None:
    info = instance_type_info("p6e-gb200.36xlarge")
    assert info is not None
    devices = {card: device for card, device, _ in slots("p6e-gb200.36xlarge") if card}
    assert {devices[card] for card in info.single_interface_cards} == {0}


@pytest.mark.parametrize("instance_type", known_instance_types())
def test_every_known_layout_is_the_documented_one(instance_type: str) -> None:
    info = instance_type_info(instance_type)
    assert info is not None
    layout = slots(instance_type)
    # One interface per (network card, device index) pair, the primary first.
    assert len({(card, device) for card, device, _ in layout}) == len(layout)
    assert layout[0] == PRIMARY
    assert all(kind == "efa-only" for _, _, kind in layout[1:])
    # One EFA device per card that supports EFA, at the documented device index.
    expected = [(card, 0) for card in range(1, info.network_cards)]
    if info.primary_card_efa:
        expected.insert(0, (0, 1))
    assert [(card, device) for card, device, _ in layout[1:]] == expected


def test_unknown_type_is_an_error_naming_the_type_and_the_fix() -> None:
    with pytest.raises(CapacityBlockError) as raised:
        efa_network_interfaces("p9.48xlarge")
    message = str(raised.value)
    # First why the type is unknown, then what that means for EFA and the fix.
    assert message.startswith(
        "instance type 'p9.48xlarge' is not one that EC2 sells as a Capacity Block, or is newer "
        "than the capblock-constructs instance-type table"
    )
    assert "p5.48xlarge" in message  # the types the table knows
    assert "EFA interfaces cannot be laid out" in message
    assert "turn EFA off" in message


def test_type_without_efa_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    no_efa = InstanceTypeInfo(
        instance_type="g6.xlarge",
        accelerator="nvidia",
        architecture="x86_64",
        network_cards=1,
        efa_supported=False,
        source="test",
    )
    monkeypatch.setattr(efa_module, "instance_type_info", lambda _: no_efa)
    with pytest.raises(CapacityBlockError, match=r"'g6\.xlarge' does not support Elastic Fabric"):
        efa_network_interfaces("g6.xlarge")


@pytest.fixture(scope="module")
def efa_stack() -> Stack:
    stack = make_stack(name="Efa")
    vpc = ec2.Vpc.from_vpc_attributes(
        stack,
        "Vpc",
        vpc_id="vpc-12345678",
        availability_zones=["us-east-2a"],
        private_subnet_ids=["subnet-aaaa1111"],
    )
    group = EfaSecurityGroup(stack, "Efa", vpc=vpc)
    CapacityBlockLaunchTemplate(
        stack,
        "LaunchTemplate",
        capacity_block=block(),
        network_interfaces=efa_network_interfaces("p5.48xlarge"),
        security_group_ids=[group.security_group_id],
    )
    return stack


@pytest.fixture(scope="module")
def efa_template(efa_stack: Stack) -> dict[str, Any]:
    return dict(template_of(efa_stack).to_json())


def _group_id(efa_template: dict[str, Any]) -> dict[str, Any]:
    (logical_id,) = [
        key
        for key, resource in efa_template["Resources"].items()
        if resource["Type"] == "AWS::EC2::SecurityGroup"
    ]
    return {"Fn::GetAtt": [logical_id, "GroupId"]}


def test_security_group_allows_all_traffic_from_itself(efa_template: dict[str, Any]) -> None:
    ingress = [
        r["Properties"]
        for r in efa_template["Resources"].values()
        if r["Type"] == "AWS::EC2::SecurityGroupIngress"
    ]
    assert len(ingress) == 1
    assert ingress[0]["IpProtocol"] == "-1"
    assert ingress[0]["SourceSecurityGroupId"] == _group_id(efa_template)
    assert ingress[0]["GroupId"] == _group_id(efa_template)


def test_security_group_allows_all_traffic_to_itself_and_nowhere_else(
    efa_template: dict[str, Any],
) -> None:
    egress = [
        r["Properties"]
        for r in efa_template["Resources"].values()
        if r["Type"] == "AWS::EC2::SecurityGroupEgress"
    ]
    assert len(egress) == 1
    assert egress[0]["IpProtocol"] == "-1"
    assert egress[0]["DestinationSecurityGroupId"] == _group_id(efa_template)
    group = next(
        r["Properties"]
        for r in efa_template["Resources"].values()
        if r["Type"] == "AWS::EC2::SecurityGroup"
    )
    # No inline rule to 0.0.0.0/0: the node's other groups carry its general egress.
    assert "SecurityGroupEgress" not in group or all(
        rule.get("CidrIp") != "0.0.0.0/0" for rule in group["SecurityGroupEgress"]
    )
    assert "SecurityGroupIngress" not in group


def test_launch_template_takes_the_interfaces_without_placement_group(
    efa_stack: Stack, efa_template: dict[str, Any]
) -> None:
    data = only_resource(template_of(efa_stack), "AWS::EC2::LaunchTemplate")["Properties"][
        "LaunchTemplateData"
    ]
    interfaces = data["NetworkInterfaces"]
    # CloudFormation leaves InterfaceType out for a plain ENA interface.
    assert [
        (nic["NetworkCardIndex"], nic["DeviceIndex"], nic.get("InterfaceType", "interface"))
        for nic in interfaces
    ] == slots("p5.48xlarge")
    assert all("SubnetId" not in nic for nic in interfaces)
    assert all(nic["Groups"] == [_group_id(efa_template)] for nic in interfaces)
    assert "Placement" not in data
    types = {r["Type"] for r in efa_template["Resources"].values()}
    assert "AWS::EC2::PlacementGroup" not in types


def test_efa_template_passes_cfn_lint(efa_template: dict[str, Any]) -> None:
    assert cfn_lint_errors(efa_template) == []
