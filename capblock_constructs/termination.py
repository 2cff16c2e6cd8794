"""AWS Node Termination Handler (queue-processor mode) infrastructure for self-managed nodes.

In queue-processor mode the handler reads EventBridge events from an SQS
queue: an Auto Scaling group's terminate lifecycle action (the scheduled
scale-to-zero before a Capacity Block ends), EC2 instance state changes and
AWS Health scheduled changes. It cordons and drains the node, then completes
the lifecycle action so the instance terminates. ASG lifecycle hooks are only
handled in this mode (aws/aws-node-termination-handler README).

The ``Capacity Block Reservation Expiration Warning`` event is deliberately
not routed here: the handler does not understand it, and the scheduled
scale-to-zero already drains the nodes before EC2 reclaims them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from aws_cdk import ArnFormat, CfnOutput, Duration, Stack
from aws_cdk import aws_eks as eks
from aws_cdk import aws_eks_v2 as eks_v2
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sqs as sqs
from constructs import Construct, IConstruct

from ._nag import acknowledge, finding_text
from .errors import CapacityBlockError

__all__ = [
    "NTH_CHART_REPOSITORY",
    "NTH_CHART_VERSION",
    "NTH_MANAGED_TAG",
    "NodeTerminationHandlerQueue",
]

NTH_MANAGED_TAG = "aws-node-termination-handler/managed"
"""The handler only drains instances carrying this tag key (``checkTagBeforeDraining``)."""

NTH_CHART_REPOSITORY = "oci://public.ecr.aws/aws-ec2/helm/aws-node-termination-handler"
"""Where AWS publishes the aws-node-termination-handler Helm chart.

The chart's full OCI reference, not its registry folder: for ``oci://`` charts the CDK's
kubectl handler runs ``helm pull <repository> --untar`` and ignores ``Chart``."""

NTH_CHART_VERSION = "0.27.1"
"""The chart version installed by default (application version 1.25.1)."""

NTH_RELEASE = "capblock-node-termination-handler"
"""The Helm release, and the name of every object the chart creates (``fullnameOverride``).

Not the chart's own name, which AWS's install instructions use as the release: the CDK's
kubectl handler runs ``helm upgrade --install <release>`` and, on delete, ``helm uninstall``,
so a release of that name would take over, and later remove, a handler the user installed."""

NTH_SERVICE_ACCOUNT = NTH_RELEASE

# The chart's construct ID under the cluster (add_helm_chart names the child "chart-<id>"):
# fixed, so that a second installation on one cluster is found and refused clearly.
_NTH_CHART_ID = "NodeTerminationHandler"

ASG_LIFECYCLE_PATTERN: Mapping[str, Any] = {
    "source": ["aws.autoscaling"],
    "detail-type": ["EC2 Instance-terminate Lifecycle Action"],
}
EC2_STATE_CHANGE_PATTERN: Mapping[str, Any] = {
    "source": ["aws.ec2"],
    "detail-type": ["EC2 Instance State-change Notification"],
}
HEALTH_SCHEDULED_CHANGE_PATTERN: Mapping[str, Any] = {
    "source": ["aws.health"],
    "detail-type": ["AWS Health Event"],
    "detail": {"service": ["EC2"], "eventTypeCategory": ["scheduledChange"]},
}


class NodeTerminationHandlerQueue(Construct):
    """The SQS queue, EventBridge rules and IAM policy the handler's queue-processor mode needs.

    The queue uses SQS-managed encryption (EventBridge cannot send to a queue
    encrypted with the AWS-managed KMS key), refuses requests without TLS and
    keeps messages for 300 seconds: an event the handler has not acted on
    within five minutes is stale. Only EventBridge, and only from these
    rules, may send to it.

    One handler installation reads one queue, so every self-managed node
    group of a cluster should feed the same queue: pass this construct to
    the next node group as ``termination_handler`` (or call
    :meth:`add_auto_scaling_group`) rather than creating a queue per group.
    Built at the stack's root and given to every group, it outlives any one
    of them.

    :param auto_scaling_group_names: The groups whose terminate lifecycle
        actions the handler should drain. The lifecycle rule matches only
        these groups, and the policy lets the handler complete lifecycle
        actions only on them. Defaults to none; add groups with
        :meth:`add_auto_scaling_group` (until one is added the lifecycle
        rule matches every group in the account and region).
    :param message_retention: How long undelivered events stay in the queue.
        Defaults to 300 seconds, the handler's documented setting.
    :param queue_url_output: Whether to add the queue URL as a stack output,
        for installing the handler by hand. Defaults to yes.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        auto_scaling_group_names: Sequence[str] = (),
        message_retention: Duration | None = None,
        queue_url_output: bool = True,
    ) -> None:
        super().__init__(scope, id)
        self._group_names: list[str] = []
        self.handler_role: iam.Role | None = None
        """The role the handler's pods assume, once :meth:`install_handler` has run."""
        self.pod_identity_agent: eks.CfnAddon | None = None
        """The Pod Identity Agent add-on :meth:`install_handler` created, if it did."""

        self.queue = sqs.Queue(
            self,
            "Queue",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=message_retention or Duration.seconds(300),
        )
        acknowledge(
            self.queue,
            "AwsSolutions-SQS3",
            reason=(
                "Interruption events are only useful for minutes; the handler reads them "
                "directly and a dead-letter queue would only hold stale events."
            ),
        )

        self.lifecycle_rule = self._rule(
            "AsgLifecycleRule",
            ASG_LIFECYCLE_PATTERN,
            "Auto Scaling terminate lifecycle actions of the Capacity Block node groups",
        )
        self.state_change_rule = self._rule(
            "InstanceStateChangeRule",
            EC2_STATE_CHANGE_PATTERN,
            "EC2 instance state changes, for the Node Termination Handler",
        )
        self.scheduled_change_rule = self._rule(
            "ScheduledChangeRule",
            HEALTH_SCHEDULED_CHANGE_PATTERN,
            "AWS Health scheduled changes for EC2, for the Node Termination Handler",
        )

        self.queue.add_to_resource_policy(
            iam.PolicyStatement(
                sid="EventBridgeRulesSendEvents",
                principals=[iam.ServicePrincipal("events.amazonaws.com")],
                actions=["sqs:SendMessage"],
                resources=[self.queue.queue_arn],
                conditions={"ArnEquals": {"aws:SourceArn": [rule.attr_arn for rule in self.rules]}},
            )
        )

        statements = [
            iam.PolicyStatement(
                sid="ReadInterruptionEvents",
                actions=["sqs:DeleteMessage", "sqs:ReceiveMessage"],
                resources=[self.queue.queue_arn],
            ),
            iam.PolicyStatement(
                # These describe calls have no resource-level permissions.
                sid="DescribeInstancesAndGroups",
                actions=[
                    "autoscaling:DescribeAutoScalingInstances",
                    "autoscaling:DescribeTags",
                    "ec2:DescribeInstances",
                ],
                resources=["*"],
            ),
        ]
        # Added with the first group: a statement without resources is invalid.
        self._complete_statement = iam.PolicyStatement(
            sid="CompleteLifecycleActions", actions=["autoscaling:CompleteLifecycleAction"]
        )
        self.policy = iam.ManagedPolicy(
            self,
            "HandlerPolicy",
            description="What aws-node-termination-handler needs in queue-processor mode",
            statements=statements,
        )
        self._acknowledge_wildcard("*")
        for name in auto_scaling_group_names:
            self.add_auto_scaling_group(name)

        if queue_url_output:
            CfnOutput(
                self,
                "QueueUrl",
                value=self.queue.queue_url,
                description="SQS queue URL for aws-node-termination-handler (queueURL)",
            )

    def add_auto_scaling_group(self, auto_scaling_group_name: str) -> None:
        """Route this group's terminate lifecycle actions to the queue.

        The lifecycle rule then matches the group, and the handler's policy
        lets it complete lifecycle actions on it.
        """
        if auto_scaling_group_name in self._group_names:
            return
        self._group_names.append(auto_scaling_group_name)
        self.lifecycle_rule.event_pattern = {
            **ASG_LIFECYCLE_PATTERN,
            "detail": {"AutoScalingGroupName": list(self._group_names)},
        }
        stack = Stack.of(self)
        arn = stack.format_arn(
            service="autoscaling",
            resource="autoScalingGroup",
            resource_name=f"*:autoScalingGroupName/{auto_scaling_group_name}",
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        if len(self._group_names) == 1:
            self.policy.add_statements(self._complete_statement)
        self._complete_statement.add_resources(arn)
        # The group ID inside an Auto Scaling group ARN is unknown before creation, so the
        # statement names the group with '*' in that one place.
        self._acknowledge_wildcard(finding_text(stack.resolve(arn)))

    @property
    def auto_scaling_group_names(self) -> tuple[str, ...]:
        """The groups whose terminate lifecycle actions reach the queue."""
        return tuple(self._group_names)

    def _acknowledge_wildcard(self, finding: str) -> None:
        acknowledge(
            self.policy,
            "AwsSolutions-IAM5",
            reason=(
                "autoscaling:DescribeAutoScalingInstances, autoscaling:DescribeTags and "
                "ec2:DescribeInstances support no resource-level permissions, so their "
                "resource is '*'; autoscaling:CompleteLifecycleAction is limited to the "
                "node groups' Auto Scaling groups by name, with '*' only for the group ID "
                "that CloudFormation does not expose."
            ),
            findings=[f"Resource::{finding}"],
        )

    def _rule(self, id: str, pattern: Mapping[str, Any], description: str) -> events.CfnRule:
        return events.CfnRule(
            self,
            id,
            description=description,
            event_pattern=dict(pattern),
            state="ENABLED",
            targets=[
                events.CfnRule.TargetProperty(arn=self.queue.queue_arn, id="TerminationQueue")
            ],
        )

    @property
    def queue_url(self) -> str:
        """The queue URL to give the handler as ``queueURL``."""
        return self.queue.queue_url

    @property
    def rules(self) -> tuple[events.CfnRule, ...]:
        """The EventBridge rules that feed the queue."""
        return (self.lifecycle_rule, self.state_change_rule, self.scheduled_change_rule)

    def install_handler(
        self,
        cluster: eks_v2.Cluster | eks.Cluster,
        *,
        chart_version: str = NTH_CHART_VERSION,
        namespace: str = "kube-system",
        values: Mapping[str, Any] | None = None,
        pod_identity_agent: bool = True,
    ) -> iam.Role:
        """Install the aws-node-termination-handler chart in queue mode, wired to this queue.

        The handler's pods get their AWS permissions through EKS Pod Identity:
        a role trusted by ``pods.eks.amazonaws.com`` holding :attr:`policy`,
        associated with the chart's service account. That needs the EKS Pod
        Identity Agent: EKS Auto Mode clusters run it themselves; on other
        clusters the ``eks-pod-identity-agent`` add-on is created here unless
        ``pod_identity_agent=False`` (pass that when the cluster already has
        the add-on, or EKS rejects the second one). The chart is installed through the
        cluster's kubectl provider (an ``aws_eks_v2.Cluster`` needs
        ``kubectl_provider_options``), which adds Lambda functions and assets
        to the app.

        ``values`` are merged into the chart's values section by section, as
        Helm merges them; the Pod Identity association names the service
        account they leave in ``serviceAccount.name``.

        The chart's own heartbeat option (``heartbeatInterval``) is left
        off: it would hold instances past the lifecycle hook's timeout, which
        the node group sizes so that instances terminate before EC2 reclaims
        them.

        Returns:
            The role the handler's pods assume.

        Raises:
            CapacityBlockError: the handler is already installed from this queue, or on
                this cluster.
        """
        if self.handler_role is not None:
            raise CapacityBlockError(
                "aws-node-termination-handler is already installed from this queue; one "
                "installation serves every node group that feeds the queue, so install it once.",
                subject=self.node.path,
            )
        existing = installed_handler_chart(cluster)
        if existing is not None:
            raise CapacityBlockError(
                "aws-node-termination-handler is already installed on this cluster "
                f"({existing.node.path}) and reads one queue; feed that queue instead of "
                "installing a second handler.",
                subject=self.node.path,
            )
        stack = Stack.of(self)
        chart_values = _merged(
            {
                "enableSqsTerminationDraining": True,
                "queueURL": self.queue.queue_url,
                "awsRegion": stack.region,
                "serviceAccount": {"create": True, "name": NTH_SERVICE_ACCOUNT},
                "fullnameOverride": NTH_RELEASE,
            },
            values or {},
        )
        # The Pod Identity association must name the service account the chart runs as,
        # whatever the given values made of it.
        service_account = chart_values["serviceAccount"].get("name") or NTH_SERVICE_ACCOUNT
        chart_values["serviceAccount"]["name"] = service_account
        role = iam.Role(
            self,
            "HandlerRole",
            description="Assumed by aws-node-termination-handler pods through EKS Pod Identity",
            # EKS Pod Identity needs sts:TagSession next to sts:AssumeRole.
            assumed_by=iam.SessionTagsPrincipal(iam.ServicePrincipal("pods.eks.amazonaws.com")),
            managed_policies=[self.policy],
        )
        association = eks.CfnPodIdentityAssociation(
            self,
            "PodIdentityAssociation",
            cluster_name=cluster.cluster_name,
            namespace=namespace,
            service_account=service_account,
            role_arn=role.role_arn,
        )
        chart = cluster.add_helm_chart(
            _NTH_CHART_ID,
            chart="aws-node-termination-handler",
            repository=NTH_CHART_REPOSITORY,
            version=chart_version,
            namespace=namespace,
            release=NTH_RELEASE,
            values=chart_values,
        )
        # The pods must find their credentials on first start.
        chart.node.add_dependency(association)
        if pod_identity_agent and not _runs_auto_mode(cluster):
            agent = eks.CfnAddon(
                self,
                "PodIdentityAgent",
                addon_name="eks-pod-identity-agent",
                cluster_name=cluster.cluster_name,
            )
            chart.node.add_dependency(agent)
            self.pod_identity_agent = agent
        self.handler_role = role
        return role


def installed_handler_chart(cluster: IConstruct) -> IConstruct | None:
    """The aws-node-termination-handler chart already installed on ``cluster`` in this app,
    by a node group or :meth:`NodeTerminationHandlerQueue.install_handler`, if any."""
    return cluster.node.try_find_child(f"chart-{_NTH_CHART_ID}")


def _merged(defaults: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """``defaults`` with ``overrides`` merged in, nested mappings key by key (as Helm merges
    values), so that overriding one key of a section keeps the section's other keys."""
    merged = {
        key: dict(value) if isinstance(value, Mapping) else value for key, value in defaults.items()
    }
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merged(merged[key], value)
        else:
            merged[key] = value
    return merged


def _runs_auto_mode(cluster: eks_v2.Cluster | eks.Cluster) -> bool:
    """Whether the cluster uses EKS Auto Mode, which runs the Pod Identity Agent itself."""
    resource = cluster.node.default_child
    config = getattr(resource, "compute_config", None)
    return getattr(config, "enabled", None) is True
