#!/usr/bin/env python3
"""The example app: `make synth` (or `cdk synth`) turns it into cdk.out/."""

from aws_cdk import App, Validations

from capblock_constructs.policy_validation import CapacityBlockRulesPlugin
from examples.environment import EXAMPLE_ENV, EXAMPLE_RESERVATION_ID
from examples.launch_template import LaunchTemplateExampleStack
from examples.managed_node_group import ManagedNodeGroupExampleStack
from examples.self_managed_node_group import SelfManagedNodeGroupExampleStack


def build_app(app: App | None = None) -> App:
    """Add every example stack to ``app`` (a new App by default) and return it.

    Stack names are part of the example's contract: renaming one makes
    'cdk deploy' create a new stack beside the old one. The Capacity Block
    rules check every template at synth: an error fails the synth, a warning
    is printed in the validation report.
    """
    app = app or App()
    Validations.of(app).add_plugins(CapacityBlockRulesPlugin())
    LaunchTemplateExampleStack(
        app,
        "CapblockLaunchTemplate",
        env=EXAMPLE_ENV,
        capacity_reservation_id=EXAMPLE_RESERVATION_ID,
    )
    ManagedNodeGroupExampleStack(
        app,
        "CapblockManagedNodeGroup",
        env=EXAMPLE_ENV,
        capacity_reservation_id=EXAMPLE_RESERVATION_ID,
    )
    SelfManagedNodeGroupExampleStack(
        app,
        "CapblockSelfManagedNodeGroup",
        env=EXAMPLE_ENV,
        capacity_reservation_id=EXAMPLE_RESERVATION_ID,
    )
    return app


if __name__ == "__main__":
    build_app().synth()
