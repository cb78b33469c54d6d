"""Consumer-group offsets through ``invoke restore.kafka --groups``, on the real KRaft broker:
each backup keeps every group's committed offsets; the restore sets them on the restored topics,
translated to the restored offsets, so a consumer of the group resumes at exactly the next record;
an active group and a group on a topic left out are refused before anything changes."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient

from drkit.backup.kafka import KafkaPoint
from drkit.ops.executor import Status
from drkit.ops.restore_kafka import RestoreKafkaRequest, build_plan
from drkit.ops.selection import TargetNotEmptyError
from drkit.ops.verbs import RestoreEnv
from drkit.recovery import RecoveryError
from tests.integration.ops_helpers import PARTITIONS, ROOT, run, stream_backup
from tests.integration.test_restore_kafka_task import read_topic, seeded

pytestmark = pytest.mark.integration


def commit(bootstrap: str, group: str, offsets: dict[tuple[str, int], int]) -> None:
    """Commit as a consumer of ``group`` that has stopped (no member left behind)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        wanted = [TopicPartition(t, p, o) for (t, p), o in offsets.items()]
        consumer.commit(offsets=wanted, asynchronous=False)
    finally:
        consumer.close()


def resume(bootstrap: str, group: str, topic: str, partition: int) -> tuple[int, bytes | None]:
    """(offset, value) of the first record a consumer of ``group`` reads on ``topic/partition``,
    starting from the group's committed offset (never a reset: ``auto.offset.reset=error``)."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "auto.offset.reset": "error",
            "enable.auto.commit": False,
        }
    )
    try:
        consumer.assign([TopicPartition(topic, partition)])  # no offset: the committed one
        for _ in range(60):
            message = consumer.poll(0.5)
            if message is not None:
                assert message.error() is None, message.error()
                offset = message.offset()
                assert offset is not None
                return offset, message.value()
        raise AssertionError(f"{group} read nothing on {topic}/{partition}")
    finally:
        consumer.close()


def committed(bootstrap: str, group: str, topic: str) -> dict[int, int]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        found = consumer.committed([TopicPartition(topic, p) for p in range(PARTITIONS)], 30)
        return {tp.partition: tp.offset for tp in found}
    finally:
        consumer.close()


def test_groups_resume_at_the_next_record_on_renamed_topics(project_with_kafka: Path) -> None:
    project = project_with_kafka
    topics, bootstrap, ctx = seeded(project)  # 10 records per partition, offsets 0..9
    # Partition 0 of the first topic starts at offset 3 (records deleted before any backup):
    # the restored offsets are shifted from the source's, so the translation must count.
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.delete_records([TopicPartition(topics[0], 0, 3)]).values():
        future.result(timeout=30)
    app, other = f"trading-app-{uuid.uuid4().hex[:6]}", f"risk-{uuid.uuid4().hex[:6]}"
    commit(bootstrap, app, {(topics[0], 0): 7, (topics[0], 1): 4, (topics[0], 2): 10})
    commit(bootstrap, app, {(topics[1], 0): 1})
    commit(bootstrap, other, {(topics[1], 2): 5})
    source, second = read_topic(bootstrap, topics[0]), read_topic(bootstrap, topics[1])
    manifest = stream_backup(ctx)
    assert KafkaPoint.of(manifest).consumer_groups == "consumer-groups.json"
    assert "consumer-groups.json" in {item.name for item in manifest.objects}

    rename = {t: f"{t}-restored" for t in topics}
    request = RestoreKafkaRequest(rename=rename, groups=["all"], source="mirror")
    plan, prepared = build_plan(ctx, request, RestoreEnv(project))
    assert prepared.groups[app][topics[0]] == {"0": 7, "1": 4, "2": 10}
    report, out = run(ctx, project, plan, yes=True)
    assert report.status is Status.SUCCEEDED, out
    assert report.steps[-1].id == "groups.event-stream"

    target = rename[topics[0]]
    # Source offset 7 was the 5th record of partition 0 (3..9): target offset 4.
    assert committed(bootstrap, app, target) == {0: 4, 1: 4, 2: 10}
    by_offset = {r.offset: r for r in source[0]}
    assert resume(bootstrap, app, target, 0) == (4, by_offset[7].value)
    assert resume(bootstrap, app, target, 1) == (4, source[1][4].value)
    assert committed(bootstrap, other, rename[topics[1]])[2] == 5
    assert resume(bootstrap, other, rename[topics[1]], 2) == (5, second[2][5].value)
    # Partition 2 was consumed to its end: the group waits after the last restored record.
    assert committed(bootstrap, app, target)[2] == len(source[2])

    # With the lineage header the target offsets are read back from the restored records.
    lineage = f"{topics[1]}-lineage"
    request = RestoreKafkaRequest(
        topics=[topics[1]], rename={topics[1]: lineage}, groups=[other], lineage_header=True
    )
    report, out = run(ctx, project, build_plan(ctx, request, RestoreEnv(project))[0], yes=True)
    assert report.status is Status.SUCCEEDED, out
    assert committed(bootstrap, other, lineage)[2] == 5
    assert resume(bootstrap, other, lineage, 2) == (5, second[2][5].value)


def test_an_active_group_and_a_group_on_a_topic_left_out_are_refused(
    project_with_kafka: Path,
) -> None:
    project = project_with_kafka
    topics, bootstrap, ctx = seeded(project)
    group = f"trading-app-{uuid.uuid4().hex[:6]}"
    commit(bootstrap, group, {(topics[0], 0): 2, (topics[1], 0): 3})
    stream_backup(ctx)

    with pytest.raises(RecoveryError, match=rf"{group} on {topics[1]}"):
        build_plan(
            ctx, RestoreKafkaRequest(topics=[topics[0]], groups=[group]), RestoreEnv(project)
        )
    with pytest.raises(RecoveryError, match="not in backup"):
        build_plan(ctx, RestoreKafkaRequest(groups=["no-such-group"]), RestoreEnv(project))

    member = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest"}
    )
    try:
        member.subscribe([topics[2]])
        for _ in range(60):  # joined once it has an assignment
            member.poll(0.5)
            if member.assignment():
                break
        assert member.assignment()
        rename = {t: f"{t}-restored" for t in topics}
        with pytest.raises(TargetNotEmptyError, match=rf"{group} \(1 active members\)"):
            build_plan(ctx, RestoreKafkaRequest(rename=rename, groups=["all"]), RestoreEnv(project))
        (project / "tasks.py").write_text(
            (ROOT / "tasks.py")
            .read_text()
            .replace("ROOT = Path(__file__).resolve().parent", f"ROOT = Path({str(project)!r})")
        )
        command = [sys.executable, "-m", "invoke", "restore.kafka", "--groups", group, "--yes"]
        refused = subprocess.run(command, capture_output=True, text=True, cwd=project, check=False)
        assert refused.returncode == 2, refused.stdout + refused.stderr
        assert f"{group} (1 active members)" in refused.stderr
    finally:
        member.close()
    # Nothing was created by the refused runs.
    assert not {f"{t}-restored" for t in topics} & set(
        AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=30).topics
    )
