"""Collect validation problems and raise them together."""

from __future__ import annotations

from .errors import CapacityBlockError


class Problems:
    """Accumulates problems so that one error reports all of them."""

    def __init__(self, subject: str) -> None:
        self.subject = subject
        self._items: list[str] = []

    def add(self, problem: str) -> None:
        self._items.append(problem)

    def __bool__(self) -> bool:
        return bool(self._items)

    def raise_if_any(self) -> None:
        if self._items:
            raise CapacityBlockError(self._items, subject=self.subject)
