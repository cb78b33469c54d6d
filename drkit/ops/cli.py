"""What each ``invoke`` task calls: one function per command, taking the flags as the task got
them (a blank string is a flag not given), printing to stdout, and ending in one of three ways:

- it returns: exit 0;
- it raises a ``ValueError`` (a refusal: bad input, nothing changed) or any other error (a
  failure): ``drkit.cli_errors`` turns it into one line and exit 2 or 1;
- it raises ``Ended``: the command's outcome sets the exit code (a plan that failed, a drill
  that missed an objective), with the line of its own, if any, that the command has always given.

Loading the stack (``context``), resuming a journaled run and choosing stores happen here, once
for every command. ``tasks.py`` declares the flags and their help; it holds no logic. This module
imports the ops modules inside the functions that use them, so ``invoke --list`` stays fast, and
it never imports invoke (the ops package does not depend on it).
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
import tempfile
from dataclasses import dataclass
from inspect import Parameter, Signature
from pathlib import Path
from typing import TYPE_CHECKING, Any

from drkit.cli_errors import Ended, debug_enabled, one_line

if TYPE_CHECKING:
    from drkit.context import OpsContext
    from drkit.ops.verbs import RestoreVerb

RESTORE_VERBS = ("postgres", "redis", "kafka", "k8s", "aurora", "all")
"""``restore.<verb>``: each the module ``drkit.ops.restore_<verb>``, keeping ``drkit.ops.verbs``."""


def context(project_dir: Path, stack: str, outputs: str = "") -> OpsContext:
    """The stack's config and outputs: ``Pulumi.<stack>.yaml`` and ``--outputs FILE`` (default:
    ``pulumi stack output``, or the local stack's own file)."""
    from drkit.context import OpsContext

    return OpsContext.load(stack, Path(outputs) if outputs else None, project_dir)


READ_ONLY = frozenset({"config_check", "backups_list", "backups_info", "dr_status", "audit_list"})
"""The commands that only read: on a production stack they need the stack but no confirmation."""


def on_stack(call: Any, project_dir: Path, flags: dict[str, Any]) -> dict[str, Any]:
    """``flags`` with the stack chosen (``drkit.stack_choice``): from ``--stack``,
    ``DRKIT_STACK`` or the resumed run's journal, else refused; named in the first line (on
    stderr when the output is JSON); a production stack confirmed unless ``--yes`` or the command
    only reads. ``invoke drill`` told no stack runs its own servers: it acts on none."""
    from drkit.stack_choice import LOCAL, STACK_VARIABLE, choose, confirm

    if "stack" not in flags:
        return flags
    func = getattr(call, "func", call)  # restore.<verb> is a partial
    name = getattr(func, "__name__", "")
    out = sys.stderr if flags.get("format") == "json" or flags.get("json") is True else sys.stdout
    if name == "drill" and not (flags["stack"] or os.environ.get(STACK_VARIABLE, "").strip()):
        out.write("stack: none (the drill's own servers on this machine; --stack for a stack)\n")
        return flags | {"stack": LOCAL}
    resume = str(flags.get("resume") or "")
    journal = None
    if resume:
        from drkit.ops.run import journal_parameters

        journal = journal_parameters(project_dir, resume).get("stack")
    choice = choose(flags["stack"], project_dir, journal_stack=journal, journal_run=resume)
    out.write(choice.line() + "\n")
    out.flush()
    only_reads = name == "verify" and flags.get("skip_test_restore") and not flags.get("cleanup")
    read_only = name in READ_ONLY or bool(flags.get("dry_run")) or bool(only_reads)
    confirm(choice, yes=bool(flags.get("yes")), read_only=read_only)
    return flags | {"stack": choice.name}


def refused(error: BaseException, code: int = 2) -> Ended:
    """``error: <the error in one line>`` and ``code``, for an error that is not a ``ValueError``
    but ends the command as a refusal would. ``DRKIT_DEBUG=1`` raises it with its traceback."""
    if debug_enabled():
        raise error
    return Ended(code, f"error: {one_line(error)}")


def _exit(code: int) -> None:
    if code:
        raise Ended(code)


def audited(
    ctx: OpsContext | None, operation: str, dry_run: bool = False, **arguments: Any
) -> contextlib.AbstractContextManager[Any]:
    """Journal the command in the stack's audit bucket as it runs (``drkit.audit``): started,
    its steps, finished with the outcome its exit code says. A dry run journals nothing."""
    from drkit.audit import audited as journaled

    return journaled(ctx, operation, arguments, dry_run=dry_run)


# --- restores -----------------------------------------------------------------------------------


def restore_verb(name: str) -> RestoreVerb[Any, Any]:
    if name not in RESTORE_VERBS:
        raise ValueError(f"restore verb {name!r}: one of {', '.join(RESTORE_VERBS)}")
    verb: RestoreVerb[Any, Any] = importlib.import_module(f"drkit.ops.restore_{name}").VERB
    return verb


def restore(
    name: str,
    project_dir: Path,
    *,
    stack: str,
    outputs: str = "",
    dry_run: bool = False,
    yes: bool = False,
    resume: str = "",
    **flags: Any,
) -> None:
    """``invoke restore.<name>``, every verb the same way: the request from the verb's own
    ``flags`` (``RestoreRequest.from_flags``) or, with ``--resume ID``, from that run's journal,
    pinned to what it resolved (its stack, backup and target: ``RestoreRequest.resumed``); the
    stack loaded; the plan built (every refusal before it: exit 2, nothing changed); the plan
    run; what the run held released."""
    from drkit.ops.run import RunOptions, journal_parameters, run_plan
    from drkit.ops.verbs import RestoreEnv

    verb = restore_verb(name)
    if resume:
        saved = journal_parameters(project_dir, resume)
        stack = str(saved.get("stack", stack))
        request = verb.request.resumed(saved)
    else:
        request = verb.request.from_flags(**flags)
    ctx = context(project_dir, stack, outputs)
    out = sys.stdout
    arguments = request.model_dump(mode="json") | {"resume": resume}
    with audited(ctx, f"restore.{name}", dry_run, **arguments):
        env = RestoreEnv(project_dir, out, resume or None)
        plan, prepared = verb.build_plan(ctx, request, env)
        try:
            options = RunOptions(dry_run, yes, resume or None)
            report = run_plan(ctx, plan, options, project_dir, out, verb.report, prepared.figures)
        finally:
            prepared.close()
        _exit(report.exit_code)


BACKUP_RUN_FLAGS: dict[str, tuple[Any, str]] = {  # here, not in tasks.py: no lines to spare
    "wait": (0, "seconds to wait for another run of the store to finish (default: refuse)"),
    "jobs": (
        "",
        "PostgreSQL: N streams in parallel inside one snapshot (backup format 2), or auto (the "
        "cores, within the server's free connections); default: one stream (format 1)",
    ),
}
RESTORE_JOBS_FLAG: dict[str, tuple[Any, str]] = {
    "jobs": (
        "",
        "parallel jobs for a format-2 backup (default auto: the cores, within the server's free "
        "connections); a format-1 backup restores as one stream",
    ),
}
REDIS_TARGET_FLAGS: dict[str, tuple[Any, str]] = {  # here, not in tasks.py: no lines to spare
    "replication_group": ("", "restore into this NEW ElastiCache replication group instead"),
    "node_type": ("", "ElastiCache node type (default: the stack config's)"),
    "replicas": (1, "ElastiCache replicas per shard (default 1)"),
    "target_url": (
        "",
        "restore into this Redis instead, stopping nothing: redis://[user:password@]host:port, "
        "rediss:// for TLS (?ssl_ca_certs=FILE)",
    ),
}
"""``restore.redis``'s targets other than the store's own server."""


# --- backups and checks -------------------------------------------------------------------------


def backup_store(
    project_dir: Path,
    *,
    store: str,
    wait: int,
    stack: str,
    outputs: str,
    dry_run: bool,
    yes: bool = False,  # the production stack's confirmation, asked by ``on_stack``
    jobs: str = "",
) -> None:
    from drkit.backups import BackupRequest, take_backup

    request = BackupRequest(
        stack=stack,
        store=store,
        outputs=outputs or None,
        dry_run=dry_run,
        wait_seconds=wait,
        jobs=str(jobs) or None,
    )
    _exit(take_backup(request, project_dir, sys.stdout))


def aurora_snapshot(
    project_dir: Path,
    *,
    reason: str,
    kms_key: str,
    stack: str,
    outputs: str,
    dry_run: bool,
    yes: bool = False,  # the production stack's confirmation, asked by ``on_stack``
) -> None:
    from drkit.aurora import AuroraError
    from drkit.ops.aurora_snapshot import AuroraSnapshotRequest, take_snapshot

    ctx = context(project_dir, stack, outputs)
    with audited(ctx, "backup.aurora-snapshot", dry_run, reason=reason, kms_key=kms_key):
        try:
            take_snapshot(ctx, AuroraSnapshotRequest(reason, kms_key or None, dry_run), sys.stdout)
        except AuroraError as error:
            raise Ended(1, f"FAILED: {error}") from None


def config_check(project_dir: Path, *, stack: str) -> None:
    """The check's verdict: one line per problem on stderr and exit 1, or the stores it found."""
    from drkit.human import table
    from stackmodels import ConfigError
    from stackmodels.config import VaultStackConfig, load_any
    from stackmodels.durations import format_duration

    try:
        config = load_any(project_dir / f"Pulumi.{stack}.yaml")
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        raise Ended(1) from None
    if isinstance(config, VaultStackConfig):  # the isolated backup account (issue 22)
        writers = ", ".join(f"{n} ({w.account_id})" for n, w in config.writers.items())
        print(
            f"Pulumi.{stack}.yaml: valid (vault in {config.region}, account {config.account_id}, "
            f"{len(config.data_classes)} data classes; writers: {writers}; reader: "
            f"{config.reader.account_id})"
        )
        return
    print(
        f"Pulumi.{stack}.yaml: valid ({config.role.value} in {config.region}, "
        f"{len(config.data_classes)} data classes, {len(config.stores)} stores)"
    )
    rows = []
    for name, store in config.stores.items():
        data_class = config.data_classes[store.data_class]
        objectives = f"RPO {format_duration(data_class.rpo)}, RTO {format_duration(data_class.rto)}"
        rows.append((name, store.kind.value, store.schedule, store.data_class, objectives))
    header = ("store", "kind", "schedule", "data class", "objectives")
    print("\n".join("  " + line for line in table(header, rows)))


def verify(
    project_dir: Path,
    *,
    stores: str,
    skip_test_restore: bool,
    source: str,
    all_: bool,
    cleanup: bool,
    stack: str,
    outputs: str,
    dry_run: bool,
    yes: bool,
) -> None:
    """``invoke verify``, or with ``cleanup`` only the removal of scratch targets left behind."""
    from drkit.ops.run import RunOptions
    from drkit.ops.verbs import comma_list
    from drkit.ops.verify import VerifyRequest, exit_code, run_cleanup, run_verify

    if cleanup:
        ctx = context(project_dir, stack, outputs)
        with audited(ctx, "verify.cleanup", dry_run, stores=stores):
            _exit(run_cleanup(ctx, comma_list(stores), sys.stdout, dry_run=dry_run))
        return
    request = VerifyRequest(
        stores=comma_list(stores),
        test_restore=not skip_test_restore,
        source=source,
        all_backups=all_,
    )
    ctx = context(project_dir, stack, outputs)
    with audited(ctx, "verify", dry_run, **vars(request)):
        run, report = run_verify(ctx, request, RunOptions(dry_run, yes), project_dir, sys.stdout)
        _exit(exit_code(run, report))


def backups_list(
    project_dir: Path,
    *,
    stores: str,
    days: int,
    source: str,
    detail: bool,
    format: str,
    stack: str,
    outputs: str,
) -> None:
    from drkit.ops.backups_info import ListRequest, list_backups
    from drkit.ops.verbs import comma_list

    request = ListRequest(stores=comma_list(stores), days=days, source=source, detail=detail)
    listing = list_backups(context(project_dir, stack, outputs), request)
    print(listing.to_json() if format == "json" else listing.to_text(), end="")


def backups_info(
    project_dir: Path,
    *,
    backup_id: str,
    store: str,
    source: str,
    format: str,
    stack: str,
    outputs: str,
) -> None:
    from drkit.ops.backups_info import InfoRequest, backup_info

    request = InfoRequest(backup_id=backup_id, store=store or None, source=source)
    info = backup_info(context(project_dir, stack, outputs), request)
    print(info.to_json() if format == "json" else info.to_text(), end="")


def kafka_topics(
    project_dir: Path, *, stack: str, outputs: str, dry_run: bool, yes: bool, snapshot: bool
) -> None:
    """Reconcile the topics with their classes, or (``snapshot``) only store their configuration
    in the vault and the mirror as each backup does."""
    from confluent_kafka import KafkaException

    from drkit.kafka_topics import admin_for, reconcile, take_snapshots
    from drkit.ops.executor import terminal_confirm

    ctx = context(project_dir, stack, outputs)
    with audited(ctx, "kafka.topics", dry_run, snapshot=snapshot):
        admin, msk = admin_for(ctx)
        try:
            if snapshot:
                code = take_snapshots(ctx, sys.stdout)
            else:
                code = reconcile(
                    admin, msk, sys.stdout, dry_run=dry_run, yes=yes, confirm=terminal_confirm
                )
        except KafkaException as error:
            raise Ended(1, f"error: kafka: {error}") from None
        _exit(code)


AUDIT_LIST_DOC = "The audit journal: each operation's events (who, what, when, run, outcome)."
AUDIT_LIST_FLAGS: dict[str, tuple[Any, str]] = {  # here, not in tasks.py: it has no lines to spare
    "since": ("", "only events at or after this time (ISO 8601) or this age back (90m, 6h, 7d)"),
    "operation": ("", "only this operation, e.g. backup, restore.postgres, verify, failover"),
    "json": (False, "print the events as JSON"),
}


def audit_list(
    project_dir: Path, *, since: str, operation: str, json: bool, stack: str, outputs: str
) -> None:
    """The audit journal's events, oldest first: a table, or JSON."""
    from drkit.audit import ListRequest, parse_since, read_events, to_json, to_text
    from drkit.storage.s3 import S3Store

    request = ListRequest(parse_since(since), operation or None)
    ctx = context(project_dir, stack, outputs)
    bucket = ctx.outputs.audit_bucket
    events = read_events(S3Store(ctx.aws("s3", bucket.region), bucket.name), request)
    print(to_json(events) if json else to_text(events), end="")


# --- drills -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MonthlyDrill:
    """What ``invoke drill`` passes the monthly drill (against a stack, or ``--monthly``)."""

    stores: str
    pushgateway: str
    cloudwatch: bool
    stack: str
    outputs: str
    dry_run: bool
    yes: bool


def drill(
    project_dir: Path,
    *,
    scenario: list[str] | None,
    size_mb: float,
    time_factor: float,
    soak_seconds: float,
    keep: bool,
    monthly: bool,
    **monthly_flags: Any,
) -> None:
    """``invoke drill``: on ``--stack local`` the full drill on this machine (seed, trade, back
    up, break, restore, verify, measure); against a provisioned stack, or with ``monthly``, the
    monthly drill (``drkit.drill.monthly``), told the flags of ``MonthlyDrill``."""
    request = MonthlyDrill(**monthly_flags)
    if request.stack != "local" or monthly:
        monthly_drill(project_dir, request)
        return
    from drkit.drill.run import DrillOptions, run_drill
    from drkit.drill.scenarios import SCENARIOS

    options = DrillOptions(
        size_mb=size_mb,
        time_factor=time_factor,
        soak_seconds=soak_seconds,
        keep=keep,
        scenarios=scenario or list(SCENARIOS),
    )
    workdir = Path(tempfile.mkdtemp(prefix="drkit-drill-"))
    report = run_drill(options, project_dir, workdir, project_dir / "reports")
    if not report.ok:
        raise Ended(1, "drill FAILED: an objective was missed or a restore did not verify")


def monthly_drill(project_dir: Path, request: MonthlyDrill) -> None:
    """Every chosen store's newest backup restored into a scratch target, counted, removed,
    timed and published; by default the stack's stores of every kind this build restores
    (``drkit.kinds.restorable_kinds``: postgres, kafka, redis, kubernetes)."""
    from drkit.drill.monthly import run_monthly_drill
    from drkit.kinds import restorable_kinds
    from drkit.ops.run import RunOptions
    from drkit.ops.verbs import comma_list

    ctx = context(project_dir, request.stack, request.outputs)
    kinds = restorable_kinds()
    chosen = comma_list(request.stores) or [
        name for kind in kinds for name in ctx.config.stores_of(kind)
    ]
    for name in chosen:
        ctx.store_config(name)  # an unknown store is refused before anything runs
    dry_run = request.dry_run
    options = RunOptions(dry_run, request.yes)
    with audited(ctx, "drill", dry_run, monthly=True, stores=chosen):
        report = run_monthly_drill(
            ctx,
            chosen,
            options,
            project_dir,
            sys.stdout,
            request.pushgateway or None,
            request.cloudwatch,
        )
        if not dry_run and not report.ok:
            raise Ended(1, "monthly drill FAILED: a restore did not verify or missed its RTO")


def roundtrip(project_dir: Path, *, size_mb: float, keep_dir: str) -> None:
    from drkit.roundtrip import run_round_trip

    workdir = Path(keep_dir) if keep_dir else Path(tempfile.mkdtemp(prefix="drkit-local-"))
    report = run_round_trip(workdir, project_dir, size_mb, project_dir / "reports")
    if not report.ok:
        raise Ended(1, "round trip FAILED: a restore did not match the source")


def reports_list(project_dir: Path, *, limit: int, json: bool) -> None:
    """``invoke reports.list``: the newest runs that wrote a report (``reports/<run id>/``)."""
    from drkit.reports import recent_runs, reports_root, runs_json, runs_text

    root = reports_root(project_dir)
    runs = recent_runs(root, limit)
    print(runs_json(runs) if json else runs_text(runs, root), end="")


# --- failover, failback, status -----------------------------------------------------------------


def failover(
    project_dir: Path, *, to: str, planned: bool, cache_promotion: str, **switch: Any
) -> None:
    """``invoke failover``: to the dr side, planned (a switchover) or not."""
    if to != "dr":
        hint = "failover goes to dr; to return, run `invoke failback --to prod`"
        raise Ended(2, f"error: --to {to!r}: {hint}")
    _switch(
        project_dir, {"to": to, "planned": planned, "cache_promotion": cache_promotion}, **switch
    )


def failback(project_dir: Path, *, to: str, **switch: Any) -> None:
    """``invoke failback``: back to prod, always planned (replication toward it caught up)."""
    if to != "prod":
        hint = "failback returns to prod; to leave prod, run `invoke failover`"
        raise Ended(2, f"error: --to {to!r}: {hint}")
    _switch(project_dir, {"to": to, "planned": True}, **switch)


def _switch(
    project_dir: Path,
    own: dict[str, Any],
    *,
    stack: str,
    outputs: str,
    kubeconfig: str,
    kube_context: str,
    source_kube_context: str,
    dry_run: bool,
    yes: bool,
    resume: str,
    **shared: Any,
) -> None:
    """A new run of failover's or failback's ``own`` arguments and those they share, or
    ``--resume``; a blocked preflight is a refusal (exit 2)."""
    from drkit.failover.command import switch_regions
    from drkit.failover.operation import PreflightBlocked
    from drkit.ops.run import RunOptions

    contexts = {
        "kube_context": kube_context or None,
        "source_kube_context": source_kube_context or None,
    }
    operation = "failover" if own["to"] == "dr" else "failback"
    arguments = own | contexts | shared | {"resume": resume}
    with audited(
        _switch_context(project_dir, stack, outputs, own["to"]), operation, dry_run, **arguments
    ):
        try:
            outcome = switch_regions(
                own | contexts | shared,
                stack=stack,
                outputs=outputs or None,
                kubeconfig=kubeconfig or None,
                options=RunOptions(dry_run, yes, resume or None),
                project_dir=project_dir,
                out=sys.stdout,
            )
        except PreflightBlocked as error:
            raise refused(error) from None
        _exit(outcome.exit_code)


def _switch_context(project_dir: Path, stack: str, outputs: str, to: str) -> OpsContext | None:
    """Where a switch journals: the stack it runs on (dr's outputs: dr's audit bucket, alive
    while prod is dark); on ``--stack local``, the side it switches to. None when it cannot be
    loaded: the switch itself then says why."""
    from drkit.context import LOCAL_STACK, LOCAL_STATE

    if stack == LOCAL_STACK and not outputs:
        side = project_dir / LOCAL_STATE / to / "outputs.json"
        outputs = str(side) if side.exists() else ""
    try:
        return context(project_dir, stack, outputs)
    except Exception:
        return None


def dr_status(project_dir: Path, *, format: str, kubeconfig: str, stack: str, outputs: str) -> None:
    from drkit.failover.command import status

    report = status(
        stack=stack, outputs=outputs or None, kubeconfig=kubeconfig or None, project_dir=project_dir
    )
    print(report.to_json() if format == "json" else report.to_text(), end="")
    _exit(report.exit_code)


# --- the local stack ----------------------------------------------------------------------------


def local_up(project_dir: Path, *, regions: int, only: str) -> None:
    from drkit.local.daemon import LocalStackError, up

    try:
        up(project_dir, regions, [item for item in only.split(",") if item])
    except LocalStackError as error:
        raise refused(error, code=1) from None


def local_status(project_dir: Path, *, json: bool) -> None:
    """Each local store's role, pid, URL and lag (``json``: as JSON); exit 1 when it is down."""
    import json as json_module

    from drkit.local.daemon import status
    from drkit.local.status import describe

    report = status(project_dir)
    if json:
        print(json_module.dumps(report, indent=2))
    else:
        print(describe(report), end="")
    if not report.get("regions"):
        raise Ended(1)


def local_down(project_dir: Path) -> None:
    from drkit.local.daemon import LocalStackError, down

    try:
        down(project_dir)
    except LocalStackError as error:
        raise refused(error, code=1) from None


def task_signature(positional: tuple[str, ...], declared: dict[str, tuple[Any, str]]) -> Signature:
    """What invoke reads of a task: the context, the ``positional`` arguments in order (they may
    be passed positionally from Python too), then every other flag keyword-only."""
    either, keyword = Parameter.POSITIONAL_OR_KEYWORD, Parameter.KEYWORD_ONLY
    ordered = [*positional, *(key for key in declared if key not in positional)]
    arguments = [Parameter("c", either)]
    arguments += [
        Parameter(key, either if key in positional else keyword, default=declared[key][0])
        for key in ordered
    ]
    return Signature(arguments)
