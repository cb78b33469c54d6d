"""Preflight: read-only checks before the plan is printed.

- each standby in the target region is available (Aurora member, ElastiCache group, MSK cluster);
- replication lag into the target region against each store's RPO;
- the newest backup of every store in the target region's vault against its freshness window
  (the RPO, or the schedule's longest gap where continuous protection covers the RPO);
- the target Kubernetes cluster answers;
- planned only: the primary region answers (a switchover needs it).

Unplanned, nothing here blocks: the primary is gone and the on-call engineer needs the DR region
now, so every problem is a loud warning in the plan's header. Planned, any lag above the RPO, an
unavailable standby, an unreachable cluster or a dark primary blocks before anything changes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from drkit.failover import kube
from drkit.failover.lag import read_lags
from drkit.failover.request import Runtime
from drkit.failover.topology import Topology
from drkit.human import table
from drkit.recovery import BackupIndex, RecoveryError
from drkit.storage.s3 import S3Store
from stackmodels import StackConfig
from stackmodels.durations import format_duration
from stackmodels.schedule import Cron

OK, WARN, FAIL = "ok", "warn", "FAIL"


@dataclass
class Check:
    name: str
    status: str
    detail: str


@dataclass
class Preflight:
    planned: bool
    checks: list[Check] = field(default_factory=list)
    lags: list[dict[str, Any]] = field(default_factory=list)

    @property
    def blocking(self) -> list[Check]:
        return [c for c in self.checks if c.status == FAIL]

    @property
    def warnings(self) -> list[Check]:
        return [c for c in self.checks if c.status == WARN]

    def add(self, name: str, healthy: bool | None, detail: str, blocks: bool) -> None:
        status = OK if healthy else (FAIL if blocks else WARN)
        self.checks.append(Check(name, status, detail))

    def to_text(self) -> str:
        lines = ["preflight:"]
        rows = [(c.status, c.name, c.detail) for c in self.checks]
        lines += ["  " + line for line in table(("", "check", "detail"), rows, rule=False)[1:]]
        if self.blocking:
            lines.append(f"  BLOCKED: {len(self.blocking)} check(s) failed; nothing was changed")
        elif self.warnings and not self.planned:
            lines.append(
                f"  !!! {len(self.warnings)} WARNING(S) ABOVE: an unplanned failover goes ahead "
                "anyway; read them before confirming !!!"
            )
        return "\n".join(lines) + "\n"

    def as_dict(self) -> dict[str, Any]:
        return {"checks": [asdict(c) for c in self.checks], "lags": self.lags}


def freshness_window_seconds(config: StackConfig, store: str) -> float:
    """What the freshness alarm uses: the RPO, or the schedule's longest gap if that is longer."""
    spec = config.stores[store]
    rpo = config.data_classes[spec.data_class].rpo
    return max(rpo, Cron(spec.schedule).max_interval).total_seconds()


def backup_checks(
    topology: Topology, runtime: Runtime, region: str, fast_fail: bool = False
) -> list[tuple[str, bool, str, float | None]]:
    """(store, fresh, detail, age seconds) for every store, from ``region``'s vault catalog."""
    bucket = topology.outputs.backup_vaults.get(region)
    if bucket is None and topology.outputs.region == region:
        bucket = topology.outputs.backup_vault
    if bucket is None:
        return [
            (s, False, f"no vault of {region} in the outputs", None) for s in topology.config.stores
        ]
    vault = S3Store(runtime.aws.client("s3", region, fast_fail=fast_fail), bucket.name)
    index = BackupIndex(topology.config, vault)
    now: datetime = runtime.now()
    found: list[tuple[str, bool, str, float | None]] = []
    for store in sorted(topology.config.stores):
        window = freshness_window_seconds(topology.config, store)
        try:
            entry = index.latest(store, now=now)
        except RecoveryError as error:
            found.append((store, False, str(error), None))
            continue
        age = (now - entry.recovery_point).total_seconds()
        detail = (
            f"newest {entry.backup_id}, {format_duration(age)} old "
            f"(window {format_duration(window)}) in {bucket.name}"
        )
        found.append((store, age <= window, detail, age))
    return found


def run_preflight(topology: Topology, runtime: Runtime) -> Preflight:
    planned, target = topology.planned, topology.target
    report = Preflight(planned)
    _standbys(topology, runtime, report)
    try:
        readings = read_lags(topology, runtime, target)
    except Exception as error:
        report.add("replication lag", False, f"CloudWatch in {target}: {error}", planned)
        readings = []
    for reading in readings:
        report.lags.append(reading.as_dict())
        if reading.metric == "none":
            report.add(f"lag {reading.store}", True, f"not replicated: {reading.note}", False)
            continue
        within = reading.within_rpo
        report.add(
            f"lag {reading.store}",
            within,
            reading.describe() + f" [{reading.metric}, {reading.region}]",
            planned and within is False,
        )
    try:
        backups = backup_checks(topology, runtime, target)
    except Exception as error:
        backups = []
        report.add("backups", False, f"vault in {target} unreadable: {error}", False)
    for store, fresh, detail, _ in backups:
        report.add(f"backup {store}", fresh, detail, False)
    side = topology.target_kube
    where = f"{side.context or 'current context'}/{side.namespace}"
    try:
        api = runtime.kube.api(side.context, fast_fail=True)
        version = kube.server_version(api, fast_fail=True)
        workloads = kube.labelled_workloads(api, side.namespace, fast_fail=True)
        report.add("kubernetes", True, f"{where}: {version}", False)
        report.add(
            "workloads",
            bool(workloads),
            f"{len(workloads)} labelled {kube.REPLICAS_LABEL} in {where}"
            + ("" if workloads else ": nothing would serve after the switch"),
            planned,
        )
        for service in topology.config.services:
            count = sum(1 for w in workloads if w.service == service)
            report.add(
                f"service {service}",
                count > 0,
                f"{count} workloads labelled {kube.SERVICE_LABEL}={service} in {where}"
                + ("" if count else f": nothing of {service} would start after the switch"),
                False,
            )
    except Exception as error:
        report.add("kubernetes", False, f"{where}: {error}", planned)
    if planned:
        _primary_answers(topology, runtime, report)
    return report


def _standbys(topology: Topology, runtime: Runtime, report: Preflight) -> None:
    outputs, target, planned = topology.outputs, topology.target, topology.planned
    if outputs.aurora is not None:
        member = outputs.aurora.clusters[target]
        try:
            rds = runtime.aws.client("rds", target)
            cluster = rds.describe_db_clusters(DBClusterIdentifier=member.id)["DBClusters"][0]
            status = str(cluster.get("Status"))
            report.add(f"standby {member.id}", status == "available", f"Aurora {status}", planned)
        except Exception as error:
            report.add(f"standby {member.id}", False, str(error), planned)
    if outputs.elasticache is not None:
        group = outputs.elasticache.replication_groups[target].id
        try:
            client = runtime.aws.client("elasticache", target)
            found = client.describe_replication_groups(ReplicationGroupId=group)
            status = str(found["ReplicationGroups"][0].get("Status"))
            report.add(f"standby {group}", status == "available", f"ElastiCache {status}", planned)
        except Exception as error:
            report.add(f"standby {group}", False, str(error), planned)
    if outputs.msk is not None:
        cluster = outputs.msk.clusters[target]
        try:
            client = runtime.aws.client("kafka", target)
            info = client.describe_cluster_v2(ClusterArn=cluster.arn)["ClusterInfo"]
            state = str(info.get("State"))
            report.add(f"standby {cluster.name}", state == "ACTIVE", f"MSK {state}", planned)
        except Exception as error:
            report.add(f"standby {cluster.name}", False, str(error), planned)


def _primary_answers(topology: Topology, runtime: Runtime, report: Preflight) -> None:
    aurora, source = topology.outputs.aurora, topology.source
    try:
        rds = runtime.aws.client("rds", source, fast_fail=True)
        if aurora is not None:
            member = aurora.clusters[source]
            cluster = rds.describe_db_clusters(DBClusterIdentifier=member.id)["DBClusters"][0]
            detail = f"{member.id} {cluster.get('Status')}"
        else:
            rds.describe_db_clusters(MaxRecords=20)
            detail = "RDS answers"
        report.add(f"primary {source}", True, detail, True)
    except Exception as error:
        report.add(
            f"primary {source}",
            False,
            f"a planned switchover needs it: {error} (use an unplanned failover)",
            True,
        )
