"""A manifest is bound to its own backup: its path, its catalog entry and its objects agree.

Checked before a restore writes anything, and by every verify:

1. **Path**: the manifest's ``backup_id``, store and data class are the ones its key names
   (``<class>/<store>/<YYYY>/<MM>/<DD>/<backup id>/manifest.json``).
2. **Objects under its prefix**: every object it lists is under that same prefix, once. A manifest
   edited to point at another backup's objects names keys under the other backup's prefix.
3. **Catalog cross-check**: the catalog entry (written by the engine at commit, create-only)
   agrees with the manifest on id, store, key, object count, size and counts.
4. **Object metadata**: the engine tags every object it writes with its backup id and store
   (S3 user metadata ``x-amz-meta-drkit-backup-id``, GCS custom metadata), set when the upload
   starts. A HEAD per object (no body read) shows an object copied in from another backup.

What this does not stop, and what does:

- A forger **with write access** to the vault can still *add*: a new backup id with a manifest,
  objects, metadata and a catalog entry that all agree (the writer role can set any metadata),
  holding whatever data they like. The checks above make such a backup consistent, not genuine;
  an HMAC of the manifest with a KMS key the backup writer can use (``GenerateMac``) would not
  change that, since the forger would hold that same permission. Restoring "the newest" could
  then pick it: ``backups.list`` shows every backup with its writer-independent facts (time, size,
  counts), and ``--backup ID`` pins a known one.
- What they **cannot** do, because every write is create-only and the vault is under Object
  Lock (COMPLIANCE) and the mirror under a locked retention policy: replace or delete an existing
  object, manifest or catalog entry. A plain PUT over an existing key adds a version the checks
  here and ``verify --all`` (fingerprint per version, ``list_object_versions``) reveal, and the
  original version stays readable until its retention ends: earlier, genuine backups survive.
- The **isolated copy** (a vault in another account, written by replication, not by the backup
  writer's credentials) is out of the forger's reach altogether: a forged backup in the
  production vault never appears there unless it was replicated, and the replica's own lock
  keeps every genuine backup.
"""

from __future__ import annotations

import re
from collections import Counter

from drkit.backup.manifest import MANIFEST_NAME, Manifest, backup_prefix, parse_backup_prefix
from drkit.storage.objectstore import ObjectHead, ObjectStore

BACKUP_ID_KEY = "drkit-backup-id"
STORE_KEY = "drkit-store"
BACKUP_ID = re.compile(r"^\d{8}T\d{6}Z-[0-9a-f]{6}$")


class ManifestNotBound(ValueError):
    """The manifest does not belong where it is, or points at objects that are not its own."""


def object_metadata(store: str, backup_id: str) -> dict[str, str]:
    """What the engine sets on every object of a backup."""
    return {BACKUP_ID_KEY: backup_id, STORE_KEY: store}


def check_manifest(
    manifest: Manifest,
    key: str,
    entry_facts: dict[str, object] | None = None,
) -> None:
    """Path, prefix and catalog checks (no request). ``entry_facts``: the catalog entry's
    ``backup_id``, ``store``, ``manifest_key``, ``objects``, ``size`` and ``counts``."""
    where = f"manifest {key}"
    if not BACKUP_ID.match(manifest.backup_id):
        raise ManifestNotBound(f"{where}: backup_id {manifest.backup_id!r} is malformed")
    parsed = parse_backup_prefix(key)
    expected = backup_prefix(manifest.data_class, manifest.store, manifest.backup_id)
    if parsed is None or key != expected + MANIFEST_NAME:
        path = f"data class {parsed[0]}, store {parsed[1]}, backup {parsed[2]}" if parsed else "?"
        raise ManifestNotBound(
            f"{where} says backup {manifest.backup_id} of store {manifest.store} "
            f"({manifest.data_class}), but its path says {path}: refused, nothing was changed"
        )
    keys = Counter(item.key for item in manifest.objects)
    for item in manifest.objects:
        if not item.key.startswith(expected) or item.key == key:
            raise ManifestNotBound(
                f"{where} lists object {item.key}, outside its own backup's prefix {expected}: "
                "a manifest may only point at its own objects; refused, nothing was changed"
            )
        if keys[item.key] > 1:
            raise ManifestNotBound(f"{where} lists object {item.key} twice: refused")
    if entry_facts is not None:
        _check_entry(manifest, key, entry_facts)


def _check_entry(manifest: Manifest, key: str, entry: dict[str, object]) -> None:
    mine: dict[str, object] = {
        "backup_id": manifest.backup_id,
        "store": manifest.store,
        "manifest_key": key,
        "objects": len(manifest.objects),
        "size": manifest.size,
        "counts": manifest.counts,
    }
    wrong = {
        name: (entry[name], value)
        for name, value in mine.items()
        if name in entry and entry[name] != value
    }
    if wrong:
        detail = "; ".join(f"{n}: catalog {c!r}, manifest {m!r}" for n, (c, m) in wrong.items())
        raise ManifestNotBound(
            f"manifest {key} disagrees with its catalog entry ({detail}): one of them was "
            "altered; refused, nothing was changed"
        )


def check_objects(objects: ObjectStore, manifest: Manifest) -> list[ObjectHead]:
    """HEAD every object: tagged with another backup (or store) means it was copied in."""
    heads = []
    for item in manifest.objects:
        head = objects.head(item.key)
        tagged = head.metadata.get(BACKUP_ID_KEY), head.metadata.get(STORE_KEY)
        # Untagged: written before tagging existed, or by a service (an ElastiCache export).
        if tagged[0] is not None and tagged != (manifest.backup_id, manifest.store):
            raise ManifestNotBound(
                f"backup {manifest.backup_id}: object {objects.name}/{item.key} belongs to backup "
                f"{tagged[0]} of store {tagged[1]}: refused, nothing was changed"
            )
        heads.append(head)
    return heads
