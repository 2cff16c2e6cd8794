"""Synth-time lookups cached in CDK context and written through to cdk.context.json.

Every lookup in the library goes through here so that all share one set of
rules: the context key names provider, account, region and resource; the
context (which the CDK CLI fills from cdk.context.json) is read first, then
cdk.context.json itself (for apps run without the CLI, such as unit tests),
and only then AWS; a fresh value is merged into cdk.context.json atomically.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import CapacityBlockError

ACCOUNT_ID_PATTERN = re.compile(r"^[0-9]{12}$")
"""An AWS account ID, as cache keys carry it."""
REGION_NAME_PATTERN = re.compile(r"^[a-z]{2}(?:-[a-z]+)+-[0-9]+$")
"""An AWS Region name, as cache keys carry it."""

if TYPE_CHECKING:
    from constructs import Construct

KEY_PREFIX = "capblock-constructs"
LOOKUPS_CONTEXT_KEY = "capblock-constructs:lookups"
# False: serve lookups from the App's context only, never from ./cdk.context.json. The
# testing helper sets it, so a test's result does not depend on the directory it runs in.
CONTEXT_FILE_CONTEXT_KEY = "capblock-constructs:context-file"
LOOKUPS_ENV = "CAPBLOCK_LOOKUPS"
CONTEXT_FILE_NAME = "cdk.context.json"

_OFF = frozenset({"off", "false", "0", "no"})

# Counts calls to AWS made by lookups in this process; the benchmark reads it.
aws_call_count = 0


def note_aws_call() -> None:
    """Record one AWS API call made by a lookup."""
    global aws_call_count
    aws_call_count += 1


def context_key(kind: str, fields: Sequence[tuple[str, str]]) -> str:
    """``capblock-constructs:<kind>:k1=v1:k2=v2`` in the given field order."""
    return ":".join([KEY_PREFIX, kind, *(f"{name}={value}" for name, value in fields)])


def stack_environment(scope: Construct, *, what: str) -> tuple[str, str]:
    """The account and region of the stack holding ``scope``, or a clear error."""
    # Imported here so that the `capblock` command does not start jsii for it.
    from aws_cdk import Stack, Token

    stack: Stack | None = None
    # jsii surfaces the CDK's "no Stack found" as a RuntimeError with a JS stack;
    # it is replaced by the error below, raised outside any except block.
    with contextlib.suppress(RuntimeError):
        stack = Stack.of(scope)
    if stack is None:
        raise CapacityBlockError(
            f"{what} needs a construct inside a Stack that names its account and region, but "
            f"{scope.node.path or 'the App'!r} is not inside a Stack. Pass a construct from a "
            "stack created with env=Environment(account='123456789012', region='us-east-2').",
        )
    account, region = stack.account, stack.region
    if Token.is_unresolved(account) or Token.is_unresolved(region):
        raise CapacityBlockError(
            f"{what} needs the account and region of stack {stack.node.path!r}, but the stack "
            "is environment-agnostic. Give it an explicit environment, for example "
            "Stack(app, 'Gpu', env=Environment(account='123456789012', region='us-east-2')).",
            subject=scope.node.path or stack.node.path,
        )
    return account, region


def lookups_enabled(scope: Construct) -> bool:
    """False when ``CAPBLOCK_LOOKUPS=off`` or context ``capblock-constructs:lookups`` is false."""
    if os.environ.get(LOOKUPS_ENV, "").strip().lower() in _OFF:
        return False
    return _context_switch(scope, LOOKUPS_CONTEXT_KEY)


def context_file_enabled(scope: Construct) -> bool:
    """False when context ``capblock-constructs:context-file`` is false: lookups are then
    served from the App's context only, and nothing is read from or written to the file."""
    return _context_switch(scope, CONTEXT_FILE_CONTEXT_KEY)


def _context_switch(scope: Construct, key: str) -> bool:
    """A context flag that is on unless set to false (a boolean, or "off"/"false"/"0"/"no",
    as ``cdk synth -c key=false`` passes it)."""
    flag = scope.node.try_get_context(key)
    if flag is None:
        return True
    if isinstance(flag, bool):
        return flag
    return str(flag).strip().lower() not in _OFF


def context_file(directory: Path | None = None) -> Path:
    """The cdk.context.json of the app: the one in the working directory."""
    return (directory or Path.cwd()) / CONTEXT_FILE_NAME


def read_context_file(path: Path) -> dict[str, Any]:
    """The whole context file, or an empty mapping when there is none."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    try:
        data = json.loads(text) if text.strip() else {}
    except json.JSONDecodeError as exc:
        problem = f"{exc.msg} at line {exc.lineno} column {exc.colno}"
    else:
        if isinstance(data, dict):
            return data
        problem = f"it holds a JSON {type(data).__name__}, not an object"
    # Raised outside the except block so that no JSONDecodeError is chained.
    raise CapacityBlockError(
        f"the CDK context cache {path} cannot be read: {problem}. Fix the file (it must be "
        "one JSON object), or delete it and let the lookups fill it again.",
    ) from None


def write_context_value(key: str, value: Any, path: Path | None = None) -> Path:
    """Merge one key into cdk.context.json: other keys kept, keys sorted, atomic replace."""
    target = path or context_file()
    data = read_context_file(target)
    data[key] = value
    payload = json.dumps(data, indent=2, sort_keys=True) + "\n"
    fd, temporary = tempfile.mkstemp(prefix=".cdk.context.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        if target.exists():
            os.chmod(temporary, target.stat().st_mode & 0o777)
        else:
            os.chmod(temporary, 0o644)
        os.replace(temporary, target)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise
    return target


def cached_lookup(
    scope: Construct,
    *,
    key: str,
    subject: str,
    fill_command: str,
    fetch: Callable[[], Any],
) -> Any:
    """Return the cached value for ``key``, fetching and writing it through on a miss.

    :param subject: What is being looked up, for messages (reservation, account, region).
    :param fill_command: The command that fills the cache when lookups are off.
    :param fetch: Calls AWS and returns a JSON-serialisable value; it raises
        :class:`CapacityBlockError` with a user-facing message on failure.
    """
    cached = scope.node.try_get_context(key)
    if cached is not None:
        return cached
    use_file = context_file_enabled(scope)
    if use_file:
        on_disk = read_context_file(context_file()).get(key)
        if on_disk is not None:
            return on_disk
    if not lookups_enabled(scope):
        if not use_file:
            # An app from capblock_constructs.testing: only the blocks it was given exist.
            raise CapacityBlockError(
                f"the App serves lookups from its context only ({CONTEXT_FILE_CONTEXT_KEY!r} "
                f"= false, as capacity_block_app sets it) and it has no entry {key!r}; give "
                "the block to capacity_block_app(blocks=[...]), or the entry in its context=.",
                subject=subject,
            )
        # Not "pass it with --context": the CDK CLI splits a --context argument at its first
        # '=' (parseStringContextListToObject), and these keys hold several, so the entry
        # can only come from a file: cdk.context.json, or the "context" object of cdk.json.
        raise CapacityBlockError(
            f"lookups are switched off ({LOOKUPS_ENV}=off or context "
            f"{LOOKUPS_CONTEXT_KEY!r} = false) and the cache has no entry {key!r}. "
            f"Fill it where AWS credentials are available with '{fill_command}' and commit "
            f'{CONTEXT_FILE_NAME}, or add the entry to the "context" object of cdk.json: '
            f"that key, with the JSON '{fill_command} --json' prints as its value "
            "('cdk synth --context' cannot carry it: the CDK CLI cuts a --context argument "
            "at its first '=', and the key holds several).",
            subject=subject,
        )
    value = fetch()
    if use_file:
        write_context_value(key, value)
    return value
