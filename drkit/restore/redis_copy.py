"""Restore a Redis backup into any server reached by URL, without stopping anything.

``restore.redis --target-url redis://[user:password@]host:port`` (``rediss://`` for TLS; the CA in
``?ssl_ca_certs=FILE``, else the system's) serves servers this host cannot stop or reach the disk
of: another team's Redis, a new self-hosted one, a managed one that takes ``RESTORE``. The RDB is
streamed from the vault (or the mirror) into a scratch directory and verified (size, SHA-256),
loaded by a throwaway ``redis-server`` of this host on a loopback port, and every key copied with
``DUMP`` and ``PEXPIRETIME`` from it and ``RESTORE key <expiry> <payload> ABSTTL REPLACE`` into
the target, in pipelined batches of ``BATCH`` keys per database. ``DUMP`` is Redis's own
serialization of a value, so every type comes back as it was (streams with their consumer groups
and pending entries, HyperLogLogs, bitmaps, module values if the target has the module) with its
absolute expiry; a key whose expiry passed meanwhile is not created, as a restart would drop it.

Memory here is one batch (the largest key bounds it); the scratch server holds the dataset, as the
target will. Neither the store's own server nor the target is stopped: the source keeps serving.
The payloads carry this host's RDB version, so the target must read it: a target older than the
local ``redis-server`` (or than the backup) is refused before anything is written, naming both
versions. A target that holds keys is refused unless ``force``, which empties it first
(``FLUSHALL``), so nothing is left that the backup did not hold. Copying is idempotent (REPLACE):
a re-run, or ``--resume`` of a run killed half way, copies again.

A backup of several shards (an ElastiCache cluster's node groups, one RDB each) goes into the one
target: every RDB is staged and verified first, then each in turn loaded by a throwaway server,
copied and removed (one server at a time). The target then holds the whole dataset, judged against
the backup's fingerprint of all the shards together.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import redis

from drkit.backup.manifest import Manifest
from drkit.backup.redis import RedisSource
from drkit.local.redis import REDIS_SERVER, LocalRedis
from drkit.restore.redis import (
    RedisRestoreError,
    TargetNotEmpty,
    _keyspace,
    newest_readable_rdb,
    rdb_objects,
    stage_rdb,
)
from drkit.storage.objectstore import ObjectStore

BATCH = 500
PASSWORD_ENV = "REDISCLI_AUTH"
"""Where the password comes from when the URL has none (redis-cli's own variable)."""


def parse_target_url(url: str) -> RedisSource:
    """``redis://`` or ``rediss://``, optional ``user:password@``, host, port, no path but ``/0``,
    and only ``ssl_ca_certs`` as a query parameter; refused, naming what is wrong, otherwise."""
    shown = masked(url)
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss"):
        raise ValueError(f"--target-url {shown}: the scheme must be redis:// or rediss:// (TLS)")
    if not parts.hostname:
        raise ValueError(f"--target-url {shown}: no host")
    try:
        port = parts.port or 6379
    except ValueError:
        raise ValueError(f"--target-url {shown}: the port is not a number") from None
    if parts.path not in ("", "/", "/0"):
        raise ValueError(
            f"--target-url {shown}: a restore writes every database of the backup; leave the "
            "database number out of the URL"
        )
    query = parse_qs(parts.query, keep_blank_values=True)
    unknown = sorted(set(query) - {"ssl_ca_certs"})
    if unknown:
        raise ValueError(f"--target-url {shown}: unknown parameters {unknown} (ssl_ca_certs only)")
    ca = query.get("ssl_ca_certs", [None])[-1] or None
    if ca is not None:
        if parts.scheme != "rediss":
            raise ValueError(f"--target-url {shown}: ssl_ca_certs needs rediss:// (TLS)")
        if not Path(ca).is_file():
            raise ValueError(f"--target-url {shown}: ssl_ca_certs file {ca} does not exist")
    password = unquote(parts.password) if parts.password else os.environ.get(PASSWORD_ENV)
    username = unquote(parts.username) if parts.username else None
    return RedisSource(
        parts.hostname,
        port,
        password=password or None,
        username=username or None,
        tls=parts.scheme == "rediss",
        tls_ca_file=ca,
    )


def masked(url: str) -> str:
    """The URL with its password replaced by ``***`` (for plans, journals and messages)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.netloc.rsplit("@", 1)[-1]
    return parts._replace(netloc=f"{user}:***@{host}").geturl()


def local_rdb_version() -> tuple[str, int]:
    """(version, newest RDB version it reads and writes) of this host's ``redis-server``."""
    if shutil.which(REDIS_SERVER) is None:
        raise RedisRestoreError(
            f"a restore into --target-url loads the backup into a throwaway {REDIS_SERVER} on "
            "this host: install it (apt-get install redis-server)"
        )
    output = subprocess.run(
        [REDIS_SERVER, "--version"], capture_output=True, text=True, check=False
    ).stdout
    version = next((w[2:] for w in output.split() if w.startswith("v=")), "0")
    return version, newest_readable_rdb(version)


def preflight(manifest: Manifest, target: RedisSource, force: bool) -> dict[int, int]:
    """Refuse what cannot work before anything is written; the target's keys per database."""
    local, local_rdb = local_rdb_version()
    backup_rdb = manifest.consistent_point.get("rdb_version")
    if isinstance(backup_rdb, int) and backup_rdb > local_rdb:
        raise RedisRestoreError(
            f"this host's {REDIS_SERVER} {local} reads RDB up to version {local_rdb}; backup "
            f"{manifest.backup_id} is RDB version {backup_rdb}. Nothing was changed."
        )
    try:
        with target.client() as client:
            version = str(client.info("server").get("redis_version", "0"))
            keyspace = _keyspace(client)
    except redis.RedisError as error:
        raise RedisRestoreError(f"{target.name}: cannot reach the target: {error}") from None
    readable = newest_readable_rdb(version)
    if readable < local_rdb:
        raise RedisRestoreError(
            f"{target.name} runs Redis {version}, older than this host's {REDIS_SERVER} "
            f"{local} whose DUMP payloads it would load (RDB {local_rdb} > {readable}). "
            "Nothing was changed."
        )
    if keyspace and not force:
        shown = ", ".join(f"db{db}: {keys}" for db, keys in sorted(keyspace.items()))
        raise TargetNotEmpty(
            f"{target.name} holds keys ({shown}) that are not this backup's; the restore "
            "replaces all of them. Pass --force to go ahead. Nothing was changed."
        )
    return keyspace


@dataclass(frozen=True)
class CopyResult:
    keys_per_db: dict[int, int]
    copied: int
    expired: int
    seconds: float


def restore_by_copy(
    manifest: Manifest,
    store: ObjectStore,
    target: RedisSource,
    force: bool = False,
    progress: Callable[[str, int], None] | None = None,
    scratch_parent: Path | None = None,
) -> CopyResult:
    """Load the backup's RDB (each shard's in turn) into a throwaway server here and copy every
    key into ``target``."""
    started = time.monotonic()
    items = rdb_objects(manifest)
    keyspace = preflight(manifest, target, force)
    workdir = Path(tempfile.mkdtemp(prefix="drkit-redis-copy-", dir=scratch_parent))
    try:
        # Every RDB read through and verified before the target is touched.
        shards = []
        for index, item in enumerate(items):
            scratch = LocalRedis(workdir / f"shard-{index}")
            scratch.data_dir.mkdir(parents=True)
            staged = stage_rdb(store, item, scratch.data_dir, manifest.backup_id, progress)
            os.replace(staged, scratch.rdb_path)
            shards.append(scratch)
        if keyspace:
            with target.client() as client:
                client.flushall()
        copied = expired = 0
        for scratch in shards:
            with scratch:
                with scratch.client() as client:
                    loaded = _keyspace(client)
                for db in sorted(loaded):
                    done, gone = _copy_database(scratch, target, db)
                    copied, expired = copied + done, expired + gone
            shutil.rmtree(scratch.workdir, ignore_errors=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    with target.client() as client:
        after = _keyspace(client)
    return CopyResult(after, copied, expired, round(time.monotonic() - started, 3))


def _copy_database(scratch: LocalRedis, target: RedisSource, db: int) -> tuple[int, int]:
    copied = expired = 0
    with scratch.client(db) as source, target.client(db) as destination:
        cursor = 0
        while True:
            cursor, keys = source.scan(cursor, count=BATCH)
            if keys:
                reading = source.pipeline(transaction=False)
                for key in keys:
                    reading.dump(key)
                    reading.execute_command("PEXPIRETIME", key)  # type: ignore[no-untyped-call]
                replies = reading.execute()
                writing = destination.pipeline(transaction=False)
                for index, key in enumerate(keys):
                    payload, at = replies[2 * index], int(replies[2 * index + 1])
                    if payload is None or at == -2:
                        expired += 1  # expired in the scratch server since it loaded
                        continue
                    writing.restore(key, max(at, 0), payload, replace=True, absttl=at > 0)
                    copied += 1
                writing.execute()
            if cursor == 0:
                return copied, expired
