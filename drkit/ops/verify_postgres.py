"""The test restore of a PostgreSQL backup for ``invoke verify`` and the monthly drill: into a
scratch database (``drkit.ops.scratch_postgres``: on the store's own server, or on a throwaway
server where the exported endpoint is a read-only standby), rows counted per table against the
manifest, the database dropped."""

from __future__ import annotations

from typing import Any

from drkit.context import OpsContext
from drkit.ops.scratch import VERIFY, CheckMissed, Holder
from drkit.ops.scratch_postgres import scratch_database
from drkit.ops.selection import Chosen
from drkit.restore.postgres import count_rows, restore_postgres


def test_restore(
    ctx: OpsContext, chosen: Chosen, holder: Holder, source: str, purpose: str = VERIFY
) -> tuple[str, dict[str, Any]]:
    with scratch_database(ctx, chosen.store, holder, purpose) as scratch:
        restore_postgres(chosen.manifest, chosen.objects, scratch.target)
        found = count_rows(scratch.target, list(chosen.manifest.counts))
    detail, figures = _compare(chosen, found, "rows", scratch.where)
    return detail, figures | {"scratch_database": scratch.target.database}


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
