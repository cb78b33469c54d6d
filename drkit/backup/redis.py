"""Redis: one RDB snapshot per backup, from a self-hosted server or from ElastiCache.

Self-hosted (the StatefulSet; ``LocalRedis`` here): ``BGSAVE``, then wait for that save to finish
by polling the persistence state, never by sleeping a fixed time as the seed script did (its 30 s
were either wasted or too short, and a failed save went unnoticed). The finished ``dump.rdb`` is
read from the data volume the backup container shares with Redis; when that file is not
reachable, or is not the one our save wrote, the RDB is fetched over the replication protocol
with ``redis-cli --rdb -`` instead. Either way the bytes stream once into the engine while a
second thread walks them (``drkit.redis_rdb``) to count the keys of each database and take its
content fingerprint (``consistent_point.content``), against which a restore judges whether a
server already holds this backup's data (``drkit.redis_content``).

ElastiCache blocks ``BGSAVE`` and gives no access to its disks: a backup there is a manual
snapshot exported with ``CopySnapshot(TargetBucket=...)`` to the region's export staging bucket
(``components.cache_export``: the vault cannot take a write from ElastiCache, which needs an ACL
grant, SSE-S3 and no Object Lock). AWS writes the ``.rdb`` objects there itself; each is then
streamed once into the vault and the mirror like any other object of the backup (SHA-256, size,
the vault's key and lock), its keys counted on the way, and the staged objects are deleted.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from drkit.backup.child import ChildStream
from drkit.backup.engine import BackupSession, Capture
from drkit.bounds import IoBounds, io_bounds
from drkit.redis_rdb import (
    CHUNK,
    RdbFormatError,
    RdbSummary,
    RdbTap,
    RdbUnsupported,
    combined_content,
    read_rdb_header,
)

log = logging.getLogger("drkit.backup.redis")

RDB_OBJECT = "dump.rdb"
REDIS_CLI = "redis-cli"


class RedisBackupError(RuntimeError):
    """The Redis backup cannot go on; the message names the server and what was seen."""


MANAGED_HINT = (
    "back it up through its snapshots: the stack must export the store with service "
    "'elasticache' and its replication group id (resource_id)"
)


def disabled_command(message: str) -> bool:
    """Whether Redis refused a command as unknown: renamed away (``rename-command X ""``), as
    ElastiCache does with BGSAVE, SAVE, SYNC, PSYNC and CONFIG."""
    return "unknown command" in message.lower()


class SaveTimeout(RedisBackupError):
    """BGSAVE did not finish within the allowed time."""


@dataclass(frozen=True)
class RedisSource:
    """How to reach one Redis server. The password never goes on a command line."""

    host: str
    port: int
    password: str | None = None
    username: str | None = None
    socket_timeout: float = 10.0
    retries: int = 3
    """Reconnect attempts (exponential backoff up to 2 s) before a lost server fails the run."""
    tls: bool = False
    """Speak TLS, verifying the server against the system CAs or ``tls_ca_file``."""
    tls_ca_file: str | None = None

    @property
    def name(self) -> str:
        return f"redis {self.host}:{self.port}" + (" (TLS)" if self.tls else "")

    def client(self, db: int = 0) -> redis.Redis[bytes]:
        return redis.Redis(
            host=self.host,
            port=self.port,
            username=self.username,
            password=self.password,
            db=db,
            socket_timeout=self.socket_timeout,
            socket_connect_timeout=self.socket_timeout,
            retry=Retry(ExponentialBackoff(cap=2.0, base=0.1), self.retries),
            decode_responses=False,
            ssl=self.tls,
            ssl_ca_certs=self.tls_ca_file,
        )

    def cli_command(self, *arguments: str) -> tuple[list[str], dict[str, str]]:
        """A ``redis-cli`` command line and its environment (``REDISCLI_AUTH`` for the password)."""
        command = [REDIS_CLI, "-h", self.host, "-p", str(self.port), "--no-auth-warning"]
        if self.username:
            command += ["--user", self.username]
        if self.tls:
            command += ["--tls"] + (["--cacert", self.tls_ca_file] if self.tls_ca_file else [])
        environment = dict(os.environ)
        if self.password:
            environment["REDISCLI_AUTH"] = self.password
        return command + list(arguments), environment


@dataclass(frozen=True)
class Backoff:
    """Polling intervals that start short (small saves finish in milliseconds) and grow to a cap."""

    first: float = 0.05
    factor: float = 2.0
    cap: float = 1.0

    def intervals(self) -> Iterator[float]:
        interval = self.first
        while True:
            yield interval
            interval = min(interval * self.factor, self.cap)


@dataclass(frozen=True)
class SaveResult:
    """What the server said about the BGSAVE this backup waited for."""

    last_save: datetime
    requested_at: datetime
    waited_for_running_save: bool
    seconds: float


def _persistence(client: redis.Redis[bytes]) -> dict[str, Any]:
    return dict(client.info("persistence"))


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def bgsave_and_wait(
    client: redis.Redis[bytes],
    name: str,
    timeout: float = 600.0,
    backoff: Backoff = Backoff(),
    before_request: Callable[[], None] | None = None,
) -> SaveResult:
    """Start a BGSAVE of our own and wait until it has finished and succeeded.

    ``INFO persistence``, ``TIME`` and ``BGSAVE`` go in one round trip (a pipeline, not MULTI:
    inside EXEC Redis only *schedules* a BGSAVE for its next cron tick). An accepted BGSAVE has
    forked before it replies, so ours is the save in progress from then on and, on Redis 7,
    ``rdb_saves`` has already counted it. Done is the first poll where no save is in progress
    and ``rdb_saves`` is past its value before the request; then ``rdb_last_bgsave_status`` must
    be ``ok``. ``LASTSAVE`` alone cannot say this: it has one-second resolution, so a save that
    ends in the same second as the previous one does not move it (it is checked not to go back).

    A save already running (a save point, an operator) is waited for, then ours is started, since
    the running one's snapshot may predate this backup. An AOF rewrite in progress (which blocks
    BGSAVE) is waited out the same way. ``before_request`` runs before each request (the
    file-freshness check records the data file's identity then).
    """
    started = time.monotonic()
    poller = _Poller(client, name, started + timeout, backoff, timeout)
    waited_for_running_save = False
    try:
        while True:
            if before_request is not None:
                before_request()
            pipeline = client.pipeline(transaction=False)
            pipeline.info("persistence")
            pipeline.time()
            pipeline.bgsave()
            before, server_time, reply = pipeline.execute(raise_on_error=False)
            if not isinstance(reply, Exception):
                break
            message = str(reply)
            if "already in progress" in message:
                waited_for_running_save = True
                log.info("%s: a BGSAVE is already running; waiting for it first", name)
                poller.until(lambda state: _flag(state, "rdb_bgsave_in_progress") == 0)
            elif "AOF" in message:
                log.info("%s: an AOF rewrite is running; waiting before BGSAVE", name)
                poller.until(lambda state: _flag(state, "aof_rewrite_in_progress") == 0)
            elif disabled_command(message):
                raise RedisBackupError(
                    f"{name}: BGSAVE is disabled on this server ({message.split(',')[0]}): it is "
                    f"managed like ElastiCache; {MANAGED_HINT}"
                )
            else:
                raise RedisBackupError(f"{name}: BGSAVE was refused: {message}")
        requested_at = datetime.fromtimestamp(server_time[0] + server_time[1] / 1e6, UTC)
        saves_before = _flag(before, "rdb_saves")
        after = poller.until(
            lambda state: (
                _flag(state, "rdb_bgsave_in_progress") == 0
                and _flag(state, "rdb_saves", saves_before + 1) > saves_before
            )
        )
    except redis.RedisError as error:
        raise RedisBackupError(f"{name}: {type(error).__name__}: {error}") from error
    status = _text(after.get("rdb_last_bgsave_status", "?"))
    if status != "ok":
        raise RedisBackupError(
            f"{name}: our BGSAVE failed (rdb_last_bgsave_status:{status}); see the server log"
        )
    last_save = _flag(after, "rdb_last_save_time")
    if last_save < _flag(before, "rdb_last_save_time"):
        raise RedisBackupError(
            f"{name}: LASTSAVE went back from {before['rdb_last_save_time']} to {last_save}"
            " during our BGSAVE (was the server restarted?)"
        )
    return SaveResult(
        last_save=datetime.fromtimestamp(last_save, UTC),
        requested_at=requested_at,
        waited_for_running_save=waited_for_running_save,
        seconds=round(time.monotonic() - started, 3),
    )


def _flag(state: dict[str, Any], name: str, default: int = 0) -> int:
    return int(state.get(name, default))


@dataclass(frozen=True)
class _Poller:
    client: redis.Redis[bytes]
    name: str
    deadline: float
    backoff: Backoff
    timeout: float

    def until(self, done: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        """Poll ``INFO persistence`` with growing intervals until ``done``; the last INFO seen."""
        for interval in self.backoff.intervals():
            state = _persistence(self.client)
            if done(state):
                return state
            if time.monotonic() + interval > self.deadline:
                progress = (
                    f"rdb_bgsave_in_progress:{state.get('rdb_bgsave_in_progress')},"
                    f" aof_rewrite_in_progress:{state.get('aof_rewrite_in_progress')},"
                    f" {state.get('current_save_keys_processed', '?')} of"
                    f" {state.get('current_save_keys_total', '?')} keys written"
                )
                raise SaveTimeout(
                    f"{self.name}: BGSAVE did not finish within {self.timeout:g}s ({progress});"
                    " raise the save timeout or check the server's disk and log"
                )
            time.sleep(interval)
        raise AssertionError("unreachable")  # pragma: no cover


@dataclass(frozen=True)
class _FileState:
    device: int
    inode: int
    modified_ns: int


def _file_state(path: Path) -> _FileState | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return _FileState(stat.st_dev, stat.st_ino, stat.st_mtime_ns)


def _header(path: Path) -> tuple[int, dict[str, str]]:
    with path.open("rb") as source:
        return read_rdb_header(iter(lambda: source.read(64 * 1024), b""))


def fresh_rdb(path: Path, before: _FileState | None, requested_at: datetime) -> str | None:
    """None if ``path`` is the file our save wrote; else why it is not (unreachable or stale).

    Redis writes a temporary file and renames it over ``dump.rdb``, so our save leaves a new
    inode (or at least a new mtime), and the file's own ``ctime`` AUX field (when the saving
    child started) is not before our request. A path that fails either check is not this
    server's data file: the volume is not shared, or ``dir``/``dbfilename`` point elsewhere.
    """
    after = _file_state(path)
    if after is None:
        return f"{path} does not exist or cannot be read"
    if before is not None and after == before:
        return f"{path} was not replaced by our BGSAVE (same inode and mtime as before it)"
    try:
        _, aux = _header(path)
    except (OSError, RdbFormatError) as error:
        return f"{path} is not a readable RDB: {error}"
    ctime = aux.get("ctime", "")
    if ctime.isdigit() and int(ctime) < int(requested_at.timestamp()):
        return f"{path} was written at {ctime}, before our BGSAVE at {requested_at.isoformat()}"
    return None


EOF_MARK_SIZE = 40
"""A diskless transfer ends with a random 40-byte mark; ``redis-cli --rdb -`` cannot truncate
stdout as it truncates a file, so the mark follows the RDB there and must be dropped."""


def replication_stream(source: RedisSource, bounds: IoBounds | None = None) -> Iterator[bytes]:
    """The RDB a replica would receive, from ``redis-cli --rdb -``; fails if it ends badly.

    ``REPLCONF rdb-only`` (sent by redis-cli 7) makes the server fork for this transfer without
    setting up a replica; the snapshot is as of that fork, not of an earlier BGSAVE. The last
    40 bytes are held back until redis-cli has said whether the transfer was EOF-marked.
    redis-cli is ended however the stream stops, and a transfer that stalls for
    ``DRKIT_STALL_TIMEOUT`` fails (``ChildStream``).
    """
    command, environment = source.cli_command("--rdb", "-")
    child = ChildStream(
        "redis-cli --rdb", command, environment, bounds or io_bounds(), CHUNK, whole_chunks=False
    )
    tail = b""
    for chunk in child.chunks():
        tail += chunk
        if len(tail) > EOF_MARK_SIZE:
            yield tail[:-EOF_MARK_SIZE]
            tail = tail[-EOF_MARK_SIZE:]
    message = child.stderr
    if disabled_command(message):
        raise RedisBackupError(
            f"{source.name}: SYNC/PSYNC are disabled on this server, so redis-cli --rdb cannot "
            f"read its RDB ({message[-200:]}): it is managed like "
            f"ElastiCache; {MANAGED_HINT}"
        )
    if child.returncode != 0 or "finished with success" not in message:
        raise RedisBackupError(
            f"{source.name}: redis-cli --rdb exited {child.returncode}: {message[-500:]}"
        )
    if "until EOF marker" not in message:
        yield tail


def tool_version(binary: str) -> str:
    try:
        result = subprocess.run([binary, "--version"], capture_output=True, text=True, check=False)
    except OSError:
        return "not installed"
    return result.stdout.strip() or result.stderr.strip()


@dataclass(frozen=True)
class Walk:
    """The RDB walk's outcome: ``counts`` is empty when a newer format stopped it part-way."""

    summary: RdbSummary
    counts: dict[str, int]
    note: str


def walked(tap: RdbTap, where: str) -> Walk:
    """Collect the walk. Redis writes RESIZEDB from the forked snapshot, so hints that disagree
    with the walk mean a reader bug: that fails the backup rather than record wrong counts. An
    RDB using an encoding this reader does not know is still a good backup: it is kept, with its
    counts marked unavailable (the restore then skips the count check and says so)."""
    try:
        summary = tap.result()
    except RdbUnsupported as error:
        if error.partial is None:
            raise
        log.warning("%s: key counts unavailable: %s", where, error)
        return Walk(error.partial, {}, f"unavailable: {error}")
    disagreements = summary.resizedb_disagreements()
    if disagreements:
        raise RedisBackupError(
            f"{where}: the RDB walk disagrees with the file's RESIZEDB hints:"
            f" {'; '.join(disagreements)}"
        )
    if not summary.resizedb_present:
        return Walk(summary, summary.counts(), "walked every key; the file has no RESIZEDB hints")
    return Walk(summary, summary.counts(), "walked every key; the RESIZEDB hints agree")


@dataclass
class RedisHandler:
    """Backs up one self-hosted Redis (all its databases) as ``dump.rdb``.

    ``rdb_path`` is the server's ``dir``/``dbfilename`` as the backup sees it (a shared volume in
    Kubernetes, ``LocalRedis.rdb_path`` here). Without it, or when that file turns out not to be
    the one our BGSAVE wrote, the RDB comes over the replication protocol (``redis-cli --rdb``),
    unless ``replication_fallback`` is off.
    """

    source: RedisSource
    rdb_path: Path | None = None
    replication_fallback: bool = True
    save_timeout: float = 600.0
    backoff: Backoff = field(default_factory=Backoff)
    kind: str = "redis"

    def backup(self, session: BackupSession) -> Capture:
        name = self.source.name
        try:
            with self.source.client() as client:
                server = client.info("server")
        except redis.RedisError as error:
            raise RedisBackupError(f"{name}: {type(error).__name__}: {error}") from error
        point: dict[str, Any] = {}
        tools = {"redis_server": _text(server.get("redis_version", "?"))}
        chunks: Iterator[bytes] | None = None
        if self.rdb_path is not None:
            chunks, point = self._saved_file(name)
        if chunks is None:
            if not self.replication_fallback:
                reason = point.get("fallback_reason", "no rdb_path was given")
                raise RedisBackupError(f"{name}: {reason}, and replication fallback is off")
            chunks = replication_stream(self.source)
            point["method"] = "replication (redis-cli --rdb)"
            tools["redis_cli"] = tool_version(REDIS_CLI)
        tap = RdbTap(content=True)
        try:
            stored = session.write_stream(
                RDB_OBJECT, tap.observe(chunks), content="Redis RDB snapshot (dump.rdb)"
            )
        finally:
            _close(chunks)  # ends redis-cli (or the file) now, not when garbage collected
        walk = walked(tap, name)
        summary = walk.summary
        created = summary.created_at
        point |= {
            "snapshot_time": created.isoformat() if created else point.get("save_time"),
            "rdb_version": summary.version,
            "redis_version": summary.redis_version,
            "rdb_checksum": summary.checksum,
            "key_counts": walk.note,
            "rdb_object": stored.name,
            "content": summary.content() if walk.counts else None,
        }
        point.setdefault("save_time", point["snapshot_time"])
        return Capture(
            source={
                "host": self.source.host,
                "port": self.source.port,
                "rdb_path": str(self.rdb_path) if self.rdb_path else None,
                "databases": sorted(summary.databases),
            },
            tool_versions=tools,
            consistent_point=point,
            counts=walk.counts,
        )

    def _saved_file(self, name: str) -> tuple[Iterator[bytes] | None, dict[str, Any]]:
        """BGSAVE, then the file it wrote (an open descriptor survives a later save's rename)."""
        assert self.rdb_path is not None
        path = self.rdb_path
        recorded: list[_FileState | None] = []
        with self.source.client() as client:
            save = bgsave_and_wait(
                client,
                name,
                self.save_timeout,
                self.backoff,
                before_request=lambda: recorded.append(_file_state(path)),
            )
        point: dict[str, Any] = {
            "save_time": save.last_save.isoformat(),
            "bgsave_requested_at": save.requested_at.isoformat(),
            "bgsave_seconds": save.seconds,
            "waited_for_running_bgsave": save.waited_for_running_save,
        }
        problem = fresh_rdb(path, recorded[-1], save.requested_at)
        if problem is None:
            try:
                handle = path.open("rb")
            except OSError as error:
                problem = f"{path} cannot be opened: {error}"
            else:
                point["method"] = "bgsave + shared volume"
                return _chunks_of(handle), point
        log.warning("%s: %s; fetching the RDB over replication instead", name, problem)
        point["fallback_reason"] = problem
        return None, point


def _close(chunks: Iterator[bytes]) -> None:
    close = getattr(chunks, "close", None)
    if close is not None:
        close()


def _chunks_of(handle: Any) -> Iterator[bytes]:
    with handle:
        while chunk := handle.read(CHUNK):
            yield chunk


# --- ElastiCache ------------------------------------------------------------------------------


class ElastiCacheBackupError(RuntimeError):
    """The snapshot or its export failed or timed out; the message names the snapshot."""


@dataclass(frozen=True)
class Polling:
    """Bounded backoff for AWS operations that take minutes (no boto3 waiter covers snapshots)."""

    first: float = 5.0
    factor: float = 1.5
    cap: float = 30.0
    timeout: float = 3 * 3600.0

    def intervals(self) -> Iterator[float]:
        interval = self.first
        while True:
            yield interval
            interval = min(interval * self.factor, self.cap)


EXPORT_CONTENT = "Redis RDB snapshot exported by ElastiCache"


def snapshot_name_for(prefix: str) -> str:
    """ElastiCache stores snapshot names lowercased; keep to letters, digits and single dashes."""
    backup_id = prefix.rstrip("/").rsplit("/", 1)[-1]
    return "drkit-" + re.sub(r"-+", "-", re.sub(r"[^a-z0-9]", "-", backup_id.lower())).strip("-")


def export_keys(snapshot: dict[str, Any], export_name: str) -> list[str]:
    """The objects an export writes: ``<name>-<node group id>.rdb``, one per shard."""
    groups = sorted(
        {
            str(node["NodeGroupId"])
            for node in snapshot.get("NodeSnapshots", [])
            if node.get("NodeGroupId")
        }
    )
    if not groups:
        groups = [f"{index:04d}" for index in range(1, int(snapshot.get("NumNodeGroups") or 1) + 1)]
    return [f"{export_name}-{group}.rdb" for group in groups]


@dataclass
class ElastiCacheHandler:
    """Backs up one ElastiCache (Redis OSS/Valkey) replication group or cluster.

    ``client`` is a boto3 ElastiCache client in the group's region; ``staging`` the export
    staging bucket (an ``S3Store``) in that region, which grants ElastiCache write access. The
    export is named after this backup's folder (the same key in the staging bucket), so each
    ``.rdb`` keeps its name when streamed into the backup.
    """

    client: Any
    staging: Any = None
    """``S3Store`` of the staging bucket (``elasticache.replication_groups.<region>.export_bucket``
    in the stack's outputs)."""
    replication_group_id: str | None = None
    cache_cluster_id: str | None = None
    keep_snapshot: bool = False
    polling: Polling = field(default_factory=Polling)
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    kind: str = "elasticache"

    def __post_init__(self) -> None:
        if (self.replication_group_id is None) == (self.cache_cluster_id is None):
            raise ValueError("give exactly one of replication_group_id and cache_cluster_id")
        if not isinstance(getattr(self.staging, "bucket", None), str):
            raise ValueError(
                "staging: the S3 bucket ElastiCache exports to (an S3Store in the group's "
                f"region), got {self.staging!r}"
            )

    @property
    def target(self) -> dict[str, str]:
        if self.replication_group_id is not None:
            return {"ReplicationGroupId": self.replication_group_id}
        assert self.cache_cluster_id is not None
        return {"CacheClusterId": self.cache_cluster_id}

    def backup(self, session: BackupSession) -> Capture:
        staging = self.staging
        bucket = staging.bucket
        name = snapshot_name_for(session.prefix)
        export_name = session.prefix + "redis"
        self.client.create_snapshot(SnapshotName=name, **self.target)
        try:
            snapshot = self._wait(name, lambda s: True, "to become available")
            self.client.copy_snapshot(
                SourceSnapshotName=name, TargetSnapshotName=export_name, TargetBucket=bucket
            )
            keys = export_keys(snapshot, export_name)
            self._wait(
                name,
                lambda s: all(staging.exists(key) for key in keys),
                f"to finish exporting to s3://{bucket}/{export_name}-*.rdb",
            )
            walks = []
            for key in keys:
                tap = RdbTap(content=True)
                try:
                    session.write_stream(
                        key.rsplit("/", 1)[-1],
                        tap.observe(staging.open_stream(key)),
                        content=EXPORT_CONTENT,
                        compress=False,  # the restore seeds ElastiCache from the object as is
                    )
                finally:
                    tap.close()
                walks.append(walked(tap, f"s3://{bucket}/{key}"))
        finally:
            if not self.keep_snapshot:
                self._delete(name)
            self._clear_staging(export_name)
        return self._capture(snapshot, name, export_name, walks)

    def _clear_staging(self, export_name: str) -> None:
        """The vault holds the backup now (or the run failed): remove what the export staged;
        the bucket's one-day lifecycle removes what this cannot."""
        try:
            removed = self.staging.delete_prefix(export_name)
        except Exception as error:  # cleanup must not hide the backup's own outcome
            log.warning("could not clear staged export %s: %s", export_name, error)
        else:
            log.info("cleared %d staged export object(s) under %s", removed, export_name)

    def _wait(
        self, name: str, ready: Callable[[dict[str, Any]], bool], what: str
    ) -> dict[str, Any]:
        """Poll the snapshot until it is ``available`` and ``ready``; fail on a dead status."""
        deadline = self.clock() + self.polling.timeout
        status = "unknown"
        for interval in self.polling.intervals():
            snapshots = self.client.describe_snapshots(SnapshotName=name)["Snapshots"]
            if not snapshots:
                raise ElastiCacheBackupError(f"snapshot {name} disappeared while waiting {what}")
            snapshot: dict[str, Any] = snapshots[0]
            status = str(snapshot.get("SnapshotStatus", "unknown"))
            if status == "available" and ready(snapshot):
                return snapshot
            if status in ("failed", "deleting", "deleted"):
                raise ElastiCacheBackupError(f"snapshot {name} is {status} while waiting {what}")
            if self.clock() + interval > deadline:
                break
            self.sleep(interval)
        raise ElastiCacheBackupError(
            f"snapshot {name} did not get {what} within {self.polling.timeout:.0f}s"
            f" (last status {status})"
        )

    def _delete(self, name: str) -> None:
        """The S3 export is the backup; the ElastiCache copy would only cost and expire nowhere."""
        try:
            self.client.delete_snapshot(SnapshotName=name)
        except Exception as error:  # cleanup must not hide the backup's own outcome
            log.warning("could not delete ElastiCache snapshot %s: %s", name, error)

    def _capture(
        self,
        snapshot: dict[str, Any],
        name: str,
        export_name: str,
        walks: list[Walk],
    ) -> Capture:
        summaries = [walk.summary for walk in walks]
        created = [
            node["SnapshotCreateTime"]
            for node in snapshot.get("NodeSnapshots", [])
            if node.get("SnapshotCreateTime")
        ]
        rdb_times = [s.created_at for s in summaries if s.created_at]
        instants = created or rdb_times
        snapshot_time = min(instants).isoformat() if instants else None
        counts: dict[str, int] = {}
        for walk in walks:
            for key, value in walk.counts.items():
                counts[key] = counts.get(key, 0) + value
        unavailable = [walk.note for walk in walks if not walk.counts]
        if unavailable:
            counts = {}
        return Capture(
            source={**{k: v for k, v in self.target.items()}, "snapshot_name": name},
            tool_versions={
                "engine": f"{snapshot.get('Engine', '?')} {snapshot.get('EngineVersion', '?')}",
            },
            consistent_point={
                "snapshot_time": snapshot_time,
                "save_time": max(rdb_times).isoformat() if rdb_times else snapshot_time,
                "snapshot_name": name,
                "snapshot_kept": self.keep_snapshot,
                "export_name": export_name,
                "shards": len(summaries),
                "rdb_version": max((s.version for s in summaries), default=None),
                "redis_version": next((s.redis_version for s in summaries), None),
                "key_counts": (unavailable or [walk.note for walk in walks] or ["no shards"])[0],
                # The fingerprint a restore judges by: several shards' (node groups') together.
                "content": combined_content(summaries) if counts else None,
            },
            counts=counts,
        )
