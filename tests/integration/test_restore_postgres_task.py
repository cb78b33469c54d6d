"""``invoke restore.postgres`` as an on-call engineer uses it: plan first, refusals that change
nothing, confirmation, journal, resume after an interruption, and a report."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from invoke.context import Context

from drkit import killpoints
from drkit.backup.manifest import Manifest
from drkit.backups import backup_store
from drkit.context import OpsContext
from drkit.endpoints import postgres_source
from drkit.ops.executor import Status
from drkit.ops.restore_postgres import RestorePostgresRequest, build_plan
from drkit.ops.run import RunOptions, run_plan
from drkit.ops.selection import TargetNotEmptyError
from drkit.ops.verbs import RestoreEnv
from drkit.recovery import RecoveryError
from drkit.restore.postgres import count_rows
from drkit.seed.postgres import TradingDataSize, seed_trading_database, table_digests
from drkit.targets import TargetRefused

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def context(project: Path) -> OpsContext:
    return OpsContext.load("local", project_dir=project)


def seeded_backups(project: Path, count: int = 2) -> tuple[OpsContext, list[Manifest]]:
    ctx = context(project)
    source = postgres_source(ctx, "trading-db")
    seed_trading_database(source.conninfo(), TradingDataSize.for_megabytes(1))
    manifests = []
    for n in range(count):
        if n:
            with psycopg.connect(source.conninfo(), autocommit=True) as connection:
                connection.execute(
                    "INSERT INTO orders (account_id, symbol, side, qty, status, placed_at)"
                    " VALUES (1, 'AAPL', 'buy', 1, 'open', now())"
                )
        manifests.append(backup_store(ctx, "trading-db", []))
    return ctx, manifests


def run(
    ctx: OpsContext, project: Path, request: RestorePostgresRequest, options: RunOptions
) -> tuple[Status, str]:
    out = io.StringIO()
    plan, _ = build_plan(ctx, request, RestoreEnv(project))
    report = run_plan(ctx, plan, options, project, out, "restore-postgres")
    return report.status, out.getvalue()


def database_exists(ctx: OpsContext, name: str) -> bool:
    server = postgres_source(ctx, "trading-db")
    with psycopg.connect(server.conninfo("postgres")) as connection:
        return bool(
            connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        )


def test_latest_restore_into_a_new_database_is_verified_and_reported(project: Path) -> None:
    ctx, manifests = seeded_backups(project)
    request = RestorePostgresRequest(target_database="restored_latest")
    status, out = run(ctx, project, request, RunOptions(yes=True))
    assert status is Status.SUCCEEDED, out
    assert manifests[-1].backup_id in out  # the plan names the real backup id
    target = postgres_source(ctx, "trading-db", "restored_latest")
    assert table_digests(target.conninfo()) == table_digests(
        postgres_source(ctx, "trading-db").conninfo()
    )
    latest = project / "reports" / "latest"
    report = json.loads((latest / "restore-postgres.json").read_text())
    assert report["status"] == "succeeded"
    assert latest.resolve() == (project / "reports" / report["run_id"]).resolve()
    summary = json.loads((latest / "run.json").read_text())
    assert summary["operation"] == "restore postgres trading-db" and summary["stack"] == "local"
    assert summary["outcome"] == "succeeded" and summary["seconds"] > 0
    assert "restore-postgres.md" in summary["files"] and summary["journal"].endswith(".jsonl")
    assert [s["outcome"] for s in report["steps"]] == ["done", "done", "done"]
    assert report["figures"]["journal_copy"].startswith("s3://")

    again, out = run(ctx, project, request.model_copy(update={"force": True}), RunOptions(yes=True))
    assert again is Status.SUCCEEDED
    assert "ok (already done)  restore.trading-db" in out  # idempotent: nothing re-applied


def test_at_picks_the_newest_backup_at_or_before_and_refuses_bad_times(project: Path) -> None:
    ctx, manifests = seeded_backups(project)
    between = (
        manifests[0].recovery_point
        + (manifests[1].recovery_point - manifests[0].recovery_point) / 2
    )
    _plan, prepared = build_plan(
        ctx, RestorePostgresRequest(at=between.isoformat()), RestoreEnv(project)
    )
    assert prepared.entry.backup_id == manifests[0].backup_id
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    with pytest.raises(RecoveryError, match="is in the future"):
        build_plan(ctx, RestorePostgresRequest(at=future), RestoreEnv(project))
    ancient = (datetime.now(UTC) - timedelta(days=4000)).isoformat()
    with pytest.raises(
        RecoveryError, match=r"older than the retention of 'trading-db' \(2555 days"
    ):
        build_plan(ctx, RestorePostgresRequest(at=ancient), RestoreEnv(project))
    with pytest.raises(RecoveryError, match="is not a timestamp"):
        build_plan(ctx, RestorePostgresRequest(at="yesterday"), RestoreEnv(project))


def test_bad_inputs_are_named_and_change_nothing(project: Path) -> None:
    ctx, _manifests = seeded_backups(project, count=1)
    with pytest.raises(
        RecoveryError, match="backup '20200101T000000Z-abcdef' of 'trading-db' does not exist"
    ):
        build_plan(
            ctx, RestorePostgresRequest(backup="20200101T000000Z-abcdef"), RestoreEnv(project)
        )
    with pytest.raises(RecoveryError, match="is malformed"):
        build_plan(ctx, RestorePostgresRequest(backup="latest-one"), RestoreEnv(project))
    with pytest.raises(ValueError, match="unknown store 'orders-db'"):
        build_plan(ctx, RestorePostgresRequest(store="orders-db"), RestoreEnv(project))
    with pytest.raises(RecoveryError, match="is kafka, not postgres"):
        build_plan(ctx, RestorePostgresRequest(store="event-stream"), RestoreEnv(project))
    with pytest.raises(RecoveryError, match="--table trades: not in backup"):
        build_plan(ctx, RestorePostgresRequest(tables=["trades"]), RestoreEnv(project))
    source_db = postgres_source(ctx, "trading-db").database
    with pytest.raises(TargetRefused, match=f"target database '{source_db}' is the source"):
        build_plan(
            ctx, RestorePostgresRequest(target_database=source_db, force=True), RestoreEnv(project)
        )
    for reserved in ("postgres", "template0", "template1"):
        with pytest.raises(TargetRefused, match=f"'{reserved}' is one of PostgreSQL's own"):
            build_plan(
                ctx,
                RestorePostgresRequest(target_database=reserved, force=True),
                RestoreEnv(project),
            )
    with pytest.raises(TargetRefused, match="is 64 bytes; PostgreSQL names are at most 63"):
        build_plan(ctx, RestorePostgresRequest(target_database="r" * 64), RestoreEnv(project))
    with pytest.raises(TargetRefused, match="not a connection string"):
        build_plan(
            ctx, RestorePostgresRequest(target_database=f"dbname={source_db}"), RestoreEnv(project)
        )
    busy = postgres_source(ctx, "trading-db", f"{source_db}_busy")
    with psycopg.connect(busy.conninfo("postgres"), autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{busy.database}"')
    with psycopg.connect(busy.conninfo(), autocommit=True) as connection:
        connection.execute("CREATE TABLE live (id int)")
    with pytest.raises(TargetNotEmptyError, match=f"'{busy.database}' .* is not empty"):
        build_plan(ctx, RestorePostgresRequest(target_database=busy.database), RestoreEnv(project))


def test_dry_run_shows_the_plan_and_creates_nothing(project: Path) -> None:
    ctx, manifests = seeded_backups(project, count=1)
    status, out = run(
        ctx, project, RestorePostgresRequest(target_database="dry_target"), RunOptions(dry_run=True)
    )
    assert status is Status.DRY_RUN
    assert "create database 'dry_target'" in out and manifests[0].backup_id in out
    assert not database_exists(ctx, "dry_target")


def test_selective_restore_of_one_table(project: Path) -> None:
    ctx, _manifests = seeded_backups(project, count=1)
    status, out = run(
        ctx,
        project,
        RestorePostgresRequest(target_database="only_strategies", tables=["strategies"]),
        RunOptions(yes=True),
    )
    assert status is Status.SUCCEEDED, out
    target = postgres_source(ctx, "trading-db", "only_strategies")
    with psycopg.connect(target.conninfo()) as connection:
        tables = {
            r[0]
            for r in connection.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
            ).fetchall()
        }
    assert tables == {"strategies"}


def test_restore_interrupted_half_way_then_resumed(project: Path) -> None:
    """SIGINT while pg_restore streams; --resume finishes without redoing finished steps."""
    ctx, _manifests = seeded_backups(project, count=1)
    script = f"""
import io, os, signal, sys
from pathlib import Path
from drkit.context import OpsContext
from drkit.ops.restore_postgres import RestorePostgresRequest, build_plan
from drkit.ops.run import RunOptions, run_plan
from drkit.ops.verbs import RestoreEnv
import drkit.restore.postgres as restore
real = restore.raw_chunks
def interrupted(store, item):  # Ctrl-C after pg_restore got the first part of the dump
    chunks = real(store, item)
    yield next(chunks)
    raise KeyboardInterrupt
restore.raw_chunks = interrupted
project = Path({str(project)!r})
ctx = OpsContext.load("local", project_dir=project)
request = RestorePostgresRequest(target_database="resumed_target")
plan, _ = build_plan(ctx, request, RestoreEnv(project))
report = run_plan(ctx, plan, RunOptions(yes=True, resume=None), project, sys.stdout, "r")
print("RUN_ID", report.run_id, report.status.value)
sys.exit(report.exit_code)
"""
    first = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, check=False
    )
    assert first.returncode == 130, first.stdout + first.stderr
    run_id = first.stdout.split("RUN_ID ")[1].split()[0]
    target = postgres_source(ctx, "trading-db", "resumed_target")
    with psycopg.connect(target.conninfo()) as connection:  # the transaction rolled back
        assert connection.execute(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
        ).fetchone() == (0,)

    out = io.StringIO()
    plan, _ = build_plan(
        ctx, RestorePostgresRequest(target_database="resumed_target"), RestoreEnv(project)
    )
    report = run_plan(ctx, plan, RunOptions(yes=True, resume=run_id), project, out, "r")
    assert report.status is Status.SUCCEEDED, out.getvalue()
    outcomes = {s.id: s.outcome for s in report.steps}
    assert outcomes["create-database.resumed_target"] == "resumed"
    assert outcomes["restore.trading-db"] == "done"
    assert table_digests(target.conninfo()) == table_digests(
        postgres_source(ctx, "trading-db").conninfo()
    )


def test_the_invoke_task_end_to_end(project: Path) -> None:
    _ctx, _manifests = seeded_backups(project, count=1)
    (project / "tasks.py").write_text(
        (ROOT / "tasks.py")
        .read_text()
        .replace("ROOT = Path(__file__).resolve().parent", f"ROOT = Path({str(project)!r})")
    )
    command = [
        sys.executable,
        "-m",
        "invoke",
        "restore.postgres",
        "--stack",
        "local",
        "--target-database",
        "via_invoke",
        "--yes",
    ]
    result = subprocess.run(command, capture_output=True, text=True, cwd=project, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "succeeded: restore postgres trading-db" in result.stdout
    refused = subprocess.run(
        [*command[:-3], "--backup", "nope"],
        capture_output=True,
        text=True,
        cwd=project,
        check=False,
    )
    assert refused.returncode == 2
    assert "error: backup id 'nope' is malformed" in refused.stderr


def test_a_resumed_restore_of_the_newest_backup_keeps_the_first_runs_backup(
    project: Path,
) -> None:
    """Issue 15: ``--resume`` restores what the killed run chose. The first ``invoke
    restore.postgres`` (the newest backup, the default target) is killed as its restore step
    starts; a newer backup with one more order is taken; the resumed run restores the first
    run's backup into the first run's database, not the newer one."""
    ctx, [first] = seeded_backups(project, count=1)
    source = postgres_source(ctx, "trading-db")
    (project / "tasks.py").write_text(
        (ROOT / "tasks.py")
        .read_text()
        .replace("ROOT = Path(__file__).resolve().parent", f"ROOT = Path({str(project)!r})")
    )
    env = {k: v for k, v in os.environ.items() if k != "DRKIT_DEBUG"}
    killed = subprocess.run(
        [sys.executable, "-m", "invoke", "restore.postgres", "--yes"],
        capture_output=True,
        text=True,
        cwd=project,
        env=env | {killpoints.ENV: "before:restore.trading-db"},
        check=False,
    )
    assert killed.returncode == -9, killed.stdout + killed.stderr
    [journal] = (project / ".drkit" / "journal").glob("*.jsonl")
    with psycopg.connect(source.conninfo(), autocommit=True) as connection:
        connection.execute(
            "INSERT INTO orders (account_id, symbol, side, qty, status, placed_at)"
            " VALUES (1, 'AAPL', 'buy', 1, 'open', now())"
        )
    newer = backup_store(ctx, "trading-db", [])
    assert newer.counts["public.orders"] == first.counts["public.orders"] + 1

    spec = importlib.util.spec_from_file_location("resumed_tasks", project / "tasks.py")
    assert spec is not None and spec.loader is not None
    tasks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tasks)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        tasks.restore_postgres(Context(), resume=journal.stem, yes=True)

    assert "succeeded: restore postgres trading-db" in out.getvalue()
    assert first.backup_id in out.getvalue() and newer.backup_id not in out.getvalue()
    database = f"{source.database}_restored_{first.recovery_point.astimezone(UTC):%Y%m%d%H%M}"
    target = postgres_source(ctx, "trading-db", database)
    assert count_rows(target, list(first.counts)) == first.counts
