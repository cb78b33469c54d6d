"""The backup dashboard the seed asks for (004_6675a288b0466223.txt), as a Grafana ConfigMap.

One row per component: age of the last success against its freshness window, size trend,
duration, failures, and the last drill's result and measured RTO/RPO. The JSON is built here, from
the same component list as the alert rules, and shipped in a ConfigMap labelled for Grafana's
dashboard sidecar (``grafana_dashboard: "1"``), so a new store gets its row with its alert.

Failures are counted from the ``backup_failures_total`` counter, which every run pushes as what the
Pushgateway held plus this run (``drkit.backup.metrics``): ``increase`` over 24 hours, rounded
(the extrapolation at the window's edges), so runs ending 1, 0, 0, 0, 0 show 4. Durations come
from the ``backup_run_duration_seconds`` histogram (median and 95th percentile over a day) beside
the last run's ``backup_duration_seconds``.
"""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
from pydantic import Field

from components._common import PACKAGE, ComponentArgs, require_provider
from components.prometheus_rules import WatchedComponent
from stackmodels import metrics

ROW_HEIGHT = 6
DASHBOARD_UID = "trading-dr-backups"


def _selector(metric: str, component: str, label: str = metrics.COMPONENT_LABEL) -> str:
    return f'{metric}{{{label}="{component}"}}'


def _panel(
    panel_id: int, title: str, kind: str, expr: str, unit: str, x: int, y: int, width: int
) -> dict[str, Any]:
    return {
        "id": panel_id,
        "title": title,
        "type": kind,
        "datasource": {"type": "prometheus", "uid": "${datasource}"},
        "gridPos": {"x": x, "y": y, "w": width, "h": ROW_HEIGHT},
        "targets": [{"refId": "A", "expr": expr, "legendFormat": "{{component}}"}],
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
    }


def failures_expression(component: str) -> str:
    return f"round(increase({_selector(metrics.FAILURES_TOTAL, component)}[24h]))"


def duration_panel(panel_id: int, component: str, y: int) -> dict[str, Any]:
    buckets = _selector(f"{metrics.RUN_DURATION}_bucket", component)
    panel = _panel(panel_id, "Duration", "timeseries", "", "s", 10, y, 5)
    panel["targets"] = [
        {
            "refId": chr(ord("A") + index),
            "expr": f"histogram_quantile({quantile}, sum by (le) (increase({buckets}[1d])))",
            "legendFormat": f"p{int(quantile * 100)} (1d)",
        }
        for index, quantile in enumerate((0.5, 0.95))
    ] + [
        {
            "refId": "C",
            "expr": _selector(metrics.DURATION_SECONDS, component),
            "legendFormat": "last run",
        }
    ]
    panel["fieldConfig"]["defaults"]["thresholds"] = {
        "mode": "absolute",
        "steps": [
            {"color": "green", "value": None},
            {"color": "red", "value": metrics.DURATION_TARGET_SECONDS},
        ],
    }
    return panel


def dashboard(title: str, components: list[WatchedComponent]) -> dict[str, Any]:
    panels: list[dict[str, Any]] = []
    next_id = 1
    for row, component in enumerate(components):
        y = row * (ROW_HEIGHT + 1)
        name = component.name
        panels.append(
            {
                "id": next_id,
                "type": "row",
                "title": f"{name} ({component.data_class})",
                "gridPos": {"x": 0, "y": y, "w": 24, "h": 1},
                "collapsed": False,
                "panels": [],
            }
        )
        next_id += 1
        last = _selector(metrics.LAST_SUCCESS_TIMESTAMP, name)
        age = _panel(next_id, "Since last success", "stat", f"time() - {last}", "s", 0, y + 1, 4)
        window = int(component.window.total_seconds())
        age["fieldConfig"]["defaults"]["thresholds"] = {
            "mode": "absolute",
            "steps": [{"color": "green", "value": None}, {"color": "red", "value": window}],
        }
        row_panels = [
            age,
            _panel(
                next_id + 1,
                "Size",
                "timeseries",
                _selector(metrics.SIZE_BYTES, name),
                "bytes",
                4,
                y + 1,
                6,
            ),
            duration_panel(next_id + 2, name, y + 1),
            _panel(
                next_id + 3,
                "Failures (24h)",
                "stat",
                failures_expression(name),
                "short",
                15,
                y + 1,
                3,
            ),
            _panel(
                next_id + 4,
                "Last drill",
                "stat",
                _selector(metrics.DRILL_LAST_RESULT, name),
                "bool_yes_no",
                18,
                y + 1,
                2,
            ),
            _panel(
                next_id + 5,
                "Drill RTO / RPO",
                "stat",
                _selector(metrics.DRILL_RTO_SECONDS, name),
                "s",
                20,
                y + 1,
                4,
            ),
        ]
        row_panels[-1]["targets"].append(
            {
                "refId": "B",
                "expr": _selector(metrics.DRILL_RPO_SECONDS, name),
                "legendFormat": "RPO",
            }
        )
        panels += row_panels
        next_id += len(row_panels)
    return {
        "uid": DASHBOARD_UID,
        "title": title,
        "tags": ["trading-dr", "backups"],
        "timezone": "utc",
        "schemaVersion": 39,
        "refresh": "1m",
        "time": {"from": "now-7d", "to": "now"},
        "templating": {
            "list": [
                {
                    "name": "datasource",
                    "type": "datasource",
                    "query": "prometheus",
                    "current": {},
                }
            ]
        },
        "panels": panels,
    }


class BackupDashboardArgs(ComponentArgs):
    platform: str = Field(min_length=1)
    namespace: str = Field(min_length=1)
    components: list[WatchedComponent] = Field(min_length=1)
    labels: dict[str, str] = Field(default_factory=lambda: {"grafana_dashboard": "1"})


class BackupDashboard(pulumi.ComponentResource):
    def __init__(
        self, name: str, args: BackupDashboardArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(f"{PACKAGE}:monitoring:BackupDashboard", name, None, opts)
        provider = require_provider(opts, "BackupDashboard")
        document = dashboard(f"{args.platform} backups", args.components)
        self.config_map = k8s.core.v1.ConfigMap(
            f"{name}-dashboard",
            metadata={
                "name": f"{args.platform}-backups-dashboard",
                "namespace": args.namespace,
                "labels": {**args.labels, "app.kubernetes.io/part-of": "trading-dr"},
            },
            data={f"{DASHBOARD_UID}.json": json.dumps(document, indent=2, sort_keys=True)},
            opts=pulumi.ResourceOptions(parent=self, provider=provider),
        )
        self.register_outputs({})
