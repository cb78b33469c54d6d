"""``invoke verify`` test restores of Kubernetes state and time series, against the real
kube-apiserver (+ etcd) and InfluxDB: a scratch namespace compared object by object with the
archive, a scratch database compared per measurement with the manifest, both removed after; a
taken scratch name refused; what a SIGKILLed run left removed by the next run or ``--cleanup``;
and the whole shipped store set verified by the invoke task."""

from __future__ import annotations

import io
import json
import signal
import subprocess
import sys
import textwrap
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from invoke.context import Context

import tasks
from drkit.backup.timeseries import TimeWindow
from drkit.backups import backup_store
from drkit.context import OpsContext
from drkit.endpoints import influx_endpoint
from drkit.influx import quote_ident
from drkit.kubestate.api import NAMESPACES, KubeApi
from drkit.kubestate.reader import NamespaceReader
from drkit.local.gcs import LocalGcs
from drkit.local.influxdb import LocalInfluxDB
from drkit.local.kafka import LocalKafka
from drkit.local.kubernetes import LocalKubernetes
from drkit.local.postgres import LocalPostgres
from drkit.local.redis import LocalRedis
from drkit.local.s3 import LocalAws
from drkit.local.stores import kubernetes_endpoint
from drkit.ops.restore_k8s import RestoreK8sRequest, prepare
from drkit.ops.run import RunOptions
from drkit.ops.scratch import Holder, host_digest
from drkit.ops.verify import VerifyRequest, exit_code, run_cleanup, run_verify
from drkit.ops.verify_k8s import (
    HOLDER_LABEL,
    SCRATCH_LABEL,
    compare_with_backup,
    remove_namespace,
    scratch_labels,
    scratch_name,
)
from drkit.ops.verify_timeseries import INFIX, scratch_database
from drkit.restore.kubernetes import open_archive, restore_all
from drkit.seed.kubernetes import SeededNamespace, seed_namespace
from drkit.seed.timeseries import seed_market_data
from stackmodels import StackOutputs
from tests.integration.conftest import SessionServers, provision_project
from tests.integration.forgery import overwrite
from tests.integration.kubernetes_fixture import kubernetes_api
from tests.integration.ops_helpers import (
    ROOT,
    cache_backup,
    create_topics,
    database_backup,
    produce,
    stream_backup,
    unique_topics,
)

pytestmark = pytest.mark.integration
__all__ = ["kubernetes_api"]  # the session's API server, imported for pytest

K8S, TICKS = "app-state", "market-ticks"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def world(
    tmp_path: Path,
    postgres_server: LocalPostgres,
    redis_server: LocalRedis,
    aws_emulator: LocalAws,
    gcs_emulator: LocalGcs,
    influxdb_server: LocalInfluxDB,
    kubernetes_api: LocalKubernetes,
) -> Path:
    """A project whose app-state is a fresh seeded namespace on the session's API server and
    whose market-ticks is a database of its own on the session's InfluxDB."""
    servers = SessionServers(
        postgres_server, redis_server, aws_emulator, gcs_emulator, influxdb=influxdb_server
    )
    return own_stores(provision_project(tmp_path, servers), kubernetes_api)


def own_stores(project: Path, cluster: LocalKubernetes) -> Path:
    path = project / ".drkit" / "local" / "outputs.json"
    outputs = StackOutputs.from_file(path, "local")
    namespace = unique("aipx")
    stores = dict(outputs.stores) | {K8S: kubernetes_endpoint(cluster, namespace)}
    ticks = stores[TICKS].model_copy(update={"database": f"ticks_{uuid.uuid4().hex[:8]}"})
    stores[TICKS] = ticks
    outputs.model_copy(update={"stores": stores, "k8s_namespace": namespace}).write(path)
    return project


def seed_k8s(ctx: OpsContext, api: KubeApi) -> SeededNamespace:
    return seed_namespace(api, ctx.outputs.k8s_namespace, group=f"{uuid.uuid4().hex[:8]}.aipx.io")


def seed_ticks(ctx: OpsContext) -> dict[str, int]:
    """Two symbols, one tick a second, over the last full hour (what the backup exports)."""
    server, database = influx_endpoint(ctx, TICKS)
    window = TimeWindow.last_full_hour(datetime.now(UTC))
    return seed_market_data(server, database, window, symbols=("AAPL", "MSFT"))


def verify(
    ctx: OpsContext, project: Path, stores: list[str], **kwargs: Any
) -> tuple[int, Any, str]:
    out = io.StringIO()
    run, report = run_verify(
        ctx, VerifyRequest(stores=stores), RunOptions(yes=True), project, out, **kwargs
    )
    return exit_code(run, report), report, out.getvalue()


def checks(report: Any, kind: str = "test-restore") -> dict[str, Any]:
    return {c.subject: c for c in report.checks if c.check == kind}


def namespaces(api: KubeApi, prefix: str) -> list[str]:
    items = api.get(NAMESPACES.collection_path())["items"]
    return [i["metadata"]["name"] for i in items if i["metadata"]["name"].startswith(prefix)]


def scratch_databases(ctx: OpsContext) -> list[str]:
    server, database = influx_endpoint(ctx, TICKS)
    return [d for d in server.databases() if d.startswith(database + INFIX)]


def test_both_stores_restore_into_scratch_targets_that_are_removed_and_a_tampered_backup_misses(
    world: Path, kubernetes_api: LocalKubernetes
) -> None:
    ctx = OpsContext.load("local", project_dir=world)
    with kubernetes_api.api_client() as client:
        api = KubeApi(client)
        seeded = seed_k8s(ctx, api)
        counts = seed_ticks(ctx)
        k8s_backup = backup_store(ctx, K8S, [])
        ticks_backup = backup_store(ctx, TICKS, [])
        assert ticks_backup.counts == counts

        code, report, out = verify(ctx, world, [K8S, TICKS])

        assert code == 0, out
        found = checks(report)
        assert found[K8S].status == "ok" and found[TICKS].status == "ok", out
        # 22 namespaced objects; the CRD is the live namespace's too: shared, not replaced.
        assert "22/22 objects equal to the backup in scratch namespace" in found[K8S].detail
        assert "1 existing CRD(s) shared, not compared" in found[K8S].detail
        assert "Secrets unsealed in memory" in found[K8S].detail
        assert f"{sum(counts.values()):,} points of 2 measurements" in found[TICKS].detail
        assert found[TICKS].figures["measurements"] == counts
        # Removed after; the live namespace untouched.
        assert namespaces(api, f"{seeded.namespace}-verify-") == []
        assert scratch_databases(ctx) == []
        assert api.exists(f"/api/v1/namespaces/{seeded.namespace}/secrets/aws-credentials")
        # No Secret value in what the run wrote.
        for path in [*(world / ".drkit" / "journal").glob("*"), *(world / "reports").rglob("*")]:
            if path.is_dir():
                continue
            blob = path.read_bytes()
            for value in seeded.secret_values:
                assert value.encode() not in blob, path

        # Tampered: other bytes in each backup's data objects.
        archive = next(o for o in k8s_backup.objects if o.name == "resources.jsonl")
        overwrite(ctx.vault(), archive.key, b"\0" * archive.size)
        ticks = next(o for o in ticks_backup.objects if o.name == "ticks.parquet")
        overwrite(ctx.vault(), ticks.key, b"\0" * ticks.size)

        code, report, out = verify(ctx, world, [K8S, TICKS])

        assert code == 1
        found = checks(report)
        for store, key in ((K8S, archive.key), (TICKS, ticks.key)):
            assert found[store].status == "miss"
            assert key in found[store].detail and "SHA-256" in found[store].detail, found[store]
            assert f"MISS test-restore {store} (miss)" in out
        assert namespaces(api, f"{seeded.namespace}-verify-") == []
        assert scratch_databases(ctx) == []


def test_the_comparison_names_what_differs_in_a_restored_namespace(
    world: Path, kubernetes_api: LocalKubernetes
) -> None:
    """What a wrong restore would leave, made by hand in a copy restored as verify restores it:
    a changed value, a deleted Secret, an object the backup does not hold."""
    ctx = OpsContext.load("local", project_dir=world)
    with kubernetes_api.api_client() as client:
        api = KubeApi(client)
        seeded = seed_k8s(ctx, api)
        backup_store(ctx, K8S, [])
        target = unique("aipx-copy")
        prepared = prepare(ctx, RestoreK8sRequest(namespace_to=target), None)
        try:
            _header, records = open_archive(prepared.chosen.objects, prepared.manifest)
            restore_all(records, prepared.target, prepared.key, prepared.ledger)
            assert not prepared.ledger.failures()
            config = f"/api/v1/namespaces/{target}/configmaps/app-config"
            api.merge_patch(config, {"data": {"LOG_LEVEL": "debug"}})
            api.delete(f"/api/v1/namespaces/{target}/secrets/aws-credentials")
            api.create(
                f"/api/v1/namespaces/{target}/configmaps",
                {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "stray"}},
            )
            _header, records = open_archive(prepared.chosen.objects, prepared.manifest)
            comparison = compare_with_backup(api, records, prepared.key, seeded.namespace, target)
        finally:
            prepared.close()
        diff = comparison.diff
        assert diff.mismatched == {"configmaps/app-config": ["data.LOG_LEVEL"]}
        assert diff.missing == ["secrets/aws-credentials"]
        assert diff.unexpected == ["configmaps/stray"]
        assert diff.equal == diff.expected - 2 and comparison.shared == [
            f"customresourcedefinitions.apiextensions.k8s.io/{seeded.crd}"
        ]
        assert not any(v in diff.summary() for v in seeded.secret_values)
        remove_namespace(api, target)
        assert not api.exists(NAMESPACES.object_path(target))


def test_a_scratch_namespace_that_exists_is_refused_not_replaced(
    world: Path, kubernetes_api: LocalKubernetes
) -> None:
    ctx = OpsContext.load("local", project_dir=world)
    with kubernetes_api.api_client() as client:
        api = KubeApi(client)
        seeded = seed_k8s(ctx, api)
        backup_store(ctx, K8S, [])
        taken = scratch_name(seeded.namespace, Holder("00000000", 1, 0, "abc123"))
        api.create(
            NAMESPACES.collection_path(),
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": taken}},
        )
        api.create(
            f"/api/v1/namespaces/{taken}/configmaps",
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "someones"}},
        )

        code, report, _out = verify(ctx, world, [K8S], scratch_token="abc123")

        assert code == 1
        miss = checks(report)[K8S]
        assert miss.status == "miss"
        assert f"scratch namespace {taken!r} already exists" in miss.detail
        assert "refused, not replaced" in miss.detail
        assert api.exists(f"/api/v1/namespaces/{taken}/configmaps/someones")
        reader = NamespaceReader(api, taken)
        kept = [o for p in reader.pages(reader.survey(None), None) for o in p.objects]
        assert len(kept) == 2  # the namespace and its ConfigMap, nothing restored into it
        remove_namespace(api, taken)


KILLED_RUN = """
import os, signal, sys, threading
from pathlib import Path
from drkit.context import OpsContext
from drkit.ops import verify_k8s, verify_timeseries
from drkit.ops.run import RunOptions
from drkit.ops.verify import VerifyRequest, run_verify

both = threading.Barrier(2, timeout=90)

def killed(*args, **kwargs):
    both.wait()  # the other store's scratch target is made too
    os.kill(os.getpid(), signal.SIGKILL)

restore = verify_timeseries.restore_timeseries

def restored_then_killed(*args, **kwargs):
    restore(*args, **kwargs)
    killed()

verify_k8s.compare_with_backup = killed  # once the scratch namespace is restored
verify_timeseries.restore_timeseries = restored_then_killed
project = Path(sys.argv[1])
ctx = OpsContext.load("local", project_dir=project)
stores = ["app-state", "market-ticks"]
run_verify(ctx, VerifyRequest(stores=stores), RunOptions(yes=True), project, sys.stdout)
raise SystemExit("not killed")
"""


def kill_mid_verify(project: Path) -> None:
    """A verify in a process of its own, SIGKILLed once both scratch targets are made."""
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(KILLED_RUN), str(project)],
        capture_output=True,
        text=True,
        check=False,
        timeout=180,
    )
    assert done.returncode == -signal.SIGKILL, done.stdout + done.stderr


def leave_behind(ctx: OpsContext, api: KubeApi, namespace: str) -> Holder:
    """Scratch targets as a run that is gone left them (a finished process's pid)."""
    holder = Holder(host_digest(), dead_pid(), int(datetime.now(UTC).timestamp()), "0dead0")
    labels = scratch_labels(K8S, holder)
    api.create(
        NAMESPACES.collection_path(),
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": scratch_name(namespace, holder), "labels": labels},
        },
    )
    server, database = influx_endpoint(ctx, TICKS)
    server.query(f"CREATE DATABASE {quote_ident(scratch_database(database, holder))}", write=True)
    return holder


def dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def test_what_a_killed_run_left_is_removed_by_the_next_run_and_by_cleanup(
    world: Path,
    kubernetes_api: LocalKubernetes,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ctx = OpsContext.load("local", project_dir=world)
    with kubernetes_api.api_client() as client:
        api = KubeApi(client)
        seeded = seed_k8s(ctx, api)
        seed_ticks(ctx)
        backup_store(ctx, K8S, [])
        backup_store(ctx, TICKS, [])
        prefix = f"{seeded.namespace}-verify-"

        kill_mid_verify(world)

        (namespace,), (database,) = namespaces(api, prefix), scratch_databases(ctx)
        labels = api.get(NAMESPACES.object_path(namespace))["metadata"]["labels"]
        assert labels[SCRATCH_LABEL] == K8S and Holder.parse(labels[HOLDER_LABEL])
        out = io.StringIO()
        assert run_cleanup(ctx, [K8S, TICKS], out, dry_run=True) == 0
        assert f"would remove namespace {namespace}: its run (pid" in out.getvalue()
        assert f"would drop database {database}: its run (pid" in out.getvalue()
        assert namespaces(api, prefix) == [namespace]  # a dry run removes nothing

        code, report, out_text = verify(ctx, world, [K8S, TICKS])

        assert code == 0, out_text
        found = checks(report)
        assert f"before it, removed namespace {namespace}" in found[K8S].detail
        assert f"before it, dropped database {database}" in found[TICKS].detail
        assert namespaces(api, prefix) == [] and scratch_databases(ctx) == []

        # ``invoke verify --cleanup`` (the task, in this process), on what another gone run left.
        holder = leave_behind(ctx, api, seeded.namespace)
        monkeypatch.setattr(tasks, "ROOT", world)
        capsys.readouterr()
        tasks.verify(Context(), stores=f"{K8S},{TICKS}", cleanup=True)
        printed = capsys.readouterr().out
        assert f"removed namespace {scratch_name(seeded.namespace, holder)}" in printed
        assert f"dropped database {scratch_database(influx_endpoint(ctx, TICKS)[1], holder)}" in (
            printed
        )
        assert namespaces(api, prefix) == [] and scratch_databases(ctx) == []


def test_invoke_verify_over_the_five_shipped_stores_passes(
    tmp_path: Path,
    postgres_server: LocalPostgres,
    redis_server: LocalRedis,
    aws_emulator: LocalAws,
    gcs_emulator: LocalGcs,
    influxdb_server: LocalInfluxDB,
    kafka_broker: LocalKafka,
    kubernetes_api: LocalKubernetes,
) -> None:
    servers = SessionServers(
        postgres_server,
        redis_server,
        aws_emulator,
        gcs_emulator,
        kafka=kafka_broker,
        influxdb=influxdb_server,
    )
    project = own_stores(provision_project(tmp_path, servers), kubernetes_api)
    topics = unique_topics(project)
    ctx = OpsContext.load("local", project_dir=project)
    assert sorted(ctx.config.stores) == sorted(
        ["trading-db", "event-stream", "session-cache", K8S, TICKS]
    )
    bootstrap = kafka_broker.bootstrap
    create_topics(bootstrap, topics)
    for topic in topics:
        produce(bootstrap, topic, 0, 20)
    with kubernetes_api.api_client() as client:
        seed_k8s(ctx, KubeApi(client))
    seed_ticks(ctx)
    database_backup(ctx)
    stream_backup(ctx)
    cache_backup(ctx)
    backup_store(ctx, K8S, [])
    backup_store(ctx, TICKS, [])
    (project / "tasks.py").write_text(
        (ROOT / "tasks.py")
        .read_text()
        .replace("ROOT = Path(__file__).resolve().parent", f"ROOT = Path({str(project)!r})")
    )

    done = subprocess.run(
        [sys.executable, "-m", "invoke", "verify", "--stack", "local", "--yes"],
        capture_output=True,
        text=True,
        cwd=project,
        check=False,
    )

    assert done.returncode == 0, done.stdout + done.stderr
    assert "verify PASS" in done.stdout
    body = json.loads((project / "reports" / "latest" / "verify.json").read_text())
    restored = {c["subject"]: c["status"] for c in body["checks"] if c["check"] == "test-restore"}
    assert restored == dict.fromkeys(ctx.config.stores, "ok")
