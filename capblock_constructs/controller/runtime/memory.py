"""The controller's notification memory, kept as compact JSON in an SSM String parameter.

It exists only so that notifications are not repeated every period (an end that
moved, a bad reservation state, a group that did not reach its size). Sizing never
reads it: a lost or corrupt memory costs at most a repeated or a missed message.
A standard parameter holds 4 KB, so values are short and defaults are left out.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

__all__ = ["MEMORY_VERSION", "GroupMemory", "Memory", "ReservationMemory"]

MEMORY_VERSION = 1
MAX_PARAMETER_BYTES = 4096
"""What a standard SSM parameter holds."""


# These records are mutable on purpose: one run reads the memory, updates it as it goes,
# and writes it back once, if it changed.
@dataclass
class ReservationMemory:
    """What the controller last saw and said about one reservation."""

    end: str | None = None
    """The last ``EndDate`` seen (``2031-03-15T11:30:00Z``); a different one is a moved end."""
    moved: bool = False
    """Whether the end has moved since the controller first saw the reservation."""
    bad: str | None = None
    """The bad state (or ``not-found``) last notified, so each is notified once."""
    reminded: list[int] = field(default_factory=list)
    """Reminder offsets (seconds) already sent for the current end."""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.end is not None:
            out["end"] = self.end
        if self.moved:
            out["moved"] = 1
        if self.bad is not None:
            out["bad"] = self.bad
        if self.reminded:
            out["rem"] = sorted(self.reminded)
        return out

    @classmethod
    def from_json(cls, value: object) -> ReservationMemory:
        if not isinstance(value, dict):
            return cls()
        rem = value.get("rem")
        return cls(
            end=_str(value.get("end")),
            moved=bool(value.get("moved")),
            bad=_str(value.get("bad")),
            reminded=[item for item in rem if isinstance(item, int)]
            if isinstance(rem, list)
            else [],
        )


@dataclass
class GroupMemory:
    """What the controller last did and said about one group."""

    size: int | None = None
    """The size the controller last set."""
    since: str | None = None
    """When it set it; cleared once the group reached it."""
    alerted: bool = False
    """Whether the "did not reach its size" alert was sent for this setting."""
    missing: bool = False
    """Whether "group not found" was notified (and the group is still missing)."""
    eks_checked: str | None = None
    """The reservation end for which EKS's scale-down action was last checked."""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.size is not None:
            out["size"] = self.size
        if self.since is not None:
            out["since"] = self.since
        if self.alerted:
            out["late"] = 1
        if self.missing:
            out["gone"] = 1
        if self.eks_checked is not None:
            out["eks"] = self.eks_checked
        return out

    @classmethod
    def from_json(cls, value: object) -> GroupMemory:
        if not isinstance(value, dict):
            return cls()
        size = value.get("size")
        return cls(
            size=size if isinstance(size, int) and not isinstance(size, bool) else None,
            since=_str(value.get("since")),
            alerted=bool(value.get("late")),
            missing=bool(value.get("gone")),
            eks_checked=_str(value.get("eks")),
        )


@dataclass
class Memory:
    """The whole memory: per reservation and per group (by construct path)."""

    reservations: dict[str, ReservationMemory] = field(default_factory=dict)
    groups: dict[str, GroupMemory] = field(default_factory=dict)

    def reservation(self, reservation_id: str) -> ReservationMemory:
        return self.reservations.setdefault(reservation_id, ReservationMemory())

    def group(self, group_id: str) -> GroupMemory:
        return self.groups.setdefault(group_id, GroupMemory())

    def prune(self, *, reservation_ids: set[str], group_ids: set[str]) -> None:
        """Forget reservations and groups no longer configured, so the memory stays small."""
        for key in [key for key in self.reservations if key not in reservation_ids]:
            del self.reservations[key]
        for key in [key for key in self.groups if key not in group_ids]:
            del self.groups[key]

    def dumps(self) -> str:
        """Compact, key-sorted JSON: equal memories give equal text, so "changed" is a
        string comparison."""
        value = {
            "v": MEMORY_VERSION,
            "r": {key: item.to_json() for key, item in sorted(self.reservations.items())},
            "g": {key: item.to_json() for key, item in sorted(self.groups.items())},
        }
        return json.dumps(value, separators=(",", ":"), sort_keys=True)

    @classmethod
    def loads(cls, text: str) -> Memory:
        """Read the parameter's value; ``{}`` (as the stack creates it) is an empty memory.

        :raises ValueError: when the text is not a JSON object.
        """
        value = json.loads(text)
        if not isinstance(value, dict):
            raise ValueError(f"the memory is a JSON {type(value).__name__}, not an object")
        reservations = value.get("r")
        groups = value.get("g")
        return cls(
            reservations={
                str(key): ReservationMemory.from_json(item)
                for key, item in (reservations.items() if isinstance(reservations, dict) else [])
            },
            groups={
                str(key): GroupMemory.from_json(item)
                for key, item in (groups.items() if isinstance(groups, dict) else [])
            },
        )


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None
