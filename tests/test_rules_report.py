"""Findings as text, JSON and SARIF 2.1.0 (validated against the OASIS schema)."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema  # type: ignore[import-untyped]
import pytest

from capblock_constructs.rules import (
    RULES,
    Finding,
    Severity,
    blocks_from_context,
    check_template,
    load_template,
    now_from_context,
)
from capblock_constructs.rules.report import format_json, format_sarif, format_text
from tests.rules_support import CASES, CONTEXT

SARIF_SCHEMA = json.loads((Path(__file__).parent / "data" / "sarif-schema-2.1.0.json").read_text())


def case_findings(*names: str) -> list[Finding]:
    """Findings of the cases, naming each template relative to the working directory."""
    findings = []
    for name in names:
        path = Path(f"{name}.yaml")
        findings += check_template(
            load_template(path),
            template_path=str(path),
            blocks=blocks_from_context(CONTEXT),
            now=now_from_context(CONTEXT),
        )
    return findings


@pytest.fixture
def findings(monkeypatch: pytest.MonkeyPatch) -> list[Finding]:
    # Relative template paths, as `capblock check cdk.out` gives them and GitHub wants them.
    monkeypatch.chdir(CASES)
    return case_findings("CB104-fail", "CB207-fail", "CB501-fail")


def test_json_is_one_array_of_findings(findings: list[Finding]) -> None:
    items = json.loads(format_json(findings))
    assert isinstance(items, list)
    assert len(items) == len(findings) == 4
    for item, finding in zip(items, findings, strict=True):
        assert set(item) == {"rule", "severity", "template", "resource", "message", "path"}
        assert item["severity"] in ("error", "warning")
        assert item["severity"] == finding.severity.value
        assert item["template"] == finding.template
        assert item["resource"] == finding.resource
        assert item["path"] == list(finding.path)
    assert json.loads(format_json([])) == []


def test_to_dict_gives_the_severity_as_its_string() -> None:
    finding = Finding(
        rule="CB101", severity=Severity.ERROR, template="t", resource="R", message="m"
    )
    assert finding.to_dict() == {
        "rule": "CB101",
        "severity": "error",
        "template": "t",
        "resource": "R",
        "message": "m",
        "path": [],
    }


@pytest.mark.parametrize("empty", [False, True])
def test_sarif_is_valid_sarif_2_1_0(findings: list[Finding], empty: bool) -> None:
    log = json.loads(format_sarif([] if empty else findings, RULES))
    jsonschema.Draft4Validator.check_schema(SARIF_SCHEMA)
    jsonschema.Draft4Validator(SARIF_SCHEMA).validate(log)
    assert log["version"] == "2.1.0"
    (run,) = log["runs"]
    assert [rule["id"] for rule in run["tool"]["driver"]["rules"]] == [item.id for item in RULES]
    assert len(run["results"]) == (0 if empty else len(findings))


def test_sarif_results_point_at_rule_file_and_line(findings: list[Finding]) -> None:
    run = json.loads(format_sarif(findings, RULES))["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    for result, finding in zip(run["results"], findings, strict=True):
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"] == finding.rule
        assert result["level"] == finding.severity.value
        assert result["message"]["text"] == finding.message
        (location,) = result["locations"]
        physical = location["physicalLocation"]
        assert physical["artifactLocation"]["uri"] == finding.template
        line = (
            (CASES / finding.template).read_text().splitlines()[physical["region"]["startLine"] - 1]
        )
        # The line of the offending property, or of the nearest key above it that the file
        # has (a missing HeartbeatTimeout points at the hook's Properties).
        keys = [finding.resource, *(item for item in finding.path if isinstance(item, str))]
        assert any(f"{key}:" in line for key in keys), (line, finding.path)
        if finding.rule == "CB104":
            assert line.strip() == "InstanceType: p4d.24xlarge"
        assert location["logicalLocations"][0]["name"] == finding.resource
    descriptor = rules[run["results"][0]["ruleIndex"]]
    assert descriptor["helpUri"].startswith("https://docs.aws.amazon.com/")
    assert descriptor["defaultConfiguration"]["level"] == "error"


def test_sarif_for_absolute_paths_and_unknown_rules() -> None:
    finding = Finding(
        rule="CB999",
        severity=Severity.WARNING,
        template="/nowhere/t.json",
        resource="R",
        message="m",
        path=("Properties", 0),
    )
    log = json.loads(format_sarif([finding], []))
    jsonschema.Draft4Validator(SARIF_SCHEMA).validate(log)
    (result,) = log["runs"][0]["results"]
    location = result["locations"][0]["physicalLocation"]
    assert location["artifactLocation"]["uri"] == "file:///nowhere/t.json"
    assert location["region"]["startLine"] == 1
    assert log["runs"][0]["tool"]["driver"]["rules"] == [{"id": "CB999"}]


def test_text_is_one_line_per_finding_and_a_count(findings: list[Finding]) -> None:
    lines = format_text(findings).splitlines()
    assert len(lines) == len(findings) + 1
    first = findings[0]
    assert lines[0] == f"{first.template}: {first.severity.value} {first.rule} {first.message}"
    assert lines[-1] == "3 errors, 1 warning"
    assert format_text([]) == "no findings"
