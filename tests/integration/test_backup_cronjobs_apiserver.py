"""The backup CronJobs' manifests against a real kube-apiserver (the local harness's, PodSecurity
admission on): what the unit tests check with the OpenAPI spec, checked by the server itself.

Each manifest is created with ``dryRun=All`` and ``fieldValidation=Strict`` (kubectl's defaults),
in the real namespace with its ``restricted`` Pod Security labels; each CronJob's pod template is
also submitted as a Pod, where PodSecurity admission enforces (for workload objects it only warns).
The broken manifests the unit tests' schema rejects are rejected by the server too, which is what
makes the schema's few additions (enum values, a container's image) faithful.
"""

from __future__ import annotations

import copy
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("drkit.local.kubernetes", reason="the local Kubernetes harness is not here")

from kubernetes.client import ApiClient  # type: ignore[import-untyped]
from kubernetes.client.rest import ApiException  # type: ignore[import-untyped]
from kubernetes.dynamic import DynamicClient  # type: ignore[import-untyped]

from drkit.local.kubernetes import LocalKubernetes
from tests.integration.kubernetes_fixture import kubernetes_api  # noqa: F401

# The manifests come from the unit tests' Pulumi-mocks harness (tests/unit/infra is no package).
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit" / "infra"))
from backup_jobs_harness import manifests, run_backup_jobs

pytestmark = pytest.mark.integration

STRICT_DRY_RUN = [("dryRun", "All"), ("fieldValidation", "Strict")]


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


def create(cluster: DynamicClient, body: dict[str, Any], namespace: str | None) -> Any:
    api = cluster.resources.get(api_version=body["apiVersion"], kind=body["kind"])
    return api.create(body=body, namespace=namespace, query_params=STRICT_DRY_RUN)


def pod_of(cronjob: dict[str, Any]) -> dict[str, Any]:
    template = cronjob["spec"]["jobTemplate"]["spec"]["template"]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": cronjob["metadata"]["name"], **template["metadata"]},
        "spec": template["spec"],
    }


def test_the_server_accepts_every_manifest(
    cluster: DynamicClient, namespace: str, declared: list[dict[str, Any]]
) -> None:
    namespaced = [m for m in declared if m["kind"] != "Namespace"]
    assert {m["kind"] for m in namespaced} == {
        "NetworkPolicy",
        "ConfigMap",
        "ServiceAccount",
        "CronJob",
    }
    for body in namespaced:
        assert body["metadata"]["namespace"] == namespace
        created = create(cluster, body, namespace)
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


def pod_spec(cronjob: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return spec
