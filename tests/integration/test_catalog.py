"""The catalog: every committed backup is listed, 30 days of 5 stores cost ~150 small GETs (not
one per manifest), and it can be rebuilt from the manifests."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from drkit.backup.engine import Destinations, run_backup
from drkit.backup.postgres import PostgresHandler, PostgresSource
from drkit.catalog import Catalog, CatalogEntry
from drkit.local.postgres import LocalPostgres
from drkit.storage.s3 import S3Store

pytestmark = pytest.mark.integration

STORES = ["trading-db", "event-stream", "session-cache", "app-state", "market-ticks"]


def synthetic_history(now: datetime, days: int, per_day: int) -> list[CatalogEntry]:
    entries = []
    for store in STORES:
        for n in range(days * per_day):
            at = now - timedelta(minutes=15 * n)
            backup_id = f"{at:%Y%m%dT%H%M%SZ}-{n:06x}"
            entries.append(
                CatalogEntry(
                    backup_id=backup_id,
                    store=store,
                    kind="postgres",
                    data_class="user-data",
                    started_at=at,
                    finished_at=at,
                    recovery_point=at,
                    size=1000 + n,
                    raw_size=5000 + n,
                    objects=1,
                    manifest_key=f"user-data/{store}/{at:%Y/%m/%d}/{backup_id}/manifest.json",
                )
            )
    return entries


def count_requests(client: Any) -> Counter[str]:
    calls: Counter[str] = Counter()
    client.meta.events.register("before-call.s3.*", lambda model, **_: calls.update([model.name]))
    return calls


def test_thirty_days_of_five_stores_in_one_request_per_store_and_day(
    destinations: Destinations,
) -> None:
    vault = destinations.vault
    assert isinstance(vault, S3Store)
    catalog = Catalog(vault)
    now = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
    history = synthetic_history(now, days=30, per_day=96)
    by_segment: dict[tuple[str, Any], list[CatalogEntry]] = {}
    for entry in history:
        by_segment.setdefault((entry.store, entry.recovery_point.date()), []).append(entry)
    for (store, day), entries in by_segment.items():
        catalog.write_segment(store, day, entries)

    calls = count_requests(vault.client)
    listed = catalog.entries(STORES, since=now - timedelta(days=30), until=now)
    assert len(listed) == 5 * 30 * 96 == len(history)
    assert calls["GetObject"] <= 5 * 32  # one per store and day (+ the edges), never per backup
    assert calls["GetObject"] < len(listed) / 50
    assert [e.recovery_point for e in listed] == sorted(e.recovery_point for e in listed)
    newest = max(listed, key=lambda e: e.recovery_point)
    assert newest.recovery_point == now


def test_backups_are_recorded_and_the_catalog_rebuilds_from_manifests(
    postgres_server: LocalPostgres, destinations: Destinations
) -> None:
    postgres_server.create_database("catalogued")
    source = PostgresSource(
        postgres_server.host,
        postgres_server.port,
        "catalogued",
        postgres_server.user,
        postgres_server.password,
    )
    manifests = [
        run_backup("trading-db", "user-data", PostgresHandler(source), destinations)
        for _ in range(3)
    ]
    for store in destinations.stores:
        catalog = Catalog(store)
        since = manifests[0].started_at - timedelta(minutes=1)
        listed = catalog.entries(["trading-db"], since=since)
        assert [e.backup_id for e in listed] == [m.backup_id for m in manifests]
        assert listed[-1].size == manifests[-1].size
        assert catalog.find(manifests[1].backup_id, ["trading-db"]) == listed[1]

    vault = Catalog(destinations.vault)
    day = manifests[0].started_at.date()
    vault.write_segment("trading-db", day, [])  # lose the catalog
    assert vault.entries(["trading-db"], since=manifests[0].started_at - timedelta(1)) == []
    assert vault.rebuild(["user-data/trading-db/"]) == 3
    rebuilt = vault.entries(["trading-db"], since=manifests[0].started_at - timedelta(1))
    assert [e.backup_id for e in rebuilt] == [m.backup_id for m in manifests]
