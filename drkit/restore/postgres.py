"""Restore a PostgreSQL backup with ``pg_restore`` fed from the vault as a stream."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import psycopg
from psycopg import sql

from drkit import killpoints
from drkit.backup.manifest import Manifest
from drkit.backup.postgres import PostgresSource, postgres_binary
from drkit.restore.stream import raw_chunks
from drkit.storage.objectstore import ObjectStore


class TargetNotEmpty(RuntimeError):
    """The target database has tables; restoring over them needs ``--force``."""


@dataclass(frozen=True)
class PostgresRestoreResult:
    database: str
    tables: list[str]
    counts: dict[str, int]


def user_tables(connection: psycopg.Connection[tuple[object, ...]]) -> list[str]:
    rows = connection.execute(
        "SELECT n.nspname || '.' || c.relname FROM pg_class c"
        " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'p')"
        " AND n.nspname NOT IN ('pg_catalog', 'information_schema')"
        " AND n.nspname NOT LIKE 'pg_toast%' ORDER BY 1"
    ).fetchall()
    return [str(row[0]) for row in rows]


def count_rows(target: PostgresSource, tables: list[str]) -> dict[str, int]:
    counts = {}
    with psycopg.connect(target.conninfo()) as connection:
        for name in tables:
            schema, _, table = name.partition(".")
            query = sql.SQL("SELECT count(*) FROM {}.{}").format(
                sql.Identifier(schema), sql.Identifier(table)
            )
            row = connection.execute(query).fetchone()
            counts[name] = int(row[0]) if row else 0
    return counts


def ensure_empty(target: PostgresSource, force: bool) -> None:
    with psycopg.connect(target.conninfo()) as connection:
        existing = user_tables(connection)
    if existing and not force:
        shown = ", ".join(existing[:5]) + (" ..." if len(existing) > 5 else "")
        raise TargetNotEmpty(
            f"target database {target.database!r} on {target.host}:{target.port} is not empty "
            f"({len(existing)} tables: {shown}); pass --force to restore over it"
        )


def end_orphaned_restores(target: PostgresSource, timeout: float = 30.0) -> int:
    """Terminate ``pg_restore`` sessions on the target database and wait until they are gone.

    A restore killed mid-stream leaves its ``pg_restore`` running: with its input cut it fails and
    its single transaction rolls back, or, if it had all its input, it commits. Either way the
    resumed run must not race it, so it ends it (a committed restore stays committed) and then
    looks at what is there. The target's restore lease keeps out any live run's ``pg_restore``.
    Returns how many sessions were ended."""
    query = (
        "SELECT pid FROM pg_stat_activity WHERE datname = %s AND application_name = 'pg_restore'"
        " AND pid <> pg_backend_pid()"
    )
    with psycopg.connect(target.conninfo("postgres"), autocommit=True) as connection:
        pids = [int(row[0]) for row in connection.execute(query, (target.database,)).fetchall()]
        for pid in pids:
            connection.execute("SELECT pg_terminate_backend(%s)", (pid,))
        deadline = time.monotonic() + timeout
        while connection.execute(query, (target.database,)).fetchone() is not None:
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"pg_restore sessions on {target.database!r} still there {timeout:.0f}s after"
                    " pg_terminate_backend"
                )
            time.sleep(0.1)
    return len(pids)


def restore_postgres(
    manifest: Manifest,
    store: ObjectStore,
    target: PostgresSource,
    tables: list[str] | None = None,
    force: bool = False,
    progress: Callable[[str, int], None] | None = None,
) -> PostgresRestoreResult:
    """Stream the dump into ``pg_restore``; ``tables`` restores only those (schema.table)."""
    ensure_empty(target, force)
    dump = next(item for item in manifest.objects if item.name == "database.dump")
    command = [postgres_binary("pg_restore"), "--no-owner", "--no-privileges", "--exit-on-error"]
    # A conninfo with only ``dbname``: pg_restore would read a bare value holding "=" or a URI
    # prefix as a connection string and connect elsewhere; this connects to exactly this name.
    dbname = psycopg.conninfo.make_conninfo(dbname=target.database)
    command += ["--dbname", dbname, "--single-transaction"]
    if force:
        command += ["--clean", "--if-exists"]
    for name in tables or []:
        schema, _, table = name.rpartition(".")
        command += (["--schema", schema] if schema else []) + ["--table", table]
    process = subprocess.Popen(
        command, stdin=subprocess.PIPE, stderr=subprocess.PIPE, env=target.environment()
    )
    assert process.stdin is not None and process.stderr is not None
    errors: list[bytes] = []
    drain = threading.Thread(target=lambda: errors.append(process.stderr.read()))  # type: ignore[union-attr]
    drain.start()
    try:
        written = 0
        for chunk in raw_chunks(store, dump):
            process.stdin.write(chunk)
            if not written:
                killpoints.reached("postgres.streaming")
            written += len(chunk)
            if progress is not None:
                progress(dump.name, written)
        process.stdin.close()
        killpoints.reached("postgres.sent")
    except BaseException:
        process.kill()
        process.wait()
        drain.join()
        raise
    returncode = process.wait()
    drain.join()
    if returncode != 0:
        message = b"".join(errors).decode(errors="replace").strip()
        raise RuntimeError(f"pg_restore into {target.database!r} exited {returncode}: {message}")
    restored = [
        t for t in manifest.counts if not tables or t in tables or t.split(".")[1] in tables
    ]
    return PostgresRestoreResult(target.database, restored, count_rows(target, restored))
