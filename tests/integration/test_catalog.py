"""The catalog: every committed backup is listed, 30 days of 5 stores cost under 200 requests
(not one per manifest), nothing in it is ever rewritten, and it can be rebuilt from the manifests.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from google.api_core.exceptions import Forbidden

from drkit.backup.engine import BackupFailed, BackupSession, Capture, Destinations, run_backup
from drkit.backup.manifest import MANIFEST_NAME
from drkit.backup.postgres import PostgresHandler, PostgresSource
from drkit.catalog import CATALOG_PREFIX, Catalog, CatalogEntry, entry_key, segment_key
from drkit.local.postgres import LocalPostgres
from drkit.storage.gcs import GcsStore
from drkit.storage.objectstore import ObjectExists
from drkit.storage.s3 import S3Store

pytestmark = pytest.mark.integration

STORES = ["trading-db", "event-stream", "session-cache", "app-state", "market-ticks"]


def synthetic_day(store: str, day: datetime, count: int) -> list[CatalogEntry]:
    entries = []
    for n in range(count):
        at = day + timedelta(minutes=15 * n)
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


def versions(client: Any, bucket: str) -> Counter[str]:
    found: Counter[str] = Counter()
    for page in client.get_paginator("list_object_versions").paginate(Bucket=bucket):
        found.update(v["Key"] for v in page.get("Versions", []))
    return found


def test_thirty_days_of_five_stores_in_under_two_hundred_requests(
    destinations: Destinations,
) -> None:
    vault = destinations.vault
    assert isinstance(vault, S3Store)
    catalog = Catalog(vault)
    today = datetime(2026, 11, 21, tzinfo=UTC)
    history: list[CatalogEntry] = []
    for store in STORES:
        for back in range(30, 0, -1):  # 30 closed days: each day's last checkpoint
            day = synthetic_day(store, today - timedelta(days=back), 96)
            catalog.write_checkpoint(store, day)
            history += day
        for entry in synthetic_day(store, today, 6):  # today so far, as the engine adds them
            assert catalog.add(entry)
            history.append(entry)
    now = today + timedelta(hours=2)

    calls = count_requests(vault.client)
    listed = Catalog(vault).entries(STORES, since=today - timedelta(days=30), until=now)
    assert len(listed) == 5 * (30 * 96 + 6) == len(history)
    assert sum(calls.values()) <= 200, calls  # 5 x (LIST, 31 checkpoints, LIST verified)
    assert calls["GetObject"] == 5 * 31  # one per store and day, never one per backup
    assert [e.recovery_point for e in listed] == sorted(e.recovery_point for e in listed)
    assert max(e.recovery_point for e in listed) == today + timedelta(minutes=75)

    calls.clear()
    newest = Catalog(vault).newest("trading-db", today.date(), now)
    assert newest is not None and newest.backup_id == history[30 * 96 + 5].backup_id
    assert sum(calls.values()) == 2  # the day's LIST and its newest checkpoint


def test_backups_are_recorded_once_and_the_catalog_rebuilds_from_manifests(
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
    since = manifests[0].started_at - timedelta(minutes=1)
    for store in destinations.stores:
        catalog = Catalog(store)
        listed = catalog.entries(["trading-db"], since=since)
        assert [e.backup_id for e in listed] == [m.backup_id for m in manifests]
        assert listed[-1].size == manifests[-1].size
        assert catalog.find(manifests[1].backup_id, ["trading-db"]) == listed[1]

    vault = destinations.vault
    assert isinstance(vault, S3Store)
    written = versions(vault.client, vault.bucket)
    assert written and max(written.values()) == 1, written  # no key was ever written twice
    assert not Catalog(vault).add(Catalog(vault).entries(["trading-db"], since)[0])  # not again

    # Lose the catalog as an operator with delete rights would (delete markers; the locked
    # versions stay): the manifests are the truth, and rebuild adds what is missing.
    catalog_keys = [item.key for item in vault.list_objects(CATALOG_PREFIX)]
    vault.client.delete_objects(
        Bucket=vault.bucket, Delete={"Objects": [{"Key": key} for key in catalog_keys]}
    )
    assert Catalog(vault).entries(["trading-db"], since=since) == []
    assert Catalog(vault).rebuild(["user-data/trading-db/"]) == 3
    rebuilt = Catalog(vault).entries(["trading-db"], since=since)
    assert [e.backup_id for e in rebuilt] == [m.backup_id for m in manifests]
    assert Catalog(vault).rebuild(["user-data/trading-db/"]) == 0  # nothing missing now


def test_a_rewrite_is_refused_and_names_the_key(destinations: Destinations) -> None:
    vault, mirror = destinations.vault, destinations.mirror
    assert isinstance(vault, S3Store) and isinstance(mirror, GcsStore)
    big = b"\1" * (6 * 1024 * 1024)  # over one 5 MiB part: the multipart path
    for store in (vault, mirror):
        store.put_bytes("small", b"first")
        with pytest.raises(ObjectExists, match=f"{store.name}/small exists"):
            store.put_bytes("small", b"second")
        writer = store.writer("big")
        writer.write(big)
        writer.commit()
        again = store.writer("big")
        again.write(big[:-1] + b"\2")
        with pytest.raises(ObjectExists, match=f"{store.name}/big exists"):
            again.commit()
        assert store.get_bytes("small") == b"first" and store.get_bytes("big") == big
    assert max(versions(vault.client, vault.bucket).values()) == 1

    # The mirror's retention policy, as the locked one in GCS: no replace, no delete, even
    # without the create-only precondition.
    blob = mirror.bucket.blob("small")
    with pytest.raises(Forbidden, match="retention policy and cannot be overwritten"):
        blob.upload_from_string(b"third")
    with pytest.raises(Forbidden, match="retention policy and cannot be deleted"):
        blob.delete()
    assert mirror.get_bytes("small") == b"first"
    assert mirror.exists(entry_key("trading-db", "20261121T000000Z-000000")) is False


def test_a_catalog_of_an_older_build_still_reads(destinations: Destinations) -> None:
    """Older builds kept one day segment per store (``<YYYY>/<MM>/<DD>.jsonl``), rewritten per
    backup: it reads as the day's oldest checkpoint, and new entries add to it."""
    vault = destinations.vault
    day = datetime(2026, 11, 20, tzinfo=UTC)
    old = synthetic_day("trading-db", day, 4)
    vault.put_bytes(
        segment_key("trading-db", day.date()),
        "".join(e.model_dump_json() + "\n" for e in old).encode(),
    )
    catalog = Catalog(vault)
    since, until = day - timedelta(hours=1), day + timedelta(days=1)
    assert catalog.entries(["trading-db"], since, until) == old
    later = synthetic_day("trading-db", day + timedelta(hours=2), 1)[0]
    assert catalog.add(later)
    assert catalog.entries(["trading-db"], since, until) == [*old, later]
    assert Catalog(vault).newest("trading-db", day.date(), until) == later
    assert Catalog(vault).find(old[1].backup_id, ["trading-db"]) == old[1]


def test_a_failed_run_deletes_nothing_and_is_never_listed(
    postgres_server: LocalPostgres, destinations: Destinations
) -> None:
    """Retention forbids deleting what a failed run finished: it is left, without a manifest,
    and nothing lists it; the next run is unaffected."""
    postgres_server.create_database("left_behind")
    source = PostgresSource(
        postgres_server.host,
        postgres_server.port,
        "left_behind",
        postgres_server.user,
        postgres_server.password,
    )

    class FailsAfterItsDump(PostgresHandler):
        def backup(self, session: BackupSession) -> Capture:
            super().backup(session)
            raise RuntimeError("the source went away after the dump")

    with pytest.raises(BackupFailed, match="went away"):
        run_backup("trading-db", "user-data", FailsAfterItsDump(source), destinations)
    for store in destinations.stores:
        left = [item.key for item in store.list_objects("user-data/trading-db/")]
        assert left and not any(key.endswith(MANIFEST_NAME) for key in left)  # left, no commit
    good = run_backup("trading-db", "user-data", PostgresHandler(source), destinations)
    since = good.started_at - timedelta(hours=1)
    for store in destinations.stores:
        assert [e.backup_id for e in Catalog(store).entries(["trading-db"], since)] == [
            good.backup_id
        ]
    vault = destinations.vault
    assert isinstance(vault, S3Store)
    assert max(versions(vault.client, vault.bucket).values()) == 1
