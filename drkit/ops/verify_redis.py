"""The test restore of a Redis backup for ``invoke verify`` and the monthly drill: its RDB loaded
into a throwaway ``redis-server`` tagged with the run's holder, keys counted against the manifest;
a killed run's server is stopped by the next run or ``invoke verify --cleanup``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from drkit.context import OpsContext
from drkit.ops.redis_target import SCRATCH_KIND, scratch_redis
from drkit.ops.scratch import VERIFY, CheckMissed, Holder
from drkit.ops.selection import Chosen
from drkit.ops.throwaway import sweep_servers
from drkit.restore.redis import rdb_object, restore_redis


def test_restore(
    ctx: OpsContext, chosen: Chosen, holder: Holder, source: str, purpose: str = VERIFY
) -> tuple[str, dict[str, Any]]:
    rdb_object(chosen.manifest)  # one RDB: a multi-shard export does not fit one server
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
