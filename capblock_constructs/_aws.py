"""boto3 clients for lookups, and AWS failures turned into one readable error."""

from __future__ import annotations

from typing import Any

from .errors import CapacityBlockError

_NO_CREDENTIALS = (
    "no usable AWS credentials were found. Sign in (for example 'aws sso login' and "
    "AWS_PROFILE=<profile>), or synthesize from the committed cdk.context.json with "
    "CAPBLOCK_LOOKUPS=off; the cache is filled by 'capblock lookup' where credentials exist."
)

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


def client(service: str, *, region: str, profile: str | None, subject: str) -> Any:
    """A boto3 client with standard retries and short timeouts."""
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError

    config = Config(
        retries={"mode": "standard", "max_attempts": 5},
        connect_timeout=5,
        read_timeout=30,
        user_agent_extra="capblock-constructs",
    )
    try:
        session = boto3.session.Session(profile_name=profile, region_name=region)
        return session.client(service, config=config)
    except BotoCoreError as exc:
        raise CapacityBlockError(
            f"could not set up an AWS {service} client: {exc}. Check the profile name and "
            "the AWS configuration files.",
            subject=subject,
        ) from None


def ec2_client(*, region: str, profile: str | None, subject: str) -> Any:
    return client("ec2", region=region, profile=profile, subject=subject)


def describe_error(exc: Exception, *, subject: str, action: str, not_found: str) -> CapacityBlockError:
    """Translate a boto3/botocore failure into a CapacityBlockError that says what to do."""
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        EndpointConnectionError,
        NoCredentialsError,
        NoRegionError,
        PartialCredentialsError,
        ProfileNotFound,
    )

    if isinstance(exc, CapacityBlockError):
        return exc
    if isinstance(exc, (NoCredentialsError, PartialCredentialsError)):
        return CapacityBlockError(_NO_CREDENTIALS, subject=subject)
    if isinstance(exc, ProfileNotFound):
        return CapacityBlockError(f"{exc}; check AWS_PROFILE or --profile.", subject=subject)
    if isinstance(exc, NoRegionError):
        return CapacityBlockError("no region was given; pass --region.", subject=subject)
    if isinstance(exc, EndpointConnectionError):
        return CapacityBlockError(
            f"could not reach the EC2 endpoint ({exc}). Check the network and the region "
            "name, or synthesize offline from cdk.context.json with CAPBLOCK_LOOKUPS=off.",
            subject=subject,
        )
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", "Unknown"))
        message = str(error.get("Message", "")).strip()
        if code.endswith(".NotFound"):
            return CapacityBlockError(f"{not_found} (EC2 said {code}).", subject=subject)
        if code.endswith(".Malformed"):
            return CapacityBlockError(
                f"EC2 rejected the ID as malformed ({code}: {message}); copy the ID from "
                "'aws ec2 describe-capacity-reservations'.",
                subject=subject,
            )
        if code in _ACCESS_CODES:
            return CapacityBlockError(
                f"the credentials are not allowed to call {action} ({code}). Grant it to the "
                "identity that synthesizes (a read-only permission), or fill the cache "
                "elsewhere with 'capblock lookup'.",
                subject=subject,
            )
        if code in _CREDENTIAL_CODES:
            return CapacityBlockError(
                f"AWS rejected the credentials ({code}: {message}). Refresh them (for example "
                "'aws sso login') and check they belong to the stack's account.",
                subject=subject,
            )
        if code in _THROTTLE_CODES:
            return CapacityBlockError(
                f"EC2 kept throttling {action} after retries ({code}). Wait a minute and "
                "synthesize again.",
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
