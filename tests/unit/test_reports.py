"""Reports kept per run (issue 20 item 3): ``reports/<run id>/`` with its ``run.json``,
``reports/latest`` pointing at the last, and ``invoke reports.list`` reading only ``run.json``."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from drkit.ops import cli
from drkit.ops.executor import Executor, Status
from drkit.ops.plan import FunctionStep, Plan
from drkit.ops.run import RunOptions, keep_report
from drkit.reports import LATEST, recent_runs, record_run, run_dir, runs_text

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]


def record(root: Path, run_id: str, started: str, outcome: str = "succeeded") -> Path:
    directory = run_dir(root, run_id)
    (directory / "restore-postgres.md").write_text("# report\n")
    return record_run(
        root,
        run_id,
        operation="restore postgres trading-db",
        stack="local",
        outcome=outcome,
        started_at=started,
        seconds=95.25,
        finished_at="2026-11-21T04:16:35.25+00:00",
        journal=f".drkit/journal/{run_id}.jsonl",
    )


def test_each_run_keeps_its_own_directory_and_latest_points_at_the_last(tmp_path: Path) -> None:
    root = tmp_path / "reports"
    first = record(root, "20261121T041500Z-restore-postgres", "2026-11-21T04:15:00.5+00:00")
    second = record(
        root, "20261121T051500Z-restore-postgres", "2026-11-21T05:15:00+00:00", "failed"
    )
    assert (first / "restore-postgres.md").exists() and (second / "restore-postgres.md").exists()
    latest = root / LATEST
    assert latest.is_symlink() and os.readlink(latest) == second.name  # relative: the tree moves
    assert not [p for p in root.iterdir() if p.name.startswith(".")]  # no temporary link left
    body = json.loads((second / "run.json").read_text())
    assert body == {
        "run_id": second.name,
        "operation": "restore postgres trading-db",
        "stack": "local",
        "outcome": "failed",
        "started_at": "2026-11-21T05:15:00+00:00",
        "seconds": 95.25,
        "finished_at": "2026-11-21T04:16:35+00:00",
        "journal": f".drkit/journal/{second.name}.jsonl",
        "files": ["restore-postgres.md"],
    }
    runs = recent_runs(root)
    assert [r.run_id for r in runs] == [second.name, first.name]  # newest first
    assert [r.run_id for r in recent_runs(root, limit=1)] == [second.name]
    with pytest.raises(ValueError, match="--limit 0: must be at least 1"):
        recent_runs(root, limit=0)
    with pytest.raises(ValueError, match="cannot name a report directory"):
        run_dir(root, "../elsewhere")


def test_the_listing_is_a_table_with_durations_as_people_read_them(tmp_path: Path) -> None:
    root = tmp_path / "reports"
    assert runs_text(recent_runs(root), root) == f"no reports in {root} yet\n"
    record(root, "20261121T041500Z-restore-postgres", "2026-11-21T04:15:00+00:00")
    (root / "20261120T000000Z-broken").mkdir()  # no run.json: listed, not a crash
    lines = runs_text(recent_runs(root), root).splitlines()
    assert lines[0].split() == ["run", "id", "operation", "stack", "outcome", "started", "duration"]
    assert lines[2].split() == [
        "20261121T041500Z-restore-postgres",
        "restore",
        "postgres",
        "trading-db",
        "local",
        "succeeded",
        "2026-11-21T04:15:00+00:00",
        "1m35s",
    ]
    assert lines[3].split()[0] == "20261120T000000Z-broken" and "unknown" in lines[3]
    assert lines[-1] == f"latest: {root / LATEST} -> 20261121T041500Z-restore-postgres"


def test_reports_list_task_prints_text_and_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    record(tmp_path / "reports", "20261121T041500Z-verify", "2026-11-21T04:15:00+00:00")
    cli.reports_list(tmp_path, limit=5, json=True)
    [run] = json.loads(capsys.readouterr().out)
    assert run["run_id"] == "20261121T041500Z-verify" and run["outcome"] == "succeeded"
    cli.reports_list(tmp_path, limit=5, json=False)
    assert "20261121T041500Z-verify" in capsys.readouterr().out


def test_invoke_reports_list_refuses_a_bad_limit_in_one_line() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "invoke", "reports.list", "--limit", "0"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip() == "error: --limit 0: must be at least 1"


def test_a_dry_run_writes_no_report_and_a_real_run_does(tmp_path: Path) -> None:
    step = FunctionStep("touch", "touch a file", lambda _context: None)
    plan = Plan("touch things", [[step]], {"stack": "local"})
    executor = Executor(tmp_path / "journal", io.StringIO(), confirm=lambda _prompt: True)
    dry = executor.run(plan, run_id="20261121T041500Z-touch-things", dry_run=True)
    assert dry.status is Status.DRY_RUN
    assert keep_report(dry, tmp_path, "touch", "local", RunOptions(dry_run=True)) is None
    assert not (tmp_path / "reports").exists()
    real = executor.run(plan, run_id="20261121T041501Z-touch-things", assume_yes=True)
    written = keep_report(real, tmp_path, "touch", "local", RunOptions(yes=True))
    assert written == tmp_path / "reports" / real.run_id / "touch.md"
    summary = json.loads((written.parent / "run.json").read_text())
    assert summary["operation"] == "touch things" and summary["outcome"] == "succeeded"
    assert sorted(summary["files"]) == ["touch.json", "touch.md"]
    started = datetime.fromisoformat(summary["started_at"])
    assert started.tzinfo is not None and started.microsecond == 0
    assert started <= datetime.now(UTC)
