"""The AWS documents the rules enforce, one constant each, so every rule cites the same page."""

from __future__ import annotations

EKS_NODE_GROUPS = "https://docs.aws.amazon.com/eks/latest/userguide/ml-node-groups.html"
"""EKS user guide, "Manage compute for AI/ML workloads on Amazon EKS with node groups": the launch
template must carry the capacity-block market type, the reservation target and the instance type;
subnets in the block's zone only."""

EKS_CAPACITY_BLOCKS_MNG = (
    "https://docs.aws.amazon.com/eks/latest/userguide/capacity-blocks-mng.html"
)
"""EKS user guide, "Create a managed node group with Capacity Blocks for ML": custom launch
template required; a request without the required values is rejected."""

EKS_LAUNCH_TEMPLATES = "https://docs.aws.amazon.com/eks/latest/userguide/launch-templates.html"
"""EKS user guide, launch templates: no node-group instance types when the launch template has
one."""

EKS_CREATE_NODEGROUP = (
    "https://docs.aws.amazon.com/eks/latest/APIReference/API_CreateNodegroup.html"
)
"""EKS API reference, CreateNodegroup: label keys and values, 1 to 63 characters."""

EKS_TAINT = "https://docs.aws.amazon.com/eks/latest/APIReference/API_Taint.html"
"""EKS API reference, Taint: key 1-63 and value 0-63 characters, at most 50 taints."""

EC2_CAPACITY_RESERVATION_SPECIFICATION = (
    "https://docs.aws.amazon.com/AWSEC2/latest/APIReference/"
    "API_CapacityReservationSpecification.html"
)
"""EC2 API reference, CapacityReservationSpecification: a preference and a target together only
when the preference is capacity-reservations-only. (The launch template request shape,
API_LaunchTemplateCapacityReservationSpecificationRequest, still says "only one option at a
time"; see CB101.)"""

EC2_CAPACITY_BLOCKS_LAUNCH = (
    "https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/capacity-blocks-launch.html"
)
"""EC2 user guide, "Launch instances using Capacity Blocks": the reservation must be targeted."""

EC2_CAPACITY_BLOCKS_USING = (
    "https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/capacity-blocks-using.html"
)
"""EC2 user guide, "Work with Capacity Blocks": no cluster placement group is needed."""

CFN_CAPACITY_RESERVATION = (
    "https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/"
    "aws-resource-ec2-capacityreservation.html"
)
"""CloudFormation AWS::EC2::CapacityReservation: creates On-Demand Capacity Reservations."""

CFN_ASG_LAUNCH_TEMPLATE = (
    "https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/"
    "aws-properties-autoscaling-autoscalinggroup-launchtemplatespecification.html"
)
"""CloudFormation AWS::AutoScaling::AutoScalingGroup LaunchTemplateSpecification, Version:
"Specifying $Latest or $Default for the template version number is not supported"; use
Fn::GetAtt LatestVersionNumber or DefaultVersionNumber."""

ASG_CAPACITY_BLOCKS = (
    "https://docs.aws.amazon.com/autoscaling/ec2/userguide/launch-template-capacity-blocks.html"
)
"""EC2 Auto Scaling user guide, "Use Capacity Blocks for machine learning workloads": no mixed
instances or warm pools, a specific launch template version, scale to zero more than 30 minutes
before the end, lifecycle actions done before EC2 reclaims."""

ASG_SCHEDULED_SCALING = (
    "https://docs.aws.amazon.com/autoscaling/ec2/userguide/ec2-auto-scaling-scheduled-scaling.html"
)
"""EC2 Auto Scaling user guide, scheduled scaling: unique times per group, up to two minutes
late."""

ASG_PUT_SCHEDULED_ACTION = (
    "https://docs.aws.amazon.com/autoscaling/ec2/APIReference/"
    "API_PutScheduledUpdateGroupAction.html"
)
"""EC2 Auto Scaling API reference: an action scheduled in the past is rejected."""
