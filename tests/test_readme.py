"""The README's Python examples run as written (constructed, not deployed)."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"
_BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)

# The reservation the README's snippets look up, as `capblock lookup` would cache it.
_CACHE = {
    "capblock-constructs:capacity-block:account=111122223333:region=us-east-2"
    ":capacityReservationId=cr-0123456789abcdef0": {
        "availabilityZone": "us-east-2a",
        "capacityReservationId": "cr-0123456789abcdef0",
        "endDate": "2031-03-17T11:30:00Z",
        "instanceCount": 4,
        "instanceType": "p5.48xlarge",
        "startDate": "2031-03-03T11:30:00Z",
    },
    "availability-zones:account=111122223333:region=us-east-2": [
        "us-east-2a",
        "us-east-2b",
        "us-east-2c",
    ],
}


def test_readme_python_examples_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocks = _BLOCK.findall(README.read_text())
    assert len(blocks) >= 4, "the README lost its Python examples"
    (tmp_path / "cdk.context.json").write_text(json.dumps(_CACHE))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CAPBLOCK_LOOKUPS", "off")  # the cache must serve every lookup
    namespace: dict[str, object] = {}
    exec(compile("\n".join(blocks), str(README), "exec"), namespace)
    assert type(namespace["nodes"]).__name__ == "CapacityBlockSelfManagedNodeGroup"
    assert type(namespace["template"]).__name__ == "CapacityBlockLaunchTemplate"


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
    assert {command for command, _ in usages} == {"lookup", "lookup-cluster", "plan"}
    options = _subcommand_options()
    for command, usage in usages:
        written = set(re.findall(r"--[a-z][a-z-]*", usage))
        offered = options[command] - {"-h", "--help"}
        assert written == offered, (command, written ^ offered)
