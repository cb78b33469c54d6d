"""The likeliest 3 a.m. failures as one line an operator can act on: what is missing, where it
was looked for, and the command that fixes it; ``drkit.cli_errors.describe`` prints it, exit 2.

- no AWS credentials, or expired ones (an SSO session, a temporary token);
- an endpoint that does not answer (connection refused, no such host, a connect timeout);
- no GCP credentials for the GCS mirror.

The missing Pulumi CLI, missing stack outputs and missing store credentials are refused where
they are found (``StackOutputs.from_pulumi``, ``OpsContext.load``, ``Credentials.for_store``),
with the same three parts.

Errors are recognised by their class names along the cause chain, so this module imports neither
botocore nor google-auth (``invoke --list`` stays fast).
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import urlsplit

AWS_SSO_LOGIN = "aws sso login"
LOCAL_UP = "invoke local.up"
PULUMI_INSTALL = "https://www.pulumi.com/docs/install/"

EXPIRED_CODES = frozenset(
    {
        "ExpiredToken",
        "ExpiredTokenException",
        "RequestExpired",
        "InvalidClientTokenId",
        "UnrecognizedClientException",
        "InvalidAccessKeyId",
        "AuthFailure",
    }
)
"""AWS error codes that mean the caller's credentials are expired or not (or no longer) valid."""


def _names(error: BaseException) -> set[str]:
    return {cls.__name__ for cls in type(error).__mro__}


def _chain(error: BaseException) -> list[BaseException]:
    """``error`` and its causes, outermost first (a wrapped botocore error is found too)."""
    seen: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and all(current is not other for other in seen) and len(seen) < 8:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def aws_profile() -> str:
    return os.environ.get("AWS_PROFILE") or os.environ.get("AWS_DEFAULT_PROFILE") or "default"


def aws_where() -> str:
    """Where botocore looked, in its order."""
    credentials = os.environ.get("AWS_SHARED_CREDENTIALS_FILE", "~/.aws/credentials")
    config = os.environ.get("AWS_CONFIG_FILE", "~/.aws/config")
    return (
        f"looked in AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, profile {aws_profile()!r} "
        f"(AWS_PROFILE) in {credentials} and {config}, the SSO cache and the instance role"
    )


def _login() -> str:
    profile = aws_profile()
    flag = "" if profile == "default" else f" --profile {profile}"
    return f"run `{AWS_SSO_LOGIN}{flag}` (or export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)"


def _aws_code(error: BaseException) -> str:
    response: Any = getattr(error, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


def actionable(error: BaseException) -> str | None:
    """The one line for a failure an operator fixes with a command, or ``None``."""
    for item in _chain(error):
        line = _one(item)
        if line is not None:
            return line
    return None


def _one(error: BaseException) -> str | None:
    names = _names(error)
    if names & {"NoCredentialsError", "PartialCredentialsError"}:
        return f"no AWS credentials: {aws_where()}; {_login()}"
    if names & {"TokenRetrievalError", "SSOTokenLoadError", "UnauthorizedSSOTokenError"}:
        return (
            f"the AWS SSO session of profile {aws_profile()!r} (AWS_PROFILE) has expired or was "
            f"never started: {_login()}"
        )
    if "ClientError" in names and _aws_code(error) in EXPIRED_CODES:
        return (
            f"AWS rejected the credentials as expired or invalid ({_aws_code(error)}): "
            f"{aws_where()}; {_login()}"
        )
    if "EndpointConnectionError" in names:
        url = urlsplit(str(getattr(error, "kwargs", {}).get("endpoint_url", "")))
        endpoint = f"{url.scheme}://{url.netloc}{url.path}" if url.netloc else str(error)
        return (
            f"cannot reach {endpoint} (connection refused, no such host or timed out): for "
            f"--stack local, start the local stack with `{LOCAL_UP}` (`invoke local.status` "
            "shows what runs); otherwise check the network path to the region and the "
            "endpoints in --outputs"
        )
    if "DefaultCredentialsError" in names:
        where = os.environ.get("GOOGLE_APPLICATION_CREDENTIALS") or (
            "~/.config/gcloud/application_default_credentials.json"
        )
        return (
            "no GCP credentials for the GCS mirror: looked in GOOGLE_APPLICATION_CREDENTIALS, "
            f"{where} and the metadata server; run `gcloud auth application-default login` "
            "(or set GOOGLE_APPLICATION_CREDENTIALS to a key file)"
        )
    return None
