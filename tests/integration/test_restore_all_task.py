"""``invoke restore.all``: one recovery point for every store, the skew between them, and a plan
whose layers follow the priority list (databases, then streams, then caches) with a reason each."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import UTC
from pathlib import Path

import psycopg
import pytest

from drkit import killpoints
from drkit.endpoints import postgres_source
from drkit.local.redis import LocalRedis
from drkit.ops.executor import Status
from drkit.ops.restore_all import RestoreAllRequest, build_plan
from drkit.ops.verbs import RestoreEnv
from drkit.recovery import RecoveryError
from drkit.restore.postgres import count_rows
from drkit.seed.postgres import table_digests
from tests.integration.ops_helpers import (
    ROOT,
    attach_cache,
    cache_backup,
    cache_server,
    cache_snapshot,
    context,
    create_topics,
    database_backup,
    delete_topics,
    fill_cache,
    produce,
    run,
    stream_backup,
    unique_topics,
)

pytestmark = pytest.mark.integration
__all__ = ["cache_server"]


def test_one_point_for_every_store_in_priority_order(
    project_with_kafka: Path, cache_server: LocalRedis
) -> None:
    project = project_with_kafka
    topics = unique_topics(project)
    attach_cache(project, cache_server)
    ctx = context(project)
    endpoint = ctx.outputs.stores["event-stream"]
    bootstrap = f"{endpoint.host}:{endpoint.port}"
    create_topics(bootstrap, topics)
    for topic in topics:
        produce(bootstrap, topic, 0, 12)
    with cache_server.client() as client:
        fill_cache(client, "t0")
        cache_at_point = cache_snapshot(client)
    # t0 cache, t1 database, t2 stream, t3 cache, t4 database: the stores have all reached t2
    cache_0 = cache_backup(ctx)
    time.sleep(1.1)
    database_1 = database_backup(ctx)
    source = postgres_source(ctx, "trading-db")
    at_point = table_digests(source.conninfo())
    time.sleep(1.1)
    stream_2 = stream_backup(ctx)
    time.sleep(1.1)
    with cache_server.client() as client:
        fill_cache(client, "t3")
    cache_backup(ctx)
    with psycopg.connect(source.conninfo(), autocommit=True) as connection:
        connection.execute("DELETE FROM orders WHERE id % 2 = 0")
    database_backup(ctx, seed=False)
    with cache_server.client() as client:
        client.flushall()  # the cache and the topics are lost; the database is restored beside
    delete_topics(bootstrap, topics)

    plan, prepared = build_plan(ctx, RestoreAllRequest(), RestoreEnv(project))
    chosen = {s.store: s.entry.backup_id for s in prepared.selections}
    assert chosen == {
        "trading-db": database_1.backup_id,
        "event-stream": stream_2.backup_id,
        "session-cache": cache_0.backup_id,
    }
    assert prepared.point == stream_2.recovery_point
    assert prepared.skew_seconds == pytest.approx(
        (stream_2.recovery_point - cache_0.recovery_point).total_seconds(), abs=0.01
    )
    order = plan.parameters["order"]
    assert [line.split(" ")[0] for line in order] == ["trading-db", "event-stream", "session-cache"]
    assert "system of record" in order[0] and "caches" in order[2]
    assert set(plan.parameters["not_restored"]) == {"app-state", "market-ticks"}
    layer_of = {s.id: n for n, layer in enumerate(plan.layers) for s in layer}
    assert layer_of["verify.trading-db"] < layer_of["check.event-stream"]
    assert (
        max(layer_of[f"restore.event-stream.{t}"] for t in topics)
        < layer_of["restore.session-cache"]
    )

    report, out = run(ctx, project, plan, dry_run=True)
    assert report.status is Status.DRY_RUN and f"skew_seconds: {prepared.skew_seconds}" in out
    with cache_server.client() as client:
        assert client.dbsize() == 0  # the dry run changed nothing

    report, out = run(ctx, project, plan, yes=True)
    assert report.status is Status.SUCCEEDED, out
    target_db = next(s.id for s in report.steps if s.id.startswith("create-database."))
    restored = postgres_source(ctx, "trading-db", target_db.split(".", 1)[1])
    assert table_digests(restored.conninfo()) == at_point  # the database as of t1, not t4
    with cache_server.client() as client:
        assert cache_snapshot(client) == cache_at_point  # the cache as of t0
    assert all(s.outcome == "done" for s in report.steps)


def test_a_store_without_a_restore_and_a_store_without_backups_are_refused(
    project: Path,
) -> None:
    ctx = context(project)
    with pytest.raises(RecoveryError, match="'market-ticks' is timeseries, which has no restore"):
        build_plan(ctx, RestoreAllRequest(stores=["market-ticks"]), RestoreEnv(project))
    with pytest.raises(RecoveryError, match="no backup of 'trading-db' within its retention"):
        build_plan(ctx, RestoreAllRequest(stores=["trading-db"]), RestoreEnv(project))
    with pytest.raises(ValueError, match="unknown store 'orders-db'"):
        build_plan(ctx, RestoreAllRequest(stores=["orders-db"]), RestoreEnv(project))


def test_the_invoke_task_dry_run(project: Path) -> None:
    database_backup(context(project))
    (project / "tasks.py").write_text(
        (ROOT / "tasks.py")
        .read_text()
        .replace("ROOT = Path(__file__).resolve().parent", f"ROOT = Path({str(project)!r})")
    )
    command = [sys.executable, "-m", "invoke", "restore.all", "--stores", "trading-db"]
    result = subprocess.run(
        [*command, "--dry-run"], capture_output=True, text=True, cwd=project, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "plan: restore all" in result.stdout and "dry run: nothing was changed" in result.stdout
    refused = subprocess.run(
        [*command, "--at", "2999-01-01T00:00:00Z"],
        capture_output=True,
        text=True,
        cwd=project,
        check=False,
    )
    assert refused.returncode == 2 and "is in the future" in refused.stderr


def test_a_resumed_restore_all_restores_the_first_runs_backup_into_what_it_loaded(
    project: Path,
) -> None:
    """Issue 15: ``restore.all --resume`` passes the resume on to each store's own restore. The
    first run is killed once the database's restore has committed, before the journal says so;
    a newer backup is taken; the resumed run restores the first run's backup, and its
    PostgreSQL restore finds the tables it loaded rather than refusing a database not empty."""
    ctx = context(project)
    first = database_backup(ctx)
    (project / "tasks.py").write_text(
        (ROOT / "tasks.py")
        .read_text()
        .replace("ROOT = Path(__file__).resolve().parent", f"ROOT = Path({str(project)!r})")
    )
    command = [sys.executable, "-m", "invoke", "restore.all", "--yes"]
    env = {k: v for k, v in os.environ.items() if k not in (killpoints.ENV, "DRKIT_DEBUG")}
    killed = subprocess.run(
        [*command, "--stores", "trading-db"],
        capture_output=True,
        text=True,
        cwd=project,
        env=env | {killpoints.ENV: "applied:restore.trading-db"},
        check=False,
    )
    assert killed.returncode == -9, killed.stdout + killed.stderr
    [journal] = (project / ".drkit" / "journal").glob("*.jsonl")
    source = postgres_source(ctx, "trading-db")
    with psycopg.connect(source.conninfo(), autocommit=True) as connection:
        connection.execute(
            "INSERT INTO orders (account_id, symbol, side, qty, status, placed_at)"
            " VALUES (1, 'AAPL', 'buy', 1, 'open', now())"
        )
    newer = database_backup(ctx, seed=False)
    assert newer.counts["public.orders"] == first.counts["public.orders"] + 1

    resumed = subprocess.run(
        [*command, "--resume", journal.stem],
        capture_output=True,
        text=True,
        cwd=project,
        env=env,
        check=False,
    )

    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "succeeded: restore all" in resumed.stdout
    assert first.backup_id in resumed.stdout and newer.backup_id not in resumed.stdout
    events = [json.loads(line) for line in journal.read_text().splitlines()]
    restored = [e for e in events if e.get("step") == "restore.trading-db" and "outcome" in e]
    assert [e["outcome"] for e in restored] == ["already_done"]  # its pg_restore had committed
    database = f"{source.database}_restored_{first.recovery_point.astimezone(UTC):%Y%m%d%H%M}"
    target = postgres_source(ctx, "trading-db", database)
    assert count_rows(target, list(first.counts)) == first.counts
