"""The backup dashboard the seed asks for (004_6675a288b0466223.txt), as a Grafana ConfigMap.

One row per component: age of the last success against its freshness window, size trend,
duration, failures, and the last drill's result and measured RTO/RPO. The JSON is built here, from
the same component list as the alert rules, and shipped in a ConfigMap labelled for Grafana's
dashboard sidecar (``grafana_dashboard: "1"``), so a new store gets its row with its alert.

Failures are counted from ``backup_last_result`` changes: the Pushgateway keeps the last value of
a gauge, so a failure shows as a 1 -> 0 change; ``(changes + (1 - last)) / 2`` counts those over
24 hours (two failures in a row without a success in between count once).
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
        result = _selector(metrics.LAST_RESULT, name)
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
            _panel(
                next_id + 2,
                "Duration",
                "timeseries",
                _selector(metrics.DURATION_SECONDS, name),
                "s",
                10,
                y + 1,
                5,
            ),
            _panel(
                next_id + 3,
                "Failures (24h)",
                "stat",
                f"(changes({result}[24h]) + (1 - {result})) / 2",
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
