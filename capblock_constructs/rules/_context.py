"""Capacity Blocks and the pinned clock, read from a parsed ``cdk.context.json``.

The cache keys and values are parsed by the code that ``capblock plan`` uses
(``timeline``) and ``CapacityBlock.from_context_value``, so the rules read
exactly the entries that ``capblock lookup`` and ``CapacityBlock.from_lookup``
write.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from .._problems import Problems
from .._time import NOW_CONTEXT_KEY, parse_utc
from ..capacity_block import CapacityBlock
from ..errors import CapacityBlockError
from ..timeline import _cached_blocks, _group_entries

__all__ = ["blocks_from_context", "now_from_context"]


def blocks_from_context(context: Mapping[str, Any]) -> dict[str, CapacityBlock]:
    """Reservation ID -> block, from the cached ``capblock-constructs:capacity-block:*`` entries.

    Other keys are ignored. When the cache holds the same reservation under
    several accounts or regions with different values (one of them stale after
    an extension, which only ever moves the end later), the block that ends
    last is used.

    :raises CapacityBlockError: listing every entry that cannot be read as a block.
    """
    problems = Problems("")
    groups = _group_entries(_cached_blocks(dict(context)), problems)
    problems.raise_if_any()
    blocks: dict[str, CapacityBlock] = {}
    for group in groups:
        for entry in group:
            block = entry.block
            if block is None:
                continue
            known = blocks.get(entry.reservation_id)
            if known is None or block.end > known.end:
                blocks[entry.reservation_id] = block
    return blocks


def now_from_context(context: Mapping[str, Any]) -> datetime | None:
    """The context key ``capblock-constructs:now`` as a UTC datetime; ``None`` when absent.

    :raises CapacityBlockError: when the key is not an ISO 8601 timestamp string with an offset.
    """
    value = context.get(NOW_CONTEXT_KEY)
    if value is None:
        return None
    if not isinstance(value, str):
        raise CapacityBlockError(
            f"context {NOW_CONTEXT_KEY!r} is {value!r}; set it to an ISO 8601 UTC timestamp "
            "string such as '2027-03-01T11:30:00Z'."
        )
    return parse_utc(value, what=f"context {NOW_CONTEXT_KEY!r}")
