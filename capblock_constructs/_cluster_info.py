"""What self-managed nodes need to know about their EKS cluster, from wherever it is known.

Nodes join a cluster with its name, API endpoint, certificate authority and
service CIDR (nodeadm refuses a NodeConfig without any of them). The AMI is
chosen by Kubernetes version, the launch template attaches the cluster
security group, and the node role needs an access entry only under API
authentication. This module collects all of that from, in order: explicit
arguments, the cluster construct (an ``aws_eks_v2`` or ``aws_eks`` cluster built
in the app, or one imported with ``from_cluster_attributes``), and, for what
an imported cluster cannot say, a cached ``eks:DescribeCluster`` lookup.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Any

from aws_cdk import Token
from aws_cdk import aws_eks as eks
from aws_cdk import aws_eks_v2 as eks_v2
from constructs import Construct

from ._aws import client, describe_error
from ._context_cache import cached_lookup, context_key, note_aws_call, stack_environment
from ._problems import Problems
from .errors import CapacityBlockError

# EKS names versions by Kubernetes minor version only, as "1.33".
_VERSION = re.compile(r"^1\.[0-9]+$")

AUTHENTICATION_MODES = ("API", "API_AND_CONFIG_MAP", "CONFIG_MAP")


@dataclass(frozen=True, kw_only=True)
class ClusterInfo:
    """Connection data for nodes; strings may be deploy-time tokens."""

    name: str
    endpoint: str
    certificate_authority: str
    """Base64-encoded CA bundle, as EKS returns it."""
    service_cidr: str
    kubernetes_version: str
    cluster_security_group_id: str
    authentication_mode: str | None
    """``API``, ``API_AND_CONFIG_MAP`` or ``CONFIG_MAP``; ``None`` when unknown."""
    source: str
    """Where the data came from, for messages."""


def cluster_context_key(account: str, region: str, cluster_name: str) -> str:
    """The CDK context key of one cluster's cached description."""
    return context_key(
        "eks-cluster", (("account", account), ("region", region), ("clusterName", cluster_name))
    )


def fill_command(cluster_name: str, region: str) -> str:
    """The CLI command that fills the cluster cache entry."""
    return f"capblock lookup-cluster {cluster_name} --region {region}"


def fetch_cluster(
    name: str,
    *,
    region: str,
    account: str | None = None,
    profile: str | None = None,
) -> dict[str, Any]:
    """Call ``eks:DescribeCluster`` and return the cache value for the cluster.

    The value holds only what nodes need and what changes rarely: name,
    endpoint, certificate authority, service CIDR, Kubernetes version,
    cluster security group, authentication mode and IP family. After a
    Kubernetes upgrade or a change of authentication mode, refresh the entry.

    Raises:
        CapacityBlockError: one user-facing message for every AWS failure and
            for a cluster that is not ``ACTIVE`` or lacks an endpoint.
    """
    where = f"account {account}, region {region}" if account else f"region {region}"
    subject = f"EKS cluster {name!r} ({where})"
    eks_client = _eks_client(region=region, profile=profile, subject=subject)
    try:
        note_aws_call()
        response = eks_client.describe_cluster(name=name)
    except Exception as exc:  # noqa: BLE001 - every AWS failure becomes one message
        code = _error_code(exc)
        if code == "ResourceNotFoundException":
            raise CapacityBlockError(
                f"EKS has no cluster {name!r} in {where}. Check the cluster name and that the "
                "stack's region is the cluster's region.",
                subject=subject,
            ) from None
        raise describe_error(
            exc,
            subject=subject,
            action="eks:DescribeCluster",
            not_found=f"EKS has no cluster {name!r} in {where}",
            fill_command=fill_command(name, region),
        ) from None
    return interpret_cluster(response.get("cluster", {}), subject=subject)


def _eks_client(*, region: str, profile: str | None, subject: str) -> Any:
    # Tests replace this factory to hand in a Stubber-wrapped client.
    return client("eks", region=region, profile=profile, subject=subject)


def _error_code(exc: Exception) -> str | None:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        return str(code) if code is not None else None
    return None


def interpret_cluster(cluster: dict[str, Any], *, subject: str) -> dict[str, Any]:
    """Check a DescribeCluster ``cluster`` and convert it to the cache value."""
    problems = Problems(subject)
    status = cluster.get("status")
    if status not in ("ACTIVE", "UPDATING"):
        problems.add(
            f"its status is {status!r}; nodes can only join an ACTIVE cluster. Wait until it is "
            "ACTIVE and look it up again."
        )
    endpoint = cluster.get("endpoint")
    authority = (cluster.get("certificateAuthority") or {}).get("data")
    network = cluster.get("kubernetesNetworkConfig") or {}
    ip_family = network.get("ipFamily", "ipv4")
    service_cidr = (
        network.get("serviceIpv6Cidr") if ip_family == "ipv6" else network.get("serviceIpv4Cidr")
    )
    for field, found in (
        ("endpoint", endpoint),
        ("certificateAuthority.data", authority),
        ("kubernetesNetworkConfig service CIDR", service_cidr),
        ("version", cluster.get("version")),
    ):
        if not found:
            problems.add(f"EKS returned no {field} for it; nodes cannot join without it.")
    problems.raise_if_any()
    value: dict[str, Any] = {
        "name": cluster["name"],
        "endpoint": endpoint,
        "certificateAuthority": authority,
        "serviceCidr": service_cidr,
        "ipFamily": ip_family,
        "kubernetesVersion": cluster["version"],
    }
    security_group = (cluster.get("resourcesVpcConfig") or {}).get("clusterSecurityGroupId")
    if security_group:
        value["clusterSecurityGroupId"] = security_group
    mode = (cluster.get("accessConfig") or {}).get("authenticationMode")
    if mode:
        value["authenticationMode"] = mode
    return value


def lookup_cluster(scope: Construct, cluster_name: str) -> dict[str, Any]:
    """The cached description of ``cluster_name`` in the stack's account and region."""
    account, region = stack_environment(scope, what=f"Looking up EKS cluster {cluster_name!r}")
    subject = f"EKS cluster {cluster_name!r} (account {account}, region {region})"
    value = cached_lookup(
        scope,
        key=cluster_context_key(account, region, cluster_name),
        subject=subject,
        fill_command=fill_command(cluster_name, region),
        fetch=lambda: fetch_cluster(cluster_name, region=region, account=account),
    )
    if not isinstance(value, dict) or not all(
        key in value
        for key in ("endpoint", "certificateAuthority", "serviceCidr", "kubernetesVersion")
    ):
        raise CapacityBlockError(
            "the cached cluster description lacks endpoint, certificateAuthority, serviceCidr "
            f"or kubernetesVersion; refresh it with '{fill_command(cluster_name, region)}'.",
            subject=subject,
        )
    return value


# -- reading cluster constructs ----------------------------------------------------------


def is_cluster_built_in_app(cluster: Any) -> bool:
    """Whether ``cluster`` is an ``aws_eks_v2.Cluster`` or ``aws_eks.Cluster`` built in the app."""
    return isinstance(cluster, (eks_v2.Cluster, eks.Cluster))


def check_helm_cluster(
    cluster: Any, problems: Problems, *, option: str, charts: str, install_yourself: str
) -> None:
    """Add a problem when ``option`` asks to install Helm charts that ``cluster`` cannot take:
    only a cluster built in this app, with a kubectl provider, installs charts from the app.

    :param charts: What would be installed, for the message ("the Helm chart").
    :param install_yourself: How to do without the option, ending the message.
    """
    if not is_cluster_built_in_app(cluster):
        problems.add(
            f"{option}=True needs a cluster built in this app (aws_eks_v2.Cluster or "
            f"aws_eks.Cluster) to install {charts}; for an imported cluster "
            f"{install_yourself}."
        )
    elif isinstance(cluster, eks_v2.Cluster) and cluster.kubectl_provider is None:
        problems.add(
            f"{option}=True, but the aws_eks_v2 cluster has no kubectl provider to install "
            "Helm charts with; create the cluster with "
            "kubectl_provider_options=eks_v2.KubectlProviderOptions(kubectl_layer=...), or "
            f"{install_yourself}."
        )


def _try_attribute(cluster: Any, name: str) -> str | None:
    # An imported cluster throws when asked for an attribute it was not given.
    try:
        value = getattr(cluster, name)
    except Exception:  # noqa: BLE001 - jsii raises RuntimeError for missing attributes
        return None
    return value if isinstance(value, str) and value else None


def _concrete(value: Any) -> str | None:
    if isinstance(value, str) and value and not Token.is_unresolved(value):
        return value
    return None


def _v2_configuration(cluster: eks_v2.Cluster) -> tuple[str | None, str | None, str | None]:
    """Kubernetes version, service IPv4 CIDR and authentication mode an eks_v2 cluster was given."""
    resource = cluster.node.default_child
    version = service_cidr = mode = None
    if isinstance(resource, eks_v2.CfnCluster):
        version = _concrete(resource.version)
        network = resource.kubernetes_network_config
        if isinstance(network, eks_v2.CfnCluster.KubernetesNetworkConfigProperty):
            service_cidr = _concrete(network.service_ipv4_cidr)
        access = resource.access_config
        if isinstance(access, eks_v2.CfnCluster.AccessConfigProperty):
            mode = _concrete(access.authentication_mode)
    return version, service_cidr, mode


def _is_service_cidr(value: str) -> bool:
    """An IPv4 network of /12 to /24, as EKS requires of a service CIDR, or an IPv6 network.

    IPv6 clusters get their service range from EKS; it is passed through as given.
    """
    if "/" not in value:
        return False
    try:
        network = ipaddress.ip_network(value, strict=True)
    except ValueError:
        return False
    return network.version == 6 or 12 <= network.prefixlen <= 24


def resolve_cluster_info(
    scope: Construct,
    *,
    cluster: Any,
    kubernetes_version: str | None,
    service_cidr: str | None,
    problems: Problems,
) -> ClusterInfo | None:
    """Collect the cluster's connection data; add a problem for anything missing.

    Returns ``None`` (with problems added) when nodes could not join.
    """
    name = _try_attribute(cluster, "cluster_name")
    if name is None:
        problems.add(
            "cluster has no cluster_name; pass an aws_eks_v2 or aws_eks Cluster, or "
            "Cluster.from_cluster_attributes(..., cluster_name='<name>')."
        )
        return None
    endpoint = _try_attribute(cluster, "cluster_endpoint")
    authority = _try_attribute(cluster, "cluster_certificate_authority_data")
    security_group = _try_attribute(cluster, "cluster_security_group_id")
    version = kubernetes_version
    cidr = service_cidr
    mode: str | None = None
    source: str

    if isinstance(cluster, eks_v2.Cluster):
        source = f"aws_eks_v2.Cluster {cluster.node.path}"
        configured_version, configured_cidr, mode = _v2_configuration(cluster)
        version = version or configured_version
        cidr = cidr or configured_cidr
        # aws_eks_v2 always creates its clusters with API authentication.
        mode = mode or "API"
    elif isinstance(cluster, eks.Cluster):
        # The aws_eks (v1) cluster is a custom resource that exposes neither its version nor
        # its service CIDR, so both come from the arguments.
        source = f"aws_eks.Cluster {cluster.node.path}"
        mode_value = cluster.authentication_mode
        # EKS creates clusters through CloudFormation with CONFIG_MAP when none is given.
        mode = str(mode_value.value) if mode_value is not None else "CONFIG_MAP"
    else:
        source = f"imported cluster {name!r}"
        missing = [
            what
            for what, value in (
                ("endpoint", endpoint),
                ("certificate authority", authority),
                ("service CIDR", cidr),
                ("Kubernetes version", version),
                ("cluster security group", security_group),
            )
            if value is None
        ]
        if missing:
            if Token.is_unresolved(name):
                problems.add(
                    "the imported cluster's name is a deploy-time value, so its "
                    f"{', '.join(missing)} cannot be looked up at synth time; pass "
                    "cluster_endpoint, cluster_certificate_authority_data and "
                    "cluster_security_group_id to from_cluster_attributes, and "
                    "kubernetes_version and service_ipv4_cidr to the node group."
                )
                return None
            try:
                described = lookup_cluster(scope, name)
            except CapacityBlockError as exc:
                problems.add(
                    f"the imported cluster {name!r} does not carry its {', '.join(missing)}, "
                    f"and looking them up with eks:DescribeCluster failed: {exc} Alternatively "
                    "pass cluster_endpoint, cluster_certificate_authority_data and "
                    "cluster_security_group_id to from_cluster_attributes, and "
                    "kubernetes_version and service_ipv4_cidr to the node group."
                )
                return None
            endpoint = endpoint or described.get("endpoint")
            authority = authority or described.get("certificateAuthority")
            cidr = cidr or described.get("serviceCidr")
            version = version or described.get("kubernetesVersion")
            security_group = security_group or described.get("clusterSecurityGroupId")
            mode = described.get("authenticationMode")
            source = f"eks:DescribeCluster of {name!r} (cached in cdk.context.json)"

    if endpoint is None or authority is None:
        problems.add(
            f"the cluster's API endpoint or certificate authority is unknown ({source}); "
            "import the cluster with cluster_endpoint and cluster_certificate_authority_data."
        )
    if cidr is None:
        problems.add(
            f"the cluster's service CIDR is unknown ({source}). nodeadm needs it to find the "
            "cluster DNS service, and EKS picks 10.100.0.0/16 or 172.20.0.0/16 on its own when "
            "the cluster was created without one, so it cannot be guessed safely. Pass "
            "service_ipv4_cidr='<the cluster's kubernetesNetworkConfig.serviceIpv4Cidr>' (see "
            "'aws eks describe-cluster --name <name>'), or create the cluster with "
            "service_ipv4_cidr set."
        )
    if security_group is None:
        problems.add(
            f"the cluster security group is unknown ({source}); the nodes need it to talk to "
            "the control plane. Import the cluster with cluster_security_group_id="
            "'<resourcesVpcConfig.clusterSecurityGroupId>'."
        )
    if version is None:
        problems.add(
            f"the cluster's Kubernetes version is unknown ({source}); pass "
            "kubernetes_version='1.33' (the cluster's version), which selects the AMI."
        )
    if version is not None and not Token.is_unresolved(version) and not _VERSION.match(version):
        problems.add(
            f"kubernetes_version {version!r} ({source}) is not a Kubernetes minor version; "
            "write it as EKS does, for example '1.33' (no 'v', no patch number)."
        )
        version = None
    if cidr is not None and not Token.is_unresolved(cidr) and not _is_service_cidr(cidr):
        problems.add(
            f"service_ipv4_cidr {cidr!r} ({source}) is not a service network EKS allows (CIDR "
            "notation, /12 to /24); pass the cluster's service CIDR, for example "
            "'172.20.0.0/16'."
        )
        cidr = None
    if (
        endpoint is None
        or authority is None
        or cidr is None
        or version is None
        or security_group is None
    ):
        return None
    return ClusterInfo(
        name=name,
        endpoint=endpoint,
        certificate_authority=authority,
        service_cidr=cidr,
        kubernetes_version=version,
        cluster_security_group_id=security_group,
        authentication_mode=mode,
        source=source,
    )
