"""What a forger (or a bug) with write access to the vault can do: a plain PUT over a key, without
the engine's create-only precondition. The versioned, locked vault keeps it as a new version over
the original, which stays until its retention ends; the tests use it to tamper with backups."""

from __future__ import annotations

from drkit.storage.objectstore import ObjectStore
from drkit.storage.s3 import S3Store


def overwrite(store: ObjectStore, key: str, data: bytes) -> None:
    assert isinstance(store, S3Store), "only the vault takes a plain PUT over a key"
    store.client.put_object(Bucket=store.bucket, Key=key, Body=data)
