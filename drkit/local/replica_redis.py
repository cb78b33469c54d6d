"""A Redis replica of a ``LocalRedis``: the dr region's copy of prod's cache.

``REPLICAOF`` with ``masterauth``, as a self-hosted replica is configured: it takes a full sync
from the master, then the master's command stream. It answers to the same password (an AUTH token
is one secret for the whole replication group, as in ElastiCache) and is read-only.
"""

from __future__ import annotations

from pathlib import Path

from drkit.local.redis import LocalRedis

LINK_TIMEOUT_S = 30.0


class LocalReplicaRedis(LocalRedis):
    """``redis-server --replicaof <master> --masterauth <password> --replica-read-only yes``."""

    def __init__(self, workdir: Path, master: LocalRedis) -> None:
        super().__init__(workdir, executable=master.executable)
        self.master = master
        self.password = master.password

    def start(self) -> None:
        super().start()
        process = self._process
        assert process is not None
        process.wait_until(self._linked, LINK_TIMEOUT_S, "linked to its master (sync done)")

    def _command(self) -> list[str]:
        return [
            *super()._command(),
            "--replicaof", self.master.host, str(self.master.port),
            "--masterauth", self.master.password,
            "--replica-read-only", "yes",
        ]  # fmt: skip

    def _linked(self) -> bool:
        with self.client() as client:
            info = client.info("replication")
        return info.get("role") == "slave" and info.get("master_link_status") == "up"
