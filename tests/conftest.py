"""Test-wide guards: fake AWS credentials, no real AWS call, no stray cache writes."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .ec2_stub import StubbedEC2, stub_ec2

_FAKE_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-2",
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
}


@pytest.fixture(autouse=True, scope="session")
def _fake_aws_credentials() -> Iterator[None]:
    saved = {
        key: os.environ.get(key) for key in [*_FAKE_AWS_ENV, "AWS_PROFILE", "CAPBLOCK_LOOKUPS"]
    }
    os.environ.update(_FAKE_AWS_ENV)
    os.environ.pop("AWS_PROFILE", None)
    os.environ.pop("CAPBLOCK_LOOKUPS", None)
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


class RealAwsCallError(BaseException):
    """A test reached for AWS.

    A BaseException, not an Exception, so that no ``except Exception`` in the library
    can turn it into an ordinary error that a test expecting an error would accept.
    """


# The deploy tests' emulator listens here and nowhere else; requests to it may pass.
LOCAL_EMULATOR_PREFIX = "http://127.0.0.1:"


@pytest.fixture(autouse=True)
def _no_real_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    """A request that no Stubber answered fails the test instead of reaching AWS."""
    import botocore.endpoint

    make_request = botocore.endpoint.Endpoint.make_request

    def refuse(self: Any, operation_model: Any, request_dict: Any) -> Any:
        if str(self.host).startswith(LOCAL_EMULATOR_PREFIX):
            return make_request(self, operation_model, request_dict)
        raise RealAwsCallError(f"test tried to call AWS at {self.host}: {operation_model.name}")

    monkeypatch.setattr(botocore.endpoint.Endpoint, "make_request", refuse)


@pytest.fixture
def ec2(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[StubbedEC2]:
    """A Stubber-backed EC2 client behind the reservation lookup, working in tmp_path."""
    yield from stub_ec2(monkeypatch, tmp_path)
