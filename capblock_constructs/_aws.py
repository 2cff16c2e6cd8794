"""boto3 clients for lookups, and AWS failures turned into one readable error."""

from __future__ import annotations

from typing import Any

from .errors import CapacityBlockError

_ACCESS_CODES = frozenset(
    {"UnauthorizedOperation", "AccessDenied", "AccessDeniedException", "UnauthorizedException"}
)
_CREDENTIAL_CODES = frozenset(
    {
        "AuthFailure",
        "ExpiredToken",
        "ExpiredTokenException",
        "InvalidClientTokenId",
        "RequestExpired",
        "SignatureDoesNotMatch",
        "UnrecognizedClientException",
    }
)
_THROTTLE_CODES = frozenset(
    {"RequestLimitExceeded", "Throttling", "ThrottlingException", "TooManyRequestsException"}
)
_SERVICE_NAMES = {"ec2": "EC2", "eks": "EKS", "autoscaling": "EC2 Auto Scaling", "sts": "STS"}


def client(service: str, *, region: str, profile: str | None, subject: str) -> Any:
    """A boto3 client with standard retries and short timeouts.

    :param service: The boto3 service name, for example ``"ec2"``.
    :param region: The region to call.
    :param profile: A named profile from the AWS configuration files. Defaults to
        boto3's default credential chain.
    :param subject: What the client is for, leading any error message.
    :raises CapacityBlockError: when the profile or configuration cannot be used.
    """
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError

    # Standard mode retries throttling and transient errors itself, so a
    # throttling error that reaches us has already been retried. botocore's
    # "max_attempts" counts retries only; "total_max_attempts" counts the first try.
    config = Config(
        retries={"mode": "standard", "total_max_attempts": 5},
        connect_timeout=5,
        read_timeout=30,
        user_agent_extra="capblock-constructs",
    )
    try:
        session = boto3.session.Session(profile_name=profile, region_name=region)
        # The service is chosen at run time, which the boto3-stubs overloads cannot express.
        return session.client(service, config=config)  # type: ignore[call-overload]
    except BotoCoreError as exc:
        reason = str(exc)
    # Raised outside the except block so that no botocore exception is chained.
    raise CapacityBlockError(
        f"could not set up an AWS {service} client: {reason}. Check the profile name "
        "(--profile or AWS_PROFILE) and the AWS configuration files.",
        subject=subject,
    ) from None


def ec2_client(*, region: str, profile: str | None, subject: str) -> Any:
    """An EC2 client; see :func:`client`."""
    return client("ec2", region=region, profile=profile, subject=subject)


def _service_name(action: str) -> str:
    prefix = action.split(":", 1)[0] if ":" in action else ""
    return _SERVICE_NAMES.get(prefix, prefix.upper() or "AWS")


def describe_error(
    exc: Exception,
    *,
    subject: str,
    action: str,
    not_found: str,
    fill_command: str,
) -> CapacityBlockError:
    """Translate a boto3/botocore failure into a CapacityBlockError that says what to do.

    :param exc: The exception boto3 raised.
    :param subject: What was being looked up (resource, account, region); it leads the message.
    :param action: The IAM action of the call, for example ``ec2:DescribeCapacityReservations``.
    :param not_found: The sentence to use when AWS reports the resource as unknown.
    :param fill_command: The ``capblock`` command that fills the cache entry where
        credentials exist.
    """
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        CredentialRetrievalError,
        HTTPClientError,
        NoCredentialsError,
        NoRegionError,
        PartialCredentialsError,
        ProfileNotFound,
        SSOError,
        TokenRetrievalError,
    )
    from botocore.exceptions import ConnectionError as BotocoreConnectionError

    service = _service_name(action)
    if isinstance(exc, CapacityBlockError):
        return exc
    if isinstance(exc, (NoCredentialsError, PartialCredentialsError)):
        return CapacityBlockError(
            "no usable AWS credentials were found. Sign in (for example 'aws sso login' and "
            "AWS_PROFILE=<profile>), or synthesize from the committed cdk.context.json with "
            f"CAPBLOCK_LOOKUPS=off; the cache is filled by '{fill_command}' where "
            "credentials exist.",
            subject=subject,
        )
    if isinstance(exc, (SSOError, TokenRetrievalError, CredentialRetrievalError)):
        return CapacityBlockError(
            f"the AWS credentials could not be loaded or have expired ({exc}). Sign in again "
            "(for example 'aws sso login'), or synthesize from the committed cdk.context.json "
            "with CAPBLOCK_LOOKUPS=off.",
            subject=subject,
        )
    if isinstance(exc, ProfileNotFound):
        return CapacityBlockError(f"{exc}; check AWS_PROFILE or --profile.", subject=subject)
    if isinstance(exc, NoRegionError):
        return CapacityBlockError("no region was given; pass --region.", subject=subject)
    if isinstance(exc, (BotocoreConnectionError, HTTPClientError)):
        return CapacityBlockError(
            f"could not reach the {service} endpoint ({exc}). Check the network, any proxy "
            "settings and the region name, or synthesize offline from cdk.context.json with "
            "CAPBLOCK_LOOKUPS=off.",
            subject=subject,
        )
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", "Unknown"))
        message = str(error.get("Message", "")).strip()
        if code.endswith(".NotFound"):
            return CapacityBlockError(f"{not_found} ({service} said {code}).", subject=subject)
        if code.endswith(".Malformed"):
            return CapacityBlockError(
                f"{service} rejected the ID as malformed ({code}: {message}); copy the ID from "
                "'aws ec2 describe-capacity-reservations'.",
                subject=subject,
            )
        if code in _ACCESS_CODES:
            # The message of UnauthorizedOperation is a long encoded blob: leave it out.
            return CapacityBlockError(
                f"the credentials are not allowed to call {action} ({code}). Grant it to the "
                "identity that synthesizes (a read-only permission), or fill the cache "
                f"elsewhere with '{fill_command}'.",
                subject=subject,
            )
        if code in _CREDENTIAL_CODES:
            return CapacityBlockError(
                f"AWS rejected the credentials ({code}: {message or 'no message'}). Refresh "
                "them (for example 'aws sso login') and check they belong to the stack's "
                "account.",
                subject=subject,
            )
        if code in _THROTTLE_CODES:
            return CapacityBlockError(
                f"{service} kept throttling {action} after retries ({code}). Wait a minute and "
                "try again.",
                subject=subject,
            )
        if code == "OptInRequired":
            return CapacityBlockError(
                f"the account is not opted in to this region or service ({code}: {message}). "
                "Enable the region for the account, or check the stack's region.",
                subject=subject,
            )
        return CapacityBlockError(
            f"{action} failed with {code}: {message or 'no message'}.", subject=subject
        )
    if isinstance(exc, BotoCoreError):
        return CapacityBlockError(f"{action} failed: {exc}.", subject=subject)
    return CapacityBlockError(
        f"{action} failed unexpectedly: {type(exc).__name__}: {exc}.", subject=subject
    )


def caller_account(*, region: str, profile: str | None, subject: str, fill_command: str) -> str:
    """The account of the credentials in use (``sts:GetCallerIdentity``).

    :param fill_command: The command whose cache entry needs the account, named
        in a failure's message.
    """
    from ._context_cache import note_aws_call

    sts = client("sts", region=region, profile=profile, subject=subject)
    note_aws_call()
    try:
        return str(sts.get_caller_identity()["Account"])
    except Exception as exc:  # noqa: BLE001 - every AWS failure becomes one message
        failure = describe_error(
            exc,
            subject=subject,
            action="sts:GetCallerIdentity",
            not_found="no such identity",
            fill_command=fill_command,
        )
    raise failure from None
