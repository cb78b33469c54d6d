"""Every run reports what the seeds' alerts watch, per component (store):

- ``backup_last_success_timestamp_seconds``: pushed on success only, so a failure never hides
  an old success (``BackupMissing`` fires when it gets too old);
- ``backup_last_result``: 1 on success, 0 on failure (``BackupFailed``);
- ``backup_size_bytes`` and ``backup_duration_seconds`` (the last run);
- ``backup_copies`` and ``backup_copies_skipped`` (CloudWatch ``BackupCopies``): the copies the
  last run committed and those it meant to write and did not (the isolated vault's, issue 22);
- ``backup_failures_total`` and ``backup_runs_total``, counters, and
  ``backup_run_duration_seconds``, a histogram of every run's duration.

The Pushgateway keeps the last value pushed per group, so a counter pushed as "1 this run" would
stay 1. Each run therefore reads what the gateway holds for its component and pushes that plus this
run: the counters only grow (``increase()`` counts failures right), and if the gateway restarts
empty they restart from 0, a counter reset Prometheus handles. If the read fails nothing is pushed,
so a counter never goes back to 0 because of an unreachable gateway. One backup of a store runs at
a time (the lease), so two runs never read the same value.

They go to a Prometheus Pushgateway (POST, so a failed run replaces only the metrics it pushes)
and to CloudWatch, where the freshness alarm counts ``BackupSuccess`` per RPO window and treats
missing data as breaching.
"""

from __future__ import annotations

import logging
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry, Gauge, pushadd_to_gateway
from prometheus_client.metrics_core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from stackmodels import metrics as names

log = logging.getLogger("drkit.metrics")

JOB = names.PROMETHEUS_JOB
CLOUDWATCH_NAMESPACE = names.CLOUDWATCH_NAMESPACE


@dataclass(frozen=True)
class BackupOutcome:
    component: str
    data_class: str
    success: bool
    finished_at: datetime
    duration_seconds: float
    size_bytes: int = 0
    copies: int = 0
    """Copies committed (0: none, the run failed before its commit)."""
    skipped: dict[str, str] = field(default_factory=dict)
    """Copies meant and not written (the isolated vault's), with the cause: logged, and counted in
    ``backup_copies_skipped``."""


@dataclass(frozen=True)
class RunCounts:
    """What the gateway holds for one component: the counters and the duration histogram."""

    failures: float = 0.0
    runs: float = 0.0
    buckets: tuple[float, ...] = (0.0,) * (len(names.DURATION_BUCKETS) + 1)
    """Cumulative counts per ``names.DURATION_BUCKETS`` boundary, then ``+Inf``."""
    duration_sum: float = 0.0

    def after(self, outcome: BackupOutcome) -> RunCounts:
        bounds = (*names.DURATION_BUCKETS, float("inf"))
        return RunCounts(
            failures=self.failures + (0 if outcome.success else 1),
            runs=self.runs + 1,
            buckets=tuple(
                count + (1 if outcome.duration_seconds <= bound else 0)
                for count, bound in zip(self.buckets, bounds, strict=True)
            ),
            duration_sum=self.duration_sum + outcome.duration_seconds,
        )


def _gateway_url(gateway: str) -> str:
    return gateway if "://" in gateway else f"http://{gateway}"


def read_counts(gateway: str, component: str, timeout: float = 10.0) -> RunCounts:
    """The counters the gateway holds for ``component`` (zeros where it holds none)."""
    with urllib.request.urlopen(f"{_gateway_url(gateway)}/metrics", timeout=timeout) as response:
        text = response.read().decode()
    bounds = (*names.DURATION_BUCKETS, float("inf"))
    failures = runs = duration_sum = 0.0
    buckets = [0.0] * len(bounds)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = sample.labels
            if labels.get("job") != JOB or labels.get(names.COMPONENT_LABEL) != component:
                continue
            if sample.name == names.FAILURES_TOTAL:
                failures = sample.value
            elif sample.name == names.RUNS_TOTAL:
                runs = sample.value
            elif sample.name == f"{names.RUN_DURATION}_sum":
                duration_sum = sample.value
            elif sample.name == f"{names.RUN_DURATION}_bucket":
                bound = float(labels["le"])
                if bound in bounds:
                    buckets[bounds.index(bound)] = sample.value
    return RunCounts(failures, runs, tuple(buckets), duration_sum)


class _Families(Collector):
    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> list[Metric]:
        return self.families


def count_families(counts: RunCounts, labels: dict[str, str]) -> list[Metric]:
    keys, values = list(labels), list(labels.values())
    failures = CounterMetricFamily(names.FAILURES_TOTAL, "Failed backup runs", labels=keys)
    failures.add_metric(values, counts.failures)
    runs = CounterMetricFamily(names.RUNS_TOTAL, "Backup runs, failed or not", labels=keys)
    runs.add_metric(values, counts.runs)
    duration = HistogramMetricFamily(names.RUN_DURATION, "Duration of backup runs", labels=keys)
    duration.add_metric(
        values,
        buckets=[
            (str(bound), count)
            for bound, count in zip((*names.DURATION_BUCKETS, "+Inf"), counts.buckets, strict=True)
        ],
        sum_value=counts.duration_sum,
    )
    return [failures, runs, duration]


def prometheus_registry(
    outcome: BackupOutcome, counts: RunCounts | None = None
) -> CollectorRegistry:
    """The gauges of this run and, given what the gateway held (``counts``), the counters."""
    registry = CollectorRegistry()
    labels = {names.COMPONENT_LABEL: outcome.component, names.DATA_CLASS_LABEL: outcome.data_class}

    def gauge(name: str, documentation: str, value: float) -> None:
        metric = Gauge(name, documentation, list(labels), registry=registry)
        metric.labels(**labels).set(value)

    gauge(
        names.LAST_RESULT,
        "1 if the last backup succeeded, 0 if it failed",
        1 if outcome.success else 0,
    )
    gauge(names.DURATION_SECONDS, "Duration of the last backup run", outcome.duration_seconds)
    if outcome.success:
        gauge(
            names.LAST_SUCCESS_TIMESTAMP,
            "Unix time of the last successful backup",
            outcome.finished_at.timestamp(),
        )
        gauge(names.SIZE_BYTES, "Bytes stored by the last successful backup", outcome.size_bytes)
    if outcome.copies:
        gauge(names.COPIES, "Copies the last backup run committed", outcome.copies)
        gauge(
            names.COPIES_SKIPPED,
            "Copies the last backup run was meant to write and did not (the isolated vault's)",
            len(outcome.skipped),
        )
    if counts is not None:
        registry.register(_Families(count_families(counts.after(outcome), labels)))
    return registry


def push_to_gateway(outcome: BackupOutcome, gateway: str) -> None:
    counts = read_counts(gateway, outcome.component)
    pushadd_to_gateway(
        gateway,
        job=JOB,
        registry=prometheus_registry(outcome, counts),
        grouping_key={names.COMPONENT_LABEL: outcome.component},
        timeout=10,
    )


def cloudwatch_data(outcome: BackupOutcome) -> list[dict[str, Any]]:
    dimensions = [{"Name": names.COMPONENT_DIMENSION, "Value": outcome.component}]
    timestamp = outcome.finished_at.astimezone(UTC)

    def datum(name: str, value: float, unit: str) -> dict[str, Any]:
        return {
            "MetricName": name,
            "Dimensions": dimensions,
            "Timestamp": timestamp,
            "Value": value,
            "Unit": unit,
        }

    data = [
        datum(names.BACKUP_SUCCESS, 1 if outcome.success else 0, "Count"),
        datum(names.BACKUP_DURATION, outcome.duration_seconds, "Seconds"),
    ]
    if outcome.success:
        data += [
            datum(names.BACKUP_SIZE, outcome.size_bytes, "Bytes"),
            datum(names.BACKUP_LAST_SUCCESS, outcome.finished_at.timestamp(), "Seconds"),
        ]
        if outcome.copies:
            data.append(datum(names.BACKUP_COPIES, outcome.copies, "Count"))
    return data


def put_cloudwatch(outcome: BackupOutcome, cloudwatch: Any) -> None:
    cloudwatch.put_metric_data(Namespace=CLOUDWATCH_NAMESPACE, MetricData=cloudwatch_data(outcome))


Publisher = Callable[[BackupOutcome], None]


def publish(outcome: BackupOutcome, publishers: list[Publisher]) -> list[str]:
    """Send to every sink; a sink that fails is logged and named, never fails the backup."""
    for name, cause in outcome.skipped.items():
        log.warning("%s: the copy in %s was skipped: %s", outcome.component, name, cause)
    failures = []
    for sink in publishers:
        try:
            sink(outcome)
        except Exception as error:  # metrics must not turn a good backup into a failed one
            log.warning("publishing backup metrics failed: %s", error)
            failures.append(f"{getattr(sink, '__name__', sink)}: {error}")
    return failures
