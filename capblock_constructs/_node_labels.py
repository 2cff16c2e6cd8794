"""Node labels that identify the Capacity Block; syntax and size checks for labels and taints.

Both node-group kinds check Kubernetes' rules. A managed node group also
passes its labels and taints through the EKS API, whose limits are tighter
(:mod:`capblock_constructs._eks_limits`): a label key is at most 63 characters
*including* its prefix, a label value may not be empty, and a group carries at
most 50 taints. Self-managed nodes set theirs through kubelet, where only
Kubernetes' rules apply.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from aws_cdk import Token

from ._eks_limits import (
    EKS_LABEL_KEY_LENGTH,
    EKS_LABEL_VALUE_LENGTH,
    EKS_MAX_TAINTS,
    EKS_TAINT_KEY_LENGTH,
)
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
    block: CapacityBlock,
    labels: Mapping[str, str] | None,
    problems: Problems,
    *,
    construct_labels: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The user's labels plus the block's and ``construct_labels``; a user label that collides
    with one the construct sets is a problem.

    :param construct_labels: Further labels the construct sets, such as the ones that
        select the nodes for the device plugins it installs. Defaults to none.
    """
    own = {**(construct_labels or {}), **block_labels(block)}
    for key in sorted(set(labels or {}) & set(own)):
        reason = (
            "to identify the Capacity Block"
            if key in block_labels(block)
            else "to select the nodes for the device plugins it installs"
        )
        problems.add(f"label {key!r} is set by the construct {reason}; remove it from labels.")
    return {**(labels or {}), **own}


def validate_labels_and_taints(
    labels: Mapping[str, str],
    taints: Sequence[NodeTaint],
    problems: Problems,
    *,
    eks_limits: bool = False,
) -> None:
    """Add a problem for each label or taint Kubernetes would reject.

    :param eks_limits: Also apply the EKS API's limits for managed node groups
        (label keys and taint keys of 1-63 characters prefix included, label
        values of 1-63 characters, at most 50 taints). Defaults to Kubernetes'
        rules only, which is what self-managed nodes' kubelet applies.
    """
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
        elif eks_limits:
            _check_eks_key(problems, "label", key, EKS_LABEL_KEY_LENGTH[1])
        if not _VALUE.match(value):
            problems.add(
                f"label {key!r} has the value {value!r}, which Kubernetes rejects; use at most 63 "
                "letters, digits, '-', '_' or '.', starting and ending with a letter or digit."
            )
        elif eks_limits and len(value) < EKS_LABEL_VALUE_LENGTH[0]:
            problems.add(
                f"label {key!r} has an empty value, which Kubernetes allows but the EKS API "
                f"rejects for managed node groups (label values are "
                f"{EKS_LABEL_VALUE_LENGTH[0]}-{EKS_LABEL_VALUE_LENGTH[1]} characters); set a "
                "value such as 'true'."
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
        elif eks_limits:
            _check_eks_key(problems, "taint", taint.key, EKS_TAINT_KEY_LENGTH[1])
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
    if eks_limits and len(taints) > EKS_MAX_TAINTS:
        problems.add(
            f"{len(taints)} taints are given, but the EKS API allows at most {EKS_MAX_TAINTS} "
            f"on a managed node group; remove {len(taints) - EKS_MAX_TAINTS}."
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


def _check_eks_key(problems: Problems, kind: str, key: str, most: int) -> None:
    """Add a problem when a key Kubernetes accepts is longer than the EKS API allows.

    Kubernetes limits only the name part to 63 characters and allows a prefix of up to
    253 more; EKS counts the whole key, prefix included.
    """
    if len(key) > most:
        prefix, _, _ = key.rpartition("/")
        hint = f" (its prefix {prefix + '/'!r} counts too)" if prefix else ""
        problems.add(
            f"{kind} key {key!r} is {len(key)} characters{hint}, but the EKS API allows at most "
            f"{most} for a managed node group's {kind} keys; shorten the key or its prefix to "
            f"{most} characters or fewer."
        )
