"""Run an operation's plan the same way every time: journal under ``.drkit/journal``, a copy in
the audit bucket, reports under ``reports/<run id>/`` (``drkit.reports``; none for a dry run),
and the exit code of the aggregated status."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from drkit.context import OpsContext
from drkit.lease import held, scope_slug
from drkit.ops.executor import (
    Confirm,
    Executor,
    RunReport,
    Status,
    terminal_confirm,
    write_report,
)
from drkit.ops.journal import Journal, JournalError, new_run_id
from drkit.ops.plan import Plan
from drkit.ops.selection import object_store
from drkit.reports import REPORTS_DIR, record_run, run_dir
from drkit.storage.objectstore import Encryption, ObjectStoreError
from drkit.storage.s3 import S3Store
from stackmodels.durations import format_duration

log = logging.getLogger("drkit.ops")

JOURNAL_DIR = Path(".drkit/journal")


@dataclass(frozen=True)
class RunOptions:
    dry_run: bool = False
    yes: bool = False
    resume: str | None = None


def execute(executor: Executor, plan: Plan, run_id: str, options: RunOptions) -> RunReport:
    """Run ``plan`` as the options say: a dry run, confirmed (or ``--yes``), or resumed."""
    return executor.run(
        plan,
        run_id=run_id,
        dry_run=options.dry_run,
        assume_yes=options.yes,
        resume=options.resume is not None,
    )


def journal_parameters(project_dir: Path, run_id: str) -> dict[str, Any]:
    """The parameters a journaled run started with, so ``--resume ID`` needs nothing else."""
    journal = Journal(project_dir / JOURNAL_DIR, run_id)
    for event in journal.events():
        if event["event"] == "run_started":
            return dict(event.get("parameters", {}))
    raise JournalError(f"no journal {journal.path} to resume")


def run_plan(
    ctx: OpsContext,
    plan: Plan,
    options: RunOptions,
    project_dir: Path,
    out: TextIO,
    report_name: str,
    figures: dict[str, Any] | None = None,
    confirm: Confirm = terminal_confirm,
) -> RunReport:
    executor = Executor(project_dir / JOURNAL_DIR, out, confirm=confirm)
    run_id = options.resume or new_run_id(plan.name)
    with _target_lease(ctx, plan, options, run_id):
        report = execute(executor, plan, run_id, options)
    report.figures |= figures or {}
    if not options.dry_run:
        report.figures["journal_copy"] = _upload_journal(
            ctx, Journal(project_dir / JOURNAL_DIR, run_id)
        )
    written = keep_report(report, project_dir, report_name, ctx.stack, options)
    out.write(
        f"{report.status.value}: {report.plan} in {format_duration(report.seconds)}"
        + (f"; report {written}; journal {report.journal}\n" if written else "\n")
    )
    return report


def keep_report(
    report: RunReport, project_dir: Path, name: str, stack: str, options: RunOptions
) -> Path | None:
    """``reports/<run id>/<name>.md`` and ``.json`` with the run's ``run.json``, and
    ``reports/latest`` pointed at it; a dry run writes none (None)."""
    if options.dry_run or report.status is Status.DRY_RUN:
        return None
    root = project_dir / REPORTS_DIR
    markdown, _ = write_report(report, run_dir(root, report.run_id), name)
    record_run(
        root,
        report.run_id,
        operation=report.plan,
        stack=stack,
        outcome=report.status.value,
        started_at=report.started_at,
        seconds=report.seconds,
        finished_at=report.finished_at,
        journal=report.journal,
    )
    return markdown


@contextlib.contextmanager
def _target_lease(ctx: OpsContext, plan: Plan, options: RunOptions, run_id: str) -> Iterator[None]:
    """One restore into a target at a time: a restore plan that writes holds the lease
    ``restore/<target>`` in the store it reads from (the vault, or the mirror with ``--source
    mirror``). Held by another run: ``LeaseHeld``, a refusal before any step. A resumed run has
    the same run id, so it takes over the lease its killed run left.

    A restore that reads no backup object (Aurora's, from a snapshot or a point in time) takes no
    lease: it creates a new cluster, and AWS itself refuses a second cluster with that id."""
    target = plan.parameters.get("target")
    source_name = plan.parameters.get("source")
    if (
        options.dry_run
        or not plan.name.startswith("restore ")
        or not target
        or source_name not in ("vault", "mirror", "isolated")
        or not plan.mutates
    ):
        yield
        return
    # From the isolated vault, the lease is held there too, through its reader role (which may
    # create under leases/restore/ only): a restore after an account compromise must not need
    # anything of the production account, whose vault key the attacker may have disabled.
    # The bucket's default lock applies there; the reader may send no lock headers.
    source = object_store(ctx, str(source_name))
    isolated = ctx.outputs.isolated_vault if source_name == "isolated" else None
    with held(
        source,
        scope_slug(f"restore/{target}"),
        owner=run_id,
        purpose=f"{plan.name} into {target} (run {run_id})",
        encryption=Encryption(
            kms_key_id=isolated.kms_key_arn if isolated else ctx.outputs.vault_key_arn
        ),
        locked=isolated is None,
    ):
        yield


def _upload_journal(ctx: OpsContext, journal: Journal) -> str:
    """Best effort: the audit bucket may be in the dead region during a failover."""
    if not journal.path.exists():
        return "none"
    try:
        audit = S3Store(ctx.aws("s3"), ctx.outputs.audit_bucket.name)
        return journal.upload(audit, Encryption(kms_key_id=ctx.outputs.vault_key_arn))
    except (ObjectStoreError, OSError) as error:
        log.warning("journal not copied to the audit bucket: %s", error)
        return f"not copied: {error}"
