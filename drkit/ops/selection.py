"""What every restore and check starts with: which copy to read (vault or mirror), which backup,
and whether its objects are all there, before anything is changed.

Refusals here are ``RecoveryError`` (a ``ValueError``), so a task prints one line naming the input
and exits 2. A vault the credentials cannot read is one of them: an on-call engineer must see
"access denied on s3://vault" and which permission is missing, not a boto3 traceback.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime

from botocore.exceptions import BotoCoreError, ClientError

from drkit.backup.binding import ManifestNotBound, check_objects
from drkit.backup.manifest import Manifest, StoredObject
from drkit.catalog import CatalogEntry
from drkit.context import MissingIsolatedVault, OpsContext
from drkit.recovery import BackupIndex, RecoveryError, parse_timestamp
from drkit.restore.stream import verified_chunks
from drkit.storage.objectstore import ObjectNotFound, ObjectStore, ObjectStoreError

ACCESS_CODES = ("AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "Forbidden", "403")


class VaultAccessError(RecoveryError):
    """The vault (or mirror) cannot be read with the credentials in use."""


class MissingObject(RecoveryError):
    """A backup's object is gone or is not the size its manifest says (truncated, replaced)."""


class TargetNotEmptyError(RecoveryError):
    """The restore target holds data the restore would replace or mix with; needs ``--force``."""


def object_store(ctx: OpsContext, source: str) -> ObjectStore:
    """The vault (S3, ``vault``), the mirror (GCS, ``mirror``) or the isolated account's vault
    (``isolated``, read through its reader role) of the stack."""
    if source == "vault":
        return ctx.vault()
    if source == "isolated":
        try:
            return ctx.isolated_reader()
        except MissingIsolatedVault as error:
            raise RecoveryError(str(error)) from None
        except (BotoCoreError, ClientError) as error:
            role = ctx.outputs.isolated_vault.reader_role_arn if ctx.outputs.isolated_vault else ""
            raise VaultAccessError(
                f"--source isolated: cannot assume the isolated vault's reader role {role}: "
                f"{' '.join(str(error).split())}. Nothing was changed."
            ) from None
    if source == "mirror":
        mirror = ctx.mirror()
        if mirror is None:
            raise RecoveryError(f"stack {ctx.stack!r} has no GCS mirror to restore from")
        return mirror
    raise RecoveryError(
        f"--source {source!r}: use vault (S3), mirror (GCS) or isolated (the isolated account)"
    )


@contextlib.contextmanager
def readable(store: ObjectStore) -> Iterator[None]:
    """Turn a refused read into an error that names the bucket and the missing permission."""
    try:
        yield
    except ObjectNotFound:
        raise
    except ObjectStoreError as error:
        text = str(error)
        if not any(code in text for code in ACCESS_CODES):
            raise
        raise VaultAccessError(
            f"cannot read {store.name} with the credentials in use: {text}. They need "
            "s3:ListBucket and s3:GetObject on the vault (storage.objects.get/list on the "
            "mirror) and kms:Decrypt with the vault key; or read the other copy (--source "
            "mirror or vault). Nothing was changed."
        ) from error


@dataclass(frozen=True)
class Chosen:
    """One backup of one store, picked and read: what a restore plan is built from."""

    store: str
    index: BackupIndex
    entry: CatalogEntry
    manifest: Manifest
    objects: ObjectStore


def choose(
    ctx: OpsContext,
    store: str,
    at: str | None = None,
    backup: str | None = None,
    source: str = "vault",
    now: datetime | None = None,
) -> Chosen:
    """The latest backup, the newest at or before ``at``, or ``backup`` by id; with its manifest."""
    if at and backup:
        raise RecoveryError("give --at or --backup, not both")
    ctx.store_config(store)  # an unknown store is named before anything is read
    objects = object_store(ctx, source)
    index = BackupIndex(ctx.config, objects)
    with readable(objects):
        if backup:
            entry = index.by_id(store, backup)
        else:
            entry = index.latest(store, parse_timestamp(at) if at else None, now)
        manifest = index.manifest(entry)  # bound to its path and its catalog entry
        check_bound_objects(objects, manifest)
        if source == "isolated":
            check_unreplaced(objects, manifest)
    return Chosen(store, index, entry, manifest, objects)


def check_bound_objects(objects: ObjectStore, manifest: Manifest) -> None:
    """Every object the manifest lists is tagged with this backup (a HEAD each), or a refusal
    before anything is changed. A missing object is left to ``check_present`` to name."""
    try:
        with readable(objects):
            check_objects(objects, manifest)
    except ObjectNotFound:
        return
    except ManifestNotBound as error:
        raise RecoveryError(str(error)) from None


def check_unreplaced(objects: ObjectStore, manifest: Manifest) -> None:
    """Every object is the one written to this copy: the fingerprint the store returned then (the
    S3 ETag, the GCS MD5) is the one a LIST returns now; one LIST, no data read. An object replaced
    since (a new version over it, as the isolated vault account's administrator can write) is
    refused by name before anything is changed, even where the restore streams into its target
    before the SHA-256 can be complete (pg_restore). An object without a recorded fingerprint is
    left to the SHA-256 check as it is read; a missing one to ``check_present``.

    Restores from the isolated vault run it (``--source isolated``): it is the copy read when the
    production account may be in an attacker's hands."""
    with readable(objects):
        listed = {info.key: info for info in objects.list_objects(manifest.prefix)}
    for item in manifest.objects:
        written = item.fingerprints.get(objects.name)
        info = listed.get(item.key)
        if written is None or info is None:
            continue
        if info.fingerprint != written or info.size != item.size:
            raise RecoveryError(
                f"backup {manifest.backup_id}: object {objects.name}/{item.key} is not the object "
                f"that was written ({info.size} bytes, fingerprint {info.fingerprint}; written "
                f"{item.size} bytes, {written}): replaced since; refused, nothing was changed"
            )


def check_present(objects: ObjectStore, manifest: Manifest, items: Iterable[StoredObject]) -> None:
    """Every object there, at the size the manifest says: one LIST request per backup.

    Catches a deleted or truncated object before the plan is printed. A same-size object with
    other bytes is caught by the checksum pass (``verify_checksums``), which reads it through.
    """
    with readable(objects):
        listed = {info.key: info.size for info in objects.list_objects(manifest.prefix)}
    for item in items:
        size = listed.get(item.key)
        if size is None:
            raise MissingObject(
                f"backup {manifest.backup_id}: object {objects.name}/{item.key} is missing; "
                "the backup cannot be restored from this copy (try --source mirror). "
                "Nothing was changed."
            )
        if size != item.size:
            what = "truncated" if size < item.size else "not the object that was written"
            raise MissingObject(
                f"backup {manifest.backup_id}: object {objects.name}/{item.key} is {size} bytes, "
                f"its manifest says {item.size}: {what}. Restore another backup or from the "
                "other copy (--source). Nothing was changed."
            )


Progress = Callable[[str, int], None]


def verify_checksums(
    objects: ObjectStore, items: Iterable[StoredObject], progress: Progress | None = None
) -> tuple[int, int]:
    """Read every object through and check its SHA-256 and size; (objects, bytes) checked.
    ``progress(key, bytes of that object so far)`` after every chunk (the key: a chain's
    manifests may hold objects of the same name)."""
    count = total = 0
    for item in items:
        done = 0
        with readable(objects):
            for chunk in verified_chunks(objects, item):
                done += len(chunk)
                if progress is not None:
                    progress(item.key, done)
        total += done
        count += 1
    return count, total
