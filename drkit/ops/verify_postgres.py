"""The test restore of a PostgreSQL backup for ``invoke verify`` and the monthly drill: into a
scratch database (``drkit.ops.scratch_postgres``: on the store's own server, or on a throwaway
server where the exported endpoint is a read-only standby, where the backup's roles are created
without passwords; on a dr stack that exports the store's Aurora cluster, a scratch cluster
restored from it instead, ``drkit.ops.scratch_aurora``), rows counted per table against the
manifest, then the schema fingerprint, content checksums and sequence states the backup recorded
compared (``drkit.pg_exact``: the first difference named), the database dropped."""

from __future__ import annotations

from typing import Any

from drkit.context import OpsContext
from drkit.ops import scratch_aurora
from drkit.ops.scratch import VERIFY, CheckMissed, Holder
from drkit.ops.scratch_aurora import aurora_cluster
from drkit.ops.scratch_postgres import read_only_reason, scratch_database
from drkit.ops.selection import Chosen
from drkit.restore.postgres import compare_restored, count_rows, restore_postgres


def test_restore(
    ctx: OpsContext, chosen: Chosen, holder: Holder, source: str, purpose: str = VERIFY
) -> tuple[str, dict[str, Any]]:
    throwaway = read_only_reason(ctx, chosen.store) is not None
    if throwaway and aurora_cluster(ctx, chosen.store) is not None:
        return scratch_aurora.test_restore(ctx, chosen, holder, purpose)
    with scratch_database(ctx, chosen.store, holder, purpose) as scratch:
        restore_postgres(chosen.manifest, chosen.objects, scratch.target, create_roles=throwaway)
        found = count_rows(scratch.target, list(chosen.manifest.counts))
        difference, compared = compare_restored(chosen.manifest, scratch.target)
    detail, figures = _compare(chosen, found, "rows", scratch.where)
    if difference is not None:
        raise CheckMissed(
            f"{chosen.entry.backup_id}: the test restore differs from the backup's snapshot in "
            f"{scratch.where}: {difference}"
        )
    return f"{detail}; {compared}", figures | {"scratch_database": scratch.target.database}


def _compare(
    chosen: Chosen, found: dict[str, int], what: str, where: str
) -> tuple[str, dict[str, Any]]:
    expected = chosen.manifest.counts
    wrong = {k: (found.get(k), n) for k, n in expected.items() if found.get(k) != n}
    if wrong:
        raise CheckMissed(f"{what} (restored, manifest) differ in {where}: {wrong}")
    return (
        f"{chosen.entry.backup_id}: {sum(found.values()):,} {what} in {len(found)} tables "
        f"match the manifest ({where})",
        {what: sum(found.values())},
    )
