"""Capacity Blocks and the pinned clock, read from a parsed ``cdk.context.json``.

The cache keys and values are parsed by the code that ``capblock plan`` uses
(``timeline``) and ``CapacityBlock.from_context_value``, so the rules read
exactly the entries that ``capblock lookup`` and ``CapacityBlock.from_lookup``
write.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from .._context_cache import read_context_file
from .._problems import Problems
from .._time import NOW_CONTEXT_KEY, pinned_now
from ..capacity_block import CapacityBlock
from ..errors import CapacityBlockError
from ..timeline import cached_blocks

__all__ = ["blocks_from_context", "from_context_file", "now_from_context"]


def blocks_from_context(context: Mapping[str, Any]) -> dict[str, CapacityBlock]:
    """Reservation ID -> block, from the cached ``capblock-constructs:capacity-block:*`` entries.

    Other keys are ignored. When the cache holds the same reservation under
    several accounts or regions with different values (one of them stale after
    an extension, which only ever moves the end later), the block that ends
    last is used.

    :raises CapacityBlockError: listing every entry that cannot be read as a block.
    """
    problems = Problems("")
    cached = cached_blocks(context, problems)
    problems.raise_if_any()
    blocks: dict[str, CapacityBlock] = {}
    for reservation_id, block in cached:
        known = blocks.get(reservation_id)
        if known is None or block.end > known.end:
            blocks[reservation_id] = block
    return blocks


def now_from_context(context: Mapping[str, Any]) -> datetime | None:
    """The context key ``capblock-constructs:now`` as a UTC datetime; ``None`` when absent.

    :raises CapacityBlockError: when the key is not an ISO 8601 timestamp string with an offset.
    """
    return pinned_now(context.get(NOW_CONTEXT_KEY))


def from_context_file(
    path: Path, *, subject: str | None = None
) -> tuple[dict[str, CapacityBlock], datetime | None]:
    """The blocks and the pinned time of a cdk.context.json; no blocks when there is no file.

    :param subject: What the error names as the file's source; defaults to the path.
    :raises CapacityBlockError: when the file cannot be read (the error names it), or
        listing, under ``subject``, every entry that cannot be used.
    """
    context = read_context_file(path)  # its errors name the file
    try:
        return blocks_from_context(context), now_from_context(context)
    except CapacityBlockError as error:
        raise CapacityBlockError(list(error.problems), subject=subject or str(path)) from None
