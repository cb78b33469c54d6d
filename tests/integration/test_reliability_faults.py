"""Faults mid-backup, through the loopback fault proxy: a real PostgreSQL (Redis, Kafka) backup
whose vault, mirror or source resets, stalls or disappears part way.

Each failed run must end within its bound and leave nothing behind: no child process, no
``idle in transaction`` backend, no open multipart upload, no manifest; and the next run through
a healthy path commits. The bounds are set small by environment, as an operator would.
"""

from __future__ import annotations

import gc
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic
from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage  # type: ignore[import-untyped]

from drkit.backup.engine import BackupFailed, Destinations, Handler, run_backup
from drkit.backup.kafka import KafkaHandler
from drkit.backup.manifest import MANIFEST_NAME
from drkit.backup.postgres import PostgresHandler, PostgresSource
from drkit.backup.redis import RedisHandler, RedisSource
from drkit.bounds import IoBounds
from drkit.context import Credentials
from drkit.local.faultproxy import LOOPBACK, Direction, Fault, FaultProxy
from drkit.local.gcs import LocalGcs
from drkit.local.kafka import LocalKafka
from drkit.local.postgres import LocalPostgres
from drkit.local.process import free_port
from drkit.local.redis import LocalRedis
from drkit.local.s3 import DEFAULT_REGION, DUMMY_ACCESS_KEY, DUMMY_SECRET_KEY, LocalAws
from drkit.seed.postgres import TradingDataSize, seed_trading_database
from drkit.storage.gcs import GcsStore
from drkit.storage.objectstore import Encryption
from drkit.storage.s3 import S3Store
from stackmodels import StackOutputs

pytestmark = [pytest.mark.integration, pytest.mark.reliability, pytest.mark.timeout(120)]

ENV = {"DRKIT_IO_TIMEOUT": "1", "DRKIT_IO_ATTEMPTS": "2", "DRKIT_STALL_TIMEOUT": "3"}
BOUNDS = IoBounds.from_env(ENV)
BOUND = BOUNDS.request + BOUNDS.stall + BOUNDS.grace + 30.0
"""The issue's bound: the client timeouts (a stalled source's included) plus 30 s."""
DATABASE = "reliability"
STORE, DATA_CLASS = "trading-db", "user-data"
PREFIX = f"{DATA_CLASS}/{STORE}/"
MiB = 1024 * 1024
LEASE_TTL = timedelta(seconds=3)
"""A run that cannot release its lease (its vault is what failed) leaves it to expire."""
SETTLE = 10.0
"""How long the server may take to notice a closed connection and end its backend."""


@pytest.fixture(autouse=True)
def small_bounds(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)


@pytest.fixture(scope="module")
def database(postgres_server: LocalPostgres) -> str:
    """About 10 MiB of poorly compressible rows (5.5 MiB stored): two vault parts, several
    mirror chunks."""
    postgres_server.create_database(DATABASE)
    with postgres_server.connect(DATABASE) as connection:
        connection.execute(
            "CREATE TABLE blobs AS SELECT g AS id, md5(random()::text) || md5(random()::text)"
            " || md5(random()::text) || md5(random()::text) AS body"
            " FROM generate_series(1, 80000) g"
        )
    return DATABASE


@dataclass
class World:
    """Fresh buckets, reachable directly and through a fault proxy each."""

    aws: LocalAws
    gcs: LocalGcs
    bucket: str
    key: str
    s3_proxy: FaultProxy
    gcs_proxy: FaultProxy

    def destinations(
        self, *, s3_via_proxy: bool = False, gcs_via_proxy: bool = False
    ) -> Destinations:
        s3_port = self.s3_proxy.port if s3_via_proxy else self.aws.port
        gcs_port = self.gcs_proxy.port if gcs_via_proxy else self.gcs.port
        s3: Any = boto3.session.Session(
            aws_access_key_id=DUMMY_ACCESS_KEY,
            aws_secret_access_key=DUMMY_SECRET_KEY,
            region_name=DEFAULT_REGION,
        ).client(
            "s3",
            endpoint_url=f"http://{LOOPBACK}:{s3_port}",
            config=IoBounds.from_env().botocore_config(),
        )
        gcs = storage.Client(
            project=self.gcs.project,
            credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
            client_options=ClientOptions(api_endpoint=f"http://{LOOPBACK}:{gcs_port}"),
        )
        return Destinations(
            vault=S3Store(s3, self.bucket, part_size=5 * MiB),
            mirror=GcsStore(gcs, self.bucket, part_size=MiB),
            encryption=Encryption(kms_key_id=self.key),
        )


@pytest.fixture
def world(aws_emulator: LocalAws, gcs_emulator: LocalGcs) -> Iterator[World]:
    bucket = f"faults-{secrets.token_hex(4)}"
    aws_emulator.s3().create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
    kms: Any = aws_emulator.client("kms")
    key = kms.create_key(Description="vault key")["KeyMetadata"]["Arn"]
    gcs_emulator.create_locked_bucket(bucket, timedelta(days=7))
    with (
        FaultProxy((LOOPBACK, aws_emulator.port)) as s3_proxy,
        FaultProxy((LOOPBACK, gcs_emulator.port)) as gcs_proxy,
    ):
        yield World(aws_emulator, gcs_emulator, bucket, str(key), s3_proxy, gcs_proxy)


@dataclass
class ProxiedKafka:
    """A broker whose advertised listener is a fault proxy's port: every client connection,
    the bootstrap's and the reconnections to the advertised address alike, passes the proxy."""

    broker: LocalKafka
    proxy: FaultProxy
    topic: str

    @property
    def bootstrap(self) -> str:
        return f"{LOOPBACK}:{self.proxy.port}"


@pytest.fixture(scope="module")
def proxied_kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProxiedKafka]:
    """Its own broker (the session's advertises its own port), holding about 6 MiB of random
    values in one partition: several fetches of 1 MiB (``max.partition.fetch.bytes``)."""
    port = free_port()
    with LocalKafka(tmp_path_factory.mktemp("fault-kafka"), advertised_port=port) as broker:
        upstream = broker.bootstrap.rsplit(":", 1)
        with FaultProxy((upstream[0], int(upstream[1])), port=port) as proxy:
            topic, bootstrap = "quotes", f"{LOOPBACK}:{port}"
            admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 3})
            admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(timeout=30)
            failed: list[object] = []
            producer = Producer({"bootstrap.servers": bootstrap, "log_level": 3})
            for index in range(3000):
                producer.produce(
                    topic,
                    key=f"quote:{index}".encode(),
                    value=os.urandom(2048),
                    on_delivery=lambda error, _: failed.append(error) if error else None,
                )
                producer.poll(0)
            assert producer.flush(30) == 0 and failed == []
            del producer, admin  # no client of this fixture's stays to count or to log
            yield ProxiedKafka(broker, proxy, topic)


@pytest.fixture(scope="module")
def redis_with_data(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRedis]:
    """Its own Redis (others share the session's), holding about 6 MiB of random values.

    A diskless transfer starts after ``repl-diskless-sync-delay`` (5 s by default): longer
    than these tests' stall timeout, so it is set to 0 (production's stall timeout is 300 s)."""
    with LocalRedis(tmp_path_factory.mktemp("fault-redis")) as server:
        with server.client() as client:
            client.config_set("repl-diskless-sync-delay", 0)
            pipeline = client.pipeline(transaction=False)
            for index in range(3000):
                pipeline.set(f"quote:{index}", os.urandom(2048))
            pipeline.execute()
        yield server


# --- what a failed run must leave: nothing -------------------------------------------------


def child_processes(names: tuple[str, ...] = ("pg_dump", "redis-cli")) -> list[str]:
    """This process's children named ``names`` (zombies included), from /proc."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        command = text[text.index("(") + 1 : text.rindex(")")]
        state, parent = text[text.rindex(")") + 2 :].split()[:2]
        if int(parent) == os.getpid() and command in names:
            found.append(f"{command} (pid {stat.parent.name}, state {state})")
    return found


def lingering_backends(server: LocalPostgres, database: str) -> list[tuple[Any, ...]]:
    """Backends of ``database`` idle in a transaction, or pg_dump's, after settling."""
    deadline = time.monotonic() + SETTLE
    while True:
        with server.connect() as connection:
            rows = connection.execute(
                "SELECT pid, state, application_name FROM pg_stat_activity"
                " WHERE datname = %s AND pid <> pg_backend_pid()"
                " AND (state LIKE 'idle in transaction%%' OR application_name = 'pg_dump')",
                (database,),
            ).fetchall()
        if not rows or time.monotonic() > deadline:
            return rows
        time.sleep(0.2)


def librdkafka_clients() -> int:
    """Live librdkafka client instances in this process: each runs one ``rdk:main`` thread,
    which ends when the instance is destroyed (a consumer's ``close()``)."""
    gc.collect()
    names = (task.read_text().strip() for task in Path("/proc/self/task").glob("*/comm"))
    return sum(1 for name in names if name == "rdk:main")


def manifests(destinations: Destinations) -> list[str]:
    return [
        f"{store.name}/{item.key}"
        for store in destinations.stores
        for item in store.list_objects(PREFIX)
        if item.key.endswith(MANIFEST_NAME)
    ]


def fail_within_bound(handler: Handler, destinations: Destinations) -> tuple[BackupFailed, float]:
    started = time.monotonic()
    with pytest.raises(BackupFailed) as failure:
        run_backup(STORE, DATA_CLASS, handler, destinations, lease_ttl=LEASE_TTL)
    elapsed = time.monotonic() - started
    print(f"failed in {elapsed:.1f}s (bound {BOUND:.0f}s): {failure.value}")
    assert elapsed < BOUND, f"the failed run took {elapsed:.1f}s, over its bound {BOUND:.0f}s"
    assert "\n" not in str(failure.value)  # the cause, on one line
    return failure.value, elapsed


def assert_next_run_commits(handler: Handler, destinations: Destinations) -> None:
    manifest = run_backup(
        STORE, DATA_CLASS, handler, destinations, wait=LEASE_TTL + timedelta(seconds=10)
    )
    assert manifest.objects and manifest.counts
    assert len(manifests(destinations)) == len(destinations.stores)
    for store in destinations.stores:
        assert store.pending_uploads(PREFIX) == []


def postgres_source(server: LocalPostgres, port: int | None = None) -> PostgresSource:
    return PostgresSource(server.host, port or server.port, DATABASE, server.user, server.password)


# --- the tests -----------------------------------------------------------------------------


@pytest.mark.parametrize("fault", [Fault.RESET, Fault.STALL])
@pytest.mark.parametrize("destination", ["vault", "mirror"])
def test_destination_failing_mid_upload_ends_the_run_and_releases_the_source(
    destination: str,
    fault: Fault,
    world: World,
    postgres_server: LocalPostgres,
    database: str,
) -> None:
    destination_fails_mid_upload(destination, fault, world, postgres_server, database)


@pytest.mark.parametrize("destination", ["vault", "mirror"])
def test_destination_disappearing_mid_upload_ends_the_run_and_releases_the_source(
    destination: str, world: World, postgres_server: LocalPostgres, database: str
) -> None:
    """The vault's or the mirror's endpoint goes away (connections reset, new ones refused)
    mid-upload."""
    destination_fails_mid_upload(destination, Fault.DISAPPEAR, world, postgres_server, database)


def destination_fails_mid_upload(
    destination: str,
    fault: Fault,
    world: World,
    postgres_server: LocalPostgres,
    database: str,
) -> None:
    via_vault = destination == "vault"
    proxy = world.s3_proxy if via_vault else world.gcs_proxy
    # Inside the first vault part (5 MiB), past the first mirror chunk (1 MiB): mid-upload.
    proxy.arm(fault, after=3 * MiB, direction=Direction.UP)
    faulty = world.destinations(s3_via_proxy=via_vault, gcs_via_proxy=not via_vault)
    direct = world.destinations()
    handler = PostgresHandler(postgres_source(postgres_server))

    error, _ = fail_within_bound(handler, faulty)

    assert proxy.tripped.is_set()
    assert (world.bucket in str(error)) or ("s3://" in str(error)) or ("gs://" in str(error))
    assert child_processes() == []
    assert lingering_backends(postgres_server, database) == []
    if not via_vault:  # the vault answered: the run aborted its own upload there
        assert direct.vault.pending_uploads(PREFIX) == []
    # (The GCS emulator serves one request at a time: a stalled one blocks it until healed.)
    proxy.heal()
    assert manifests(direct) == []
    assert_next_run_commits(handler, faulty)  # through the same, healed, path


GRID_POINTS = (0.0, 0.2, 0.5, 0.8, 0.98)
"""Where the destination fails, as a share of the bytes a clean run sends it: its first request
(for the vault, the lease), inside the first part, mid-run, in the last part, and a few
kilobytes before its end (the last part's tail, before the commit)."""


@pytest.mark.parametrize("point", GRID_POINTS, ids=lambda point: f"at{round(point * 100)}pct")
@pytest.mark.parametrize("destination", ["vault", "mirror"])
def test_destination_reset_at_each_point_of_the_upload(
    destination: str,
    point: float,
    world: World,
    postgres_server: LocalPostgres,
    database: str,
) -> None:
    """The issue's grid, 5 failure points x both destinations: a clean run through the proxy
    gives the number of bytes the destination receives; the next run is reset at the chosen
    share of them. Each ends within its bound, releases the source, commits nothing new, and the
    run after it commits."""
    via_vault = destination == "vault"
    proxy = world.s3_proxy if via_vault else world.gcs_proxy
    faulty = world.destinations(s3_via_proxy=via_vault, gcs_via_proxy=not via_vault)
    direct = world.destinations()
    handler = PostgresHandler(postgres_source(postgres_server))

    proxy.arm(Fault.PASS)
    run_backup(STORE, DATA_CLASS, handler, faulty, lease_ttl=LEASE_TTL)
    clean = proxy.bytes_passed(Direction.UP)
    committed = manifests(direct)
    assert len(committed) == len(direct.stores)

    after = int(clean * point)
    proxy.arm(Fault.RESET, after=after, direction=Direction.UP)
    print(f"{destination}: reset after {after} of {clean} bytes")
    fail_within_bound(handler, faulty)

    assert proxy.tripped.is_set()
    assert child_processes() == []
    assert lingering_backends(postgres_server, database) == []
    proxy.heal()
    assert manifests(direct) == committed  # the failed run committed nowhere
    for store in direct.stores:
        if store is direct.vault and via_vault:
            continue  # the vault's own uploads: aborted by the run or left to its lifecycle rule
        assert store.pending_uploads(PREFIX) == []
    manifest = run_backup(
        STORE, DATA_CLASS, handler, faulty, wait=LEASE_TTL + timedelta(seconds=10)
    )
    assert manifest.objects and manifest.counts
    assert len(manifests(direct)) == 2 * len(direct.stores)
    for store in direct.stores:  # the failed run's upload, if one was left, is gone with this run
        assert store.pending_uploads(PREFIX) == []


def test_postgres_source_stall_ends_the_run_and_stops_pg_dump(
    world: World, postgres_server: LocalPostgres, database: str
) -> None:
    destinations = world.destinations()
    with FaultProxy((postgres_server.host, postgres_server.port)) as proxy:
        proxy.arm(Fault.STALL, after=3 * MiB, direction=Direction.DOWN)  # mid COPY
        handler = PostgresHandler(postgres_source(postgres_server, proxy.port))

        error, _ = fail_within_bound(handler, destinations)

        assert "stalled" in str(error) and "pg_dump" in str(error)
        assert child_processes() == []
        assert manifests(destinations) == []
        assert destinations.vault.pending_uploads(PREFIX) == []
        # The stalled path carries nothing, not even the close: the server learns of it when
        # the path goes away (here: healed, its stalled connections reset).
        proxy.heal()
        assert lingering_backends(postgres_server, database) == []
        assert_next_run_commits(handler, destinations)


@pytest.mark.parametrize("fault", [Fault.STALL, Fault.RESET])
def test_kafka_source_fault_ends_the_run_and_closes_the_consumer(
    world: World, proxied_kafka: ProxiedKafka, fault: Fault
) -> None:
    """The broker's path stalls, or resets every connection (old and new), mid-fetch: the
    client keeps reconnecting, the poll loop sees no progress below the recorded end offset
    for ``DRKIT_STALL_TIMEOUT`` and fails the run."""
    destinations = world.destinations()
    proxy = proxied_kafka.proxy
    handler = KafkaHandler(proxied_kafka.bootstrap, [proxied_kafka.topic])
    clients = librdkafka_clients()
    proxy.arm(fault, after=2 * MiB, direction=Direction.DOWN)  # mid partition read

    error, _ = fail_within_bound(handler, destinations)

    assert proxy.tripped.is_set()
    assert f"{proxied_kafka.topic}/0: nothing read for 3s" in str(error)
    assert librdkafka_clients() == clients  # the consumer closed, the admin client gone
    assert manifests(destinations) == []
    assert destinations.vault.pending_uploads(PREFIX) == []
    proxy.heal()
    assert_next_run_commits(handler, destinations)


def test_redis_source_reset_ends_the_run_and_stops_redis_cli(
    world: World, redis_with_data: LocalRedis
) -> None:
    destinations = world.destinations()
    server = redis_with_data
    with FaultProxy((server.host, server.port)) as proxy:
        proxy.arm(Fault.RESET, after=2 * MiB, direction=Direction.DOWN)  # mid RDB transfer
        handler = RedisHandler(RedisSource(LOOPBACK, proxy.port, server.password))

        error, _ = fail_within_bound(handler, destinations)

        assert "redis-cli --rdb" in str(error)
        assert child_processes() == []
        assert manifests(destinations) == []
        assert destinations.vault.pending_uploads(PREFIX) == []
        proxy.heal()
        assert_next_run_commits(handler, destinations)


def test_the_cronjob_process_exits_1_within_its_bound_when_the_mirror_hangs(
    project: Path, gcs_emulator: LocalGcs, postgres_server: LocalPostgres
) -> None:
    """The CronJob's own process (``python -m drkit backup``), not a call in this one: it must
    exit (no thread or child keeps it alive), with 1 and the cause on one line."""
    state = project / ".drkit" / "local"
    outputs = StackOutputs.from_file(state / "outputs.json", "local")
    endpoint = outputs.stores[STORE]
    credentials = Credentials.from_file(state / "credentials.json").stores[STORE]
    source = PostgresSource(
        endpoint.host, endpoint.port, endpoint.database or "", **vars(credentials)
    )
    seed_trading_database(source.conninfo(), TradingDataSize.for_megabytes(1))
    with FaultProxy((LOOPBACK, gcs_emulator.port)) as proxy:
        text = (state / "outputs.json").read_text()
        direct = f"http://{LOOPBACK}:{gcs_emulator.port}"
        assert direct in text
        (state / "outputs.json").write_text(text.replace(direct, f"http://{LOOPBACK}:{proxy.port}"))
        proxy.arm(Fault.STALL)  # the mirror hangs from its first byte on
        command = [sys.executable, "-m", "drkit", "backup", STORE, "--stack", "local"]
        started = time.monotonic()
        result = subprocess.run(
            [*command, "--project-dir", str(project)],
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, **ENV},
            timeout=BOUND + 30,  # process start and imports on top of the run's bound
        )
        elapsed = time.monotonic() - started
        proxy.heal()
    print(f"process exited {result.returncode} in {elapsed:.1f}s: {result.stdout.strip()}")
    assert result.returncode == 1, result.stderr
    failed = [line for line in result.stdout.splitlines() if line.startswith("FAILED:")]
    assert len(failed) == 1 and f"gs://{outputs.gcs_mirror_bucket}" in failed[0]
    assert "Traceback" not in result.stderr
    assert lingering_backends(postgres_server, endpoint.database or "") == []
