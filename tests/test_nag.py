"""Acknowledging cdk-nag findings: cdk-nag 3 through Validations, cdk-nag 2 through metadata."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Stack, Validations
from aws_cdk import aws_iam as iam
from cdk_nag import AwsSolutionsChecks

from capblock_constructs._nag import acknowledge

WORKER = "Policy::arn:<AWS::Partition>:iam::aws:policy/AmazonEKSWorkerNodePolicy"
CNI = "Policy::arn:<AWS::Partition>:iam::aws:policy/AmazonEKS_CNI_Policy"


def _role_app(outdir: Path, acknowledged: list[str], *, nag: bool = True) -> tuple[App, iam.Role]:
    app = App(outdir=str(outdir), analytics_reporting=False)
    if nag:
        Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    stack = Stack(app, "Nag")
    role = iam.Role(
        stack,
        "Role",
        assumed_by=iam.ServicePrincipal("ec2.amazonaws.com"),
        managed_policies=[
            iam.ManagedPolicy.from_aws_managed_policy_name("AmazonEKSWorkerNodePolicy"),
            iam.ManagedPolicy.from_aws_managed_policy_name("AmazonEKS_CNI_Policy"),
        ],
    )
    for finding in acknowledged:
        acknowledge(
            role, "AwsSolutions-IAM4", reason="the documented node policy", findings=[finding]
        )
    return app, role


def _metadata(app: App) -> Any:
    template = app.synth().get_stack_by_name("Nag").template
    (role,) = [r for r in template["Resources"].values() if r["Type"] == "AWS::IAM::Role"]
    return role["Metadata"]["cdk_nag"]


def test_each_acknowledged_finding_is_silenced_and_only_those(tmp_path: Path) -> None:
    app, _ = _role_app(tmp_path, [WORKER])
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        app.synth()
    report = json.loads((tmp_path / "validation-report.json").read_text())
    findings = [v["ruleName"] for p in report["pluginReports"] for v in p.get("violations", [])]
    assert findings == [f"AwsSolutions-IAM4[{CNI}]"]


def test_findings_of_one_rule_merge_into_one_cdk_nag_2_entry(tmp_path: Path) -> None:
    app, _ = _role_app(tmp_path, [WORKER, CNI, WORKER])
    assert _metadata(app) == {
        "rules_to_suppress": [
            {
                "id": "AwsSolutions-IAM4",
                "reason": "the documented node policy",
                "applies_to": [WORKER, CNI],
            }
        ]
    }


def test_a_rule_without_findings_is_acknowledged_whole_for_cdk_nag_2(tmp_path: Path) -> None:
    # cdk-nag 3 matches acknowledgements exactly (a bare rule ID does not cover its
    # findings), so the constructs pass findings for rules that have them.
    app, role = _role_app(tmp_path, [WORKER], nag=False)
    acknowledge(role, "AwsSolutions-IAM4", reason="the documented node policy")
    acknowledge(role, "AwsSolutions-IAM5", reason="no wildcard here, acknowledged for the test")
    assert _metadata(app)["rules_to_suppress"] == [
        {"id": "AwsSolutions-IAM4", "reason": "the documented node policy"},
        {"id": "AwsSolutions-IAM5", "reason": "no wildcard here, acknowledged for the test"},
    ]
