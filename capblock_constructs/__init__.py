"""AWS CDK constructs for Amazon EKS nodes on EC2 Capacity Blocks for ML.

Names are loaded on first use: each construct module imports its AWS CDK service
modules through jsii, which is slow, so `from capblock_constructs import CapacityBlock`
(or the `capblock` command) does not pay for node groups it does not use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._node_labels import RESERVATION_LABEL
    from .ami import AmiResolution, EksOptimizedAmi
    from .capacity_block import (
        EC2_RECLAIM_LEAD,
        EC2_RECLAIM_LEAD_ULTRASERVER,
        EKS_MANAGED_SCALE_DOWN_LEAD,
        BlockPhase,
        CapacityBlock,
    )
    from .controller import CapacityBlockController
    from .device_plugins import (
        DevicePluginChart,
        DevicePlugins,
        device_plugins_for,
        install_device_plugins,
    )
    from .efa import MIN_VPC_CNI_VERSION_FOR_EFA_ONLY, EfaSecurityGroup, efa_network_interfaces
    from .errors import CapacityBlockError
    from .instance_types import (
        InstanceTypeInfo,
        eks_ami_type,
        instance_type_info,
        known_instance_types,
    )
    from .launch_template import (
        RESERVATION_TAG_KEY,
        CapacityBlockLaunchTemplate,
        NetworkInterface,
        RootVolume,
    )
    from .managed_node_group import CapacityBlockManagedNodeGroup, NodeRepair, NodeRepairOverride
    from .policy_validation import CapacityBlockRulesPlugin
    from .self_managed_node_group import CapacityBlockSelfManagedNodeGroup
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
        plan,
        plan_block,
    )
    from .timeline_svg import format_plan_svg
    from .timeline_text import format_plan

# Where each public name lives.
_EXPORTS = {
    "AmiResolution": ".ami",
    "BlockPhase": ".capacity_block",
    "BlockPlan": ".timeline",
    "CapacityBlock": ".capacity_block",
    "CapacityBlockController": ".controller",
    "CapacityBlockError": ".errors",
    "CapacityBlockLaunchTemplate": ".launch_template",
    "CapacityBlockManagedNodeGroup": ".managed_node_group",
    "CapacityBlockRulesPlugin": ".policy_validation",
    "CapacityBlockSelfManagedNodeGroup": ".self_managed_node_group",
    "DevicePluginChart": ".device_plugins",
    "DevicePlugins": ".device_plugins",
    "EC2_RECLAIM_LEAD": ".capacity_block",
    "EC2_RECLAIM_LEAD_ULTRASERVER": ".capacity_block",
    "EKS_MANAGED_SCALE_DOWN_LEAD": ".capacity_block",
    "EfaSecurityGroup": ".efa",
    "EksOptimizedAmi": ".ami",
    "InstanceTypeInfo": ".instance_types",
    "MIN_VPC_CNI_VERSION_FOR_EFA_ONLY": ".efa",
    "NTH_CHART_REPOSITORY": ".termination",
    "NTH_CHART_VERSION": ".termination",
    "NTH_MANAGED_TAG": ".termination",
    "NetworkInterface": ".launch_template",
    "NodeGroupKind": ".timeline",
    "NodeGroupPlan": ".timeline",
    "NodeRepair": ".managed_node_group",
    "NodeRepairOverride": ".managed_node_group",
    "NodeTaint": ".taints",
    "NodeTerminationHandlerQueue": ".termination",
    "Plan": ".timeline",
    "PlanEvent": ".timeline",
    "RESERVATION_LABEL": "._node_labels",
    "RESERVATION_TAG_KEY": ".launch_template",
    "RootVolume": ".launch_template",
    "TAINT_EFFECTS": ".taints",
    "WORK_SHARE_DEFINITION": ".timeline",
    "accelerator_taints": ".taints",
    "device_plugins_for": ".device_plugins",
    "efa_network_interfaces": ".efa",
    "eks_ami_type": ".instance_types",
    "format_plan": ".timeline_text",
    "format_plan_svg": ".timeline_svg",
    "install_device_plugins": ".device_plugins",
    "instance_type_info": ".instance_types",
    "known_instance_types": ".instance_types",
    "plan": ".timeline",
    "plan_block": ".timeline",
}

__all__ = [
    "EC2_RECLAIM_LEAD",
    "EC2_RECLAIM_LEAD_ULTRASERVER",
    "EKS_MANAGED_SCALE_DOWN_LEAD",
    "MIN_VPC_CNI_VERSION_FOR_EFA_ONLY",
    "NTH_CHART_REPOSITORY",
    "NTH_CHART_VERSION",
    "NTH_MANAGED_TAG",
    "RESERVATION_LABEL",
    "RESERVATION_TAG_KEY",
    "TAINT_EFFECTS",
    "WORK_SHARE_DEFINITION",
    "AmiResolution",
    "BlockPhase",
    "BlockPlan",
    "CapacityBlock",
    "CapacityBlockController",
    "CapacityBlockError",
    "CapacityBlockLaunchTemplate",
    "CapacityBlockManagedNodeGroup",
    "CapacityBlockRulesPlugin",
    "CapacityBlockSelfManagedNodeGroup",
    "DevicePluginChart",
    "DevicePlugins",
    "EfaSecurityGroup",
    "EksOptimizedAmi",
    "InstanceTypeInfo",
    "NetworkInterface",
    "NodeGroupKind",
    "NodeGroupPlan",
    "NodeRepair",
    "NodeRepairOverride",
    "NodeTaint",
    "NodeTerminationHandlerQueue",
    "Plan",
    "PlanEvent",
    "RootVolume",
    "accelerator_taints",
    "device_plugins_for",
    "efa_network_interfaces",
    "eks_ami_type",
    "format_plan",
    "format_plan_svg",
    "install_device_plugins",
    "instance_type_info",
    "known_instance_types",
    "plan",
    "plan_block",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
