"""When a drill last ran and whether it passed, for ``DrillStale`` and the dashboard.

Both drills call :func:`push_drill_run` where they finish: ``invoke drill --stack dr`` (the
monthly drill's scratch restores: the seed's weekly backup restore test) as ``restore``, the local
drill (disasters, failover, failback: the seed's monthly failover test) as ``failover``. One
Pushgateway group per drill, so each keeps its own last run.
"""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry, Gauge, pushadd_to_gateway

from stackmodels import metrics as names

log = logging.getLogger("drkit.drill")

DRILL_JOB = "drkit-drill"
GATEWAY_VARIABLE = "DRKIT_PUSHGATEWAY"


def drill_registry(
    drill: str, stack: str, passed: bool, finished_at: datetime
) -> CollectorRegistry:
    if drill not in names.DRILL_SCHEDULES_DAYS:
        raise ValueError(f"unknown drill {drill!r}; one of {', '.join(names.DRILL_SCHEDULES_DAYS)}")
    registry = CollectorRegistry()
    labels = {names.DRILL_LABEL: drill, "stack": stack}
    for metric, documentation, value in (
        (
            names.DRILL_LAST_RUN_TIMESTAMP,
            "Unix time the drill last finished",
            finished_at.timestamp(),
        ),
        (names.DRILL_LAST_RESULT, "1 if the last drill passed, 0 if not", 1.0 if passed else 0.0),
    ):
        Gauge(metric, documentation, list(labels), registry=registry).labels(**labels).set(value)
    return registry


def push_drill_run(
    drill: str,
    stack: str,
    passed: bool,
    gateway: str | None = None,
    finished_at: datetime | None = None,
) -> str | None:
    """Push to ``gateway`` (default ``$DRKIT_PUSHGATEWAY``); return where it went, or None.

    A gateway that does not answer is logged, never fails a drill that has finished."""
    gateway = gateway or os.environ.get(GATEWAY_VARIABLE) or None
    if gateway is None:
        return None
    registry = drill_registry(drill, stack, passed, finished_at or datetime.now(UTC))
    try:
        pushadd_to_gateway(
            gateway,
            job=DRILL_JOB,
            registry=registry,
            grouping_key={names.DRILL_LABEL: drill},
            timeout=10,
        )
    except OSError as error:
        log.warning("pushing the %s drill's result to %s failed: %s", drill, gateway, error)
        return None
    return gateway
