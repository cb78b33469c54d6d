"""The dr region's "Aurora" in the local world: the PostgreSQL hot standby (``standby_postgres``)
described by that region's AWS emulator as the Aurora cluster, and the restores of it real.

moto keeps RDS as records: a restored cluster has no data and its endpoint resolves nowhere. The
patched moto server (``drkit.local.moto_server``) of a region started with
``$DRKIT_LOCAL_AURORA_DIR`` makes these calls real for a cluster registered there:

- ``DescribeDBClusters``: a cluster registered in ``<dir>/sources/<cluster>.json`` (written by the
  local stack for dr's standby, mode 600: it holds the superuser's password) answers at that
  server's host and port;
- ``RestoreDBClusterToPointInTime`` with ``UseLatestRestorableTime`` (the drill's) of such a
  cluster: moto records the new cluster (``creating``) and a thread copies the server with
  ``pg_basebackup`` (from the standby, WAL streamed) into ``<dir>/clusters/<new cluster>/``, starts
  it on a free port as a writable server (no ``standby.signal``: it ends recovery at the end of
  the backup) and marks the cluster ``available`` at that port. A copy that fails marks the
  cluster ``failed`` (its reason in ``moto.log``), as RDS's ``incompatible-restore`` would;
- ``DeleteDBCluster`` of a restored one: the server is stopped and its directory removed.

Not real: ``RestoreToTime`` (a PostgreSQL standby keeps no WAL archive to recover to a past time;
refused with a message saying so) and ``RestoreDBClusterFromSnapshot`` (moto's record only, no
server). The server's superuser and password are the standby's (a base backup copies the roles),
which the local stack also stores as the Aurora master secret in the region's Secrets Manager.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import pwd
import re
import shutil
import subprocess
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from drkit.local.postgres import LocalPostgres

AURORA_DIR_ENV = "DRKIT_LOCAL_AURORA_DIR"
SOURCES, CLUSTERS = "sources", "clusters"
BASEBACKUP_TIMEOUT_S = 300.0
_ID = re.compile(r"^[a-z][a-z0-9-]{0,62}$")
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Source:
    """A server a registered cluster answers at."""

    host: str
    port: int
    user: str
    password: str
    os_user: str | None = None


def register_source(directory: Path, cluster_id: str, source: Source) -> Path:
    """Record ``cluster_id`` as served by ``source`` (mode 600)."""
    path = directory / SOURCES / f"{_checked(cluster_id)}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        json.dump(asdict(source), handle)
    return path


def read_source(directory: Path, cluster_id: str) -> Source | None:
    if not _ID.match(cluster_id):
        return None
    try:
        return Source(**json.loads((directory / SOURCES / f"{cluster_id}.json").read_text()))
    except FileNotFoundError:
        return None


def _checked(cluster_id: str) -> str:
    if not _ID.match(cluster_id):
        raise ValueError(f"cluster id {cluster_id!r} is not an RDS cluster id")
    return cluster_id


class RestoredPostgres(LocalPostgres):
    """A writable copy of ``source`` made with ``pg_basebackup`` (no ``-R``: not a standby)."""

    def __init__(self, workdir: Path, source: Source) -> None:
        super().__init__(workdir, os_user=source.os_user)
        self.source = source
        self.user, self.password = source.user, source.password

    def start(self) -> None:
        if self._base_dir is None:
            self._base_dir = self._make_base_dir()
        if not (self.data_dir / "PG_VERSION").exists():
            self._base_backup()
        super().start()

    def _base_backup(self) -> None:
        env = {**os.environ, "PGPASSWORD": self.source.password, "PGCONNECT_TIMEOUT": "10"}
        command = [
            str(self.bin_dir / "pg_basebackup"),
            "--host", self.source.host,
            "--port", str(self.source.port),
            "--username", self.source.user,
            "--pgdata", str(self.data_dir),
            "--wal-method", "stream",
            "--checkpoint", "fast",
            "--no-sync",
            "--no-password",
        ]  # fmt: skip
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
        if result.returncode != 0:
            message = " ".join((result.stderr or result.stdout).split())
            raise RuntimeError(
                f"pg_basebackup from {self.source.host}:{self.source.port} failed "
                f"(exit {result.returncode}): {message}"
            )
        # The standby's own replication settings came along: a restored cluster follows nobody.
        auto = self.data_dir / "postgresql.auto.conf"
        if auto.exists():
            kept = [
                line
                for line in auto.read_text().splitlines()
                if not line.startswith(("primary_conninfo", "primary_slot_name"))
            ]
            auto.write_text("\n".join(kept) + "\n")
        (self.data_dir / "standby.signal").unlink(missing_ok=True)
        (self.base_dir / "socket").mkdir(exist_ok=True)
        if self.os_user is not None:
            account = pwd.getpwnam(self.os_user)
            for path in (self.base_dir / "socket", auto):
                with contextlib.suppress(FileNotFoundError):
                    os.chown(path, account.pw_uid, account.pw_gid)


class LocalClusters:
    """The restored clusters' servers of one moto server, by cluster id."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.servers: dict[str, RestoredPostgres] = {}
        self.creating: set[str] = set()
        self.failed: set[str] = set()
        self.lock = threading.Lock()

    def endpoint(self, cluster_id: str) -> tuple[str, int] | None:
        with self.lock:
            server = self.servers.get(cluster_id)
            if server is not None and cluster_id not in self.creating:
                return server.host, server.port
        source = read_source(self.directory, cluster_id)
        return (source.host, source.port) if source is not None else None

    def status(self, cluster_id: str) -> str | None:
        with self.lock:
            if cluster_id in self.creating:
                return "creating"
            if cluster_id in self.failed:
                return "failed"
        return None

    def restore(self, source_id: str, target_id: str, on_ready: Any) -> bool:
        """Start copying ``source_id``'s server into ``target_id``'s; False when ``source_id``
        is no registered cluster (moto's record alone then)."""
        source = read_source(self.directory, source_id)
        if source is None:
            return False
        server = RestoredPostgres(self.directory / CLUSTERS / _checked(target_id), source)
        with self.lock:
            self.servers[target_id] = server
            self.creating.add(target_id)

        def run() -> None:
            try:
                server.start()
                on_ready(server.port)
            except Exception as error:
                log.error("restoring %s into %s failed: %s", source_id, target_id, error)
                with self.lock:
                    self.failed.add(target_id)
            finally:
                with self.lock:
                    self.creating.discard(target_id)

        threading.Thread(target=run, name=f"restore {target_id}", daemon=True).start()
        return True

    def delete(self, cluster_id: str) -> None:
        with self.lock:
            server = self.servers.pop(cluster_id, None)
            self.failed.discard(cluster_id)
        if server is not None:
            server.cleanup()
            shutil.rmtree(server.workdir, ignore_errors=True)

    def stop_all(self) -> None:
        for cluster_id in list(self.servers):
            self.delete(cluster_id)


def patch_rds(directory: Path) -> LocalClusters:
    """Make moto's RDS serve the clusters registered under ``directory`` (see the module)."""
    from moto.rds import models
    from moto.rds.exceptions import InvalidParameterValue

    clusters = LocalClusters(directory)
    cluster_class: Any = models.DBCluster
    endpoint, status = cluster_class.endpoint, cluster_class.status

    def local_endpoint(self: Any) -> str:
        found = clusters.endpoint(self.db_cluster_identifier)
        return found[0] if found is not None else str(endpoint.fget(self))

    def local_status(self: Any) -> str:
        return clusters.status(self.db_cluster_identifier) or str(status.fget(self))

    cluster_class.endpoint = property(local_endpoint)
    cluster_class.reader_endpoint = property(local_endpoint)
    cluster_class.status = property(local_status, status.fset)
    backend: Any = models.RDSBackend
    restore, delete = backend.restore_db_cluster_to_point_in_time, backend.delete_db_cluster

    def restore_to_point_in_time(
        self: Any,
        db_cluster_identifier: str,
        source_db_cluster_identifier: str,
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        registered = read_source(directory, source_db_cluster_identifier) is not None
        if registered and kwargs.get("restore_to_time") is not None:
            raise InvalidParameterValue(
                f"the local Aurora cluster {source_db_cluster_identifier} (a PostgreSQL standby) "
                "restores only to its latest restorable time: it keeps no WAL archive for "
                "RestoreToTime"
            )
        cluster = restore(
            self, db_cluster_identifier, source_db_cluster_identifier, *args, **kwargs
        )
        if registered:

            def ready(port: int) -> None:
                cluster.port = port

            clusters.restore(source_db_cluster_identifier, db_cluster_identifier, ready)
        return cluster

    def delete_cluster(self: Any, cluster_identifier: str, *args: Any, **kwargs: Any) -> Any:
        deleted = delete(self, cluster_identifier, *args, **kwargs)
        clusters.delete(cluster_identifier)
        return deleted

    backend.restore_db_cluster_to_point_in_time = restore_to_point_in_time
    backend.delete_db_cluster = delete_cluster
    return clusters
