"""Which backup handler serves a store, built from the stack's outputs and credentials."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from drkit.backup.engine import Handler
from drkit.backup.kafka import KafkaHandler
from drkit.backup.kubernetes import KubernetesHandler
from drkit.backup.manifest import Manifest
from drkit.backup.postgres import PostgresHandler, PostgresSource
from drkit.backup.redis import RedisHandler, RedisSource
from drkit.backup.timeseries import TimeseriesHandler
from drkit.context import OpsContext
from drkit.influx import InfluxEndpoint
from drkit.kafka_auth import client_auth, region_of_cluster
from drkit.kubestate.api import (
    ApiClientFactory,
    in_cluster_client_factory,
    kubeconfig_client_factory,
    running_in_cluster,
)
from drkit.recovery import BackupIndex, RecoveryError
from stackmodels.config import StoreKind


class NoHandler(ValueError):
    """The store's kind has no backup handler in this build, or its endpoint is unknown."""


def endpoint(ctx: OpsContext, store: str) -> tuple[str, int]:
    found = ctx.outputs.stores.get(store)
    if found is None:
        raise NoHandler(f"stack {ctx.stack!r} exports no endpoint for store {store!r}")
    return found.host, found.port


def kafka_settings(ctx: OpsContext, store: str) -> dict[str, Any]:
    """The authentication settings of every Kafka client made for ``store``: IAM tokens for the
    region of the exported MSK cluster, nothing for a plain listener."""
    exported = ctx.outputs.stores.get(store)
    if exported is None:
        raise NoHandler(f"stack {ctx.stack!r} exports no endpoint for store {store!r}")
    return client_auth(exported.auth, region_of_cluster(exported.resource_id, ctx.config.region))


def postgres_source(ctx: OpsContext, store: str, database: str | None = None) -> PostgresSource:
    host, port = endpoint(ctx, store)
    credentials = ctx.credentials.for_store(store)
    exported = ctx.outputs.stores[store].database
    return PostgresSource(
        host=host,
        port=port,
        database=database or exported or store,
        user=credentials.user,
        password=credentials.password,
    )


def kubernetes_client_factory(ctx: OpsContext, store: str) -> ApiClientFactory:
    """How a store of kind kubernetes reaches its API server, first match wins:

    - the store's exported ``data_path``: a kubeconfig file (the local stack exports the one its
      kube-apiserver harness writes, admin token and pinned CA, mode 600);
    - inside a pod (``KUBERNETES_SERVICE_HOST``): the pod's service account, as the backup
      CronJob runs;
    - otherwise ``$KUBECONFIG`` or ``~/.kube/config`` at the stack config's
      ``kubernetes.context`` (an operator's machine).
    """
    exported = ctx.outputs.stores.get(store)
    if exported is not None and exported.data_path:
        return kubeconfig_client_factory(Path(exported.data_path))
    if running_in_cluster():
        return in_cluster_client_factory()
    return kubeconfig_client_factory(None, ctx.config.kubernetes.context)


def previous_for_incremental(ctx: OpsContext, store: str, now: datetime) -> Manifest | None:
    """The backup to continue from: today's (UTC) latest. The first backup of a day is full,
    so a restore never replays a chain longer than a day's backups."""
    index = BackupIndex(ctx.config, ctx.vault())
    try:
        latest = index.latest(store, now=now)
    except RecoveryError:
        return None
    if latest.started_at.astimezone(UTC).date() != now.astimezone(UTC).date():
        return None
    return index.manifest(latest)


def backup_handler(ctx: OpsContext, store: str, now: datetime | None = None) -> Handler:
    config = ctx.store_config(store)
    if config.kind is StoreKind.POSTGRES:
        return PostgresHandler(postgres_source(ctx, store))
    if config.kind is StoreKind.KAFKA:
        host, port = endpoint(ctx, store)
        moment = now or datetime.now(UTC)
        return KafkaHandler(
            f"{host}:{port}",
            list(config.topics),
            previous=previous_for_incremental(ctx, store, moment),
            client_config=kafka_settings(ctx, store),
        )
    if config.kind is StoreKind.REDIS:
        host, port = endpoint(ctx, store)
        credentials = ctx.credentials.for_store(store)
        data_path = ctx.outputs.stores[store].data_path
        return RedisHandler(
            RedisSource(host, port, credentials.password),
            rdb_path=Path(data_path) if data_path else None,
        )
    if config.kind is StoreKind.TIMESERIES:
        host, port = endpoint(ctx, store)
        credentials = ctx.credentials.for_store(store)
        database = ctx.outputs.stores[store].database or store
        return TimeseriesHandler(
            InfluxEndpoint(host, port, credentials.user, credentials.password), database
        )
    if config.kind is StoreKind.KUBERNETES:
        return KubernetesHandler(
            kubernetes_client_factory(ctx, store),
            namespace=ctx.outputs.k8s_namespace,
            kms_key_id=ctx.outputs.vault_key_arn,
            kms_client=ctx.aws("kms"),
        )
    raise NoHandler(
        f"store {store!r} is of kind {config.kind.value!r}, which has no backup handler yet"
    )
