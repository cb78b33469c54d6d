"""Run a plan: print it, confirm, run layer by layer (or each step once its own dependencies end,
for an eager plan), journal every event, report a timeline."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, TextIO

from drkit import killpoints
from drkit.human import iso_time
from drkit.ops.journal import Journal, operator
from drkit.ops.plan import Plan, Step, StepContext
from drkit.ops.retry import with_retries
from stackmodels.durations import format_duration


class Status(StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    ABORTED = "aborted"
    DRY_RUN = "dry_run"
    INTERRUPTED = "interrupted"


EXIT_CODES = {
    Status.SUCCEEDED: 0,
    Status.DRY_RUN: 0,
    Status.FAILED: 1,
    Status.ABORTED: 3,
    Status.INTERRUPTED: 130,
}


@dataclass
class StepRecord:
    id: str
    description: str
    layer: int
    outcome: str = "not_run"
    started_at: str | None = None
    finished_at: str | None = None
    seconds: float | None = None
    detail: str = ""


@dataclass
class RunReport:
    run_id: str
    plan: str
    parameters: dict[str, Any]
    status: Status
    started_at: str
    finished_at: str = ""
    seconds: float = 0.0
    steps: list[StepRecord] = field(default_factory=list)
    journal: str = ""
    figures: dict[str, Any] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.status]

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, default=str) + "\n"

    def to_markdown(self) -> str:
        lines = [
            f"# {self.plan}",
            "",
            f"Run `{self.run_id}`: **{self.status.value}** in {format_duration(self.seconds)} "
            f"({iso_time(self.started_at)} to {iso_time(self.finished_at)}).",
            "",
        ]
        if self.figures:
            lines += ["| figure | value |", "| --- | --- |"]
            lines += [f"| {k} | {v} |" for k, v in self.figures.items()]
            lines.append("")
        lines += [
            "| layer | step | outcome | start | seconds | detail |",
            "| ---: | --- | --- | --- | ---: | --- |",
        ]
        for r in self.steps:
            seconds = f"{r.seconds:.2f}" if r.seconds is not None else ""
            lines.append(
                f"| {r.layer} | {r.id} | {r.outcome} | {iso_time(r.started_at, '')} | "
                f"{seconds} | {r.detail} |"
            )
        return "\n".join(lines) + "\n"


Confirm = Callable[[str], bool]


def terminal_confirm(prompt: str) -> bool:
    """Ask on the terminal; without one, refuse (pass --yes to run unattended)."""
    if not sys.stdin.isatty():
        return False
    return input(f"{prompt} [type yes]: ").strip().lower() == "yes"


@dataclass
class Executor:
    journal_dir: Path
    out: TextIO = field(default_factory=lambda: sys.stdout)
    max_parallel: int = 8
    confirm: Confirm = terminal_confirm
    retry_attempts: int = 6
    retry_sleep: Callable[[float], None] = time.sleep

    def run(
        self,
        plan: Plan,
        *,
        run_id: str,
        dry_run: bool = False,
        assume_yes: bool = False,
        resume: bool = False,
    ) -> RunReport:
        journal = (
            Journal.open_existing(self.journal_dir, run_id, plan.name)
            if resume
            else Journal(self.journal_dir, run_id)
        )
        report = RunReport(
            run_id,
            plan.name,
            plan.parameters,
            Status.SUCCEEDED,
            datetime.now(UTC).isoformat(),
            journal=str(journal.path),
        )
        records = {
            step.id: StepRecord(step.id, step.description, number)
            for number, layer in enumerate(plan.layers, start=1)
            for step in layer
        }
        report.steps = list(records.values())
        self.out.write(plan.describe() + f"\n  run id: {run_id}\n")
        if dry_run:
            self.out.write("dry run: nothing was changed\n")
            return self._finish(report, Status.DRY_RUN, time.monotonic())
        if plan.mutates and not assume_yes and not self.confirm(f"Run plan {plan.name!r}?"):
            self.out.write(
                "aborted: not confirmed (pass --yes to run without asking); nothing was changed\n"
            )
            return self._finish(report, Status.ABORTED, time.monotonic())

        finished = journal.finished_steps() if resume else set()
        context = StepContext(run_id, results=journal.results() if resume else {})
        journal.append(
            "run_started",
            plan=plan.name,
            parameters=plan.parameters,
            layers=[[s.id for s in layer] for layer in plan.layers],
            resumed=resume,
            **operator(),
        )
        clock = time.monotonic()
        status = Status.SUCCEEDED
        try:
            eager_outcomes = (
                self._run_eager(plan, context, journal, records, finished) if plan.eager else []
            )
            if "failed" in eager_outcomes:
                status = Status.FAILED
            for number, layer in enumerate([] if plan.eager else plan.layers, start=1):
                self.out.write(
                    f"layer {number}/{len(plan.layers)}: {', '.join(s.id for s in layer)}\n"
                )
                with ThreadPoolExecutor(min(self.max_parallel, len(layer))) as pool:
                    outcomes = list(
                        pool.map(
                            lambda step: self._run_step(step, context, journal, records, finished),
                            layer,
                        )
                    )
                if "failed" in outcomes:
                    status = Status.FAILED
                    break
        except KeyboardInterrupt:
            status = Status.INTERRUPTED
            self.out.write(
                f"\ninterrupted: finished steps are journaled; rerun with --resume {run_id}\n"
            )
        journal.append(
            "run_finished", status=status.value, seconds=round(time.monotonic() - clock, 3)
        )
        return self._finish(report, status, clock)

    def _run_eager(
        self,
        plan: Plan,
        context: StepContext,
        journal: Journal,
        records: dict[str, StepRecord],
        finished: set[str],
    ) -> list[str]:
        """Start every step whose dependencies all succeeded, as soon as they have; a step
        downstream of a failure stays not_run (and says which dependency failed)."""
        needs = {s.id: set(plan.depends_on.get(s.id, ())) for s in plan.steps}
        pending = {s.id: s for s in plan.steps}
        succeeded: set[str] = set()
        failed: set[str] = set()
        outcomes: list[str] = []
        running: dict[Future[str], str] = {}
        with ThreadPoolExecutor(self.max_parallel) as pool:
            while pending or running:
                for step_id in [i for i in pending if needs[i] & failed]:
                    records[step_id].detail = "not run: " + ", ".join(
                        f"{d} failed" for d in sorted(needs[step_id] & failed)
                    )
                    failed.add(step_id)
                    del pending[step_id]
                for step_id in [i for i in pending if needs[i] <= succeeded]:
                    step = pending.pop(step_id)
                    waits = (
                        f" (after {', '.join(sorted(needs[step_id]))})" if needs[step_id] else ""
                    )
                    self.out.write(f"start {step_id}{waits}\n")
                    future = pool.submit(self._run_step, step, context, journal, records, finished)
                    running[future] = step_id
                if not running:
                    break
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    step_id = running.pop(future)
                    outcome = future.result()
                    outcomes.append(outcome)
                    (failed if outcome == "failed" else succeeded).add(step_id)
        return outcomes

    def _run_step(
        self,
        step: Step,
        context: StepContext,
        journal: Journal,
        records: dict[str, StepRecord],
        finished: set[str],
    ) -> str:
        record = records[step.id]
        record.started_at = datetime.now(UTC).isoformat()
        clock = time.monotonic()
        result: Any = None
        notes: list[str] = []
        if step.id in finished:
            outcome = "resumed"
        else:
            journal.append("step_started", step=step.id, description=step.description)
            killpoints.reached(f"before:{step.id}")
            try:
                step_context = StepContext(context.run_id, context.results, notes, journal)
                if step.is_done(step_context):
                    outcome = "already_done"
                else:
                    result = with_retries(
                        lambda: step.apply(step_context),
                        attempts=self.retry_attempts,
                        sleep=self.retry_sleep,
                        on_retry=lambda n, e, d: notes.append(f"throttled, retry {n} in {d:.1f}s"),
                    )
                    context.results[step.id] = result
                    step.verify(step_context)
                    outcome = "done"
                killpoints.reached(f"applied:{step.id}")
            except Exception as error:
                outcome = "failed"
                notes.append(f"{type(error).__name__}: {error}")
        record.outcome = outcome
        record.finished_at = datetime.now(UTC).isoformat()
        record.seconds = round(time.monotonic() - clock, 3)
        record.detail = "; ".join(notes)
        if outcome != "resumed":
            journal.append(
                "step_finished",
                step=step.id,
                outcome=outcome,
                seconds=record.seconds,
                detail=record.detail,
                result=_jsonable(result),
            )
            killpoints.reached(f"after:{step.id}")
        mark = {
            "done": "ok",
            "already_done": "ok (already done)",
            "resumed": "ok (resumed)",
            "failed": "FAILED",
        }[outcome]
        self.out.write(
            f"  {mark:18} {step.id} ({record.seconds:.2f}s)"
            f"{': ' + record.detail if record.detail else ''}\n"
        )
        return outcome

    def _finish(self, report: RunReport, status: Status, clock: float) -> RunReport:
        report.status = status
        report.finished_at = datetime.now(UTC).isoformat()
        report.seconds = round(time.monotonic() - clock, 3)
        return report


def _jsonable(value: Any) -> Any:
    try:
        json.dumps(value, default=str)
    except (TypeError, ValueError):
        return repr(value)
    return json.loads(json.dumps(value, default=str))


def write_report(report: RunReport, directory: Path, name: str) -> tuple[Path, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    markdown, body = directory / f"{name}.md", directory / f"{name}.json"
    markdown.write_text(report.to_markdown())
    body.write_text(report.to_json())
    return markdown, body
