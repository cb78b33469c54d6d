"""The dashboard and the alerts count right (issue 20 item 7), on what the prod program declares
under the mocks: "Failures (24h)" evaluated by promtool over the counter drkit pushes, every
alert's runbook link landing on a README section, durations written as the config writes them."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from program_harness import ROOT, StackRun

from drkit.backup.metrics import BackupOutcome, RunCounts

pytestmark = pytest.mark.unit

CONFIG_MAP = "kubernetes:core/v1:ConfigMap"
RULE = "kubernetes:monitoring.coreos.com/v1:PrometheusRule"
SCRAPES_PER_RUN = 60
"""Runs hourly, scraped every minute: each pushed value is seen 60 times."""


def dashboard_panels(run: StackRun, title: str) -> dict[str, dict[str, Any]]:
    [config_map] = [
        m for m in run.of_type(CONFIG_MAP) if "grafana_dashboard" in m.inputs["metadata"]["labels"]
    ]
    [document] = config_map.inputs["data"].values()
    panels = [p for p in json.loads(document)["panels"] if p["title"] == title]
    return {p["targets"][0]["expr"].split('component="')[1].split('"')[0]: p for p in panels}


def failures_series(results: list[int], start: float = 0.0) -> list[float]:
    """``backup_failures_total`` after each run, as drkit computes it from the gateway's value."""
    counts = RunCounts(failures=start)
    values = []
    for result in results:
        outcome = BackupOutcome("x", "y", bool(result), datetime.now(UTC), 1.0)
        counts = counts.after(outcome)
        values.append(counts.failures)
    return values


def series_notation(values: list[float]) -> str:
    return " ".join(f"{v:g}x{SCRAPES_PER_RUN - 1}" for v in values)


def promtool_eval(tmp_path: Path, tests: list[dict[str, Any]]) -> subprocess.CompletedProcess[str]:
    promtool = shutil.which("promtool")
    assert promtool, "promtool not found: scripts/bootstrap.sh installs Debian's prometheus"
    (tmp_path / "empty-rules.yml").write_text("groups: []\n")
    test = tmp_path / "dashboard.test.yml"
    test.write_text(
        yaml.safe_dump(
            {"rule_files": ["empty-rules.yml"], "evaluation_interval": "1m", "tests": tests}
        )
    )
    return subprocess.run(
        [promtool, "test", "rules", str(test)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def failures_test(expr_of: dict[str, str], expected: float) -> dict[str, Any]:
    fresh = failures_series([1, 0, 0, 0, 0])
    assert fresh == [0, 1, 2, 3, 4]
    # event-stream: three failures 30 hours ago (outside the window), then 1, 0, 0, 0, 0.
    history = failures_series([0, 0, 0] + [1] * 27)
    old = failures_series([1, 0, 0, 0, 0], start=history[-1])
    return {
        "interval": "1m",
        "input_series": [
            {
                "series": 'backup_failures_total{component="trading-db"}',
                "values": "_x1740 " + series_notation(fresh),
            },
            {
                "series": 'backup_failures_total{component="event-stream"}',
                "values": series_notation(history + old),
            },
        ],
        "promql_expr_test": [
            {
                "expr": expr_of[store],
                "eval_time": "34h59m",
                "exp_samples": [{"labels": f'{{component="{store}"}}', "value": expected}],
            }
            for store in ("trading-db", "event-stream")
        ],
    }


def test_failures_24h_shows_four_for_one_success_then_four_failures(
    prod: StackRun, tmp_path: Path
) -> None:
    panels = dashboard_panels(prod, "Failures (24h)")
    expr_of = {store: panel["targets"][0]["expr"] for store, panel in panels.items()}
    assert (
        expr_of["trading-db"]
        == 'round(increase(backup_failures_total{component="trading-db"}[24h]))'
    )
    result = promtool_eval(tmp_path, [failures_test(expr_of, 4)])
    assert result.returncode == 0, result.stdout + result.stderr
    wrong = promtool_eval(tmp_path, [failures_test(expr_of, 1)])
    assert wrong.returncode == 1
    assert "got:" in wrong.stdout + wrong.stderr


def test_duration_panel_reads_the_histogram(prod: StackRun) -> None:
    panel = dashboard_panels(prod, "Duration")["trading-db"]
    exprs = [t["expr"] for t in panel["targets"]]
    assert exprs[1] == (
        "histogram_quantile(0.95, sum by (le) "
        '(increase(backup_run_duration_seconds_bucket{component="trading-db"}[1d])))'
    )
    assert exprs[2] == 'backup_duration_seconds{component="trading-db"}'


def readme_anchors() -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    anchors = set()
    for line in (ROOT / "README.md").read_text().splitlines():
        if match := re.match(r"^#{1,6} (.+)$", line):
            text = re.sub(r"[^\w\- ]", "", match.group(1).strip().lower())
            anchors.add(text.replace(" ", "-"))
    return anchors


def all_rules(run: StackRun) -> list[dict[str, Any]]:
    [rule] = run.of_type(RULE)
    return [r for group in rule.inputs["spec"]["groups"] for r in group["rules"]]


def test_every_alert_has_a_runbook_that_exists_in_the_readme(prod: StackRun) -> None:
    anchors = readme_anchors()
    assert "alerts-and-runbooks" in anchors
    alerts = [r for r in all_rules(prod) if "alert" in r]
    assert {r["alert"] for r in alerts} == {
        "BackupMissing",
        "BackupFailed",
        "BackupSuccessRateLow",
        "BackupTooSlow",
        "DrillStale",
    }
    for alert in alerts:
        url = alert["annotations"]["runbook_url"]
        page, anchor = url.split("#")
        assert (ROOT / page).is_file()
        assert anchor in anchors, f"{alert['alert']}: {url} has no README section"
    assert "no-such-alert" not in anchors


def test_descriptions_write_durations_as_the_config_does(prod: StackRun) -> None:
    descriptions = [r["annotations"]["description"] for r in all_rules(prod) if "alert" in r]
    joined = "\n".join(descriptions)
    seconds = [int(n) for n in re.findall(r"\b(\d+)s\b", joined)]
    assert all(n < 60 for n in seconds), joined  # 30s stays 30s; 3600s is 1h
    assert "in the last 15m (RPO 15m)" in joined
    assert "session-cache (market-data) in the last 6h (RPO 1m)" in joined
    assert "the last 7d (the seed's schedule)" in joined
    assert "longer than the 30m target" in joined


def test_recording_rules_hold_the_seeds_targets(prod: StackRun) -> None:
    rules = {r["record"]: r["expr"] for r in all_rules(prod) if "record" in r}
    assert set(rules) == {
        "component:backup_success_ratio:increase1d",
        "component:backup_runs_over_target:increase1d",
    }
    alerts = {r["alert"]: r["expr"] for r in all_rules(prod) if "alert" in r}
    assert alerts["BackupSuccessRateLow"] == "component:backup_success_ratio:increase1d < 0.999"
    assert alerts["BackupTooSlow"] == "component:backup_runs_over_target:increase1d > 0"
    assert 'le=~"1800(.0)?"' in rules["component:backup_runs_over_target:increase1d"]
