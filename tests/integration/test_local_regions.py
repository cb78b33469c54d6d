"""The two-region local stack (``invoke local.up``): live standbys, measured lag, clean shutdown.

One stack for the module (it takes a while to start: three JVMs), started as ``local.up`` starts
it, in a scratch project directory, with the stores the replication tests need. The destructive
tests (a killed prod PostgreSQL, then ``local.down``) run last, in file order.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import boto3
import psycopg
import pytest
import redis
from confluent_kafka import Consumer, Producer, TopicPartition

from drkit.catalog import entry_key
from drkit.local.daemon import (
    LocalStackError,
    down,
    read_state,
    status,
    up,
    write_private,
)
from drkit.local.kubernetes import LocalKubernetes
from drkit.local.lag import read_checkpoints
from drkit.local.names import resolve
from drkit.local.postgres import LocalPostgres
from drkit.local.process import ServerStartError, alive, port_open, process_start_time
from drkit.local.regions import APP_WORKLOADS, AURORA_OUTPUTS, apply_app_manifests
from drkit.local.standby_postgres import LocalStandbyPostgres
from drkit.recovery import BACKUP_ID
from stackmodels import StackOutputs
from stackmodels.config import Role
from tests.integration.kubernetes_fixture import kubernetes_api  # noqa: F401

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
STORES = ["trading-db", "session-cache", "event-stream"]
STACK = [*STORES, "market-ticks"]  # and market-ticks' InfluxDB (prod only: nothing replicates it)
CRITICAL_TOPIC = "order-events"
T = TypeVar("T")


def eventually(probe: Callable[[], T | None], what: str, timeout: float = 60.0) -> T:
    """Poll until ``probe`` returns something; replication is asynchronous by design."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value is not None:
            return value
        time.sleep(0.25)
    pytest.fail(f"not within {timeout:.0f}s: {what}")


def scratch_project(directory: Path) -> Path:
    for name in ("Pulumi.prod.yaml", "local-stack.yaml"):
        shutil.copy(ROOT / name, directory / name)
    return directory


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, Any]]]:
    project = scratch_project(tmp_path_factory.mktemp("local-stack"))
    out = io.StringIO()
    state = up(project, regions=2, only=STACK, out=out)
    print(out.getvalue())  # where everything is, and the measured start time, in -s output
    try:
        yield project, state
    finally:
        down(project, out=io.StringIO())


def url(state: dict[str, Any], region: str, store: str) -> str:
    return str(state["stores"][region][store]["url"])


def test_a_row_committed_in_prod_is_on_the_dr_standby_and_the_lag_is_measured(
    stack: tuple[Path, dict[str, Any]],
) -> None:
    project, state = stack
    marker = uuid.uuid4().hex
    with psycopg.connect(url(state, "prod", "trading-db"), autocommit=True) as prod:
        prod.execute("CREATE TABLE IF NOT EXISTS drill_marks (mark text PRIMARY KEY)")
        prod.execute("INSERT INTO drill_marks VALUES (%s)", (marker,))

    def on_standby() -> bool | None:
        with psycopg.connect(url(state, "dr", "trading-db")) as standby:
            table = standby.execute("SELECT to_regclass('drill_marks')").fetchone()
            if table is None or table[0] is None:
                return None
            found = standby.execute("SELECT 1 FROM drill_marks WHERE mark = %s", (marker,))
            return True if found.fetchone() else None

    eventually(on_standby, "the row replayed on the standby")
    with (
        psycopg.connect(url(state, "dr", "trading-db"), autocommit=True) as standby,
        pytest.raises(psycopg.errors.ReadOnlySqlTransaction),
    ):
        standby.execute("INSERT INTO drill_marks VALUES ('refused')")
    report = status(project)
    standby_entry = report["regions"]["dr"]["stores"]["trading-db"]
    assert standby_entry["role"] == "standby"
    assert report["regions"]["prod"]["stores"]["trading-db"]["role"] == "primary"
    assert isinstance(standby_entry["lag_seconds"], float)
    assert standby_entry["lag"]["detail"]["standby_replay_lsn"]
    assert standby_entry["lag"]["detail"]["primary_lsn"]


def test_a_redis_key_set_in_prod_is_on_the_replica(stack: tuple[Path, dict[str, Any]]) -> None:
    project, state = stack
    key, value = f"session:{uuid.uuid4().hex}", uuid.uuid4().bytes
    with redis.Redis.from_url(url(state, "prod", "session-cache")) as master:
        master.set(key, value)
    with redis.Redis.from_url(url(state, "dr", "session-cache")) as replica:
        assert eventually(lambda: replica.get(key), "the key on the replica") == value
        with pytest.raises(redis.ReadOnlyError):
            replica.set(key, b"refused")
    entry = status(project)["regions"]["dr"]["stores"]["session-cache"]
    assert entry["role"] == "standby"
    assert isinstance(entry["lag_seconds"], float)
    assert entry["lag"]["detail"]["master_offset"] <= entry["lag"]["detail"]["replica_offset"]


def _produce(bootstrap: str, tag: str, count: int) -> list[tuple[bytes, bytes, int]]:
    producer = Producer({"bootstrap.servers": bootstrap})
    sent = []
    # Timestamps of now: a record stamped days ago is past the topic's retention, and the broker's
    # first retention check (30 s after it starts) deletes it before a backup can read it.
    start = int(time.time() * 1000)
    for n in range(count):
        record = (f"order-{n}-{tag}".encode(), f"filled {n}".encode(), start + n)
        producer.produce(
            CRITICAL_TOPIC,
            key=record[0],
            value=record[1],
            headers=[("trace", tag.encode()), ("n", str(n).encode())],
            timestamp=record[2],
            partition=0,
        )
        sent.append(record)
    assert producer.flush(30) == 0
    return sent


def test_records_to_a_critical_topic_arrive_in_dr_with_key_value_headers_and_timestamp(
    stack: tuple[Path, dict[str, Any]],
) -> None:
    project, state = stack
    tag = uuid.uuid4().hex
    sent = _produce(url(state, "prod", "event-stream"), tag, 5)
    consumer = Consumer(
        {
            "bootstrap.servers": url(state, "dr", "event-stream"),
            "group.id": f"reader-{tag}",
            "enable.auto.commit": False,
        }
    )
    consumer.assign([TopicPartition(CRITICAL_TOPIC, 0, 0)])
    received: list[tuple[bytes, bytes, int, list[tuple[str, bytes]]]] = []

    def all_arrived() -> bool | None:
        message = consumer.poll(0.5)
        if message is not None and message.error() is None:
            headers = list(message.headers() or [])
            if ("trace", tag.encode()) in headers:
                received.append(
                    (message.key(), message.value(), message.timestamp()[1], headers)  # type: ignore[arg-type]
                )
        return True if len(received) == len(sent) else None

    try:
        eventually(all_arrived, "the mirrored records in dr")
    finally:
        consumer.close()
    assert [(k, v, t) for k, v, t, _ in received] == sent
    assert [h for *_, h in received] == [
        [("trace", tag.encode()), ("n", str(n).encode())] for n in range(5)
    ]
    entry = status(project)["regions"]["dr"]["stores"]["event-stream"]
    assert entry["role"] == "standby"
    assert isinstance(entry["lag_seconds"], float)
    assert entry["lag"]["detail"]["heartbeat_age_seconds"] is not None


def test_a_consumer_groups_committed_offset_is_translated_into_dr_by_the_checkpoints(
    stack: tuple[Path, dict[str, Any]],
) -> None:
    _, state = stack
    tag = uuid.uuid4().hex
    prod, dr = url(state, "prod", "event-stream"), url(state, "dr", "event-stream")
    _produce(prod, tag, 6)
    group = f"settlement-{tag[:8]}"
    consumer = Consumer({"bootstrap.servers": prod, "group.id": group, "enable.auto.commit": False})
    end = consumer.get_watermark_offsets(TopicPartition(CRITICAL_TOPIC, 0), timeout=10)[1]
    committed = end - 2  # the group has read all but the last two records
    consumer.commit(offsets=[TopicPartition(CRITICAL_TOPIC, 0, committed)], asynchronous=False)
    consumer.close()

    def checkpoint() -> Any:
        return read_checkpoints(dr).get((group, CRITICAL_TOPIC, 0))

    point = eventually(checkpoint, f"a checkpoint of group {group} in dr")
    assert point.upstream_offset == committed
    assert 0 < point.downstream_offset <= committed

    def synced() -> int | None:
        reader = Consumer({"bootstrap.servers": dr, "group.id": group, "enable.auto.commit": False})
        try:
            [found] = reader.committed([TopicPartition(CRITICAL_TOPIC, 0)], timeout=10)
        finally:
            reader.close()
        return found.offset if found.offset == point.downstream_offset else None

    assert eventually(synced, "the group's offset synced into dr") == point.downstream_offset


def test_both_regions_write_stack_outputs_and_the_vault_reaches_dr(
    stack: tuple[Path, dict[str, Any]],
) -> None:
    """Each region's outputs follow ``StackOutputs``; a backup object written to prod's vault
    is copied to dr's (data objects before the manifest), as S3 replication would."""
    project, _ = stack
    prod = StackOutputs.from_file(project / ".drkit/local/prod/outputs.json", "local")
    dr = StackOutputs.from_file(project / ".drkit/local/dr/outputs.json", "local")
    assert (prod.role, dr.role) == (Role.PRIMARY, Role.DR)
    assert prod.region != dr.region
    assert prod.aws_endpoint_url != dr.aws_endpoint_url  # a region takes its vault with it
    assert prod.gcs_mirror_bucket == dr.gcs_mirror_bucket  # one mirror, shared
    assert prod.vault_replication is not None
    assert prod.vault_replication.destination == dr.backup_vault
    assert dr.stores["trading-db"].port != prod.stores["trading-db"].port
    source = boto3.client(
        "s3",
        region_name=prod.region,
        endpoint_url=prod.aws_endpoint_url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    target = boto3.client(
        "s3",
        region_name=dr.region,
        endpoint_url=dr.aws_endpoint_url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    prefix = f"user-data/trading-db/{uuid.uuid4().hex}/"
    body = os.urandom(4096)
    source.put_object(Bucket=prod.backup_vault.name, Key=prefix + "data.dump", Body=body)
    source.put_object(Bucket=prod.backup_vault.name, Key=prefix + "manifest.json", Body=b"{}")

    def copied() -> list[str] | None:
        listed = target.list_objects_v2(Bucket=dr.backup_vault.name, Prefix=prefix)
        keys = [item["Key"] for item in listed.get("Contents", [])]
        return keys if len(keys) == 2 else None

    eventually(copied, "the vault objects in dr")
    copy = target.get_object(Bucket=dr.backup_vault.name, Key=prefix + "data.dump")
    assert copy["Body"].read() == body


def test_a_second_local_up_reports_the_stack_already_up(
    stack: tuple[Path, dict[str, Any]],
) -> None:
    project, state = stack
    out = io.StringIO()
    again = up(project, regions=2, only=STACK, out=out)
    assert "already up" in out.getvalue()
    assert again["supervisor"]["pid"] == state["supervisor"]["pid"]


def test_stable_names_lead_to_the_prod_primaries(stack: tuple[Path, dict[str, Any]]) -> None:
    project, state = stack
    for store in STORES:
        name = resolve(project, store)
        assert name.region == "prod"
        assert name.address in url(state, "prod", store)
    assert "password" not in (project / ".drkit/local/names.json").read_text()


def test_market_ticks_influxdb_runs_in_prod_and_shows_in_local_status(
    stack: tuple[Path, dict[str, Any]],
) -> None:
    from urllib.parse import urlsplit

    from drkit.influx import InfluxEndpoint

    project, state = stack
    entry = status(project)["regions"]["prod"]["stores"]["market-ticks"]
    assert entry["role"] == "primary" and entry["pid"] is not None
    assert entry["lag_seconds"] is None  # no standby: its protection is the hourly backup
    assert "market-ticks" not in status(project)["regions"]["dr"]["stores"]
    parts = urlsplit(entry["url"])
    assert parts.scheme == "influxdb" and parts.path == "/market_ticks"
    influx = InfluxEndpoint(parts.hostname or "", parts.port or 0, parts.username, parts.password)
    influx.write("market_ticks", b"ticks,symbol=AAPL price=1.5 1700000000000000000")
    [series] = influx.query("SELECT price FROM ticks", "market_ticks")
    assert series.values == [[1700000000000000000, 1.5]]
    assert "influxd" in {p["name"] for p in state["processes"] if p["region"] == "prod"}


def test_invoke_status_on_the_local_stack_shows_the_primary_and_each_lag_against_its_rpo(
    stack: tuple[Path, dict[str, Any]],
) -> None:
    from drkit.failover.command import status as dr_status

    project, _ = stack
    report = dr_status(stack="local", outputs=None, kubeconfig=None, project_dir=project)
    assert (report.primary_region, report.standby_region) == ("prod", "dr")
    rows = {row.store: row for row in report.rows}
    assert set(rows) == set(STACK)
    assert rows["market-ticks"].lag == "not replicated" and rows["market-ticks"].lag_ok is None
    for store, rpo in (("trading-db", "15m"), ("session-cache", "1m"), ("event-stream", "30s")):
        assert rows[store].lag.endswith(f"/ {rpo}"), rows[store]
        assert rows[store].lag_ok is True and rows[store].standby == "standby", rows[store]
    assert report.exit_code == 0, report.to_text()


def test_the_monthly_drill_on_the_dr_region_restores_from_the_replicated_vault_and_passes(
    stack: tuple[Path, dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    """``invoke drill --stack dr`` against the dr region ``local.up`` runs, as on AWS: prod's
    backups reach dr's vault by replication (REPLICA there, COMPLETED in prod), the drill restores
    each into a scratch target (never dr's read-only standby), counts it, and removes it. The
    Secrets of a Kubernetes backup open there with the vault key's multi-Region replica
    (``test_local_moto_server``). With the outputs an AWS dr stack exports (its Aurora cluster:
    dr's standby as dr's emulator describes it), trading-db's scratch target is a NEW Aurora
    cluster restored by ``restore.aurora``'s plan to the latest restorable time: a real writable
    PostgreSQL copied from the standby (``drkit.local.aurora``), checked through its writer
    endpoint with the master secret, and deleted after, server and data directory with it."""
    from invoke.context import Context

    import tasks

    project, state = stack
    shutil.copy(ROOT / "Pulumi.dr.yaml", project / "Pulumi.dr.yaml")
    tag = uuid.uuid4().hex
    with psycopg.connect(url(state, "prod", "trading-db"), autocommit=True) as prod:
        prod.execute("CREATE TABLE IF NOT EXISTS drill_marks (mark text PRIMARY KEY)")
        prod.execute(
            "INSERT INTO drill_marks SELECT %s || g FROM generate_series(1, 250) g", (tag,)
        )
    with redis.Redis.from_url(url(state, "prod", "session-cache")) as master:
        master.mset({f"session:{tag}:{n}": b"x" for n in range(40)})
    _produce(url(state, "prod", "event-stream"), tag, 30)
    tasks_root = tasks.ROOT
    tasks.ROOT = project
    try:
        for store in STORES:
            tasks.store(Context(), store=store, stack="local")
        dr = StackOutputs.from_file(project / ".drkit/local/dr/outputs.json", "local")
        s3: Any = boto3.client(
            "s3",
            region_name=dr.region,
            endpoint_url=dr.aws_endpoint_url,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

        def replicated() -> int | None:
            listed = s3.list_objects_v2(Bucket=dr.backup_vault.name)
            keys = {o["Key"] for o in listed.get("Contents", [])}
            manifests = [key for key in keys if key.endswith("manifest.json")]
            # ... and each one's catalog entry, which prod writes after the manifest.
            entries = [
                entry_key(key.split("/")[1], key.split("/")[-2])
                for key in manifests
                if key.split("/")[1] in STORES and BACKUP_ID.match(key.split("/")[-2])
            ]
            done = len(entries) >= len(STORES) and all(entry in keys for entry in entries)
            return len(manifests) if done else None

        eventually(replicated, "the backups' manifests and catalog entries in dr's vault")
        capsys.readouterr()
        dr_outputs = str(project / ".drkit/local/dr" / AURORA_OUTPUTS)
        rds = _dr_rds(project)
        before = _cluster_ids(rds)
        clock = time.monotonic()
        tasks.drill(Context(), stack="dr", outputs=dr_outputs, stores=",".join(STORES), yes=True)
        print(f"drill on dr with the Aurora scratch cluster: {time.monotonic() - clock:.1f}s")
        printed = capsys.readouterr().out
        tasks.audit_list(Context(), stack="dr", outputs=dr_outputs, operation="drill", json=True)
        events = json.loads(capsys.readouterr().out)
    finally:
        tasks.ROOT = tasks_root
    # The drill journaled itself in dr's audit bucket as it ran: started, its steps, succeeded.
    assert {event["stack"] for event in events} == {"dr"}
    assert [events[0]["event"], events[-1]["event"], events[-1]["outcome"]] == [
        "started",
        "finished",
        "succeeded",
    ]
    assert any(event["event"] == "step" for event in events)
    print(printed)
    assert "# Monthly DR drill: passed" in printed
    assert "replication.vault" in printed and "newest objects replica" in printed
    assert re.search(r"\b([1-9]\d*) rows in [1-9]\d* tables match the manifest", printed)
    assert re.search(
        r"scratch Aurora cluster trading-db-[a-z0-9-]*-dr-test-[0-9a-f]{8}-\d+-\d+-[0-9a-f]{6} "
        r"restored from trading-db-[a-z0-9-]+ to \S+ \(latest restorable time\) in "
        r"[\d.]+s, deleted after",
        printed,
    ), printed
    assert "throwaway PostgreSQL" not in printed  # the Aurora path, no server on the drill host
    # dr's standby lag, published as the secondary's AuroraGlobalDBReplicationLag, is checked.
    assert re.search(r"ok +replication\.aurora \(.*\): max lag .*: trading-db-\S+ [\d.]+s", printed)
    assert _cluster_ids(rds) == before  # the scratch cluster is gone, only the standby's left
    # Its server was stopped and its directory removed with it.
    assert list((project / ".drkit/local/data/dr/aurora/clusters").iterdir()) == []
    assert re.search(r"\b([1-9]\d*) keys loaded into a scratch redis-server", printed)
    assert re.search(r"\b([1-9]\d*) records into scratch topics dr-test\.", printed)


def _dr_rds(project: Path) -> Any:
    dr = StackOutputs.from_file(project / ".drkit/local/dr/outputs.json", "local")
    return boto3.client(
        "rds",
        region_name=dr.region,
        endpoint_url=dr.aws_endpoint_url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def _cluster_ids(rds: Any) -> list[str]:
    return sorted(c["DBClusterIdentifier"] for c in rds.describe_db_clusters()["DBClusters"])


def test_a_scratch_aurora_cluster_a_killed_drill_left_is_deleted_by_cleanup(
    stack: tuple[Path, dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    """A drill killed after its restore started leaves a running scratch cluster (a real server
    in the local world): ``invoke verify --cleanup`` finds it by its name, its holder's run gone,
    and deletes it (writer, then cluster), the server stopped with it; a live run's is kept."""
    from invoke.context import Context

    import tasks
    from drkit.ops.scratch import DRILL, Holder, host_digest
    from drkit.ops.scratch_aurora import cluster_name
    from drkit.restore.aurora import TAG_REASON

    project, _ = stack
    shutil.copy(ROOT / "Pulumi.dr.yaml", project / "Pulumi.dr.yaml")
    dr_outputs = project / ".drkit/local/dr" / AURORA_OUTPUTS
    aurora = StackOutputs.from_file(dr_outputs, "dr").aurora
    assert aurora is not None
    [source] = aurora.clusters.values()
    rds = _dr_rds(project)
    dead = subprocess.Popen(["true"])
    dead.wait()  # a pid of this host whose process is gone: the killed drill's
    gone = Holder(host_digest(), dead.pid, int(time.time()), "a1b2c3")
    live = Holder.mine(token="d4e5f6")  # this process: a run still going
    names = [cluster_name(source.id, holder, DRILL) for holder in (gone, live)]
    for name in names:
        rds.restore_db_cluster_to_point_in_time(
            DBClusterIdentifier=name,
            SourceDBClusterIdentifier=source.id,
            RestoreType="full-copy",
            UseLatestRestorableTime=True,
            Tags=[{"Key": TAG_REASON, "Value": DRILL}],
        )
    for name in names:
        rds.get_waiter("db_cluster_available").wait(
            DBClusterIdentifier=name, WaiterConfig={"Delay": 1, "MaxAttempts": 120}
        )
    [cluster] = rds.describe_db_clusters(DBClusterIdentifier=names[0])["DBClusters"]
    port = int(cluster["Port"])
    assert port != source.port and port_open(port, cluster["Endpoint"])  # a real server
    tasks_root = tasks.ROOT
    tasks.ROOT = project
    try:
        capsys.readouterr()
        tasks.verify(
            Context(),
            stack="dr",
            outputs=str(dr_outputs),
            cleanup=True,
            stores="trading-db",
            yes=True,
        )
        printed = capsys.readouterr().out
    finally:
        tasks.ROOT = tasks_root
    assert f"deleted Aurora cluster {names[0]}: its run (pid {dead.pid} on this host) is gone" in (
        printed
    ), printed
    assert f"deleted Aurora cluster {names[1]}: --cleanup" not in printed
    assert names[0] not in _cluster_ids(rds) and names[1] in _cluster_ids(rds)
    assert not port_open(port, cluster["Endpoint"])
    # The live run's cluster goes as that run would delete it.
    from drkit.ops.scratch_aurora import delete_cluster

    assert delete_cluster(rds, names[1], {"Delay": 1, "MaxAttempts": 60}, None)
    assert names[1] not in _cluster_ids(rds)


def test_killing_the_prod_postgresql_shows_as_down(stack: tuple[Path, dict[str, Any]]) -> None:
    project, state = stack
    [postgres] = [
        p for p in state["processes"] if p["name"] == "postgres" and p["region"] == "prod"
    ]
    os.kill(postgres["pid"], signal.SIGKILL)
    eventually(
        lambda: True if not alive(postgres["pid"], postgres["start_time"]) else None,
        "the killed postgres gone",
    )
    report = status(project)
    assert report["regions"]["prod"]["stores"]["trading-db"]["role"] == "down"
    assert report["regions"]["prod"]["stores"]["trading-db"]["pid"] is None
    standby = report["regions"]["dr"]["stores"]["trading-db"]
    assert standby["role"] == "standby"
    assert standby["lag_seconds"] is None  # unknown without a primary, never 0
    assert report["regions"]["prod"]["stores"]["session-cache"]["role"] == "primary"
    [entry] = [p for p in report["processes"] if p["pid"] == postgres["pid"]]
    assert entry["alive"] is False


def test_a_dead_mirror_maker_makes_the_kafka_lag_unknown_not_zero(
    stack: tuple[Path, dict[str, Any]],
) -> None:
    from drkit.failover.command import status as dr_status

    project, state = stack
    [mirror] = [p for p in state["processes"] if p["name"] == "mirror-maker"]
    os.kill(mirror["pid"], signal.SIGKILL)
    eventually(lambda: True if not alive(mirror["pid"], mirror["start_time"]) else None, "MM2 gone")

    # at once, not after the heartbeats go stale: dr's offsets are not a lag of 0
    entry = status(project)["regions"]["dr"]["stores"]["event-stream"]
    assert entry["lag_seconds"] is None
    assert "MirrorMaker 2 is not running" in entry["lag"]["note"]
    assert entry["role"] == "standby"  # the dr broker itself still answers
    report = dr_status(stack="local", outputs=None, kubeconfig=None, project_dir=project)
    [row] = [row for row in report.rows if row.store == "event-stream"]
    assert row.lag.startswith("unknown / 30s") and row.lag_ok is False
    assert report.exit_code == 1 and "MISS: lag" in report.to_text()


def test_local_down_leaves_no_process_and_no_port(stack: tuple[Path, dict[str, Any]]) -> None:
    project, state = stack
    down(project, out=io.StringIO())
    for process in [*state["processes"], state["supervisor"]]:
        assert not alive(process["pid"], process["start_time"]), process
    assert [port for port in state["ports"] if port_open(port)] == []
    assert read_state(project) is None
    assert status(project)["regions"] == {}


# --- refusals, without a stack -----------------------------------------------------------------


def test_local_up_refuses_a_bad_region_count_or_store(tmp_path: Path) -> None:
    project = scratch_project(tmp_path)
    with pytest.raises(ValueError, match="--regions 3"):
        up(project, regions=3)
    with pytest.raises(ValueError, match=r"--only 'orders-db'.*trading-db"):
        up(project, only=["orders-db"])
    assert not (project / ".drkit/local/stack.json").exists()


def test_local_up_names_a_previous_stacks_live_processes(tmp_path: Path) -> None:
    project = scratch_project(tmp_path)
    survivor = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        write_private(
            project / ".drkit/local/stack.json",
            {
                "status": "ready",
                "supervisor": {"name": "supervisor", "pid": None},
                "processes": [
                    {
                        "name": "redis",
                        "region": "dr",
                        "pid": survivor.pid,
                        "start_time": process_start_time(survivor.pid),
                    }
                ],
            },
        )
        with pytest.raises(
            LocalStackError, match=f"still alive: redis \\(dr\\) pid {survivor.pid}"
        ):
            up(project, only=["trading-db"])
        assert survivor.poll() is None  # named, not touched
    finally:
        survivor.kill()
        survivor.wait()


def test_concurrent_local_ups_start_one_stack(tmp_path: Path) -> None:
    """Two ``local.up`` at once in one checkout (a one-region, one-store stack, for speed): one
    starts the stack, the other waits for it and reports it already up; one supervisor."""
    project = scratch_project(tmp_path)
    outs = [io.StringIO(), io.StringIO()]
    with ThreadPoolExecutor(max_workers=2) as pool:
        states = list(
            pool.map(lambda out: up(project, regions=1, only=["trading-db"], out=out), outs)
        )
    try:
        assert sorted("already up" in out.getvalue() for out in outs) == [False, True]
        assert states[0]["supervisor"]["pid"] == states[1]["supervisor"]["pid"]
        [postgres] = [p for p in states[0]["processes"] if p["name"] == "postgres"]
        assert alive(postgres["pid"], postgres["start_time"])
    finally:
        down(project, out=io.StringIO())
    assert read_state(project) is None


def test_a_failed_base_backup_fails_with_the_servers_message_and_leaves_nothing(
    tmp_path: Path,
) -> None:
    with LocalPostgres(tmp_path / "primary", settings={"max_wal_senders": "0"}) as primary:
        standby = LocalStandbyPostgres(tmp_path / "standby", primary)
        with (
            pytest.raises(ServerStartError, match=r"pg_basebackup .* failed.*max_wal_senders"),
            standby,
        ):
            pass
        assert not port_open(standby.port)


def test_the_same_manifests_leave_dr_workloads_at_zero_labelled_for_failover(
    kubernetes_api: LocalKubernetes,  # noqa: F811
) -> None:
    """Pilot light: both clusters get the app's manifests; dr's workloads are scaled to 0 and
    keep the label ``invoke failover`` scales them up by."""
    from kubernetes.client import AppsV1Api, CoreV1Api  # type: ignore[import-untyped]

    from drkit.failover.kube import REPLICAS_LABEL, labelled_workloads, misscaled

    namespaces = {"prod": f"aipx-{uuid.uuid4().hex[:6]}", "dr": f"aipx-{uuid.uuid4().hex[:6]}"}
    with kubernetes_api.api_client() as client:
        core = CoreV1Api(client)
        for region, namespace in namespaces.items():
            core.create_namespace({"metadata": {"name": namespace}})
            apply_app_manifests(client, namespace, "127.0.0.1:9092", primary=region == "prod")
        apps = AppsV1Api(client)
        replicas = {
            region: {
                d.metadata.name: (d.spec.replicas, d.metadata.labels[REPLICAS_LABEL])
                for d in apps.list_namespaced_deployment(namespace).items
            }
            for region, namespace in namespaces.items()
        }
        assert replicas["prod"] == {n: (r, str(r)) for n, r in APP_WORKLOADS.items()}
        assert replicas["dr"] == {n: (0, str(r)) for n, r in APP_WORKLOADS.items()}
        assert len(labelled_workloads(client, namespaces["dr"])) == len(APP_WORKLOADS)
        assert misscaled(client, namespaces["dr"], primary=False) == []
        bootstrap = core.read_namespaced_config_map("kafka-bootstrap", namespaces["dr"])
        assert bootstrap.data == {"bootstrap.servers": "127.0.0.1:9092"}
