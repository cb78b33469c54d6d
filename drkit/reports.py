"""Reports kept per run: ``reports/<run id>/`` holds everything one command wrote (Markdown,
JSON, the drill's HTML timeline) and a small ``run.json`` (operation, stack, outcome, start,
duration, files), and ``reports/latest`` is a symlink to the last run that wrote one, replaced
atomically. The run id is the journal's (``.drkit/journal/<run id>.jsonl``), so a report and its
journal are found from each other; a resumed run writes into the same directory.

``invoke reports.list`` reads the ``run.json`` files, never the reports themselves. A dry run
writes no report.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from drkit.human import iso_time, table
from stackmodels.durations import format_duration

REPORTS_DIR = Path("reports")
LATEST = "latest"
RUN_FILE = "run.json"
_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,159}$")


@dataclass
class RunSummary:
    """``run.json``: what ``reports.list`` shows of a run."""

    run_id: str
    operation: str
    stack: str
    outcome: str
    started_at: str
    seconds: float | None = None
    finished_at: str | None = None
    journal: str | None = None
    files: list[str] = field(default_factory=list)

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> RunSummary:
        known = {key: body[key] for key in cls.__dataclass_fields__ if key in body}
        return cls(**known)


def reports_root(project_dir: Path) -> Path:
    return project_dir / REPORTS_DIR


def run_dir(root: Path, run_id: str) -> Path:
    """``root/<run id>``, created; a run id that is not a plain name is refused."""
    if not _RUN_ID.match(run_id) or run_id == LATEST:
        raise ValueError(f"run id {run_id!r} cannot name a report directory")
    directory = root / run_id
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def record_run(
    root: Path,
    run_id: str,
    *,
    operation: str,
    stack: str,
    outcome: str,
    started_at: datetime | str,
    seconds: float | None,
    finished_at: datetime | str | None = None,
    journal: str | None = None,
) -> Path:
    """Write ``run.json`` of the run (over an earlier one: the latest word on the run wins, e.g.
    the monthly drill's over its verify run's) and point ``latest`` at it; its directory."""
    directory = run_dir(root, run_id)
    summary = RunSummary(
        run_id=run_id,
        operation=operation,
        stack=stack,
        outcome=outcome,
        started_at=iso_time(started_at),
        seconds=None if seconds is None else round(seconds, 3),
        finished_at=iso_time(finished_at or datetime.now(UTC)),
        journal=journal,
        files=sorted(p.name for p in directory.iterdir() if p.name != RUN_FILE),
    )
    _write_atomically(directory / RUN_FILE, json.dumps(asdict(summary), indent=2) + "\n")
    point_latest(root, run_id)
    return directory


def point_latest(root: Path, run_id: str) -> None:
    """``root/latest`` -> ``<run id>`` (relative), replaced in one rename: a reader sees the old
    link or the new one, never none."""
    link = root / LATEST
    temporary = root / f".{LATEST}.{os.getpid()}"
    temporary.unlink(missing_ok=True)
    temporary.symlink_to(run_id, target_is_directory=True)
    os.replace(temporary, link)


def _write_atomically(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    temporary.write_text(text)
    os.replace(temporary, path)


def recent_runs(root: Path, limit: int = 20) -> list[RunSummary]:
    """The newest ``limit`` runs that wrote a report, newest first (by start time); a run
    directory without a readable ``run.json`` is listed with outcome ``unknown``."""
    if limit < 1:
        raise ValueError(f"--limit {limit}: must be at least 1")
    if not root.is_dir():
        return []
    runs = []
    for directory in root.iterdir():
        if directory.name.startswith(".") or directory.is_symlink() or not directory.is_dir():
            continue
        runs.append(_summary(directory))
    runs.sort(key=lambda run: (run.started_at, run.run_id), reverse=True)
    return runs[:limit]


def _summary(directory: Path) -> RunSummary:
    try:
        body = json.loads((directory / RUN_FILE).read_text())
        return RunSummary.from_json(body)
    except (OSError, ValueError, TypeError):
        try:  # a run id starts with its start time
            started = datetime.strptime(directory.name[:16], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        except ValueError:
            started = datetime.fromtimestamp(directory.stat().st_mtime, UTC)
        files = sorted(p.name for p in directory.iterdir())
        return RunSummary(directory.name, "?", "?", "unknown", iso_time(started), files=files)


HEADER = ("run id", "operation", "stack", "outcome", "started", "duration")


def runs_text(runs: list[RunSummary], root: Path) -> str:
    """The table ``reports.list`` prints, and where the reports are."""
    if not runs:
        return f"no reports in {root} yet\n"
    rows = [
        (
            run.run_id,
            run.operation,
            run.stack,
            run.outcome,
            run.started_at,
            "-" if run.seconds is None else format_duration(run.seconds),
        )
        for run in runs
    ]
    lines = table(HEADER, rows, right=(5,))
    latest = root / LATEST
    if latest.is_symlink():
        lines.append(f"latest: {latest} -> {os.readlink(latest)}")
    return "\n".join(lines) + "\n"


def runs_json(runs: list[RunSummary]) -> str:
    return json.dumps([asdict(run) for run in runs], indent=2) + "\n"
