"""Every run reports what the seeds' alerts watch, per component (store):

- ``backup_last_success_timestamp_seconds``: pushed on success only, so a failure never hides
  an old success (``BackupMissing`` fires when it gets too old);
- ``backup_last_result``: 1 on success, 0 on failure (``BackupFailed``);
- ``backup_size_bytes`` and ``backup_duration_seconds``.

They go to a Prometheus Pushgateway (POST, so a failed run replaces only the metrics it pushes)
and to CloudWatch, where the freshness alarm counts ``BackupSuccess`` per RPO window and treats
missing data as breaching.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry, Gauge, pushadd_to_gateway

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


def prometheus_registry(outcome: BackupOutcome) -> CollectorRegistry:
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
    return registry


def push_to_gateway(outcome: BackupOutcome, gateway: str) -> None:
    pushadd_to_gateway(
        gateway,
        job=JOB,
        registry=prometheus_registry(outcome),
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
    return data


def put_cloudwatch(outcome: BackupOutcome, cloudwatch: Any) -> None:
    cloudwatch.put_metric_data(Namespace=CLOUDWATCH_NAMESPACE, MetricData=cloudwatch_data(outcome))


Publisher = Callable[[BackupOutcome], None]


def publish(outcome: BackupOutcome, publishers: list[Publisher]) -> list[str]:
    """Send to every sink; a sink that fails is logged and named, never fails the backup."""
    failures = []
    for sink in publishers:
        try:
            sink(outcome)
        except Exception as error:  # metrics must not turn a good backup into a failed one
            log.warning("publishing backup metrics failed: %s", error)
            failures.append(f"{getattr(sink, '__name__', sink)}: {error}")
    return failures
