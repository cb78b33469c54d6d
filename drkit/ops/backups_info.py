"""``invoke backups.list`` and ``invoke backups.info ID``: what exists, from the catalog.

``list`` reads the catalog (per store one LIST, one small GET per day, in parallel), never the
manifests: per store the number of backups, their size, the newest and its age, the consistent
point of each, and whether ``invoke verify`` has test-restored it. It ends with the point a
``restore.all`` would pick now, and the skew between the stores there.

``info`` finds one backup by id (the id carries its day, so that is one segment per store) and
reads its manifest: everything a restore or an auditor needs, object by object.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from drkit.backup.kafka import parse_topics_json
from drkit.backup.manifest import Manifest
from drkit.catalog import CatalogEntry
from drkit.context import OpsContext
from drkit.human import iso_time, table
from drkit.kafka_topics import newest_snapshots, snapshot_diff
from drkit.kinds import of_manifest
from drkit.ops.selection import object_store, readable
from drkit.progress import human_bytes
from drkit.recovery import BACKUP_ID, BackupIndex, RecoveryError
from drkit.storage.objectstore import ObjectStore
from stackmodels.durations import format_duration


class ListRequest(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    stores: list[str] = Field(default_factory=list)
    days: int = Field(default=7, ge=1, le=3660)
    source: str = Field(default="vault", pattern="^(vault|mirror|isolated)$")
    detail: bool = False


@dataclass
class StoreSummary:
    store: str
    kind: str
    data_class: str
    backups: int = 0
    size: int = 0
    raw_size: int = 0
    newest: dict[str, Any] | None = None
    oldest: dict[str, Any] | None = None
    verified: int = 0
    entries: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Listing:
    source: str
    since: str
    until: str
    stores: list[StoreSummary]
    common_point: str | None
    skew_seconds: float | None
    catalog_reads: int

    def to_json(self) -> str:
        return json.dumps(self, default=lambda o: o.__dict__, indent=2) + "\n"

    def to_text(self) -> str:
        lines = [f"backups in {self.source} from {iso_time(self.since)} to {iso_time(self.until)}"]
        header = ("store", "kind", "n", "stored", "newest", "age", "consistent at", "verified")
        rows: list[tuple[object, ...]] = []
        details: list[str] = []
        for s in self.stores:
            if s.newest is None:
                rows.append((s.store, s.kind, 0, "-", "none"))
                continue
            n = s.newest
            verified = f"{s.verified}/{s.backups}" + (
                " (newest verified)" if n["verified_at"] else ""
            )
            rows.append(
                (
                    s.store,
                    s.kind,
                    s.backups,
                    human_bytes(s.size),
                    n["backup_id"],
                    format_duration(n["age_seconds"]),
                    iso_time(n["recovery_point"]),
                    verified,
                )
            )
            if s.entries:
                details.append(f"{s.store}:")
                entries = [
                    (
                        e["backup_id"],
                        human_bytes(e["size"]),
                        iso_time(e["recovery_point"]),
                        iso_time(e["verified_at"]) if e["verified_at"] else "not verified",
                    )
                    for e in s.entries
                ]
                columns = ("backup", "stored", "consistent at", "verified")
                details += ["  " + line for line in table(columns, entries, right=(1,))]
        lines += table(header, rows, right=(2, 3, 5))
        lines += details
        if self.common_point:
            lines.append(
                f"restore.all now would pick {iso_time(self.common_point)} (skew "
                f"{format_duration(self.skew_seconds or 0.0)} between the stores)"
            )
        lines.append(f"({self.catalog_reads} catalog reads, no manifest read)")
        return "\n".join(lines) + "\n"


def _point(summary: StoreSummary) -> datetime:
    assert summary.newest is not None
    return datetime.fromisoformat(summary.newest["recovery_point"])


def _describe(entry: CatalogEntry, now: datetime) -> dict[str, Any]:
    return {
        "backup_id": entry.backup_id,
        "recovery_point": entry.recovery_point.isoformat(),
        "age_seconds": round((now - entry.recovery_point).total_seconds(), 1),
        "size": entry.size,
        "raw_size": entry.raw_size,
        "objects": entry.objects,
        "verified_at": entry.verified_at.isoformat() if entry.verified_at else None,
    }


def list_backups(ctx: OpsContext, request: ListRequest, now: datetime | None = None) -> Listing:
    moment = now or datetime.now(UTC)
    names = list(request.stores) or list(ctx.config.stores)
    for name in names:
        ctx.store_config(name)
    objects = object_store(ctx, request.source)
    index = BackupIndex(ctx.config, objects)
    since = moment - timedelta(days=request.days)
    with readable(objects):
        found = index.catalog.entries(names, since, moment)
    reads = index.catalog.requests
    summaries = []
    for name in names:
        config = ctx.config.stores[name]
        entries = [e for e in found if e.store == name]
        summary = StoreSummary(name, config.kind.value, config.data_class)
        if entries:
            summary.backups = len(entries)
            summary.size = sum(e.size for e in entries)
            summary.raw_size = sum(e.raw_size for e in entries)
            summary.newest = _describe(entries[-1], moment)
            summary.oldest = _describe(entries[0], moment)
            summary.verified = sum(1 for e in entries if e.verified_at)
            if request.detail:
                summary.entries = [_describe(e, moment) for e in reversed(entries)]
        summaries.append(summary)
    with_backups = [s for s in summaries if s.newest is not None]
    common, skew = None, None
    if len(with_backups) > 1 and len(with_backups) == len(summaries):
        # The same rule as BackupIndex.common_point, on the entries already read.
        point = min(_point(s) for s in with_backups)
        chosen = []
        for s in with_backups:
            own = [e.recovery_point for e in found if e.store == s.store]
            before = [p for p in own if p <= point]
            chosen.append(max(before) if before else min(own))
        common, skew = point.isoformat(), round((max(chosen) - min(chosen)).total_seconds(), 1)
    return Listing(
        objects.name,
        since.isoformat(),
        moment.isoformat(),
        summaries,
        common,
        skew,
        reads,
    )


class InfoRequest(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    backup_id: str
    store: str | None = None
    source: str = Field(default="vault", pattern="^(vault|mirror|isolated)$")


@dataclass
class TopicConfigHistory:
    """A Kafka store's newest two topic-configuration snapshots as of a backup, and their diff."""

    snapshots: list[str]
    """Keys, oldest first (none, one or two)."""
    diff: list[str]
    """``topic key: before -> after`` lines; empty when both hold the same or there is one."""

    def to_text(self) -> list[str]:
        if not self.snapshots:
            return ["  topic configuration: no snapshot in this copy"]
        lines = ["  topic configuration snapshots (newest two as of this backup):"]
        lines += [f"    {key}" for key in self.snapshots]
        if len(self.snapshots) < 2:
            lines.append("    (one snapshot: nothing to compare)")
        elif not self.diff:
            lines.append("    no difference (the newer is the daily snapshot)")
        else:
            lines.append("  topic configuration changes (older -> newer):")
            lines += [f"    {line}" for line in self.diff]
        return lines


@dataclass
class BackupInfo:
    entry: CatalogEntry
    manifest: Manifest
    source: str
    topic_configs: TopicConfigHistory | None = None

    def to_json(self) -> str:
        body = {
            "source": self.source,
            "verified_at": self.entry.verified_at.isoformat() if self.entry.verified_at else None,
            "recovery_point": self.manifest.recovery_point.isoformat(),
            "manifest": self.manifest.model_dump(mode="json"),
        }
        if self.topic_configs is not None:
            body["topic_configs"] = asdict(self.topic_configs)
        return json.dumps(body, indent=2) + "\n"

    def to_text(self) -> str:
        m = self.manifest
        verified = self.entry.verified_at
        lines = [
            f"backup {m.backup_id} of {m.store} ({m.kind}, data class {m.data_class})",
            f"  in            {self.source}/{m.prefix}",
            f"  taken         {iso_time(m.started_at)} .. {iso_time(m.finished_at)} "
            f"({format_duration(m.duration_seconds)})",
            f"  consistent at {iso_time(m.recovery_point)}",
            f"  size          {human_bytes(m.raw_size)} read, {human_bytes(m.size)} stored",
            f"  verified      {iso_time(verified) if verified else 'not yet (invoke verify)'}",
            f"  encryption    {m.encryption}",
            f"  copies        {', '.join(m.destinations)}",
            *(f"  NOT COPIED    to {name}: {cause}" for name, cause in m.skipped.items()),
            f"  tools         {', '.join(f'{k} {v}' for k, v in m.tool_versions.items())}",
            "  consistent point:",
        ]
        for key, value in m.consistent_point.items():
            text = json.dumps(value, default=str)
            lines.append(f"    {key}: {text if len(text) < 200 else text[:197] + '...'}")
        if m.counts:
            lines.append("  counts:")
            lines += [f"    {key}: {value:,}" for key, value in m.counts.items()]
        if m.roles is not None:
            lines.append(f"  roles         {', '.join(r['name'] for r in m.roles) or 'none'}")
        if m.checks.get("schema"):
            content = m.checks.get("content", {}).get("tables", {})
            lines.append(
                f"  recorded      schema fingerprint {m.checks['schema']['digest']} "
                f"({len(m.checks['schema']['objects'])} objects), content checksums of "
                f"{sum(1 for v in content.values() if v is not None)}/{len(content)} tables, "
                f"{len(m.checks.get('sequences', {}))} sequence states"
            )
        lines.append("  objects:")
        objects = [
            (
                item.name,
                human_bytes(item.size),
                human_bytes(item.raw_size),
                item.compression,
                item.sha256,
            )
            for item in m.objects
        ]
        header = ("name", "stored", "raw", "compression", "sha256")
        lines += ["    " + line for line in table(header, objects, right=(1, 2))]
        if self.topic_configs is not None:
            lines += self.topic_configs.to_text()
        return "\n".join(lines) + "\n"


def backup_info(ctx: OpsContext, request: InfoRequest) -> BackupInfo:
    if not BACKUP_ID.match(request.backup_id):
        raise RecoveryError(
            f"backup id {request.backup_id!r} is malformed; ids look like 20261121T041500Z-3f9a1c"
        )
    stores = [request.store] if request.store else list(ctx.config.stores)
    for name in stores:
        ctx.store_config(name)
    objects = object_store(ctx, request.source)
    index = BackupIndex(ctx.config, objects)
    with readable(objects):
        entry = index.catalog.find(request.backup_id, stores)
        if entry is None and request.store:
            entry = index.by_id(request.store, request.backup_id)
        if entry is None:
            raise RecoveryError(
                f"backup {request.backup_id!r} is in no catalog of {', '.join(stores)} in "
                f"{objects.name} (see `invoke backups.list`)"
            )
        manifest = index.manifest(entry)
        kind = of_manifest(manifest.kind)
        history = kind.backup.history(objects, manifest) if kind and kind.backup.history else None
    return BackupInfo(entry, manifest, objects.name, history)


def topic_history(objects: ObjectStore, manifest: Manifest) -> TopicConfigHistory:
    """The store's newest two topic-configuration snapshots up to the end of ``manifest``'s
    backup, and what changed between them (two small GETs)."""
    keys = newest_snapshots(
        objects, manifest.data_class, manifest.store, 2, until=manifest.finished_at
    )
    parsed = [parse_topics_json(objects.get_bytes(key), key) for key in keys]
    diff = snapshot_diff(parsed[0], parsed[1]) if len(parsed) == 2 else []
    return TopicConfigHistory(keys, diff)
