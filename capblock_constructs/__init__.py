"""AWS CDK constructs for Amazon EKS nodes on EC2 Capacity Blocks for ML."""

from ._node_labels import BLOCK_END_LABEL, RESERVATION_LABEL
from .ami import AmiResolution, EksOptimizedAmi
from .capacity_block import (
    EC2_RECLAIM_LEAD,
    EC2_RECLAIM_LEAD_ULTRASERVER,
    EKS_MANAGED_SCALE_DOWN_LEAD,
    SCHEDULED_ACTION_MAX_DELAY,
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
from .managed_node_group import CapacityBlockManagedNodeGroup
from .self_managed_node_group import (
    DEFAULT_SCHEDULE_SAFETY_MARGIN,
    CapacityBlockSelfManagedNodeGroup,
    SchedulePlan,
    plan_schedule,
)
from .taints import TAINT_EFFECTS, NodeTaint, accelerator_taints
from .termination import (
    NTH_CHART_REPOSITORY,
    NTH_CHART_VERSION,
    NTH_MANAGED_TAG,
    NodeTerminationHandlerQueue,
)
from .timeline import (
    WORK_SHARE_DEFINITION,
    BlockPlan,
    NodeGroupKind,
    NodeGroupPlan,
    Plan,
    PlanEvent,
    format_plan,
    format_plan_svg,
    plan,
    plan_block,
)

__all__ = [
    "BLOCK_END_LABEL",
    "DEFAULT_SCHEDULE_SAFETY_MARGIN",
    "EC2_RECLAIM_LEAD",
    "EC2_RECLAIM_LEAD_ULTRASERVER",
    "EKS_MANAGED_SCALE_DOWN_LEAD",
    "NTH_CHART_REPOSITORY",
    "NTH_CHART_VERSION",
    "NTH_MANAGED_TAG",
    "RESERVATION_LABEL",
    "RESERVATION_TAG_KEY",
    "SCHEDULED_ACTION_MAX_DELAY",
    "TAINT_EFFECTS",
    "WORK_SHARE_DEFINITION",
    "AmiResolution",
    "BlockPhase",
    "BlockPlan",
    "CapacityBlock",
    "CapacityBlockError",
    "CapacityBlockLaunchTemplate",
    "CapacityBlockManagedNodeGroup",
    "CapacityBlockSelfManagedNodeGroup",
    "EfaSecurityGroup",
    "EksOptimizedAmi",
    "InstanceTypeInfo",
    "NetworkInterface",
    "NodeGroupKind",
    "NodeGroupPlan",
    "NodeTaint",
    "NodeTerminationHandlerQueue",
    "Plan",
    "PlanEvent",
    "RootVolume",
    "SchedulePlan",
    "accelerator_taints",
    "efa_network_interfaces",
    "eks_ami_type",
    "format_plan",
    "format_plan_svg",
    "instance_type_info",
    "known_instance_types",
    "plan",
    "plan_block",
    "plan_schedule",
]
