"""The ``capblock`` command: look Capacity Blocks up, fill the CDK context cache, plan, check.

``capblock lookup cr-...`` writes the same cache entry that
``CapacityBlock.from_lookup`` reads, so that synthesis (in CI, or with
``CAPBLOCK_LOOKUPS=off``) needs no AWS credentials. ``capblock plan`` shows
the cached blocks' UTC timeline as a chart (and SVG) without calling AWS.
``capblock check`` runs the template rules over CloudFormation templates.
Standard library only (and PyYAML for ``check``): no command starts jsii.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import textwrap
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any, TextIO

from . import _reservation_lookup, _time
from ._context_cache import (
    ACCOUNT_ID_PATTERN,
    CONTEXT_FILE_NAME,
    KEY_PREFIX,
    REGION_NAME_PATTERN,
    context_file,
    read_context_file,
    write_context_value,
)
from ._ids import check_reservation_id
from ._time import parse_utc
from ._version import package_version
from .capacity_block import CapacityBlock
from .controller.runtime.phase import (
    DEFAULT_CONTROLLER_PERIOD,
    MAX_CONTROLLER_PERIOD,
    MIN_CONTROLLER_PERIOD,
)
from .errors import CapacityBlockError
from .timeline import WORK_SHARE_DEFINITION, NodeGroupKind, plan
from .timeline_svg import format_plan_svg
from .timeline_text import format_facts, format_plan, format_timeline

__all__ = ["build_parser", "main"]

EXIT_ERROR = 2
"""Exit code for every error the command reports (as argparse uses for usage errors)."""


_LOOKUP_DESCRIPTION = """\
Look a Capacity Block reservation up in EC2, write its cache entry into
./cdk.context.json (the key CapacityBlock.from_lookup reads) and print the
block's facts and UTC timeline. Commit cdk.context.json so that synthesis
needs no AWS credentials.
"""

_LOOKUP_EPILOG = """\
The cache key is
  capblock-constructs:capacity-block:account=<account>:region=<region>:capacityReservationId=<id>
where <account> is the account of the STACK that uses the block. By default it is
the reservation's owner (OwnerId). If the block is shared with your stack's
account from another account, pass --account <stack account>, or synthesis will
not find the entry.

Without --refresh an existing entry is shown and EC2 is not called. After you
extend a Capacity Block (same ID, new end date), run again with --refresh to
replace the entry, then synthesize and deploy so that what the stack takes from
the cache follows the new end (the controller reads the live end by itself).
"""

_CLUSTER_DESCRIPTION = """\
Describe an EKS cluster (eks:DescribeCluster) and write what self-managed nodes
need to join it into ./cdk.context.json, under
  capblock-constructs:eks-cluster:account=<account>:region=<region>:clusterName=<name>
Without --refresh an existing entry is shown and AWS is not called. Refresh
after a Kubernetes upgrade or a change of authentication mode.
"""
_PLAN_DESCRIPTION = f"""\
Show the UTC timeline of Capacity Blocks cached in ./cdk.context.json: the
start (the controller scales node groups up), the drain start (it scales them
to zero), EKS's own scale-down of managed node groups, EC2's reclaim start and
the end, as a chart and a list, with the share of the paid time during which
nodes can run work. Reads the cache only: no AWS call.

{textwrap.fill(WORK_SHARE_DEFINITION, width=79)}
"""

_PLAN_EPILOG = """\
The capblock-constructs controller scales both kinds of node group to zero
--drain-lead minutes before the end (default 40, 70 for UltraServer blocks,
whose instances EC2 reclaims 60 minutes before the end instead of 30). EKS's
own action also scales managed node groups to zero 40 minutes before the end,
as a second line. A managed group's drain lead is at least the default; a
self-managed group's at least EC2's reclaim lead, plus how late the controller
may act (--period plus 1 minute), plus a 30 s termination-hook heartbeat.
Fill the cache with 'capblock lookup <reservation-id> --region <region>'.
"Now" is marked only when --now or the context key capblock-constructs:now (in
cdk.context.json or cdk.json) gives it: the clock is never read, so the output
is reproducible.
"""

_CHECK_DESCRIPTION = """\
Check CloudFormation templates for Capacity Block mistakes that deploy and
then fail, or that leave nodes running when EC2 reclaims the block: launch
templates, EKS managed node groups, Auto Scaling groups, their scheduled
actions and termination hooks. Templates are read as plain data; no AWS call.
"""

_CHECK_EPILOG = """\
PATH is a template file (JSON, or YAML with CloudFormation's short-form tags
such as !Ref) or a folder: every *.template.json in it and in its nested
assemblies (assembly-*/, one per CDK Stage), as 'cdk synth' writes cdk.out.

Rules that compare the template with the reservation (instance type, zone,
count, end) use the Capacity Blocks cached in the context file ('capblock
lookup' fills it); a rule that cannot decide (a value only known at deploy
time, a block not in the cache) stays silent.

Exit status: 0 when no finding is an error, 1 when one is, 2 for bad usage or
when a PATH or template cannot be read. Every template that can be read is still
checked and its findings printed (stdout holds findings only, in every format);
each one that cannot is named on stderr.
"""

_CLUSTER_NAME = re.compile(r"^[0-9A-Za-z][A-Za-z0-9_-]{0,99}$")


def _whole_minutes(span: timedelta) -> int:
    return int(span.total_seconds()) // 60


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for ``capblock`` and its subcommands."""
    parser = argparse.ArgumentParser(
        prog="capblock",
        description="Tools for capblock-constructs: EC2 Capacity Blocks for ML on Amazon EKS.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    lookup = commands.add_parser(
        "lookup",
        help="look a Capacity Block up and write its entry into ./cdk.context.json",
        description=_LOOKUP_DESCRIPTION,
        epilog=_LOOKUP_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    lookup.add_argument(
        "capacity_reservation_id",
        metavar="CAPACITY_RESERVATION_ID",
        help="the block's reservation ID, for example cr-0123456789abcdef0",
    )
    _add_lookup_options(
        lookup,
        what="block",
        account="the account of the stack that uses the block, used in the cache key; defaults "
        "to the reservation's owner. Pass it when the block is shared from another account",
        refresh="call EC2 even if the cache has the entry, and replace it (after an extension)",
        json="print the cache value as JSON instead of the facts and timeline",
    )
    lookup.set_defaults(handler=_lookup)

    cluster = commands.add_parser(
        "lookup-cluster",
        help="look an EKS cluster up and write its entry into ./cdk.context.json",
        description=_CLUSTER_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    cluster.add_argument("cluster_name", metavar="CLUSTER_NAME", help="the EKS cluster's name")
    _add_lookup_options(
        cluster,
        what="cluster",
        account="the cluster's account, used in the cache key; defaults to the account of the "
        "credentials (sts:GetCallerIdentity)",
        refresh="call EKS even if the cache has the entry, and replace it (after an upgrade)",
        json="print the cache value as JSON instead of a summary",
    )
    cluster.set_defaults(handler=_lookup_cluster)

    planner = commands.add_parser(
        "plan",
        help="show when cached Capacity Blocks start, drain and end, as a UTC chart",
        description=_PLAN_DESCRIPTION,
        epilog=_PLAN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    planner.add_argument(
        "capacity_reservation_ids",
        metavar="CAPACITY_RESERVATION_ID",
        nargs="*",
        help="reservations to show; defaults to every Capacity Block in ./cdk.context.json",
    )
    planner.add_argument("--region", help="only blocks cached for this region")
    planner.add_argument("--account", help="only blocks cached for this account")
    planner.add_argument(
        "--node-group",
        choices=["managed", "self-managed", "both"],
        default="both",
        help="which node group's schedule to show; defaults to both",
    )
    planner.add_argument(
        "--drain-lead",
        type=_minutes,
        metavar="MINUTES",
        help="minutes before the end that the controller scales node groups (managed and "
        "self-managed) to zero; defaults to 40, 70 for UltraServer blocks. A managed group's "
        "may not be shorter than that default",
    )
    planner.add_argument(
        "--period",
        type=_minutes,
        metavar="MINUTES",
        help=f"how often the controller runs, {_whole_minutes(MIN_CONTROLLER_PERIOD)} to "
        f"{_whole_minutes(MAX_CONTROLLER_PERIOD)} minutes; it sets how late the controller may "
        f"act, and so the shortest drain lead; defaults to "
        f"{_whole_minutes(DEFAULT_CONTROLLER_PERIOD)}",
    )
    planner.add_argument(
        "--now",
        metavar="TIMESTAMP",
        help="mark this moment (ISO 8601 with offset, e.g. 2027-03-08T00:00:00Z) on the "
        "chart; defaults to the context key capblock-constructs:now, else no mark",
    )
    planner.add_argument(
        "--svg", metavar="FILE", type=Path, help="also write the chart as an SVG file"
    )
    planner.add_argument(
        "--width",
        type=int,
        metavar="COLUMNS",
        help="chart width in columns; defaults to the terminal's width (80 if unknown)",
    )
    planner.add_argument(
        "--unicode",
        action="store_true",
        help="draw the bars with Unicode block characters instead of ASCII",
    )
    planner.set_defaults(handler=_plan)

    checker = commands.add_parser(
        "check",
        help="check CloudFormation templates for Capacity Block mistakes",
        description=_CHECK_DESCRIPTION,
        epilog=_CHECK_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    checker.add_argument(
        "paths",
        metavar="PATH",
        nargs="+",
        type=Path,
        help="a template file (JSON or YAML) or a folder such as cdk.out",
    )
    checker.add_argument(
        "--context",
        metavar="FILE",
        type=Path,
        help="a cdk.context.json whose cached Capacity Blocks the template is compared with; "
        f"defaults to ./{CONTEXT_FILE_NAME} when it exists, else no block is known",
    )
    checker.add_argument(
        "--now",
        metavar="TIMESTAMP",
        help="the moment to compare start times with (ISO 8601 with offset, e.g. "
        "2027-03-08T00:00:00Z); defaults to the context key capblock-constructs:now in the "
        "context file, else the clock",
    )
    checker.add_argument(
        "--format",
        choices=["text", "json", "sarif"],
        default="text",
        dest="output_format",
        help="text (one line per finding; the default), json (one array) or sarif (2.1.0, for "
        "GitHub code scanning)",
    )
    checker.set_defaults(handler=_check)
    return parser


def _add_lookup_options(
    parser: argparse.ArgumentParser, *, what: str, account: str, refresh: str, json: str
) -> None:
    """The options every lookup command shares; the help texts name what differs."""
    parser.add_argument(
        "--region",
        help=f"the {what}'s region; defaults to AWS_REGION, AWS_DEFAULT_REGION, then the "
        "profile's region",
    )
    parser.add_argument("--profile", help="the AWS profile to use; defaults to boto3's default")
    parser.add_argument("--account", help=account)
    parser.add_argument("--refresh", action="store_true", help=refresh)
    parser.add_argument("--json", action="store_true", dest="as_json", help=json)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``capblock`` with ``argv`` (defaults to the process arguments); return the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        # argparse exits for --help, --version and usage errors; report the code instead.
        return exit_.code if isinstance(exit_.code, int) else EXIT_ERROR
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_ERROR
    try:
        code: int = args.handler(args, sys.stdout)
        return code
    except CapacityBlockError as error:
        print(f"capblock {args.command}: error: {error}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130


# -- lookup ------------------------------------------------------------------------------


def _resolve_region(region: str | None, profile: str | None) -> str:
    resolved = _configured_region(region, profile)
    if not REGION_NAME_PATTERN.match(resolved):
        raise CapacityBlockError(
            f"{resolved!r} is not an AWS region name; pass one like --region us-east-2."
        )
    return resolved


def _configured_region(region: str | None, profile: str | None) -> str:
    if region:
        return region
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        if os.environ.get(name):
            return os.environ[name]
    import boto3
    from botocore.exceptions import BotoCoreError

    try:
        configured: str | None = boto3.session.Session(profile_name=profile).region_name
    except BotoCoreError as exc:
        reason = str(exc)
    else:
        if configured:
            return configured
        reason = "neither AWS_REGION, AWS_DEFAULT_REGION nor the profile sets one"
    raise CapacityBlockError(
        f"no region for the lookup: {reason}. Pass --region, for example --region us-east-2."
    ) from None


def _check_account(account: str | None) -> str | None:
    if account is None or ACCOUNT_ID_PATTERN.match(account):
        return account
    raise CapacityBlockError(
        f"--account {account!r} is not an AWS account ID; pass the 12 digits of the stack's "
        "account, for example --account 123456789012."
    )


def _cached_entries(data: dict[str, Any], kind: str, suffix: str) -> dict[str, Any]:
    """Cache entries of ``kind`` whose key ends with ``suffix``, whatever their account."""
    prefix = f"{KEY_PREFIX}:{kind}:account="
    return {
        key: value for key, value in data.items() if key.startswith(prefix) and key.endswith(suffix)
    }


def _cached_entry(
    path: Path, *, kind: str, suffix: str, wanted: str | None, subject: str
) -> tuple[str, Any] | None:
    """The one cached entry to show: the ``wanted`` key, or the only one for any account."""
    entries = _cached_entries(read_context_file(path), kind, suffix)
    if wanted:
        entries = {wanted: entries[wanted]} if wanted in entries else {}
    if len(entries) > 1:
        accounts = ", ".join(sorted(_account_of(key) for key in entries))
        raise CapacityBlockError(
            f"{path} has entries under several accounts ({accounts}); pass --account to "
            "choose one.",
            subject=subject,
        )
    return next(iter(entries.items())) if entries else None


def _account_of(key: str) -> str:
    return key.split(":account=", 1)[1].split(":", 1)[0]


def _lookup(args: argparse.Namespace, out: TextIO) -> int:
    reservation_id = check_reservation_id(args.capacity_reservation_id)
    account = _check_account(args.account)
    region = _resolve_region(args.region, args.profile)
    path = context_file()

    key: str | None = None
    value: Any = None
    state: str | None = None
    if not args.refresh:
        found = _cached_entry(
            path,
            kind=_reservation_lookup.RESERVATION_KIND,
            suffix=f":region={region}:capacityReservationId={reservation_id}",
            wanted=account
            and _reservation_lookup.reservation_context_key(account, region, reservation_id),
            subject=f"Capacity Block {reservation_id} (region {region})",
        )
        if found is not None:
            key, value = found

    fetched = key is None
    if key is None:
        facts = _reservation_lookup.describe_reservation(
            reservation_id,
            region=region,
            account=account,
            profile=args.profile,
            build=CapacityBlock.from_context_value,
        )
        value, state = facts.value, facts.state
        key_account = account or value.get("ownerId")
        if not key_account:
            raise CapacityBlockError(
                "EC2 did not say which account owns the reservation, so the cache key cannot "
                "be formed; pass --account <the stack's account>.",
                subject=f"Capacity Block {reservation_id} (region {region})",
            )
        key = _reservation_lookup.reservation_context_key(key_account, region, reservation_id)
        write_context_value(key, value, path)

    block = CapacityBlock.from_context_value(value, source=f"{path} entry {key!r}")
    notes = _notes(key=key, path=path, fetched=fetched, block=block, account_given=account)
    if args.as_json:
        print(json.dumps(value, indent=2, sort_keys=True), file=out)
        print("\n".join(notes), file=sys.stderr)
        return 0
    print(f"Capacity Block {block.capacity_reservation_id} in {region}", file=out)
    print(format_facts(block, state=state), file=out)
    print("", file=out)
    print("Timeline (UTC):", file=out)
    print(format_timeline(block), file=out)
    print("", file=out)
    print("\n".join(notes), file=out)
    return 0


def _notes(
    *, key: str, path: Path, fetched: bool, block: CapacityBlock, account_given: str | None
) -> list[str]:
    key_account = _account_of(key)
    notes = [f"Cache entry: {key}"]
    if fetched:
        notes.append(f"Written to {path}; commit {CONTEXT_FILE_NAME} with your app.")
    else:
        notes.append(
            f"Read from {path} (EC2 not called). After extending the block, run again with "
            "--refresh."
        )
    if block.owner_id and block.owner_id != key_account:
        notes.append(
            f"The block is owned by account {block.owner_id} and keyed for account "
            f"{key_account}: only stacks deploying to {key_account} will find this entry."
        )
    elif account_given is None and fetched:
        notes.append(
            f"Keyed for the owner account {key_account}. If the block is shared with the "
            "account your stack deploys to, run again with --account <that account>."
        )
    return notes


# -- lookup-cluster ----------------------------------------------------------------------


def _lookup_cluster(args: argparse.Namespace, out: TextIO) -> int:
    from . import _aws, _cluster_info

    name = args.cluster_name
    if not _CLUSTER_NAME.match(name):
        raise CapacityBlockError(
            f"{name!r} is not an EKS cluster name; names start with a letter or digit and "
            "hold up to 100 letters, digits, hyphens and underscores ('aws eks list-clusters' "
            "lists yours)."
        )
    account = _check_account(args.account)
    region = _resolve_region(args.region, args.profile)
    path = context_file()
    subject = f"EKS cluster {name!r} (region {region})"

    found = None
    if not args.refresh:
        found = _cached_entry(
            path,
            kind="eks-cluster",
            suffix=f":region={region}:clusterName={name}",
            wanted=account and _cluster_info.cluster_context_key(account, region, name),
            subject=subject,
        )
    fetched = found is None
    if found is None:
        # DescribeCluster only sees the caller's own clusters, so the caller's
        # account is the cluster's account.
        account = account or _aws.caller_account(
            region=region,
            profile=args.profile,
            subject=subject,
            fill_command=_cluster_info.fill_command(name, region),
        )
        value = _cluster_info.fetch_cluster(
            name, region=region, account=account, profile=args.profile
        )
        key = _cluster_info.cluster_context_key(account, region, name)
        write_context_value(key, value, path)
    else:
        key, value = found
        if not isinstance(value, dict):
            raise CapacityBlockError(
                f"the cached entry {key!r} in {path} is not an object; run again with --refresh.",
                subject=subject,
            )

    if args.as_json:
        print(json.dumps(value, indent=2, sort_keys=True), file=out)
        return 0
    rows = [
        ("Cluster", name),
        ("Account", _account_of(key)),
        ("Region", region),
        ("Kubernetes", value.get("kubernetesVersion", "unknown")),
        ("Endpoint", value.get("endpoint", "unknown")),
        ("Service CIDR", value.get("serviceCidr", "unknown")),
        ("Security group", value.get("clusterSecurityGroupId", "unknown")),
        ("Authentication", value.get("authenticationMode", "unknown")),
    ]
    width = max(len(label) for label, _ in rows) + 1
    print(f"EKS cluster {name} in {region}", file=out)
    print("\n".join(f"  {(label + ':').ljust(width)} {item}" for label, item in rows), file=out)
    print("", file=out)
    print(f"Cache entry: {key}", file=out)
    if fetched:
        print(f"Written to {path}; commit {CONTEXT_FILE_NAME} with your app.", file=out)
    else:
        print(
            f"Read from {path} (AWS not called). After a Kubernetes upgrade, run again with "
            "--refresh.",
            file=out,
        )
    return 0


# -- plan --------------------------------------------------------------------------------


def _minutes(text: str) -> timedelta:
    """argparse type for --drain-lead and --period: a whole number of minutes."""
    try:
        return timedelta(minutes=int(text))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a whole number of minutes; pass one like 40"
        ) from None


def _plan(args: argparse.Namespace, out: TextIO) -> int:
    now = parse_utc(args.now, what="--now") if args.now is not None else None
    kind = None if args.node_group == "both" else NodeGroupKind(args.node_group)
    result = plan(
        args.capacity_reservation_ids,
        region=args.region,
        account=args.account,
        node_group=kind,
        drain_lead=args.drain_lead,
        period=args.period,
        now=now,
    )
    width = args.width or shutil.get_terminal_size((80, 24)).columns
    if args.svg is not None:
        try:
            args.svg.write_text(format_plan_svg(result), encoding="utf-8")
        except OSError as exc:
            raise CapacityBlockError(
                f"cannot write the SVG to {args.svg}: {exc.strerror or exc}; pass --svg with a "
                "path in a directory that exists and is writable."
            ) from None
    print(format_plan(result, width=width, unicode=args.unicode), file=out)
    if args.svg is not None:
        print(f"\nSVG written to {args.svg}", file=out)
    return 0


# -- check -------------------------------------------------------------------------------


def _check(args: argparse.Namespace, out: TextIO) -> int:
    # Imported here: the other commands do not need the rules or PyYAML.
    from .rules import (
        RULES,
        Severity,
        TemplateError,
        check_template,
        find_templates,
        load_template,
    )
    from .rules._context import from_context_file
    from .rules.report import format_json, format_sarif, format_text

    # The context file named by --context (which must exist), else ./cdk.context.json if any.
    if args.context is not None and not args.context.is_file():
        raise CapacityBlockError(
            f"--context {args.context}: no such file; pass the cdk.context.json of the app, or "
            "leave --context out to use ./cdk.context.json when there is one."
        )
    blocks, pinned = from_context_file(
        args.context or context_file(),
        subject=f"--context {args.context}" if args.context else None,
    )
    now = parse_utc(args.now, what="--now") if args.now is not None else pinned or _time.utc_now()
    # Every readable template is checked, whatever else cannot be read; every unreadable
    # PATH and template is reported at the end, in one error (exit 2), after the findings.
    problems: list[str] = []
    templates: set[Path] = set()
    for given in args.paths:
        try:
            templates.update(find_templates([given]))
        except TemplateError as error:
            problems.extend(error.problems)
    findings = []
    checked = 0
    for path in sorted(templates):
        try:
            template = load_template(path)
        except TemplateError as error:
            problems.extend(error.problems)
            continue
        checked += 1
        findings.extend(check_template(template, template_path=str(path), blocks=blocks, now=now))
    # With nothing checked there is no report to print: "no findings" would claim a clean run.
    if checked:
        if args.output_format == "json":
            print(format_json(findings), file=out)
        elif args.output_format == "sarif":
            print(format_sarif(findings, RULES), file=out)
        else:
            print(format_text(findings), file=out)
    if problems:
        raise TemplateError(list(dict.fromkeys(problems)))  # a PATH given twice, named once
    return 1 if any(finding.severity is Severity.ERROR for finding in findings) else 0
