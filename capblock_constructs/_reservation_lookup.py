"""Read a Capacity Block reservation from EC2 and turn it into a CapacityBlock."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any

from constructs import Construct

from ._aws import describe_error, ec2_client
from ._context_cache import cached_lookup, context_key, note_aws_call, stack_environment
from ._time import format_utc
from .capacity_block import CapacityBlock
from .errors import CapacityBlockError

PLANNED_COUNT_TAG = "aws:ec2capacityreservation:incrementalRequestedQuantity"
USABLE_STATES = ("payment-pending", "scheduled", "active")

_RESERVATION_ID = re.compile(r"^cr-(?:[0-9a-f]{8}|[0-9a-f]{17})$")


def reservation_context_key(account: str, region: str, capacity_reservation_id: str) -> str:
    return context_key(
        "capacity-block",
        (("account", account), ("region", region), ("capacityReservationId", capacity_reservation_id)),
    )


def fill_command(capacity_reservation_id: str, region: str) -> str:
    return f"capblock lookup {capacity_reservation_id} --region {region}"


def _check_id(capacity_reservation_id: str) -> None:
    if not isinstance(capacity_reservation_id, str) or not _RESERVATION_ID.match(
        capacity_reservation_id
    ):
        raise CapacityBlockError(
            f"{capacity_reservation_id!r} is not a Capacity Block reservation ID; use the 'cr-' ID "
            "followed by 8 or 17 lowercase hex digits, for example 'cr-0123456789abcdef0' "
            "(aws ec2 describe-capacity-reservations --filters Name=reservation-type,"
            "Values=capacity-block lists yours)."
        )


def lookup_capacity_block(scope: Construct, capacity_reservation_id: str) -> CapacityBlock:
    _check_id(capacity_reservation_id)
    account, region = stack_environment(
        scope, what=f"Looking up Capacity Block {capacity_reservation_id}"
    )
    key = reservation_context_key(account, region, capacity_reservation_id)
    subject = f"Capacity Block {capacity_reservation_id} (account {account}, region {region})"
    value = cached_lookup(
        scope,
        key=key,
        subject=subject,
        fill_command=fill_command(capacity_reservation_id, region),
        fetch=lambda: fetch_reservation(capacity_reservation_id, region=region, account=account),
    )
    return CapacityBlock.from_context_value(value, source=f"context {key!r}")


def fetch_reservation(
    capacity_reservation_id: str,
    *,
    region: str,
    account: str | None = None,
    profile: str | None = None,
) -> dict[str, Any]:
    """Call EC2 and return the cache value for the reservation.

    Raises :class:`CapacityBlockError` with one user-facing message for every
    AWS failure and for reservations that cannot carry nodes.
    """
    _check_id(capacity_reservation_id)
    where = f"account {account}, region {region}" if account else f"region {region}"
    subject = f"Capacity Block {capacity_reservation_id} ({where})"
    client = ec2_client(region=region, profile=profile, subject=subject)
    try:
        note_aws_call()
        response = client.describe_capacity_reservations(
            CapacityReservationIds=[capacity_reservation_id]
        )
    except Exception as exc:  # noqa: BLE001 - every AWS failure becomes one message
        raise describe_error(
            exc,
            subject=subject,
            action="ec2:DescribeCapacityReservations",
            not_found=(
                f"EC2 has no reservation {capacity_reservation_id} in {where}. Check the ID and "
                "that the stack's region is the one the block was bought in."
            ),
        ) from None
    reservations = response.get("CapacityReservations", [])
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
        try:
            note_aws_call()
            blocks = client.describe_capacity_blocks(CapacityBlockIds=[block_id])
        except Exception as exc:  # noqa: BLE001
            raise describe_error(
                exc,
                subject=subject,
                action="ec2:DescribeCapacityBlocks",
                not_found=f"EC2 has no Capacity Block {block_id} for this reservation in {where}.",
            ) from None
        for block in blocks.get("CapacityBlocks", []):
            if block.get("CapacityBlockId") == block_id and block.get("UltraserverType"):
                value["ultraserverType"] = block["UltraserverType"]
    return value


def _utc(moment: Any, *, field: str, subject: str) -> str:
    if not isinstance(moment, datetime):
        raise CapacityBlockError(f"EC2 returned no {field} for the reservation.", subject=subject)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return format_utc(moment.replace(microsecond=0))


def interpret_reservation(reservation: dict[str, Any], *, subject: str) -> dict[str, Any]:
    """Check a DescribeCapacityReservations item and convert it to the cache value."""
    problems: list[str] = []
    reservation_type = reservation.get("ReservationType", "default")
    if reservation_type != "capacity-block":
        problems.append(
            f"it is a {reservation_type!r} reservation (an On-Demand Capacity Reservation), not "
            "a Capacity Block for ML. These constructs set the capacity-block market type, "
            "which EC2 only accepts for Capacity Blocks; use a 'capacity-block' reservation ID."
        )
    state = reservation.get("State")
    if state not in USABLE_STATES:
        problems.append(
            f"its state is {state!r}; only {', '.join(USABLE_STATES)} blocks can carry nodes. "
            "A payment-failed, cancelled, expired or failed block will never launch an "
            "instance: buy a new block and use its ID."
        )
    tags = {tag.get("Key"): tag.get("Value") for tag in reservation.get("Tags", [])}
    count = reservation.get("TotalInstanceCount") or 0
    if count < 1:
        planned = tags.get(PLANNED_COUNT_TAG)
        try:
            count = int(planned) if planned is not None else 0
        except ValueError:
            count = 0
    if count < 1:
        problems.append(
            "EC2 reports no instances for it: TotalInstanceCount is 0 (as before a block is "
            f"active) and the tag {PLANNED_COUNT_TAG!r} is missing or not a number."
        )
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
