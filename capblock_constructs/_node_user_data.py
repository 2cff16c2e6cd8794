"""User data that joins a self-managed node to its EKS cluster.

Amazon Linux 2023 nodes run ``nodeadm``, which reads a ``NodeConfig``
(``apiVersion: node.eks.aws/v1alpha1``) from a MIME multi-part user data part
of type ``application/node.eks.aws``. nodeadm needs the cluster's name, API
endpoint, certificate authority and service CIDR in that document; given all
four it makes no ``eks:DescribeCluster`` call at boot. Bottlerocket reads TOML
settings instead (``[settings.kubernetes]``).

Values may be CDK tokens (an in-app cluster's endpoint is only known at
deploy time): they are embedded in the text and CloudFormation joins them in.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Mapping, Sequence

from aws_cdk import Token

from ._cluster_info import ClusterInfo
from .taints import NodeTaint

__all__ = ["MIME_BOUNDARY", "NODECONFIG_CONTENT_TYPE"]

MIME_BOUNDARY = "==CAPBLOCK-BOUNDARY=="
NODECONFIG_CONTENT_TYPE = "application/node.eks.aws"


def kubelet_flags(labels: Mapping[str, str], taints: Sequence[NodeTaint]) -> list[str]:
    """``--node-labels`` and ``--register-with-taints`` flags, keys sorted for stable output."""
    flags: list[str] = []
    if labels:
        rendered = ",".join(f"{key}={labels[key]}" for key in sorted(labels))
        flags.append(f"--node-labels={rendered}")
    if taints:
        rendered = ",".join(taint.kubelet_form for taint in taints)
        flags.append(f"--register-with-taints={rendered}")
    return flags


def _quoted(value: str) -> str:
    # JSON strings are valid YAML and TOML basic strings; tokens pass through unchanged.
    return json.dumps(value)


def node_config_yaml(
    cluster: ClusterInfo,
    *,
    labels: Mapping[str, str],
    taints: Sequence[NodeTaint],
) -> str:
    """The nodeadm ``NodeConfig`` document."""
    lines = [
        "---",
        "apiVersion: node.eks.aws/v1alpha1",
        "kind: NodeConfig",
        "spec:",
        "  cluster:",
        f"    name: {_quoted(cluster.name)}",
        f"    apiServerEndpoint: {_quoted(cluster.endpoint)}",
        f"    certificateAuthority: {_quoted(cluster.certificate_authority)}",
        f"    cidr: {_quoted(cluster.service_cidr)}",
    ]
    flags = kubelet_flags(labels, taints)
    if flags:
        lines += ["  kubelet:", "    flags:"]
        lines += [f"      - {_quoted(flag)}" for flag in flags]
    return "\n".join(lines) + "\n"


def al2023_user_data(
    cluster: ClusterInfo,
    *,
    labels: Mapping[str, str],
    taints: Sequence[NodeTaint],
    pre_bootstrap_script: str | None = None,
) -> str:
    """MIME multi-part user data: an optional shell script, then the NodeConfig.

    nodeadm reads every ``application/node.eks.aws`` part and cloud-init runs
    the shell script; the script part comes first so it can prepare the host
    (for example mount instance storage) before the kubelet starts.
    """
    parts: list[tuple[str, str]] = []
    if pre_bootstrap_script:
        parts.append(('text/x-shellscript; charset="us-ascii"', pre_bootstrap_script))
    parts.append((NODECONFIG_CONTENT_TYPE, node_config_yaml(cluster, labels=labels, taints=taints)))
    lines = [
        "MIME-Version: 1.0",
        f'Content-Type: multipart/mixed; boundary="{MIME_BOUNDARY}"',
        "",
    ]
    for content_type, body in parts:
        lines += [f"--{MIME_BOUNDARY}", f"Content-Type: {content_type}", "", body.rstrip("\n")]
    lines += [f"--{MIME_BOUNDARY}--", ""]
    return "\n".join(lines)


def cluster_dns_ip(service_cidr: str) -> str | None:
    """The cluster DNS service address: the tenth address of the service CIDR.

    ``None`` when the CIDR is a deploy-time value or not a network.
    """
    if Token.is_unresolved(service_cidr):
        return None
    try:
        network = ipaddress.ip_network(service_cidr, strict=False)
    except ValueError:
        return None
    return str(network.network_address + 10)


def bottlerocket_user_data(
    cluster: ClusterInfo,
    *,
    labels: Mapping[str, str],
    taints: Sequence[NodeTaint],
) -> str:
    """Bottlerocket TOML settings that join the cluster with the labels and taints."""
    lines = [
        "[settings.kubernetes]",
        f"cluster-name = {_quoted(cluster.name)}",
        f"api-server = {_quoted(cluster.endpoint)}",
        f"cluster-certificate = {_quoted(cluster.certificate_authority)}",
    ]
    dns_ip = cluster_dns_ip(cluster.service_cidr)
    if dns_ip is not None:
        lines.append(f"cluster-dns-ip = {_quoted(dns_ip)}")
    if labels:
        lines += ["", "[settings.kubernetes.node-labels]"]
        lines += [f"{_quoted(key)} = {_quoted(labels[key])}" for key in sorted(labels)]
    if taints:
        grouped: dict[str, list[str]] = {}
        for taint in taints:
            grouped.setdefault(taint.key, []).append(f"{taint.value or ''}:{taint.effect}")
        lines += ["", "[settings.kubernetes.node-taints]"]
        lines += [
            f"{_quoted(key)} = [{', '.join(_quoted(v) for v in values)}]"
            for key, values in sorted(grouped.items())
        ]
    return "\n".join(lines) + "\n"
