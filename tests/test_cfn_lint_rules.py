"""The Capacity Block rules through cfn-lint: loading, rule IDs, findings, the context file.

In process, the rules are loaded by cfn-lint's own loader for ``--append-rules`` with a
module name (``cfnlint.core.get_rules``) and run with ``cfnlint.api.lint``; the cases
are RULES' templates in tests/data/rules/cases with their cdk.context.json. One
subprocess runs the documented command, one the ``.cfnlintrc`` that editors read.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
import yaml
from cfnlint.api import ManualArgs, lint  # type: ignore[import-untyped]
from cfnlint.core import get_rules  # type: ignore[import-untyped]

from capblock_constructs import _time
from capblock_constructs.rules import (
    RULES,
    Finding,
    Severity,
    blocks_from_context,
    check_template,
    load_template,
    now_from_context,
    rule,
)
from capblock_constructs.rules.cfn_lint import CONTEXT_ENV, RULE_IDS, _adapter, cfn_lint_id

MODULE = "capblock_constructs.rules.cfn_lint"
DATA = Path(__file__).parent / "data"
CASE_DIR = DATA / "rules" / "cases"
CONTEXT_FILE = DATA / "rules" / "cdk.context.json"
CONTEXT = json.loads(CONTEXT_FILE.read_text())
CASES = sorted(CASE_DIR.glob("CB*-*.yaml"))
CFN_LINT = Path(sys.executable).parent / "cfn-lint"


@pytest.fixture(scope="module")
def rules() -> Any:
    """cfn-lint's rules plus ours, loaded once as ``--append-rules <module>`` loads them."""
    return get_rules([MODULE], [], [])


@pytest.fixture
def context_file(monkeypatch: pytest.MonkeyPatch) -> Path:
    """The cases' cdk.context.json, named by $CAPBLOCK_CONTEXT."""
    monkeypatch.setenv(CONTEXT_ENV, str(CONTEXT_FILE))
    return CONTEXT_FILE


@pytest.fixture
def no_context_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A working directory without cdk.context.json, and no $CAPBLOCK_CONTEXT."""
    monkeypatch.delenv(CONTEXT_ENV, raising=False)
    monkeypatch.chdir(tmp_path)


def ours(matches: list[Any]) -> list[tuple[str, tuple[Any, ...], str]]:
    """(cfn-lint rule ID, path, message) of the matches in cfn-lint's users' range."""
    return sorted(
        (match.rule.id, tuple(match.path), match.message)
        for match in matches
        if match.rule.id[1:2] == "9"
    )


def as_matches(findings: list[Finding]) -> list[tuple[str, tuple[Any, ...], str]]:
    """What cfn-lint must report for these findings."""
    return sorted(
        (
            cfn_lint_id(rule(finding.rule)),
            ("Resources", finding.resource, *finding.path),
            f"[{finding.rule}] {finding.message}",
        )
        for finding in findings
    )


def run(rules: Any, template: str | dict[str, Any], **config: Any) -> list[Any]:
    text = template if isinstance(template, str) else json.dumps(template)
    matches: list[Any] = lint(text, rules=rules, config=ManualArgs(regions=["us-east-2"], **config))
    return matches


# -- import and IDs ---------------------------------------------------------------------


def test_importing_the_rules_loads_neither_cfn_lint_nor_the_cdk() -> None:
    probe = (
        "import sys, capblock_constructs.rules, capblock_constructs.rules.report; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'cfnlint', 'aws_cdk', 'jsii'}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120
    )
    assert done.stdout.strip() == "[]"


def test_each_rule_is_e9_or_w9_and_its_cb_number() -> None:
    for item in RULES:
        letter = {Severity.ERROR: "E", Severity.WARNING: "W"}[item.severity]
        assert RULE_IDS[item.id] == f"{letter}9{item.id[2:]}", item.id
    assert len(set(RULE_IDS.values())) == len(RULES)


def test_rule_ids_are_free_in_cfn_lint(rules: Any) -> None:
    # cfn-lint keeps 9xxx for users' rules; none of its own may share an ID with ours.
    own = set(get_rules([], [], []).all_rules)
    assert own, "cfn-lint loaded no rules of its own"
    assert not own & {*RULE_IDS.values(), _adapter.CONTEXT_RULE_ID}
    assert {*RULE_IDS.values(), _adapter.CONTEXT_RULE_ID} <= set(rules.all_rules)


def test_cfn_lint_derives_each_rules_severity_and_metadata(rules: Any) -> None:
    for item in RULES:
        loaded = rules.all_rules[cfn_lint_id(item)]
        assert loaded.severity == item.severity.value
        assert item.title in loaded.shortdesc
        assert item.id in loaded.shortdesc
        assert loaded.source_url == item.source


# -- the cases ------------------------------------------------------------------------------


@pytest.mark.usefixtures("context_file")
@pytest.mark.parametrize("case", CASES, ids=[path.stem for path in CASES])
def test_cfn_lint_reports_what_the_rules_find(rules: Any, case: Path) -> None:
    findings = check_template(
        load_template(case),
        template_path=str(case),
        blocks=blocks_from_context(CONTEXT),
        now=now_from_context(CONTEXT),
    )
    reported = ours(run(rules, case.read_text()))
    assert reported == as_matches(findings)
    rule_id, kind = case.stem.split("-")
    named = cfn_lint_id(rule(rule_id))
    if kind == "fail":
        assert named in {rule_id for rule_id, _, _ in reported}
    else:
        assert reported == []


# -- the context file -----------------------------------------------------------------------


@pytest.mark.usefixtures("no_context_file")
def test_without_a_context_file_only_the_rules_needing_a_block_are_silent(rules: Any) -> None:
    # CB104 compares InstanceType with the cached block; CB101 needs nothing cached.
    instance_type = run(rules, (CASE_DIR / "CB104-fail.yaml").read_text())
    assert ours(instance_type) == []
    no_target = run(rules, (CASE_DIR / "CB101-fail.yaml").read_text())
    assert [rule_id for rule_id, _, _ in ours(no_target)] == [RULE_IDS["CB101"]]


def test_cdk_context_json_in_the_working_directory_is_read(
    rules: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv(CONTEXT_ENV, raising=False)
    (tmp_path / "cdk.context.json").write_text(CONTEXT_FILE.read_text())
    monkeypatch.chdir(tmp_path)
    matches = run(rules, (CASE_DIR / "CB104-fail.yaml").read_text())
    assert [rule_id for rule_id, _, _ in ours(matches)] == [RULE_IDS["CB104"]]


def test_time_rules_compare_with_the_pinned_now_else_the_clock(
    rules: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # The case scales up at 2031-02-28T23:00Z; its context pins now at 2031-03-01T00:00Z.
    template = (CASE_DIR / "CB401-fail.yaml").read_text()
    in_the_past = RULE_IDS["CB401"]

    def reported() -> set[str]:
        return {rule_id for rule_id, _, _ in ours(run(rules, template))}

    monkeypatch.setenv(CONTEXT_ENV, str(CONTEXT_FILE))
    assert in_the_past in reported()
    unpinned = tmp_path / "cdk.context.json"
    unpinned.write_text("{}")
    monkeypatch.setenv(CONTEXT_ENV, str(unpinned))
    monkeypatch.setattr(_time, "utc_now", lambda: datetime(2031, 2, 1, tzinfo=timezone.utc))
    assert in_the_past not in reported()
    monkeypatch.setattr(_time, "utc_now", lambda: datetime(2031, 3, 1, tzinfo=timezone.utc))
    assert in_the_past in reported()


def test_an_unusable_context_file_is_reported_once_and_the_rest_still_run(
    rules: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    broken = tmp_path / "cdk.context.json"
    broken.write_text('{"capblock-constructs:now": ')
    monkeypatch.setenv(CONTEXT_ENV, str(broken))
    matches = run(rules, (CASE_DIR / "CB101-fail.yaml").read_text())
    assert [rule_id for rule_id, _, _ in ours(matches)] == ["E9000", RULE_IDS["CB101"]]
    (problem,) = [match.message for match in matches if match.rule.id == "E9000"]
    assert str(broken) in problem

    monkeypatch.setenv(CONTEXT_ENV, str(tmp_path / "missing.json"))
    (problem,) = [m.message for m in run(rules, "Resources: {}\n") if m.rule.id == "E9000"]
    assert CONTEXT_ENV in problem
    assert "missing.json" in problem


# -- cfn-lint's own controls ------------------------------------------------------------------


@pytest.mark.usefixtures("context_file")
def test_cfn_lint_ignore_checks_and_resource_metadata_apply(rules: Any) -> None:
    template = load_template(CASE_DIR / "CB105-fail.yaml")
    warning = RULE_IDS["CB105"]
    assert warning.startswith("W")
    assert warning in {rule_id for rule_id, _, _ in ours(run(rules, template))}
    # --ignore-checks W9 drops every Capacity Block warning (through the option's own path).
    config = ManualArgs(regions=["us-east-2"], append_rules=[MODULE], ignore_checks=["W9"])
    assert ours(lint(json.dumps(template), config=config)) == []
    (logical_id,) = [
        name
        for name, resource in template["Resources"].items()
        if resource["Type"] == "AWS::EC2::LaunchTemplate"
    ]
    template["Resources"][logical_id]["Metadata"] = {
        "cfn-lint": {"config": {"ignore_checks": [warning]}}
    }
    assert ours(run(rules, template)) == []


def test_the_append_rules_option_loads_the_module(context_file: Path) -> None:
    config = ManualArgs(regions=["us-east-2"], append_rules=[MODULE])
    matches = lint((CASE_DIR / "CB101-fail.yaml").read_text(), config=config)
    assert [rule_id for rule_id, _, _ in ours(matches)] == [RULE_IDS["CB101"]]


def _cli_env(**extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key != CONTEXT_ENV}
    # cfn-lint is a console script of this venv; its python must be this one.
    env["PATH"] = os.pathsep.join([str(CFN_LINT.parent), env.get("PATH", "")])
    env.update(extra)
    return env


def test_the_documented_command_works_from_a_shell(tmp_path: Path) -> None:
    failing = [CASE_DIR / "CB101-fail.yaml", CASE_DIR / "CB105-fail.yaml"]
    done = subprocess.run(
        # As documented: templates first, since --append-rules takes every name after it.
        [str(CFN_LINT), *map(str, failing), "--append-rules", MODULE],
        cwd=tmp_path,
        env=_cli_env(**{CONTEXT_ENV: str(CONTEXT_FILE)}),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    # cfn-lint's exit code has bit 2 for errors and bit 4 for warnings.
    assert done.returncode & 2, done.stdout + done.stderr
    assert done.returncode & 4, done.stdout + done.stderr
    assert f"{RULE_IDS['CB101']} [CB101]" in done.stdout
    assert f"{RULE_IDS['CB105']} [CB105]" in done.stdout
    assert "Traceback" not in done.stderr


def test_a_cfnlintrc_adds_the_rules_for_editors(tmp_path: Path) -> None:
    (tmp_path / ".cfnlintrc").write_text(yaml.safe_dump({"append_rules": [MODULE]}))
    template = tmp_path / "nodes.yaml"
    template.write_text((CASE_DIR / "CB101-fail.yaml").read_text())
    done = subprocess.run(
        [str(CFN_LINT), "--format", "json", "nodes.yaml"],
        cwd=tmp_path,
        env=_cli_env(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    reported = {item["Rule"]["Id"] for item in json.loads(done.stdout)}
    assert RULE_IDS["CB101"] in reported, done.stdout + done.stderr
