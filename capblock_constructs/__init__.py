"""AWS CDK constructs for Amazon EKS nodes on EC2 Capacity Blocks for ML."""

from .capacity_block import (
    EC2_RECLAIM_LEAD,
    EC2_RECLAIM_LEAD_ULTRASERVER,
    EKS_MANAGED_SCALE_DOWN_LEAD,
    BlockPhase,
    CapacityBlock,
)
from .efa import EfaSecurityGroup, efa_network_interfaces
from .errors import CapacityBlockError
from .instance_types import InstanceTypeInfo, eks_ami_type, instance_type_info, known_instance_types
from .launch_template import (
    RESERVATION_TAG_KEY,
    CapacityBlockLaunchTemplate,
    NetworkInterface,
    RootVolume,
)
from .managed_node_group import (
    BLOCK_END_LABEL,
    RESERVATION_LABEL,
    CapacityBlockManagedNodeGroup,
    NodeTaint,
)

__all__ = [
    "BLOCK_END_LABEL",
    "EC2_RECLAIM_LEAD",
    "EC2_RECLAIM_LEAD_ULTRASERVER",
    "EKS_MANAGED_SCALE_DOWN_LEAD",
    "RESERVATION_LABEL",
    "RESERVATION_TAG_KEY",
    "BlockPhase",
    "CapacityBlock",
    "CapacityBlockError",
    "CapacityBlockLaunchTemplate",
    "CapacityBlockManagedNodeGroup",
    "EfaSecurityGroup",
    "InstanceTypeInfo",
    "NetworkInterface",
    "NodeTaint",
    "RootVolume",
    "efa_network_interfaces",
    "eks_ami_type",
    "instance_type_info",
    "known_instance_types",
]
