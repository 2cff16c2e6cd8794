"""The timeline and plan of Capacity Blocks as text: lines for ``capblock lookup``, a chart
for ``capblock plan`` (pure functions)."""

from __future__ import annotations

import textwrap
from datetime import datetime

from ._chart_axis import ChartAxis
from ._time import format_utc
from .capacity_block import CapacityBlock
from .timeline import (
    WORK_SHARE_DEFINITION,
    BlockPlan,
    NodeGroupKind,
    NodeGroupPlan,
    Plan,
    format_duration,
    timeline,
)

__all__ = ["format_facts", "format_plan", "format_timeline"]


def format_timeline(block: CapacityBlock) -> str:
    """The timeline as aligned text lines, one event a line, times in UTC."""
    events = timeline(block)
    width = max(len(event.offset) for event in events)
    return "\n".join(
        f"  {format_utc(event.at)}  {event.offset.ljust(width)}  {event.what}" for event in events
    )


def format_facts(block: CapacityBlock, *, state: str | None = None) -> str:
    """The block's facts as aligned ``label: value`` lines."""
    zone = block.availability_zone
    if block.availability_zone_id:
        zone += f" ({block.availability_zone_id})"
    rows = [
        ("Reservation", block.capacity_reservation_id),
        ("Capacity Block", block.capacity_block_id or "unknown"),
        (
            "Kind",
            f"UltraServer ({block.ultraserver_type})" if block.is_ultraserver else "instances",
        ),
        ("Instance type", block.instance_type),
        ("Instances", str(block.instance_count)),
        ("Availability Zone", zone),
        ("Platform", block.instance_platform or "unknown"),
        ("Owner account", block.owner_id or "unknown"),
        ("Duration", format_duration(block.duration)),
    ]
    if state is not None:
        rows.append(("State at lookup", state))
    width = max(len(label) for label, _ in rows) + 1
    return "\n".join(f"  {(label + ':').ljust(width)} {value}" for label, value in rows)


_ASCII = {"work": "=", "drain": "-", "reclaim": "x", "break": "//"}
_UNICODE = {"work": "\u2588", "drain": "\u2592", "reclaim": "\u2591", "break": "\u2571\u2571"}
_MIN_BAR = 24
_LABEL = max(len(kind.value) for kind in NodeGroupKind)


def _bar(
    plan: BlockPlan, group: NodeGroupPlan, axis: ChartAxis, cells: int, chars: dict[str, str]
) -> str:
    block = plan.block
    head, _ = axis.split(cells)
    bar: list[str] = []
    for index in range(cells):
        moment = axis.middle(index, cells)
        if moment is None:
            bar.append(chars["break"][index - head])
        elif moment >= block.reclaim_start:
            bar.append(chars["reclaim"])
        elif moment >= group.scale_down:
            bar.append(chars["drain"])
        else:
            bar.append(chars["work"])
    markers = [
        (block.reclaim_start, "R"),
        (group.scale_down, "D"),
        (block.start, "S"),
        (block.end, "E"),
    ]
    if group.kind is NodeGroupKind.MANAGED:
        # EKS's own scale-down is the second line: any other marker in its cell wins.
        markers.insert(0, (block.eks_managed_scale_down, "K"))
    # Later markers win a shared cell: the row's own drain start over the reclaim start.
    for moment, marker in markers:
        bar[axis.cell(moment, cells)] = marker
    return "".join(bar)


def _axis_labels(axis: ChartAxis, cells: int) -> str:
    line = [" "] * cells
    head, _ = axis.split(cells)
    previous = axis.start if axis.tail_start is None else axis.tail_start
    end_text = axis.end.strftime("%H:%M" if previous.date() == axis.end.date() else "%m-%d %H:%M")
    # Placed in order of importance; a label that would touch a placed one is left out.
    labels = [(0, axis.start.strftime("%m-%d %H:%M")), (cells - len(end_text), end_text)]
    if axis.tail_start is not None:
        labels.append((head + 2, axis.tail_start.strftime("%m-%d %H:%M")))
    for begin, text in labels:
        stop = begin + len(text)
        if begin < 0 or stop > cells or any(c != " " for c in line[max(begin - 1, 0) : stop + 1]):
            continue
        line[begin:stop] = text
    return "".join(line).rstrip()


def _wrap(text: str, width: int, indent: str, subsequent: str | None = None) -> list[str]:
    return textwrap.wrap(
        text,
        # At least 30 columns of text, even when the indent is long and the width small.
        width=max(width, len(indent) + 30),
        break_long_words=False,
        initial_indent=indent,
        subsequent_indent=indent if subsequent is None else subsequent,
        break_on_hyphens=False,
    )


def format_plan(plan: Plan, *, width: int = 80, unicode: bool = False) -> str:
    """The plan as a text chart, ``width`` columns wide, pure ASCII unless ``unicode``.

    A legend and the work share definition come first; then, per block, one
    bar per node group from the start (left) to the end (right), with markers
    S (start and scale-up), D (drain start), K (EKS's own scale-down, on
    managed rows), R (EC2 reclaim start) and E (end), and a row with N at
    the moment ``plan.now`` when it falls within the block; then the events
    with their exact UTC times and the work shares. The output depends only
    on the plan, the width and the character set.
    """
    chars = _UNICODE if unicode else _ASCII
    managed = any(block.eks_scale_down is not None for block in plan.blocks)
    width = max(width, _MIN_BAR + _LABEL + 12)
    cells = width - (2 + _LABEL + 2) - (2 + 6)
    count = len(plan.blocks)
    source = f" from {plan.source}" if plan.source else ""
    lines = _wrap(
        f"Capacity Block plan, times in UTC: {count} block{'s' if count != 1 else ''}{source}",
        width,
        "",
        "  ",
    )
    lines += _wrap(
        "Legend: S start (the controller scales node groups up), D drain start (the controller "
        "scales them to zero)"
        + (", K EKS's own scale-down of managed node groups" if managed else "")
        + ", R EC2 starts reclaiming instances, E end"
        + (", N now" if plan.now else "")
        + ". Bars: "
        f"'{chars['work']}' nodes can run work, '{chars['drain']}' draining, "
        f"'{chars['reclaim']}' EC2 reclaiming, '{chars['break']}' axis break (the block's last "
        "hours, after it, are drawn to a larger scale).",
        width,
        "",
        "  ",
    )
    lines += _wrap(WORK_SHARE_DEFINITION, width, "", "  ")
    if plan.now is not None:
        lines.append(f"Now: {format_utc(plan.now)}")
    for block_plan in plan.blocks:
        lines.append("")
        lines += _format_block(block_plan, plan.now, width, cells, chars)
    return "\n".join(lines)


def _format_block(
    plan: BlockPlan, now: datetime | None, width: int, cells: int, chars: dict[str, str]
) -> list[str]:
    block = plan.block
    kind = f"UltraServer {block.ultraserver_type}, " if block.is_ultraserver else ""
    where = [block.availability_zone]
    if plan.region:
        where.append(f"region {plan.region}")
    if plan.accounts:
        where.append(f"account{'s' if len(plan.accounts) > 1 else ''} {', '.join(plan.accounts)}")
    lines = _wrap(
        f"{block.capacity_reservation_id}: {kind}{block.instance_count} x {block.instance_type}, "
        + ", ".join(where),
        width,
        "",
        "  ",
    )
    lines += _wrap(
        f"{format_utc(block.start)} .. {format_utc(block.end)} "
        f"({format_duration(block.duration)} paid)",
        width,
        "  ",
        "    ",
    )
    axis = ChartAxis.for_block(plan)
    pad = " " * (2 + _LABEL + 2)
    lines.append(pad + _axis_labels(axis, cells))
    for group in plan.node_groups:
        bar = _bar(plan, group, axis, cells, chars)
        lines.append(f"  {group.kind.value.ljust(_LABEL)}  {bar}  {group.work_share_text.rjust(6)}")
    if now is not None:
        phase = block.phase_at(now).value
        if block.start <= now <= block.end:
            row = [" "] * cells
            row[axis.cell(now, cells)] = "N"
            lines.append(f"  {'now'.ljust(_LABEL)}  {''.join(row).rstrip()}")
        lines.append(f"  Phase now: {phase}")
    lines.append("  Events:")
    events = plan.events
    offsets = max(len(event.offset) for event in events)
    for event in events:
        lead = f"    {format_utc(event.at)}  {event.offset.ljust(offsets)}  {event.marker}  "
        if width - len(lead) >= 30:
            lines += _wrap(event.what, width, lead, " " * len(lead))
        else:
            # Too narrow for a second column: the text goes under the time.
            lines.append(lead.rstrip())
            lines += _wrap(event.what, width, "      ")
    for group in plan.node_groups:
        lines += _wrap(
            f"Work share, {group.kind.value}: {group.work_share_text} "
            f"({format_duration(group.work_time)} of {format_duration(group.paid_time)}, "
            f"scale-down at {format_utc(group.scale_down)})",
            width,
            "  ",
            "    ",
        )
    for warning in (*plan.warnings, *(w for group in plan.node_groups for w in group.warnings)):
        lines += _wrap(f"Warning: {warning}", width, "  ", "    ")
    return lines
