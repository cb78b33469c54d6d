"""The S3 vault: multipart uploads fed from a stream, one part in flight while the next fills."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from drkit.storage.objectstore import (
    DEFAULT_PART_SIZE,
    Encryption,
    ObjectExists,
    ObjectHead,
    ObjectInfo,
    ObjectNotFound,
    ObjectStoreError,
)

TAKEN_CODES = {"PreconditionFailed", "412", "ConditionalRequestConflict"}
"""What S3 answers a create-only write (``If-None-Match: *``) whose key is taken, or is being
taken by a concurrent write."""


def _put_arguments(encryption: Encryption | None) -> dict[str, Any]:
    if encryption is None:
        return {}
    arguments: dict[str, Any] = {}
    if encryption.kms_key_id:
        arguments |= {
            "ServerSideEncryption": "aws:kms",
            "SSEKMSKeyId": encryption.kms_key_id,
            "BucketKeyEnabled": True,
        }
    if encryption.lock_mode and encryption.lock_until:
        arguments |= {
            "ObjectLockMode": encryption.lock_mode.upper(),
            "ObjectLockRetainUntilDate": encryption.lock_until,
        }
    return arguments


class S3MultipartWriter:
    """Writes one object as a multipart upload, a part at a time.

    Memory is one part. A small object (under one part) is sent with a single PutObject on commit.
    Concurrency with other destinations comes from ``ThreadedWriter``, not from here.

    Create-only: the PutObject or CompleteMultipartUpload carries ``If-None-Match: *``, so S3
    refuses it (412) when the key exists; in a versioned, locked vault a plain PUT would instead
    add a second version.
    """

    def __init__(
        self,
        client: Any,
        bucket: str,
        key: str,
        encryption: Encryption | None = None,
        part_size: int = DEFAULT_PART_SIZE,
        metadata: dict[str, str] | None = None,
    ) -> None:
        self._client = client
        self._bucket = bucket
        self._key = key
        self._extra = _put_arguments(encryption)
        if metadata:
            self._extra["Metadata"] = dict(metadata)
        self.fingerprint: str | None = None
        self._part_size = part_size
        self._buffer = bytearray()
        self._upload_id: str | None = None
        self._parts: list[dict[str, Any]] = []
        self._closed = False

    def write(self, chunk: bytes) -> None:
        self._buffer += chunk
        while len(self._buffer) >= self._part_size:
            part = bytes(self._buffer[: self._part_size])
            del self._buffer[: self._part_size]
            self._send_part(part)

    def commit(self) -> None:
        if self._closed:
            raise ObjectStoreError(f"s3://{self._bucket}/{self._key}: writer already closed")
        try:
            if self._upload_id is None:
                response = self._call(
                    "put_object", Body=bytes(self._buffer), IfNoneMatch="*", **self._extra
                )
            else:
                if self._buffer:
                    self._send_part(bytes(self._buffer))
                response = self._call(
                    "complete_multipart_upload",
                    UploadId=self._upload_id,
                    MultipartUpload={"Parts": self._parts},
                    IfNoneMatch="*",
                )
        except BaseException:
            self.abort()
            raise
        self._buffer.clear()
        self._closed = True
        self.fingerprint = str(response.get("ETag", "")).strip('"') or None

    def abort(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._buffer.clear()
        if self._upload_id is not None:
            # On failure here, the bucket's lifecycle rule aborts the upload after a day.
            with contextlib.suppress(BotoCoreError, ClientError):
                self._client.abort_multipart_upload(
                    Bucket=self._bucket, Key=self._key, UploadId=self._upload_id
                )

    def _send_part(self, part: bytes) -> None:
        if self._upload_id is None:
            response = self._call("create_multipart_upload", **self._extra)
            self._upload_id = str(response["UploadId"])
        number = len(self._parts) + 1
        response = self._call("upload_part", UploadId=self._upload_id, PartNumber=number, Body=part)
        self._parts.append({"PartNumber": number, "ETag": response["ETag"]})

    def _call(self, operation: str, **arguments: Any) -> Any:
        try:
            return getattr(self._client, operation)(Bucket=self._bucket, Key=self._key, **arguments)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in TAKEN_CODES:
                raise ObjectExists(
                    f"s3://{self._bucket}/{self._key} exists: refusing to replace it "
                    f"({operation} is create-only)"
                ) from error
            raise ObjectStoreError(
                f"s3://{self._bucket}/{self._key}: {operation} failed: {error}"
            ) from error
        except BotoCoreError as error:
            raise ObjectStoreError(
                f"s3://{self._bucket}/{self._key}: {operation} failed: {error}"
            ) from error


class S3Store:
    """A bucket of the vault, through a boto3 S3 client."""

    def __init__(self, client: Any, bucket: str, part_size: int = DEFAULT_PART_SIZE) -> None:
        self.client = client
        self.bucket = bucket
        self.name = f"s3://{bucket}"
        self.part_size = part_size

    def writer(
        self,
        key: str,
        encryption: Encryption | None = None,
        metadata: dict[str, str] | None = None,
    ) -> S3MultipartWriter:
        return S3MultipartWriter(
            self.client, self.bucket, key, encryption, self.part_size, metadata
        )

    def put_bytes(
        self,
        key: str,
        data: bytes,
        encryption: Encryption | None = None,
        metadata: dict[str, str] | None = None,
    ) -> None:
        writer = self.writer(key, encryption, metadata)
        writer.write(data)
        writer.commit()

    def get_bytes(self, key: str) -> bytes:
        return b"".join(self.open_stream(key))

    def open_stream(self, key: str, chunk_size: int = DEFAULT_PART_SIZE) -> Iterator[bytes]:
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"]
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in {"404", "NoSuchKey", "NotFound"}:
                raise ObjectNotFound(f"{self.name}/{key}: no such object") from error
            raise ObjectStoreError(f"{self.name}/{key}: cannot read: {error}") from error
        except BotoCoreError as error:
            raise ObjectStoreError(f"{self.name}/{key}: cannot read: {error}") from error
        try:
            yield from body.iter_chunks(chunk_size)
        except BotoCoreError as error:  # reset or stalled mid-body: name the object
            raise ObjectStoreError(f"{self.name}/{key}: read cut short: {error}") from error
        finally:
            body.close()

    def list_objects(self, prefix: str, start_after: str = "") -> Iterator[ObjectInfo]:
        paginator = self.client.get_paginator("list_objects_v2")
        extra = {"StartAfter": start_after} if start_after else {}
        try:
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix, **extra):
                for item in page.get("Contents", []):
                    yield ObjectInfo(
                        item["Key"],
                        int(item["Size"]),
                        item.get("LastModified"),
                        str(item.get("ETag", "")).strip('"') or None,
                    )
        except (BotoCoreError, ClientError) as error:
            raise ObjectStoreError(f"{self.name}/{prefix}: cannot list: {error}") from error

    def head(self, key: str) -> ObjectHead:
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in {"404", "NoSuchKey", "NotFound"}:
                raise ObjectNotFound(f"{self.name}/{key}: no such object") from error
            raise ObjectStoreError(f"{self.name}/{key}: cannot check: {error}") from error
        except BotoCoreError as error:
            raise ObjectStoreError(f"{self.name}/{key}: cannot check: {error}") from error
        return ObjectHead(
            key,
            int(head["ContentLength"]),
            str(head.get("ETag", "")).strip('"') or None,
            {str(k): str(v) for k, v in head.get("Metadata", {}).items()},
        )

    def exists(self, key: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in {"404", "NoSuchKey", "NotFound"}:
                return False
            raise ObjectStoreError(f"{self.name}/{key}: cannot check: {error}") from error
        return True

    def pending_uploads(self, prefix: str) -> list[str]:
        return [str(upload["Key"]) for upload in self._uploads(prefix)]

    def abort_pending_uploads(self, prefix: str) -> int:
        """Abort multipart uploads a killed run left under ``prefix``; returns how many."""
        uploads = self._uploads(prefix)
        for upload in uploads:
            with contextlib.suppress(ClientError):  # already completed or aborted meanwhile
                self.client.abort_multipart_upload(
                    Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                )
        return len(uploads)

    def _uploads(self, prefix: str) -> list[dict[str, Any]]:
        try:
            paginator = self.client.get_paginator("list_multipart_uploads")
            return [
                upload
                for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix)
                for upload in page.get("Uploads", [])
            ]
        except (BotoCoreError, ClientError) as error:
            raise ObjectStoreError(f"{self.name}/{prefix}: cannot list uploads: {error}") from error

    def delete_prefix(self, prefix: str) -> int:
        """Delete what is under ``prefix`` (under Object Lock this adds delete markers only)."""
        keys = [item.key for item in self.list_objects(prefix)]
        for start in range(0, len(keys), 1000):
            batch = [{"Key": key} for key in keys[start : start + 1000]]
            try:
                self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": batch})
            except (BotoCoreError, ClientError) as error:
                raise ObjectStoreError(f"{self.name}/{prefix}: cannot delete: {error}") from error
        return len(keys)
