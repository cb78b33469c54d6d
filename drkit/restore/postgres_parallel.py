"""Restore a format-2 PostgreSQL backup (``drkit.backup.postgres_parallel``) N jobs at a time.

1. pre-data: ``schema.dump`` streamed from the vault into ``pg_restore --section=pre-data
   --single-transaction`` (types, tables, functions, views; no index, no constraint but CHECK
   and NOT NULL, no trigger yet);
2. table data: each table's object streamed from the vault into ``COPY <table> (<columns>) FROM
   STDIN`` on a connection of its own, N at a time, each in its own transaction; nothing is
   spooled on local disk;
3. the rest of the data section: ``schema.dump`` again into ``pg_restore --section=data
   --single-transaction`` (the sequences' values and the large objects; it holds no table's rows);
4. post-data: indexes, constraints, triggers, rules, policies, materialized views' refresh with
   ``pg_restore --section=post-data -j N``. ``pg_restore -j`` needs a seekable archive, so this
   one object, ``schema.dump`` (the schema and the large objects, never a table's rows), is
   spooled to a temporary file, deleted when the restore ends.

Every object is SHA-256 checked as it streams (``drkit.restore.stream``); the result is what a
serial restore gives (the fingerprint, the privileges and the checksums of ``drkit.pg_exact``).
The COPY sessions are named ``pg_restore`` (``application_name``), so a resumed run ends what a
killed one left (``end_orphaned_restores``). Unlike format 1's single transaction, a kill leaves
part of the restore committed: the resumed run starts again from an empty database
(``drkit.ops.restore_postgres``). Test kill points (``drkit.killpoints``): ``postgres.pre-data``
(the schema before the data is in), ``postgres.table-data`` (every table's rows are in, no index
yet), ``postgres.sent`` (post-data done).
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg
from psycopg import sql

from drkit import killpoints
from drkit.backup.manifest import Manifest, StoredObject
from drkit.backup.postgres import PostgresSource, postgres_binary
from drkit.backup.postgres_parallel import copy_statement
from drkit.restore.stream import raw_chunks
from drkit.storage.objectstore import ObjectStore

Progress = Callable[[str, int], None]


def is_parallel(manifest: Manifest) -> bool:
    return manifest.format_version >= 2 and "tables" in manifest.consistent_point


def _object(manifest: Manifest, name: str) -> StoredObject:
    return next(item for item in manifest.objects if item.name == name)


def selected_layout(manifest: Manifest, tables: list[str] | None) -> list[dict[str, Any]]:
    """The layout entries of the tables to restore (all, or those ``--table`` names)."""
    layout: list[dict[str, Any]] = list(manifest.consistent_point["tables"])
    if not tables:
        return layout
    return [e for e in layout if e["table"] in tables or e["name"] in tables]


def pg_restore_command(
    target: PostgresSource, privileges: bool, tables: list[str] | None, section: str
) -> list[str]:
    command = [postgres_binary("pg_restore"), "--exit-on-error", f"--section={section}"]
    if not privileges:
        command += ["--no-owner", "--no-privileges"]
    dbname = psycopg.conninfo.make_conninfo(dbname=target.database)
    command += ["--dbname", dbname]
    for name in tables or []:
        schema, _, table = name.rpartition(".")
        command += (["--schema", schema] if schema else []) + ["--table", table]
    return command


def _run(command: list[str], target: PostgresSource, chunks: Iterable[bytes] | None) -> None:
    """``command`` fed ``chunks`` on stdin (or reading its own file); raises on a non-zero exit."""
    process = subprocess.Popen(
        command,
        stdin=subprocess.PIPE if chunks is not None else subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=target.environment(),
    )
    assert process.stderr is not None
    errors: list[bytes] = []
    drain = threading.Thread(target=lambda: errors.append(process.stderr.read()))  # type: ignore[union-attr]
    drain.start()
    try:
        if chunks is not None:
            assert process.stdin is not None
            for chunk in chunks:
                process.stdin.write(chunk)
            process.stdin.close()
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


def _copy_in(
    store: ObjectStore,
    item: StoredObject,
    entry: dict[str, Any],
    target: PostgresSource,
    encoding: str,
    progress: Progress | None,
) -> None:
    statement = copy_statement(entry["schema"], entry["name"], entry["columns"], "FROM STDIN")
    with psycopg.connect(target.conninfo(), application_name="pg_restore") as connection:
        connection.execute(sql.SQL("SET client_encoding = {}").format(sql.Literal(encoding)))
        connection.execute("SET DateStyle = ISO; SET IntervalStyle = postgres")
        connection.execute("SET row_security = off; SET synchronous_commit = off")
        with connection.cursor() as cursor, cursor.copy(statement) as copy:
            written = 0
            for chunk in raw_chunks(store, item):
                copy.write(chunk)
                written += len(chunk)
                if progress is not None:
                    progress(item.name, written)
        connection.commit()


def restore_parallel(
    manifest: Manifest,
    store: ObjectStore,
    target: PostgresSource,
    jobs: int,
    tables: list[str] | None = None,
    progress: Progress | None = None,
    privileges: bool = True,
) -> None:
    """Pre-data, the tables' rows ``jobs`` at a time, the rest of the data, then post-data with
    ``jobs`` workers, into ``target`` (empty: the caller checked it)."""
    schema = _object(manifest, manifest.consistent_point["schema_object"])
    encoding = str(manifest.consistent_point.get("encoding") or "UTF8")
    lock = threading.Lock()

    def shown(name: str, raw: int) -> None:
        if progress is not None:
            with lock:
                progress(name, raw)

    pre = [*pg_restore_command(target, privileges, tables, "pre-data"), "--single-transaction"]
    _run(pre, target, raw_chunks(store, schema))
    killpoints.reached("postgres.pre-data")
    layout = selected_layout(manifest, tables)
    with ThreadPoolExecutor(jobs, thread_name_prefix="pg-copy") as pool:
        futures = [
            pool.submit(_copy_in, store, _object(manifest, e["object"]), e, target, encoding, shown)
            for e in layout
        ]
        try:
            for future in futures:
                future.result()
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)  # no new table once one failed
            raise
    killpoints.reached("postgres.table-data")
    rest = [*pg_restore_command(target, privileges, tables, "data"), "--single-transaction"]
    _run(rest, target, raw_chunks(store, schema))
    with tempfile.TemporaryDirectory(prefix="drkit-post-data-") as folder:
        path = os.path.join(folder, "schema.dump")
        with open(path, "wb") as spool:
            for chunk in raw_chunks(store, schema):
                spool.write(chunk)
        post = [*pg_restore_command(target, privileges, tables, "post-data"), f"--jobs={jobs}"]
        _run([*post, path], target, None)
    killpoints.reached("postgres.sent")
