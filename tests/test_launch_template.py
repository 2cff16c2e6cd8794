"""CapacityBlockLaunchTemplate: the fields EC2 and EKS require for a Capacity Block."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from aws_cdk import Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk.assertions import Template

from capblock_constructs import (
    RESERVATION_TAG_KEY,
    CapacityBlockError,
    CapacityBlockLaunchTemplate,
    NetworkInterface,
    RootVolume,
)
from tests.support import RESERVATION_ID, block, cfn_lint_errors, make_stack, only_resource


@pytest.fixture(scope="module")
def default_stack() -> Stack:
    stack = make_stack()
    CapacityBlockLaunchTemplate(stack, "LaunchTemplate", capacity_block=block())
    return stack


@pytest.fixture(scope="module")
def default_data(default_stack: Stack) -> dict[str, Any]:
    template = Template.from_stack(default_stack)
    data: dict[str, Any] = only_resource(template, "AWS::EC2::LaunchTemplate")["Properties"][
        "LaunchTemplateData"
    ]
    return data


@pytest.fixture(scope="module")
def custom_stack() -> Stack:
    stack = make_stack(name="Custom")
    CapacityBlockLaunchTemplate(
        stack,
        "LaunchTemplate",
        capacity_block=block(),
        image_id="ami-0123456789abcdef0",
        user_data="#!/bin/bash\necho hello\n",
        instance_profile_arn="arn:aws:iam::123456789012:instance-profile/nodes",
        security_group_ids=["sg-0123456789abcdef0"],
        network_interfaces=[
            NetworkInterface(network_card_index=0, device_index=0, interface_type="efa"),
            NetworkInterface(network_card_index=1, device_index=1, interface_type="efa-only"),
        ],
        root_volume=RootVolume(size_gib=500, iops=6000, throughput_mibps=500),
        http_put_response_hop_limit=2,
        tags={"team": "ml"},
    )
    return stack


@pytest.fixture(scope="module")
def custom_data(custom_stack: Stack) -> dict[str, Any]:
    template = Template.from_stack(custom_stack)
    data: dict[str, Any] = only_resource(template, "AWS::EC2::LaunchTemplate")["Properties"][
        "LaunchTemplateData"
    ]
    return data


def test_carries_the_three_capacity_block_fields(default_data: dict[str, Any]) -> None:
    # EKS user guide: MarketType capacity-block, the reservation as target, the block's type.
    assert default_data["InstanceMarketOptions"] == {"MarketType": "capacity-block"}
    assert default_data["CapacityReservationSpecification"] == {
        "CapacityReservationTarget": {"CapacityReservationId": RESERVATION_ID}
    }
    assert default_data["InstanceType"] == "p5.48xlarge"


def test_requires_imdsv2_and_keeps_pods_off_imds_by_default(default_data: dict[str, Any]) -> None:
    assert default_data["MetadataOptions"] == {
        "HttpEndpoint": "enabled",
        "HttpTokens": "required",
        "HttpPutResponseHopLimit": 1,
    }


def test_default_root_volume_is_encrypted_gp3(default_data: dict[str, Any]) -> None:
    (mapping,) = default_data["BlockDeviceMappings"]
    assert mapping["DeviceName"] == "/dev/xvda"
    assert mapping["Ebs"]["Encrypted"] is True
    assert mapping["Ebs"]["VolumeType"] == "gp3"
    assert mapping["Ebs"]["VolumeSize"] == 200


def test_default_has_nothing_managed_node_groups_forbid(default_data: dict[str, Any]) -> None:
    # EKS rejects IamInstanceProfile and NIC SubnetId in a managed node group's template.
    assert "IamInstanceProfile" not in default_data
    assert "NetworkInterfaces" not in default_data
    assert "ImageId" not in default_data


def test_tags_instances_volumes_and_interfaces(default_data: dict[str, Any]) -> None:
    specs = {spec["ResourceType"]: spec["Tags"] for spec in default_data["TagSpecifications"]}
    assert set(specs) == {"instance", "volume", "network-interface"}
    for tags in specs.values():
        assert {"Key": RESERVATION_TAG_KEY, "Value": RESERVATION_ID} in tags


def test_exposes_id_and_pinned_version(default_stack: Stack) -> None:
    construct = default_stack.node.find_child("LaunchTemplate")
    assert isinstance(construct, CapacityBlockLaunchTemplate)
    resolved_id = default_stack.resolve(construct.launch_template_id)
    resolved_version = default_stack.resolve(construct.version_number)
    logical_id = default_stack.get_logical_id(construct.resource)
    assert resolved_id == {"Ref": logical_id}
    assert resolved_version == {"Fn::GetAtt": [logical_id, "LatestVersionNumber"]}


def test_custom_options(custom_data: dict[str, Any]) -> None:
    assert custom_data["ImageId"] == "ami-0123456789abcdef0"
    assert custom_data["IamInstanceProfile"] == {
        "Arn": "arn:aws:iam::123456789012:instance-profile/nodes"
    }
    assert custom_data["MetadataOptions"]["HttpPutResponseHopLimit"] == 2
    encoded = custom_data["UserData"]["Fn::Base64"]
    assert encoded == "#!/bin/bash\necho hello\n"
    ebs = custom_data["BlockDeviceMappings"][0]["Ebs"]
    assert (ebs["VolumeSize"], ebs["Iops"], ebs["Throughput"]) == (500, 6000, 500)
    instance_tags = custom_data["TagSpecifications"][0]["Tags"]
    assert {"Key": "team", "Value": "ml"} in instance_tags


def test_security_groups_move_onto_interfaces(custom_data: dict[str, Any]) -> None:
    # EC2 does not accept SecurityGroupIds beside NetworkInterfaces: groups go on each interface.
    assert "SecurityGroupIds" not in custom_data
    first, second = custom_data["NetworkInterfaces"]
    assert first == {
        "DeleteOnTermination": True,
        "DeviceIndex": 0,
        "Groups": ["sg-0123456789abcdef0"],
        "InterfaceType": "efa",
        "NetworkCardIndex": 0,
    }
    assert second["InterfaceType"] == "efa-only"
    assert (second["NetworkCardIndex"], second["DeviceIndex"]) == (1, 1)
    assert all("SubnetId" not in nic for nic in custom_data["NetworkInterfaces"])


def test_user_data_object_is_rendered() -> None:
    stack = make_stack(name="UserDataObject")
    user_data = ec2.UserData.for_linux()
    user_data.add_commands("echo from-object")
    CapacityBlockLaunchTemplate(
        stack, "LaunchTemplate", capacity_block=block(), user_data=user_data
    )
    data = stack.resolve(
        stack.node.find_child("LaunchTemplate").node.default_child.launch_template_data  # type: ignore[attr-defined]
    )
    assert "echo from-object" in data["userData"]["Fn::Base64"]


def test_resource_group_target_for_ultraserver_blocks() -> None:
    stack = make_stack(name="ResourceGroup")
    arn = "arn:aws:resource-groups:us-east-2:123456789012:group/ultra"
    template = CapacityBlockLaunchTemplate(
        stack,
        "LaunchTemplate",
        capacity_block=block(ultraserver_type="u-p6e-gb200x72"),
        capacity_reservation_resource_group_arn=arn,
    )
    data = stack.resolve(template.resource.launch_template_data)
    assert data["capacityReservationSpecification"] == {
        "capacityReservationTarget": {"capacityReservationResourceGroupArn": arn}
    }
    assert data["instanceMarketOptions"] == {"marketType": "capacity-block"}


def test_templates_pass_cfn_lint(default_stack: Stack, custom_stack: Stack) -> None:
    assert cfn_lint_errors(Template.from_stack(default_stack)) == []
    assert cfn_lint_errors(Template.from_stack(custom_stack)) == []


def test_user_data_is_base64_in_the_template_shape(custom_data: dict[str, Any]) -> None:
    # Fn::Base64 is resolved by CloudFormation; make sure nobody double-encodes it.
    text = custom_data["UserData"]["Fn::Base64"]
    with pytest.raises(ValueError):  # noqa: PT011 - plain text must not decode as base64
        base64.b64decode(text, validate=True)


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"image_id": "ubuntu"}, "image_id 'ubuntu' is not an AMI ID"),
        ({"http_put_response_hop_limit": 0}, "http_put_response_hop_limit 0 must be between 1"),
        ({"root_volume": RootVolume(volume_type="st1")}, "volume_type 'st1' is not one of"),
        ({"root_volume": RootVolume(size_gib=0)}, "size_gib 0 must be a whole number"),
        (
            {"root_volume": RootVolume(volume_type="io2", iops=9000, throughput_mibps=500)},
            "only gp3 takes a throughput",
        ),
        ({"root_volume": RootVolume(size_gib=True)}, "size_gib True must be a whole number"),
        ({"root_volume": RootVolume(iops=90000)}, "iops 90000 is outside gp3's 3000-80000"),
        ({"root_volume": RootVolume(iops=2000)}, "iops 2000 is outside gp3's 3000-80000"),
        (
            {"root_volume": RootVolume(volume_type="io1", iops=70000)},
            "iops 70000 is outside io1's 100-64000",
        ),
        (
            {"root_volume": RootVolume(throughput_mibps=2500)},
            "throughput_mibps 2500 is outside gp3's 125-2000 MiB/s",
        ),
        ({"user_data": b"#!/bin/bash\n"}, "user_data is bytes, not text"),
        (
            {
                "network_interfaces": [
                    NetworkInterface(),
                    NetworkInterface(network_card_index=-1, device_index=1),
                ]
            },
            "(card -1, device 1) has a negative index",
        ),
        ({"root_volume": RootVolume(volume_type="io2")}, "'io2' needs iops"),
        ({"root_volume": RootVolume(volume_type="gp2", iops=3000)}, "gp2 takes no IOPS"),
        (
            {"network_interfaces": [NetworkInterface(interface_type="efa-only")]},
            "cannot be the primary network interface (network card 0, device index 0)",
        ),
        (
            {"network_interfaces": [NetworkInterface(interface_type="ena")]},
            "interface_type 'ena'",
        ),
        (
            {"network_interfaces": [NetworkInterface(network_card_index=1, device_index=1)]},
            "none at network card 0, device index 0",
        ),
        (
            {"network_interfaces": [NetworkInterface(), NetworkInterface()]},
            "two network interfaces use network card 0 and device index 0",
        ),
    ],
)
def test_rejects_bad_options(options: dict[str, Any], expected: str) -> None:
    stack = make_stack(name="Bad")
    with pytest.raises(CapacityBlockError) as caught:
        CapacityBlockLaunchTemplate(stack, "LaunchTemplate", capacity_block=block(), **options)
    assert expected in str(caught.value)
    assert str(caught.value).startswith("Bad/LaunchTemplate")


def test_accepts_efa_only_beside_the_primary_on_card_0() -> None:
    # The EC2 user guide's layout for multi-card EFA types: ENA primary at card 0 device 0,
    # EFA-only at card 0 device 1 and at device 0 of each further card.
    stack = make_stack(name="EfaOnlyOnCard0")
    CapacityBlockLaunchTemplate(
        stack,
        "LaunchTemplate",
        capacity_block=block(),
        network_interfaces=[
            NetworkInterface(),
            NetworkInterface(device_index=1, interface_type="efa-only"),
            NetworkInterface(network_card_index=1, interface_type="efa-only"),
        ],
    )


def test_rejects_a_reservation_id_in_place_of_a_block() -> None:
    stack = make_stack(name="NotABlock")
    with pytest.raises(CapacityBlockError) as caught:
        CapacityBlockLaunchTemplate(stack, "LaunchTemplate", capacity_block=RESERVATION_ID)  # type: ignore[arg-type]
    assert f"capacity_block '{RESERVATION_ID}' is a str, not a CapacityBlock" in str(caught.value)
    assert "CapacityBlock.from_lookup" in str(caught.value)
