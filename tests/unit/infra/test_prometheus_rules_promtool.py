"""promtool checks the PrometheusRule the prod program declares and runs its unit tests:
BackupMissing and BackupFailed fire when they should and stay quiet otherwise."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from program_harness import StackRun
from prometheus_render import render

pytestmark = pytest.mark.unit


def promtool() -> str:
    found = shutil.which("promtool")
    assert found, "promtool not found: scripts/bootstrap.sh installs Debian's prometheus package"
    return found


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool(), *args], capture_output=True, text=True, check=False, timeout=120
    )


def test_rendered_rules_pass_promtool_check(prod: StackRun, tmp_path: Path) -> None:
    rules, _ = render(prod, tmp_path)
    result = run("check", "rules", str(rules))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 16 rules found" in result.stdout


def test_backup_alerts_fire_and_stay_quiet(prod: StackRun, tmp_path: Path) -> None:
    _, test = render(prod, tmp_path)
    result = run("test", "rules", str(test))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_promtool_fails_a_wrong_expectation(prod: StackRun, tmp_path: Path) -> None:
    """The tests can fail: expecting trading-db missing 10 minutes after a backup does."""
    _, test = render(prod, tmp_path)
    text = test.read_text()
    broken = text.replace(
        "      - eval_time: 10m\n        alertname: BackupMissing\n        exp_alerts: []\n",
        "      - eval_time: 10m\n        alertname: BackupMissing\n        exp_alerts:\n"
        "          - exp_labels: {severity: critical, component: trading-db, "
        "data_class: user-data}\n",
    )
    assert broken != text
    test.write_text(broken)
    result = run("test", "rules", str(test))
    assert result.returncode == 1
    assert "BackupMissing" in result.stdout + result.stderr
