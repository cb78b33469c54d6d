"""The application namespace as the seed's script backs it up, and its loss.

``seed_namespace`` creates what ``backup-k8s-state.sh`` reads (deployments, a statefulset, a
cronjob, services, configmaps, secrets, a claim, an ingress, a service account, a role and its
binding) plus a CRD with custom resources, a ConfigMap owned by one of them, and a ReplicaSet and
Pod owned by a Deployment (what a controller would have made: a backup must leave them out).

``wipe_namespace`` is the disaster: every object in the namespace deleted, finalizers and all, and
the CRDs with them. (The Namespace object stays: without a controller-manager a deleted namespace
never finishes terminating; on a real cluster the restore recreates it.)

Secret values are random per call, so a test can look for them in what the backup stored.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from drkit.kubestate.api import CRDS, KubeApi, KubeApiError, crd_not_ready, discover
from drkit.kubestate.clean import LAST_APPLIED

APP = "aipx"
MANAGER = "drkit-seed"
"""The field manager of what seeding writes: not the restore's own."""
WIPE_TIMEOUT_S = 60.0


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@dataclass
class SeededNamespace:
    namespace: str
    group: str
    crd: str
    secret_values: list[str] = field(default_factory=list)
    """Every Secret value seeded, in plain text: none may appear in a backup's bytes."""
    created: int = 0


def _meta(name: str, namespace: str, **labels: str) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": namespace,
        "labels": {"app.kubernetes.io/part-of": APP} | labels,
    }


def _pod_spec(image: str, port: int, service_account: str | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "containers": [
            {
                "name": "main",
                "image": image,
                "ports": [{"containerPort": port}],
                "envFrom": [{"configMapRef": {"name": "app-config"}}],
                "env": [
                    {
                        "name": "PGPASSWORD",
                        "valueFrom": {
                            "secretKeyRef": {"name": "postgres-credentials", "key": "password"}
                        },
                    }
                ],
                "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}},
            }
        ]
    }
    if service_account:
        spec["serviceAccountName"] = service_account
    return spec


def _deployment(name: str, namespace: str, image: str, replicas: int) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(name, namespace, app=name),
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": _pod_spec(image, 8080, "aipx-app"),
            },
        },
    }


def crd_manifest(group: str) -> dict[str, Any]:
    """``Venue``: a trading venue with its order limits, as an operator's custom kind."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"venues.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"plural": "venues", "singular": "venue", "kind": "Venue"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "spec": {
                                    "type": "object",
                                    "required": ["mic", "maxOrderQty"],
                                    "properties": {
                                        "mic": {"type": "string", "pattern": "^[A-Z]{4}$"},
                                        "maxOrderQty": {"type": "integer", "minimum": 1},
                                        "tradingHours": {"type": "string"},
                                    },
                                }
                            },
                        }
                    },
                }
            ],
        },
    }


def manifests(namespace: str, values: dict[str, str]) -> list[dict[str, Any]]:
    """The seed's kinds (CRD, custom resources and owned objects are added by seeding)."""
    registry = json.dumps(
        {"auths": {"registry.aipx.io": {"auth": _b64(f"ci:{values['registry']}")}}}
    )
    pg_secret: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": _meta("postgres-credentials", namespace),
        "type": "Opaque",
        "data": {"username": _b64("postgres"), "password": _b64(values["postgres"])},
    }
    # kubectl apply copies the whole Secret, values included, into this annotation.
    pg_secret["metadata"]["annotations"] = {LAST_APPLIED: json.dumps(pg_secret, sort_keys=True)}
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta("aipx-app", namespace)},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": _meta("aipx-app", namespace),
            "rules": [
                {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list", "watch"]}
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": _meta("aipx-app", namespace),
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": "aipx-app",
            },
            "subjects": [{"kind": "ServiceAccount", "name": "aipx-app", "namespace": namespace}],
        },
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": _meta("redis-clients-only", namespace),
            "spec": {
                "podSelector": {"matchLabels": {"app": "redis"}},
                "policyTypes": ["Ingress"],
                "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "api-gateway"}}}]}],
            },
        },
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": _meta("app-config", namespace),
            "data": {
                "DATABASE_HOST": f"postgresql.{namespace}.svc.cluster.local",
                "KAFKA_BOOTSTRAP": "kafka:9092",
                "LOG_LEVEL": "info",
                "risk-limits.json": json.dumps({"max_notional": 5_000_000, "max_orders_s": 200}),
            },
        },
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": _meta("strategy-params", namespace),
            "data": {"mean-revert.yaml": "lookback: 20\nz_entry: 2.0\nz_exit: 0.5\n"},
            "binaryData": {"model.bin": base64.b64encode(bytes(range(64))).decode()},
        },
        pg_secret,
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": _meta("aws-credentials", namespace),
            "type": "Opaque",
            "stringData": {
                "access_key_id": "AKIA" + values["aws_id"],
                "secret_access_key": values["aws"],
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": _meta("registry-pull", namespace),
            "type": "kubernetes.io/dockerconfigjson",
            "data": {".dockerconfigjson": _b64(registry)},
        },
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": _meta("market-data-cache", namespace),
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "storageClassName": "gp3",
                "resources": {"requests": {"storage": "20Gi"}},
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": _meta("api-gateway", namespace),
            "spec": {
                "selector": {"app": "api-gateway"},
                "ports": [{"name": "http", "port": 80, "targetPort": 8080}],
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": _meta("api-gateway-external", namespace),
            "spec": {
                "type": "NodePort",
                "selector": {"app": "api-gateway"},
                "ports": [{"name": "http", "port": 80, "targetPort": 8080}],
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": _meta("redis", namespace),
            "spec": {
                "clusterIP": "None",
                "selector": {"app": "redis"},
                "ports": [{"name": "redis", "port": 6379}],
            },
        },
        _deployment("api-gateway", namespace, "registry.aipx.io/api-gateway:1.14.2", 3),
        _deployment("strategy-engine", namespace, "registry.aipx.io/strategy-engine:2.3.0", 2),
        {
            "apiVersion": "apps/v1",
            "kind": "StatefulSet",
            "metadata": _meta("redis", namespace, app="redis"),
            "spec": {
                "serviceName": "redis",
                "replicas": 1,
                "selector": {"matchLabels": {"app": "redis"}},
                "template": {
                    "metadata": {"labels": {"app": "redis"}},
                    "spec": {
                        "containers": [
                            {
                                "name": "redis",
                                "image": "redis:7.4",
                                "ports": [{"containerPort": 6379}],
                            }
                        ]
                    },
                },
                "volumeClaimTemplates": [
                    {
                        "metadata": {"name": "data"},
                        "spec": {
                            "accessModes": ["ReadWriteOnce"],
                            "resources": {"requests": {"storage": "10Gi"}},
                        },
                    }
                ],
            },
        },
        {
            "apiVersion": "batch/v1",
            "kind": "CronJob",
            "metadata": _meta("postgresql-backup", namespace),
            "spec": {
                "schedule": "*/15 * * * *",
                "concurrencyPolicy": "Forbid",
                "jobTemplate": {
                    "spec": {
                        "template": {
                            "spec": {
                                "restartPolicy": "OnFailure",
                                "containers": [
                                    {
                                        "name": "backup",
                                        "image": "registry.aipx.io/drkit:0.1.0",
                                        "args": ["backup", "trading-db"],
                                    }
                                ],
                            }
                        }
                    }
                },
            },
        },
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "Ingress",
            "metadata": _meta("api", namespace),
            "spec": {
                "rules": [
                    {
                        "host": "api.aipx.io",
                        "http": {
                            "paths": [
                                {
                                    "path": "/",
                                    "pathType": "Prefix",
                                    "backend": {
                                        "service": {"name": "api-gateway", "port": {"number": 80}}
                                    },
                                }
                            ]
                        },
                    }
                ]
            },
        },
    ]


def _create(api: KubeApi, path: str, body: dict[str, Any]) -> Any:
    return api.create(path, body, MANAGER)


def _path(obj: dict[str, Any], namespace: str, plural: str) -> str:
    api_version = obj["apiVersion"]
    root = f"/apis/{api_version}" if "/" in api_version else f"/api/{api_version}"
    return f"{root}/namespaces/{namespace}/{plural}"


PLURALS = {
    "ServiceAccount": "serviceaccounts",
    "Role": "roles",
    "RoleBinding": "rolebindings",
    "NetworkPolicy": "networkpolicies",
    "ConfigMap": "configmaps",
    "Secret": "secrets",
    "PersistentVolumeClaim": "persistentvolumeclaims",
    "Service": "services",
    "Deployment": "deployments",
    "StatefulSet": "statefulsets",
    "CronJob": "cronjobs",
    "Ingress": "ingresses",
    "ReplicaSet": "replicasets",
    "Pod": "pods",
    "Venue": "venues",
}


def seed_namespace(api: KubeApi, namespace: str, group: str = "aipx.io") -> SeededNamespace:
    """Create the namespace (if missing) and its objects; returns what a test needs to know."""
    values = {
        "postgres": "pg-" + secrets.token_urlsafe(18),
        "aws": "aws-" + secrets.token_urlsafe(30),
        "aws_id": secrets.token_hex(8).upper(),
        "registry": "reg-" + secrets.token_urlsafe(18),
    }
    seeded = SeededNamespace(namespace, group, f"venues.{group}", list(values.values()))
    labels = {"team": "trading"}
    if api.exists(f"/api/v1/namespaces/{namespace}"):
        api.merge_patch(
            f"/api/v1/namespaces/{namespace}", {"metadata": {"labels": labels}}, MANAGER
        )
    else:
        namespace_object: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": namespace, "labels": labels},
        }
        _create(api, "/api/v1/namespaces", namespace_object)
    created: dict[tuple[str, str], dict[str, Any]] = {}
    for obj in manifests(namespace, values):
        created[(obj["kind"], obj["metadata"]["name"])] = _create(
            api, _path(obj, namespace, PLURALS[obj["kind"]]), obj
        )
    crd = crd_manifest(group)
    if not api.exists(CRDS.object_path(seeded.crd)):
        _create(api, CRDS.collection_path(), crd)
    problem = crd_not_ready(api, crd)
    if problem:
        raise RuntimeError(f"CRD {seeded.crd}: {problem}")
    for mic, qty in (("XNYS", 50_000), ("XNAS", 25_000)):
        venue = {
            "apiVersion": f"{group}/v1",
            "kind": "Venue",
            "metadata": _meta(mic.lower(), namespace),
            "spec": {
                "mic": mic,
                "maxOrderQty": qty,
                "tradingHours": "09:30-16:00 America/New_York",
            },
        }
        created[("Venue", mic.lower())] = _create(api, _path(venue, namespace, "venues"), venue)
    _owned(api, namespace, group, created)
    seeded.created = len(created) + 3  # + the owned ConfigMap, ReplicaSet and Pod
    return seeded


def _owner(obj: dict[str, Any], controller: bool = True) -> dict[str, Any]:
    return {
        "apiVersion": obj["apiVersion"],
        "kind": obj["kind"],
        "name": obj["metadata"]["name"],
        "uid": obj["metadata"]["uid"],
        "controller": controller,
        "blockOwnerDeletion": True,
    }


def _owned(
    api: KubeApi, namespace: str, group: str, created: dict[tuple[str, str], dict[str, Any]]
) -> None:
    """What controllers would have made: a ConfigMap an operator derived from a Venue (kept by a
    backup: no built-in controller recreates it), and a Deployment's ReplicaSet and its Pod
    (left out: the Deployment controller recreates them)."""
    venue = created[("Venue", "xnys")]
    limits = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _meta("venue-xnys-limits", namespace) | {"ownerReferences": [_owner(venue)]},
        "data": {"maxOrderQty": "50000"},
    }
    _create(api, _path(limits, namespace, "configmaps"), limits)
    deployment = created[("Deployment", "api-gateway")]
    template = deployment["spec"]["template"]
    labels = template["metadata"]["labels"] | {"pod-template-hash": "5d8f7c9b6"}
    replica_set = {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": _meta("api-gateway-5d8f7c9b6", namespace)
        | {"ownerReferences": [_owner(deployment)]},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": template["spec"]},
        },
    }
    replica_set = _create(api, _path(replica_set, namespace, "replicasets"), replica_set)
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": _meta("api-gateway-5d8f7c9b6-x2k4p", namespace)
        | {"labels": labels, "ownerReferences": [_owner(replica_set)]},
        "spec": template["spec"],
    }
    _create(api, _path(pod, namespace, "pods"), pod)


def wipe_namespace(api: KubeApi, namespace: str, crds: list[str]) -> int:
    """Delete every object in ``namespace`` and the CRDs named; returns how many were deleted.

    Finalizers are cleared after the delete (what their controllers would do), so nothing is
    left Terminating. Waits until every object is gone.
    """
    deleted = 0
    leftovers: list[str] = []
    for resource in discover(api):
        if not resource.namespaced or not {"list", "delete"} <= set(resource.verbs):
            continue
        path = resource.collection_path(namespace)
        for page in api.pages(path, 250):
            for item in page.get("items") or []:
                target = resource.object_path(item["metadata"]["name"], namespace)
                try:
                    api.delete(target)
                    deleted += 1
                except KubeApiError as error:
                    if error.status != 404:
                        raise
                leftovers.append(target)
    for name in crds:
        if api.exists(CRDS.object_path(name)):
            api.delete(CRDS.object_path(name))
            deleted += 1
            leftovers.append(CRDS.object_path(name))
    deadline = time.monotonic() + WIPE_TIMEOUT_S
    for target in leftovers:
        while api.exists(target):
            try:
                api.merge_patch(target, {"metadata": {"finalizers": None}}, MANAGER)
            except KubeApiError as error:
                if error.status != 404:
                    raise
            if time.monotonic() > deadline:
                raise TimeoutError(f"{target} still exists {WIPE_TIMEOUT_S:.0f}s after deletion")
            time.sleep(0.05)
    return deleted
