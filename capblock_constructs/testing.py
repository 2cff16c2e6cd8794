"""Build CDK apps for your own tests: Capacity Blocks as values, a pinned clock, no AWS.

A stack that calls :meth:`CapacityBlock.from_lookup` reads its reservation
from the CDK context. In a unit test there is no CDK CLI to pass
``cdk.context.json`` in, and no credentials to look the reservation up with.
:func:`capacity_block_app` puts the blocks you describe into a new ``App``'s
context under the exact keys ``from_lookup`` reads, pins the time the
constructs compare block ends with, and switches lookups off, so the test
needs no cache file and never calls AWS::

    from datetime import datetime, timezone

    from aws_cdk import Environment, Stack

    from capblock_constructs import CapacityBlock
    from capblock_constructs.testing import capacity_block_app

    block = CapacityBlock(
        capacity_reservation_id="cr-0123456789abcdef0",
        instance_type="p5.48xlarge",
        availability_zone="us-east-2a",
        instance_count=4,
        start=datetime(2027, 3, 1, 11, 30, tzinfo=timezone.utc),
        end=datetime(2027, 3, 15, 11, 30, tzinfo=timezone.utc),
    )
    app = capacity_block_app(
        now=datetime(2027, 2, 1, tzinfo=timezone.utc), blocks=[block], account="111122223333"
    )
    stack = Stack(app, "Gpu", env=Environment(account="111122223333", region="us-east-2"))
    assert CapacityBlock.from_lookup(stack, "cr-0123456789abcdef0") == block

Importing this module does not start jsii; building the App does.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ._context_cache import (
    ACCOUNT_ID_PATTERN,
    CONTEXT_FILE_CONTEXT_KEY,
    LOOKUPS_CONTEXT_KEY,
    REGION_NAME_PATTERN,
)
from ._reservation_lookup import reservation_context_key
from ._time import NOW_CONTEXT_KEY, format_utc
from .capacity_block import CapacityBlock, require_capacity_block
from .errors import CapacityBlockError

if TYPE_CHECKING:
    from aws_cdk import App

__all__ = ["capacity_block_app", "capacity_block_context"]


def capacity_block_context(
    blocks: Iterable[CapacityBlock], *, account: str, region: str | None = None
) -> dict[str, Any]:
    """The CDK context entries that serve ``blocks`` to ``CapacityBlock.from_lookup``.

    Each block is stored under the key ``from_lookup`` reads for a stack in
    ``account`` and ``region``, with the value ``capblock lookup`` would cache.
    Use it for blocks that stacks in several accounts or regions look up,
    and pass the merged entries to :func:`capacity_block_app` as ``context``.

    :param blocks: The blocks, built by hand.
    :param account: The account of the stacks that look the blocks up (for a
        block shared from another account, the stack's account, not the owner's).
    :param region: The region of those stacks. Defaults to each block's own
        region: its Availability Zone's name without the zone letter.
    :raises CapacityBlockError: for something other than a ``CapacityBlock``, a
        malformed account or region, or one reservation given twice.
    """
    problems: list[str] = []
    if not isinstance(account, str) or not ACCOUNT_ID_PATTERN.match(account):
        problems.append(f"account {account!r} is not a 12-digit AWS account ID.")
    if region is not None and not REGION_NAME_PATTERN.match(str(region)):
        problems.append(f"region {region!r} is not an AWS Region name such as 'us-east-2'.")
    if problems:
        raise CapacityBlockError(problems, subject="capacity_block_context")
    entries: dict[str, Any] = {}
    for block in blocks:
        require_capacity_block(block, path="capacity_block_context")
        key = reservation_context_key(
            account, region or _region_of(block), block.capacity_reservation_id
        )
        if key in entries:
            raise CapacityBlockError(
                f"reservation {block.capacity_reservation_id} is given twice; pass each block "
                "once.",
                subject="capacity_block_context",
            )
        entries[key] = block.to_context_value()
    return entries


def capacity_block_app(
    *,
    now: datetime,
    blocks: Iterable[CapacityBlock] = (),
    account: str | None = None,
    region: str | None = None,
    context: Mapping[str, Any] | None = None,
    **app_kwargs: Any,
) -> App:
    """A new ``App`` for tests: blocks served from its context, the clock pinned, lookups off.

    :param now: The time the constructs take as "now" (context
        ``capblock-constructs:now``); it must carry a timezone. Required, so
        that a test does not start failing on the day its block ends (a block
        that has ended is a synth-time error).
    :param blocks: Blocks that ``CapacityBlock.from_lookup`` returns in this
        app, by reservation ID. Defaults to none: every lookup is then an
        error that names the missing key, whatever ``cdk.context.json`` the
        working directory holds (the app does not read it).
    :param account: The account of the stacks that look the blocks up;
        required when ``blocks`` is not empty.
    :param region: The region of those stacks. Defaults to each block's own
        region (its Availability Zone without the zone letter).
    :param context: Further context, for example the ``context`` of your
        ``cdk.json`` (feature flags) or :func:`capacity_block_context` entries
        for other accounts. Defaults to none. The blocks, ``now`` and the
        lookup switch are set over it.
    :param app_kwargs: Passed to ``App``. ``analytics_reporting`` defaults to
        ``False``, so snapshots hold no ``AWS::CDK::Metadata`` resource that
        changes with the CDK version.
    :raises CapacityBlockError: for a naive ``now``, blocks without an
        account, or what :func:`capacity_block_context` rejects.
    """
    # Imported here so that importing this module does not start jsii.
    from aws_cdk import App

    if not isinstance(now, datetime) or now.utcoffset() is None:
        what = "has no timezone" if isinstance(now, datetime) else "is not a datetime"
        raise CapacityBlockError(
            f"now {now!r} {what}; pass a timezone-aware datetime such as "
            "datetime(2027, 2, 1, tzinfo=timezone.utc).",
            subject="capacity_block_app",
        )
    blocks = list(blocks)
    if blocks and account is None:
        raise CapacityBlockError(
            "blocks are given without account=; pass the account of the stacks that look "
            "them up (it is part of the cache key), for example account='111122223333'.",
            subject="capacity_block_app",
        )
    merged: dict[str, Any] = dict(context or {})
    if blocks and account is not None:
        merged.update(capacity_block_context(blocks, account=account, region=region))
    merged[NOW_CONTEXT_KEY] = format_utc(now)
    # Off, so that a block the test did not give fails with the missing key instead of
    # reaching for AWS credentials.
    merged[LOOKUPS_CONTEXT_KEY] = False
    # And not from ./cdk.context.json either: a project's committed cache would otherwise
    # answer for a block the test did not give, depending on where the test runs.
    merged[CONTEXT_FILE_CONTEXT_KEY] = False
    app_kwargs.setdefault("analytics_reporting", False)
    return App(context=merged, **app_kwargs)


def _region_of(block: CapacityBlock) -> str:
    """The region of a block's Availability Zone: ``us-east-2a`` is in ``us-east-2``."""
    region = block.availability_zone[:-1]
    if not REGION_NAME_PATTERN.match(region):
        raise CapacityBlockError(
            f"the region of Availability Zone {block.availability_zone!r} cannot be told from "
            "its name; pass region= (the region of the stacks that look the block up).",
            subject=block.capacity_reservation_id,
        )
    return region
