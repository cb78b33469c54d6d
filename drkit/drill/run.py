"""Run the drill on the local embedded default: servers, seed, writers and scheduled backups,
the disasters one after another, then the report."""

from __future__ import annotations

import contextlib
import statistics
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from drkit import audit
from drkit.audit import audited
from drkit.context import OpsContext
from drkit.drill import region_failover
from drkit.drill import report as drill_report
from drkit.drill.metrics import push_drill_run
from drkit.drill.report import DrillReport
from drkit.drill.scenarios import (
    ACCOUNT_COMPROMISE,
    REGION_FAILOVER,
    REGION_LOSS_FROM_BACKUPS,
    SCENARIOS,
    ScenarioResult,
)
from drkit.drill.scheduler import CompressedScheduler
from drkit.drill.world import DrillWorld, Phase, make_writers
from drkit.kinds import drill_seeds, drill_writers
from drkit.local.environment import LocalEnvironment
from drkit.local.isolated import provision_isolated
from drkit.local.kubernetes import BUILD_SCRIPT, kube_apiserver_available, kube_apiserver_binary
from drkit.local.stack import LOCAL_ACCOUNT_BUCKET_SUFFIX, provision, write_state
from drkit.ops.journal import new_run_id
from drkit.ops.redis_target import write_local_control
from drkit.reports import record_run, run_dir
from stackmodels import StackConfig
from stackmodels.config import StoreKind

SKIPPED = {
    "market-ticks (time-series)": "its backups export whole hours of real time, which a drill of "
    "minutes cannot compress; its backup and restore are covered by their own tests",
}


KUBERNETES_SCENARIO = "kubernetes-namespace-loss"


class UnknownScenario(ValueError):
    """``--scenario`` named something the drill does not play."""


class ServerNotBuilt(ValueError):
    """A scenario needs a local server whose binary is not built (the message says how)."""


@dataclass
class DrillOptions:
    size_mb: float = 20.0
    scenarios: list[str] = field(default_factory=lambda: list(SCENARIOS))
    time_factor: float = 360.0
    soak_seconds: float = 15.0
    between_seconds: float = 3.0
    keep: bool = False
    rates: dict[StoreKind, float] = field(
        default_factory=lambda: {kind: w.rate for kind, w in drill_writers().items()}
    )

    def __post_init__(self) -> None:
        unknown = [s for s in self.scenarios if s not in SCENARIOS]
        if unknown:
            raise UnknownScenario(
                f"unknown scenario {', '.join(unknown)}; the drill plays: {', '.join(SCENARIOS)}"
            )
        if KUBERNETES_SCENARIO in self.scenarios and not kube_apiserver_available():
            raise ServerNotBuilt(
                f"{KUBERNETES_SCENARIO} needs a kube-apiserver, not built at "
                f"{kube_apiserver_binary()}: run {BUILD_SCRIPT} (scripts/bootstrap.sh does), or "
                f"play the other scenarios with --scenario"
            )
        if self.size_mb <= 0 or self.time_factor < 1:
            raise ValueError("--size-mb must be positive and --time-factor at least 1")


def run_drill(
    options: DrillOptions,
    project_dir: Path,
    workdir: Path,
    reports_dir: Path,
    out: TextIO = sys.stdout,
) -> DrillReport:
    config = StackConfig.for_stack("prod", project_dir)
    report = DrillReport(
        started_at=datetime.now(UTC).isoformat(),
        settings={
            "size_mb": options.size_mb,
            "time_factor": options.time_factor,
            "soak_seconds": options.soak_seconds,
            "scenarios": options.scenarios,
        },
        skipped=dict(SKIPPED),
    )
    clock = time.monotonic()
    out.write("== DR drill on the local embedded default\n")
    env = LocalEnvironment(
        workdir,
        with_kafka=True,
        with_kubernetes=KUBERNETES_SCENARIO in options.scenarios,
        with_isolated=ACCOUNT_COMPROMISE in options.scenarios,
    )
    world: DrillWorld | None = None
    # The drill journals in the audit bucket of the stack it provisions, from then on.
    with env, contextlib.ExitStack() as exit_stack:
        outputs, credentials = provision(env, config)
        if env.isolated is not None:  # the vault stack's outputs, as prod reads them
            isolated = provision_isolated(env.isolated, config, LOCAL_ACCOUNT_BUCKET_SUFFIX)
            outputs = outputs.model_copy(update={"isolated_vault": isolated})
        write_state(project_dir / ".drkit" / "local", outputs, credentials)
        write_local_control(project_dir, config.stores_of(StoreKind.REDIS)[0], env.redis)
        ctx = OpsContext("local", config, outputs, credentials)
        world = DrillWorld(config, env, ctx, options.time_factor, out, project_dir=project_dir)
        began = datetime.fromisoformat(report.started_at)
        world.phases.append(Phase("drill", "start the servers", began, datetime.now(UTC)))
        world.stores = {store.kind: name for name, store in config.stores.items()}
        world.say(
            f"servers up; vault s3://{outputs.backup_vault.name}, "
            f"mirror gs://{outputs.gcs_mirror_bucket}"
        )
        trail = exit_stack.enter_context(audited(ctx, "drill", report.settings))
        try:
            if REGION_FAILOVER in options.scenarios:
                region_failover.start_stack(world)  # in the background, while the drill seeds
            _seed(world, options, report)
            _initial_backups(world)
            _soak(world, options)
            for name in options.scenarios:
                world.say(f"== scenario {name}")
                world.scenario = name
                result = SCENARIOS[name](world)
                world.scenario = ""
                report.scenarios.append(result)
                audit.step(name, result.status)
                _say_result(world, result)
                if name != REGION_LOSS_FROM_BACKUPS:
                    time.sleep(options.between_seconds)
        finally:
            region_failover.stop_stack(world)
            with world.phase("drill", "stop the schedule and the writers"):
                if world.scheduler is not None:
                    world.scheduler.stop()  # waits for the backups under way
                for writer in world.writers.values():
                    writer.stop()
            if options.keep:
                _keep(world, project_dir)
            if trail is not None and not report.ok:
                trail.failed()
    report.finished_at = datetime.now(UTC).isoformat()
    report.seconds = round(time.monotonic() - clock, 1)
    report.phases = world.phases
    report.backups = _backup_figures(world)
    report.writes = {
        store: {"written": w.next_n - 1, "failed": w.failures} for store, w in world.writers.items()
    }
    paths = _write_reports(report, reports_dir)
    push_drill_run("failover", "local", report.ok)  # to $DRKIT_PUSHGATEWAY, if set
    out.write("\n" + drill_report.terminal_table(report))
    out.write(f"reports: {paths['markdown']}, {paths['json']}, timeline {paths['timeline']}\n")
    return report


def _write_reports(report: DrillReport, root: Path) -> dict[str, Path]:
    """``root/<run id>/drill.json``, ``drill.md`` and ``drill-timeline.html``, with the run's
    ``run.json``, and ``root/latest`` pointed at them (``drkit.reports``)."""
    started = datetime.fromisoformat(report.started_at)
    run_id = new_run_id("drill local", started)
    paths = drill_report.write(report, run_dir(root, run_id))
    record_run(
        root,
        run_id,
        operation="drill",
        stack="local",
        outcome="passed" if report.ok else "failed",
        started_at=started,
        seconds=report.seconds,
        finished_at=report.finished_at or None,
    )
    return paths


def _seed(world: DrillWorld, options: DrillOptions, report: DrillReport) -> None:
    """Each kind's seed (``drkit.kinds``), its share of ``--size-mb``, once the writers are made
    (a seed may burst its kind's writer)."""
    said = []
    with world.phase("drill", "seed"):
        make_writers(world, options.rates)
        for kind, seed in drill_seeds().items():
            seeded = seed.function(world, world.store(kind), options.size_mb * seed.share)
            report.seeded |= seeded.figures
            said.append(seeded.said)
    world.say(f"seeded {', '.join(said)}")


def _initial_backups(world: DrillWorld) -> None:
    """A fresh deployment's first run of every CronJob, before the schedules take over."""
    for kind in drill_writers():
        store = world.store(kind)
        manifest = world.backup(store)
        world.say(f"first backup of {store}: {manifest.backup_id}, {manifest.size:,} bytes")


def _soak(world: DrillWorld, options: DrillOptions) -> None:
    schedules = {
        world.store(k): world.config.stores[world.store(k)].schedule for k in drill_writers()
    }
    world.scheduler = CompressedScheduler(schedules, world.backup, options.time_factor)
    world.scheduler.start()
    for writer in world.writers.values():
        writer.start()
    world.say(f"writers trading; backups on their schedules, time x{options.time_factor:g}")
    deadline = time.monotonic() + options.soak_seconds
    while time.monotonic() < deadline:
        time.sleep(min(5.0, max(0.0, deadline - time.monotonic())))
        runs = {s: len(world.scheduler.successful(s)) for s in schedules}
        writes = {s: w.next_n - 1 for s, w in world.writers.items()}
        world.say(
            f"simulated {world.scheduler.simulated_now():%H:%M}; backups {runs}; writes {writes}"
        )


def _say_result(world: DrillWorld, result: ScenarioResult) -> None:
    for store in result.stores:
        check = store.verification
        world.say(
            f"{result.name}: {store.store} {check.restored}/{check.expected} writes "
            f"verified, {check.lost_writes} lost; RTO {store.rto_seconds}s, RPO "
            + (
                f"{store.rpo_seconds}s (continuous, {store.continuous_protection})"
                if store.rpo_basis == "replication"
                else f"{store.rpo_seconds}s (x{world.factor:g} = {store.rpo_schedule_seconds}s "
                "on the real schedule)"
            )
            + f" -> {result.status}"
        )


def _backup_figures(world: DrillWorld) -> dict[str, dict[str, Any]]:
    figures: dict[str, dict[str, Any]] = {}
    runs = world.scheduler.runs if world.scheduler is not None else []
    for store in {r.store for r in runs}:
        mine = [r for r in runs if r.store == store]
        good = [r for r in mine if r.manifest is not None]
        durations = [(r.finished_at - r.started_at).total_seconds() for r in good]
        figures[store] = {
            "runs": len(mine),
            "failed": len(mine) - len(good),
            "mean_seconds": round(statistics.fmean(durations), 2) if durations else 0,
            "last_size_bytes": good[-1].manifest.size if good and good[-1].manifest else 0,
            "failures": [
                {"started_at": r.started_at.isoformat(), "reason": r.error}
                for r in mine
                if r.manifest is None
            ],
        }
    return figures


def _keep(world: DrillWorld, project_dir: Path) -> None:
    world.say(
        f"--keep: servers stay up; stack outputs in {project_dir}/.drkit/local/"
        "outputs.json; press Ctrl-C to stop them"
    )
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
