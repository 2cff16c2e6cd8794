"""The form of a Capacity Block reservation ID, checked before any AWS call.

It lives below both the value object and the lookup, so that neither has to
import the other for it.
"""

from __future__ import annotations

import re
from typing import TypeGuard

from .errors import CapacityBlockError

RESERVATION_ID_PATTERN = re.compile(r"^cr-(?:[0-9a-f]{8}|[0-9a-f]{17})$")
"""A reservation ID: ``cr-`` followed by 8 or 17 lowercase hex digits."""


def is_reservation_id(value: object) -> TypeGuard[str]:
    """Whether ``value`` is a string of the form of a reservation ID."""
    return isinstance(value, str) and RESERVATION_ID_PATTERN.match(value) is not None


def check_reservation_id(capacity_reservation_id: object) -> str:
    """Return the ID if it has the form of a reservation ID, else raise before any AWS call."""
    if is_reservation_id(capacity_reservation_id):
        return capacity_reservation_id
    raise CapacityBlockError(
        f"{capacity_reservation_id!r} is not a Capacity Block reservation ID; use the 'cr-' ID "
        "followed by 8 or 17 lowercase hex digits, for example 'cr-0123456789abcdef0' "
        "(aws ec2 describe-capacity-reservations --filters Name=reservation-type,"
        "Values=capacity-block lists yours)."
    )
