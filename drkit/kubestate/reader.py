"""Read a namespace's state as the backup stores it: the kinds worth keeping, in restore order,
at one resourceVersion, a page at a time, each object cleaned.

The backup seals Secrets on top of this; the drill and the tests read a live namespace through
the same code to compare it with what a restore produced.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from drkit.kubestate.api import CRDS, NAMESPACES, ApiResource, KubeApi, discover
from drkit.kubestate.clean import clean, resource_exclusion, skip_reason
from drkit.kubestate.order import rank

PAGE_SIZE = 100
"""Objects per list request: etcd caps an object near 1.5 MiB, so a page stays well bounded."""


@dataclass
class Survey:
    """What one read covers: namespaced kinds in restore order (with whether each is a custom
    resource), the CRDs the namespace's custom resources belong to, and what is left out."""

    resources: list[tuple[ApiResource, bool]] = field(default_factory=list)
    crds: set[str] = field(default_factory=set)
    excluded: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Page:
    resource: ApiResource
    custom: bool
    objects: list[dict[str, Any]]


@dataclass
class NamespaceReader:
    api: KubeApi
    namespace: str
    page_size: int = PAGE_SIZE
    skipped: Counter[str] = field(default_factory=Counter)
    """Objects left out because something recreates them, per resource key."""

    def survey(self, resource_version: str | None) -> Survey:
        survey = Survey()
        definitions: dict[tuple[str, str], str] = {}
        for page in self.api.pages(CRDS.collection_path(), self.page_size, resource_version):
            for item in page.get("items") or []:
                spec = item.get("spec") or {}
                plural = (spec.get("names") or {}).get("plural", "")
                definitions[(str(spec.get("group")), str(plural))] = item["metadata"]["name"]
        for resource in discover(self.api):
            if not resource.namespaced:
                continue
            reason = resource_exclusion(resource.key, resource.verbs)
            if reason is not None:
                if "list" in resource.verbs:
                    survey.excluded[resource.key] = reason
                continue
            crd = definitions.get((resource.group, resource.resource))
            if crd is not None and self._holds_any(resource, resource_version):
                survey.crds.add(crd)
            survey.resources.append((resource, crd is not None))
        survey.resources.sort(key=lambda entry: rank(entry[0].key, entry[1]))
        return survey

    def pages(self, survey: Survey, resource_version: str | None) -> Iterator[Page]:
        """The namespace, the CRDs, then every kind in restore order; objects cleaned."""
        selector = f"metadata.name={self.namespace}"
        for raw in self.api.pages(NAMESPACES.collection_path(), 1, resource_version, selector):
            yield self._page(NAMESPACES, False, raw)
        if survey.crds:
            for raw in self.api.pages(CRDS.collection_path(), self.page_size, resource_version):
                raw["items"] = [
                    i for i in raw.get("items") or [] if i["metadata"]["name"] in survey.crds
                ]
                yield self._page(CRDS, False, raw)
        for resource, custom in survey.resources:
            path = resource.collection_path(self.namespace)
            for raw in self.api.pages(path, self.page_size, resource_version):
                yield self._page(resource, custom, raw)

    def _holds_any(self, resource: ApiResource, resource_version: str | None) -> bool:
        path = resource.collection_path(self.namespace)
        page = next(self.api.pages(path, 1, resource_version))
        return bool(page.get("items"))

    def _page(self, resource: ApiResource, custom: bool, raw: dict[str, Any]) -> Page:
        objects = []
        for item in raw.get("items") or []:
            # A list's items carry no apiVersion and kind (the list does): put them back.
            obj = {"apiVersion": resource.api_version, "kind": resource.kind} | item
            if skip_reason(obj) is not None:
                self.skipped[resource.key] += 1
                continue
            objects.append(clean(obj))
        return Page(resource, custom, objects)
