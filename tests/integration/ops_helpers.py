"""Helpers shared by the tests of the restore, verify and backups tasks: a self-hosted cache the
tasks may stop and restart, Kafka topics unique to a test, backups of each kind, plan runs."""

from __future__ import annotations

import contextlib
import io
import re
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from confluent_kafka import Producer
from confluent_kafka.admin import (  # type: ignore[attr-defined]  # NewTopic: not in its stubs
    AdminClient,
    NewTopic,
)

from drkit.backup.manifest import Manifest
from drkit.backups import backup_store
from drkit.context import Credentials, OpsContext, StoreCredentials
from drkit.endpoints import postgres_source
from drkit.kafka_frames import TIMESTAMP_CREATE_TIME, Record
from drkit.local.redis import LocalRedis
from drkit.ops.executor import RunReport
from drkit.ops.plan import Plan
from drkit.ops.redis_target import write_local_control
from drkit.ops.run import RunOptions, run_plan
from drkit.seed.postgres import TradingDataSize, seed_trading_database
from stackmodels import StackOutputs
from stackmodels.outputs import StoreEndpoint

ROOT = Path(__file__).resolve().parents[2]
CACHE, STREAM, DATABASE = "session-cache", "event-stream", "trading-db"
PARTITIONS = 3


def context(project: Path) -> OpsContext:
    return OpsContext.load("local", project_dir=project)


def run(ctx: OpsContext, project: Path, plan: Plan, **options: Any) -> tuple[RunReport, str]:
    out = io.StringIO()
    report = run_plan(ctx, plan, RunOptions(**options), project, out, "test-run")
    return report, out.getvalue()


# --- a self-hosted cache -----------------------------------------------------------------------


@pytest.fixture
def cache_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRedis]:
    """A Redis of its own per test: a restore stops it and may start it again as a child of the
    task (another process), so the teardown stops whatever answers on its port."""
    server = LocalRedis(tmp_path_factory.mktemp("cache"))
    server.start()
    yield server
    with contextlib.suppress(redis.RedisError), server.client() as client:
        client.shutdown(nosave=True)
    server.stop()


def attach_cache(project: Path, server: LocalRedis) -> None:
    """Make ``server`` the project's ``session-cache``: outputs, credentials, control entry."""
    state = project / ".drkit" / "local"
    outputs = StackOutputs.from_file(state / "outputs.json", "local")
    stores = dict(outputs.stores)
    stores[CACHE] = StoreEndpoint(
        kind="redis", host=server.host, port=server.port, data_path=str(server.rdb_path)
    )
    outputs.model_copy(update={"stores": stores}).write(state / "outputs.json")
    credentials = Credentials.from_file(state / "credentials.json")
    values = dict(credentials.stores)
    values[CACHE] = StoreCredentials("default", server.password)
    Credentials(values).write(state / "credentials.json")
    write_local_control(project, CACHE, server)


def fill_cache(client: redis.Redis[bytes], tag: str, keys: int = 40) -> None:
    for i in range(keys):
        client.set(f"quote:{i}", f"{tag}-{i}")
    client.hset("session:alice", mapping={"user": tag, "role": "trader"})
    client.rpush("fills", *[f"{tag}-fill-{i}" for i in range(10)])
    client.set("lock", tag, ex=3_600)


def cache_snapshot(client: redis.Redis[bytes]) -> dict[bytes, Any]:
    """Every key with its value (strings, hashes, lists), for exact comparison."""
    found: dict[bytes, Any] = {}
    for key in client.scan_iter(count=1000):
        kind = client.type(key)
        if kind == b"string":
            found[key] = client.get(key)
        elif kind == b"hash":
            found[key] = client.hgetall(key)
        elif kind == b"list":
            found[key] = client.lrange(key, 0, -1)
        else:
            found[key] = kind
    return found


def run_id(server: LocalRedis) -> str:
    with server.client() as client:
        return str(client.info("server")["run_id"])


def cache_backup(ctx: OpsContext) -> Manifest:
    """A backup of the cache as its CronJob takes it (BGSAVE, dump.rdb from ``data_path``)."""
    return backup_store(ctx, CACHE, [])


# --- PostgreSQL --------------------------------------------------------------------------------


def database_backup(ctx: OpsContext, seed: bool = True) -> Manifest:
    if seed:
        seed_trading_database(
            postgres_source(ctx, DATABASE).conninfo(), TradingDataSize.for_megabytes(1)
        )
    return backup_store(ctx, DATABASE, [])


# --- Kafka -------------------------------------------------------------------------------------


def unique_topics(project: Path) -> list[str]:
    """Rename the event-stream's topics in the project's stack file: each test has its own on
    the session's broker."""
    path = project / "Pulumi.prod.yaml"
    text = path.read_text()
    match = re.search(r"topics: \[([^\]]+)\]", text)
    assert match is not None
    suffix = secrets.token_hex(3)
    topics = [f"{name.strip()}-{suffix}" for name in match.group(1).split(",")]
    path.write_text(text.replace(match.group(0), f"topics: [{', '.join(topics)}]"))
    return topics


def create_topics(bootstrap: str, topics: list[str]) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics(
        [NewTopic(t, num_partitions=PARTITIONS, replication_factor=1) for t in topics]
    )
    for future in futures.values():
        future.result(timeout=30)


def delete_topics(bootstrap: str, topics: list[str]) -> None:
    """Delete and wait until the broker no longer lists them (deletion is asynchronous)."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.delete_topics(topics).values():
        future.result(timeout=30)
    deadline = time.monotonic() + 30
    while set(topics) & set(admin.list_topics(timeout=10).topics):
        assert time.monotonic() < deadline, f"topics {topics} still listed after deletion"
        time.sleep(0.2)


def event(index: int, topic: str) -> Record:
    """Keys, headers and timestamps that a console consumer would lose."""
    timestamp = (int(time.time() * 1000) // 1000) * 1000 - 3_600_000 + index * 1000
    headers: tuple[tuple[str, bytes | None], ...] = (
        ("strategy", b"mean-revert"),
        ("seq", str(index).encode()),
    )
    key = None if index % 5 == 0 else f"{topic}-{index % 7}".encode()
    value = None if index % 9 == 4 else f'{{"n": {index}}}'.encode()
    return Record(index % PARTITIONS, -1, timestamp, TIMESTAMP_CREATE_TIME, key, value, headers)


def produce(bootstrap: str, topic: str, first: int, count: int) -> list[Record]:
    records = [event(i, topic) for i in range(first, first + count)]
    produce_records(bootstrap, topic, records)
    return records


def produce_records(bootstrap: str, topic: str, records: list[Record]) -> None:
    """Each record as it is (partition, key, value, timestamp, headers), acknowledged."""
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    for record in records:
        producer.produce(
            topic,
            key=record.key,
            value=record.value,
            partition=record.partition,
            timestamp=record.timestamp,
            headers=list(record.headers),
        )
    assert producer.flush(30) == 0


def stream_backup(ctx: OpsContext) -> Manifest:
    return backup_store(ctx, STREAM, [])
