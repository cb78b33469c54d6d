"""Which backup handler serves a store, built from the stack's outputs and credentials."""

from __future__ import annotations

from drkit.backup.engine import Handler
from drkit.backup.postgres import PostgresHandler, PostgresSource
from drkit.context import OpsContext
from stackmodels.config import StoreKind


class NoHandler(ValueError):
    """The store's kind has no backup handler in this build, or its endpoint is unknown."""


def postgres_source(ctx: OpsContext, store: str, database: str | None = None) -> PostgresSource:
    endpoint = ctx.outputs.stores.get(store)
    if endpoint is None:
        raise NoHandler(f"stack {ctx.stack!r} exports no endpoint for store {store!r}")
    credentials = ctx.credentials.for_store(store)
    return PostgresSource(
        host=endpoint.host,
        port=endpoint.port,
        database=database or endpoint.database or store,
        user=credentials.user,
        password=credentials.password,
    )


def backup_handler(ctx: OpsContext, store: str) -> Handler:
    kind = ctx.store_config(store).kind
    if kind is StoreKind.POSTGRES:
        return PostgresHandler(postgres_source(ctx, store))
    raise NoHandler(f"store {store!r} is of kind {kind.value!r}, which has no backup handler yet")
