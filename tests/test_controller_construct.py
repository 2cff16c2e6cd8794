"""CapacityBlockController as CloudFormation: resources, permissions, triggers and independence
from the synth-time clock. The handler it deploys is tested in test_controller_handler.py."""

from __future__ import annotations

import json
import shutil
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import Duration, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_eks_v2 as eks
from aws_cdk import aws_lambda as lambda_
from aws_cdk.assertions import Annotations, Match, Template

from capblock_constructs import (
    CapacityBlockError,
    CapacityBlockManagedNodeGroup,
    CapacityBlockSelfManagedNodeGroup,
)
from capblock_constructs.controller import CapacityBlockController
from capblock_constructs.controller import construct as construct_module
from tests.support import (
    ACCOUNT,
    BEFORE_START,
    DURING,
    REGION,
    RESERVATION_ID,
    block,
    cfn_lint_errors,
    make_app,
    make_stack,
    only_resource,
    resources_of_type,
)

# Between the default drain time (2027-03-15T10:50Z) and the end (11:30Z) of tests.support's block.
AFTER_DRAIN = "2027-03-15T11:00:00Z"

# EventBridge events as AWS sends them: the envelope of the EventBridge user guide ("detail-type",
# not the "detail_type" of the EC2 page's samples), details from the EC2 user guide's
# "Monitor Capacity Blocks using EventBridge" in both of its published spellings.
EVENT_SAMPLES = [
    {
        "version": "0",
        "id": "11111111-1111-1111-1111-111111111111",
        "detail-type": detail_type,
        "source": "aws.ec2",
        "account": ACCOUNT,
        "time": "2027-03-01T11:30:00Z",
        "region": REGION,
        "resources": [f"arn:aws:ec2:{REGION}:{ACCOUNT}:capacity-reservation/{RESERVATION_ID}"],
        "detail": {"capacity-reservation-id": RESERVATION_ID, "end-date": "2027-03-15T11:30:00Z"},
    }
    for detail_type in (
        "Capacity Block Delivered",
        "Capacity Block Reservation Delivered",
        "Capacity Block Expiration Warning",
        "Capacity Block Reservation Expiration Warning",
    )
] + [
    {
        "version": "0",
        "id": "22222222-2222-2222-2222-222222222222",
        "detail-type": "EC2 Capacity Reservation Instance Interruption Warning",
        "source": "aws.ec2",
        "account": ACCOUNT,
        "time": "2027-03-15T10:58:00Z",
        "region": REGION,
        "resources": [f"arn:aws:ec2:{REGION}:{ACCOUNT}:instance/i-0abcd1234efgh5678"],
        "detail": {
            "instance-id": "i-0abcd1234efgh5678",
            "instance-action": "terminate",
            "instance-termination-time": "2027-03-15T11:00:00Z",
            "instance-lifecycle": "capacity-block",
        },
    }
]


def _matches(pattern: dict[str, Any], event: dict[str, Any]) -> bool:
    """EventBridge matching for the pattern forms the controller uses: lists of exact values,
    nested objects; every field of the pattern must match (EventBridge user guide, Event
    patterns)."""
    for key, expected in pattern.items():
        if key not in event:
            return False
        if isinstance(expected, dict):
            if not isinstance(event[key], dict) or not _matches(expected, event[key]):
                return False
        elif event[key] not in expected:
            return False
    return True


def _vpc(stack: Stack) -> ec2.IVpc:
    return ec2.Vpc.from_vpc_attributes(
        stack,
        "Vpc",
        vpc_id="vpc-0123456789abcdef0",
        availability_zones=["us-east-2a"],
        private_subnet_ids=["subnet-0123456789abcdef0"],
    )


def _cluster(stack: Stack) -> eks.ICluster:
    return eks.Cluster.from_cluster_attributes(
        stack,
        "Cluster",
        cluster_name="ml",
        cluster_endpoint="https://ABC.gr7.us-east-2.eks.amazonaws.com",
        cluster_certificate_authority_data="LS0t",
        cluster_security_group_id="sg-0123456789abcdef0",
    )


def _build(now: str, *, period: Duration | None = None) -> Template:
    return Template.from_stack(_build_stack(now, period=period))


def _build_stack(now: str, *, period: Duration | None = None) -> Stack:
    """A stack with one managed and one self-managed group on the same 4-instance block,
    targeting 3 and 4 instances."""
    stack = make_stack(make_app(now=now))
    vpc, cluster = _vpc(stack), _cluster(stack)
    controller = (
        CapacityBlockController(stack, "CapacityBlockController", period=period) if period else None
    )
    CapacityBlockManagedNodeGroup(
        stack,
        "Managed",
        cluster=cluster,
        capacity_block=block(),
        vpc=vpc,
        desired_size=3,
        controller=controller,
    )
    CapacityBlockSelfManagedNodeGroup(
        stack,
        "SelfManaged",
        cluster=cluster,
        capacity_block=block(),
        vpc=vpc,
        kubernetes_version="1.34",
        service_ipv4_cidr="172.20.0.0/16",
        access_entry=False,
        controller=controller,
    )
    return stack


@pytest.fixture(scope="module")
def built() -> Stack:
    return _build_stack(BEFORE_START)


@pytest.fixture(scope="module")
def template(built: Stack) -> Template:
    return Template.from_stack(built)


def _resolve(value: Any) -> Any:
    """An Fn::Join of literals and tokens as text, tokens written as <Ref> or <Logical.Attr>."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return separator.join(str(_resolve(part)) for part in parts)
    if isinstance(value, dict) and "Ref" in value:
        return f"<{value['Ref']}>"
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        return f"<{'.'.join(value['Fn::GetAtt'])}>"
    return json.dumps(value)


def _logical_id(template: Template, resource_type: str) -> str:
    (logical,) = resources_of_type(template, resource_type)
    return logical


def _config(template: Template) -> dict[str, Any]:
    function = only_resource(template, "AWS::Lambda::Function")
    variables = function["Properties"]["Environment"]["Variables"]
    config: dict[str, Any] = json.loads(_resolve(variables["CAPBLOCK_CONTROLLER_CONFIG"]))
    return config


def _event_rule(template: Template) -> dict[str, Any]:
    """The rule that sends EC2 events to the controller (not the termination handler's)."""
    function = {"Fn::GetAtt": [_logical_id(template, "AWS::Lambda::Function"), "Arn"]}
    rules: list[dict[str, Any]] = [
        r
        for r in resources_of_type(template, "AWS::Events::Rule").values()
        if "EventPattern" in r["Properties"]
        and any(t["Arn"] == function for t in r["Properties"]["Targets"])
    ]
    (rule,) = rules
    return rule


def _policy_statements(template: Template) -> list[dict[str, Any]]:
    controller_role = next(
        logical
        for logical, body in resources_of_type(template, "AWS::IAM::Role").items()
        if body["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]
        == {"Service": "lambda.amazonaws.com"}
    )
    statements: list[dict[str, Any]] = []
    for policy in resources_of_type(template, "AWS::IAM::Policy").values():
        if {"Ref": controller_role} in policy["Properties"]["Roles"]:
            statements += policy["Properties"]["PolicyDocument"]["Statement"]
    return statements


# -- the function -----------------------------------------------------------------------------


def test_function_runs_the_runtime_package_on_current_python_arm64(template: Template) -> None:
    properties = only_resource(template, "AWS::Lambda::Function")["Properties"]
    assert properties["Runtime"] == "python3.14"
    assert properties["Architectures"] == ["arm64"]
    assert properties["Handler"] == "runtime.handler.main"
    assert properties["Timeout"] <= 60
    assert properties["MemorySize"] <= 256
    logs = only_resource(template, "AWS::Logs::LogGroup")["Properties"]
    assert logs["RetentionInDays"] == 30


def test_one_controller_serves_both_groups_of_the_stack(template: Template) -> None:
    config = _config(template)
    assert config["version"] == 1
    assert config["periodSeconds"] == 60
    assert config["reminderSeconds"] == [86400, 3600]
    managed, self_managed = config["groups"]
    assert managed["id"] == "Test/Managed"
    assert managed["kind"] == "managed"
    assert managed["reservation"] == RESERVATION_ID
    assert (managed["targetSize"], managed["maxSize"]) == (3, 4)
    # 40 minutes: EKS's own scale-down time, 10 minutes before EC2 reclaims at end - 30.
    assert managed["drainLeadSeconds"] == 40 * 60
    assert managed["clusterName"] == "ml"
    assert managed["nodegroupName"].endswith(".NodegroupName>")
    assert self_managed["kind"] == "self-managed"
    assert (self_managed["targetSize"], self_managed["maxSize"]) == (4, 4)
    assert self_managed["autoScalingGroupName"] == (
        f"<{_logical_id(template, 'AWS::AutoScaling::AutoScalingGroup')}>"
    )


def test_custom_resource_carries_the_configuration_and_runs_after_the_groups(
    template: Template,
) -> None:
    run = only_resource(template, "Custom::CapacityBlockController")
    assert json.loads(_resolve(run["Properties"]["Configuration"])) == _config(template)
    function = _logical_id(template, "AWS::Lambda::Function")
    assert run["Properties"]["ServiceToken"] == {"Fn::GetAtt": [function, "Arn"]}
    # A timeout well under CloudFormation's default hour, should a response be lost.
    assert 0 < int(run["Properties"]["ServiceTimeout"]) <= 600
    depends = set(run["DependsOn"])
    assert _logical_id(template, "AWS::EKS::Nodegroup") in depends
    assert _logical_id(template, "AWS::AutoScaling::AutoScalingGroup") in depends


def test_periodic_rule_runs_every_minute(template: Template) -> None:
    rules = resources_of_type(template, "AWS::Events::Rule").values()
    (scheduled,) = [r for r in rules if "ScheduleExpression" in r["Properties"]]
    assert scheduled["Properties"]["ScheduleExpression"] == "rate(1 minute)"
    (target,) = scheduled["Properties"]["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": [_logical_id(template, "AWS::Lambda::Function"), "Arn"]}


@pytest.mark.parametrize("event", EVENT_SAMPLES, ids=lambda event: event["detail-type"])
def test_event_rule_matches_every_capacity_block_event(
    template: Template, event: dict[str, Any]
) -> None:
    on_events = _event_rule(template)
    assert _matches(on_events["Properties"]["EventPattern"], event)


def test_event_rule_ignores_other_ec2_events(template: Template) -> None:
    on_events = _event_rule(template)
    other = {**EVENT_SAMPLES[0], "detail-type": "EC2 Instance State-change Notification"}
    assert not _matches(on_events["Properties"]["EventPattern"], other)
    assert not _matches(
        on_events["Properties"]["EventPattern"], {**EVENT_SAMPLES[0], "source": "x"}
    )


def test_late_or_failed_runs_are_not_replayed(template: Template) -> None:
    config = only_resource(template, "AWS::Lambda::EventInvokeConfig")["Properties"]
    assert config["MaximumRetryAttempts"] == 0
    assert config["MaximumEventAgeInSeconds"] == 60


# -- permissions ---------------------------------------------------------------------------


def test_wildcard_resources_only_for_describe_calls(template: Template) -> None:
    for statement in _policy_statements(template):
        actions = (
            statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        )
        assert all("*" not in action for action in actions), actions
        if statement["Resource"] == "*":
            # Service Authorization Reference: none of these supports resource-level permissions.
            assert set(actions) <= {
                "ec2:DescribeCapacityReservations",
                "autoscaling:DescribeAutoScalingGroups",
                "autoscaling:DescribeScheduledActions",
            }


def test_update_calls_are_scoped_to_the_managed_groups(template: Template) -> None:
    statements = {s.get("Sid"): s for s in _policy_statements(template)}
    nodegroup = _logical_id(template, "AWS::EKS::Nodegroup")
    eks_statement = statements["SizeManagedNodeGroups"]
    assert sorted(eks_statement["Action"]) == ["eks:DescribeNodegroup", "eks:UpdateNodegroupConfig"]
    assert eks_statement["Resource"] == {"Fn::GetAtt": [nodegroup, "Arn"]}
    asg_statement = statements["SizeSelfManagedGroups"]
    assert asg_statement["Action"] == "autoscaling:UpdateAutoScalingGroup"
    group = _logical_id(template, "AWS::AutoScaling::AutoScalingGroup")
    assert _resolve(asg_statement["Resource"]).endswith(
        f":autoScalingGroup:*:autoScalingGroupName/<{group}>"
    )


def test_topic_is_encrypted_tls_only_and_alarms_can_publish(template: Template) -> None:
    topic = only_resource(template, "AWS::SNS::Topic")["Properties"]
    key = _logical_id(template, "AWS::KMS::Key")
    assert topic["KmsMasterKeyId"] == {"Fn::GetAtt": [key, "Arn"]}
    policy = only_resource(template, "AWS::SNS::TopicPolicy")["Properties"]["PolicyDocument"]
    denies = [s for s in policy["Statement"] if s["Effect"] == "Deny"]
    assert any(s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in denies)
    key_body = only_resource(template, "AWS::KMS::Key")["Properties"]
    assert key_body["EnableKeyRotation"] is True
    # CloudWatch alarms can only publish to a topic whose customer managed key lets them
    # (Amazon SNS developer guide, compatibility between event sources and encrypted topics).
    assert any(
        s.get("Principal") == {"Service": "cloudwatch.amazonaws.com"}
        and {"kms:Decrypt", "kms:GenerateDataKey*"} <= set(s["Action"])
        for s in key_body["KeyPolicy"]["Statement"]
    )


def test_cdk_destroy_schedules_the_key_for_deletion(template: Template) -> None:
    # Nothing the key encrypts outlives the stack, and a kept key costs $1 a month. KMS
    # waits 7 to 30 days before deleting a key (PendingWindowInDays); the shortest is asked.
    key = only_resource(template, "AWS::KMS::Key")
    assert (key["DeletionPolicy"], key["UpdateReplacePolicy"]) == ("Delete", "Delete")
    assert key["Properties"]["PendingWindowInDays"] == 7


def test_errors_alarm_publishes_to_the_topic(template: Template) -> None:
    alarm = only_resource(template, "AWS::CloudWatch::Alarm")["Properties"]
    assert alarm["MetricName"] == "Errors"
    assert alarm["Namespace"] == "AWS/Lambda"
    assert alarm["Threshold"] == 1
    assert alarm["AlarmActions"] == [{"Ref": _logical_id(template, "AWS::SNS::Topic")}]


def test_template_passes_cfn_lint(template: Template) -> None:
    assert cfn_lint_errors(template) == []


# -- independence from the synth-time clock --------------------------------------------------


def test_the_same_template_before_during_and_after_the_drain(template: Template) -> None:
    before = template.to_json()
    assert _build(DURING).to_json() == before
    assert _build(AFTER_DRAIN).to_json() == before


def test_a_block_that_has_ended_is_still_an_error() -> None:
    with pytest.raises(CapacityBlockError, match=r"ended at 2027-03-15T11:30:00Z"):
        _build("2027-03-15T11:30:00Z")


# -- settings -------------------------------------------------------------------------------


def test_a_longer_period_is_used_everywhere() -> None:
    template = _build(BEFORE_START, period=Duration.minutes(5))
    rules = resources_of_type(template, "AWS::Events::Rule").values()
    (scheduled,) = [r for r in rules if "ScheduleExpression" in r["Properties"]]
    assert scheduled["Properties"]["ScheduleExpression"] == "rate(5 minutes)"
    assert _config(template)["periodSeconds"] == 300
    invoke = only_resource(template, "AWS::Lambda::EventInvokeConfig")["Properties"]
    assert invoke["MaximumEventAgeInSeconds"] == 300
    # Lateness 5 + 1 minutes: the self-managed hook's default heartbeat is 40 - 30 - 6 = 4 min.
    hook = only_resource(template, "AWS::AutoScaling::LifecycleHook")["Properties"]
    assert hook["HeartbeatTimeout"] == 4 * 60


@pytest.mark.parametrize(
    "period", [Duration.seconds(30), Duration.seconds(90), Duration.minutes(6), timedelta(0)]
)
def test_periods_outside_whole_minutes_from_1_to_5_are_rejected(period: Any) -> None:
    stack = make_stack()
    with pytest.raises(CapacityBlockError, match=r"period .* whole number of minutes from 1 to 5"):
        CapacityBlockController(stack, "Controller", period=period)


def test_reminders_are_configurable_and_checked() -> None:
    stack = make_stack()
    controller = CapacityBlockController(
        stack, "Controller", reminders=[Duration.hours(2), timedelta(days=3)]
    )
    assert controller.configuration["reminderSeconds"] == [3 * 86400, 7200]
    with pytest.raises(CapacityBlockError, match=r"reminders holds .*not a positive duration"):
        CapacityBlockController(stack, "Bad", reminders=[timedelta(0)])


def test_of_returns_the_one_controller_of_the_stack() -> None:
    stack = make_stack()
    first = CapacityBlockController.of(stack)
    assert CapacityBlockController.of(first) is first
    assert first.node.path == "Test/CapacityBlockController"


def test_too_many_groups_for_the_environment_limit_is_an_error() -> None:
    stack = make_stack()
    controller = CapacityBlockController(stack, "Controller")

    def add(index: int) -> None:
        group = ec2.CfnSecurityGroup(stack, f"Group{index}", group_description="x")
        controller.add_auto_scaling_group(
            group,
            auto_scaling_group_name=group.ref,
            capacity_reservation_id=RESERVATION_ID,
            ultraserver=False,
            target_size=4,
            max_size=4,
            drain_lead=timedelta(minutes=40),
        )

    # Each entry takes about 330 bytes with its generated name: a dozen groups fit.
    for index in range(10):
        add(index)
    added = 10
    with pytest.raises(CapacityBlockError, match=r"Lambda's 4096-byte environment limit") as error:  # noqa: PT012
        while added < 40:
            add(added)
            added += 1
    assert added < 40
    assert f"({added} groups fit)" in str(error.value)


# -- over-commitment ----------------------------------------------------------------------

OVER_COMMITTED = "capblock-constructs:capacity-block-over-committed"


def _warnings(stack: Stack, path: str) -> list[str]:
    found = Annotations.from_stack(stack).find_warning(path, Match.any_value())
    return [str(message.entry.data) for message in found]


def test_groups_targeting_more_than_their_block_holds_are_warned_about(built: Stack) -> None:
    # The managed group targets 3 and the self-managed one 4 of the block's 4 instances: the
    # controller asks EC2 for 7, and instances beyond a Capacity Block's count never launch.
    (warning,) = _warnings(built, "/Test/CapacityBlockController")
    assert OVER_COMMITTED in warning
    assert f"Capacity Block {RESERVATION_ID} reserves 4 instances" in warning
    assert "target 7: Test/Managed 3, Test/SelfManaged 4" in warning
    assert "desired_size so the targets add up to at most 4" in warning


def test_only_targets_above_the_count_of_one_block_are_over_commitment() -> None:
    stack = make_stack(make_app(), "Targets")
    controller = CapacityBlockController(stack, "Controller")

    def register(id: str, reservation: str, target: int, count: int | None) -> None:
        group = ec2.CfnSecurityGroup(stack, id, group_description=id)
        controller.add_auto_scaling_group(
            group,
            auto_scaling_group_name=group.ref,
            capacity_reservation_id=reservation,
            ultraserver=False,
            target_size=target,
            # A max size only caps the controller; what it asks EC2 for is the target.
            max_size=4,
            drain_lead=timedelta(minutes=40),
            instance_count=count,
        )

    # Exactly the count of a 4-instance block, though the max sizes add up to 8: no warning.
    register("FullA", "cr-0aaaaaaaaaaaaaaa1", 3, 4)
    register("FullB", "cr-0aaaaaaaaaaaaaaa1", 1, 4)
    # One more than a 2-instance block holds (a group without a count still counts there).
    register("OverA", "cr-0bbbbbbbbbbbbbbb2", 2, 2)
    register("OverB", "cr-0bbbbbbbbbbbbbbb2", 1, None)

    (warning,) = [w for w in _warnings(stack, "*") if OVER_COMMITTED in w]
    assert "Capacity Block cr-0bbbbbbbbbbbbbbb2 reserves 2 instances" in warning
    assert "target 3: Targets/OverA 2, Targets/OverB 1" in warning
    assert "cr-0aaaaaaaaaaaaaaa1" not in warning


# -- the code asset ------------------------------------------------------------------------


def test_code_asset_holds_only_the_runtime_sources(tmp_path: Path) -> None:
    # A copy of the controller package with byte code next to the sources, as an installed
    # wheel has it: the asset must still hold only runtime/*.py, so its hash is stable.
    source = Path(construct_module.__file__).parent
    copy = tmp_path / "controller"
    shutil.copytree(source, copy)
    (copy / "runtime" / "__pycache__").mkdir(exist_ok=True)
    (copy / "runtime" / "__pycache__" / "phase.cpython-311.pyc").write_bytes(b"\0")
    stack = make_stack(make_app())
    lambda_.Function(
        stack,
        "Probe",
        runtime=lambda_.Runtime.PYTHON_3_14,
        handler="runtime.handler.main",
        code=lambda_.Code.from_asset(str(copy), exclude=list(construct_module._ASSET_EXCLUDE)),
    )
    assembly = stack.node.root.synth()  # type: ignore[attr-defined]
    (staged,) = [p for p in Path(assembly.directory).iterdir() if p.name.startswith("asset.")]
    files = sorted(str(p.relative_to(staged)) for p in staged.rglob("*") if p.is_file())
    assert files, "the asset is empty"
    assert all(f.startswith("runtime/") and f.endswith(".py") for f in files), files
    assert "runtime/handler.py" in files
    assert "runtime/phase.py" in files
