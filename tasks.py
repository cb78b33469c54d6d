"""invoke tasks: each declares its flags and their help, and is one call of ``drkit.ops.cli``.

invoke local.up / local.status [--json] / local.down   the two-region local stack, kept up
invoke backup.store trading-db --stack prod [--dry-run]
invoke restore.redis|restore.kafka|restore.all --stack S --dry-run   the plan with real ids
invoke verify --stack S --stores trading-db,event-stream  freshness, checksums, test restores
invoke backups.list / backups.info ID / reports.list --stack S   what exists; recent runs

A task is ``command(name, call, doc, *SHARED options, flag=(default, help))``, which runs
``call(ROOT, **flags)``, the stack chosen first (``--stack`` or DRKIT_STACK: ``cli.on_stack``);
``invoke --list`` lists them all, and none has a short flag.
"""

from __future__ import annotations

import inspect
import warnings
from functools import partial
from pathlib import Path
from typing import Any

from invoke.collection import Collection
from invoke.context import Context
from invoke.exceptions import Exit
from invoke.tasks import Task

from drkit.cli_errors import guarded
from drkit.invoke_parse import refuse_parse_errors
from drkit.ops import cli

ROOT = Path(__file__).resolve().parent
# google-api-core announces the end of Python 3.11 support (2027) on every import; not actionable.
warnings.filterwarnings("ignore", category=FutureWarning, module="google.api_core")

Flag = tuple[Any, str]  # (default, help); the default REQUIRED makes a positional argument
REQUIRED = inspect.Parameter.empty

SHARED: dict[str, Flag] = {
    "stack": ("", "prod, dr or local (required, or DRKIT_STACK; prod and dr ask unless --yes)"),
    "outputs": ("", "stack outputs JSON file instead of `pulumi stack output`"),
    "dry_run": (False, "print the plan with the real backup ids and targets; change nothing"),
    "yes": (False, "do not ask for confirmation"),
    "resume": ("", "resume the journaled run with this id (same backups as that run)"),
    "update_stack_config": (
        False,
        "write trading-dr:active_region into Pulumi.prod.yaml and Pulumi.dr.yaml",
    ),
    "dns_control_plane": (
        False,
        "fallback: UPSERT the PRIMARY records (Route 53 API, us-east-1) instead of forcing the "
        "health checks through the switch metric",
    ),
    "kubeconfig": ("", "kubeconfig file with both clusters' contexts (default: $KUBECONFIG)"),
    "kube_context": (
        "",
        "the new primary's cluster context (default: its stack's kubernetes.context)",
    ),
    "source_kube_context": ("", "the old primary's cluster context (the fence)"),
    "wait_seconds": (900.0, "how long a promotion may take before its step fails (default 900)"),
    "dns_wait_seconds": (300.0, "how long to wait for a switch alarm's state (default 300)"),
}
READ = ("stack", "outputs")
SNAPSHOT = (*READ, "dry_run")
CHECK = (*SNAPSHOT, "yes")
PLAN = (*CHECK, "resume")
KUBE = ("kubeconfig", "kube_context", "source_kube_context")
WAITS = ("wait_seconds", "dns_wait_seconds")
SWITCH = (*PLAN, *KUBE, *WAITS, "update_stack_config", "dns_control_plane")
ON_DR = {  # failover, failback and status: the dr stack's outputs carry both regions
    "stack": ("", "dr (its outputs carry both regions) or local; required, or DRKIT_STACK"),
    "outputs": ("", "dr stack outputs JSON file instead of `pulumi stack output`"),
}
SOURCE: Flag = ("vault", "vault (S3, default), mirror (GCS) or isolated (isolated account)")
ONE_BACKUP: dict[str, Flag] = {
    "at": ("", "restore the newest backup at or before this time (ISO 8601, UTC if no zone)"),
    "backup": ("", "restore this backup id (see backups.list)"),
    "source": SOURCE,
}
FORMAT: Flag = ("text", "text (default) or json")


def command(
    name: str,
    call: Any,
    doc: str,
    /,
    *shared: str,
    positional: tuple[str, ...] = (),
    iterable: tuple[str, ...] = (),
    **flags: Flag,
) -> Task[Any]:
    """The task ``name``, documented by ``doc``, that runs ``call(ROOT, **flags)``: ``flags`` its
    own (a shared option among them rewords it for this task), then the ``shared`` options; no
    short flags; every error one line, exit 2 (refused) or 1 (failed) (``drkit.cli_errors``)."""
    declared = flags | {key: flags.get(key, SHARED[key]) for key in shared}
    defaults = {key: default for key, (default, _) in declared.items() if default is not REQUIRED}

    def run(c: Context, *values: Any, **given: Any) -> None:
        named = dict(zip(positional[: len(values)], values, strict=True))  # too many: TypeError
        call(ROOT, **cli.on_stack(call, ROOT, defaults | named | given))  # stack: chosen, named

    run.__signature__ = cli.task_signature(positional, declared)  # type: ignore[attr-defined]
    run.__name__, run.__doc__ = name.replace("-", "_"), doc
    safe = guarded(run, Exit)
    safe.drkit_guarded = True  # type: ignore[attr-defined]
    helps = {key: text for key, (_, text) in declared.items()}
    return Task(
        safe, name, positional=positional, iterable=iterable, help=helps, auto_shortflags=False
    )


roundtrip = command(
    "roundtrip",
    cli.roundtrip,
    "Back up the local PostgreSQL to the S3 vault and GCS mirror, break it, restore, verify.",
    size_mb=(30.0, "approximate size of the trading database to seed (default 30)"),
    keep_dir=("", "keep the servers' working directory instead of a temporary one"),
)
check = command(
    "check",
    cli.config_check,
    "Validate a stack's config: one line per problem, naming key, value and what is allowed.",
    stack=("", "prod, dr (reads Pulumi.<stack>.yaml); required, or DRKIT_STACK"),
)
store = command(
    "store",
    cli.backup_store,
    """Take one backup of a store now, with the same engine the CronJobs run.

    Another run of the store holding its lease: refused (exit 2, naming it), or ``--wait S``.""",
    positional=("store",),
    store=(REQUIRED, "a store of the stack config, e.g. trading-db"),
    stack=("", "prod, dr, or local (`invoke local.up`); required, or DRKIT_STACK"),
    outputs=("", "read stack outputs from this JSON file instead of `pulumi stack output`"),
    dry_run=(False, "print what would be backed up, and where, without doing it"),
    **cli.BACKUP_RUN_FLAGS,  # --wait, --jobs
    yes=(False, "do not ask for confirmation on a production stack"),
)

restore_postgres = command(
    "postgres",
    partial(cli.restore, "postgres"),
    "Restore a PostgreSQL backup (latest, --at TIME or --backup ID) into a target database.",
    *PLAN,
    iterable=("table",),
    store=("trading-db", "the postgres store to restore (default trading-db)"),
    **ONE_BACKUP,
    target_database=("", "database to restore into (default: <db>_restored_<backup time>)"),
    table=(None, "restore only this table (repeatable): the seed's selective recovery"),
    force=(False, "restore into a database that already has tables (its tables are replaced)"),
    create_roles=(False, "create the backup's roles the target cluster lacks (no password)"),
    no_privileges=(False, "restore without owners and grants (all owned by the restoring user)"),
    **cli.RESTORE_JOBS_FLAG,
)
restore_redis = command(
    "redis",
    partial(cli.restore, "redis"),
    "Restore a Redis RDB into the store's server (stop, swap, start, count) or new ElastiCache.",
    *PLAN,
    store=("session-cache", "the redis store to restore (default session-cache)"),
    **ONE_BACKUP,
    force=(False, "restore into a server that holds keys (all of them are replaced)"),
    **cli.REDIS_TARGET_FLAGS,
)
restore_kafka = command(
    "kafka",
    partial(cli.restore, "kafka"),
    "Restore Kafka topics (one, some or all; same or renamed) from a full+incremental chain.",
    *PLAN,
    iterable=("topic", "rename"),
    store=("event-stream", "the kafka store to restore (default event-stream)"),
    at=("", "restore the chain up to the newest backup at or before this time"),
    backup=("", "restore the chain up to this backup id (see backups.list)"),
    topic=(None, "restore only this topic (repeatable; default: every topic of the backup)"),
    rename=(None, "SOURCE=TARGET: restore a topic into another topic (repeatable)"),
    since=("", "only records timestamped at or after this time (ISO 8601)"),
    until=("", "only records timestamped before this time (ISO 8601)"),
    force=(False, "append to a target topic that holds records of other origin"),
    lineage_header=(False, "add the drkit.source header to each record and resume from it"),
    groups=("", "also set consumer groups' offsets on the restored topics: all, or g1,g2"),
    source=SOURCE,
)
restore_all = command(
    "all",
    partial(cli.restore, "all"),
    "Restore several stores to one recovery point, databases before streams before caches.",
    *PLAN,
    at=("", "one recovery point for every store: the newest at or before this time"),
    stores=("", "comma-separated stores (default: every store this build can restore)"),
    force=(False, "restore into targets that hold data (passed to each store's restore)"),
    source=SOURCE,
)
restore_k8s = command(
    "k8s",
    partial(cli.restore, "k8s"),
    "Restore a namespace's Kubernetes state in priority order; Secrets decrypted with KMS.",
    *PLAN,
    store=("app-state", "the Kubernetes-state store to restore (default app-state)"),
    **ONE_BACKUP,
    namespace_to=("", "restore into this namespace (created if missing), not the one backed up"),
    kinds=("", "comma-separated kinds, e.g. configmaps,secrets,deployments (default: all)"),
    replace=(False, "apply the backup over objects that exist (server-side apply); default: skip"),
)
restore_aurora = command(
    "aurora",
    partial(cli.restore, "aurora"),
    "Restore Aurora into a NEW cluster: to a point in time (--at, --latest) or a --snapshot-id.",
    *PLAN,
    at=("", "restore the cluster as it was at this time (ISO 8601, UTC if no zone)"),
    latest=(False, "restore the cluster to its latest restorable time"),
    snapshot_id=("", "restore this cluster snapshot (id or ARN) instead"),
    target_cluster=(
        "",
        "the NEW cluster's id (default: <cluster>-restored-<time>); never an existing one",
    ),
    cluster=(
        "",
        "the cluster to restore, or to copy settings from for --snapshot-id (default: the "
        "stack's cluster in --region)",
    ),
    region=("", "where to restore (default: the writer region in the stack outputs)"),
    instance_class=("", "the new writer's class (default: the source writer's)"),
    reason=("manual", "why (recorded as the trading-dr:reason tag): drill, corruption, ..."),
    stack=("", "dr (its outputs list both regions' clusters) or prod; required, or DRKIT_STACK"),
    resume=("", "finish the journaled run with this id (its cluster; waits and writer go on)"),
)

verify = command(
    "verify",
    cli.verify,
    "Freshness against RPO, checksums, replication, a test restore per store; exit 1 on a miss.",
    *CHECK,
    stores=("", "comma-separated stores to verify (default: every store of the stack)"),
    skip_test_restore=(False, "only freshness, checksums and replication (changes nothing)"),
    source=("vault", "vault (S3, default), mirror (GCS) or isolated: the copy to test-restore"),
    dry_run=(False, "print the checks with the real backup ids; run none"),
    yes=(False, "do not ask before the test restores (they create and remove scratch targets)"),
    all_=(
        False,
        "integrity-check every backup in the retention window (default: the newest and a "
        "rotating sample that covers each backup weekly)",
    ),
    cleanup=(
        False,
        "only remove the scratch namespaces and databases killed verify runs left (with "
        "--dry-run: list them); runs no check",
    ),
)
backups_list = command(
    "list",
    cli.backups_list,
    "What backups exist per store: count, size, newest, age, consistent point, verified.",
    *READ,
    stores=("", "comma-separated stores (default: all)"),
    days=(7, "how many days back (default 7)"),
    source=SOURCE,
    detail=(False, "one line per backup as well"),
    format=FORMAT,
)
backups_info = command(
    "info",
    cli.backups_info,
    "One backup in full: manifest, consistent point, counts, objects with SHA-256, verified.",
    *READ,
    positional=("backup_id",),
    backup_id=(REQUIRED, "the backup id, e.g. 20261121T041500Z-3f9a1c"),
    store=("", "the store it belongs to (default: look in every store's catalog)"),
    source=SOURCE,
    format=FORMAT,
)
kafka_topics = command(
    "topics",
    cli.kafka_topics,
    "Reconcile every topic's retention and cleanup settings with its topic class (msk config).",
    *CHECK,
    dry_run=(False, "print the diff (topic, key, current -> wanted); change nothing"),
    yes=(False, "do not ask before changing topic settings"),
    snapshot=(
        False,
        "only store the topic configuration in the vault and mirror now (when it changed since "
        "the newest snapshot, or none was stored today), as each backup does; change nothing",
    ),
)
audit_list = command("list", cli.audit_list, cli.AUDIT_LIST_DOC, *READ, **cli.AUDIT_LIST_FLAGS)

drill = command(
    "drill",
    cli.drill,
    """The DR drill: seed, trade, back up on schedule, break, restore, verify, measure RTO/RPO.

    Against a provisioned stack (--stack prod|dr) it is the monthly drill: every store's newest
    backup restored into a scratch target, counted, removed, timed and published.""",
    iterable=("scenario",),
    scenario=(
        None,
        "play only this scenario (repeatable): database-corruption, kafka-data-loss, redis-loss, "
        "kubernetes-namespace-loss, region-failover, account-compromise, region-loss-from-backups",
    ),
    size_mb=(20.0, "approximate size of the seeded data (default 20)"),
    time_factor=(360.0, "how many times faster than real time the schedules run (default 360)"),
    soak_seconds=(15.0, "seconds of trading and scheduled backups before the first disaster"),
    keep=(False, "leave the local servers up afterwards, for inspection (Ctrl-C stops them)"),
    stack=("", "none or local: the full drill on its own servers; prod or dr: the monthly drill"),
    monthly=(False, "run the monthly drill (scratch restores) even on --stack local"),
    stores=(
        "",
        "monthly drill: comma-separated stores (default: postgres, kafka, redis and kubernetes)",
    ),
    outputs=("", "monthly drill: stack outputs JSON file instead of `pulumi stack output`"),
    pushgateway=("", "monthly drill: publish results to this Prometheus Pushgateway URL"),
    cloudwatch=(False, "monthly drill: publish results to CloudWatch (TradingDR/Drills)"),
    dry_run=(False, "monthly drill: print the plan with the real backup ids; change nothing"),
    yes=(False, "monthly drill: do not ask before creating scratch targets"),
)
aurora_snapshot = command(
    "aurora-snapshot",
    cli.aurora_snapshot,
    "Take a manual Aurora cluster snapshot of the writer and copy it to the other region.",
    *CHECK,
    reason=("manual", "why (recorded as a tag and in the snapshot id): pre-deploy, monthly, ..."),
    kms_key=("", "KMS key ARN in the other region for the copy (default: its cluster's key)"),
    stack=("", "dr (its outputs list both regions' clusters) or prod; required, or DRKIT_STACK"),
    dry_run=(False, "print what would be created, and where, without doing it"),
)

SWITCHING: dict[str, Flag] = {
    **ON_DR,
    "dry_run": (False, "run the preflight and print the plan with the real ids; change nothing"),
    "resume": (
        "",
        "continue the journaled run with this id (same arguments; done steps not repeated)",
    ),
}
failover = command(
    "failover",
    cli.failover,
    "Fail over to the DR region: preflight, fence, promote, switch clients and DNS, verify.",
    *SWITCH,
    to=("dr", "the side that becomes primary: dr"),
    planned=(False, "switchover with no data loss (drills): the primary region must be up"),
    cache_promotion=(
        "auto",
        "auto (planned: failover; unplanned: disassociate), failover, disassociate",
    ),
    **SWITCHING,
)
failback = command(
    "failback",
    cli.failback,
    "Return to prod once it is back: wait for replication toward it, then switch over.",
    *SWITCH,
    to=("prod", "the side that becomes primary again: prod"),
    **SWITCHING,
)
dr_status = command(
    "status",
    cli.dr_status,
    "DR readiness: which region writes, lag and newest backup per store vs RPO, standbys.",
    "kubeconfig",
    *READ,
    format=FORMAT,
    **ON_DR,
)

local_up = command(
    "up",
    cli.local_up,
    "Start the local stack (prod and dr, continuous protection between them) and leave it up.",
    regions=(2, "2 (prod and dr, with live standbys; default) or 1 (prod only)"),
    only=("", "comma-separated stores (or kinds) to run, e.g. trading-db,event-stream"),
)
local_status = command(
    "status",
    cli.local_status,
    "Each local store's role (primary, standby, down), pid, URL and measured lag.",
    json=(False, "print the status as JSON"),
)
local_down = command("down", cli.local_down, "Stop every process local.up started, only them.")
reports_list = command(
    "list",
    cli.reports_list,
    "The recent runs that wrote a report (reports/<run id>/): operation, stack, outcome, time.",
    **dict[str, Flag](limit=(20, "how many, newest first (default 20)"), json=(False, "as JSON")),
)

restores = [restore_postgres, restore_redis, restore_kafka, restore_all, restore_k8s]
namespace = Collection(drill, verify, failover, failback, dr_status)
for collection in (
    Collection("local", roundtrip, local_up, local_status, local_down),
    Collection("config", check),
    Collection("backup", store, aurora_snapshot),
    Collection("restore", *restores, restore_aurora),
    Collection("backups", backups_list, backups_info),
    Collection("kafka", kafka_topics),
    Collection("reports", reports_list),
    Collection("audit", audit_list),
):
    namespace.add_collection(collection)
refuse_parse_errors()  # invoke's parse errors exit 2, one line (drkit.invoke_parse)
