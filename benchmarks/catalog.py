"""The backup catalog: listing 30 days of 5 stores backed up every 15 minutes takes seconds.

14,400 backups are written to the S3 emulator as the engine records them, append-only: per backup
an entry object and a day checkpoint (the day so far); then ``Catalog.entries`` lists them all,
as ``invoke backups.list`` or a restore's choice of recovery point does, counting the HTTP
requests it makes. Reading the manifests instead would be one GET per backup.
"""

from __future__ import annotations

import secrets
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

from benchmarks.environment import Bench
from benchmarks.measure import Figure
from benchmarks.report import Section, Table, spread
from drkit.catalog import Catalog, CatalogEntry, entry_key
from drkit.storage.s3 import S3Store


def _entries(store: str, day: datetime, per_day: int) -> list[CatalogEntry]:
    step = timedelta(days=1) / per_day
    entries = []
    for n in range(per_day):
        at = day + n * step + timedelta(seconds=30)
        backup_id = f"{at:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"
        entries.append(
            CatalogEntry(
                backup_id=backup_id,
                store=store,
                kind="postgres",
                data_class="user-data",
                started_at=at,
                finished_at=at + timedelta(seconds=40),
                recovery_point=at,
                size=180_000_000 + n,
                raw_size=500_000_000 + n,
                objects=1,
                manifest_key=f"user-data/{store}/{at:%Y/%m/%d}/{backup_id}/manifest.json",
                counts={"public.orders": 7_000_000 + n, "public.market_ticks": 7_000_000 + n},
            )
        )
    return entries


class _Counter:
    def __init__(self) -> None:
        self.requests = 0

    def __call__(self, **_: Any) -> None:
        self.requests += 1


def catalog_section(bench: Bench) -> Section:
    started = time.monotonic()
    options = bench.options
    bucket = f"catalog-{secrets.token_hex(4)}"
    s3 = bench.servers.aws.s3()
    s3.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)  # as the vault
    stores = [f"store-{n}" for n in range(options.catalog_stores)]
    first_day = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(
        days=options.catalog_days
    )
    vault = S3Store(s3, bucket)
    writer = Catalog(vault, bench.kms_key_id)
    clock = time.monotonic()
    days = [
        (store, _entries(store, first_day + timedelta(days=offset), options.catalog_per_day))
        for store in stores
        for offset in range(options.catalog_days)
    ]

    def record_day(job: tuple[str, list[CatalogEntry]]) -> int:
        # What the engine leaves per backup: its entry and a checkpoint named after it. The
        # reader opens only a day's newest checkpoint, so the earlier ones hold their own line
        # here (in production the day so far): the keys, and so the LIST pages, are the same.
        store, entries = job
        for n, entry in enumerate(entries):
            vault.put_bytes(entry_key(store, entry.backup_id), entry.model_dump_json().encode())
            writer.write_checkpoint(store, entries[: n + 1] if n == len(entries) - 1 else [entry])
        return len(entries)

    with ThreadPoolExecutor(16) as pool:
        total = sum(pool.map(record_day, days))
    write_seconds = time.monotonic() - clock
    since = first_day
    until = first_day + timedelta(days=options.catalog_days) - timedelta(seconds=1)
    seconds, requests, found = [], [], []
    for _ in range(options.runs):
        client = bench.servers.aws.s3()  # fresh: no connection or cache from the writes
        counter = _Counter()
        client.meta.events.register("before-send.s3", counter)
        clock = time.monotonic()
        listed = Catalog(S3Store(client, bucket)).entries(stores, since, until)
        seconds.append(time.monotonic() - clock)
        requests.append(float(counter.requests))
        found.append(float(len(listed)))
    took, asked = Figure(seconds), Figure(requests)
    complete = all(int(n) == total for n in found)
    label = (
        f"{options.catalog_days} days x {options.catalog_stores} stores x"
        f" {options.catalog_per_day}/day"
    )
    section = Section(
        key="catalog",
        title="Backup catalog listing",
        summary=(
            f"{total:,} backups ({label}) recorded in the S3 emulator as the engine records"
            f" them, append-only: an entry and a day checkpoint each ({2 * total:,} objects,"
            f" written in {write_seconds:.1f} s); `Catalog.entries` then lists every one of them"
            " for the whole window (a LIST per store, the newest checkpoint of each day, 16 reads"
            " in parallel) through a fresh S3 client."
        ),
        commands={"ours": "Catalog(S3Store(client, bucket)).entries(stores, since, until)"},
        tables=[
            Table(
                ["", "measured"],
                [
                    ["backups listed", f"{int(found[0]) if found else 0:,} of {total:,}"],
                    ["wall time", spread(took, "s", digits=2)],
                    ["HTTP requests to S3", spread(asked, digits=0)],
                    ["requests if every manifest were read", f"{total:,}"],
                ],
                label,
            )
        ],
        notes=[
            "Requests are counted at botocore's `before-send` (every HTTP request, retries"
            " included): per store the LIST pages of its catalog (1,000 keys each, two keys per"
            " backup), one GET per day, and one LIST of its verification records.",
        ],
        headlines=[
            f"Catalog: listing {label} ({total:,} backups) takes {spread(took, 's', digits=2)}"
            f" in {spread(asked, digits=0)} requests"
            + ("" if complete else " (**some backups were missing from the listing**)")
            + ".",
        ],
        data={
            "backups": total,
            "seconds": took.as_dict(),
            "requests": asked.as_dict(),
            "listed": found,
            "write_seconds": write_seconds,
        },
    )
    section.seconds = time.monotonic() - started
    return section
