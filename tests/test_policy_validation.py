"""The Capacity Block rules as a CDK policy-validation plugin.

Most tests call the plugin's ``validate`` the way the CDK does, with the template paths
and the app, over RULES' cases in tests/data/rules/cases: no synth. Three synths show it
inside the CDK: two through ``Validations.of(app).add_plugins`` (an error fails the synth,
an acknowledged finding does not, and a warning made to fail still fails beside one), one
through ``App(policy_validation_beta1=...)`` (a warning is reported and the synth goes
on). That the example app gives no finding is asserted on its one synth in
test_example_app.py.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, cast

import pytest
from aws_cdk import Acknowledgment, App, Stack, Validations
from aws_cdk.cloudformation_include import CfnInclude

from capblock_constructs import CapacityBlockError, CapacityBlockLaunchTemplate, _time
from capblock_constructs.policy_validation import PLUGIN_NAME, CapacityBlockRulesPlugin
from capblock_constructs.rules import (
    RULES,
    Finding,
    Severity,
    blocks_from_context,
    check_template,
    load_template,
    now_from_context,
)
from tests.support import block

CASES = Path(__file__).parent / "data" / "rules" / "cases"
CONTEXT = json.loads((CASES.parent / "cdk.context.json").read_text())
CASE_FILES = sorted(CASES.glob("CB*-*.yaml"))
CASE_RESERVATION = "cr-0123456789abcdef0"  # the block the cases' launch templates target


@dataclass(frozen=True)
class Context:
    """What the CDK hands ``validate``: the templates it wrote and the app."""

    template_paths: list[str]
    app_construct: App


def validate(plugin: CapacityBlockRulesPlugin, app: App, *templates: Path) -> Any:
    context = Context([str(path) for path in templates], app)
    return plugin.validate(cast(Any, context))


def violations(report: Any) -> list[tuple[str, str | None, str, str, tuple[str, ...]]]:
    """(rule, severity, logical ID, template, locations) of each violation in a report."""
    return sorted(
        (
            violation.rule_name,
            violation.severity,
            resource.resource_logical_id,
            resource.template_path,
            tuple(resource.locations),
        )
        for violation in report.violations
        for resource in violation.violating_resources
    )


def expected(findings: list[Finding]) -> list[tuple[str, str | None, str, str, tuple[str, ...]]]:
    return sorted(
        (
            finding.rule,
            finding.severity.value,
            finding.resource,
            finding.template,
            ("/".join(str(step) for step in finding.path),) if finding.path else (),
        )
        for finding in findings
    )


@pytest.fixture(scope="module")
def as_written(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each case as the CDK writes templates: JSON, named <case>.template.json."""
    folder = tmp_path_factory.mktemp("cdk.out")
    written = {}
    for case in CASE_FILES:
        written[case.stem] = folder / f"{case.stem}.template.json"
        written[case.stem].write_text(json.dumps(load_template(case)))
    return written


@pytest.fixture(scope="module")
def cases_app() -> App:
    """An app whose context is the cases' cdk.context.json, as ``cdk synth`` would pass it."""
    return App(context=CONTEXT, analytics_reporting=False)


# -- the adapter, called as the CDK calls it ------------------------------------------------


@pytest.mark.parametrize("case", CASE_FILES, ids=[path.stem for path in CASE_FILES])
def test_every_finding_becomes_a_violation_at_its_resource(
    cases_app: App, as_written: dict[str, Path], case: Path
) -> None:
    template = as_written[case.stem]
    report = validate(CapacityBlockRulesPlugin(), cases_app, template)
    findings = check_template(
        load_template(case),
        template_path=str(template),
        blocks=blocks_from_context(CONTEXT),
        now=now_from_context(CONTEXT),
    )
    assert violations(report) == expected(findings)
    assert report.success is not any(f.severity is Severity.ERROR for f in findings)
    rule_id, kind = case.stem.split("-")
    named = [rule for rule, *_ in violations(report) if rule == rule_id]
    assert bool(named) is (kind == "fail")
    for violation in report.violations:
        assert violation.description.startswith(f"[{violation.rule_name}] ")


def test_warnings_pass_unless_they_are_to_fail(cases_app: App, as_written: dict[str, Path]) -> None:
    (warning,) = [item for item in RULES if item.id == "CB105"]
    assert warning.severity is Severity.WARNING
    case = as_written["CB105-fail"]
    assert validate(CapacityBlockRulesPlugin(), cases_app, case).success is True
    strict = validate(CapacityBlockRulesPlugin(fail_on_warnings=True), cases_app, case)
    assert strict.success is False
    # Reported as an error, so that it still fails once another finding is acknowledged and
    # the CDK recomputes success from the severities; the rule's own severity is kept.
    assert [(rule, severity) for rule, severity, *_ in violations(strict)] == [("CB105", "error")]
    (violation,) = strict.violations
    assert violation.rule_metadata["severity"] == "warning"


def test_names_itself_and_its_rules() -> None:
    plugin = CapacityBlockRulesPlugin()
    assert plugin.name == PLUGIN_NAME == "capblock-constructs"
    assert plugin.rule_ids == [item.id for item in RULES]
    assert plugin.version


def test_blocks_come_from_the_constructs_the_context_and_the_option(
    as_written: dict[str, Path],
) -> None:
    # CB104: the case's launch template asks for p4d.24xlarge on a p5.48xlarge block.
    case = as_written["CB104-fail"]

    def rules_found(app: App, **options: Any) -> list[str]:
        report = validate(CapacityBlockRulesPlugin(**options), app, case)
        return [rule for rule, *_ in violations(report)]

    assert rules_found(App()) == []  # no block known: the rule cannot compare
    assert rules_found(App(context=CONTEXT)) == ["CB104"]

    from_constructs = App()
    stack = Stack(from_constructs, "Nodes")
    CapacityBlockLaunchTemplate(
        stack, "Lt", capacity_block=block(capacity_reservation_id=CASE_RESERVATION)
    )
    assert rules_found(from_constructs) == ["CB104"]
    matching = block(capacity_reservation_id=CASE_RESERVATION, instance_type="p4d.24xlarge")
    assert rules_found(from_constructs, blocks=[matching]) == []

    # Two different blocks under one ID: the rules cannot know which one a template means.
    CapacityBlockLaunchTemplate(stack, "Other", capacity_block=matching)
    assert rules_found(from_constructs) == []


def test_now_comes_from_the_option_the_context_else_the_clock(
    cases_app: App, as_written: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    # CB401: the case scales up at 2031-02-28T23:00Z; the context pins 2031-03-01T00:00Z.
    case = as_written["CB401-fail"]

    def in_the_past(app: App, **options: Any) -> bool:
        report = validate(CapacityBlockRulesPlugin(**options), app, case)
        return "CB401" in {rule for rule, *_ in violations(report)}

    assert in_the_past(cases_app)
    assert not in_the_past(cases_app, now=datetime(2031, 2, 1, tzinfo=timezone.utc))
    monkeypatch.setattr(_time, "utc_now", lambda: datetime(2031, 2, 1, tzinfo=timezone.utc))
    assert not in_the_past(App())
    monkeypatch.setattr(_time, "utc_now", lambda: datetime(2031, 3, 1, tzinfo=timezone.utc))
    assert in_the_past(App())


def test_a_stack_without_resources_gives_no_finding(tmp_path: Path) -> None:
    # What the CDK writes for a stack that holds only parameters.
    empty = tmp_path / "Empty.template.json"
    empty.write_text(json.dumps({"Parameters": {"Version": {"Type": "String"}}}))
    report = validate(CapacityBlockRulesPlugin(), App(), empty)
    assert (report.success, violations(report)) == (True, [])


def test_bad_options_fail_at_construction() -> None:
    with pytest.raises(CapacityBlockError, match="naive datetime"):
        CapacityBlockRulesPlugin(now=datetime(2031, 3, 1))
    with pytest.raises(CapacityBlockError, match="not a CapacityBlock"):
        CapacityBlockRulesPlugin(blocks=cast(Any, [CASE_RESERVATION]))


# -- inside the CDK ---------------------------------------------------------------------------


def _case_stack(app: App, name: str, case: str) -> Stack:
    stack = Stack(app, name)
    CfnInclude(stack, "Case", template_file=str(CASES / case))
    return stack


def _report(outdir: Path) -> dict[str, Any]:
    report: dict[str, Any] = json.loads((outdir / "validation-report.json").read_text())
    (ours,) = [item for item in report["pluginReports"] if item["pluginName"] == PLUGIN_NAME]
    return cast(dict[str, Any], ours)


def test_an_error_fails_the_synth_and_an_acknowledged_warning_does_not(tmp_path: Path) -> None:
    app = App(outdir=str(tmp_path), analytics_reporting=False)
    Validations.of(app).add_plugins(CapacityBlockRulesPlugin())
    _case_stack(app, "Errors", "CB101-fail.yaml")
    acknowledged = _case_stack(app, "Acknowledged", "CB105-fail.yaml")
    Validations.of(acknowledged).acknowledge(
        Acknowledgment(id=f"{PLUGIN_NAME}::CB105", reason="the test acknowledges it")
    )
    with pytest.raises(RuntimeError, match="ValidationFailed") as failure:
        app.synth()
    assert "[CB101]" in str(failure.value)
    report = _report(tmp_path)
    assert report["conclusion"] == "failure"
    (violation,) = report["violations"]
    assert (violation["ruleName"], violation["severity"]) == ("CB101", "error")
    (resource,) = violation["violatingConstructs"]
    assert resource["constructPath"] == "Errors/Case/GpuTemplate"
    assert resource["cloudFormationResource"]["logicalId"] == "GpuTemplate"
    assert resource["cloudFormationResource"]["templatePath"] == "Errors.template.json"
    (location,) = resource["cloudFormationResource"]["propertyPaths"]
    assert location.startswith("Properties/LaunchTemplateData")


def test_warnings_to_fail_still_fail_beside_an_acknowledged_finding(tmp_path: Path) -> None:
    app = App(outdir=str(tmp_path), analytics_reporting=False)
    Validations.of(app).add_plugins(CapacityBlockRulesPlugin(fail_on_warnings=True))
    acknowledged = _case_stack(app, "Acknowledged", "CB105-fail.yaml")
    Validations.of(acknowledged).acknowledge(
        Acknowledgment(id=f"{PLUGIN_NAME}::CB105", reason="the test acknowledges this one")
    )
    _case_stack(app, "NotAcknowledged", "CB105-fail.yaml")
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        app.synth()
    report = _report(tmp_path)
    assert report["conclusion"] == "failure"
    (violation,) = report["violations"]
    (resource,) = violation["violatingConstructs"]
    assert resource["constructPath"].startswith("NotAcknowledged/")


def test_a_warning_is_reported_and_the_synth_goes_on_through_the_beta1_api(
    tmp_path: Path,
) -> None:
    app = App(
        outdir=str(tmp_path),
        analytics_reporting=False,
        policy_validation_beta1=[CapacityBlockRulesPlugin()],
    )
    _case_stack(app, "Warnings", "CB105-fail.yaml")
    assembly = app.synth()
    assert [stack.stack_name for stack in assembly.stacks] == ["Warnings"]
    report = _report(tmp_path)
    assert report["conclusion"] == "success"
    assert [(v["ruleName"], v["severity"]) for v in report["violations"]] == [("CB105", "warning")]
