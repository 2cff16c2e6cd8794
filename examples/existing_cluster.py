"""Capacity Block nodes added to a VPC and an EKS cluster that already exist.

The VPC is found with ``ec2.Vpc.from_lookup`` and the cluster imported by name
with ``Cluster.from_cluster_attributes``; nothing but the node group, its
launch template, node role and EFA security group, and the stack's lifecycle
controller is created. Both synth-time facts come from the CDK context, so
after one synth with credentials every later one (CI included) is offline:

- the VPC's subnets and their zones, which the CDK CLI fills on a
  ``cdk synth`` with credentials for the account, under
  ``vpc-provider:account=<account>:filter.vpc-id=<vpc-id>:region=<region>:returnAsymmetricSubnets=true``;
- the reservation, filled by ``capblock lookup <id> --region <region>`` (or by
  that same synth), under
  ``capblock-constructs:capacity-block:account=<account>:region=<region>:capacityReservationId=<id>``.

No ``availability-zones`` entry is needed: the VPC is not built here.
Commit ``cdk.context.json`` afterwards. The example is not part of the
example app (``app.py``), and its VPC and cluster are fictional: the test
suite supplies their context. With your own values in the constant below and in
``examples/environment.py``, synthesize it on its own with
``cdk synth --app "python -m examples.existing_cluster"``.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import App, CfnOutput, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_eks_v2 as eks
from constructs import Construct

from capblock_constructs import CapacityBlock, CapacityBlockManagedNodeGroup
from examples.environment import (
    EXAMPLE_CLUSTER_NAME,
    EXAMPLE_CLUSTER_SECURITY_GROUP_ID,
    EXAMPLE_ENV,
    EXAMPLE_RESERVATION_ID,
)

# A fictional VPC in the documentation account: replace it with yours (and the cluster's
# name and security group in examples/environment.py).
EXAMPLE_VPC_ID = "vpc-0a1b2c3d4e5f67890"


class ExistingClusterExampleStack(Stack):
    """A managed node group on a Capacity Block, in an existing VPC and EKS cluster.

    The node group uses only the VPC's private subnets in the block's
    Availability Zone (the VPC needs one there). The cluster can be an
    ``aws_eks_v2`` or an ``aws_eks`` import; a managed node group needs its
    name only, plus the cluster security group here, because EFA makes the
    launch template name security groups and EKS then no longer adds the
    cluster's own. A self-managed group on a cluster imported by name also
    reads the cluster's endpoint, certificate authority, service CIDR and
    version from a cache entry that ``capblock lookup-cluster`` fills.

    :param capacity_reservation_id: The Capacity Block's reservation ID.
    :param vpc_id: The ID of the existing VPC the cluster runs in.
    :param cluster_name: The existing EKS cluster's name.
    :param cluster_security_group_id: The cluster security group
        (``aws eks describe-cluster --query cluster.resourcesVpcConfig.clusterSecurityGroupId``).
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        capacity_reservation_id: str,
        vpc_id: str,
        cluster_name: str,
        cluster_security_group_id: str,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, id, **kwargs)
        block = CapacityBlock.from_lookup(self, capacity_reservation_id)
        vpc = ec2.Vpc.from_lookup(self, "Vpc", vpc_id=vpc_id)
        cluster = eks.Cluster.from_cluster_attributes(
            self,
            "Cluster",
            cluster_name=cluster_name,
            cluster_security_group_id=cluster_security_group_id,
            vpc=vpc,
        )
        nodes = CapacityBlockManagedNodeGroup(
            self,
            "GpuNodes",
            cluster=cluster,
            capacity_block=block,
            vpc=vpc,
            efa=True,
        )
        CfnOutput(self, "NodegroupName", value=nodes.nodegroup_name)


def build_app(app: App | None = None) -> App:
    """Add the example stack, ``CapblockExistingCluster``, to ``app`` (a new App by default)."""
    app = app or App()
    ExistingClusterExampleStack(
        app,
        "CapblockExistingCluster",
        env=EXAMPLE_ENV,
        capacity_reservation_id=EXAMPLE_RESERVATION_ID,
        vpc_id=EXAMPLE_VPC_ID,
        cluster_name=EXAMPLE_CLUSTER_NAME,
        cluster_security_group_id=EXAMPLE_CLUSTER_SECURITY_GROUP_ID,
    )
    return app


if __name__ == "__main__":
    build_app().synth()
