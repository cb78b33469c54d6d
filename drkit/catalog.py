"""The backup catalog: what exists per store, without one request per manifest.

A store backed up every 15 minutes has ~2,900 backups in 30 days; listing, picking a recovery point
and checking freshness must not read 2,900 manifests. The engine appends a one-line summary of each
committed backup to a daily segment, ``catalog/<store>/<YYYY>/<MM>/<DD>.jsonl`` in the vault, so
30 days of a store are 30 small GETs, fetched in parallel.

Segments are rewritten (read, append, write): only one run of a store runs at a time (the CronJobs
forbid concurrency). The catalog is derived data: the manifests stay the truth, ``rebuild`` rewrites
the segments from them, and its objects are locked for a day only (GOVERNANCE), so old versions
of a segment expire with the vault's lifecycle instead of living for seven years.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta

from pydantic import BaseModel, ConfigDict

from drkit.backup.manifest import MANIFEST_NAME, Manifest
from drkit.storage.objectstore import Encryption, ObjectNotFound, ObjectStore

CATALOG_PREFIX = "catalog/"
SEGMENT_LOCK_DAYS = 1
PARALLEL_READS = 16


class CatalogEntry(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    backup_id: str
    store: str
    kind: str
    data_class: str
    started_at: datetime
    finished_at: datetime
    recovery_point: datetime
    size: int
    raw_size: int
    objects: int
    manifest_key: str
    counts: dict[str, int] = {}
    verified_at: datetime | None = None

    @classmethod
    def of(cls, manifest: Manifest) -> CatalogEntry:
        return cls(
            backup_id=manifest.backup_id,
            store=manifest.store,
            kind=manifest.kind,
            data_class=manifest.data_class,
            started_at=manifest.started_at,
            finished_at=manifest.finished_at,
            recovery_point=manifest.recovery_point,
            size=manifest.size,
            raw_size=manifest.raw_size,
            objects=len(manifest.objects),
            manifest_key=manifest.prefix + MANIFEST_NAME,
            counts=manifest.counts,
        )


def segment_key(store: str, day: date) -> str:
    return f"{CATALOG_PREFIX}{store}/{day:%Y/%m/%d}.jsonl"


def _day_of(backup_id: str) -> date:
    return datetime.strptime(backup_id[:8], "%Y%m%d").date()


class Catalog:
    """The catalog of one vault (or mirror)."""

    def __init__(self, store: ObjectStore, kms_key_id: str | None = None) -> None:
        self.objects = store
        self.kms_key_id = kms_key_id

    def read_segment(self, store: str, day: date) -> list[CatalogEntry]:
        try:
            body = self.objects.get_bytes(segment_key(store, day))
        except ObjectNotFound:
            return []
        return [CatalogEntry.model_validate_json(line) for line in body.splitlines() if line]

    def segment_days(self, store: str, first: date, last: date) -> list[date]:
        """The days in [first, last] that have a segment, oldest first: one LIST (a page per
        1,000 days), so finding the newest backup of a quiet store is not a GET per day."""
        prefix = f"{CATALOG_PREFIX}{store}/"
        days = []
        for item in self.objects.list_objects(prefix):
            try:
                day = datetime.strptime(item.key[len(prefix) :], "%Y/%m/%d.jsonl").date()
            except ValueError:
                continue
            if first <= day <= last:
                days.append(day)
        return sorted(days)

    def write_segment(self, store: str, day: date, entries: Iterable[CatalogEntry]) -> None:
        ordered = sorted({e.backup_id: e for e in entries}.values(), key=lambda e: e.backup_id)
        body = "".join(entry.model_dump_json() + "\n" for entry in ordered).encode()
        lock = Encryption(
            kms_key_id=self.kms_key_id,
            lock_mode="GOVERNANCE",
            lock_until=datetime.now(UTC) + timedelta(days=SEGMENT_LOCK_DAYS),
        )
        self.objects.put_bytes(segment_key(store, day), body, lock)

    def record(self, manifest: Manifest) -> None:
        """Add a committed backup (idempotent: the same backup id replaces its line)."""
        self.upsert(CatalogEntry.of(manifest))

    def upsert(self, entry: CatalogEntry) -> None:
        day = _day_of(entry.backup_id)
        entries = [e for e in self.read_segment(entry.store, day) if e.backup_id != entry.backup_id]
        self.write_segment(entry.store, day, [*entries, entry])

    def mark_verified(self, entry: CatalogEntry, at: datetime) -> CatalogEntry:
        updated = entry.model_copy(update={"verified_at": at})
        self.upsert(updated)
        return updated

    def entries(
        self, stores: Iterable[str], since: datetime, until: datetime | None = None
    ) -> list[CatalogEntry]:
        """Every backup of ``stores`` whose recovery point is in [since, until], oldest first."""
        until = until or datetime.now(UTC)
        days = [
            since.date() + timedelta(days=n) for n in range((until.date() - since.date()).days + 2)
        ]
        jobs = [(store, day) for store in stores for day in days]
        with ThreadPoolExecutor(PARALLEL_READS) as pool:
            segments = pool.map(lambda job: self.read_segment(*job), jobs)
        found = [e for segment in segments for e in segment if since <= e.recovery_point <= until]
        return sorted(found, key=lambda e: (e.recovery_point, e.store))

    def find(self, backup_id: str, stores: Iterable[str]) -> CatalogEntry | None:
        day = _day_of(backup_id)
        for store in stores:
            for entry in self.read_segment(store, day):
                if entry.backup_id == backup_id:
                    return entry
        return None

    def rebuild(self, prefixes: Iterable[str]) -> int:
        """Rewrite the segments from the manifests under ``prefixes`` (``<class>/<store>/``)."""
        by_segment: dict[tuple[str, date], list[CatalogEntry]] = {}
        for prefix in prefixes:
            for item in self.objects.list_objects(prefix):
                if item.key.endswith("/" + MANIFEST_NAME):
                    manifest = Manifest.model_validate(json.loads(self.objects.get_bytes(item.key)))
                    entry = CatalogEntry.of(manifest)
                    by_segment.setdefault((entry.store, _day_of(entry.backup_id)), []).append(entry)
        for (store, day), entries in by_segment.items():
            self.write_segment(store, day, entries)
        return sum(len(entries) for entries in by_segment.values())
