"""How drkit's Kafka clients authenticate: not at all on the local stack, with AWS IAM on MSK.

The MSK clusters take IAM authentication only (components/msk.py): TLS on port 9098 and
SASL/OAUTHBEARER, where the bearer token is a SigV4-presigned ``kafka-cluster:Connect`` request
for the cluster's region, signed with whatever credentials the default chain finds (the backup
CronJob's IRSA role, an operator's session). AWS's own signer library makes the token; librdkafka
calls ``oauth_cb`` for a fresh one before the previous expires (15 minutes), so a backup that runs
for hours keeps its connection.

Every client drkit makes (admin, consumer, producer; backup, restore, verify) takes its settings
from :func:`client_settings` with :func:`client_auth` as the extra settings, so no code path can
forget the authentication.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from aws_msk_iam_sasl_signer import MSKAuthTokenProvider  # type: ignore[import-untyped]

from stackmodels.outputs import StoreAuth

TokenSource = Callable[[str], tuple[str, int]]
"""Region -> (token, expiry in milliseconds since the epoch), as AWS's signer returns them."""


def msk_iam_token(region: str) -> tuple[str, int]:
    """A ``kafka-cluster:Connect`` token for MSK in ``region`` from the default credentials."""
    token, expiry_ms = MSKAuthTokenProvider.generate_auth_token(region)
    return str(token), int(expiry_ms)


def oauthbearer_settings(
    region: str, token: TokenSource = msk_iam_token, protocol: str = "SASL_SSL"
) -> dict[str, Any]:
    """librdkafka settings for SASL/OAUTHBEARER with tokens from ``token`` (MSK IAM by default).

    ``protocol`` is ``SASL_SSL`` against MSK; the tests use ``SASL_PLAINTEXT`` on loopback.
    """

    def oauth_cb(_config: str) -> tuple[str, float]:
        value, expiry_ms = token(region)
        return value, expiry_ms / 1000.0

    return {"security.protocol": protocol, "sasl.mechanism": "OAUTHBEARER", "oauth_cb": oauth_cb}


def region_of_cluster(arn: str | None, fallback: str) -> str:
    """The region in an MSK cluster ARN (``arn:aws:kafka:<region>:...``), else ``fallback``."""
    if arn:
        parts = arn.split(":")
        if len(parts) > 3 and parts[2] == "kafka" and parts[3]:
            return parts[3]
    return fallback


def client_auth(auth: StoreAuth, region: str) -> dict[str, Any]:
    """The authentication part of a client's settings for a store exported with ``auth``."""
    if auth == "msk-iam":
        return oauthbearer_settings(region)
    return {}


def client_settings(bootstrap: str, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """librdkafka settings shared by every client: the bootstrap plus TLS/SASL settings
    (:func:`client_auth`)."""
    return {"bootstrap.servers": bootstrap, "log_level": 3, **(extra or {})}
