"""The backup CronJobs' manifests against a real kube-apiserver (the local harness's, PodSecurity
admission and the RBAC authorizer on): what the unit tests check with the OpenAPI spec, checked by
the server itself.

Each manifest is created with ``dryRun=All`` and ``fieldValidation=Strict`` (kubectl's defaults),
in the real namespace with its ``restricted`` Pod Security labels; each CronJob's pod template is
also submitted as a Pod, where PodSecurity admission enforces (for workload objects it only warns).
The broken manifests the unit tests' schema rejects are rejected by the server too, which is what
makes the schema's few additions (enum values, a container's image) faithful.

The RBAC of the Kubernetes-state backup is also created for real (in namespaces of the test's
own), and the backup itself runs with a token the server issues to the ``app-state``
ServiceAccount (TokenRequest): it must back up exactly what an admin's backup holds, and that
account, or another store's, must be refused everything else.
"""

from __future__ import annotations

import copy
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kubernetes.client  # type: ignore[import-untyped]
import pytest

pytest.importorskip("drkit.local.kubernetes", reason="the local Kubernetes harness is not here")

from kubernetes.client import ApiClient  # type: ignore[import-untyped]
from kubernetes.client.rest import ApiException  # type: ignore[import-untyped]
from kubernetes.dynamic import DynamicClient  # type: ignore[import-untyped]

from drkit.backup.engine import Destinations, run_backup
from drkit.backup.kubernetes import KubernetesHandler
from drkit.backup.manifest import Manifest
from drkit.kubestate.api import CRDS, KubeApi, KubeApiError
from drkit.local.kubernetes import LocalKubernetes
from drkit.local.s3 import LocalAws
from drkit.seed.kubernetes import SeededNamespace, seed_namespace
from stackmodels import StackConfig
from tests.integration.kubernetes_fixture import kubernetes_api  # noqa: F401

# The manifests come from the unit tests' Pulumi-mocks harness (tests/unit/infra is no package).
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit" / "infra"))
from backup_jobs_harness import manifests, run_backup_jobs
from program_harness import ROOT

pytestmark = pytest.mark.integration

STRICT_DRY_RUN = [("dryRun", "All"), ("fieldValidation", "Strict")]
RBAC_KINDS = {"Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"}
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding"}
STATE_STORE = "app-state"


@pytest.fixture(scope="module")
def declared() -> list[dict[str, Any]]:
    return manifests(run_backup_jobs("prod"))


@pytest.fixture(scope="module")
def cluster(kubernetes_api: LocalKubernetes) -> Iterator[DynamicClient]:  # noqa: F811
    client: ApiClient = kubernetes_api.api_client()
    try:
        yield DynamicClient(client)
    finally:
        client.close()


@pytest.fixture(scope="module")
def namespace(cluster: DynamicClient, declared: list[dict[str, Any]]) -> str:
    """The backup namespace, created for real so its Pod Security labels are in force."""
    [body] = [m for m in declared if m["kind"] == "Namespace"]
    api = cluster.resources.get(api_version="v1", kind="Namespace")
    api.create(body=body, query_params=[("fieldValidation", "Strict")])
    return str(body["metadata"]["name"])


@pytest.fixture(scope="module")
def app_namespace(cluster: DynamicClient, declared: list[dict[str, Any]]) -> str:
    """The application namespace the Role lives in (made outside the program, like in prod)."""
    [role] = [m for m in declared if m["kind"] == "Role"]
    name = str(role["metadata"]["namespace"])
    api = cluster.resources.get(api_version="v1", kind="Namespace")
    try:
        api.create(body={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    except ApiException as error:
        if error.status != 409:  # another test's seed made it already: that is fine
            raise
    return name


def create(
    cluster: DynamicClient,
    body: dict[str, Any],
    namespace: str | None,
    query: list[tuple[str, str]] = STRICT_DRY_RUN,
) -> Any:
    api = cluster.resources.get(api_version=body["apiVersion"], kind=body["kind"])
    if body["kind"] in CLUSTER_SCOPED:
        return api.create(body=body, query_params=query)
    return api.create(body=body, namespace=namespace, query_params=query)


def pod_of(cronjob: dict[str, Any]) -> dict[str, Any]:
    template = cronjob["spec"]["jobTemplate"]["spec"]["template"]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": cronjob["metadata"]["name"], **template["metadata"]},
        "spec": template["spec"],
    }


def test_the_server_accepts_every_manifest(
    cluster: DynamicClient, namespace: str, app_namespace: str, declared: list[dict[str, Any]]
) -> None:
    rest = [m for m in declared if m["kind"] != "Namespace"]
    assert {m["kind"] for m in rest} == {
        "NetworkPolicy",
        "ConfigMap",
        "ServiceAccount",
        "CronJob",
        *RBAC_KINDS,
    }
    for body in rest:
        if body["kind"] in CLUSTER_SCOPED:
            expected = None
        elif body["kind"] in RBAC_KINDS:
            expected = app_namespace
        else:
            expected = namespace
        assert body["metadata"].get("namespace") == expected, body["kind"]
        created = create(cluster, body, expected)
        assert created.metadata.name == body["metadata"]["name"]


def test_pod_security_admits_the_backup_pods_as_restricted(
    cluster: DynamicClient, namespace: str, declared: list[dict[str, Any]]
) -> None:
    for cronjob in (m for m in declared if m["kind"] == "CronJob"):
        created = create(cluster, pod_of(cronjob), namespace)
        assert created.spec.securityContext.runAsUser == 10001


def test_pod_security_rejects_a_pod_that_may_escalate(
    cluster: DynamicClient, namespace: str, declared: list[dict[str, Any]]
) -> None:
    cronjob = next(m for m in declared if m["kind"] == "CronJob")
    pod = pod_of(copy.deepcopy(cronjob))
    pod["spec"]["containers"][0]["securityContext"]["allowPrivilegeEscalation"] = True
    with pytest.raises(ApiException) as rejected:
        create(cluster, pod, namespace)
    assert rejected.value.status == 403
    assert "restricted" in rejected.value.body and "allowPrivilegeEscalation" in rejected.value.body


@pytest.mark.parametrize(
    ("field", "edit"),
    [
        ("concurrencyPolicy", lambda c: c["spec"].update(concurrencyPolicy="Sometimes")),
        ("image", lambda c: pod_spec(c)["containers"][0].pop("image")),
        ("securityContxt", lambda c: pod_spec(c)["containers"][0].update(securityContxt={})),
        ("startingDeadlineSeconds", lambda c: c["spec"].update(startingDeadlineSeconds="300")),
        ("schedule", lambda c: c["spec"].pop("schedule")),
        (
            "memory",
            lambda c: pod_spec(c)["containers"][0]["resources"]["limits"].update(memory="512MB"),
        ),
    ],
)
def test_the_server_rejects_what_the_schema_rejects(
    cluster: DynamicClient,
    namespace: str,
    declared: list[dict[str, Any]],
    field: str,
    edit: Any,
) -> None:
    cronjob = copy.deepcopy(next(m for m in declared if m["kind"] == "CronJob"))
    edit(cronjob)
    with pytest.raises(ApiException) as rejected:
        create(cluster, cronjob, namespace)
    assert rejected.value.status in (400, 422), rejected.value.body
    # the server names the field, except for a quantity, which fails as it is decoded
    expected = "quantities must match" if field == "memory" else field
    assert expected in rejected.value.body


@pytest.mark.parametrize(
    ("kind", "field", "edit"),
    [
        ("Role", "verbs", lambda r: r["rules"][0].pop("verbs")),
        ("Role", "resourceName", lambda r: r["rules"][0].update(resourceName=["x"])),
        ("RoleBinding", "roleRef", lambda r: r.pop("roleRef")),
        ("ClusterRoleBinding", "apiGroups", lambda r: r["roleRef"].update(apiGroups=["x"])),
    ],
)
def test_the_server_rejects_the_rbac_the_schema_rejects(
    cluster: DynamicClient,
    app_namespace: str,
    declared: list[dict[str, Any]],
    kind: str,
    field: str,
    edit: Any,
) -> None:
    body = copy.deepcopy(next(m for m in declared if m["kind"] == kind))
    edit(body)
    with pytest.raises(ApiException) as rejected:
        create(cluster, body, app_namespace)
    assert rejected.value.status in (400, 422), rejected.value.body
    assert field in rejected.value.body


# ---- the Kubernetes-state backup, as its own ServiceAccount ----------------------------------


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@dataclass
class StateReader:
    """The program's objects for namespaces of this test's own, created for real."""

    config: StackConfig
    app: SeededNamespace
    backup_namespace: str
    cluster_objects: list[dict[str, Any]]


@pytest.fixture(scope="module")
def state_reader(
    kubernetes_api: LocalKubernetes,  # noqa: F811
    cluster: DynamicClient,
) -> Iterator[StateReader]:
    base = StackConfig.for_stack("prod", ROOT)
    kube = base.kubernetes.model_copy(
        update={"namespace": unique("aipx"), "backup_namespace": unique("dr-backups")}
    )
    config = base.model_copy(update={"kubernetes": kube})
    declared = manifests(run_backup_jobs("prod", config))
    with kubernetes_api.api_client() as client:
        app = seed_namespace(
            KubeApi(client), kube.namespace, group=f"{uuid.uuid4().hex[:8]}.aipx.io"
        )
    wanted = {"Namespace", "ServiceAccount", *RBAC_KINDS}
    for body in sorted(
        (m for m in declared if m["kind"] in wanted), key=lambda m: m["kind"] != "Namespace"
    ):
        create(cluster, body, body["metadata"].get("namespace"), [("fieldValidation", "Strict")])
    cluster_objects = [m for m in declared if m["kind"] in {"ClusterRole", "ClusterRoleBinding"}]
    yield StateReader(config, app, kube.backup_namespace, cluster_objects)
    with kubernetes_api.api_client() as client:  # cluster-wide names: leave none behind
        admin = KubeApi(client)
        for body in cluster_objects:
            admin.delete(
                f"/apis/rbac.authorization.k8s.io/v1/{body['kind'].lower()}s/"
                f"{body['metadata']['name']}"
            )
        admin.delete(CRDS.object_path(app.crd))


def token_for(cluster: LocalKubernetes, namespace: str, account: str) -> str:
    """A token the server itself issues to the ServiceAccount (what the pod would mount)."""
    with cluster.api_client() as client:
        issued = KubeApi(client).create(
            f"/api/v1/namespaces/{namespace}/serviceaccounts/{account}/token",
            {
                "apiVersion": "authentication.k8s.io/v1",
                "kind": "TokenRequest",
                "spec": {"expirationSeconds": 600},
            },
        )
    return str(issued["status"]["token"])


def client_factory(cluster: LocalKubernetes, token: str) -> Any:
    def make() -> Any:
        configuration = kubernetes.client.Configuration()
        configuration.host = cluster.server
        configuration.ssl_ca_cert = str(cluster.ca_path)
        configuration.verify_ssl = True
        configuration.api_key = {"authorization": f"Bearer {token}"}
        return kubernetes.client.ApiClient(configuration)

    return make


def status_of(api: KubeApi, method: str, path: str, query: list[tuple[str, str | int]]) -> int:
    try:
        api.request(method, path, query)
    except KubeApiError as error:
        return error.status
    return 200


def backup_with(
    factory: Any, namespace: str, aws_emulator: LocalAws, destinations: Destinations
) -> Manifest:
    key = destinations.encryption.kms_key_id
    assert key is not None
    handler = KubernetesHandler(factory, namespace, key, aws_emulator.client("kms"))
    return run_backup(STATE_STORE, "app-config", handler, destinations)


def test_the_state_backup_runs_as_its_service_account_and_misses_nothing(
    kubernetes_api: LocalKubernetes,  # noqa: F811
    state_reader: StateReader,
    aws_emulator: LocalAws,
    destinations: Destinations,
) -> None:
    namespace = state_reader.app.namespace
    token = token_for(kubernetes_api, state_reader.backup_namespace, f"backup-{STATE_STORE}")
    as_account = backup_with(
        client_factory(kubernetes_api, token), namespace, aws_emulator, destinations
    )
    as_admin = backup_with(kubernetes_api.api_client, namespace, aws_emulator, destinations)
    # every kind, every object, the CRD and the namespace: what the admin's backup holds
    assert as_account.counts == as_admin.counts
    for field in ("kinds", "custom_resource_definitions", "excluded_kinds", "skipped_objects"):
        assert as_account.source[field] == as_admin.source[field], field
    assert as_account.source["custom_resource_definitions"] == [state_reader.app.crd]
    assert as_account.counts["namespaces"] == 1
    assert as_account.counts["secrets"] == 3
    assert as_account.counts[f"venues.{state_reader.app.group}"] == 2
    assert as_account.counts["roles.rbac.authorization.k8s.io"] >= 1  # the seed's and its own
    assert as_account.consistent_point["secrets"]["count"] == 3


def test_the_state_service_account_may_do_nothing_else(
    kubernetes_api: LocalKubernetes,  # noqa: F811
    state_reader: StateReader,
) -> None:
    app, backups = state_reader.app.namespace, state_reader.backup_namespace
    token = token_for(kubernetes_api, backups, f"backup-{STATE_STORE}")
    with client_factory(kubernetes_api, token)() as client:
        api = KubeApi(client)
        assert status_of(api, "GET", f"/api/v1/namespaces/{app}/secrets", []) == 200
        refused = [
            # list only: no get, so no logs and no proxy to the application's pods
            ("GET", f"/api/v1/namespaces/{app}/configmaps/app-config", []),
            ("GET", f"/api/v1/namespaces/{app}/services/web/proxy/", []),
            ("GET", f"/api/v1/namespaces/{app}/pods/web/log", []),
            # no write, not even a dry run, and no watch
            ("DELETE", f"/api/v1/namespaces/{app}/configmaps/app-config", [("dryRun", "All")]),
            ("GET", f"/api/v1/namespaces/{app}/configmaps", [("watch", "true")]),
            # no other namespace: not the backup namespace with the stores' credentials
            ("GET", f"/api/v1/namespaces/{backups}/secrets", []),
            ("GET", "/api/v1/namespaces/default/configmaps", []),
            # its own namespace object only, and the namespace list only narrowed to it
            ("GET", "/api/v1/namespaces/default", []),
            ("GET", "/api/v1/namespaces", []),
            ("GET", "/api/v1/namespaces", [("fieldSelector", "metadata.name=default")]),
        ]
        for method, path, query in refused:
            assert status_of(api, method, path, query) == 403, (method, path, query)
        allowed = [
            ("GET", f"/api/v1/namespaces/{app}", []),
            ("GET", "/api/v1/namespaces", [("fieldSelector", f"metadata.name={app}")]),
            ("GET", CRDS.collection_path(), []),
            ("GET", CRDS.object_path(state_reader.app.crd), []),
        ]
        for method, path, query in allowed:
            assert status_of(api, method, path, query) == 200, (method, path, query)
    other = token_for(kubernetes_api, backups, "backup-trading-db")
    with client_factory(kubernetes_api, other)() as client:  # another store: no RBAC at all
        api = KubeApi(client)
        for path in (f"/api/v1/namespaces/{app}/secrets", CRDS.collection_path()):
            assert status_of(api, "GET", path, []) == 403, path


def pod_spec(cronjob: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return spec
