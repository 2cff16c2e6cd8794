"""The time axis the text chart and the SVG share (pure functions)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from .timeline import BlockPlan


@dataclass(frozen=True, kw_only=True)
class ChartAxis:
    """A block's time axis: linear, or broken so that its last hours get a larger scale.

    The events that matter for draining all fall within about an hour of the
    end of a block that lasts days, so a linear axis would draw them on top
    of each other. A broken axis gives the part from ``tail_start`` to the end
    ``tail_width`` of the width.
    """

    start: datetime
    """The left edge: the block's start."""
    end: datetime
    """The right edge: the block's end."""
    tail_start: datetime | None
    """Where the larger-scale tail begins, or None for one linear scale."""

    tail_width: float = 0.4
    """The share of the width the tail takes when the axis is broken."""

    @classmethod
    def for_block(cls, plan: BlockPlan) -> ChartAxis:
        """The axis for a block: broken when its tail is short next to the block."""
        block = plan.block
        # EKS's own scale-down (end - 40 min) is never earlier than a managed group's drain.
        lead = max([block.reclaim_lead, *(group.drain_lead for group in plan.node_groups)])
        hour = timedelta(hours=1)
        # Whole hours that hold the longest lead plus a margin, so markers are not at the edge.
        tail = -(-(lead + timedelta(minutes=20)) // hour) * hour
        if block.duration <= 4 * tail:
            return cls(start=block.start, end=block.end, tail_start=None)
        return cls(start=block.start, end=block.end, tail_start=block.end - tail)

    def split(self, cells: int) -> tuple[int, int]:
        """How many of ``cells`` go to the head and to the tail (a gap of 2 in between)."""
        if self.tail_start is None:
            return cells, 0
        tail = max(10, round(cells * self.tail_width))
        return cells - tail - 2, tail

    def cell(self, moment: datetime, cells: int) -> int:
        """The cell (0 to ``cells - 1``) that holds ``moment``."""
        head, tail = self.split(cells)
        if self.tail_start is None or moment < self.tail_start:
            edge = self.tail_start or self.end
            index = int((moment - self.start) / (edge - self.start) * head)
            return min(max(index, 0), head - 1)
        index = int((moment - self.tail_start) / (self.end - self.tail_start) * tail)
        return head + 2 + min(max(index, 0), tail - 1)

    def position(self, moment: datetime, length: float, gap: float) -> float:
        """Where ``moment`` falls on a line ``length`` long with a ``gap`` at the break."""
        moment = min(max(moment, self.start), self.end)
        if self.tail_start is None:
            return (moment - self.start) / (self.end - self.start) * length
        tail = length * self.tail_width
        head = length - tail - gap
        if moment < self.tail_start:
            return (moment - self.start) / (self.tail_start - self.start) * head
        return head + gap + (moment - self.tail_start) / (self.end - self.tail_start) * tail

    def middle(self, index: int, cells: int) -> datetime | None:
        """The moment in the middle of cell ``index``; None for the two gap cells."""
        head, tail = self.split(cells)
        if index < head:
            edge = self.tail_start or self.end
            return self.start + (edge - self.start) * ((index + 0.5) / head)
        if self.tail_start is None or index < head + 2:
            return None
        return self.tail_start + (self.end - self.tail_start) * ((index - head - 2 + 0.5) / tail)
