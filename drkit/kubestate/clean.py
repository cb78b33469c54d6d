"""Pure functions over the server's JSON: what to leave out of a backup, what to strip from an
object so it can be created again anywhere, and how it moves to another namespace.

A server sets fields no client may send back as they are (uid, resourceVersion, timestamps,
managedFields, status), allocates some that would collide or dangle in another namespace or
cluster (a Service's cluster IP, a claim's bound volume, node ports it chose), and labels a Job's
pods with the Job's uid. ``clean`` removes exactly those and keeps everything a person or a tool
declared, including ``kubectl.kubernetes.io/last-applied-configuration``.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any

SERVER_SET_METADATA = (
    "uid",
    "resourceVersion",
    "creationTimestamp",
    "generation",
    "managedFields",
    "selfLink",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
)
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
"""Set by the API server on every namespace from its name: wrong after a rename, and re-set."""
PVC_BIND_ANNOTATIONS = (
    "pv.kubernetes.io/bind-completed",
    "pv.kubernetes.io/bound-by-controller",
    "volume.beta.kubernetes.io/storage-provisioner",
    "volume.kubernetes.io/storage-provisioner",
    "volume.kubernetes.io/selected-node",
)
DEPLOYMENT_REVISION = "deployment.kubernetes.io/revision"
JOB_CONTROLLER_LABELS = (
    "controller-uid",
    "batch.kubernetes.io/controller-uid",
    "job-name",
    "batch.kubernetes.io/job-name",
)
CONTROLLER_KINDS = frozenset(
    {
        ("apps", "Deployment"),
        ("apps", "ReplicaSet"),
        ("apps", "StatefulSet"),
        ("apps", "DaemonSet"),
        ("batch", "Job"),
        ("batch", "CronJob"),
        ("", "ReplicationController"),
    }
)
"""Built-in controllers every cluster runs: what they own, they recreate from their own spec."""
ROOT_CA_CONFIGMAP = "kube-root-ca.crt"
SERVICE_ACCOUNT_TOKEN = "kubernetes.io/service-account-token"

EXCLUDED_RESOURCES: dict[str, str] = {
    "events": "a record of what happened, not state",
    "events.events.k8s.io": "a record of what happened, not state",
    "endpoints": "derived from services and pods by the endpoints controller",
    "endpointslices.discovery.k8s.io": "derived from services and pods by the EndpointSlice "
    "controller",
    "leases.coordination.k8s.io": "leader election and heartbeats, valid only while the holder "
    "runs",
    "csistoragecapacities.storage.k8s.io": "published by CSI drivers for the scheduler",
}
REQUIRED_VERBS = frozenset({"list", "get", "create"})
"""Read to back up, created to restore: a kind without ``create`` (metrics) cannot come back."""


def group_of(api_version: str) -> str:
    """``apps/v1`` -> ``apps``; ``v1`` -> the core group ``""``."""
    return api_version.split("/", 1)[0] if "/" in api_version else ""


def resource_exclusion(key: str, verbs: tuple[str, ...] | frozenset[str]) -> str | None:
    """Why a whole kind stays out of the backup, or None when it is backed up."""
    if key in EXCLUDED_RESOURCES:
        return EXCLUDED_RESOURCES[key]
    missing = REQUIRED_VERBS - set(verbs)
    if missing:
        return f"the server does not allow {', '.join(sorted(missing))} on it"
    return None


def skip_reason(obj: Mapping[str, Any]) -> str | None:
    """Why one object stays out of the backup (something recreates it), or None."""
    metadata = obj.get("metadata") or {}
    for owner in metadata.get("ownerReferences") or []:
        owner_kind = (group_of(str(owner.get("apiVersion", ""))), str(owner.get("kind", "")))
        if owner.get("controller") and owner_kind in CONTROLLER_KINDS:
            return f"recreated by its controller {owner_kind[1]}/{owner.get('name')}"
    kind = obj.get("kind")
    if kind == "Secret" and obj.get("type") == SERVICE_ACCOUNT_TOKEN:
        return "a service account token: the token controller issues a new one"
    if kind == "ConfigMap" and metadata.get("name") == ROOT_CA_CONFIGMAP:
        return "published into every namespace by the cluster's root CA publisher"
    return None


def clean(obj: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``obj`` without what the server set, ready to create again. Never mutates."""
    out: dict[str, Any] = copy.deepcopy(dict(obj))
    out.pop("status", None)
    metadata: dict[str, Any] = out.setdefault("metadata", {})
    for field in SERVER_SET_METADATA:
        metadata.pop(field, None)
    owners = metadata.get("ownerReferences")
    if owners:
        # A uid names the owner in this cluster only; restore looks the new one up.
        metadata["ownerReferences"] = [
            {k: v for k, v in owner.items() if k != "uid"} for owner in owners
        ]
    kind = (group_of(str(out.get("apiVersion", ""))), str(out.get("kind", "")))
    cleaner = _BY_KIND.get(kind)
    if cleaner is not None:
        cleaner(out)
    for field in ("annotations", "labels"):
        if field in metadata and not metadata[field]:
            del metadata[field]
    return out


def renamed(obj: Mapping[str, Any], source: str, target: str) -> dict[str, Any]:
    """A copy of a cleaned object moved from namespace ``source`` to ``target``.

    Rewrites ``metadata.namespace``, the Namespace's own name, and the subjects of a
    RoleBinding that are service accounts of the source namespace (the grant follows the
    account). Other mentions of the namespace (DNS names in a ConfigMap) are data, left as they are.
    """
    out: dict[str, Any] = copy.deepcopy(dict(obj))
    if source == target:
        return out
    metadata: dict[str, Any] = out.setdefault("metadata", {})
    if out.get("kind") == "Namespace" and out.get("apiVersion") == "v1":
        metadata["name"] = target
        return out
    if metadata.get("namespace") == source:
        metadata["namespace"] = target
    if out.get("kind") == "RoleBinding":
        for subject in out.get("subjects") or []:
            if subject.get("kind") == "ServiceAccount" and subject.get("namespace") == source:
                subject["namespace"] = target
    return out


# --- per kind ----------------------------------------------------------------------------------


def _annotations(obj: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = obj["metadata"].get("annotations") or {}
    return found


def _last_applied(obj: dict[str, Any]) -> dict[str, Any]:
    text = _annotations(obj).get(LAST_APPLIED)
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _namespace(obj: dict[str, Any]) -> None:
    labels = obj["metadata"].get("labels") or {}
    labels.pop(NAMESPACE_NAME_LABEL, None)
    spec = obj.get("spec") or {}
    spec.pop("finalizers", None)  # the server adds "kubernetes" itself
    if "spec" in obj and not spec:
        del obj["spec"]


def _service(obj: dict[str, Any]) -> None:
    """Cluster IPs are allocated per cluster (a headless ``None`` is declared, and kept). Node
    ports are kept only where the last applied configuration asked for that exact port."""
    spec = obj.get("spec") or {}
    if spec.get("clusterIP") != "None":
        spec.pop("clusterIP", None)
        spec.pop("clusterIPs", None)
    declared = _last_applied(obj).get("spec") or {}
    asked = {p.get("nodePort") for p in declared.get("ports") or [] if p.get("nodePort")}
    for port in spec.get("ports") or []:
        if port.get("nodePort") not in asked:
            port.pop("nodePort", None)
    if spec.get("healthCheckNodePort") != declared.get("healthCheckNodePort"):
        spec.pop("healthCheckNodePort", None)


def _claim(obj: dict[str, Any]) -> None:
    """A claim binds to a new volume (or, restored with its volume, to that one again)."""
    (obj.get("spec") or {}).pop("volumeName", None)
    annotations = _annotations(obj)
    for annotation in PVC_BIND_ANNOTATIONS:
        annotations.pop(annotation, None)


def _service_account(obj: dict[str, Any]) -> None:
    """Drops references to legacy auto-generated token Secrets (``<name>-token-xxxxx``)."""
    prefix = f"{obj['metadata'].get('name')}-token-"
    secrets = [s for s in obj.get("secrets") or [] if not str(s.get("name", "")).startswith(prefix)]
    if secrets:
        obj["secrets"] = secrets
    else:
        obj.pop("secrets", None)


def _pod(obj: dict[str, Any]) -> None:
    (obj.get("spec") or {}).pop("nodeName", None)  # the scheduler places it again


def _deployment(obj: dict[str, Any]) -> None:
    _annotations(obj).pop(DEPLOYMENT_REVISION, None)


def _job(obj: dict[str, Any]) -> None:
    """The server generated the selector and labels from the Job's uid; it generates new ones
    from the new uid, and rejects the old ones unless the selector was declared by hand."""
    spec = obj.get("spec") or {}
    if spec.get("manualSelector"):
        return
    spec.pop("selector", None)
    template_metadata = (spec.get("template") or {}).get("metadata") or {}
    for labels in (obj["metadata"].get("labels") or {}, template_metadata.get("labels") or {}):
        for label in JOB_CONTROLLER_LABELS:
            labels.pop(label, None)


_BY_KIND = {
    ("", "Namespace"): _namespace,
    ("", "Service"): _service,
    ("", "PersistentVolumeClaim"): _claim,
    ("", "ServiceAccount"): _service_account,
    ("", "Pod"): _pod,
    ("apps", "Deployment"): _deployment,
    ("batch", "Job"): _job,
}
