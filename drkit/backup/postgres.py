"""PostgreSQL: one ``pg_dump`` in custom format, consistent with a recorded snapshot and LSN.

A connection exports a REPEATABLE READ snapshot; ``pg_dump --snapshot`` dumps exactly that state,
and the same connection records the snapshot's time, its WAL position, every table's row count,
and what makes a restore checkable exactly (``drkit.pg_exact``): the roles the objects reference,
the schema fingerprint and each table's content checksum, all inside that snapshot, while the dump
streams; and each sequence's state before and after the dump (sequences are outside snapshots).
A dump that ends early (non-zero exit) fails the backup.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from drkit import pg_exact
from drkit.backup.child import ChildStream
from drkit.backup.engine import BackupSession, Capture
from drkit.bounds import IoBounds, io_bounds

CHUNK = 1024 * 1024
DUMP_CONTENT = "pg_dump custom format (--format=custom --compress=0)"


@dataclass(frozen=True)
class PostgresSource:
    host: str
    port: int
    database: str
    user: str
    password: str

    def conninfo(self, database: str | None = None) -> str:
        return psycopg.conninfo.make_conninfo(
            host=self.host,
            port=self.port,
            dbname=database or self.database,
            user=self.user,
            password=self.password,
            connect_timeout=10,
        )

    def environment(self) -> dict[str, str]:
        """libpq variables for pg_dump and pg_restore; the password never goes on a command line."""
        return {
            **os.environ,
            "PGHOST": self.host,
            "PGPORT": str(self.port),
            "PGUSER": self.user,
            "PGPASSWORD": self.password,
            "PGDATABASE": self.database,
            "PGCONNECT_TIMEOUT": "10",
        }


def postgres_binary(name: str) -> str:
    """The newest Debian PostgreSQL client tool (a newer pg_dump reads older servers)."""
    root = Path("/usr/lib/postgresql")
    versions = sorted(
        (p for p in root.glob("*/bin") if (p / name).exists()),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    return str(versions[-1] / name) if versions else name


def tool_version(binary: str) -> str:
    result = subprocess.run([binary, "--version"], capture_output=True, text=True, check=False)
    return result.stdout.strip() or result.stderr.strip()


@dataclass
class PostgresHandler:
    """Backs up one database."""

    source: PostgresSource
    kind: str = "postgres"
    jobs: int | None = None
    """None: one ``pg_dump`` stream (format 1); a number: that many streams inside one snapshot
    (format 2, ``drkit.backup.postgres_parallel``)."""

    def with_jobs(self, jobs: str) -> PostgresHandler:
        """This handler in parallel (``--jobs N`` or ``auto``): refuses ``0`` and more jobs than
        the server's free connections allow (``drkit.pg_jobs``), before anything is written."""
        from drkit.pg_jobs import resolve_jobs

        return PostgresHandler(self.source, jobs=resolve_jobs(self.source, jobs, 1, "backup"))

    def backup(self, session: BackupSession) -> Capture:
        if self.jobs is not None:
            from drkit.backup.postgres_parallel import ParallelPostgresHandler

            return ParallelPostgresHandler(self.source, self.jobs).backup(session)
        bounds = io_bounds()
        connection = psycopg.connect(self.source.conninfo())
        counter: _RowCounter | None = None
        try:
            with _deadline(connection, bounds.timeout, "exporting the snapshot"):
                connection.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                row = connection.execute(
                    "SELECT pg_export_snapshot(), clock_timestamp(),"
                    " CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn()"
                    " ELSE pg_current_wal_lsn() END::text,"
                    " current_setting('server_version'), txid_current_snapshot()::text,"
                    " current_setting('server_version_num')"
                ).fetchone()
                assert row is not None
                pg_exact.apply_settings(connection)
                sequences_before = pg_exact.sequence_states(connection)
            snapshot, snapshot_time, lsn, server_version, txid_snapshot, version_num = row
            counter = _RowCounter(connection, pg_exact.max_checksum_bytes())
            counter.start()
            binary = postgres_binary("pg_dump")
            dump = session.write_stream(
                "database.dump", self._dump(binary, snapshot, bounds), content=DUMP_CONTENT
            )
            counts = counter.result(bounds.stall)
            with _deadline(connection, bounds.timeout, "reading the sequences after the dump"):
                sequences_after = pg_exact.sequence_states(connection)
        except BaseException:
            # Whatever failed, the snapshot must not outlive the run: sever the connection
            # (no ROLLBACK, which a stalled path would never answer), so the server ends the
            # transaction, and a counter blocked on it wakes up.
            _sever(connection)
            if counter is not None:
                counter.join(bounds.grace)
            if counter is None or not counter.is_alive():
                connection.close()
            raise
        connection.close()  # read only: closing ends the snapshot's transaction
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
                "dump_object": dump.name,
            },
            counts=counts,
            roles=counter.roles,
            checks=counter.checks
            | {"sequences": pg_exact.sequence_record(sequences_before, sequences_after)},
        )

    def _dump(self, binary: str, snapshot: str, bounds: IoBounds) -> Iterator[bytes]:
        """pg_dump's output; pg_dump is ended however the stream stops (``ChildStream``)."""
        command = [
            binary,
            "--format=custom",
            "--compress=0",
            f"--snapshot={snapshot}",
            # Waiting for a lock is a stall too: give up after the stall timeout.
            f"--lock-wait-timeout={int(bounds.stall * 1000)}",
            "--no-password",
            self.source.database,
        ]
        child = ChildStream("pg_dump", command, self.source.environment(), bounds, CHUNK)
        yield from child.chunks()
        if child.returncode != 0:
            raise RuntimeError(f"pg_dump exited with {child.returncode}: {child.stderr[-2000:]}")


def _sever(connection: psycopg.Connection[tuple[object, ...]]) -> None:
    """Shut the connection's socket down, from any thread: a call blocked on it returns an
    error at once, and the server sees the connection end (where the path still carries it)."""
    with contextlib.suppress(Exception):
        fd = connection.pgconn.socket
        with socket.socket(fileno=os.dup(fd)) as sock:
            sock.shutdown(socket.SHUT_RDWR)


@contextlib.contextmanager
def _deadline(
    connection: psycopg.Connection[tuple[object, ...]], seconds: float, doing: str
) -> Iterator[None]:
    """libpq has no read timeout: a server that stops answering is cut off after ``seconds``."""
    timer = threading.Timer(seconds, _sever, args=(connection,))
    timer.daemon = True
    timer.start()
    try:
        yield
    except psycopg.OperationalError as error:
        if timer.is_alive():
            raise
        raise RuntimeError(
            f"PostgreSQL did not answer within {seconds:g}s (DRKIT_IO_TIMEOUT) {doing}"
        ) from error
    finally:
        timer.cancel()


class _RowCounter(threading.Thread):
    """Counts every user table's rows inside the exported snapshot while the dump runs, and
    records there the roles, the schema fingerprint and the content checksums."""

    def __init__(self, connection: psycopg.Connection[tuple[object, ...]], limit: int) -> None:
        super().__init__(name="row counts", daemon=True)
        self._connection = connection
        self._limit = limit
        self._counts: dict[str, int] = {}
        self._error: BaseException | None = None
        self.roles: list[dict[str, Any]] = []
        self.checks: dict[str, Any] = {}

    def run(self) -> None:
        try:
            self.roles = pg_exact.referenced_roles(self._connection)
            self.checks = pg_exact.record(self._connection, self._limit)
            checksums: dict[str, str | None] = self.checks["content"]["tables"]
            tables = self._connection.execute(
                "SELECT n.nspname, c.relname FROM pg_class c"
                " JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition"
                " AND n.nspname NOT IN ('pg_catalog', 'information_schema')"
                " AND n.nspname NOT LIKE 'pg_toast%' ORDER BY 1, 2"
            ).fetchall()
            for schema, table in tables:
                name = f"{schema}.{table}"
                checksum = checksums.get(name)
                if checksum is not None and ":" in checksum:  # rows:checksum, counted already
                    self._counts[name] = int(checksum.split(":")[0])
                    continue
                query = sql.SQL("SELECT count(*) FROM {}.{}").format(
                    sql.Identifier(str(schema)), sql.Identifier(str(table))
                )
                count = self._connection.execute(query).fetchone()
                self._counts[name] = int(str(count[0])) if count else 0
        except BaseException as error:
            self._error = error

    def result(self, timeout: float) -> dict[str, int]:
        """The counts; the dump has ended, so they get ``timeout`` more seconds at most."""
        self.join(timeout)
        if self.is_alive():
            raise RuntimeError(f"counting rows did not finish within {timeout:g}s of the dump")
        if self._error is not None:
            raise RuntimeError(f"counting rows failed: {self._error}") from self._error
        return self._counts
