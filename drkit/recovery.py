"""Choosing what to restore: the latest backup, the newest at or before a time, or one by id;
and, for several stores restored together, one recovery point for all of them.

Every refusal names the input and what would have been acceptable, and happens before anything
is changed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from drkit.backup.binding import ManifestNotBound, check_manifest
from drkit.backup.manifest import MANIFEST_NAME, Manifest, backup_prefix
from drkit.catalog import Catalog, CatalogEntry
from drkit.storage.objectstore import ObjectNotFound, ObjectStore
from stackmodels import StackConfig

BACKUP_ID = re.compile(r"^\d{8}T\d{6}Z-[0-9a-f]{6}$")


class RecoveryError(ValueError):
    """The requested recovery point cannot be served; nothing was changed."""


def parse_timestamp(text: str) -> datetime:
    """ISO 8601; a time without a zone is UTC (the seeds' scripts all speak UTC)."""
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise RecoveryError(
            f"--at {text!r} is not a timestamp; use ISO 8601, e.g. 2026-11-21T03:15:00Z"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Selection:
    store: str
    entry: CatalogEntry


class BackupIndex:
    """The catalog of one vault, read with the stack's retention rules."""

    def __init__(self, config: StackConfig, vault: ObjectStore) -> None:
        self.config = config
        self.vault = vault
        self.catalog = Catalog(vault)

    def retention(self, store: str) -> timedelta:
        data_class = self.config.stores[store].data_class
        return timedelta(days=self.config.retention_of(data_class).days)

    def latest(
        self, store: str, at: datetime | None = None, now: datetime | None = None
    ) -> CatalogEntry:
        """The newest backup of ``store`` whose recovery point is at or before ``at``."""
        now = now or datetime.now(UTC)
        if at is not None:
            self._check_time(store, at, now)
        limit = at or now
        oldest_allowed = now - self.retention(store)
        # The usual case, a backup on the day of the limit or the day before, costs one or two
        # GETs; past those, one LIST finds the days that have backups (never a GET per day).
        first, day = oldest_allowed.date(), limit.date()
        for _ in range(2):
            if day < first:
                break
            found = self._newest_in(store, day, limit)
            if found is not None:
                return found
            day -= timedelta(days=1)
        if day >= first:
            for older in reversed(self.catalog.segment_days(store, first, day)):
                found = self._newest_in(store, older, limit)
                if found is not None:
                    return found
        where = f"at or before {limit.isoformat()}" if at else "within its retention"
        raise RecoveryError(f"no backup of {store!r} {where} in {self.vault.name}")

    def _newest_in(self, store: str, day: date, limit: datetime) -> CatalogEntry | None:
        return self.catalog.newest(store, day, limit)

    def by_id(self, store: str, backup_id: str) -> CatalogEntry:
        if not BACKUP_ID.match(backup_id):
            raise RecoveryError(
                f"backup id {backup_id!r} is malformed; ids look like 20261121T041500Z-3f9a1c"
            )
        entry = self.catalog.find(backup_id, [store])
        if entry is not None:
            return entry
        manifest = self._manifest_by_id(store, backup_id)
        if manifest is None:
            raise RecoveryError(
                f"backup {backup_id!r} of {store!r} does not exist in {self.vault.name} "
                "(see `invoke backups.list`)"
            )
        return CatalogEntry.of(manifest)

    def manifest(self, entry: CatalogEntry) -> Manifest:
        """The entry's manifest, bound to it: its path, its prefix and the entry's facts agree
        (``drkit.backup.binding``), or a ``RecoveryError`` before anything is changed."""
        try:
            body = self.vault.get_bytes(entry.manifest_key)
        except ObjectNotFound:
            raise RecoveryError(
                f"backup {entry.backup_id} is in the catalog but its manifest "
                f"{self.vault.name}/{entry.manifest_key} is gone"
            ) from None
        manifest = Manifest.model_validate(json.loads(body))
        try:
            check_manifest(
                manifest,
                entry.manifest_key,
                entry.model_dump(
                    include={"backup_id", "store", "manifest_key", "objects", "size", "counts"}
                ),
            )
        except ManifestNotBound as error:
            raise RecoveryError(f"{self.vault.name}: {error}") from None
        return manifest

    def common_point(
        self, stores: Iterable[str], at: datetime | None = None, now: datetime | None = None
    ) -> tuple[datetime, list[Selection], timedelta]:
        """One recovery point for several stores: the newest time at which every store has a
        backup at or before it. Returns it, each store's backup, and the skew between them."""
        names = list(stores)
        now = now or datetime.now(UTC)
        newest = {store: self.latest(store, at, now) for store in names}
        point = min(entry.recovery_point for entry in newest.values())
        chosen = [
            Selection(store, self._at_or_after(store, point, newest[store], now)) for store in names
        ]
        points = [s.entry.recovery_point for s in chosen]
        return point, chosen, max(points) - min(points)

    def _at_or_after(
        self, store: str, point: datetime, newest: CatalogEntry, now: datetime
    ) -> CatalogEntry:
        """The newest backup at or before ``point``; for a store whose backups all came later,
        the first one after it (the skew says how far apart the stores are then)."""
        try:
            return self.latest(store, point, now)
        except RecoveryError:
            later = self.catalog.entries([store], point, newest.recovery_point)
            return min(later, key=lambda e: e.recovery_point) if later else newest

    def _check_time(self, store: str, at: datetime, now: datetime) -> None:
        if at > now:
            raise RecoveryError(
                f"--at {at.isoformat()} is in the future (now is {now.isoformat()})"
            )
        oldest = now - self.retention(store)
        if at < oldest:
            raise RecoveryError(
                f"--at {at.isoformat()} is older than the retention of {store!r} "
                f"({self.retention(store).days} days): nothing before {oldest.isoformat()} is kept"
            )

    def _manifest_by_id(self, store: str, backup_id: str) -> Manifest | None:
        data_class = self.config.stores[store].data_class
        key = backup_prefix(data_class, store, backup_id) + MANIFEST_NAME
        try:
            manifest = Manifest.model_validate(json.loads(self.vault.get_bytes(key)))
        except ObjectNotFound:
            return None
        try:
            check_manifest(manifest, key)
        except ManifestNotBound as error:
            raise RecoveryError(f"{self.vault.name}: {error}") from None
        return manifest
