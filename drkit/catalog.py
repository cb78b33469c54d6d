"""The backup catalog: what exists per store, without one request per manifest, append-only.

A store backed up every 15 minutes has ~2,900 backups in 30 days; listing, picking a recovery point
and checking freshness must not read 2,900 manifests. And under the vault's Object Lock and the
mirror's locked retention policy nothing may be rewritten, so nothing in the catalog ever is.
Every object below is written once (create-only) and never replaced or deleted:

- ``catalog/<store>/<YYYY>/<MM>/<DD>/<backup id>.json``: one **entry** per committed backup,
  written by the engine right after the manifest (one line of JSON: sizes, counts, recovery point).
- ``catalog/<store>/<YYYY>/<MM>/<DD>.upto/<backup id>.jsonl``: a **day checkpoint**, every entry
  of the day up to and including that backup, written by the same run after its entry: the
  previous checkpoint plus the entries since. Runs of a store never overlap (``drkit.lease``), so
  the day's newest checkpoint holds the whole day; an entry a failed catalog write left out is
  still listed from its own object.
- ``catalog/<store>/<YYYY>/<MM>/<DD>.jsonl``: a day segment of catalogs written before entries
  existed (one per day, rewritten per backup): read as the oldest checkpoint of its day.
- ``catalog/<store>/verified/<backup id>/<YYYYMMDDTHHMMSSZ>``: a **verification record**, empty,
  one per successful test restore of a backup; its key says which backup and when.
- ``catalog/<store>/checked/<backup id>/<YYYYMMDDTHHMMSSZ>``: the same for a passed integrity
  check (``verify``'s rotating sample, ``verify --all``), which picks what it checks from these.

Reading a window of a store is one LIST of its catalog from the window's first day (1,000 keys a
page: ~6 pages for 30 days at 96 a day), one GET per day (its newest checkpoint, in parallel),
one GET per entry no checkpoint covers (normally none), and one LIST of its verification records.
30 days of 5 stores at 96 a day: ~185 requests (``benchmarks/catalog.py``). A checkpoint grows
through its day (the 96th holds 96 lines, ~40 KB): ~2 MB a store and day in all, kept as long as
the backups.

The catalog is derived data: the manifests stay the truth, and ``rebuild`` adds the entries that
are missing (never replacing one).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from pydantic import BaseModel, ConfigDict

from drkit.backup.manifest import MANIFEST_NAME, Manifest
from drkit.storage.objectstore import (
    Encryption,
    ObjectExists,
    ObjectInfo,
    ObjectNotFound,
    ObjectStore,
)

CATALOG_PREFIX = "catalog/"
VERIFIED = "verified/"
CHECKED = "checked/"
CHECKPOINT = ".upto/"
PARALLEL_READS = 16
LIST_PAGE = 1000


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


def store_prefix(store: str) -> str:
    return f"{CATALOG_PREFIX}{store}/"


def segment_key(store: str, day: date) -> str:
    """The day segment of an older catalog (read only)."""
    return f"{store_prefix(store)}{day:%Y/%m/%d}.jsonl"


def checkpoint_key(store: str, backup_id: str) -> str:
    return f"{store_prefix(store)}{_day_of(backup_id):%Y/%m/%d}{CHECKPOINT}{backup_id}.jsonl"


def entry_key(store: str, backup_id: str) -> str:
    return f"{store_prefix(store)}{_day_of(backup_id):%Y/%m/%d}/{backup_id}.json"


def verified_key(store: str, backup_id: str, at: datetime, kind: str = VERIFIED) -> str:
    return f"{store_prefix(store)}{kind}{backup_id}/{at.astimezone(UTC):%Y%m%dT%H%M%SZ}"


def _day_of(backup_id: str) -> date:
    return datetime.strptime(backup_id[:8], "%Y%m%d").date()


@dataclass
class DayListing:
    """What the LIST shows of one day of a store."""

    legacy: bool = False
    """An older catalog's day segment exists."""
    checkpoints: list[str] = field(default_factory=list)
    """Backup ids with a checkpoint, ascending."""
    entries: list[str] = field(default_factory=list)
    """Backup ids with an entry object, ascending."""

    @property
    def newest_checkpoint(self) -> str | None:
        return self.checkpoints[-1] if self.checkpoints else None


def _parse(store: str, key: str) -> tuple[date, str, str] | None:
    """(day, what, backup id) of a catalog key: what is segment, checkpoint or entry."""
    rest = key[len(store_prefix(store)) :]
    try:
        if rest.endswith(".jsonl") and rest.count("/") == 2:
            return datetime.strptime(rest[: -len(".jsonl")], "%Y/%m/%d").date(), "segment", ""
        folder, _, name = rest.rpartition("/")
        if folder.endswith(CHECKPOINT[:-1]) and name.endswith(".jsonl"):
            day = datetime.strptime(folder[: -len(CHECKPOINT) + 1], "%Y/%m/%d").date()
            return day, "checkpoint", name[: -len(".jsonl")]
        if name.endswith(".json") and rest.count("/") == 3:
            return datetime.strptime(folder, "%Y/%m/%d").date(), "entry", name[: -len(".json")]
    except ValueError:
        return None
    return None


class Catalog:
    """The catalog of one vault (or mirror)."""

    def __init__(self, store: ObjectStore, encryption: Encryption | str | None = None) -> None:
        self.objects = store
        self.requests = 0
        """LIST pages and GETs this catalog has made (what ``backups.list`` reports)."""
        self._count = threading.Lock()
        # Entries, checkpoints and records are locked like the backups they describe.
        self.encryption = (
            encryption if isinstance(encryption, Encryption) else Encryption(kms_key_id=encryption)
        )

    # --- reading ---------------------------------------------------------------------------

    def _counted(self, requests: int) -> None:
        with self._count:
            self.requests += requests

    def _list(self, prefix: str, start_after: str) -> Iterator[ObjectInfo]:
        self._counted(1)
        for n, item in enumerate(self.objects.list_objects(prefix, start_after), start=1):
            if n % LIST_PAGE == 0:
                self._counted(1)
            yield item

    def _get(self, key: str) -> bytes:
        self._counted(1)
        return self.objects.get_bytes(key)

    def days(self, store: str, first: date, last: date) -> dict[date, DayListing]:
        """One LIST from ``first``: each day in [first, last] with catalog objects."""
        prefix = store_prefix(store)
        start_after = f"{prefix}{first - timedelta(days=1):%Y/%m/%d}/~"
        found: dict[date, DayListing] = {}
        for item in self._list(prefix, start_after):
            if item.key[len(prefix) : len(prefix) + 1].isalpha():
                break  # the records (checked/, verified/) come after every day
            parsed = _parse(store, item.key)
            if parsed is None:
                continue
            day, what, backup_id = parsed
            if day > last:
                break  # keys come in order: no further page is fetched
            listing = found.setdefault(day, DayListing())
            if what == "segment":
                listing.legacy = True
            elif what == "checkpoint":
                listing.checkpoints.append(backup_id)
            else:
                listing.entries.append(backup_id)
        return found

    def segment_days(self, store: str, first: date, last: date) -> list[date]:
        """The days in [first, last] with backups of ``store``, oldest first (one LIST)."""
        return sorted(self.days(store, first, last))

    def read_entry(self, store: str, backup_id: str) -> CatalogEntry | None:
        try:
            return CatalogEntry.model_validate_json(self._get(entry_key(store, backup_id)))
        except ObjectNotFound:
            return None

    def _read_lines(self, key: str) -> list[CatalogEntry]:
        try:
            body = self._get(key)
        except ObjectNotFound:
            return []
        return [CatalogEntry.model_validate_json(line) for line in body.splitlines() if line]

    def _checkpoint(self, store: str, day: date, listing: DayListing) -> list[CatalogEntry]:
        newest = listing.newest_checkpoint
        if newest is not None:
            return self._read_lines(checkpoint_key(store, newest))
        return self._read_lines(segment_key(store, day)) if listing.legacy else []

    def read_segment(self, store: str, day: date) -> list[CatalogEntry]:
        """Every backup of ``store`` started on ``day``, in backup id order."""
        return self._read_days(store, {day: self.days(store, day, day).get(day, DayListing())})

    def _read_days(self, store: str, days: dict[date, DayListing]) -> list[CatalogEntry]:
        with ThreadPoolExecutor(PARALLEL_READS) as pool:
            jobs = list(days.items())
            read = pool.map(lambda job: self._checkpoint(store, *job), jobs)
            found = {e.backup_id: e for entries in read for e in entries}
            loose = [b for listing in days.values() for b in listing.entries if b not in found]
            for entry in pool.map(lambda b: self.read_entry(store, b), loose):
                if entry is not None:
                    found[entry.backup_id] = entry
        return sorted(found.values(), key=lambda e: e.backup_id)

    def verifications(self, store: str, first: date, kind: str = VERIFIED) -> dict[str, datetime]:
        """The last record of ``kind`` (test restore, or integrity check with ``CHECKED``) of
        each backup of ``store`` started on or after ``first``: one LIST, no GET."""
        prefix = f"{store_prefix(store)}{kind}"
        last: dict[str, datetime] = {}
        start_after = f"{prefix}{first - timedelta(days=1):%Y%m%d}~"
        for item in self._list(prefix, start_after):
            backup_id, _, stamp = item.key[len(prefix) :].partition("/")
            try:
                at = datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
            except ValueError:
                continue
            if backup_id not in last or at > last[backup_id]:
                last[backup_id] = at
        return last

    def _with_verifications(
        self, store: str, entries: list[CatalogEntry], first: date
    ) -> list[CatalogEntry]:
        checked = self.verifications(store, first)
        return [_verified(e, checked.get(e.backup_id)) for e in entries]

    def store_entries(self, store: str, first: date, last: date) -> list[CatalogEntry]:
        """Every backup of ``store`` started in [first, last] (days), with its last check."""
        entries = self._read_days(store, self.days(store, first, last))
        return self._with_verifications(store, entries, first)

    def entries(
        self, stores: Iterable[str], since: datetime, until: datetime | None = None
    ) -> list[CatalogEntry]:
        """Every backup of ``stores`` whose recovery point is in [since, until], oldest first."""
        until = until or datetime.now(UTC)
        # A backup's id (its start) is at most its recovery point: start a day early.
        first, last = since.date() - timedelta(days=1), until.date()
        names = list(stores)
        with ThreadPoolExecutor(max(1, len(names))) as pool:
            per_store = list(pool.map(lambda s: self.store_entries(s, first, last), names))
        found = [e for entries in per_store for e in entries if since <= e.recovery_point <= until]
        return sorted(found, key=lambda e: (e.recovery_point, e.store))

    def newest(self, store: str, day: date, limit: datetime) -> CatalogEntry | None:
        """The newest backup of ``store`` started on ``day`` whose recovery point is at or before
        ``limit``: the day's newest checkpoint (one GET), then any entry newer than it, newest
        first, until one fits (runs of a store never overlap: later ids, later points)."""
        listing = self.days(store, day, day).get(day)
        if listing is None:
            return None
        candidates = {e.backup_id: e for e in self._checkpoint(store, day, listing)}
        for backup_id in reversed(listing.entries):
            if backup_id in candidates:
                continue
            entry = self.read_entry(store, backup_id)
            if entry is not None and entry.recovery_point <= limit:
                candidates[backup_id] = entry
                break
        fitting = [e for e in candidates.values() if e.recovery_point <= limit]
        return max(fitting, key=lambda e: e.recovery_point) if fitting else None

    def find(self, backup_id: str, stores: Iterable[str]) -> CatalogEntry | None:
        day = _day_of(backup_id)
        for store in stores:
            entry = self.read_entry(store, backup_id)
            if entry is None:
                entry = next(
                    (e for e in self.read_segment(store, day) if e.backup_id == backup_id), None
                )
            if entry is not None:
                return self._with_verifications(store, [entry], day)[0]
        return None

    # --- writing (create-only) ---------------------------------------------------------------

    def add(self, entry: CatalogEntry, checkpoint: bool = True) -> bool:
        """Write ``entry``'s object, then (``checkpoint``) its day's checkpoint; False when the
        entry was already there (nothing is ever replaced). Without the checkpoint (a writer that
        may not read the catalog back) the entry is still listed, from its own object."""
        if not self._create(entry_key(entry.store, entry.backup_id), entry.model_dump_json()):
            return False
        if not checkpoint:
            return True
        day = _day_of(entry.backup_id)
        listing = self.days(entry.store, day, day).get(day, DayListing())
        entries = {e.backup_id: e for e in self._read_days(entry.store, {day: listing})}
        entries[entry.backup_id] = entry
        self.write_checkpoint(entry.store, [e for b, e in entries.items() if b <= entry.backup_id])
        return True

    def write_checkpoint(self, store: str, entries: Iterable[CatalogEntry]) -> bool:
        """Write a day checkpoint of ``entries`` (one day's), named after the newest of them:
        what ``add`` writes after each backup, in one go (imports, tests, benchmarks)."""
        ordered = sorted({e.backup_id: e for e in entries}.values(), key=lambda e: e.backup_id)
        if not ordered:
            return False
        body = "".join(e.model_dump_json() + "\n" for e in ordered)
        return self._create(checkpoint_key(store, ordered[-1].backup_id), body)

    def record(self, manifest: Manifest, checkpoint: bool = True) -> bool:
        """Add a committed backup."""
        return self.add(CatalogEntry.of(manifest), checkpoint)

    def mark_verified(self, entry: CatalogEntry, at: datetime) -> CatalogEntry:
        """Record a successful check of ``entry`` (a new record; the entry is never rewritten)."""
        self._create(verified_key(entry.store, entry.backup_id, at), "")
        return entry.model_copy(update={"verified_at": at})

    def mark_checked(self, entry: CatalogEntry, at: datetime) -> None:
        """Record a passed integrity check of ``entry``."""
        self._create(verified_key(entry.store, entry.backup_id, at, CHECKED), "")

    def rebuild(self, prefixes: Iterable[str]) -> int:
        """Add the entries missing for the manifests under ``prefixes`` (``<class>/<store>/``);
        returns how many were added."""
        added = 0
        for prefix in prefixes:
            for item in _manifests(self.objects, prefix):
                manifest = Manifest.model_validate(json.loads(self.objects.get_bytes(item)))
                entry = CatalogEntry.of(manifest)
                if self.read_entry(entry.store, entry.backup_id) is None and self.add(entry):
                    added += 1
        return added

    def _create(self, key: str, body: str) -> bool:
        try:
            self.objects.put_bytes(key, body.encode(), self.encryption)
        except ObjectExists:
            return False
        return True


def _verified(entry: CatalogEntry, at: datetime | None) -> CatalogEntry:
    if at is None or (entry.verified_at is not None and entry.verified_at >= at):
        return entry
    return entry.model_copy(update={"verified_at": at})


def _manifests(objects: ObjectStore, prefix: str) -> Iterator[str]:
    for item in objects.list_objects(prefix):
        if item.key.endswith("/" + MANIFEST_NAME):
            yield item.key
