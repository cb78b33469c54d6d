"""One interface over the S3 vault and the GCS mirror, built for streams.

A writer takes chunks and keeps at most a few parts in memory, whatever the object's size. Nothing
is visible under the key until ``commit``: an S3 multipart upload completes, a GCS resumable upload
sends its last chunk. ``abort`` (or an exception, or a killed process whose S3 upload the bucket's
lifecycle rule aborts after a day) leaves no object behind.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

MiB = 1024 * 1024
DEFAULT_PART_SIZE = 16 * MiB
"""S3 parts must be at least 5 MiB; 16 MiB keeps request counts low and memory small."""


class ObjectStoreError(RuntimeError):
    """A request to the vault or the mirror failed; the message names the store and the key."""


MISSING_BUCKET_CODES = ("NoSuchBucket", "The specified bucket does not exist")


def is_missing_bucket(error: BaseException) -> bool:
    """The bucket itself does not exist (a wrong name: a refusal), as S3 or GCS says it, anywhere
    down the chain of causes (the storage layer wraps the client's error)."""
    seen: BaseException | None = error
    for _ in range(5):
        if seen is None:
            return False
        response = getattr(seen, "response", None)
        if isinstance(response, dict) and response.get("Error", {}).get("Code") == "NoSuchBucket":
            return True
        if any(code in str(seen) for code in MISSING_BUCKET_CODES):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


class ObjectNotFound(ObjectStoreError):
    """The key does not exist."""


class ObjectExists(ObjectStoreError):
    """A create-only write found the key taken: nothing is ever replaced (S3 ``If-None-Match: *``,
    GCS ``ifGenerationMatch=0``, and under the lock the store itself refuses)."""


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    modified: datetime | None = None
    fingerprint: str | None = None
    """What the store says the bytes are, as a LIST returns it: the S3 ETag, the GCS MD5."""


@dataclass(frozen=True)
class ObjectHead:
    """One object's size, fingerprint and user metadata, from a HEAD (no body read)."""

    key: str
    size: int
    fingerprint: str | None
    metadata: dict[str, str]


@dataclass(frozen=True)
class Encryption:
    """Server-side encryption and Object Lock for what the writer puts (S3 only)."""

    kms_key_id: str | None = None
    lock_mode: str | None = None
    lock_until: datetime | None = None
    extra: dict[str, str] = field(default_factory=dict)


class ObjectWriter(Protocol):
    fingerprint: str | None
    """Set by ``commit``: the store's ETag (S3) or MD5 (GCS) of what it now holds."""

    def write(self, chunk: bytes) -> None: ...
    def commit(self) -> None: ...
    def abort(self) -> None: ...


class ObjectStore(Protocol):
    """The verbs the backup, restore and verify code needs, and nothing more.

    Every write is create-only: ``writer`` and ``put_bytes`` raise ``ObjectExists`` when the key
    is taken, naming it. Nothing the kit writes is replaced afterwards.
    """

    name: str
    """For messages and the manifest: ``s3://bucket`` or ``gs://bucket``."""

    def writer(
        self,
        key: str,
        encryption: Encryption | None = None,
        metadata: dict[str, str] | None = None,
    ) -> ObjectWriter: ...
    def put_bytes(
        self,
        key: str,
        data: bytes,
        encryption: Encryption | None = None,
        metadata: dict[str, str] | None = None,
    ) -> None: ...
    def get_bytes(self, key: str) -> bytes: ...
    def open_stream(self, key: str, chunk_size: int = DEFAULT_PART_SIZE) -> Iterator[bytes]: ...
    def list_objects(self, prefix: str, start_after: str = "") -> Iterator[ObjectInfo]: ...
    def head(self, key: str) -> ObjectHead: ...
    def exists(self, key: str) -> bool: ...
    def pending_uploads(self, prefix: str) -> list[str]: ...
    def delete_prefix(self, prefix: str) -> int: ...
    def abort_pending_uploads(self, prefix: str) -> int: ...


def read_all(chunks: Iterator[bytes]) -> bytes:
    buffer = io.BytesIO()
    for chunk in chunks:
        buffer.write(chunk)
    return buffer.getvalue()
