"""The tricky Kafka dataset through the tasks: null, empty and binary keys, empty values and
tombstones, repeated and null headers, explicit (non-monotonic) timestamps, several partitions,
backed up as a full and an incremental and restored by ``invoke restore.kafka`` from the vault and
from the mirror: every record exactly as it was, nothing added."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import pytest

from drkit.kafka_frames import Record
from drkit.ops.executor import Status
from drkit.ops.restore_kafka import RestoreKafkaRequest, build_plan
from drkit.ops.verbs import RestoreEnv
from tests.integration.ops_helpers import (
    PARTITIONS,
    context,
    create_topics,
    produce_records,
    run,
    stream_backup,
    unique_topics,
)
from tests.integration.test_kafka_backup import signal_record
from tests.integration.test_restore_kafka_task import as_tuples, bootstrap_of, read_topic

pytestmark = pytest.mark.integration


def tricky(index: int) -> Record:
    """``signal_record`` (None, empty and binary keys; tombstones; repeated, None and unicode
    headers; timestamps out of order), plus empty values."""
    record = signal_record(index)
    if index % 13 == 3:
        return Record(
            record.partition, -1, record.timestamp, record.timestamp_type, record.key, b"", ()
        )
    return record


def test_the_tricky_dataset_comes_back_exactly_from_the_vault_and_the_mirror(
    project_with_kafka: Path,
) -> None:
    project = project_with_kafka
    topics = unique_topics(project)
    bootstrap = bootstrap_of(project)
    create_topics(bootstrap, topics)
    topic = topics[0]
    produce_records(bootstrap, topic, [tricky(i) for i in range(60)])
    ctx = context(project)
    stream_backup(ctx)
    produce_records(bootstrap, topic, [tricky(i) for i in range(60, 90)])
    stream_backup(ctx)  # an incremental on the first
    original = read_topic(bootstrap, topic)
    every = [r for records in original.values() for r in records]
    assert len(every) == 90 and all(original[p] for p in range(PARTITIONS))
    assert {None, b"", b"\x00\xff"} <= {r.key for r in every}
    assert any(r.value is None for r in every) and any(r.value == b"" for r in every)
    assert any([n for n, _ in r.headers].count("trace") == 2 for r in every)
    assert any(v is None for r in every for _, v in r.headers)
    assert any(a.timestamp > b.timestamp for a, b in pairwise(every))

    for source in ("vault", "mirror"):
        target = f"{topic}-from-{source}"
        request = RestoreKafkaRequest(topics=[topic], rename={topic: target}, source=source)
        plan, prepared = build_plan(ctx, request, RestoreEnv(project))
        assert len(prepared.chain) == 2
        report, out = run(ctx, project, plan, yes=True)
        assert report.status is Status.SUCCEEDED, out
        assert as_tuples(read_topic(bootstrap, target)) == as_tuples(original), source
