"""Run a failover or failback end to end: preflight, plan, executor, figures, reports, config.

The executor, journal, retries and reports are the shared ones (drkit.ops); this module adds
what is particular to a region switch: the preflight before the plan, the measured RTO (the
run's first start to the post-check's verification, across resumes), the data-loss window (the
replication lag read at cut-over), and the stack config change that makes the next ``pulumi up``
agree with the new primary.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from drkit.context import OpsContext
from drkit.failover.failback import rejoin_steps
from drkit.failover.kinds.aws import protected_stores
from drkit.failover.lag import data_loss_window
from drkit.failover.plan import MEASURE, POSTCHECK, build_plan
from drkit.failover.preflight import Preflight, run_preflight
from drkit.failover.request import FailoverRequest, Runtime
from drkit.failover.stack_config import ConfigChange, active_region_change, stack_files
from drkit.failover.topology import Topology, resolve
from drkit.ops.executor import Confirm, Executor, RunReport, Status, terminal_confirm
from drkit.ops.journal import Journal, new_run_id
from drkit.ops.run import JOURNAL_DIR, RunOptions, execute, keep_report
from drkit.storage.objectstore import Encryption, ObjectStoreError
from drkit.storage.s3 import S3Store
from stackmodels.durations import format_duration

log = logging.getLogger("drkit.failover")


class PreflightBlocked(RuntimeError):
    """A planned switchover's preflight failed; nothing was changed."""


@dataclass
class Outcome:
    report: RunReport
    preflight: Preflight | None
    config_changes: list[ConfigChange] = field(default_factory=list)
    config_written: bool = False

    @property
    def exit_code(self) -> int:
        return self.report.exit_code


def parameters(ctx: OpsContext, request: FailoverRequest, topology: Topology) -> dict[str, Any]:
    """What the journal keeps so ``--resume`` rebuilds the same plan (and the report shows)."""
    return {
        "stack": ctx.stack,
        "source": topology.source,
        "target": topology.target,
        **request.model_dump(mode="json"),
    }


def request_from_journal(saved: dict[str, Any]) -> tuple[str, FailoverRequest]:
    values = dict(saved)
    stack = str(values.pop("stack", "dr"))
    for key in ("source", "target"):
        values.pop(key, None)
    return stack, FailoverRequest(**values)


def run_operation(
    ctx: OpsContext,
    request: FailoverRequest,
    runtime: Runtime,
    project_dir: Path,
    out: TextIO,
    options: RunOptions,
    confirm: Confirm = terminal_confirm,
) -> Outcome:
    topology = resolve(ctx, request, project_dir)
    preflight: Preflight | None = None
    if options.resume:
        out.write(f"resuming {options.resume}: preflight not repeated\n")
    else:
        preflight = run_preflight(topology, runtime)
        out.write(preflight.to_text())
        if preflight.blocking and not options.dry_run:
            raise PreflightBlocked(
                "preflight blocked the planned switchover: "
                + "; ".join(f"{c.name}: {c.detail}" for c in preflight.blocking)
            )
    gates = rejoin_steps(topology, runtime) if topology.failback else []
    plan = build_plan(
        topology, runtime, ctx.credentials, parameters(ctx, request, topology), before=gates
    )
    journal_dir = project_dir / JOURNAL_DIR
    executor = Executor(journal_dir, out, confirm=confirm, retry_sleep=runtime.sleep)
    run_id = options.resume or new_run_id(plan.name, runtime.now())
    report = execute(executor, plan, run_id, options)
    journal = Journal(journal_dir, run_id)
    report.figures |= figures(journal, topology, preflight)
    if not options.dry_run:
        report.figures["journal_copy"] = upload_journal(ctx, runtime, journal)
    name = "failback" if topology.failback else "failover"
    markdown = keep_report(report, project_dir, name, ctx.stack, options)
    out.write(
        f"{report.status.value}: {report.plan} in {format_duration(report.seconds)}; RTO "
        f"{report.figures.get('rto', 'not reached')}, data-loss window "
        f"{report.figures.get('data_loss_window', 'unknown')}"
        + (f"; report {markdown}; journal {report.journal}\n" if markdown else "\n")
    )
    outcome = Outcome(report, preflight)
    if report.status in (Status.SUCCEEDED, Status.DRY_RUN):
        outcome.config_changes = config_changes(ctx, topology, project_dir)
        _show_config(outcome, out, request, report.status)
    return outcome


def figures(journal: Journal, topology: Topology, preflight: Preflight | None) -> dict[str, Any]:
    head = {
        "direction": f"{topology.source} -> {topology.target}",
        "mode": "planned" if topology.planned else "unplanned",
    }
    values, readings = run_figures(journal, head, lambda: _objective(topology))
    if readings is not None:
        values |= data_loss_window(readings)
        values["lag_at_cutover"] = lag_at_cutover(r for r in readings if r.get("metric") != "none")
        if topology.planned:
            values["data_loss_note"] = (
                "planned: writers were fenced before the lag was read, and Aurora's switchover "
                "synchronizes before promoting"
            )
    if preflight is not None:
        values["preflight"] = (
            f"{len(preflight.checks)} checks, {len(preflight.warnings)} warnings, "
            f"{len(preflight.blocking)} blocking"
        )
    return values


def run_figures(
    journal: Journal, head: dict[str, Any], objective: Callable[[], str]
) -> tuple[dict[str, Any], list[dict[str, Any]] | None]:
    """A switch's figures from its journal: ``head``, then the RTO (the run's start to the
    post-check's write) against ``objective()``; and the lag readings taken at cut-over."""
    events = list(journal.events())
    started = next((e["ts"] for e in events if e["event"] == "run_started"), None)
    results = journal.results()
    values = dict(head)
    check = results.get(POSTCHECK) or {}
    if started and isinstance(check, dict) and check.get("verified_at"):
        seconds = (
            datetime.fromisoformat(check["verified_at"]) - datetime.fromisoformat(started)
        ).total_seconds()
        values["rto"] = f"{seconds:.1f}s"
        values["rto_seconds"] = round(seconds, 3)
        values["rto_objective"] = objective()
    measured = results.get(MEASURE) or {}
    readings = measured.get("readings") if isinstance(measured, dict) else None
    return values, readings


def lag_at_cutover(readings: Iterable[dict[str, Any]]) -> str:
    return "; ".join(
        f"{r['store']} {'unknown' if r['seconds'] is None else str(r['seconds']) + 's'}"
        for r in readings
    )


def _objective(topology: Topology) -> str:
    """The tightest RTO of the switched stores' data classes (what the run is measured against)."""
    config = topology.config
    stores = protected_stores(config)
    if not stores:
        return "n/a"
    rto = min(config.data_classes[config.stores[s].data_class].rto for s in stores)
    return f"{int(rto.total_seconds())}s"


def upload_journal(ctx: OpsContext, runtime: Runtime, journal: Journal) -> str:
    """Best effort, to this (dr) stack's audit bucket, in its own region."""
    if not journal.path.exists():
        return "none"
    try:
        s3 = runtime.aws.client("s3", ctx.outputs.audit_bucket.region)
        audit = S3Store(s3, ctx.outputs.audit_bucket.name)
        return journal.upload(audit, Encryption(kms_key_id=ctx.outputs.vault_key_arn))
    except (ObjectStoreError, OSError, Exception) as error:  # the run's outcome stands regardless
        log.warning("journal not copied to the audit bucket: %s", error)
        return f"not copied: {error}"


def config_changes(ctx: OpsContext, topology: Topology, project_dir: Path) -> list[ConfigChange]:
    why = f"{'failback' if topology.failback else 'failover'} to {topology.target}"
    return [
        active_region_change(path, topology.target, why)
        for path in stack_files(project_dir, ctx.stack, ctx.config)
        if path.exists()
    ]


def _show_config(outcome: Outcome, out: TextIO, request: FailoverRequest, status: Status) -> None:
    changed = [c for c in outcome.config_changes if c.changed]
    if not changed:
        out.write("stack config: active_region already names the new primary\n")
        return
    out.write("stack config change for the next `pulumi up` (active_region):\n")
    for change in changed:
        out.write(change.diff())
    if request.update_stack_config and status is Status.SUCCEEDED:
        for change in changed:
            change.write()
        outcome.config_written = True
        out.write(f"written: {', '.join(str(c.path) for c in changed)}\n")
    else:
        out.write("not written (pass --update-stack-config to write it)\n")
