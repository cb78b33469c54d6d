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


class ObjectNotFound(ObjectStoreError):
    """The key does not exist."""


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    modified: datetime | None = None


@dataclass(frozen=True)
class Encryption:
    """Server-side encryption and Object Lock for what the writer puts (S3 only)."""

    kms_key_id: str | None = None
    lock_mode: str | None = None
    lock_until: datetime | None = None
    extra: dict[str, str] = field(default_factory=dict)


class ObjectWriter(Protocol):
    def write(self, chunk: bytes) -> None: ...
    def commit(self) -> None: ...
    def abort(self) -> None: ...


class ObjectStore(Protocol):
    """The verbs the backup, restore and verify code needs, and nothing more."""

    name: str
    """For messages and the manifest: ``s3://bucket`` or ``gs://bucket``."""

    def writer(self, key: str, encryption: Encryption | None = None) -> ObjectWriter: ...
    def put_bytes(self, key: str, data: bytes, encryption: Encryption | None = None) -> None: ...
    def get_bytes(self, key: str) -> bytes: ...
    def open_stream(self, key: str, chunk_size: int = DEFAULT_PART_SIZE) -> Iterator[bytes]: ...
    def list_objects(self, prefix: str) -> Iterator[ObjectInfo]: ...
    def exists(self, key: str) -> bool: ...
    def pending_uploads(self, prefix: str) -> list[str]: ...
    def delete_prefix(self, prefix: str) -> int: ...
    def abort_pending_uploads(self, prefix: str) -> int: ...


def read_all(chunks: Iterator[bytes]) -> bytes:
    buffer = io.BytesIO()
    for chunk in chunks:
        buffer.write(chunk)
    return buffer.getvalue()
