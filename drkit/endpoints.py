"""Where a store is and how to log in: its endpoint and credentials, from the stack's outputs.

Every module that reaches a store (backup, restore, verify, the drill) builds its client from
here, so the outputs' fields and the credentials are read in one place. Each function imports
its own kind's client when it is called: a backup of one kind imports none of the others'.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from drkit.context import OpsContext

if TYPE_CHECKING:
    from drkit.backup.postgres import PostgresSource
    from drkit.backup.redis import RedisSource
    from drkit.influx import InfluxEndpoint
    from drkit.kubestate.api import ApiClientFactory
    from stackmodels.outputs import ReplicationGroup


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
    from drkit.kafka_auth import client_auth, region_of_cluster

    exported = ctx.outputs.stores.get(store)
    if exported is None:
        raise NoHandler(f"stack {ctx.stack!r} exports no endpoint for store {store!r}")
    return client_auth(exported.auth, region_of_cluster(exported.resource_id, ctx.config.region))


def postgres_source(ctx: OpsContext, store: str, database: str | None = None) -> PostgresSource:
    from drkit.backup.postgres import PostgresSource

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


def redis_source(ctx: OpsContext, store: str) -> RedisSource:
    from drkit.backup.redis import RedisSource

    exported = ctx.outputs.stores[store]
    credentials = ctx.credentials.for_store(store)
    return RedisSource(
        exported.host,
        exported.port,
        credentials.password,
        tls=exported.tls,
        tls_ca_file=exported.tls_ca_file,
    )


def influx_endpoint(ctx: OpsContext, store: str) -> tuple[InfluxEndpoint, str]:
    """The store's InfluxDB server (as its backup reaches it) and its database."""
    from drkit.influx import InfluxEndpoint

    host, port = endpoint(ctx, store)
    credentials = ctx.credentials.for_store(store)
    exported = ctx.outputs.stores[store]
    server = InfluxEndpoint(
        host,
        port,
        credentials.user,
        credentials.password,
        tls=exported.tls,  # Timestream for InfluxDB answers HTTPS only
        tls_ca_file=exported.tls_ca_file,
    )
    return server, exported.database or store


def elasticache_group(ctx: OpsContext, store: str) -> ReplicationGroup | None:
    """The store's replication group in the outputs: its region and export staging bucket."""
    group = ctx.outputs.stores[store].resource_id
    members = ctx.outputs.elasticache.replication_groups if ctx.outputs.elasticache else {}
    return next((member for member in members.values() if member.id == group), None)


def kubernetes_client_factory(ctx: OpsContext, store: str) -> ApiClientFactory:
    """How a store of kind kubernetes reaches its API server, first match wins:

    - the store's exported ``data_path``: a kubeconfig file (the local stack exports the one its
      kube-apiserver harness writes, admin token and pinned CA, mode 600);
    - inside a pod (``KUBERNETES_SERVICE_HOST``): the pod's service account, as the backup
      CronJob runs;
    - otherwise ``$KUBECONFIG`` or ``~/.kube/config`` at the stack config's
      ``kubernetes.context`` (an operator's machine).
    """
    from drkit.kubestate.api import (
        in_cluster_client_factory,
        kubeconfig_client_factory,
        running_in_cluster,
    )

    exported = ctx.outputs.stores.get(store)
    if exported is not None and exported.data_path:
        return kubeconfig_client_factory(Path(exported.data_path))
    if running_in_cluster():
        return in_cluster_client_factory()
    return kubeconfig_client_factory(None, ctx.config.kubernetes.context)
