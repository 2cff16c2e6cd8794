"""NodeTerminationHandlerQueue: what aws-node-termination-handler needs in queue-processor mode."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, cast

import pytest
from aws_cdk import App, Validations
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sqs as sqs
from aws_cdk.assertions import Template
from cdk_nag import AwsSolutionsChecks

from capblock_constructs.errors import CapacityBlockError
from capblock_constructs.termination import NodeTerminationHandlerQueue
from tests.support import cfn_lint_errors, make_app, make_stack, only_resource

ASG = "gpu-nodes"


@pytest.fixture(scope="module")
def outdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("termination.out")


@pytest.fixture(scope="module")
def app(outdir: Path) -> App:
    """The queue alone, with cdk-nag's AwsSolutions pack as a validation plugin."""
    app = App(analytics_reporting=False, outdir=str(outdir))
    NodeTerminationHandlerQueue(make_stack(app), "Nth", auto_scaling_group_names=[ASG])
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return app


@pytest.fixture(scope="module")
def template(app: App) -> dict[str, Any]:
    body: dict[str, Any] = app.synth().get_stack_by_name("Test").template
    return body


def violating_paths(outdir: Path) -> list[tuple[str, str]]:
    """(rule, construct path) for every finding in the synth's validation report."""
    report = json.loads((outdir / "validation-report.json").read_text())
    return [
        (violation["ruleName"], construct["constructPath"])
        for plugin in report["pluginReports"]
        for violation in plugin.get("violations", [])
        for construct in violation.get("violatingConstructs", [])
    ]


def resources(template: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [r for r in template["Resources"].values() if r["Type"] == kind]


def test_queue_is_encrypted_by_sqs_and_keeps_events_five_minutes(
    template: dict[str, Any],
) -> None:
    queue = only_resource(Template.from_json(template), "AWS::SQS::Queue")["Properties"]
    # SSE-SQS: EventBridge cannot send to a queue encrypted with the AWS-managed KMS key.
    assert queue == {"MessageRetentionPeriod": 300, "SqsManagedSseEnabled": True}


def test_queue_policy_denies_plain_http_and_admits_only_the_rules(
    template: dict[str, Any],
) -> None:
    (policy,) = resources(template, "AWS::SQS::QueuePolicy")
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    deny = [s for s in statements if s["Effect"] == "Deny"]
    assert len(deny) == 1
    assert deny[0]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    (allow,) = [s for s in statements if s["Effect"] == "Allow"]
    assert allow["Principal"] == {"Service": "events.amazonaws.com"}
    assert allow["Action"] == "sqs:SendMessage"
    rule_ids = sorted(
        name for name, r in template["Resources"].items() if r["Type"] == "AWS::Events::Rule"
    )
    sources = allow["Condition"]["ArnEquals"]["aws:SourceArn"]
    assert sorted(s["Fn::GetAtt"][0] for s in sources) == rule_ids


def test_rules_route_the_three_event_kinds_to_the_queue(template: dict[str, Any]) -> None:
    patterns = {
        r["Properties"]["EventPattern"]["source"][0]: r["Properties"]["EventPattern"]
        for r in resources(template, "AWS::Events::Rule")
    }
    assert patterns["aws.autoscaling"] == {
        "source": ["aws.autoscaling"],
        "detail-type": ["EC2 Instance-terminate Lifecycle Action"],
        "detail": {"AutoScalingGroupName": [ASG]},
    }
    assert patterns["aws.ec2"] == {
        "source": ["aws.ec2"],
        "detail-type": ["EC2 Instance State-change Notification"],
    }
    assert patterns["aws.health"]["detail-type"] == ["AWS Health Event"]
    assert patterns["aws.health"]["detail"]["eventTypeCategory"] == ["scheduledChange"]
    for rule in resources(template, "AWS::Events::Rule"):
        (target,) = rule["Properties"]["Targets"]
        assert target["Arn"]["Fn::GetAtt"][1] == "Arn"


def test_expiration_warning_is_not_routed_to_the_handler(template: dict[str, Any]) -> None:
    for rule in resources(template, "AWS::Events::Rule"):
        assert "Capacity Block Reservation Expiration Warning" not in str(rule)


def test_policy_grants_exactly_what_the_handler_needs(template: dict[str, Any]) -> None:
    (policy,) = resources(template, "AWS::IAM::ManagedPolicy")
    statements = {s["Sid"]: s for s in policy["Properties"]["PolicyDocument"]["Statement"]}
    assert set(statements) == {
        "ReadInterruptionEvents",
        "CompleteLifecycleActions",
        "DescribeInstancesAndGroups",
    }
    assert sorted(statements["ReadInterruptionEvents"]["Action"]) == [
        "sqs:DeleteMessage",
        "sqs:ReceiveMessage",
    ]
    assert statements["ReadInterruptionEvents"]["Resource"]["Fn::GetAtt"][1] == "Arn"
    complete = statements["CompleteLifecycleActions"]
    assert complete["Action"] == "autoscaling:CompleteLifecycleAction"
    arn = "".join(
        p if isinstance(p, str) else "<partition>" for p in complete["Resource"]["Fn::Join"][1]
    )
    assert arn == (
        "arn:<partition>:autoscaling:us-east-2:123456789012:autoScalingGroup:*:"
        f"autoScalingGroupName/{ASG}"
    )
    describe = statements["DescribeInstancesAndGroups"]
    assert sorted(describe["Action"]) == [
        "autoscaling:DescribeAutoScalingInstances",
        "autoscaling:DescribeTags",
        "ec2:DescribeInstances",
    ]
    # Only the describe calls, which have no resource-level permissions, use '*'.
    assert describe["Resource"] == "*"


def test_queue_url_is_a_stack_output(template: dict[str, Any]) -> None:
    (output,) = template["Outputs"].values()
    (queue_id,) = [k for k, r in template["Resources"].items() if r["Type"] == "AWS::SQS::Queue"]
    # An SQS queue's Ref is its URL, what the handler's queueURL takes.
    assert output["Value"] == {"Ref": queue_id}


def test_passes_cfn_lint_and_cdk_nag(template: dict[str, Any], outdir: Path) -> None:
    assert cfn_lint_errors(template) == []
    # The AwsSolutions pack ran as a validation plugin during synth: errors would have failed
    # it, and the report must hold no warning either (the acknowledged findings carry their
    # reasons in metadata).
    assert violating_paths(outdir) == []


def test_cdk_nag_checks_the_handler_queue_and_accepts_it(tmp_path: Path) -> None:
    # A passing report is empty, so it cannot show the pack looked at anything. Beside a
    # plain queue the pack does fail, every finding must be the plain queue's: the handler's
    # queue (no dead-letter queue either, acknowledged) and its rules and policy pass.
    app = App(analytics_reporting=False, outdir=str(tmp_path))
    stack = make_stack(app)
    NodeTerminationHandlerQueue(stack, "Nth", auto_scaling_group_names=[ASG])
    sqs.Queue(stack, "Plain")
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        app.synth()
    findings = violating_paths(tmp_path)
    assert ("AwsSolutions-SQS3", "Test/Plain/Resource") in findings
    assert [path for _, path in findings if not path.startswith("Test/Plain/")] == []


def test_groups_added_later_join_the_rule_and_the_policy_once() -> None:
    stack = make_stack(make_app(), "Later")
    queue = NodeTerminationHandlerQueue(stack, "Nth")
    before = queue.auto_scaling_group_names
    assert before == ()
    for name in ("first", "second", "first"):
        queue.add_auto_scaling_group(name)
    assert queue.auto_scaling_group_names == ("first", "second")
    template = dict(Template.from_stack(stack).to_json())
    (lifecycle,) = [
        r["Properties"]["EventPattern"]
        for r in resources(template, "AWS::Events::Rule")
        if r["Properties"]["EventPattern"]["source"] == ["aws.autoscaling"]
    ]
    assert lifecycle["detail"] == {"AutoScalingGroupName": ["first", "second"]}
    (policy,) = resources(template, "AWS::IAM::ManagedPolicy")
    (complete,) = [
        s
        for s in policy["Properties"]["PolicyDocument"]["Statement"]
        if s["Sid"] == "CompleteLifecycleActions"
    ]
    arns = [
        "".join(p for p in arn["Fn::Join"][1] if isinstance(p, str)) for arn in complete["Resource"]
    ]
    assert [arn.rsplit("/", 1)[1] for arn in arns] == ["first", "second"]


def test_handler_is_installed_once_per_queue() -> None:
    stack = make_stack(make_app(), "Once")
    queue = NodeTerminationHandlerQueue(stack, "Nth", auto_scaling_group_names=[ASG])
    queue.handler_role = iam.Role(
        stack, "Installed", assumed_by=iam.ServicePrincipal("pods.eks.amazonaws.com")
    )
    with pytest.raises(CapacityBlockError) as failure:
        queue.install_handler(cast(Any, None))
    assert "already installed from this queue" in str(failure.value)
    assert "install it once" in str(failure.value)


def test_auto_mode_clusters_bring_their_own_pod_identity_agent() -> None:
    from aws_cdk import aws_eks_v2 as eks_v2

    from capblock_constructs.termination import _runs_auto_mode

    stack = make_stack(name="AutoMode")
    auto = eks_v2.Cluster(stack, "Auto", version=eks_v2.KubernetesVersion.V1_33)
    nodes = eks_v2.Cluster(
        stack,
        "Nodes",
        version=eks_v2.KubernetesVersion.V1_33,
        default_capacity_type=eks_v2.DefaultCapacityType.NODEGROUP,
        default_capacity=0,
    )
    assert _runs_auto_mode(auto)
    assert not _runs_auto_mode(nodes)
