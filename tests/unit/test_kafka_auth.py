"""MSK IAM authentication settings: the token AWS's signer makes, and which stores get it.

The token is a SigV4-presigned ``kafka-cluster:Connect`` URL, signed offline from the credentials
in the environment: these tests sign with fixed fake credentials and read the URL back.
"""

from __future__ import annotations

import base64
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

from drkit.context import OpsContext
from drkit.endpoints import kafka_settings
from drkit.kafka_auth import msk_iam_token, oauthbearer_settings, region_of_cluster
from stackmodels import StackConfig, StackOutputs
from tests.unit.test_stack_outputs import valid_outputs

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
MSK_ARN = "arn:aws:kafka:us-west-2:123456789012:cluster/aipx-events-us-west-2/0a1b2c3d-4e5f-6789"


@pytest.fixture
def fake_credentials(monkeypatch: pytest.MonkeyPatch) -> str:
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_WEB_IDENTITY_TOKEN_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
    return "AKIAIOSFODNN7EXAMPLE"


def decoded(token: str) -> tuple[str, dict[str, list[str]]]:
    url = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    parsed = urlparse(url)
    return parsed.netloc, parse_qs(parsed.query)


def test_the_token_is_a_signed_connect_request_for_the_region(fake_credentials: str) -> None:
    token, expiry_ms = msk_iam_token("us-west-2")
    host, query = decoded(token)
    assert host == "kafka.us-west-2.amazonaws.com"
    assert query["Action"] == ["kafka-cluster:Connect"]
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    credential = query["X-Amz-Credential"][0].split("/")
    assert credential[0] == fake_credentials
    assert credential[2:4] == ["us-west-2", "kafka-cluster"]
    assert len(query["X-Amz-Signature"][0]) == 64
    assert int(query["X-Amz-Expires"][0]) == 900
    assert 0 < expiry_ms / 1000 - time.time() <= 900


def test_oauthbearer_settings_hand_librdkafka_the_token_and_expiry_in_seconds() -> None:
    settings = oauthbearer_settings(
        "eu-west-1", lambda region: (f"token-{region}", 1_700_000_000_500)
    )
    assert settings["security.protocol"] == "SASL_SSL"
    assert settings["sasl.mechanism"] == "OAUTHBEARER"
    assert settings["oauth_cb"]("ignored config string") == ("token-eu-west-1", 1_700_000_000.5)


def test_the_region_comes_from_the_cluster_arn() -> None:
    assert region_of_cluster(MSK_ARN, "us-east-1") == "us-west-2"
    assert region_of_cluster(None, "us-east-1") == "us-east-1"
    assert region_of_cluster("arn:aws:rds:eu-west-1:1:cluster:x", "us-east-1") == "us-east-1"


def context_with(stream: dict[str, Any]) -> OpsContext:
    outputs = valid_outputs()
    outputs["stores"]["event-stream"] = stream
    return OpsContext("dr", StackConfig.for_stack("dr", ROOT), StackOutputs.parse(outputs, "dr"))


def test_an_msk_iam_store_gets_iam_tokens_for_its_cluster_region(fake_credentials: str) -> None:
    ctx = context_with(
        {"kind": "kafka", "host": "b-1.x", "port": 9098, "auth": "msk-iam", "resource_id": MSK_ARN}
    )
    settings = kafka_settings(ctx, "event-stream")
    assert (settings["security.protocol"], settings["sasl.mechanism"]) == (
        "SASL_SSL",
        "OAUTHBEARER",
    )
    token, _ = settings["oauth_cb"]("")
    assert decoded(token)[0] == "kafka.us-west-2.amazonaws.com"


def test_a_plain_listener_gets_no_authentication_settings() -> None:
    ctx = context_with({"kind": "kafka", "host": "127.0.0.1", "port": 9092})
    assert kafka_settings(ctx, "event-stream") == {}
