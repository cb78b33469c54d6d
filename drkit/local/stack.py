"""The local embedded default as a stack: provision its 'cloud' on the emulators and write the
same stack outputs a real stack exports, so every operation runs unchanged against it.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from drkit.context import Credentials, StoreCredentials
from drkit.kubestate.api import NAMESPACES, KubeApi
from drkit.local.gcs import LocalGcs
from drkit.local.influxdb import LocalInfluxDB
from drkit.local.kafka import LocalKafka
from drkit.local.kubernetes import LocalKubernetes
from drkit.local.postgres import LocalPostgres
from drkit.local.redis import LocalRedis
from drkit.local.s3 import LocalAws
from stackmodels import StackConfig, StackOutputs
from stackmodels.config import StoreKind
from stackmodels.outputs import Bucket, StoreEndpoint, StoreService

LOCAL_ACCOUNT_BUCKET_SUFFIX = "local"


class LocalServers(Protocol):
    """What provisioning needs: ``LocalEnvironment``, or the test session's fixtures."""

    @property
    def postgres(self) -> LocalPostgres: ...
    @property
    def redis(self) -> LocalRedis: ...
    @property
    def aws(self) -> LocalAws: ...
    @property
    def gcs(self) -> LocalGcs: ...
    @property
    def kafka(self) -> LocalKafka | None: ...
    @property
    def influxdb(self) -> LocalInfluxDB | None: ...


def _bucket(name: str, region: str) -> Bucket:
    return Bucket(name=name, arn=f"arn:aws:s3:::{name}", region=region)


def provision(
    env: LocalServers,
    config: StackConfig,
    suffix: str = LOCAL_ACCOUNT_BUCKET_SUFFIX,
    separate_databases: bool = False,
) -> tuple[StackOutputs, Credentials]:
    """Create the vault, mirror, audit bucket and key on the emulators; describe the servers.

    ``suffix`` ends every bucket name (and, with ``separate_databases``, every database name), so
    several local stacks can share one set of servers.
    """
    region = config.region
    vault = f"{config.platform}-backup-vault-{region}-{suffix}"
    audit = f"{config.platform}-audit-{region}-{suffix}"
    mirror = f"{config.platform}-backup-mirror-{suffix}"
    s3 = env.aws.s3(region)
    # Outside us-east-1, S3 (and moto) refuse a bucket without its region's location constraint.
    location: Any = (
        {}
        if region == "us-east-1"
        else {"CreateBucketConfiguration": {"LocationConstraint": region}}
    )
    for bucket in (vault, audit):
        s3.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True, **location)
    kms: Any = env.aws.client("kms", region)
    # Single-Region, unlike the real vault key: moto 5.2.5 writes a 36-character key id into its
    # ciphertexts, which cuts a multi-Region key's 40-character "mrk-..." id short, so nothing
    # encrypted under one (the Kubernetes Secrets' data keys) would ever decrypt again.
    key_arn = kms.create_key(
        Description=f"{config.platform} backup vault key (local)", MultiRegion=False
    )["KeyMetadata"]["Arn"]
    # The mirror's locked retention policy, as components.gcs_mirror sets it: the shortest
    # retention of the data classes. Nothing younger can be replaced or deleted.
    # One mirror is shared by the regions of a local stack: the first region creates it.
    if env.gcs.client().lookup_bucket(mirror) is None:
        floor = min(config.retention_of(name).days for name in config.data_classes)
        env.gcs.create_locked_bucket(mirror, timedelta(days=floor))

    stores: dict[str, StoreEndpoint] = {}
    credentials: dict[str, StoreCredentials] = {}
    for name, store in config.stores.items():
        if store.kind is StoreKind.POSTGRES:
            database = store.database or name.replace("-", "_")
            if separate_databases:
                database = f"{database}_{suffix}"
            with env.postgres.connect(autocommit=True) as connection:
                exists = connection.execute(
                    "SELECT 1 FROM pg_database WHERE datname = %s", (database,)
                ).fetchone()
            if not exists:
                env.postgres.create_database(database)
            stores[name] = StoreEndpoint(
                kind="postgres",
                service=StoreService.POSTGRESQL,
                host=env.postgres.host,
                port=env.postgres.port,
                database=database,
            )
            credentials[name] = StoreCredentials(env.postgres.user, env.postgres.password)
        elif store.kind is StoreKind.REDIS:
            # An ElastiCache-shaped server is still exported as self-hosted Redis: the backup
            # then meets BGSAVE/SYNC refused, as it would pointing at ElastiCache.
            ca_file = env.redis.tls_ca_file
            stores[name] = StoreEndpoint(
                kind="redis",
                service=StoreService.REDIS,
                host=env.redis.host,
                port=env.redis.port,
                data_path=str(env.redis.rdb_path),
                tls=env.redis.tls,
                tls_ca_file=str(ca_file) if ca_file else None,
            )
            credentials[name] = StoreCredentials("default", env.redis.password)
        elif store.kind is StoreKind.TIMESERIES and env.influxdb is not None:
            database = store.database or name.replace("-", "_")
            env.influxdb.create_database(database)
            stores[name] = StoreEndpoint(
                kind="timeseries",
                service=StoreService.INFLUXDB,
                host=env.influxdb.host,
                port=env.influxdb.port,
                database=database,
            )
            credentials[name] = StoreCredentials(
                env.influxdb.user or "", env.influxdb.password or ""
            )
        elif store.kind is StoreKind.KAFKA and env.kafka is not None:
            host, _, port = env.kafka.bootstrap.rpartition(":")
            stores[name] = StoreEndpoint(
                kind="kafka", service=StoreService.KAFKA, host=host, port=int(port)
            )
        elif store.kind is StoreKind.KUBERNETES and (cluster := _kubernetes(env)) is not None:
            stores[name] = kubernetes_endpoint(cluster, config.kubernetes.namespace)
    outputs = StackOutputs(
        stack="local",
        role=config.role,
        region=region,
        platform=config.platform,
        backup_vault=_bucket(vault, region),
        vault_key_arn=key_arn,
        audit_bucket=_bucket(audit, region),
        gcs_mirror_bucket=mirror,
        k8s_namespace=config.kubernetes.namespace,
        k8s_backup_namespace=config.kubernetes.backup_namespace,
        stores=stores,
        aws_endpoint_url=env.aws.endpoint_url,
        gcs_endpoint_url=env.gcs.endpoint_url,
    )
    return outputs, Credentials(credentials)


def _kubernetes(env: LocalServers) -> LocalKubernetes | None:
    """The environment's API server, if it runs one (the test session's servers may not)."""
    cluster = getattr(env, "kubernetes", None)
    return cluster if isinstance(cluster, LocalKubernetes) else None


def kubernetes_endpoint(cluster: LocalKubernetes, namespace: str) -> StoreEndpoint:
    """The API server's address, and as ``data_path`` the kubeconfig the harness wrote (its
    admin token and pinned CA, mode 600): ops reaches the cluster with it, as a backup CronJob
    does with its service account (``drkit.handlers.kubernetes_client_factory``). The token stays
    in that file: credentials.json holds passwords only. The app namespace is created if missing.
    """
    url = urlsplit(cluster.server)
    with cluster.api_client() as client:
        api = KubeApi(client)
        if not api.exists(NAMESPACES.object_path(namespace)):
            api.create(
                NAMESPACES.collection_path(),
                {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}},
            )
    return StoreEndpoint(
        kind="kubernetes",
        service=StoreService.KUBERNETES,
        host=url.hostname or "127.0.0.1",
        port=url.port or 443,
        data_path=str(cluster.kubeconfig_path),
    )


def write_state(state_dir: Path, outputs: StackOutputs, credentials: Credentials) -> None:
    """``outputs.json`` and ``credentials.json`` (mode 600), which ``--stack local`` reads."""
    outputs.write(state_dir / "outputs.json")
    credentials.write(state_dir / "credentials.json")
