"""The rule table and :func:`check_template`, which runs every rule over one template."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ..capacity_block import CapacityBlock
from . import (
    auto_scaling_groups,
    launch_templates,
    lifecycle_hooks,
    node_groups,
    scheduled_actions,
)
from ._scope import Scope
from .finding import Finding, Rule

__all__ = ["RULES", "check_template", "rule"]

_MODULES = (launch_templates, node_groups, auto_scaling_groups, scheduled_actions, lifecycle_hooks)

RULES: tuple[Rule, ...] = tuple(
    sorted((item for module in _MODULES for item in module.RULES), key=lambda item: item.id)
)
"""Every rule, ordered by ID."""

_BY_ID = {item.id: item for item in RULES}


def rule(id: str) -> Rule:
    """The rule with this ID, for example ``rule("CB101")``.

    :raises KeyError: for an ID that is not in :data:`RULES`.
    """
    try:
        return _BY_ID[id]
    except KeyError:
        raise KeyError(f"no rule {id!r}; the rules are {', '.join(_BY_ID)}") from None


def _order(finding: Finding) -> tuple[str, str, str, tuple[tuple[int, str], ...]]:
    # Path items are str or int; compared as (kind, text) so that mixed paths sort.
    path = tuple(
        (0, f"{item:09d}") if isinstance(item, int) else (1, item) for item in finding.path
    )
    return (finding.template, finding.resource, finding.rule, path)


def check_template(
    template: Mapping[str, Any],
    *,
    template_path: str,
    blocks: Mapping[str, CapacityBlock] | None = None,
    now: datetime | None = None,
) -> list[Finding]:
    """Run every rule over one parsed template; pure and deterministic.

    :param template: The template as plain data (see :func:`load_template`).
    :param template_path: How findings name the template, usually its path.
    :param blocks: Reservation ID -> cached Capacity Block (see
        :func:`blocks_from_context`). Defaults to none: the rules that compare
        the template with a block stay silent.
    :param now: The moment to compare start times with, timezone-aware.
        Defaults to none: the rules that compare with now stay silent.
    :returns: The findings sorted by template, resource, rule and path.
    """
    if now is not None and now.tzinfo is None:
        raise ValueError(f"check_template() got the naive datetime {now.isoformat()} as now")
    scope = Scope.build(template, template_path=template_path, blocks=blocks or {}, now=now)
    findings = [finding for module in _MODULES for finding in module.check(scope)]
    return sorted(set(findings), key=_order)
