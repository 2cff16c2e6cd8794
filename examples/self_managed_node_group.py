"""Self-managed EKS GPU nodes on a Capacity Block, joining an existing cluster.

The cluster and its VPC already exist, so they are imported with everything
nodes need to join (endpoint, certificate authority, cluster security group,
service CIDR, Kubernetes version): the example synthesizes offline, with no
cluster lookup. Import a cluster by name only and the node group describes it
at synth time instead (``capblock lookup-cluster`` fills the cache).
"""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_eks_v2 as eks
from constructs import Construct

from capblock_constructs import CapacityBlock, CapacityBlockSelfManagedNodeGroup
from examples.environment import EXAMPLE_CLUSTER_NAME, EXAMPLE_CLUSTER_SECURITY_GROUP_ID

EXAMPLE_KUBERNETES_VERSION = "1.33"
EXAMPLE_SERVICE_CIDR = "172.20.0.0/16"


class SelfManagedNodeGroupExampleStack(Stack):
    """A self-managed node group that runs only while the Capacity Block does.

    The stack's lifecycle controller scales the group up when the block is active and
    to zero 40 minutes before its (live) end; aws-node-termination-handler drains
    the nodes as they go, and they
    carry the default ``nvidia.com/gpu`` taint, so only pods that tolerate it land on them.
    """

    def __init__(
        self, scope: Construct, id: str, *, capacity_reservation_id: str, **kwargs: Any
    ) -> None:
        super().__init__(scope, id, **kwargs)
        block = CapacityBlock.from_lookup(self, capacity_reservation_id)

        vpc = ec2.Vpc.from_vpc_attributes(
            self,
            "Vpc",
            vpc_id="vpc-0a1b2c3d4e5f67890",
            availability_zones=["us-east-2a", "us-east-2b"],
            private_subnet_ids=["subnet-0a1b2c3d4e5f60001", "subnet-0a1b2c3d4e5f60002"],
            private_subnet_route_table_ids=["rtb-0a1b2c3d4e5f60001", "rtb-0a1b2c3d4e5f60002"],
        )
        cluster = eks.Cluster.from_cluster_attributes(
            self,
            "Cluster",
            cluster_name=EXAMPLE_CLUSTER_NAME,
            cluster_endpoint="https://0123456789ABCDEF0123456789ABCDEF.gr7.us-east-2.eks.amazonaws.com",
            cluster_certificate_authority_data="LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCg==",
            cluster_security_group_id=EXAMPLE_CLUSTER_SECURITY_GROUP_ID,
            vpc=vpc,
        )
        nodes = CapacityBlockSelfManagedNodeGroup(
            self,
            "GpuNodes",
            cluster=cluster,
            capacity_block=block,
            vpc=vpc,
            kubernetes_version=EXAMPLE_KUBERNETES_VERSION,
            service_ipv4_cidr=EXAMPLE_SERVICE_CIDR,
            labels={"example.com/workload": "training"},
            efa=True,
            # The cluster authenticates with API_AND_CONFIG_MAP: nodes join by access entry.
            access_entry=True,
        )
        CfnOutput(self, "AutoScalingGroupName", value=nodes.auto_scaling_group_name)
        CfnOutput(self, "NodeRoleArn", value=nodes.node_role.role_arn)
