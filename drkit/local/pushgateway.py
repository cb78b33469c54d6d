"""A real Prometheus Pushgateway (Debian's ``prometheus-pushgateway``) on a free loopback port.

The backup jobs push their metrics to it, as the CronJobs push to the cluster's Pushgateway, and
the alerts in the seeds (``BackupMissing``, ``BackupFailed``) read them from there.
"""

from __future__ import annotations

import shutil
import urllib.request
from pathlib import Path

from drkit.local.process import LOOPBACK, LocalServer, ManagedProcess, free_port

EXECUTABLE = "prometheus-pushgateway"
START_TIMEOUT = 20.0


class LocalPushgateway(LocalServer):
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.host = LOOPBACK
        self.port = free_port()
        self._process: ManagedProcess | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def metrics_text(self) -> str:
        """What Prometheus would scrape from the gateway."""
        with urllib.request.urlopen(f"{self.url}/metrics", timeout=5) as response:
            return str(response.read().decode())

    def start(self) -> None:
        executable = shutil.which(EXECUTABLE) or f"/usr/bin/{EXECUTABLE}"
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._process = ManagedProcess(
            "pushgateway",
            [
                executable,
                f"--web.listen-address={self.host}:{self.port}",
                # Debian's build persists to /var/lib/prometheus/pushgateway.data by default: one
                # file shared by every gateway on the machine. Each keeps its own.
                f"--persistence.file={self.workdir / 'pushgateway.data'}",
                "--log.level=warn",
            ],
            self.workdir / "pushgateway.log",
        )
        self._process.start()
        self._process.wait_until(self._ready, START_TIMEOUT, "the Pushgateway answering /-/ready")

    def stop(self) -> None:
        if self._process is not None:
            self._process.stop()
            self._process = None

    def _ready(self) -> bool:
        with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as response:
            return int(response.status) == 200
