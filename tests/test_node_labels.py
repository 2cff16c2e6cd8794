"""Kubernetes syntax checks shared by both node-group kinds, and the EKS API's tighter limits
that only managed node groups meet (botocore's EKS model; EKS API reference, "Taint")."""

from __future__ import annotations

from typing import Any

import botocore.session
import pytest

from capblock_constructs import RESERVATION_LABEL, CapacityBlockError, NodeTaint
from capblock_constructs._eks_limits import (
    EKS_LABEL_KEY_LENGTH,
    EKS_LABEL_VALUE_LENGTH,
    EKS_MAX_TAINTS,
    EKS_TAINT_KEY_LENGTH,
    EKS_TAINT_VALUE_LENGTH,
)
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


# -- the EKS API's limits (managed node groups) ------------------------------------------------


def _problem_list(
    labels: dict[str, str], taints: list[NodeTaint], *, eks_limits: bool = True
) -> tuple[str, ...]:
    problems = Problems("test")
    validate_labels_and_taints(labels, taints, problems, eks_limits=eks_limits)
    if not problems:
        return ()
    with pytest.raises(CapacityBlockError) as caught:
        problems.raise_if_any()
    return caught.value.problems


def _prefixed(length: int, prefix: str = "example.com/") -> str:
    return prefix + "n" * (length - len(prefix))


def test_eks_limits_are_the_eks_api_models() -> None:
    # botocore's EKS model carries the lengths; the 50-taint limit is in the API reference only.
    model = botocore.session.get_session().get_service_model("eks")
    for shape, limit in (
        ("labelKey", EKS_LABEL_KEY_LENGTH),
        ("labelValue", EKS_LABEL_VALUE_LENGTH),
        ("taintKey", EKS_TAINT_KEY_LENGTH),
        ("taintValue", EKS_TAINT_VALUE_LENGTH),
    ):
        metadata: Any = model.shape_for(shape).metadata
        assert (metadata["min"], metadata["max"]) == limit, shape
    assert EKS_MAX_TAINTS == 50


def test_a_63_character_key_prefix_included_is_accepted() -> None:
    key = _prefixed(63)
    assert _problem_list({key: "x"}, [NodeTaint(key=key)]) == ()


def test_a_64_character_key_fails_because_the_prefix_counts() -> None:
    key = _prefixed(64)
    # Kubernetes limits only the name (52 characters here), so only EKS objects.
    assert _problem_list({key: "x"}, [], eks_limits=False) == ()
    (label,) = _problem_list({key: "x"}, [])
    assert label.startswith(f"label key {key!r} is 64 characters (its prefix 'example.com/' ")
    assert "the EKS API allows at most 63" in label
    assert "shorten the key or its prefix" in label
    (taint,) = _problem_list({}, [NodeTaint(key=key)])
    assert taint.startswith(f"taint key {key!r} is 64 characters")
    assert "at most 63 for a managed node group's taint keys" in taint


def test_a_64_character_name_is_reported_once() -> None:
    # Kubernetes already rejects a name over 63 characters; EKS adds no second problem.
    (only,) = _problem_list({"n" * 64: "x"}, [])
    assert "is not a valid Kubernetes label key" in only


def test_an_empty_label_value_fails_for_eks_only() -> None:
    assert _problem_list({"team": ""}, [], eks_limits=False) == ()
    (problem,) = _problem_list({"team": ""}, [])
    assert "label 'team' has an empty value" in problem
    assert "EKS API rejects for managed node groups" in problem
    assert "set a value such as 'true'" in problem


def test_an_empty_taint_value_is_accepted() -> None:
    taints = [NodeTaint(key="a", value=""), NodeTaint(key="b", value=None)]
    assert _problem_list({}, taints) == ()


def test_fifty_taints_are_accepted_fifty_one_fail() -> None:
    taints = [NodeTaint(key=f"example.com/t{i}") for i in range(51)]
    assert _problem_list({}, taints[:50]) == ()
    assert _problem_list({}, taints, eks_limits=False) == ()
    (problem,) = _problem_list({}, taints)
    assert problem == (
        "51 taints are given, but the EKS API allows at most 50 on a managed node group; remove 1."
    )


def test_every_eks_problem_is_reported_together() -> None:
    taints = [NodeTaint(key=f"t{i}") for i in range(50)] + [NodeTaint(key=_prefixed(70))]
    found = _problem_list({_prefixed(64): "x", "team": ""}, taints)
    assert len(found) == 4


def test_merge_labels_protects_the_construct_labels() -> None:
    problems = Problems("test")
    merged = merge_labels(
        block(),
        {"example.com/plugin": "false", "team": "ml"},
        problems,
        construct_labels={"example.com/plugin": "true"},
    )
    assert merged["example.com/plugin"] == "true"
    assert merged["team"] == "ml"
    with pytest.raises(CapacityBlockError, match="to select the nodes for the device plugins"):
        problems.raise_if_any()
