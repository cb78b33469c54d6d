"""``clean``, ``skip_reason``, ``renamed`` and the restore order: pure functions over the JSON a
real API server returns (the objects below are shaped as kube-apiserver v1.36 serves them)."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from drkit.kubestate.api import ApiResource
from drkit.kubestate.archive import Header, Record, lines, parse_record, read_archive
from drkit.kubestate.clean import (
    LAST_APPLIED,
    clean,
    renamed,
    resource_exclusion,
    skip_reason,
)
from drkit.kubestate.compare import compare_states, differences
from drkit.kubestate.order import PRIORITIES, priority_of, rank

pytestmark = pytest.mark.unit

SERVER_METADATA = {
    "uid": "6ed5ac69-73e6-4cb1-98b8-744119eb86f3",
    "resourceVersion": "194",
    "creationTimestamp": "2026-11-21T04:57:50Z",
    "generation": 3,
    "selfLink": "/api/v1/namespaces/aipx/x",
    "managedFields": [
        {
            "manager": "kubectl-client-side-apply",
            "operation": "Update",
            "apiVersion": "v1",
            "time": "2026-11-21T04:57:50Z",
            "fieldsType": "FieldsV1",
            "fieldsV1": {"f:metadata": {}},
        }
    ],
}


def served(api_version: str, kind: str, name: str, **fields: Any) -> dict[str, Any]:
    metadata = {"name": name, "namespace": "aipx", **copy.deepcopy(SERVER_METADATA)}
    metadata |= fields.pop("metadata", {})
    return {"apiVersion": api_version, "kind": kind, "metadata": metadata, **fields}


def test_server_set_metadata_and_status_go_declared_fields_stay() -> None:
    applied = json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "data": {"a": "1"}})
    obj = served(
        "v1",
        "ConfigMap",
        "app-config",
        metadata={
            "labels": {"app": "api"},
            "annotations": {LAST_APPLIED: applied, "team": "trading"},
            "finalizers": ["example.com/keep"],
            "deletionTimestamp": "2026-11-21T05:00:00Z",
            "deletionGracePeriodSeconds": 0,
        },
        data={"a": "1"},
        status={"phase": "whatever"},
    )
    original = copy.deepcopy(obj)

    cleaned = clean(obj)

    assert cleaned == {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "app-config",
            "namespace": "aipx",
            "labels": {"app": "api"},
            "annotations": {LAST_APPLIED: applied, "team": "trading"},
            "finalizers": ["example.com/keep"],
        },
        "data": {"a": "1"},
    }
    assert obj == original  # pure: the input is untouched
    assert clean(cleaned) == cleaned  # idempotent


def test_owner_references_lose_their_uid_only() -> None:
    owner = {
        "apiVersion": "aipx.io/v1",
        "kind": "Venue",
        "name": "xnys",
        "uid": "0b1c",
        "controller": True,
        "blockOwnerDeletion": True,
    }
    cleaned = clean(served("v1", "ConfigMap", "limits", metadata={"ownerReferences": [owner]}))
    assert cleaned["metadata"]["ownerReferences"] == [
        {k: v for k, v in owner.items() if k != "uid"}
    ]


def test_service_drops_allocated_ips_and_node_ports_but_keeps_declared_ones() -> None:
    declared = {"spec": {"type": "NodePort", "ports": [{"port": 443, "nodePort": 30443}]}}
    service = served(
        "v1",
        "Service",
        "api",
        metadata={"annotations": {LAST_APPLIED: json.dumps(declared)}},
        spec={
            "type": "NodePort",
            "clusterIP": "10.0.0.17",
            "clusterIPs": ["10.0.0.17"],
            "ipFamilies": ["IPv4"],
            "ports": [
                {"name": "http", "port": 80, "targetPort": 8080, "nodePort": 31234},
                {"name": "https", "port": 443, "targetPort": 8443, "nodePort": 30443},
            ],
            "selector": {"app": "api"},
        },
        status={"loadBalancer": {}},
    )
    spec = clean(service)["spec"]
    assert "clusterIP" not in spec and "clusterIPs" not in spec
    assert spec["ports"][0] == {"name": "http", "port": 80, "targetPort": 8080}
    assert spec["ports"][1]["nodePort"] == 30443  # asked for by hand: kept
    assert spec["ipFamilies"] == ["IPv4"]


def test_headless_service_stays_headless() -> None:
    spec = {"clusterIP": "None", "clusterIPs": ["None"], "ports": [{"port": 6379}]}
    assert clean(served("v1", "Service", "redis", spec=spec))["spec"] == spec


def test_claim_forgets_its_bound_volume() -> None:
    claim = served(
        "v1",
        "PersistentVolumeClaim",
        "data",
        metadata={
            "annotations": {
                "pv.kubernetes.io/bind-completed": "yes",
                "pv.kubernetes.io/bound-by-controller": "yes",
                "volume.kubernetes.io/storage-provisioner": "ebs.csi.aws.com",
                "volume.kubernetes.io/selected-node": "ip-10-0-1-7",
            },
            "finalizers": ["kubernetes.io/pvc-protection"],
        },
        spec={
            "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": "20Gi"}},
            "storageClassName": "gp3",
            "volumeMode": "Filesystem",
            "volumeName": "pvc-3f1c",
        },
        status={"phase": "Bound"},
    )
    cleaned = clean(claim)
    assert "volumeName" not in cleaned["spec"]
    assert "annotations" not in cleaned["metadata"]  # only bind annotations: none left
    assert cleaned["spec"]["storageClassName"] == "gp3"


def test_namespace_loses_its_automatic_label_and_finalizer() -> None:
    namespace = served(
        "v1",
        "Namespace",
        "aipx",
        metadata={"labels": {"kubernetes.io/metadata.name": "aipx", "team": "trading"}},
        spec={"finalizers": ["kubernetes"]},
        status={"phase": "Active"},
    )
    namespace["metadata"].pop("namespace")
    assert clean(namespace) == {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": "aipx", "labels": {"team": "trading"}},
    }


def test_service_account_drops_legacy_token_secret_references() -> None:
    account = served(
        "v1",
        "ServiceAccount",
        "app",
        secrets=[{"name": "app-token-x7k2p"}, {"name": "app-extra"}],
        imagePullSecrets=[{"name": "registry-pull"}],
    )
    cleaned = clean(account)
    assert cleaned["secrets"] == [{"name": "app-extra"}]
    assert cleaned["imagePullSecrets"] == [{"name": "registry-pull"}]
    only_token = served("v1", "ServiceAccount", "app", secrets=[{"name": "app-token-x7k2p"}])
    assert "secrets" not in clean(only_token)


def test_job_generated_selector_and_labels_go_unless_manual() -> None:
    uid_labels = {
        "batch.kubernetes.io/controller-uid": "9f1",
        "controller-uid": "9f1",
        "batch.kubernetes.io/job-name": "migrate",
        "job-name": "migrate",
    }
    job = served(
        "batch/v1",
        "Job",
        "migrate",
        metadata={"labels": dict(uid_labels)},
        spec={
            "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": "9f1"}},
            "template": {
                "metadata": {"labels": uid_labels | {"app": "migrate"}},
                "spec": {"containers": [{"name": "m", "image": "m:1"}]},
            },
        },
    )
    cleaned = clean(job)
    assert "selector" not in cleaned["spec"]
    assert cleaned["spec"]["template"]["metadata"]["labels"] == {"app": "migrate"}
    assert "labels" not in cleaned["metadata"]
    manual = copy.deepcopy(job)
    manual["spec"]["manualSelector"] = True
    assert clean(manual)["spec"]["selector"] == job["spec"]["selector"]


def test_deployment_revision_and_pod_node_go() -> None:
    deployment = served(
        "apps/v1",
        "Deployment",
        "api",
        metadata={"annotations": {"deployment.kubernetes.io/revision": "4"}},
        spec={"replicas": 3},
    )
    assert "annotations" not in clean(deployment)["metadata"]
    pod = served("v1", "Pod", "debug", spec={"nodeName": "ip-10-0-1-7", "containers": []})
    assert clean(pod)["spec"] == {"containers": []}


@pytest.mark.parametrize(
    ("owner_api", "owner_kind", "controller", "kept"),
    [
        ("apps/v1", "ReplicaSet", True, False),
        ("apps/v1", "Deployment", True, False),
        ("apps/v1", "StatefulSet", True, False),
        ("batch/v1", "CronJob", True, False),
        ("aipx.io/v1", "Venue", True, True),  # no built-in controller recreates it
        ("apps/v1", "ReplicaSet", False, True),  # a reference, not its controller
    ],
)
def test_objects_a_builtin_controller_recreates_are_left_out(
    owner_api: str, owner_kind: str, controller: bool, kept: bool
) -> None:
    owner = {"apiVersion": owner_api, "kind": owner_kind, "name": "o", "controller": controller}
    pod = served("v1", "Pod", "p", metadata={"ownerReferences": [owner]})
    reason = skip_reason(pod)
    assert (reason is None) is kept
    if not kept:
        assert reason == f"recreated by its controller {owner_kind}/o"


def test_token_secrets_and_the_root_ca_are_left_out() -> None:
    token = served("v1", "Secret", "t", type="kubernetes.io/service-account-token")
    assert skip_reason(token) is not None
    assert skip_reason(served("v1", "Secret", "s", type="Opaque")) is None
    assert skip_reason(served("v1", "ConfigMap", "kube-root-ca.crt")) is not None


def test_excluded_kinds_and_kinds_that_cannot_be_restored() -> None:
    every = ("create", "delete", "get", "list", "patch", "update", "watch")
    assert resource_exclusion("events", every) is not None
    assert resource_exclusion("endpointslices.discovery.k8s.io", every) is not None
    assert resource_exclusion("leases.coordination.k8s.io", every) is not None
    assert resource_exclusion("configmaps", every) is None
    assert resource_exclusion("pods.metrics.k8s.io", ("get", "list")) == (
        "the server does not allow create on it"
    )


def test_renamed_moves_namespace_and_service_account_subjects_only() -> None:
    binding = clean(
        served(
            "rbac.authorization.k8s.io/v1",
            "RoleBinding",
            "app",
            roleRef={"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "app"},
            subjects=[
                {"kind": "ServiceAccount", "name": "app", "namespace": "aipx"},
                {"kind": "ServiceAccount", "name": "ci", "namespace": "tooling"},
                {"kind": "User", "name": "alice", "apiGroup": "rbac.authorization.k8s.io"},
            ],
        )
    )
    moved = renamed(binding, "aipx", "aipx-restored")
    assert moved["metadata"]["namespace"] == "aipx-restored"
    assert [s.get("namespace") for s in moved["subjects"]] == ["aipx-restored", "tooling", None]
    assert binding["metadata"]["namespace"] == "aipx"  # pure
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "aipx"}}
    assert renamed(namespace, "aipx", "aipx-restored")["metadata"]["name"] == "aipx-restored"
    assert renamed(binding, "aipx", "aipx") == binding


def test_priority_order_puts_definitions_first_and_custom_resources_last() -> None:
    keys = [
        ("venues.aipx.io", True),
        ("deployments.apps", False),
        ("ingresses.networking.k8s.io", False),
        ("secrets", False),
        ("customresourcedefinitions.apiextensions.k8s.io", False),
        ("persistentvolumeclaims", False),
        ("rolebindings.rbac.authorization.k8s.io", False),
        ("serviceaccounts", False),
        ("namespaces", False),
        ("services", False),
        ("configmaps", False),
        ("leases.example.io", False),  # a built-in no entry names: with the other built-ins
    ]
    ordered = [key for key, custom in sorted(keys, key=lambda kc: rank(*kc))]
    assert ordered == [
        "namespaces",
        "customresourcedefinitions.apiextensions.k8s.io",
        "serviceaccounts",
        "rolebindings.rbac.authorization.k8s.io",
        "configmaps",
        "secrets",
        "persistentvolumeclaims",
        "services",
        "deployments.apps",
        "ingresses.networking.k8s.io",
        "leases.example.io",
        "venues.aipx.io",
    ]
    assert priority_of("venues.aipx.io", True).name == "custom-resources"
    assert all(p.reason for p in PRIORITIES)  # a reason per entry
    assert len({p.name for p in PRIORITIES}) == len(PRIORITIES)


def test_archive_lines_round_trip_across_any_chunking() -> None:
    resource = ApiResource("apps", "v1", "deployments", "Deployment", True)
    record = Record(resource, False, {"apiVersion": "apps/v1", "kind": "Deployment"})
    sealed = Record(
        ApiResource("", "v1", "secrets", "Secret", True),
        False,
        {"kind": "Secret"},
        {"nonce": "bm9uY2U=", "ciphertext": "Y2lwaGVy"},
    )
    stream = Header("aipx", "219", "2026-11-21T05:06:51+00:00").line() + record.line()
    stream += sealed.line()
    for size in (1, 7, 64, len(stream)):
        chunks = [stream[i : i + size] for i in range(0, len(stream), size)]
        assert list(lines(chunks)) == stream.rstrip(b"\n").split(b"\n")
        header, records = read_archive(chunks)
        assert header.namespace == "aipx" and header.resource_version == "219"
        assert list(records) == [record, sealed]
    assert parse_record(record.line(), 2).priority_name == "workloads"


def test_differences_name_the_paths() -> None:
    a = {"spec": {"ports": [{"port": 80}], "replicas": 3}, "data": {"x": "1"}}
    b = {"spec": {"ports": [{"port": 81}], "replicas": 3}, "data": {"x": "1", "y": "2"}}
    assert differences(a, b) == ["data.y", "spec.ports[0].port"]
    expected = {"configmaps/a": {"metadata": {"name": "a", "namespace": "aipx"}}}
    actual = {"configmaps/a": {"metadata": {"name": "a", "namespace": "other"}}}
    assert compare_states(expected, actual, "aipx", "other").ok
    assert not compare_states(expected, actual, "aipx", "aipx").ok
