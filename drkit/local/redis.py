"""A real Redis server for tests and the local default, configured entirely on its command line.

No config file is written: every setting is an argument, so the log shows exactly what ran. RDB
snapshots are off unless asked for, because most tests want a clean, fast server; the restore path
needs them on, and needs ``restart()`` on the same port and directory, since restoring Redis means
replacing ``dump.rdb`` while the server is down and starting it again.
"""

from __future__ import annotations

import secrets
from pathlib import Path

import redis

from drkit.local.process import LOOPBACK, LocalServer, ManagedProcess, free_port

REDIS_SERVER = "redis-server"
START_TIMEOUT = 30.0
RDB_FILENAME = "dump.rdb"
# Redis's own default save points, used when a caller asks for RDB persistence.
DEFAULT_SAVE_POINTS = "3600 1 300 100 60 10000"


class LocalRedis(LocalServer):
    """One ``redis-server`` in the foreground with a password, on a free loopback port."""

    def __init__(
        self,
        workdir: Path,
        *,
        persistence: bool = False,
        executable: str = REDIS_SERVER,
    ) -> None:
        self.workdir = workdir
        self.data_dir = workdir / "redis"
        self.persistence = persistence
        self.executable = executable
        self.host = LOOPBACK
        self.port = free_port()
        self.password = secrets.token_urlsafe(18)
        self.rdb_filename = RDB_FILENAME
        self._process: ManagedProcess | None = None

    @property
    def rdb_path(self) -> Path:
        """Where the server reads its snapshot at start and writes it on SAVE/BGSAVE."""
        return self.data_dir / self.rdb_filename

    @property
    def url(self) -> str:
        return f"redis://:{self.password}@{self.host}:{self.port}/0"

    def client(self, db: int = 0) -> redis.Redis[bytes]:
        return redis.Redis(
            host=self.host,
            port=self.port,
            password=self.password,
            db=db,
            socket_timeout=10,
            decode_responses=False,
        )

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._process = ManagedProcess(
            "redis", self._command(), self.workdir / "redis.log", cwd=self.data_dir
        )
        self._process.start()
        self._process.wait_until(self._answers_ping, START_TIMEOUT, "answering PING")

    def stop(self) -> None:
        """SIGTERM: with persistence on, Redis writes a final snapshot before it exits."""
        if self._process is not None:
            self._process.stop()
            self._process = None

    def restart(self) -> None:
        """Stop and start on the same port and directory, so a replaced dump.rdb is loaded."""
        self.stop()
        self.start()

    def _command(self) -> list[str]:
        save = DEFAULT_SAVE_POINTS if self.persistence else ""
        return [
            self.executable,
            "--port", str(self.port),
            "--bind", self.host,
            "--dir", str(self.data_dir),
            "--dbfilename", self.rdb_filename,
            "--requirepass", self.password,
            "--save", save,
            "--appendonly", "no",
            "--daemonize", "no",
            "--protected-mode", "yes",
            "--logfile", "",
        ]  # fmt: skip

    def _answers_ping(self) -> bool:
        with self.client() as client:
            return bool(client.ping())
