"""``invoke status``: DR readiness at a glance, read-only.

Which region writes now (the Aurora global cluster's writer, asked in the dr region; the stack
config's ``active_region`` if that cannot be read), then per store: replication lag into the
standby region against its RPO, the newest backup in the dr vault against its freshness window,
and the standby's health. Calls into the prod region use the fast-fail clients: a dark primary
makes rows say so instead of hanging the command. Any miss makes the exit code 1.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from drkit.context import OpsContext
from drkit.failover import aurora as aurora_steps
from drkit.failover.kinds.aws import protected_stores
from drkit.failover.lag import arn_region, read_lags
from drkit.failover.preflight import backup_checks
from drkit.failover.request import FailoverRequest, Runtime
from drkit.failover.topology import Topology, resolve
from drkit.human import table
from stackmodels.durations import format_duration


@dataclass
class StoreRow:
    store: str
    lag: str = "-"
    lag_ok: bool | None = None
    backup: str = "-"
    backup_ok: bool | None = None
    standby: str = "-"
    standby_ok: bool | None = None

    @property
    def misses(self) -> list[str]:
        return [
            what
            for what, ok in (
                ("lag", self.lag_ok),
                ("backup", self.backup_ok),
                ("standby", self.standby_ok),
            )
            if ok is False
        ]


@dataclass
class StatusReport:
    primary_region: str
    primary_source: str
    standby_region: str
    rows: list[StoreRow] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(row.misses for row in self.rows)

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 1

    def to_text(self) -> str:
        lines = [
            f"primary region: {self.primary_region} ({self.primary_source}); standby: "
            f"{self.standby_region}",
        ]
        header = ("store", "replication lag vs RPO", "newest backup (dr vault)", "standby", "")
        rows = [
            (row.store, row.lag, row.backup, row.standby, "MISS: " + ", ".join(row.misses))
            if row.misses
            else (row.store, row.lag, row.backup, row.standby)
            for row in self.rows
        ]
        lines += table(header, rows)
        lines += [f"note: {n}" for n in self.notes]
        lines.append("ready" if self.ok else "NOT READY: see MISS above")
        return "\n".join(lines) + "\n"

    def to_json(self) -> str:
        body = asdict(self) | {"ok": self.ok}
        return json.dumps(body, indent=2) + "\n"


def read_status(ctx: OpsContext, runtime: Runtime, project_dir: Path) -> StatusReport:
    topology = resolve(ctx, FailoverRequest(to="dr"), project_dir)
    primary, source = _primary_region(topology, runtime)
    standby = topology.dr_region if primary == topology.prod_region else topology.prod_region
    report = StatusReport(primary, source, standby)
    rows = {store: StoreRow(store) for store in sorted(topology.config.stores)}
    dark = standby != topology.dr_region  # the prod side may be the dark one
    try:
        for reading in read_lags(topology, runtime, standby, fast_fail=dark):
            row = rows[reading.store]
            if reading.metric == "none":
                row.lag = "not replicated toward " + standby
                continue
            shown = "unknown" if reading.seconds is None else format_duration(reading.seconds)
            row.lag = f"{shown} / {format_duration(reading.rpo_seconds)}"
            row.lag_ok = reading.within_rpo is True
    except Exception as error:
        report.notes.append(f"replication lag unreadable in {standby}: {error}")
        for name in _replicated(topology):
            rows[name].lag, rows[name].lag_ok = "unreadable", False
    try:
        for store, fresh, detail, age in backup_checks(topology, runtime, topology.dr_region):
            row = rows[store]
            row.backup = f"{format_duration(age)} old" if age is not None else "none"
            row.backup_ok = fresh
            if not fresh:
                report.notes.append(f"{store}: {detail}")
    except Exception as error:
        report.notes.append(f"dr vault unreadable: {error}")
    for store, health, ok in _standbys(topology, runtime, standby, dark):
        rows[store].standby, rows[store].standby_ok = health, ok
    report.rows = list(rows.values())
    return report


def _replicated(topology: Topology) -> list[str]:
    return protected_stores(topology.config)


def _primary_region(topology: Topology, runtime: Runtime) -> tuple[str, str]:
    aurora = topology.outputs.aurora
    if aurora is not None:
        try:
            rds = runtime.aws.client("rds", topology.dr_region)
            writer = aurora_steps.writer_arn(
                aurora_steps.global_cluster(rds, aurora.global_cluster_id)
            )
            if writer:
                return arn_region(writer), f"writer of {aurora.global_cluster_id}"
        except Exception as error:
            return topology.config.primary_region, f"stack config; Aurora unreadable: {error}"
    return topology.config.primary_region, "stack config active_region"


def _standbys(
    topology: Topology, runtime: Runtime, region: str, dark: bool
) -> list[tuple[str, str, bool]]:
    outputs, config = topology.outputs, topology.config
    found: list[tuple[str, str, bool]] = []

    def probe(store: str, call: Any) -> None:
        try:
            health = str(call())
            found.append((store, health, health in ("available", "ACTIVE")))
        except Exception as error:
            found.append((store, f"unreachable: {type(error).__name__}", False))

    if (
        outputs.aurora is not None
        and config.aurora is not None
        and region in outputs.aurora.clusters
    ):
        member = outputs.aurora.clusters[region]
        rds = runtime.aws.client("rds", region, fast_fail=dark)
        probe(
            config.aurora.store,
            lambda: rds.describe_db_clusters(DBClusterIdentifier=member.id)["DBClusters"][0][
                "Status"
            ],
        )
    cache = outputs.elasticache
    if cache is not None and config.elasticache is not None and region in cache.replication_groups:
        group = cache.replication_groups[region].id
        client = runtime.aws.client("elasticache", region, fast_fail=dark)
        probe(
            config.elasticache.store,
            lambda: client.describe_replication_groups(ReplicationGroupId=group)[
                "ReplicationGroups"
            ][0]["Status"],
        )
    msk = outputs.msk
    if msk is not None and config.msk is not None and region in msk.clusters:
        arn = msk.clusters[region].arn
        kafka = runtime.aws.client("kafka", region, fast_fail=dark)
        probe(
            config.msk.store,
            lambda: kafka.describe_cluster_v2(ClusterArn=arn)["ClusterInfo"]["State"],
        )
    return found
