"""Which backup handler serves a store: the path of the service the stack's outputs name for it,
among those of its kind in ``drkit.kinds`` (the paths themselves: ``drkit.backup.paths``)."""

from __future__ import annotations

from datetime import UTC, datetime

from drkit.backup.engine import Handler
from drkit.backup.paths import BackupPath
from drkit.context import OpsContext
from drkit.endpoints import NoHandler
from drkit.kinds import REGISTRY
from stackmodels.outputs import SERVICES_WITHOUT_CREDENTIALS, StoreService

BACKUP_PATHS: dict[StoreService, BackupPath] = {
    service: path for entry in REGISTRY.values() for service, path in entry.backup.paths.items()
}
"""The backup path of each service: the one place that says which handler serves which store."""


def service_of(ctx: OpsContext, store: str) -> StoreService:
    """What serves ``store`` according to the stack's outputs, or the kind's implicit service
    where it needs no exported endpoint (a Kubernetes store's job reads its own cluster)."""
    config = ctx.store_config(store)
    exported = ctx.outputs.stores.get(store)
    if exported is not None:
        return exported.service
    implicit = REGISTRY[config.kind].backup.implicit_service
    if implicit is not None:
        return implicit
    raise NoHandler(f"stack {ctx.stack!r} exports no endpoint for store {store!r}")


def backup_path(ctx: OpsContext, store: str) -> BackupPath:
    return BACKUP_PATHS[service_of(ctx, store)]


def needs_credentials(ctx: OpsContext, store: str) -> bool:
    return service_of(ctx, store) not in SERVICES_WITHOUT_CREDENTIALS


def backup_handler(ctx: OpsContext, store: str, now: datetime | None = None) -> Handler:
    """The handler for ``store``, chosen by what the stack's outputs say serves it."""
    return backup_path(ctx, store).build(ctx, store, now or datetime.now(UTC))
