"""Plans and the executor: layers, parallelism, confirmation, journal, resume, retries."""

from __future__ import annotations

import io
import json
import threading
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from drkit.ops.executor import Executor, Status, write_report
from drkit.ops.journal import JournalError
from drkit.ops.plan import FunctionStep, Plan, PlanError, StepContext

pytestmark = pytest.mark.unit


class Recorder:
    def __init__(self) -> None:
        self.applied: list[str] = []
        self.lock = threading.Lock()

    def step(self, step_id: str, fail: bool = False, done: bool = False, **kw: Any) -> FunctionStep:
        def action(context: StepContext) -> str:
            with self.lock:
                self.applied.append(step_id)
            if fail:
                raise RuntimeError(f"{step_id} broke")
            return f"{step_id}-result"

        return FunctionStep(step_id, f"do {step_id}", action, check=lambda c: done, **kw)


def executor(tmp_path: Path, confirm: bool = True) -> tuple[Executor, io.StringIO]:
    out = io.StringIO()
    return Executor(
        tmp_path / "journal", out, confirm=lambda _: confirm, retry_sleep=lambda _: None
    ), out


def test_dependencies_resolve_into_layers_in_order() -> None:
    r = Recorder()
    plan = Plan.from_dependencies(
        "p",
        [r.step("fence"), r.step("db"), r.step("cache"), r.step("dns")],
        {"db": ["fence"], "cache": ["fence"], "dns": ["db", "cache"]},
    )
    assert [[s.id for s in layer] for layer in plan.layers] == [["fence"], ["db", "cache"], ["dns"]]
    assert plan.depends_on == {"db": ["fence"], "cache": ["fence"], "dns": ["cache", "db"]}
    text = plan.describe()
    assert "layer 2 (in parallel):" in text and "* [db] do db" in text


@pytest.mark.parametrize(
    ("depends", "message"),
    [
        ({"a": ["b"], "b": ["a"]}, "dependency cycle among ['a', 'b']"),
        ({"a": ["zzz"]}, "depends on unknown ['zzz']"),
    ],
)
def test_bad_plans_are_refused(depends: dict[str, list[str]], message: str) -> None:
    r = Recorder()
    with pytest.raises(PlanError, match=message.replace("[", r"\[").replace("]", r"\]")):
        Plan.from_dependencies("p", [r.step("a"), r.step("b")], depends)
    with pytest.raises(PlanError, match="used twice"):
        Plan.from_dependencies("p", [r.step("a"), r.step("a")])


def test_dry_run_prints_the_plan_and_changes_nothing(tmp_path: Path) -> None:
    r = Recorder()
    run, out = executor(tmp_path)
    report = run.run(Plan.from_dependencies("restore", [r.step("a")]), run_id="r1", dry_run=True)
    assert report.status is Status.DRY_RUN and report.exit_code == 0
    assert r.applied == [] and "[a] do a" in out.getvalue()
    assert not (tmp_path / "journal" / "r1.jsonl").exists()


def test_without_confirmation_nothing_runs(tmp_path: Path) -> None:
    r = Recorder()
    run, out = executor(tmp_path, confirm=False)
    report = run.run(Plan.from_dependencies("restore", [r.step("a")]), run_id="r1")
    assert report.status is Status.ABORTED and report.exit_code == 3
    assert r.applied == [] and "pass --yes" in out.getvalue()


def test_steps_of_a_layer_run_in_parallel(tmp_path: Path) -> None:
    barrier = threading.Barrier(2, timeout=10)
    steps = [FunctionStep(n, n, lambda c: barrier.wait()) for n in ("left", "right")]
    run, _ = executor(tmp_path)
    report = run.run(Plan.from_dependencies("p", steps), run_id="r1", assume_yes=True)
    assert report.status is Status.SUCCEEDED  # each waited for the other: they overlapped


def test_a_failing_step_stops_its_layer_and_the_run_resumes_without_repeats(
    tmp_path: Path,
) -> None:
    r = Recorder()
    broken = {"fail": True}

    def db(context: StepContext) -> str:
        r.applied.append("db")
        if broken["fail"]:
            raise RuntimeError("cluster not reachable")
        return "promoted"

    steps = [
        r.step("fence"),
        FunctionStep("db", "fail over db", db),
        r.step("cache"),
        r.step("dns"),
    ]
    plan = Plan.from_dependencies(
        "failover", steps, {"db": ["fence"], "cache": ["fence"], "dns": ["db", "cache"]}
    )
    run, _ = executor(tmp_path)
    first = run.run(plan, run_id="f1", assume_yes=True)
    assert first.status is Status.FAILED and first.exit_code == 1
    assert sorted(r.applied) == ["cache", "db", "fence"]  # the layer finished, dns never ran
    outcomes = {s.id: s.outcome for s in first.steps}
    assert outcomes == {"fence": "done", "db": "failed", "cache": "done", "dns": "not_run"}
    assert "RuntimeError: cluster not reachable" in first.steps[1].detail

    broken["fail"] = False
    r.applied.clear()
    second = run.run(plan, run_id="f1", assume_yes=True, resume=True)
    assert second.status is Status.SUCCEEDED
    assert sorted(r.applied) == ["db", "dns"]  # fence and cache were not repeated
    assert {s.id: s.outcome for s in second.steps}["fence"] == "resumed"
    events = [
        json.loads(line) for line in (tmp_path / "journal" / "f1.jsonl").read_text().splitlines()
    ]
    assert [e["event"] for e in events].count("run_started") == 2
    assert events[0]["user"] and events[0]["plan"] == "failover"


def test_resume_refuses_a_journal_of_another_plan(tmp_path: Path) -> None:
    r = Recorder()
    run, _ = executor(tmp_path)
    run.run(Plan.from_dependencies("restore", [r.step("a")]), run_id="x", assume_yes=True)
    with pytest.raises(JournalError, match="is of plan 'restore', not 'failover'"):
        run.run(Plan.from_dependencies("failover", [r.step("a")]), run_id="x", resume=True)
    with pytest.raises(JournalError, match="no journal"):
        run.run(Plan.from_dependencies("failover", [r.step("a")]), run_id="nope", resume=True)


def test_a_step_already_in_place_is_not_applied(tmp_path: Path) -> None:
    r = Recorder()
    run, _ = executor(tmp_path)
    report = run.run(
        Plan.from_dependencies("p", [r.step("a", done=True)]), run_id="r", assume_yes=True
    )
    assert r.applied == [] and report.steps[0].outcome == "already_done"


def test_throttling_is_retried_with_backoff(tmp_path: Path) -> None:
    calls = {"n": 0}

    def throttled(context: StepContext) -> str:
        calls["n"] += 1
        if calls["n"] < 3:
            raise ClientError(
                {"Error": {"Code": "ThrottlingException", "Message": "slow"}},
                "FailoverGlobalCluster",
            )
        return "ok"

    run, _ = executor(tmp_path)
    report = run.run(
        Plan.from_dependencies("p", [FunctionStep("db", "db", throttled)]),
        run_id="r",
        assume_yes=True,
    )
    assert report.status is Status.SUCCEEDED and calls["n"] == 3
    assert report.steps[0].detail.count("throttled, retry") == 2


def test_other_client_errors_are_not_retried(tmp_path: Path) -> None:
    calls = {"n": 0}

    def denied(context: StepContext) -> None:
        calls["n"] += 1
        raise ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "X")

    run, _ = executor(tmp_path)
    report = run.run(
        Plan.from_dependencies("p", [FunctionStep("s", "s", denied)]), run_id="r", assume_yes=True
    )
    assert report.status is Status.FAILED and calls["n"] == 1


def test_interrupt_then_resume_completes_without_repeating(tmp_path: Path) -> None:
    r = Recorder()
    interrupt = {"now": True}

    def slow(context: StepContext) -> str:
        if interrupt["now"]:
            raise KeyboardInterrupt
        r.applied.append("scale")
        return "scaled"

    plan = Plan.from_dependencies(
        "failover",
        [r.step("fence"), FunctionStep("scale", "scale up", slow), r.step("dns")],
        {"scale": ["fence"], "dns": ["scale"]},
    )
    run, out = executor(tmp_path)
    first = run.run(plan, run_id="i1", assume_yes=True)
    assert first.status is Status.INTERRUPTED and first.exit_code == 130
    assert "--resume i1" in out.getvalue()
    interrupt["now"] = False
    r.applied.clear()
    second = run.run(plan, run_id="i1", assume_yes=True, resume=True)
    assert second.status is Status.SUCCEEDED and r.applied == ["scale", "dns"]


def test_reports_are_written_as_markdown_and_json(tmp_path: Path) -> None:
    r = Recorder()
    run, _ = executor(tmp_path)
    report = run.run(Plan.from_dependencies("restore", [r.step("a")]), run_id="w", assume_yes=True)
    report.figures["rto_seconds"] = 1.5
    markdown, body = write_report(report, tmp_path / "reports", "restore")
    assert "| 1 | a | done |" in markdown.read_text()
    assert json.loads(body.read_text())["figures"] == {"rto_seconds": 1.5}


def test_an_eager_plan_starts_a_step_once_its_own_dependencies_end(tmp_path: Path) -> None:
    r = Recorder()
    slow_started, fast_done = threading.Event(), threading.Event()

    def slow(context: StepContext) -> str:
        slow_started.set()
        # the fast branch's follower ends while this step still runs (layers would wait for it)
        assert fast_done.wait(10), "the follower of the fast step did not run alongside"
        return "slow"

    def follower(context: StepContext) -> str:
        fast_done.set()
        return "follower"

    steps = [
        FunctionStep("slow", "a slow promotion", slow),
        r.step("fast"),
        FunctionStep("follower", "after fast only", follower),
        r.step("last"),
    ]
    depends = {"follower": ["fast"], "last": ["slow", "follower"]}
    plan = Plan.from_dependencies("p", steps, depends, eager=True)
    assert [[s.id for s in layer] for layer in plan.layers] == [
        ["slow", "fast"],
        ["follower"],
        ["last"],
    ]
    run, out = executor(tmp_path)
    report = run.run(plan, run_id="e1", assume_yes=True)
    assert report.status is Status.SUCCEEDED and slow_started.is_set()
    assert {r.id: r.outcome for r in report.steps} == dict.fromkeys(
        ["slow", "fast", "follower", "last"], "done"
    )
    assert "start follower (after fast)" in out.getvalue()


def test_an_eager_plan_runs_what_does_not_depend_on_a_failure(tmp_path: Path) -> None:
    r = Recorder()
    steps = [r.step("db", fail=True), r.step("kafka"), r.step("db-app"), r.step("signals")]
    depends = {"db-app": ["db"], "signals": ["kafka"]}
    plan = Plan.from_dependencies("p", steps, depends, eager=True)
    run, _ = executor(tmp_path)
    report = run.run(plan, run_id="e2", assume_yes=True)
    outcomes = {r.id: (r.outcome, r.detail) for r in report.steps}
    assert report.status is Status.FAILED and report.exit_code == 1
    assert outcomes["signals"] == ("done", "") and outcomes["kafka"][0] == "done"
    assert outcomes["db-app"] == ("not_run", "not run: db failed")
    assert "db-app" not in r.applied
