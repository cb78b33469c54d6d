"""Which backup handler serves a store, built from the stack's outputs and credentials."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from drkit.backup.engine import Handler
from drkit.backup.kafka import KafkaHandler
from drkit.backup.kubernetes import KubernetesHandler
from drkit.backup.manifest import Manifest
from drkit.backup.postgres import PostgresHandler, PostgresSource
from drkit.backup.redis import ElastiCacheHandler, RedisHandler, RedisSource
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
from drkit.storage.s3 import S3Store
from stackmodels.config import StoreKind
from stackmodels.outputs import SERVICES_WITHOUT_CREDENTIALS, ReplicationGroup, StoreService


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


@dataclass(frozen=True)
class BackupPath:
    """How a store served by one service is backed up: what the plan says, and the handler.
    One entry per service in ``BACKUP_PATHS``; whether the run reads the store's credentials is
    ``stackmodels.outputs.SERVICES_WITHOUT_CREDENTIALS`` (infra decides the CronJob's Secret by
    it too)."""

    method: str
    """What the handler does, for the plan (``pg_dump of an exported snapshot``...)."""
    build: Callable[[OpsContext, str, datetime], Handler]


def service_of(ctx: OpsContext, store: str) -> StoreService:
    """What serves ``store`` according to the stack's outputs.

    A store of kind kubernetes needs no exported endpoint (the job reads its own cluster)."""
    config = ctx.store_config(store)
    exported = ctx.outputs.stores.get(store)
    if exported is not None:
        return exported.service
    if config.kind is StoreKind.KUBERNETES:
        return StoreService.KUBERNETES
    raise NoHandler(f"stack {ctx.stack!r} exports no endpoint for store {store!r}")


def _postgres(ctx: OpsContext, store: str, now: datetime) -> Handler:
    return PostgresHandler(postgres_source(ctx, store))


def _kafka(ctx: OpsContext, store: str, now: datetime) -> Handler:
    host, port = endpoint(ctx, store)
    return KafkaHandler(
        f"{host}:{port}",
        list(ctx.store_config(store).topics),
        previous=previous_for_incremental(ctx, store, now),
        client_config=kafka_settings(ctx, store),
    )


def redis_source(ctx: OpsContext, store: str) -> RedisSource:
    exported = ctx.outputs.stores[store]
    credentials = ctx.credentials.for_store(store)
    return RedisSource(
        exported.host,
        exported.port,
        credentials.password,
        tls=exported.tls,
        tls_ca_file=exported.tls_ca_file,
    )


def _redis(ctx: OpsContext, store: str, now: datetime) -> Handler:
    data_path = ctx.outputs.stores[store].data_path
    return RedisHandler(redis_source(ctx, store), rdb_path=Path(data_path) if data_path else None)


def _elasticache_member(ctx: OpsContext, store: str) -> ReplicationGroup | None:
    """The store's replication group in the outputs: its region and export staging bucket."""
    group = ctx.outputs.stores[store].resource_id
    members = ctx.outputs.elasticache.replication_groups if ctx.outputs.elasticache else {}
    return next((member for member in members.values() if member.id == group), None)


def _elasticache(ctx: OpsContext, store: str, now: datetime) -> Handler:
    exported = ctx.outputs.stores[store]
    if not exported.resource_id:
        raise NoHandler(
            f"stack {ctx.stack!r} exports store {store!r} as ElastiCache without its "
            "replication group id (resource_id)"
        )
    member = _elasticache_member(ctx, store)
    if member is None or not member.export_bucket:
        raise NoHandler(
            f"stack {ctx.stack!r} exports ElastiCache group {exported.resource_id!r} of store "
            f"{store!r} without its export staging bucket "
            "(elasticache.replication_groups.<region>.export_bucket): deploy the stack"
        )
    s3 = ctx.aws("s3", member.region)
    return ElastiCacheHandler(
        ctx.aws("elasticache", member.region),
        staging=S3Store(s3, member.export_bucket),
        replication_group_id=exported.resource_id,
    )


def _timeseries(ctx: OpsContext, store: str, now: datetime) -> Handler:
    exported = ctx.outputs.stores[store]
    credentials = ctx.credentials.for_store(store)
    return TimeseriesHandler(
        InfluxEndpoint(
            exported.host,
            exported.port,
            credentials.user,
            credentials.password,
            tls=exported.tls,
            tls_ca_file=exported.tls_ca_file,
        ),
        exported.database or store,
    )


def _kubernetes(ctx: OpsContext, store: str, now: datetime) -> Handler:
    return KubernetesHandler(
        kubernetes_client_factory(ctx, store),
        namespace=ctx.outputs.k8s_namespace,
        kms_key_id=ctx.outputs.vault_key_arn,
        kms_client=ctx.aws("kms"),
    )


_PG_DUMP = "pg_dump (custom format) of an exported REPEATABLE READ snapshot"
_INFLUX = "the last full hour exported to Parquet, one object per measurement (InfluxQL /query)"
BACKUP_PATHS: dict[StoreService, BackupPath] = {
    StoreService.POSTGRESQL: BackupPath(_PG_DUMP, _postgres),
    StoreService.AURORA_POSTGRESQL: BackupPath(_PG_DUMP + " of the writer", _postgres),
    StoreService.KAFKA: BackupPath(
        "every record of the topics up to the end offsets read at the start", _kafka
    ),
    StoreService.MSK: BackupPath(
        "every record of the topics up to the end offsets read at the start (IAM auth)",
        _kafka,
    ),
    StoreService.REDIS: BackupPath(
        "BGSAVE, then dump.rdb from the shared volume or over replication (redis-cli --rdb)",
        _redis,
    ),
    StoreService.ELASTICACHE: BackupPath(
        "a manual snapshot exported by ElastiCache (CopySnapshot) to the region's staging "
        "bucket, streamed once into the vault and the mirror, then cleared from staging",
        _elasticache,
    ),
    StoreService.KUBERNETES: BackupPath(
        "the namespace's objects and CRDs at one resourceVersion, Secrets sealed with KMS",
        _kubernetes,
    ),
    StoreService.INFLUXDB: BackupPath(_INFLUX, _timeseries),
    StoreService.TIMESTREAM_INFLUXDB: BackupPath(_INFLUX + " over HTTPS", _timeseries),
}
"""The backup path of each service: the one place that says which handler serves which store."""


def backup_path(ctx: OpsContext, store: str) -> BackupPath:
    return BACKUP_PATHS[service_of(ctx, store)]


def needs_credentials(ctx: OpsContext, store: str) -> bool:
    return service_of(ctx, store) not in SERVICES_WITHOUT_CREDENTIALS


def backup_handler(ctx: OpsContext, store: str, now: datetime | None = None) -> Handler:
    """The handler for ``store``, chosen by what the stack's outputs say serves it."""
    return backup_path(ctx, store).build(ctx, store, now or datetime.now(UTC))
