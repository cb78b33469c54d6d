"""The engine every backup runs through: stream each object once to the vault and the mirror,
then write the manifest last. A failure anywhere aborts the uploads and writes no manifest.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import zstandard

from drkit.backup.manifest import (
    MANIFEST_NAME,
    Manifest,
    StoredObject,
    backup_prefix,
    new_backup_id,
)
from drkit.storage.objectstore import Encryption, ObjectStore, ObjectStoreError
from drkit.storage.tee import TeeWriter

log = logging.getLogger("drkit.backup")

ZSTD_LEVEL = 3
"""Level 3 with two worker threads compresses faster than pg_dump produces on this hardware."""


class BackupFailed(RuntimeError):
    """The backup did not complete; nothing that looks like a backup was left behind."""


@dataclass(frozen=True)
class Destinations:
    """Where a backup's objects go: the vault always, the mirror when the stack has one."""

    vault: ObjectStore
    mirror: ObjectStore | None = None
    encryption: Encryption = field(default_factory=Encryption)

    @property
    def stores(self) -> list[ObjectStore]:
        return [self.vault] + ([self.mirror] if self.mirror is not None else [])


@dataclass
class Capture:
    """What a handler reports besides its objects."""

    source: dict[str, Any] = field(default_factory=dict)
    tool_versions: dict[str, str] = field(default_factory=dict)
    consistent_point: dict[str, Any] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)


Progress = Callable[[str, int], None]
"""Called with (object name, raw bytes so far) as a stream advances."""


class BackupSession:
    """Handed to a handler: writes its objects under this backup's prefix."""

    def __init__(
        self,
        destinations: Destinations,
        prefix: str,
        progress: Progress | None = None,
        zstd_threads: int = 2,
    ) -> None:
        self._destinations = destinations
        self._prefix = prefix
        self._progress = progress
        self._zstd_threads = zstd_threads
        self.objects: list[StoredObject] = []
        self._open: list[TeeWriter] = []

    def write_stream(
        self, name: str, chunks: Iterable[bytes], content: str, compress: bool = True
    ) -> StoredObject:
        """Compress and upload one object from a stream, reading it exactly once."""
        key = self._prefix + name + (".zst" if compress else "")
        tee = TeeWriter(
            {
                store.name: store.writer(key, self._destinations.encryption)
                for store in self._destinations.stores
            }
        )
        self._open.append(tee)
        compressor = (
            zstandard.ZstdCompressor(level=ZSTD_LEVEL, threads=self._zstd_threads).compressobj()
            if compress
            else None
        )
        raw_size = 0
        for chunk in chunks:
            raw_size += len(chunk)
            tee.write(compressor.compress(chunk) if compressor else chunk)
            if self._progress is not None:
                self._progress(name, raw_size)
        if compressor is not None:
            tee.write(compressor.flush())
        tee.commit()
        self._open.remove(tee)
        stored = StoredObject(
            name=name,
            key=key,
            size=tee.size,
            sha256=tee.sha256,
            raw_size=raw_size,
            compression="zstd" if compress else "none",
            content=content,
        )
        self.objects.append(stored)
        return stored

    def abort(self) -> None:
        for tee in self._open:
            tee.abort()
        self._open.clear()


class Handler(Protocol):
    """One per kind of data store: streams the store's data through the session."""

    kind: str

    def backup(self, session: BackupSession) -> Capture: ...


def run_backup(
    store: str,
    data_class: str,
    handler: Handler,
    destinations: Destinations,
    progress: Progress | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Manifest:
    """Take one backup: objects first, manifest last (the commit)."""
    started_at = now()
    backup_id = new_backup_id(started_at)
    prefix = backup_prefix(data_class, store, backup_id)
    session = BackupSession(destinations, prefix, progress)
    clock = time.monotonic()
    log.info("backup started", extra={"store": store, "backup_id": backup_id, "prefix": prefix})
    try:
        capture = handler.backup(session)
        manifest = Manifest(
            backup_id=backup_id,
            store=store,
            kind=handler.kind,
            data_class=data_class,
            source=capture.source,
            tool_versions=capture.tool_versions,
            started_at=started_at,
            finished_at=now(),
            consistent_point=capture.consistent_point,
            counts=capture.counts,
            objects=session.objects,
            destinations=[s.name for s in destinations.stores],
            encryption={"kms_key_id": destinations.encryption.kms_key_id},
        )
        body = manifest.model_dump_json(indent=2).encode()
        for target in reversed(destinations.stores):  # the vault's manifest is the commit: last
            target.put_bytes(prefix + MANIFEST_NAME, body, destinations.encryption)
    except BaseException as error:
        session.abort()
        _remove_partial(destinations, prefix)
        log.error("backup failed", extra={"store": store, "backup_id": backup_id})
        if isinstance(error, (KeyboardInterrupt, SystemExit)):
            raise
        raise BackupFailed(f"backup of {store} ({backup_id}) failed: {error}") from error
    log.info(
        "backup finished",
        extra={
            "store": store,
            "backup_id": backup_id,
            "bytes": manifest.size,
            "seconds": round(time.monotonic() - clock, 3),
        },
    )
    return manifest


def _remove_partial(destinations: Destinations, prefix: str) -> None:
    """Best effort: data objects without a manifest are not a backup, but they confuse people."""
    for target in destinations.stores:
        try:
            target.delete_prefix(prefix)
        except ObjectStoreError as error:
            log.warning("could not remove a partial backup: %s", error)
