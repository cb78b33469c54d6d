"""Kafka through the engine against a real broker: every record whole, full then incremental,
restored into renamed topics record by record; re-runs, interruptions, corruption, time ranges."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import (  # type: ignore[attr-defined]  # NewTopic: not in its stubs
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewTopic,
    ResourceType,
)

from drkit.backup.engine import Destinations, run_backup
from drkit.backup.kafka import (
    TOPICS_OBJECT,
    KafkaHandler,
    KafkaPoint,
    parse_topics_json,
    read_range,
    reader,
    summary,
    to_record,
)
from drkit.backup.manifest import MANIFEST_NAME, Manifest
from drkit.kafka_frames import TIMESTAMP_CREATE_TIME, TIMESTAMP_LOG_APPEND_TIME, Record
from drkit.kafka_topics import Change, settle, snapshot_prefix
from drkit.local.kafka import LocalKafka
from drkit.restore.kafka import (
    SOURCE_HEADER,
    KafkaRestoreError,
    KafkaRestoreFailed,
    restore_kafka,
)
from drkit.restore.stream import raw_chunks
from drkit.storage.objectstore import read_all
from drkit.storage.s3 import S3Store
from tests.integration.forgery import overwrite

pytestmark = pytest.mark.integration

PARTITIONS = 3
RETENTION_MS = "604800000"  # 7 days: the override the restore must recreate
HOUR_MS = 3_600_000
BASE_TS = (int(time.time() * 1000) // 1000) * 1000 - 2 * HOUR_MS
"""Two hours ago: within retention (an old timestamp would be deleted right after the restore)
and not in the future (the broker rejects timestamps too far ahead)."""


def unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


def admin_for(broker: LocalKafka) -> AdminClient:
    return AdminClient({"bootstrap.servers": broker.bootstrap})


def create_topic(broker: LocalKafka, name: str, config: dict[str, str] | None = None) -> None:
    topic = NewTopic(
        name,
        num_partitions=PARTITIONS,
        replication_factor=1,
        config={"retention.ms": RETENTION_MS, **(config or {})},
    )
    admin = admin_for(broker)  # kept: a destroyed client fails its pending futures
    admin.create_topics([topic])[name].result(timeout=30)


def signal_record(index: int) -> Record:
    """Varied on purpose: None and empty keys, tombstones, binary, duplicate and None headers."""
    partition = index % PARTITIONS
    key: bytes | None = [None, b"", b"\x00\xff", f"ES-{index % 7}".encode()][index % 4]
    value: bytes | None
    if index % 11 == 5:
        value = None  # tombstone
    elif index % 11 == 7:
        value = bytes(range(256))
    else:
        value = json.dumps({"signal": index, "side": "buy" if index % 2 else "sell"}).encode()
    headers: tuple[tuple[str, bytes | None], ...] = ()
    if index % 3:
        headers = (
            ("strategy", b"mean-revert"),
            ("trace", f"t-{index}".encode()),
            ("trace", b"duplicate-name"),
            ("nullable", None),
            ("zone-ü-東京", "naïve".encode()),
        )
    # Not monotonic: restore order must follow offsets, not timestamps.
    timestamp = BASE_TS + index * 1000 - (index % 4) * 2500
    return Record(partition, -1, timestamp, TIMESTAMP_CREATE_TIME, key, value, headers)


def produce(broker: LocalKafka, topic: str, records: Iterable[Record]) -> None:
    producer = Producer(
        {"bootstrap.servers": broker.bootstrap, "enable.idempotence": True, "acks": "all"}
    )
    failures: list[str] = []
    for record in records:
        producer.produce(
            topic,
            key=record.key,
            value=record.value,
            partition=record.partition,
            timestamp=record.timestamp,
            headers=list(record.headers),
            on_delivery=lambda error, _m: failures.append(str(error)) if error else None,
        )
    assert producer.flush(30) == 0
    assert failures == []


def read_partitions(broker: LocalKafka, topic: str) -> dict[int, list[Record]]:
    consumer = reader(broker.bootstrap)
    try:
        found = {}
        for partition in range(PARTITIONS):
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), 10)
            messages = read_range(consumer, topic, partition, low, high, idle_timeout=20)
            found[partition] = [to_record(message) for message in messages]
        return found
    finally:
        consumer.close()


def as_restored(source_topic: str, original: Record, lineage: bool = False) -> tuple[object, ...]:
    """What the restored copy must be: the original, field by field, at any offset; with
    ``lineage``, plus its ``drkit.source`` header last."""
    added = (SOURCE_HEADER, f"{source_topic}/{original.partition}/{original.offset}".encode())
    return (
        original.partition,
        original.key,
        original.value,
        (*original.headers, added) if lineage else original.headers,
        original.timestamp,
        original.timestamp_type,
    )


def comparable(record: Record) -> tuple[object, ...]:
    return (
        record.partition,
        record.key,
        record.value,
        record.headers,
        record.timestamp,
        record.timestamp_type,
    )


def assert_restored(
    broker: LocalKafka,
    source: str,
    target: str,
    expected: dict[int, list[Record]],
    lineage: bool = False,
) -> None:
    """Partition by partition, in order: the same records, each once, nothing else."""
    restored = read_partitions(broker, target)
    for partition in range(PARTITIONS):
        assert [comparable(r) for r in restored[partition]] == [
            as_restored(source, r, lineage) for r in expected[partition]
        ], f"{target}/{partition}"


def backup(
    topic: str, broker: LocalKafka, destinations: Destinations, previous: Manifest | None = None
) -> Manifest:
    handler = KafkaHandler(broker.bootstrap, [topic], previous=previous)
    return run_backup("signals-bus", "trading-signals", handler, destinations)


@dataclass
class Seeded:
    topic: str
    originals: dict[int, list[Record]]


def seed(broker: LocalKafka, count: int, name: str = "strategy-signals") -> Seeded:
    topic = unique(name)
    create_topic(broker, topic)
    produce(broker, topic, (signal_record(i) for i in range(count)))
    return Seeded(topic, read_partitions(broker, topic))


def test_full_then_incremental_restore_record_by_record_and_rerun_is_a_no_op(
    kafka_broker: LocalKafka, destinations: Destinations
) -> None:
    topic = unique("strategy-signals")
    create_topic(kafka_broker, topic, {"max.message.bytes": "2097152"})
    admin = admin_for(kafka_broker)
    app = Consumer({"bootstrap.servers": kafka_broker.bootstrap, "group.id": unique("trading-app")})
    app.commit(offsets=[TopicPartition(topic, p, 3) for p in range(PARTITIONS)], asynchronous=False)
    groups_before = {g.group_id for g in admin.list_consumer_groups().result(timeout=30).valid}

    produce(kafka_broker, topic, (signal_record(i) for i in range(60)))
    full = backup(topic, kafka_broker, destinations)
    produce(kafka_broker, topic, (signal_record(i) for i in range(60, 90)))
    incremental = backup(topic, kafka_broker, destinations, previous=full)

    full_point, incremental_point = KafkaPoint.of(full), KafkaPoint.of(incremental)
    assert full.counts == {topic: 60}
    assert full_point.incremental_from is None
    assert full_point.start_offsets == {topic: {"0": 0, "1": 0, "2": 0}}
    assert full_point.end_offsets == {topic: {"0": 20, "1": 20, "2": 20}}
    assert incremental.counts == {topic: 30}  # only the new records
    assert incremental_point.incremental_from == full.backup_id
    assert incremental_point.start_offsets == full_point.end_offsets
    assert incremental_point.end_offsets == {topic: {"0": 30, "1": 30, "2": 30}}
    assert [(p.first_offset, p.last_offset, p.records) for p in incremental_point.partitions] == [
        (20, 29, 10)
    ] * PARTITIONS
    assert incremental_point.lost_to_retention == [] and incremental_point.warnings == []
    saved = json.loads(read_all(raw_chunks(destinations.vault, full.objects[0])))
    assert full.objects[0].name == TOPICS_OBJECT
    assert saved["topics"][topic] == {
        "partitions": PARTITIONS,
        "replication_factor": 1,
        "configs": {"max.message.bytes": "2097152", "retention.ms": RETENTION_MS},
    }
    for store in destinations.stores:  # the engine's contract holds for this handler too
        stored = json.loads(store.get_bytes(incremental.prefix + MANIFEST_NAME))
        assert Manifest.model_validate(stored) == incremental

    # Backups read with assign and never commit: the app's group is as it was, no group added.
    after = app.committed([TopicPartition(topic, p) for p in range(PARTITIONS)], timeout=30)
    app.close()
    assert sorted((tp.partition, tp.offset) for tp in after) == [(p, 3) for p in range(3)]
    groups_after = {g.group_id for g in admin.list_consumer_groups().result(timeout=30).valid}
    assert groups_after == groups_before

    originals = read_partitions(kafka_broker, topic)
    assert sum(len(records) for records in originals.values()) == 90
    every = [r for records in originals.values() for r in records]
    names = [[n for n, _ in r.headers] for r in every]
    assert {None, b"", b"\x00\xff"} <= {r.key for r in every}  # null, empty and binary keys
    assert any(r.value is None for r in every) and any(not r.headers for r in every)
    assert any(n.count("trace") == 2 for n in names)  # a repeated header name
    assert any(v is None for r in every for _n, v in r.headers)  # a null header value
    target = unique("restored-signals")
    result = restore_kafka(
        [full, incremental], destinations.vault, kafka_broker.bootstrap, rename={topic: target}
    )
    assert result.created_topics == [target]
    assert [(p.partition, p.status, p.produced, p.verified) for p in result.partitions] == [
        (p, "restored", 30, 30) for p in range(PARTITIONS)
    ]
    assert_restored(kafka_broker, topic, target, originals)
    configs = admin.describe_configs([ConfigResource(ResourceType.TOPIC, target)])
    entries = next(iter(configs.values())).result(timeout=30)
    assert entries["retention.ms"].value == RETENTION_MS
    assert entries["max.message.bytes"].value == "2097152"

    again = restore_kafka(
        [full, incremental],
        destinations.mirror or destinations.vault,
        kafka_broker.bootstrap,
        rename={topic: target},
    )
    assert again.created_topics == []
    assert again.produced == 0
    assert [(p.already_present, p.verified) for p in again.partitions] == [(30, 30)] * PARTITIONS
    assert_restored(kafka_broker, topic, target, originals)


class Interrupted(BaseException):
    """Stands in for Ctrl-C in the middle of a restore."""


def test_interrupted_restore_resumes_with_no_duplicates_and_no_gaps(
    kafka_broker: LocalKafka, destinations: Destinations
) -> None:
    seeded = seed(kafka_broker, 1200)
    manifest = backup(seeded.topic, kafka_broker, destinations)
    target = unique("resumed-signals")

    def stop_halfway(topic: str, partition: int, produced: int) -> None:
        if partition == 1 and produced == 150:
            raise Interrupted

    with pytest.raises(Interrupted):
        restore_kafka(
            [manifest],
            destinations.vault,
            kafka_broker.bootstrap,
            rename={seeded.topic: target},
            progress=stop_halfway,
        )
    partial = read_partitions(kafka_broker, target)
    assert [len(partial[p]) for p in range(PARTITIONS)] == [400, 150, 0]

    result = restore_kafka(
        [manifest], destinations.vault, kafka_broker.bootstrap, rename={seeded.topic: target}
    )
    assert [(p.already_present, p.produced, p.verified) for p in result.partitions] == [
        (400, 0, 400),
        (150, 250, 400),
        (0, 400, 400),
    ]
    assert_restored(kafka_broker, seeded.topic, target, seeded.originals)


def test_killed_restore_process_is_completed_by_a_rerun(
    kafka_broker: LocalKafka, destinations: Destinations
) -> None:
    """SIGKILL mid-partition: nothing is flushed, whatever landed is a prefix; a re-run fills it."""
    seeded = seed(kafka_broker, 900)
    manifest = backup(seeded.topic, kafka_broker, destinations)
    target = unique("killed-signals")
    vault = destinations.vault
    assert isinstance(vault, S3Store)
    script = f"""
import os, signal
import boto3
from drkit.backup.manifest import Manifest
from drkit.restore.kafka import restore_kafka
from drkit.storage.s3 import S3Store
s3 = boto3.client('s3', endpoint_url={vault.client.meta.endpoint_url!r}, region_name='us-east-1',
                  aws_access_key_id='testing', aws_secret_access_key='testing')
manifest = Manifest.model_validate_json({manifest.model_dump_json()!r})
def die(topic, partition, produced):
    if partition == 1 and produced == 200:
        os.kill(os.getpid(), signal.SIGKILL)
restore_kafka([manifest], S3Store(s3, {vault.bucket!r}), {kafka_broker.bootstrap!r},
              rename={{{seeded.topic!r}: {target!r}}}, progress=die)
"""
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env)
    assert run.returncode == -signal.SIGKILL, run.stderr
    partial = read_partitions(kafka_broker, target)
    assert len(partial[0]) == 300 and len(partial[1]) <= 200 and partial[2] == []

    result = restore_kafka(
        [manifest], destinations.vault, kafka_broker.bootstrap, rename={seeded.topic: target}
    )
    assert [p.verified for p in result.partitions] == [300] * PARTITIONS
    assert_restored(kafka_broker, seeded.topic, target, seeded.originals)


def test_corrupted_object_fails_its_partition_before_producing_anything(
    kafka_broker: LocalKafka, destinations: Destinations
) -> None:
    seeded = seed(kafka_broker, 3000)
    manifest = backup(seeded.topic, kafka_broker, destinations)
    damaged = next(o for o in manifest.objects if o.name.endswith("/1.kfr"))
    body = bytearray(destinations.vault.get_bytes(damaged.key))
    body[len(body) // 2] ^= 0xFF
    overwrite(destinations.vault, damaged.key, bytes(body))
    target = unique("from-damaged")

    with pytest.raises(KafkaRestoreFailed, match=f"{seeded.topic}/1") as failure:
        restore_kafka(
            [manifest], destinations.vault, kafka_broker.bootstrap, rename={seeded.topic: target}
        )
    statuses = [(p.status, p.produced) for p in failure.value.result.partitions]
    assert statuses == [("restored", 1000), ("failed", 0), ("restored", 1000)]
    assert read_partitions(kafka_broker, target)[1] == []  # not one record of the damaged object

    # The mirror's copy is intact: the same restore from it completes the topic.
    assert destinations.mirror is not None
    result = restore_kafka(
        [manifest], destinations.mirror, kafka_broker.bootstrap, rename={seeded.topic: target}
    )
    assert [p.produced for p in result.partitions] == [0, 1000, 0]
    assert_restored(kafka_broker, seeded.topic, target, seeded.originals)


def test_time_range_restores_only_that_range(
    kafka_broker: LocalKafka, destinations: Destinations
) -> None:
    seeded = seed(kafka_broker, 300)
    manifest = backup(seeded.topic, kafka_broker, destinations)
    since, until = BASE_TS + 40_000, BASE_TS + 100_000
    target = unique("range-signals")
    with pytest.raises(KafkaRestoreError, match=r"\['market-data'\] are not in the backups"):
        restore_kafka([manifest], destinations.vault, kafka_broker.bootstrap, ["market-data"])
    result = restore_kafka(
        [manifest],
        destinations.vault,
        kafka_broker.bootstrap,
        topics=[seeded.topic],
        rename={seeded.topic: target},
        since=datetime.fromtimestamp(since / 1000, UTC),
        until=datetime.fromtimestamp(until / 1000, UTC),
    )
    expected = {
        p: [r for r in records if since <= r.timestamp < until]
        for p, records in seeded.originals.items()
    }
    assert 0 < sum(len(r) for r in expected.values()) < 300
    assert [p.verified for p in result.partitions] == [len(expected[p]) for p in range(3)]
    assert_restored(kafka_broker, seeded.topic, target, expected)


def test_records_lost_to_retention_are_reported_not_fatal(
    kafka_broker: LocalKafka, destinations: Destinations
) -> None:
    seeded = seed(kafka_broker, 30)  # 10 per partition
    full = backup(seeded.topic, kafka_broker, destinations)
    produce(kafka_broker, seeded.topic, (signal_record(i) for i in range(30, 60)))
    admin = admin_for(kafka_broker)
    deleted = admin.delete_records([TopicPartition(seeded.topic, 0, 15)])  # as retention would
    next(iter(deleted.values())).result(timeout=30)

    incremental = backup(seeded.topic, kafka_broker, destinations, previous=full)
    point = KafkaPoint.of(incremental)
    assert [(g.partition, g.from_offset, g.to_offset) for g in point.lost_to_retention] == [
        (0, 10, 15)
    ]
    assert "deleted by retention" in point.warnings[0]
    assert "up to 5 records lost to retention" in summary(incremental)
    assert point.start_offsets == {seeded.topic: {"0": 15, "1": 10, "2": 10}}
    assert incremental.counts == {seeded.topic: 25}

    with pytest.raises(KafkaRestoreError, match="a chain starts with a full backup"):
        restore_kafka([incremental], destinations.vault, kafka_broker.bootstrap)
    with pytest.raises(KafkaRestoreError, match="the chain is broken or out of order"):
        restore_kafka([full, full], destinations.vault, kafka_broker.bootstrap)

    target = unique("after-retention")
    result = restore_kafka(
        [full, incremental],
        destinations.vault,
        kafka_broker.bootstrap,
        rename={seeded.topic: target},
    )
    assert [p.verified for p in result.partitions] == [15, 20, 20]


def test_transactions_aborted_records_are_skipped_and_the_backup_ends(
    kafka_broker: LocalKafka, destinations: Destinations
) -> None:
    """Transaction markers and aborted records leave holes in offsets; the read must still end."""
    topic = unique("order-events")
    create_topic(kafka_broker, topic)
    producer = Producer(
        {"bootstrap.servers": kafka_broker.bootstrap, "transactional.id": unique("tx")}
    )
    producer.init_transactions(30)
    for commit in (True, False, True):
        producer.begin_transaction()
        for i in range(6):
            producer.produce(topic, key=b"k", value=f"{commit}-{i}".encode(), partition=i % 3)
        if commit:
            producer.commit_transaction(30)
        else:
            producer.abort_transaction(30)
    manifest = backup(topic, kafka_broker, destinations)
    assert manifest.counts == {topic: 12}
    values = [r.value or b"" for rs in read_partitions(kafka_broker, topic).values() for r in rs]
    assert sorted(values) == sorted(f"True-{i}".encode() for i in range(6) for _ in range(2))


def test_a_recreated_topic_starts_a_new_chain(
    kafka_broker: LocalKafka, destinations: Destinations
) -> None:
    """After a topic is deleted and recreated its offsets restart; continuing the old chain would
    mix two histories under the same offsets, so the next backup is full."""
    seeded = seed(kafka_broker, 40)
    first = backup(seeded.topic, kafka_broker, destinations)
    admin = admin_for(kafka_broker)
    for future in admin.delete_topics([seeded.topic], operation_timeout=30).values():
        future.result()
    deadline = time.monotonic() + 30
    while seeded.topic in admin.list_topics(timeout=10).topics and time.monotonic() < deadline:
        time.sleep(0.2)
    create_topic(kafka_broker, seeded.topic)
    produce(kafka_broker, seeded.topic, (signal_record(i) for i in range(100, 160)))

    second = backup(seeded.topic, kafka_broker, destinations, previous=first)
    point = second.consistent_point
    assert point["incremental_from"] is None
    assert point["topic_ids"][seeded.topic] != first.consistent_point["topic_ids"][seeded.topic]
    assert any("recreated" in warning for warning in point["warnings"])
    assert second.counts[seeded.topic] == 60


def test_the_topic_configuration_is_stored_in_the_vault_and_mirror_only_when_it_changed(
    kafka_broker: LocalKafka, destinations: Destinations
) -> None:
    """Each backup compares the topics' configuration with the newest snapshot under
    the store's ``topic-configs/``: two backups of an unchanged topic store one, a changed retention
    a second, holding the new value; the first is kept as it was (create-only)."""
    seeded = seed(kafka_broker, 10)
    first = backup(seeded.topic, kafka_broker, destinations)
    second = backup(seeded.topic, kafka_broker, destinations, previous=first)
    prefix = snapshot_prefix("trading-signals", "signals-bus")
    keys = [info.key for info in destinations.vault.list_objects(prefix)]
    assert len(keys) == 1
    stored = parse_topics_json(destinations.vault.get_bytes(keys[0]), keys[0])
    assert stored[seeded.topic].configs["retention.ms"] == RETENTION_MS

    resource = ConfigResource(
        ResourceType.TOPIC,
        seeded.topic,
        incremental_configs=[
            ConfigEntry("retention.ms", str(HOUR_MS), incremental_operation=AlterConfigOpType.SET)
        ],
    )
    admin = admin_for(kafka_broker)
    for future in admin.incremental_alter_configs([resource]).values():
        future.result(timeout=30)
    settle(admin, [Change(seeded.topic, "retention.ms", RETENTION_MS, str(HOUR_MS))])
    backup(seeded.topic, kafka_broker, destinations, previous=second)
    after = sorted(info.key for info in destinations.vault.list_objects(prefix))
    assert len(after) == 2 and after[0] == keys[0]
    assert destinations.mirror is not None  # the mirror got each one too, under the same key
    assert sorted(info.key for info in destinations.mirror.list_objects(prefix)) == after
    assert destinations.mirror.get_bytes(after[1]) == destinations.vault.get_bytes(after[1])
    changed = parse_topics_json(destinations.vault.get_bytes(after[1]), after[1])
    assert changed[seeded.topic].configs["retention.ms"] == str(HOUR_MS)


def test_lineage_header_is_opt_in_and_resumes_from_it(
    kafka_broker: LocalKafka, destinations: Destinations
) -> None:
    seeded = seed(kafka_broker, 90)
    manifest = backup(seeded.topic, kafka_broker, destinations)
    target = unique("lineage-signals")

    def stop(topic: str, partition: int, produced: int) -> None:
        if partition == 1 and produced == 10:
            raise Interrupted

    args = ([manifest], destinations.vault, kafka_broker.bootstrap)
    with pytest.raises(Interrupted):
        restore_kafka(*args, rename={seeded.topic: target}, lineage_header=True, progress=stop)
    result = restore_kafka(*args, rename={seeded.topic: target}, lineage_header=True)
    assert [(p.already_present, p.produced) for p in result.partitions] == [
        (30, 0),
        (10, 20),
        (0, 30),
    ]
    assert_restored(kafka_broker, seeded.topic, target, seeded.originals, lineage=True)


def test_records_someone_else_wrote_into_the_target_are_refused_naming_the_partition(
    kafka_broker: LocalKafka, destinations: Destinations
) -> None:
    """No marker in the records: a re-run trusts the target's offsets only while the target's
    records are the chain's; a stranger's record makes that partition fail, the others go on."""
    seeded = seed(kafka_broker, 90)
    manifest = backup(seeded.topic, kafka_broker, destinations)
    target = unique("shared-signals")
    args = ([manifest], destinations.vault, kafka_broker.bootstrap)
    restore_kafka(*args, rename={seeded.topic: target})
    stranger = Record(1, -1, BASE_TS, TIMESTAMP_CREATE_TIME, b"k", b"not from the backup")
    produce(kafka_broker, target, [stranger])
    with pytest.raises(KafkaRestoreFailed) as failure:
        restore_kafka(*args, rename={seeded.topic: target})
    outcomes = failure.value.result.partitions
    assert [(p.status, p.produced) for p in outcomes] == [
        ("restored", 0),
        ("failed", 0),
        ("restored", 0),
    ]
    assert outcomes[1].error == (
        f"target {target}/1 holds 31 records, the backup has 30 for it: it holds other "
        "records; restore into another topic (--rename) or pass --force to append"
    )

    # Fewer records than the chain, but not the chain's: the compared last record tells.
    early = unique("early-signals")
    create_topic(kafka_broker, early)
    produce(kafka_broker, early, [Record(0, -1, BASE_TS, TIMESTAMP_CREATE_TIME, None, b"x")])
    with pytest.raises(KafkaRestoreFailed, match=f"target {early}/0: its record at offset 0 is"):
        restore_kafka(*args, rename={seeded.topic: early})
    assert len(read_partitions(kafka_broker, early)[0]) == 1  # nothing produced into it

    # append (--force): the chain after whatever is there, in every partition (the failed run
    # restored partitions 1 and 2, so they get the chain twice: append is not a resume).
    result = restore_kafka(*args, rename={seeded.topic: early}, append=True)
    assert [p.produced for p in result.partitions] == [30, 30, 30]
    restored = read_partitions(kafka_broker, early)
    assert [comparable(r) for r in restored[0][1:]] == [
        as_restored(seeded.topic, r) for r in seeded.originals[0]
    ]
    assert [comparable(r) for r in restored[1]] == 2 * [
        as_restored(seeded.topic, r) for r in seeded.originals[1]
    ]


def test_log_append_time_records_keep_their_timestamp_as_create_time(
    kafka_broker: LocalKafka, destinations: Destinations
) -> None:
    """A producer cannot write a LogAppendTime: the value comes back as CreateTime, and the topic,
    created CreateTime for the restore, is LogAppendTime again afterwards."""
    topic = unique("broker-stamped")
    create_topic(kafka_broker, topic, {"message.timestamp.type": "LogAppendTime"})
    produce(kafka_broker, topic, (signal_record(i) for i in range(30)))
    originals = read_partitions(kafka_broker, topic)
    assert {r.timestamp_type for rs in originals.values() for r in rs} == {
        TIMESTAMP_LOG_APPEND_TIME
    }
    manifest = backup(topic, kafka_broker, destinations)
    target = unique("restored-stamped")
    restore_kafka([manifest], destinations.vault, kafka_broker.bootstrap, rename={topic: target})
    restored = read_partitions(kafka_broker, target)
    for partition in range(PARTITIONS):
        assert [comparable(r) for r in restored[partition]] == [
            comparable(replace(r, timestamp_type=TIMESTAMP_CREATE_TIME))
            for r in originals[partition]
        ]
    admin = admin_for(kafka_broker)  # kept: a destroyed client fails its pending futures
    configs = admin.describe_configs([ConfigResource(ResourceType.TOPIC, target)])
    entries = next(iter(configs.values())).result(timeout=30)
    assert entries["message.timestamp.type"].value == "LogAppendTime"
