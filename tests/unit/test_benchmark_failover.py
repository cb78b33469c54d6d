"""The failover benchmark's arithmetic and its hold on the real plan; the results' merge of an
``--only`` run. No timing is asserted: these are the sums, not a measurement."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from benchmarks.failover import (
    DURATIONS,
    LEVELS,
    PODS,
    batch_finish,
    critical_path,
    dag_finish,
    failover_plan,
    path_to_marks,
    ready_at,
    sequential_finish,
    service_marks,
    step_kind,
    store_marks,
    timing,
)
from benchmarks.report import Report, Section, Table, merged, previous_sections, render, write
from drkit.failover.request import FailoverRequest

pytestmark = pytest.mark.unit

DEPENDS = {"a": [], "b": ["a"], "c": ["a"], "d": ["b"], "e": ["b", "c"]}
SECONDS = {"a": 1.0, "b": 2.0, "c": 10.0, "d": 5.0, "e": 1.0}
LAYERS = [["a"], ["b", "c"], ["d", "e"]]


def test_the_three_ways_of_running_a_plan() -> None:
    order = ["a", "b", "c", "d", "e"]
    assert sequential_finish(order, SECONDS)["e"] == sum(SECONDS.values())
    batch = batch_finish(LAYERS, SECONDS)
    assert max(batch.values()) == 1 + 10 + 5  # each layer waits for its slowest step
    dag = dag_finish(order, DEPENDS, SECONDS)
    assert dag["d"] == 1 + 2 + 5  # d needs only b, not the slow c
    assert max(dag.values()) == 1 + 10 + 1
    assert critical_path(DEPENDS, dag) == [["a"], ["c"], ["e"]]


def test_steps_that_tie_share_a_link_of_the_critical_path() -> None:
    depends = {"a": [], "b": ["a"], "c": ["a"], "d": ["b", "c"]}
    finish = dag_finish(["a", "b", "c", "d"], depends, {"a": 1, "b": 3, "c": 3, "d": 1})
    assert critical_path(depends, finish) == [["a"], ["b", "c"], ["d"]]


def test_every_step_of_the_real_plan_has_figures_and_recorded_edges() -> None:
    failover = failover_plan()
    ids = [step.id for step in failover.plan.steps]
    assert {"fence.primary", "aurora.promote", "postcheck"} <= set(ids)
    assert set(failover.depends) == set(ids)
    assert failover.depends["postcheck"]  # the edges build_plan declared, not an empty map
    for step_id in ids:
        assert step_kind(step_id) in DURATIONS
    for level in LEVELS:
        figures = timing(failover, level, poll_seconds=15.0)
        assert set(figures.seconds) == set(ids)
        total = sum(figures.seconds.values())
        assert figures.dag.total <= figures.batch.total <= figures.sequential.total == total
        assert figures.ours is figures.dag  # the plan is eager
        assert figures.critical_path[0] == ["fence.primary"]
        assert figures.critical_path[-1] == ["postcheck"]


def test_a_step_without_figures_fails_by_name() -> None:
    with pytest.raises(KeyError, match=r"'teleport\.now'.*DURATIONS"):
        step_kind("teleport.now")


def test_the_stores_the_failover_moves_and_what_their_recovery_waits_for() -> None:
    failover = failover_plan()
    marks = store_marks(failover)
    assert marks["trading-db"] == ["aurora.promote", "route53.db"]
    # Kafka serves its data class's service (trading signals), which waits for nothing else
    assert marks["event-stream"] == ["kafka.clients", "pods.signals"]
    assert set(marks["app-state"]) == {PODS, "pods.signals", "pods.market-data", "pods.trading"}
    assert "market-ticks" not in marks  # no standby: a failover does not move it
    typical = timing(failover, "typical", poll_seconds=15.0)
    assert ready_at(typical.ours, marks["trading-db"]) == typical.ours.tails["route53.db"]


def test_each_service_serves_after_its_own_stores_and_event_stream_fits_its_rto() -> None:
    failover = failover_plan()
    marks = service_marks(failover)
    assert marks["signals"] == ["pods.signals", "kafka.clients"]
    assert marks["trading"][:4] == [
        "pods.trading",
        "aurora.promote",
        "elasticache.promote",
        "kafka.clients",
    ]
    typical = timing(failover, "typical", poll_seconds=15.0)
    signals = ready_at(typical.ours, marks["signals"])
    assert signals < ready_at(typical.batch, marks["signals"])  # layers: after every promotion
    assert ready_at(typical.ours, store_marks(failover)["event-stream"]) == signals <= 60
    path = path_to_marks(failover, typical, marks["signals"])
    assert path == [
        ["fence.primary"],
        ["measure.lag"],
        ["kafka.clients"],
        ["workloads.signals"],
        ["pods.signals"],
    ]


def test_a_planned_switchover_builds_too() -> None:
    failover = failover_plan(request=FailoverRequest(planned=True))
    assert "switchover" in failover.plan.name
    assert timing(failover, "typical", poll_seconds=15.0).ratio > 1


def _report(command: str, at: datetime, sections: list[Section]) -> Report:
    report = Report(command, 3, False, at, {"cpu": "x"}, {"tool": "1"}, "0.1", "0.2", at)
    report.finished_at = at + timedelta(minutes=2)
    report.sections = sections
    return report


def _section(key: str, value: str) -> Section:
    return Section(
        key,
        f"Title {key}",
        f"Summary of {key}.",
        tables=[Table(["", "x"], [["row", value]])],
        headlines=[f"{key}: {value}"],
    )


def test_an_only_run_replaces_its_sections_and_keeps_the_others(tmp_path: Path) -> None:
    output = tmp_path / "RESULTS.md"
    first = datetime(2026, 1, 1, tzinfo=UTC)
    write(_report("full", first, [_section("a", "1"), _section("b", "2")]), output)

    later = _report("only b", first + timedelta(days=1), [_section("b", "3")])
    kept = previous_sections(output, quick=False)
    later.sections = merged(later.sections, kept, ["a", "b"])
    write(later, output)

    data = json.loads((tmp_path / "results.json").read_text())
    assert [s["headlines"] for s in data["sections"].values()] == [["a: 1"], ["b: 3"]]
    assert data["sections"]["a"]["measured_by"]["command"] == "full"
    assert data["sections"]["b"]["measured_by"]["command"] == "only b"
    text = output.read_text()
    assert "Measured in 2 runs" in text and "Summary of a." in text
    assert "_Measured 2026-01-01 00:00 UTC, N = 3, by `full`._" in text
    assert previous_sections(output, quick=True) == []  # a smoke run never merges into figures


def test_summaries_missing_from_older_results_come_from_the_markdown(tmp_path: Path) -> None:
    output = tmp_path / "RESULTS.md"
    write(_report("full", datetime(2026, 1, 1, tzinfo=UTC), [_section("a", "1")]), output)
    data_file = tmp_path / "results.json"
    data = json.loads(data_file.read_text())
    for item in data["sections"].values():
        del item["summary"], item["measured_by"]
    data_file.write_text(json.dumps(data))
    [section] = previous_sections(output, quick=False)
    assert section.summary == "Summary of a."
    assert section.measured_by is not None and section.measured_by.command == "full"
    assert "Summary of a." in render(_report("x", datetime.now(UTC), [section]))
