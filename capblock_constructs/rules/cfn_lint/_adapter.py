"""The cfn-lint side of the Capacity Block rules: one cfn-lint rule class per rule.

Private: cfn-lint instantiates every class bound in the package module whose bases
include ``CloudFormationLintRule``, so the shared base class lives here, out of its sight.
"""

from __future__ import annotations

import os
import re
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

from cfnlint.rules import CloudFormationLintRule, RuleMatch  # type: ignore[import-untyped]

from ... import _time
from ..._context_cache import context_file
from ...capacity_block import CapacityBlock
from ...errors import CapacityBlockError
from .. import Finding, Rule, Severity, check_template
from .._context import from_context_file

CONTEXT_ENV = "CAPBLOCK_CONTEXT"
"""Environment variable naming the cdk.context.json to read; else ./cdk.context.json."""

CONTEXT_RULE_ID = "E9000"
"""The cfn-lint rule that reports a context file the rules cannot use."""

_RULE_ID = re.compile(r"^CB([0-9]{3})$")
_SEVERITY_LETTER = {Severity.ERROR: "E", Severity.WARNING: "W"}


def cfn_lint_id(rule: Rule) -> str:
    """The cfn-lint ID of a rule: ``E9`` or ``W9`` (by severity) and the CB number.

    CB101 (an error) becomes E9101, CB205 (a warning) W9205. cfn-lint reads the
    severity from the first letter and reserves 9xxx for users' rules, where none
    of its own rules live.
    """
    match = _RULE_ID.match(rule.id)
    if match is None:
        raise ValueError(f"rule ID {rule.id!r} is not 'CB' and three digits")
    return f"{_SEVERITY_LETTER[rule.severity]}9{match.group(1)}"


@dataclass(frozen=True)
class LintContext:
    """What the rules take from the CDK context file."""

    blocks: Mapping[str, CapacityBlock]
    now: datetime | None = None
    """The pinned ``capblock-constructs:now``; None to use the clock."""
    problem: str | None = None
    """Why the context file could not be used; the rules then run without it."""


_context_cache: dict[tuple[Path, int], LintContext] = {}


def context_path() -> Path:
    """``$CAPBLOCK_CONTEXT`` when set, else cdk.context.json in the working directory."""
    named = os.environ.get(CONTEXT_ENV)
    return Path(named) if named else context_file()


def load_context() -> LintContext:
    """Blocks and the pinned time from the context file; read once per file version.

    Without a file the rules have no blocks. A file that cannot be used is
    reported once (rule E9000); the rules then run as without one.
    """
    path = context_path()
    try:
        version = path.stat().st_mtime_ns
    except FileNotFoundError:
        if CONTEXT_ENV in os.environ:
            return LintContext(
                {}, problem=f"{CONTEXT_ENV} names {path}, which does not exist; fix or unset it."
            )
        return LintContext({})
    except OSError as error:
        return LintContext({}, problem=f"{path} cannot be read: {error.strerror}.")
    cached = _context_cache.get((path, version))
    if cached is not None:
        return cached
    try:
        loaded = LintContext(*from_context_file(path))
    except CapacityBlockError as error:
        loaded = LintContext({}, problem=str(error))
    _context_cache.clear()
    _context_cache[(path, version)] = loaded
    return loaded


# One template's findings, computed once for all the rule classes that cfn-lint runs on it.
_last: tuple[weakref.ref[Any], list[Finding]] | None = None


def findings_for(cfn: Any) -> list[Finding]:
    """Every rule's findings on cfn-lint's ``Template``; the rules run once per template."""
    global _last
    if _last is not None and _last[0]() is cfn:
        return _last[1]
    context = load_context()
    findings = check_template(
        cfn.template,
        template_path=str(cfn.filename or "-"),
        blocks=context.blocks,
        now=context.now or _time.utc_now(),
    )
    _last = (weakref.ref(cfn), findings)
    return findings


class CapacityBlockLintRule(CloudFormationLintRule):  # type: ignore[misc]
    """Reports the findings of one Capacity Block rule; subclassed once per rule."""

    capblock_rule: ClassVar[Rule]

    def match(self, cfn: Any) -> list[Any]:
        """The findings of this class's rule, at the offending resource's property."""
        return [
            RuleMatch(
                ["Resources", finding.resource, *finding.path],
                f"[{finding.rule}] {finding.message}",
            )
            for finding in findings_for(cfn)
            if finding.rule == self.capblock_rule.id
        ]


def rule_class(rule: Rule) -> type[CapacityBlockLintRule]:
    """The cfn-lint rule class for one Capacity Block rule."""
    return type(
        f"CapacityBlock{rule.id}",
        (CapacityBlockLintRule,),
        {
            "__doc__": f"{rule.id}: {rule.title}",
            "__module__": __package__,
            "id": cfn_lint_id(rule),
            "shortdesc": f"{rule.title} ({rule.id})",
            "description": f"capblock-constructs rule {rule.id}: {rule.title}",
            "source_url": rule.source,
            "tags": ["capacity-blocks", rule.id],
            "capblock_rule": rule,
        },
    )


class CapacityBlockContextRule(CloudFormationLintRule):  # type: ignore[misc]
    """E9000: the CDK context file that feeds the Capacity Block rules cannot be used."""

    id = CONTEXT_RULE_ID
    shortdesc = "Capacity Block rules: the CDK context file cannot be used"
    description = (
        "The Capacity Block rules read cached reservations and capblock-constructs:now from "
        f"${CONTEXT_ENV} or ./cdk.context.json; this file is unreadable, so rules that need "
        "them ran without them"
    )
    source_url = "https://docs.aws.amazon.com/cdk/v2/guide/context.html"
    tags: ClassVar[list[str]] = ["capacity-blocks"]

    def match(self, cfn: Any) -> list[Any]:
        """One match on the template's first line when the context file is unusable."""
        problem = load_context().problem
        return [] if problem is None else [RuleMatch([], problem)]
