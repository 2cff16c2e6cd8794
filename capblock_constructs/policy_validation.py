"""The Capacity Block rules as a CDK policy-validation plugin, reported at ``cdk synth``.

The plugin is a thin adapter: after synthesis the CDK hands it the paths of the
templates it wrote, and it runs :func:`capblock_constructs.rules.check_template`
over each one, the same rules as ``capblock check`` and the cfn-lint rules::

    from aws_cdk import App, Validations
    from capblock_constructs.policy_validation import CapacityBlockRulesPlugin

    app = App()
    Validations.of(app).add_plugins(CapacityBlockRulesPlugin())
    # or app = App(policy_validation_beta1=[CapacityBlockRulesPlugin()]), which
    # aws-cdk-lib 2.275 still takes but marks deprecated, with a warning at each synth

Error findings fail the synth (``cdk synth`` prints the CDK's validation report and
exits 1; ``app.synth()`` raises); warnings are printed in the report and the synth
goes on. Acknowledge a finding on the construct it concerns with
``Validations.of(construct).acknowledge(Acknowledgment(id="capblock-constructs::CB101",
reason="..."))``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import jsii
from aws_cdk import (
    IPolicyValidationContext,
    IPolicyValidationContextBeta1,
    IPolicyValidationPlugin,
    IPolicyValidationPluginBeta1,
    PolicyValidationPluginReport,
    PolicyViolatingResource,
    PolicyViolation,
)
from constructs import IConstruct

from . import _time
from ._version import package_version
from .capacity_block import CapacityBlock, require_capacity_block
from .errors import CapacityBlockError
from .rules import (
    RULES,
    Finding,
    Severity,
    blocks_from_context,
    check_template,
    rule,
)

__all__ = ["PLUGIN_NAME", "CapacityBlockRulesPlugin", "construct_blocks"]

PLUGIN_NAME = "capblock-constructs"
"""The plugin's name in the CDK's validation report; acknowledgements use
``capblock-constructs::<rule ID>``."""


@jsii.implements(IPolicyValidationPlugin, IPolicyValidationPluginBeta1)
class CapacityBlockRulesPlugin:
    """Runs the Capacity Block rules over every template of the app after synthesis.

    Register it with ``Validations.of(app).add_plugins(CapacityBlockRulesPlugin())``
    or ``App(policy_validation_beta1=[CapacityBlockRulesPlugin()])``.

    Args:
        blocks: Capacity Blocks the templates are checked against, by reservation ID.
            Defaults to the blocks the app's capblock-constructs constructs were built
            from, and the blocks cached in the App's context (which ``cdk synth`` fills
            from ``cdk.context.json``); a reservation ID that two different blocks in
            the app claim is left out, as rules cannot know which one is meant. Blocks
            given here take precedence over both.
        now: The time the time-dependent rules compare with (timezone-aware). Defaults
            to the App's ``capblock-constructs:now`` context key when it is set, else
            the time of synthesis, as the constructs' own check of a block's end does.
        fail_on_warnings: Whether warnings fail the synth as errors do. Defaults to
            reporting warnings without failing the synth.
    """

    def __init__(
        self,
        *,
        blocks: Sequence[CapacityBlock] = (),
        now: datetime | None = None,
        fail_on_warnings: bool = False,
    ) -> None:
        for index, block in enumerate(blocks):
            require_capacity_block(block, path=f"CapacityBlockRulesPlugin blocks[{index}]")
        if now is not None and (now.tzinfo is None or now.utcoffset() is None):
            raise CapacityBlockError(
                f"now {now.isoformat()} is a naive datetime; pass tzinfo=timezone.utc.",
                subject="CapacityBlockRulesPlugin",
            )
        self._blocks = {block.capacity_reservation_id: block for block in blocks}
        self._now = now
        self._fail_on_warnings = fail_on_warnings

    @property
    def name(self) -> str:
        """``capblock-constructs``: the name in the report and in acknowledgement IDs."""
        return PLUGIN_NAME

    @property
    def version(self) -> str:
        """The installed capblock-constructs version."""
        return package_version()

    @property
    def rule_ids(self) -> list[str]:
        """The IDs of every rule the plugin runs (``CB101`` and so on)."""
        return [item.id for item in RULES]

    def validate(self, context: IPolicyValidationContext | IPolicyValidationContextBeta1) -> Any:
        """Check every template the CDK wrote and report the findings as violations.

        Returns a ``PolicyValidationPluginReport``; it fails (``success`` false) when
        a finding is an error, or any finding with ``fail_on_warnings``. Typed as
        ``Any`` because the stable and the Beta1 interface each name their own report
        struct, which the CDK reads alike.
        """
        findings = self._check(
            [Path(path) for path in context.template_paths], app=context.app_construct
        )
        failing = {Severity.ERROR, Severity.WARNING} if self._fail_on_warnings else {Severity.ERROR}
        return PolicyValidationPluginReport(
            success=not any(finding.severity in failing for finding in findings),
            violations=[
                _violation(finding, fails=finding.severity in failing) for finding in findings
            ],
            plugin_version=self.version,
        )

    def _check(self, template_paths: Sequence[Path], *, app: IConstruct) -> list[Finding]:
        """The findings on these templates, with the blocks and the time of ``app``."""
        app_context = dict(app.node.get_all_context())
        blocks = {**blocks_from_context(app_context), **construct_blocks(app), **self._blocks}
        now = self._now or _time.now(app)
        findings: list[Finding] = []
        for path in template_paths:
            # The CDK writes JSON; a stack without resources is valid CDK output, with no
            # finding, so the templates are not held to load_template's standalone checks.
            template = json.loads(path.read_text(encoding="utf-8"))
            findings.extend(
                check_template(template, template_path=str(path), blocks=blocks, now=now)
            )
        return findings


def construct_blocks(scope: IConstruct) -> dict[str, CapacityBlock]:
    """Reservation ID -> the block that capblock-constructs constructs under ``scope`` use.

    A reservation ID that two different blocks claim (possible with blocks built by
    hand) is left out: the rules could not know which one a template means.
    """
    found: dict[str, CapacityBlock] = {}
    ambiguous: set[str] = set()
    for construct in scope.node.find_all():
        block = getattr(construct, "capacity_block", None)
        if not isinstance(block, CapacityBlock):
            continue
        known = found.setdefault(block.capacity_reservation_id, block)
        if known != block:
            ambiguous.add(block.capacity_reservation_id)
    return {key: block for key, block in found.items() if key not in ambiguous}


def _violation(finding: Finding, *, fails: bool) -> PolicyViolation:
    source = rule(finding.rule)
    # Once any violation is acknowledged, the CDK recomputes a report's success from the
    # severities left, counting only "error" and "fatal" (synthesis-validation.js); a
    # warning that must fail the synth is therefore reported as an error, with the rule's
    # own severity kept in the metadata.
    return PolicyViolation(
        rule_name=finding.rule,
        description=f"[{finding.rule}] {finding.message}",
        fix=f"See {source.source}",
        rule_metadata={
            "title": source.title,
            "source": source.source,
            "severity": finding.severity.value,
        },
        severity=Severity.ERROR.value if fails else finding.severity.value,
        violating_resources=[
            PolicyViolatingResource(
                resource_logical_id=finding.resource,
                template_path=finding.template,
                locations=["/".join(str(step) for step in finding.path)] if finding.path else [],
            )
        ],
    )
