"""The drill's report: a summary table for the terminal, Markdown and JSON for the record, and a
self-contained HTML page with the timeline of every phase (``drkit.drill.timeline``)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from drkit.drill.scenarios import ScenarioResult
from drkit.drill.world import BACKUP_PHASE, Phase
from drkit.human import table
from stackmodels.durations import format_duration


@dataclass(frozen=True)
class FailedBackup:
    store: str
    started_at: str
    reason: str


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

    @property
    def failed_backups(self) -> list[FailedBackup]:
        """Every backup run that failed during the drill, scheduled or a scenario's own, oldest
        first: the scenarios may all pass without them, the record must not hide them."""
        return [
            FailedBackup(p.lane.removeprefix(f"{BACKUP_PHASE} "), p.start.isoformat(), p.reason)
            for p in sorted(self.phases, key=lambda p: p.start)
            if p.name == BACKUP_PHASE and p.outcome != "ok"
        ]

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "verdict": verdict(self),
            "failed_backups": [asdict(f) for f in self.failed_backups],
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
                    "scenario": p.scenario,
                }
                | ({"reason": p.reason} if p.outcome != "ok" else {})
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
    return "\n".join(lines) + f"\n\n{verdict(report)}\n"


def verdict(report: DrillReport) -> str:
    """The drill's one-line verdict. A failed backup is named with its reason even when every
    scenario passed: the next disaster would restore from an older backup than the schedule
    promises."""
    failed = report.failed_backups
    head = "PASSED" if report.ok else "FAILED"
    if failed:
        head += f" with {_failed_backups(failed)}"
    tail = (
        "every scenario restored, verified and met its objectives"
        if report.ok
        else "see the rows above"
    )
    return f"{head}{'; ' if failed else ': '}{tail}"


def _failed_backups(failed: list[FailedBackup]) -> str:
    """``3 failed backups: event-stream x2 (last: OSError: ...), trading-db (...)``: each store
    once, with its count and its last reason (the full list is in the reports)."""
    by_store: dict[str, list[FailedBackup]] = {}
    for backup in failed:
        by_store.setdefault(backup.store, []).append(backup)
    listing = ", ".join(
        f"{store} ({_first_line(runs[-1].reason) or 'no reason recorded'})"
        if len(runs) == 1
        else f"{store} x{len(runs)} (last: {_first_line(runs[-1].reason) or 'no reason recorded'})"
        for store, runs in by_store.items()
    )
    return f"{len(failed)} failed backup{'s' if len(failed) > 1 else ''}: {listing}"


def _first_line(text: str, limit: int = 200) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= limit else line[: limit - 3] + "..."


def markdown(report: DrillReport) -> str:
    lines = [
        "# DR drill",
        "",
        f"{report.started_at} to {report.finished_at} ({report.seconds:.0f}s); "
        f"**{verdict(report)}**.",
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
    if report.failed_backups:
        lines.append("")
    for backup in report.failed_backups:
        lines.append(f"- {backup.store} backup at {backup.started_at} failed: {backup.reason}")
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
        for refusal in scenario.refusals:
            lines.append(f"  - attacker: {refusal}")
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


def write(report: DrillReport, directory: Path) -> dict[str, Path]:
    from drkit.drill.timeline import timeline_html  # it draws from this module's figures

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
