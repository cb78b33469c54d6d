"""The drill's verdict line: a failed backup is named, with its reason, even when every scenario
passed, in the terminal table, the Markdown and drill.json alike."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from drkit.drill.report import DrillReport, markdown, terminal_table, verdict
from drkit.drill.scenarios import ScenarioResult
from drkit.drill.timeline import duration
from drkit.drill.world import Phase

pytestmark = pytest.mark.unit

T0 = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)
PASSED = "every scenario restored, verified and met its objectives"


def backup(store: str, second: int, reason: str = "") -> Phase:
    start = T0 + timedelta(seconds=second)
    outcome = "failed" if reason else "ok"
    return Phase(f"backup {store}", "backup", start, start + timedelta(seconds=1), outcome, reason)


def report(status: str, *phases: Phase) -> DrillReport:
    return DrillReport(
        started_at=T0.isoformat(),
        scenarios=[ScenarioResult("redis-loss", "the cache comes back empty", status=status)],
        phases=list(phases),
    )


def test_a_clean_pass() -> None:
    clean = report("passed", backup("event-stream", 1), backup("trading-db", 2))
    assert verdict(clean) == f"PASSED: {PASSED}"
    assert clean.as_dict()["failed_backups"] == []


def test_a_pass_with_a_failed_backup_names_it_and_its_reason() -> None:
    reason = "KafkaException: Broker transport failure\n  (a second line is left to the report)"
    drill = report("passed", backup("event-stream", 1), backup("event-stream", 5, reason))
    line = (
        "PASSED with 1 failed backup: event-stream (KafkaException: Broker transport failure); "
        + PASSED
    )
    assert drill.ok
    assert verdict(drill) == line
    assert terminal_table(drill).endswith(f"\n\n{line}\n")
    assert f"**{line}**" in markdown(drill)
    assert f"- event-stream backup at {(T0 + timedelta(seconds=5)).isoformat()} failed:" in (
        markdown(drill)
    )
    body = drill.as_dict()
    assert body["ok"] is True and body["verdict"] == line
    assert body["failed_backups"] == [
        {
            "store": "event-stream",
            "started_at": (T0 + timedelta(seconds=5)).isoformat(),
            "reason": reason,
        }
    ]
    assert [p.get("reason") for p in body["timeline"]] == [None, reason]


def test_several_failures_are_counted_per_store_with_the_last_reason() -> None:
    drill = report(
        "failed",
        backup("trading-db", 9, "OSError: vault unreachable"),
        backup("event-stream", 1, "TimeoutError: first"),
        backup("event-stream", 5, "TimeoutError: second"),
    )
    assert verdict(drill) == (
        "FAILED with 3 failed backups: event-stream x2 (last: TimeoutError: second), "
        "trading-db (OSError: vault unreachable); see the rows above"
    )


def test_a_failure_without_a_reason_says_so() -> None:
    drill = report("passed", Phase("backup session-cache", "backup", T0, T0, "failed"))
    assert verdict(drill) == (
        f"PASSED with 1 failed backup: session-cache (no reason recorded); {PASSED}"
    )


def test_a_failed_scenario_without_failed_backups() -> None:
    assert verdict(report("failed", backup("trading-db", 1))) == "FAILED: see the rows above"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (None, "-"),
        (0, "0s"),
        (10.8, "10.8s"),
        (13.0, "13s"),
        (30.0, "30s"),
        (69.8, "1m10s"),
        (900.0, "15m"),
        (3600.0, "1h"),
        (7092.0, "1h58m"),
        (float("inf"), "unbounded"),
    ],
)
def test_durations_read_as_the_config_writes_them(seconds: float | None, text: str) -> None:
    assert duration(seconds) == text
