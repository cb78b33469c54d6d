"""``invoke drill --stack dr`` on the local world with outputs shaped like dr's: its trading-db
endpoint is a hot standby of prod's PostgreSQL (read-only, as the Aurora secondary is), its
event-stream, session-cache and app-state the local servers. The drill restores every store into a
writable scratch target named for the drill (a throwaway PostgreSQL server, ``dr-test.`` topics, a
throwaway Redis, ``<namespace>-dr-test``), removes each, and never reaches the read-only endpoint
(a proxy in front of it counts the connections) nor writes to prod's writer (its databases
unchanged). The throwaway server a killed drill left is stopped and removed by the cleanup."""

from __future__ import annotations

import json
import re
import secrets
import signal
import subprocess
import sys
import tempfile
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from confluent_kafka.admin import AdminClient
from invoke.context import Context
from psycopg.conninfo import make_conninfo

import tasks
from drkit.backups import backup_store
from drkit.context import OpsContext
from drkit.kubestate.api import NAMESPACES, KubeApi
from drkit.local.faultproxy import FaultProxy
from drkit.local.kafka import LocalKafka
from drkit.local.kubernetes import LocalKubernetes
from drkit.local.postgres import LocalPostgres
from drkit.local.redis import LocalRedis
from drkit.local.standby_postgres import LocalStandbyPostgres
from drkit.local.stores import kubernetes_endpoint
from drkit.ops.scratch import parse_topic, pid_alive
from drkit.ops.throwaway import working_in
from drkit.seed.kubernetes import seed_namespace
from stackmodels import StackOutputs
from tests.integration.kubernetes_fixture import kubernetes_api
from tests.integration.ops_helpers import (
    ROOT,
    attach_cache,
    cache_backup,
    cache_server,
    context,
    create_topics,
    database_backup,
    fill_cache,
    produce,
    stream_backup,
    unique_topics,
)

pytestmark = pytest.mark.integration
__all__ = ["cache_server", "kubernetes_api"]
K8S = "app-state"


@pytest.fixture
def standby(tmp_path: Path, postgres_server: LocalPostgres) -> Iterator[LocalStandbyPostgres]:
    """A hot standby of the session's PostgreSQL (prod's writer here), on a slot of its own."""
    slot = f"dr_drill_{secrets.token_hex(4)}"
    server = LocalStandbyPostgres(tmp_path / "standby", postgres_server, slot=slot)
    try:
        server.start()
        yield server
    finally:
        server.cleanup()
        with postgres_server.connect(autocommit=True) as connection:
            connection.execute(
                "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
                "WHERE slot_name = %s",
                (slot,),
            )


def databases(server: LocalPostgres) -> set[str]:
    with server.connect() as connection:
        return {str(r[0]) for r in connection.execute("SELECT datname FROM pg_database")}


def dr_project(project: Path, topics: list[str]) -> None:
    """dr's stack file with the test's own topic names."""
    prod = (project / "Pulumi.prod.yaml").read_text()
    match = re.search(r"topics: \[([^\]]+)\]", prod)
    assert match is not None
    dr = (ROOT / "Pulumi.dr.yaml").read_text()
    dr = re.sub(r"topics: \[[^\]]+\]", match.group(0), dr, count=1)
    for name in ("strategy-signals", "order-events", "market-data"):
        renamed = next(t for t in topics if t.startswith(f"{name}-"))
        dr = dr.replace(f"      {name}: ", f"      {renamed}: ")
    (project / "Pulumi.dr.yaml").write_text(dr)


def test_drill_on_the_dr_stack_restores_only_into_scratch_targets(
    project_with_kafka: Path,
    cache_server: LocalRedis,
    kafka_broker: LocalKafka,
    kubernetes_api: LocalKubernetes,
    postgres_server: LocalPostgres,
    standby: LocalStandbyPostgres,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    project = project_with_kafka
    topics = unique_topics(project)
    dr_project(project, topics)
    attach_cache(project, cache_server)
    namespace = f"aipx-{uuid.uuid4().hex[:8]}"
    state = project / ".drkit" / "local" / "outputs.json"
    outputs = StackOutputs.from_file(state, "local")
    stores = dict(outputs.stores) | {K8S: kubernetes_endpoint(kubernetes_api, namespace)}
    outputs.model_copy(update={"stores": stores, "k8s_namespace": namespace}).write(state)

    # prod backs up (into the vault dr reads), as its CronJobs do.
    prod = context(project)
    create_topics(kafka_broker.bootstrap, topics)
    for topic in topics:
        produce(kafka_broker.bootstrap, topic, 0, 15)
    with cache_server.client() as client:
        fill_cache(client, "dr")
    with kubernetes_api.api_client() as client:
        seed_namespace(KubeApi(client), namespace, group=f"{uuid.uuid4().hex[:8]}.aipx.io")
    database_backup(prod)
    stream_backup(prod)
    cache_backup(prod)
    backup_store(prod, K8S, [])

    # dr's outputs: trading-db is the standby (behind a proxy that counts every byte).
    exported = prod.outputs.stores["trading-db"]
    with FaultProxy((standby.host, standby.port)) as proxy:
        host, port = proxy.address
        dr_stores = dict(prod.outputs.stores)
        dr_stores["trading-db"] = exported.model_copy(update={"host": host, "port": port})
        dr_outputs = project / "dr-outputs.json"
        prod.outputs.model_copy(update={"stores": dr_stores}).write(dr_outputs)
        # The proxy forwards, and what it leads to is read-only.
        dr = OpsContext.load("dr", dr_outputs, project)
        assert dr.config.role.value == "dr"
        through = exported.model_copy(update={"host": host, "port": port})
        conninfo = make_conninfo(
            host=through.host,
            port=through.port,
            dbname=exported.database,
            user=postgres_server.user,
            password=postgres_server.password,
        )
        with psycopg.connect(conninfo) as connection:
            assert connection.execute("SELECT pg_is_in_recovery()").fetchone() == (True,)
        connections = proxy.connections
        before = {"writer": databases(postgres_server), "standby": databases(standby)}
        monkeypatch.setattr(tasks, "ROOT", project)

        tasks.drill(Context(), stack="dr", outputs=str(dr_outputs), yes=True)

        printed = capsys.readouterr().out
        # Not one connection to the read-only endpoint during the drill (the one is the check's).
        assert proxy.connections == connections == 1
    assert databases(postgres_server) == before["writer"]  # prod's writer: nothing new, no drop
    assert databases(standby) == before["standby"]
    assert "Monthly DR drill: passed" in printed

    body = json.loads((project / "reports" / "latest" / "verify.json").read_text())
    restores = {c["subject"]: c for c in body["checks"] if c["check"] == "test-restore"}
    assert set(restores) == {"trading-db", "event-stream", "session-cache", K8S}
    assert all(c["status"] == "ok" for c in restores.values()), restores
    database = restores["trading-db"]
    assert "throwaway PostgreSQL server" in database["detail"], database
    scratch_db = database["figures"]["scratch_database"]
    assert scratch_db.startswith(f"{exported.database}_dr_test_")
    tag = scratch_db.rsplit("_dr_test_", 1)[1]
    assert not list(Path(tempfile.gettempdir()).glob(f"drkit-scratch-postgres-{tag}-*"))
    scratch_topics = restores["event-stream"]["figures"]["scratch_topics"]
    assert sorted(scratch_topics) == sorted(f"dr-test.{tag}.{t}" for t in topics)
    listed = AdminClient({"bootstrap.servers": kafka_broker.bootstrap}).list_topics(timeout=10)
    assert not set(scratch_topics) & set(listed.topics)
    assert [parse_topic(t) for t in scratch_topics if parse_topic(t) is None] == []
    assert restores[K8S]["figures"]["scratch_namespace"] == f"{namespace}-dr-test"
    with kubernetes_api.api_client() as client:
        assert not KubeApi(client).exists(NAMESPACES.object_path(f"{namespace}-dr-test"))
        assert KubeApi(client).exists(NAMESPACES.object_path(namespace))
    drill = json.loads((project / "reports" / "latest" / "drill-monthly.json").read_text())
    assert drill["ok"] is True and drill["stack"] == "dr"


KILLED_DRILL = """
import os, signal, sys
from pathlib import Path
from drkit.context import OpsContext
from drkit.drill.monthly import run_monthly_drill
from drkit.ops import verify_postgres
from drkit.ops.run import RunOptions

count_rows = verify_postgres.count_rows

def counted_then_killed(*args, **kwargs):
    count_rows(*args, **kwargs)
    os.kill(os.getpid(), signal.SIGKILL)

verify_postgres.count_rows = counted_then_killed
project, outputs = Path(sys.argv[1]), Path(sys.argv[2])
ctx = OpsContext.load("dr", outputs, project)
run_monthly_drill(ctx, ["trading-db"], RunOptions(yes=True), project, sys.stdout)
raise SystemExit("not killed")
"""


def test_the_throwaway_server_a_killed_drill_left_is_stopped_and_removed_by_cleanup(
    project: Path,
    standby: LocalStandbyPostgres,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    prod = context(project)
    database_backup(prod)
    stores = dict(prod.outputs.stores)
    stores["trading-db"] = stores["trading-db"].model_copy(
        update={"host": standby.host, "port": standby.port}
    )
    dr_outputs = project / "dr-outputs.json"
    prod.outputs.model_copy(update={"stores": stores}).write(dr_outputs)
    (project / "Pulumi.dr.yaml").write_text((ROOT / "Pulumi.dr.yaml").read_text())
    before = set(Path(tempfile.gettempdir()).glob("drkit-scratch-postgres-*"))

    child = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(KILLED_DRILL), str(project), str(dr_outputs)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    printed_by_child, _ = child.communicate(timeout=180)

    assert child.returncode == -signal.SIGKILL, printed_by_child
    new = set(Path(tempfile.gettempdir()).glob("drkit-scratch-postgres-*")) - before
    (left,) = [path for path in new if f"_{child.pid}_" in path.name]  # not a concurrent run's
    record = json.loads((left / "server.json").read_text())
    (server,) = working_in(record["cwd"])  # the killed run's server still runs
    monkeypatch.setattr(tasks, "ROOT", project)
    capsys.readouterr()

    dr = {"stack": "dr", "outputs": str(dr_outputs), "yes": True}
    tasks.verify(Context(), **dr, stores="trading-db", cleanup=True)

    printed = capsys.readouterr().out
    assert f"trading-db: removed throwaway postgres server in {left}: its run (pid" in printed
    assert not pid_alive(server) and working_in(record["cwd"]) == []
    assert not left.exists() and not any(Path(p).exists() for p in record["paths"])
