"""The engine every backup runs through: stream each object once to the vault and the mirror,
then write the manifest last. A failure anywhere aborts the uploads and writes no manifest; except
in the isolated account's vault (issue 22), whose failure drops the third copy alone: the vault and
the mirror still commit theirs (``IsolatedCopyFailed`` after the commit, unless the store's config
makes the third copy optional, and then the manifest's ``skipped`` says why it is missing).

Write once: every object, the manifest and the catalog entry are create-only, tagged with their
backup (``drkit.backup.binding``), and nothing is deleted afterwards, not even by a failed run:
its completed objects stay where retention put them, under a prefix that has no manifest, so
nothing lists them as a backup; their cost is bounded (below, ``_leave_partial``).

One run per store: the run holds the store's lease (``drkit.lease``) from before it reads the
source until after its catalog entry, and checks it still holds it before committing.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import zstandard

from drkit.backup.binding import object_metadata
from drkit.backup.manifest import (
    FORMAT_VERSION,
    MANIFEST_NAME,
    Manifest,
    StoredObject,
    backup_prefix,
    new_backup_id,
    parse_backup_prefix,
)
from drkit.bounds import io_bounds
from drkit.catalog import Catalog
from drkit.lease import DEFAULT_TTL, Lease, acquire, holder_id
from drkit.storage.objectstore import (
    Encryption,
    ObjectStore,
    ObjectStoreError,
    is_missing_bucket,
)
from drkit.storage.tee import TeeWriter

log = logging.getLogger("drkit.backup")

ZSTD_LEVEL = 3
"""Level 3 with two worker threads compresses faster than pg_dump produces on this hardware."""
COMPRESSED_CHUNK = 1024 * 1024


class BackupFailed(RuntimeError):
    """The backup did not complete; nothing that looks like a backup was left behind."""


class IsolatedCopyFailed(BackupFailed):
    """The vault and the mirror committed the backup (``manifest``), the isolated vault did not
    get it (no manifest there), and the store's config requires the third copy: a failed run."""

    def __init__(self, message: str, manifest: Manifest) -> None:
        super().__init__(message)
        self.manifest = manifest


@dataclass(frozen=True)
class Destinations:
    """Where a backup's objects go: the vault always, the mirror when the stack has one, and the
    isolated account's vault (issue 22) when the stack has one: three copies from one read.

    The isolated copy is written with the production writer's credentials, create-only, and
    encrypted with the isolated account's own key (``isolated_encryption``, which asks for no lock:
    the vault bucket's default retention applies, as its policy requires). A failure there (the
    endpoint unreachable, a write failing mid-stream, its manifest refused) drops the third copy
    only: the others go on and commit, and the run then fails naming the isolated bucket and the
    cause (``IsolatedCopyFailed``), unless ``isolated_optional`` (the store's ``isolated_copy:
    optional``), when it succeeds and its manifest says the copy was skipped and why."""

    vault: ObjectStore
    mirror: ObjectStore | None = None
    encryption: Encryption = field(default_factory=Encryption)
    isolated: ObjectStore | None = None
    isolated_encryption: Encryption | None = None
    isolated_optional: bool = False

    @property
    def stores(self) -> list[ObjectStore]:
        extra = [s for s in (self.mirror, self.isolated) if s is not None]
        return [self.vault, *extra]

    def encryption_of(self, store: ObjectStore) -> Encryption:
        """The isolated vault's key for the isolated copy; the vault key for the others."""
        if store is self.isolated and self.isolated_encryption is not None:
            return self.isolated_encryption
        return self.encryption


@dataclass
class Capture:
    """What a handler reports besides its objects."""

    source: dict[str, Any] = field(default_factory=dict)
    tool_versions: dict[str, str] = field(default_factory=dict)
    consistent_point: dict[str, Any] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    roles: list[dict[str, Any]] | None = None
    checks: dict[str, Any] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION
    """The layout of the objects, for the restore (PostgreSQL's parallel backup is 2)."""


Progress = Callable[[str, int], None]
"""Called with (object name, raw bytes so far) as a stream advances."""


class BackupSession:
    """Handed to a handler: writes its objects under this backup's prefix.

    Thread-safe: a handler may write several streams at once, each from its own thread (the
    PostgreSQL parallel backup); the objects list and the progress callback are serialised."""

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
        self.skipped: dict[str, str] = {}
        """Destinations dropped from this backup (the isolated vault, after a failure there), with
        the cause."""
        self._open: list[TeeWriter] = []
        self._lock = threading.Lock()
        parsed = parse_backup_prefix(prefix + "x")
        self._metadata = object_metadata(parsed[1], parsed[2]) if parsed else {}

    @property
    def prefix(self) -> str:
        """This backup's folder; a service that writes into the vault itself is pointed here."""
        return self._prefix

    @property
    def vault(self) -> ObjectStore:
        return self._destinations.vault

    @property
    def stores(self) -> list[ObjectStore]:
        """The vault, the mirror and the isolated vault that the stack has and that have not
        failed in this run: for what a handler puts itself."""
        return [s for s in self._destinations.stores if s.name not in self.skipped]

    @property
    def isolated(self) -> ObjectStore | None:
        """The isolated account's vault, while this backup still writes to it."""
        isolated = self._destinations.isolated
        return isolated if isolated is not None and isolated.name not in self.skipped else None

    def skip(self, store: ObjectStore, cause: str) -> None:
        """Drop ``store`` (the isolated vault) from the rest of this backup."""
        if store.name not in self.skipped:
            self.skipped[store.name] = cause
            log.error("isolated copy dropped: %s: %s", store.name, cause)

    def _tee(self, key: str, stores: list[ObjectStore]) -> TeeWriter:
        """One writer to ``stores``; the isolated vault's is detachable (its failure drops it)."""
        isolated = self._destinations.isolated
        return TeeWriter(
            {
                store.name: store.writer(
                    key, self._destinations.encryption_of(store), self._metadata
                )
                for store in stores
            },
            detachable=[isolated.name] if isolated is not None else [],
            cleanup=lambda call, doing: bounded(call, io_bounds().cleanup, doing),
        )

    def _settle(self, tee: TeeWriter) -> None:
        for name, cause in tee.detached.items():
            self.skipped.setdefault(name, cause)
            log.error("isolated copy dropped: %s", cause)

    @property
    def encryption(self) -> Encryption:
        """How this backup's objects are encrypted and locked; for what a handler puts itself."""
        return self._destinations.encryption

    def encryption_of(self, store: ObjectStore) -> Encryption:
        """How ``store``'s copy is sealed: the isolated vault's own key for the isolated copy."""
        return self._destinations.encryption_of(store)

    def write_stream(
        self,
        name: str,
        chunks: Iterable[bytes],
        content: str,
        compress: bool = True,
        zstd_threads: int | None = None,
    ) -> StoredObject:
        """Compress and upload one object from a stream, reading it exactly once.

        ``zstd_threads``: the compressor's worker threads for this stream (default the
        session's); a handler writing several streams at once gives 0 (compressed on the
        stream's own thread, without the workers' buffers)."""
        threads = self._zstd_threads if zstd_threads is None else zstd_threads
        key = self._prefix + name + (".zst" if compress else "")
        tee = self._tee(key, self.stores)
        with self._lock:
            self._open.append(tee)
        # The chunker hands back compressed output as it is produced (1 MiB pieces). Unlike
        # compressobj() with worker threads, it never lets output pile up behind the input.
        chunker = (
            zstandard.ZstdCompressor(level=ZSTD_LEVEL, threads=threads).chunker(
                chunk_size=COMPRESSED_CHUNK
            )
            if compress
            else None
        )
        raw_size = 0
        try:
            for chunk in chunks:
                raw_size += len(chunk)
                if chunker is None:
                    tee.write(chunk)
                else:
                    for piece in chunker.compress(chunk):
                        tee.write(piece)
                if self._progress is not None:
                    with self._lock:
                        self._progress(name, raw_size)
        except BaseException:
            # A destination failed (or the run was interrupted): end the producer now, so its
            # child process (pg_dump, redis-cli) is stopped and releases the source, instead of
            # blocking on a full pipe until the garbage collector gets to the generator.
            close_stream(chunks)
            raise
        if chunker is not None:
            for piece in chunker.finish():  # type: ignore[no-untyped-call]
                tee.write(piece)
        tee.commit()
        stored = StoredObject(
            name=name,
            key=key,
            size=tee.size,
            sha256=tee.sha256,
            raw_size=raw_size,
            compression="zstd" if compress else "none",
            content=content,
            fingerprints=tee.fingerprints,
        )
        with self._lock:
            self._open.remove(tee)
            self._settle(tee)
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
        tee = self._tee(key, [store for store in self.stores if store is not vault])
        self._open.append(tee)
        stream = vault.open_stream(key)
        try:
            for chunk in stream:
                tee.write(chunk)
                if on_chunk is not None:
                    on_chunk(chunk)
                if self._progress is not None:
                    self._progress(name, tee.size)
        finally:
            close_stream(stream)
        tee.commit()
        self._open.remove(tee)
        self._settle(tee)
        stored = StoredObject(
            name=name,
            key=key,
            size=tee.size,
            sha256=tee.sha256,
            raw_size=tee.size,
            compression="none",
            content=content,
            fingerprints=tee.fingerprints,
        )
        self.objects.append(stored)
        return stored

    def abort(self) -> None:
        with self._lock:
            open_now, self._open = self._open, []
        for tee in open_now:
            tee.abort()


def close_stream(chunks: Iterable[bytes]) -> None:
    """Close a generator (running its ``finally``: a child process stopped, a file closed)."""
    close = getattr(chunks, "close", None)
    if close is not None:
        close()


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
    wait: timedelta = timedelta(0),
    lease_ttl: timedelta = DEFAULT_TTL,
) -> Manifest:
    """Take one backup: objects first, manifest last (the commit).

    Raises ``LeaseHeld`` (a refusal, nothing done) when another run of ``store`` holds its
    lease, after ``wait``; ``BackupFailed`` when the vault cannot be reached to take it (a
    failed run like any other: published, exit 1)."""
    try:
        lease = acquire(
            destinations.vault,
            f"backup/{store}",
            f"backup-{holder_id()}",
            f"backup of {store}",
            encryption=destinations.encryption,
            wait=wait,
            ttl=lease_ttl,
        )
    except ObjectStoreError as error:
        if is_missing_bucket(error):
            raise  # a vault that does not exist is a wrong name: a refusal, nothing done
        raise BackupFailed(f"backup of {store} failed before it began: {error}") from error
    try:
        manifest = _run_backup(store, data_class, handler, destinations, progress, now, lease)
    except BaseException:
        # The store may be what failed: the release is best effort, within the cleanup bound
        # (``drkit.bounds``); an unreleased lease expires on its own (``lease_ttl``).
        bounded(lease.release, io_bounds().cleanup, f"releasing the lease on {store}")
        raise
    lease.release()
    if manifest.skipped and not destinations.isolated_optional:
        committed = " and ".join(manifest.destinations)
        causes = "; ".join(f"{name}: {why}" for name, why in manifest.skipped.items())
        raise IsolatedCopyFailed(
            f"backup of {store} ({manifest.backup_id}) committed in {committed} only; the "
            f"isolated copy failed ({causes}) and the store's config requires it "
            "(isolated_copy: required)",
            manifest,
        )
    return manifest


def _run_backup(
    store: str,
    data_class: str,
    handler: Handler,
    destinations: Destinations,
    progress: Progress | None,
    now: Callable[[], datetime],
    lease: Lease,
) -> Manifest:
    started_at = now()
    backup_id = new_backup_id(started_at)
    prefix = backup_prefix(data_class, store, backup_id)
    session = BackupSession(destinations, prefix, progress)
    clock = time.monotonic()
    log.info("backup started", extra={"store": store, "backup_id": backup_id, "prefix": prefix})
    try:
        _abort_uploads_of_dead_runs(destinations, f"{data_class}/{store}/")
        capture = handler.backup(session)
        manifest = Manifest(
            format_version=capture.format_version,
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
            roles=capture.roles,
            checks=capture.checks,
            objects=session.objects,
            destinations=[s.name for s in session.stores],
            skipped=dict(session.skipped),
            encryption={"kms_key_id": destinations.encryption.kms_key_id},
        )
        metadata = object_metadata(store, backup_id)
        lease.check()  # a run whose lease was taken over must not commit
        isolated = destinations.isolated
        if isolated is not None and isolated.name not in session.skipped:
            # The third copy's manifest first (its own commit): refused or unreachable, it drops
            # the third copy only, and the other two manifests say so.
            try:
                isolated.put_bytes(
                    prefix + MANIFEST_NAME,
                    manifest.model_dump_json(indent=2).encode(),
                    destinations.encryption_of(isolated),
                    metadata,
                )
            except Exception as error:
                session.skip(isolated, f"its manifest was not written: {_one_line(error)}")
                manifest = manifest.model_copy(
                    update={
                        "destinations": [s.name for s in session.stores],
                        "skipped": dict(session.skipped),
                    }
                )
        body = manifest.model_dump_json(indent=2).encode()
        for target in reversed(session.stores):  # the vault's manifest is the commit: last
            if target is isolated:
                continue
            encryption = destinations.encryption_of(target)
            target.put_bytes(prefix + MANIFEST_NAME, body, encryption, metadata)
        _record_in_catalogs(destinations, manifest, session.stores)
    except BaseException as error:
        # Uploads in flight are aborted, best effort within the cleanup bound: against a dead
        # store the abort fails too, and the next run of the store (or the vault's lifecycle,
        # after a day) aborts what is left.
        bounded(session.abort, io_bounds().cleanup, f"aborting the uploads of {backup_id}")
        _leave_partial(destinations, prefix, session.objects)
        log.error(
            "backup failed",
            extra={"store": store, "backup_id": backup_id, "error": _describe(error)},
        )
        if isinstance(error, (KeyboardInterrupt, SystemExit)):
            raise
        cause = _one_line(error)
        raise BackupFailed(f"backup of {store} ({backup_id}) failed: {cause}") from error
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


def bounded(call: Callable[[], None], seconds: float, doing: str) -> bool:
    """Run a cleanup step on a daemon thread for at most ``seconds``; never raises.

    False (and a warning) when it failed or did not finish: a failed run must end within its
    bound even when the store it would clean up is the one that hangs."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            call()
        except BaseException as error:
            errors.append(error)

    worker = threading.Thread(target=run, name=doing, daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        log.warning("%s did not finish within %.0fs; left to expire", doing, seconds)
        return False
    if errors:
        log.warning("%s failed: %s", doing, _describe(errors[0]))
        return False
    return True


def _record_in_catalogs(
    destinations: Destinations, manifest: Manifest, committed: list[ObjectStore]
) -> None:
    """The catalog is derived from the manifests: a failure here is logged, never fatal.

    The run still holds the store's lease: its day checkpoint follows the previous run's. In the
    isolated vault the writer may only create (no list, no read: its bucket policy), so the run
    writes its entry alone there; a listing reads entries no checkpoint covers one by one."""
    for target in committed:
        try:
            catalog = Catalog(target, destinations.encryption_of(target))
            catalog.record(manifest, checkpoint=target is not destinations.isolated)
        except (ObjectStoreError, ValueError) as error:
            log.warning(
                "catalog of %s not updated (rebuild it from the manifests): %s", target.name, error
            )


def _abort_uploads_of_dead_runs(destinations: Destinations, prefix: str) -> None:
    """A killed run cannot abort its multipart upload; the next run of the store does.

    This run holds the store's lease, so no other live run of the store exists: an upload pending
    under the store's prefix belongs to a run that died (or lost its lease, and will not commit).

    Not in the isolated vault: its policy lets a production writer only create objects (no
    listing, no abort, ``components.isolated_vault``); its lifecycle rule aborts an upload left
    there after a day. So the isolated vault's first request of a run is its first object's, and
    a dead or refusing isolated vault is found, and dropped, there."""
    for target in destinations.stores:
        if target is destinations.isolated:
            continue
        aborted = target.abort_pending_uploads(prefix)
        if aborted:
            log.warning(
                "aborted %d upload(s) left by a killed run under %s/%s",
                aborted,
                target.name,
                prefix,
            )


def _leave_partial(destinations: Destinations, prefix: str, written: list[StoredObject]) -> None:
    """A failed run deletes nothing: its completed objects are locked like any backup's (the
    vault's Object Lock, the mirror's retention policy), so a delete would be refused or would
    only hide them behind a delete marker. They are left, and never listed: without a manifest
    the prefix is no backup, and the catalog lists only what was committed.

    Their cost is bounded: at most one failed run per store at a time (the lease), each leaving
    at most what it had completed (uploads in flight are aborted, and the vault's lifecycle
    aborts a killed run's after a day), and the data class's lifecycle expires them with the
    backups of their day."""
    if written:
        size = sum(item.size for item in written)
        log.warning(
            "left %d object(s), %d bytes, of the failed run under %s in %s: no manifest, so "
            "not a backup; they expire with the data class's lifecycle",
            len(written),
            size,
            prefix,
            ", ".join(s.name for s in destinations.stores),
        )


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


def _describe(error: BaseException) -> str:
    """What went wrong, for the log record: the exception's type and message."""
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
