"""Kafka authentication end to end against the real broker's SASL/OAUTHBEARER listener.

MSK checks its IAM tokens itself, so here the broker checks unsigned JWTs instead (Kafka's
unsecured validator); the clients are drkit's own, configured by the same
:func:`drkit.kafka_auth.oauthbearer_settings` the ``msk-iam`` stores use, with only the token
source and the transport (no TLS on loopback) swapped. The MSK token itself is checked in the
unit tests of :mod:`drkit.kafka_auth`.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from typing import Any

import pytest
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient  # type: ignore[attr-defined]

from drkit.backup.engine import Destinations, run_backup
from drkit.backup.kafka import KafkaHandler
from drkit.kafka_auth import oauthbearer_settings
from drkit.local.kafka import LocalKafka
from drkit.ops.restore_kafka import TargetNotEmptyError, refuse_foreign_records
from drkit.restore.kafka import restore_kafka
from tests.integration.test_kafka_backup import (
    PARTITIONS,
    as_restored,
    comparable,
    read_partitions,
    seed,
)

pytestmark = pytest.mark.integration


def _b64(claims: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")


class Tokens:
    """Unsigned JWTs for the broker's unsecured validator; counts the regions it was asked for."""

    def __init__(self, lifetime_s: int = 900) -> None:
        self.lifetime_s = lifetime_s
        self.regions: list[str] = []

    def __call__(self, region: str) -> tuple[str, int]:
        self.regions.append(region)
        now = int(time.time())
        expires = now + self.lifetime_s
        claims = {"sub": "drkit-backup", "iat": now - 60, "exp": expires}
        return f"{_b64({'alg': 'none'})}.{_b64(claims)}.", expires * 1000


def sasl_settings(tokens: Tokens) -> dict[str, Any]:
    return oauthbearer_settings("eu-west-1", tokens, protocol="SASL_PLAINTEXT")


def brokers_listed(bootstrap: str, settings: dict[str, Any], timeout: float = 10.0) -> int:
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0, **settings})
    return len(admin.list_topics(timeout=timeout).brokers)


def test_the_listener_refuses_clients_without_a_valid_token(kafka_broker: LocalKafka) -> None:
    with pytest.raises(KafkaException):
        brokers_listed(kafka_broker.sasl_bootstrap, {}, timeout=2)
    expired = Tokens(lifetime_s=-3600)
    with pytest.raises(KafkaException):
        brokers_listed(kafka_broker.sasl_bootstrap, sasl_settings(expired), timeout=2)
    assert expired.regions, "the client never asked for a token"
    good = Tokens()
    assert brokers_listed(kafka_broker.sasl_bootstrap, sasl_settings(good)) == 1
    assert set(good.regions) == {"eu-west-1"}


def test_backup_and_restore_through_the_authenticated_listener(
    kafka_broker: LocalKafka, destinations: Destinations
) -> None:
    seeded = seed(kafka_broker, 90)
    tokens = Tokens()
    settings = sasl_settings(tokens)
    handler = KafkaHandler(kafka_broker.sasl_bootstrap, [seeded.topic], client_config=settings)
    manifest = run_backup("signals-bus", "trading-signals", handler, destinations)
    assert manifest.counts == {seeded.topic: 90}
    backup_tokens = len(tokens.regions)
    assert backup_tokens >= 2, "admin and consumer each authenticate"

    target = f"{seeded.topic}-restored-{uuid.uuid4().hex[:6]}"
    refuse_foreign_records(
        kafka_broker.sasl_bootstrap, {seeded.topic: target}, settings, [manifest]
    )
    result = restore_kafka(
        [manifest],
        destinations.vault,
        kafka_broker.sasl_bootstrap,
        rename={seeded.topic: target},
        client_config=settings,
    )
    assert result.counts() == {target: 90}
    assert len(tokens.regions) > backup_tokens, "the restore's clients authenticated too"
    restored = read_partitions(kafka_broker, target)
    for partition in range(PARTITIONS):
        assert [comparable(r) for r in restored[partition]] == [
            as_restored(seeded.topic, r) for r in seeded.originals[partition]
        ]

    # The check before a restore reads the target through the same listener: a re-run of the
    # same restore is let through (the records are the chain's), another topic's is not.
    refuse_foreign_records(
        kafka_broker.sasl_bootstrap, {seeded.topic: target}, settings, [manifest]
    )
    with pytest.raises(TargetNotEmptyError):
        refuse_foreign_records(
            kafka_broker.sasl_bootstrap, {"other-topic": target}, settings, [manifest]
        )
