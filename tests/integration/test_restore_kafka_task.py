"""``invoke restore.kafka`` against the real broker: the chain (daily full + incrementals) picked
from the catalog, every topic or one, same or renamed, keys/headers/timestamps/partitions kept,
a time range, re-runs that add nothing, and an interrupted run resumed without duplicates."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from confluent_kafka import TopicPartition

from drkit.backup.kafka import read_range, reader, to_record
from drkit.context import OpsContext
from drkit.kafka_frames import Record
from drkit.ops.executor import Status
from drkit.ops.restore_kafka import RestoreKafkaRequest, build_plan
from drkit.ops.verbs import RestoreEnv
from drkit.restore.kafka import SOURCE_HEADER
from tests.integration.ops_helpers import (
    PARTITIONS,
    ROOT,
    context,
    create_topics,
    delete_topics,
    produce,
    run,
    stream_backup,
    unique_topics,
)

pytestmark = pytest.mark.integration


def bootstrap_of(project: Path) -> str:
    endpoint = context(project).outputs.stores["event-stream"]
    return f"{endpoint.host}:{endpoint.port}"


def read_topic(bootstrap: str, topic: str) -> dict[int, list[Record]]:
    consumer = reader(bootstrap)
    try:
        found = {}
        for partition in range(PARTITIONS):
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), 10)
            found[partition] = [
                to_record(m) for m in read_range(consumer, topic, partition, low, high, 20)
            ]
        return found
    finally:
        consumer.close()


def restored_view(
    source: str, records: dict[int, list[Record]], lineage: bool = False
) -> dict[int, list[tuple]]:  # type: ignore[type-arg]
    """What a restore must hold: each original record, in order, exactly; with ``lineage``, plus
    its ``drkit.source`` header last."""
    return {
        p: [
            (
                r.key,
                r.value,
                (*r.headers, (SOURCE_HEADER, f"{source}/{p}/{r.offset}".encode()))
                if lineage
                else r.headers,
                r.timestamp,
                r.timestamp_type,
            )
            for r in rs
        ]
        for p, rs in records.items()
    }


def as_tuples(records: dict[int, list[Record]]) -> dict[int, list[tuple]]:  # type: ignore[type-arg]
    return {
        p: [(r.key, r.value, r.headers, r.timestamp, r.timestamp_type) for r in rs]
        for p, rs in records.items()
    }


def seeded(project: Path) -> tuple[list[str], str, OpsContext]:
    """Fresh topics of 30 records each (10 a partition), their broker and the project's
    context."""
    topics = unique_topics(project)
    bootstrap = bootstrap_of(project)
    create_topics(bootstrap, topics)
    for topic in topics:
        produce(bootstrap, topic, 0, 30)
    return topics, bootstrap, context(project)


def test_every_topic_from_a_full_plus_incremental_chain_into_renamed_topics(
    project_with_kafka: Path,
) -> None:
    project = project_with_kafka
    topics, bootstrap, ctx = seeded(project)
    full = stream_backup(ctx)
    for topic in topics:
        produce(bootstrap, topic, 30, 12)
    incremental = stream_backup(ctx)
    originals = {t: read_topic(bootstrap, t) for t in topics}
    rename = {t: f"{t}-restored" for t in topics}

    plan, prepared = build_plan(ctx, RestoreKafkaRequest(rename=rename), RestoreEnv(project))
    assert [m.backup_id for m in prepared.chain] == [full.backup_id, incremental.backup_id]
    report, out = run(ctx, project, plan, yes=True)
    assert report.status is Status.SUCCEEDED, out
    assert f"{full.backup_id} (full) .. {incremental.backup_id}" in out
    for topic in topics:
        assert as_tuples(read_topic(bootstrap, rename[topic])) == restored_view(
            topic, originals[topic]
        )
    # Partitions kept: a record's key landed where the original was (same partition number).
    assert sum(len(v) for v in read_topic(bootstrap, rename[topics[0]]).values()) == 42

    again, out = run(
        ctx,
        project,
        build_plan(ctx, RestoreKafkaRequest(rename=rename), RestoreEnv(project))[0],
        yes=True,
    )
    assert again.status is Status.SUCCEEDED, out
    assert out.count("0 produced, 42 already there") == 3  # a re-run duplicates nothing


def test_one_topic_into_its_own_name_after_it_was_lost_and_at_picks_the_chain(
    project_with_kafka: Path,
) -> None:
    project = project_with_kafka
    topics, bootstrap, ctx = seeded(project)
    full = stream_backup(ctx)
    time.sleep(1.1)  # backup ids and recovery points a second apart
    between = datetime.now(UTC)
    time.sleep(1.1)
    produce(bootstrap, topics[0], 30, 5)
    stream_backup(ctx)
    lost = topics[0]
    original = read_topic(bootstrap, lost)
    delete_topics(bootstrap, [lost])

    plan, prepared = build_plan(
        ctx, RestoreKafkaRequest(topics=[lost], at=between.isoformat()), RestoreEnv(project)
    )
    assert [m.backup_id for m in prepared.chain] == [full.backup_id]  # the full alone
    plan, prepared = build_plan(ctx, RestoreKafkaRequest(topics=[lost]), RestoreEnv(project))
    assert len(prepared.chain) == 2
    report, out = run(ctx, project, plan, yes=True)
    assert report.status is Status.SUCCEEDED, out
    assert as_tuples(read_topic(bootstrap, lost)) == restored_view(lost, original)
    assert [s.id for s in report.steps] == ["check.event-stream", f"restore.event-stream.{lost}"]


def test_a_time_range_restores_only_the_records_timestamped_in_it(
    project_with_kafka: Path,
) -> None:
    project = project_with_kafka
    topics, bootstrap, ctx = seeded(project)
    stream_backup(ctx)
    original = read_topic(bootstrap, topics[1])
    stamps = sorted(r.timestamp for rs in original.values() for r in rs)
    since, until = stamps[10], stamps[20]  # 10 records: [since, until)
    request = RestoreKafkaRequest(
        topics=[topics[1]],
        rename={topics[1]: f"{topics[1]}-window"},
        since=datetime.fromtimestamp(since / 1000, UTC).isoformat(),
        until=datetime.fromtimestamp(until / 1000, UTC).isoformat(),
    )
    report, out = run(ctx, project, build_plan(ctx, request, RestoreEnv(project))[0], yes=True)
    assert report.status is Status.SUCCEEDED, out
    restored = read_topic(bootstrap, f"{topics[1]}-window")
    assert sorted(r.timestamp for rs in restored.values() for r in rs) == stamps[10:20]


def test_restore_interrupted_half_way_then_resumed_without_duplicates(
    project_with_kafka: Path,
) -> None:
    project = project_with_kafka
    topics, bootstrap, ctx = seeded(project)
    stream_backup(ctx)
    target = f"{topics[2]}-resumed"
    script = f"""
import sys
from pathlib import Path
from drkit.context import OpsContext
from drkit.ops.restore_kafka import RestoreKafkaRequest, build_plan
from drkit.ops.run import RunOptions, run_plan
from drkit.ops.verbs import RestoreEnv
import drkit.ops.restore_kafka as ops
class Stop:
    def __init__(self, label, stream=None):
        pass
    def __call__(self, topic, partition, produced):
        if partition == 1 and produced == 4:  # Ctrl-C half way through the topic
            raise KeyboardInterrupt
    def done(self):
        pass
ops.RecordProgress = Stop
project = Path({str(project)!r})
ctx = OpsContext.load("local", project_dir=project)
request = RestoreKafkaRequest(topics=[{topics[2]!r}], rename={{{topics[2]!r}: {target!r}}})
plan, _ = build_plan(ctx, request, RestoreEnv(project))
report = run_plan(ctx, plan, RunOptions(yes=True), project, sys.stdout, "r")
print("RUN_ID", report.run_id)
sys.exit(report.exit_code)
"""
    first = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, check=False
    )
    assert first.returncode == 130, first.stdout + first.stderr
    partial = read_topic(bootstrap, target)
    assert 0 < sum(len(v) for v in partial.values()) < 30  # half way

    request = RestoreKafkaRequest(topics=[topics[2]], rename={topics[2]: target})
    resume = first.stdout.split("RUN_ID ")[1].split()[0]
    report, out = run(
        ctx, project, build_plan(ctx, request, RestoreEnv(project))[0], yes=True, resume=resume
    )
    assert report.status is Status.SUCCEEDED, out
    outcomes = {s.id: s.outcome for s in report.steps}
    assert outcomes["check.event-stream"] == "resumed"
    assert as_tuples(read_topic(bootstrap, target)) == restored_view(
        topics[2], read_topic(bootstrap, topics[2])
    )  # every record exactly once


def test_lineage_header_adds_the_source_of_each_record_when_asked(
    project_with_kafka: Path,
) -> None:
    project = project_with_kafka
    topics, bootstrap, ctx = seeded(project)
    stream_backup(ctx)
    target = f"{topics[0]}-lineage"
    request = RestoreKafkaRequest(
        topics=[topics[0]], rename={topics[0]: target}, lineage_header=True
    )
    for _ in range(2):  # the re-run resumes from the headers: nothing added
        report, out = run(ctx, project, build_plan(ctx, request, RestoreEnv(project))[0], yes=True)
        assert report.status is Status.SUCCEEDED, out
    assert as_tuples(read_topic(bootstrap, target)) == restored_view(
        topics[0], read_topic(bootstrap, topics[0]), lineage=True
    )
