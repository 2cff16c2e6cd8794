"""Cluster connection data: from constructs, arguments, or the cached DescribeCluster lookup."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from aws_cdk import Fn
from aws_cdk import aws_eks_v2 as eks_v2
from botocore.stub import Stubber

from capblock_constructs import _cluster_info
from capblock_constructs._cluster_info import (
    cluster_context_key,
    fetch_cluster,
    lookup_cluster,
    resolve_cluster_info,
)
from capblock_constructs._problems import Problems
from capblock_constructs.errors import CapacityBlockError
from tests.support import ACCOUNT, REGION, make_app, make_stack

NAME = "ml"
KEY = f"capblock-constructs:eks-cluster:account={ACCOUNT}:region={REGION}:clusterName={NAME}"
DESCRIBED: dict[str, Any] = {
    "cluster": {
        "name": NAME,
        "arn": f"arn:aws:eks:{REGION}:{ACCOUNT}:cluster/{NAME}",
        "version": "1.33",
        "endpoint": "https://ABCDEF.gr7.us-east-2.eks.amazonaws.com",
        "status": "ACTIVE",
        "certificateAuthority": {"data": "LS0tLS1CRUdJTg=="},
        "kubernetesNetworkConfig": {"serviceIpv4Cidr": "10.100.0.0/16", "ipFamily": "ipv4"},
        "resourcesVpcConfig": {"clusterSecurityGroupId": "sg-0123456789abcdef0"},
        "accessConfig": {"authenticationMode": "API_AND_CONFIG_MAP"},
    }
}
CACHED = {
    "name": NAME,
    "endpoint": "https://ABCDEF.gr7.us-east-2.eks.amazonaws.com",
    "certificateAuthority": "LS0tLS1CRUdJTg==",
    "serviceCidr": "10.100.0.0/16",
    "ipFamily": "ipv4",
    "kubernetesVersion": "1.33",
    "clusterSecurityGroupId": "sg-0123456789abcdef0",
    "authenticationMode": "API_AND_CONFIG_MAP",
}


@pytest.fixture
def stubbed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Stubber]:
    """An EKS client answered by a Stubber; cdk.context.json writes land in tmp_path."""
    monkeypatch.chdir(tmp_path)
    client = boto3.client("eks", region_name=REGION)
    stubber = Stubber(client)
    monkeypatch.setattr(_cluster_info, "_eks_client", lambda **_: client)
    with stubber:
        yield stubber


def test_context_key_names_account_region_and_cluster() -> None:
    assert cluster_context_key(ACCOUNT, REGION, NAME) == KEY


def test_fetch_cluster_keeps_what_nodes_need(stubbed: Stubber) -> None:
    stubbed.add_response("describe_cluster", DESCRIBED, {"name": NAME})
    assert fetch_cluster(NAME, region=REGION, account=ACCOUNT) == CACHED
    stubbed.assert_no_pending_responses()


def test_fetch_cluster_uses_the_ipv6_service_cidr_for_ipv6_clusters(stubbed: Stubber) -> None:
    described = json.loads(json.dumps(DESCRIBED))
    described["cluster"]["kubernetesNetworkConfig"] = {
        "ipFamily": "ipv6",
        "serviceIpv6Cidr": "fd00:10:96::/108",
    }
    stubbed.add_response("describe_cluster", described, {"name": NAME})
    assert fetch_cluster(NAME, region=REGION)["serviceCidr"] == "fd00:10:96::/108"


def test_fetch_cluster_unknown_name_says_what_to_check(stubbed: Stubber) -> None:
    stubbed.add_client_error(
        "describe_cluster",
        service_error_code="ResourceNotFoundException",
        service_message="No cluster found for name: ml.",
        http_status_code=404,
    )
    with pytest.raises(CapacityBlockError, match=r"EKS has no cluster 'ml' in region us-east-2"):
        fetch_cluster(NAME, region=REGION)


def test_fetch_cluster_access_denied_names_the_action(stubbed: Stubber) -> None:
    stubbed.add_client_error(
        "describe_cluster", service_error_code="AccessDeniedException", http_status_code=403
    )
    with pytest.raises(CapacityBlockError, match=r"not allowed to call eks:DescribeCluster"):
        fetch_cluster(NAME, region=REGION)


def test_fetch_cluster_rejects_a_cluster_that_is_not_active(stubbed: Stubber) -> None:
    described = json.loads(json.dumps(DESCRIBED))
    described["cluster"]["status"] = "CREATING"
    del described["cluster"]["endpoint"]
    stubbed.add_response("describe_cluster", described, {"name": NAME})
    with pytest.raises(CapacityBlockError) as failure:
        fetch_cluster(NAME, region=REGION)
    assert "status is 'CREATING'" in str(failure.value)
    assert "no endpoint" in str(failure.value)


def test_lookup_writes_through_and_is_then_served_from_the_cache(
    stubbed: Stubber, tmp_path: Path
) -> None:
    stubbed.add_response("describe_cluster", DESCRIBED, {"name": NAME})
    assert lookup_cluster(make_stack(make_app()), NAME) == CACHED
    assert json.loads((tmp_path / "cdk.context.json").read_text()) == {KEY: CACHED}
    # No response is queued any more: a second lookup must come from the file.
    assert lookup_cluster(make_stack(make_app(), "Again"), NAME) == CACHED


def test_lookup_with_lookups_off_names_the_fill_command(stubbed: Stubber) -> None:
    app = make_app(context={"capblock-constructs:lookups": False})
    with pytest.raises(CapacityBlockError) as failure:
        lookup_cluster(make_stack(app), NAME)
    message = str(failure.value)
    assert "with 'capblock lookup-cluster ml --region us-east-2'" in message
    assert KEY in message
    # The JSON that goes into cdk.json's context comes from the same command.
    assert "'capblock lookup-cluster ml --region us-east-2 --json' prints" in message


def test_imported_by_name_only_resolves_from_context() -> None:
    stack = make_stack(make_app(context={KEY: CACHED}))
    cluster = eks_v2.Cluster.from_cluster_attributes(stack, "Cluster", cluster_name=NAME)
    problems = Problems("test")
    info = resolve_cluster_info(
        stack, cluster=cluster, kubernetes_version=None, service_cidr=None, problems=problems
    )
    assert not problems
    assert info is not None
    assert (info.endpoint, info.certificate_authority, info.service_cidr) == (
        CACHED["endpoint"],
        CACHED["certificateAuthority"],
        "10.100.0.0/16",
    )
    assert info.kubernetes_version == "1.33"
    assert info.cluster_security_group_id == "sg-0123456789abcdef0"
    assert info.authentication_mode == "API_AND_CONFIG_MAP"


def test_explicit_arguments_win_over_the_lookup() -> None:
    stack = make_stack(make_app(context={KEY: CACHED}))
    cluster = eks_v2.Cluster.from_cluster_attributes(stack, "Cluster", cluster_name=NAME)
    problems = Problems("test")
    info = resolve_cluster_info(
        stack,
        cluster=cluster,
        kubernetes_version="1.34",
        service_cidr="172.20.0.0/16",
        problems=problems,
    )
    assert info is not None
    assert (info.kubernetes_version, info.service_cidr) == ("1.34", "172.20.0.0/16")


def test_fully_imported_cluster_needs_no_lookup() -> None:
    # Lookups are off and the cache is empty: any lookup would be an error.
    stack = make_stack(make_app(context={"capblock-constructs:lookups": False}))
    cluster = eks_v2.Cluster.from_cluster_attributes(
        stack,
        "Cluster",
        cluster_name=NAME,
        cluster_endpoint=CACHED["endpoint"],
        cluster_certificate_authority_data=CACHED["certificateAuthority"],
        cluster_security_group_id=CACHED["clusterSecurityGroupId"],
    )
    problems = Problems("test")
    info = resolve_cluster_info(
        stack,
        cluster=cluster,
        kubernetes_version="1.33",
        service_cidr="10.100.0.0/16",
        problems=problems,
    )
    assert not problems
    assert info is not None
    # Nothing says how the imported cluster authenticates.
    assert info.authentication_mode is None


def resolve_failure(stack: Any, cluster: Any, **kwargs: Any) -> str:
    """The problems resolving ``cluster`` reports (it must report some)."""
    problems = Problems("test")
    options: dict[str, Any] = {"kubernetes_version": None, "service_cidr": None}
    options.update(kwargs)
    info = resolve_cluster_info(stack, cluster=cluster, problems=problems, **options)
    assert info is None
    with pytest.raises(CapacityBlockError) as failure:
        problems.raise_if_any()
    return str(failure.value)


def test_cluster_without_a_name_is_rejected() -> None:
    message = resolve_failure(make_stack(make_app()), object())
    assert "cluster has no cluster_name" in message
    assert "from_cluster_attributes(..., cluster_name='<name>')" in message


def test_deploy_time_cluster_name_cannot_be_looked_up() -> None:
    stack = make_stack(make_app())
    cluster = eks_v2.Cluster.from_cluster_attributes(
        stack, "Cluster", cluster_name=Fn.import_value("ClusterName")
    )
    message = resolve_failure(stack, cluster)
    assert "name is a deploy-time value" in message
    assert "pass cluster_endpoint, cluster_certificate_authority_data" in message


def test_cached_description_without_connection_data_asks_for_a_refresh() -> None:
    stack = make_stack(make_app(context={KEY: {"name": NAME, "endpoint": "https://x"}}))
    cluster = eks_v2.Cluster.from_cluster_attributes(stack, "Cluster", cluster_name=NAME)
    message = resolve_failure(stack, cluster)
    assert "lacks endpoint, certificateAuthority, serviceCidr or kubernetesVersion" in message
    assert "capblock lookup-cluster ml --region us-east-2" in message


def test_cluster_security_group_must_be_known() -> None:
    cached = {k: v for k, v in CACHED.items() if k != "clusterSecurityGroupId"}
    stack = make_stack(make_app(context={KEY: cached}))
    cluster = eks_v2.Cluster.from_cluster_attributes(stack, "Cluster", cluster_name=NAME)
    message = resolve_failure(stack, cluster)
    assert "cluster security group is unknown" in message
    assert "cluster_security_group_id='<resourcesVpcConfig.clusterSecurityGroupId>'" in message
