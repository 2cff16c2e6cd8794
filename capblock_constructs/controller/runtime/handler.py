"""The Lambda entry point: ``runtime.handler.main``.

Schedules, EC2 Capacity Block events and CloudFormation custom resource requests
all arrive here. The configuration comes from the environment variable
``CAPBLOCK_CONTROLLER_CONFIG``; the clients are made on first use and kept for the
life of the execution environment.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from datetime import datetime, timezone
from functools import lru_cache
from typing import Any

from .aws import Clients
from .config import CONFIG_ENV_VAR, ControllerConfig, parse_config
from .custom_resource import HttpPut, http_put, respond_to_cloudformation
from .events import is_custom_resource_request
from .reconcile import Clock, RunReport, reconcile

__all__ = ["RunFailedError", "handle", "main"]

LOG = logging.getLogger("capblock_constructs.controller")
# Lambda's runtime installs a handler on the root logger at WARNING; the per-group lines are
# INFO and belong in the log.
LOG.setLevel(logging.INFO)

_CLIENTS = Clients()
"""Kept across invocations of a warm execution environment; no client is made at import."""


class RunFailedError(RuntimeError):
    """A run met unexpected errors; raised after every group was handled, so that Lambda's
    Errors metric (and the alarm on it) sees the run.

    :param report: The run's report; its ``errors`` are the message.
    """

    def __init__(self, report: RunReport) -> None:
        self.report = report
        problems = "\n".join(f"  - {error}" for error in report.errors)
        super().__init__(
            f"the controller run at {report.moment.isoformat()} met {len(report.errors)} "
            f"error{'s' if len(report.errors) != 1 else ''} (other groups were still sized):\n"
            f"{problems}"
        )


@lru_cache(maxsize=4)
def _parsed(config_text: str | None) -> ControllerConfig:
    """The configuration, parsed once per text: the environment does not change between the
    invocations of one execution environment, and a ConfigError is not cached (it raises)."""
    return parse_config(config_text)


def utc_now() -> datetime:
    """The clock: the current time in UTC."""
    return datetime.now(timezone.utc)


def main(event: dict[str, Any], context: object) -> dict[str, Any]:
    """Lambda entry point; see :func:`handle`."""
    return handle(
        event,
        config_text=os.environ.get(CONFIG_ENV_VAR),
        clients=_CLIENTS,
        clock=utc_now,
        put=http_put,
    )


def handle(
    event: Mapping[str, Any],
    *,
    config_text: str | None,
    clients: Clients,
    clock: Clock,
    put: HttpPut = http_put,
) -> dict[str, Any]:
    """Serve one invocation with injected configuration, clients, clock and HTTP PUT.

    :returns: The run's report (JSON-serializable), or for a custom resource request the
        response sent to CloudFormation.
    :raises ConfigError: when the configuration is malformed (not for custom resource
        requests, which answer FAILED instead).
    :raises RunFailedError: after a run in which any group met an unexpected error.
    """
    if is_custom_resource_request(event):
        return respond_to_cloudformation(
            event, config_text=config_text, clients=clients, clock=clock, put=put
        )
    config = _parsed(config_text)
    report = reconcile(config, clients=clients, clock=clock, event=event)
    LOG.info(
        json.dumps(
            {
                "run": report.trigger,
                "moment": report.to_dict()["moment"],
                "notifications": len(report.notices),
                "errors": len(report.errors),
                "deferred": len(report.deferred),
            }
        )
    )
    if report.errors:
        raise RunFailedError(report)
    return report.to_dict()
