"""The drill's timeline, opened in a real browser (headless Chromium, one launch for the module):
a drill result of two scenarios and a failed backup, written as the drill writes it, then the
screenshot checked and the DOM Chromium built asserted: a legend of exactly the colours drawn,
each scenario labelled, the RTO spans and RPO gaps with their figures, the failed backup's
reason on hover, an axis over the whole run. And the reason of a backup that really failed, on
its schedule, carried into ``drill.json`` and the verdict."""

from __future__ import annotations

import io
import json
import os
import shutil
import struct
import subprocess
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from drkit.context import OpsContext
from drkit.drill import report as drill_report
from drkit.drill.report import DrillReport
from drkit.drill.run import _backup_figures
from drkit.drill.scenarios import ScenarioResult, StoreOutcome
from drkit.drill.scheduler import CompressedScheduler
from drkit.drill.timeline import INK, KINDS
from drkit.drill.verify import Verification
from drkit.drill.world import DrillWorld, Phase
from drkit.local.environment import LocalEnvironment
from drkit.local.redis import LocalRedis
from stackmodels import StackConfig
from tests.integration.ops_helpers import CACHE, attach_cache

pytestmark = pytest.mark.integration

T0 = datetime(2026, 12, 3, 10, 0, 0, tzinfo=UTC)
WINDOW = (1280, 1100)
KAFKA_REASON = (
    "KafkaException: KafkaError{code=_TRANSPORT,val=-195,"
    'str="Failed to get metadata: Local: Broker transport failure"}'
)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def phase(lane: str, name: str, start: float, end: float, scenario: str = "", **kw: str) -> Phase:
    return Phase(lane, name, at(start), at(end), scenario=scenario, **kw)


def restored(
    store: str,
    data_class: str,
    backup_at: float,
    counts: tuple[int, int],
    rpo: tuple[float, float, float],
    rto: tuple[float, float],
    protection: str | None,
) -> StoreOutcome:
    """A store restored from its backup of ``backup_at`` (its recovery point half a second
    later), ``counts`` (writes restored, writes lost), ``rpo`` (measured, of its schedule,
    objective), ``rto`` (measured, objective)."""
    return StoreOutcome(
        store=store,
        data_class=data_class,
        backup_id=f"{at(backup_at):%Y%m%dT%H%M%SZ}-{store}",
        recovery_point=at(backup_at + 0.5).isoformat(),
        verification=Verification(expected=counts[0], restored=counts[0], lost_writes=counts[1]),
        rpo_seconds=rpo[0],
        rpo_schedule_seconds=rpo[1],
        rpo_objective_seconds=rpo[2],
        rto_objective_seconds=rto[1],
        continuous_protection=protection,
        rto_seconds=rto[0],
    )


def passed(
    name: str, what: str, disaster: float, verified: float, store: StoreOutcome
) -> ScenarioResult:
    """A passed scenario of one store: its RTO is the store's."""
    return ScenarioResult(
        name,
        what,
        status="passed",
        disaster_at=at(disaster).isoformat(),
        verified_at=at(verified).isoformat(),
        rto_seconds=store.rto_seconds,
        stores=[store],
    )


def drill_result() -> DrillReport:
    """Two scenarios, backups on their schedules, one of them failed (event-stream at 40s): the
    Kafka restore had to use the backup of 10s, which the RPO gap shows."""
    corruption = passed(
        "database-corruption",
        "orders deleted and accounts overwritten in trading-db; restore beside it, swap in",
        50.2,
        61,
        restored(
            "trading-db", "user-data", 30, (420, 37), (19.7, 7092.0, 14400.0), (10.8, 900.0), None
        ),
    )
    kafka = passed(
        "kafka-data-loss",
        "topics deleted; restore them from the full + incremental chain",
        80,
        93,
        restored(
            "event-stream",
            "trading-signals",
            9.5,
            (900, 610),
            (69.8, 25128.0, 60.0),
            (13.0, 300.0),
            "msk-replicator",
        ),
    )
    phases = [
        phase("drill", "seed", 0, 8),
        phase("backup trading-db", "backup", 8, 10),
        phase("backup event-stream", "backup", 9, 10),
        phase("backup session-cache", "backup", 10, 10.5),
        phase("backup trading-db", "backup", 30, 31.5),
        phase("backup event-stream", "backup", 40, 45, outcome="failed", reason=KAFKA_REASON),
        phase("trading-db", "disaster", 50, 50.3, "database-corruption"),
        phase("trading-db", "restore", 50.3, 58, "database-corruption"),
        phase("trading-db", "verify", 58, 60, "database-corruption"),
        phase("trading-db", "swap in", 60, 61, "database-corruption"),
        phase("backup trading-db", "backup", 70, 72),
        phase("event-stream", "disaster", 79.9, 80.1, "kafka-data-loss"),
        phase("event-stream", "restore", 80.1, 90, "kafka-data-loss"),
        phase("event-stream", "verify", 90, 93, "kafka-data-loss"),
    ]
    return DrillReport(
        started_at=T0.isoformat(),
        finished_at=at(100).isoformat(),
        seconds=100.0,
        settings={"time_factor": 360.0, "scenarios": [corruption.name, kafka.name]},
        backups={
            "event-stream": {"runs": 2, "failed": 1, "mean_seconds": 1.0, "last_size_bytes": 9},
        },
        scenarios=[corruption, kafka],
        phases=phases,
    )


# ---- the DOM, as Chromium serialises it -----------------------------------------------------


@dataclass
class Node:
    tag: str
    attrs: dict[str, str]
    children: list[Node] = field(default_factory=list)
    parent: Node | None = None
    texts: list[str] = field(default_factory=list)

    def text(self) -> str:
        return "".join(self.texts) + "".join(c.text() for c in self.children)

    def iter(self) -> list[Node]:
        return [self, *(n for c in self.children for n in c.iter())]

    def find(self, tag: str = "", cls: str = "", **attrs: str) -> list[Node]:
        return [
            n
            for n in self.iter()
            if (not tag or n.tag == tag)
            and (not cls or cls in n.attrs.get("class", "").split())
            and all(n.attrs.get(k.replace("_", "-")) == v for k, v in attrs.items())
        ]

    def title(self) -> str:
        return next((c.text() for c in self.children if c.tag == "title"), "")


VOID = {"meta", "br", "img", "input", "link", "hr"}


class TreeBuilder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#document", {})
        self.current = self.root

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, {k: v or "" for k, v in attrs}, parent=self.current)
        self.current.children.append(node)
        if tag not in VOID:
            self.current = node

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.current.children.append(Node(tag, {k: v or "" for k, v in attrs}, parent=self.current))

    def handle_endtag(self, tag: str) -> None:
        node: Node | None = self.current
        while node is not None and node.tag != tag:
            node = node.parent
        if node is not None and node.parent is not None:
            self.current = node.parent

    def handle_data(self, data: str) -> None:
        self.current.texts.append(data)


def chromium() -> list[str]:
    binary = shutil.which("chromium") or "/usr/bin/chromium"
    assert Path(binary).exists(), "chromium is not installed: scripts/bootstrap.sh installs it"
    # Chromium refuses to run as root with its sandbox (CI's container runs as root)
    return [binary, *(["--no-sandbox"] if os.geteuid() == 0 else [])]


@dataclass
class Rendered:
    report: DrillReport
    paths: dict[str, Path]
    dom: Node
    screenshot: Path
    chart: Node


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Rendered:
    directory = tmp_path_factory.mktemp("drill-reports")
    report = drill_result()
    paths = drill_report.write(report, directory)
    screenshot = directory / "timeline.png"
    done = subprocess.run(
        [
            *chromium(),
            "--headless",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--hide-scrollbars",
            "--no-first-run",
            f"--user-data-dir={directory / 'profile'}",
            f"--window-size={WINDOW[0]},{WINDOW[1]}",
            f"--screenshot={screenshot}",
            "--dump-dom",
            paths["timeline"].as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    builder = TreeBuilder()
    builder.feed(done.stdout)
    (chart,) = builder.root.find("svg", cls="timeline")
    return Rendered(report, paths, builder.root, screenshot, chart)


def test_screenshot_is_taken_at_the_window_size(rendered: Rendered) -> None:
    png = rendered.screenshot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", png[16:24]) == WINDOW  # IHDR: width, height
    assert len(png) > 10_000  # a drawn chart, not a blank page


def test_the_legend_holds_exactly_the_colours_drawn(rendered: Rendered) -> None:
    legend = {
        entry.attrs["data-kind"]: entry.find("rect", cls="swatch")[0].attrs["fill"]
        for entry in rendered.dom.find("li", cls="legend-entry")
    }
    marks = rendered.chart.find(cls="mark")
    assert {m.attrs["fill"] for m in marks} == set(legend.values())
    assert {m.attrs["data-kind"] for m in marks} == set(legend)
    for mark in marks:
        assert legend[mark.attrs["data-kind"]] == mark.attrs["fill"]
    # no unexplained orange or black: every colour anywhere in the chart is in the legend, or
    # the grey and black of text, grid, axis and scenario boxes
    used = {
        n.attrs[a]
        for n in rendered.chart.iter()
        for a in ("fill", "stroke")
        if a in n.attrs and n.attrs[a] != "none"
    }
    assert used <= set(legend.values()) | set(INK.values())
    # the failure colour is explained, and the setup bars (seed) are
    assert {"failed", "setup", "backup", "disaster", "restore", "verify", "rto", "rpo"} <= set(
        legend
    )
    assert legend["failed"] == KINDS["failed"].color


def test_every_scenario_is_labelled_around_its_phases(rendered: Rendered) -> None:
    boxes = {g.attrs["data-scenario"]: g for g in rendered.chart.find("g", cls="scenario")}
    assert list(boxes) == ["database-corruption", "kafka-data-loss"]
    for name, box in boxes.items():
        (label,) = box.find("text", cls="scenario-label")
        assert label.text() == name
        (frame,) = box.find("rect")
        x0, width = float(frame.attrs["x"]), float(frame.attrs["width"])
        for bar in rendered.chart.find("rect", cls="mark", data_scenario=name):
            assert x0 - 0.2 <= float(bar.attrs["x"]) <= x0 + width + 0.2


def test_rto_spans_run_from_disaster_to_verified_with_the_objective(rendered: Rendered) -> None:
    spans = {g.attrs["data-scenario"]: g for g in rendered.chart.find("g", cls="rto")}
    assert set(spans) == {"database-corruption", "kafka-data-loss"}
    assert "RTO 10.8s / objective 15m: met" in spans["database-corruption"].text()
    assert "RTO 13s / objective 5m: met" in spans["kafka-data-loss"].text()
    scale = _scale(rendered)
    for scenario in rendered.report.scenarios:
        (bar,) = spans[scenario.name].find("rect", cls="mark", data_kind="rto")
        assert float(bar.attrs["width"]) == pytest.approx(scenario.rto_seconds * scale, abs=0.2)
        assert scenario.disaster_at in spans[scenario.name].title()


def test_rpo_gaps_run_from_the_last_good_point_to_the_disaster(rendered: Rendered) -> None:
    gaps = {g.attrs["data-store"]: g for g in rendered.chart.find("g", cls="rpo")}
    assert set(gaps) == {"trading-db", "event-stream"}
    assert "RPO 19.7s x360 = 1h58m / objective 4h: met" in gaps["trading-db"].text()
    assert "RPO 1m10s x360 = 6h59m / objective 1m: n/a, msk-replicator covers it" in (
        gaps["event-stream"].text()
    )
    scale = _scale(rendered)
    # event-stream's last good point is the backup of 10s (the one of 40s failed): 70s of gap
    (bar,) = gaps["event-stream"].find("rect", cls="mark", data_kind="rpo")
    assert float(bar.attrs["width"]) == pytest.approx(70 * scale, abs=0.2)
    assert "last good point 2026-12-03T10:00:10+00:00" in gaps["event-stream"].title()


def test_the_failed_backup_gives_its_reason_on_hover(rendered: Rendered) -> None:
    (failed,) = rendered.chart.find("rect", cls="mark", data_kind="failed")
    assert failed.attrs["data-lane"] == "backup event-stream"
    assert failed.title().endswith(KAFKA_REASON)
    assert "FAILED after 5s" in failed.title()
    (listed,) = rendered.dom.find("ul", cls="failed-backups")
    assert KAFKA_REASON in listed.text()
    verdict = rendered.dom.find("h1", cls="verdict")[0].text()
    assert verdict == (
        f"DR drill: PASSED with 1 failed backup: event-stream ({KAFKA_REASON}); "
        "every scenario restored, verified and met its objectives"
    )


def test_the_axis_covers_the_whole_run(rendered: Rendered) -> None:
    (axis,) = rendered.chart.find("g", cls="axis")
    assert axis.attrs["data-start"] == rendered.report.started_at
    assert axis.attrs["data-end"] == rendered.report.finished_at
    (line,) = axis.find("line", cls="axis-line")
    x1, x2 = float(line.attrs["x1"]), float(line.attrs["x2"])
    ticks = [t.text() for t in axis.find("text", cls="tick")]
    assert ticks[0] == "0s" and ticks[-1] == "1m40s"
    for bar in rendered.chart.find(cls="mark"):
        assert (
            x1 <= float(bar.attrs["x"])
            and float(bar.attrs["x"]) + float(bar.attrs["width"]) <= x2 + 0.2
        )


def test_drill_json_carries_the_reason_and_the_verdict(rendered: Rendered) -> None:
    body = json.loads(rendered.paths["json"].read_text())
    assert body["ok"] is True
    assert body["failed_backups"] == [
        {"store": "event-stream", "started_at": at(40).isoformat(), "reason": KAFKA_REASON}
    ]
    assert body["verdict"].startswith("PASSED with 1 failed backup: event-stream (KafkaException")
    (failed,) = [p for p in body["timeline"] if p["outcome"] == "failed"]
    assert failed["reason"] == KAFKA_REASON and failed["lane"] == "backup event-stream"
    assert "PASSED with 1 failed backup" in rendered.paths["markdown"].read_text()


def _scale(rendered: Rendered) -> float:
    """Pixels per second of the axis."""
    (axis,) = rendered.chart.find("g", cls="axis")
    (line,) = axis.find("line", cls="axis-line")
    return (float(line.attrs["x2"]) - float(line.attrs["x1"])) / float(axis.attrs["data-seconds"])


# ---- a backup that really fails on its schedule ---------------------------------------------


def test_a_scheduled_backup_failure_carries_its_reason_into_the_record(
    project: Path, tmp_path: Path
) -> None:
    """session-cache points at a Redis that is not running: the scheduled backup fails, and its
    reason reaches the timeline's phase, the backup figures, drill.json and the verdict."""
    attach_cache(project, LocalRedis(tmp_path / "down"))  # never started: connection refused
    config = StackConfig.for_stack("prod", project)
    ctx = OpsContext.load("local", project_dir=project)
    world = DrillWorld(config, LocalEnvironment(tmp_path / "unused"), ctx, 3600.0, io.StringIO())
    world.scenario = "redis-loss"  # a scenario playing does not claim the schedule's backups
    scheduler = CompressedScheduler({CACHE: "* * * * *"}, world.backup, factor=3600.0)
    world.scheduler = scheduler
    scheduler.start()
    try:
        deadline = time.monotonic() + 30
        while not scheduler.runs and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        scheduler.stop()
    run = scheduler.runs[0]
    assert run.manifest is None and "Connection refused" in run.error, run.error
    (failed, *_) = [p for p in world.phases if p.outcome == "failed"]
    assert failed.lane == f"backup {CACHE}" and failed.scenario == ""
    assert failed.reason == run.error
    report = DrillReport(
        started_at=world.started.isoformat(), phases=world.phases, backups=_backup_figures(world)
    )
    paths = drill_report.write(report, tmp_path / "reports")
    body: dict[str, Any] = json.loads(paths["json"].read_text())
    assert body["backups"][CACHE]["failures"][0]["reason"] == run.error
    assert body["failed_backups"][0] == {
        "store": CACHE,
        "started_at": failed.start.isoformat(),
        "reason": run.error,
    }
    failures = len(world.phases)  # every run of the schedule failed
    assert body["verdict"] == (
        f"FAILED with {failures} failed backup{'s' if failures > 1 else ''}: {CACHE} "
        + (f"x{failures} (last: " if failures > 1 else "(")
        + f"{world.phases[-1].reason}); see the rows above"
    )
    page = paths["timeline"].read_text()
    assert "Connection refused" in page
