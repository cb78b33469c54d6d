"""``python -m drkit --log-format json`` (the CronJobs): what a run prints is JSON lines as well,
so the pod's log, stdout and stderr together, is one JSON object per line."""

from __future__ import annotations

import io
import json
import logging
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from drkit.__main__ import main
from drkit.logs import JsonLines
from drkit.progress import ByteProgress

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]


def objects(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines()]


def test_each_line_written_becomes_one_object_with_the_fields() -> None:
    target = io.StringIO()
    out = JsonLines(target, "drkit", store="trading-db")
    out.write("plan: back up trading-db")
    out.write(" (postgres)\nbackup 1 committed\n\n")
    out.write("no newline yet")
    assert [o["message"] for o in objects(target.getvalue())] == [
        "plan: back up trading-db (postgres)",
        "backup 1 committed",
    ]
    out.close()
    out.close()  # once only
    found = objects(target.getvalue())
    assert [o["message"] for o in found][-1] == "no newline yet" and len(found) == 3
    for line in found:
        assert (line["store"], line["level"], line["logger"]) == ("trading-db", "info", "drkit")
        assert line["ts"].endswith("+00:00")


def test_progress_lines_are_json_too() -> None:
    target = io.StringIO()
    progress = ByteProgress("trading-db", JsonLines(target, "drkit", store="trading-db"))
    assert not progress.interactive
    progress.interval = 0.0  # a line at every call, not every 5 s
    progress("database.dump", 3 * 1024 * 1024)
    [line] = objects(target.getvalue())
    assert line["message"].startswith("trading-db: database.dump 3.0 MiB read, ")
    assert line["store"] == "trading-db"


@pytest.fixture
def drkit_logger() -> Iterator[None]:
    """``main`` configures the ``drkit`` logger for its process: put it back for the others."""
    logger = logging.getLogger("drkit")
    handlers, level, propagate = logger.handlers[:], logger.level, logger.propagate
    yield
    logger.handlers[:] = handlers
    logger.setLevel(level)
    logger.propagate = propagate


@pytest.mark.usefixtures("drkit_logger")
def test_bad_input_is_one_error_object_and_exit_code_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.copy(ROOT / "Pulumi.prod.yaml", tmp_path)  # no outputs: the run cannot start
    arguments = ["backup", "trading-db", "--stack", "local", "--project-dir", str(tmp_path)]
    code = main([*arguments, "--log-format", "json"])
    captured = capsys.readouterr()
    assert code == 2
    [stack] = objects(captured.out)  # the stack it acts on, first, as JSON like every line
    assert stack["message"] == "stack: local (local, on this machine; from --stack)"
    [line] = objects(captured.err)
    assert line["level"] == "error" and line["store"] == "trading-db"
    assert line["message"].startswith("error: ") and "`invoke local.up`" in line["message"]
