"""The example app as users get it: every stack synthesized once, linted, nag-checked, snapshotted.

To update the snapshots after an intended change:
    PATH=$PWD/.venv/bin:$PATH python -m pytest tests/test_example_app.py --snapshot-update
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Validations
from aws_cdk.cx_api import CloudAssembly
from cdk_nag import AwsSolutionsChecks
from syrupy.assertion import SnapshotAssertion
from syrupy.extensions.json import JSONSnapshotExtension

from app import build_app
from examples.environment import EXAMPLE_ACCOUNT, EXAMPLE_REGION, EXAMPLE_RESERVATION_ID
from tests.support import cfn_lint_errors

ROOT = Path(__file__).resolve().parent.parent
PINNED_NOW = "2026-11-26T00:00:00Z"
RESERVATION_KEY = (
    f"capblock-constructs:capacity-block:account={EXAMPLE_ACCOUNT}:region={EXAMPLE_REGION}"
    f":capacityReservationId={EXAMPLE_RESERVATION_ID}"
)


def _app_context() -> dict[str, Any]:
    """What the CDK CLI would pass: cdk.json's context, then cdk.context.json."""
    context: dict[str, Any] = dict(json.loads((ROOT / "cdk.json").read_text())["context"])
    context.update(json.loads((ROOT / "cdk.context.json").read_text()))
    context["capblock-constructs:now"] = PINNED_NOW
    return context


@pytest.fixture(scope="module")
def nag_outdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cdk.out")


@pytest.fixture(scope="module")
def assembly(nag_outdir: Path) -> CloudAssembly:
    """The example app synthesized once, with cdk-nag's AwsSolutions pack as a validation plugin.

    The CDK's built-in template validation stays on, as under 'cdk synth'.
    """
    app = build_app(App(context=_app_context(), analytics_reporting=False, outdir=str(nag_outdir)))
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    try:
        return app.synth()
    except RuntimeError as failure:
        report = nag_outdir / "validation-report.json"
        details = report.read_text() if report.exists() else ""
        pytest.fail(f"validation failed: {failure}\n{details}")


@pytest.fixture(scope="module")
def templates(assembly: CloudAssembly) -> dict[str, dict[str, Any]]:
    return {stack.stack_name: stack.template for stack in assembly.stacks}


def _normalized(template: dict[str, Any]) -> dict[str, Any]:
    """Drop what may differ between machines or CDK patch releases without changing behaviour."""
    text = json.dumps(template, sort_keys=True)
    text = re.sub(r'"[0-9a-f]{64}\.(zip|json)"', '"<asset>"', text)
    body: dict[str, Any] = json.loads(text)
    body.get("Parameters", {}).pop("BootstrapVersion", None)
    body.get("Rules", {}).pop("CheckBootstrapVersion", None)
    return body


def test_the_example_reservation_is_committed() -> None:
    cached = json.loads((ROOT / "cdk.context.json").read_text())[RESERVATION_KEY]
    assert cached["instanceType"] == "p5.48xlarge"
    # The example must keep synthesizing for years: its block lies far ahead.
    assert cached["startDate"] >= "2030-01-01"


def test_no_context_lookup_is_left_for_the_cli(assembly: CloudAssembly) -> None:
    # A missing key makes 'cdk synth' call AWS, which the offline example must never need.
    manifest = json.loads((Path(assembly.directory) / "manifest.json").read_text())
    assert [entry["key"] for entry in manifest.get("missing", [])] == []


def test_every_stack_passes_cfn_lint(templates: dict[str, dict[str, Any]]) -> None:
    assert templates, "the example app produced no stacks"
    for name, template in templates.items():
        assert cfn_lint_errors(template) == [], name


def test_cdk_nag_and_builtin_validation_report_nothing(
    assembly: CloudAssembly, nag_outdir: Path
) -> None:
    # Errors already fail synthesis in the fixture; warnings must be zero as well.
    report = json.loads((nag_outdir / "validation-report.json").read_text())
    violations = [
        (plugin["pluginName"], violation["ruleName"], violation["severity"])
        for plugin in report["pluginReports"]
        for violation in plugin.get("violations", [])
    ]
    assert violations == []


def test_launch_template_example_uses_the_reservation(
    templates: dict[str, dict[str, Any]],
) -> None:
    resources = templates["CapblockLaunchTemplate"]["Resources"]
    (template,) = [r for r in resources.values() if r["Type"] == "AWS::EC2::LaunchTemplate"]
    data = template["Properties"]["LaunchTemplateData"]
    assert data["InstanceType"] == "p5.48xlarge"
    assert data["InstanceMarketOptions"] == {"MarketType": "capacity-block"}
    target = data["CapacityReservationSpecification"]["CapacityReservationTarget"]
    assert target == {"CapacityReservationId": EXAMPLE_RESERVATION_ID}


def _of_type(template: dict[str, Any], resource_type: str) -> list[dict[str, Any]]:
    return [r for r in template["Resources"].values() if r["Type"] == resource_type]


def _controller_groups(template: dict[str, Any]) -> list[dict[str, Any]]:
    """The groups in the controller's configuration, with deploy-time names left as tokens."""
    (run,) = [r["Properties"] for r in _of_type(template, "Custom::CapacityBlockController")]
    separator, parts = run["Configuration"]["Fn::Join"]
    text = separator.join(part if isinstance(part, str) else '"<token>"' for part in parts)
    text = text.replace('""<token>""', '"<token>"')
    groups: list[dict[str, Any]] = json.loads(text)["groups"]
    return groups


def test_managed_example_builds_the_group_on_the_cached_reservation(
    templates: dict[str, dict[str, Any]],
) -> None:
    template = templates["CapblockManagedNodeGroup"]
    (nodegroup,) = [r["Properties"] for r in _of_type(template, "AWS::EKS::Nodegroup")]
    assert nodegroup["CapacityType"] == "CAPACITY_BLOCK"
    # Created at 0 as AWS asks before the block is active, up to the block's 4; the
    # controller sizes it at run time, so these never change.
    assert nodegroup["ScalingConfig"] == {"MinSize": 0, "MaxSize": 4, "DesiredSize": 0}
    subnet_zones = {
        key: r["Properties"]["AvailabilityZone"]
        for key, r in template["Resources"].items()
        if r["Type"] == "AWS::EC2::Subnet"
    }
    assert [subnet_zones[s["Ref"]] for s in nodegroup["Subnets"]] == ["us-east-2a"]
    assert _of_type(template, "AWS::Scheduler::Schedule") == []
    (group,) = _controller_groups(template)
    assert (group["kind"], group["reservation"]) == ("managed", EXAMPLE_RESERVATION_ID)
    # EKS's own scale-down time on an instance block: 40 minutes before the end.
    assert (group["targetSize"], group["drainLeadSeconds"]) == (4, 2400)
    (launch,) = [r["Properties"] for r in _of_type(template, "AWS::EC2::LaunchTemplate")]
    # p5.48xlarge has 32 network cards: one EFA interface on each.
    assert len(launch["LaunchTemplateData"]["NetworkInterfaces"]) == 32


def test_self_managed_example_leaves_the_window_to_the_controller(
    templates: dict[str, dict[str, Any]],
) -> None:
    template = templates["CapblockSelfManagedNodeGroup"]
    assert _of_type(template, "AWS::AutoScaling::ScheduledAction") == []
    (group,) = [r["Properties"] for r in _of_type(template, "AWS::AutoScaling::AutoScalingGroup")]
    # No DesiredCapacity: a deploy never resets what the controller set.
    assert (group["MinSize"], group["MaxSize"]) == ("0", "4")
    assert "DesiredCapacity" not in group
    assert group["VPCZoneIdentifier"] == ["subnet-0a1b2c3d4e5f60001"]
    (entry,) = _controller_groups(template)
    assert (entry["kind"], entry["targetSize"], entry["drainLeadSeconds"]) == (
        "self-managed",
        4,
        2400,
    )
    (hook,) = [r["Properties"] for r in _of_type(template, "AWS::AutoScaling::LifecycleHook")]
    # 40 - 30 (EC2's reclaim lead) - 2 (the controller's period plus a minute) = 8 minutes.
    assert hook["HeartbeatTimeout"] == 480


def test_the_template_does_not_depend_on_the_synth_time_clock(
    templates: dict[str, dict[str, Any]],
) -> None:
    # The example block runs 2031-03-03T11:30Z .. 2031-03-17T11:30Z.
    for moment in ("2031-03-05T00:00:00Z", "2031-03-17T11:00:00Z"):
        context = {**_app_context(), "capblock-constructs:now": moment}
        again = build_app(App(context=context, analytics_reporting=False)).synth()
        assert {s.stack_name: s.template for s in again.stacks} == templates, moment


def test_synthesis_is_deterministic(templates: dict[str, dict[str, Any]]) -> None:
    again = build_app(App(context=_app_context(), analytics_reporting=False)).synth()
    assert {s.stack_name: s.template for s in again.stacks} == templates


def test_templates_match_snapshots(
    templates: dict[str, dict[str, Any]], snapshot: SnapshotAssertion
) -> None:
    for name in sorted(templates):
        assert _normalized(templates[name]) == snapshot(
            name=name, extension_class=JSONSnapshotExtension
        )


def test_pinned_cdk_cli_synthesizes_the_app_offline(tmp_path: Path) -> None:
    cli = ROOT / "node_modules" / ".bin" / "cdk"
    assert cli.exists(), "the pinned CDK CLI is missing: run 'make test', which installs it"
    env = {
        **os.environ,
        # The CLI is a Node.js script and runs 'python app.py': both from this venv.
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
        "CAPBLOCK_LOOKUPS": "off",
        "CDK_DISABLE_VERSION_CHECK": "true",
        "CDK_DISABLE_CLI_TELEMETRY": "true",
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    result = subprocess.run(
        [str(cli), "synth", "--quiet", "--no-notices", "--output", str(tmp_path / "out")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    written = json.loads((tmp_path / "out" / "CapblockLaunchTemplate.template.json").read_text())
    data = next(
        r["Properties"]["LaunchTemplateData"]
        for r in written["Resources"].values()
        if r["Type"] == "AWS::EC2::LaunchTemplate"
    )
    assert data["CapacityReservationSpecification"]["CapacityReservationTarget"] == {
        "CapacityReservationId": EXAMPLE_RESERVATION_ID
    }
    assert "Traceback" not in result.stderr
