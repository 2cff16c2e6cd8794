"""Node bootstrap user data: nodeadm NodeConfig (MIME multi-part) and Bottlerocket TOML."""

from __future__ import annotations

import sys

import pytest

from capblock_constructs._cluster_info import ClusterInfo
from capblock_constructs._node_labels import validate_labels_and_taints
from capblock_constructs._node_user_data import (
    al2023_user_data,
    bottlerocket_user_data,
    cluster_dns_ip,
    kubelet_flags,
)
from capblock_constructs._problems import Problems
from capblock_constructs.errors import CapacityBlockError
from capblock_constructs.taints import NodeTaint
from tests.support import node_config, parts_of

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib  # type: ignore[import-not-found, unused-ignore]

CLUSTER = ClusterInfo(
    name="ml",
    endpoint="https://ABCDEF.gr7.us-east-2.eks.amazonaws.com",
    certificate_authority="LS0tLS1CRUdJTg==",
    service_cidr="172.20.0.0/16",
    kubernetes_version="1.33",
    cluster_security_group_id="sg-0123456789abcdef0",
    authentication_mode="API",
    source="test",
)
LABELS = {"team": "ml", "capblock-constructs/capacity-reservation-id": "cr-0123456789abcdef0"}
TAINTS = (
    NodeTaint(key="nvidia.com/gpu", effect="NoSchedule"),
    NodeTaint(key="dedicated", value="training", effect="NoExecute"),
)


def test_nodeconfig_carries_everything_nodeadm_needs_to_join() -> None:
    document = node_config(al2023_user_data(CLUSTER, labels=LABELS, taints=TAINTS))
    assert document["apiVersion"] == "node.eks.aws/v1alpha1"
    assert document["kind"] == "NodeConfig"
    assert document["spec"]["cluster"] == {
        "name": "ml",
        "apiServerEndpoint": "https://ABCDEF.gr7.us-east-2.eks.amazonaws.com",
        "certificateAuthority": "LS0tLS1CRUdJTg==",
        "cidr": "172.20.0.0/16",
    }


def test_nodeconfig_kubelet_flags_carry_labels_and_taints() -> None:
    flags = node_config(al2023_user_data(CLUSTER, labels=LABELS, taints=TAINTS))["spec"]["kubelet"][
        "flags"
    ]
    assert flags == [
        "--node-labels=capblock-constructs/capacity-reservation-id=cr-0123456789abcdef0,team=ml",
        "--register-with-taints=nvidia.com/gpu:NoSchedule,dedicated=training:NoExecute",
    ]


def test_no_kubelet_section_without_labels_or_taints() -> None:
    document = node_config(al2023_user_data(CLUSTER, labels={}, taints=()))
    assert "kubelet" not in document["spec"]
    assert kubelet_flags({}, ()) == []


def test_pre_bootstrap_script_is_a_shell_part_before_the_nodeconfig() -> None:
    script = "#!/bin/bash\nset -euo pipefail\necho prepare\n"
    parts = parts_of(
        al2023_user_data(CLUSTER, labels=LABELS, taints=(), pre_bootstrap_script=script)
    )
    assert [p.get_content_type() for p in parts] == [
        "text/x-shellscript",
        "application/node.eks.aws",
    ]
    assert str(parts[0].get_payload()).strip() == script.strip()


def test_bottlerocket_settings_join_the_cluster() -> None:
    settings = tomllib.loads(bottlerocket_user_data(CLUSTER, labels=LABELS, taints=TAINTS))
    kubernetes = settings["settings"]["kubernetes"]
    assert kubernetes["cluster-name"] == "ml"
    assert kubernetes["api-server"] == "https://ABCDEF.gr7.us-east-2.eks.amazonaws.com"
    assert kubernetes["cluster-certificate"] == "LS0tLS1CRUdJTg=="
    # The cluster DNS service is the tenth address of the service CIDR.
    assert kubernetes["cluster-dns-ip"] == "172.20.0.10"
    assert kubernetes["node-labels"] == LABELS
    assert kubernetes["node-taints"] == {
        "nvidia.com/gpu": [":NoSchedule"],
        "dedicated": ["training:NoExecute"],
    }


@pytest.mark.parametrize(
    ("cidr", "expected"),
    [("10.100.0.0/16", "10.100.0.10"), ("fd00:10:96::/108", "fd00:10:96::a"), ("bad", None)],
)
def test_cluster_dns_ip(cidr: str, expected: str | None) -> None:
    assert cluster_dns_ip(cidr) == expected


def test_invalid_labels_and_taints_are_each_reported() -> None:
    problems = Problems("test")
    validate_labels_and_taints(
        {"bad key!": "x", "ok": "has space"},
        [NodeTaint(key="nvidia.com/gpu", effect="NoWay"), NodeTaint(key="-bad")],
        problems,
    )
    with pytest.raises(CapacityBlockError) as failure:
        problems.raise_if_any()
    message = str(failure.value)
    assert "label key 'bad key!'" in message
    assert "label 'ok' has the value 'has space'" in message
    assert "effect 'NoWay'; use one of NoSchedule, PreferNoSchedule, NoExecute" in message
    assert "taint key '-bad'" in message
