"""The documentation account and the example reservation committed in cdk.context.json."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aws_cdk import Environment

if TYPE_CHECKING:
    from capblock_constructs import CapacityBlock

EXAMPLE_ACCOUNT = "123456789012"
EXAMPLE_REGION = "us-east-2"
EXAMPLE_RESERVATION_ID = "cr-0a1b2c3d4e5f67890"
"""A fictional p5.48xlarge block in us-east-2a, served from cdk.context.json.

Replace it with your own reservation ID and account to deploy for real.
"""

EXAMPLE_ENV = Environment(account=EXAMPLE_ACCOUNT, region=EXAMPLE_REGION)

# A fictional EKS cluster in the documentation account that the examples' nodes join:
# replace them with yours.
EXAMPLE_CLUSTER_NAME = "ml-training"
EXAMPLE_CLUSTER_SECURITY_GROUP_ID = "sg-0a1b2c3d4e5f67890"

_ROOT = Path(__file__).resolve().parent.parent


def example_context(*, now: str | None = None) -> dict[str, Any]:
    """What the CDK CLI passes the example app: cdk.json's context, then cdk.context.json.

    :param now: Pins ``capblock-constructs:now`` (an ISO 8601 UTC timestamp) when given.
    """
    context: dict[str, Any] = dict(json.loads((_ROOT / "cdk.json").read_text())["context"])
    context.update(json.loads((_ROOT / "cdk.context.json").read_text()))
    if now is not None:
        context["capblock-constructs:now"] = now
    return context


@cache
def example_block() -> CapacityBlock:
    """The example reservation, as the committed cdk.context.json caches it."""
    # Imported here: the benchmark's baseline process loads this module but not the constructs.
    from capblock_constructs.rules import blocks_from_context

    cached = json.loads((_ROOT / "cdk.context.json").read_text())
    return blocks_from_context(cached)[EXAMPLE_RESERVATION_ID]
