"""Device plugins: which a node group needs, and that the charts' pods land on its nodes only.

The expectations come from AWS and Kubernetes, written out here:

- AL2023 NVIDIA AMIs need the NVIDIA device plugin; the Bottlerocket NVIDIA
  variants include it (EKS user guide, "Use the NVIDIA DRA driver or device
  plugin on Amazon EKS"). Neuron nodes need the Neuron plugin and EFA nodes the
  EFA plugin on AL2023 and Bottlerocket alike ("Manage Neuron devices",
  "Manage EFA devices").
- NVIDIA chart versions 0.19.0-0.19.2 turned MOFED on by default, which
  conflicts with the EFA plugin; AWS says to disable it (and 0.19.3 reverted
  the default).
- A pod runs on a node when its required node affinity matches the node's
  labels and its tolerations cover every ``NoSchedule``/``NoExecute`` taint
  (Kubernetes "Taints and Tolerations", "Assigning Pods to Nodes"). The small
  matcher below implements those rules; the EFA chart builds its affinity
  from ``supportedInstanceLabels`` (aws/eks-charts
  ``stable/aws-efa-k8s-device-plugin/templates/daemonset.yaml``), which
  :func:`efa_chart_affinity` renders the same way.
- The CDK's kubectl handler installs an ``oci://`` chart with ``helm pull
  <repository>``, so such a repository must be the chart's full reference.
- The handler runs ``helm upgrade --install <release>`` and, on delete, ``helm
  uninstall <release>``: a release named as in AWS's or NVIDIA's install
  commands would take over, then remove, a user's installation. Those commands
  name the releases ``nvdp`` (EKS user guide, "Use the NVIDIA DRA driver or
  device plugin on Amazon EKS"; NVIDIA/k8s-device-plugin README at v0.20.0),
  ``efa`` ("Manage EFA devices on Amazon EKS") and ``neuron-helm-chart``
  ("Manage Neuron devices on Amazon EKS"; aws-neuron/neuron-helm-charts
  README). The same pages show the DaemonSets those installs create:
  ``nvdp-nvidia-device-plugin``, ``efa-aws-efa-k8s-device-plugin`` and
  ``neuron-device-plugin``.
- Each chart names its objects from a "fullname": the override value when set,
  else the release name, with ``-<chart name>`` appended unless the release name
  contains it (the charts' ``templates/_helpers.tpl``). The Neuron chart's
  ``devicePlugin.fullnameOverride`` and ``devicePlugin.serviceAccount.name``
  default to ``neuron-device-plugin`` (its ``values.yaml``), so its objects keep
  that name whatever the release. :func:`object_names` renders the names as the
  templates do; Helm refuses a release name over 53 characters, Kubernetes an
  object name over 63.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

import pytest
from aws_cdk import Stack
from aws_cdk import aws_eks as eks_v1
from aws_cdk import aws_eks_v2 as eks_v2
from aws_cdk import aws_lambda as lambda_
from aws_cdk.assertions import Template

from capblock_constructs import CapacityBlockError, NodeTaint
from capblock_constructs._eks_limits import EKS_LABEL_KEY_LENGTH
from capblock_constructs.device_plugins import (
    EFA_DEVICE_PLUGIN,
    NEURON_DEVICE_PLUGIN,
    NVIDIA_DEVICE_PLUGIN,
    DevicePluginChart,
    device_plugins_for,
    install_device_plugins,
)
from capblock_constructs.instance_types import known_instance_types
from tests.support import ACCOUNT, cfn_lint_errors, make_app, make_stack

ALL = (NVIDIA_DEVICE_PLUGIN, EFA_DEVICE_PLUGIN, NEURON_DEVICE_PLUGIN)
GPU_TAINT = {"key": "nvidia.com/gpu", "effect": "NoSchedule"}
NEURON_TAINT = {"key": "aws.amazon.com/neuron", "effect": "NoSchedule"}


# -- a scheduler in miniature -----------------------------------------------------------------


def _expression_matches(expression: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    key, operator = expression["key"], expression["operator"]
    values = expression.get("values", [])
    if operator == "In":
        return key in labels and labels[key] in values
    if operator == "NotIn":
        return key not in labels or labels[key] not in values
    if operator == "Exists":
        return key in labels
    if operator == "DoesNotExist":
        return key not in labels
    raise AssertionError(f"operator {operator} not modelled")


def affinity_matches(affinity: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """Required node affinity: any term matches when all its expressions do."""
    if not affinity:
        return True
    required = affinity["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    return any(
        all(_expression_matches(e, labels) for e in term.get("matchExpressions", []))
        for term in required["nodeSelectorTerms"]
    )


def tolerates(tolerations: Sequence[Mapping[str, Any]], taint: Mapping[str, Any]) -> bool:
    """Whether some toleration matches the taint (Kubernetes' rule)."""
    for toleration in tolerations:
        effect = toleration.get("effect")
        if effect and effect != taint["effect"]:
            continue
        if toleration.get("operator", "Equal") == "Exists":
            if not toleration.get("key") or toleration["key"] == taint["key"]:
                return True
        elif toleration.get("key") == taint["key"] and toleration.get("value") == taint.get(
            "value"
        ):
            return True
    return False


def efa_chart_affinity(values: Mapping[str, Any]) -> dict[str, Any]:
    """The required node affinity the EFA chart's template builds from its values."""
    selected = values["supportedInstanceLabels"]
    return {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {
                        "matchExpressions": [
                            {"key": key, "operator": "In", "values": selected["values"]},
                            {
                                "key": "eks.amazonaws.com/compute-type",
                                "operator": "NotIn",
                                "values": ["auto"],
                            },
                        ]
                    }
                    for key in selected["keys"]
                ]
            }
        }
    }


def pod_placement(chart: DevicePluginChart) -> tuple[dict[str, Any] | None, list[Any]]:
    """The plugin pods' required affinity and tolerations, as the chart renders them."""
    values = dict(chart.values)
    if chart.plugin == "efa":
        # The chart's template always adds CriticalAddonsOnly in front of the values'.
        tolerations = [{"key": "CriticalAddonsOnly", "operator": "Exists"}]
        return efa_chart_affinity(values), tolerations + list(values["tolerations"])
    if chart.plugin == "neuron":
        plugin = values["devicePlugin"]
        return plugin["affinity"], list(plugin["tolerations"])
    return values["affinity"], list(values["tolerations"])


def runs_on(
    chart: DevicePluginChart, labels: Mapping[str, str], taints: Sequence[Mapping[str, Any]]
) -> bool:
    """Whether the chart's plugin pods schedule on a node with these labels and taints."""
    affinity, tolerations = pod_placement(chart)
    blocking = [t for t in taints if t["effect"] in ("NoSchedule", "NoExecute")]
    return affinity_matches(affinity, labels) and all(tolerates(tolerations, t) for t in blocking)


def taint_dicts(taints: Sequence[NodeTaint]) -> list[dict[str, Any]]:
    return [{"key": t.key, "value": t.value, "effect": t.effect} for t in taints]


# -- which plugins ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("instance_type", "ami_type", "efa", "expected"),
    [
        # AL2023 NVIDIA lacks the NVIDIA plugin; EFA needs its own on every AMI.
        ("p5.48xlarge", None, False, {"nvidia"}),
        ("p5.48xlarge", "AL2023_x86_64_NVIDIA", True, {"nvidia", "efa"}),
        ("p6e-gb200.36xlarge", "AL2023_ARM_64_NVIDIA", False, {"nvidia"}),
        ("p5.48xlarge", "AL2_x86_64_GPU", False, {"nvidia"}),
        # A custom AMI is taken to be built like AL2023.
        ("p5.48xlarge", "CUSTOM", False, {"nvidia"}),
        # Bottlerocket NVIDIA variants include the NVIDIA plugin, not the EFA one.
        ("p5.48xlarge", "BOTTLEROCKET_x86_64_NVIDIA", True, {"efa"}),
        ("p6e-gb200.36xlarge", "BOTTLEROCKET_ARM_64_NVIDIA_FIPS", False, set()),
        # Neuron needs its plugin on every AMI.
        ("trn2.48xlarge", None, True, {"neuron", "efa"}),
        ("trn1.32xlarge", "BOTTLEROCKET_x86_64", False, {"neuron"}),
        # A type the table does not know: the AMI type names the accelerator.
        ("p9.48xlarge", "AL2023_x86_64_NVIDIA", False, {"nvidia"}),
        ("trn9.48xlarge", "AL2023_x86_64_NEURON", False, {"neuron"}),
        ("m7i.48xlarge", None, True, {"efa"}),
        ("m7i.48xlarge", None, False, set()),
    ],
)
def test_plugins_the_ami_does_not_bring(
    instance_type: str, ami_type: str | None, efa: bool, expected: set[str]
) -> None:
    plugins = device_plugins_for(instance_type=instance_type, ami_type=ami_type, efa=efa)
    assert {plugin.plugin for plugin in plugins} == expected


def test_every_capacity_block_type_gets_its_accelerators_plugin() -> None:
    for instance_type in known_instance_types():
        (plugin,) = device_plugins_for(instance_type=instance_type, efa=False)
        expected = "neuron" if instance_type.startswith(("trn", "inf")) else "nvidia"
        assert plugin.plugin == expected, instance_type


# -- where the pods run -----------------------------------------------------------------------


@pytest.mark.parametrize("chart", ALL, ids=lambda c: c.plugin)
def test_plugin_runs_on_labeled_nodes_whatever_their_taints(chart: DevicePluginChart) -> None:
    labels = {**chart.node_labels, "node.kubernetes.io/instance-type": "p5.48xlarge"}
    taints = [
        GPU_TAINT,
        NEURON_TAINT,
        {"key": "dedicated", "value": "ml", "effect": "NoExecute"},
    ]
    assert runs_on(chart, labels, taints)


@pytest.mark.parametrize("chart", ALL, ids=lambda c: c.plugin)
def test_plugin_stays_off_unlabeled_nodes(chart: DevicePluginChart) -> None:
    cpu_node = {"kubernetes.io/os": "linux", "node.kubernetes.io/instance-type": "m7i.large"}
    # An AL2023 NVIDIA node of a group that did not ask: nodeadm labels it gpu.present, which
    # the NVIDIA chart's own default affinity would have selected.
    other_gpu_node = {
        "nvidia.com/gpu.present": "true",
        "node.kubernetes.io/instance-type": "p5.48xlarge",
        "capblock-constructs/capacity-reservation-id": "cr-0123456789abcdef0",
    }
    assert not runs_on(chart, cpu_node, [])
    assert not runs_on(chart, other_gpu_node, [GPU_TAINT])


@pytest.mark.parametrize("chart", ALL, ids=lambda c: c.plugin)
def test_plugin_stays_off_auto_mode_nodes(chart: DevicePluginChart) -> None:
    # EKS Auto Mode manages its nodes' devices itself, as termination.py's Auto Mode check
    # leaves the Pod Identity Agent to it; even a label copied onto an Auto Mode node pool
    # must not bring the plugin there.
    auto = {**chart.node_labels, "eks.amazonaws.com/compute-type": "auto"}
    assert not runs_on(chart, auto, [])


def test_each_plugin_has_its_own_label() -> None:
    labels = [chart.node_label for chart in ALL]
    assert len(set(labels)) == len(labels)
    for chart in ALL:
        others = [other for other in ALL if other is not chart]
        for other in others:
            assert not runs_on(other, chart.node_labels, []), (chart.plugin, other.plugin)


def test_node_labels_fit_the_eks_api() -> None:
    # The labels go onto managed node groups, whose keys EKS limits to 63 characters.
    for chart in ALL:
        (key,) = chart.node_labels
        assert len(key) <= EKS_LABEL_KEY_LENGTH[1]


# -- the charts themselves ----------------------------------------------------------------------


def _version(text: str) -> tuple[int, ...]:
    match = re.fullmatch(r"v?(\d+)\.(\d+)\.(\d+)", text)
    assert match, text
    return tuple(int(part) for part in match.groups())


def test_nvidia_plugin_is_past_the_mofed_default_and_disables_it() -> None:
    assert _version(NVIDIA_DEVICE_PLUGIN.version) >= (0, 19, 3)
    assert NVIDIA_DEVICE_PLUGIN.values["mofedEnabled"] is False


def test_charts_are_pinned_and_sourced() -> None:
    for chart in ALL:
        _version(chart.version)
        assert chart.source
        assert chart.namespace != "default"  # the NVIDIA chart refuses it


def test_oci_repositories_name_the_chart() -> None:
    # The CDK's kubectl handler runs 'helm pull <repository>' for oci:// charts and ignores
    # the chart name.
    for chart in ALL:
        if chart.repository.startswith("oci://"):
            assert chart.repository.rsplit("/", 1)[-1] == chart.chart


def test_neuron_chart_installs_only_the_device_plugin() -> None:
    # As the EKS user guide installs it: no node problem detector.
    assert NEURON_DEVICE_PLUGIN.values["npd"] == {"enabled": False}


def test_resources_are_the_ones_pods_request() -> None:
    assert [chart.resource for chart in ALL] == [
        "nvidia.com/gpu",
        "vpc.amazonaws.com/efa",
        "aws.amazon.com/neuron",
    ]


# -- names: ours, not the ones AWS's and NVIDIA's commands use ----------------------------------

# The release names in the install commands the documentation gives (module docstring above).
DOCUMENTED_RELEASES = {"nvidia": "nvdp", "efa": "efa", "neuron": "neuron-helm-chart"}
# The DaemonSets those commands create, as the same pages show them.
DOCUMENTED_DAEMONSETS = {
    "nvidia": "nvdp-nvidia-device-plugin",
    "efa": "efa-aws-efa-k8s-device-plugin",
    "neuron": "neuron-device-plugin",
}
# The charts' own defaults for the values that name objects (their values.yaml).
CHART_NAME_DEFAULTS: dict[str, dict[str, Any]] = {
    "nvidia": {"fullnameOverride": ""},
    "efa": {"fullnameOverride": ""},
    "neuron": {
        "devicePlugin": {
            "fullnameOverride": "neuron-device-plugin",
            "serviceAccount": {"name": "neuron-device-plugin"},
        }
    },
}
HELM_RELEASE_NAME_LENGTH = 53
KUBERNETES_NAME_LENGTH = 63
DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")


def _merged(defaults: Mapping[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
    """Helm's merge of user values over the chart's: maps merge key by key, the rest replace."""
    merged = dict(defaults)
    for key, value in values.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merged(merged[key], value)
        else:
            merged[key] = value
    return merged


def _fullname(override: str, release: str, chart_name: str) -> str:
    if override:
        name = override
    elif chart_name in release:
        name = release
    else:
        name = f"{release}-{chart_name}"
    return name[:KUBERNETES_NAME_LENGTH].rstrip("-")


def object_names(plugin: str, release: str, values: Mapping[str, Any]) -> dict[str, str]:
    """The names the chart gives the objects it creates with these values, by object."""
    merged = _merged(CHART_NAME_DEFAULTS[plugin], values)
    if plugin == "nvidia":
        # deployments/helm/nvidia-device-plugin/templates: daemonset-device-plugin.yml,
        # daemonset-mps-control-daemon.yml, service-account.yml, role.yml, role-binding.yml.
        full = _fullname(merged["fullnameOverride"], release, "nvidia-device-plugin")
        return {
            "DaemonSet": full,
            "DaemonSet/mps": f"{full}-mps-control-daemon",
            "ServiceAccount": f"{full}-service-account",
            "ClusterRole": f"{full}-role",
            "ClusterRoleBinding": f"{full}-role-binding",
        }
    if plugin == "efa":
        # stable/aws-efa-k8s-device-plugin/templates/daemonset.yaml: its only object.
        return {
            "DaemonSet": _fullname(merged["fullnameOverride"], release, "aws-efa-k8s-device-plugin")
        }
    # charts/neuron-helm-chart/templates/device-plugin/device-plugin-{daemonset,rbac}.yaml.
    plugin_values = merged["devicePlugin"]
    full = _fullname(plugin_values["fullnameOverride"], release, "neuron-helm-chart")
    return {
        "DaemonSet": full,
        "ClusterRole": full,
        "ClusterRoleBinding": full,
        "ServiceAccount": plugin_values["serviceAccount"]["name"],
    }


def _quoted_release(source: str) -> str:
    """The release name in the install command a chart's ``source`` quotes."""
    match = re.search(r"helm (?:upgrade --install|install) (\S+) ", source)
    assert match, source
    return match.group(1)


def test_sources_quote_the_documented_install_commands() -> None:
    for chart in ALL:
        assert _quoted_release(chart.source) == DOCUMENTED_RELEASES[chart.plugin], chart.plugin


def test_object_names_render_as_the_documentation_shows() -> None:
    # The renderer, checked against what AWS's pages show the documented installs create.
    for plugin, release in DOCUMENTED_RELEASES.items():
        names = object_names(plugin, release, {})
        assert names["DaemonSet"] == DOCUMENTED_DAEMONSETS[plugin], plugin


@pytest.mark.parametrize("chart", ALL, ids=lambda c: c.plugin)
def test_release_is_ours_and_not_the_documented_one(chart: DevicePluginChart) -> None:
    assert chart.release == f"capblock-{chart.plugin}-device-plugin"
    assert chart.release != DOCUMENTED_RELEASES[chart.plugin]
    assert chart.release != _quoted_release(chart.source)
    assert chart.release != chart.chart
    assert len(chart.release) <= HELM_RELEASE_NAME_LENGTH
    assert DNS_LABEL.fullmatch(chart.release)


def test_override_values_name_the_objects_after_the_release() -> None:
    assert NVIDIA_DEVICE_PLUGIN.values["fullnameOverride"] == NVIDIA_DEVICE_PLUGIN.release
    assert EFA_DEVICE_PLUGIN.values["fullnameOverride"] == EFA_DEVICE_PLUGIN.release
    neuron = NEURON_DEVICE_PLUGIN.values["devicePlugin"]
    assert neuron["fullnameOverride"] == NEURON_DEVICE_PLUGIN.release
    assert neuron["serviceAccount"] == {"name": NEURON_DEVICE_PLUGIN.release}


@pytest.mark.parametrize("chart", ALL, ids=lambda c: c.plugin)
def test_objects_do_not_collide_with_a_documented_install(chart: DevicePluginChart) -> None:
    ours = object_names(chart.plugin, chart.release, chart.values)
    theirs = object_names(chart.plugin, DOCUMENTED_RELEASES[chart.plugin], {})
    # Same kind, same name would be one object claimed by two releases (the releases share
    # kube-system, and ClusterRoles are cluster-wide).
    assert not {(kind, ours[kind]) for kind in ours} & {(kind, theirs[kind]) for kind in theirs}
    for name in ours.values():
        assert name.startswith(chart.release), (chart.plugin, name)
        assert len(name) <= KUBERNETES_NAME_LENGTH
        assert DNS_LABEL.fullmatch(name)


@pytest.mark.parametrize("chart", ALL, ids=lambda c: c.plugin)
def test_object_names_do_not_follow_the_release(chart: DevicePluginChart) -> None:
    # Fixed by the override values, so an installation of the same chart under any other
    # release name that keeps the chart's defaults gets different objects.
    for other in ("nvidia-device-plugin", "aws-efa-k8s-device-plugin", "neuron-helm-chart", "x"):
        assert object_names(chart.plugin, other, chart.values) == object_names(
            chart.plugin, chart.release, chart.values
        )


# -- installing ---------------------------------------------------------------------------------


def _v1_cluster(stack: Stack) -> eks_v1.Cluster:
    return eks_v1.Cluster(
        stack,
        "Cluster",
        version=eks_v1.KubernetesVersion.V1_32,
        default_capacity=0,
        kubectl_layer=lambda_.LayerVersion.from_layer_version_arn(
            stack, "Kubectl", f"arn:aws:lambda:us-east-2:{ACCOUNT}:layer:kubectl:1"
        ),
    )


@pytest.fixture(scope="module")
def installed() -> tuple[Stack, dict[str, Any]]:
    """A v1 cluster asked three times: p5 with EFA, p5 again, trn2."""
    stack = make_stack(make_app(), "Plugins")
    cluster = _v1_cluster(stack)
    first = install_device_plugins(cluster, instance_type="p5.48xlarge", efa=True)
    second = install_device_plugins(cluster, instance_type="p5.48xlarge", efa=False)
    third = install_device_plugins(cluster, instance_type="trn2.48xlarge", efa=False)
    # The second request finds the first one's chart under the cluster.
    assert [c.node.path for c in second.charts] == [first.charts[0].node.path]
    assert first.charts[0].node.path == "Plugins/Cluster/chart-NvidiaDevicePlugin"
    assert [p.plugin for p in third.plugins] == ["neuron"]
    return stack, dict(Template.from_stack(stack).to_json())


def _charts(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        r["Properties"]["Chart"]: r["Properties"]
        for r in template["Resources"].values()
        if r["Type"].endswith("HelmChart")
    }


def test_each_plugin_is_installed_once_per_cluster(installed: tuple[Stack, Any]) -> None:
    charts = _charts(installed[1])
    assert sorted(charts) == sorted(chart.chart for chart in ALL)
    assert len([r for r in installed[1]["Resources"].values() if "HelmChart" in r["Type"]]) == 3


def test_charts_carry_repository_version_namespace_and_values(
    installed: tuple[Stack, Any],
) -> None:
    charts = _charts(installed[1])
    for chart in ALL:
        props = charts[chart.chart]
        assert props["Repository"] == chart.repository
        assert props["Version"] == chart.version
        assert props["Namespace"] == chart.namespace
        assert props["Release"] == chart.release
        assert props["Release"].startswith("capblock-")
        assert json.loads(props["Values"]) == json.loads(json.dumps(dict(chart.values)))


def test_installed_template_passes_cfn_lint(installed: tuple[Stack, Any]) -> None:
    assert cfn_lint_errors(installed[1]) == []


def test_fails_on_an_imported_cluster() -> None:
    stack = make_stack(make_app(), "Imported")
    cluster = eks_v2.Cluster.from_cluster_attributes(stack, "Cluster", cluster_name="c")
    with pytest.raises(CapacityBlockError) as failure:
        install_device_plugins(cluster, instance_type="p5.48xlarge", efa=False)  # type: ignore[arg-type]
    message = str(failure.value)
    assert "needs a cluster built in this app" in message
    assert "nvidia-device-plugin 0.20.0 from https://nvidia.github.io/k8s-device-plugin" in message


def test_fails_on_a_v2_cluster_without_a_kubectl_provider() -> None:
    stack = make_stack(make_app(), "NoKubectl")
    cluster = eks_v2.Cluster(stack, "Cluster", version=eks_v2.KubernetesVersion.V1_34)
    with pytest.raises(CapacityBlockError) as failure:
        install_device_plugins(cluster, instance_type="p5.48xlarge", efa=False)
    message = str(failure.value)
    assert message.startswith("NoKubectl/Cluster: ")
    assert "kubectl_provider_options=eks_v2.KubectlProviderOptions" in message


def test_default_taints_are_tolerated() -> None:
    from capblock_constructs import accelerator_taints

    for instance_type in ("p5.48xlarge", "trn2.48xlarge"):
        for chart in device_plugins_for(instance_type=instance_type, efa=True):
            taints = taint_dicts(accelerator_taints(instance_type))
            assert runs_on(chart, chart.node_labels, taints), (instance_type, chart.plugin)
