"""A real InfluxDB 1.x server (Debian's ``influxdb`` package) for tests and the local default.

``influxd run`` stays in the foreground with a config file written for this instance: HTTP and
the RPC (backup/restore service) bind to free ports on 127.0.0.1, metadata, data and WAL live in
the workdir, usage reporting and the ``_internal`` monitor database are off. The package's own
service (``/etc/influxdb/influxdb.conf``, port 8086) is neither used nor needed.

Authentication is on by default, as in production: the first admin user is created over HTTP
(InfluxDB allows exactly that one request without credentials), and every client call carries
the password in a header.
"""

from __future__ import annotations

import os
import secrets
import signal
from pathlib import Path

from drkit.influx import InfluxEndpoint, quote_ident
from drkit.local.process import LOOPBACK, LocalServer, ManagedProcess, free_port

INFLUXD = "influxd"
START_TIMEOUT = 30.0
ADMIN_USER = "admin"


class LocalInfluxDB(LocalServer):
    """One ``influxd`` in the foreground on free loopback ports, with its files in ``workdir``."""

    def __init__(self, workdir: Path, *, auth: bool = True, executable: str = INFLUXD) -> None:
        self.workdir = workdir
        self.data_root = workdir / "influxdb"
        self.config_path = workdir / "influxdb.conf"
        self.executable = executable
        self.auth = auth
        self.host = LOOPBACK
        self.port = free_port()
        self.rpc_port = free_port()
        self.user = ADMIN_USER if auth else None
        self.password = secrets.token_urlsafe(18) if auth else None
        self._admin_created = False
        self._process: ManagedProcess | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def endpoint(self, timeout: float = 60.0) -> InfluxEndpoint:
        return InfluxEndpoint(self.host, self.port, self.user, self.password, timeout)

    def create_database(self, name: str) -> None:
        self.endpoint().query(f"CREATE DATABASE {quote_ident(name)}", write=True)

    def drop_database(self, name: str) -> None:
        self.endpoint().query(f"DROP DATABASE {quote_ident(name)}", write=True)

    def start(self) -> None:
        self.data_root.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(self._config())
        self._process = ManagedProcess(
            "influxd",
            [self.executable, "run", "-config", str(self.config_path)],
            self.workdir / "influxd.log",
            cwd=self.data_root,
        )
        self._process.start()
        self._process.wait_until(self._answers_ping, START_TIMEOUT, "answering /ping")
        if self.auth and not self._admin_created:
            anonymous = InfluxEndpoint(self.host, self.port)
            anonymous.query(
                f"CREATE USER {quote_ident(ADMIN_USER)} WITH PASSWORD "
                f"'{self.password}' WITH ALL PRIVILEGES",
                write=True,
            )
            self._admin_created = True

    def stop(self) -> None:
        """SIGTERM: influxd closes its shards and WAL cleanly before it exits."""
        if self._process is not None:
            self._process.stop()
            self._process = None

    def kill(self) -> None:
        """SIGKILL, as a crashed node: what a backup sees when its server dies mid-export."""
        if self._process is not None and self._process.pid is not None:
            os.killpg(self._process.pid, signal.SIGKILL)
            self._process.stop()
            self._process = None

    def restart(self) -> None:
        """Stop and start on the same ports and files; the data and users survive."""
        self.stop()
        self.start()

    def running(self) -> bool:
        return self._process is not None and self._process.running()

    def _config(self) -> str:
        root = self.data_root
        return f"""\
reporting-disabled = true
bind-address = "{self.host}:{self.rpc_port}"

[meta]
  dir = "{root / "meta"}"

[data]
  dir = "{root / "data"}"
  wal-dir = "{root / "wal"}"
  query-log-enabled = false

[monitor]
  store-enabled = false

[http]
  enabled = true
  bind-address = "{self.host}:{self.port}"
  auth-enabled = {"true" if self.auth else "false"}
  log-enabled = false
  pprof-enabled = false

[logging]
  suppress-logo = true
"""

    def _answers_ping(self) -> bool:
        InfluxEndpoint(self.host, self.port, timeout=2.0).ping()
        return True
