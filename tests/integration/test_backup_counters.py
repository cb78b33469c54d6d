"""The counters drkit pushes grow across runs on a real Pushgateway (which keeps only the last
push per group), and both drills' last-run metrics land there (issue 20 item 7)."""

from __future__ import annotations

import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from prometheus_client import delete_from_gateway
from prometheus_client.parser import text_string_to_metric_families

from components.dashboard import failures_expression
from drkit.backup.metrics import BackupOutcome, publish, push_to_gateway, read_counts
from drkit.drill.metrics import push_drill_run
from drkit.local.process import free_port
from drkit.local.pushgateway import LocalPushgateway

pytestmark = pytest.mark.integration


def samples(gateway: LocalPushgateway, **labels: str) -> dict[tuple[str, str], float]:
    found = {}
    for family in text_string_to_metric_families(gateway.metrics_text()):
        for sample in family.samples:
            if all(sample.labels.get(k) == v for k, v in labels.items()):
                found[(sample.name, sample.labels.get("le", ""))] = sample.value
    return found


def fresh_group(gateway: LocalPushgateway, component: str) -> str:
    """The gateway may outlive a test session: start the component's group empty."""
    delete_from_gateway(gateway.url, job="drkit-backup", grouping_key={"component": component})
    return component


def outcome(component: str, success: bool, seconds: float) -> BackupOutcome:
    return BackupOutcome(component, "user-data", success, datetime.now(UTC), seconds)


def test_failures_and_runs_only_grow_and_the_dashboard_counts_four(
    pushgateway: LocalPushgateway, tmp_path: Path
) -> None:
    component = fresh_group(pushgateway, "counted-db")
    failures, runs = [], []
    for result, seconds in zip([1, 0, 0, 0, 0], [40.0, 50.0, 2000.0, 10.0, 3000.0], strict=True):
        push_to_gateway(outcome(component, bool(result), seconds), pushgateway.url)
        pushed = samples(pushgateway, component=component, job="drkit-backup")
        failures.append(pushed[("backup_failures_total", "")])
        runs.append(pushed[("backup_runs_total", "")])
    assert failures == [0, 1, 2, 3, 4]
    assert runs == [1, 2, 3, 4, 5]
    assert pushed[("backup_last_result", "")] == 0
    assert pushed[("backup_run_duration_seconds_count", "")] == 5
    assert pushed[("backup_run_duration_seconds_sum", "")] == 5100.0
    assert pushed[("backup_run_duration_seconds_bucket", "30")] == 1
    assert pushed[("backup_run_duration_seconds_bucket", "60")] == 3
    assert pushed[("backup_run_duration_seconds_bucket", "1800")] == 3
    assert pushed[("backup_run_duration_seconds_bucket", "+Inf")] == 5
    counts = read_counts(pushgateway.url, component)
    assert (counts.failures, counts.runs, counts.buckets[-1]) == (4, 5, 5)

    # What Prometheus scrapes from the gateway, fed to promtool with the dashboard's expression.
    promtool = shutil.which("promtool")
    assert promtool
    (tmp_path / "none.yml").write_text("groups: []\n")
    series = " ".join(f"{v:g}x59" for v in failures)
    test = {
        "rule_files": ["none.yml"],
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    {
                        "series": f'backup_failures_total{{component="{component}"}}',
                        "values": series,
                    }
                ],
                "promql_expr_test": [
                    {
                        "expr": failures_expression(component),
                        "eval_time": "4h59m",
                        "exp_samples": [{"labels": f'{{component="{component}"}}', "value": 4}],
                    }
                ],
            }
        ],
    }
    (tmp_path / "failures.test.yml").write_text(yaml.safe_dump(test))
    result = subprocess.run(
        [promtool, "test", "rules", str(tmp_path / "failures.test.yml")],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_an_unreachable_gateway_is_named_and_pushes_nothing(
    pushgateway: LocalPushgateway,
) -> None:
    component = fresh_group(pushgateway, "unreached-db")
    push_to_gateway(outcome(component, False, 5.0), pushgateway.url)
    dead = f"http://127.0.0.1:{free_port()}"

    def push_dead(o: BackupOutcome) -> None:
        push_to_gateway(o, dead)

    failures = publish(outcome(component, False, 5.0), [push_dead])
    assert len(failures) == 1 and "push_dead" in failures[0]
    # The next run against the live gateway continues from what it held: 1 + 1.
    push_to_gateway(outcome(component, False, 5.0), pushgateway.url)
    pushed = samples(pushgateway, component=component, job="drkit-backup")
    assert pushed[("backup_failures_total", "")] == 2


def test_both_drills_push_when_and_how_they_last_ran(
    pushgateway: LocalPushgateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    finished = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)
    assert push_drill_run("restore", "dr", True, pushgateway.url, finished) == pushgateway.url
    monkeypatch.setenv("DRKIT_PUSHGATEWAY", pushgateway.url)
    assert push_drill_run("failover", "local", False) == pushgateway.url
    restore = samples(pushgateway, job="drkit-drill", drill="restore")
    assert restore[("drill_last_run_timestamp_seconds", "")] == finished.timestamp()
    assert restore[("drill_last_result", "")] == 1
    failover = samples(pushgateway, job="drkit-drill", drill="failover", stack="local")
    assert failover[("drill_last_result", "")] == 0
    assert failover[("drill_last_run_timestamp_seconds", "")] > finished.timestamp()
    monkeypatch.delenv("DRKIT_PUSHGATEWAY")
    assert push_drill_run("failover", "local", True) is None
    with pytest.raises(ValueError, match="unknown drill 'weekly'"):
        push_drill_run("weekly", "dr", True, pushgateway.url)
