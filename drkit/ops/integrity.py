"""Every backup that could be restored is checked, not only the newest: ``verify``'s integrity
step, and ``verify --all``.

**Which backups.** ``--all``: every committed backup of the store in its retention window. By
default: the newest, plus a rotating sample of the others, oldest check first (never-checked
ones before all), ``ceil(n / 7)`` of them: run daily, as the verify CronJob is, every backup in
the window is checked at least once a week. Each passed check leaves a record in the catalog
(``catalog/<store>/checked/…``), which is what the rotation reads, so it needs no other state.
The step reports coverage: backups in the window, checked by this run, checked within the last
week, never checked.

**What is checked**, in bounded requests, reading no data object:

- the manifest is bound to its backup: path, prefix, catalog entry (``BackupIndex.manifest``),
  and each object's metadata names this backup (a HEAD per object, ``check_objects``);
- every object is in the vault and in the mirror at its size and with the fingerprint the store
  returned when it was written (the S3 ETag, the GCS MD5): one LIST of the backup's prefix per
  copy. An object replaced since (a new version in the vault) has another fingerprint. An object
  written before fingerprints were recorded is read through once (SHA-256) instead;
- Kafka: each incremental's parent is in the catalog, and the chain is continuous: every
  partition starts where its parent ended, or the gap between is one the backup recorded as
  lost to Kafka's retention.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from drkit.backup.binding import ManifestNotBound, check_objects
from drkit.backup.kafka import KafkaPoint
from drkit.backup.manifest import MANIFEST_NAME, Manifest
from drkit.catalog import CHECKED, Catalog, CatalogEntry
from drkit.kinds import of_manifest
from drkit.ops.selection import verify_checksums
from drkit.recovery import BackupIndex, RecoveryError
from drkit.storage.objectstore import Encryption, ObjectStore, ObjectStoreError

WEEK = timedelta(days=7)
RUNS_PER_WEEK = 7
"""The verify CronJob runs daily: a seventh of the window per run covers it in a week."""


@dataclass
class Coverage:
    store: str
    in_window: int = 0
    checked: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    checked_within_week: int = 0
    never_checked: int = 0

    @property
    def percent(self) -> float:
        return round(100.0 * self.checked_within_week / self.in_window, 1) if self.in_window else 0

    def describe(self) -> str:
        return (
            f"{len(self.checked)} of {self.in_window} backups in the retention window checked "
            f"now ({len(self.failed)} failed); {self.checked_within_week}/{self.in_window} "
            f"({self.percent}%) checked within the last week, {self.never_checked} never"
        )

    def figures(self) -> dict[str, Any]:
        return {
            "in_window": self.in_window,
            "checked": len(self.checked),
            "failed": len(self.failed),
            "checked_within_week": self.checked_within_week,
            "never_checked": self.never_checked,
            "coverage_percent": self.percent,
        }


def sample(
    entries: Sequence[CatalogEntry], checked: dict[str, datetime], now: datetime
) -> list[CatalogEntry]:
    """The newest backup, then the ones whose last check is oldest (never first), up to a
    seventh of the window: daily runs check each one at least once a week."""
    if not entries:
        return []
    newest, older = entries[-1], list(entries[:-1])
    never = datetime.min.replace(tzinfo=UTC)
    due = [e for e in older if now - checked.get(e.backup_id, never) >= WEEK - timedelta(hours=1)]
    due.sort(key=lambda e: (checked.get(e.backup_id, never), e.backup_id))
    return [newest, *due[: math.ceil(len(entries) / RUNS_PER_WEEK)]]


def check_backup(
    index: BackupIndex,
    copies: Sequence[ObjectStore],
    entry: CatalogEntry,
    parents: dict[str, CatalogEntry],
) -> Manifest:
    """Raise ``RecoveryError`` or ``ObjectStoreError`` naming the first problem found."""
    source = copies[0]
    manifest = index.manifest(entry)  # path, prefix and catalog entry agree
    try:
        check_objects(source, manifest)  # each object's metadata names this backup
    except ManifestNotBound as error:
        raise RecoveryError(str(error)) from None
    manifest_size = None
    for copy in copies:
        listed = {info.key: info for info in copy.list_objects(manifest.prefix)}
        manifest_info = listed.get(manifest.prefix + MANIFEST_NAME)
        if manifest_info is None:
            raise RecoveryError(f"{copy.name}/{manifest.prefix}{MANIFEST_NAME} is missing")
        if manifest_size is not None and manifest_info.size != manifest_size:
            raise RecoveryError(
                f"{copy.name}/{manifest.prefix}{MANIFEST_NAME} is {manifest_info.size} bytes, "
                f"the other copy's {manifest_size}: one was altered"
            )
        manifest_size = manifest_info.size
        unfingerprinted = []
        for item in manifest.objects:
            info = listed.get(item.key)
            if info is None:
                raise RecoveryError(f"{copy.name}/{item.key} is missing")
            if info.size != item.size:
                raise RecoveryError(
                    f"{copy.name}/{item.key} is {info.size} bytes, its manifest says {item.size}"
                )
            expected = item.fingerprints.get(copy.name)
            if expected is None:
                unfingerprinted.append(item)
            elif info.fingerprint != expected:
                raise RecoveryError(
                    f"{copy.name}/{item.key} is not the object that was written (fingerprint "
                    f"{info.fingerprint}, written {expected}): replaced since"
                )
        if unfingerprinted:  # written before fingerprints were recorded: read it through
            verify_checksums(copy, unfingerprinted)
    kind = of_manifest(manifest.kind)
    if kind is not None and kind.backup.chains is not None:
        kind.backup.chains(index, manifest, parents)
    return manifest


def check_kafka_continuity(
    index: BackupIndex, manifest: Manifest, parents: dict[str, CatalogEntry]
) -> None:
    """An incremental Kafka backup continues its parent: it starts where the parent ended."""
    point = KafkaPoint.of(manifest)
    if point.incremental_from is None:
        return
    parent_entry = parents.get(point.incremental_from) or index.catalog.find(
        point.incremental_from, [manifest.store]
    )
    if parent_entry is None:
        raise RecoveryError(
            f"Kafka backup {manifest.backup_id} is incremental on {point.incremental_from}, "
            "which is not in the catalog: the chain is broken"
        )
    parent = KafkaPoint.of(index.manifest(parent_entry))
    gaps = {(g.topic, g.partition): g for g in point.lost_to_retention}
    for topic, starts in point.start_offsets.items():
        for partition, start in starts.items():
            end = parent.end_offsets.get(topic, {}).get(partition)
            if end is None or start == end:
                continue  # a partition new since the parent starts at the log's start
            gap = gaps.get((topic, int(partition)))
            if gap is not None and gap.from_offset == end and gap.to_offset == start:
                continue  # lost to Kafka's retention before the backup ran, and recorded
            raise RecoveryError(
                f"Kafka backup {manifest.backup_id}: {topic}/{partition} starts at offset {start}"
                f", but its parent {point.incremental_from} ended at {end}: the chain is broken"
            )


def check_store(
    index: BackupIndex,
    copies: Sequence[ObjectStore],
    store: str,
    now: datetime,
    everything: bool,
    encryption: Encryption,
) -> Coverage:
    """Check the store's backups in its retention window (all, or the rotating sample); each
    pass is recorded (create-only, under ``encryption``) for the next run's rotation."""
    retention = index.retention(store)
    first = (now - retention).date()
    catalog = index.catalog
    entries = catalog.store_entries(store, first, now.date())
    entries = [e for e in entries if now - retention <= e.recovery_point <= now]
    checked = catalog.verifications(store, first, CHECKED)
    chosen = list(entries) if everything else sample(entries, checked, now)
    coverage = Coverage(store, in_window=len(entries))
    by_id = {e.backup_id: e for e in entries}
    for entry in chosen:
        try:
            check_backup(index, copies, entry, by_id)
        except (RecoveryError, ObjectStoreError, ValueError) as error:
            coverage.failed[entry.backup_id] = str(error)
            continue
        coverage.checked.append(entry.backup_id)
        Catalog(catalog.objects, encryption).mark_checked(entry, now)
        checked[entry.backup_id] = now
    recent = [e for e in entries if now - checked.get(e.backup_id, now - 2 * WEEK) < WEEK]
    coverage.checked_within_week = len(recent)
    coverage.never_checked = sum(1 for e in entries if e.backup_id not in checked)
    return coverage
