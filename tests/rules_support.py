"""The rules' test data: the cases in tests/data/rules/cases and their cdk.context.json."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

RULES_DATA = Path(__file__).parent / "data" / "rules"
CASES = RULES_DATA / "cases"
"""One failing and one passing template per rule, ``<rule>-fail.yaml`` and ``<rule>-pass.yaml``."""
CONTEXT_FILE = RULES_DATA / "cdk.context.json"
"""The Capacity Blocks and the pinned "now" the cases are written for."""
CONTEXT: dict[str, Any] = json.loads(CONTEXT_FILE.read_text())
