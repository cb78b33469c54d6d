"""The seed's Prometheus alerts (004_6675a288b0466223.txt), one threshold per component.

The seed alerts ``BackupMissing`` when ``time() - backup_last_success_timestamp_seconds > 3600``
for every component alike, and ``BackupFailed`` when ``backup_last_result == 0``. Here each
component gets its own ``BackupMissing`` threshold, the same freshness window its CloudWatch alarm
uses (``max(RPO, longest schedule gap)``, ``components.alarms.freshness_window``): one hour is far
too late for a 15-minute RPO and a false alarm for a store backed up every six hours. A component
whose metric is absent (a job that never ran, a Pushgateway that lost it) is missing too, as
CloudWatch's "missing data breaches". ``for`` only bridges a scrape: the window already holds the
tolerance. ``BackupFailed`` keeps the seed's five minutes.

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


def backup_rules(components: list[WatchedComponent]) -> list[dict[str, Any]]:
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
                        f"the last {_seconds(component.window)}s (RPO "
                        f"{_seconds(component.rpo)}s), or its metric is absent."
                    ),
                    "threshold_seconds": str(_seconds(component.window)),
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
                },
            }
        )
    return rules


class BackupAlertRulesArgs(ComponentArgs):
    platform: str = Field(min_length=1)
    namespace: str = Field(min_length=1)
    components: list[WatchedComponent] = Field(min_length=1)
    labels: dict[str, str] = Field(
        default_factory=lambda: {"release": "kube-prometheus-stack", "role": "alert-rules"}
    )
    """What the Prometheus Operator's ``ruleSelector`` matches."""


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
            spec={"groups": [{"name": "backups", "rules": backup_rules(args.components)}]},
            opts=pulumi.ResourceOptions(parent=self, provider=provider),
        )
        self.register_outputs({})
