"""Read a Capacity Block reservation from EC2 and turn it into a cache value.

The caller passes in how a cache value becomes a block (``build``, which is
``CapacityBlock.from_context_value``), so that this module does not import the
value object that imports it.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from ._aws import describe_error, ec2_client
from ._context_cache import cached_lookup, context_key, note_aws_call, stack_environment
from ._ids import check_reservation_id
from ._time import format_utc, parse_utc
from .errors import CapacityBlockError

if TYPE_CHECKING:
    from constructs import Construct

PLANNED_COUNT_TAG = "aws:ec2capacityreservation:incrementalRequestedQuantity"
"""Before a block is active EC2 reports 0 instances; this tag holds the planned count."""
USABLE_STATES = ("payment-pending", "scheduled", "active")
"""Reservation states in which a block will (still) carry instances."""
RESERVATION_KIND = "capacity-block"

_DEAD_STATES = {
    "payment-failed": "EC2 could not take the payment and released the block",
    "cancelled": "the reservation was cancelled",
    "expired": "the block has ended",
    "failed": "the reservation failed",
}


_Block_co = TypeVar("_Block_co", covariant=True)
_Block = TypeVar("_Block")


class BuildBlock(Protocol[_Block_co]):
    """Builds a block from a cache value, as ``CapacityBlock.from_context_value`` does.

    It raises :class:`CapacityBlockError`, led by ``source``, for a value that
    cannot make a block.
    """

    def __call__(self, value: Any, *, source: str) -> _Block_co: ...


def reservation_context_key(account: str, region: str, capacity_reservation_id: str) -> str:
    """The CDK context key that caches one reservation for one account and region."""
    return context_key(
        RESERVATION_KIND,
        (
            ("account", account),
            ("region", region),
            ("capacityReservationId", capacity_reservation_id),
        ),
    )


def fill_command(capacity_reservation_id: str, region: str, account: str | None = None) -> str:
    """The ``capblock`` command that writes the cache entry for a reservation."""
    command = f"capblock lookup {capacity_reservation_id} --region {region}"
    # The key names the stack's account, which differs from the owner of a
    # shared block: name it so the command always fills the key synth reads.
    return f"{command} --account {account}" if account else command


def lookup_capacity_block(
    scope: Construct, capacity_reservation_id: str, *, build: BuildBlock[_Block]
) -> _Block:
    """Resolve a reservation for the stack holding ``scope``; see ``CapacityBlock.from_lookup``.

    :param build: Turns the cache value into the block; the value is checked
        with it before it is cached, too.
    """
    check_reservation_id(capacity_reservation_id)
    account, region = stack_environment(
        scope, what=f"Looking up Capacity Block {capacity_reservation_id}"
    )
    key = reservation_context_key(account, region, capacity_reservation_id)
    subject = f"Capacity Block {capacity_reservation_id} (account {account}, region {region})"
    value = cached_lookup(
        scope,
        key=key,
        subject=subject,
        fill_command=fill_command(capacity_reservation_id, region, account),
        fetch=lambda: fetch_reservation(
            capacity_reservation_id, region=region, account=account, build=build
        ),
    )
    if isinstance(value, str):
        # `cdk -c key=value` passes context values as strings.
        with contextlib.suppress(ValueError):
            value = json.loads(value)
    return build(value, source=f"cache entry {key!r}")


@dataclass(frozen=True, kw_only=True)
class ReservationFacts:
    """What one DescribeCapacityReservations (+ DescribeCapacityBlocks) call found."""

    value: dict[str, Any]
    """The cache value: only facts that stay fixed for the life of the block."""
    state: str
    """The reservation state at the time of the call; never cached, it changes."""


def fetch_reservation(
    capacity_reservation_id: str,
    *,
    region: str,
    account: str | None = None,
    profile: str | None = None,
    build: BuildBlock[object],
) -> dict[str, Any]:
    """Call EC2 and return the cache value for the reservation.

    Raises :class:`CapacityBlockError` with one user-facing message for every
    AWS failure and for reservations that cannot carry nodes.
    """
    return describe_reservation(
        capacity_reservation_id, region=region, account=account, profile=profile, build=build
    ).value


def describe_reservation(
    capacity_reservation_id: str,
    *,
    region: str,
    account: str | None = None,
    profile: str | None = None,
    build: BuildBlock[object],
) -> ReservationFacts:
    """Call EC2 for the reservation (and its Capacity Block) and check it can carry nodes.

    :param build: Turns the cache value into a block (``CapacityBlock.from_context_value``);
        the value is only returned when it builds one.
    """
    check_reservation_id(capacity_reservation_id)
    where = f"account {account}, region {region}" if account else f"region {region}"
    subject = f"Capacity Block {capacity_reservation_id} ({where})"
    fill = fill_command(capacity_reservation_id, region, account)
    client = ec2_client(region=region, profile=profile, subject=subject)
    response = _call(
        client.describe_capacity_reservations,
        {"CapacityReservationIds": [capacity_reservation_id]},
        subject=subject,
        fill=fill,
        action="ec2:DescribeCapacityReservations",
        not_found=(
            f"EC2 has no reservation {capacity_reservation_id} in {where}. Check the ID, that "
            "the stack's region is the one the block was bought in, and that the credentials "
            "belong to the account that owns the block or it is shared with"
        ),
    )
    reservations = [
        item
        for item in response.get("CapacityReservations", [])
        if item.get("CapacityReservationId") == capacity_reservation_id
    ]
    if not reservations:
        raise CapacityBlockError(
            f"EC2 returned no reservation {capacity_reservation_id} in {where}; check the ID "
            "and the region.",
            subject=subject,
        )
    reservation = reservations[0]
    value = interpret_reservation(reservation, subject=subject)

    block_id = reservation.get("CapacityBlockId")
    if block_id:
        blocks = _call(
            client.describe_capacity_blocks,
            {"CapacityBlockIds": [block_id]},
            subject=subject,
            fill=fill,
            action="ec2:DescribeCapacityBlocks",
            not_found=f"EC2 has no Capacity Block {block_id} for this reservation in {where}",
        )
        for item in blocks.get("CapacityBlocks", []):
            if item.get("CapacityBlockId") == block_id and item.get("UltraserverType"):
                value["ultraserverType"] = item["UltraserverType"]
    # Validate before anything is cached: a value that cannot build a block
    # would otherwise fail every later synth until someone refreshes it.
    build(value, source=subject)
    return ReservationFacts(value=value, state=str(reservation.get("State")))


def _call(
    method: Any,
    request: dict[str, Any],
    *,
    subject: str,
    fill: str,
    action: str,
    not_found: str,
) -> dict[str, Any]:
    note_aws_call()
    try:
        response: dict[str, Any] = method(**request)
        return response
    except Exception as exc:  # noqa: BLE001 - every AWS failure becomes one message
        failure = describe_error(
            exc, subject=subject, action=action, not_found=not_found, fill_command=fill
        )
    # Raised outside the except block: users see one message, never a chained
    # botocore traceback (and the exception keeps no botocore objects alive).
    raise failure from None


def _utc(moment: Any, *, field: str, subject: str) -> str:
    if isinstance(moment, str):
        moment = parse_utc(moment, what=f"EC2's {field}")
    if not isinstance(moment, datetime):
        raise CapacityBlockError(f"EC2 returned no {field} for the reservation.", subject=subject)
    if moment.tzinfo is None:
        # botocore parses EC2's timestamps as UTC; a naive one can only mean UTC.
        moment = moment.replace(tzinfo=timezone.utc)
    # StartDate is a MillisecondDateTime; cache values keep whole seconds, so a refresh
    # of an unchanged block writes the entry it replaces.
    return format_utc(moment.replace(microsecond=0))


def _state_problem(state: Any) -> str:
    if state in _DEAD_STATES:
        reason = _DEAD_STATES[state]
        return (
            f"its state is {state!r} ({reason}); it will never launch an instance. Buy a new "
            "Capacity Block and use its reservation ID."
        )
    return (
        f"its state is {state!r}, and only {', '.join(map(repr, USABLE_STATES))} blocks can "
        "carry nodes. Check the reservation with 'aws ec2 describe-capacity-reservations' and "
        "use a block in one of those states."
    )


def _planned_count(tags: dict[Any, Any]) -> int:
    planned = tags.get(PLANNED_COUNT_TAG)
    try:
        return int(str(planned)) if planned is not None else 0
    except ValueError:
        return 0


def interpret_reservation(reservation: dict[str, Any], *, subject: str) -> dict[str, Any]:
    """Check a DescribeCapacityReservations item and convert it to the cache value."""
    problems: list[str] = []
    reservation_type = reservation.get("ReservationType", "default")
    if reservation_type != RESERVATION_KIND:
        problems.append(
            f"its ReservationType is {reservation_type!r} (an On-Demand Capacity Reservation), "
            "not 'capacity-block'. These constructs set the capacity-block market type, which "
            "EC2 only accepts for Capacity Blocks for ML; use a Capacity Block's reservation ID."
        )
    state = reservation.get("State")
    if state not in USABLE_STATES:
        problems.append(_state_problem(state))
    tags = {tag.get("Key"): tag.get("Value") for tag in reservation.get("Tags", [])}
    count = reservation.get("TotalInstanceCount") or 0
    if count < 1:
        # Before a block is active EC2 reports 0 instances and keeps the planned
        # count in this tag (EC2 user guide, "View Capacity Blocks").
        count = _planned_count(tags)
    if count < 1 and state in USABLE_STATES:
        problems.append(
            "EC2 reports no instances for it: TotalInstanceCount is 0 (as before a block is "
            f"active) and the tag {PLANNED_COUNT_TAG!r} is missing or not a number. Check the "
            "reservation with 'aws ec2 describe-capacity-reservations'."
        )
    missing = [
        field
        for field in ("CapacityReservationId", "InstanceType", "AvailabilityZone")
        if not reservation.get(field)
    ]
    if missing:
        problems.append(f"EC2 returned no {', '.join(missing)} for it.")
    if problems:
        raise CapacityBlockError(problems, subject=subject)

    value: dict[str, Any] = {
        "capacityReservationId": reservation["CapacityReservationId"],
        "instanceType": reservation["InstanceType"],
        "availabilityZone": reservation["AvailabilityZone"],
        "instanceCount": count,
        "startDate": _utc(reservation.get("StartDate"), field="StartDate", subject=subject),
        "endDate": _utc(reservation.get("EndDate"), field="EndDate", subject=subject),
    }
    for source, target in (
        ("AvailabilityZoneId", "availabilityZoneId"),
        ("CapacityBlockId", "capacityBlockId"),
        ("InstancePlatform", "instancePlatform"),
        ("OwnerId", "ownerId"),
    ):
        if reservation.get(source):
            value[target] = reservation[source]
    return value
