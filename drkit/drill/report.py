"""The drill's report: a summary table for the terminal, Markdown and JSON for the record, and a
self-contained HTML page with the timeline of every phase (no scripts, no network)."""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from drkit.drill.scenarios import ScenarioResult
from drkit.drill.world import Phase
from drkit.human import table
from stackmodels.durations import format_duration


@dataclass
class DrillReport:
    started_at: str
    finished_at: str = ""
    seconds: float = 0.0
    settings: dict[str, Any] = field(default_factory=dict)
    seeded: dict[str, Any] = field(default_factory=dict)
    backups: dict[str, Any] = field(default_factory=dict)
    writes: dict[str, Any] = field(default_factory=dict)
    scenarios: list[ScenarioResult] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    phases: list[Phase] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.scenarios) and all(s.status == "passed" for s in self.scenarios)

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "seconds": self.seconds,
            "settings": self.settings,
            "seeded": self.seeded,
            "backups": self.backups,
            "writes": self.writes,
            "scenarios": [s.as_dict() for s in self.scenarios],
            "skipped": self.skipped,
            "timeline": [
                {
                    "lane": p.lane,
                    "name": p.name,
                    "start": p.start.isoformat(),
                    "end": p.end.isoformat(),
                    "outcome": p.outcome,
                }
                for p in self.phases
            ],
        }


def _seconds(value: float | None) -> str:
    return "-" if value is None else format_duration(value)


def _verdict(met: bool | None) -> str:
    return {True: "met", False: "MISSED", None: "n/a"}[met]


def summary_rows(report: DrillReport) -> list[list[str]]:
    rows = []
    for scenario in report.scenarios:
        for store in scenario.stores:
            check = store.verification
            if store.rpo_basis == "replication":
                rpo = (
                    f"{_seconds(store.rpo_seconds)} / {_seconds(store.rpo_objective_seconds)} "
                    f"{_verdict(store.rpo_met)} ({store.continuous_protection}, "
                    f"{check.lost_writes} writes lost)"
                )
            elif store.continuous_protection:
                alone = store.rpo_schedule_seconds <= store.rpo_objective_seconds
                rpo = (
                    f"backups alone {_seconds(store.rpo_schedule_seconds)} / "
                    f"{_seconds(store.rpo_objective_seconds)} "
                    + ("met" if alone else "not met: continuous protection needed")
                    + f" ({store.continuous_protection})"
                )
            else:
                rpo = (
                    f"{_seconds(store.rpo_schedule_seconds)} "
                    f"/ {_seconds(store.rpo_objective_seconds)} {_verdict(store.rpo_met)}"
                )
            rows.append(
                [
                    scenario.name,
                    store.store,
                    f"{_seconds(store.rto_seconds)} / {_seconds(store.rto_objective_seconds)} "
                    f"{_verdict(store.rto_met)}",
                    rpo,
                    f"{check.restored}/{check.expected}"
                    + (
                        f" ({check.missing} missing, {check.unexpected} unexpected, "
                        f"{check.mismatched} differ)"
                        if not check.ok
                        else ""
                    ),
                    scenario.status.upper() if scenario.status != "passed" else "passed",
                ]
            )
    return rows


HEADERS = [
    "scenario",
    "store",
    "RTO measured / objective",
    "RPO (schedule time) / objective",
    "verified writes",
    "result",
]


def terminal_table(report: DrillReport) -> str:
    lines = table(HEADERS, summary_rows(report))
    for name, reason in report.skipped.items():
        lines.append(f"{name}: skipped ({reason})")
    verdict = (
        "PASSED: every scenario restored, verified and met its objectives"
        if report.ok
        else "FAILED: see the rows above"
    )
    return "\n".join(lines) + f"\n\n{verdict}\n"


def markdown(report: DrillReport) -> str:
    lines = [
        "# DR drill",
        "",
        f"{report.started_at} to {report.finished_at} ({report.seconds:.0f}s); "
        f"**{'passed' if report.ok else 'FAILED'}**.",
        "",
        f"Schedules compressed x{report.settings.get('time_factor')}: RPO measured in the drill "
        "is multiplied by that factor to compare with the objectives; RTO is real time.",
        "",
        "| " + " | ".join(HEADERS) + " |",
        "| " + " | ".join("---" for _ in HEADERS) + " |",
    ]
    lines += ["| " + " | ".join(row) + " |" for row in summary_rows(report)]
    lines += [
        "",
        "## Backups taken",
        "",
        "| store | runs | failed | mean seconds | last size |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for name, figures in report.backups.items():
        lines.append(
            f"| {name} | {figures['runs']} | {figures['failed']} | "
            f"{figures['mean_seconds']} | {figures['last_size_bytes']} |"
        )
    lines += ["", "## Scenarios", ""]
    for scenario in report.scenarios:
        lines.append(
            f"- **{scenario.name}**: {scenario.description}. Disaster at "
            f"{scenario.disaster_at}, verified at {scenario.verified_at}"
            + (
                f"; skew between stores {scenario.skew_seconds}s"
                if scenario.skew_seconds is not None
                else ""
            )
            + "."
        )
        for store in scenario.stores:
            check = store.verification
            lines.append(
                f"  - {store.store}: backup {store.backup_id} (consistent at "
                f"{store.recovery_point}); {check.restored} of {check.expected} writes "
                f"restored and identical, {check.lost_writes} lost to the RPO window "
                f"({store.rpo_seconds}s real)" + (f"; {check.examples}" if check.examples else "")
            )
    for name, reason in report.skipped.items():
        lines.append(f"- **{name}**: skipped: {reason}")
    return "\n".join(lines) + "\n"


COLORS = {
    "disaster": "#d9534f",
    "restore": "#0275d8",
    "restore (DR)": "#0275d8",
    "verify": "#5cb85c",
    "swap in": "#5bc0de",
    "backup": "#999999",
}


def timeline_html(report: DrillReport) -> str:
    """An SVG timeline: one lane per store (and the region), a bar per phase."""
    if not report.phases:
        return "<!doctype html><title>DR drill timeline</title><p>No phases recorded.</p>"
    start = min(p.start for p in report.phases)
    end = max(p.end for p in report.phases)
    span = max((end - start).total_seconds(), 1e-3)
    lanes = list(dict.fromkeys(p.lane for p in report.phases))
    width, left, lane_height = 1100, 180, 26
    height = 40 + lane_height * len(lanes) + 30

    def x(moment: datetime) -> float:
        return left + (moment - start).total_seconds() / span * (width - left - 20)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        'font-family="sans-serif" font-size="11">'
    ]
    for index, lane in enumerate(lanes):
        y = 30 + index * lane_height
        parts.append(f'<text x="5" y="{y + 15}">{html.escape(lane)}</text>')
        parts.append(
            f'<line x1="{left}" x2="{width - 20}" y1="{y + 20}" y2="{y + 20}" stroke="#eee"/>'
        )
    for phase in report.phases:
        y = 30 + lanes.index(phase.lane) * lane_height
        x0, x1 = x(phase.start), max(x(phase.end), x(phase.start) + 2)
        color = "#000" if phase.outcome != "ok" else COLORS.get(phase.name, "#f0ad4e")
        seconds = (phase.end - phase.start).total_seconds()
        parts.append(
            f'<rect x="{x0:.1f}" y="{y + 4}" width="{x1 - x0:.1f}" height="16" '
            f'fill="{color}"><title>{html.escape(phase.lane)}: '
            f"{html.escape(phase.name)} {seconds:.2f}s</title></rect>"
        )
    for tick in range(0, int(span) + 1, max(1, int(span) // 10)):
        tx = left + tick / span * (width - left - 20)
        parts.append(f'<text x="{tx:.1f}" y="{height - 8}" fill="#666">{tick}s</text>')
    parts.append("</svg>")
    legend = " ".join(
        f'<span style="background:{c};color:#fff;padding:1px 5px">{n}</span>'
        for n, c in COLORS.items()
        if n != "restore (DR)"
    )
    rows = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>"
        for row in summary_rows(report)
    )
    head = "".join(f"<th>{html.escape(h)}</th>" for h in HEADERS)
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>DR drill timeline</title>"
        "<style>body{font-family:sans-serif;margin:20px}td,th{border:1px solid #ccc;"
        "padding:3px 8px;font-size:12px}table{border-collapse:collapse}</style></head><body>"
        f"<h1>DR drill: {'passed' if report.ok else 'FAILED'}</h1>"
        f"<p>{html.escape(report.started_at)}, {report.seconds:.0f}s. Legend: {legend}</p>"
        f"{''.join(parts)}<h2>Objectives</h2><table><tr>{head}</tr>{rows}</table></body></html>"
    )


def write(report: DrillReport, directory: Path) -> dict[str, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = {
        "json": directory / "drill.json",
        "markdown": directory / "drill.md",
        "timeline": directory / "drill-timeline.html",
    }
    paths["json"].write_text(json.dumps(report.as_dict(), indent=2, default=str) + "\n")
    paths["markdown"].write_text(markdown(report))
    paths["timeline"].write_text(timeline_html(report))
    return paths
