"""``invoke drill --stack dr``: the monthly drill against a provisioned stack (here the local one,
through the same outputs a real stack exports): scratch restores, counts, clean up, measured RTO
and backup age, and the results published where the dashboard reads them."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from prometheus_client.parser import text_string_to_metric_families

from drkit.drill.monthly import CLOUDWATCH_NAMESPACE, run_monthly_drill
from drkit.endpoints import postgres_source
from drkit.local.pushgateway import LocalPushgateway
from drkit.local.redis import LocalRedis
from drkit.local.s3 import LocalAws
from drkit.ops.run import RunOptions
from tests.integration.ops_helpers import (
    attach_cache,
    cache_backup,
    cache_server,
    context,
    database_backup,
    fill_cache,
)

pytestmark = pytest.mark.integration
__all__ = ["cache_server"]


def test_monthly_drill_restores_to_scratch_measures_and_publishes(
    project: Path,
    cache_server: LocalRedis,
    pushgateway: LocalPushgateway,
    aws_emulator: LocalAws,
) -> None:
    attach_cache(project, cache_server)
    ctx = context(project)
    database_backup(ctx)
    fill_cache(cache_server.client(), "drill")
    cache_backup(ctx)
    out = io.StringIO()
    started = datetime.now(UTC)
    report = run_monthly_drill(
        ctx,
        ["trading-db", "session-cache"],
        RunOptions(yes=True),
        project,
        out,
        pushgateway=pushgateway.url,
        cloudwatch=True,
    )
    assert report.ok, out.getvalue()
    by_store = {c.component: c for c in report.components}
    assert set(by_store) == {"trading-db", "session-cache"}
    for result in by_store.values():
        assert result.passed and result.restore_seconds is not None
        assert 0 < result.restore_seconds <= result.rto_objective_seconds
        assert result.backup_age_seconds is not None and result.backup_age_seconds >= 0

    # the scratch database, named for the drill, is gone; the source is untouched
    server = postgres_source(ctx, "trading-db")
    verify_report = json.loads((project / "reports" / "latest" / "verify.json").read_text())
    (restored,) = [
        c["figures"]
        for c in verify_report["checks"]
        if c["check"] == "test-restore" and c["subject"] == "trading-db"
    ]
    assert restored["scratch_database"].startswith(f"{server.database}_dr_test_")
    with psycopg.connect(server.conninfo("postgres")) as connection:
        scratch = connection.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE %s", (f"{server.database}_dr%",)
        ).fetchall()
    assert scratch == []

    samples: dict[tuple[str, str], float] = {}
    for family in text_string_to_metric_families(pushgateway.metrics_text()):
        for sample in family.samples:
            if sample.name.startswith("drill_"):
                # per store (component=...), and the drill as a whole (drill="restore")
                label = sample.labels.get("component") or sample.labels["drill"]
                samples[(sample.name, label)] = sample.value
    assert samples[("drill_last_result", "restore")] == 1
    assert samples[("drill_last_run_timestamp_seconds", "restore")] > started.timestamp()
    assert samples[("drill_last_result", "trading-db")] == 1
    assert (
        samples[("drill_rto_seconds", "session-cache")] == by_store["session-cache"].restore_seconds
    )
    cloudwatch: Any = aws_emulator.client("cloudwatch")
    names = {
        m["MetricName"] for m in cloudwatch.list_metrics(Namespace=CLOUDWATCH_NAMESPACE)["Metrics"]
    }
    assert {"DrillResult", "DrillRestoreSeconds"} <= names
    written = json.loads((project / "reports" / "latest" / "drill-monthly.json").read_text())
    assert written["ok"] is True and len(written["components"]) == 2


def test_monthly_drill_dry_run_changes_nothing(project: Path) -> None:
    ctx = context(project)
    database_backup(ctx)
    out = io.StringIO()
    report = run_monthly_drill(ctx, ["trading-db"], RunOptions(dry_run=True), project, out)
    assert report.components == [] and "dry run" in out.getvalue()
    assert not (project / "reports").exists()  # a dry run writes no report
