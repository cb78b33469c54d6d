"""The Kubernetes API as JSON: discovery, paginated lists, create, server-side apply, delete.

Backup and restore deal in the server's own JSON, not the client's generated models: custom
resources have no model, and a model round trip renames and drops fields. The generated client is
used only for its transport (TLS, the CA it pins, bearer tokens that refresh).

How ops reaches the API server (``client_factory``): the local stack exports the kubeconfig the
harness writes as the store's ``data_path``; a backup CronJob in the cluster uses its pod's service
account (in-cluster config); an operator's machine uses ``$KUBECONFIG`` or ``~/.kube/config`` with
the stack config's ``kubernetes.context``.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import kubernetes.client  # type: ignore[import-untyped]
import kubernetes.config  # type: ignore[import-untyped]
from kubernetes.client.rest import ApiException  # type: ignore[import-untyped]

FIELD_MANAGER = "drkit-restore"
JSON = "application/json"
APPLY_PATCH = "application/apply-patch+yaml"  # JSON is YAML: the server takes a JSON body
MERGE_PATCH = "application/merge-patch+json"
REQUEST_TIMEOUT_S = (10.0, 60.0)
CRD_READY_TIMEOUT_S = 60.0
CRD_POLL_S = 0.1

ApiClientFactory = Callable[[], Any]
"""Returns a new ``kubernetes.client.ApiClient``; the caller closes it."""


class KubeApiError(RuntimeError):
    """The API server refused a request: its HTTP status, reason and message."""

    def __init__(self, method: str, path: str, status: int, reason: str, message: str) -> None:
        super().__init__(f"{method} {path}: {status} {reason}: {message}")
        self.method = method
        self.path = path
        self.status = status
        self.reason = reason
        self.message = message

    @property
    def summary(self) -> str:
        """``422 Invalid: ConfigMap "x" is invalid: ...``, for a per-object report."""
        return f"{self.status} {self.reason}: {self.message}"


@dataclass(frozen=True)
class ApiResource:
    """One kind of object the server serves, at the version discovery prefers."""

    group: str
    version: str
    resource: str
    kind: str
    namespaced: bool
    verbs: tuple[str, ...] = ()

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def key(self) -> str:
        """``configmaps``, ``deployments.apps``: how kubectl names a resource, unambiguous."""
        return f"{self.resource}.{self.group}" if self.group else self.resource

    def collection_path(self, namespace: str | None = None) -> str:
        root = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace is not None:
            return f"{root}/namespaces/{quote(namespace, safe='')}/{self.resource}"
        return f"{root}/{self.resource}"

    def object_path(self, name: str, namespace: str | None = None) -> str:
        return f"{self.collection_path(namespace)}/{quote(name, safe='')}"


NAMESPACES = ApiResource("", "v1", "namespaces", "Namespace", False, ("get", "list", "create"))
CRDS = ApiResource(
    "apiextensions.k8s.io",
    "v1",
    "customresourcedefinitions",
    "CustomResourceDefinition",
    False,
    ("get", "list", "create"),
)


class KubeApi:
    """A thin JSON client over one ``ApiClient``."""

    def __init__(self, client: Any) -> None:
        self.client = client

    @property
    def server(self) -> str:
        return str(self.client.configuration.host)

    def request(
        self,
        method: str,
        path: str,
        query: list[tuple[str, str | int]] | None = None,
        body: Any = None,
        content_type: str = JSON,
    ) -> Any:
        try:
            response = self.client.call_api(
                path,
                method,
                query_params=query or [],
                header_params={"Accept": JSON, "Content-Type": content_type},
                body=body,
                auth_settings=["BearerToken"],
                _preload_content=False,
                _return_http_data_only=True,
                _request_timeout=REQUEST_TIMEOUT_S,
            )
        except ApiException as error:
            raise _api_error(method, path, error) from None
        data = response.data
        return json.loads(data) if data else None

    def get(self, path: str, query: list[tuple[str, str | int]] | None = None) -> Any:
        return self.request("GET", path, query)

    def exists(self, path: str) -> bool:
        try:
            self.get(path)
        except KubeApiError as error:
            if error.status == 404:
                return False
            raise
        return True

    def create(self, path: str, body: dict[str, Any], field_manager: str = FIELD_MANAGER) -> Any:
        return self.request("POST", path, [("fieldManager", field_manager)], body)

    def apply(self, path: str, body: dict[str, Any]) -> Any:
        """Server-side apply, taking over fields other managers hold (``--force-conflicts``)."""
        query: list[tuple[str, str | int]] = [("fieldManager", FIELD_MANAGER), ("force", "true")]
        return self.request("PATCH", path, query, body, APPLY_PATCH)

    def merge_patch(
        self, path: str, body: dict[str, Any], field_manager: str = FIELD_MANAGER
    ) -> Any:
        """RFC 7386: maps merge, lists are replaced whole, ``None`` removes a field."""
        query: list[tuple[str, str | int]] = [("fieldManager", field_manager)]
        return self.request("PATCH", path, query, body, MERGE_PATCH)

    def delete(self, path: str) -> Any:
        return self.request("DELETE", path)

    def pages(
        self,
        path: str,
        limit: int,
        resource_version: str | None = None,
        field_selector: str | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Each page of a list, ``limit`` objects at a time (memory bounded by one page).

        With ``resource_version``, every page is read at exactly that version: the lists of
        several kinds then describe one instant of the cluster (etcd's revision is global).
        """
        query: list[tuple[str, str | int]] = [("limit", limit)]
        if resource_version is not None:
            query += [("resourceVersion", resource_version), ("resourceVersionMatch", "Exact")]
        if field_selector is not None:
            query.append(("fieldSelector", field_selector))
        while True:
            page: dict[str, Any] = self.get(path, query)
            yield page
            token = (page.get("metadata") or {}).get("continue")
            if not token:
                return
            # The continue token carries the version; naming it again is an error.
            query = [("limit", limit), ("continue", token)]
            if field_selector is not None:
                query.append(("fieldSelector", field_selector))

    def current_resource_version(self, namespace: str) -> str:
        """The cluster's current revision: a one-item list's ``metadata.resourceVersion``."""
        page = self.get(
            f"/api/v1/namespaces/{quote(namespace, safe='')}/configmaps", [("limit", 1)]
        )
        return str(page["metadata"]["resourceVersion"])

    def version(self) -> dict[str, Any]:
        found: dict[str, Any] = self.get("/version")
        return found


def crd_not_ready(api: KubeApi, crd: dict[str, Any], timeout: float = CRD_READY_TIMEOUT_S) -> str:
    """Wait until a CRD is Established and each served version of its kind lists; "" when it
    is, else why not. Established alone is not enough: the endpoint is served a moment later."""
    name = str(crd["metadata"]["name"])
    spec = crd.get("spec") or {}
    plural = str((spec.get("names") or {}).get("plural", ""))
    versions = [str(v["name"]) for v in spec.get("versions") or [] if v.get("served")]
    deadline = time.monotonic() + timeout
    while True:
        live = api.get(CRDS.object_path(name))
        status = live.get("status") or {}
        conditions = {c.get("type"): c.get("status") for c in status.get("conditions") or []}
        if conditions.get("Established") == "True" and all(
            api.exists(f"/apis/{spec.get('group')}/{version}/{plural}") for version in versions
        ):
            return ""
        if time.monotonic() > deadline:
            return f"not Established and served after {timeout:.0f}s (conditions {conditions})"
        time.sleep(CRD_POLL_S)


def _api_error(method: str, path: str, error: ApiException) -> KubeApiError:
    status = int(error.status or 0)
    reason = str(error.reason or "")
    message = str(error.body or error.reason or "")
    try:
        body = json.loads(error.body) if error.body else {}
        if isinstance(body, dict):
            reason = str(body.get("reason") or reason)
            message = str(body.get("message") or message)
    except ValueError:
        pass
    return KubeApiError(method, path, status, reason, message)


def discover(api: KubeApi) -> list[ApiResource]:
    """Every resource the server serves (``/api/v1`` and each group's preferred version under
    ``/apis``), without subresources (``pods/log``)."""
    found = _resources(api, "", "v1", api.get("/api/v1"))
    groups: dict[str, Any] = api.get("/apis")
    for group in groups.get("groups", []):
        preferred = group.get("preferredVersion") or (group.get("versions") or [{}])[0]
        group_version = str(preferred.get("groupVersion", ""))
        if "/" not in group_version:
            continue
        name, version = group_version.split("/", 1)
        try:
            listing = api.get(f"/apis/{group_version}")
        except KubeApiError as error:
            if error.status in (404, 503):  # an aggregated API whose backend is down
                continue
            raise
        found += _resources(api, name, version, listing)
    return found


def _resources(api: KubeApi, group: str, version: str, listing: Any) -> list[ApiResource]:
    resources = []
    for item in (listing or {}).get("resources", []):
        name = str(item.get("name", ""))
        if not name or "/" in name:
            continue
        resources.append(
            ApiResource(
                group=group,
                version=version,
                resource=name,
                kind=str(item.get("kind", "")),
                namespaced=bool(item.get("namespaced")),
                verbs=tuple(str(v) for v in item.get("verbs", [])),
            )
        )
    return resources


# --- reaching the API server -------------------------------------------------------------------


def kubeconfig_client_factory(path: Path | None, context: str | None = None) -> ApiClientFactory:
    """From a kubeconfig file (``None``: ``$KUBECONFIG`` or ``~/.kube/config``)."""

    def make() -> Any:
        configuration = kubernetes.client.Configuration()
        kubernetes.config.load_kube_config(
            config_file=str(path) if path is not None else None,
            context=context,
            client_configuration=configuration,
        )
        return kubernetes.client.ApiClient(configuration)

    return make


def in_cluster_client_factory() -> ApiClientFactory:
    """The pod's service account: token and CA mounted under ``/var/run/secrets``."""

    def make() -> Any:
        configuration = kubernetes.client.Configuration()
        kubernetes.config.load_incluster_config(client_configuration=configuration)
        return kubernetes.client.ApiClient(configuration)

    return make


def running_in_cluster() -> bool:
    return "KUBERNETES_SERVICE_HOST" in os.environ
