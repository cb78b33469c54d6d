"""PostgreSQL: one ``pg_dump`` in custom format, consistent with a recorded snapshot and LSN.

A connection exports a REPEATABLE READ snapshot; ``pg_dump --snapshot`` dumps exactly that state,
and the same connection records the snapshot's time, its WAL position and every table's row count
(for verify) while the dump streams. A dump that ends early (non-zero exit) fails the backup.
"""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

from drkit.backup.engine import BackupSession, Capture

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

    def backup(self, session: BackupSession) -> Capture:
        with psycopg.connect(self.source.conninfo()) as connection:
            connection.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            row = connection.execute(
                "SELECT pg_export_snapshot(), clock_timestamp(),"
                " CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn()"
                " ELSE pg_current_wal_lsn() END::text,"
                " current_setting('server_version'), txid_current_snapshot()::text"
            ).fetchone()
            assert row is not None
            snapshot, snapshot_time, lsn, server_version, txid_snapshot = row
            counter = _RowCounter(connection)
            counter.start()
            binary = postgres_binary("pg_dump")
            dump = session.write_stream(
                "database.dump", self._dump(binary, snapshot), content=DUMP_CONTENT
            )
            counts = counter.result()
        return Capture(
            source={
                "host": self.source.host,
                "port": self.source.port,
                "database": self.source.database,
            },
            tool_versions={"pg_dump": tool_version(binary), "server": str(server_version)},
            consistent_point={
                "snapshot_time": snapshot_time.isoformat(),
                "lsn": lsn,
                "txid_snapshot": txid_snapshot,
                "dump_object": dump.name,
            },
            counts=counts,
        )

    def _dump(self, binary: str, snapshot: str) -> Iterator[bytes]:
        command = [
            binary,
            "--format=custom",
            "--compress=0",
            f"--snapshot={snapshot}",
            "--no-password",
            self.source.database,
        ]
        process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=self.source.environment(),
        )
        assert process.stdout is not None and process.stderr is not None
        errors: list[bytes] = []
        drain = threading.Thread(target=lambda: errors.append(process.stderr.read()))  # type: ignore[union-attr]
        drain.start()
        try:
            while chunk := process.stdout.read(CHUNK):
                yield chunk
        finally:
            if process.poll() is None and process.stdout.closed is False:
                process.stdout.close()
            returncode = process.wait()
            drain.join()
        if returncode != 0:
            message = b"".join(errors).decode(errors="replace").strip()
            raise RuntimeError(f"pg_dump exited with {returncode}: {message}")


class _RowCounter(threading.Thread):
    """Counts every user table's rows inside the exported snapshot while the dump runs."""

    def __init__(self, connection: psycopg.Connection[tuple[object, ...]]) -> None:
        super().__init__(name="row counts", daemon=True)
        self._connection = connection
        self._counts: dict[str, int] = {}
        self._error: BaseException | None = None

    def run(self) -> None:
        try:
            tables = self._connection.execute(
                "SELECT n.nspname, c.relname FROM pg_class c"
                " JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition"
                " AND n.nspname NOT IN ('pg_catalog', 'information_schema')"
                " AND n.nspname NOT LIKE 'pg_toast%' ORDER BY 1, 2"
            ).fetchall()
            for schema, table in tables:
                query = sql.SQL("SELECT count(*) FROM {}.{}").format(
                    sql.Identifier(str(schema)), sql.Identifier(str(table))
                )
                count = self._connection.execute(query).fetchone()
                self._counts[f"{schema}.{table}"] = int(str(count[0])) if count else 0
        except BaseException as error:
            self._error = error

    def result(self) -> dict[str, int]:
        self.join()
        if self._error is not None:
            raise RuntimeError(f"counting rows failed: {self._error}") from self._error
        return self._counts
