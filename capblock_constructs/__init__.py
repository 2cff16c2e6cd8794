"""AWS CDK constructs for Amazon EKS nodes on EC2 Capacity Blocks for ML."""

from .capacity_block import (
    EC2_RECLAIM_LEAD,
    EC2_RECLAIM_LEAD_ULTRASERVER,
    EKS_MANAGED_SCALE_DOWN_LEAD,
    BlockPhase,
    CapacityBlock,
)
from .errors import CapacityBlockError
from .launch_template import (
    RESERVATION_TAG_KEY,
    CapacityBlockLaunchTemplate,
    NetworkInterface,
    RootVolume,
)

__all__ = [
    "EC2_RECLAIM_LEAD",
    "EC2_RECLAIM_LEAD_ULTRASERVER",
    "EKS_MANAGED_SCALE_DOWN_LEAD",
    "RESERVATION_TAG_KEY",
    "BlockPhase",
    "CapacityBlock",
    "CapacityBlockError",
    "CapacityBlockLaunchTemplate",
    "NetworkInterface",
    "RootVolume",
]
