"""Restore a namespace's state from its archive into the same or another namespace.

The archive is in priority order (``drkit.kubestate.order``), so a restore reads it once; a
restore step of a plan reads it up to the end of its own priority and stops. Each object is
created; one that exists is skipped (its outcome says so) unless ``replace``, which server-side
applies the backed-up fields over it. Every object gets an outcome (restored, replaced, skipped,
failed with the API server's error); a failure does not stop the other objects, and the caller
reports any failure as a failed restore, never a success.

On the way in: Secrets are unsealed with the backup's data key; the namespace is renamed when
asked (``drkit.kubestate.clean.renamed``); owner references get the uid of the owner in the target
namespace (a stale uid would let the garbage collector delete the object), and an object restored
before its owner (a ConfigMap an operator derived from a custom resource) gets its reference once
the owner is restored; a CustomResourceDefinition is waited for until Established and served, so
the custom resources after it can be created.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Generator, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from drkit.backup.manifest import Manifest, StoredObject
from drkit.kubestate.api import (
    CRDS,
    FIELD_MANAGER,
    NAMESPACES,
    ApiResource,
    KubeApi,
    KubeApiError,
    crd_not_ready,
    discover,
)
from drkit.kubestate.archive import ARCHIVE_NAME, Header, Record, read_archive
from drkit.kubestate.clean import renamed
from drkit.kubestate.order import BY_NAME, PRIORITIES
from drkit.kubestate.sealing import DataKey, SealingError, unseal_secret
from drkit.restore.stream import raw_chunks
from drkit.storage.objectstore import ObjectStore

RESTORED, REPLACED, SKIPPED, FAILED = "restored", "replaced", "skipped", "failed"


class KubernetesRestoreError(RuntimeError):
    """The backup cannot be restored as asked (no archive, another format)."""


@dataclass(frozen=True)
class ObjectOutcome:
    priority: str
    resource: str
    kind: str
    namespace: str | None
    name: str
    outcome: str
    detail: str = ""

    @property
    def label(self) -> str:
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind} {where}{self.name}"

    def line(self) -> str:
        detail = f": {self.detail}" if self.detail else ""
        return f"  {self.outcome:9} {self.label}{detail}"


@dataclass(frozen=True)
class PendingOwners:
    """An object restored before (some of) its owners: its references, waiting for them."""

    resource: ApiResource
    namespace: str | None
    name: str
    owners: tuple[dict[str, Any], ...]

    @property
    def label(self) -> str:
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{self.resource.kind} {where}{self.name}"


@dataclass
class Ledger:
    """Every object's outcome, as they happen (thread-safe); ``on_outcome`` sees each one."""

    on_outcome: Callable[[ObjectOutcome], None] | None = None
    outcomes: list[ObjectOutcome] = field(default_factory=list)
    pending_owners: list[PendingOwners] = field(default_factory=list)
    relinked: list[str] = field(default_factory=list)
    """Objects whose owner references were filled in once their owners were restored."""
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, outcome: ObjectOutcome) -> None:
        with self._lock:
            self.outcomes.append(outcome)
        if self.on_outcome is not None:
            self.on_outcome(outcome)

    def defer_owners(self, item: PendingOwners) -> None:
        with self._lock:
            self.pending_owners.append(item)

    def waiting_for_owners(self) -> list[PendingOwners]:
        with self._lock:
            return list(self.pending_owners)

    def owners_linked(self, item: PendingOwners) -> None:
        with self._lock:
            self.pending_owners.remove(item)
            self.relinked.append(item.label)

    def counts(self, priority: str | None = None) -> dict[str, int]:
        with self._lock:
            chosen = [o for o in self.outcomes if priority is None or o.priority == priority]
        return {kind: sum(o.outcome == kind for o in chosen) for kind in _OUTCOMES}

    def failures(self, priority: str | None = None) -> list[ObjectOutcome]:
        with self._lock:
            return [
                o
                for o in self.outcomes
                if o.outcome == FAILED and (priority is None or o.priority == priority)
            ]

    def as_dicts(self) -> list[dict[str, Any]]:
        with self._lock:
            return [asdict(o) for o in self.outcomes]


_OUTCOMES = (RESTORED, REPLACED, SKIPPED, FAILED)


@dataclass(frozen=True)
class Target:
    """Where and how to restore."""

    api: KubeApi
    source_namespace: str
    namespace: str
    replace: bool = False
    kinds: frozenset[str] | None = None
    """Resource keys to restore (``configmaps``, ``deployments.apps``); None: every kind."""

    def wants(self, record: Record) -> bool:
        """The namespace always (everything lives in it); CRDs when any custom kind is wanted."""
        key = record.resource.key
        if self.kinds is None or key == NAMESPACES.key:
            return True
        if key == CRDS.key:
            return key in self.kinds or any(k not in _BUILT_IN_KEYS for k in self.kinds)
        return key in self.kinds


_BUILT_IN_KEYS = frozenset(key for p in PRIORITIES for key in p.resources)


def archive_object(manifest: Manifest) -> StoredObject:
    for item in manifest.objects:
        if item.name == ARCHIVE_NAME:
            return item
    raise KubernetesRestoreError(
        f"backup {manifest.backup_id} has no {ARCHIVE_NAME}: it is not a Kubernetes-state backup"
    )


def open_archive(
    store: ObjectStore, manifest: Manifest
) -> tuple[Header, Generator[Record, None, None]]:
    """The archive's header and its records, streamed from ``store`` (verified at the end)."""
    return read_archive(raw_chunks(store, archive_object(manifest)))


def restore_priority(
    records: Iterable[Record],
    priority: str,
    target: Target,
    key: DataKey,
    ledger: Ledger,
) -> None:
    """Restore the records of one priority: skip those before it, stop at the first after it."""
    index = PRIORITIES.index(BY_NAME[priority])
    resources = _ResourceMap(target.api)
    for record in records:
        if record.priority < index:
            continue
        if record.priority > index:
            break
        if target.wants(record):
            ledger.add(restore_object(record, target, key, ledger, resources))
    relink_owners(target, ledger, resources)


def restore_all(records: Iterable[Record], target: Target, key: DataKey, ledger: Ledger) -> None:
    """Restore every wanted record, in the archive's (priority) order, in one pass."""
    resources = _ResourceMap(target.api)
    for record in records:
        if target.wants(record):
            ledger.add(restore_object(record, target, key, ledger, resources))
    relink_owners(target, ledger, resources)


def restore_namespace(
    manifest: Manifest,
    store: ObjectStore,
    target: Target,
    key: DataKey,
    ledger: Ledger | None = None,
) -> Ledger:
    """The whole archive of ``manifest`` into ``target`` in one pass; the ledger says how each
    object went (check ``failures()``: a restore with any is a failed restore)."""
    ledger = ledger or Ledger()
    _header, records = open_archive(store, manifest)
    restore_all(records, target, key, ledger)
    return ledger


def restore_object(
    record: Record,
    target: Target,
    key: DataKey,
    ledger: Ledger,
    resources: _ResourceMap | None = None,
) -> ObjectOutcome:
    resource = record.resource
    namespace = target.namespace if resource.namespaced else None
    name = target.namespace if resource.key == NAMESPACES.key else record.name

    def outcome(result: str, detail: str = "") -> ObjectOutcome:
        return ObjectOutcome(
            record.priority_name, resource.key, resource.kind, namespace, name, result, detail
        )

    try:
        obj = record.object
        if record.sealed is not None:
            obj = unseal_secret(obj, record.sealed, key)
        obj = renamed(obj, target.source_namespace, target.namespace)
        owners = tuple((obj.get("metadata") or {}).get("ownerReferences") or ())
        obj, notes = _resolve_owners(obj, namespace, resources or _ResourceMap(target.api))
    except SealingError as error:
        return outcome(FAILED, str(error))
    result, detail = _create_or_replace(target, resource, obj, name, namespace)
    if owners and (
        (notes and result in (RESTORED, REPLACED))
        or (result == SKIPPED and _restored_without_owners(target.api, resource, obj, owners))
    ):
        ledger.defer_owners(PendingOwners(resource, namespace, name, owners))
    if result != FAILED and resource.key == CRDS.key:
        waited = crd_not_ready(target.api, obj)
        if waited:
            return outcome(FAILED, waited)
    return outcome(result, "; ".join([*([detail] if detail else []), *notes]))


def _create_or_replace(
    target: Target,
    resource: ApiResource,
    obj: dict[str, Any],
    name: str,
    namespace: str | None,
) -> tuple[str, str]:
    api = target.api
    try:
        api.create(resource.collection_path(namespace), obj)
        return RESTORED, ""
    except KubeApiError as error:
        if not (error.status == 409 and error.reason == "AlreadyExists"):
            return FAILED, error.summary
    if not target.replace:
        return SKIPPED, "exists (pass --replace to apply the backup over it)"
    try:
        api.apply(resource.object_path(name, namespace), obj)
    except KubeApiError as error:
        return FAILED, f"exists, and applying the backup over it failed: {error.summary}"
    return REPLACED, "existed; the backup's fields applied over it"


def _restored_without_owners(
    api: KubeApi, resource: ApiResource, obj: dict[str, Any], owners: tuple[dict[str, Any], ...]
) -> bool:
    """An existing object that an earlier (interrupted) restore created before its owners: it
    still lacks references the backup has. Objects anyone else wrote are left as they are."""
    metadata = obj.get("metadata") or {}
    live = api.get(resource.object_path(str(metadata["name"]), metadata.get("namespace")))
    live_metadata = live.get("metadata") or {}
    managers = {entry.get("manager") for entry in live_metadata.get("managedFields") or []}
    linked = {(o.get("kind"), o.get("name")) for o in live_metadata.get("ownerReferences") or []}
    wanted = {(o.get("kind"), o.get("name")) for o in owners}
    return managers == {FIELD_MANAGER} and not wanted <= linked


def _resolve_owners(
    obj: dict[str, Any], namespace: str | None, resources: _ResourceMap
) -> tuple[dict[str, Any], list[str]]:
    """Owner references with the uids of the owners in the target namespace; references to
    owners not there (not restored, or restored later) are dropped and noted."""
    metadata = obj.get("metadata") or {}
    owners = metadata.get("ownerReferences")
    if not owners:
        return obj, []
    kept, notes = [], []
    for owner in owners:
        label = f"{owner.get('kind')}/{owner.get('name')}"
        resource = resources.find(str(owner.get("apiVersion", "")), str(owner.get("kind", "")))
        found = None
        if resource is not None:
            path = resource.object_path(str(owner.get("name")), namespace)
            try:
                found = resources.api.get(path)
            except KubeApiError as error:
                if error.status != 404:
                    raise
        if found is None:
            notes.append(f"owner {label} not restored yet: reference added when it is")
            continue
        kept.append(owner | {"uid": found["metadata"]["uid"]})
    out = dict(obj)
    out["metadata"] = dict(metadata) | {"ownerReferences": kept}
    if not kept:
        del out["metadata"]["ownerReferences"]
    return out, notes


def relink_owners(target: Target, ledger: Ledger, resources: _ResourceMap | None = None) -> None:
    """Give objects restored before their owners the owners' uids, once every owner exists.

    Until then they have no reference to a missing owner (the garbage collector deletes an
    object whose owner's uid does not exist); those whose owners never come keep none.
    """
    resources = resources or _ResourceMap(target.api)
    for item in ledger.waiting_for_owners():
        obj = {"metadata": {"ownerReferences": list(item.owners)}}
        resolved, notes = _resolve_owners(obj, item.namespace, resources)
        if notes:
            continue
        path = item.resource.object_path(item.name, item.namespace)
        target.api.merge_patch(path, {"metadata": resolved["metadata"]})
        ledger.owners_linked(item)


def missing_objects(records: Iterable[Record], target: Target) -> list[str]:
    """Labels of the wanted objects that the target does not hold."""
    missing = []
    for record in records:
        if not target.wants(record):
            continue
        resource = record.resource
        namespace = target.namespace if resource.namespaced else None
        name = target.namespace if resource.key == NAMESPACES.key else record.name
        if not target.api.exists(resource.object_path(name, namespace)):
            where = f"{namespace}/" if namespace else ""
            missing.append(f"{resource.kind} {where}{name}")
    return missing


class _ResourceMap:
    """(apiVersion, kind) -> resource, from discovery; read again on a miss (a CRD restored
    since), once per kind."""

    def __init__(self, api: KubeApi) -> None:
        self.api = api
        self._known: dict[tuple[str, str], ApiResource] | None = None
        self._missed: set[tuple[str, str]] = set()

    def find(self, api_version: str, kind: str) -> ApiResource | None:
        wanted = (api_version, kind)
        if self._known is None or (wanted not in self._known and wanted not in self._missed):
            if self._known is not None:
                self._missed.add(wanted)
            self._known = {(r.api_version, r.kind): r for r in discover(self.api)}
        return self._known.get(wanted)
