"""``invoke restore.postgres``: a PostgreSQL backup into a target database, as a plan.

Everything that can be refused is refused before the plan is printed: an unknown store, a store of
another kind, a recovery point that cannot be served, a target that is not a plain database name
(``drkit.targets``: never a connection string, ``postgres``, a template or the source database), a
target that is not empty, a target server older than the backup's (naming both versions), a
target cluster without the roles the backup's objects reference (listing them; ``--create-roles``
creates them without passwords, ``--no-privileges`` restores without owners and grants, but
still needs the roles a policy or a user mapping names). The
default target is a new database next to the source (``<db>_restored_<backup time>``); the
restore connects to exactly the database it checked.

The verify step compares the restored database with what the backup recorded in its snapshot:
row counts, then the schema fingerprint (every object, its definition and privileges), each
table's content checksum and each sequence's state (``drkit.pg_exact``), and names the first
difference; the run fails and the target database is left as it is, for inspection. A backup
made before these were recorded is compared by row counts ("not recorded").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Self

import psycopg
from psycopg import sql
from pydantic import Field

from drkit.backup.manifest import Manifest
from drkit.backup.postgres import PostgresSource
from drkit.catalog import CatalogEntry
from drkit.context import OpsContext
from drkit.endpoints import postgres_source
from drkit.ops.journal import Journal
from drkit.ops.plan import FunctionStep, Plan, StepContext
from drkit.ops.run import JOURNAL_DIR
from drkit.ops.selection import (
    TargetNotEmptyError,
    check_bound_objects,
    check_unreplaced,
    object_store,
)
from drkit.ops.verbs import Holds, RestoreEnv, RestoreRequest, RestoreVerb
from drkit.pg_jobs import parse_jobs, resolve_jobs
from drkit.progress import ByteProgress
from drkit.recovery import BackupIndex, RecoveryError, parse_timestamp
from drkit.restore.postgres import (
    TargetNotEmpty,
    check_target_server,
    compare_restored,
    count_rows,
    create_missing_roles,
    end_orphaned_restores,
    ensure_empty,
    restore_postgres,
    user_tables,
)
from drkit.restore.postgres_parallel import is_parallel
from drkit.storage.objectstore import ObjectStore
from drkit.targets import postgres_database
from stackmodels.config import StoreKind


class RestorePostgresRequest(RestoreRequest):
    store: str = "trading-db"
    at: str | None = None
    backup: str | None = None
    target_database: str | None = None
    tables: list[str] = Field(default_factory=list)
    force: bool = False
    source: str = Field(default="vault", pattern="^(vault|mirror|isolated)$")
    create_roles: bool = False
    no_privileges: bool = False
    jobs: str = ""
    """A format-2 backup's parallel jobs: a number, or blank/``auto`` (``drkit.pg_jobs``)."""

    @classmethod
    def from_flags(cls, **flags: Any) -> Self:
        """``--table`` (repeatable) gives ``tables``."""
        tables = flags.pop("table", None)
        return super().from_flags(**flags, tables=tables)

    @classmethod
    def pinned(cls, saved: Mapping[str, Any]) -> dict[str, Any]:
        """The backup the journaled run chose and the database it restored into (its ``target``
        is ``host:port/database``)."""
        pins = super().pinned(saved)
        target = saved.get("target")
        if isinstance(target, str) and "/" in target:
            pins["target_database"] = target.rpartition("/")[2]
        return pins


@dataclass(frozen=True)
class Prepared(Holds):
    entry: CatalogEntry
    manifest: Manifest
    objects: ObjectStore
    target: PostgresSource
    missing_roles: list[str] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)
    jobs: int = 1
    """Parallel jobs of a format-2 backup's restore; 1 for a format-1 backup (one stream)."""


def prepare(
    ctx: OpsContext,
    request: RestorePostgresRequest,
    resume: bool = False,
    created: frozenset[str] = frozenset(),
) -> Prepared:
    """Resolve and check everything; raises ValueError subclasses naming the bad input.

    ``resume``: a resumed run finds the tables its own restore step loaded (it may have been
    killed after the restore committed, before the journal said so): a target whose row counts
    are exactly the backup's is not a reason to refuse; the step then finds itself done. Nor,
    for a format-2 backup (whose tables load in transactions of their own), is a database the
    resumed run created itself (``created``): the restore step starts it again from empty."""
    if request.at and request.backup:
        raise RecoveryError("give --at or --backup, not both")
    store = ctx.store_config(request.store)
    if store.kind is not StoreKind.POSTGRES:
        raise RecoveryError(f"store {request.store!r} is {store.kind.value}, not postgres")
    source = postgres_source(ctx, request.store)
    if request.target_database is not None:  # a bad name is refused before the vault is read
        postgres_database(request.target_database, [source.database])
    objects = object_store(ctx, request.source)
    index = BackupIndex(ctx.config, objects)
    if request.backup:
        entry = index.by_id(request.store, request.backup)
    else:
        entry = index.latest(request.store, parse_timestamp(request.at) if request.at else None)
    manifest = index.manifest(entry)  # bound to its path and its catalog entry
    check_bound_objects(objects, manifest)  # each object tagged with this backup
    if request.source == "isolated":  # each object the one written there, before any change
        check_unreplaced(objects, manifest)
    database = request.target_database
    if database is None:
        database = f"{source.database}_restored_{entry.recovery_point.astimezone(UTC):%Y%m%d%H%M}"
    postgres_database(database, [source.database, str(manifest.source.get("database") or "")])
    target = postgres_source(ctx, request.store, database)
    missing = check_target_server(manifest, source, not request.no_privileges, request.create_roles)
    own = resume and is_parallel(manifest) and database in created
    if (
        _database_exists(source, database)
        and not own
        and not (resume and _holds_backup(target, manifest, request.tables))
    ):
        try:
            ensure_empty(target, request.force)
        except TargetNotEmpty as error:
            raise TargetNotEmptyError(f"{error}. Nothing was changed.") from None
    _check_tables(request.tables, manifest)
    jobs = _jobs(request, manifest, source, database, resume)
    return Prepared(entry, manifest, objects, target, missing, jobs=jobs)


def _jobs(
    request: RestorePostgresRequest,
    manifest: Manifest,
    server: PostgresSource,
    database: str,
    resume: bool,
) -> int:
    """A format-2 backup: the jobs the server's free connections allow (refusing ``--jobs 0``
    and too many, naming the limit), into an empty database only. A format-1 backup: one
    stream (``--jobs`` is checked, and has nothing to split)."""
    if not is_parallel(manifest):
        parse_jobs(request.jobs)
        return 1
    if request.force and not resume and _database_exists(server, database):
        with psycopg.connect(server.conninfo(database)) as connection:
            existing = user_tables(connection)
        if existing:
            raise TargetNotEmptyError(
                f"backup {manifest.backup_id} is format 2 (parallel): it restores into an empty "
                f"database only, and {database!r} has {len(existing)} table(s); --force cannot "
                "replace them. Choose a new --target-database, or drop that one. Nothing was "
                "changed."
            )
    return resolve_jobs(server, request.jobs, 1, "restore")


def build_plan(
    ctx: OpsContext, request: RestorePostgresRequest, env: RestoreEnv
) -> tuple[Plan, Prepared]:
    resume = env.resume is not None
    created = _created_by(env)
    prepared = prepare(ctx, request, resume, created)
    prepared.figures.update(data_loss_figures(prepared))
    entry, target = prepared.entry, prepared.target
    server = postgres_source(ctx, request.store)
    selected = _selected(request.tables, prepared.manifest)
    expected = {table: prepared.manifest.counts[table] for table in selected}

    def create(context: StepContext) -> str:
        with psycopg.connect(server.conninfo(), autocommit=True) as connection:
            connection.execute(
                sql.SQL("CREATE DATABASE {}").format(sql.Identifier(target.database))
            )
        return target.database

    def restore(context: StepContext) -> dict[str, int]:
        if resume:
            ended = end_orphaned_restores(target)
            if ended:
                context.note(f"ended {ended} pg_restore session(s) the killed run left")
            if restored_already(context):
                context.note("the killed run's pg_restore had committed: nothing to redo")
                return expected
            if is_parallel(prepared.manifest) and target.database in created:
                _recreate(server, target.database)
                context.note(
                    f"dropped what the killed run had loaded into {target.database!r} (the "
                    "database it created) and created it again, empty"
                )
        progress = ByteProgress(f"restore {request.store}", total=_restored_bytes(prepared))
        result = restore_postgres(
            prepared.manifest,
            prepared.objects,
            target,
            tables=request.tables or None,
            force=request.force,
            progress=progress,
            privileges=not request.no_privileges,
            jobs=prepared.jobs,
        )
        progress.done()
        context.note(f"{sum(result.counts.values()):,} rows in {len(result.counts)} tables")
        return result.counts

    def restored_already(context: StepContext) -> bool:
        """Judged by the data: the row counts, and what the backup recorded, are the backup's."""
        if not _database_exists(server, target.database):
            return False
        try:
            if count_rows(target, selected) != expected:
                return False
            return compare(target)[0] is None
        except psycopg.Error:
            return False

    def compare(target: PostgresSource) -> tuple[str | None, str]:
        only = selected if request.tables else None  # as the manifest names them
        return compare_restored(prepared.manifest, target, only, not request.no_privileges)

    def verify(context: StepContext) -> None:
        found = count_rows(target, selected)
        wrong = {t: (found.get(t), n) for t, n in expected.items() if found.get(t) != n}
        if wrong:
            raise RuntimeError(
                f"row counts differ from the manifest (found, expected): {wrong}; "
                f"{target.database!r} is left as it is, for inspection"
            )
        context.note(f"{len(expected)} tables match the manifest's row counts")
        difference, compared = compare(target)
        if difference is not None:
            raise RuntimeError(
                f"the restored database differs from backup {entry.backup_id}: {difference}; "
                f"{target.database!r} is left as it is, for inspection"
            )
        context.note(f"{compared}: as recorded in the backup's snapshot")

    def create_roles(context: StepContext) -> list[str]:
        create_missing_roles(prepared.manifest, server, prepared.missing_roles)
        context.note(f"created {len(prepared.missing_roles)} role(s) without passwords")
        return prepared.missing_roles

    def roles_exist(context: StepContext) -> bool:
        return not check_target_server(prepared.manifest, server, not request.no_privileges, True)

    steps = [
        FunctionStep(
            f"create-database.{target.database}",
            f"create database {target.database!r} on {target.host}:{target.port}",
            create,
            check=lambda c: _database_exists(server, target.database),
        ),
        FunctionStep(
            f"restore.{request.store}",
            f"pg_restore backup {entry.backup_id} ({prepared.objects.name}, consistent at "
            f"{entry.recovery_point.isoformat()}) into {target.database!r}"
            + (
                f", {prepared.jobs} job(s) in parallel (format 2)"
                if is_parallel(prepared.manifest)
                else ""
            )
            + (f", tables {', '.join(request.tables)}" if request.tables else ""),
            restore,
            check=restored_already,
        ),
        FunctionStep(
            f"verify.{request.store}",
            f"compare row counts of {len(selected)} tables"
            + (
                ", the schema fingerprint, content checksums and sequences"
                if prepared.manifest.checks
                else " (schema fingerprint and content checksums not recorded in this backup)"
            )
            + " with the manifest",
            lambda c: None,
            confirm=verify,
            mutates=False,
        ),
    ]
    parameters: dict[str, Any] = request.model_dump() | {
        "stack": ctx.stack,
        "backup_id": entry.backup_id,
        "recovery_point": entry.recovery_point.isoformat(),
        "target": f"{target.host}:{target.port}/{target.database}",
    }
    dependencies = {steps[1].id: [steps[0].id], steps[2].id: [steps[1].id]}
    if prepared.missing_roles:
        roles = FunctionStep(
            "create-roles",
            f"create role(s) {', '.join(prepared.missing_roles)} on {server.host}:{server.port}"
            " without passwords (--create-roles)",
            create_roles,
            check=roles_exist,
        )
        dependencies[steps[1].id] = [steps[0].id, roles.id]
        steps.insert(0, roles)
    plan = Plan.from_dependencies(
        f"restore postgres {request.store}", steps, dependencies, parameters
    )
    return plan, prepared


def data_loss_figures(prepared: Prepared, now: datetime | None = None) -> dict[str, Any]:
    moment = now or datetime.now(UTC)
    return {
        "backup_id": prepared.entry.backup_id,
        "recovery_point": prepared.entry.recovery_point.isoformat(),
        "recovery_point_age_seconds": round(
            (moment - prepared.entry.recovery_point).total_seconds(), 1
        ),
        "rows_in_backup": sum(prepared.manifest.counts.values()),
    }


def _restored_bytes(prepared: Prepared) -> int:
    """What the progress counts: the dump (format 1), or the tables' rows (format 2)."""
    manifest = prepared.manifest
    if not is_parallel(manifest):
        return next(o for o in manifest.objects if o.name == "database.dump").raw_size
    return sum(o.raw_size for o in manifest.objects if o.name.endswith(".copy"))


def _selected(tables: list[str], manifest: Manifest) -> list[str]:
    if not tables:
        return list(manifest.counts)
    return [t for t in manifest.counts if t in tables or t.split(".", 1)[1] in tables]


def _check_tables(tables: list[str], manifest: Manifest) -> None:
    known = set(manifest.counts) | {t.split(".", 1)[1] for t in manifest.counts}
    unknown = [t for t in tables if t not in known]
    if unknown:
        raise RecoveryError(
            f"--table {', '.join(unknown)}: not in backup {manifest.backup_id}; it has "
            f"{', '.join(sorted(manifest.counts))}"
        )


def _holds_backup(target: PostgresSource, manifest: Manifest, tables: list[str]) -> bool:
    selected = _selected(tables, manifest)
    try:
        return count_rows(target, selected) == {t: manifest.counts[t] for t in selected}
    except psycopg.Error:
        return False


def _created_by(env: RestoreEnv) -> frozenset[str]:
    """The databases the resumed run created (its journaled ``create-database.*`` steps)."""
    if env.resume is None:
        return frozenset()
    finished = Journal(env.project_dir / JOURNAL_DIR, env.resume).finished_steps()
    prefix = "create-database."
    return frozenset(s.removeprefix(prefix) for s in finished if s.startswith(prefix))


def _recreate(server: PostgresSource, name: str) -> None:
    with psycopg.connect(server.conninfo("postgres"), autocommit=True) as connection:
        connection.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def _database_exists(server: PostgresSource, name: str) -> bool:
    with psycopg.connect(server.conninfo("postgres")) as connection:
        row = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
    return row is not None


VERB = RestoreVerb(RestorePostgresRequest, build_plan, "restore-postgres")
