"""capblock_constructs.testing: apps for users' tests, with blocks as values and no AWS."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from aws_cdk import App, Environment, Stack
from aws_cdk.assertions import Template

import capblock_constructs.testing
from capblock_constructs import CapacityBlock, CapacityBlockError, CapacityBlockLaunchTemplate
from capblock_constructs._reservation_lookup import reservation_context_key
from capblock_constructs.testing import capacity_block_app, capacity_block_context
from tests.support import block, make_stack

ACCOUNT = "111122223333"
NOW = datetime(2027, 2, 1, tzinfo=timezone.utc)
# Blocks given as values, the way a user's test builds them: the suite's reference block
# and an UltraServer block in another region.
BLOCK = block()
ULTRASERVER_BLOCK = CapacityBlock(
    capacity_reservation_id="cr-0fedcba9876543210",
    instance_type="p6e-gb200.36xlarge",
    availability_zone="us-east-1b",
    instance_count=18,
    start=datetime(2027, 3, 1, 11, 30, tzinfo=timezone.utc),
    end=datetime(2027, 3, 8, 11, 30, tzinfo=timezone.utc),
    ultraserver_type="u-p6e-gb200x72",
)


def _stack(app: App, region: str = "us-east-2") -> Stack:
    return make_stack(app, f"Gpu-{region}", env=Environment(account=ACCOUNT, region=region))


@pytest.fixture
def empty_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Work where there is no cdk.context.json, so only the App's context can serve a lookup."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_from_lookup_is_served_without_a_cache_file_or_credentials(empty_directory: Path) -> None:
    # The suite's guard turns any AWS request into a failure; none may be needed.
    app = capacity_block_app(now=NOW, blocks=[BLOCK, ULTRASERVER_BLOCK], account=ACCOUNT)
    east_2, east_1 = _stack(app), _stack(app, "us-east-1")

    assert CapacityBlock.from_lookup(east_2, BLOCK.capacity_reservation_id) == BLOCK
    assert CapacityBlock.from_lookup(east_1, ULTRASERVER_BLOCK.capacity_reservation_id) == (
        ULTRASERVER_BLOCK
    )
    CapacityBlockLaunchTemplate(
        east_2,
        "Nodes",
        capacity_block=CapacityBlock.from_lookup(east_2, BLOCK.capacity_reservation_id),
    )
    data = Template.from_stack(east_2).find_resources("AWS::EC2::LaunchTemplate")
    (template,) = data.values()
    target = template["Properties"]["LaunchTemplateData"]["CapacityReservationSpecification"]
    assert target["CapacityReservationTarget"] == {
        "CapacityReservationId": BLOCK.capacity_reservation_id
    }
    assert not (empty_directory / "cdk.context.json").exists()


def test_a_block_not_given_fails_with_its_key_instead_of_calling_aws(
    empty_directory: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CAPBLOCK_LOOKUPS", raising=False)
    app = capacity_block_app(now=NOW, blocks=[BLOCK], account=ACCOUNT)
    key = reservation_context_key(ACCOUNT, "us-east-2", "cr-0123456789abcdef1")
    with pytest.raises(CapacityBlockError, match="give the block to capacity_block_app") as failure:
        CapacityBlock.from_lookup(_stack(app), "cr-0123456789abcdef1")
    assert key in str(failure.value)


def test_a_cache_file_in_the_working_directory_is_not_read(
    empty_directory: Path,
) -> None:
    # A project's committed cdk.context.json holds a block the test did not give; the test's
    # result must not depend on running from that project's root.
    key = reservation_context_key(ACCOUNT, "us-east-2", "cr-0123456789abcdef1")
    decoy = capacity_block_context(
        [
            CapacityBlock(
                capacity_reservation_id="cr-0123456789abcdef1",
                instance_type="p5.48xlarge",
                availability_zone="us-east-2a",
                instance_count=2,
                start=BLOCK.start,
                end=BLOCK.end,
            )
        ],
        account=ACCOUNT,
    )
    assert list(decoy) == [key]
    (empty_directory / "cdk.context.json").write_text(json.dumps(decoy))
    app = capacity_block_app(now=NOW, blocks=[BLOCK], account=ACCOUNT)
    with pytest.raises(CapacityBlockError, match="give the block to capacity_block_app") as failure:
        CapacityBlock.from_lookup(_stack(app), "cr-0123456789abcdef1")
    assert key in str(failure.value)


def test_the_app_pins_now_and_reports_nothing_by_default() -> None:
    from capblock_constructs._time import now

    app = capacity_block_app(now=NOW + timedelta(hours=1, microseconds=5), context={"a": "b"})
    assert now(app) == datetime(2027, 2, 1, 1, tzinfo=timezone.utc)
    assert app.node.try_get_context("a") == "b"
    stack = _stack(app)
    CapacityBlockLaunchTemplate(stack, "Nodes", capacity_block=BLOCK)
    # No AWS::CDK::Metadata, whose content changes with the CDK version, in snapshots.
    assert Template.from_stack(stack).find_resources("AWS::CDK::Metadata") == {}


def test_its_own_settings_win_over_the_context_given() -> None:
    key = reservation_context_key(ACCOUNT, "us-east-2", BLOCK.capacity_reservation_id)
    app = capacity_block_app(
        now=NOW,
        blocks=[BLOCK],
        account=ACCOUNT,
        context={
            key: "stale",
            "capblock-constructs:now": "2030-01-01T00:00:00Z",
            "capblock-constructs:lookups": True,
        },
        analytics_reporting=True,
    )
    assert app.node.try_get_context(key) == BLOCK.to_context_value()
    assert app.node.try_get_context("capblock-constructs:now") == "2027-02-01T00:00:00Z"
    assert app.node.try_get_context("capblock-constructs:lookups") is False


def test_context_entries_use_the_lookup_keys() -> None:
    entries = capacity_block_context([BLOCK, ULTRASERVER_BLOCK], account=ACCOUNT)
    assert entries == {
        reservation_context_key(ACCOUNT, "us-east-2", BLOCK.capacity_reservation_id): (
            BLOCK.to_context_value()
        ),
        reservation_context_key(ACCOUNT, "us-east-1", ULTRASERVER_BLOCK.capacity_reservation_id): (
            ULTRASERVER_BLOCK.to_context_value()
        ),
    }
    (key,) = capacity_block_context([BLOCK], account=ACCOUNT, region="eu-west-1")
    assert ":region=eu-west-1:" in key


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: capacity_block_app(now=datetime(2027, 2, 1)),
            "now datetime.datetime(2027, 2, 1, 0, 0) has no timezone; pass a timezone-aware",
        ),
        (lambda: capacity_block_app(now="2027-02-01T00:00:00Z"), "not a datetime"),  # type: ignore[arg-type]
        (lambda: capacity_block_app(now=NOW, blocks=[BLOCK]), "without account="),
        (
            lambda: capacity_block_context([BLOCK], account="1111-2222-3333"),
            "not a 12-digit AWS account ID",
        ),
        (
            lambda: capacity_block_context([BLOCK], account=ACCOUNT, region="Ohio"),
            "not an AWS Region name",
        ),
        (lambda: capacity_block_context([BLOCK, BLOCK], account=ACCOUNT), "given twice"),
        (
            lambda: capacity_block_context(["cr-0123456789abcdef0"], account=ACCOUNT),  # type: ignore[list-item]
            "not a CapacityBlock",
        ),
    ],
    ids=["naive-now", "now-string", "no-account", "bad-account", "bad-region", "twice", "id"],
)
def test_bad_input_is_one_clear_error(call: object, message: str) -> None:
    with pytest.raises(CapacityBlockError, match=re.escape(message)):
        call()  # type: ignore[operator]


def test_a_zone_whose_region_cannot_be_told_needs_region() -> None:
    local_zone = CapacityBlock(
        capacity_reservation_id="cr-0123456789abcdef0",
        instance_type="p5.48xlarge",
        availability_zone="us-west-2-lax-1a",
        instance_count=1,
        start=BLOCK.start,
        end=BLOCK.end,
    )
    with pytest.raises(CapacityBlockError, match="pass region="):
        capacity_block_context([local_zone], account=ACCOUNT)
    assert capacity_block_context([local_zone], account=ACCOUNT, region="us-west-2")


def test_the_module_docstring_example_runs(empty_directory: Path) -> None:
    # The example is the literal block after the first '::', up to the first unindented line.
    after = (capblock_constructs.testing.__doc__ or "").split("::\n", 1)[1]
    lines: list[str] = []
    for line in after.splitlines():
        if line.strip() and not line.startswith("    "):
            break
        lines.append(line)
    example = textwrap.dedent("\n".join(lines))
    assert "capacity_block_app(" in example
    exec(compile(example, "capblock_constructs.testing docstring", "exec"), {})


def test_importing_the_module_does_not_start_jsii() -> None:
    code = (
        "import sys\n"
        "import capblock_constructs.testing\n"
        "print(sorted(m for m in ('aws_cdk', 'constructs', 'jsii') if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
