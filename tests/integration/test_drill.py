"""The drill at a small size, as CI runs it: every scenario ran, every restore verified, and the
report's figures are present and consistent with each other."""

from __future__ import annotations

import io
import json
from datetime import datetime
from pathlib import Path

import pytest

from drkit.drill.run import DrillOptions, UnknownScenario, run_drill
from tests.integration.kubernetes_fixture import require_kube_apiserver

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]  # the default drill: ~270 s idle

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = [
    "database-corruption",
    "kafka-data-loss",
    "redis-loss",
    "kubernetes-namespace-loss",
    "region-failover",
    "account-compromise",
    "region-loss-from-backups",
]


def test_small_drill_plays_every_scenario_and_reports_consistent_figures(tmp_path: Path) -> None:
    require_kube_apiserver()  # the namespace-loss scenario runs a real one
    project = tmp_path / "project"
    project.mkdir()
    (project / "Pulumi.prod.yaml").write_text((ROOT / "Pulumi.prod.yaml").read_text())
    options = DrillOptions(size_mb=2, soak_seconds=6, between_seconds=1, time_factor=360)
    out = io.StringIO()
    report = run_drill(options, project, tmp_path / "servers", tmp_path / "reports", out)
    body = json.loads((tmp_path / "reports" / "latest" / "drill.json").read_text())

    assert body["ok"] is True, out.getvalue()[-4000:]
    assert [s["name"] for s in body["scenarios"]] == SCENARIOS
    for scenario in body["scenarios"]:
        assert scenario["status"] == "passed" and scenario["verified"] is True
        disaster = datetime.fromisoformat(scenario["disaster_at"])
        verified = datetime.fromisoformat(scenario["verified_at"])
        if scenario["name"] != "region-failover":  # there, each store's own (below)
            assert scenario["rto_seconds"] == pytest.approx(
                (verified - disaster).total_seconds(), abs=0.01
            )
        assert scenario["rto_met"] is True
        for store in scenario["stores"]:
            assert isinstance(store["rto_seconds"], float) and store["rto_met"] is True
            assert isinstance(store["rpo_seconds"], float)
            check = store["verification"]
            # a disaster may strike before any scheduled backup covered a write (expected 0)
            assert check["ok"] and check["expected"] >= 0
            assert check["restored"] == check["expected"]
            assert check["missing"] == check["unexpected"] == check["mismatched"] == 0
            assert check["lost_writes"] == len(check["lost"]) >= 0
            factor = 1 if store["rpo_basis"] == "replication" else 360
            assert store["rpo_schedule_seconds"] == pytest.approx(
                store["rpo_seconds"] * factor, abs=0.2
            )
            if check["lost_writes"]:
                assert store["rpo_seconds"] > 0
            recovery_point = datetime.fromisoformat(store["recovery_point"])
            assert recovery_point <= disaster
    # region-failover: the prod region SIGKILLed, invoke failover, the writers on in dr
    failover = body["scenarios"][SCENARIOS.index("region-failover")]
    assert {s["store"] for s in failover["stores"]} == {
        "trading-db",
        "event-stream",
        "session-cache",
    }
    for store in failover["stores"]:
        assert store["rpo_basis"] == "replication" and store["rpo_met"] is True
        assert 0 < store["rto_seconds"] <= store["rto_objective_seconds"]
        assert store["verification"]["expected"] > 0  # writes acknowledged in dr, read back there
        assert store["continuous_protection"] in (
            "postgres-streaming",
            "mirrormaker2",
            "redis-replica",
        )
    assert failover["rto_seconds"] == max(s["rto_seconds"] for s in failover["stores"])
    assert "failover succeeded" in failover["detail"]
    verified = [s["verification"]["expected"] for c in body["scenarios"] for s in c["stores"]]
    assert sum(verified) > 0
    region = body["scenarios"][-1]
    assert {s["store"] for s in region["stores"]} == {"trading-db", "event-stream", "session-cache"}
    assert region["skew_seconds"] is not None and region["skew_seconds"] >= 0
    assert all(figures["runs"] >= 1 for figures in body["backups"].values())
    assert body["writes"]["trading-db"]["written"] > 0
    assert "kubernetes-namespace-loss" not in body["skipped"]
    namespace_loss = body["scenarios"][SCENARIOS.index("kubernetes-namespace-loss")]
    (app_state,) = namespace_loss["stores"]
    assert app_state["store"] == "app-state" and app_state["verification"]["expected"] == 23
    # account-compromise: prod's credentials empty what they can; the isolated vault refuses all
    compromise = body["scenarios"][SCENARIOS.index("account-compromise")]
    assert {s["store"] for s in compromise["stores"]} == {
        "trading-db",
        "event-stream",
        "session-cache",
    }
    lines = compromise["refusals"]
    vault = [line for line in lines if "backup-vault" in line]
    mirror = [line for line in lines if "backup-mirror" in line]
    isolated = [line for line in lines if "isolated-vault" in line]
    # the prod vault: a delete marker over every key (made); COMPLIANCE versions refused
    assert any("delete every key" in line and ": 0 made" not in line for line in vault), lines
    assert any("refused (AccessDenied" in line for line in vault), lines
    # the mirror's locked retention refuses every delete of a young object
    assert mirror and all(": 0 made" in line and ", 0 refused" not in line for line in mirror)
    # the isolated vault: nothing made, each of the 6 kinds of attempt refused, the listing first
    assert len(isolated) == 6, lines
    assert "list every object version: 0 made, 1 refused (AccessDenied" in isolated[0], lines
    assert all(": 0 made" in line and ", 0 refused" not in line for line in isolated), lines
    lanes = {phase["lane"] for phase in body["timeline"]}
    stores = {"trading-db", "event-stream", "session-cache", "app-state"}
    assert stores | {"region", "account"} <= lanes
    page = (tmp_path / "reports" / "latest" / "drill-timeline.html").read_text()
    assert page.startswith("<!doctype html>") and "<svg" in page and "<script" not in page
    markdown = (tmp_path / "reports" / "latest" / "drill.md").read_text()
    assert "| database-corruption | trading-db |" in markdown
    assert "attacker: s3://" in markdown and "isolated-vault" in markdown
    assert report.ok and "PASSED" in out.getvalue()


def test_unknown_scenario_is_named() -> None:
    with pytest.raises(
        UnknownScenario,
        match="unknown scenario meteor; the drill plays: database-corruption, kafka-data-loss",
    ):
        DrillOptions(scenarios=["meteor"])
