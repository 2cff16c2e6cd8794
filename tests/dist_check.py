"""The built wheel, installed the way the README's "Install" section says, outside this checkout.

`make dist-check` builds the wheel and runs this module with CAPBLOCK_DIST_CHECK_WHEEL
naming it. It creates a virtualenv and downloads the wheel's dependencies (a minute or
two), so the ordinary test run does not collect it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.test_readme import (
    CDK_CLI,
    COMMITTED_CONTEXT,
    ROOT,
    driver_app_source,
    offline_env,
    readme_apps,
    readme_snippets,
)

WHEEL = os.environ.get("CAPBLOCK_DIST_CHECK_WHEEL", "")

# Not named test_*.py: the suite does not collect it, `make dist-check` runs it by name
# after building the wheel, so it is never skipped and never runs without a wheel.
if not WHEEL:
    raise pytest.UsageError(
        "tests/dist_check.py checks a built wheel: run it with 'make dist-check', which "
        "builds one and sets CAPBLOCK_DIST_CHECK_WHEEL."
    )

PACKAGE = ROOT / "capblock_constructs"


def test_the_wheel_carries_the_type_marker_and_the_controller_code() -> None:
    names = set(zipfile.ZipFile(WHEEL).namelist())
    runtime = {
        path.relative_to(ROOT).as_posix()
        for path in (PACKAGE / "controller" / "runtime").glob("*.py")
    }
    assert runtime <= names, runtime - names
    assert "capblock_constructs/py.typed" in names
    assert "capblock_constructs/testing.py" in names
    assert not [name for name in names if "__pycache__" in name or name.endswith(".pyc")]


def test_the_installed_wheel_synthesizes_the_readme_apps(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    bin_dir = venv / "bin"
    subprocess.run(
        [
            str(bin_dir / "python"),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            f"{WHEEL}[node]",
        ],
        check=True,
        timeout=1200,
    )
    app_dir = tmp_path / "app"
    app_dir.mkdir()
    env = offline_env(bin_dir)
    # Only the new virtualenv: not this checkout's, whose node and python come first
    # under make.
    this_venv = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join(p for p in env["PATH"].split(os.pathsep) if p != this_venv)

    where = subprocess.run(
        [
            str(bin_dir / "python"),
            "-c",
            "import capblock_constructs; print(capblock_constructs.__file__)",
        ],
        cwd=app_dir,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert Path(where).is_relative_to(venv), where
    version = subprocess.run(
        [str(bin_dir / "capblock"), "--version"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    # The version the wheel was built with, as pyproject.toml declares it.
    declared = re.search(r'^version = "([^"]+)"', (ROOT / "pyproject.toml").read_text(), re.M)
    assert declared is not None
    assert version.split() == ["capblock", declared.group(1)]

    (app_dir / "app.py").write_text(driver_app_source(readme_apps(readme_snippets())))
    (app_dir / "cdk.json").write_text(json.dumps({"app": "python app.py"}))
    (app_dir / "cdk.context.json").write_text(json.dumps(COMMITTED_CONTEXT, indent=2))
    result = subprocess.run(
        [str(CDK_CLI), "synth", "--no-lookups", "--quiet", "--no-notices"],
        cwd=app_dir,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # jsii ran on the node extra's Node.js 24, not an end-of-life system Node.js.
    assert "end-of-life" not in result.stderr
    handlers = list((app_dir / "cdk.out").glob("asset.*/runtime/handler.py"))
    assert handlers, "the controller's code asset is missing from cdk.out"
