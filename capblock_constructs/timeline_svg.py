"""The plan of Capacity Blocks as SVG, for ``capblock plan --svg``.

Hand-written with the standard library only, and deterministic: the same
plan always gives the same bytes.
"""

from __future__ import annotations

import textwrap
from datetime import datetime
from xml.sax.saxutils import escape, quoteattr

from ._chart_axis import ChartAxis
from ._time import format_utc
from .timeline import WORK_SHARE_DEFINITION, BlockPlan, Plan, format_duration

__all__ = ["format_plan_svg"]

WIDTH = 960
_LEFT = 120
_RIGHT = 70
_BAR = WIDTH - _LEFT - _RIGHT
_GAP = 14.0
_ROW = 24
_LINE = 16
_EVENT_COLUMNS = 135
_PROSE_COLUMNS = 150
_COLOURS = {"work": "#2e7d32", "drain": "#f9a825", "reclaim": "#c62828", "now": "#1565c0"}


def _num(value: float) -> str:
    # One decimal, no "-0.0": the same plan always gives the same bytes.
    text = f"{value:.1f}"
    return "0.0" if text == "-0.0" else text


def _text(x: float, y: float, body: str, **attributes: str) -> str:
    extra = "".join(
        f" {name.replace('_', '-')}={quoteattr(value)}" for name, value in attributes.items()
    )
    return f'<text x="{_num(x)}" y="{_num(y)}"{extra}>{escape(body)}</text>'


def _rect(x: float, y: float, width: float, height: float, fill: str) -> str:
    return (
        f'<rect x="{_num(x)}" y="{_num(y)}" width="{_num(width)}" height="{_num(height)}" '
        f'fill="{fill}"/>'
    )


def _line(x1: float, y1: float, x2: float, y2: float, stroke: str, dash: bool = False) -> str:
    pattern = ' stroke-dasharray="4 3"' if dash else ""
    return (
        f'<line x1="{_num(x1)}" y1="{_num(y1)}" x2="{_num(x2)}" y2="{_num(y2)}" '
        f'stroke="{stroke}" stroke-width="1.5"{pattern}/>'
    )


def _markers(plan: BlockPlan) -> dict[datetime, str]:
    """The marker letters by moment, in time order; letters at one moment share a label."""
    block = plan.block
    found = [(block.start, "S"), (block.reclaim_start, "R"), (block.end, "E")]
    found += [(group.scale_down, "D") for group in plan.node_groups]
    if plan.eks_scale_down is not None:
        found.append((plan.eks_scale_down, "K"))
    letters: dict[datetime, list[str]] = {}
    for moment, marker in sorted(found, key=lambda item: (item[0], "SDKRE".index(item[1]))):
        if marker not in letters.setdefault(moment, []):
            letters[moment].append(marker)
    # Two letters at one x would be drawn on top of each other (D and K on instance blocks).
    return {moment: "/".join(markers) for moment, markers in letters.items()}


def _block(
    plan: BlockPlan, now: datetime | None, top: float, number: int
) -> tuple[list[str], float]:
    """The SVG elements of one block, starting at ``top``; returns them and the next top."""
    block = plan.block
    axis = ChartAxis.for_block(plan)

    def x(moment: datetime) -> float:
        return _LEFT + axis.position(moment, _BAR, _GAP)

    kind = f"UltraServer {block.ultraserver_type}, " if block.is_ultraserver else ""
    where = ", ".join(
        [block.availability_zone]
        + ([f"region {plan.region}"] if plan.region else [])
        + ([f"account {', '.join(plan.accounts)}"] if plan.accounts else [])
    )
    parts = [
        # Numbered: the same reservation can appear twice (disagreeing cache entries).
        f'<g class="block" id="block-{number}" '
        f"data-reservation={quoteattr(block.capacity_reservation_id)}>",
        _text(
            10,
            top,
            f"{block.capacity_reservation_id}: {kind}{block.instance_count} x "
            f"{block.instance_type}, {where}",
            font_weight="bold",
        ),
        _text(
            10,
            top + _LINE,
            f"{format_utc(block.start)} .. {format_utc(block.end)} "
            f"({format_duration(block.duration)} paid)",
        ),
    ]
    y = top + 2 * _LINE + 8
    parts.append(_text(_LEFT, y, format_utc(block.start), font_size="10"))
    parts.append(_text(_LEFT + _BAR, y, format_utc(block.end), font_size="10", text_anchor="end"))
    if axis.tail_start is not None:
        parts.append(_text(x(axis.tail_start), y, format_utc(axis.tail_start), font_size="10"))
    # One row of marker letters above the bars; their lines cross every bar.
    y += 14
    markers = _markers(plan)
    for moment, marker in markers.items():
        parts.append(_text(x(moment), y, marker, font_size="10", text_anchor="middle"))
    y += 4
    bar_top = y
    for group in plan.node_groups:
        segments = [
            (block.start, min(group.scale_down, block.reclaim_start), "work"),
            (group.scale_down, block.reclaim_start, "drain"),
            (block.reclaim_start, block.end, "reclaim"),
        ]
        parts.append(f'<g class="node-group" data-kind="{group.kind.value}">')
        parts.append(_text(10, y + 13, group.kind.value))
        for begin, finish, what in segments:
            if finish > begin:
                parts.append(_rect(x(begin), y, x(finish) - x(begin), 18, _COLOURS[what]))
        if axis.tail_start is not None:
            # The axis break: a white gap with two slashes.
            gap_left = x(axis.tail_start) - _GAP
            parts.append(_rect(gap_left, y - 2, _GAP, 22, "#ffffff"))
            for offset in (2.0, 7.0):
                parts.append(
                    _line(gap_left + offset, y + 20, gap_left + offset + 5, y - 2, "#555555")
                )
        parts.append(_text(_LEFT + _BAR + 8, y + 13, group.work_share_text, font_weight="bold"))
        parts.append("</g>")
        y += _ROW
    for moment in markers:
        parts.append(_line(x(moment), bar_top - 2, x(moment), y - _ROW + 20, "#000000"))
    if now is not None and block.start <= now <= block.end:
        parts.append(_line(x(now), bar_top - 2, x(now), y, _COLOURS["now"], dash=True))
        parts.append(
            _text(
                x(now),
                y + 10,
                f"N now {format_utc(now)}",
                font_size="10",
                text_anchor="middle",
                fill=_COLOURS["now"],
            )
        )
        y += 12
    y += _LINE + 4
    if now is not None:
        parts.append(_text(10, y, f"Phase now: {block.phase_at(now).value}"))
        y += _LINE
    for event in plan.events:
        lead = f"{format_utc(event.at)}  {event.offset.ljust(16)}  {event.marker}  "
        # SVG does not wrap text: lines are cut to fit the width in an 11 px monospace font.
        for line in textwrap.wrap(
            event.what,
            width=_EVENT_COLUMNS - len(lead),
            break_long_words=False,
            break_on_hyphens=False,
        ):
            # xml:space keeps the spaces that align the columns.
            parts.append(
                f'<text x="10.0" y="{_num(y)}" font-family="monospace" font-size="11" '
                f'xml:space="preserve">{escape(lead + line)}</text>'
            )
            lead = " " * len(lead)
            y += _LINE - 2
    for group in plan.node_groups:
        parts.append(
            _text(
                10,
                y,
                f"Work share, {group.kind.value}: {group.work_share_text} "
                f"({format_duration(group.work_time)} of {format_duration(group.paid_time)})",
            )
        )
        y += _LINE
    for warning in (*plan.warnings, *(w for group in plan.node_groups for w in group.warnings)):
        for line in textwrap.wrap(f"Warning: {warning}", width=_PROSE_COLUMNS):
            parts.append(_text(10, y, line, fill=_COLOURS["reclaim"], font_size="11"))
            y += _LINE - 2
    parts.append("</g>")
    return parts, y + 18


def format_plan_svg(plan: Plan) -> str:
    """The plan as a standalone SVG document (UTF-8 text), the same for the same plan.

    A bar per block and node group, with markers S (start and scale-up), D
    (drain start), K (EKS's own scale-down of managed node groups), R (EC2
    reclaim start) and E (end), then the events and work shares.
    """
    body: list[str] = []
    y = 24.0
    count = len(plan.blocks)
    body.append(
        _text(
            10,
            y,
            f"Capacity Block plan, times in UTC: {count} block{'s' if count != 1 else ''}",
            font_size="16",
            font_weight="bold",
        )
    )
    y += 22
    legend_x = 10.0
    managed = any(item.eks_scale_down is not None for item in plan.blocks)
    for what, label in (
        ("work", "nodes can run work"),
        ("drain", "draining"),
        ("reclaim", "EC2 reclaiming"),
    ):
        body.append(_rect(legend_x, y - 10, 14, 12, _COLOURS[what]))
        body.append(_text(legend_x + 18, y, label))
        legend_x += 30 + 7 * len(label)
    body.append(
        _text(
            legend_x,
            y,
            "S start / scale-up, D drain start, "
            + ("K EKS's own scale-down, " if managed else "")
            + "R EC2 reclaim start, E end",
        )
    )
    y += _LINE + 2
    body.append(_text(10, y, WORK_SHARE_DEFINITION, font_size="11"))
    y += _LINE + 2
    if plan.blocks and any(ChartAxis.for_block(item).tail_start for item in plan.blocks):
        body.append(
            _text(
                10,
                y,
                "// axis break: the block's last hours after it are drawn to a larger scale.",
                font_size="11",
            )
        )
        y += _LINE + 2
    y += 12
    for number, block_plan in enumerate(plan.blocks, start=1):
        parts, y = _block(block_plan, plan.now, y, number)
        body.extend(parts)
    height = int(y) + 10
    title = "Capacity Block plan"
    return "\n".join(
        [
            '<?xml version="1.0" encoding="UTF-8"?>',
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
            f'viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="12">',
            f"<title>{escape(title)}</title>",
            f'<rect x="0" y="0" width="{WIDTH}" height="{height}" fill="#ffffff"/>',
            *body,
            "</svg>",
            "",
        ]
    )
