"""Where a test restore of PostgreSQL goes: a scratch database on a writable server, never the
store's own database, and never a read-only one.

- **The store's server is writable** (prod, the local stack): a new database
  ``<database>_<purpose>_<holder tag>`` (``drkit.ops.scratch``) on it, refused when the name is
  taken, dropped after, also when the restore fails. ``cleanup`` (``invoke verify --cleanup``, and
  every run before its test restore) drops those whose run is gone.
- **The stack is a dr stack**: what it exports for the store is the read-only copy of prod's
  database (the Aurora global database's secondary; locally the streaming standby) until a failover
  promotes it, and the writer it follows is prod's, which a drill must never touch. The restore
  goes to a **throwaway PostgreSQL server** started on this host (``LocalPostgres`` in a temporary
  directory ``drkit-scratch-postgres-<holder tag>-*``, removed after): the exported endpoint is not
  even connected to. ``cleanup`` stops and removes a server a killed run left
  (``drkit.ops.throwaway``). A host without the PostgreSQL server binaries is
  refused with a message that says so.
- **The dr stack exports the store's Aurora cluster in its region** (an AWS dr stack; locally
  dr's ``outputs-aurora.json``): no database and no server at all, a scratch cluster restored
  from it with ``restore.aurora``'s plan, deleted after (``drkit.ops.scratch_aurora``);
  ``cleanup`` deletes those killed runs left, beside the throwaway servers.
"""

from __future__ import annotations

import shutil
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

import psycopg
from psycopg import sql

from drkit.backup.postgres import PostgresSource
from drkit.context import OpsContext
from drkit.endpoints import postgres_source
from drkit.ops.scratch import (
    VERIFY,
    Holder,
    ScratchExists,
    database_name,
    parse_database,
    sweep,
)
from drkit.ops.throwaway import make_workdir, record, sweep_servers
from drkit.recovery import RecoveryError
from stackmodels.config import Role

SERVER_KIND = "postgres"


@dataclass(frozen=True)
class ScratchDatabase:
    target: PostgresSource
    where: str
    """For the report: which database on which server, and that it is gone."""


def read_only_reason(ctx: OpsContext, store: str) -> str | None:
    """Why the store's exported endpoint must not take a scratch database, or None."""
    if ctx.config.role is Role.DR:
        follows = ctx.config.primary_stack or "the primary stack"
        return (
            f"stack {ctx.stack!r} is a dr stack: it exports {store!r} as the read-only copy of "
            f"{follows}'s database, whose writer a drill must not touch"
        )
    return None


@contextmanager
def scratch_database(
    ctx: OpsContext, store: str, holder: Holder, purpose: str = VERIFY
) -> Iterator[ScratchDatabase]:
    """A new, empty database to restore ``store``'s backup into; removed on exit."""
    reason = read_only_reason(ctx, store)
    if reason is None:
        with _on_store_server(ctx, store, holder, purpose) as scratch:
            yield scratch
    else:
        database = ctx.outputs.stores[store].database or store
        with _on_throwaway_server(database, holder, purpose, reason) as scratch:
            yield scratch


@contextmanager
def _on_store_server(
    ctx: OpsContext, store: str, holder: Holder, purpose: str
) -> Iterator[ScratchDatabase]:
    server = postgres_source(ctx, store)
    name = database_name(server.database, holder, purpose)
    address = f"{server.host}:{server.port}"
    with psycopg.connect(server.conninfo("postgres"), autocommit=True) as connection:
        taken = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
        if taken.fetchone() is not None:
            raise ScratchExists(
                f"scratch database {name!r} already exists on {address}: refused, not replaced "
                "(drop it, or run `invoke verify --cleanup` if a killed run left it)"
            )
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield ScratchDatabase(
            postgres_source(ctx, store, name), f"scratch database {name} on {address} (dropped)"
        )
    finally:
        _drop(server, name)


@contextmanager
def _on_throwaway_server(
    database: str, holder: Holder, purpose: str, reason: str
) -> Iterator[ScratchDatabase]:
    from drkit.local.postgres import LocalPostgres, newest_bin_dir

    try:
        newest_bin_dir()
    except FileNotFoundError as error:
        raise RecoveryError(
            f"{reason}; its test restore needs a writable scratch server: a throwaway PostgreSQL "
            f"on this host, but {error} (apt-get install postgresql), and the stack's outputs "
            "export no Aurora cluster of the store in its region to restore a scratch one from."
        ) from None
    workdir = make_workdir(SERVER_KIND, holder)
    server = LocalPostgres(workdir)
    try:
        server.start()
        record(workdir, server, [server.base_dir], signal.SIGQUIT)  # immediate shutdown
        name = database_name(database, holder, purpose)
        server.create_database(name)
        yield ScratchDatabase(
            PostgresSource(server.host, server.port, name, server.user, server.password),
            f"scratch database {name} on a throwaway PostgreSQL server at "
            f"{server.host}:{server.port} (removed), not the read-only endpoint the stack exports",
        )
    finally:
        server.cleanup()
        shutil.rmtree(workdir, ignore_errors=True)


def _drop(server: PostgresSource, name: str) -> None:
    _detach_subscriptions(server, name)
    with psycopg.connect(server.conninfo("postgres"), autocommit=True) as connection:
        connection.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def _detach_subscriptions(server: PostgresSource, name: str) -> None:
    """Drop the subscriptions a restore put in the scratch database (``pg_dump`` restores them
    disabled): a database with one cannot be dropped. Each is first detached from its
    replication slot (``slot_name = NONE``): the slot on the publisher is the source
    database's, which dropping the subscription with it would drop too."""
    try:
        connection = psycopg.connect(server.conninfo(name), autocommit=True)
    except psycopg.OperationalError:  # gone already (or never created)
        return
    with connection:
        names = connection.execute(
            "SELECT subname FROM pg_subscription WHERE subdbid ="
            " (SELECT oid FROM pg_database WHERE datname = current_database())"
        ).fetchall()
        for (subscription,) in names:
            identifier = sql.Identifier(str(subscription))
            for statement in (
                "ALTER SUBSCRIPTION {} DISABLE",
                "ALTER SUBSCRIPTION {} SET (slot_name = NONE)",
                "DROP SUBSCRIPTION {}",
            ):
                connection.execute(sql.SQL(statement).format(identifier))


def cleanup(ctx: OpsContext, store: str, now: datetime, forced: bool, dry_run: bool) -> list[str]:
    """Drop the scratch databases of ``store`` that killed runs left on its server; one line per
    one found. A dr stack's exported endpoint holds none (and is read-only): the throwaway servers
    killed runs left on this host are stopped and removed instead."""
    if read_only_reason(ctx, store) is not None:
        from drkit.ops.scratch_aurora import cleanup as clusters

        return sweep_servers(SERVER_KIND, now, forced, dry_run) + clusters(
            ctx, store, now, forced, dry_run
        )
    server = postgres_source(ctx, store)
    with psycopg.connect(server.conninfo("postgres")) as connection:
        names = [str(row[0]) for row in connection.execute("SELECT datname FROM pg_database")]
    found = [(n, h) for n in names if (h := parse_database(n, server.database)) is not None]

    def drop(name: str) -> None:
        _drop(server, name)

    return sweep(found, now, forced, dry_run, drop, "database", ("drop", "dropped"))
