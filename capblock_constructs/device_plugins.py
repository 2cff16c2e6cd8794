"""Kubernetes device plugins for Capacity Block nodes: which ones a node group needs, and
installing them as Helm charts on a cluster built in the same app.

Why they are needed
-------------------
A node joins the cluster without advertising its accelerators: Kubernetes only
schedules pods that request ``nvidia.com/gpu``, ``aws.amazon.com/neuron`` or
``vpc.amazonaws.com/efa`` once a device plugin on the node registers them.

- NVIDIA GPUs: the EKS-optimized AL2023 (and AL2) NVIDIA AMIs carry the driver
  but not the NVIDIA Kubernetes device plugin; the Bottlerocket NVIDIA variants
  include it ("The EKS-optimized Bottlerocket AMIs include the NVIDIA device
  plugin. You do not need to install it separately."). EKS user guide, "Use the
  NVIDIA DRA driver or device plugin on Amazon EKS".
- EFA: the AL2023 and Bottlerocket AMIs carry the EFA host software but "do not
  include the EFA DRA driver or EFA device plugin". EKS user guide, "Manage EFA
  devices on Amazon EKS".
- Neuron (Trainium, Inferentia): the Neuron device plugin is needed on the
  AL2023 Neuron AMI and on Bottlerocket alike. EKS user guide, "Manage Neuron
  devices on Amazon EKS".

The ``efa-only`` interfaces the node groups create on every network card but
the first need Amazon VPC CNI 1.18.5 or later on the cluster (EKS user guide,
"Run machine learning training on Amazon EKS with Elastic Fabric Adapter":
"You must have VPC CNI version 1.18.5 or later for EFA-only interfaces").

What is installed
-----------------
One Helm chart per plugin and cluster, from the repository AWS documents, at a
pinned version (:data:`NVIDIA_DEVICE_PLUGIN`, :data:`EFA_DEVICE_PLUGIN`,
:data:`NEURON_DEVICE_PLUGIN`). Each plugin's pods tolerate every taint (a node
that needs the plugin must get it whatever its taints, the node groups'
``nvidia.com/gpu`` and ``aws.amazon.com/neuron`` ``NoSchedule`` taints
included) and run only on nodes that carry its selection label with the value
``true`` (:attr:`DevicePluginChart.node_label`), which the node groups put on
their nodes when they install the plugin. So these plugins land on nothing else:
not on CPU nodes, not on Bottlerocket NVIDIA nodes that bring their own NVIDIA
plugin, and not on EKS Auto Mode nodes, which manage their devices themselves
(every chart also excludes ``eks.amazonaws.com/compute-type`` ``auto``, as
AWS's EFA and Neuron charts do).

The Helm releases, and the objects the charts create, are named
``capblock-<nvidia|efa|neuron>-device-plugin`` (:attr:`DevicePluginChart.release`),
not as in AWS's and NVIDIA's install commands, so deploying or destroying the
app never upgrades, uninstalls or collides with an installation made with those
commands. Such a separately installed plugin may still select these nodes,
though (the charts' defaults select by instance type or NVIDIA GPU label), and a
node must not run two plugins for one resource: do not use
``install_device_plugins`` on a cluster that already runs the plugin for these
nodes, or exclude the ``capblock-constructs/<nvidia|efa|neuron>-device-plugin``
label from that plugin's node affinity.

These are the device plugins, which advertise whole devices as integer
resources. AWS recommends the DRA drivers for new deployments on Kubernetes
1.34 and later; a node must not run both for the same devices. Install the DRA
drivers yourself instead of using this module if you choose them.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from aws_cdk import aws_eks as eks
from aws_cdk import aws_eks_v2 as eks_v2
from constructs import Construct

from ._cluster_info import check_helm_cluster
from ._problems import Problems
from .taints import accelerator_of

__all__ = [
    "EFA_DEVICE_PLUGIN",
    "EFA_DEVICE_PLUGIN_LABEL",
    "NEURON_DEVICE_PLUGIN",
    "NEURON_DEVICE_PLUGIN_LABEL",
    "NVIDIA_DEVICE_PLUGIN",
    "NVIDIA_DEVICE_PLUGIN_LABEL",
    "DevicePluginChart",
    "DevicePlugins",
    "device_plugins_for",
    "install_device_plugins",
]

_SELECTED = "true"
_NOT_ON = ["auto", "fargate", "hybrid"]
_TOLERATE_EVERY_TAINT = [{"operator": "Exists"}]


def _affinity(label: str) -> dict[str, Any]:
    """Required node affinity: the plugin's label is ``true`` and the node is no Auto Mode,
    Fargate or hybrid node."""
    return {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {
                        "matchExpressions": [
                            {"key": label, "operator": "In", "values": [_SELECTED]},
                            {
                                "key": "eks.amazonaws.com/compute-type",
                                "operator": "NotIn",
                                "values": list(_NOT_ON),
                            },
                        ]
                    }
                ]
            }
        }
    }


@dataclass(frozen=True, kw_only=True)
class DevicePluginChart:
    """One device plugin's Helm chart: where it comes from, where it goes, how it selects nodes.

    The values are exactly what :func:`install_device_plugins` passes; use them
    to install the chart yourself on a cluster this app does not build
    (``helm upgrade --install <release> <chart> --repo <repository> --version
    <version> --namespace <namespace> -f values.json``, or for an ``oci://``
    repository ``helm upgrade --install <release> <repository> --version ...``)
    and label the nodes with ``{node_label: "true"}``.
    """

    plugin: Literal["nvidia", "efa", "neuron"]
    """Which plugin."""
    resource: str
    """The extended resource the plugin advertises, for example ``nvidia.com/gpu``."""
    chart: str
    """The chart name."""
    repository: str
    """The chart repository. An ``oci://`` repository is the chart's full reference."""
    version: str
    """The pinned chart version."""
    release: str
    """The Helm release name, ``capblock-<plugin>-device-plugin``, which AWS's and NVIDIA's
    install commands do not use, so ``helm upgrade --install`` and ``helm uninstall`` of this
    release leave theirs alone. :attr:`values` give the chart's objects the same name."""
    namespace: str
    """The namespace the release goes into."""
    node_label: str
    """The node label (value ``true``) that the plugin's pods require."""
    construct_id: str
    """The chart's construct ID under the cluster (``chart-<id>``), stable, so a cluster gets
    one installation however many node groups ask for it."""
    values: Mapping[str, Any] = field(default_factory=dict)
    """The Helm values."""
    source: str = ""
    """Where the chart, its version and the need for it are documented."""

    @property
    def node_labels(self) -> dict[str, str]:
        """The labels a node needs for this plugin to run on it."""
        return {self.node_label: _SELECTED}


NVIDIA_DEVICE_PLUGIN_LABEL = "capblock-constructs/nvidia-device-plugin"
EFA_DEVICE_PLUGIN_LABEL = "capblock-constructs/efa-device-plugin"
NEURON_DEVICE_PLUGIN_LABEL = "capblock-constructs/neuron-device-plugin"

# Release names, and the names the charts give their objects through their override values.
# Each chart names its objects after its release unless the override is set, and the Neuron
# chart's default override is the fixed "neuron-device-plugin" (the EKS user guide's
# DaemonSet): two installations of one chart with the same object names collide.
_NVIDIA_NAME = "capblock-nvidia-device-plugin"
_EFA_NAME = "capblock-efa-device-plugin"
_NEURON_NAME = "capblock-neuron-device-plugin"

NVIDIA_DEVICE_PLUGIN = DevicePluginChart(
    plugin="nvidia",
    resource="nvidia.com/gpu",
    chart="nvidia-device-plugin",
    repository="https://nvidia.github.io/k8s-device-plugin",
    version="0.20.0",
    release=_NVIDIA_NAME,
    namespace="kube-system",
    node_label=NVIDIA_DEVICE_PLUGIN_LABEL,
    construct_id="NvidiaDevicePlugin",
    values={
        # The chart names its DaemonSets, ServiceAccount, ClusterRole and ClusterRoleBinding
        # "<fullname>", "<fullname>-mps-control-daemon", "<fullname>-service-account",
        # "<fullname>-role", "<fullname>-role-binding" (templates/_helpers.tpl).
        "fullnameOverride": _NVIDIA_NAME,
        # The chart's default affinity would select any node labeled
        # nvidia.com/gpu.present=true, which nodeadm sets on every AL2023 NVIDIA node, and so
        # also land on nodes of groups that did not ask for it.
        "affinity": _affinity(NVIDIA_DEVICE_PLUGIN_LABEL),
        "tolerations": _TOLERATE_EVERY_TAINT,
        # Chart versions 0.19.0-0.19.2 turned MOFED on by default, which mounts every
        # /dev/infiniband/uverbs* device into GPU containers and conflicts with the EFA device
        # plugin; AWS says to disable it explicitly (EKS user guide, "Manage EFA devices").
        "mofedEnabled": False,
    },
    source=(
        "EKS user guide, 'Use the NVIDIA DRA driver or device plugin on Amazon EKS' (helm "
        "install nvdp nvdp/nvidia-device-plugin --namespace nvidia, from repository "
        "https://nvidia.github.io/k8s-device-plugin); version "
        "0.20.0 from NVIDIA/k8s-device-plugin tag v0.20.0 (2026-08-19) and the chart index "
        "published 2026-08-20; 0.19.3 and later no longer enable MOFED and GDRCopy by default"
    ),
)
"""The NVIDIA Kubernetes device plugin (``nvidia.com/gpu``), chart 0.20.0."""

EFA_DEVICE_PLUGIN = DevicePluginChart(
    plugin="efa",
    resource="vpc.amazonaws.com/efa",
    chart="aws-efa-k8s-device-plugin",
    repository="https://aws.github.io/eks-charts",
    version="v0.5.30",
    release=_EFA_NAME,
    namespace="kube-system",
    node_label=EFA_DEVICE_PLUGIN_LABEL,
    construct_id="EfaDevicePlugin",
    values={
        # The chart's one object, the DaemonSet, and its pods' "name" selector label are
        # "<fullname>", else "<release>-aws-efa-k8s-device-plugin".
        "fullnameOverride": _EFA_NAME,
        # The chart builds its required node affinity from these: the label must be 'true',
        # and (always, from the chart's template) the node must not be an Auto Mode node.
        "supportedInstanceLabels": {"keys": [EFA_DEVICE_PLUGIN_LABEL], "values": [_SELECTED]},
        "tolerations": _TOLERATE_EVERY_TAINT,
    },
    source=(
        "EKS user guide, 'Manage EFA devices on Amazon EKS' (helm install efa "
        "eks/aws-efa-k8s-device-plugin -n kube-system); version v0.5.30 (plugin v0.5.20) "
        "from aws/eks-charts stable/aws-efa-k8s-device-plugin/Chart.yaml at bfe91c4 "
        "(2026-07-21)"
    ),
)
"""The EFA Kubernetes device plugin (``vpc.amazonaws.com/efa``), chart v0.5.30."""

NEURON_DEVICE_PLUGIN = DevicePluginChart(
    plugin="neuron",
    resource="aws.amazon.com/neuron",
    chart="neuron-helm-chart",
    repository="oci://public.ecr.aws/neuron/neuron-helm-chart",
    version="1.9.0",
    release=_NEURON_NAME,
    namespace="kube-system",
    node_label=NEURON_DEVICE_PLUGIN_LABEL,
    construct_id="NeuronDevicePlugin",
    values={
        "devicePlugin": {
            # The DaemonSet, ClusterRole and ClusterRoleBinding are "<fullnameOverride>" and
            # the ServiceAccount "<serviceAccount.name>", both "neuron-device-plugin" by
            # default whatever the release. The chart puts them in devicePlugin.namespaceOverride
            # (default kube-system), not the release's namespace.
            "fullnameOverride": _NEURON_NAME,
            "serviceAccount": {"name": _NEURON_NAME},
            "affinity": _affinity(NEURON_DEVICE_PLUGIN_LABEL),
            "tolerations": _TOLERATE_EVERY_TAINT,
        },
        # As the EKS user guide installs it: the node problem detector is a separate
        # component (EKS's node monitoring agent add-on covers node health).
        "npd": {"enabled": False},
    },
    source=(
        "EKS user guide, 'Manage Neuron devices on Amazon EKS' (helm upgrade --install "
        "neuron-helm-chart oci://public.ecr.aws/neuron/neuron-helm-chart --set "
        "npd.enabled=false); version 1.9.0 (Neuron SDK 2.31.0, device plugin 2.31.0.0) from the "
        "aws-neuron/neuron-helm-charts 1.9.0 release"
    ),
)
"""The Neuron Kubernetes device plugin (``aws.amazon.com/neuron``), chart 1.9.0."""


def device_plugins_for(
    *, instance_type: str, ami_type: str | None = None, efa: bool
) -> tuple[DevicePluginChart, ...]:
    """The device plugins nodes of this kind need and their AMI does not bring.

    - NVIDIA types: the NVIDIA plugin, unless ``ami_type`` is a Bottlerocket
      NVIDIA variant (which includes it). A custom AMI (``ami_type`` ``None``
      or ``CUSTOM``) is treated as AL2023, which does not.
    - Trainium and Inferentia types: the Neuron plugin, on every AMI.
    - ``efa``: the EFA plugin, on every AMI.

    For an instance type the library does not know, ``ami_type`` names the
    accelerator (``...NVIDIA``, ``...NEURON``), as for the default taints.

    :param instance_type: The nodes' EC2 instance type.
    :param ami_type: The EKS AMI type (``AmiType`` spelling, for example
        ``AL2023_x86_64_NVIDIA`` or ``BOTTLEROCKET_x86_64_NVIDIA``). Defaults to
        the EKS-optimized AL2023 AMI or a custom AMI built like it.
    :param efa: Whether the nodes have EFA interfaces.
    """
    plugins: list[DevicePluginChart] = []
    accelerator = accelerator_of(instance_type, ami_type=ami_type)
    bottlerocket_nvidia = (
        ami_type is not None and ami_type.startswith("BOTTLEROCKET") and "NVIDIA" in ami_type
    )
    if accelerator == "nvidia" and not bottlerocket_nvidia:
        plugins.append(NVIDIA_DEVICE_PLUGIN)
    if accelerator == "neuron":
        plugins.append(NEURON_DEVICE_PLUGIN)
    if efa:
        plugins.append(EFA_DEVICE_PLUGIN)
    return tuple(plugins)


def device_plugin_labels(plugins: tuple[DevicePluginChart, ...]) -> dict[str, str]:
    """The node labels that select the nodes for ``plugins``."""
    labels: dict[str, str] = {}
    for plugin in plugins:
        labels.update(plugin.node_labels)
    return labels


@dataclass(frozen=True, kw_only=True)
class DevicePlugins:
    """What :func:`install_device_plugins` installed, or found installed, for one node group."""

    plugins: tuple[DevicePluginChart, ...]
    """The plugins the node group's nodes need."""
    charts: tuple[Construct, ...]
    """The ``HelmChart`` constructs under the cluster, one per plugin, in the same order;
    shared with every other node group of the cluster that asked for the same plugin."""

    @property
    def node_labels(self) -> dict[str, str]:
        """The labels the node group must put on its nodes so the plugins run there."""
        return device_plugin_labels(self.plugins)


def check_device_plugin_cluster(cluster: object, problems: Problems) -> None:
    """Add a problem when Helm charts cannot be installed on ``cluster`` from this app."""
    charts = ", ".join(
        f"{chart.chart} {chart.version} from {chart.repository}"
        for chart in (NVIDIA_DEVICE_PLUGIN, EFA_DEVICE_PLUGIN, NEURON_DEVICE_PLUGIN)
    )
    check_helm_cluster(
        cluster,
        problems,
        option="install_device_plugins",
        charts="the device plugins' Helm charts",
        install_yourself=(
            f"install them yourself ({charts}; capblock_constructs.device_plugins has their "
            "values and node labels) and drop install_device_plugins"
        ),
    )


def install_device_plugins(
    cluster: eks_v2.Cluster | eks.Cluster,
    *,
    instance_type: str,
    ami_type: str | None = None,
    efa: bool,
) -> DevicePlugins:
    """Install the device plugins nodes of this kind need, once per cluster.

    Each plugin (see :func:`device_plugins_for`) is a Helm chart added to the
    cluster under the construct ID ``chart-<DevicePluginChart.construct_id>``;
    when the cluster already has that child (another node group installed the
    plugin), it is reused, so any number of node groups can ask. The charts
    go through the cluster's kubectl provider (an ``aws_eks_v2.Cluster`` needs
    ``kubectl_provider_options``), which adds Lambda functions and assets to
    the app. The plugins' pods run only on nodes labeled with
    :attr:`DevicePlugins.node_labels`: put those labels on the node group's
    nodes (the node group constructs do). A plugin installed separately may
    select those nodes too; do not use this where one already runs for them
    (see the module's notes).

    On an EKS Auto Mode cluster the plugins are still installed, for these
    node groups' nodes, and stay off the Auto Mode nodes, which bring their
    own.

    :param cluster: A cluster built in this app.
    :param instance_type: The nodes' EC2 instance type.
    :param ami_type: The EKS AMI type; see :func:`device_plugins_for`.
        Defaults to AL2023 (or a custom AMI built like it).
    :param efa: Whether the nodes have EFA interfaces.

    Raises:
        CapacityBlockError: the cluster is imported, or an ``aws_eks_v2``
            cluster without a kubectl provider.
    """
    problems = Problems(cluster.node.path)
    check_device_plugin_cluster(cluster, problems)
    problems.raise_if_any()
    plugins = device_plugins_for(instance_type=instance_type, ami_type=ami_type, efa=efa)
    charts = tuple(_install_once(cluster, plugin) for plugin in plugins)
    return DevicePlugins(plugins=plugins, charts=charts)


def _install_once(cluster: eks_v2.Cluster | eks.Cluster, plugin: DevicePluginChart) -> Construct:
    existing = cluster.node.try_find_child(f"chart-{plugin.construct_id}")
    if isinstance(existing, Construct):
        return existing
    chart: Construct = cluster.add_helm_chart(
        plugin.construct_id,
        chart=plugin.chart,
        repository=plugin.repository,
        version=plugin.version,
        namespace=plugin.namespace,
        release=plugin.release,
        values=copy.deepcopy(dict(plugin.values)),
        create_namespace=False,
    )
    return chart
