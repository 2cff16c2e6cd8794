"""`capblock check`: exit statuses, formats, context and clock, cdk.out, our templates, speed."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import pytest

from capblock_constructs import _time
from capblock_constructs.cli import main
from capblock_constructs.rules import (
    blocks_from_context,
    check_template,
    find_templates,
    load_template,
)

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).parent / "data"
RULES_DATA = DATA / "rules"
CASES = RULES_DATA / "cases"
CONTEXT = RULES_DATA / "cdk.context.json"
SNAPSHOTS = Path(__file__).parent / "__snapshots__" / "test_example_app"


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["check", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def case(name: str) -> str:
    return str(CASES / f"{name}.yaml")


# -- exit statuses ----------------------------------------------------------------------------


def test_exit_0_without_findings(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, case("CB101-pass"), "--context", str(CONTEXT))
    assert (code, out.strip()) == (0, "no findings")


def test_exit_1_with_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, case("CB104-fail"), case("CB101-pass"), "--context", str(CONTEXT))
    assert code == 1
    assert "error CB104 LaunchTemplate GpuTemplate" in out


def test_exit_0_with_only_warnings(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, case("CB305-fail"), "--context", str(CONTEXT))
    assert code == 0
    assert "warning CB305" in out
    assert out.strip().endswith("0 errors, 1 warning")


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["missing.yaml"], "missing.yaml: no such file or folder"),
        (["{bad_json}"], "not valid JSON"),
        (["{bad_yaml}"], "not valid YAML"),
        (["{good}", "--now", "tomorrow"], "--now 'tomorrow' is not an ISO 8601 timestamp"),
        (["{good}", "--now", "2031-03-01T00:00:00"], "has no UTC offset"),
        (["{good}", "--context", "missing.json"], "--context missing.json: no such file"),
        (["{good}", "--context", "{bad_json}"], "cannot be read"),
        (["{good}", "--context", "{bad_entry}"], "lacks capacityReservationId"),
        (["{good}", "--context", "{bad_now}"], "capblock-constructs:now"),
        (["{empty_folder}"], "holds no"),
    ],
)
def test_exit_2_for_bad_usage_and_unreadable_files(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    arguments: list[str],
    message: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.json").write_text('{"Resources": ')
    (tmp_path / "bad.yaml").write_text("Resources: [")
    (tmp_path / "empty").mkdir()
    key = next(key for key in json.loads(CONTEXT.read_text()) if "capacity-block" in key)
    (tmp_path / "entry.json").write_text(json.dumps({key: {"instanceType": "p5.48xlarge"}}))
    (tmp_path / "now.json").write_text(json.dumps({"capblock-constructs:now": "soon"}))
    names = {
        "bad_json": "bad.json",
        "bad_yaml": "bad.yaml",
        "good": case("CB101-pass"),
        "bad_entry": "entry.json",
        "bad_now": "now.json",
        "empty_folder": "empty",
    }
    code, out, err = run(capsys, *(argument.format(**names) for argument in arguments))
    assert code == 2
    assert out == ""
    assert err.startswith("capblock check: error: ")
    assert message in err


@pytest.mark.parametrize("output_format", ["text", "json", "sarif"])
def test_every_readable_template_is_checked_and_every_unreadable_one_named(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, output_format: str
) -> None:
    (tmp_path / "bad.json").write_text('{"Resources": ')
    (tmp_path / "bad.yaml").write_text("Resources: [")
    bad_json = str(tmp_path / "bad.json")
    bad_yaml = str(tmp_path / "bad.yaml")
    good = case("CB104-fail")  # one error finding
    code, out, err = run(
        capsys, bad_json, good, bad_yaml, "--context", str(CONTEXT), "--format", output_format
    )
    assert code == 2
    # stderr names both bad files, each with its own reason, in one error.
    assert err.startswith("capblock check: error: 2 problems:")
    assert f"{bad_json}: it is not valid JSON" in err
    assert f"{bad_yaml}: it is not valid YAML" in err
    # stdout holds the good template's finding only, still valid in the chosen format.
    if output_format == "text":
        first, count = out.splitlines()
        assert first.startswith(f"{good}: error CB104 LaunchTemplate GpuTemplate")
        assert count == "1 error, 0 warnings"
    elif output_format == "json":
        assert [(item["rule"], item["template"]) for item in json.loads(out)] == [("CB104", good)]
    else:
        log = json.loads(out)
        schema = json.loads((DATA / "sarif-schema-2.1.0.json").read_text())
        jsonschema.Draft4Validator(schema).validate(log)
        assert [result["ruleId"] for result in log["runs"][0]["results"]] == ["CB104"]
    assert "bad." not in out


def test_unreadable_paths_and_templates_in_folders_are_all_named(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # A missing path, an empty folder and a cdk.out with one broken template beside a good one.
    cdk_out = tmp_path / "cdk.out"
    cdk_out.mkdir()
    (cdk_out / "Broken.template.json").write_text("[]")
    fine = load_template(CASES / "CB101-pass.yaml")
    (cdk_out / "Fine.template.json").write_text(json.dumps(fine))
    (tmp_path / "empty").mkdir()
    missing = tmp_path / "missing.yaml"
    code, out, err = run(
        capsys, str(missing), str(tmp_path / "empty"), str(cdk_out), "--context", str(CONTEXT)
    )
    assert code == 2
    assert out.strip() == "no findings"
    assert "3 problems:" in err
    assert f"{missing}: no such file or folder" in err
    assert f"{tmp_path / 'empty'}: the folder holds no" in err
    assert f"{cdk_out / 'Broken.template.json'}: it is a list" in err


@pytest.mark.parametrize(
    "arguments", [[], ["--format", "xml", "t.json"], ["t.json", "--frobnicate"]]
)
def test_exit_2_for_argument_errors(
    capsys: pytest.CaptureFixture[str], arguments: list[str]
) -> None:
    code, _, err = run(capsys, *arguments)
    assert code == 2
    assert "usage: capblock" in err


# -- context and clock ---------------------------------------------------------------------------


def test_context_defaults_to_the_working_directory(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    template = case("CB104-fail")
    monkeypatch.chdir(tmp_path)
    # No cdk.context.json: no block is known, so the instance type cannot be compared.
    assert run(capsys, template)[0] == 0
    shutil.copy(CONTEXT, tmp_path / "cdk.context.json")
    assert run(capsys, template)[0] == 1


def test_now_comes_from_the_option_then_the_context_then_the_clock(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The case's scale-up is at 2031-02-28T23:00Z; the context pins now at 2031-03-01T00:00Z.
    template = case("CB401-fail")
    assert run(capsys, template, "--context", str(CONTEXT))[0] == 1
    code, out, _ = run(capsys, template, "--context", str(CONTEXT), "--now", "2031-02-28T00:00:00Z")
    assert (code, out.strip()) == (0, "no findings")
    unpinned = tmp_path / "cdk.context.json"
    context = json.loads(CONTEXT.read_text())
    del context["capblock-constructs:now"]
    unpinned.write_text(json.dumps(context))
    monkeypatch.setattr(_time, "utc_now", lambda: datetime(2031, 2, 1, tzinfo=timezone.utc))
    code, out, _ = run(capsys, template, "--context", str(unpinned))
    assert (code, out.strip()) == (0, "no findings")
    monkeypatch.setattr(_time, "utc_now", lambda: datetime(2031, 3, 1, tzinfo=timezone.utc))
    code, out, _ = run(capsys, template, "--context", str(unpinned))
    assert code == 1
    assert "error CB401" in out


# -- formats ---------------------------------------------------------------------------------


def test_json_format(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys,
        case("CB207-fail"),
        case("CB303-fail"),
        "--context",
        str(CONTEXT),
        "--format",
        "json",
    )
    items = json.loads(out)
    assert code == 1
    assert [(item["rule"], item["severity"]) for item in items] == [
        ("CB207", "error"),
        ("CB207", "error"),
        ("CB303", "error"),
    ]
    assert {item["template"] for item in items} == {case("CB207-fail"), case("CB303-fail")}
    assert all(
        set(item) >= {"rule", "severity", "template", "resource", "message"} for item in items
    )


def test_sarif_format(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys, str(RULES_DATA / "cdk-out"), "--context", str(CONTEXT), "--format", "sarif"
    )
    schema = json.loads((DATA / "sarif-schema-2.1.0.json").read_text())
    log = json.loads(out)
    jsonschema.Draft4Validator(schema).validate(log)
    assert code == 1
    assert [result["ruleId"] for result in log["runs"][0]["results"]] == ["CB104", "CB105"]


# -- cdk.out, and the project's own templates -------------------------------------------------


def test_cdk_out_with_nested_stages(capsys: pytest.CaptureFixture[str]) -> None:
    cdk_out = RULES_DATA / "cdk-out"
    code, out, _ = run(capsys, str(cdk_out), "--context", str(CONTEXT))
    lines = out.splitlines()
    assert code == 1
    assert lines[0].startswith(
        f"{cdk_out / 'assembly-Prod' / 'ProdGpu.template.json'}: error CB104"
    )
    assert lines[1].startswith(
        f"{cdk_out / 'assembly-Prod' / 'assembly-Prod-Canary' / 'ProdCanaryGpu.template.json'}: "
        "warning CB105"
    )
    assert lines[2] == "1 error, 1 warning"


def example_cdk_out(tmp_path: Path) -> Path:
    """The example app's synthesized templates (the committed snapshots) as a cdk.out."""
    folder = tmp_path / "cdk.out"
    folder.mkdir()
    for snapshot in SNAPSHOTS.glob("test_templates_match_snapshots[[]*[]].json"):
        stack = snapshot.stem.split("[", 1)[1].rstrip("]")
        shutil.copy(snapshot, folder / f"{stack}.template.json")
    return folder


def test_the_example_templates_have_no_findings(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    folder = example_cdk_out(tmp_path)
    assert len(find_templates([folder])) == 3
    code, out, _ = run(capsys, str(folder), "--context", str(ROOT / "cdk.context.json"))
    assert (code, out.strip()) == (0, "no findings")


def test_the_example_groups_are_recognised_as_controller_managed(tmp_path: Path) -> None:
    # Without the controller the self-managed example group would have nothing scaling it down.
    blocks = blocks_from_context(json.loads((ROOT / "cdk.context.json").read_text()))
    path = example_cdk_out(tmp_path) / "CapblockSelfManagedNodeGroup.template.json"
    body = load_template(path)
    assert check_template(body, template_path="t", blocks=blocks) == []
    body["Resources"] = {
        logical_id: resource
        for logical_id, resource in body["Resources"].items()
        if resource["Type"] != "Custom::CapacityBlockController"
    }
    findings = check_template(body, template_path="t", blocks=blocks)
    assert [finding.rule for finding in findings] == ["CB405"]


def test_check_starts_without_jsii() -> None:
    # A fresh interpreter: `capblock check` must not import the AWS CDK or jsii.
    script = (
        "import sys\n"
        "from capblock_constructs.cli import main\n"
        f"code = main(['check', {str(CASES / 'CB101-pass.yaml')!r}, '--format', 'json'])\n"
        "loaded = sorted(name for name in sys.modules if name.split('.')[0] in "
        "('aws_cdk', 'jsii', 'constructs', 'boto3', 'botocore'))\n"
        "print(code, loaded, file=sys.stderr)\n"
        "sys.exit(1 if loaded or code else 0)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    assert result.returncode == 0, result.stderr


# -- speed -------------------------------------------------------------------------------------


def big_template(groups: int) -> dict[str, Any]:
    """``groups`` x (launch template, subnet, group, 2 actions): 5 resources each."""
    resources: dict[str, Any] = {}
    for index in range(groups):
        resources[f"Lt{index}"] = {
            "Type": "AWS::EC2::LaunchTemplate",
            "Properties": {
                "LaunchTemplateData": {
                    "InstanceType": "p5.48xlarge",
                    "InstanceMarketOptions": {"MarketType": "capacity-block"},
                    "CapacityReservationSpecification": {
                        "CapacityReservationTarget": {
                            "CapacityReservationId": "cr-0123456789abcdef0"
                        }
                    },
                }
            },
        }
        resources[f"Subnet{index}"] = {
            "Type": "AWS::EC2::Subnet",
            "Properties": {"AvailabilityZone": "us-east-2a"},
        }
        resources[f"Group{index}"] = {
            "Type": "AWS::AutoScaling::AutoScalingGroup",
            "Properties": {
                "MinSize": "0",
                "MaxSize": "4",
                "VPCZoneIdentifier": [{"Ref": f"Subnet{index}"}],
                "LaunchTemplate": {
                    "LaunchTemplateId": {"Ref": f"Lt{index}"},
                    "Version": {"Fn::GetAtt": [f"Lt{index}", "LatestVersionNumber"]},
                },
            },
        }
        for name, start, desired in (
            ("Up", f"2031-03-03T11:{index % 60:02d}:00Z", 4),
            ("Down", f"2031-03-17T10:{index % 30:02d}:00Z", 0),
        ):
            resources[f"{name}{index}"] = {
                "Type": "AWS::AutoScaling::ScheduledAction",
                "Properties": {
                    "AutoScalingGroupName": {"Ref": f"Group{index}"},
                    "DesiredCapacity": desired,
                    "StartTime": start,
                },
            }
    return {"Resources": resources}


def test_checking_is_fast(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Generous bounds for a shared CI machine; the numbers are printed for the record.
    blocks = blocks_from_context(json.loads(CONTEXT.read_text()))
    body = big_template(40)
    assert len(body["Resources"]) == 200
    started = time.perf_counter()
    assert check_template(body, template_path="big", blocks=blocks) == []
    big = time.perf_counter() - started
    folder = example_cdk_out(tmp_path)
    started = time.perf_counter()
    assert run(capsys, str(folder), "--context", str(ROOT / "cdk.context.json"))[0] == 0
    example = time.perf_counter() - started
    with capsys.disabled():
        print(
            f"\n200-resource template: {big * 1e3:.0f} ms; example cdk.out: {example * 1e3:.0f} ms"
        )
    assert big < 2.0
    assert example < 5.0
