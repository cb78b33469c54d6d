"""The Kubernetes side of a region switch: labelled workloads and the Kafka bootstrap ConfigMap.

Workloads opt in with the label ``trading-dr/failover-replicas=<n>``: the replica count they run
with while their region is primary. The target region's are scaled to ``n``; the source region's
(the fence) to 0. Deployments and StatefulSets are scaled through their ``scale`` subresource,
which the API server itself serves (no controller needed to record the intent).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kubernetes.client import AppsV1Api, CoreV1Api, VersionApi  # type: ignore[import-untyped]
from kubernetes.client.rest import ApiException  # type: ignore[import-untyped]

from drkit.failover.clients import request_timeout

REPLICAS_LABEL = "trading-dr/failover-replicas"
SERVICE_LABEL = "trading-dr/service"
"""Which service (stack config ``services``) a workload belongs to: it starts with that service."""
RESTARTED_ANNOTATION = "trading-dr/restarted-by"
"""On a warm workload's pod template: the failover run that restarted it (its pods roll)."""
BOOTSTRAP_CONFIGMAP = "kafka-bootstrap"
BOOTSTRAP_KEY = "bootstrap.servers"
FIELD_MANAGER = "drkit-failover"


@dataclass(frozen=True)
class Workload:
    kind: str
    name: str
    replicas: int
    wanted_when_primary: int
    restarted_by: str | None = None
    service: str | None = None

    def key(self) -> str:
        return f"{self.kind}/{self.name}"


def labelled_workloads(
    api: Any, namespace: str, fast_fail: bool = False, selector: str = REPLICAS_LABEL
) -> list[Workload]:
    """The workloads carrying the replicas label (and matching ``selector``, a label selector)."""
    apps = AppsV1Api(api)
    timeout = request_timeout(fast_fail)
    found: list[Workload] = []
    for kind, lister in (
        ("deployment", apps.list_namespaced_deployment),
        ("statefulset", apps.list_namespaced_stateful_set),
    ):
        items = lister(namespace, label_selector=selector, _request_timeout=timeout).items
        for item in items:
            value = item.metadata.labels[REPLICAS_LABEL]
            if not value.isdigit():
                raise ValueError(
                    f"{kind} {namespace}/{item.metadata.name}: label {REPLICAS_LABEL}={value!r} "
                    "is not a replica count"
                )
            template = item.spec.template.metadata if item.spec.template else None
            annotations = (template.annotations if template else None) or {}
            found.append(
                Workload(
                    kind,
                    item.metadata.name,
                    item.spec.replicas or 0,
                    int(value),
                    annotations.get(RESTARTED_ANNOTATION),
                    item.metadata.labels.get(SERVICE_LABEL),
                )
            )
    return sorted(found, key=lambda w: w.key())


def scale(
    api: Any, namespace: str, workload: Workload, replicas: int, fast_fail: bool = False
) -> None:
    apps = AppsV1Api(api)
    body = {"spec": {"replicas": replicas}}
    timeout = request_timeout(fast_fail)
    if workload.kind == "deployment":
        apps.patch_namespaced_deployment_scale(
            workload.name, namespace, body, field_manager=FIELD_MANAGER, _request_timeout=timeout
        )
    else:
        apps.patch_namespaced_stateful_set_scale(
            workload.name, namespace, body, field_manager=FIELD_MANAGER, _request_timeout=timeout
        )


def service_selector(service: str | None) -> str:
    """Workloads of ``service``; None: the labelled workloads of no service."""
    if service is None:
        return f"{REPLICAS_LABEL},!{SERVICE_LABEL}"
    return f"{REPLICAS_LABEL},{SERVICE_LABEL}={service}"


def restart(api: Any, namespace: str, workload: Workload, by: str) -> None:
    """Roll the workload's pods (as ``kubectl rollout restart`` does: a pod template annotation),
    so running pods start again and read the new primaries' addresses."""
    apps = AppsV1Api(api)
    body = {"spec": {"template": {"metadata": {"annotations": {RESTARTED_ANNOTATION: by}}}}}
    timeout = request_timeout(False)
    if workload.kind == "deployment":
        apps.patch_namespaced_deployment(
            workload.name, namespace, body, field_manager=FIELD_MANAGER, _request_timeout=timeout
        )
    else:
        apps.patch_namespaced_stateful_set(
            workload.name, namespace, body, field_manager=FIELD_MANAGER, _request_timeout=timeout
        )


def scale_all(
    api: Any,
    namespace: str,
    primary: bool,
    fast_fail: bool = False,
    selector: str = REPLICAS_LABEL,
) -> dict[str, list[int]]:
    """Scale every labelled workload to its primary count (or 0); returns key -> [from, to]."""
    changes: dict[str, list[int]] = {}
    for workload in labelled_workloads(api, namespace, fast_fail, selector):
        wanted = workload.wanted_when_primary if primary else 0
        if workload.replicas != wanted:
            scale(api, namespace, workload, wanted, fast_fail)
            changes[workload.key()] = [workload.replicas, wanted]
    return changes


def misscaled(api: Any, namespace: str, primary: bool, selector: str = REPLICAS_LABEL) -> list[str]:
    """The labelled workloads whose ``spec.replicas`` is not what the role asks for."""
    return [
        f"{w.key()} has {w.replicas}, wants {w.wanted_when_primary if primary else 0}"
        for w in labelled_workloads(api, namespace, selector=selector)
        if w.replicas != (w.wanted_when_primary if primary else 0)
    ]


def bootstrap_servers(api: Any, namespace: str) -> str | None:
    try:
        configmap = CoreV1Api(api).read_namespaced_config_map(
            BOOTSTRAP_CONFIGMAP, namespace, _request_timeout=request_timeout(False)
        )
    except ApiException as error:
        if error.status == 404:
            return None
        raise
    value = (configmap.data or {}).get(BOOTSTRAP_KEY)
    return str(value) if value is not None else None


def set_bootstrap_servers(api: Any, namespace: str, servers: str, changed_by: str) -> None:
    """Create or update the ConfigMap the applications read their Kafka bootstrap list from."""
    core = CoreV1Api(api)
    body = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": BOOTSTRAP_CONFIGMAP,
            "namespace": namespace,
            "annotations": {"trading-dr/switched-by": changed_by},
        },
        "data": {BOOTSTRAP_KEY: servers},
    }
    timeout = request_timeout(False)
    try:
        core.patch_namespaced_config_map(
            BOOTSTRAP_CONFIGMAP,
            namespace,
            body,
            field_manager=FIELD_MANAGER,
            _request_timeout=timeout,
        )
    except ApiException as error:
        if error.status != 404:
            raise
        core.create_namespaced_config_map(
            namespace, body, field_manager=FIELD_MANAGER, _request_timeout=timeout
        )


def server_version(api: Any, fast_fail: bool = False) -> str:
    info = VersionApi(api).get_code(_request_timeout=request_timeout(fast_fail))
    return str(info.git_version)
