"""Reading templates (JSON, YAML short forms), finding them in cdk.out, and reading the context."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from capblock_constructs.errors import CapacityBlockError
from capblock_constructs.rules import (
    TemplateError,
    blocks_from_context,
    check_template,
    find_templates,
    load_template,
    now_from_context,
)
from tests.rules_support import CONTEXT, RULES_DATA

# A cloud assembly as `cdk synth` writes it (named cdk-out here: .gitignore ignores cdk.out/).
CDK_OUT = RULES_DATA / "cdk-out"

SHORT_FORMS = """\
Conditions:
  IsProd: !Equals [!Ref Stage, prod]
Resources:
  Lt:
    Type: AWS::EC2::LaunchTemplate
    Condition: IsProd
    Properties:
      LaunchTemplateName: !Sub "${AWS::StackName}-gpu"
      LaunchTemplateData:
        UserData: !Base64 {"Fn::Join": ["", ["#!/bin/bash\\n", !Ref Stage]]}
        ImageId: !FindInMap [Images, !Ref "AWS::Region", Gpu]
        InstanceType: !If [IsProd, p5.48xlarge, !Ref "AWS::NoValue"]
        SecurityGroupIds: !Split [",", !ImportValue sgs]
        Placement: {AvailabilityZone: !Select [0, !GetAZs ""]}
  Group:
    Type: AWS::AutoScaling::AutoScalingGroup
    Properties:
      LaunchTemplate:
        LaunchTemplateId: !Ref Lt
        Version: !GetAtt Lt.LatestVersionNumber
      Cidrs: !Cidr [10.0.0.0/16, 4, 8]
      Other: !GetAtt [Lt, DefaultVersionNumber]
      Condition: !Condition IsProd
      Start: 2031-03-17T10:50:00Z
      Count: 4
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_yaml_short_forms_become_long_forms(tmp_path: Path) -> None:
    body = load_template(write(tmp_path, "t.yaml", SHORT_FORMS))
    assert body["Conditions"]["IsProd"] == {"Fn::Equals": [{"Ref": "Stage"}, "prod"]}
    data = body["Resources"]["Lt"]["Properties"]["LaunchTemplateData"]
    assert body["Resources"]["Lt"]["Properties"]["LaunchTemplateName"] == {
        "Fn::Sub": "${AWS::StackName}-gpu"
    }
    assert data["UserData"] == {
        "Fn::Base64": {"Fn::Join": ["", ["#!/bin/bash\n", {"Ref": "Stage"}]]}
    }
    assert data["ImageId"] == {"Fn::FindInMap": ["Images", {"Ref": "AWS::Region"}, "Gpu"]}
    assert data["InstanceType"] == {"Fn::If": ["IsProd", "p5.48xlarge", {"Ref": "AWS::NoValue"}]}
    assert data["SecurityGroupIds"] == {"Fn::Split": [",", {"Fn::ImportValue": "sgs"}]}
    assert data["Placement"] == {"AvailabilityZone": {"Fn::Select": [0, {"Fn::GetAZs": ""}]}}
    group = body["Resources"]["Group"]["Properties"]
    assert group["LaunchTemplate"] == {
        "LaunchTemplateId": {"Ref": "Lt"},
        "Version": {"Fn::GetAtt": ["Lt", "LatestVersionNumber"]},
    }
    assert group["Cidrs"] == {"Fn::Cidr": ["10.0.0.0/16", 4, 8]}
    assert group["Other"] == {"Fn::GetAtt": ["Lt", "DefaultVersionNumber"]}
    assert group["Condition"] == {"Condition": "IsProd"}
    # CloudFormation reads an unquoted timestamp as a string, and so must the rules.
    assert group["Start"] == "2031-03-17T10:50:00Z"
    assert group["Count"] == 4


def test_json_templates_load(tmp_path: Path) -> None:
    body: dict[str, Any] = {"Resources": {"A": {"Type": "AWS::SNS::Topic"}}}
    assert load_template(write(tmp_path, "t.json", json.dumps(body))) == body
    # A JSON template with another suffix is still JSON.
    assert load_template(write(tmp_path, "t.template", json.dumps(body))) == body


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("bad.json", '{"Resources": {', "not valid JSON: .* at line 1 column 16"),
        ("bad.yaml", "Resources:\n  A: [1, 2\n", "not valid YAML: .* at line 3"),
        ("list.yaml", "- a\n- b\n", "it is a list, not a CloudFormation template"),
        ("empty.yaml", "", "it is empty"),
        ("compose.yaml", "services:\n  web: {}\n", "no Resources mapping"),
    ],
)
def test_unreadable_templates_fail_clearly(
    tmp_path: Path, name: str, text: str, message: str
) -> None:
    path = write(tmp_path, name, text)
    with pytest.raises(TemplateError, match=message) as failure:
        load_template(path)
    assert str(path) in str(failure.value)
    # One exception type for callers: the library's, which is a ValueError.
    assert isinstance(failure.value, CapacityBlockError)
    assert isinstance(failure.value, ValueError)


def test_a_template_without_resources_has_none_to_check(tmp_path: Path) -> None:
    # What the CDK writes for a stack holding only parameters: a template, nothing to judge.
    path = write(tmp_path, "params.json", json.dumps({"Parameters": {"P": {"Type": "String"}}}))
    template = load_template(path)
    assert template["Resources"] == {}
    assert check_template(template, template_path=str(path)) == []


def test_missing_folder_and_binary_files_fail_clearly(tmp_path: Path) -> None:
    with pytest.raises(TemplateError, match="no such file"):
        load_template(tmp_path / "missing.json")
    with pytest.raises(TemplateError, match="is a folder"):
        load_template(tmp_path)
    binary = tmp_path / "binary.json"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(TemplateError, match="not UTF-8"):
        load_template(binary)


def test_cdk_out_with_nested_assemblies() -> None:
    found = find_templates([CDK_OUT])
    assert [path.relative_to(CDK_OUT).as_posix() for path in found] == [
        "GpuStack.template.json",
        "assembly-Prod/ProdGpu.template.json",
        "assembly-Prod/assembly-Prod-Canary/ProdCanaryGpu.template.json",
    ]
    # Assets (asset.*/) are never searched: the broken file there is not a template.
    assert all("asset." not in str(path) for path in found)


def test_files_are_kept_folders_expanded_sorted_once(tmp_path: Path) -> None:
    one = write(tmp_path, "b.yaml", "Resources: {}\n")
    two = CDK_OUT / "GpuStack.template.json"
    assert find_templates([one, two, CDK_OUT, one]) == sorted({one, *find_templates([CDK_OUT])})


def test_missing_paths_and_empty_folders_fail_clearly(tmp_path: Path) -> None:
    with pytest.raises(TemplateError, match="no such file or folder"):
        find_templates([tmp_path / "cdk.out"])
    with pytest.raises(TemplateError, match=r"holds no \*\.template\.json"):
        find_templates([tmp_path])


def test_every_bad_path_is_named_in_one_error(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    missing = tmp_path / "missing.yaml"
    with pytest.raises(TemplateError) as failure:
        find_templates([missing, CDK_OUT, empty])
    assert failure.value.problems == (
        f"{missing}: no such file or folder; pass a template file or a folder such as cdk.out.",
        f"{empty}: the folder holds no *.template.json file (nor do its assembly-* folders); "
        "run 'cdk synth' first or pass the template files.",
    )


# -- context --------------------------------------------------------------------------------

KEY = (
    "capblock-constructs:capacity-block:account={account}:region=us-east-2:"
    "capacityReservationId={id}"
)
VALUE = {
    "capacityReservationId": "cr-0123456789abcdef0",
    "instanceType": "p5.48xlarge",
    "availabilityZone": "us-east-2a",
    "instanceCount": 4,
    "startDate": "2031-03-03T11:30:00Z",
    "endDate": "2031-03-17T11:30:00Z",
}


def test_blocks_from_the_cache_entries() -> None:
    blocks = blocks_from_context(CONTEXT)
    assert sorted(blocks) == ["cr-0123456789abcdef0", "cr-0fedcba9876543210"]
    block = blocks["cr-0123456789abcdef0"]
    assert block.instance_type == "p5.48xlarge"
    assert block.end == datetime(2031, 3, 17, 11, 30, tzinfo=timezone.utc)
    assert blocks["cr-0fedcba9876543210"].is_ultraserver


def test_blocks_ignore_other_keys_and_read_cdk_c_strings() -> None:
    context = {
        "availability-zones:account=111122223333:region=us-east-2": ["us-east-2a"],
        "capblock-constructs:eks-cluster:account=1:region=us-east-2:clusterName=x": {},
        # `cdk -c key=value` passes context values as strings.
        KEY.format(account="111122223333", id=VALUE["capacityReservationId"]): json.dumps(VALUE),
    }
    assert list(blocks_from_context(context)) == ["cr-0123456789abcdef0"]


def test_a_stale_entry_loses_to_the_extended_one() -> None:
    # An extension keeps the ID and moves the end later; the later end is the live one.
    extended = {**VALUE, "endDate": "2031-03-24T11:30:00Z"}
    context = {
        KEY.format(account="111122223333", id=VALUE["capacityReservationId"]): VALUE,
        KEY.format(account="444455556666", id=VALUE["capacityReservationId"]): extended,
    }
    block = blocks_from_context(context)["cr-0123456789abcdef0"]
    assert block.end == datetime(2031, 3, 24, 11, 30, tzinfo=timezone.utc)


def test_malformed_entries_fail_with_every_problem() -> None:
    context = {
        KEY.format(account="111122223333", id="cr-0123456789abcdef0"): {"instanceType": "p5"},
        KEY.format(account="111122223333", id="cr-0aaaaaaaaaaaaaaaa"): [1],
    }
    with pytest.raises(CapacityBlockError) as failure:
        blocks_from_context(context)
    assert "2 problems" in str(failure.value)
    assert "lacks" in str(failure.value)
    assert "not an object" in str(failure.value)


def test_now_from_context() -> None:
    assert now_from_context({}) is None
    assert now_from_context({"capblock-constructs:now": "2031-03-01T09:00:00+09:00"}) == (
        datetime(2031, 3, 1, 0, 0, tzinfo=timezone.utc)
    )
    with pytest.raises(CapacityBlockError, match="ISO 8601"):
        now_from_context({"capblock-constructs:now": 1800000000})
    with pytest.raises(CapacityBlockError, match="no UTC offset"):
        now_from_context({"capblock-constructs:now": "2031-03-01T00:00:00"})
