"""invoke tasks: parse arguments, call the ops package (drkit), print, set the exit code.

invoke --list                       every task
invoke local.roundtrip              the main job on the local embedded default (no cloud)
invoke config.check --stack prod    validate Pulumi.<stack>.yaml against the config model
invoke backup.store trading-db --stack prod [--dry-run]
"""

from __future__ import annotations

import sys
import tempfile
import warnings
from pathlib import Path

from invoke.collection import Collection
from invoke.context import Context
from invoke.exceptions import Exit
from invoke.tasks import task

ROOT = Path(__file__).resolve().parent
# google-api-core announces the end of Python 3.11 support (2027) on every import; not actionable.
warnings.filterwarnings("ignore", category=FutureWarning, module="google.api_core")


def fail(message: str, code: int = 2) -> Exit:
    return Exit(f"error: {message}", code=code)


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
    except ConfigError as error:
        raise fail(str(error), code=1) from None
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
    },
)
def store(
    c: Context, store: str, stack: str = "local", outputs: str = "", dry_run: bool = False
) -> None:
    """Take one backup of a store now, with the same engine the CronJobs run."""
    from drkit.backups import BackupRequest, take_backup

    try:
        request = BackupRequest(stack=stack, store=store, outputs=outputs or None, dry_run=dry_run)
        code = take_backup(request, ROOT, sys.stdout)
    except ValueError as error:
        raise fail(str(error)) from None
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
            for key in ("backup_id", "recovery_point", "target"):
                saved.pop(key, None)
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
        plan, prepared = build_plan(ctx, request)
    except ValueError as error:
        raise fail(str(error)) from None
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


@task(
    name="drill",
    iterable=["scenario"],
    help={
        "scenario": "play only this scenario (repeatable): database-corruption, kafka-data-loss,"
        " redis-loss, region-loss",
        "size_mb": "approximate size of the seeded data (default 20)",
        "time_factor": "how many times faster than real time the schedules run (default 360)",
        "soak_seconds": "seconds of trading and scheduled backups before the first disaster",
        "keep": "leave the local servers up afterwards, for inspection (Ctrl-C stops them)",
        "stack": "local (default); real stacks: not yet (see the README)",
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
) -> None:
    """The DR drill: seed, trade, back up on schedule, break, restore, verify, measure RTO/RPO."""
    from drkit.drill.run import DrillOptions, run_drill

    if stack != "local":
        raise fail(
            f"--stack {stack}: the drill against real stacks is not built yet; "
            "run it on the local embedded default (--stack local)"
        )
    try:
        options = DrillOptions(
            size_mb=size_mb,
            time_factor=time_factor,
            soak_seconds=soak_seconds,
            keep=keep,
            **({"scenarios": scenario} if scenario else {}),
        )
    except ValueError as error:
        raise fail(str(error)) from None
    workdir = Path(tempfile.mkdtemp(prefix="drkit-drill-"))
    report = run_drill(options, ROOT, workdir, ROOT / "reports")
    if not report.ok:
        raise Exit("drill FAILED: an objective was missed or a restore did not verify", code=1)


namespace = Collection()
namespace.add_task(drill)
namespace.add_collection(Collection("local", roundtrip))
namespace.add_collection(Collection("config", check))
namespace.add_collection(Collection("backup", store))
namespace.add_collection(Collection("restore", restore_postgres))
