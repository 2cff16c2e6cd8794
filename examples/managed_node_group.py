"""An EKS cluster with a managed node group on a Capacity Block, sized by the controller."""

from __future__ import annotations

from typing import Any

from aws_cdk import Acknowledgment, CfnOutput, Stack, Validations
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_eks_v2 as eks
from constructs import Construct

from capblock_constructs import CapacityBlock, CapacityBlockManagedNodeGroup


class ManagedNodeGroupExampleStack(Stack):
    """A VPC, an EKS cluster and EFA-enabled GPU nodes on one Capacity Block.

    The reservation is looked up at synth time (served from
    ``cdk.context.json``). The VPC spans the block's Availability Zone and one
    more, because EKS needs subnets in two zones; the node group only uses the
    block's zone. The cluster is an ``aws_eks_v2`` cluster, which deploys
    without the kubectl Lambda layer that ``aws_eks`` needs; with its default
    EKS Auto Mode it also runs the system pods (CoreDNS and the like), so the
    GPU nodes stay free for tainted GPU workloads.

    :param capacity_reservation_id: The Capacity Block's reservation ID.
    """

    def __init__(
        self, scope: Construct, id: str, *, capacity_reservation_id: str, **kwargs: Any
    ) -> None:
        super().__init__(scope, id, **kwargs)
        block = CapacityBlock.from_lookup(self, capacity_reservation_id)

        vpc = ec2.Vpc(
            self,
            "Vpc",
            availability_zones=[block.availability_zone, _neighbour_zone(block.availability_zone)],
            nat_gateways=1,
            flow_logs={"FlowLogs": ec2.FlowLogOptions()},
        )
        cluster = eks.Cluster(
            self,
            "Cluster",
            vpc=vpc,
            version=eks.KubernetesVersion.V1_34,
        )
        nodes = CapacityBlockManagedNodeGroup(
            self,
            "GpuNodes",
            cluster=cluster,
            capacity_block=block,
            vpc=vpc,
            efa=True,
        )

        _acknowledge_eks_managed_policies(cluster)

        CfnOutput(self, "ClusterName", value=cluster.cluster_name)
        CfnOutput(self, "NodegroupName", value=nodes.nodegroup_name)
        CfnOutput(self, "CapacityBlockStart", value=block.start.isoformat())


def _acknowledge_eks_managed_policies(cluster: eks.Cluster) -> None:
    """Acknowledge cdk-nag's IAM4 on the two roles the EKS cluster construct creates.

    EKS Auto Mode requires exactly these AWS managed policies on the cluster
    role and the Auto Mode node role; AWS updates them as the service changes.
    """
    roles = {
        "Role": (
            "AmazonEKSClusterPolicy",
            "AmazonEKSComputePolicy",
            "AmazonEKSBlockStoragePolicy",
            "AmazonEKSLoadBalancingPolicy",
            "AmazonEKSNetworkingPolicy",
        ),
        f"{cluster.node.id}nodePoolRole": (
            "AmazonEKSWorkerNodePolicy",
            "AmazonEC2ContainerRegistryReadOnly",
        ),
    }
    for child_id, policies in roles.items():
        role = cluster.node.try_find_child(child_id)
        if role is None:
            continue
        Validations.of(role).acknowledge(
            *(
                Acknowledgment(
                    id=f"AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/{name}]",
                    reason=(
                        "EKS Auto Mode requires this AWS managed policy on the cluster's "
                        "roles; AWS keeps it current as the service changes."
                    ),
                )
                for name in policies
            )
        )


def _neighbour_zone(zone: str) -> str:
    # EKS wants subnets in two zones. Zones "a" and "b" exist in us-east-2, the example's
    # Region; not every Region has both (ap-northeast-1 has no "b"), so a real stack names
    # its second zone explicitly.
    return zone[:-1] + ("b" if zone.endswith("a") else "a")
