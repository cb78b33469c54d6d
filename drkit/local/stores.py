"""Each store kind on the local stack: the database or namespace it needs on the local servers,
and the endpoint and credentials the stack's outputs describe it with. ``drkit.kinds`` names the
function of each kind; ``drkit.local.stack.provision`` calls it for every store of the config."""

from __future__ import annotations

from typing import Protocol
from urllib.parse import urlsplit

from drkit.context import StoreCredentials
from drkit.kubestate.api import NAMESPACES, KubeApi
from drkit.local.gcs import LocalGcs
from drkit.local.influxdb import LocalInfluxDB
from drkit.local.kafka import LocalKafka
from drkit.local.kubernetes import LocalKubernetes
from drkit.local.postgres import LocalPostgres
from drkit.local.redis import LocalRedis
from drkit.local.s3 import LocalAws
from stackmodels import StackConfig
from stackmodels.config import Store, StoreKind
from stackmodels.outputs import SELF_HOSTED, StoreEndpoint, StoreService


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


Provisioned = tuple[StoreEndpoint, StoreCredentials | None] | None
"""The store's endpoint and credentials (None: it has none), or None: the servers lack it."""


def postgres(
    env: LocalServers, config: StackConfig, name: str, store: Store, suffix: str | None
) -> Provisioned:
    """The store's database on the local PostgreSQL, created if missing."""
    database = _database(name, store)
    if suffix is not None:
        database = f"{database}_{suffix}"
    with env.postgres.connect(autocommit=True) as connection:
        exists = connection.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (database,)
        ).fetchone()
    if not exists:
        env.postgres.create_database(database)
    endpoint = _served(StoreKind.POSTGRES, env.postgres.host, env.postgres.port, database)
    return endpoint, StoreCredentials(env.postgres.user, env.postgres.password)


def redis(
    env: LocalServers, config: StackConfig, name: str, store: Store, suffix: str | None
) -> Provisioned:
    # An ElastiCache-shaped server is still exported as self-hosted Redis: the backup then meets
    # BGSAVE/SYNC refused, as it would pointing at ElastiCache.
    ca_file = env.redis.tls_ca_file
    endpoint = StoreEndpoint(
        kind="redis",
        service=StoreService.REDIS,
        host=env.redis.host,
        port=env.redis.port,
        data_path=str(env.redis.rdb_path),
        tls=env.redis.tls,
        tls_ca_file=str(ca_file) if ca_file else None,
    )
    return endpoint, StoreCredentials("default", env.redis.password)


def timeseries(
    env: LocalServers, config: StackConfig, name: str, store: Store, suffix: str | None
) -> Provisioned:
    """The store's database on the local InfluxDB, if the servers run one."""
    if env.influxdb is None:
        return None
    database = _database(name, store)
    env.influxdb.create_database(database)
    endpoint = _served(StoreKind.TIMESERIES, env.influxdb.host, env.influxdb.port, database)
    return endpoint, StoreCredentials(env.influxdb.user or "", env.influxdb.password or "")


def kafka(
    env: LocalServers, config: StackConfig, name: str, store: Store, suffix: str | None
) -> Provisioned:
    """The local broker, if the servers run one (no credentials: a plain listener)."""
    if env.kafka is None:
        return None
    host, _, port = env.kafka.bootstrap.rpartition(":")
    return StoreEndpoint(kind="kafka", service=StoreService.KAFKA, host=host, port=int(port)), None


def kubernetes(
    env: LocalServers, config: StackConfig, name: str, store: Store, suffix: str | None
) -> Provisioned:
    """The local API server, if the servers run one (its token stays in its kubeconfig)."""
    cluster = _kubernetes(env)
    if cluster is None:
        return None
    return kubernetes_endpoint(cluster, config.kubernetes.namespace), None


def _database(name: str, store: Store) -> str:
    return store.database or name.replace("-", "_")


def _served(kind: StoreKind, host: str, port: int, database: str) -> StoreEndpoint:
    """A database on the kind's self-hosted server."""
    return StoreEndpoint(
        kind=kind, service=SELF_HOSTED[kind], host=host, port=port, database=database
    )


def _kubernetes(env: LocalServers) -> LocalKubernetes | None:
    """The environment's API server, if it runs one (the test session's servers may not)."""
    cluster = getattr(env, "kubernetes", None)
    return cluster if isinstance(cluster, LocalKubernetes) else None


def kubernetes_endpoint(cluster: LocalKubernetes, namespace: str) -> StoreEndpoint:
    """The API server's address, and as ``data_path`` the kubeconfig the harness wrote (its
    admin token and pinned CA, mode 600): ops reaches the cluster with it, as a backup CronJob
    does with its service account (``drkit.endpoints.kubernetes_client_factory``). The token stays
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
