"""A real PostgreSQL server for tests and the local default, run from Debian's binaries.

The server runs in the foreground as a direct child of the harness (see ``process.py``), on a free
loopback port, with a throwaway data directory. TCP clients log in with a password (SCRAM), as they
do against RDS, so the backup engine's connection code is exercised as it will be in production.

PostgreSQL refuses to run as root, so when the harness is root the server (and ``initdb``) run as
the ``postgres`` OS user. That user cannot reach a directory under root's private temp dirs
(pytest's are mode 0700), so then the server's directory is made in the system temp dir instead,
owned by ``postgres``, and removed on exit.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo
from psycopg.rows import TupleRow

from drkit.local.process import LOOPBACK, LocalServer, ManagedProcess, free_port

POSTGRES_ROOT = Path("/usr/lib/postgresql")
SUPERUSER = "postgres"
START_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0

# Durability is pointless for a throwaway test cluster and costs seconds per test run; these are
# the settings that trade it away. Callers can override any of them (or add e.g. archive settings).
FAST_SETTINGS: Mapping[str, str] = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
}


def newest_bin_dir(root: Path = POSTGRES_ROOT) -> Path:
    """The ``bin`` directory of the newest installed major version, so upgrades need no edit."""
    versions = (
        [p for p in root.iterdir() if (p / "bin" / "postgres").is_file()] if root.is_dir() else []
    )
    if not versions:
        raise FileNotFoundError(f"no PostgreSQL server under {root}/<version>/bin")
    newest = max(versions, key=lambda p: tuple(int(x) for x in p.name.split(".") if x.isdigit()))
    return newest / "bin"


def default_os_user() -> str | None:
    """``postgres`` when we are root (the server won't run as root), else ourselves (``None``)."""
    return SUPERUSER if os.geteuid() == 0 else None


class LocalPostgres(LocalServer):
    """One PostgreSQL cluster: ``initdb`` on first start, then ``postgres -D`` in the foreground."""

    def __init__(
        self,
        workdir: Path,
        *,
        os_user: str | None = None,
        settings: Mapping[str, str] | None = None,
    ) -> None:
        self.workdir = workdir
        self.os_user = os_user if os_user is not None else default_os_user()
        self.settings = {**FAST_SETTINGS, **(settings or {})}
        self.host = LOOPBACK
        self.port = free_port()
        self.user = SUPERUSER
        self.password = secrets.token_urlsafe(18)
        self.bin_dir = newest_bin_dir()
        self._base_dir: Path | None = None
        self._process: ManagedProcess | None = None

    # -- what clients need ---------------------------------------------------------------------

    @property
    def base_dir(self) -> Path:
        """The server's own directory: ``data/`` (PGDATA) and ``socket/`` live under it."""
        if self._base_dir is None:
            raise RuntimeError("LocalPostgres has not been started")
        return self._base_dir

    @property
    def data_dir(self) -> Path:
        return self.base_dir / "data"

    @property
    def socket_dir(self) -> Path:
        return self.base_dir / "socket"

    def dsn(self, dbname: str = "postgres") -> str:
        """A libpq conninfo string for the superuser over TCP with password auth."""
        return make_conninfo(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password,
            dbname=dbname,
        )

    @property
    def superuser_conninfo(self) -> str:
        return self.dsn("postgres")

    def connect(
        self, dbname: str = "postgres", *, autocommit: bool = False
    ) -> psycopg.Connection[TupleRow]:
        """A superuser connection; the caller closes it (``with server.connect() as conn``)."""
        return psycopg.connect(self.dsn(dbname), autocommit=autocommit, connect_timeout=5)

    def create_database(self, name: str) -> str:
        """Create database ``name``, return its DSN; autocommit, as CREATE DATABASE requires."""
        with self.connect(autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.dsn(name)

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        """Initialise the cluster if needed, start it, and wait until a client can log in."""
        if self._base_dir is None:
            self._base_dir = self._make_base_dir()
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb()
        self._process = ManagedProcess(
            "postgres",
            self._server_command(),
            self.workdir / "postgres.log",
            cwd=self.base_dir,
            user=self.os_user,
        )
        self._process.start()
        self._process.wait_until(self._accepts_login, START_TIMEOUT, "accepting logins")

    def stop(self) -> None:
        """Fast shutdown (SIGINT): open client sessions are cut, not waited for as SIGTERM would."""
        process = self._process
        if process is None:
            return
        if process.running() and process.pid is not None:
            os.kill(process.pid, signal.SIGINT)
            deadline = time.monotonic() + STOP_TIMEOUT
            while process.running() and time.monotonic() < deadline:
                time.sleep(0.05)
        process.stop()
        self._process = None

    def close(self) -> None:
        self.cleanup()

    def cleanup(self) -> None:
        """Stop, and remove the server's directory when it lives outside ``workdir``."""
        self.stop()
        base = self._base_dir
        if base is not None and not base.is_relative_to(self.workdir):
            shutil.rmtree(base, ignore_errors=True)
        self._base_dir = None

    # -- internals -----------------------------------------------------------------------------

    def _make_base_dir(self) -> Path:
        """A directory the server's OS user owns: under ``workdir``, or in /tmp for another user."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        if self.os_user is None:
            return Path(tempfile.mkdtemp(prefix="postgres-", dir=self.workdir))
        base = Path(tempfile.mkdtemp(prefix="drkit-postgres-"))
        account = pwd.getpwnam(self.os_user)
        os.chown(base, account.pw_uid, account.pw_gid)
        return base

    def _initdb(self) -> None:
        """``initdb`` with a superuser password and SCRAM for every connection, local or TCP."""
        self.socket_dir.mkdir(exist_ok=True)
        pwfile = self.base_dir / "pwfile"
        pwfile.write_text(self.password + "\n")
        if self.os_user is not None:
            account = pwd.getpwnam(self.os_user)
            for path in (self.socket_dir, pwfile):
                os.chown(path, account.pw_uid, account.pw_gid)
        try:
            subprocess.run(
                [
                    str(self.bin_dir / "initdb"),
                    "--pgdata",
                    str(self.data_dir),
                    "--username",
                    self.user,
                    "--pwfile",
                    str(pwfile),
                    "--auth",
                    "scram-sha-256",
                    "--encoding",
                    "UTF8",
                    "--locale",
                    "C",
                    "--no-sync",
                ],
                check=True,
                capture_output=True,
                cwd=self.base_dir,
                user=self.os_user,
            )
        except subprocess.CalledProcessError as err:
            raise RuntimeError(f"initdb failed: {err.stderr.decode(errors='replace')}") from err
        finally:
            pwfile.unlink(missing_ok=True)

    def _server_command(self) -> list[str]:
        command = [
            str(self.bin_dir / "postgres"),
            "-D",
            str(self.data_dir),
            "-p",
            str(self.port),
            "-k",
            str(self.socket_dir),
            "-c",
            f"listen_addresses={self.host}",
        ]
        for name, value in self.settings.items():
            command += ["-c", f"{name}={value}"]
        return command

    def _accepts_login(self) -> bool:
        with psycopg.connect(self.dsn(), connect_timeout=2) as conn:
            conn.execute("SELECT 1")
        return True
