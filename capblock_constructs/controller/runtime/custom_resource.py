"""The CloudFormation custom resource side: run once at deploy time, always answer.

The stack invokes the controller as a custom resource so that a group deployed in
the middle of a block comes up during the deployment rather than a period later.
CloudFormation waits up to an hour for an answer, so the handler answers on every
path; only a malformed configuration fails the stack, since a redeploy fixes it
while a busy node group or a throttled call is fixed by the next period.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any

from .aws import Clients
from .config import ConfigError, parse_config
from .reconcile import Clock, reconcile

__all__ = ["PHYSICAL_RESOURCE_ID", "HttpPut", "http_put", "respond_to_cloudformation"]

LOG = logging.getLogger("capblock_constructs.controller")

PHYSICAL_RESOURCE_ID = "capacity-block-controller"
"""Constant, so an Update never looks like a replacement to CloudFormation."""
PUT_ATTEMPTS = 3
"""How many times the response is sent before the invocation fails."""
REASON_LIMIT = 2000
"""CloudFormation takes a response body of at most 4096 bytes; the Reason gets half."""

HttpPut = Callable[[str, bytes, Mapping[str, str]], None]
"""Sends a body to a URL with HTTP PUT and the given headers; raises on failure."""


def http_put(url: str, body: bytes, headers: Mapping[str, str]) -> None:
    """PUT ``body`` to a pre-signed S3 URL with urllib.

    :raises ValueError: for a URL that is not HTTPS (a response URL always is).
    :raises OSError: when all three attempts fail (an error status from S3 included).
    """
    if not url.startswith("https://"):
        raise ValueError(f"refusing to send the response to {url[:60]!r}: it is not an HTTPS URL")
    # The function runs without Lambda retries, and an unanswered request holds the stack for
    # an hour: try a few times here.
    for attempt in range(PUT_ATTEMPTS):
        request = urllib.request.Request(url, data=body, method="PUT", headers=dict(headers))
        try:
            with urllib.request.urlopen(request, timeout=15) as answer:
                LOG.info(json.dumps({"cloudformationResponse": answer.status}))
                return
        except OSError:
            if attempt == PUT_ATTEMPTS - 1:
                raise
            LOG.warning("sending the CloudFormation response failed; trying again", exc_info=True)
            time.sleep(2**attempt)


def respond_to_cloudformation(
    event: Mapping[str, Any],
    *,
    config_text: str | None,
    clients: Clients,
    clock: Clock,
    put: HttpPut = http_put,
) -> dict[str, Any]:
    """Handle a custom resource request and send CloudFormation its response.

    Create and Update run one reconcile at the clock (the request carries no time) and
    answer SUCCESS whatever the groups did, saying in Reason what was left for the next
    period; a malformed configuration answers FAILED. Delete answers SUCCESS and touches
    nothing: the groups are being deleted with the stack, or are left as they are.

    :param put: Sends the response. Defaults to :func:`http_put`.
    :returns: The response sent, plus the run's report under ``Report`` when there was a run.
    :raises OSError: only when the response itself could not be sent (after
        :func:`http_put`'s own attempts), so that the invocation shows as failed.
    """
    request_type = str(event.get("RequestType"))
    status = "SUCCESS"
    reason = ""
    report: dict[str, Any] | None = None
    try:
        if request_type == "Delete":
            reason = "Delete: the controller leaves every node group as it is."
        elif request_type in ("Create", "Update"):
            config = parse_config(config_text)
            run = reconcile(config, clients=clients, clock=clock, event=None)
            report = run.to_dict()
            reason = run.summary()
        else:
            reason = f"RequestType {request_type!r} is not Create, Update or Delete; ignored."
    except ConfigError as exc:
        status = "FAILED"
        reason = str(exc)
    except Exception as exc:  # a deploy must not fail on a run-time problem
        LOG.exception("the deploy-time run failed")
        reason = (
            f"The deploy-time run stopped early ({type(exc).__name__}: {exc}); the periodic "
            "runs size the groups."
        )
    finally:
        response: dict[str, Any] = {
            "Status": status,
            "Reason": _truncate(reason or "done", REASON_LIMIT),
            "PhysicalResourceId": PHYSICAL_RESOURCE_ID,
            "StackId": event.get("StackId"),
            "RequestId": event.get("RequestId"),
            "LogicalResourceId": event.get("LogicalResourceId"),
            "NoEcho": False,
            "Data": {},
        }
        body = json.dumps(response).encode()
        # A pre-signed S3 URL is signed without a content type: sending one breaks the
        # signature, and urllib would add one unless an empty one is given.
        put(
            str(event.get("ResponseURL")),
            body,
            {"Content-Type": "", "Content-Length": str(len(body))},
        )
    LOG.info(json.dumps({"cloudformation": status, "requestType": request_type}))
    return {**response, "Report": report} if report is not None else response


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
