"""Faults mid-restore, through the loopback fault proxy: the vault (S3) or the mirror (GCS)
resets or stalls while a restore downloads the backup.

Each failed restore must end within its bound with exit 1 and the store named, leave the target
as it was (a PostgreSQL target without a table: ``pg_restore``'s single transaction rolled back;
a Redis server still serving its own data, nothing swapped in), and ``--resume`` must finish it
once the path is healed. A Kafka restore writes as it downloads: what it left is a prefix of
each partition, and the resumed run completes it with every record once.

One project serves the module, its vault and mirror endpoints routed through a proxy each, which
passes everything until a test arms it. The bounds are set small by environment.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis
from confluent_kafka import Producer, TopicPartition

from drkit.backup.kafka import read_range, reader, to_record
from drkit.backup.manifest import Manifest
from drkit.bounds import IoBounds
from drkit.endpoints import postgres_source
from drkit.local.faultproxy import LOOPBACK, Direction, Fault, FaultProxy
from drkit.local.gcs import LocalGcs
from drkit.local.postgres import LocalPostgres
from drkit.local.redis import LocalRedis
from drkit.local.s3 import LocalAws
from drkit.ops.restore_kafka import RestoreKafkaRequest
from drkit.ops.restore_kafka import build_plan as kafka_plan
from drkit.ops.restore_postgres import RestorePostgresRequest
from drkit.ops.restore_postgres import build_plan as postgres_plan
from drkit.ops.restore_redis import MARKER_SUFFIX, RestoreRedisRequest
from drkit.ops.restore_redis import build_plan as redis_plan
from drkit.ops.verbs import RestoreEnv
from drkit.restore.postgres import count_rows, user_tables
from stackmodels import StackOutputs
from tests.integration.conftest import SessionServers, provision_project
from tests.integration.ops_helpers import (
    CACHE,
    DATABASE,
    PARTITIONS,
    attach_cache,
    cache_backup,
    cache_snapshot,
    context,
    create_topics,
    database_backup,
    fill_cache,
    run,
    stream_backup,
    unique_topics,
)

pytestmark = [pytest.mark.integration, pytest.mark.reliability, pytest.mark.timeout(180)]

ENV = {"DRKIT_IO_TIMEOUT": "1", "DRKIT_IO_ATTEMPTS": "2", "DRKIT_STALL_TIMEOUT": "3"}
BOUNDS = IoBounds.from_env(ENV)
BOUND = 3 * BOUNDS.request + BOUNDS.grace + 30.0
"""The failed download, the lease release and the journal copy (both best effort, against the
store that failed), plus 30 s."""
MiB = 1024 * 1024
FAULT_AT = MiB
"""Bytes down from the store after the fault is armed: a lease read and a manifest are a few KiB,
the backups below are several MiB: the fault strikes mid-download."""


@pytest.fixture(autouse=True)
def small_bounds(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)


@dataclass
class World:
    project: Path
    s3_proxy: FaultProxy
    gcs_proxy: FaultProxy
    cache: LocalRedis
    backed_up: dict[bytes, Any]
    database_manifest: Manifest

    def proxy(self, source: str) -> FaultProxy:
        return self.s3_proxy if source == "vault" else self.gcs_proxy


def route_through(project: Path, s3: FaultProxy, gcs: FaultProxy) -> None:
    path = project / ".drkit" / "local" / "outputs.json"
    outputs = StackOutputs.from_file(path, "local")
    outputs.model_copy(
        update={
            "aws_endpoint_url": f"http://{LOOPBACK}:{s3.port}",
            "gcs_endpoint_url": f"http://{LOOPBACK}:{gcs.port}",
        }
    ).write(path)


@pytest.fixture(scope="module")
def world(
    tmp_path_factory: pytest.TempPathFactory,
    postgres_server: LocalPostgres,
    redis_server: LocalRedis,
    aws_emulator: LocalAws,
    gcs_emulator: LocalGcs,
) -> Iterator[World]:
    servers = SessionServers(postgres_server, redis_server, aws_emulator, gcs_emulator)
    project = provision_project(tmp_path_factory.mktemp("restore-faults"), servers)
    cache = LocalRedis(tmp_path_factory.mktemp("cache"))
    with (
        FaultProxy((LOOPBACK, aws_emulator.port)) as s3_proxy,
        FaultProxy((LOOPBACK, gcs_emulator.port)) as gcs_proxy,
    ):
        route_through(project, s3_proxy, gcs_proxy)
        ctx = context(project)
        with psycopg.connect(postgres_source(ctx, DATABASE).conninfo()) as connection:
            # About 10 MiB of poorly compressible rows (5.5 MiB stored).
            connection.execute(
                "CREATE TABLE blobs AS SELECT g AS id, md5(random()::text) || md5(random()::text)"
                " || md5(random()::text) || md5(random()::text) AS body"
                " FROM generate_series(1, 80000) g"
            )
        database_manifest = database_backup(ctx)
        cache.start()
        try:
            attach_cache(project, cache)
            with cache.client() as client:
                fill_cache(client, "backed-up")
                pipeline = client.pipeline(transaction=False)
                for index in range(2000):  # about 4 MiB of random values
                    pipeline.set(f"blob:{index}", os.urandom(2048))
                pipeline.execute()
                backed_up = cache_snapshot(client)
            cache_backup(context(project))
            yield World(project, s3_proxy, gcs_proxy, cache, backed_up, database_manifest)
        finally:
            with contextlib.suppress(redis.RedisError), cache.client() as client:
                client.shutdown(nosave=True)  # whichever process started it last
            cache.stop()


def fail_within_bound(
    world: World, source: str, fault: Fault, plan: Any, after: int = FAULT_AT
) -> tuple[str, str]:
    """Run ``plan`` with ``fault`` armed on ``source``'s path ``after`` bytes down; returns (run
    id, output)."""
    proxy = world.proxy(source)
    ctx = context(world.project)
    proxy.arm(fault, after=after, direction=Direction.DOWN)
    started = time.monotonic()
    report, out = run(ctx, world.project, plan, yes=True)
    elapsed = time.monotonic() - started
    print(f"restore failed in {elapsed:.1f}s (bound {BOUND:.0f}s):\n{out}")
    assert proxy.tripped.is_set()
    proxy.heal()
    assert report.exit_code == 1
    assert elapsed < BOUND, f"the failed restore took {elapsed:.1f}s, over its bound {BOUND:.0f}s"
    failed = [line for line in out.splitlines() if "FAILED" in line]
    assert failed, out
    bucket = ctx.outputs.backup_vault.name if source == "vault" else ctx.outputs.gcs_mirror_bucket
    scheme = "s3" if source == "vault" else "gs"
    # The object is named on the FAILED line, or (Kafka: a line per partition) just below it.
    assert f"{scheme}://{bucket}" in out[out.index(failed[0]) :].split("\nfailed: ")[0], out
    assert "Traceback" not in out
    return report.run_id, out


def pg_restore_sessions(server: LocalPostgres, database: str) -> int:
    deadline = time.monotonic() + 10.0
    while True:
        with server.connect() as connection:
            row = connection.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = %s"
                " AND application_name = 'pg_restore'",
                (database,),
            ).fetchone()
        count = int(row[0]) if row else 0
        if not count or time.monotonic() > deadline:
            return count
        time.sleep(0.2)


@pytest.mark.parametrize("fault", [Fault.RESET, Fault.STALL])
@pytest.mark.parametrize("source", ["vault", "mirror"])
def test_postgres_restore_download_fault_fails_cleanly_and_resumes(
    world: World, postgres_server: LocalPostgres, source: str, fault: Fault
) -> None:
    database = f"faulted_{source}_{fault.value}"
    ctx = context(world.project)
    request = RestorePostgresRequest(target_database=database, source=source)
    plan, _ = postgres_plan(ctx, request, RestoreEnv(world.project))

    run_id, _ = fail_within_bound(world, source, fault, plan)

    target = postgres_source(ctx, DATABASE, database)
    assert pg_restore_sessions(postgres_server, database) == 0
    with psycopg.connect(target.conninfo()) as connection:
        assert user_tables(connection) == []  # its single transaction rolled back
    resumed, _ = postgres_plan(ctx, request, RestoreEnv(world.project, resume=run_id))
    report, out = run(ctx, world.project, resumed, yes=True, resume=run_id)
    assert report.exit_code == 0, out
    expected = world.database_manifest.counts
    assert count_rows(target, list(expected)) == expected


@pytest.mark.parametrize("fault", [Fault.RESET, Fault.STALL])
@pytest.mark.parametrize("source", ["vault", "mirror"])
def test_redis_restore_download_fault_leaves_the_server_serving_and_resumes(
    world: World, source: str, fault: Fault
) -> None:
    cache = world.cache
    with cache.client() as client:
        client.flushall()
        fill_cache(client, "current", keys=7)
        client.save()
        before = cache_snapshot(client)
        server_run = client.info("server")["run_id"]
    # The previous case's marker says the server holds its restore's data: no longer true.
    cache.rdb_path.with_name(cache.rdb_path.name + MARKER_SUFFIX).unlink(missing_ok=True)
    ctx = context(world.project)
    request = RestoreRedisRequest(store=CACHE, force=True, source=source)
    plan, _ = redis_plan(ctx, request, RestoreEnv(world.project))

    run_id, _ = fail_within_bound(world, source, fault, plan)

    with cache.client() as client:  # never stopped, nothing swapped in
        assert client.info("server")["run_id"] == server_run
        assert cache_snapshot(client) == before
    assert sorted(p.name for p in cache.data_dir.iterdir() if p.name.endswith(".partial")) == []
    resumed, _ = redis_plan(ctx, request, RestoreEnv(world.project, resume=run_id))
    report, out = run(ctx, world.project, resumed, yes=True, resume=run_id)
    assert report.exit_code == 0, out
    with cache.client() as client:
        assert cache_snapshot(client) == world.backed_up


def kafka_partitions(bootstrap: str, topic: str) -> dict[int, list[tuple[Any, ...]]]:
    consumer = reader(bootstrap)
    try:
        found = {}
        for partition in range(PARTITIONS):
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), 10)
            found[partition] = [
                (r.key, r.value, r.headers, r.timestamp)
                for r in map(to_record, read_range(consumer, topic, partition, low, high, 20))
            ]
        return found
    finally:
        consumer.close()


@pytest.mark.parametrize("source", ["vault", "mirror"])
def test_kafka_restore_download_reset_leaves_a_prefix_and_resumes_without_duplicates(
    project_with_kafka: Path, aws_emulator: LocalAws, gcs_emulator: LocalGcs, source: str
) -> None:
    project = project_with_kafka
    topics = unique_topics(project)
    topic = topics[0]
    endpoint = context(project).outputs.stores["event-stream"]
    bootstrap = f"{endpoint.host}:{endpoint.port}"
    create_topics(bootstrap, topics)  # the store's others stay empty
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    for index in range(1600):  # about 3 MiB of random values: several times FAULT_AT
        producer.produce(topic, key=f"k{index}".encode(), value=os.urandom(2048))
    assert producer.flush(30) == 0
    with (
        FaultProxy((LOOPBACK, aws_emulator.port)) as s3_proxy,
        FaultProxy((LOOPBACK, gcs_emulator.port)) as gcs_proxy,
    ):
        route_through(project, s3_proxy, gcs_proxy)
        ctx = context(project)
        manifest = stream_backup(ctx)
        world = World(project, s3_proxy, gcs_proxy, LocalRedis(project), {}, None)  # type: ignore[arg-type]
        target = f"{topic}-restored"
        request = RestoreKafkaRequest(topics=[topic], rename={topic: target}, source=source)
        plan, _ = kafka_plan(ctx, request, RestoreEnv(project))

        # Past the check, which reads the chain once, and most of the restore's own read: the
        # reset strikes mid-write, with records already produced.
        after = 2 * manifest.size - manifest.size // 8
        run_id, out = fail_within_bound(world, source, Fault.RESET, plan, after)
        assert "FAILED             restore.event-stream." in out

        original = kafka_partitions(bootstrap, topic)
        left = kafka_partitions(bootstrap, target) if target in listed(bootstrap) else {}
        for partition, records in left.items():
            assert records == original[partition][: len(records)]  # a prefix, nothing else
        assert 0 < sum(map(len, left.values())) < sum(map(len, original.values()))
        resumed, _ = kafka_plan(ctx, request, RestoreEnv(project, resume=run_id))
        report, out = run(ctx, project, resumed, yes=True, resume=run_id)
        assert report.exit_code == 0, out
        assert kafka_partitions(bootstrap, target) == original


def listed(bootstrap: str) -> set[str]:
    from confluent_kafka.admin import AdminClient

    return set(AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=10).topics)
