"""Findings as text (one line each), JSON (one array) or SARIF 2.1.0 (for code scanning)."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path, PurePath
from typing import Any

from .._version import package_version
from .finding import Finding, Rule, Severity

__all__ = ["format_json", "format_sarif", "format_text"]

SARIF_VERSION = "2.1.0"
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
"""Where SARIF consumers (GitHub code scanning among them) look the 2.1.0 schema up."""
TOOL_NAME = "capblock check"

_LEVELS = {Severity.ERROR: "error", Severity.WARNING: "warning"}


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def format_text(findings: Sequence[Finding]) -> str:
    """One line per finding, ``template: severity rule message``, then a count line.

    The count line reads ``no findings`` when there are none.
    """
    lines = [
        f"{finding.template}: {finding.severity.value} {finding.rule} {finding.message}"
        for finding in findings
    ]
    errors = sum(finding.severity is Severity.ERROR for finding in findings)
    warnings = len(findings) - errors
    if findings:
        lines.append(f"{_plural(errors, 'error')}, {_plural(warnings, 'warning')}")
    else:
        lines.append("no findings")
    return "\n".join(lines)


def format_json(findings: Sequence[Finding]) -> str:
    """One JSON array of :meth:`Finding.to_dict` objects (keys rule, severity, template,
    resource, message, path), in the order given."""
    return json.dumps([finding.to_dict() for finding in findings], indent=2)


def _artifact_uri(template: str) -> str:
    """A relative path as a URI reference with forward slashes; an absolute one as file://."""
    path = PurePath(template)
    if path.is_absolute():
        return Path(template).as_uri()
    return path.as_posix()


class _Lines:
    """Best-effort line numbers of resources and properties, from the template's text.

    SARIF consumers such as GitHub code scanning place a result on a line; the
    parsed template no longer knows lines, so the key is searched for in the
    file. Line 1 when the file cannot be read or the key is not found.
    """

    def __init__(self) -> None:
        self._texts: dict[str, list[str] | None] = {}

    def _lines(self, template: str) -> list[str] | None:
        if template not in self._texts:
            try:
                self._texts[template] = Path(template).read_text(encoding="utf-8").splitlines()
            except (OSError, UnicodeDecodeError):
                self._texts[template] = None
        return self._texts[template]

    @staticmethod
    def _key(name: str) -> re.Pattern[str]:
        # A mapping key in JSON ("Name":) or YAML (Name:, "Name":, 'Name':, - Name:).
        quoted = re.escape(name)
        return re.compile(rf"""(?:^|[\s{{,\-])(?:"{quoted}"|'{quoted}'|{quoted})\s*:""")

    def find(self, finding: Finding) -> int:
        lines = self._lines(finding.template)
        if not lines:
            return 1
        found = 0
        for name in ("Resources", finding.resource, *finding.path):
            if not isinstance(name, str):
                continue
            pattern = self._key(name)
            for number in range(found, len(lines)):
                if pattern.search(lines[number]):
                    found = number
                    break
            else:
                break
        return found + 1


def format_sarif(findings: Sequence[Finding], rules: Sequence[Rule]) -> str:
    """A SARIF 2.1.0 log with one run of ``capblock check``.

    ``rules`` become the tool's rule descriptors (with their source as
    ``helpUri``); rules that findings name but ``rules`` lacks are added with
    their ID only. Each result points at the template (a relative path stays
    relative, for GitHub code scanning) and, best effort, the line of the
    resource or property, and names the resource as a logical location.
    """
    descriptors: list[dict[str, Any]] = []
    index: dict[str, int] = {}
    for item in rules:
        index[item.id] = len(descriptors)
        descriptors.append(
            {
                "id": item.id,
                "shortDescription": {"text": item.title},
                "fullDescription": {"text": f"{item.title}. AWS source: {item.source}"},
                "helpUri": item.source,
                "help": {"text": f"{item.title}. See {item.source}"},
                "defaultConfiguration": {"level": _LEVELS[item.severity]},
                "properties": {"resourceTypes": list(item.resource_types)},
            }
        )
    for finding in findings:
        if finding.rule not in index:
            index[finding.rule] = len(descriptors)
            descriptors.append({"id": finding.rule})
    lines = _Lines()
    results = []
    for finding in findings:
        qualified = "/".join(["Resources", finding.resource, *map(str, finding.path)])
        results.append(
            {
                "ruleId": finding.rule,
                "ruleIndex": index[finding.rule],
                "level": _LEVELS[finding.severity],
                "message": {"text": finding.message},
                "locations": [
                    {
                        "physicalLocation": {
                            "artifactLocation": {"uri": _artifact_uri(finding.template)},
                            "region": {"startLine": lines.find(finding)},
                        },
                        "logicalLocations": [
                            {
                                "name": finding.resource,
                                "fullyQualifiedName": qualified,
                                "kind": "resource",
                            }
                        ],
                    }
                ],
            }
        )
    log = {
        "$schema": SARIF_SCHEMA,
        "version": SARIF_VERSION,
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": TOOL_NAME,
                        "version": package_version(),
                        "rules": descriptors,
                    }
                },
                "results": results,
            }
        ],
    }
    return json.dumps(log, indent=2)
