"""The GCS mirror: resumable uploads fed from a stream, through google-cloud-storage."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from google.api_core.exceptions import GoogleAPIError, NotFound
from google.cloud import storage  # type: ignore[import-untyped]

from drkit.storage.objectstore import (
    DEFAULT_PART_SIZE,
    Encryption,
    ObjectInfo,
    ObjectNotFound,
    ObjectStoreError,
)

GCS_CHUNK_MULTIPLE = 256 * 1024


class GcsResumableWriter:
    """One resumable upload session; the object appears only when the last chunk is sent.

    An aborted session is cancelled: GCS shows no object for it.
    """

    def __init__(self, bucket: storage.Bucket, key: str, chunk_size: int) -> None:
        self._name = f"gs://{bucket.name}/{key}"
        size = max(GCS_CHUNK_MULTIPLE, chunk_size - chunk_size % GCS_CHUNK_MULTIPLE)
        blob = bucket.blob(key, chunk_size=size)
        self._file: Any = blob.open(
            "wb", ignore_flush=True, content_type="application/octet-stream"
        )
        self._closed = False

    def write(self, chunk: bytes) -> None:
        try:
            self._file.write(chunk)
        except GoogleAPIError as error:
            raise ObjectStoreError(f"{self._name}: upload failed: {error}") from error

    def commit(self) -> None:
        try:
            self._file.close()
        except GoogleAPIError as error:
            raise ObjectStoreError(f"{self._name}: finishing the upload failed: {error}") from error
        self._closed = True

    def abort(self) -> None:
        """Cancel the session. Never ``close()`` here: closing finishes the upload, and so would
        the garbage collector on an unclosed writer, leaving a truncated object behind."""
        if self._closed:
            return
        self._closed = True
        try:
            self._file.terminate()
        except Exception:  # the session is cancelled anyway; GCS forgets it within a week
            self._file._buffer.close()


class GcsStore:
    """A bucket of the mirror."""

    def __init__(
        self, client: storage.Client, bucket: str, part_size: int = DEFAULT_PART_SIZE
    ) -> None:
        self.client = client
        self.bucket = client.bucket(bucket)
        self.name = f"gs://{bucket}"
        self.part_size = part_size

    def writer(self, key: str, encryption: Encryption | None = None) -> GcsResumableWriter:
        # The bucket's default customer-managed key encrypts what the writer sends.
        return GcsResumableWriter(self.bucket, key, self.part_size)

    def put_bytes(self, key: str, data: bytes, encryption: Encryption | None = None) -> None:
        try:
            self.bucket.blob(key).upload_from_string(data)
        except GoogleAPIError as error:
            raise ObjectStoreError(f"{self.name}/{key}: upload failed: {error}") from error

    def get_bytes(self, key: str) -> bytes:
        return b"".join(self.open_stream(key))

    def open_stream(self, key: str, chunk_size: int = DEFAULT_PART_SIZE) -> Iterator[bytes]:
        try:
            with self.bucket.blob(key).open("rb", chunk_size=chunk_size) as stream:
                while chunk := stream.read(chunk_size):
                    yield chunk
        except NotFound as error:
            raise ObjectNotFound(f"{self.name}/{key}: no such object") from error
        except GoogleAPIError as error:
            raise ObjectStoreError(f"{self.name}/{key}: cannot read: {error}") from error

    def list_objects(self, prefix: str) -> Iterator[ObjectInfo]:
        try:
            for blob in self.client.list_blobs(self.bucket, prefix=prefix):
                yield ObjectInfo(blob.name, int(blob.size or 0), blob.updated)
        except GoogleAPIError as error:
            raise ObjectStoreError(f"{self.name}/{prefix}: cannot list: {error}") from error

    def exists(self, key: str) -> bool:
        try:
            return bool(self.bucket.blob(key).exists())
        except GoogleAPIError as error:
            raise ObjectStoreError(f"{self.name}/{key}: cannot check: {error}") from error

    def pending_uploads(self, prefix: str) -> list[str]:
        return []  # unfinished resumable sessions are invisible by design

    def abort_pending_uploads(self, prefix: str) -> int:
        return 0  # an unfinished resumable session never becomes an object; GCS expires it

    def delete_prefix(self, prefix: str) -> int:
        count = 0
        try:
            for blob in self.client.list_blobs(self.bucket, prefix=prefix):
                blob.delete()
                count += 1
        except GoogleAPIError as error:
            raise ObjectStoreError(f"{self.name}/{prefix}: cannot delete: {error}") from error
        return count
