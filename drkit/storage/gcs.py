"""The GCS mirror: resumable uploads fed from a stream, through google-cloud-storage."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from google.api_core.exceptions import GoogleAPIError, NotFound, PreconditionFailed
from google.cloud import storage  # type: ignore[import-untyped]
from google.resumable_media import InvalidResponse

from drkit.bounds import IoBounds, io_bounds
from drkit.storage.objectstore import (
    DEFAULT_PART_SIZE,
    Encryption,
    ObjectExists,
    ObjectHead,
    ObjectInfo,
    ObjectNotFound,
    ObjectStoreError,
)

GCS_CHUNK_MULTIPLE = 256 * 1024
TAKEN_STATUSES = {412}
"""``ifGenerationMatch=0`` not met: the object exists."""
RETAINED = 403
"""A locked bucket retention policy refusing a replace or a delete (also what a missing
permission answers: the message tells them apart)."""


def _taken(error: Exception) -> bool:
    if isinstance(error, PreconditionFailed):
        return True
    response = getattr(error, "response", None)
    return isinstance(error, InvalidResponse) and getattr(response, "status_code", 0) == 412


def _refusal(name: str, error: Exception, doing: str) -> ObjectStoreError:
    if _taken(error):
        return ObjectExists(f"{name} exists: refusing to replace it ({doing} is create-only)")
    return ObjectStoreError(f"{name}: {doing} failed: {error}")


class GcsResumableWriter:
    """One resumable upload session; the object appears only when the last chunk is sent.

    An aborted session is cancelled: GCS shows no object for it. Create-only: the session is
    opened with ``ifGenerationMatch=0``, so its last chunk is refused (412) if the key exists.
    """

    def __init__(
        self,
        bucket: storage.Bucket,
        key: str,
        chunk_size: int,
        metadata: dict[str, str] | None = None,
        bounds: IoBounds | None = None,
    ) -> None:
        self._name = f"gs://{bucket.name}/{key}"
        self._bounds = bounds or io_bounds()
        size = max(GCS_CHUNK_MULTIPLE, chunk_size - chunk_size % GCS_CHUNK_MULTIPLE)
        self._blob = bucket.blob(key, chunk_size=size)
        if metadata:
            self._blob.metadata = dict(metadata)
        self._file: Any = self._blob.open(
            "wb",
            ignore_flush=True,
            content_type="application/octet-stream",
            if_generation_match=0,
            timeout=self._bounds.gcs_timeout(),
            retry=self._bounds.gcs_retry(),
        )
        self._closed = False
        self.fingerprint: str | None = None

    def write(self, chunk: bytes) -> None:
        try:
            self._file.write(chunk)
        except (GoogleAPIError, InvalidResponse) as error:
            raise _refusal(self._name, error, "upload") from error

    def commit(self) -> None:
        try:
            self._file.close()
            # the MD5 GCS computed, for the manifest
            self._blob.reload(timeout=self._bounds.gcs_timeout(), retry=self._bounds.gcs_retry())
        except (GoogleAPIError, InvalidResponse) as error:
            raise _refusal(self._name, error, "finishing the upload") from error
        self._closed = True
        self.fingerprint = self._blob.md5_hash

    def abort(self) -> None:
        """Cancel the session. Never ``close()`` here: closing finishes the upload, and so would
        the garbage collector on an unclosed writer, leaving a truncated object behind."""
        if self._closed:
            return
        self._closed = True
        # ``BlobWriter.terminate`` sends its DELETE without a timeout: send it here, bounded.
        session = getattr(self._file, "_upload_and_transport", None)
        try:
            if session:
                upload, transport = session
                transport.delete(upload.upload_url, timeout=self._bounds.gcs_timeout())
        except Exception:  # the session is cancelled anyway; GCS forgets it within a week
            pass
        finally:
            self._file._buffer.close()


class GcsStore:
    """A bucket of the mirror."""

    def __init__(
        self,
        client: storage.Client,
        bucket: str,
        part_size: int = DEFAULT_PART_SIZE,
        bounds: IoBounds | None = None,
    ) -> None:
        self.client = client
        self.bucket = client.bucket(bucket)
        self.name = f"gs://{bucket}"
        self.part_size = part_size
        self.bounds = bounds or io_bounds()
        """Every request's timeout and retry deadline (``drkit.bounds``)."""

    def _limits(self) -> dict[str, Any]:
        return {"timeout": self.bounds.gcs_timeout(), "retry": self.bounds.gcs_retry()}

    def writer(
        self,
        key: str,
        encryption: Encryption | None = None,
        metadata: dict[str, str] | None = None,
    ) -> GcsResumableWriter:
        # The bucket's default customer-managed key encrypts what the writer sends.
        return GcsResumableWriter(self.bucket, key, self.part_size, metadata, self.bounds)

    def put_bytes(
        self,
        key: str,
        data: bytes,
        encryption: Encryption | None = None,
        metadata: dict[str, str] | None = None,
    ) -> None:
        blob = self.bucket.blob(key)
        if metadata:
            blob.metadata = dict(metadata)
        try:
            blob.upload_from_string(data, if_generation_match=0, **self._limits())
        except (GoogleAPIError, InvalidResponse) as error:
            raise _refusal(f"{self.name}/{key}", error, "upload") from error

    def get_bytes(self, key: str) -> bytes:
        return b"".join(self.open_stream(key))

    def open_stream(self, key: str, chunk_size: int = DEFAULT_PART_SIZE) -> Iterator[bytes]:
        try:
            with self.bucket.blob(key).open(
                "rb", chunk_size=chunk_size, **self._limits()
            ) as stream:
                while chunk := stream.read(chunk_size):
                    yield chunk
        except NotFound as error:
            raise ObjectNotFound(f"{self.name}/{key}: no such object") from error
        except GoogleAPIError as error:
            raise ObjectStoreError(f"{self.name}/{key}: cannot read: {error}") from error

    def list_objects(self, prefix: str, start_after: str = "") -> Iterator[ObjectInfo]:
        # GCS's startOffset is inclusive; S3's StartAfter is not: skip the key itself.
        extra = {"start_offset": start_after} if start_after else {}
        try:
            listed = self.client.list_blobs(self.bucket, prefix=prefix, **extra, **self._limits())
            for blob in listed:
                if start_after and blob.name <= start_after:
                    continue  # (the emulator ignores startOffset)
                yield ObjectInfo(blob.name, int(blob.size or 0), blob.updated, blob.md5_hash)
        except GoogleAPIError as error:
            raise ObjectStoreError(f"{self.name}/{prefix}: cannot list: {error}") from error

    def head(self, key: str) -> ObjectHead:
        try:
            blob = self.bucket.get_blob(key, **self._limits())
        except GoogleAPIError as error:
            raise ObjectStoreError(f"{self.name}/{key}: cannot check: {error}") from error
        if blob is None:
            raise ObjectNotFound(f"{self.name}/{key}: no such object")
        return ObjectHead(key, int(blob.size or 0), blob.md5_hash, dict(blob.metadata or {}))

    def exists(self, key: str) -> bool:
        try:
            return bool(self.bucket.blob(key).exists(**self._limits()))
        except GoogleAPIError as error:
            raise ObjectStoreError(f"{self.name}/{key}: cannot check: {error}") from error

    def pending_uploads(self, prefix: str) -> list[str]:
        return []  # unfinished resumable sessions are invisible by design

    def abort_pending_uploads(self, prefix: str) -> int:
        return 0  # an unfinished resumable session never becomes an object; GCS expires it

    def delete_prefix(self, prefix: str) -> int:
        count = 0
        try:
            for blob in self.client.list_blobs(self.bucket, prefix=prefix, **self._limits()):
                blob.delete(**self._limits())
                count += 1
        except GoogleAPIError as error:
            raise ObjectStoreError(f"{self.name}/{prefix}: cannot delete: {error}") from error
        return count
