"""The harness's Kafka is a real broker: a record goes in and comes back exactly as written."""

from __future__ import annotations

import uuid

import pytest
from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition
from confluent_kafka.admin import (  # type: ignore[attr-defined]  # NewTopic: not in its stubs
    AdminClient,
    NewTopic,
)

from drkit.local.kafka import LocalKafka

pytestmark = pytest.mark.integration

PARTITION = 1
TIMESTAMP_MS = 1_767_225_600_123  # 2026-01-01T00:00:00.123Z: not "now", so it must be kept
HEADERS: list[tuple[str, str | bytes | None]] = [("trace-id", b"abc-123"), ("source", b"dr-drill")]


def _create_topic(bootstrap: str, name: str, partitions: int) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])
    futures[name].result(timeout=30)
    metadata = admin.list_topics(topic=name, timeout=10)
    assert len(metadata.topics[name].partitions) == partitions


def _produce(bootstrap: str, topic: str) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True})
    errors: list[KafkaError] = []

    def delivered(error: KafkaError | None, _message: Message) -> None:
        if error is not None:
            errors.append(error)

    producer.produce(
        topic,
        key=b"order-42",
        value=b'{"side":"buy","qty":100}',
        partition=PARTITION,
        timestamp=TIMESTAMP_MS,
        headers=HEADERS,
        on_delivery=delivered,
    )
    assert producer.flush(30) == 0
    assert errors == []


def _consume_one(bootstrap: str, topic: str) -> Message:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"test-{uuid.uuid4()}",
            "enable.auto.commit": False,
        }
    )
    try:
        consumer.assign([TopicPartition(topic, PARTITION, 0)])
        message = consumer.poll(30)
        assert message is not None, "no record within 30s"
        assert message.error() is None, message.error()
        return message
    finally:
        consumer.close()


def test_record_round_trips_with_key_headers_timestamp(kafka_broker: LocalKafka) -> None:
    topic = f"roundtrip-{uuid.uuid4().hex[:8]}"
    _create_topic(kafka_broker.bootstrap, topic, partitions=3)
    _produce(kafka_broker.bootstrap, topic)

    message = _consume_one(kafka_broker.bootstrap, topic)

    assert message.topic() == topic
    assert message.partition() == PARTITION
    assert message.offset() == 0
    assert message.key() == b"order-42"
    assert message.value() == b'{"side":"buy","qty":100}'
    assert message.headers() == HEADERS
    assert message.timestamp() == (1, TIMESTAMP_MS)  # TIMESTAMP_CREATE_TIME: the producer's own
