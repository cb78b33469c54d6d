"""The test restore of a PostgreSQL backup for ``invoke verify``: into a new database on the
store's own server, rows counted per table against the manifest, the database dropped."""

from __future__ import annotations

import secrets
from typing import Any

import psycopg
from psycopg import sql

from drkit.context import OpsContext
from drkit.endpoints import postgres_source
from drkit.ops.scratch import CheckMissed, Holder
from drkit.ops.selection import Chosen
from drkit.restore.postgres import count_rows, restore_postgres


def test_restore(
    ctx: OpsContext, chosen: Chosen, holder: Holder, source: str
) -> tuple[str, dict[str, Any]]:
    server = postgres_source(ctx, chosen.store)
    database = f"{server.database}_verify_{secrets.token_hex(3)}"[:63]
    target = postgres_source(ctx, chosen.store, database)
    with psycopg.connect(server.conninfo("postgres"), autocommit=True) as connection:
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
    try:
        restore_postgres(chosen.manifest, chosen.objects, target)
        found = count_rows(target, list(chosen.manifest.counts))
    finally:
        with psycopg.connect(server.conninfo("postgres"), autocommit=True) as connection:
            connection.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database))
            )
    return _compare(chosen, found, "rows", f"scratch database {database} (dropped)")


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
