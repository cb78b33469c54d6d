"""Read a stored object back as the raw stream it was made from, verifying it on the way."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import zstandard

from drkit.backup.manifest import StoredObject
from drkit.storage.objectstore import ObjectStore


class IntegrityError(RuntimeError):
    """An object does not match its manifest: wrong size, wrong SHA-256, or truncated."""


def verified_chunks(store: ObjectStore, item: StoredObject) -> Iterator[bytes]:
    """The stored bytes, in order; raises at the end if size or SHA-256 differ from the manifest.

    Callers that apply the data as it streams (pg_restore, a producer) must treat this error as a
    failed restore: the check can only complete once the last byte has been read.
    """
    digest = hashlib.sha256()
    size = 0
    for chunk in store.open_stream(item.key):
        digest.update(chunk)
        size += len(chunk)
        yield chunk
    if size != item.size or digest.hexdigest() != item.sha256:
        raise IntegrityError(
            f"{store.name}/{item.key}: expected {item.size} bytes with SHA-256 {item.sha256}, "
            f"read {size} bytes with SHA-256 {digest.hexdigest()}"
        )


def raw_chunks(store: ObjectStore, item: StoredObject) -> Iterator[bytes]:
    """Verified and decompressed: the stream the backup read from the source."""
    chunks = verified_chunks(store, item)
    if item.compression == "none":
        yield from chunks
        return
    decompressor = zstandard.ZstdDecompressor().decompressobj()
    for chunk in chunks:
        try:
            out = decompressor.decompress(chunk)
        except zstandard.ZstdError as error:
            raise IntegrityError(
                f"{store.name}/{item.key}: not a valid zstd stream: {error}"
            ) from error
        if out:
            yield out
    if not decompressor.eof:
        raise IntegrityError(f"{store.name}/{item.key}: the zstd stream is truncated")


def check_object(store: ObjectStore, item: StoredObject) -> None:
    """Read an object through and verify it, without keeping it."""
    for _ in verified_chunks(store, item):
        pass
