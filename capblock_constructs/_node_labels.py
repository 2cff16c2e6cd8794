"""Node labels that identify the Capacity Block; Kubernetes syntax checks for labels and taints."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from aws_cdk import Token

from ._problems import Problems
from .capacity_block import CapacityBlock
from .taints import TAINT_EFFECTS, NodeTaint

RESERVATION_LABEL = "capblock-constructs/capacity-reservation-id"
"""Node label carrying the Capacity Block's reservation ID, for node selectors."""

# An optional DNS-subdomain prefix and a name of up to 63 characters; values up to 63
# characters of the same alphabet (may be empty).
_NAME = r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
_KEY = re.compile(rf"^([a-z0-9]([-a-z0-9.]{{0,251}}[a-z0-9])?/)?{_NAME}$")
_VALUE = re.compile(rf"^({_NAME})?$")


def block_labels(block: CapacityBlock) -> dict[str, str]:
    """The labels every node on ``block`` carries.

    Only the reservation ID: a label with the block's end would go stale when the block is
    extended (same ID, new end), and nothing could correct it on running self-managed nodes.
    """
    return {RESERVATION_LABEL: block.capacity_reservation_id}


def merge_labels(
    block: CapacityBlock, labels: Mapping[str, str] | None, problems: Problems
) -> dict[str, str]:
    """The user's labels plus the block's; a user label that collides is a problem."""
    own = block_labels(block)
    for key in sorted(set(labels or {}) & set(own)):
        problems.add(
            f"label {key!r} is set by the construct to identify the Capacity Block; "
            "remove it from labels."
        )
    return {**(labels or {}), **own}


def validate_labels_and_taints(
    labels: Mapping[str, str], taints: Sequence[NodeTaint], problems: Problems
) -> None:
    """Add a problem for each label or taint Kubernetes would reject."""
    for key, value in labels.items():
        if not isinstance(key, str) or not isinstance(value, str):
            problems.add(
                f"label {key!r} has the value {value!r} ({type(value).__name__}); label keys "
                f"and values are strings, so pass {str(value)!r}."
            )
            continue
        if Token.is_unresolved(key) or Token.is_unresolved(value):
            problems.add(
                f"label {key!r} is a deploy-time value; labels are checked and written at "
                "synth time, so pass plain strings."
            )
            continue
        if not _KEY.match(key):
            problems.add(
                f"label key {key!r} is not a valid Kubernetes label key; use an optional DNS "
                "prefix and a name of at most 63 letters, digits, '-', '_' or '.', for example "
                "'example.com/team'."
            )
        if not _VALUE.match(value):
            problems.add(
                f"label {key!r} has the value {value!r}, which Kubernetes rejects; use at most 63 "
                "letters, digits, '-', '_' or '.', starting and ending with a letter or digit."
            )
    for taint in taints:
        if not isinstance(taint, NodeTaint):
            problems.add(
                f"taint {taint!r} is a {type(taint).__name__}; pass NodeTaint(key=..., "
                "value=..., effect='NoSchedule') objects."
            )
            continue
        if not _KEY.match(taint.key or ""):
            problems.add(
                f"taint key {taint.key!r} is not a valid Kubernetes key; use for example "
                "'nvidia.com/gpu'."
            )
        if not _VALUE.match(taint.value or ""):
            problems.add(
                f"taint {taint.key!r} has the value {taint.value!r}, which Kubernetes rejects; use "
                "at most 63 letters, digits, '-', '_' or '.'."
            )
        if taint.effect not in TAINT_EFFECTS:
            problems.add(
                f"taint {taint.key!r} has the effect {taint.effect!r}; use one of "
                f"{', '.join(TAINT_EFFECTS)}."
            )
    seen: set[tuple[str, str]] = set()
    for taint in taints:
        if not isinstance(taint, NodeTaint):
            continue
        if (taint.key, taint.effect) in seen:
            # Kubernetes keys a taint by key and effect; EKS rejects duplicates.
            problems.add(
                f"taint {taint.key!r} with effect {taint.effect!r} is given twice; keep one."
            )
        seen.add((taint.key, taint.effect))
