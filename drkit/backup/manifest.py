"""Backup artifacts: where their objects go, and the manifest whose write commits them.

Layout: ``<data class>/<store>/<YYYY>/<MM>/<DD>/<backup id>/`` holding the data objects and,
written last, ``manifest.json``. No manifest, no backup.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

MANIFEST_NAME = "manifest.json"
FORMAT_VERSION = 1


def new_backup_id(started_at: datetime) -> str:
    """Sortable by time, unique without coordination: ``20261121T041500Z-1f4a1c``.

    The suffix's first three hex digits are the millisecond of the start (``1f4``: 500 ms), the
    last three are random. Two runs of a store started in the same second (runs never overlap:
    the lease) so still sort in start order, which the catalog's newest backup and its day
    checkpoints follow."""
    utc = started_at.astimezone(UTC)
    return f"{utc:%Y%m%dT%H%M%SZ}-{utc.microsecond // 1000:03x}{secrets.token_hex(2)[:3]}"


def backup_prefix(data_class: str, store: str, backup_id: str) -> str:
    started = datetime.strptime(backup_id[:16], "%Y%m%dT%H%M%SZ")
    return f"{data_class}/{store}/{started:%Y/%m/%d}/{backup_id}/"


def parse_backup_prefix(key: str) -> tuple[str, str, str] | None:
    """(data class, store, backup id) of a key under the layout, else None."""
    parts = key.split("/")
    if len(parts) < 7:
        return None
    return parts[0], parts[1], parts[5]


class StoredObject(BaseModel):
    """One data object of a backup, as written: what a restore streams and a verify re-hashes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    key: str
    size: int = Field(ge=0, description="bytes stored (compressed)")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    raw_size: int = Field(ge=0, description="bytes before compression")
    compression: str = "zstd"
    content: str = Field(description="what the bytes are, e.g. 'pg_dump custom format'")
    fingerprints: dict[str, str] = Field(
        default_factory=dict,
        description="per destination (s3://…, gs://…), the store's ETag or MD5 as written: a LIST "
        "shows it again, so verify --all checks an object without reading it",
    )


class Manifest(BaseModel):
    """What a restore and an auditor need to know about one backup."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format_version: int = FORMAT_VERSION
    backup_id: str
    store: str
    kind: str
    data_class: str
    source: dict[str, Any] = Field(description="host, port, database or cluster; no secrets")
    tool_versions: dict[str, str]
    started_at: datetime
    finished_at: datetime
    consistent_point: dict[str, Any] = Field(
        description="Postgres snapshot time and LSN, Kafka offsets, Redis save time"
    )
    counts: dict[str, int] = Field(
        default_factory=dict, description="rows per table, keys, records: what verify compares"
    )
    roles: list[dict[str, Any]] | None = Field(
        default=None,
        description="PostgreSQL: the roles the database's objects reference (name, attributes, "
        "memberships; never a password), which a restore needs on the target cluster",
    )
    checks: dict[str, Any] = Field(
        default_factory=dict,
        description="PostgreSQL: the schema fingerprint, content checksums and sequence states "
        "recorded in the backup's snapshot (drkit.pg_exact); empty for older backups",
    )
    objects: list[StoredObject]
    destinations: list[str]
    skipped: dict[str, str] = Field(
        default_factory=dict,
        description="destinations this backup was meant for and did not reach (the isolated "
        "vault, after a failure there), each with the cause; empty when every copy was written",
    )
    encryption: dict[str, str | None]

    @property
    def prefix(self) -> str:
        return backup_prefix(self.data_class, self.store, self.backup_id)

    @property
    def size(self) -> int:
        return sum(item.size for item in self.objects)

    @property
    def raw_size(self) -> int:
        return sum(item.raw_size for item in self.objects)

    @property
    def duration_seconds(self) -> float:
        return (self.finished_at - self.started_at).total_seconds()

    @property
    def recovery_point(self) -> datetime:
        """The instant the backup's data is consistent as of (snapshot time, else start)."""
        value = self.consistent_point.get("snapshot_time")
        return datetime.fromisoformat(value) if isinstance(value, str) else self.started_at
