"""Restore a Redis backup: into a self-hosted server, or into a new ElastiCache replication group.

Self-hosted, the only way in is the way Redis itself starts: stop the server, put the RDB where it
loads from, start it. The order matters for safety: the RDB is first streamed from the vault into
a staging file next to the data file and verified (size and SHA-256 against the manifest) while
the server keeps running, so a corrupt or tampered object fails the restore with the server's data
untouched. Only then is the server stopped, the file swapped in with one atomic rename (the
previous one kept aside), and the server started. A server that will not start on the new file
gets its previous file back. The restored server is then checked against the manifest's counts.

A restore killed while the server is down must not leave it down. Before stopping the server,
``restore_redis`` hands ``on_swap`` a ``Swap`` (the data file, the staged file with its size and
SHA-256, where the previous file goes), which the restore task journals; ``recover_swap`` later
reads that record and the files as they are, and either finishes the swap (the staged file is the
journaled one, byte for byte) or puts the previous file back, then starts the server. Every step
of it can be repeated: recovering twice is recovering once.

How a server is stopped, swapped and started differs by flavour, so it sits behind
``RestoreTarget``: ``VolumeTarget`` serves any server whose data file this process can reach
(``LocalRedis``; a StatefulSet pod's volume mounted into the restore job), with the stop/start
steps given as callables (``LocalRedis.stop``/``start``; for Kubernetes, scale to 0 and to 1).

ElastiCache cannot take a file: a new replication group is created with its ``SnapshotArns``
pointing at ``.rdb`` objects in S3, which is exactly what the ElastiCache backup stored.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import redis

from drkit import killpoints
from drkit.backup.manifest import Manifest, StoredObject
from drkit.backup.redis import RedisSource
from drkit.redis_content import judge
from drkit.restore.stream import check_object, raw_chunks
from drkit.storage.objectstore import ObjectStore

log = logging.getLogger("drkit.restore.redis")

# The newest RDB version each Redis release reads (rdb.h RDB_VERSION at each release).
RDB_VERSION_READ_BY = [((7, 4), 12), ((7, 2), 11), ((7, 0), 10), ((5, 0), 9), ((4, 0), 8)]
RDB_VERSION_FALLBACK = 7  # Redis 3.2
STAGED_PREFIX, STAGED_SUFFIX = ".drkit-restore-", ".rdb.partial"
PREVIOUS_SUFFIX = ".before-restore"
HASH_CHUNK = 1024 * 1024


class RedisRestoreError(RuntimeError):
    """The restore was refused or failed; the message says whether the server was changed."""


class TargetNotEmpty(RedisRestoreError):
    """The target server holds keys; restoring replaces all of them, so it needs ``force``."""


class CountMismatch(RedisRestoreError):
    """The restored server does not hold what the manifest says the backup held."""


class RestoreTarget(Protocol):
    """A self-hosted Redis whose data file a restore replaces while the server is down."""

    name: str
    source: RedisSource
    rdb_path: Path

    @property
    def previous_path(self) -> Path:
        """Where ``swap_in`` keeps the file the server had before."""
        ...

    @property
    def staging_dir(self) -> Path:
        """Where the verified download waits while the server still runs (same filesystem as the
        data file, so the swap is one rename)."""
        ...

    def stop(self) -> None: ...
    def start(self) -> None: ...

    def swap_in(self, staged: Path) -> Path | None:
        """Put ``staged`` where the server loads from; return where the previous file went."""
        ...

    def swap_back(self, previous: Path | None) -> None:
        """Undo ``swap_in``: the previous file (or none) back in place."""
        ...

    def expected_config(self) -> tuple[str, str] | None:
        """(``dir``, ``dbfilename``) the server must report for this file to be the one it loads,
        as the server sees them; None where they cannot be compared."""
        ...


@dataclass
class VolumeTarget:
    """A server whose data file is reachable here at ``rdb_path``; stop and start are given."""

    name: str
    source: RedisSource
    rdb_path: Path
    stop_server: Callable[[], None]
    start_server: Callable[[], None]
    server_rdb_path: Path | None = None
    """The same file as the server names it, if that differs (a volume mounted elsewhere)."""

    @property
    def staging_dir(self) -> Path:
        return self.rdb_path.parent

    @property
    def previous_path(self) -> Path:
        return self.rdb_path.with_name(self.rdb_path.name + PREVIOUS_SUFFIX)

    def stop(self) -> None:
        self.stop_server()

    def start(self) -> None:
        self.start_server()

    def swap_in(self, staged: Path) -> Path | None:
        previous: Path | None = self.previous_path
        assert previous is not None
        if self.rdb_path.exists():
            os.replace(self.rdb_path, previous)
            _fsync_dir(self.rdb_path.parent)
        else:
            previous = None
        killpoints.reached("redis.old-renamed")
        os.replace(staged, self.rdb_path)
        _fsync_dir(self.rdb_path.parent)
        killpoints.reached("redis.new-in-place")
        return previous

    def swap_back(self, previous: Path | None) -> None:
        if previous is not None:
            os.replace(previous, self.rdb_path)
        else:
            self.rdb_path.unlink(missing_ok=True)
        _fsync_dir(self.rdb_path.parent)

    def expected_config(self) -> tuple[str, str] | None:
        path = self.server_rdb_path or self.rdb_path
        return str(path.parent.resolve()), path.name


def local_redis_target(server: Any) -> VolumeTarget:
    """A ``drkit.local.redis.LocalRedis`` as a restore target (stop, swap, start again)."""
    return VolumeTarget(
        name=f"local redis {server.host}:{server.port}",
        source=RedisSource(server.host, server.port, server.password),
        rdb_path=server.rdb_path,
        stop_server=server.stop,
        start_server=server.start,
    )


def _fsync_dir(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


@dataclass(frozen=True)
class RedisRestoreResult:
    target: str
    keys_per_db: dict[int, int]
    loaded: int | None
    expired_on_load: int | None
    seconds: float
    downtime_seconds: float


def rdb_object(manifest: Manifest) -> StoredObject:
    """The one RDB of a backup: a self-hosted ``dump.rdb`` or a single-shard ElastiCache export."""
    rdbs = [item for item in manifest.objects if item.name.endswith(".rdb")]
    if len(rdbs) != 1:
        names = ", ".join(item.name for item in rdbs) or "none"
        raise RedisRestoreError(
            f"backup {manifest.backup_id} has {len(rdbs)} RDB objects ({names}); a self-hosted"
            " server loads exactly one (restore a multi-shard export with --target-url, or into"
            " ElastiCache)"
        )
    return rdbs[0]


def rdb_objects(manifest: Manifest) -> list[StoredObject]:
    """Every RDB of a backup, by name: one, or one per shard of an ElastiCache export (its node
    groups hold disjoint keys, so together they are the dataset)."""
    rdbs = sorted((i for i in manifest.objects if i.name.endswith(".rdb")), key=lambda i: i.name)
    if not rdbs:
        raise RedisRestoreError(f"backup {manifest.backup_id} holds no RDB object")
    return rdbs


def newest_readable_rdb(redis_version: str) -> int:
    parts = tuple(int(p) for p in redis_version.split(".")[:2] if p.isdigit())
    for release, version in RDB_VERSION_READ_BY:
        if parts >= release:
            return version
    return RDB_VERSION_FALLBACK


def _server_state(target: RestoreTarget) -> tuple[str, dict[str, str], dict[int, int]]:
    """(redis_version, a few CONFIG values, keys per db) of the running target."""
    try:
        with target.source.client() as client:
            version = str(client.info("server").get("redis_version", "0"))
            config: dict[str, str] = {}
            with contextlib.suppress(redis.ResponseError):  # CONFIG may be renamed away
                for key in ("appendonly", "dir", "dbfilename"):
                    reply = {_str(k): _str(v) for k, v in client.config_get(key).items()}
                    config[key] = reply.get(key, "")
            keyspace = _keyspace(client)
    except redis.RedisError as error:
        raise RedisRestoreError(f"{target.name}: cannot check the target: {error}") from error
    return version, config, keyspace


def _str(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _keyspace(client: redis.Redis[bytes]) -> dict[int, int]:
    info = client.info("keyspace")
    return {int(str(db)[2:]): int(stats["keys"]) for db, stats in info.items()}


def _preflight(manifest: Manifest, item: StoredObject, target: RestoreTarget, force: bool) -> None:
    """Everything that can be refused before the server is touched."""
    version, config, keyspace = _server_state(target)
    rdb_version = manifest.consistent_point.get("rdb_version")
    readable = newest_readable_rdb(version)
    if isinstance(rdb_version, int) and rdb_version > readable:
        raise RedisRestoreError(
            f"{target.name} runs Redis {version}, which reads RDB up to version {readable};"
            f" backup {manifest.backup_id} is RDB version {rdb_version}. Nothing was changed."
        )
    if config.get("appendonly") == "yes":
        raise RedisRestoreError(
            f"{target.name} has appendonly yes: at start it loads the AOF, not dump.rdb, so"
            " the restored file would be ignored. Start it with appendonly no for the restore"
            " (then CONFIG SET appendonly yes rewrites the AOF). Nothing was changed."
        )
    expected = target.expected_config()
    if expected is not None and "dir" in config:
        actual = (config["dir"], config["dbfilename"])
        if (str(Path(actual[0]).resolve()), actual[1]) != expected:
            raise RedisRestoreError(
                f"{target.name} loads {actual[0]}/{actual[1]}, but the restore would write"
                f" {expected[0]}/{expected[1]}. Nothing was changed."
            )
    if keyspace and not force:
        shown = ", ".join(f"db{db}: {keys}" for db, keys in sorted(keyspace.items()))
        raise TargetNotEmpty(
            f"{target.name} holds keys ({shown}); the restore replaces all of them. Pass"
            " force to go ahead. Nothing was changed."
        )
    free = shutil.disk_usage(target.staging_dir).free
    if free < item.raw_size:
        raise RedisRestoreError(
            f"{target.staging_dir} has {free} bytes free; the RDB needs {item.raw_size}."
            " Nothing was changed."
        )


@dataclass(frozen=True)
class Swap:
    """One swap of a data file, as journaled before the server is stopped: enough for another
    process to finish it (``staged`` is still the verified file, byte for byte) or undo it."""

    backup_id: str
    rdb: str
    staged: str
    previous: str
    raw_size: int
    raw_sha256: str

    def fields(self) -> dict[str, Any]:
        return {
            "backup_id": self.backup_id,
            "rdb": self.rdb,
            "staged": self.staged,
            "previous": self.previous,
            "raw_size": self.raw_size,
            "raw_sha256": self.raw_sha256,
        }

    @classmethod
    def from_fields(cls, fields: dict[str, Any]) -> Swap:
        return cls(
            backup_id=str(fields["backup_id"]),
            rdb=str(fields["rdb"]),
            staged=str(fields["staged"]),
            previous=str(fields["previous"]),
            raw_size=int(fields["raw_size"]),
            raw_sha256=str(fields["raw_sha256"]),
        )


SwapHook = Callable[[str, Swap], None]
"""Told ``("stopping", swap)`` before the server is stopped, ``("starting", swap)`` once the file
is in place, ``("started", swap)`` when the server answers on it, ``("restored-previous", swap)``
when it would not start and got its previous file back."""


def staged_path(directory: Path, label: str) -> Path:
    return directory / f"{STAGED_PREFIX}{label}{STAGED_SUFFIX}"


def staged_files(target: RestoreTarget) -> list[Path]:
    """Staging files beside the data file: a download in progress, or one a killed run left."""
    return sorted(target.staging_dir.glob(f"{STAGED_PREFIX}*{STAGED_SUFFIX}"))


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def stage_rdb(
    store: ObjectStore,
    item: StoredObject,
    directory: Path,
    label: str,
    progress: Callable[[str, int], None] | None = None,
) -> Path:
    """Stream the object into ``directory``, verified; removed again if anything fails.

    ``progress(object name, bytes written)`` is called after every chunk (the server is still
    up and serving while this runs: a large RDB takes minutes to fetch, seconds to swap)."""
    staged = staged_path(directory, label)
    written = 0
    try:
        with staged.open("wb") as out:
            for chunk in raw_chunks(store, item):
                out.write(chunk)
                written += len(chunk)
                if progress is not None:
                    progress(item.name, written)
            out.flush()
            os.fsync(out.fileno())
    except BaseException:
        staged.unlink(missing_ok=True)
        raise
    if staged.stat().st_size != item.raw_size:
        staged.unlink(missing_ok=True)
        raise RedisRestoreError(
            f"{store.name}/{item.key}: {staged.stat().st_size} bytes after decompression,"
            f" the manifest says {item.raw_size}"
        )
    return staged


def restore_redis(
    manifest: Manifest,
    store: ObjectStore,
    target: RestoreTarget,
    force: bool = False,
    progress: Callable[[str, int], None] | None = None,
    on_swap: SwapHook | None = None,
) -> RedisRestoreResult:
    """Replace the target's dataset with the backup's RDB, then check it against the manifest.

    ``on_swap`` records each phase of the swap before it happens (see ``SwapHook``): a process
    killed between two phases leaves a state ``recover_swap`` can finish."""
    started = time.monotonic()
    item = rdb_object(manifest)
    _preflight(manifest, item, target, force)
    staged = stage_rdb(store, item, target.staging_dir, manifest.backup_id, progress)
    swap = Swap(
        backup_id=manifest.backup_id,
        rdb=str(target.rdb_path),
        staged=str(staged),
        previous=str(target.previous_path),
        raw_size=item.raw_size,
        raw_sha256=file_sha256(staged),
    )
    killpoints.reached("redis.staged")
    tell = on_swap or (lambda phase, swap: None)
    tell("stopping", swap)
    down_at = time.monotonic()
    try:
        target.stop()
        killpoints.reached("redis.stopped")
        previous = target.swap_in(staged)
        tell("starting", swap)
    except BaseException:
        staged.unlink(missing_ok=True)
        if not target.rdb_path.exists() and target.previous_path.exists():
            os.replace(target.previous_path, target.rdb_path)  # never start on no file
        with contextlib.suppress(Exception):
            target.start()
        raise
    killpoints.reached("redis.before-start")
    try:
        target.start()
    except Exception as error:
        log.error(
            "%s did not start on the restored RDB; putting its previous file back", target.name
        )
        with contextlib.suppress(Exception):
            target.stop()
        target.swap_back(previous)
        target.start()
        tell("restored-previous", swap)
        raise RedisRestoreError(
            f"{target.name} did not start on backup {manifest.backup_id} ({error}); its previous"
            " data file was put back and it was started again"
        ) from error
    up_at = time.monotonic()
    tell("started", swap)
    result = verify_restored(manifest, target)
    if previous is not None:
        previous.unlink(missing_ok=True)
    return RedisRestoreResult(
        target=target.name,
        keys_per_db=result[0],
        loaded=result[1],
        expired_on_load=result[2],
        seconds=round(time.monotonic() - started, 3),
        downtime_seconds=round(up_at - down_at, 3),
    )


def answers(target: RestoreTarget) -> bool:
    """The server takes commands (a refused or reset connection: it is down)."""
    try:
        with target.source.client() as client:
            return bool(client.ping())
    except (redis.ConnectionError, redis.TimeoutError):
        return False


def recover_swap(target: RestoreTarget, swap: Swap | None) -> str:
    """Bring a target a killed restore left behind to a consistent, running state.

    ``swap`` is the journaled record of the killed run's swap, if any. Returns what was done:

    - ``"finished"``: the server now runs on the swap's file (checked by SHA-256): the staged file
      was put in place and the server started, or it was in place already;
    - ``"rolled back"``: the staged file could not be vouched for (no record, or other bytes), so
      it was removed, the previous file put back, and the server started on it;
    - ``"cleaned"``: the server was running; stale staging files were removed;
    - ``"nothing"``: the server was running and nothing was left over.

    Repeating it is harmless: each file move checks where the file is first."""
    leftovers = staged_files(target)
    rdb, previous = target.rdb_path, target.previous_path
    if answers(target):
        for path in leftovers:
            path.unlink(missing_ok=True)
        if swap is not None and rdb.exists() and _is_swapped(rdb, swap):
            return "finished"  # killed after the start, before it was recorded
        return "cleaned" if leftovers else "nothing"
    vouched = swap is not None and _is_swapped(Path(swap.staged), swap)
    for path in leftovers:
        if not (vouched and swap is not None and path == Path(swap.staged)):
            path.unlink(missing_ok=True)
    if vouched and swap is not None:
        if rdb.exists():
            os.replace(rdb, previous)  # killed after the stop, before the old file moved
        os.replace(swap.staged, rdb)
        _fsync_dir(rdb.parent)
        outcome = "finished"
    elif swap is not None and rdb.exists() and _is_swapped(rdb, swap):
        outcome = "finished"  # killed after the new file was in place
    else:
        if not rdb.exists() and previous.exists():
            os.replace(previous, rdb)
            _fsync_dir(rdb.parent)
        outcome = "rolled back"
    log.warning("%s was down after a killed restore: %s, starting it", target.name, outcome)
    target.start()
    return outcome


def _is_swapped(path: Path, swap: Swap) -> bool:
    """``path`` holds exactly the swap's verified bytes."""
    try:
        return path.stat().st_size == swap.raw_size and file_sha256(path) == swap.raw_sha256
    except FileNotFoundError:
        return False


def verify_restored(
    manifest: Manifest, target: RestoreTarget, loaded_here: bool = True
) -> tuple[dict[int, int], int | None, int | None]:
    """The restored server against the manifest's counts.

    At start Redis drops keys whose TTL has passed, and keys with a TTL may expire at any moment
    after, so the exact check is on what the load saw: keys loaded plus keys expired on load must
    equal the RDB's keys (INFO persistence, Redis 7+). Per database, DBSIZE must lie between the
    keys without a TTL (none of those can go) and all keys; no other database may have keys.
    ``loaded_here=False`` (the server was found holding the backup's data, not loaded by this
    run): its last load was of something else, so only the per-database bounds apply.
    """
    counts = manifest.counts
    try:
        with target.source.client() as client:
            persistence = client.info("persistence")
            keyspace = _keyspace(client)
    except redis.RedisError as error:
        raise RedisRestoreError(
            f"{target.name}: cannot check the restored data: {error}"
        ) from error
    loaded = persistence.get("rdb_last_load_keys_loaded")
    expired = persistence.get("rdb_last_load_keys_expired")
    as_ints = (keyspace, _int_or_none(loaded), _int_or_none(expired))
    if "keys" not in counts:
        log.warning(
            "%s: backup %s has no key counts (%s); the restored data was not counted against it",
            target.name,
            manifest.backup_id,
            manifest.consistent_point.get("key_counts", "not recorded"),
        )
        return as_ints
    problems = []
    if (
        loaded_here
        and loaded is not None
        and expired is not None
        and int(loaded) + int(expired) != counts.get("keys")
    ):
        problems.append(
            f"the load saw {loaded} keys plus {expired} already expired, the backup holds"
            f" {counts.get('keys')}"
        )
    backed_up = {int(k[2:].split(".")[0]) for k in counts if k.startswith("db")}
    for db in sorted(backed_up | set(keyspace)):
        total = counts.get(f"db{db}.keys", 0)
        lowest = total - counts.get(f"db{db}.keys_with_ttl", 0)
        actual = keyspace.get(db, 0)
        if not lowest <= actual <= total:
            problems.append(f"db{db} has {actual} keys, expected {lowest} to {total}")
    if problems:
        raise CountMismatch(
            f"{target.name} after restoring backup {manifest.backup_id}: {'; '.join(problems)}"
        )
    return as_ints


def holds_backup(manifest: Manifest, source: RedisSource) -> str | None:
    """None when the server holds exactly the backup's data, judged by its content against the
    manifest's fingerprint (``drkit.redis_content``); else why not, in words. A backup without a
    fingerprint (taken before they were recorded) is never judged restored."""
    recorded = manifest.consistent_point.get("content")
    if not isinstance(recorded, dict) or not recorded:
        if isinstance(recorded, dict) and not manifest.counts.get("keys"):
            recorded = {}  # an empty backup: the server must be empty
        else:
            return (
                f"backup {manifest.backup_id} has no content fingerprint (taken before they "
                "were recorded): the server's data cannot be recognised as its"
            )
    try:
        with source.client() as client:
            present = sorted(_keyspace(client))
        return judge(source.client, recorded, present)
    except redis.RedisError as error:
        return f"{source.name} cannot be read: {error}"


def _int_or_none(value: object) -> int | None:
    return None if value is None else int(str(value))


# --- ElastiCache ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ElastiCacheRestoreRequest:
    """The new replication group; anything else CreateReplicationGroup takes goes in ``extra``."""

    replication_group_id: str
    cache_node_type: str
    description: str = "restored by drkit"
    engine: str = "redis"
    engine_version: str | None = None
    replicas: int = 1
    subnet_group: str | None = None
    security_group_ids: tuple[str, ...] = ()
    kms_key_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ElastiCacheRestoreResult:
    replication_group_id: str
    snapshot_arns: list[str]
    status: str
    endpoint: str | None
    seconds: float


def seed_objects(manifest: Manifest, store: ObjectStore) -> list[StoredObject]:
    """The RDB objects ElastiCache will read, verified first; a compressed one (a self-hosted
    ``dump.rdb``) is written out raw next to it, since ElastiCache reads plain ``.rdb`` only."""
    seeds = []
    for item in sorted(
        (i for i in manifest.objects if i.name.endswith(".rdb")), key=lambda i: i.name
    ):
        if item.compression == "none":
            check_object(store, item)
            seeds.append(item)
            continue
        key = f"restore-seeds/{manifest.backup_id}/{item.name}"
        writer = store.writer(key)
        try:
            for chunk in raw_chunks(store, item):
                writer.write(chunk)
        except BaseException:
            writer.abort()
            raise
        writer.commit()
        seeds.append(item.model_copy(update={"key": key, "compression": "none"}))
    if not seeds:
        raise RedisRestoreError(f"backup {manifest.backup_id} holds no RDB object")
    return seeds


def restore_elasticache(
    manifest: Manifest,
    store: ObjectStore,
    client: Any,
    request: ElastiCacheRestoreRequest,
    delay: int = 30,
    max_attempts: int = 120,
) -> ElastiCacheRestoreResult:
    """Create a new replication group seeded from the backup's RDB objects and wait for it."""
    started = time.monotonic()
    bucket = getattr(store, "bucket", None)
    if not isinstance(bucket, str) or not store.name.startswith("s3://"):
        raise RedisRestoreError(f"{store.name} is not an S3 bucket; ElastiCache seeds from S3")
    seeds = seed_objects(manifest, store)
    arns = [f"arn:aws:s3:::{bucket}/{item.key}" for item in seeds]
    if any("," in arn for arn in arns):
        raise RedisRestoreError(f"ElastiCache rejects S3 keys with commas: {arns}")
    arguments: dict[str, Any] = {
        "ReplicationGroupId": request.replication_group_id,
        "ReplicationGroupDescription": request.description,
        "SnapshotArns": arns,
        "CacheNodeType": request.cache_node_type,
        "Engine": request.engine,
    }
    if len(arns) > 1:
        arguments |= {
            "NumNodeGroups": len(arns),
            "ReplicasPerNodeGroup": request.replicas,
            "ClusterMode": "enabled",
        }
    else:
        arguments["NumCacheClusters"] = request.replicas + 1
    if request.replicas > 0:
        arguments |= {"AutomaticFailoverEnabled": True, "MultiAZEnabled": True}
    if request.engine_version:
        arguments["EngineVersion"] = request.engine_version
    if request.subnet_group:
        arguments["CacheSubnetGroupName"] = request.subnet_group
    if request.security_group_ids:
        arguments["SecurityGroupIds"] = list(request.security_group_ids)
    if request.kms_key_id:
        arguments |= {"AtRestEncryptionEnabled": True, "KmsKeyId": request.kms_key_id}
    arguments |= request.extra
    client.create_replication_group(**arguments)
    client.get_waiter("replication_group_available").wait(
        ReplicationGroupId=request.replication_group_id,
        WaiterConfig={"Delay": delay, "MaxAttempts": max_attempts},
    )
    group = client.describe_replication_groups(ReplicationGroupId=request.replication_group_id)[
        "ReplicationGroups"
    ][0]
    endpoint = group.get("ConfigurationEndpoint") or next(
        (g.get("PrimaryEndpoint") for g in group.get("NodeGroups", []) if g.get("PrimaryEndpoint")),
        None,
    )
    return ElastiCacheRestoreResult(
        replication_group_id=request.replication_group_id,
        snapshot_arns=arns,
        status=str(group.get("Status")),
        endpoint=f"{endpoint['Address']}:{endpoint['Port']}" if endpoint else None,
        seconds=round(time.monotonic() - started, 3),
    )
