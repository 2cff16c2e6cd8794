"""Synth benchmark for capblock-constructs: run with `make bench`.

Measures, in one run on one machine:

1. synth time of stacks built with the constructs against a baseline stack that
   declares the very same template by hand, each resource as its typed ``Cfn*``
   class (the templates are checked to be equal), and the ratio between the two;
2. synth time of one app holding 1, 10 and 50 node groups of each kind;
3. AWS API calls per synth with a cold and a warm lookup cache (EC2 is
   answered by botocore's Stubber: nothing leaves the machine);
4. time to check templates with the Capacity Block rules: the example app's
   ``cdk.out`` and a generated 200-resource template, as ``capblock check``
   does it and inside cfn-lint (with and without the rules appended);
5. wall time of the test command (``make test``), unless ``--skip-tests``.

The results and a description of the machine go to ``docs/performance.md``
(``--output`` to change). In 1., the in-process times are the median of
``--repeat`` runs after one warm-up in this one process, with the CDK's
built-in template validation off (it adds the same fixed cost to both sides);
the end-to-end comparison starts a fresh process per run, with validation on,
as ``cdk synth`` runs an app. 2. starts a fresh process per run (at most three
runs), validation off. ``--only-rules`` runs 4. alone and prints it without
writing the report.
"""

from __future__ import annotations

import argparse
import collections.abc
import compileall
import contextlib
import importlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import typing
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import cache, partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import boto3  # noqa: E402
from aws_cdk import (  # noqa: E402
    App,
    CfnOutput,
    CfnParameter,
    CfnResource,
    DefaultStackSynthesizer,
    Stack,
    Token,
)
from aws_cdk import aws_ec2 as ec2  # noqa: E402
from aws_cdk import aws_eks_v2 as eks  # noqa: E402
from botocore.stub import Stubber  # noqa: E402

from examples.environment import (  # noqa: E402
    EXAMPLE_ACCOUNT,
    EXAMPLE_CLUSTER_NAME,
    EXAMPLE_CLUSTER_SECURITY_GROUP_ID,
    EXAMPLE_ENV,
    EXAMPLE_REGION,
    EXAMPLE_RESERVATION_ID,
    example_block,
    example_context,
)

# capblock_constructs is imported inside the functions that use it, so that the baseline's
# end-to-end process (see child()) never loads it: its import time belongs to the constructs.

# The example app's account, Region and reservation (examples/environment.py); the block is
# the one the committed cdk.context.json caches (example_block()).
ACCOUNT = EXAMPLE_ACCOUNT
REGION = EXAMPLE_REGION
ENV = EXAMPLE_ENV
NOW = "2026-11-26T00:00:00Z"
RESERVATION_ID = EXAMPLE_RESERVATION_ID


# -- stacks -------------------------------------------------------------------------------


def _app() -> App:
    return App(
        context={"capblock-constructs:now": NOW},
        analytics_reporting=False,
        builtin_cloud_formation_validation=False,
    )


def _stack(app: App, name: str) -> Stack:
    return Stack(
        app,
        name,
        env=ENV,
        synthesizer=DefaultStackSynthesizer(generate_bootstrap_version_rule=False),
    )


def _vpc(stack: Stack) -> ec2.IVpc:
    return ec2.Vpc.from_vpc_attributes(
        stack,
        "Vpc",
        vpc_id="vpc-0a1b2c3d4e5f67890",
        availability_zones=["us-east-2a", "us-east-2b"],
        private_subnet_ids=["subnet-0a1b2c3d4e5f60001", "subnet-0a1b2c3d4e5f60002"],
    )


def _cluster(stack: Stack) -> eks.ICluster:
    return eks.Cluster.from_cluster_attributes(
        stack,
        "Cluster",
        cluster_name=EXAMPLE_CLUSTER_NAME,
        cluster_endpoint="https://0123456789ABCDEF0123456789ABCDEF.gr7.us-east-2.eks.amazonaws.com",
        cluster_certificate_authority_data="LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCg==",
        cluster_security_group_id=EXAMPLE_CLUSTER_SECURITY_GROUP_ID,
    )


def add_launch_template(stack: Stack, index: int = 0) -> None:
    from capblock_constructs import CapacityBlockLaunchTemplate

    CapacityBlockLaunchTemplate(stack, f"LaunchTemplate{index}", capacity_block=example_block())


def add_managed(stack: Stack, index: int = 0) -> None:
    from capblock_constructs import CapacityBlockManagedNodeGroup

    CapacityBlockManagedNodeGroup(
        stack,
        f"Managed{index}",
        cluster=_cluster(stack) if index == 0 else stack.node.find_child("Cluster"),  # type: ignore[arg-type]
        capacity_block=example_block(),
        vpc=_vpc(stack) if index == 0 else stack.node.find_child("Vpc"),  # type: ignore[arg-type]
        efa=True,
    )


def add_self_managed(stack: Stack, index: int = 0) -> None:
    from capblock_constructs import CapacityBlockSelfManagedNodeGroup

    CapacityBlockSelfManagedNodeGroup(
        stack,
        f"SelfManaged{index}",
        cluster=_cluster(stack) if index == 0 else stack.node.find_child("Cluster"),  # type: ignore[arg-type]
        capacity_block=example_block(),
        vpc=_vpc(stack) if index == 0 else stack.node.find_child("Vpc"),  # type: ignore[arg-type]
        kubernetes_version="1.33",
        service_ipv4_cidr="172.20.0.0/16",
        access_entry=True,
        efa=True,
    )


KINDS: dict[str, Callable[[Stack, int], None]] = {
    "launch template": add_launch_template,
    "managed node group": add_managed,
    "self-managed node group": add_self_managed,
}


def construct_template(add: Callable[[Stack, int], None]) -> dict[str, Any]:
    app = _app()
    stack = _stack(app, "Bench")
    add(stack, 0)
    return dict(app.synth().get_stack_by_name("Bench").template)


def baseline_app(template: dict[str, Any], app: App | None = None) -> App:
    """The same template, hand-written: each resource as its typed ``Cfn*`` class.

    The properties are given as a person writing the stack would give them: keyword
    arguments of the resource class, nested ``...Property`` structs built from their
    own classes (so jsii converts and type-checks them), and intrinsic functions as
    tokens.
    """
    app = app or _app()
    stack = _stack(app, "Bench")
    for name, spec in template.get("Parameters", {}).items():
        parameter = CfnParameter(
            stack,
            name,
            type=spec["Type"],
            default=spec.get("Default"),
            description=spec.get("Description"),
        )
        parameter.override_logical_id(name)
    for name, spec in template["Resources"].items():
        resource: CfnResource
        if spec["Type"].startswith("Custom::"):
            # A custom resource has no typed class; by hand it is a CfnResource too.
            resource = CfnResource(
                stack, name, type=spec["Type"], properties=spec.get("Properties", {})
            )
        else:
            typed = typed_class(spec["Type"])
            resource = typed(stack, name, **_keyword_arguments(typed, spec.get("Properties", {})))
        resource.override_logical_id(name)
        for key in (
            "DependsOn",
            "UpdatePolicy",
            "UpdateReplacePolicy",
            "DeletionPolicy",
            "Metadata",
            "Condition",
        ):
            if key in spec:
                resource.add_override(key, spec[key])
    for name, spec in template.get("Outputs", {}).items():
        output = CfnOutput(
            stack, name, value=Token.as_string(spec["Value"]), description=spec.get("Description")
        )
        output.override_logical_id(name)
    return app


def typed_class(resource_type: str) -> type[CfnResource]:
    """The ``Cfn*`` class of ``AWS::Service::Name``: ``aws_cdk.aws_service.CfnName``."""
    _, service, name = resource_type.split("::")
    module = importlib.import_module(f"aws_cdk.aws_{service.lower()}")
    typed: type[CfnResource] = getattr(module, f"Cfn{name}")
    if resource_type != typed.CFN_RESOURCE_TYPE_NAME:
        raise SystemExit(f"{typed.__qualname__} is not {resource_type}")
    return typed


@cache
def _parameters(owner: type) -> dict[str, tuple[str, Any]]:
    """CloudFormation-style key (case and '_' ignored) -> (keyword, type hint) of a constructor."""
    hints = typing.get_type_hints(owner.__init__)
    positional = {"return"} if _is_struct(owner) else {"scope", "id", "return"}
    return {
        keyword.replace("_", "").lower(): (keyword, hint)
        for keyword, hint in hints.items()
        if keyword not in positional
    }


def _keyword_arguments(owner: type, properties: dict[str, Any]) -> dict[str, Any]:
    parameters = _parameters(owner)
    arguments = {}
    for key, value in properties.items():
        keyword, hint = parameters[key.replace("_", "").lower()]
        arguments[keyword] = _typed_value(hint, value)
    return arguments


def _typed_value(hint: Any, value: Any) -> Any:
    options = _flatten(hint)
    if isinstance(value, dict) and len(value) == 1:
        (key,) = value
        if key == "Ref" or key.startswith("Fn::"):
            return _token(options, value)
    if isinstance(value, dict):
        structs = [option for option in options if _is_struct(option)]
        if structs:
            return structs[0](**_keyword_arguments(structs[0], value))
        maps = [
            typing.get_args(option)[1]
            for option in options
            if typing.get_origin(option) in {dict, collections.abc.Mapping}
        ]
        if maps:
            # A map of strings (Lambda environment variables) may hold intrinsics as values.
            return {key: _typed_value(maps[0], item) for key, item in value.items()}
        return value  # JSON-typed property (a policy document, an event pattern)
    if isinstance(value, list):
        items = [
            typing.get_args(option)[0]
            for option in options
            if typing.get_origin(option) in {list, collections.abc.Sequence}
        ]
        return [_typed_value(items[0] if items else Any, item) for item in value]
    return value


def _token(options: list[Any], intrinsic: dict[str, Any]) -> Any:
    if any(option is str for option in options):
        return Token.as_string(intrinsic)
    if any(option in {int, float} for option in options):
        return Token.as_number(intrinsic)
    if any(typing.get_origin(option) in {list, collections.abc.Sequence} for option in options):
        return Token.as_list(intrinsic)
    return Token.as_any(intrinsic)


def _flatten(hint: Any) -> list[Any]:
    if typing.get_origin(hint) is typing.Union:
        return [leaf for arg in typing.get_args(hint) for leaf in _flatten(arg)]
    return [hint]


def _is_struct(option: Any) -> bool:
    # jsii marks its struct classes (CfnTag, the ...Property types) with this attribute.
    return isinstance(option, type) and hasattr(option, "__jsii_struct_bases__")


def _normalized(template: dict[str, Any]) -> str:
    body = json.loads(json.dumps(template))
    for resource in body.get("Resources", {}).values():
        resource.pop("Metadata", None)
        tags = resource.get("Properties", {}).get("Tags")
        if isinstance(tags, list):
            # The CDK sorts tags by key, and a key that was a token when sorted (the
            # cluster-name tag) can land elsewhere; CloudFormation ignores the order.
            tags.sort(key=lambda tag: json.dumps(tag, sort_keys=True))
    return json.dumps(body, sort_keys=True)


# -- timing -------------------------------------------------------------------------------


def median_seconds(action: Callable[[], object], repeat: int) -> float:
    action()  # warm-up: imports, jsii type loading
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def synth_with_constructs(add: Callable[[Stack, int], None]) -> Callable[[], object]:
    def run() -> object:
        app = _app()
        add(_stack(app, "Bench"), 0)
        return app.synth()

    return run


def synth_baseline(template: dict[str, Any]) -> Callable[[], object]:
    return lambda: baseline_app(template).synth()


@dataclass(frozen=True)
class EndToEnd:
    """Fresh-process synth times of one stack, constructs against the L1 baseline."""

    constructs: float
    baseline: float
    ratios: tuple[float, ...]  # constructs / baseline, one per back-to-back pair

    @property
    def overhead(self) -> float:
        return statistics.median(self.ratios) - 1

    @property
    def spread(self) -> tuple[float, float]:
        """First and third quartile of the pairs' overhead."""
        if len(self.ratios) < 2:
            return self.overhead, self.overhead
        first, _, third = statistics.quantiles(self.ratios, n=4)
        return first - 1, third - 1


def end_to_end(kind: str, template_file: Path, repeat: int) -> EndToEnd:
    """Wall times of fresh processes that each synthesize one stack, in back-to-back pairs.

    This is what 'cdk synth' pays per app: interpreter and jsii start-up,
    importing the library (only the constructs' side does), building the
    stack and synthesizing it with the CDK's built-in template validation on.
    Each pair runs the two sides back to back, alternating which goes first,
    so that drifting machine load hits both alike; the overhead is the median
    of the pairs' ratios.
    """
    # An installed package comes with its bytecode; a source checkout only gets it on first
    # import, and never where PYTHONDONTWRITEBYTECODE is set (as on the machines this
    # project is tested on). Without it each constructs-side process would compile the
    # package from source, a cost no user pays twice.
    compileall.compile_dir(ROOT / "capblock_constructs", quiet=1)
    commands = {
        side: [sys.executable, __file__, "--child", kind, side, str(template_file)]
        for side in ("constructs", "baseline")
    }

    def seconds(side: str) -> float:
        started = time.perf_counter()
        subprocess.run(commands[side], check=True, capture_output=True)
        return time.perf_counter() - started

    for side in commands:
        seconds(side)  # warm-up (disk caches)
    pairs = []
    for index in range(repeat):
        order = ("constructs", "baseline") if index % 2 == 0 else ("baseline", "constructs")
        timed = {side: seconds(side) for side in order}
        pairs.append((timed["constructs"], timed["baseline"]))
    return EndToEnd(
        constructs=statistics.median(ours for ours, _ in pairs),
        baseline=statistics.median(theirs for _, theirs in pairs),
        ratios=tuple(ours / theirs for ours, theirs in pairs),
    )


def child(kind: str, side: str, template_file: Path) -> int:
    with tempfile.TemporaryDirectory() as outdir:
        app = App(
            context={"capblock-constructs:now": NOW},
            analytics_reporting=False,
            outdir=outdir,
        )
        if side == "constructs":
            KINDS[kind](_stack(app, "Bench"), 0)
        else:
            app = baseline_app(json.loads(template_file.read_text()), app)
        app.synth()
    return 0


def many_child(kind: str, count: int) -> int:
    """Build and synthesize ``count`` node groups once; print the seconds that took."""
    started = time.perf_counter()
    synth_many(KINDS[kind], count)()
    print(json.dumps({"seconds": time.perf_counter() - started}))
    return 0


def many_in_fresh_processes(kind: str, count: int, repeat: int) -> tuple[float, float]:
    """Median (build and synth, whole process) seconds of fresh processes, as 'cdk synth' runs.

    A fresh process per run: in one long-lived process every app built before
    leaves its objects in the jsii kernel, and later runs slow down with them.
    """
    command = [sys.executable, __file__, "--many", kind, str(count)]
    inner, outer = [], []
    for _ in range(repeat):
        started = time.perf_counter()
        done = subprocess.run(command, check=True, capture_output=True, text=True)
        outer.append(time.perf_counter() - started)
        inner.append(json.loads(done.stdout.strip().splitlines()[-1])["seconds"])
    return statistics.median(inner), statistics.median(outer)


def synth_many(add: Callable[[Stack, int], None], count: int) -> Callable[[], object]:
    """``count`` node groups in one app, ten to a stack (a stack holds at most 500 resources)."""

    def run() -> object:
        app = _app()
        for index in range(count):
            stack_index, within = divmod(index, 10)
            stack = app.node.try_find_child(f"Bench{stack_index}") or _stack(
                app, f"Bench{stack_index}"
            )
            add(stack, within)  # type: ignore[arg-type]
        return app.synth()

    return run


# -- API calls ----------------------------------------------------------------------------


@contextlib.contextmanager
def stubbed_ec2(responses: int) -> Iterator[None]:
    """Answer up to ``responses`` reservation lookups from botocore's Stubber."""
    from capblock_constructs import _reservation_lookup

    block = example_block()
    client = boto3.client(
        "ec2",
        region_name=REGION,
        aws_access_key_id="bench",
        aws_secret_access_key="bench",
    )
    stubber = Stubber(client)
    for _ in range(responses):
        stubber.add_response(
            "describe_capacity_reservations",
            {
                "CapacityReservations": [
                    {
                        "CapacityReservationId": RESERVATION_ID,
                        "InstanceType": block.instance_type,
                        "AvailabilityZone": block.availability_zone,
                        "TotalInstanceCount": 0,
                        "State": "scheduled",
                        "ReservationType": "capacity-block",
                        "StartDate": block.start,
                        "EndDate": block.end,
                        "CapacityBlockId": "cb-0a1b2c3d4e5f67890",
                        "Tags": [
                            {
                                "Key": "aws:ec2capacityreservation:incrementalRequestedQuantity",
                                "Value": "4",
                            }
                        ],
                    }
                ]
            },
            {"CapacityReservationIds": [RESERVATION_ID]},
        )
        stubber.add_response(
            "describe_capacity_blocks",
            {"CapacityBlocks": [{"CapacityBlockId": "cb-0a1b2c3d4e5f67890"}]},
            {"CapacityBlockIds": ["cb-0a1b2c3d4e5f67890"]},
        )
    original = _reservation_lookup.ec2_client
    _reservation_lookup.ec2_client = lambda **_: client  # type: ignore[assignment]
    try:
        with stubber:
            yield
    finally:
        _reservation_lookup.ec2_client = original  # type: ignore[assignment]


def api_calls_per_synth() -> tuple[int, int]:
    """(cold, warm): AWS calls of a synth with an empty cache, then with the filled one."""
    from capblock_constructs import CapacityBlock, CapacityBlockLaunchTemplate, _context_cache

    def synth_with_lookup() -> None:
        app = _app()
        stack = _stack(app, "Bench")
        block = CapacityBlock.from_lookup(stack, RESERVATION_ID)
        CapacityBlockLaunchTemplate(stack, "LaunchTemplate", capacity_block=block)
        app.synth()

    previous = Path.cwd()
    with tempfile.TemporaryDirectory() as directory, stubbed_ec2(responses=1):
        os.chdir(directory)
        try:
            before = _context_cache.aws_call_count
            synth_with_lookup()
            cold = _context_cache.aws_call_count - before
            before = _context_cache.aws_call_count
            synth_with_lookup()
            warm = _context_cache.aws_call_count - before
        finally:
            os.chdir(previous)
    return cold, warm


# -- template rules -----------------------------------------------------------------------

RULES_CFN_LINT_MODULE = "capblock_constructs.rules.cfn_lint"
GENERATED_UNITS = 40  # five resources each: 200


def synth_example(outdir: Path) -> Path:
    """The example app synthesized into ``outdir`` from the committed cache, as `make synth`."""
    from app import build_app

    app = App(
        context=example_context(now=NOW),
        analytics_reporting=False,
        outdir=str(outdir),
        builtin_cloud_formation_validation=False,
    )
    build_app(app).synth()
    return outdir


def generated_template(units: int = GENERATED_UNITS) -> dict[str, Any]:
    """A rule-heavy template of ``5 * units`` resources, all on the example reservation.

    Each unit is a managed node group and a self-managed Auto Scaling group, each with
    its launch template, and the group's scale-down 40 minutes before the block ends:
    every resource is one the rules read and cross-reference.
    """
    block = example_block()
    scale_down = (block.end - block.default_drain_lead).strftime("%Y-%m-%dT%H:%M:%SZ")
    launch_data = {
        "InstanceType": block.instance_type,
        "InstanceMarketOptions": {"MarketType": "capacity-block"},
        "CapacityReservationSpecification": {
            "CapacityReservationTarget": {"CapacityReservationId": block.capacity_reservation_id}
        },
    }
    resources: dict[str, Any] = {}
    for index in range(units):
        for kind in ("Managed", "SelfManaged"):
            resources[f"{kind}Template{index}"] = {
                "Type": "AWS::EC2::LaunchTemplate",
                "Properties": {"LaunchTemplateData": launch_data},
            }
        version = {"Fn::GetAtt": [f"SelfManagedTemplate{index}", "LatestVersionNumber"]}
        resources[f"Nodegroup{index}"] = {
            "Type": "AWS::EKS::Nodegroup",
            "Properties": {
                "ClusterName": EXAMPLE_CLUSTER_NAME,
                "NodeRole": f"arn:aws:iam::{ACCOUNT}:role/nodes",
                "CapacityType": "CAPACITY_BLOCK",
                "Subnets": ["subnet-0a1b2c3d4e5f60001"],
                "ScalingConfig": {"MinSize": 0, "MaxSize": block.instance_count, "DesiredSize": 0},
                "LaunchTemplate": {
                    "Id": {"Ref": f"ManagedTemplate{index}"},
                    "Version": {"Fn::GetAtt": [f"ManagedTemplate{index}", "LatestVersionNumber"]},
                },
            },
        }
        resources[f"Group{index}"] = {
            "Type": "AWS::AutoScaling::AutoScalingGroup",
            "Properties": {
                "MinSize": "0",
                "MaxSize": str(block.instance_count),
                "VPCZoneIdentifier": ["subnet-0a1b2c3d4e5f60001"],
                "LaunchTemplate": {
                    "LaunchTemplateId": {"Ref": f"SelfManagedTemplate{index}"},
                    "Version": version,
                },
            },
        }
        resources[f"ScaleDown{index}"] = {
            "Type": "AWS::AutoScaling::ScheduledAction",
            "Properties": {
                "AutoScalingGroupName": {"Ref": f"Group{index}"},
                "MinSize": 0,
                "MaxSize": 0,
                "DesiredCapacity": 0,
                "StartTime": scale_down,
            },
        }
    return {"AWSTemplateFormatVersion": "2010-09-09", "Resources": resources}


def check_with_rules(paths: list[Path], context: dict[str, Any]) -> int:
    """Load and check every template under ``paths`` as ``capblock check`` does; the findings."""
    from capblock_constructs.rules import (
        blocks_from_context,
        check_template,
        find_templates,
        load_template,
        now_from_context,
    )

    blocks = blocks_from_context(context)
    now = now_from_context(context)
    return sum(
        len(check_template(load_template(path), template_path=str(path), blocks=blocks, now=now))
        for path in find_templates(paths)
    )


def cfn_lint_seconds(templates: list[Path], repeat: int) -> tuple[float, float]:
    """Median seconds for cfn-lint to lint every template, without and with the rules.

    In process, each rule set loaded once; the two sides run in alternating pairs after
    one warm-up each, so drifting machine load hits both alike.
    """
    from cfnlint.api import ManualArgs, lint  # type: ignore[import-untyped]
    from cfnlint.core import get_rules  # type: ignore[import-untyped]

    config = ManualArgs(regions=[REGION])
    texts = [path.read_text() for path in templates]
    sides = {"alone": get_rules([], [], []), "with": get_rules([RULES_CFN_LINT_MODULE], [], [])}

    def seconds(side: str) -> float:
        started = time.perf_counter()
        for text in texts:
            lint(text, rules=sides[side], config=config)
        return time.perf_counter() - started

    for side in sides:
        seconds(side)  # warm-up
    samples: dict[str, list[float]] = {side: [] for side in sides}
    for index in range(repeat):
        for side in ("alone", "with") if index % 2 == 0 else ("with", "alone"):
            samples[side].append(seconds(side))
    return statistics.median(samples["alone"]), statistics.median(samples["with"])


def rules_section(repeat: int) -> list[str]:
    """Section 4: the Capacity Block rules over the example cdk.out and a generated template."""
    from capblock_constructs.rules import find_templates

    lint_repeat = min(repeat, 3)
    lines = [
        "## 4. Checking templates with the Capacity Block rules",
        "",
        "Rules: loading and checking every template in process, as `capblock check` does after",
        f"start-up, median of {repeat}. cfn-lint: linting the same templates in process (each rule",
        "set loaded once) without and with `--append-rules capblock_constructs.rules.cfn_lint`,",
        f"in alternating pairs, median of {lint_repeat}; on a busy machine the two sides scatter",
        "by more than the rules' own time. Blocks and \"now\" come from the example's",
        "cdk.context.json (the time pinned); the example app is synthesized first.",
        "",
        "| templates | resources | rules: load and check (ms) | findings "
        "| cfn-lint alone / with the rules (s) |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    context = example_context(now=NOW)
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        context_file = root / "cdk.context.json"
        context_file.write_text(json.dumps(context))
        generated = root / "Generated.template.json"
        generated.write_text(json.dumps(generated_template()))
        cdk_out = synth_example(root / "cdk.out")
        inputs = {
            "example `cdk.out` (3 stacks)": [cdk_out],
            f"generated, {5 * GENERATED_UNITS} resources": [generated],
        }
        previous = os.environ.get("CAPBLOCK_CONTEXT")
        os.environ["CAPBLOCK_CONTEXT"] = str(context_file)  # what the cfn-lint rules read
        try:
            for label, paths in inputs.items():
                templates = find_templates(paths)
                resources = sum(
                    len(json.loads(path.read_text()).get("Resources", {})) for path in templates
                )
                findings = check_with_rules(paths, context)
                seconds = median_seconds(partial(check_with_rules, paths, context), repeat)
                alone, with_rules = cfn_lint_seconds(templates, lint_repeat)
                lines.append(
                    f"| {label} | {resources} | {1000 * seconds:.1f} | {findings} "
                    f"| {alone:.2f} / {with_rules:.2f} |"
                )
                print(lines[-1], flush=True)
        finally:
            if previous is None:
                os.environ.pop("CAPBLOCK_CONTEXT", None)
            else:
                os.environ["CAPBLOCK_CONTEXT"] = previous
    return lines


# -- the test command ---------------------------------------------------------------------


def test_command_seconds() -> float:
    started = time.perf_counter()
    subprocess.run(["make", "test"], cwd=ROOT, check=True, capture_output=True)
    return time.perf_counter() - started


# -- report -------------------------------------------------------------------------------


def machine() -> list[str]:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory = "unknown"
    with contextlib.suppress(OSError, ValueError, IndexError):
        kib = int(Path("/proc/meminfo").read_text().split("\n")[0].split()[1])
        memory = f"{kib / 1024 / 1024:.1f} GiB"
    node = subprocess.run(["node", "--version"], capture_output=True, text=True, check=False)
    from importlib.metadata import version

    return [
        f"- CPU: {cpu}, {os.cpu_count()} logical cores; memory {memory}",
        f"- OS: {platform.platform()}",
        f"- Python {platform.python_version()}, Node.js {node.stdout.strip() or 'unknown'}",
        f"- aws-cdk-lib {version('aws-cdk-lib')}, jsii {version('jsii')}",
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7, help="timed runs per measurement")
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "performance.md")
    parser.add_argument("--skip-tests", action="store_true", help="do not time 'make test'")
    parser.add_argument(
        "--counts", default="1,10,50", help="node-group counts for the scaling measurement"
    )
    parser.add_argument(
        "--child", nargs=3, metavar=("KIND", "SIDE", "TEMPLATE"), help=argparse.SUPPRESS
    )
    parser.add_argument("--many", nargs=2, metavar=("KIND", "COUNT"), help=argparse.SUPPRESS)
    parser.add_argument(
        "--only-rules",
        action="store_true",
        help="only time the template rules (section 4) and print it; the report is not written",
    )
    args = parser.parse_args(argv)
    if args.only_rules:
        print("\n".join(rules_section(args.repeat)))
        return 0
    if args.child:
        return child(args.child[0], args.child[1], Path(args.child[2]))
    if args.many:
        return many_child(args.many[0], int(args.many[1]))
    counts = [int(part) for part in args.counts.split(",")]
    started = datetime.now(timezone.utc)

    lines = [
        "# Performance",
        "",
        "Written by `make bench` (`bench/run.py`); numbers are from one run on the machine below.",
        "",
        "## Machine",
        "",
        *machine(),
        f"- Run at {started.strftime('%Y-%m-%dT%H:%M:%SZ')}, median of {args.repeat} runs "
        "after one warm-up.",
        "",
        "## 1. Constructs against the same template written as L1 resources",
        "",
        "The baseline declares the same template as a hand-written stack would: each resource as",
        "its typed `Cfn*` class, nested properties as their `...Property` structs, intrinsic",
        "functions as tokens (the two templates are checked to be equal, up to tag order).",
        "In-process: building the stack and synthesizing it, without validation. End to end: a",
        "fresh Python process that imports the CDK (and, for the constructs, capblock_constructs",
        "from its compiled bytecode, as an installed package has it), builds the stack and",
        "synthesizes it with the CDK's built-in validation on, as `cdk synth` runs an app. The",
        "two sides run back to back in pairs, alternating which goes first; the overhead is the",
        "median of the pairs' ratios, and the last column shows how far the pairs scatter (on a",
        "shared machine single runs swing by several percent either way).",
        "",
        "| stack | resources | in-process: constructs / L1 (s) | ratio "
        "| end to end: constructs / L1 (s) | overhead | overhead, middle half of pairs |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for kind, add in KINDS.items():
        template = construct_template(add)
        baseline = dict(baseline_app(template).synth().get_stack_by_name("Bench").template)
        if _normalized(baseline) != _normalized(template):
            raise SystemExit(f"the L1 baseline for {kind} does not reproduce the template")
        ours = median_seconds(synth_with_constructs(add), args.repeat)
        theirs = median_seconds(synth_baseline(template), args.repeat)
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
            json.dump(template, handle)
        template_file = Path(handle.name)
        try:
            fresh = end_to_end(kind, template_file, args.repeat)
        finally:
            template_file.unlink()
        low, high = fresh.spread
        lines.append(
            f"| {kind} | {len(template['Resources'])} | {ours:.3f} / {theirs:.3f} "
            f"| {ours / theirs:.2f} | {fresh.constructs:.2f} / {fresh.baseline:.2f} "
            f"| {100 * fresh.overhead:+.1f}% | {100 * low:+.1f}% .. {100 * high:+.1f}% |"
        )
        print(lines[-1], flush=True)

    many_repeat = min(args.repeat, 3)
    lines += [
        "",
        "## 2. Many node groups in one app (ten per stack)",
        "",
        f"Each run a fresh process, median of {many_repeat}; validation off; each group on the",
        "same imported cluster and VPC, with EFA. Build and synth: the app's construction and",
        "synthesis inside the process; whole process: that plus Python and jsii start-up.",
        "",
        "| node groups | managed: build and synth / whole process (s) "
        "| self-managed: build and synth / whole process (s) |",
        "| ---: | ---: | ---: |",
    ]
    for count in counts:
        cells = []
        for kind in ("managed node group", "self-managed node group"):
            inner, outer = many_in_fresh_processes(kind, count, many_repeat)
            cells.append(f"{inner:.2f} / {outer:.2f}")
        lines.append(f"| {count} | {' | '.join(cells)} |")
        print(lines[-1], flush=True)

    cold, warm = api_calls_per_synth()
    lines += [
        "",
        "## 3. AWS API calls per synth (one reservation)",
        "",
        f"- cold cache: {cold} (DescribeCapacityReservations, DescribeCapacityBlocks)",
        f"- warm cache: {warm}",
    ]
    print(lines[-2], lines[-1], sep="\n", flush=True)
    if warm != 0:
        raise SystemExit(f"a warm cache must make no AWS call, made {warm}")

    lines += ["", *rules_section(args.repeat)]

    lines += ["", "## 5. The test command", ""]
    if args.skip_tests:
        lines.append("- not measured in this run (`--skip-tests`)")
    else:
        lines.append(
            f"- `make test` (venv and CLI already installed): {test_command_seconds():.0f} s"
        )
    print(lines[-1], flush=True)

    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text("\n".join(lines) + "\n")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
