"""The test restore of a Redis backup for ``invoke verify`` and the monthly drill: its RDB loaded
into a throwaway ``redis-server`` tagged with the run's holder, keys counted against the manifest;
a killed run's server is stopped by the next run or ``invoke verify --cleanup``. A multi-shard
ElastiCache export (one RDB per node group) is copied shard by shard into that server
(``drkit.restore.redis_copy``) and its content compared with the fingerprint of the shards
together."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from drkit.context import OpsContext
from drkit.ops.redis_target import SCRATCH_KIND, scratch_redis
from drkit.ops.scratch import VERIFY, CheckMissed, Holder
from drkit.ops.selection import Chosen
from drkit.ops.throwaway import sweep_servers
from drkit.restore.redis import holds_backup, rdb_objects, restore_redis
from drkit.restore.redis_copy import restore_by_copy


def test_restore(
    ctx: OpsContext, chosen: Chosen, holder: Holder, source: str, purpose: str = VERIFY
) -> tuple[str, dict[str, Any]]:
    if len(rdb_objects(chosen.manifest)) > 1:
        return _shards(chosen, holder)
    with scratch_redis(holder=holder) as target:
        result = restore_redis(chosen.manifest, chosen.objects, target)
    keys = sum(result.keys_per_db.values())
    loaded = (result.loaded or 0) + (result.expired_on_load or 0)
    expected = chosen.manifest.counts.get("keys")
    if expected is None:
        raise CheckMissed(f"backup {chosen.entry.backup_id} has no key counts to compare")
    return (
        f"{chosen.entry.backup_id}: {loaded:,} keys loaded into a scratch redis-server, "
        f"manifest {expected:,}; {keys:,} present after expiry",
        {"keys_loaded": loaded, "keys_expected": expected},
    )


def cleanup(ctx: OpsContext, store: str, now: datetime, forced: bool, dry_run: bool) -> list[str]:
    """Stop and remove the throwaway ``redis-server`` processes killed runs left on this host."""
    return sweep_servers(SCRATCH_KIND, now, forced, dry_run)


def _shards(chosen: Chosen, holder: Holder) -> tuple[str, dict[str, Any]]:
    """Every shard's RDB copied into one scratch server, then judged by the fingerprint."""
    manifest = chosen.manifest
    expected = manifest.counts.get("keys")
    if expected is None:
        raise CheckMissed(f"backup {chosen.entry.backup_id} has no key counts to compare")
    with scratch_redis(holder=holder) as target:
        result = restore_by_copy(manifest, chosen.objects, target.source)
        recorded = isinstance(manifest.consistent_point.get("content"), dict)
        difference = holds_backup(manifest, target.source) if recorded else None
    shards = len(rdb_objects(manifest))
    loaded = result.copied + result.expired
    if not recorded and loaded != expected:  # taken before fingerprints: by count
        difference = f"{loaded:,} keys loaded, the manifest has {expected:,}"
    if difference is not None:
        raise CheckMissed(
            f"{chosen.entry.backup_id}: the test restore of its {shards} shards differs from the "
            f"backup: {difference}"
        )
    return (
        f"{chosen.entry.backup_id}: {shards} shards, {result.copied:,} keys copied into a scratch "
        f"redis-server, manifest {expected:,}; "
        + (
            "content matches the fingerprint of the shards together"
            if recorded
            else "no content fingerprint: keys counted only"
        ),
        {"keys_loaded": loaded, "keys_expected": expected},
    )
