"""The Capacity Block controller: sizes node groups at run time from the live reservation.

``construct`` deploys it (AWS CDK); ``runtime`` is the Lambda function's code
and the phase rule it runs, which the constructs and ``capblock plan`` share.
Names load on first use, so the phase rule can be imported without jsii.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .construct import (
        CAPACITY_BLOCK_EVENT_TYPES,
        CONTROLLER_CONFIG_VARIABLE,
        DEFAULT_REMINDERS,
        CapacityBlockController,
    )
    from .runtime.phase import Decision, GroupKind, Phase, ReservationFacts, decide

_EXPORTS = {
    "CAPACITY_BLOCK_EVENT_TYPES": ".construct",
    "CONTROLLER_CONFIG_VARIABLE": ".construct",
    "DEFAULT_REMINDERS": ".construct",
    "CapacityBlockController": ".construct",
    "Decision": ".runtime.phase",
    "GroupKind": ".runtime.phase",
    "Phase": ".runtime.phase",
    "ReservationFacts": ".runtime.phase",
    "decide": ".runtime.phase",
}

__all__ = [
    "CAPACITY_BLOCK_EVENT_TYPES",
    "CONTROLLER_CONFIG_VARIABLE",
    "DEFAULT_REMINDERS",
    "CapacityBlockController",
    "Decision",
    "GroupKind",
    "Phase",
    "ReservationFacts",
    "decide",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
