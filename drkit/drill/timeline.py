"""The drill's timeline: one self-contained HTML page (no scripts, no network) whose SVG chart
tells the drill's story on one time axis, from its first event to its last:

- a labelled box per scenario, around its phases;
- per scenario, the RTO span: disaster to verified, as long as the measured RTO, with the figure
  and the objective;
- per store restored, the RPO gap: its last good point (the consistent point of the backup
  restored, or the newest write replication kept) to the disaster, with the measured RPO and the
  objective;
- a lane per store, per store's backups, for the region and the drill, a bar per phase; a failed
  phase (a failed backup among them) in the failure colour, its reason on hover;
- a legend of exactly the colours drawn.

Structural ink (text, grid, axis, scenario boxes) is grey or black text and carries no meaning.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from drkit.drill.report import HEADERS, DrillReport, summary_rows, verdict
from drkit.drill.scenarios import ScenarioResult, StoreOutcome
from drkit.drill.world import BACKUP_PHASE, Phase
from stackmodels.durations import format_duration


@dataclass(frozen=True)
class Kind:
    color: str
    label: str


KINDS: dict[str, Kind] = {
    "setup": Kind("#e69f00", "setup, load and teardown (seed, servers, writers)"),
    "backup": Kind("#999999", "backup"),
    "failed": Kind("#000000", "failed (hover for the reason)"),
    "disaster": Kind("#d55e00", "disaster"),
    "restore": Kind("#0072b2", "restore"),
    "failover": Kind("#cc79a7", "failover"),
    "verify": Kind("#009e73", "verify"),
    "swap in": Kind("#56b4e9", "swap in"),
    "rto": Kind("#332288", "RTO: disaster to verified"),
    "rpo": Kind("#f0e442", "RPO gap: last good point to disaster"),
}
"""Every colour the chart gives a meaning, in legend order; the legend shows those drawn."""

INK = {"text": "#222222", "muted": "#666666", "grid": "#dddddd", "frame": "#888888"}
"""The structural colours: text, gridlines, the axis and the scenario boxes."""

WIDTH, LEFT, RIGHT = 1200, 200, 50
LANE, BAR, LINE = 22, 14, 13
CHAR = 6.3
"""Width of a character of the chart's 11px sans-serif text, to keep labels apart."""


def phase_kind(phase: Phase) -> str:
    if phase.outcome != "ok":
        return "failed"
    name = phase.name.lower()
    if name == BACKUP_PHASE:
        return "backup"
    if name == "disaster":
        return "disaster"
    if name.startswith("restore"):
        return "restore"
    if name.startswith("verify"):
        return "verify"
    if name == "swap in":
        return "swap in"
    if "failover" in name:
        return "failover"
    return "setup"


def duration(seconds: float | None) -> str:
    """As the stack config writes durations (``30s``, ``15m``, ``1h58m``; tenths below a minute),
    by the one helper of ``stackmodels.durations``."""
    if seconds is None:
        return "-"
    return format_duration(seconds) if math.isfinite(seconds) else "unbounded"


def _when(text: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(text)
    except (TypeError, ValueError):
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _judged(met: bool | None, otherwise: str = "n/a") -> str:
    if met is None:
        return otherwise
    return "met" if met else "MISSED"


def rto_label(scenario: ScenarioResult) -> str:
    objective = min((s.rto_objective_seconds for s in scenario.stores), default=None)
    return (
        f"RTO {duration(scenario.rto_seconds)} / objective {duration(objective)}: "
        f"{_judged(scenario.rto_met)}"
    )


def rpo_label(store: StoreOutcome, factor: float) -> str:
    measured = duration(store.rpo_seconds)
    if store.rpo_basis != "replication" and factor != 1:
        measured += f" x{factor:g} = {duration(store.rpo_schedule_seconds)}"
    judged = _judged(store.rpo_met, f"n/a, {store.continuous_protection} covers it")
    return f"RPO {measured} / objective {duration(store.rpo_objective_seconds)}: {judged}"


def _esc(text: object) -> str:
    return html.escape(str(text), quote=True)


@dataclass
class _Label:
    """A text label of an annotated row, placed on the first level where it overlaps no other."""

    x: float
    text: str
    level: int = 0

    @property
    def end(self) -> float:
        return self.x + len(self.text) * CHAR


def _place(labels: list[_Label], right: float) -> int:
    """Levels for ``labels`` (kept inside the plot), greedily; returns how many are used."""
    ends: list[float] = []
    for label in sorted(labels, key=lambda label: label.x):
        label.x = max(LEFT, min(label.x, right - len(label.text) * CHAR))
        for level, end in enumerate(ends):
            if label.x >= end + 8:
                label.level, ends[level] = level, label.end
                break
        else:
            label.level = len(ends)
            ends.append(label.end)
    return max(1, len(ends))


@dataclass
class _Span:
    """A bar of an annotated row with its label beside it: after the bar, before it where the
    plot ends, or on the line below where neither fits; on the first level where neither the
    bar nor its label overlaps another span's."""

    x0: float
    x1: float
    text: str
    level: int = 0

    @property
    def width(self) -> float:
        return len(self.text) * CHAR

    @property
    def side(self) -> str:
        if self.x1 + 4 + self.width <= WIDTH - 4:
            return "after"
        if self.x0 - 4 - self.width >= LEFT:
            return "before"
        return "below"

    @property
    def text_x(self) -> float:
        side = self.side
        if side == "after":
            return self.x1 + 4
        if side == "before":
            return self.x0 - 4
        return max(LEFT, min(self.x0, WIDTH - 4 - self.width))

    def occupies(self) -> list[tuple[int, float, float]]:
        """(level offset, from, to) of the bar and its label."""
        side, text = self.side, self.text_x
        if side == "after":
            return [(0, self.x0, text + self.width)]
        if side == "before":
            return [(0, text - self.width, self.x1)]
        return [(0, self.x0, self.x1), (1, text, text + self.width)]


def _stack(spans: list[_Span]) -> int:
    """Levels for ``spans``, greedily in the order of time; returns how many are used."""
    used: dict[int, list[tuple[float, float]]] = {}

    def free(level: int, start: float, end: float) -> bool:
        return all(end + 6 <= a or start >= b + 6 for a, b in used.get(level, []))

    for span in sorted(spans, key=lambda span: span.x0):
        level = 0
        while not all(free(level + o, a, b) for o, a, b in span.occupies()):
            level += 1
        span.level = level
        for offset, start, end in span.occupies():
            used.setdefault(level + offset, []).append((start, end))
    return max(1, len(used))


def _nice_step(span: float) -> float:
    steps = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 43200, 86400]
    return next((s for s in steps if span / s <= 10), span / 10)


def _order_lanes(phases: list[Phase]) -> list[str]:
    """Lanes by first appearance, each store's backup lane right under the store's own."""
    lanes = list(dict.fromkeys(p.lane for p in phases))
    backups = [lane for lane in lanes if lane.startswith(f"{BACKUP_PHASE} ")]
    ordered = [lane for lane in lanes if lane not in backups]
    for lane in backups:
        store = lane.removeprefix(f"{BACKUP_PHASE} ")
        at = ordered.index(store) + 1 if store in ordered else len(ordered)
        ordered.insert(at, lane)
    return ordered


def chart(report: DrillReport) -> tuple[str, list[str]]:
    """The SVG chart and the kinds it draws (for the legend)."""
    factor = float(report.settings.get("time_factor") or 1)
    moments = [m for p in report.phases for m in (p.start, p.end)]
    for scenario in report.scenarios:
        moments += [
            m for m in (_when(scenario.disaster_at), _when(scenario.verified_at)) if m is not None
        ]
    moments += [m for m in (_when(report.started_at), _when(report.finished_at)) if m is not None]
    start, end = min(moments), max(moments)
    span = max((end - start).total_seconds(), 1e-3)
    right = WIDTH - RIGHT

    def x(moment: datetime) -> float:
        seconds = min(max((moment - start).total_seconds(), 0.0), span)
        return LEFT + seconds / span * (right - LEFT)

    drawn: list[str] = []
    body: list[str] = []

    def mark(kind: str, x0: float, x1: float, y: float, extra: str = "", title: str = "") -> str:
        """A bar of one of the legend's kinds (at least 2px wide), its title shown on hover."""
        if kind not in drawn:
            drawn.append(kind)
        stroke = f' stroke="{INK["frame"]}" stroke-width="0.5"' if kind == "rpo" else ""
        x0 = min(x0, right - 2.0)  # an instant at the end of the run stays on the axis
        return (
            f'<rect class="mark" data-kind="{_esc(kind)}" x="{x0:.1f}" y="{y:.1f}" '
            f'width="{max(x1 - x0, 2.0):.1f}" height="{BAR}" fill="{KINDS[kind].color}"'
            f"{stroke}{extra}" + (f"><title>{_esc(title)}</title></rect>" if title else "/>")
        )

    def row_label(y: float, text: str) -> None:
        body.append(
            f'<text class="row-label" x="6" y="{y:.1f}" fill="{INK["text"]}">{_esc(text)}</text>'
        )

    y = 8.0
    # ---- scenarios: a box around each one's phases, its name on top
    windows: list[tuple[ScenarioResult, float, float, _Label]] = []
    for scenario in report.scenarios:
        own = [m for p in report.phases if p.scenario == scenario.name for m in (p.start, p.end)]
        own += [m for m in (_when(scenario.disaster_at), _when(scenario.verified_at)) if m]
        if own:
            x0, x1 = x(min(own)), x(max(own))
            windows.append((scenario, x0, x1, _Label(x0 + 2, scenario.name)))
    levels = _place([w[3] for w in windows], right)
    scenario_top = y
    row_label(y + LINE - 2, "scenarios")
    y += levels * LINE + 10
    # ---- RTO: disaster to verified, one span per scenario
    rto_spans: list[tuple[ScenarioResult, _Span]] = []
    for scenario in report.scenarios:
        disaster = _when(scenario.disaster_at)
        if disaster is None or scenario.rto_seconds is None:
            continue
        x1 = x(disaster + timedelta(seconds=scenario.rto_seconds))
        rto_spans.append((scenario, _Span(x(disaster), x1, rto_label(scenario))))
    levels = _stack([item for _, item in rto_spans])
    row_label(y + BAR - 3, "RTO")
    for scenario, item in rto_spans:
        objective = min((s.rto_objective_seconds for s in scenario.stores), default=None)
        title = (
            f"{scenario.name}: disaster at {scenario.disaster_at}, verified at "
            f"{scenario.verified_at}; RTO {duration(scenario.rto_seconds)} measured, objective "
            f"{duration(objective)} (the tightest of its stores): {_judged(scenario.rto_met)}"
        )
        body.append(
            f'<g class="rto" data-scenario="{_esc(scenario.name)}" '
            f'data-rto-seconds="{scenario.rto_seconds}" data-objective-seconds="{objective}">'
            f"<title>{_esc(title)}</title>{_annotated('rto', item, y, mark)}</g>"
        )
    y += levels * (BAR + 4) + 8
    # ---- RPO: each restored store's last good point to the disaster, a row per store
    stores = list(dict.fromkeys(s.store for c in report.scenarios for s in c.stores))
    for store in stores:
        gaps: list[tuple[ScenarioResult, StoreOutcome, _Span]] = []
        for scenario in report.scenarios:
            disaster = _when(scenario.disaster_at)
            for outcome in scenario.stores:
                if outcome.store != store or disaster is None:
                    continue
                good = min(_when(outcome.recovery_point) or disaster, disaster)
                item = _Span(x(good), x(disaster), rpo_label(outcome, factor))
                gaps.append((scenario, outcome, item))
        levels = _stack([item for *_, item in gaps])
        row_label(y + BAR - 3, f"RPO gap {store}")
        for scenario, outcome, item in gaps:
            title = (
                f"{scenario.name}, {store}: last good point {outcome.recovery_point} "
                f"({outcome.backup_id}) to the disaster at {scenario.disaster_at}; RPO measured "
                f"(newest write lost minus newest write kept) {duration(outcome.rpo_seconds)}"
                + (
                    f", x{factor:g} on the real schedule {duration(outcome.rpo_schedule_seconds)}"
                    if outcome.rpo_basis != "replication" and factor != 1
                    else f" ({outcome.rpo_basis})"
                )
                + f"; objective {duration(outcome.rpo_objective_seconds)}: "
                + _judged(outcome.rpo_met, f"n/a, {outcome.continuous_protection} covers it")
            )
            body.append(
                f'<g class="rpo" data-scenario="{_esc(scenario.name)}" data-store="{_esc(store)}" '
                f'data-rpo-seconds="{outcome.rpo_seconds}" '
                f'data-objective-seconds="{outcome.rpo_objective_seconds}">'
                f"<title>{_esc(title)}</title>{_annotated('rpo', item, y, mark)}</g>"
            )
        y += levels * (BAR + 4) + 8
    # ---- a lane per store, its backups, the region and the drill: a bar per phase
    lanes = _order_lanes(report.phases)
    lanes_top = y
    for index, lane in enumerate(lanes):
        top = lanes_top + index * LANE
        row_label(top + BAR - 2, lane)
        body.append(
            f'<line x1="{LEFT}" x2="{right}" y1="{top + LANE - 3:.1f}" y2="{top + LANE - 3:.1f}" '
            f'stroke="{INK["grid"]}"/>'
        )
    for phase in report.phases:
        top = lanes_top + lanes.index(phase.lane) * LANE
        seconds = (phase.end - phase.start).total_seconds()
        title = f"{phase.lane}: {phase.name} {duration(seconds)} from {phase.start.isoformat()}"
        if phase.outcome != "ok":
            title = (
                f"{phase.lane}: {phase.name} FAILED after {duration(seconds)} at "
                f"{phase.start.isoformat()}: {phase.reason or 'no reason recorded'}"
            )
        body.append(
            mark(
                phase_kind(phase),
                x(phase.start),
                x(phase.end),
                top,
                f' data-lane="{_esc(phase.lane)}" data-phase="{_esc(phase.name)}"'
                f' data-scenario="{_esc(phase.scenario)}"',
                title,
            )
        )
    y = lanes_top + len(lanes) * LANE + 4
    # ---- the scenario boxes, from their labels down through the lanes
    for scenario, x0, x1, label in windows:
        body.append(
            f'<g class="scenario" data-scenario="{_esc(scenario.name)}">'
            f"<title>{_esc(scenario.name)}: {_esc(scenario.description)} "
            f"({_esc(scenario.status)})</title>"
            f'<rect x="{x0:.1f}" y="{scenario_top:.1f}" width="{max(x1 - x0, 2.0):.1f}" '
            f'height="{y - scenario_top:.1f}" fill="none" stroke="{INK["frame"]}" '
            'stroke-dasharray="4 3"/>'
            f'<text class="scenario-label" x="{label.x:.1f}" '
            f'y="{scenario_top + LINE * (label.level + 1) - 2:.1f}" fill="{INK["text"]}" '
            f'font-weight="bold">{_esc(label.text)}</text></g>'
        )
    # ---- the axis: the whole run, first event to last
    body.append(axis(start, end, x, y, right))
    height = y + 44
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="timeline" width="{WIDTH}" '
        f'height="{height:.0f}" font-family="sans-serif" font-size="11">' + "".join(body) + "</svg>"
    )
    return svg, [kind for kind in KINDS if kind in drawn]


def _annotated(
    kind: str, span: _Span, top: float, mark: Callable[[str, float, float, float], str]
) -> str:
    """A span's bar on its level of the row starting at ``top``, its label beside it."""
    y = top + span.level * (BAR + 4)
    anchor = "end" if span.side == "before" else "start"
    text_y = y + BAR - 3 + (BAR + 4 if span.side == "below" else 0)
    return (
        mark(kind, span.x0, span.x1, y)
        + f'<text x="{span.text_x:.1f}" y="{text_y:.1f}" text-anchor="{anchor}" '
        f'fill="{INK["text"]}">{_esc(span.text)}</text>'
    )


def axis(
    start: datetime, end: datetime, x: Callable[[datetime], float], y: float, right: float
) -> str:
    span = (end - start).total_seconds()
    step = _nice_step(max(span, 1e-3))
    parts = [
        f'<g class="axis" data-start="{start.isoformat()}" data-end="{end.isoformat()}" '
        f'data-seconds="{span:.3f}">',
        f'<line class="axis-line" x1="{LEFT}" x2="{right}" y1="{y:.1f}" y2="{y:.1f}" '
        f'stroke="{INK["frame"]}"/>',
    ]
    ticks = [i * step for i in range(int(span // step) + 1)]
    ticks = [t for t in ticks if x(end) - x(start + timedelta(seconds=t)) >= 40] + [span]
    for offset in ticks:
        tx = x(start + timedelta(seconds=offset))
        parts.append(
            f'<line x1="{tx:.1f}" x2="{tx:.1f}" y1="{y:.1f}" y2="{y + 5:.1f}" '
            f'stroke="{INK["frame"]}"/><text class="tick" x="{tx:.1f}" y="{y + 17:.1f}" '
            f'fill="{INK["muted"]}" text-anchor="middle">{_esc(duration(offset))}</text>'
        )
    parts.append(
        f'<text x="{LEFT}" y="{y + 32:.1f}" fill="{INK["muted"]}">start '
        f"{_esc(start.isoformat(timespec='seconds'))}</text>"
        f'<text x="{right}" y="{y + 32:.1f}" fill="{INK["muted"]}" text-anchor="end">end '
        f"{_esc(end.isoformat(timespec='seconds'))}, {_esc(duration(span))} in all</text></g>"
    )
    return "".join(parts)


STYLE = (
    "body{font-family:sans-serif;margin:20px;color:#222222}"
    "td,th{border:1px solid #cccccc;padding:3px 8px;font-size:12px}"
    "table{border-collapse:collapse}h1{font-size:20px}"
    ".legend{list-style:none;padding:0;margin:8px 0}"
    ".legend li{display:inline-block;margin-right:14px;font-size:12px}"
    ".legend svg{vertical-align:middle;margin-right:4px}"
)


def timeline_html(report: DrillReport) -> str:
    """The whole page: the verdict, the legend, the chart, the failed backups, the objectives."""
    factor = report.settings.get("time_factor")
    head = (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>DR drill timeline</title><style>{STYLE}</style></head><body>"
        f'<h1 class="verdict">DR drill: {_esc(verdict(report))}</h1>'
        f"<p>{_esc(report.started_at)} to {_esc(report.finished_at)} "
        f"({_esc(duration(report.seconds))})."
        + (
            f" Backup schedules ran x{float(factor):g} faster: an RPO measured here is multiplied "
            "by that to compare with its objective; RTO is real time."
            if factor
            else ""
        )
        + " Hover over a bar for its times and, if it failed, the reason.</p>"
    )
    if not report.phases:
        return head + "<p>No phases recorded.</p></body></html>"
    svg, kinds = chart(report)
    legend = "".join(
        f'<li class="legend-entry" data-kind="{_esc(kind)}"><svg width="16" height="12">'
        f'<rect class="swatch" width="16" height="12" fill="{KINDS[kind].color}"/></svg>'
        f"{_esc(KINDS[kind].label)}</li>"
        for kind in kinds
    )
    failed = "".join(
        f"<li><b>{_esc(b.store)}</b> at {_esc(b.started_at)}: {_esc(b.reason)}</li>"
        for b in report.failed_backups
    )
    rows = "".join(
        "<tr>" + "".join(f"<td>{_esc(cell)}</td>" for cell in row) + "</tr>"
        for row in summary_rows(report)
    )
    return (
        head
        + f'<ul class="legend">{legend}</ul>{svg}'
        + (f'<h2>Failed backups</h2><ul class="failed-backups">{failed}</ul>' if failed else "")
        + "<h2>Objectives</h2><table><tr>"
        + "".join(f"<th>{_esc(h)}</th>" for h in HEADERS)
        + f"</tr>{rows}</table></body></html>"
    )
