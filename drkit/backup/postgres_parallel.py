"""PostgreSQL in parallel inside one snapshot: backup format 2 (``--jobs N``).

One connection (the coordinator) opens a REPEATABLE READ transaction, exports its snapshot, and
at once takes an ACCESS SHARE lock on every table whose data it dumps, as ``pg_dump -j``'s leader
does: from then on a ``DROP TABLE`` (or any ACCESS EXCLUSIVE lock) from another session waits for
the backup, and the snapshot still holds the table's rows. It holds the transaction open for the
run and records there what format 1 records (``drkit.backup.postgres``: the snapshot's time and
WAL position, the roles, the schema fingerprint, the content checksums, the row counts; the
sequences before and after).

Then, every stream its own compressed, checksummed object of the backup (``BackupSession``):

1. ``schema.dump``: ``pg_dump --snapshot=<id> --exclude-table-data=<each table>`` in custom
   format, the pre-data and post-data sections with the sequences' values, the materialized
   views' refresh and the large objects (the data section without any table's rows). Several
   ``pg_dump`` runs would each lock every table; this one runs first, alone, while no other
   session waits for a lock it needs.
2. ``table-NNNN.copy``: each table's rows (a partition is a table; a partitioned parent has none),
   ``COPY <table> (<its stored columns>) TO STDOUT`` in text format, largest table first, N at a
   time, each on a worker connection that imported the snapshot (``SET TRANSACTION SNAPSHOT``).
   A worker that cannot take the table's lock at once (``NOWAIT``: another session queued an
   ACCESS EXCLUSIVE lock behind the coordinator's) hands the table to the coordinator, which
   holds the lock already and dumps it from the same snapshot.

The manifest's ``format_version`` is 2 and its ``consistent_point`` lists the layout (which
object holds which table, with its columns and the encoding); ``drkit.restore.postgres_parallel``
restores it. Connections: the coordinator and at most N workers (``drkit.pg_jobs``).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from drkit import pg_exact
from drkit.backup.child import ChildStream
from drkit.backup.engine import BackupSession, Capture
from drkit.backup.postgres import (
    CHUNK,
    PostgresSource,
    _deadline,
    _RowCounter,
    _sever,
    postgres_binary,
    tool_version,
)
from drkit.bounds import IoBounds, io_bounds

FORMAT = 2
SCHEMA_OBJECT = "schema.dump"
SCHEMA_CONTENT = (
    "pg_dump custom format (--format=custom --compress=0 --exclude-table-data=<each table>): "
    "pre-data, post-data, sequence values, materialized views and large objects"
)
APPLICATION = "drkit backup"

Connection = psycopg.Connection[tuple[Any, ...]]

SESSION_SETTINGS = (
    "SET DateStyle = ISO; SET IntervalStyle = postgres; SET extra_float_digits = 3;"
    " SET row_security = off; SET statement_timeout = 0"
)
"""What ``pg_dump`` sets on its connections: the text of every value reads back the same."""


@dataclass(frozen=True)
class TableData:
    """One table whose rows are one object of the backup."""

    schema: str
    name: str
    columns: list[str]
    size: int

    @property
    def pattern(self) -> str:
        """Exactly this table as a ``pg_dump`` pattern (inside double quotes nothing is special)."""
        return '"{}"."{}"'.format(self.schema.replace('"', '""'), self.name.replace('"', '""'))

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"

    def copy_to(self) -> sql.Composed:
        return copy_statement(self.schema, self.name, self.columns, "TO STDOUT")


def copy_statement(schema: str, name: str, columns: list[str], direction: str) -> sql.Composed:
    """``COPY schema.name (columns) <direction>``; a table without columns has no list."""
    listed = (
        sql.SQL(" ({})").format(sql.SQL(", ").join(sql.Identifier(c) for c in columns))
        if columns
        else sql.SQL("")
    )
    return sql.SQL("COPY {}.{}{} {}").format(
        sql.Identifier(schema), sql.Identifier(name), listed, sql.SQL(direction)
    )


def data_tables(connection: Connection) -> list[TableData]:
    """Every table whose rows ``pg_dump`` dumps (plain tables and partitions, unlogged ones too;
    no extension member, no temporary table), largest first, with its stored columns."""
    rows = connection.execute(
        "SELECT n.nspname, c.relname, pg_relation_size(c.oid),"
        " array(SELECT a.attname FROM pg_attribute a WHERE a.attrelid = c.oid"
        " AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = '' ORDER BY a.attnum)"
        " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE c.relkind = 'r' AND c.relpersistence <> 't' AND "
        + pg_exact.USER_SCHEMA.format(n="n")
        + " AND "
        + pg_exact.not_extension_member("pg_class", "c.oid")
        + " ORDER BY 3 DESC, 1, 2"
    ).fetchall()
    return [TableData(str(r[0]), str(r[1]), [str(c) for c in r[3]], int(r[2])) for r in rows]


@dataclass
class ParallelPostgresHandler:
    """Backs up one database N streams at a time (format 2)."""

    source: PostgresSource
    jobs: int
    after_schema: Callable[[], None] | None = None
    """Called once the schema is dumped, before any table's rows: the tests drop a table here."""
    kind: str = "postgres"
    by_coordinator: list[str] = field(default_factory=list)
    """The tables whose worker could not lock them at once, dumped by the coordinator."""

    def backup(self, session: BackupSession) -> Capture:
        bounds = io_bounds()
        connection = psycopg.connect(self.source.conninfo(), application_name=APPLICATION)
        counter: _RowCounter | None = None
        try:
            with _deadline(connection, bounds.timeout, "exporting the snapshot"):
                connection.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                row = connection.execute(
                    "SELECT pg_export_snapshot(), clock_timestamp(),"
                    " CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn()"
                    " ELSE pg_current_wal_lsn() END::text,"
                    " current_setting('server_version'), txid_current_snapshot()::text,"
                    " current_setting('server_version_num'), current_setting('server_encoding')"
                ).fetchone()
                assert row is not None
                tables = data_tables(connection)
                connection.execute(f"SET lock_timeout = {int(bounds.stall * 1000)}")
                for table in tables:
                    connection.execute(
                        sql.SQL("LOCK TABLE {}.{} IN ACCESS SHARE MODE").format(
                            sql.Identifier(table.schema), sql.Identifier(table.name)
                        )
                    )
                connection.execute("SET lock_timeout = 0")
                pg_exact.apply_settings(connection)
                # A table it dumps for a worker reads as on the workers (below): every row, in
                # the server's encoding, or an error (never rows a policy would hide).
                connection.execute("SET row_security = off")
                connection.execute(
                    sql.SQL("SET client_encoding = {}").format(sql.Literal(str(row[6])))
                )
                sequences_before = pg_exact.sequence_states(connection)
            snapshot, snapshot_time, lsn, server_version, txid_snapshot, version_num, encoding = row
            counter = _RowCounter(connection, pg_exact.max_checksum_bytes())
            counter.start()
            binary = postgres_binary("pg_dump")
            session.write_stream(
                SCHEMA_OBJECT,
                self._schema(binary, str(snapshot), tables, bounds),
                content=SCHEMA_CONTENT,
            )
            if self.after_schema is not None:
                self.after_schema()
            objects = self._tables(session, connection, str(snapshot), tables, str(encoding))
            counts = counter.result(bounds.stall)
            with _deadline(connection, bounds.timeout, "reading the sequences after the dump"):
                sequences_after = pg_exact.sequence_states(connection)
        except BaseException:
            _sever(connection)
            if counter is not None:
                counter.join(bounds.grace)
            if counter is None or not counter.is_alive():
                connection.close()
            raise
        connection.close()
        layout = [
            {"table": t.qualified, "schema": t.schema, "name": t.name, "columns": t.columns}
            | {"object": objects[t.qualified]}
            for t in sorted(tables, key=lambda t: (t.schema, t.name))
        ]
        return Capture(
            source={
                "host": self.source.host,
                "port": self.source.port,
                "database": self.source.database,
            },
            tool_versions={
                "pg_dump": tool_version(binary),
                "server": str(server_version),
                "server_version_num": str(version_num),
            },
            consistent_point={
                "snapshot_time": snapshot_time.isoformat(),
                "lsn": lsn,
                "txid_snapshot": txid_snapshot,
                "schema_object": SCHEMA_OBJECT,
                "encoding": str(encoding),
                "jobs": self.jobs,
                "tables": layout,
            },
            counts=counts,
            roles=counter.roles,
            checks=counter.checks
            | {"sequences": pg_exact.sequence_record(sequences_before, sequences_after)},
            format_version=FORMAT,
        )

    def _schema(
        self, binary: str, snapshot: str, tables: list[TableData], bounds: IoBounds
    ) -> Iterator[bytes]:
        """Everything but the rows of ``tables``: each is named exactly (a pattern such as
        ``*.*`` would leave out the materialized views' data and the sequences' values too)."""
        command = [
            binary,
            "--format=custom",
            "--compress=0",
            f"--snapshot={snapshot}",
            *(f"--exclude-table-data={t.pattern}" for t in tables),
            f"--lock-wait-timeout={int(bounds.stall * 1000)}",
            "--no-password",
            self.source.database,
        ]
        child = ChildStream("pg_dump", command, self.source.environment(), bounds, CHUNK)
        yield from child.chunks()
        if child.returncode != 0:
            raise RuntimeError(f"pg_dump exited with {child.returncode}: {child.stderr[-2000:]}")

    def _tables(
        self,
        session: BackupSession,
        coordinator: Connection,
        snapshot: str,
        tables: list[TableData],
        encoding: str,
    ) -> dict[str, str]:
        """Each table's rows as its own object, ``jobs`` at a time; {table: object name}."""
        names = {t.qualified: f"table-{i:04d}.copy" for i, t in enumerate(tables, 1)}
        # One stream: zstd's own workers, as format 1. Several: each compresses on its thread
        # (zstd releases the GIL), without a worker pool and its buffers per stream.
        threads = None if self.jobs == 1 else 0
        pending: queue.SimpleQueue[TableData] = queue.SimpleQueue()
        for table in tables:
            pending.put(table)
        opened: list[Connection] = []
        guard = threading.Lock()
        stop = threading.Event()

        def content(table: TableData) -> str:
            return f"COPY {table.qualified} TO STDOUT (text format, {encoding})"

        def work() -> None:
            connection: Connection | None = None
            try:
                while not stop.is_set():
                    try:
                        table = pending.get_nowait()
                    except queue.Empty:
                        return
                    if connection is None:
                        connection = self._worker(snapshot, encoding)
                        with guard:
                            opened.append(connection)
                    use = connection
                    if not _lock_now(connection, table):
                        use = coordinator
                        with guard:
                            self.by_coordinator.append(table.qualified)
                    session.write_stream(
                        names[table.qualified],
                        _copy_out(use, table),
                        content=content(table),
                        zstd_threads=threads,
                    )
            except BaseException:
                stop.set()
                raise
            finally:
                if connection is not None:
                    connection.close()

        with ThreadPoolExecutor(self.jobs, thread_name_prefix="pg-table") as pool:
            futures: list[Future[None]] = [pool.submit(work) for _ in range(self.jobs)]
            done, _ = wait(futures, return_when=FIRST_EXCEPTION)
            if any(f.exception() is not None for f in done):
                stop.set()
                with guard:
                    for connection in opened:
                        _sever(connection)
            for future in futures:
                future.result()
        return names

    def _worker(self, snapshot: str, encoding: str) -> Connection:
        connection = psycopg.connect(self.source.conninfo(), application_name=APPLICATION)
        connection.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        connection.execute(sql.SQL("SET TRANSACTION SNAPSHOT {}").format(sql.Literal(snapshot)))
        connection.execute(SESSION_SETTINGS)
        connection.execute(sql.SQL("SET client_encoding = {}").format(sql.Literal(encoding)))
        return connection


def _lock_now(connection: Connection, table: TableData) -> bool:
    """The table's ACCESS SHARE lock on ``connection`` without waiting; False when another
    session's lock request is queued (the coordinator holds the lock and dumps it instead)."""
    try:
        with connection.transaction():  # a savepoint: a refused lock leaves the snapshot usable
            connection.execute(
                sql.SQL("LOCK TABLE {}.{} IN ACCESS SHARE MODE NOWAIT").format(
                    sql.Identifier(table.schema), sql.Identifier(table.name)
                )
            )
    except psycopg.errors.LockNotAvailable:
        return False
    return True


def _copy_out(connection: Connection, table: TableData) -> Iterator[bytes]:
    """The table's rows in COPY text format, in pieces of about ``CHUNK`` bytes."""
    buffer = bytearray()
    with connection.cursor() as cursor, cursor.copy(table.copy_to()) as copy:
        for data in copy:
            buffer += data
            if len(buffer) >= CHUNK:
                yield bytes(buffer)
                buffer.clear()
    if buffer:
        yield bytes(buffer)
