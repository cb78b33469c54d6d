"""The seed's Prometheus alerts (004_6675a288b0466223.txt), one threshold per component.

The seed alerts ``BackupMissing`` when ``time() - backup_last_success_timestamp_seconds > 3600``
for every component alike, and ``BackupFailed`` when ``backup_last_result == 0``. Here each
component gets its own ``BackupMissing`` threshold, the same freshness window its CloudWatch alarm
uses (``max(RPO, longest schedule gap)``, ``components.alarms.freshness_window``): one hour is far
too late for a 15-minute RPO and a false alarm for a store backed up every six hours. A component
whose metric is absent (a job that never ran, a Pushgateway that lost it) is missing too, as
CloudWatch's "missing data breaches". ``for`` only bridges a scrape: the window already holds the
tolerance. ``BackupFailed`` keeps the seed's five minutes.

Beside them, the first seed's targets: a daily success rate of 99.9 % (``backup_failures_total``
over ``backup_runs_total``, both counters) and backups under 30 minutes (the
``backup_run_duration_seconds`` histogram's runs above the 1800 s bucket) as recording rules, each
with an alert; and ``DrillStale`` when a drill has not run within the seed's schedule (restore
test weekly, failover test monthly), or never pushed. Every alert carries a ``runbook_url`` to its
README section (``## Alerts and runbooks``), and descriptions write durations as the config does
(``15m``, not ``900s``).

The rules land in a ``PrometheusRule`` (Prometheus Operator) in the monitoring namespace, labelled
so the operator's rule selector picks them up.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
from pydantic import Field

from components._common import PACKAGE, ComponentArgs, require_provider
from stackmodels import metrics
from stackmodels.durations import format_duration

RUNBOOK_SECTION = "alerts-and-runbooks"
"""The README section the alerts' runbook links point into; each alert has its own subsection."""
SUCCESS_RATIO = "component:backup_success_ratio:increase1d"
SLOW_RUNS = "component:backup_runs_over_target:increase1d"
OBJECTIVE_WINDOW = "1d"


class WatchedComponent(ComponentArgs):
    """A backed-up store as the monitoring sees it."""

    name: str = Field(pattern=r"^[a-z][a-z0-9-]{1,40}[a-z0-9]$")
    data_class: str
    window: timedelta
    """Longest acceptable age of the last successful backup."""
    rpo: timedelta


def _seconds(value: timedelta) -> int:
    return int(value.total_seconds())


def missing_expression(component: str, window: timedelta) -> str:
    selector = f'{metrics.LAST_SUCCESS_TIMESTAMP}{{{metrics.COMPONENT_LABEL}="{component}"}}'
    return (
        f"(time() - max by ({metrics.COMPONENT_LABEL}) ({selector}) > {_seconds(window)}) "
        f"or absent({selector})"
    )


def failed_expression(component: str) -> str:
    return f'{metrics.LAST_RESULT}{{{metrics.COMPONENT_LABEL}="{component}"}} == 0'


def runbook_url(base: str, alert: str) -> str:
    """``README.md#backupmissing``: GitHub's anchor of the alert's ``### <alert>`` heading."""
    return f"{base}#{alert.lower()}"


def backup_rules(
    components: list[WatchedComponent], runbook_base: str = "README.md"
) -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = []
    for component in components:
        labels = {
            "severity": "critical",
            metrics.COMPONENT_LABEL: component.name,
            metrics.DATA_CLASS_LABEL: component.data_class,
        }
        rules.append(
            {
                "alert": "BackupMissing",
                "expr": missing_expression(component.name, component.window),
                "for": "1m",
                "labels": labels,
                "annotations": {
                    "summary": "Backup hasn't run for {{ $labels.component }}",
                    "description": (
                        f"No successful backup of {component.name} ({component.data_class}) in "
                        f"the last {format_duration(component.window)} (RPO "
                        f"{format_duration(component.rpo)}), or its metric is absent."
                    ),
                    "threshold_seconds": str(_seconds(component.window)),
                    "runbook_url": runbook_url(runbook_base, "BackupMissing"),
                },
            }
        )
        rules.append(
            {
                "alert": "BackupFailed",
                "expr": failed_expression(component.name),
                "for": "5m",
                "labels": labels,
                "annotations": {
                    "summary": "Last backup failed for {{ $labels.component }}",
                    "description": f"The last backup run of {component.name} failed.",
                    "runbook_url": runbook_url(runbook_base, "BackupFailed"),
                },
            }
        )
    return rules


def objective_rules(runbook_base: str = "README.md") -> list[dict[str, Any]]:
    """The seed's success-rate and duration targets: recording rules, then their alerts."""
    window = OBJECTIVE_WINDOW
    by = f"sum by ({metrics.COMPONENT_LABEL})"
    target = metrics.DURATION_TARGET_SECONDS
    # Pushed by prometheus_client as le="1800.0", re-exposed by the Pushgateway as le="1800".
    within_target = f'{metrics.RUN_DURATION}_bucket{{le=~"{target}(.0)?"}}'
    limit = format_duration(timedelta(seconds=target))
    rate = f"{metrics.SUCCESS_RATE_TARGET * 100:g}%"
    return [
        {
            "record": SUCCESS_RATIO,
            "expr": (
                f"1 - {by} (increase({metrics.FAILURES_TOTAL}[{window}])) "
                f"/ {by} (increase({metrics.RUNS_TOTAL}[{window}]))"
            ),
        },
        {
            "record": SLOW_RUNS,
            "expr": (
                f"{by} (increase({metrics.RUN_DURATION}_count[{window}])) "
                f"- {by} (increase({within_target}[{window}]))"
            ),
        },
        {
            "alert": "BackupSuccessRateLow",
            "expr": f"{SUCCESS_RATIO} < {metrics.SUCCESS_RATE_TARGET}",
            "for": "5m",
            "labels": {"severity": "warning"},
            "annotations": {
                "summary": "Backup success rate of {{ $labels.component }} below " + rate,
                "description": (
                    "{{ $labels.component }}: {{ $value | humanizePercentage }} of the backup "
                    f"runs of the last {window} succeeded; the target is {rate}."
                ),
                "runbook_url": runbook_url(runbook_base, "BackupSuccessRateLow"),
            },
        },
        {
            "alert": "BackupTooSlow",
            "expr": f"{SLOW_RUNS} > 0",
            "labels": {"severity": "warning"},
            "annotations": {
                "summary": "A backup of {{ $labels.component }} took longer than " + limit,
                "description": (
                    "{{ $labels.component }}: {{ $value }} backup runs of the last "
                    f"{window} took longer than the {limit} target."
                ),
                "runbook_url": runbook_url(runbook_base, "BackupTooSlow"),
            },
        },
    ]


def drill_rules(runbook_base: str = "README.md") -> list[dict[str, Any]]:
    """``DrillStale``: a drill older than the seed's schedule for it, or never pushed."""
    rules = []
    for drill, days in metrics.DRILL_SCHEDULES_DAYS.items():
        schedule = timedelta(days=days)
        selector = f'{metrics.DRILL_LAST_RUN_TIMESTAMP}{{{metrics.DRILL_LABEL}="{drill}"}}'
        rules.append(
            {
                "alert": "DrillStale",
                "expr": (
                    f"(time() - max by ({metrics.DRILL_LABEL}) ({selector}) "
                    f"> {_seconds(schedule)}) or absent({selector})"
                ),
                "for": "1h",
                "labels": {"severity": "warning", metrics.DRILL_LABEL: drill},
                "annotations": {
                    "summary": f"The {drill} drill is overdue",
                    "description": (
                        f"The {drill} drill has not run in the last {format_duration(schedule)} "
                        "(the seed's schedule), or never pushed its result."
                    ),
                    "runbook_url": runbook_url(runbook_base, "DrillStale"),
                },
            }
        )
    return rules


def rule_groups(
    components: list[WatchedComponent], runbook_base: str = "README.md"
) -> list[dict[str, Any]]:
    return [
        {"name": "backups", "rules": backup_rules(components, runbook_base)},
        {"name": "backup-objectives", "rules": objective_rules(runbook_base)},
        {"name": "drills", "rules": drill_rules(runbook_base)},
    ]


class BackupAlertRulesArgs(ComponentArgs):
    platform: str = Field(min_length=1)
    namespace: str = Field(min_length=1)
    components: list[WatchedComponent] = Field(min_length=1)
    labels: dict[str, str] = Field(
        default_factory=lambda: {"release": "kube-prometheus-stack", "role": "alert-rules"}
    )
    """What the Prometheus Operator's ``ruleSelector`` matches."""
    runbook_base: str = Field(default="README.md", min_length=1)
    """Where the runbook links point: the README as the repository browser serves it."""


class BackupAlertRules(pulumi.ComponentResource):
    def __init__(
        self, name: str, args: BackupAlertRulesArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(f"{PACKAGE}:monitoring:BackupAlertRules", name, None, opts)
        provider = require_provider(opts, "BackupAlertRules")
        self.rule = k8s.apiextensions.CustomResource(
            f"{name}-rule",
            api_version="monitoring.coreos.com/v1",
            kind="PrometheusRule",
            metadata={
                "name": f"{args.platform}-backups",
                "namespace": args.namespace,
                "labels": {**args.labels, "app.kubernetes.io/part-of": "trading-dr"},
            },
            spec={"groups": rule_groups(args.components, args.runbook_base)},
            opts=pulumi.ResourceOptions(parent=self, provider=provider),
        )
        self.register_outputs({})
