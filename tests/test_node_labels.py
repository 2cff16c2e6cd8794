"""Kubernetes syntax checks shared by both node-group kinds."""

from __future__ import annotations

from typing import Any

import pytest

from capblock_constructs import RESERVATION_LABEL, CapacityBlockError, NodeTaint
from capblock_constructs._node_labels import (
    block_labels,
    merge_labels,
    validate_labels_and_taints,
)
from capblock_constructs._problems import Problems
from tests.support import RESERVATION_ID, block


def _problems_of(labels: dict[Any, Any], taints: list[Any]) -> str:
    problems = Problems("test")
    validate_labels_and_taints(labels, taints, problems)
    with pytest.raises(CapacityBlockError) as caught:
        problems.raise_if_any()
    return str(caught.value)


def test_block_labels_are_added_and_protected() -> None:
    problems = Problems("test")
    labels = merge_labels(block(), {"team": "ml"}, problems)
    # Only the reservation ID: a label with the block's end would go stale when the block
    # is extended (same reservation, new end).
    assert labels == {"capblock-constructs/capacity-reservation-id": RESERVATION_ID, "team": "ml"}
    assert RESERVATION_LABEL == "capblock-constructs/capacity-reservation-id"
    assert block_labels(block()) == {RESERVATION_LABEL: RESERVATION_ID}
    assert not problems


def test_the_block_end_label_is_gone() -> None:
    import capblock_constructs

    assert not hasattr(capblock_constructs, "BLOCK_END_LABEL")
    assert "BLOCK_END_LABEL" not in capblock_constructs.__all__
    # Not for an UltraServer block either: the labels never name the end.
    ultra = block(ultraserver_type="u-p6e-gb200x72", instance_type="p6e-gb200.36xlarge")
    assert block_labels(ultra) == {RESERVATION_LABEL: RESERVATION_ID}


def test_a_label_that_overrides_the_block_labels_is_a_problem() -> None:
    problems = Problems("test")
    merge_labels(block(), {"capblock-constructs/capacity-reservation-id": "x"}, problems)
    with pytest.raises(CapacityBlockError, match="set by the construct"):
        problems.raise_if_any()


def test_label_value_must_be_a_string() -> None:
    message = _problems_of({"gpus": 8}, [])
    assert "label 'gpus' has the value 8 (int)" in message
    assert "pass '8'" in message


def test_taints_must_be_node_taints() -> None:
    message = _problems_of({}, [{"key": "nvidia.com/gpu"}])
    assert "is a dict; pass NodeTaint(" in message


def test_duplicate_taints_are_a_problem() -> None:
    taint = NodeTaint(key="nvidia.com/gpu")
    message = _problems_of({}, [taint, NodeTaint(key="nvidia.com/gpu", effect="NO_SCHEDULE")])
    assert "taint 'nvidia.com/gpu' with effect 'NoSchedule' is given twice" in message


def test_same_key_with_other_effects_is_allowed() -> None:
    problems = Problems("test")
    validate_labels_and_taints(
        {}, [NodeTaint(key="k"), NodeTaint(key="k", effect="NoExecute")], problems
    )
    assert not problems
