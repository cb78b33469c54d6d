"""Sections of results and the two files they become: ``RESULTS.md`` for people and
``results.json`` (every run's raw values) for anyone who wants to check the arithmetic.

Every figure is printed as ``median (min-max)`` over the runs; a ratio is of medians and says
which way is better, so "3.1x" never needs the reader to guess whether more is good.
"""

from __future__ import annotations

import json
import math
import os
import platform
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from benchmarks.measure import Figure, Sample

MB = 1_000_000
MiB = 1024 * 1024


@dataclass
class Runs:
    """One pipeline measured several times, with per-run extras (bytes stored, records...)."""

    label: str
    command: str
    samples: list[Sample] = field(default_factory=list)
    extras: dict[str, list[float]] = field(default_factory=dict)

    def add(self, sample: Sample, **extras: float) -> None:
        self.samples.append(sample)
        for name, value in extras.items():
            self.extras.setdefault(name, []).append(float(value))

    @property
    def seconds(self) -> Figure:
        return Figure([s.seconds for s in self.samples])

    @property
    def cpu(self) -> Figure:
        return Figure([s.cpu_seconds for s in self.samples])

    @property
    def rss(self) -> Figure:
        return Figure([float(s.peak_rss) for s in self.samples])

    def extra(self, name: str) -> Figure:
        return Figure(list(self.extras.get(name, [])))

    def rate(self, amount: float, scale: float = 1.0) -> Figure:
        """``amount / scale`` per second of each run (throughput: MB/s, records/s)."""
        return Figure([amount / scale / s.seconds for s in self.samples if s.seconds > 0])

    def as_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "command": self.command,
            "seconds": self.seconds.as_dict(),
            "cpu_seconds": self.cpu.as_dict(),
            "peak_rss_bytes": self.rss.as_dict(),
            **{name: self.extra(name).as_dict() for name in self.extras},
        }


@dataclass
class Table:
    headers: list[str]
    rows: list[list[str]]
    title: str = ""


@dataclass(frozen=True)
class RunInfo:
    """The invocation that measured a section: an ``--only`` run replaces its own sections in
    RESULTS.md and keeps the others, each with the run that measured it."""

    command: str
    runs: int
    quick: bool
    started_at: str
    finished_at: str | None
    load_before: str
    load_after: str
    machine: dict[str, str] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)

    @property
    def minutes(self) -> float:
        if not self.finished_at:
            return float("nan")
        started = datetime.fromisoformat(self.started_at)
        return (datetime.fromisoformat(self.finished_at) - started).total_seconds() / 60

    @property
    def when(self) -> str:
        return f"{datetime.fromisoformat(self.started_at):%Y-%m-%d %H:%M} UTC"

    def as_dict(self) -> dict[str, Any]:
        return {
            "command": self.command,
            "runs": self.runs,
            "quick": self.quick,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "load_before": self.load_before,
            "load_after": self.load_after,
            "machine": self.machine,
            "versions": self.versions,
        }


@dataclass
class Section:
    key: str
    title: str
    summary: str
    commands: dict[str, str] = field(default_factory=dict)
    tables: list[Table] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    headlines: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    """How long the whole section took, set-up included."""
    measured_by: RunInfo | None = None
    """Set on a section kept from an earlier run; None: measured by this report's run."""


# -- formatting ------------------------------------------------------------------------------


def number(value: float, digits: int = 1) -> str:
    if math.isnan(value):
        return "n/a"
    if abs(value) >= 100 or digits == 0:
        return f"{value:,.0f}"
    return f"{value:,.{digits}f}"


def spread(figure: Figure, unit: str = "", scale: float = 1.0, digits: int = 1) -> str:
    """``median unit (min-max)``; a single run has no spread to show."""
    median = number(figure.median / scale, digits)
    suffix = f" {unit}" if unit else ""
    if len(figure.values) < 2:
        return f"{median}{suffix}"
    low, high = number(figure.low / scale, digits), number(figure.high / scale, digits)
    return f"{median}{suffix} ({low}-{high})"


def megabytes(figure: Figure) -> str:
    return spread(figure, "MB", MB)


def mebibytes(figure: Figure) -> str:
    return spread(figure, "MiB", MiB)


def ratio(ours: Figure, seed: Figure, higher_is_better: bool) -> str:
    """How many times better ours is than the seed, from the medians; "worse" when it is not,
    and "within the spread" when the two ranges of runs overlap (no measurable difference)."""
    a, b = ours.median, seed.median
    if any(math.isnan(x) for x in (a, b)) or a <= 0 or b <= 0:
        return "n/a"
    times = a / b if higher_is_better else b / a
    text = f"{times:.2f}x better" if times >= 1 else f"{1 / times:.2f}x worse"
    return text + (", within the spread" if overlap(ours, seed) else "")


def overlap(a: Figure, b: Figure) -> bool:
    """Both measured more than once and their min-max ranges meet."""
    if len(a.values) < 2 or len(b.values) < 2:
        return False
    return a.low <= b.high and b.low <= a.high


def pipeline_rows(
    seed: Runs, ours: Runs, database_bytes: float | None = None, size_extra: str | None = None
) -> list[list[str]]:
    """The rows every seed-versus-ours table has: time, throughput, size, memory, CPU."""
    rows = [
        [
            "wall time",
            spread(seed.seconds, "s"),
            spread(ours.seconds, "s"),
            ratio(ours.seconds, seed.seconds, higher_is_better=False),
        ],
    ]
    if database_bytes:
        seed_rate, ours_rate = seed.rate(database_bytes, MB), ours.rate(database_bytes, MB)
        rows.append(
            [
                "throughput (MB of database per s)",
                spread(seed_rate),
                spread(ours_rate),
                ratio(ours_rate, seed_rate, higher_is_better=True),
            ]
        )
    if size_extra:
        seed_size, ours_size = seed.extra(size_extra), ours.extra(size_extra)
        rows.append(
            [
                "stored size",
                megabytes(seed_size),
                megabytes(ours_size),
                ratio(ours_size, seed_size, higher_is_better=False),
            ]
        )
    rows += [
        [
            "peak RSS (process tree)",
            mebibytes(seed.rss),
            mebibytes(ours.rss),
            ratio(ours.rss, seed.rss, higher_is_better=False),
        ],
        [
            "CPU seconds (user+sys, tree)",
            spread(seed.cpu, "s"),
            spread(ours.cpu, "s"),
            ratio(ours.cpu, seed.cpu, higher_is_better=False),
        ],
    ]
    return rows


PIPELINE_HEADERS = ["", "seed", "ours", "ours vs seed"]


# -- the machine and the tools --------------------------------------------------------------


def machine() -> dict[str, str]:
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    kilobytes = next(
        (
            int(line.split()[1])
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal")
        ),
        0,
    )
    memory = f"{kilobytes / 1024 / 1024:.1f} GiB"
    return {
        "cpu": f"{os.cpu_count()} x {cpu}",
        "memory": memory,
        "kernel": platform.release(),
        "os": _first_line(["sh", "-c", ". /etc/os-release && echo $PRETTY_NAME"]),
        "python": platform.python_version(),
    }


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} / {five:.2f} / {fifteen:.2f} (1 / 5 / 15 min, {os.cpu_count()} cores)"


def _first_line(command: Sequence[str]) -> str:
    try:
        result = subprocess.run(list(command), capture_output=True, text=True, check=False)
    except OSError:
        return "not installed"
    text = (result.stdout or result.stderr).strip()
    return text.splitlines()[0] if text else "unknown"


def versions(tools: dict[str, Sequence[str]]) -> dict[str, str]:
    found = {name: _first_line(command) for name, command in tools.items()}
    for package in (
        "zstandard",
        "boto3",
        "awscli",
        "google-cloud-storage",
        "confluent-kafka",
        "psycopg",
        "redis",
        "moto",
        "gcp-storage-emulator",
    ):
        try:
            found[f"{package} (PyPI)"] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[f"{package} (PyPI)"] = "not installed"
    return found


# -- the files -------------------------------------------------------------------------------


@dataclass
class Report:
    command: str
    runs: int
    quick: bool
    started_at: datetime
    machine: dict[str, str]
    versions: dict[str, str]
    load_before: str
    load_after: str = ""
    finished_at: datetime | None = None
    sections: list[Section] = field(default_factory=list)

    def headlines(self) -> list[str]:
        return [line for section in self.sections for line in section.headlines]

    def own_run(self) -> RunInfo:
        return RunInfo(
            command=self.command,
            runs=self.runs,
            quick=self.quick,
            started_at=self.started_at.isoformat(),
            finished_at=(self.finished_at or datetime.now(UTC)).isoformat(),
            load_before=self.load_before,
            load_after=self.load_after,
            machine=self.machine,
            versions=self.versions,
        )

    def run_of(self, section: Section) -> RunInfo:
        return section.measured_by or self.own_run()

    def distinct_runs(self) -> list[tuple[RunInfo, list[int]]]:
        """Each run that measured a section here, oldest first, with its sections' numbers."""
        found: dict[str, tuple[RunInfo, list[int]]] = {}
        for number_, section in enumerate(self.sections, start=1):
            run = self.run_of(section)
            found.setdefault(run.started_at, (run, []))[1].append(number_)
        return [found[key] for key in sorted(found)]


METHOD = (
    " Seed and ours ran in turn on the same machine, the same servers and the"
    " same data. Peak RSS is the largest sum of the resident sets of the command's whole"
    " process tree, sampled every 50 ms; CPU seconds are user + system of that tree (from"
    " `wait4`). Server-side work (PostgreSQL backends, Redis's save, the emulators) is not in"
    " the client figures; where it differs between the two, a row says so. MB = 10^6 bytes,"
    " MiB = 2^20."
)


def _numbers(numbers: list[int]) -> str:
    if len(numbers) > 1 and numbers == list(range(numbers[0], numbers[-1] + 1)):
        return f"sections {numbers[0]}-{numbers[-1]}"
    return ("sections " if len(numbers) > 1 else "section ") + ", ".join(map(str, numbers))


def render(report: Report) -> str:
    lines = ["# Benchmarks: our engine against the seeds' pipelines", ""]
    if report.quick:
        lines += [
            "> **Smoke run (`--quick`)**: tiny data and shortened waits. These figures prove the",
            "> harness works end to end; they measure nothing. Run without `--quick` for results.",
            "",
        ]
    runs = report.distinct_runs()
    if len(runs) <= 1:
        finished = report.finished_at or datetime.now(UTC)
        minutes = (finished - report.started_at).total_seconds() / 60
        lines += [
            f"Measured on {report.started_at:%Y-%m-%d %H:%M} UTC in one run of {minutes:.1f} min:",
            "",
            "```",
            report.command,
            "```",
            "",
            f"Each figure is the **median of N = {report.runs} runs** with the (min-max) spread;"
            " ratios are of medians." + METHOD,
        ]
    else:
        lines += [
            f"Measured in {len(runs)} runs on this machine: a run with `--only` replaces its own"
            " sections and keeps the others, each under the run that measured it.",
            "",
        ]
        for run, numbers in runs:
            lines += [
                f"- {run.when}, {run.minutes:.1f} min, N = {run.runs} ({_numbers(numbers)}):",
                "  ```",
                f"  {run.command}",
                "  ```",
            ]
        lines += [
            "",
            "Each figure is the **median of N runs** (N as above) with the (min-max) spread;"
            " ratios are of medians." + METHOD,
        ]
    lines += ["", "## Headline ratios", ""]
    lines += [f"- {line}" for line in report.headlines()] or ["- (no section ran)"]
    lines += ["", "## Machine and versions", ""]
    lines += [f"- **{name}**: {value}" for name, value in report.machine.items()]
    loads = [
        f"{run.when}: {run.load_before} at the start, {run.load_after} at the end"
        for run, _ in runs
    ]
    lines += [
        "- **load average** "
        + (
            f"at the start: {report.load_before}; at the end: {report.load_after}."
            if len(runs) <= 1
            else "of each run: " + "; ".join(loads) + "."
        )
        + " The machine was shared with other developers' test runs, so absolute figures are"
        " noisier than the ratios (seed and ours were interleaved run by run).",
    ]
    for run, numbers in runs:
        if run.machine and run.machine != report.machine:
            differs = ", ".join(
                f"{k} {v}" for k, v in run.machine.items() if report.machine.get(k) != v
            )
            lines.append(f"- the run of {run.when} ({_numbers(numbers)}) had: {differs}")
    lines += ["", "| tool | version |", "| --- | --- |"]
    lines += [f"| {name} | {value} |" for name, value in report.versions.items()]
    for run, numbers in runs:
        changed = {
            k: v for k, v in run.versions.items() if run.versions and report.versions.get(k) != v
        }
        if changed:
            text = ", ".join(f"{k} {v}" for k, v in changed.items())
            lines += [
                "",
                f"The run of {run.when} ({_numbers(numbers)}) had other versions: {text}.",
            ]
    for number_, section in enumerate(report.sections, start=1):
        lines += ["", f"## {number_}. {section.title}", ""]
        if len(runs) > 1:
            run = report.run_of(section)
            lines += [f"_Measured {run.when}, N = {run.runs}, by `{run.command}`._", ""]
        lines += [section.summary, ""]
        if section.commands:
            lines += [
                "Commands, exactly as run (`$B` is the benchmark's bucket, `$W` the run's scratch"
                " directory; our runner also gets `--connections FILE`, the servers' endpoints):",
                "",
            ]
            for label, command in section.commands.items():
                lines += [f"- {label}:", "  ```", f"  {command}", "  ```"]
            lines.append("")
        for table in section.tables:
            if table.title:
                lines += [f"**{table.title}**", ""]
            lines += [
                "| " + " | ".join(table.headers) + " |",
                "| " + " | ".join("---" for _ in table.headers) + " |",
            ]
            lines += ["| " + " | ".join(row) + " |" for row in table.rows]
            lines.append("")
        for note in section.notes:
            lines += [f"- {note}"]
        if section.seconds:
            lines += ["", f"_Section time, set-up included: {section.seconds:.0f} s._"]
    return "\n".join(lines).rstrip() + "\n"


def to_json(report: Report) -> dict[str, Any]:
    return {
        "command": report.command,
        "runs": report.runs,
        "quick": report.quick,
        "started_at": report.started_at.isoformat(),
        "finished_at": report.finished_at.isoformat() if report.finished_at else None,
        "machine": report.machine,
        "versions": report.versions,
        "load_before": report.load_before,
        "load_after": report.load_after,
        "headlines": report.headlines(),
        "headline": headline_figures(report),
        "sections": {
            section.key: {
                "title": section.title,
                "summary": section.summary,
                "commands": section.commands,
                "tables": [
                    {"title": t.title, "headers": t.headers, "rows": t.rows} for t in section.tables
                ],
                "notes": section.notes,
                "headlines": section.headlines,
                "data": section.data,
                "seconds": section.seconds,
                "measured_by": report.run_of(section).as_dict(),
            }
            for section in report.sections
        },
    }


def headline_figures(report: Report) -> dict[str, Any]:
    """The headline ratios as numbers (each section's ``data["headline"]``), so they can be read
    without parsing Markdown; ``peak_rss_mib`` is merged per section."""
    figures: dict[str, Any] = {}
    for section in report.sections:
        found = section.data.get("headline")
        if not isinstance(found, dict):
            continue
        for key, value in found.items():
            if key == "peak_rss_mib" and isinstance(value, dict):
                figures.setdefault("peak_rss_mib", {}).update(value)
            else:
                figures[key] = value
    return figures


def write(report: Report, markdown: Path) -> Path:
    """``RESULTS.md`` at ``markdown`` and ``results.json`` beside it; returns the JSON's path."""
    markdown.parent.mkdir(parents=True, exist_ok=True)
    markdown.write_text(render(report))
    data = json_path(markdown)
    data.write_text(json.dumps(to_json(report), indent=2, default=str) + "\n")
    return data


def json_path(markdown: Path) -> Path:
    return markdown.with_name(markdown.stem.lower() + ".json")


# -- keeping the sections an --only run did not measure ---------------------------------------


def previous_sections(markdown: Path, quick: bool) -> list[Section]:
    """The sections of the results written at ``markdown`` before, each with the run that
    measured it; none when there are none, or when they are of the other kind (a smoke run's
    figures never sit beside a measurement's)."""
    data_file = json_path(markdown)
    if not data_file.exists():
        return []
    data = json.loads(data_file.read_text())
    if bool(data.get("quick")) != quick:
        return []
    top = RunInfo(
        command=data["command"],
        runs=int(data["runs"]),
        quick=bool(data["quick"]),
        started_at=data["started_at"],
        finished_at=data.get("finished_at"),
        load_before=data.get("load_before", ""),
        load_after=data.get("load_after", ""),
        machine=data.get("machine", {}),
        versions=data.get("versions", {}),
    )
    text = markdown.read_text() if markdown.exists() else ""
    sections = []
    for key, item in data["sections"].items():
        measured = item.get("measured_by")
        sections.append(
            Section(
                key=key,
                title=item["title"],
                summary=item.get("summary") or _summary_in(text, item["title"]),
                commands=item.get("commands", {}),
                tables=[Table(t["headers"], t["rows"], t.get("title", "")) for t in item["tables"]],
                notes=item.get("notes", []),
                headlines=item.get("headlines", []),
                data=item.get("data", {}),
                seconds=float(item.get("seconds", 0.0)),
                measured_by=RunInfo(**measured) if measured else top,
            )
        )
    return sections


def _summary_in(markdown: str, title: str) -> str:
    """A section's summary paragraph from RESULTS.md: results.json did not keep it before."""
    lines = markdown.splitlines()
    for index, line in enumerate(lines):
        if line.startswith("## ") and line.split(". ", 1)[-1] == title:
            paragraph: list[str] = []
            for following in lines[index + 2 :]:
                if not following.strip():
                    break
                paragraph.append(following)
            return "\n".join(paragraph)
    return ""


def merged(fresh: list[Section], kept: list[Section], order: list[str]) -> list[Section]:
    """``fresh`` replaces the kept sections of the same key; the result is in ``order``."""
    by_key = {section.key: section for section in kept if section.key in order}
    by_key |= {section.key: section for section in fresh}
    return [by_key[key] for key in order if key in by_key]
