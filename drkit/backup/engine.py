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
from drkit.catalog import Catalog
from drkit.storage.objectstore import Encryption, ObjectStore, ObjectStoreError
from drkit.storage.tee import TeeWriter

log = logging.getLogger("drkit.backup")

ZSTD_LEVEL = 3
"""Level 3 with two worker threads compresses faster than pg_dump produces on this hardware."""
COMPRESSED_CHUNK = 1024 * 1024


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

    @property
    def prefix(self) -> str:
        """This backup's folder; a service that writes into the vault itself is pointed here."""
        return self._prefix

    @property
    def vault(self) -> ObjectStore:
        return self._destinations.vault

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
        # The chunker hands back compressed output as it is produced (1 MiB pieces). Unlike
        # compressobj() with worker threads, it never lets output pile up behind the input.
        chunker = (
            zstandard.ZstdCompressor(level=ZSTD_LEVEL, threads=self._zstd_threads).chunker(
                chunk_size=COMPRESSED_CHUNK
            )
            if compress
            else None
        )
        raw_size = 0
        for chunk in chunks:
            raw_size += len(chunk)
            if chunker is None:
                tee.write(chunk)
            else:
                for piece in chunker.compress(chunk):
                    tee.write(piece)
            if self._progress is not None:
                self._progress(name, raw_size)
        if chunker is not None:
            for piece in chunker.finish():  # type: ignore[no-untyped-call]
                tee.write(piece)
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

    def register_external(
        self,
        name: str,
        key: str,
        content: str,
        on_chunk: Callable[[bytes], None] | None = None,
    ) -> StoredObject:
        """Adopt an object that a service wrote into the vault (an ElastiCache export to S3).

        It is read back once: that read gives its size and SHA-256 for the manifest, copies it
        to the other destinations (the mirror) byte for byte, and feeds ``on_chunk`` (to count
        what is inside). Stored as is, so ``compression`` is ``none``.
        """
        if not key.startswith(self._prefix):
            raise ValueError(f"{key!r} is outside this backup's prefix {self._prefix!r}")
        vault = self._destinations.vault
        tee = TeeWriter(
            {
                store.name: store.writer(key, self._destinations.encryption)
                for store in self._destinations.stores
                if store is not vault
            }
        )
        self._open.append(tee)
        for chunk in vault.open_stream(key):
            tee.write(chunk)
            if on_chunk is not None:
                on_chunk(chunk)
            if self._progress is not None:
                self._progress(name, tee.size)
        tee.commit()
        self._open.remove(tee)
        stored = StoredObject(
            name=name,
            key=key,
            size=tee.size,
            sha256=tee.sha256,
            raw_size=tee.size,
            compression="none",
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
    _abort_uploads_of_dead_runs(destinations, f"{data_class}/{store}/")
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
        _record_in_catalogs(destinations, manifest)
    except BaseException as error:
        session.abort()
        _remove_partial(destinations, prefix)
        log.error(
            "backup failed",
            extra={"store": store, "backup_id": backup_id, "error": _describe(error)},
        )
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


def _record_in_catalogs(destinations: Destinations, manifest: Manifest) -> None:
    """The catalog is derived from the manifests: a failure here is logged, never fatal."""
    for target in destinations.stores:
        try:
            Catalog(target, destinations.encryption.kms_key_id).record(manifest)
        except (ObjectStoreError, ValueError) as error:
            log.warning(
                "catalog of %s not updated (rebuild it from the manifests): %s", target.name, error
            )


def _abort_uploads_of_dead_runs(destinations: Destinations, prefix: str) -> None:
    """A killed run cannot abort its multipart upload; the next run of the store does.

    Runs of one store never overlap (the CronJobs forbid concurrency), so an upload pending under
    the store's prefix when a run starts belongs to a run that died.
    """
    for target in destinations.stores:
        aborted = target.abort_pending_uploads(prefix)
        if aborted:
            log.warning(
                "aborted %d upload(s) left by a killed run under %s/%s",
                aborted,
                target.name,
                prefix,
            )


def _remove_partial(destinations: Destinations, prefix: str) -> None:
    """Best effort: data objects without a manifest are not a backup, but they confuse people."""
    for target in destinations.stores:
        try:
            target.delete_prefix(prefix)
        except ObjectStoreError as error:
            log.warning("could not remove a partial backup: %s", error)


def _describe(error: BaseException) -> str:
    """What went wrong, for the log record: the exception's type and message."""
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
