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
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Validations
from aws_cdk.cx_api import CloudAssembly
from cdk_nag import AwsSolutionsChecks
from syrupy.assertion import SnapshotAssertion
from syrupy.extensions.json import JSONSnapshotExtension

from app import build_app
from capblock_constructs.instance_types import instance_type_info
from capblock_constructs.policy_validation import CapacityBlockRulesPlugin
from examples.environment import EXAMPLE_ACCOUNT, EXAMPLE_REGION, EXAMPLE_RESERVATION_ID
from tests.support import cfn_lint_errors

ROOT = Path(__file__).resolve().parent.parent
PINNED_NOW = "2026-11-26T00:00:00Z"
RESERVATION_KEY = (
    f"capblock-constructs:capacity-block:account={EXAMPLE_ACCOUNT}:region={EXAMPLE_REGION}"
    f":capacityReservationId={EXAMPLE_RESERVATION_ID}"
)
EKS_SCALE_DOWN_LEAD = timedelta(minutes=40)
"""EKS scales a CAPACITY_BLOCK managed node group to zero this long before an instance block's
end (EKS user guide, Capacity Blocks for managed node groups): the example groups' drain lead."""
EC2_RECLAIM_LEAD = timedelta(minutes=30)
"""EC2 starts terminating an instance block's instances this long before its end (EC2 user
guide, How Capacity Blocks work)."""


def _app_context() -> dict[str, Any]:
    """What the CDK CLI would pass: cdk.json's context, then cdk.context.json."""
    context: dict[str, Any] = dict(json.loads((ROOT / "cdk.json").read_text())["context"])
    context.update(json.loads((ROOT / "cdk.context.json").read_text()))
    context["capblock-constructs:now"] = PINNED_NOW
    return context


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@pytest.fixture(scope="module")
def example_block() -> dict[str, Any]:
    """The example reservation as cdk.context.json caches it: where expected values come from,
    so that a new example reservation needs no edit here."""
    block: dict[str, Any] = json.loads((ROOT / "cdk.context.json").read_text())[RESERVATION_KEY]
    return block


@pytest.fixture(scope="module")
def nag_outdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cdk.out")


@pytest.fixture(scope="module")
def example_app(nag_outdir: Path) -> App:
    """The example app, with cdk-nag's AwsSolutions pack as a validation plugin.

    The CDK's built-in template validation stays on, as under 'cdk synth'.
    """
    app = build_app(App(context=_app_context(), analytics_reporting=False, outdir=str(nag_outdir)))
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return app


@pytest.fixture(scope="module")
def capblock_reports() -> list[tuple[list[str], Any]]:
    """(template paths, report) of each run of the Capacity Block rules plugin in the synth."""
    return []


@pytest.fixture(scope="module")
def assembly(
    example_app: App, nag_outdir: Path, capblock_reports: list[tuple[list[str], Any]]
) -> CloudAssembly:
    """The example app synthesized once, its Capacity Block rules plugin watched."""
    validate = CapacityBlockRulesPlugin.validate

    def watched(self: CapacityBlockRulesPlugin, context: Any) -> Any:
        report = validate(self, context)
        capblock_reports.append((list(context.template_paths), report))
        return report

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(CapacityBlockRulesPlugin, "validate", watched)
        try:
            return example_app.synth()
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


def test_the_example_reservation_is_committed(example_block: dict[str, Any]) -> None:
    assert example_block["capacityReservationId"] == EXAMPLE_RESERVATION_ID
    # The examples turn EFA on: the block's type must be one whose network cards are known.
    info = instance_type_info(example_block["instanceType"])
    assert info is not None, example_block["instanceType"]
    assert info.efa_supported, example_block["instanceType"]
    assert example_block["availabilityZone"].startswith(EXAMPLE_REGION)
    # The example must keep synthesizing for years: its block lies far ahead.
    assert example_block["startDate"] >= "2030-01-01"
    assert _utc(example_block["endDate"]) > _utc(example_block["startDate"])
    # What examples/environment.py says about the example reservation is what the cache holds.
    described = (ROOT / "examples" / "environment.py").read_text()
    block_text = f"{example_block['instanceType']} block in {example_block['availabilityZone']}"
    assert block_text in described


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


def test_the_capacity_block_rules_ran_once_over_every_stack_without_finding(
    assembly: CloudAssembly, capblock_reports: list[tuple[list[str], Any]]
) -> None:
    # The CDK's report file leaves out plugins that report nothing, so the plugin is watched.
    ((paths, report),) = capblock_reports  # app.py registers the plugin once
    assert report.plugin_version is not None
    assert sorted(Path(path).name for path in paths) == sorted(
        f"{stack.stack_name}.template.json" for stack in assembly.stacks
    )
    assert list(report.violations) == []
    assert report.success is True


def test_launch_template_example_uses_the_reservation(
    templates: dict[str, dict[str, Any]], example_block: dict[str, Any]
) -> None:
    resources = templates["CapblockLaunchTemplate"]["Resources"]
    (template,) = [r for r in resources.values() if r["Type"] == "AWS::EC2::LaunchTemplate"]
    data = template["Properties"]["LaunchTemplateData"]
    assert data["InstanceType"] == example_block["instanceType"]
    assert data["InstanceMarketOptions"] == {"MarketType": "capacity-block"}
    target = data["CapacityReservationSpecification"]["CapacityReservationTarget"]
    assert target == {"CapacityReservationId": EXAMPLE_RESERVATION_ID}


def _of_type(template: dict[str, Any], resource_type: str) -> list[dict[str, Any]]:
    return [r for r in template["Resources"].values() if r["Type"] == resource_type]


def _controller_config(template: dict[str, Any]) -> dict[str, Any]:
    """The controller's configuration, with deploy-time names left as tokens."""
    (run,) = [r["Properties"] for r in _of_type(template, "Custom::CapacityBlockController")]
    separator, parts = run["Configuration"]["Fn::Join"]
    text = separator.join(part if isinstance(part, str) else '"<token>"' for part in parts)
    text = text.replace('""<token>""', '"<token>"')
    config: dict[str, Any] = json.loads(text)
    return config


def _controller_groups(template: dict[str, Any]) -> list[dict[str, Any]]:
    groups: list[dict[str, Any]] = _controller_config(template)["groups"]
    return groups


def _documented_efa_layout(instance_type: str) -> list[tuple[int, int, str | None]]:
    """(NetworkCardIndex, DeviceIndex, InterfaceType) of the EFA layout the EC2 user guide
    documents ("Maximize network bandwidth on Amazon EC2 instances with multiple network
    cards"): the primary ENA interface at card 0, device 0 (no InterfaceType: ENA is the
    default); an efa-only interface at card 0, device 1 when card 0 supports EFA; and an
    efa-only interface at device 0 of every other card."""
    info = instance_type_info(instance_type)
    assert info is not None, instance_type
    layout: list[tuple[int, int, str | None]] = [(0, 0, None)]
    if info.primary_card_efa:
        layout.append((0, 1, "efa-only"))
    layout.extend((card, 0, "efa-only") for card in range(1, info.network_cards))
    return layout


def _assert_efa_interfaces(
    example_app: App, stack_name: str, template: dict[str, Any], instance_type: str
) -> None:
    """The node group's launch template lays EFA out as documented, every interface in the
    group's EFA security group."""
    (launch,) = [r["Properties"] for r in _of_type(template, "AWS::EC2::LaunchTemplate")]
    interfaces = launch["LaunchTemplateData"]["NetworkInterfaces"]
    layout = [(i["NetworkCardIndex"], i["DeviceIndex"], i.get("InterfaceType")) for i in interfaces]
    assert layout == _documented_efa_layout(instance_type)
    stack = example_app.node.find_child(stack_name)
    efa = stack.node.find_child("GpuNodes").node.find_child("EfaSecurityGroup")
    efa_group = {
        "Fn::GetAtt": [stack.get_logical_id(efa.security_group.node.default_child), "GroupId"]
    }
    assert all(efa_group in i["Groups"] for i in interfaces)


def test_managed_example_builds_the_group_on_the_cached_reservation(
    templates: dict[str, dict[str, Any]], example_block: dict[str, Any], example_app: App
) -> None:
    template = templates["CapblockManagedNodeGroup"]
    count = example_block["instanceCount"]
    (nodegroup,) = [r["Properties"] for r in _of_type(template, "AWS::EKS::Nodegroup")]
    assert nodegroup["CapacityType"] == "CAPACITY_BLOCK"
    # Created at 0 as AWS asks before the block is active, up to the block's instance count;
    # the controller sizes it at run time, so these never change.
    assert nodegroup["ScalingConfig"] == {"MinSize": 0, "MaxSize": count, "DesiredSize": 0}
    subnet_zones = {
        key: r["Properties"]["AvailabilityZone"]
        for key, r in template["Resources"].items()
        if r["Type"] == "AWS::EC2::Subnet"
    }
    zones = [subnet_zones[s["Ref"]] for s in nodegroup["Subnets"]]
    assert zones == [example_block["availabilityZone"]]
    assert _of_type(template, "AWS::Scheduler::Schedule") == []
    (group,) = _controller_groups(template)
    assert (group["kind"], group["reservation"]) == ("managed", EXAMPLE_RESERVATION_ID)
    # An instance block: the group drains at EKS's own scale-down time.
    assert group["ultraserver"] is False
    assert (group["targetSize"], group["drainLeadSeconds"]) == (
        count,
        EKS_SCALE_DOWN_LEAD.total_seconds(),
    )
    _assert_efa_interfaces(
        example_app, "CapblockManagedNodeGroup", template, example_block["instanceType"]
    )


def test_self_managed_example_leaves_the_window_to_the_controller(
    templates: dict[str, dict[str, Any]], example_block: dict[str, Any], example_app: App
) -> None:
    stack_name = "CapblockSelfManagedNodeGroup"
    template = templates[stack_name]
    count = example_block["instanceCount"]
    assert _of_type(template, "AWS::AutoScaling::ScheduledAction") == []
    (group,) = [r["Properties"] for r in _of_type(template, "AWS::AutoScaling::AutoScalingGroup")]
    # No DesiredCapacity: a deploy never resets what the controller set.
    assert (group["MinSize"], group["MaxSize"]) == ("0", str(count))
    assert "DesiredCapacity" not in group
    # Of the imported VPC's subnets, only those in the block's zone.
    vpc = example_app.node.find_child(stack_name).node.find_child("Vpc")
    in_zone = [
        subnet.subnet_id
        for subnet in vpc.private_subnets
        if subnet.availability_zone == example_block["availabilityZone"]
    ]
    assert in_zone
    assert len(in_zone) < len(vpc.private_subnets)
    assert group["VPCZoneIdentifier"] == in_zone
    config = _controller_config(template)
    (entry,) = config["groups"]
    assert (entry["kind"], entry["ultraserver"], entry["targetSize"]) == (
        "self-managed",
        False,
        count,
    )
    drain_lead = timedelta(seconds=entry["drainLeadSeconds"])
    assert drain_lead == EKS_SCALE_DOWN_LEAD
    (hook,) = [r["Properties"] for r in _of_type(template, "AWS::AutoScaling::LifecycleHook")]
    # What is left of the drain lead after EC2's reclaim lead and the controller's lateness
    # (its period plus a minute): 40 - 30 - 2 = 8 minutes with the defaults.
    lateness = timedelta(seconds=config["periodSeconds"]) + timedelta(minutes=1)
    heartbeat = drain_lead - EC2_RECLAIM_LEAD - lateness
    assert hook["HeartbeatTimeout"] == heartbeat.total_seconds()
    _assert_efa_interfaces(example_app, stack_name, template, example_block["instanceType"])


def test_the_template_does_not_depend_on_the_synth_time_clock(
    templates: dict[str, dict[str, Any]], example_block: dict[str, Any]
) -> None:
    start, end = _utc(example_block["startDate"]), _utc(example_block["endDate"])
    assert _utc(PINNED_NOW) < start
    # Synthesized again mid-block, and as EC2 starts reclaiming (after the drain time).
    for when in (start + (end - start) / 2, end - EC2_RECLAIM_LEAD):
        moment = f"{when:%Y-%m-%dT%H:%M:%SZ}"
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
