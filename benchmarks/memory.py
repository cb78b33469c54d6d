"""Memory: our backup's and restore's peak RSS at 1x and 4x the data size must be the same.

The engine streams (one compressed part per destination plus a short queue) and the restore feeds
``pg_restore`` from a stream, so memory is a constant of the code, not of the data. The 4x figures
are the PostgreSQL sections' own runs when they ran in this invocation (same command, same
database); the 1x database is generated here at a quarter of the size.
"""

from __future__ import annotations

import json
import time

from benchmarks.environment import Bench
from benchmarks.measure import run_measured
from benchmarks.pgdata import (
    TradingDatabase,
    create_database,
    drop_database,
    trading_database,
)
from benchmarks.report import MB, Runs, Section, Table, mebibytes


def _backup_runs(bench: Bench, db: TradingDatabase) -> tuple[Runs, str]:
    runs = Runs("ours backup", bench.show(bench.ours("pg-backup", "--database", db.name)))
    manifest_key = ""
    for _ in range(bench.options.runs):
        sample = run_measured(
            bench.ours("pg-backup", "--database", db.name), env=bench.postgres_env(db.name)
        )
        if manifest_key:
            bench.clear(manifest_key.rsplit("/", 1)[0] + "/")
        manifest_key = str(json.loads(sample.stdout)["manifest_key"])
        runs.add(sample)
    return runs, manifest_key


def _restore_runs(bench: Bench, manifest_key: str) -> Runs:
    command = bench.ours("pg-restore", "--manifest", manifest_key, "--database", "restore_memory")
    runs = Runs("ours restore", bench.show(command))
    for _ in range(bench.options.runs):
        create_database(bench, "restore_memory")
        runs.add(run_measured(command, env=bench.postgres_env("postgres")))
        drop_database(bench, "restore_memory")
    return runs


def memory_section(bench: Bench) -> Section:
    started = time.monotonic()
    full_mb = bench.options.postgres_mb
    small = trading_database(bench, max(4, full_mb // 4))
    large = trading_database(bench, full_mb)
    small_backup, small_key = _backup_runs(bench, small)
    small_restore = _restore_runs(bench, small_key)
    bench.clear(small_key.rsplit("/", 1)[0] + "/")
    cached_backup = bench.cache.get("pg-ours-backup")
    cached_restore = bench.cache.get("pg-ours-restore")
    reused = isinstance(cached_backup, Runs) and isinstance(cached_restore, Runs)
    if isinstance(cached_backup, Runs) and isinstance(cached_restore, Runs):
        large_backup, large_restore = cached_backup, cached_restore
    else:
        large_backup, large_key = _backup_runs(bench, large)
        large_restore = _restore_runs(bench, large_key)
        bench.clear(large_key.rsplit("/", 1)[0] + "/")
    scale = large.size / small.size
    rows = []
    growth = {}
    for name, one, four in (
        ("backup (S3 + GCS)", small_backup, large_backup),
        ("restore (from S3)", small_restore, large_restore),
    ):
        change = four.rss.median / one.rss.median if one.rss.median else float("nan")
        growth[name] = change
        rows.append([name, mebibytes(one.rss), mebibytes(four.rss), f"{change:.2f}x"])
    section = Section(
        key="memory",
        title="Memory against data size",
        summary=(
            f"Peak RSS of our backup and restore process trees (Python, `pg_dump` or"
            f" `pg_restore`) on a database of {small.size / MB:,.0f} MB (1x) and one of"
            f" {large.size / MB:,.0f} MB ({scale:.1f}x). Flat means streaming: the size of"
            " the data does not reach memory."
        ),
        commands={"backup": small_backup.command, "restore": small_restore.command},
        tables=[
            Table(
                [
                    "",
                    f"1x ({small.size / MB:,.0f} MB)",
                    f"{scale:.1f}x ({large.size / MB:,.0f} MB)",
                    "growth",
                ],
                rows,
            )
        ],
        notes=[
            "The larger database's figures are the runs of sections 1 and 2 (same command, same"
            " data)."
            if reused
            else "Both sizes were measured here.",
        ],
        headlines=[
            f"Memory: our peak RSS at {scale:.1f}x the data is"
            f" {growth['backup (S3 + GCS)']:.2f}x (backup) and"
            f" {growth['restore (from S3)']:.2f}x (restore) that at 1x: it does not grow with"
            " the data."
            if max(growth.values()) < 1.25
            else f"Memory: our peak RSS grows {max(growth.values()):.2f}x from 1x to"
            f" {scale:.1f}x the data: see the memory section.",
        ],
        data={
            "small": {"bytes": small.size, "backup": small_backup.as_dict()}
            | {"restore": small_restore.as_dict()},
            "large": {"bytes": large.size, "backup": large_backup.as_dict()}
            | {"restore": large_restore.as_dict()},
            "growth": growth,
        },
    )
    section.seconds = time.monotonic() - started
    return section
