"""Rules that check CloudFormation templates for Capacity Block mistakes, without jsii.

The rules read templates as plain data (no CDK import), so ``capblock check``,
the cfn-lint rules and the CDK policy-validation plugin all run the same rule
set. Each rule has a stable ID (see :data:`RULES`: CB1xx launch templates,
CB2xx EKS node groups, CB3xx Auto Scaling groups, CB4xx scheduled actions,
CB5xx lifecycle hooks) and cites the AWS document it enforces.

Typical use::

    context = json.loads(Path("cdk.context.json").read_text())
    for path in find_templates([Path("cdk.out")]):
        findings = check_template(
            load_template(path),
            template_path=str(path),
            blocks=blocks_from_context(context),
            now=now_from_context(context),
        )

A rule that cannot decide (a value only known at deployment, a reservation
that is not in the context, no ``now``) stays silent. :class:`TemplateError`
is a :class:`~capblock_constructs.errors.CapacityBlockError`, hence a
``ValueError``. Text, JSON and SARIF rendering live in :mod:`.report`.
"""

from __future__ import annotations

from ._context import blocks_from_context, now_from_context
from ._template import TemplateError, find_templates, load_template
from .check import RULES, check_template, rule
from .finding import Finding, Rule, Severity

__all__ = [
    "RULES",
    "Finding",
    "Rule",
    "Severity",
    "TemplateError",
    "blocks_from_context",
    "check_template",
    "find_templates",
    "load_template",
    "now_from_context",
    "rule",
]
