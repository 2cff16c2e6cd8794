"""The Capacity Block rules as cfn-lint custom rules.

Load them with cfn-lint's own option for extra rules, giving this module's name
after the templates (``--append-rules`` takes every name that follows it)::

    cfn-lint cdk.out/*.template.json --append-rules capblock_constructs.rules.cfn_lint

or, for editors that run cfn-lint as you type, in ``.cfnlintrc`` in the folder cfn-lint
runs from (or ``~/.cfnlintrc``)::

    append_rules:
      - capblock_constructs.rules.cfn_lint

(the VS Code extension runs cfn-lint in the workspace folder; its ``cfnLint.appendRules``
setting does the same). cfn-lint imports the module, so capblock-constructs must be installed in the
environment cfn-lint runs from. Each rule ``CBnnn`` is the cfn-lint rule ``E9nnn``
(errors) or ``W9nnn`` (warnings), in the 9xxx range cfn-lint reserves for users'
rules; the message starts with the CB ID. ``--ignore-checks W9305`` and a resource's
``Metadata: cfn-lint: config: ignore_checks`` work as for any cfn-lint rule.

Rules that compare with a reservation or with the time read the CDK context file:
``$CAPBLOCK_CONTEXT`` when set, else ``cdk.context.json`` in the working directory
(the cached ``capblock-constructs:capacity-block:...`` entries, and
``capblock-constructs:now``, else the clock). Without the file those rules have
no reservation to compare with; a file that cannot be used is reported as E9000.

This package imports cfn-lint; :mod:`capblock_constructs.rules` does not.
"""

from __future__ import annotations

from .. import RULES
from ._adapter import CONTEXT_ENV, CapacityBlockContextRule, cfn_lint_id, rule_class

__all__ = ["CONTEXT_ENV", "RULE_IDS", "CapacityBlockContextRule", "cfn_lint_id"]

# cfn-lint instantiates every rule class bound in this module: the context rule
# (imported above) and one class per Capacity Block rule.
globals().update({f"CapacityBlock{rule.id}": rule_class(rule) for rule in RULES})

RULE_IDS: dict[str, str] = {rule.id: cfn_lint_id(rule) for rule in RULES}
"""CB rule ID -> cfn-lint rule ID, for example ``{"CB101": "E9101"}``."""
