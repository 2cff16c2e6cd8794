"""The smallest useful pattern: a reservation looked up at synth time, and its launch template."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Stack
from constructs import Construct

from capblock_constructs import CapacityBlock, CapacityBlockLaunchTemplate


class LaunchTemplateExampleStack(Stack):
    """A Capacity Block launch template, ready for any node group or ASG."""

    def __init__(
        self, scope: Construct, id: str, *, capacity_reservation_id: str, **kwargs: Any
    ) -> None:
        super().__init__(scope, id, **kwargs)
        block = CapacityBlock.from_lookup(self, capacity_reservation_id)
        template = CapacityBlockLaunchTemplate(self, "LaunchTemplate", capacity_block=block)
        CfnOutput(self, "LaunchTemplateId", value=template.launch_template_id)
        CfnOutput(self, "LaunchTemplateVersion", value=template.version_number)
        CfnOutput(self, "AvailabilityZone", value=block.availability_zone)
