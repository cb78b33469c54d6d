"""Replication lag per continuously protected store, read from CloudWatch where it is received.

A missing datapoint is "unknown", never 0: a secondary that stopped reporting may be the most
behind of all. Aurora and the MSK Replicator report milliseconds, ElastiCache seconds (from
whichever member is the region's primary node, so all members are read).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import Any

from drkit.failover.request import Runtime
from drkit.failover.topology import Topology
from stackmodels.durations import format_duration

WINDOW = timedelta(minutes=10)
PERIOD_S = 60


@dataclass(frozen=True)
class LagReading:
    store: str
    region: str
    metric: str
    rpo_seconds: float
    seconds: float | None = None
    at: str | None = None
    note: str = ""

    @property
    def within_rpo(self) -> bool | None:
        return None if self.seconds is None else self.seconds <= self.rpo_seconds

    def describe(self) -> str:
        value = "unknown" if self.seconds is None else format_duration(self.seconds)
        rpo = format_duration(self.rpo_seconds)
        return f"{self.store}: lag {value} (RPO {rpo}){self._suffix()}"

    def _suffix(self) -> str:
        return f"; {self.note}" if self.note else ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class MetricSpec:
    store: str
    region: str
    namespace: str
    metric: str
    dimensions: list[dict[str, str]]
    """Read each; the store's lag is the largest of those with data."""
    scale: float
    """Multiply by this to get seconds."""

    def label(self) -> str:
        dims = ",".join(f"{d['Name']}={d['Value']}" for d in self.dimensions[:1])
        more = f" (+{len(self.dimensions) - 1})" if len(self.dimensions) > 1 else ""
        return f"{self.namespace} {self.metric} {dims}{more}"


def replicator_name(arn: str) -> str:
    """``arn:aws:kafka:<region>:<account>:replicator/<name>/<uuid>`` -> ``<name>``."""
    resource = arn.split(":", 5)[-1]
    parts = resource.split("/")
    if len(parts) < 2 or parts[0] != "replicator":
        raise ValueError(f"{arn!r} is not an MSK Replicator ARN")
    return parts[1]


def arn_region(arn: str) -> str:
    return arn.split(":")[3]


def lag_metrics(topology: Topology, receiver: str) -> tuple[list[MetricSpec], list[LagReading]]:
    """The metrics that measure replication into ``receiver``; stores replicated elsewhere come
    back as readings with a note instead."""
    config, outputs = topology.config, topology.outputs
    specs: list[MetricSpec] = []
    notes: list[LagReading] = []
    aurora = outputs.aurora
    if config.aurora is not None and aurora is not None and receiver in aurora.clusters:
        cluster = aurora.clusters[receiver].id
        specs.append(
            MetricSpec(
                config.aurora.store,
                receiver,
                "AWS/RDS",
                "AuroraGlobalDBReplicationLag",
                [{"Name": "DBClusterIdentifier", "Value": cluster}],
                0.001,
            )
        )
    cache = outputs.elasticache
    if (
        config.elasticache is not None
        and cache is not None
        and receiver in cache.replication_groups
    ):
        group = cache.replication_groups[receiver].id
        members = [f"{group}-{n:03d}" for n in range(1, config.elasticache.nodes + 1)]
        specs.append(
            MetricSpec(
                config.elasticache.store,
                receiver,
                "AWS/ElastiCache",
                "GlobalDatastoreReplicationLag",
                [{"Name": "CacheClusterId", "Value": m} for m in members],
                1.0,
            )
        )
    msk = outputs.msk
    if config.msk is not None and msk is not None and msk.replicator_arn:
        store = config.msk.store
        region = arn_region(msk.replicator_arn)
        if region == receiver:
            specs.append(
                MetricSpec(
                    store,
                    region,
                    "AWS/Kafka",
                    "ReplicationLatency",
                    [{"Name": "ReplicatorName", "Value": replicator_name(msk.replicator_arn)}],
                    0.001,
                )
            )
        else:
            notes.append(
                LagReading(
                    store,
                    receiver,
                    "none",
                    topology.rpo_seconds(store),
                    note=f"no replicator copies into {receiver} (the stacks replicate "
                    f"{topology.prod_region} -> {region} only)",
                )
            )
    return specs, notes


def read_lag(cloudwatch: Any, spec: MetricSpec, runtime: Runtime, rpo_seconds: float) -> LagReading:
    end = runtime.now()
    newest: tuple[Any, float] | None = None
    for dimensions in spec.dimensions:
        points = cloudwatch.get_metric_statistics(
            Namespace=spec.namespace,
            MetricName=spec.metric,
            Dimensions=[dimensions],
            StartTime=end - WINDOW,
            EndTime=end,
            Period=PERIOD_S,
            Statistics=["Maximum"],
        )["Datapoints"]
        if not points:
            continue
        latest = max(points, key=lambda p: p["Timestamp"])
        value = float(latest["Maximum"]) * spec.scale
        if newest is None or value > newest[1]:
            newest = (latest["Timestamp"], value)
    if newest is None:
        return LagReading(
            spec.store,
            spec.region,
            spec.label(),
            rpo_seconds,
            note=f"no datapoint in the last {int(WINDOW.total_seconds() // 60)} minutes",
        )
    return LagReading(
        spec.store, spec.region, spec.label(), rpo_seconds, newest[1], str(newest[0].isoformat())
    )


def read_lags(
    topology: Topology, runtime: Runtime, receiver: str, fast_fail: bool = False
) -> list[LagReading]:
    specs, readings = lag_metrics(topology, receiver)
    for spec in specs:
        cloudwatch = runtime.aws.client("cloudwatch", spec.region, fast_fail=fast_fail)
        readings.append(read_lag(cloudwatch, spec, runtime, topology.rpo_seconds(spec.store)))
    return sorted(readings, key=lambda r: r.store)


def data_loss_window(readings: list[dict[str, Any]]) -> dict[str, Any]:
    """The largest lag at cut-over over the stores; "unknown" if any store had none."""
    measured = [r for r in readings if r.get("metric") != "none"]
    known = [float(r["seconds"]) for r in measured if r.get("seconds") is not None]
    unknown = sorted(r["store"] for r in measured if r.get("seconds") is None)
    if not measured:
        return {"data_loss_window": "unknown (no replicated store measured)"}
    if unknown:
        floor = f"at least {max(known):.1f}s, " if known else ""
        return {
            "data_loss_window": f"unknown ({floor}no lag datapoint for {', '.join(unknown)})",
            "data_loss_window_seconds": None,
        }
    return {
        "data_loss_window": f"{max(known):.1f}s",
        "data_loss_window_seconds": round(max(known), 3),
    }
