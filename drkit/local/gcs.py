"""A Google Cloud Storage stand-in: the ``gcp-storage-emulator`` package, run as a subprocess.

It runs through ``drkit.local.gcs_worm``, which adds what the real mirror enforces and the
emulator does not: create-only preconditions and the bucket retention policy.

It speaks the GCS JSON API, including resumable uploads in several chunks, which is how the backup
engine streams its GCS mirror copy (``blob.open("wb", chunk_size=...)``). It keeps each upload in
progress, and each object, whole in memory (or on disk), and rebuilds the upload at every chunk, so
it suits test-sized objects (tens of MiB), not production-sized ones.
"""

from __future__ import annotations

import sys
import urllib.request
from datetime import timedelta
from pathlib import Path

from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage  # type: ignore[import-untyped]

from drkit.local.process import LOOPBACK, LocalServer, ManagedProcess, free_port

START_TIMEOUT = 30.0
PROJECT = "local"


class LocalGcs(LocalServer):
    """``python -m gcp_storage_emulator start`` in the foreground on a free loopback port."""

    def __init__(self, workdir: Path, *, in_memory: bool = True) -> None:
        self.workdir = workdir
        self.data_dir = workdir / "gcs"
        self.in_memory = in_memory
        self.host = LOOPBACK
        self.port = free_port()
        self.project = PROJECT
        self._process: ManagedProcess | None = None

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def emulator_env(self) -> dict[str, str]:
        """Environment that points a subprocess's GCS client library at the emulator."""
        return {"STORAGE_EMULATOR_HOST": self.endpoint_url}

    def client(self) -> storage.Client:
        """A GCS client for the emulator, anonymous, without touching this process's environment.

        ``client_options.api_endpoint`` does what ``STORAGE_EMULATOR_HOST`` does, but per client,
        so two emulators (or the real GCS) can be used side by side in one process.
        """
        return storage.Client(
            project=self.project,
            credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
            client_options=ClientOptions(api_endpoint=self.endpoint_url),
        )

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._process = ManagedProcess(
            "gcs-emulator", self._command(), self.workdir / "gcs.log", cwd=self.workdir
        )
        self._process.start()
        self._process.wait_until(self._answers, START_TIMEOUT, "answering its health check")

    def stop(self) -> None:
        if self._process is not None:
            self._process.stop()
            self._process = None

    def _command(self) -> list[str]:
        # The emulator with the mirror's write rules enforced (create-only, retention policy).
        command = [sys.executable, "-m", "drkit.local.gcs_worm"]
        if not self.in_memory:
            command += ["--data-dir", str(self.data_dir)]
        command += ["start", "--host", self.host, "--port", str(self.port), "--quiet"]
        if self.in_memory:
            command.append("--in-memory")
        return command

    def create_locked_bucket(self, name: str, retention: timedelta) -> storage.Bucket:
        """A bucket shaped like the mirror: a retention policy that refuses a replace or a
        delete of any object younger than ``retention`` (enforced by ``drkit.local.gcs_worm``;
        the emulator has no lock call, so the policy is set, not locked)."""
        bucket = self.client().create_bucket(name)
        bucket.retention_period = int(retention.total_seconds())
        bucket.patch()
        return bucket

    def _answers(self) -> bool:
        with urllib.request.urlopen(f"{self.endpoint_url}/", timeout=2) as response:
            return int(response.status) == 200
