"""The test restore of a Kubernetes-state backup for ``invoke verify``.

The newest backup is restored into a scratch namespace ``<namespace>-verify-<token>`` of the
store's cluster (the monthly drill: ``<namespace>-dr-test``, the second seed's ``aipx-dr-test``),
compared object by object with the archive, and the namespace deleted, also when the restore or the
comparison fails:

- **refused, not replaced**: a namespace of that name that already exists is never written to or
  deleted; the check misses and names it.
- **nothing runs**: before any workload, the namespace gets a ResourceQuota of zero pods, so the
  restored Deployments, StatefulSets and Jobs start no second copy of the application (a bare
  Pod in the backup is compared by presence in the archive only, never created).
- **Secrets** are unsealed with the backup's data key (KMS) in memory, created in the scratch
  namespace, compared, and deleted with it; no value is written to a report or the journal (a
  difference is reported by its JSON path, never its value).
- **compared with the backup**: each object of the archive, renamed into the scratch namespace,
  against the live object read back and cleaned the same way a backup cleans it; objects in the
  namespace the backup does not hold are reported too. A CustomResourceDefinition is cluster-wide:
  one that already exists is left as it is and counted as shared (not compared); one the cluster
  lacks is created for the custom resources, labelled as scratch, and deleted afterwards.
- **found again after a kill**: the namespace (and a CRD it created) carry the labels
  ``drkit.io/verify-scratch=<store>`` and ``drkit.io/verify-holder=<holder tag>``
  (``drkit.ops.scratch``); ``cleanup`` removes those whose run is gone.

Memory: the archive is streamed (one object at a time), the live side read one object at a time
and listed a page at a time; what is kept is one id per object.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from drkit.context import OpsContext
from drkit.kubestate.api import CRDS, NAMESPACES, ApiResource, KubeApi, KubeApiError, discover
from drkit.kubestate.archive import Record
from drkit.kubestate.clean import clean, renamed
from drkit.kubestate.compare import StateDiff, differences, object_id
from drkit.kubestate.reader import NamespaceReader
from drkit.kubestate.sealing import DataKey, unseal_secret
from drkit.ops.restore_k8s import RestoreK8sRequest, kubernetes_api, prepare
from drkit.ops.scratch import VERIFY, Holder, RestoreDiffers, ScratchExists, namespace_name
from drkit.ops.selection import Chosen
from drkit.restore.kubernetes import (
    RESTORED,
    KubernetesRestoreError,
    Ledger,
    Target,
    open_archive,
    restore_all,
)

SCRATCH_LABEL = "drkit.io/verify-scratch"
HOLDER_LABEL = "drkit.io/verify-holder"
QUOTA_NAME = "drkit-verify-no-pods"
PODS = "pods"
RESOURCE_QUOTAS = ApiResource(
    "", "v1", "resourcequotas", "ResourceQuota", True, ("get", "list", "create")
)
SAFE_FINALIZERS = frozenset({"kubernetes", "kubernetes.io/pvc-protection"})
"""Finalizers whose controllers only wait for pods to let go: none run in a scratch namespace."""
FINALIZER_WAIT_S = 30.0
DELETE_TIMEOUT_S = 60.0
POLL_S = 0.2


def scratch_name(namespace: str, holder: Holder, purpose: str = VERIFY) -> str:
    """``<namespace>-verify-<token>``, or ``<namespace>-dr-test`` for the monthly drill
    (``drkit.ops.scratch.namespace_name``)."""
    return namespace_name(namespace, holder, purpose)


def scratch_labels(store: str, holder: Holder) -> dict[str, str]:
    return {SCRATCH_LABEL: store, HOLDER_LABEL: holder.tag}


@dataclass
class Comparison:
    diff: StateDiff = field(default_factory=StateDiff)
    shared: list[str] = field(default_factory=list)
    """Pre-existing cluster-wide objects (CRDs): present, left as they are, not compared."""
    not_created: list[str] = field(default_factory=list)
    """Objects of the archive a scratch restore does not create (bare Pods)."""


def test_restore(
    ctx: OpsContext, chosen: Chosen, holder: Holder, source: str, purpose: str = VERIFY
) -> tuple[str, Any]:
    """Restore ``chosen`` into a scratch namespace, compare, delete; (detail, figures) or raises."""
    namespace = str(chosen.manifest.source.get("namespace") or "ns")
    request = RestoreK8sRequest(
        store=chosen.store,
        backup=chosen.entry.backup_id,
        namespace_to=scratch_name(namespace, holder, purpose),
        source=source,
    )
    prepared = prepare(ctx, request, None)
    api, target = prepared.target.api, prepared.target
    labels = scratch_labels(chosen.store, holder)
    created_crds: list[str] = []
    created = False
    try:
        header, records = open_archive(prepared.chosen.objects, prepared.manifest)
        try:
            first = next(records, None)
            if first is None or first.resource.key != NAMESPACES.key:
                raise KubernetesRestoreError(
                    f"backup {chosen.entry.backup_id}: the archive does not start with its "
                    "Namespace"
                )
            created = _create_namespace(api, first, target, labels)
            _forbid_pods(api, target.namespace, labels)
            restore_all(_scratch_records(records, labels), target, prepared.key, prepared.ledger)
        finally:
            records.close()
        created_crds = [
            o.name
            for o in prepared.ledger.outcomes
            if o.resource == CRDS.key and o.outcome == RESTORED
        ]
        _header, records = open_archive(prepared.chosen.objects, prepared.manifest)
        try:
            comparison = compare_with_backup(
                api, records, prepared.key, header.namespace, target.namespace, created_crds
            )
        finally:
            records.close()
    finally:
        try:
            if created:
                remove_namespace(api, target.namespace)
            for name in created_crds:
                _delete_quietly(api, CRDS.object_path(name))
        finally:
            prepared.close()
    return _verdict(chosen, prepared.ledger, comparison, target.namespace, created_crds)


def _create_namespace(api: KubeApi, record: Record, target: Target, labels: dict[str, str]) -> bool:
    obj = renamed(record.object, target.source_namespace, target.namespace)
    metadata = obj.setdefault("metadata", {})
    metadata["labels"] = dict(metadata.get("labels") or {}) | labels
    try:
        api.create(NAMESPACES.collection_path(), obj)
    except KubeApiError as error:
        if error.status == 409:
            raise ScratchExists(
                f"scratch namespace {target.namespace!r} already exists on {api.server}: "
                "refused, not replaced (remove it, or run `invoke verify --cleanup` if a killed "
                "verify left it)"
            ) from None
        raise
    return True


def _forbid_pods(api: KubeApi, namespace: str, labels: dict[str, str]) -> None:
    """A quota of zero pods, enforced at once (its status set, as the quota controller would)."""
    quota = {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": {"name": QUOTA_NAME, "labels": labels},
        "spec": {"hard": {PODS: "0"}},
    }
    api.create(RESOURCE_QUOTAS.collection_path(namespace), quota)
    path = RESOURCE_QUOTAS.object_path(QUOTA_NAME, namespace)
    api.merge_patch(f"{path}/status", {"status": {"hard": {PODS: "0"}, "used": {PODS: "0"}}})


def _scratch_records(records: Iterable[Record], labels: dict[str, str]) -> Iterator[Record]:
    """The archive as a scratch restore creates it: CRDs labelled (one it creates is removed
    after), bare Pods left out (nothing runs in a scratch namespace)."""
    for record in records:
        if record.resource.key == PODS:
            continue
        if record.resource.key == CRDS.key:
            obj = dict(record.object)
            metadata = dict(obj.get("metadata") or {})
            metadata["labels"] = dict(metadata.get("labels") or {}) | labels
            obj["metadata"] = metadata
            record = replace(record, object=obj)
        yield record


def compare_with_backup(
    api: KubeApi,
    records: Iterable[Record],
    key: DataKey,
    source: str,
    target: str,
    created_crds: Iterable[str] = (),
) -> Comparison:
    """Each object of the archive (Secrets unsealed in memory) against the one in ``target``."""
    result = Comparison()
    diff = result.diff
    ours = set(created_crds)
    expected_ids: set[str] = set()
    for record in records:
        resource = record.resource
        obj = unseal_secret(record.object, record.sealed, key) if record.sealed else record.object
        expected = renamed(obj, source, target)
        oid = object_id(resource.key, expected)
        expected_ids.add(oid)
        if resource.key == PODS:
            result.not_created.append(oid)
            continue
        if resource.key == CRDS.key and record.name not in ours:
            result.shared.append(oid)
            continue
        diff.expected += 1
        namespace = target if resource.namespaced else None
        name = target if resource.key == NAMESPACES.key else record.name
        try:
            live = api.get(resource.object_path(name, namespace))
        except KubeApiError as error:
            if error.status != 404:
                raise
            diff.missing.append(oid)
            continue
        typed = {"apiVersion": resource.api_version, "kind": resource.kind} | live
        actual = clean(_unmarked(typed))
        paths = differences(expected, actual)
        if paths:
            diff.mismatched[oid] = paths
        else:
            diff.equal += 1
    reader = NamespaceReader(api, target)
    live_ids = {
        object_id(page.resource.key, obj)
        for page in reader.pages(reader.survey(None), None)
        for obj in page.objects
    }
    diff.unexpected = sorted(
        live_ids - expected_ids - {object_id(RESOURCE_QUOTAS.key, _named(QUOTA_NAME))}
    )
    return result


def _named(name: str) -> dict[str, Any]:
    return {"metadata": {"name": name}}


def _unmarked(obj: dict[str, Any]) -> dict[str, Any]:
    """Without the scratch labels this run put on the namespace and on CRDs it created."""
    metadata = dict(obj.get("metadata") or {})
    labels = metadata.get("labels") or {}
    metadata["labels"] = {k: v for k, v in labels.items() if k not in (SCRATCH_LABEL, HOLDER_LABEL)}
    return obj | {"metadata": metadata}


def _verdict(
    chosen: Chosen, ledger: Ledger, comparison: Comparison, namespace: str, crds: list[str]
) -> tuple[str, dict[str, Any]]:
    diff = comparison.diff
    failures = ledger.failures()
    backup = chosen.entry.backup_id
    if failures or not diff.ok:
        problems = [f"{o.label}: {o.detail}" for o in failures[:5]]
        if not diff.ok:
            problems.append(diff.summary())
        raise RestoreDiffers(
            f"backup {backup} restored into scratch namespace {namespace!r} (deleted) differs: "
            + "; ".join(problems)
        )
    extra = []
    if comparison.shared:
        extra.append(f"{len(comparison.shared)} existing CRD(s) shared, not compared")
    if crds:
        extra.append(f"{len(crds)} CRD(s) created and deleted")
    if comparison.not_created:
        extra.append(f"{len(comparison.not_created)} bare Pod(s) not started")
    notes = f" ({'; '.join(extra)})" if extra else ""
    detail = (
        f"{backup}: {diff.equal}/{diff.expected} objects equal to the backup in scratch "
        f"namespace {namespace} (deleted), Secrets unsealed in memory{notes}"
    )
    figures = {
        "objects_equal": diff.equal,
        "objects_expected": diff.expected,
        "objects_restored": ledger.counts()[RESTORED],
        "scratch_namespace": namespace,
    }
    return detail, figures


# --- removal ----------------------------------------------------------------------------------


def remove_namespace(api: KubeApi, namespace: str, timeout: float = DELETE_TIMEOUT_S) -> None:
    """Delete every object of ``namespace``, then the namespace; bounded by ``timeout``.

    Finalizers that only wait for pods (none can run here) are cleared at once; any other is
    given ``FINALIZER_WAIT_S`` for its controller, then cleared. Without a namespace controller
    (a bare API server) the emptied namespace is finalized as that controller would.
    """
    deadline = time.monotonic() + timeout
    pending = _delete_contents(api, namespace)
    waited_since = time.monotonic()
    while pending:
        still = []
        for path in pending:
            try:
                live = api.get(path)
            except KubeApiError as error:
                if error.status == 404:
                    continue
                raise
            finalizers = (live.get("metadata") or {}).get("finalizers") or []
            patient = time.monotonic() - waited_since < FINALIZER_WAIT_S
            if finalizers and (not set(finalizers) <= SAFE_FINALIZERS and patient):
                still.append(path)
                continue
            if finalizers:
                _clear_finalizers(api, path)
            still.append(path)
        pending = [p for p in still if api.exists(p)]
        if pending and time.monotonic() > deadline:
            raise RuntimeError(
                f"scratch namespace {namespace!r}: {len(pending)} object(s) not deleted after "
                f"{timeout:.0f}s, e.g. {pending[0]}; `invoke verify --cleanup` retries"
            )
        if pending:
            time.sleep(POLL_S)
    path = NAMESPACES.object_path(namespace)
    _delete_quietly(api, path)
    while True:
        try:
            live = api.get(path)
        except KubeApiError as error:
            if error.status == 404:
                return
            raise
        if (live.get("status") or {}).get("phase") == "Terminating":
            _finalize(api, namespace, live)
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"scratch namespace {namespace!r} still there {timeout:.0f}s after its delete "
                f"(finalizers {(live.get('spec') or {}).get('finalizers')}); "
                "`invoke verify --cleanup` retries"
            )
        time.sleep(POLL_S)


def _delete_contents(api: KubeApi, namespace: str) -> list[str]:
    deleted = []
    for resource in discover(api):
        if not resource.namespaced or not {"list", "delete"} <= set(resource.verbs):
            continue
        for page in api.pages(resource.collection_path(namespace), 250):
            for item in page.get("items") or []:
                path = resource.object_path(item["metadata"]["name"], namespace)
                _delete_quietly(api, path)
                deleted.append(path)
    return deleted


def _clear_finalizers(api: KubeApi, path: str) -> None:
    try:
        api.merge_patch(path, {"metadata": {"finalizers": None}})
    except KubeApiError as error:
        if error.status != 404:
            raise


def _finalize(api: KubeApi, namespace: str, live: dict[str, Any]) -> None:
    """Drop the namespace's ``kubernetes`` finalizer once it is empty (the namespace
    controller's last act; with one running, it may have done it first)."""
    if not (live.get("spec") or {}).get("finalizers"):
        return
    body = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": namespace, "resourceVersion": live["metadata"]["resourceVersion"]},
        "spec": {"finalizers": []},
    }
    try:
        api.request("PUT", f"{NAMESPACES.object_path(namespace)}/finalize", body=body)
    except KubeApiError as error:
        if error.status not in (404, 409):
            raise


def _delete_quietly(api: KubeApi, path: str) -> None:
    try:
        api.delete(path)
    except KubeApiError as error:
        if error.status != 404:
            raise


# --- leftovers of killed runs ---------------------------------------------------------------


@dataclass(frozen=True)
class Leftover:
    what: str
    name: str
    holder: Holder | None
    reason: str | None
    """Why it may be removed; None: its run may still be going."""


def leftovers(
    ctx: OpsContext, store: str, now: datetime, forced: bool
) -> tuple[KubeApi, list[Leftover]]:
    """The scratch namespaces and CRDs of ``store`` that verify runs left on its cluster."""
    api = kubernetes_api(ctx, store)
    found = []
    selector: list[tuple[str, str | int]] = [("labelSelector", f"{SCRATCH_LABEL}={store}")]
    for resource, what in ((NAMESPACES, "namespace"), (CRDS, "CRD")):
        listing = api.get(resource.collection_path(), selector)
        for item in listing.get("items") or []:
            metadata = item.get("metadata") or {}
            holder = Holder.parse(str((metadata.get("labels") or {}).get(HOLDER_LABEL, "")))
            reason = (
                holder.orphaned(now, forced) if holder else "labelled as scratch with no holder tag"
            )
            found.append(Leftover(what, str(metadata["name"]), holder, reason))
    return api, found


def cleanup(ctx: OpsContext, store: str, now: datetime, forced: bool, dry_run: bool) -> list[str]:
    """Remove the leftovers whose run is gone; one line per leftover found."""
    api, found = leftovers(ctx, store, now, forced)
    lines = []
    try:
        for item in found:
            label = f"{item.what} {item.name}"
            if item.reason is None:
                lines.append(f"kept {label}: its run may still be going")
                continue
            if not dry_run:
                if item.what == "namespace":
                    remove_namespace(api, item.name)
                else:
                    _delete_quietly(api, CRDS.object_path(item.name))
            lines.append(f"{'would remove' if dry_run else 'removed'} {label}: {item.reason}")
    finally:
        api.client.close()
    return lines
