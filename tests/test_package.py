"""The package's public surface: every exported name resolves, lazily."""

from __future__ import annotations

import subprocess
import sys

import pytest

import capblock_constructs


def test_every_exported_name_resolves() -> None:
    for name in capblock_constructs.__all__:
        assert getattr(capblock_constructs, name) is not None, name
    assert sorted(capblock_constructs.__all__) == sorted(set(capblock_constructs.__all__))


def test_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="NoSuchConstruct"):
        capblock_constructs.NoSuchConstruct  # type: ignore[attr-defined]  # noqa: B018


def test_the_value_object_and_the_plan_need_no_jsii() -> None:
    # The CLI and CapacityBlock must not start the jsii runtime (about 2 s per command).
    code = (
        "import sys\n"
        "from capblock_constructs import CapacityBlock, plan, CapacityBlockError\n"
        "import capblock_constructs.cli\n"
        "print(sorted(m for m in ('aws_cdk', 'constructs', 'jsii') if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
