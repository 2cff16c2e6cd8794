"""The CDK construct that deploys the Capacity Block controller into the user's account."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import jsii
from aws_cdk import (
    ArnFormat,
    Aspects,
    CustomResource,
    Duration,
    IAspect,
    IStableStringProducer,
    Lazy,
    RemovalPolicy,
    Stack,
    Token,
)
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_ssm as ssm
from constructs import Construct, IConstruct

from .._nag import acknowledge, finding_text
from .._problems import Problems
from .._time import as_timedelta, format_duration
from .._warnings import warn
from ..errors import CapacityBlockError
from .runtime.phase import (
    DEFAULT_CONTROLLER_PERIOD,
    MAX_CONTROLLER_PERIOD,
    MIN_CONTROLLER_PERIOD,
    GroupKind,
    worst_case_lateness,
)

__all__ = [
    "CAPACITY_BLOCK_EVENT_TYPES",
    "CONTROLLER_CONFIG_VARIABLE",
    "DEFAULT_REMINDERS",
    "CapacityBlockController",
]

CONTROLLER_CONFIG_VARIABLE = "CAPBLOCK_CONTROLLER_CONFIG"
"""The Lambda environment variable that carries the controller's configuration (JSON)."""

CAPACITY_BLOCK_EVENT_TYPES = (
    # The newest EC2 user guide (Monitor Capacity Blocks using EventBridge) spells the
    # block events without "Reservation"; older copies of the page, the Chinese edition
    # and the AWS PCS blog spell them with it. Both are matched.
    "Capacity Block Delivered",
    "Capacity Block Reservation Delivered",
    "Capacity Block Expiration Warning",
    "Capacity Block Reservation Expiration Warning",
    "EC2 Capacity Reservation Instance Interruption Warning",
)
"""The ``detail-type`` values (``source: aws.ec2``) that make the controller run at once."""

DEFAULT_REMINDERS = (timedelta(hours=24), timedelta(hours=1))
"""When before a block's end the topic gets a reminder, by default."""

_HANDLER = "runtime.handler.main"
_CODE_DIRECTORY = Path(__file__).parent
# Only the run-time package goes into the function: the construct modules need the CDK, and
# byte code would make the asset hash differ between machines.
_ASSET_EXCLUDE = ("*", "!runtime", "!runtime/*.py")
# Lambda's 4 KB limit covers every environment variable's name and value together.
_ENVIRONMENT_LIMIT = 4096
# What a CloudFormation-generated name or ARN in the configuration may grow to when it resolves.
_TOKEN_ALLOWANCE = 128
_TIMEOUT = Duration.seconds(60)
_TRIGGER_TIMEOUT = Duration.minutes(3)
_ALARM_PERIOD = Duration.minutes(5)


@dataclass(frozen=True, kw_only=True)
class _Group:
    """One node group the controller sizes, as its configuration entry describes it."""

    id: str
    kind: GroupKind
    reservation: str
    ultraserver: bool
    target_size: int
    max_size: int
    drain_lead: timedelta
    cluster_name: str | None = None
    nodegroup_name: str | None = None
    auto_scaling_group_name: str | None = None
    instance_count: int | None = None
    """The block's instance count, for the synth-time over-commitment check only (the
    function reads the live count itself, so it stays out of the configuration)."""

    def to_config(self) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "id": self.id,
            "kind": self.kind.value,
            "reservation": self.reservation,
            "ultraserver": self.ultraserver,
            "targetSize": self.target_size,
            "maxSize": self.max_size,
            "drainLeadSeconds": int(self.drain_lead.total_seconds()),
        }
        if self.kind is GroupKind.MANAGED:
            entry["clusterName"] = self.cluster_name
            entry["nodegroupName"] = self.nodegroup_name
        else:
            entry["autoScalingGroupName"] = self.auto_scaling_group_name
        return entry


@jsii.implements(IStableStringProducer)
class _ConfigProducer:
    """Renders the configuration once every group has registered, at synth time."""

    def __init__(self, controller: CapacityBlockController) -> None:
        self._controller = controller

    def produce(self) -> str | None:
        return Stack.of(self._controller).to_json_string(self._controller.configuration)


@jsii.implements(IAspect)
class _OverCommitmentCheck:
    """Warns, once every group has registered, about blocks their groups over-commit.

    An aspect runs when the app is synthesized, after the constructors that
    register the groups, so the warning sees them all and names them all.
    """

    def __init__(self, controller: CapacityBlockController) -> None:
        self._controller = controller

    def visit(self, node: IConstruct) -> None:
        if node is self._controller:
            self._controller._warn_about_over_commitment()


class CapacityBlockController(Construct):
    """Sizes Capacity Block node groups at run time from the live reservation.

    A small AWS Lambda function (Python, arm64, boto3 from the runtime) runs
    every ``period``, on the Capacity Block EventBridge events and whenever a
    deploy creates a group or changes the configuration (a custom resource
    whose properties are the configuration, so the template never depends on
    the clock). Each run reads every reservation with
    ``DescribeCapacityReservations`` and sets each group to the size the
    block's phase asks for at the moment the run stands for: 0 before the
    start and while the reservation is not ``active``, the target size while
    it is, 0 from ``end - drain_lead`` (the live end, so an extension moves
    the drain with it) and for cancelled, expired or failed reservations. It
    only calls an update API when a size differs. Managed node groups are
    sized with ``eks:UpdateNodegroupConfig``; EKS's own scale-down 40 minutes
    before the end stays in place as a second line and is never edited.
    Self-managed Auto Scaling groups are sized with the EC2 Auto Scaling API,
    with ``MaxSize`` 0 whenever they should not run, so nothing scales them
    up while they wait or drain.

    The node-group constructs create one controller per stack
    (:meth:`of`) and register with it; build one yourself to change its
    settings, then pass it to the node groups as ``controller``. Seeing
    every group, it warns at synth time
    (``capblock-constructs:capacity-block-over-committed``) when the groups
    on one Capacity Block target more instances than the block holds.

    Notifications go to :attr:`topic` (SNS, encrypted with :attr:`key`,
    TLS only): when a group is scaled up or starts draining, when a block's
    end moves, when a reservation is in a bad state, when a group does not
    reach the size set within a few periods, and at the ``reminders`` before
    each block's end. An alarm on the function's errors publishes there too.

    :param period: How often the controller runs. Defaults to 1 minute; whole
        minutes from 1 to 5. The worst-case lateness (period plus one minute
        of invocation latency) counts towards every group's drain lead.
    :param reminders: How long before each block's end to send a reminder.
        Defaults to 24 hours and 1 hour; pass ``[]`` for none.
    :param log_retention: How long the function's logs are kept. Defaults to
        one month.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        period: Duration | timedelta | None = None,
        reminders: Sequence[Duration | timedelta] | None = None,
        log_retention: logs.RetentionDays | None = None,
    ) -> None:
        super().__init__(scope, id)
        problems = Problems(self.node.path)
        self.period: timedelta = _check_period(period, problems)
        self.reminders: tuple[timedelta, ...] = _check_reminders(reminders, problems)
        problems.raise_if_any()
        self._groups: list[_Group] = []
        # Added with the first group of each kind: a statement without resources is invalid.
        self._managed_statement: iam.PolicyStatement | None = None
        self._self_managed_statement: iam.PolicyStatement | None = None

        self._create_notifications()
        self._create_state()
        self._create_function(log_retention or logs.RetentionDays.ONE_MONTH)
        self._create_triggers()
        self._create_alarm()
        Aspects.of(self).add(_OverCommitmentCheck(self))

    # -- the shared instance ---------------------------------------------------------------

    @classmethod
    def of(cls, scope: IConstruct) -> CapacityBlockController:
        """The controller of ``scope``'s stack, created with the defaults on first use.

        Every Capacity Block node group of a stack registers with this one
        unless it is given its own ``controller``.
        """
        stack = Stack.of(scope)
        existing = stack.node.try_find_child(_SHARED_ID)
        if existing is None:
            return cls(stack, _SHARED_ID)
        if not isinstance(existing, CapacityBlockController):
            raise CapacityBlockError(
                f"the stack already has a construct with the ID {_SHARED_ID!r} that is not a "
                "CapacityBlockController; rename it, or pass controller= to the node groups.",
                subject=stack.node.path,
            )
        return existing

    # -- what the node groups call ------------------------------------------------------

    @property
    def worst_case_lateness(self) -> timedelta:
        """How long after a drain time the controller may act at the latest (period + 1 min)."""
        return worst_case_lateness(self.period)

    def add_managed_node_group(
        self,
        group: IConstruct,
        *,
        cluster_name: str,
        nodegroup_name: str,
        nodegroup_arn: str,
        capacity_reservation_id: str,
        ultraserver: bool,
        target_size: int,
        max_size: int,
        drain_lead: timedelta,
        instance_count: int | None = None,
    ) -> None:
        """Size an EKS managed node group (``group``, its construct) from now on.

        The controller may then call ``eks:DescribeNodegroup`` and
        ``eks:UpdateNodegroupConfig`` on this node group only, and the deploy
        that creates it runs the controller once it exists.

        :param instance_count: The block's instance count, for the warning when
            the groups on one block target more instances than it holds.
            Defaults to none: the group's target still counts toward its block,
            whose count another group on it names.
        """
        self._register(
            group,
            _Group(
                id=group.node.path,
                kind=GroupKind.MANAGED,
                reservation=capacity_reservation_id,
                ultraserver=ultraserver,
                target_size=target_size,
                max_size=max_size,
                drain_lead=drain_lead,
                cluster_name=cluster_name,
                nodegroup_name=nodegroup_name,
                instance_count=instance_count,
            ),
        )
        if self._managed_statement is None:
            statement = iam.PolicyStatement(
                sid="SizeManagedNodeGroups",
                actions=["eks:DescribeNodegroup", "eks:UpdateNodegroupConfig"],
            )
            self.role.add_to_principal_policy(statement)
            self._managed_statement = statement
        self._managed_statement.add_resources(nodegroup_arn)

    def add_auto_scaling_group(
        self,
        group: IConstruct,
        *,
        auto_scaling_group_name: str,
        capacity_reservation_id: str,
        ultraserver: bool,
        target_size: int,
        max_size: int,
        drain_lead: timedelta,
        instance_count: int | None = None,
    ) -> None:
        """Size a self-managed Auto Scaling group (``group``, its construct) from now on.

        The controller may then call ``autoscaling:UpdateAutoScalingGroup`` on
        this group only (by name; the group ID in its ARN is unknown before
        creation), and the deploy that creates it runs the controller once it
        exists.

        :param instance_count: The block's instance count, for the warning when
            the groups on one block target more instances than it holds.
            Defaults to none: the group's target still counts toward its block,
            whose count another group on it names.
        """
        self._register(
            group,
            _Group(
                id=group.node.path,
                kind=GroupKind.SELF_MANAGED,
                reservation=capacity_reservation_id,
                ultraserver=ultraserver,
                target_size=target_size,
                max_size=max_size,
                drain_lead=drain_lead,
                auto_scaling_group_name=auto_scaling_group_name,
                instance_count=instance_count,
            ),
        )
        stack = Stack.of(self)
        arn = stack.format_arn(
            service="autoscaling",
            resource="autoScalingGroup",
            resource_name=f"*:autoScalingGroupName/{auto_scaling_group_name}",
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        if self._self_managed_statement is None:
            statement = iam.PolicyStatement(
                sid="SizeSelfManagedGroups", actions=["autoscaling:UpdateAutoScalingGroup"]
            )
            self.role.add_to_principal_policy(statement)
            self._self_managed_statement = statement
        self._self_managed_statement.add_resources(arn)
        self._acknowledge_wildcards(stack.resolve(arn))

    def _over_committed_blocks(self) -> dict[str, tuple[int, list[tuple[str, int]]]]:
        """The blocks whose groups target more instances than the block holds.

        Maps each such reservation ID to its instance count and the
        ``(construct path, target size)`` of every group on it, in the order
        they registered. Target sizes, not max sizes, are what count: while a
        block is active the controller asks EC2 for each group's target size,
        and nothing else scales these groups, so the targets are the demand; a
        max size only caps the controller. Instances beyond the block's count
        can never launch, so when the targets add up to more, some group sits
        short for the whole block.
        """
        by_block: dict[str, list[_Group]] = {}
        for group in self._groups:
            by_block.setdefault(group.reservation, []).append(group)
        found: dict[str, tuple[int, list[tuple[str, int]]]] = {}
        for reservation, groups in by_block.items():
            counts = [group.instance_count for group in groups if group.instance_count is not None]
            if not counts:
                continue
            # Groups on one reservation were given the same block; should they disagree,
            # the largest count is the one that cannot be doubted to hold.
            count = max(counts)
            if sum(group.target_size for group in groups) > count:
                found[reservation] = (count, [(group.id, group.target_size) for group in groups])
        return found

    def _warn_about_over_commitment(self) -> None:
        for reservation, (count, groups) in self._over_committed_blocks().items():
            wanted = sum(size for _, size in groups)
            listed = ", ".join(f"{path} {size}" for path, size in groups)
            warn(
                self,
                "capacity-block-over-committed",
                f"Capacity Block {reservation} reserves {count} instances, but the node groups "
                f"on it target {wanted}: {listed}. Instances beyond the block's count can never "
                "launch, so while it is active at least one group stays short of its target "
                "(the controller reports the shortfall on its topic). Lower the groups' "
                f"desired_size so the targets add up to at most {count}, or move a group to "
                "another Capacity Block.",
            )

    @property
    def configuration(self) -> dict[str, Any]:
        """The configuration the function reads (tokens inside resolve at deploy time)."""
        return {
            "version": 1,
            "periodSeconds": int(self.period.total_seconds()),
            "reminderSeconds": [int(reminder.total_seconds()) for reminder in self.reminders],
            "topicArn": self.topic.topic_arn,
            "stateParameter": self.state_parameter.parameter_name,
            "groups": [group.to_config() for group in self._groups],
        }

    # -- resources ------------------------------------------------------------------------

    def _create_notifications(self) -> None:
        # CloudWatch alarms can only publish to a topic encrypted with a customer managed
        # key whose policy lets CloudWatch use it; the AWS managed SNS key does not.
        self.key = kms.Key(
            self,
            "TopicKey",
            description="Encrypts the Capacity Block controller's notification topic",
            enable_key_rotation=True,
            # The key only serves the topic and its alarm, which go with the stack; kept
            # (the CDK's default), it would go on costing $1 a month after `cdk destroy`.
            removal_policy=RemovalPolicy.DESTROY,
            pending_window=Duration.days(7),
        )
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchAlarmsPublish",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],
                conditions={"StringEquals": {"aws:SourceAccount": Stack.of(self).account}},
            )
        )
        self.topic = sns.Topic(
            self,
            "Topic",
            display_name="Capacity Block controller",
            master_key=self.key,
            enforce_ssl=True,
        )

    def _create_state(self) -> None:
        # Only the notifications' memory lives here (what was already said); sizing never
        # reads it. The template's value never changes, so a deploy never resets it.
        self.state_parameter = ssm.StringParameter(
            self,
            "State",
            string_value="{}",
            description="What the Capacity Block controller has already notified about",
            tier=ssm.ParameterTier.STANDARD,
        )

    def _create_function(self, retention: logs.RetentionDays) -> None:
        self.log_group = logs.LogGroup(self, "Logs", retention=retention)
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description="Lets the Capacity Block controller read reservations and size groups",
        )
        describe = iam.PolicyStatement(
            sid="DescribeReservationsAndGroups",
            actions=[
                "ec2:DescribeCapacityReservations",
                "autoscaling:DescribeAutoScalingGroups",
                "autoscaling:DescribeScheduledActions",
            ],
            resources=["*"],
        )
        statements = [
            describe,
            iam.PolicyStatement(
                sid="WriteLogs",
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[self.log_group.log_group_arn],
            ),
            iam.PolicyStatement(
                sid="RememberNotifications",
                actions=["ssm:GetParameter", "ssm:PutParameter"],
                resources=[self.state_parameter.parameter_arn],
            ),
            iam.PolicyStatement(
                sid="Notify", actions=["sns:Publish"], resources=[self.topic.topic_arn]
            ),
            iam.PolicyStatement(
                # What a publisher to an encrypted topic needs (Amazon SNS developer guide,
                # "Managing Amazon SNS encryption keys and costs"), named exactly.
                sid="EncryptNotifications",
                actions=["kms:Decrypt", "kms:GenerateDataKey"],
                resources=[self.key.key_arn],
            ),
        ]
        for statement in statements:
            self.role.add_to_principal_policy(statement)

        self.function = lambda_.Function(
            self,
            "Function",
            description="capblock-constructs: sizes Capacity Block node groups from the live "
            "reservation",
            runtime=lambda_.Runtime.PYTHON_3_14,
            architecture=lambda_.Architecture.ARM_64,
            handler=_HANDLER,
            code=lambda_.Code.from_asset(str(_CODE_DIRECTORY), exclude=list(_ASSET_EXCLUDE)),
            memory_size=256,
            timeout=_TIMEOUT,
            role=self.role,
            log_group=self.log_group,
            environment={CONTROLLER_CONFIG_VARIABLE: Lazy.string(_ConfigProducer(self))},
            # A run that failed or waited is replaced by the next period's; an old event
            # re-run later could only act on a moment that has passed.
            retry_attempts=0,
            max_event_age=Duration.seconds(max(60, int(self.period.total_seconds()))),
        )
        # The role's policy must exist before the first run, or it fails on access.
        self.function.node.add_dependency(self.role)
        self._acknowledge_wildcards(Stack.of(self).resolve(self.log_group.log_group_arn))

    def _create_triggers(self) -> None:
        minutes = int(self.period.total_seconds() // 60)
        self.schedule_rule = events.Rule(
            self,
            "Schedule",
            description="Runs the Capacity Block controller every period",
            schedule=events.Schedule.rate(Duration.minutes(minutes)),
            targets=[targets.LambdaFunction(self.function, retry_attempts=0)],
        )
        self.event_rule = events.Rule(
            self,
            "CapacityBlockEvents",
            description="Runs the Capacity Block controller on EC2 Capacity Block events",
            event_pattern=events.EventPattern(
                source=["aws.ec2"], detail_type=list(CAPACITY_BLOCK_EVENT_TYPES)
            ),
            targets=[targets.LambdaFunction(self.function, retry_attempts=2)],
        )
        # The deploy runs the controller once after it creates or changes a group: the
        # configuration is this resource's only property, so it changes exactly then.
        self.trigger = CustomResource(
            self,
            "Run",
            service_token=self.function.function_arn,
            resource_type="Custom::CapacityBlockController",
            properties={"Configuration": Lazy.string(_ConfigProducer(self))},
            service_timeout=_TRIGGER_TIMEOUT,
        )
        self.trigger.node.add_dependency(self.role)

    def _create_alarm(self) -> None:
        self.error_alarm = cloudwatch.Alarm(
            self,
            "Errors",
            alarm_description="The Capacity Block controller failed; node groups may not follow "
            "their Capacity Blocks. See the function's logs.",
            metric=self.function.metric_errors(period=_ALARM_PERIOD, statistic="Sum"),
            threshold=1,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        self.error_alarm.add_alarm_action(cloudwatch_actions.SnsAction(self.topic))

    # -- helpers ---------------------------------------------------------------------------

    def _register(self, construct: IConstruct, group: _Group) -> None:
        if any(known.id == group.id for known in self._groups):
            raise CapacityBlockError(
                "this node group is already registered with the controller.",
                subject=group.id,
            )
        self._groups.append(group)
        size = _estimated_environment_size(self.configuration)
        if size > _ENVIRONMENT_LIMIT:
            self._groups.pop()
            raise CapacityBlockError(
                f"the controller's configuration would need about {size} bytes with this node "
                f"group, above Lambda's {_ENVIRONMENT_LIMIT}-byte environment limit "
                f"({len(self._groups)} groups fit); give this node group another controller "
                "(controller=CapacityBlockController(self, 'SecondController')) or put it in "
                "another stack.",
                subject=group.id,
            )
        self.trigger.node.add_dependency(construct)

    def _acknowledge_wildcards(self, resolved_arn: Any) -> None:
        acknowledge(
            self.role,
            "AwsSolutions-IAM5",
            reason=(
                "ec2:DescribeCapacityReservations, autoscaling:DescribeAutoScalingGroups and "
                "autoscaling:DescribeScheduledActions support no resource-level permissions, "
                "so their resource is '*'; log streams are named at run time inside the one "
                "log group; autoscaling:UpdateAutoScalingGroup is limited to the node groups' "
                "Auto Scaling groups by name, with '*' only for the group ID that "
                "CloudFormation does not expose."
            ),
            findings=["Resource::*", f"Resource::{finding_text(resolved_arn)}"],
        )


_SHARED_ID = "CapacityBlockController"


def _check_period(value: Duration | timedelta | None, problems: Problems) -> timedelta:
    if value is None:
        return DEFAULT_CONTROLLER_PERIOD
    period = as_timedelta(value)
    if (
        period is None
        or period.total_seconds() % 60
        or not MIN_CONTROLLER_PERIOD <= period <= MAX_CONTROLLER_PERIOD
    ):
        shown = format_duration(period) if period is not None else repr(value)
        problems.add(
            f"period {shown} is not a whole number of minutes from 1 to 5; EventBridge "
            "schedules run at most once a minute, and a longer period eats into every "
            "group's drain lead. Pass Duration.minutes(1) (the default) up to "
            "Duration.minutes(5)."
        )
        return DEFAULT_CONTROLLER_PERIOD
    return period


def _check_reminders(
    value: Sequence[Duration | timedelta] | None, problems: Problems
) -> tuple[timedelta, ...]:
    if value is None:
        return DEFAULT_REMINDERS
    reminders: list[timedelta] = []
    for item in value:
        reminder = as_timedelta(item)
        if reminder is None or reminder <= timedelta(0):
            shown = format_duration(reminder) if reminder is not None else repr(item)
            problems.add(
                f"reminders holds {shown}, not a positive duration; pass durations before "
                "the end such as Duration.hours(24)."
            )
            continue
        reminders.append(reminder)
    return tuple(sorted(set(reminders), reverse=True))


def _estimated_environment_size(configuration: dict[str, Any]) -> int:
    """The configuration's length once deployed, with room for every name that resolves then."""

    def placeholder(value: Any) -> Any:
        if isinstance(value, dict):
            return {key: placeholder(item) for key, item in value.items()}
        if isinstance(value, list):
            return [placeholder(item) for item in value]
        if isinstance(value, str) and Token.is_unresolved(value):
            return "x" * _TOKEN_ALLOWANCE
        return value

    text = json.dumps(placeholder(configuration), separators=(",", ":"))
    return len(CONTROLLER_CONFIG_VARIABLE) + len(text)
