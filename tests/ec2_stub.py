"""A botocore Stubber behind the reservation lookup, shared by the lookup, CLI and bad-input tests.

The Stubber checks every request and response against the real EC2 API model,
so a wrong parameter name or response shape fails the test.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from capblock_constructs import _reservation_lookup as lookup_module

from .support import ACCOUNT, REGION, RESERVATION_ID

PLANNED_TAG = "aws:ec2capacityreservation:incrementalRequestedQuantity"
REQUEST = {"CapacityReservationIds": [RESERVATION_ID]}


def reservation(**overrides: Any) -> dict[str, Any]:
    """A DescribeCapacityReservations item for a scheduled (not yet active) 4-instance block.

    An override of None removes the member.
    """
    item: dict[str, Any] = {
        "CapacityReservationId": RESERVATION_ID,
        "OwnerId": ACCOUNT,
        "CapacityReservationArn": f"arn:aws:ec2:{REGION}:{ACCOUNT}:capacity-reservation/"
        f"{RESERVATION_ID}",
        "AvailabilityZoneId": "use2-az1",
        "InstanceType": "p5.48xlarge",
        "InstancePlatform": "Linux/UNIX",
        "AvailabilityZone": "us-east-2a",
        "Tenancy": "default",
        "TotalInstanceCount": 0,
        "AvailableInstanceCount": 0,
        "State": "scheduled",
        # StartDate is a MillisecondDateTime in the EC2 model.
        "StartDate": datetime(2027, 3, 1, 11, 30, 0, 123000, tzinfo=timezone.utc),
        "EndDate": datetime(2027, 3, 15, 11, 30, tzinfo=timezone.utc),
        "EndDateType": "limited",
        "InstanceMatchCriteria": "targeted",
        "ReservationType": "capacity-block",
        "Tags": [
            {"Key": PLANNED_TAG, "Value": "4"},
            {
                "Key": "aws:ec2capacityreservation:capacityReservationType",
                "Value": "capacity-block",
            },
        ],
    }
    item.update(overrides)
    return {key: value for key, value in item.items() if value is not None}


@dataclass
class StubbedEC2:
    client: Any
    stubber: Stubber
    factory_calls: list[dict[str, Any]] = field(default_factory=list)
    """The arguments of every client the lookup asked for."""

    def add_reservation(self, **overrides: Any) -> None:
        """Queue one DescribeCapacityReservations answer (see :func:`reservation`)."""
        self.stubber.add_response(
            "describe_capacity_reservations",
            {"CapacityReservations": [reservation(**overrides)]},
            REQUEST,
        )


def stub_ec2(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[StubbedEC2]:
    """Inject a stubbed EC2 client into the lookup, working in tmp_path; for fixtures.

    On teardown every queued response must have been used: a lookup made
    exactly the calls the test expected.
    """
    monkeypatch.chdir(tmp_path)
    client = boto3.client("ec2", region_name=REGION)
    stubbed = StubbedEC2(client=client, stubber=Stubber(client))

    def factory(*, region: str, profile: str | None, subject: str) -> Any:
        stubbed.factory_calls.append({"region": region, "profile": profile, "subject": subject})
        return client

    monkeypatch.setattr(lookup_module, "ec2_client", factory)
    with stubbed.stubber:
        yield stubbed
        stubbed.stubber.assert_no_pending_responses()


def expected_value(**overrides: Any) -> dict[str, Any]:
    """The cache value :func:`reservation` must give, written out from the rules.

    The count comes from the planned-quantity tag (the block is not active yet),
    the start loses its milliseconds, and both dates are UTC with a Z.
    """
    value: dict[str, Any] = {
        "capacityReservationId": RESERVATION_ID,
        "instanceType": "p5.48xlarge",
        "availabilityZone": "us-east-2a",
        "availabilityZoneId": "use2-az1",
        "instanceCount": 4,
        "startDate": "2027-03-01T11:30:00Z",
        "endDate": "2027-03-15T11:30:00Z",
        "instancePlatform": "Linux/UNIX",
        "ownerId": ACCOUNT,
    }
    value.update(overrides)
    return value
