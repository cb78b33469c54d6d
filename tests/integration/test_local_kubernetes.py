"""The harness's Kubernetes is a real API server: what a backup of cluster state carries goes in,
comes back with the fields only a server sets (uid, resourceVersion, creationTimestamp,
managedFields), is defaulted and validated as in a real cluster, and outlives a server restart."""

from __future__ import annotations

import base64
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes.client  # type: ignore[import-untyped]
import kubernetes.config  # type: ignore[import-untyped]
import pytest
from kubernetes.client import (
    ApiClient,
    ApiextensionsV1Api,
    AppsV1Api,
    CoreV1Api,
    CustomObjectsApi,
    V1ObjectMeta,
)
from kubernetes.client.rest import ApiException  # type: ignore[import-untyped]

from drkit.local.kubernetes import LocalKubernetes
from tests.integration.kubernetes_fixture import (  # noqa: F401
    kubernetes_api,
    require_kube_apiserver,
)

pytestmark = pytest.mark.integration

FIELD_MANAGER = "drkit-test"
VERSION = "v1"
CRD_READY_ATTEMPTS = 100  # x 0.1 s: the CRD's REST endpoint is served a moment after Established


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def api(kubernetes_api: LocalKubernetes) -> Iterator[ApiClient]:  # noqa: F811
    with kubernetes_api.api_client() as client:
        yield client


@pytest.fixture
def namespace(api: ApiClient) -> str:
    """A fresh namespace per test. It is not deleted: without a controller-manager a deleted
    namespace stays Terminating, and the server is thrown away at the end of the session."""
    name = unique("orders")
    created = CoreV1Api(api).create_namespace(
        kubernetes.client.V1Namespace(metadata=V1ObjectMeta(name=name)),
        field_manager=FIELD_MANAGER,
    )
    assert created.status.phase == "Active"
    return name


def assert_server_set(metadata: V1ObjectMeta | dict[str, Any]) -> None:
    """The fields a client never sends and a restore must not blindly replay."""
    meta = metadata if isinstance(metadata, dict) else api_dict(metadata)
    uuid.UUID(meta["uid"])
    assert meta["resourceVersion"]
    assert meta["creationTimestamp"]
    managers = [(entry["manager"], entry["operation"]) for entry in meta["managedFields"]]
    assert (FIELD_MANAGER, "Update") in managers


def api_dict(model: Any) -> dict[str, Any]:
    """A client model as the server's JSON (camelCase keys), whatever the model class."""
    serialized: dict[str, Any] = ApiClient().sanitize_for_serialization(model)
    return serialized


def crd_body(group: str) -> dict[str, Any]:
    """A namespaced ``Venue`` kind with a structural schema the server validates against."""
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
                    "name": VERSION,
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
                                    },
                                }
                            },
                        }
                    },
                }
            ],
        },
    }


def create_crd(api: ApiClient, group: str) -> dict[str, Any]:
    """Create the CRD and wait until the server both calls it Established and serves it."""
    extensions = ApiextensionsV1Api(api)
    extensions.create_custom_resource_definition(crd_body(group), field_manager=FIELD_MANAGER)
    name = f"venues.{group}"
    for _ in range(CRD_READY_ATTEMPTS):
        crd = extensions.read_custom_resource_definition(name)
        conditions = {c.type: c.status for c in (crd.status.conditions or [])}
        if conditions.get("Established") == "True":
            try:
                CustomObjectsApi(api).list_cluster_custom_object(group, VERSION, "venues")
                return api_dict(crd)
            except ApiException as error:
                if error.status != 404:
                    raise
        time.sleep(0.1)
    raise AssertionError(f"CRD {name} was never established and served")


def venue(group: str, name: str, mic: str, max_order_qty: int) -> dict[str, Any]:
    return {
        "apiVersion": f"{group}/{VERSION}",
        "kind": "Venue",
        "metadata": {"name": name},
        "spec": {"mic": mic, "maxOrderQty": max_order_qty},
    }


def test_objects_of_every_kind_round_trip_with_server_fields(
    api: ApiClient, namespace: str
) -> None:
    core, apps, custom = CoreV1Api(api), AppsV1Api(api), CustomObjectsApi(api)
    core.create_namespaced_config_map(
        namespace,
        kubernetes.client.V1ConfigMap(
            metadata=V1ObjectMeta(name="risk-limits", labels={"app": "risk"}),
            data={"max-notional": "5000000", "venues": "XNYS,XLON"},
        ),
        field_manager=FIELD_MANAGER,
    )
    core.create_namespaced_secret(
        namespace,
        kubernetes.client.V1Secret(
            metadata=V1ObjectMeta(name="fix-session"),
            type="Opaque",
            string_data={"password": "s3cret-Ω"},
        ),
        field_manager=FIELD_MANAGER,
    )
    apps.create_namespaced_deployment(
        namespace,
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "order-router"},
            "spec": {
                "selector": {"matchLabels": {"app": "order-router"}},
                "template": {
                    "metadata": {"labels": {"app": "order-router"}},
                    "spec": {"containers": [{"name": "router", "image": "router:1.4.2"}]},
                },
            },
        },
        field_manager=FIELD_MANAGER,
    )
    group = f"t{uuid.uuid4().hex[:8]}.drkit.test"
    crd = create_crd(api, group)
    custom.create_namespaced_custom_object(
        group, VERSION, namespace, "venues", venue(group, "xnys", "XNYS", 10_000),
        field_manager=FIELD_MANAGER,
    )  # fmt: skip

    namespaces = {item.metadata.name for item in core.list_namespace().items}
    assert namespace in namespaces
    [config_map] = core.list_namespaced_config_map(namespace, label_selector="app=risk").items
    assert config_map.data == {"max-notional": "5000000", "venues": "XNYS,XLON"}
    secrets = {item.metadata.name: item for item in core.list_namespaced_secret(namespace).items}
    # The server turns stringData into base64 data: what a backup reads is never plain text.
    assert secrets["fix-session"].string_data is None
    assert secrets["fix-session"].data == {
        "password": base64.b64encode("s3cret-Ω".encode()).decode()
    }
    [deployment] = apps.list_namespaced_deployment(namespace).items
    # Server-side defaulting, as in a real cluster; status stays empty (no controller-manager).
    assert deployment.spec.replicas == 1
    assert deployment.spec.strategy.type == "RollingUpdate"
    assert deployment.spec.template.spec.containers[0].image_pull_policy == "IfNotPresent"
    [listed_venue] = custom.list_namespaced_custom_object(group, VERSION, namespace, "venues")[
        "items"
    ]
    assert listed_venue["spec"] == {"mic": "XNYS", "maxOrderQty": 10_000}
    assert listed_venue["apiVersion"] == f"{group}/{VERSION}"

    for metadata in (
        config_map.metadata,
        secrets["fix-session"].metadata,
        deployment.metadata,
        crd["metadata"],
        listed_venue["metadata"],
    ):
        assert_server_set(metadata)
    assert len({config_map.metadata.uid, deployment.metadata.uid, crd["metadata"]["uid"]}) == 3


def test_custom_resources_are_validated_against_the_crd_schema(
    api: ApiClient, namespace: str
) -> None:
    group = f"t{uuid.uuid4().hex[:8]}.drkit.test"
    create_crd(api, group)
    custom = CustomObjectsApi(api)
    with pytest.raises(ApiException) as rejected:
        custom.create_namespaced_custom_object(
            group, VERSION, namespace, "venues", venue(group, "bad", "xnys", 0)
        )
    assert rejected.value.status == 422
    assert "spec.mic" in rejected.value.body
    assert "spec.maxOrderQty" in rejected.value.body
    assert custom.list_namespaced_custom_object(group, VERSION, namespace, "venues")["items"] == []


def test_a_resource_version_changes_on_update_and_guards_stale_writes(
    api: ApiClient, namespace: str
) -> None:
    core = CoreV1Api(api)
    body = kubernetes.client.V1ConfigMap(
        metadata=V1ObjectMeta(name="positions"), data={"ESZ6": "25"}
    )
    created = core.create_namespaced_config_map(namespace, body, field_manager=FIELD_MANAGER)
    created.data = {"ESZ6": "30"}
    updated = core.replace_namespaced_config_map("positions", namespace, created)
    assert updated.metadata.resource_version != created.metadata.resource_version
    assert updated.metadata.uid == created.metadata.uid
    created.data = {"ESZ6": "99"}  # still carries the old resourceVersion
    with pytest.raises(ApiException) as conflict:
        core.replace_namespaced_config_map("positions", namespace, created)
    assert conflict.value.status == 409
    assert core.read_namespaced_config_map("positions", namespace).data == {"ESZ6": "30"}


def test_the_kubeconfig_reaches_the_same_server_as_that_version(
    kubernetes_api: LocalKubernetes,  # noqa: F811
) -> None:
    client = kubernetes.config.new_client_from_config(
        config_file=str(kubernetes_api.kubeconfig_path)
    )
    with client:
        info = kubernetes.client.VersionApi(client).get_code()
        assert info.git_version == kubernetes_api.version
        whoami = kubernetes.client.AuthenticationV1Api(client).create_self_subject_review(
            {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
        )
    assert whoami.status.user_info.username == "drkit-admin"
    assert "system:masters" in whoami.status.user_info.groups


def test_a_wrong_token_is_refused(kubernetes_api: LocalKubernetes) -> None:  # noqa: F811
    configuration = kubernetes.client.Configuration()
    configuration.host = kubernetes_api.server
    configuration.ssl_ca_cert = str(kubernetes_api.ca_path)
    configuration.api_key = {"authorization": "Bearer not-the-token"}
    with ApiClient(configuration) as client, pytest.raises(ApiException) as refused:
        CoreV1Api(client).list_namespace()
    assert refused.value.status == 401


def test_objects_outlive_a_restart_and_stop_leaves_no_process(tmp_path: Path) -> None:
    """Its own servers, so the session's are never restarted under other tests."""
    require_kube_apiserver()
    cluster = LocalKubernetes(tmp_path)
    with cluster:
        with cluster.api_client() as client:
            core = CoreV1Api(client)
            created = core.create_namespace(
                kubernetes.client.V1Namespace(metadata=V1ObjectMeta(name="restart-drill"))
            )
        server_before = cluster.server
        pids_before = cluster.pids()
        cluster.restart()
        assert cluster.server == server_before
        assert set(cluster.pids()).isdisjoint(pids_before)
        with cluster.api_client() as client:
            read = CoreV1Api(client).read_namespace("restart-drill")
        assert read.metadata.uid == created.metadata.uid
        assert read.metadata.resource_version == created.metadata.resource_version
        pids = cluster.pids()
    assert cluster.pids() == []
    for pid in (*pids_before, *pids):
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
