"""The test restore of a time-series backup for ``invoke verify``.

The newest backup (one window of every measurement, Parquet) is restored into a scratch database
``<database>_verify_<holder tag>`` (``_dr_test_`` for the monthly drill) on the store's own InfluxDB
server, the points per measurement in the window counted and compared with the manifest's counts,
and the database dropped, also when the restore or the comparison fails. A database of that name
that already exists is refused, never written to or dropped. The holder tag in the name
(``drkit.ops.scratch``) lets the next run, or ``invoke verify --cleanup``, drop a database a killed
run left.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from drkit.context import OpsContext
from drkit.endpoints import influx_endpoint
from drkit.influx import quote_ident
from drkit.ops.scratch import (
    VERIFY,
    Holder,
    RestoreDiffers,
    ScratchExists,
    database_name,
    parse_database,
    sweep,
)
from drkit.ops.selection import Chosen
from drkit.restore.timeseries import restore_timeseries

INFIX = "_verify_"


def scratch_database(database: str, holder: Holder, purpose: str = VERIFY) -> str:
    return database_name(database, holder, purpose)


def test_restore(
    ctx: OpsContext, chosen: Chosen, holder: Holder, source: str, purpose: str = VERIFY
) -> tuple[str, dict[str, Any]]:
    """Restore ``chosen`` (read from ``source`` already: ``chosen.objects``) into a scratch
    database on the store's server, compare, drop; (detail, figures) or raises."""
    server, database = influx_endpoint(ctx, chosen.store)
    scratch = scratch_database(database, holder, purpose)
    if scratch in server.databases():
        raise ScratchExists(
            f"scratch database {scratch!r} already exists on {server.address}: refused, not "
            "replaced (drop it, or run `invoke verify --cleanup` if a killed verify left it)"
        )
    try:
        result = restore_timeseries([chosen.manifest], chosen.objects, server, scratch)
    finally:
        server.query(f"DROP DATABASE {quote_ident(scratch)}", write=True)
    expected = chosen.manifest.counts
    wrong: dict[str, tuple[int | None, int | None]] = {
        m: (result.counts.get(m), n) for m, n in expected.items() if result.counts.get(m) != n
    }
    wrong |= {m: (n, None) for m, n in result.counts.items() if m not in expected}
    backup = chosen.entry.backup_id
    if wrong:
        raise RestoreDiffers(
            f"backup {backup} restored into scratch database {scratch} (dropped): points per "
            f"measurement (restored, manifest) differ: {wrong}"
        )
    total = sum(result.counts.values())
    return (
        f"{backup}: {total:,} points of {len(result.counts)} measurements in "
        f"[{result.window.start:%Y-%m-%d %H:%M}, {result.window.end:%H:%M}) match the manifest "
        f"(scratch database {scratch}, dropped)",
        {"points": total, "measurements": dict(result.counts), "scratch_database": scratch},
    )


def cleanup(ctx: OpsContext, store: str, now: datetime, forced: bool, dry_run: bool) -> list[str]:
    """Drop the scratch databases of ``store`` that killed runs left; one line per one found."""
    server, database = influx_endpoint(ctx, store)
    found = [(n, h) for n in server.databases() if (h := parse_database(n, database)) is not None]

    def drop(name: str) -> None:
        server.query(f"DROP DATABASE {quote_ident(name)}", write=True)

    return sweep(found, now, forced, dry_run, drop, "database", ("drop", "dropped"))
