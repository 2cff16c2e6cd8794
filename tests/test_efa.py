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


def test_p5_gets_one_interface_per_network_card() -> None:
    interfaces = efa_network_interfaces("p5.48xlarge")
    assert len(interfaces) == 32
    assert [nic.network_card_index for nic in interfaces] == list(range(32))
    primary, *others = interfaces
    assert (primary.device_index, primary.interface_type) == (0, "efa")
    assert {(nic.device_index, nic.interface_type) for nic in others} == {(1, "efa-only")}


def test_single_card_type_gets_only_the_primary_efa() -> None:
    (only,) = efa_network_interfaces("p5.4xlarge")
    assert (only.network_card_index, only.device_index, only.interface_type) == (0, 0, "efa")


def test_p6_b300_keeps_card_zero_ena_only() -> None:
    # Card 0 of a p6-b300 supports ENA only (aws-parallelcluster #7143).
    primary, *others = efa_network_interfaces("p6-b300.48xlarge")
    assert (primary.network_card_index, primary.device_index) == (0, 0)
    assert primary.interface_type == "interface"
    assert len(others) == 16
    assert all(nic.interface_type == "efa-only" for nic in others)


def test_gb200_odd_cards_take_their_single_interface_at_device_zero() -> None:
    # Odd cards of a p6e-gb200 allow one interface (aws-parallelcluster PR #6930).
    interfaces = efa_network_interfaces("p6e-gb200.36xlarge")
    assert len(interfaces) == 17
    by_card = {nic.network_card_index: nic for nic in interfaces}
    assert by_card[1].device_index == 0
    assert by_card[2].device_index == 1
    assert by_card[0].interface_type == "efa"


@pytest.mark.parametrize("instance_type", known_instance_types())
def test_every_known_layout_keeps_the_ec2_interface_rules(instance_type: str) -> None:
    # EC2: one interface per (network card, device index); the primary interface sits at
    # card 0, device 0 and carries IP (so never 'efa-only'); every card gets one interface.
    interfaces = efa_network_interfaces(instance_type)
    info = instance_type_info(instance_type)
    assert info is not None
    slots = [(nic.network_card_index, nic.device_index) for nic in interfaces]
    assert len(set(slots)) == len(slots)
    assert sorted({card for card, _ in slots}) == list(range(info.network_cards))
    primary = interfaces[slots.index((0, 0))]
    assert primary.interface_type in ("efa", "interface")
    assert all(nic.device_index in (0, 1) for nic in interfaces)
    assert all(nic.interface_type == "efa-only" for nic in interfaces if nic.network_card_index > 0)


def test_unknown_type_is_an_error_naming_the_type_and_the_fix() -> None:
    with pytest.raises(CapacityBlockError) as raised:
        efa_network_interfaces("p9.48xlarge")
    message = str(raised.value)
    assert "'p9.48xlarge'" in message
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
    assert len(interfaces) == 32
    assert all("SubnetId" not in nic for nic in interfaces)
    assert all(nic["Groups"] == [_group_id(efa_template)] for nic in interfaces)
    assert "Placement" not in data
    types = {r["Type"] for r in efa_template["Resources"].values()}
    assert "AWS::EC2::PlacementGroup" not in types


def test_efa_template_passes_cfn_lint(efa_template: dict[str, Any]) -> None:
    assert cfn_lint_errors(efa_template) == []
