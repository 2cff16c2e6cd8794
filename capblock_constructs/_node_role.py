"""The IAM role a node group creates for its nodes when it is given none."""

from __future__ import annotations

from aws_cdk import aws_eks as eks
from aws_cdk import aws_iam as iam
from constructs import Construct

from ._nag import acknowledge

NODE_ROLE_MANAGED_POLICIES = (
    "AmazonEKSWorkerNodePolicy",
    "AmazonEKS_CNI_Policy",
    "AmazonEC2ContainerRegistryPullOnly",
    "AmazonSSMManagedInstanceCore",
)
"""The AWS managed policies of the default node role, managed and self-managed alike.

The EKS user guide's "Amazon EKS node IAM role" page requires the worker-node
policy and image pulls from ECR (the pull-only policy it names), and the CNI
policy where the VPC CNI's pods have no role of their own (IRSA or Pod
Identity). The SSM policy lets Session Manager reach the nodes, which get no
SSH key by default.
"""


def default_node_role(scope: Construct, *, description: str) -> iam.Role:
    """The ``NodeRole`` child of ``scope``: trusted by EC2, with the node policies."""
    role = iam.Role(
        scope,
        "NodeRole",
        assumed_by=iam.ServicePrincipal("ec2.amazonaws.com"),
        description=description,
        managed_policies=[
            iam.ManagedPolicy.from_aws_managed_policy_name(name)
            for name in NODE_ROLE_MANAGED_POLICIES
        ],
    )
    acknowledge(
        role,
        "AwsSolutions-IAM4",
        reason=(
            "The node role carries the AWS managed policies EKS documents for nodes; AWS "
            "keeps them current as the kubelet, the VPC CNI and image pulls need more."
        ),
        findings=[
            f"Policy::arn:<AWS::Partition>:iam::aws:policy/{name}"
            for name in NODE_ROLE_MANAGED_POLICIES
        ],
    )
    return role


def map_node_role(cluster: eks.Cluster, role: iam.IRole) -> None:
    """Map ``role`` in the aws-auth ConfigMap of an ``aws_eks`` (v1) cluster of the app.

    The username and groups are the ones EKS gives node roles (EKS user guide, "Apply
    the aws-auth ConfigMap to your cluster"), so the nodes' kubelets can register.
    """
    cluster.aws_auth.add_role_mapping(
        role,
        username="system:node:{{EC2PrivateDNSName}}",
        groups=["system:bootstrappers", "system:nodes"],
    )
