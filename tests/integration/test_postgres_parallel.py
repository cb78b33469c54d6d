"""Issue 21, item 1: PostgreSQL backed up and restored N jobs at a time inside one snapshot.

The tricky dataset (``pg_tricky``) goes through ``backup.store --jobs 2`` (format 2: the schema
and each table's rows as separate objects) and ``restore.postgres --jobs 2``, and comes back as a
serial restore would: every object with its definition and privileges, every row, every
sequence. A format-1 backup still restores. A table dropped from another session after the
snapshot's export is still dumped from the snapshot. ``--jobs 0`` and more jobs than the server's
free connections are refused (exit 2) naming the limit, with nothing changed. A restore killed
part-way resumes from empty in the database it created."""

from __future__ import annotations

import io
import threading
import time
from pathlib import Path

import psycopg
import pytest

from drkit.__main__ import main as drkit_main
from drkit.backup.engine import run_backup
from drkit.backup.postgres_parallel import SCHEMA_OBJECT, ParallelPostgresHandler
from drkit.backups import backup_store
from drkit.context import OpsContext
from drkit.endpoints import postgres_source
from drkit.ops.executor import Status
from drkit.ops.restore_postgres import RestorePostgresRequest, build_plan
from drkit.ops.run import RunOptions, run_plan
from drkit.ops.verbs import RestoreEnv
from drkit.ops.verify import VerifyRequest, exit_code, run_verify
from drkit.pg_jobs import JobsRefused, connection_room
from drkit.recovery import BackupIndex
from tests.integration.pg_tricky import app_role, create_tricky_dataset
from tests.integration.test_reliability_restores import (
    KILLED,
    invoke,
    newest_run,
    resume_in_process,
)
from tests.integration.test_restore_postgres_exact import ROOT, snapshot

pytestmark = pytest.mark.integration


def restore(ctx: OpsContext, project: Path, request: RestorePostgresRequest) -> tuple[Status, str]:
    out = io.StringIO()
    plan, _ = build_plan(ctx, request, RestoreEnv(project))
    report = run_plan(ctx, plan, RunOptions(yes=True), project, out, "restore-postgres")
    return report.status, out.getvalue()


def test_format_2_backup_and_restore_equal_the_source_exactly(project: Path) -> None:
    ctx = OpsContext.load("local", project_dir=project)
    source = postgres_source(ctx, "trading-db")
    create_tricky_dataset(source.conninfo(), app_role())
    with psycopg.connect(source.conninfo(), autocommit=True) as connection:
        connection.execute(
            "CREATE TABLE wide AS SELECT g AS id, md5(g::text) AS note, now() AS at"
            " FROM generate_series(1, 20000) g"
        )
        connection.execute("CREATE TABLE no_columns ()")  # COPY without a column list
        connection.execute("INSERT INTO no_columns SELECT FROM generate_series(1, 3)")
    manifest = backup_store(ctx, "trading-db", [], jobs="2")
    assert manifest.format_version == 2
    layout = manifest.consistent_point["tables"]
    names = {entry["table"] for entry in layout}
    # every table with rows, partitions one by one (their parent has none of its own)
    assert {"odd schema.order items", "odd schema.events 2025", "public.wide"} <= names
    assert "odd schema.events" not in names
    objects = {item.name: item for item in manifest.objects}
    assert SCHEMA_OBJECT in objects and "database.dump" not in objects
    for entry in layout:
        item = objects[entry["object"]]
        assert item.compression == "zstd" and len(item.sha256) == 64
        assert len(item.fingerprints) == 2  # the vault and the mirror, each its own copy
    assert objects[next(e["object"] for e in layout if e["table"] == "public.wide")].raw_size > (
        20000 * 40
    )
    assert manifest.counts["public.wide"] == 20000
    assert manifest.counts["public.no_columns"] == 3
    expected = snapshot(source)

    status, out = restore(
        ctx, project, RestorePostgresRequest(target_database="par_exact", jobs="2")
    )
    assert status is Status.SUCCEEDED, out
    assert "2 job(s) in parallel (format 2)" in out
    assert "the content of 7 tables, the state of" in out, out
    assert snapshot(postgres_source(ctx, "trading-db", "par_exact")) == expected

    # from the mirror, with the jobs the machine and the server allow
    status, out = restore(
        ctx, project, RestorePostgresRequest(target_database="par_mirror", source="mirror")
    )
    assert status is Status.SUCCEEDED, out
    assert snapshot(postgres_source(ctx, "trading-db", "par_mirror")) == expected


def test_a_format_1_backup_still_restores_with_jobs_given(project: Path) -> None:
    ctx = OpsContext.load("local", project_dir=project)
    source = postgres_source(ctx, "trading-db")
    create_tricky_dataset(source.conninfo(), app_role())
    manifest = backup_store(ctx, "trading-db", [])
    assert manifest.format_version == 1
    assert [item.name for item in manifest.objects] == ["database.dump"]
    expected = snapshot(source)
    status, out = restore(ctx, project, RestorePostgresRequest(target_database="f1", jobs="4"))
    assert status is Status.SUCCEEDED, out
    assert "format 2" not in out
    assert snapshot(postgres_source(ctx, "trading-db", "f1")) == expected


def test_a_table_dropped_after_the_export_still_dumps_from_the_snapshot(project: Path) -> None:
    ctx = OpsContext.load("local", project_dir=project)
    source = postgres_source(ctx, "trading-db")
    with psycopg.connect(source.conninfo(), autocommit=True) as connection:
        connection.execute(
            "CREATE TABLE doomed AS SELECT g AS id, repeat('x', 50) AS pad"
            " FROM generate_series(1, 5000) g"
        )
        connection.execute("CREATE TABLE kept AS SELECT g AS id FROM generate_series(1, 10) g")
    dropped = threading.Event()
    errors: list[BaseException] = []

    def drop() -> None:
        try:
            with psycopg.connect(source.conninfo(), autocommit=True) as other:
                other.execute("DROP TABLE doomed")
            dropped.set()
        except BaseException as error:
            errors.append(error)

    def after_schema() -> None:
        """The schema is dumped, no table's rows yet: another session drops a table."""
        threading.Thread(target=drop, daemon=True).start()
        with psycopg.connect(source.conninfo(), autocommit=True) as watcher:
            for _ in range(200):  # the DROP is issued and queued for its lock
                row = watcher.execute(
                    "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation"
                    " WHERE c.relname = 'doomed' AND NOT l.granted"
                    " AND l.mode = 'AccessExclusiveLock'"
                ).fetchone()
                if row and row[0]:
                    return
                time.sleep(0.05)
        raise AssertionError("the DROP TABLE never queued")

    config = ctx.store_config("trading-db")
    handler = ParallelPostgresHandler(source, jobs=2, after_schema=after_schema)
    manifest = run_backup(
        "trading-db", config.data_class, handler, ctx.destinations(config.data_class)
    )
    assert manifest.counts["public.doomed"] == 5000
    assert handler.by_coordinator == ["public.doomed"]  # its worker could not lock it: queued DROP
    assert dropped.wait(30) and not errors, errors  # the DROP went through once the backup ended
    with psycopg.connect(source.conninfo()) as connection:
        row = connection.execute("SELECT to_regclass('public.doomed')").fetchone()
        assert row is not None and row[0] is None

    request = RestorePostgresRequest(target_database="after_drop", backup=manifest.backup_id)
    status, out = restore(ctx, project, request)
    assert status is Status.SUCCEEDED, out
    restored = postgres_source(ctx, "trading-db", "after_drop")
    with psycopg.connect(restored.conninfo()) as connection:
        row = connection.execute("SELECT count(*), sum(length(pad)) FROM doomed").fetchone()
        assert row == (5000, 250000)


def test_jobs_zero_and_too_many_are_refused_naming_the_limit(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ctx = OpsContext.load("local", project_dir=project)
    source = postgres_source(ctx, "trading-db")
    index = BackupIndex(ctx.config, ctx.vault())
    room = connection_room(source)
    base = ["backup", "trading-db", "--stack", "local", "--project-dir", str(project)]

    assert drkit_main([*base, "--jobs", "0"]) == 2
    assert "--jobs 0: at least 1 job is needed" in capsys.readouterr().err
    too_many = str(room.max_connections + 5)
    assert drkit_main([*base, "--jobs", too_many]) == 2
    err = capsys.readouterr().err
    assert f"--jobs {too_many}: PostgreSQL on {source.host}:{source.port}" in err, err
    assert f"max_connections {room.max_connections}" in err and "at most" in err
    with pytest.raises(Exception, match="no backup"):
        index.latest("trading-db")  # nothing was written

    assert drkit_main([*base, "--jobs", "1"]) == 0  # the CronJob's entrypoint, in parallel
    assert "parallel: --jobs 1" in capsys.readouterr().out
    assert index.manifest(index.latest("trading-db")).format_version == 2
    for jobs in ("0", too_many):
        with pytest.raises(JobsRefused, match=r"--jobs (0|\d+): .*(at least 1|max_connections)"):
            build_plan(
                ctx,
                RestorePostgresRequest(target_database="never_made", jobs=jobs),
                RestoreEnv(project),
            )
    with psycopg.connect(source.conninfo("postgres")) as connection:
        row = connection.execute("SELECT 1 FROM pg_database WHERE datname = 'never_made'")
        assert row.fetchone() is None


@pytest.mark.parametrize("point", ["postgres.pre-data", "postgres.table-data"])
def test_a_killed_format_2_restore_resumes_from_empty_in_its_own_database(
    project: Path, point: str
) -> None:
    """Killed (SIGKILL) after pre-data, or with every table loaded but no index yet: the resumed
    run drops what it had loaded in the database it created, and restores it exactly."""
    ctx = OpsContext.load("local", project_dir=project)
    source = postgres_source(ctx, "trading-db")
    create_tricky_dataset(source.conninfo(), app_role())
    backup_store(ctx, "trading-db", [], jobs="2")
    expected = snapshot(source)
    (project / "tasks.py").write_text(
        (ROOT / "tasks.py")
        .read_text()
        .replace("ROOT = Path(__file__).resolve().parent", f"ROOT = Path({str(project)!r})")
    )
    database = "killed_" + point.replace(".", "_").replace("-", "_")
    arguments = ["restore.postgres", "--target-database", database, "--jobs", "2", "--yes"]
    killed = invoke(project, *arguments, kill_at=point)
    assert killed.returncode == KILLED, killed.stdout + killed.stderr
    target = postgres_source(ctx, "trading-db", database)
    with psycopg.connect(target.conninfo()) as connection:  # the kill left a partial restore
        row = connection.execute("SELECT count(*) FROM pg_indexes WHERE schemaname <> 'pg_catalog'")
        assert row.fetchone() == (0,)

    out = resume_in_process(project, "restore_postgres", newest_run(project))

    assert "succeeded: restore postgres trading-db" in out, out
    assert f"dropped what the killed run had loaded into {database!r}" in out
    assert snapshot(target) == expected


def test_verify_checks_and_test_restores_a_format_2_backup(project: Path) -> None:
    ctx = OpsContext.load("local", project_dir=project)
    source = postgres_source(ctx, "trading-db")
    create_tricky_dataset(source.conninfo(), app_role())
    manifest = backup_store(ctx, "trading-db", [], jobs="2")
    assert manifest.format_version == 2
    out = io.StringIO()
    verification, report = run_verify(
        ctx, VerifyRequest(stores=["trading-db"]), RunOptions(yes=True), project, out
    )
    assert exit_code(verification, report) == 0, out.getvalue()
    [check] = [c for c in report.checks if c.check == "test-restore"]
    assert "schema objects, the content of 5 tables, the state of 3 sequences" in check.detail


def test_selective_restore_of_one_table_from_a_format_2_backup(project: Path) -> None:
    ctx = OpsContext.load("local", project_dir=project)
    source = postgres_source(ctx, "trading-db")
    with psycopg.connect(source.conninfo(), autocommit=True) as connection:
        connection.execute("CREATE TABLE picked AS SELECT g AS id FROM generate_series(1, 40) g")
        connection.execute("CREATE TABLE left_out AS SELECT g AS id FROM generate_series(1, 9) g")
    backup_store(ctx, "trading-db", [], jobs="2")
    request = RestorePostgresRequest(target_database="only_picked", tables=["picked"], jobs="2")
    status, out = restore(ctx, project, request)
    assert status is Status.SUCCEEDED, out
    target = postgres_source(ctx, "trading-db", "only_picked")
    with psycopg.connect(target.conninfo()) as connection:
        tables = connection.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
        ).fetchall()
        assert tables == [("picked",)]
        assert connection.execute("SELECT count(*) FROM picked").fetchone() == (40,)
