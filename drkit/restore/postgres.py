"""Restore a PostgreSQL backup with ``pg_restore`` fed from the vault as a stream.

A restore is the database with its privileges: owners, grants, default privileges, comments,
large objects, materialized views (refreshed from the restored tables), sequences with their
state, partitions. Before anything is touched, the target server must run the backup's major
version or a newer one, and have every role the backup's objects reference (``missing_roles``);
``create_roles`` creates the missing ones without a password. ``privileges=False`` is the
explicit ``--no-privileges`` choice: no owner and no grant restored, everything owned by the
restoring user. ``compare_restored`` then compares the restored database with what the backup
recorded in its snapshot (``drkit.pg_exact``) and names the first difference.
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import psycopg
from psycopg import sql

from drkit import killpoints, pg_exact
from drkit.backup.manifest import Manifest
from drkit.backup.postgres import PostgresSource, postgres_binary
from drkit.restore.postgres_parallel import is_parallel, restore_parallel
from drkit.restore.stream import raw_chunks
from drkit.storage.objectstore import ObjectStore


class TargetNotEmpty(RuntimeError):
    """The target database has tables; restoring over them needs ``--force``."""


class MissingRoles(ValueError):
    """The target cluster lacks roles the backup's objects reference."""


class OlderServer(ValueError):
    """The target server's major version is older than the backup's."""


def _major(version_num: int) -> int:
    return version_num // 10000 if version_num >= 100000 else version_num // 100


def backup_server_version(manifest: Manifest) -> tuple[int, str] | None:
    """(server_version_num, shown) the backup was taken from; older manifests: parsed from
    ``tool_versions.server`` ("15.4 (Debian ...)")."""
    shown = manifest.tool_versions.get("server", "")
    number = manifest.tool_versions.get("server_version_num", "")
    if number.isdigit():
        return int(number), shown.split(" ")[0] or number
    parts = shown.split(" ")[0].split(".")
    if not parts[0].isdigit():
        return None
    major = int(parts[0])
    minor = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
    return (major * 10000 + minor if major >= 10 else major * 10000), shown.split(" ")[0]


def check_target_server(
    manifest: Manifest, server: PostgresSource, privileges: bool = True, create_roles: bool = False
) -> list[str]:
    """Refuse a target server older than the backup's (``OlderServer``) or one without the
    roles the backup references (``MissingRoles``, unless ``create_roles``); without privileges,
    only the roles a policy or a user mapping names are needed. Returns the roles to create.
    Reads only."""
    with psycopg.connect(server.conninfo()) as connection:
        row = connection.execute(
            "SELECT current_setting('server_version_num')::int, current_setting('server_version')"
        ).fetchone()
        assert row is not None
        recorded = backup_server_version(manifest)
        if recorded is not None and _major(int(row[0])) < _major(recorded[0]):
            raise OlderServer(
                f"target server {server.host}:{server.port} runs PostgreSQL "
                f"{str(row[1]).split(' ')[0]}, older than the backup's {recorded[1]} (backup "
                f"{manifest.backup_id}): a dump loads into the same major version or a newer "
                f"one; restore into a PostgreSQL {_major(recorded[0])} or newer. Nothing was "
                "changed."
            )
        if not manifest.roles:
            return []
        if not privileges:
            return _needed_without_privileges(connection, manifest, server, create_roles)
        missing = pg_exact.missing_roles(connection, manifest.roles)
    if missing and not create_roles:
        raise MissingRoles(
            f"target cluster {server.host}:{server.port} lacks {len(missing)} role(s) that the "
            f"objects of backup {manifest.backup_id} reference: {', '.join(missing)}. Create "
            "them (pass --create-roles to create them without passwords), or restore without "
            "owners and grants with --no-privileges. Nothing was changed."
        )
    return missing


def _needed_without_privileges(
    connection: psycopg.Connection[tuple[object, ...]],
    manifest: Manifest,
    server: PostgresSource,
    create_roles: bool,
) -> list[str]:
    """``--no-privileges``: the roles a policy or a user mapping of the backup still names
    (``pg_exact.needed_without_privileges``) must exist, or be created (``create_roles``)."""
    roles = manifest.roles or []
    needed = pg_exact.needed_without_privileges(roles, manifest.checks)
    missing = pg_exact.missing_roles(connection, [r for r in roles if r["name"] in needed])
    if missing and not create_roles:
        named = "; ".join(f'"{name}" ({", ".join(needed[name])})' for name in missing)
        raise MissingRoles(
            f"target cluster {server.host}:{server.port} lacks {len(missing)} role(s) that "
            f"backup {manifest.backup_id} needs even with --no-privileges (pg_restore keeps the "
            f"roles a row-level security policy or a user mapping names): {named}. Pass "
            "--create-roles to create them without passwords. Nothing was changed."
        )
    return missing


def create_missing_roles(manifest: Manifest, server: PostgresSource, names: list[str]) -> None:
    with psycopg.connect(server.conninfo(), autocommit=True) as connection:
        still = pg_exact.missing_roles(
            connection, [r for r in manifest.roles or [] if r["name"] in names]
        )
        with connection.transaction():
            pg_exact.create_roles(connection, manifest.roles or [], still)


def compare_restored(
    manifest: Manifest,
    target: PostgresSource,
    tables: list[str] | None = None,
    privileges: bool = True,
) -> tuple[str | None, str]:
    """(the first difference between ``target`` and what the backup recorded, or None; what
    was compared). A backup made before fingerprints were recorded: (None, "not recorded")."""
    if not manifest.checks:
        return None, "schema fingerprint and content checksums not recorded (an older backup)"
    with psycopg.connect(target.conninfo()) as connection:
        return pg_exact.compare(manifest.checks, connection, tables, privileges)


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
    privileges: bool = True,
    create_roles: bool = False,
    jobs: int = 1,
) -> PostgresRestoreResult:
    """Stream the dump into ``pg_restore``; ``tables`` restores only those (schema.table).
    ``privileges``: owners and grants too (the target server needs the backup's roles:
    ``create_roles`` creates those it lacks, without passwords). A format-2 backup (parallel,
    ``drkit.restore.postgres_parallel``) restores ``jobs`` at a time into an empty database."""
    missing = check_target_server(manifest, target, privileges, create_roles)
    parallel = is_parallel(manifest)
    ensure_empty(target, force and not parallel)
    if missing:
        create_missing_roles(manifest, target, missing)
    if parallel:
        restore_parallel(manifest, store, target, jobs, tables, progress, privileges)
        return _result(manifest, target, tables)
    dump = next(item for item in manifest.objects if item.name == "database.dump")
    command = [postgres_binary("pg_restore"), "--exit-on-error"]
    if not privileges:
        command += ["--no-owner", "--no-privileges"]
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
    return _result(manifest, target, tables)


def _result(
    manifest: Manifest, target: PostgresSource, tables: list[str] | None
) -> PostgresRestoreResult:
    restored = [
        t for t in manifest.counts if not tables or t in tables or t.split(".")[1] in tables
    ]
    return PostgresRestoreResult(target.database, restored, count_rows(target, restored))
