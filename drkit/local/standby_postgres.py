"""A PostgreSQL physical streaming standby of a ``LocalPostgres``: the dr region's copy of prod.

It is made the way a self-hosted platform makes one: a replication slot on the primary (so the
primary keeps every WAL segment the standby has not received), ``pg_basebackup -R`` (a copy of the
primary's data directory that writes ``standby.signal`` and ``primary_conninfo``), then the server
started as a hot standby that streams WAL from the primary and answers read-only queries.

A base backup that fails raises ``ServerStartError`` with pg_basebackup's own message.
"""

from __future__ import annotations

import os
import pwd
import subprocess
from pathlib import Path

import psycopg

from drkit.local.postgres import LocalPostgres
from drkit.local.process import ServerStartError

SLOT = "dr_standby"
BASEBACKUP_TIMEOUT_S = 300.0


class LocalStandbyPostgres(LocalPostgres):
    """A hot standby of ``primary``, on its own port and data directory, with the same superuser
    and password (a base backup copies the primary's roles)."""

    def __init__(self, workdir: Path, primary: LocalPostgres, slot: str = SLOT) -> None:
        super().__init__(workdir, os_user=primary.os_user, settings=primary.settings)
        self.primary = primary
        self.slot = slot
        self.password = primary.password
        self.user = primary.user

    def start(self) -> None:
        if self._base_dir is None:
            self._base_dir = self._make_base_dir()
        if not (self.data_dir / "PG_VERSION").exists():
            self._create_slot()
            self._base_backup()
        super().start()
        self._process_or_fail()

    def _process_or_fail(self) -> None:
        """A standby that logs in but never streams is no standby: wait for the WAL receiver."""
        process = self._process
        assert process is not None
        process.wait_until(self._streaming, 60.0, "streaming WAL from the primary")

    def _streaming(self) -> bool:
        with psycopg.connect(self.dsn(), connect_timeout=2) as connection:
            row = connection.execute(
                "SELECT pg_is_in_recovery(), (SELECT status FROM pg_stat_wal_receiver)"
            ).fetchone()
        return row is not None and bool(row[0]) and row[1] == "streaming"

    def _create_slot(self) -> None:
        """A physical slot on the primary, made once (a restarted standby reuses it)."""
        with self.primary.connect(autocommit=True) as connection:
            exists = connection.execute(
                "SELECT 1 FROM pg_replication_slots WHERE slot_name = %s", (self.slot,)
            ).fetchone()
            if not exists:
                connection.execute("SELECT pg_create_physical_replication_slot(%s)", (self.slot,))

    def _base_backup(self) -> None:
        """``pg_basebackup -R`` over the replication protocol, as the standby's OS user."""
        env = {**os.environ, "PGPASSWORD": self.primary.password, "PGCONNECT_TIMEOUT": "10"}
        command = [
            str(self.bin_dir / "pg_basebackup"),
            "--host", self.primary.host,
            "--port", str(self.primary.port),
            "--username", self.primary.user,
            "--pgdata", str(self.data_dir),
            "--write-recovery-conf",
            "--slot", self.slot,
            "--wal-method", "stream",
            "--checkpoint", "fast",
            "--no-sync",
            "--no-password",
        ]  # fmt: skip
        try:
            result = subprocess.run(
                command,
                capture_output=True,
                text=True,
                env=env,
                cwd=self.base_dir,
                user=self.os_user,
                timeout=BASEBACKUP_TIMEOUT_S,
                check=False,
            )
        except subprocess.TimeoutExpired as error:
            raise ServerStartError(
                f"postgres standby: pg_basebackup did not finish within {BASEBACKUP_TIMEOUT_S:.0f}s"
            ) from error
        if result.returncode != 0:
            message = " ".join((result.stderr or result.stdout).split())
            raise ServerStartError(
                f"postgres standby: pg_basebackup from {self.primary.host}:{self.primary.port} "
                f"failed (exit {result.returncode}): {message}"
            )
        (self.base_dir / "socket").mkdir(exist_ok=True)
        if self.os_user is not None:
            account = pwd.getpwnam(self.os_user)
            os.chown(self.base_dir / "socket", account.pw_uid, account.pw_gid)
