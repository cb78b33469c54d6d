"""The archive of a namespace: one JSON-lines stream, a header line then one object per line.

Objects are in restore priority order (``drkit.kubestate.order``), so a restore reads the stream
once and a priority's objects are contiguous. A line names the object's resource (group,
version, plural, kind), whether it is a custom resource, and holds the cleaned object; a Secret's
line holds it without its values plus ``sealed`` (nonce and ciphertext, base64). Reading holds one
line at a time: memory is bounded by the largest object (about 1 MiB in etcd), not the archive.
"""

from __future__ import annotations

import json
from collections.abc import Generator, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from drkit.kubestate.api import ApiResource
from drkit.kubestate.order import PRIORITIES, rank

ARCHIVE_NAME = "resources.jsonl"
FORMAT = "drkit.kubernetes-state"
FORMAT_VERSION = 1
CONTENT = "Kubernetes objects, JSON lines in restore order; Secrets sealed with AES-256-GCM"


class ArchiveError(ValueError):
    """The stream is not an archive of this format, or a line is not a record."""


@dataclass(frozen=True)
class Header:
    namespace: str
    resource_version: str
    snapshot_time: str

    def line(self) -> bytes:
        body = {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "namespace": self.namespace,
            "resource_version": self.resource_version,
            "snapshot_time": self.snapshot_time,
        }
        return json.dumps(body, separators=(",", ":")).encode() + b"\n"


@dataclass(frozen=True)
class Record:
    resource: ApiResource
    custom: bool
    object: dict[str, Any]
    sealed: dict[str, str] | None = field(default=None)

    @property
    def priority(self) -> int:
        return rank(self.resource.key, self.custom)[0]

    @property
    def priority_name(self) -> str:
        return PRIORITIES[self.priority].name

    @property
    def name(self) -> str:
        return str((self.object.get("metadata") or {}).get("name", ""))

    @property
    def namespace(self) -> str | None:
        value = (self.object.get("metadata") or {}).get("namespace")
        return str(value) if value is not None else None

    @property
    def label(self) -> str:
        """``Deployment aipx/api``, ``CustomResourceDefinition venues.example.com``."""
        where = f"{self.namespace}/" if self.resource.namespaced and self.namespace else ""
        return f"{self.resource.kind} {where}{self.name}"

    def line(self) -> bytes:
        body: dict[str, Any] = {
            "group": self.resource.group,
            "version": self.resource.version,
            "resource": self.resource.resource,
            "kind": self.resource.kind,
            "namespaced": self.resource.namespaced,
            "custom": self.custom,
            "object": self.object,
        }
        if self.sealed is not None:
            body["sealed"] = self.sealed
        return json.dumps(body, separators=(",", ":"), sort_keys=False).encode() + b"\n"


def parse_record(line: bytes, number: int) -> Record:
    try:
        body = json.loads(line)
        resource = ApiResource(
            group=str(body["group"]),
            version=str(body["version"]),
            resource=str(body["resource"]),
            kind=str(body["kind"]),
            namespaced=bool(body["namespaced"]),
        )
        obj = body["object"]
        if not isinstance(obj, dict):
            raise TypeError("object is not a JSON object")
        sealed = body.get("sealed")
        return Record(resource, bool(body.get("custom")), obj, dict(sealed) if sealed else None)
    except (ValueError, KeyError, TypeError) as error:
        raise ArchiveError(f"line {number} of the archive is not a record: {error}") from None


def lines(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Complete lines from a stream of chunks, one held at a time (linear in the input)."""
    buffer = bytearray()
    for chunk in chunks:
        start = 0
        while (end := chunk.find(b"\n", start)) != -1:
            buffer += chunk[start:end]
            if buffer.strip():
                yield bytes(buffer)
            buffer.clear()
            start = end + 1
        buffer += chunk[start:]
    if buffer.strip():
        yield bytes(buffer)


def read_archive(chunks: Iterable[bytes]) -> tuple[Header, Generator[Record, None, None]]:
    """The header, then the records lazily (closing the iterator stops the download)."""
    stream = lines(chunks)
    first = next(stream, None)
    if first is None:
        raise ArchiveError("the archive is empty: no header line")
    try:
        body = json.loads(first)
        if body.get("format") != FORMAT or body.get("version") != FORMAT_VERSION:
            raise ArchiveError(
                f"not a {FORMAT} v{FORMAT_VERSION} archive: {body.get('format')!r} "
                f"v{body.get('version')!r}"
            )
        header = Header(
            str(body["namespace"]), str(body["resource_version"]), str(body["snapshot_time"])
        )
    except (ValueError, KeyError, AttributeError) as error:
        raise ArchiveError(f"the archive's header line is malformed: {error}") from None

    def records() -> Generator[Record, None, None]:
        for number, line in enumerate(stream, start=2):
            yield parse_record(line, number)

    return header, records()
