"""One backup of one store, now: what the CronJobs, ``invoke backup.store`` and the drill run.

It wraps the engine with what every run owes the alerts: the outcome, success or failure, goes to
the Pushgateway and CloudWatch.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import TextIO

from pydantic import BaseModel, ConfigDict, Field

from drkit import audit
from drkit.audit import audited
from drkit.backup.engine import BackupFailed, Handler, IsolatedCopyFailed, Progress, run_backup
from drkit.backup.manifest import Manifest
from drkit.backup.metrics import (
    BackupOutcome,
    Publisher,
    publish,
    push_to_gateway,
    put_cloudwatch,
)
from drkit.context import OpsContext, env_prefix
from drkit.handlers import backup_handler, backup_path, needs_credentials, service_of
from drkit.human import iso_time
from drkit.lease import LeaseHeld
from drkit.progress import ByteProgress, human_bytes
from drkit.recovery import BackupIndex
from stackmodels.config import IsolatedCopy
from stackmodels.durations import format_duration
from stackmodels.outputs import SERVICE_NAMES

log = logging.getLogger("drkit.backups")


class BackupRequest(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    stack: str
    store: str
    outputs: Path | None = None
    dry_run: bool = False
    pushgateway: str | None = None
    cloudwatch: bool = False
    wait_seconds: int = Field(default=0, ge=0, le=86400)
    """Wait this long for another run of the store to release its lease (0: refuse at once)."""
    jobs: str | None = None
    """``--jobs N`` or ``auto``: streams in parallel inside one snapshot (PostgreSQL's backup
    format 2); None: one stream, as before."""


class JobsNotSupported(ValueError):
    """``--jobs`` for a store whose backup runs as one stream."""


def in_parallel(handler: Handler, jobs: str | None) -> Handler:
    """``handler`` with ``jobs`` parallel streams (a handler that offers ``with_jobs``)."""
    if jobs is None:
        return handler
    with_jobs = getattr(handler, "with_jobs", None)
    if with_jobs is None:
        raise JobsNotSupported(
            f"--jobs {jobs}: a {handler.kind} backup runs as one stream; only PostgreSQL backups "
            "run in parallel. Nothing was changed."
        )
    parallel: Handler = with_jobs(jobs)
    return parallel


def publishers_for(ctx: OpsContext, request: BackupRequest) -> list[Publisher]:
    publishers: list[Publisher] = []
    if request.pushgateway:
        publishers.append(partial(push_to_gateway, gateway=request.pushgateway))
    if request.cloudwatch:
        publishers.append(partial(put_cloudwatch, cloudwatch=ctx.aws("cloudwatch")))
    return publishers


def backup_store(
    ctx: OpsContext,
    store: str,
    publishers: list[Publisher],
    progress: Progress | None = None,
    wait: timedelta = timedelta(0),
    jobs: str | None = None,
) -> Manifest:
    """Run the engine for ``store``; publish the outcome whether it succeeded or not.

    ``LeaseHeld`` (another run of the store is on) is a refusal: nothing ran, nothing is
    published."""
    config = ctx.store_config(store)
    handler = in_parallel(backup_handler(ctx, store), jobs)  # refused before the lease
    clock = time.monotonic()
    try:
        manifest = run_backup(
            store,
            config.data_class,
            handler,
            ctx.destinations(
                config.data_class,
                isolated_optional=config.isolated_copy is IsolatedCopy.OPTIONAL,
            ),
            progress,
            wait=wait,
        )
    except BackupFailed as error:
        committed = error.manifest if isinstance(error, IsolatedCopyFailed) else None
        publish(
            BackupOutcome(
                store,
                config.data_class,
                False,
                datetime.now(UTC),
                time.monotonic() - clock,
                copies=len(committed.destinations) if committed is not None else 0,
                skipped=dict(committed.skipped) if committed is not None else {},
            ),
            publishers,
        )
        raise
    publish(
        BackupOutcome(
            store,
            config.data_class,
            True,
            manifest.finished_at,
            manifest.duration_seconds,
            manifest.size,
            copies=len(manifest.destinations),
            skipped=dict(manifest.skipped),
        ),
        publishers,
    )
    return manifest


def previous_size(ctx: OpsContext, store: str) -> int | None:
    """The bytes the store's previous backup read (its catalog entry's ``raw_size``): the
    estimate a backup's progress counts against. None when there is none, or the catalog cannot
    be read (progress then shows bytes and rate only; the backup itself is not held up)."""
    try:
        return BackupIndex(ctx.config, ctx.vault()).latest(store).raw_size or None
    except Exception as error:  # no backup yet, or an unreadable catalog
        log.debug("no previous backup of %s to count against (%s)", store, error)
        return None


def take_backup(
    request: BackupRequest, project_dir: Path, out: TextIO, progress_to: TextIO | None = None
) -> int:
    """The task: print the plan, then back up unless it is a dry run. Returns the exit code.

    Progress goes to ``progress_to`` (stderr by default)."""
    ctx = OpsContext.load(request.stack, request.outputs, project_dir)
    arguments = {"store": request.store, "wait_seconds": request.wait_seconds}
    if request.jobs is not None:
        arguments["jobs"] = request.jobs
    with audited(ctx, "backup", arguments, dry_run=request.dry_run) as trail:
        code = _take_backup(ctx, request, out, progress_to)
        if trail is not None and code:
            trail.failed()
        return code


def _take_backup(
    ctx: OpsContext, request: BackupRequest, out: TextIO, progress_to: TextIO | None
) -> int:
    store = ctx.store_config(request.store)
    path = backup_path(ctx, request.store)  # refuses here if the stack cannot serve the store
    service = service_of(ctx, request.store)
    exported = ctx.outputs.stores.get(request.store)
    source = (
        exported.describe()
        if exported is not None
        else f"{SERVICE_NAMES[service]} ({service.value}): the one the job runs in, or the "
        f"kubeconfig's context {ctx.config.kubernetes.context!r}, namespace "
        f"{ctx.outputs.k8s_namespace}"
    )
    retention = ctx.config.retention_of(store.data_class)
    lock_until = datetime.now(UTC) + timedelta(days=retention.days)
    targets = [f"s3://{ctx.outputs.backup_vault.name}"]
    if ctx.outputs.gcs_mirror_bucket:
        targets.append(f"gs://{ctx.outputs.gcs_mirror_bucket}")
    if ctx.outputs.isolated_vault is not None:
        targets.append(
            f"s3://{ctx.outputs.isolated_vault.bucket.name} (isolated copy, "
            f"{store.isolated_copy.value})"
        )
    out.write(
        f"plan: back up {request.store} ({store.kind.value}, data class {store.data_class}) "
        f"of stack {ctx.stack} to {', '.join(targets)}, encrypted with "
        f"{ctx.outputs.vault_key_arn}, locked {retention.object_lock.value.upper()} until "
        f"{lock_until:%Y-%m-%d}\n"
        f"  source: {source}\n"
        f"  method: {path.method}\n"
    )
    credentialed = needs_credentials(ctx, request.store)
    missing = credentialed and not ctx.credentials.has(request.store)
    if credentialed:
        prefix = env_prefix(request.store)
        state = "MISSING" if missing else "set"
        out.write(
            f"  credentials: {prefix}_USER and {prefix}_PASSWORD {state} (the CronJob takes "
            f"them from Secret {request.store}-backup-credentials)\n"
        )
    if request.jobs is not None:
        from drkit.pg_jobs import parse_jobs

        parse_jobs(request.jobs)  # 0 or not a number: refused, even in a dry run
        out.write(
            f"  parallel: --jobs {request.jobs}, streams inside one snapshot (backup format 2)\n"
        )
    if request.dry_run:
        if missing:
            out.write("  a real run would stop here: the store's credentials are not set\n")
        out.write("dry run: nothing was read or written\n")
        return 0
    backup_handler(ctx, request.store)  # fails here, before any write, if it cannot be built
    previous = partial(previous_size, ctx, request.store)
    progress = ByteProgress(request.store, progress_to, total=previous, estimate=True)
    try:
        manifest = backup_store(
            ctx,
            request.store,
            publishers_for(ctx, request),
            progress,
            timedelta(seconds=request.wait_seconds),
            request.jobs,
        )
    except LeaseHeld:
        progress.done()
        raise
    except IsolatedCopyFailed as error:
        progress.done()
        out.write(f"FAILED: {error}\n")
        audit.step(
            "backup",
            "failed",
            error=str(error),
            backup_id=error.manifest.backup_id,
            committed=error.manifest.destinations,
            skipped=error.manifest.skipped,
        )
        return 1
    except BackupFailed as error:
        progress.done()
        out.write(f"FAILED: {error}\n")
        audit.step("backup", "failed", error=str(error))
        return 1
    progress.done()
    audit.step(
        "backup",
        "committed",
        backup_id=manifest.backup_id,
        size=manifest.size,
        recovery_point=manifest.recovery_point.isoformat(),
        copies=manifest.destinations,
        skipped=manifest.skipped,
    )
    out.write(
        f"backup {manifest.backup_id} committed: {human_bytes(manifest.raw_size)} read, "
        f"{human_bytes(manifest.size)} stored, {format_duration(manifest.duration_seconds)}, "
        f"consistent at {iso_time(manifest.recovery_point)}\n"
    )
    for name, cause in manifest.skipped.items():  # only with isolated_copy: optional
        out.write(
            f"isolated copy SKIPPED (isolated_copy: optional): {len(manifest.destinations)} "
            f"copies, none in {name}: {cause}\n"
        )
    return 0
