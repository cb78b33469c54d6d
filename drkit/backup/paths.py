"""How a store is backed up, per service that serves it: what the plan says, and the handler
built from the stack's outputs and credentials (``drkit.endpoints``).

Each store kind's entry in ``drkit.kinds`` names the paths of its services; ``drkit.handlers``
picks the one the stack's outputs name for a store. Each builder imports its own handler and
client modules when it is called: the backup of one kind imports nothing of the others.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from drkit.recovery import BackupIndex, RecoveryError
from stackmodels.outputs import StoreService

if TYPE_CHECKING:
    from drkit.backup.engine import Handler
    from drkit.backup.manifest import Manifest
    from drkit.context import OpsContext


@dataclass(frozen=True)
class BackupPath:
    """How a store served by one service is backed up: what the plan says, and the handler.
    Whether the run reads the store's credentials is
    ``stackmodels.outputs.SERVICES_WITHOUT_CREDENTIALS`` (infra decides the CronJob's Secret by
    it too)."""

    method: str
    """What the handler does, for the plan (``pg_dump of an exported snapshot``...)."""
    build: Callable[[OpsContext, str, datetime], Handler]


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


def _postgres(ctx: OpsContext, store: str, now: datetime) -> Handler:
    from drkit.backup.postgres import PostgresHandler
    from drkit.endpoints import postgres_source

    return PostgresHandler(postgres_source(ctx, store))


def _kafka(ctx: OpsContext, store: str, now: datetime) -> Handler:
    from drkit.backup.kafka import KafkaHandler
    from drkit.endpoints import endpoint, kafka_settings

    host, port = endpoint(ctx, store)
    return KafkaHandler(
        f"{host}:{port}",
        list(ctx.store_config(store).topics),
        previous=previous_for_incremental(ctx, store, now),
        client_config=kafka_settings(ctx, store),
    )


def _redis(ctx: OpsContext, store: str, now: datetime) -> Handler:
    from drkit.backup.redis import RedisHandler
    from drkit.endpoints import redis_source

    data_path = ctx.outputs.stores[store].data_path
    return RedisHandler(redis_source(ctx, store), rdb_path=Path(data_path) if data_path else None)


def _elasticache(ctx: OpsContext, store: str, now: datetime) -> Handler:
    from drkit.backup.redis import ElastiCacheHandler
    from drkit.endpoints import NoHandler, elasticache_group
    from drkit.storage.s3 import S3Store

    exported = ctx.outputs.stores[store]
    if not exported.resource_id:
        raise NoHandler(
            f"stack {ctx.stack!r} exports store {store!r} as ElastiCache without its "
            "replication group id (resource_id)"
        )
    member = elasticache_group(ctx, store)
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
    from drkit.backup.timeseries import TimeseriesHandler
    from drkit.endpoints import influx_endpoint

    return TimeseriesHandler(*influx_endpoint(ctx, store))


def _kubernetes(ctx: OpsContext, store: str, now: datetime) -> Handler:
    from drkit.backup.kubernetes import KubernetesHandler
    from drkit.endpoints import kubernetes_client_factory

    return KubernetesHandler(
        kubernetes_client_factory(ctx, store),
        namespace=ctx.outputs.k8s_namespace,
        kms_key_id=ctx.outputs.vault_key_arn,
        kms_client=ctx.aws("kms"),
        isolated_kms_client=ctx.isolated_kms(),
    )


_PG_DUMP = "pg_dump (custom format) of an exported REPEATABLE READ snapshot"
_INFLUX = "the last full hour exported to Parquet, one object per measurement (InfluxQL /query)"
_KAFKA = "every record of the topics up to the end offsets read at the start"

POSTGRES_PATHS = {
    StoreService.POSTGRESQL: BackupPath(_PG_DUMP, _postgres),
    StoreService.AURORA_POSTGRESQL: BackupPath(_PG_DUMP + " of the writer", _postgres),
}
KAFKA_PATHS = {
    StoreService.KAFKA: BackupPath(_KAFKA, _kafka),
    StoreService.MSK: BackupPath(_KAFKA + " (IAM auth)", _kafka),
}
REDIS_PATHS = {
    StoreService.REDIS: BackupPath(
        "BGSAVE, then dump.rdb from the shared volume or over replication (redis-cli --rdb)",
        _redis,
    ),
    StoreService.ELASTICACHE: BackupPath(
        "a manual snapshot exported by ElastiCache (CopySnapshot) to the region's staging "
        "bucket, streamed once into the vault and the mirror, then cleared from staging",
        _elasticache,
    ),
}
KUBERNETES_PATHS = {
    StoreService.KUBERNETES: BackupPath(
        "the namespace's objects and CRDs at one resourceVersion, Secrets sealed with KMS",
        _kubernetes,
    ),
}
TIMESERIES_PATHS = {
    StoreService.INFLUXDB: BackupPath(_INFLUX, _timeseries),
    StoreService.TIMESTREAM_INFLUXDB: BackupPath(_INFLUX + " over HTTPS", _timeseries),
}
