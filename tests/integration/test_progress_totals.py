"""Progress against a known total on real servers (issue 20 item 5): a backup counts against the
store's previous backup in the catalog, a restore against the manifest; off a terminal each
line is a whole line with the percentage and the time left."""

from __future__ import annotations

import io
import re
import uuid
from pathlib import Path

import pytest

from drkit.backups import BackupRequest, take_backup
from drkit.endpoints import postgres_source
from drkit.ops.restore_postgres import RestorePostgresRequest, build_plan
from drkit.ops.run import RunOptions, run_plan
from drkit.ops.verbs import RestoreEnv
from drkit.seed.postgres import TradingDataSize, seed_trading_database
from tests.integration.ops_helpers import DATABASE, context

pytestmark = pytest.mark.integration

SIZE = r"[\d.]+ [KMG]?i?B"
ESTIMATED = re.compile(
    rf"^{DATABASE}: database\.dump \d+% \({SIZE} of ~{SIZE}\), {SIZE}/s, ETA \S+$", re.M
)
EXACT = re.compile(
    rf"^restore {DATABASE}: database\.dump \d+% \({SIZE} of {SIZE}\), {SIZE}/s(, ETA \S+)?$", re.M
)


def test_a_backup_counts_against_the_previous_one_and_a_restore_against_its_manifest(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ctx = context(project)
    seed_trading_database(
        postgres_source(ctx, DATABASE).conninfo(), TradingDataSize.for_megabytes(6)
    )
    request = BackupRequest(stack="local", store=DATABASE)
    first_log, second_log = io.StringIO(), io.StringIO()
    assert take_backup(request, project, io.StringIO(), progress_to=first_log) == 0
    assert "%" not in first_log.getvalue()  # no backup before it: bytes and rate only
    out = io.StringIO()
    assert take_backup(request, project, out, progress_to=second_log) == 0
    lines = second_log.getvalue().splitlines()
    assert "\r" not in second_log.getvalue()
    assert ESTIMATED.search(second_log.getvalue()), lines
    assert len(lines) <= 12  # one line per tenth (and the end), not one per chunk
    assert re.search(r"committed: .* stored, \S+, consistent at \S+:\d\d\+00:00\n", out.getvalue())

    capsys.readouterr()
    target = f"progress_{uuid.uuid4().hex[:8]}"
    plan, prepared = build_plan(
        ctx, RestorePostgresRequest(target_database=target), RestoreEnv(project)
    )
    report = run_plan(ctx, plan, RunOptions(yes=True), project, io.StringIO(), "restore-postgres")
    prepared.close()
    assert report.exit_code == 0
    # The restore's progress goes to stderr, not a terminal; the dump of a few MiB is read in one
    # piece, so its one line says 100% of the manifest's size (the unit tests see the ETA).
    progress = capsys.readouterr().err
    assert "\r" not in progress
    assert EXACT.search(progress), progress
