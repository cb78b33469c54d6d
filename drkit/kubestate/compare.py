"""Is a restored namespace what was backed up? Both read live, cleaned, and compared object by
object: a restore is right when every object is there and equal after cleaning (renamed into the
target namespace), Secrets' values included (the API server returns them decrypted)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from drkit.kubestate.api import NAMESPACES, KubeApi
from drkit.kubestate.clean import renamed
from drkit.kubestate.reader import NamespaceReader

State = dict[str, dict[str, Any]]
"""Object id (``configmaps/app-config``; the Namespace is ``namespaces``) -> cleaned object."""


def object_id(resource_key: str, obj: dict[str, Any]) -> str:
    if resource_key == NAMESPACES.key:
        return resource_key
    return f"{resource_key}/{obj['metadata']['name']}"


def namespace_state(api: KubeApi, namespace: str) -> State:
    """Everything a backup of ``namespace`` would hold, read live (one object at a time per
    page; meant for the drill's and the tests' namespaces, not for a production-size one)."""
    reader = NamespaceReader(api, namespace)
    state: State = {}
    for page in reader.pages(reader.survey(None), None):
        for obj in page.objects:
            state[object_id(page.resource.key, obj)] = obj
    return state


@dataclass
class StateDiff:
    expected: int = 0
    equal: int = 0
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    mismatched: dict[str, list[str]] = field(default_factory=dict)
    """Object id -> the JSON paths that differ."""

    @property
    def ok(self) -> bool:
        return not (self.missing or self.unexpected or self.mismatched)

    def summary(self) -> str:
        parts = [f"{self.equal}/{self.expected} objects equal"]
        if self.missing:
            parts.append(f"missing {self.missing[:5]}")
        if self.unexpected:
            parts.append(f"unexpected {self.unexpected[:5]}")
        if self.mismatched:
            parts.append(f"differing {dict(list(self.mismatched.items())[:5])}")
        return "; ".join(parts)


def compare_states(expected: State, actual: State, source: str, target: str) -> StateDiff:
    """``expected`` read from ``source`` before the disaster, ``actual`` from ``target`` after."""
    diff = StateDiff(expected=len(expected))
    for key, obj in expected.items():
        found = actual.get(key)
        if found is None:
            diff.missing.append(key)
            continue
        paths = differences(renamed(obj, source, target), found)
        if paths:
            diff.mismatched[key] = paths
        else:
            diff.equal += 1
    diff.unexpected = sorted(actual.keys() - expected.keys())
    return diff


def differences(a: Any, b: Any, path: str = "") -> list[str]:
    """JSON paths at which ``a`` and ``b`` differ (``spec.ports[0].nodePort``)."""
    if isinstance(a, dict) and isinstance(b, dict):
        found = []
        for key in sorted(a.keys() | b.keys()):
            where = f"{path}.{key}" if path else str(key)
            if key not in a or key not in b:
                found.append(where)
            else:
                found += differences(a[key], b[key], where)
        return found
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{path}[len {len(a)} != {len(b)}]"]
        found = []
        for index, (x, y) in enumerate(zip(a, b, strict=True)):
            found += differences(x, y, f"{path}[{index}]")
        return found
    return [] if a == b else [path or "."]
