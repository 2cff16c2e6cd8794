"""Time handling: the deterministic clock and the formats AWS accepts."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING

from .errors import CapacityBlockError

if TYPE_CHECKING:
    from constructs import IConstruct

NOW_CONTEXT_KEY = "capblock-constructs:now"


def parse_utc(value: str, *, what: str) -> datetime:
    """Parse an ISO 8601 timestamp that names its offset; return it in UTC."""
    text = value.strip()
    # Python 3.10's fromisoformat does not take a trailing "Z".
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise CapacityBlockError(
            f"{what} {value!r} is not an ISO 8601 timestamp; write it like '2027-03-01T11:30:00Z'."
        ) from None
    if parsed.tzinfo is None:
        raise CapacityBlockError(
            f"{what} {value!r} has no UTC offset; append 'Z' (UTC), "
            "for example '2027-03-01T11:30:00Z'."
        )
    return parsed.astimezone(timezone.utc)


def utc_now() -> datetime:
    """The current time in UTC, whole seconds: "now" when nothing pins it."""
    return datetime.now(timezone.utc).replace(microsecond=0)


def pinned_now(value: object, *, source: str = "", hint: str = "") -> datetime | None:
    """A ``capblock-constructs:now`` context value as a UTC datetime; ``None`` when absent.

    ``source`` names where the value was read (`` in cdk.json``, say) and ``hint`` adds
    another way to pin the time to the error message.

    :raises CapacityBlockError: when it is not an ISO 8601 timestamp string with an offset.
    """
    if value is None:
        return None
    what = f"context {NOW_CONTEXT_KEY!r}{source}"
    if not isinstance(value, str):
        raise CapacityBlockError(
            f"{what} is {value!r}; set it to an ISO 8601 UTC timestamp string such as "
            f"'2027-03-01T11:30:00Z'{hint}."
        )
    return parse_utc(value, what=what)


def now(scope: IConstruct) -> datetime:
    """The current time in UTC, or the pinned time in context ``capblock-constructs:now``.

    Pinning makes synthesis reproducible: tests and release builds set the key
    so that templates do not depend on when they were synthesized.
    """
    pinned = pinned_now(scope.node.try_get_context(NOW_CONTEXT_KEY))
    return utc_now() if pinned is None else pinned


def as_timedelta(value: object) -> timedelta | None:
    """A CDK ``Duration`` or a ``timedelta`` as a timedelta; ``None`` for anything else.

    Constructs take either, the way the CDK's own take ``Duration``; the
    caller reports anything else with a message of its own.
    """
    if isinstance(value, timedelta):
        return value
    # Imported here: the value object and the CLI must not start jsii.
    from aws_cdk import Duration

    if isinstance(value, Duration):
        return timedelta(seconds=value.to_seconds())
    return None


def format_utc(moment: datetime) -> str:
    """Format as ``YYYY-MM-DDThh:mm:ssZ`` (UTC, whole seconds), as AWS APIs and messages use."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        # astimezone() would read a naive value as host-local time and shift it.
        raise CapacityBlockError(
            f"{moment.isoformat()} is a naive datetime; pass tzinfo=timezone.utc."
        )
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def format_duration(span: timedelta) -> str:
    """A duration as ``14 days``, ``1 day 2 h 5 min``, ``40 min``, ``32 min 30 s`` or ``30 s``."""
    total = int(span.total_seconds())
    sign = "-" if total < 0 else ""
    minutes, seconds = divmod(abs(total), 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    parts = []
    if days:
        parts.append(f"{days} day{'s' if days != 1 else ''}")
    if hours:
        parts.append(f"{hours} h")
    if minutes or not (parts or seconds):
        parts.append(f"{minutes} min")
    if seconds:
        parts.append(f"{seconds} s")
    return sign + " ".join(parts)
