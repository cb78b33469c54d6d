"""Validate Kubernetes manifests against the release's official OpenAPI v3 spec, as strictly as
the API server does.

The spec is ``api/openapi-spec/v3/*.json`` of ``k8s.io/kubernetes@<version>``, fetched once through
the Go module proxy (checksum-verified) by ``scripts/fetch-k8s-schema.sh`` into a cache directory;
nothing is vendored. Each group-version file is self-contained (``#/components/schemas/...``), and
the schema of a manifest is the one whose ``x-kubernetes-group-version-kind`` is its apiVersion and
kind, so an unknown kind or version is an error too.

Three things the published spec leaves to the API server, added here so the check is as strict as
``kubectl apply`` against a real cluster:

- unknown fields: the server rejects them (``fieldValidation=Strict``, kubectl's default), so
  every object schema with ``properties`` gets ``additionalProperties: false`` unless it is marked
  ``x-kubernetes-preserve-unknown-fields``;
- value formats: ``int32``/``int64`` ranges, and the quantity grammar of
  ``resource.ParseQuantity`` (the pattern controller-gen emits for quantities);
- a few rules of the server's Go validation that the spec only states in prose: the enum values
  in ``ENUMS`` (each is checked by a test to appear in the official description of its field) and
  a container's ``image`` (``REQUIRED``).
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft7Validator, FormatChecker  # type: ignore[import-untyped]
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

ROOT = Path(__file__).resolve().parents[3]
FETCH_SCRIPT = ROOT / "scripts" / "fetch-k8s-schema.sh"

QUANTITY_PATTERN = (
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))"
    r"(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)
QUANTITY = "io.k8s.apimachinery.pkg.api.resource.Quantity"

ENUMS: dict[tuple[str, str], list[str]] = {
    ("io.k8s.api.batch.v1.CronJobSpec", "concurrencyPolicy"): ["Allow", "Forbid", "Replace"],
    ("io.k8s.api.batch.v1.PodFailurePolicyRule", "action"): [
        "FailJob",
        "FailIndex",
        "Ignore",
        "Count",
    ],
    ("io.k8s.api.batch.v1.PodFailurePolicyOnExitCodesRequirement", "operator"): ["In", "NotIn"],
    ("io.k8s.api.core.v1.PodSpec", "restartPolicy"): ["Always", "OnFailure", "Never"],
    ("io.k8s.api.core.v1.Container", "imagePullPolicy"): ["Always", "Never", "IfNotPresent"],
    ("io.k8s.api.core.v1.Container", "terminationMessagePolicy"): [
        "File",
        "FallbackToLogsOnError",
    ],
    ("io.k8s.api.core.v1.SeccompProfile", "type"): ["Localhost", "RuntimeDefault", "Unconfined"],
}
"""Values the API server's Go validation accepts; the spec's description of each names them."""
REQUIRED: dict[str, list[str]] = {"io.k8s.api.core.v1.Container": ["image"]}
"""Fields the server requires of a pod's containers that the spec marks optional."""

_FORMATS = FormatChecker()


def _int32(value: object) -> bool:
    return not isinstance(value, int) or -(2**31) <= value < 2**31


def _int64(value: object) -> bool:
    return not isinstance(value, int) or -(2**63) <= value < 2**63


_FORMATS.checks("int32")(_int32)
_FORMATS.checks("int64")(_int64)


def spec_dir() -> Path:
    """The cached spec, fetched on first use (``K8S_OPENAPI_DIR`` overrides the location)."""
    result = subprocess.run(
        ["bash", str(FETCH_SCRIPT)],
        capture_output=True,
        text=True,
        check=False,
        env=os.environ.copy(),
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"could not fetch the Kubernetes OpenAPI spec with {FETCH_SCRIPT}: {result.stderr}"
        )
    return Path(result.stdout.strip().splitlines()[-1])


def spec_file(api_version: str) -> str:
    """``v1`` -> ``api__v1_openapi.json``; ``batch/v1`` -> ``apis__batch__v1_openapi.json``."""
    if "/" not in api_version:
        return f"api__{api_version}_openapi.json"
    group, version = api_version.split("/", 1)
    return f"apis__{group}__{version}_openapi.json"


def _strict(node: Any) -> None:
    if isinstance(node, list):
        for item in node:
            _strict(item)
        return
    if not isinstance(node, dict):
        return
    if (
        "properties" in node
        and "additionalProperties" not in node
        and not node.get("x-kubernetes-preserve-unknown-fields")
    ):
        node["additionalProperties"] = False
    if node.get("x-kubernetes-int-or-string") and "type" not in node:
        node["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    for key, value in node.items():
        if key != "enum":
            _strict(value)


class KubernetesSchema:
    """The spec of one Kubernetes release, loaded lazily per group-version."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.version = (directory / "VERSION").read_text().split()[1]
        self._documents: dict[str, dict[str, Any]] = {}

    def official(self, api_version: str) -> dict[str, Any]:
        """The group-version's ``components.schemas`` exactly as published."""
        path = self.directory / spec_file(api_version)
        if not path.exists():
            raise KeyError(f"Kubernetes {self.version} serves no apiVersion {api_version!r}")
        schemas: dict[str, Any] = json.loads(path.read_text())["components"]["schemas"]
        return schemas

    def document(self, api_version: str) -> dict[str, Any]:
        if api_version not in self._documents:
            schemas = copy.deepcopy(self.official(api_version))
            _strict(schemas)
            if QUANTITY in schemas:
                for branch in schemas[QUANTITY]["oneOf"]:
                    if branch.get("type") == "string":
                        branch["pattern"] = QUANTITY_PATTERN
            for (name, field), values in ENUMS.items():
                if name in schemas:
                    schemas[name]["properties"][field]["enum"] = values
            for name, fields in REQUIRED.items():
                if name in schemas:
                    schemas[name]["required"] = sorted(
                        {*schemas[name].get("required", []), *fields}
                    )
            self._documents[api_version] = {"components": {"schemas": schemas}}
        return self._documents[api_version]

    def schema_name(self, api_version: str, kind: str) -> str:
        group, _, version = api_version.rpartition("/")
        for name, schema in self.document(api_version)["components"]["schemas"].items():
            for gvk in schema.get("x-kubernetes-group-version-kind", []):
                if (gvk["group"], gvk["version"], gvk["kind"]) == (group, version, kind):
                    return str(name)
        raise KeyError(f"Kubernetes {self.version} has no kind {kind!r} in {api_version!r}")

    def errors(self, manifest: dict[str, Any]) -> list[str]:
        """Every problem, as ``<path>: <message>``; empty when the server would accept it."""
        api_version, kind = manifest.get("apiVersion"), manifest.get("kind")
        if not isinstance(api_version, str) or not isinstance(kind, str):
            return ["apiVersion and kind are required"]
        try:
            name = self.schema_name(api_version, kind)
        except KeyError as error:
            return [str(error.args[0])]
        uri = f"urn:kubernetes:{self.version}:{api_version}"
        resource = Resource.from_contents(self.document(api_version), default_specification=DRAFT7)
        validator = Draft7Validator(
            {"$ref": f"{uri}#/components/schemas/{name}"},
            registry=Registry().with_resource(uri, resource),
            format_checker=_FORMATS,
        )
        found = sorted(validator.iter_errors(manifest), key=lambda e: list(e.absolute_path))
        return [
            f"{'.'.join(str(p) for p in error.absolute_path) or '<root>'}: {error.message}"
            for error in found
        ]


@cache
def kubernetes_schema() -> KubernetesSchema:
    return KubernetesSchema(spec_dir())


def as_sent(value: Any) -> Any:
    """Pulumi's wire format carries every number as a double; the provider's JSON encoding of an
    integral double is an integer (``1``, not ``1.0``), which is what the API server receives."""
    if isinstance(value, dict):
        return {key: as_sent(item) for key, item in value.items()}
    if isinstance(value, list):
        return [as_sent(item) for item in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value
