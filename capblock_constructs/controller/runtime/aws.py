"""The boto3 clients a run uses, made on first use, and how their errors are told apart."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from mypy_boto3_autoscaling import AutoScalingClient
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_eks import EKSClient
    from mypy_boto3_sns import SNSClient
    from mypy_boto3_ssm import SSMClient

__all__ = [
    "ACCESS_DENIED_CODES",
    "THROTTLING_CODES",
    "Clients",
    "describe_exception",
    "error_code",
    "make_client",
]

THROTTLING_CODES = frozenset(
    {"Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequestsException"}
)
ACCESS_DENIED_CODES = frozenset(
    {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "UnauthorizedException"}
)


def make_client(service: str) -> Any:
    """A boto3 client in the function's region with standard retries.

    Standard mode retries throttling and transient errors itself (3 attempts in all), so an
    error that reaches the controller has been retried; the next period tries again anyway.
    """
    import boto3
    from botocore.config import Config

    config = Config(
        retries={"mode": "standard", "max_attempts": 3},
        connect_timeout=5,
        read_timeout=20,
        user_agent_extra="capblock-constructs-controller",
    )
    # The service is chosen at run time, which the boto3-stubs overloads cannot express.
    return boto3.client(service, config=config)  # type: ignore[call-overload]


class Clients:
    """The five clients, each made by ``factory`` the first time it is used.

    Pass ready clients (for example stubbed ones) as keywords; any not passed is made on
    first use, so a run that never publishes never builds an SNS client.

    :param factory: Makes a client from a boto3 service name. Defaults to :func:`make_client`.
    """

    def __init__(
        self,
        *,
        factory: Callable[[str], Any] = make_client,
        ec2: Any = None,
        eks: Any = None,
        autoscaling: Any = None,
        sns: Any = None,
        ssm: Any = None,
    ) -> None:
        self._factory = factory
        self._made: dict[str, Any] = {
            name: client
            for name, client in (
                ("ec2", ec2),
                ("eks", eks),
                ("autoscaling", autoscaling),
                ("sns", sns),
                ("ssm", ssm),
            )
            if client is not None
        }

    def _get(self, service: str) -> Any:
        if service not in self._made:
            self._made[service] = self._factory(service)
        return self._made[service]

    @property
    def made(self) -> frozenset[str]:
        """The services whose clients exist so far."""
        return frozenset(self._made)

    @property
    def ec2(self) -> EC2Client:
        return cast("EC2Client", self._get("ec2"))

    @property
    def eks(self) -> EKSClient:
        return cast("EKSClient", self._get("eks"))

    @property
    def autoscaling(self) -> AutoScalingClient:
        return cast("AutoScalingClient", self._get("autoscaling"))

    @property
    def sns(self) -> SNSClient:
        return cast("SNSClient", self._get("sns"))

    @property
    def ssm(self) -> SSMClient:
        return cast("SSMClient", self._get("ssm"))


def error_code(exc: BaseException) -> str | None:
    """The AWS error code of a botocore ``ClientError``; ``None`` for any other exception."""
    from botocore.exceptions import ClientError

    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", "Unknown"))
    return None


def describe_exception(exc: BaseException) -> str:
    """A one-line account of an exception, code first for AWS errors."""
    from botocore.exceptions import ClientError

    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = error.get("Code", "Unknown")
        message = str(error.get("Message", "")).strip()
        if code in ACCESS_DENIED_CODES:
            # UnauthorizedOperation's message is a long encoded blob; the code says enough.
            return f"{code}: the function's role lacks the permission"
        if code in THROTTLING_CODES:
            return f"{code}: still throttled after retries; the next period retries"
        return f"{code}: {message or 'no message'}"
    return f"{type(exc).__name__}: {exc}"
