"""invoke tasks: parse arguments, call the ops package (drkit), print, set the exit code.

invoke --list                       every task
invoke local.roundtrip              the main job on the local embedded default (no cloud)
invoke local.up / local.status [--json] / local.down   the two-region local stack, kept up
invoke config.check --stack prod    validate Pulumi.<stack>.yaml against the config model
invoke backup.store trading-db --stack prod [--dry-run]
invoke restore.redis|restore.kafka|restore.all --dry-run   the plan with the real backup ids
invoke restore.aurora --at TIME|--latest|--snapshot ID --dry-run   into a NEW Aurora cluster
invoke verify --stores trading-db,event-stream            freshness, checksums, test restores
invoke backups.list / backups.info ID                     what exists, from the catalog
invoke kafka.topics --stack prod --dry-run                topic retention vs the topic classes
"""

from __future__ import annotations

import sys
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from invoke.collection import Collection
from invoke.context import Context
from invoke.exceptions import Exit
from invoke.tasks import task

from drkit.invoke_parse import refuse_parse_errors

ROOT = Path(__file__).resolve().parent
# google-api-core announces the end of Python 3.11 support (2027) on every import; not actionable.
warnings.filterwarnings("ignore", category=FutureWarning, module="google.api_core")


def fail(message: str | BaseException, code: int = 2) -> Exit:
    """``error: ...`` on one line; an exception's problems joined with "; " (drkit.cli_errors)."""
    from drkit.cli_errors import debug_enabled, one_line

    if isinstance(message, BaseException) and debug_enabled():
        raise message  # DRKIT_DEBUG=1: the refusal with its traceback
    text = one_line(message) if isinstance(message, BaseException) else message
    return Exit(f"error: {text}", code=code)


def _exit(line: str, code: int) -> Exit:
    return Exit(line, code=code)


def guard_tasks(collection: Collection) -> Collection:
    """Every task of ``collection`` (and its sub-collections) ends on an error with one line and
    exit 2 (refused, nothing changed) or 1 (failed), never a traceback unless DRKIT_DEBUG=1
    (``drkit.cli_errors``)."""
    from drkit.cli_errors import guarded

    for name in collection.tasks:
        body = collection.tasks[name].body
        if not getattr(body, "drkit_guarded", False):
            collection.tasks[name].body = guarded(body, _exit)
            collection.tasks[name].body.drkit_guarded = True
    for child in collection.collections.values():
        guard_tasks(child)
    return collection


@task(
    help={
        "size_mb": "approximate size of the trading database to seed (default 30)",
        "keep_dir": "keep the servers' working directory instead of a temporary one",
    }
)
def roundtrip(c: Context, size_mb: float = 30.0, keep_dir: str = "") -> None:
    """Back up the local PostgreSQL to the S3 vault and GCS mirror, break it, restore, verify."""
    from drkit.roundtrip import run_round_trip

    workdir = Path(keep_dir) if keep_dir else Path(tempfile.mkdtemp(prefix="drkit-local-"))
    report = run_round_trip(workdir, ROOT, size_mb, ROOT / "reports")
    print(f"reports: {ROOT / 'reports' / 'roundtrip.md'} and roundtrip.json")
    if not report.ok:
        raise Exit("round trip FAILED: a restore did not match the source", code=1)


@task(help={"stack": "prod, dr (reads Pulumi.<stack>.yaml)"})
def check(c: Context, stack: str = "prod") -> None:
    """Validate a stack's config: one line per problem, naming key, value and what is allowed."""
    from stackmodels import ConfigError, StackConfig

    try:
        config = StackConfig.for_stack(stack, ROOT)
    except ConfigError as error:  # the check's verdict: its report is one line per problem
        print(f"error: {error}", file=sys.stderr)
        raise Exit(code=1) from None
    print(
        f"Pulumi.{stack}.yaml: valid ({config.role.value} in {config.region}, "
        f"{len(config.data_classes)} data classes, {len(config.stores)} stores)"
    )
    for name, store in config.stores.items():
        data_class = config.data_classes[store.data_class]
        print(
            f"  {name:14} {store.kind.value:10} {store.schedule:14} -> {store.data_class} "
            f"(RPO {data_class.rpo}, RTO {data_class.rto})"
        )


@task(
    positional=["store"],
    help={
        "store": "a store of the stack config, e.g. trading-db",
        "stack": "prod, dr, or local (the local embedded default)",
        "outputs": "read stack outputs from this JSON file instead of `pulumi stack output`",
        "dry_run": "print what would be backed up, and where, without doing it",
        "wait": "seconds to wait for another run of the store to finish (default: refuse)",
    },
)
def store(
    c: Context,
    store: str,
    stack: str = "local",
    outputs: str = "",
    dry_run: bool = False,
    wait: int = 0,
) -> None:
    """Take one backup of a store now, with the same engine the CronJobs run.

    Another run of the store holding its lease: refused (exit 2, naming it), or ``--wait S``."""
    from drkit.backups import BackupRequest, take_backup

    try:
        request = BackupRequest(
            stack=stack, store=store, outputs=outputs or None, dry_run=dry_run, wait_seconds=wait
        )
        code = take_backup(request, ROOT, sys.stdout)
    except ValueError as error:
        raise fail(error) from None
    if code:
        raise Exit(code=code)


@task(
    name="postgres",
    iterable=["table"],
    help={
        "store": "the postgres store to restore (default trading-db)",
        "at": "restore the newest backup at or before this time (ISO 8601, UTC if no zone)",
        "backup": "restore this backup id (see backups.list)",
        "target_database": "database to restore into (default: <db>_restored_<backup time>)",
        "table": "restore only this table (repeatable): the seed's selective recovery",
        "force": "restore into a database that already has tables (its tables are replaced)",
        "source": "vault (S3, default) or mirror (GCS)",
        "stack": "prod, dr, or local",
        "outputs": "stack outputs JSON file instead of `pulumi stack output`",
        "dry_run": "print the plan with the real backup id and target; change nothing",
        "yes": "do not ask for confirmation",
        "resume": "resume the journaled run with this id",
    },
)
def restore_postgres(
    c: Context,
    store: str = "trading-db",
    at: str = "",
    backup: str = "",
    target_database: str = "",
    table: list[str] | None = None,
    force: bool = False,
    source: str = "vault",
    stack: str = "local",
    outputs: str = "",
    dry_run: bool = False,
    yes: bool = False,
    resume: str = "",
) -> None:
    """Restore a PostgreSQL backup (latest, --at TIME or --backup ID) into a target database."""
    from drkit.context import OpsContext
    from drkit.ops.restore_postgres import RestorePostgresRequest, build_plan, data_loss_figures
    from drkit.ops.run import RunOptions, journal_parameters, run_plan

    try:
        if resume:
            saved = journal_parameters(ROOT, resume)
            stack = saved.pop("stack", stack)
            backup_id = saved.pop("backup_id", None)
            for key in ("recovery_point", "target"):
                saved.pop(key, None)
            if backup_id:  # the backup the run chose, even if a newer one exists now
                saved |= {"backup": backup_id, "at": None}
            request = RestorePostgresRequest(**saved)
        else:
            request = RestorePostgresRequest(
                store=store,
                at=at or None,
                backup=backup or None,
                target_database=target_database or None,
                tables=table or [],
                force=force,
                source=source,
            )
        ctx = OpsContext.load(stack, Path(outputs) if outputs else None, ROOT)
        plan, prepared = build_plan(ctx, request, resume=bool(resume))
    except ValueError as error:
        raise fail(error) from None
    report = run_plan(
        ctx,
        plan,
        RunOptions(dry_run, yes, resume or None),
        ROOT,
        sys.stdout,
        "restore-postgres",
        data_loss_figures(prepared),
    )
    if report.exit_code:
        raise Exit(code=report.exit_code)


# --- restore.redis, restore.kafka, restore.all, verify, backups.list, backups.info -------------

COMMON_HELP = {
    "stack": "prod, dr, or local",
    "outputs": "stack outputs JSON file instead of `pulumi stack output`",
    "dry_run": "print the plan with the real backup ids and targets; change nothing",
    "yes": "do not ask for confirmation",
    "resume": "resume the journaled run with this id (same backups as that run)",
}


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _resumed(resume: str, stack: str) -> tuple[dict[str, Any], str]:
    """The request a journaled run started with, pinned to the backup(s) it chose."""
    from drkit.ops.run import journal_parameters

    saved = journal_parameters(ROOT, resume)
    stack = str(saved.pop("stack", stack))
    backup_id = saved.pop("backup_id", None)
    for key in ("recovery_point", "target", "chain", "skew_seconds", "order", "not_restored"):
        saved.pop(key, None)
    if backup_id:
        saved |= {"backup": backup_id, "at": None}
    if saved.get("backups"):
        saved["at"] = None
    return saved, stack


def _run_restore(
    request: Callable[[], Any],
    plan_for: Callable[[Any, Any], tuple[Any, dict[str, Any]]],
    stack: str,
    outputs: str,
    options: tuple[bool, bool, str],
    name: str,
) -> None:
    """Parse the request, load the stack, build the plan: any refusal exits 2 having changed
    nothing. Then run the plan and exit with its status."""
    from drkit.context import OpsContext
    from drkit.ops.run import RunOptions, run_plan

    dry_run, yes, resume = options
    try:
        if resume:
            saved, stack = _resumed(resume, stack)
            parsed = request(**saved)
        else:
            parsed = request()
        ctx = OpsContext.load(stack, Path(outputs) if outputs else None, ROOT)
        plan, figures = plan_for(ctx, parsed)
    except ValueError as error:
        raise fail(error) from None
    options_ = RunOptions(dry_run, yes, resume or None)
    report = run_plan(ctx, plan, options_, ROOT, sys.stdout, name, figures)
    if report.exit_code:
        raise Exit(code=report.exit_code)


@task(
    name="redis",
    help={
        "store": "the redis store to restore (default session-cache)",
        "at": "restore the newest backup at or before this time (ISO 8601, UTC if no zone)",
        "backup": "restore this backup id (see backups.list)",
        "force": "restore into a server that holds keys (all of them are replaced)",
        "source": "vault (S3, default) or mirror (GCS)",
        "replication_group": "restore into this NEW ElastiCache replication group instead",
        "node_type": "ElastiCache node type (default: the stack config's)",
        "replicas": "ElastiCache replicas per shard (default 1)",
        **COMMON_HELP,
    },
)
def restore_redis(
    c: Context,
    store: str = "session-cache",
    at: str = "",
    backup: str = "",
    force: bool = False,
    source: str = "vault",
    replication_group: str = "",
    node_type: str = "",
    replicas: int = 1,
    stack: str = "local",
    outputs: str = "",
    dry_run: bool = False,
    yes: bool = False,
    resume: str = "",
) -> None:
    """Restore a Redis RDB into the store's server (stop, swap, start, count) or new ElastiCache."""
    from drkit.ops import restore_redis as ops

    def request(**saved: Any) -> Any:
        return (
            ops.RestoreRedisRequest(**saved)
            if saved
            else ops.RestoreRedisRequest(
                store=store,
                at=at or None,
                backup=backup or None,
                force=force,
                source=source,
                replication_group=replication_group or None,
                node_type=node_type or None,
                replicas=replicas,
            )
        )

    def plan_for(ctx: Any, parsed: Any) -> tuple[Any, dict[str, Any]]:
        plan, prepared = ops.build_plan(ctx, parsed, ROOT, resume or None)
        return plan, ops.data_loss_figures(prepared)

    _run_restore(request, plan_for, stack, outputs, (dry_run, yes, resume), "restore-redis")


@task(
    name="kafka",
    iterable=["topic", "rename"],
    help={
        "store": "the kafka store to restore (default event-stream)",
        "at": "restore the chain up to the newest backup at or before this time",
        "backup": "restore the chain up to this backup id (see backups.list)",
        "topic": "restore only this topic (repeatable; default: every topic of the backup)",
        "rename": "SOURCE=TARGET: restore a topic into another topic (repeatable)",
        "since": "only records timestamped at or after this time (ISO 8601)",
        "until": "only records timestamped before this time (ISO 8601)",
        "force": "append to a target topic that holds records of other origin",
        "source": "vault (S3, default) or mirror (GCS)",
        **COMMON_HELP,
    },
)
def restore_kafka(
    c: Context,
    store: str = "event-stream",
    at: str = "",
    backup: str = "",
    topic: list[str] | None = None,
    rename: list[str] | None = None,
    since: str = "",
    until: str = "",
    force: bool = False,
    lineage_header: bool = False,
    source: str = "vault",
    stack: str = "local",
    outputs: str = "",
    dry_run: bool = False,
    yes: bool = False,
    resume: str = "",
) -> None:
    """Restore Kafka topics (one, some or all; same or renamed) from a full+incremental chain."""
    from drkit.ops import restore_kafka as ops

    def request(**saved: Any) -> Any:
        return (
            ops.RestoreKafkaRequest(**saved)
            if saved
            else ops.RestoreKafkaRequest(
                store=store,
                at=at or None,
                backup=backup or None,
                topics=topic or [],
                rename=ops.parse_renames(rename or []),
                since=since or None,
                until=until or None,
                force=force,
                lineage_header=lineage_header,
                source=source,
            )
        )

    def plan_for(ctx: Any, parsed: Any) -> tuple[Any, dict[str, Any]]:
        plan, prepared = ops.build_plan(ctx, parsed)
        return plan, ops.data_loss_figures(prepared)

    _run_restore(request, plan_for, stack, outputs, (dry_run, yes, resume), "restore-kafka")


@task(
    name="all",
    help={
        "at": "one recovery point for every store: the newest at or before this time",
        "stores": "comma-separated stores (default: every store this build can restore)",
        "force": "restore into targets that hold data (passed to each store's restore)",
        "source": "vault (S3, default) or mirror (GCS)",
        **COMMON_HELP,
    },
)
def restore_all(
    c: Context,
    at: str = "",
    stores: str = "",
    force: bool = False,
    source: str = "vault",
    stack: str = "local",
    outputs: str = "",
    dry_run: bool = False,
    yes: bool = False,
    resume: str = "",
) -> None:
    """Restore several stores to one recovery point, databases before streams before caches."""
    from drkit.ops import restore_all as ops

    def request(**saved: Any) -> Any:
        return (
            ops.RestoreAllRequest(**saved)
            if saved
            else ops.RestoreAllRequest(
                at=at or None, stores=_split(stores), force=force, source=source
            )
        )

    def plan_for(ctx: Any, parsed: Any) -> tuple[Any, dict[str, Any]]:
        plan, prepared = ops.build_plan(ctx, parsed, ROOT)
        return plan, ops.figures(prepared)

    _run_restore(request, plan_for, stack, outputs, (dry_run, yes, resume), "restore-all")


# --- restore.k8s ------------------------------------------------------------------------------


@task(
    name="k8s",
    help={
        "store": "the Kubernetes-state store to restore (default app-state)",
        "at": "restore the newest backup at or before this time (ISO 8601, UTC if no zone)",
        "backup": "restore this backup id (see backups.list)",
        "namespace_to": "restore into this namespace (created if missing), not the one backed up",
        "kinds": "comma-separated kinds, e.g. configmaps,secrets,deployments (default: all)",
        "replace": "apply the backup over objects that exist (server-side apply); default: skip",
        "source": "vault (S3, default) or mirror (GCS)",
        **COMMON_HELP,
    },
)
def restore_k8s(
    c: Context,
    store: str = "app-state",
    at: str = "",
    backup: str = "",
    namespace_to: str = "",
    kinds: str = "",
    replace: bool = False,
    source: str = "vault",
    stack: str = "local",
    outputs: str = "",
    dry_run: bool = False,
    yes: bool = False,
    resume: str = "",
) -> None:
    """Restore a namespace's Kubernetes state in priority order; Secrets decrypted with KMS."""
    from drkit.context import OpsContext
    from drkit.ops import restore_k8s as ops
    from drkit.ops.run import RunOptions, run_plan

    try:
        if resume:
            saved, stack = _resumed(resume, stack)
            request = ops.RestoreK8sRequest(**saved)
        else:
            request = ops.RestoreK8sRequest(
                store=store,
                at=at or None,
                backup=backup or None,
                namespace_to=namespace_to or None,
                kinds=_split(kinds),
                replace=replace,
                source=source,
            )
        ctx = OpsContext.load(stack, Path(outputs) if outputs else None, ROOT)
        plan, prepared = ops.build_plan(ctx, request, ROOT, sys.stdout)
    except ValueError as error:
        raise fail(error) from None
    try:
        options = RunOptions(dry_run, yes, resume or None)
        report = run_plan(ctx, plan, options, ROOT, sys.stdout, "restore-k8s", prepared.figures)
    finally:
        prepared.close()  # the data key is wiped as soon as the run is over
    if report.exit_code:
        raise Exit(code=report.exit_code)


# --- restore.aurora ---------------------------------------------------------------------------


@task(
    name="aurora",
    help={
        "at": "restore the cluster as it was at this time (ISO 8601, UTC if no zone)",
        "latest": "restore the cluster to its latest restorable time",
        "snapshot": "restore this cluster snapshot (id or ARN) instead",
        "target_cluster": "the NEW cluster's id (default: <cluster>-restored-<time>); never an "
        "existing one",
        "cluster": "the cluster to restore, or to copy settings from for --snapshot (default: "
        "the stack's cluster in --region)",
        "region": "where to restore (default: the writer region in the stack outputs)",
        "instance_class": "the new writer's class (default: the source writer's)",
        "reason": "why (recorded as the trading-dr:reason tag): drill, corruption, ...",
        **COMMON_HELP,
        "stack": "dr (its outputs list both regions' clusters) or prod",
        "resume": "finish the journaled run with this id (its cluster; waits and writer go on)",
    },
)
def restore_aurora(
    c: Context,
    at: str = "",
    latest: bool = False,
    snapshot: str = "",
    target_cluster: str = "",
    cluster: str = "",
    region: str = "",
    instance_class: str = "",
    reason: str = "manual",
    stack: str = "dr",
    outputs: str = "",
    dry_run: bool = False,
    yes: bool = False,
    resume: str = "",
) -> None:
    """Restore Aurora into a NEW cluster: to a point in time (--at, --latest) or a --snapshot."""
    from drkit.ops import restore_aurora as ops

    def request(**saved: Any) -> Any:
        return (
            ops.RestoreAuroraRequest.resumed(saved)
            if saved
            else ops.RestoreAuroraRequest(
                at=at or None,
                latest=latest,
                snapshot=snapshot or None,
                target_cluster=target_cluster or None,
                cluster=cluster or None,
                region=region or None,
                instance_class=instance_class or None,
                reason=reason,
            )
        )

    def plan_for(ctx: Any, parsed: Any) -> tuple[Any, dict[str, Any]]:
        plan, prepared = ops.build_plan(ctx, parsed, resume or None, sys.stdout)
        return plan, prepared.figures

    _run_restore(request, plan_for, stack, outputs, (dry_run, yes, resume), "restore-aurora")


@task(
    help={
        "stores": "comma-separated stores to verify (default: every store of the stack)",
        "skip_test_restore": "only freshness, checksums and replication (changes nothing)",
        "source": "vault (S3, default) or mirror (GCS) as the copy to test-restore from",
        "stack": COMMON_HELP["stack"],
        "outputs": COMMON_HELP["outputs"],
        "dry_run": "print the checks with the real backup ids; run none",
        "yes": "do not ask before the test restores (they create and remove scratch targets)",
        "all": "integrity-check every backup in the retention window (default: the newest and "
        "a rotating sample that covers each backup weekly)",
        "cleanup": "only remove the scratch namespaces and databases killed verify runs left "
        "(with --dry-run: list them); runs no check",
    }
)
def verify(
    c: Context,
    stores: str = "",
    skip_test_restore: bool = False,
    source: str = "vault",
    stack: str = "local",
    outputs: str = "",
    dry_run: bool = False,
    yes: bool = False,
    all_: bool = False,
    cleanup: bool = False,
) -> None:
    """Freshness against RPO, checksums, replication, a test restore per store; exit 1 on a miss."""
    from drkit.context import OpsContext
    from drkit.ops.run import RunOptions
    from drkit.ops.verify import VerifyRequest, exit_code, run_cleanup, run_verify

    if cleanup:
        try:
            ctx = OpsContext.load(stack, Path(outputs) if outputs else None, ROOT)
            code = run_cleanup(ctx, _split(stores), sys.stdout, dry_run=dry_run)
        except ValueError as error:
            raise fail(error) from None
        if code:
            raise Exit(code=code)
        return
    try:
        request = VerifyRequest(
            stores=_split(stores),
            test_restore=not skip_test_restore,
            source=source,
            all_backups=all_,
        )
        ctx = OpsContext.load(stack, Path(outputs) if outputs else None, ROOT)
        run, report = run_verify(ctx, request, RunOptions(dry_run, yes), ROOT, sys.stdout)
    except ValueError as error:
        raise fail(error) from None
    code = exit_code(run, report)
    if code:
        raise Exit(code=code)


@task(
    name="list",
    help={
        "stores": "comma-separated stores (default: all)",
        "days": "how many days back (default 7)",
        "source": "vault (S3, default) or mirror (GCS)",
        "detail": "one line per backup as well",
        "format": "text (default) or json",
        "stack": COMMON_HELP["stack"],
        "outputs": COMMON_HELP["outputs"],
    },
)
def backups_list(
    c: Context,
    stores: str = "",
    days: int = 7,
    source: str = "vault",
    detail: bool = False,
    format: str = "text",
    stack: str = "local",
    outputs: str = "",
) -> None:
    """What backups exist per store: count, size, newest, age, consistent point, verified."""
    from drkit.context import OpsContext
    from drkit.ops.backups_info import ListRequest, list_backups

    try:
        request = ListRequest(stores=_split(stores), days=days, source=source, detail=detail)
        ctx = OpsContext.load(stack, Path(outputs) if outputs else None, ROOT)
        listing = list_backups(ctx, request)
    except ValueError as error:
        raise fail(error) from None
    print(listing.to_json() if format == "json" else listing.to_text(), end="")


@task(
    name="info",
    positional=["backup_id"],
    help={
        "backup_id": "the backup id, e.g. 20261121T041500Z-3f9a1c",
        "store": "the store it belongs to (default: look in every store's catalog)",
        "source": "vault (S3, default) or mirror (GCS)",
        "format": "text (default) or json",
        "stack": COMMON_HELP["stack"],
        "outputs": COMMON_HELP["outputs"],
    },
)
def backups_info(
    c: Context,
    backup_id: str,
    store: str = "",
    source: str = "vault",
    format: str = "text",
    stack: str = "local",
    outputs: str = "",
) -> None:
    """One backup in full: manifest, consistent point, counts, objects with SHA-256, verified."""
    from drkit.context import OpsContext
    from drkit.ops.backups_info import InfoRequest, backup_info

    try:
        request = InfoRequest(backup_id=backup_id, store=store or None, source=source)
        ctx = OpsContext.load(stack, Path(outputs) if outputs else None, ROOT)
        info = backup_info(ctx, request)
    except ValueError as error:
        raise fail(error) from None
    print(info.to_json() if format == "json" else info.to_text(), end="")


@task(
    name="drill",
    iterable=["scenario"],
    help={
        "scenario": "play only this scenario (repeatable): database-corruption, kafka-data-loss,"
        " redis-loss, kubernetes-namespace-loss, region-failover, region-loss-from-backups",
        "size_mb": "approximate size of the seeded data (default 20)",
        "time_factor": "how many times faster than real time the schedules run (default 360)",
        "soak_seconds": "seconds of trading and scheduled backups before the first disaster",
        "keep": "leave the local servers up afterwards, for inspection (Ctrl-C stops them)",
        "stack": "local (default: the full drill on this machine); prod or dr: the monthly drill",
        "monthly": "run the monthly drill (scratch restores) even on --stack local",
        "stores": "monthly drill: comma-separated stores (default: postgres, kafka, redis and "
        "kubernetes)",
        "outputs": "monthly drill: stack outputs JSON file instead of `pulumi stack output`",
        "pushgateway": "monthly drill: publish results to this Prometheus Pushgateway URL",
        "cloudwatch": "monthly drill: publish results to CloudWatch (TradingDR/Drills)",
        "dry_run": "monthly drill: print the plan with the real backup ids; change nothing",
        "yes": "monthly drill: do not ask before creating scratch targets",
    },
)
def drill(
    c: Context,
    scenario: list[str] | None = None,
    size_mb: float = 20.0,
    time_factor: float = 360.0,
    soak_seconds: float = 15.0,
    keep: bool = False,
    stack: str = "local",
    monthly: bool = False,
    stores: str = "",
    outputs: str = "",
    pushgateway: str = "",
    cloudwatch: bool = False,
    dry_run: bool = False,
    yes: bool = False,
) -> None:
    """The DR drill: seed, trade, back up on schedule, break, restore, verify, measure RTO/RPO.

    Against a provisioned stack (--stack prod|dr) it is the monthly drill: every store's newest
    backup restored into a scratch target, counted, removed, timed and published."""
    if stack != "local" or monthly:
        _monthly_drill(stack, stores, outputs, pushgateway, cloudwatch, dry_run, yes)
        return
    from drkit.drill.run import DrillOptions, run_drill
    from drkit.drill.scenarios import SCENARIOS

    try:
        options = DrillOptions(
            size_mb=size_mb,
            time_factor=time_factor,
            soak_seconds=soak_seconds,
            keep=keep,
            scenarios=scenario or list(SCENARIOS),
        )
    except ValueError as error:
        raise fail(error) from None
    workdir = Path(tempfile.mkdtemp(prefix="drkit-drill-"))
    report = run_drill(options, ROOT, workdir, ROOT / "reports")
    if not report.ok:
        raise Exit("drill FAILED: an objective was missed or a restore did not verify", code=1)


def _monthly_drill(
    stack: str,
    stores: str,
    outputs: str,
    pushgateway: str,
    cloudwatch: bool,
    dry_run: bool,
    yes: bool,
) -> None:
    from drkit.context import OpsContext
    from drkit.drill.monthly import run_monthly_drill
    from drkit.ops.run import RunOptions
    from stackmodels.config import StoreKind

    try:
        ctx = OpsContext.load(stack, Path(outputs) if outputs else None, ROOT)
        kinds = (StoreKind.POSTGRES, StoreKind.KAFKA, StoreKind.REDIS, StoreKind.KUBERNETES)
        chosen = [s.strip() for s in stores.split(",") if s.strip()] or [
            name for kind in kinds for name in ctx.config.stores_of(kind)
        ]
        for name in chosen:
            ctx.store_config(name)
        report = run_monthly_drill(
            ctx, chosen, RunOptions(dry_run, yes), ROOT, sys.stdout, pushgateway or None, cloudwatch
        )
    except ValueError as error:
        raise fail(error) from None
    if not dry_run and not report.ok:
        raise Exit("monthly drill FAILED: a restore did not verify or missed its RTO", code=1)


@task(
    name="aurora-snapshot",
    help={
        "reason": "why (recorded as a tag and in the snapshot id): pre-deploy, monthly, ...",
        "kms_key": "KMS key ARN in the other region for the copy (default: its cluster's key)",
        "stack": "dr (its outputs list both regions' clusters) or prod",
        "outputs": "stack outputs JSON file instead of `pulumi stack output`",
        "dry_run": "print what would be created, and where, without doing it",
    },
)
def aurora_snapshot(
    c: Context,
    reason: str = "manual",
    kms_key: str = "",
    stack: str = "dr",
    outputs: str = "",
    dry_run: bool = False,
) -> None:
    """Take a manual Aurora cluster snapshot of the writer and copy it to the other region."""
    from drkit.aurora import AuroraError
    from drkit.context import OpsContext
    from drkit.ops.aurora_snapshot import AuroraSnapshotRequest, take_snapshot

    try:
        ctx = OpsContext.load(stack, Path(outputs) if outputs else None, ROOT)
        take_snapshot(ctx, AuroraSnapshotRequest(reason, kms_key or None, dry_run), sys.stdout)
    except AuroraError as error:
        raise Exit(f"FAILED: {error}", code=1) from None
    except ValueError as error:
        raise fail(error) from None


# --- failover, failback, status (issue 7) -------------------------------------------------------

REGION_SWITCH_HELP = {
    "dry_run": "run the preflight and print the plan with the real ids; change nothing",
    "yes": "do not ask for confirmation",
    "resume": "continue the journaled run with this id (same arguments; done steps not repeated)",
    "update_stack_config": "write trading-dr:active_region into Pulumi.prod.yaml and "
    "Pulumi.dr.yaml",
    "dns_control_plane": "fallback: UPSERT the PRIMARY records (Route 53 API, us-east-1) instead "
    "of forcing the health checks through the switch metric",
    "kubeconfig": "kubeconfig file with both clusters' contexts (default: $KUBECONFIG)",
    "kube_context": "the new primary's cluster context (default: its stack's kubernetes.context)",
    "source_kube_context": "the old primary's cluster context (the fence)",
    "wait_seconds": "how long a promotion may take before its step fails (default 900)",
    "dns_wait_seconds": "how long to wait for a switch alarm's state (default 300)",
    "stack": "the dr stack (its outputs carry both regions)",
    "outputs": "dr stack outputs JSON file instead of `pulumi stack output`",
}


def _switch_regions(
    arguments: dict[str, Any], options: tuple[bool, bool, str], where: tuple[str, str, str]
) -> None:
    from drkit.failover.command import switch_regions
    from drkit.failover.operation import PreflightBlocked
    from drkit.ops.run import RunOptions

    dry_run, yes, resume = options
    stack, outputs, kubeconfig = where
    try:
        outcome = switch_regions(
            arguments,
            stack=stack,
            outputs=outputs or None,
            kubeconfig=kubeconfig or None,
            options=RunOptions(dry_run, yes, resume or None),
            project_dir=ROOT,
            out=sys.stdout,
        )
    except (ValueError, PreflightBlocked) as error:
        raise fail(error) from None
    if outcome.exit_code:
        raise Exit(code=outcome.exit_code)


@task(
    help={
        "to": "the side that becomes primary: dr",
        "planned": "switchover with no data loss (drills): the primary region must be up",
        "cache_promotion": "auto (planned: failover; unplanned: disassociate), failover, "
        "disassociate",
        **REGION_SWITCH_HELP,
    }
)
def failover(
    c: Context,
    to: str = "dr",
    planned: bool = False,
    cache_promotion: str = "auto",
    dry_run: bool = False,
    yes: bool = False,
    resume: str = "",
    update_stack_config: bool = False,
    dns_control_plane: bool = False,
    kubeconfig: str = "",
    kube_context: str = "",
    source_kube_context: str = "",
    wait_seconds: float = 900.0,
    dns_wait_seconds: float = 300.0,
    stack: str = "dr",
    outputs: str = "",
) -> None:
    """Fail over to the DR region: preflight, fence, promote, switch clients and DNS, verify."""
    if to != "dr":
        raise fail(f"--to {to!r}: failover goes to dr; to return, run `invoke failback --to prod`")
    arguments = {
        "to": to,
        "planned": planned,
        "cache_promotion": cache_promotion,
        "dns_control_plane": dns_control_plane,
        "kube_context": kube_context or None,
        "source_kube_context": source_kube_context or None,
        "wait_seconds": wait_seconds,
        "dns_wait_seconds": dns_wait_seconds,
        "update_stack_config": update_stack_config,
    }
    _switch_regions(arguments, (dry_run, yes, resume), (stack, outputs, kubeconfig))


@task(
    help={"to": "the side that becomes primary again: prod", **REGION_SWITCH_HELP},
)
def failback(
    c: Context,
    to: str = "prod",
    dry_run: bool = False,
    yes: bool = False,
    resume: str = "",
    update_stack_config: bool = False,
    dns_control_plane: bool = False,
    kubeconfig: str = "",
    kube_context: str = "",
    source_kube_context: str = "",
    wait_seconds: float = 900.0,
    dns_wait_seconds: float = 300.0,
    stack: str = "dr",
    outputs: str = "",
) -> None:
    """Return to prod once it is back: wait for replication toward it, then switch over."""
    if to != "prod":
        raise fail(f"--to {to!r}: failback returns to prod; to leave prod, run `invoke failover`")
    arguments = {
        "to": to,
        "planned": True,
        "dns_control_plane": dns_control_plane,
        "kube_context": kube_context or None,
        "source_kube_context": source_kube_context or None,
        "wait_seconds": wait_seconds,
        "dns_wait_seconds": dns_wait_seconds,
        "update_stack_config": update_stack_config,
    }
    _switch_regions(arguments, (dry_run, yes, resume), (stack, outputs, kubeconfig))


@task(
    name="topics",
    help={
        "stack": COMMON_HELP["stack"],
        "outputs": COMMON_HELP["outputs"],
        "dry_run": "print the diff (topic, key, current -> wanted); change nothing",
        "yes": "do not ask before changing topic settings",
        "snapshot": "only store the topic configuration in the vault now (when it changed since "
        "the newest snapshot, or none was stored today), as each backup does; change nothing",
    },
)
def kafka_topics(
    c: Context,
    stack: str = "local",
    outputs: str = "",
    dry_run: bool = False,
    yes: bool = False,
    snapshot: bool = False,
) -> None:
    """Reconcile every topic's retention and cleanup settings with its topic class (msk config)."""
    from confluent_kafka import KafkaException

    from drkit.context import OpsContext
    from drkit.kafka_topics import admin_for, reconcile, take_snapshots
    from drkit.ops.executor import terminal_confirm

    try:
        ctx = OpsContext.load(stack, Path(outputs) if outputs else None, ROOT)
        admin, msk = admin_for(ctx)
    except ValueError as error:
        raise fail(error) from None
    try:
        if snapshot:
            code = take_snapshots(ctx, sys.stdout)
        else:
            code = reconcile(
                admin, msk, sys.stdout, dry_run=dry_run, yes=yes, confirm=terminal_confirm
            )
    except KafkaException as error:
        raise fail(f"kafka: {error}", code=1) from None
    if code:
        raise Exit(code=code)


@task(
    name="status",
    help={
        "format": "text (default) or json",
        "kubeconfig": REGION_SWITCH_HELP["kubeconfig"],
        "stack": REGION_SWITCH_HELP["stack"],
        "outputs": REGION_SWITCH_HELP["outputs"],
    },
)
def dr_status(
    c: Context, format: str = "text", kubeconfig: str = "", stack: str = "dr", outputs: str = ""
) -> None:
    """DR readiness: which region writes, lag and newest backup per store vs RPO, standbys."""
    from drkit.failover.command import status

    try:
        report = status(
            stack=stack, outputs=outputs or None, kubeconfig=kubeconfig or None, project_dir=ROOT
        )
    except ValueError as error:
        raise fail(error) from None
    print(report.to_json() if format == "json" else report.to_text(), end="")
    if report.exit_code:
        raise Exit(code=report.exit_code)


@task(
    name="up",
    help={
        "regions": "2 (prod and dr, with live standbys; default) or 1 (prod only)",
        "only": "comma-separated stores (or kinds) to run, e.g. trading-db,event-stream",
    },
)
def local_up(c: Context, regions: int = 2, only: str = "") -> None:
    """Start the local stack (prod and dr, continuous protection between them) and leave it up."""
    from drkit.local.daemon import LocalStackError, up
    from stackmodels.errors import ConfigError

    try:
        up(ROOT, regions, [item for item in only.split(",") if item])
    except (ValueError, ConfigError) as error:
        raise fail(error) from None
    except LocalStackError as error:
        raise fail(error, code=1) from None


@task(name="status", help={"json": "print the status as JSON"})
def local_status(c: Context, json: bool = False) -> None:
    """Each local store's role (primary, standby, down), pid, URL and measured lag."""
    import json as json_module

    from drkit.local.daemon import status
    from drkit.local.status import describe

    report = status(ROOT)
    print(
        json_module.dumps(report, indent=2) if json else describe(report), end="\n" if json else ""
    )
    if not report.get("regions"):
        raise Exit(code=1)


@task(name="down")
def local_down(c: Context) -> None:
    """Stop every process local.up started, and nothing else."""
    from drkit.local.daemon import LocalStackError, down

    try:
        down(ROOT)
    except LocalStackError as error:
        raise fail(error, code=1) from None


namespace = Collection()
namespace.add_task(drill)
namespace.add_collection(Collection("local", roundtrip, local_up, local_status, local_down))
namespace.add_collection(Collection("config", check))
namespace.add_collection(Collection("backup", store, aurora_snapshot))
namespace.add_collection(
    Collection(
        "restore",
        restore_postgres,
        restore_redis,
        restore_kafka,
        restore_all,
        restore_k8s,
        restore_aurora,
    )
)
namespace.add_task(verify)
namespace.add_collection(Collection("backups", backups_list, backups_info))
namespace.add_collection(Collection("kafka", kafka_topics))
namespace.add_task(failover)
namespace.add_task(failback)
namespace.add_task(dr_status)
guard_tasks(namespace)
refuse_parse_errors()  # invoke's parse errors exit 2, one line (drkit.invoke_parse)
