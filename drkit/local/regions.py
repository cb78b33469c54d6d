"""The local stack's two regions, ``prod`` and ``dr``, and the continuous protection between them.

Each region has its own servers on 127.0.0.1: PostgreSQL, Redis, a Kafka broker (KRaft), a
kube-apiserver with its own etcd, and its own AWS emulator (moto) holding the region's vault and
key; the GCS emulator (the mirror) is shared, as in production. prod -> dr is protected with the
tools a self-hosted platform uses:

- ``postgres-streaming``: dr's PostgreSQL is a hot standby of prod's (``pg_basebackup -R``, a
  replication slot), see ``standby_postgres.py``;
- ``redis-replica``: dr's Redis is a ``REPLICAOF`` replica with AUTH, see ``replica_redis.py``;
- ``mirrormaker2``: Kafka's MirrorMaker 2 mirrors the critical topics into dr's broker, with
  checkpoints and group offset sync, see ``mirrormaker.py``;
- ``gitops``: the same application manifests are applied to both clusters; dr's workloads are
  scaled to zero (pilot light), labelled for ``invoke failover`` to scale up;
- the vault: S3 replication copies prod's vault into dr's. moto does not replicate, so
  ``VaultCopier`` (run by the supervisor) copies every new object, data objects before their
  manifest, as replication would.

Why one AWS emulator per region rather than one moto with two regions: a region that is killed
must take its vault and key with it, as a regional outage does; with one shared moto, "prod is
dead" would leave prod's vault answering.

``LocalRegions`` starts everything (independent chains in parallel: two cores, and the JVMs
dominate), stops it all in reverse, and describes it as ``StackState`` for the state file.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from drkit.context import Credentials
from drkit.kinds import REGISTRY
from drkit.local.aurora import Source, register_source
from drkit.local.gcs import LocalGcs
from drkit.local.influxdb import LocalInfluxDB
from drkit.local.isolated import ISOLATED_ACCOUNT, provision_isolated
from drkit.local.kafka import LocalKafka
from drkit.local.kubernetes import LocalKubernetes
from drkit.local.lag import postgres_lag
from drkit.local.mirrormaker import LocalMirrorMaker
from drkit.local.moto_server import COMPLETED, REPLICA
from drkit.local.postgres import LocalPostgres
from drkit.local.process import LocalServer, ManagedProcess, ServerStartError
from drkit.local.redis import LocalRedis
from drkit.local.replica_redis import LocalReplicaRedis
from drkit.local.s3 import LocalAws
from drkit.local.stack import LOCAL_ACCOUNT_BUCKET_SUFFIX, provision
from drkit.local.standby_postgres import LocalStandbyPostgres
from drkit.ops.verify import AURORA_LAG_METRIC
from stackmodels import StackConfig, StackOutputs
from stackmodels.config import Role, StoreKind
from stackmodels.outputs import AuroraCluster, AuroraOutputs, Bucket, VaultReplication

PROD = "prod"
DR = "dr"
REGION_NAMES = (PROD, DR)
VAULT_COPY_INTERVAL_S = 2.0
LOCAL_ACCOUNT = "123456789012"
AURORA_OUTPUTS = "outputs-aurora.json"
"""dr's outputs with its Aurora cluster (``LocalRegions.aurora``), beside its outputs.json."""
AURORA_LAG_EVERY = 10
"""Seconds between the supervisor's publications of dr's lag as Aurora's metric."""
REPLICATION_ROLE_ARN = f"arn:aws:iam::{LOCAL_ACCOUNT}:role/local-vault-replication"
APP_IMAGE = "registry.local/aipx/trading-engine:0.1.0"
REWINDABLE = {"wal_log_hints": "on", "full_page_writes": "on", "wal_keep_size": "256MB"}
"""What ``pg_rewind`` needs of both servers, so a failback can rewind the old primary into a
standby of the new one instead of copying it whole (the standby inherits them): hint bits and full
pages in the WAL, and the old primary's WAL back to its last checkpoint before the fork kept
(a restart's or a shutdown's checkpoint would otherwise recycle it)."""
APP_WORKLOADS = {"trading-engine": 2, "market-data-feed": 1}
"""The application's Deployments and their replica count while their region is primary."""


Server = TypeVar("Server", bound=LocalServer)


class StackStartError(RuntimeError):
    """The stack could not start; the message is one line naming what failed and why."""


@dataclass
class Region:
    """One region's servers; ``None`` for what ``--only`` left out."""

    name: str
    aws_region: str
    aws: LocalAws
    gcs: LocalGcs
    postgres: LocalPostgres | None = None
    redis: LocalRedis | None = None
    kafka: LocalKafka | None = None
    kubernetes: LocalKubernetes | None = None
    mirror_maker: LocalMirrorMaker | None = None
    influxdb: LocalInfluxDB | None = None


@dataclass
class Started:
    """The servers started so far, in start order (thread-safe), so a failure stops them all."""

    servers: list[tuple[str, str | None, LocalServer]] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    """How long each server took to be ready (``name/region``): where a slow start goes."""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self, name: str, region: str | None, server: LocalServer) -> None:
        with self.lock:
            self.servers.append((name, region, server))
        clock = time.monotonic()
        server.start()
        self.seconds[f"{name}/{region or 'shared'}"] = round(time.monotonic() - clock, 1)

    def stop_all(self) -> None:
        for _, _, server in reversed(self.servers):
            with contextlib.suppress(Exception):
                server.close()
        self.servers.clear()


def managed_processes(server: LocalServer) -> list[tuple[str, ManagedProcess]]:
    """The OS processes behind a harness server (kube has two: etcd and kube-apiserver)."""
    found: list[tuple[str, ManagedProcess]] = []
    for attribute in ("_etcd", "_apiserver", "_process"):
        process = getattr(server, attribute, None)
        if isinstance(process, ManagedProcess):
            found.append((process.name, process))
    return found


def selected_kinds(config: StackConfig, only: list[str] | None) -> set[StoreKind]:
    """The store kinds to run: all of the config's, or those of ``only`` (store names or kinds);
    the kinds the local stack can run are those of the registry (``drkit.kinds``)."""
    wanted = set(REGISTRY)
    if not only:
        return {store.kind for store in config.stores.values()} & wanted
    kinds: set[StoreKind] = set()
    for item in only:
        if item in config.stores:
            kinds.add(config.stores[item].kind)
        elif item in {kind.value for kind in StoreKind}:
            kinds.add(StoreKind(item))
        else:
            raise ValueError(
                f"--only {item!r}: not a store of the local stack; allowed: "
                f"{', '.join(sorted(config.stores))} (or a kind: "
                f"{', '.join(sorted(k.value for k in wanted))})"
            )
    return kinds & wanted


def critical_topics(config: StackConfig, kafka_store: str) -> list[str]:
    """The topics MirrorMaker mirrors: those of a replicated topic class (the critical ones)."""
    topics = config.stores[kafka_store].topics
    if config.msk is None:
        return list(topics)
    return [
        topic
        for topic in topics
        if (topic_class := config.msk.topic_classes.get(config.msk.topics.get(topic, "")))
        is not None
        and topic_class.replicate
    ]


def region_config(config: StackConfig, region: Region, kinds: set[StoreKind]) -> StackConfig:
    """The stack config as this region sees it: its AWS region, its role, the selected stores."""
    stores = {name: store for name, store in config.stores.items() if store.kind in kinds}
    if region.name == PROD:
        return config.model_copy(update={"stores": stores})
    return config.model_copy(
        update={
            "stores": stores,
            "role": Role.DR,
            "region": config.peer_region,
            "peer_region": config.region,
            "primary_stack": PROD,
        }
    )


class LocalRegions:
    """Both regions' servers, started by ``start`` and stopped by ``stop`` (reverse order)."""

    def __init__(
        self, workdir: Path, config: StackConfig, regions: int = 2, only: list[str] | None = None
    ) -> None:
        self.workdir = workdir
        self.config = config
        self.kinds = selected_kinds(config, only)
        self.gcs = LocalGcs(workdir / "shared" / "gcs")
        self.regions: dict[str, Region] = {}
        names = REGION_NAMES[:regions]
        aws_regions = {PROD: config.region, DR: config.peer_region}
        for name in names:
            base = workdir / name
            aws = LocalAws(
                base / "aws",
                replication_dir=workdir / "shared" / "replication",
                aurora_dir=base / "aurora" if name == DR else None,
            )
            self.regions[name] = Region(name, aws_regions[name], aws, self.gcs)
        # The isolated backup account (issue 22): an emulator of its own, as it is an account.
        self.isolated_aws = LocalAws(workdir / "vault" / "aws", isolated_account=ISOLATED_ACCOUNT)
        self.started = Started()
        self.outputs: dict[str, StackOutputs] = {}
        self.credentials: dict[str, Credentials] = {}
        self.vault_copier: VaultCopier | None = None
        self.mirrored_topics: list[str] = []
        """The Kafka topics MirrorMaker mirrors into dr (``start_kafka``); none without Kafka."""
        self.aurora: AuroraOutputs | None = None
        """dr's standby as dr's emulator describes it, its Aurora cluster (drkit.local.aurora)."""

    @property
    def two_regions(self) -> bool:
        return DR in self.regions

    def store_of(self, kind: StoreKind) -> str | None:
        names = self.config.stores_of(kind)
        return names[0] if names and kind in self.kinds else None

    # -- starting ---------------------------------------------------------------------------

    def start(self) -> None:
        """Every server, protection and provisioning step; on failure, stop what started."""
        try:
            self._start_servers()
            self._provision()
        except BaseException:
            self.stop()
            raise

    def _start_servers(self) -> None:
        """The AWS emulators, and each selected kind's servers (its ``local.servers`` in
        ``drkit.kinds``), chains in parallel."""
        chains: list[Callable[[], None]] = [self._chain_aws]
        chains += [partial(e.local.servers, self) for k, e in REGISTRY.items() if k in self.kinds]
        with ThreadPoolExecutor(max_workers=len(chains)) as pool:
            futures = [pool.submit(chain) for chain in chains]
            errors = [f.exception() for f in futures]
        failed = [error for error in errors if error is not None]
        if failed:
            raise failed[0]

    def _chain_aws(self) -> None:
        self.started.start("gcs", None, self.gcs)
        for region in self.regions.values():
            self.started.start("moto", region.name, region.aws)
        self.started.start("moto", "vault", self.isolated_aws)

    # -- provisioning -----------------------------------------------------------------------

    def _provision(self) -> None:
        for name, region in self.regions.items():
            if name == DR and region.postgres is not None:
                _wait_replayed(self.regions[PROD].postgres, region.postgres)
            config = region_config(self.config, region, self.kinds)
            primary_key = self.outputs[PROD].vault_key_arn if name == DR else None
            outputs, credentials = provision(_ProvisionView(region), config, replica_of=primary_key)
            self.outputs[name], self.credentials[name] = outputs, credentials
        isolated = provision_isolated(self.isolated_aws, self.config, LOCAL_ACCOUNT_BUCKET_SUFFIX)
        for name in self.outputs:  # both regions read the vault stack's outputs
            self.outputs[name] = self.outputs[name].model_copy(update={"isolated_vault": isolated})
        if self.two_regions:
            self._describe_vault_replication()
            self._register_aurora()
            self.vault_copier = VaultCopier(self.regions[PROD], self.regions[DR], self.outputs)
        self._apply_app_manifests()

    def _describe_vault_replication(self) -> None:
        prod, dr = self.outputs[PROD], self.outputs[DR]
        replication = VaultReplication(
            source=prod.backup_vault,
            destination=dr.backup_vault,
            role_arn=REPLICATION_ROLE_ARN,
            destination_key_arn=dr.vault_key_arn,
            replication_time_minutes=1,
        )
        vaults: dict[str, Bucket] = {prod.region: prod.backup_vault, dr.region: dr.backup_vault}
        for name in (PROD, DR):
            self.outputs[name] = self.outputs[name].model_copy(
                update={"vault_replication": replication, "backup_vaults": vaults}
            )

    def _register_aurora(self) -> None:
        """dr's standby as its region's Aurora cluster in dr's emulator, the master secret in its
        Secrets Manager, and the ``aurora`` outputs an AWS dr stack exports for them."""
        dr, aurora = self.regions[DR], self.config.aurora
        standby = dr.postgres
        if aurora is None or standby is None or dr.aws.aurora_dir is None:
            return
        store = self.outputs[DR].stores.get(aurora.store)
        if store is None:
            return
        cluster_id = f"{aurora.store}-{dr.aws_region}"[:63].rstrip("-")
        rds: Any = dr.aws.client("rds", dr.aws_region)
        created = rds.create_db_cluster(
            DBClusterIdentifier=cluster_id,
            Engine="aurora-postgresql",
            EngineVersion=aurora.engine_version,
            MasterUsername=standby.user,
            MasterUserPassword=standby.password,
            Port=standby.port,
            DatabaseName=store.database or "postgres",
            BackupRetentionPeriod=aurora.backup_retention_days,
            Tags=[{"Key": "drkit-local:standby-of", "Value": aurora.store}],
        )["DBCluster"]
        register_source(
            dr.aws.aurora_dir,
            cluster_id,
            Source(standby.host, standby.port, standby.user, standby.password, standby.os_user),
        )
        secrets: Any = dr.aws.client("secretsmanager", dr.aws_region)
        secrets.create_secret(
            Name=aurora.master_secret,
            SecretString=json.dumps({"username": standby.user, "password": standby.password}),
        )
        self.aurora = AuroraOutputs(
            global_cluster_id=f"{aurora.store}-global",
            global_cluster_arn=f"arn:aws:rds::{LOCAL_ACCOUNT}:global-cluster:{aurora.store}-global",
            primary_region=self.regions[PROD].aws_region,
            clusters={
                dr.aws_region: AuroraCluster(
                    id=cluster_id,
                    arn=str(created["DBClusterArn"]),
                    region=dr.aws_region,
                    endpoint=standby.host,
                    reader_endpoint=standby.host,
                    port=standby.port,
                )
            },
            database=store.database,
            master_secret=aurora.master_secret,
        )

    def publish_aurora_lag(self) -> float | None:
        """dr's standby lag behind prod, as ``AuroraGlobalDBReplicationLag`` (milliseconds) of
        dr's Aurora cluster in dr's CloudWatch, where ``invoke verify`` reads an AWS secondary's
        lag; the supervisor calls it every few seconds. Nothing is published while the lag is
        unknown (prod down, the standby promoted): no datapoint, as CloudWatch would show."""
        prod, dr = self.regions[PROD].postgres, self.regions.get(DR)
        if self.aurora is None or prod is None or dr is None or dr.postgres is None:
            return None
        seconds = postgres_lag(prod.dsn(), dr.postgres.dsn()).seconds
        if seconds is None:
            return None
        cloudwatch: Any = dr.aws.client("cloudwatch", dr.aws_region)
        cloudwatch.put_metric_data(
            Namespace="AWS/RDS",
            MetricData=[
                {
                    "MetricName": AURORA_LAG_METRIC,
                    "Dimensions": [{"Name": "DBClusterIdentifier", "Value": cluster.id}],
                    "Value": seconds * 1000,
                    "Unit": "Milliseconds",
                }
                for cluster in self.aurora.clusters.values()
            ],
        )
        return seconds

    def _apply_app_manifests(self) -> None:
        """The same manifests in both clusters; dr's workloads then scaled to 0 (pilot light)."""
        prod_kafka = self.regions[PROD].kafka
        primary_bootstrap = prod_kafka.bootstrap if prod_kafka is not None else None
        for name, region in self.regions.items():
            if region.kubernetes is None:
                continue
            with region.kubernetes.api_client() as client:
                apply_app_manifests(
                    client, self.config.kubernetes.namespace, primary_bootstrap, name == PROD
                )

    # -- stopping ---------------------------------------------------------------------------

    def stop(self) -> None:
        if self.vault_copier is not None:
            self.vault_copier.stop()
        self.started.stop_all()

    def processes(self) -> list[tuple[str, str | None, ManagedProcess]]:
        """Every OS process of the stack: (name, region, process)."""
        found: list[tuple[str, str | None, ManagedProcess]] = []
        for _, region, server in self.started.servers:
            for process_name, process in managed_processes(server):
                found.append((process_name, region, process))
        return found


# -- each kind's servers, as its entry in drkit.kinds names them ---------------------------


def _primary_and_follower(
    stack: LocalRegions,
    name: str,
    primary: Callable[[Path], Server],
    follower: Callable[[Path, Server], Server],
) -> None:
    """prod's server ``name`` (``Region.<name>``, its process and its workdir's name), then, with
    two regions, dr's follower of it, which replicates from it; each started in its region."""
    server = primary(stack.workdir / PROD / name)
    setattr(stack.regions[PROD], name, server)
    stack.started.start(name, PROD, server)
    if stack.two_regions:
        copy = follower(stack.workdir / DR / name, server)
        setattr(stack.regions[DR], name, copy)
        stack.started.start(name, DR, copy)


def start_postgres(stack: LocalRegions) -> None:
    """prod's PostgreSQL; dr's a hot standby of it (``postgres-streaming``)."""
    # pg_rewind's settings (REWINDABLE) include full-page writes, as in any production database: a
    # base backup taken from the standby (dr's Aurora restores, drkit.local.aurora) is refused
    # after WAL written without them.
    _primary_and_follower(
        stack,
        "postgres",
        partial(LocalPostgres, settings=REWINDABLE),
        LocalStandbyPostgres,
    )


def start_redis(stack: LocalRegions) -> None:
    """prod's Redis; dr's a replica of it (``redis-replica``)."""
    _primary_and_follower(stack, "redis", LocalRedis, LocalReplicaRedis)


def start_timeseries(stack: LocalRegions) -> None:
    """market-ticks' InfluxDB, in prod only: nothing replicates it continuously (its
    protection is the hourly backup, restored into an empty server in dr after a loss)."""
    prod = stack.regions[PROD]
    prod.influxdb = LocalInfluxDB(stack.workdir / PROD / "influxdb")
    stack.started.start("influxdb", PROD, prod.influxdb)


def start_kafka(stack: LocalRegions) -> None:
    """A broker per region, the store's topics in prod, MirrorMaker 2 into dr's broker
    (``mirrormaker2``)."""
    brokers: dict[str, LocalKafka] = {}
    with ThreadPoolExecutor(max_workers=len(stack.regions)) as pool:
        futures = {}
        for name, region in stack.regions.items():
            region.kafka = brokers[name] = LocalKafka(stack.workdir / name / "kafka")
            futures[name] = pool.submit(stack.started.start, "kafka", name, region.kafka)
        errors = [f.exception() for f in futures.values()]
    failed = [error for error in errors if error is not None]
    if failed:
        raise failed[0]
    store = stack.store_of(StoreKind.KAFKA)
    assert store is not None
    create_topics(brokers[PROD].bootstrap, stack.config.stores[store].topics)
    stack.mirrored_topics = critical_topics(stack.config, store)
    if stack.two_regions:
        mirror = LocalMirrorMaker(
            stack.workdir / DR / "mirror-maker",
            brokers[PROD].bootstrap,
            brokers[DR].bootstrap,
            stack.mirrored_topics,
        )
        stack.regions[DR].mirror_maker = mirror
        stack.started.start("mirror-maker", DR, mirror)


def start_kubernetes(stack: LocalRegions) -> None:
    """A kube-apiserver with its etcd per region (``gitops``: the manifests come later)."""
    for name, region in stack.regions.items():
        region.kubernetes = LocalKubernetes(stack.workdir / name / "kubernetes")
        stack.started.start("kubernetes", name, region.kubernetes)


# -- each kind's server in a region, as the state file names it (``local.served``) -------------


@dataclass(frozen=True)
class Served:
    """A store's server in one region: its clients' URL, its port, and the process serving it
    (named as in ``LocalRegions.processes``)."""

    url: str
    port: int
    process: str


def served_postgres(stack: LocalRegions, region: str, store: str) -> Served | None:
    server = stack.regions[region].postgres
    if server is None:
        return None
    return _database_served(stack, region, store, server, ("postgresql", "postgres", "postgres"))


def _database_served(
    stack: LocalRegions, region: str, store: str, server: Any, form: tuple[str, str, str]
) -> Served:
    """A database server's ``scheme://user:password@host:port/database``, the store's database
    (or the default) in that region; ``form``: (scheme, default database, process)."""
    scheme, default, process = form
    database = stack.outputs[region].stores[store].database or default
    url = f"{scheme}://{server.user}:{server.password}@{server.host}:{server.port}/{database}"
    return Served(url, server.port, process)


def served_redis(stack: LocalRegions, region: str, store: str) -> Served | None:
    server = stack.regions[region].redis
    return None if server is None else Served(server.url, server.port, "redis")


def served_kafka(stack: LocalRegions, region: str, store: str) -> Served | None:
    broker = stack.regions[region].kafka
    if broker is None:
        return None
    return Served(broker.bootstrap, int(broker.bootstrap.rpartition(":")[2]), "kafka")


def served_timeseries(stack: LocalRegions, region: str, store: str) -> Served | None:
    influx = stack.regions[region].influxdb
    if influx is None:
        return None
    # the DSN InfluxDB 1.x clients accept (influxdb-python's InfluxDBClient.from_dsn)
    return _database_served(stack, region, store, influx, ("influxdb", "market_ticks", "influxd"))


def served_kubernetes(stack: LocalRegions, region: str, store: str) -> Served | None:
    cluster = stack.regions[region].kubernetes
    if cluster is None:
        return None
    return Served(cluster.server, int(cluster.server.rpartition(":")[2]), "kube-apiserver")


class _ProvisionView:
    """A region as ``provision`` wants it (``LocalServers``)."""

    def __init__(self, region: Region) -> None:
        self._region = region
        self.kubernetes = region.kubernetes

    @property
    def postgres(self) -> LocalPostgres:
        assert self._region.postgres is not None
        return self._region.postgres

    @property
    def redis(self) -> LocalRedis:
        assert self._region.redis is not None
        return self._region.redis

    @property
    def aws(self) -> LocalAws:
        return self._region.aws

    @property
    def gcs(self) -> LocalGcs:
        return self._region.gcs

    @property
    def kafka(self) -> LocalKafka | None:
        return self._region.kafka

    @property
    def influxdb(self) -> LocalInfluxDB | None:
        return self._region.influxdb


def _wait_replayed(
    primary: LocalPostgres | None, standby: LocalPostgres, timeout: float = 30.0
) -> None:
    """Until the standby has replayed everything the primary wrote (the databases provisioning
    created in prod must exist in dr before dr is described)."""
    assert primary is not None
    with primary.connect(autocommit=True) as connection:
        row = connection.execute("SELECT pg_current_wal_lsn()::text").fetchone()
    assert row is not None
    target = row[0]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with standby.connect(autocommit=True) as connection:
            done = connection.execute(
                "SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (target,)
            ).fetchone()
        if done and done[0]:
            return
        time.sleep(0.1)
    raise ServerStartError(f"postgres standby did not replay up to {target} within {timeout:.0f}s")


def create_topics(bootstrap: str, topics: list[str], partitions: int = 3) -> None:
    """The Kafka store's topics in prod, so MirrorMaker finds the critical ones at its start."""
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 3})
    existing = set(admin.list_topics(timeout=10).topics)
    wanted = [NewTopic(t, partitions, 1) for t in topics if t not in existing]
    if not wanted:
        return
    for future in admin.create_topics(wanted, request_timeout=30).values():
        future.result(timeout=30)


def app_manifests(namespace: str, bootstrap: str | None) -> list[dict[str, Any]]:
    """The application as Git holds it: the Kafka bootstrap ConfigMap and the Deployments,
    labelled with their replica count while their region is primary."""
    from drkit.failover.kube import BOOTSTRAP_CONFIGMAP, BOOTSTRAP_KEY, REPLICAS_LABEL

    manifests: list[dict[str, Any]] = []
    if bootstrap is not None:
        manifests.append(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": BOOTSTRAP_CONFIGMAP, "namespace": namespace},
                "data": {BOOTSTRAP_KEY: bootstrap},
            }
        )
    for name, replicas in APP_WORKLOADS.items():
        labels = {"app": name}
        manifests.append(
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {
                    "name": name,
                    "namespace": namespace,
                    "labels": {**labels, REPLICAS_LABEL: str(replicas)},
                },
                "spec": {
                    "replicas": replicas,
                    "selector": {"matchLabels": labels},
                    "template": {
                        "metadata": {"labels": labels},
                        "spec": {"containers": [{"name": name, "image": APP_IMAGE}]},
                    },
                },
            }
        )
    return manifests


def apply_app_manifests(client: Any, namespace: str, bootstrap: str | None, primary: bool) -> None:
    from kubernetes.client import AppsV1Api, CoreV1Api  # type: ignore[import-untyped]
    from kubernetes.client.rest import ApiException  # type: ignore[import-untyped]

    from drkit.failover.kube import scale_all

    core, apps = CoreV1Api(client), AppsV1Api(client)
    for manifest in app_manifests(namespace, bootstrap):
        create = (
            core.create_namespaced_config_map
            if manifest["kind"] == "ConfigMap"
            else apps.create_namespaced_deployment
        )
        try:
            create(namespace, manifest)
        except ApiException as error:
            if error.status != 409:
                raise
    if not primary:
        scale_all(client, namespace, primary=False)


class VaultCopier:
    """What S3 replication does for the vault, done by the harness: moto does not replicate.

    Every ``VAULT_COPY_INTERVAL_S`` it copies each prod vault object that dr's vault lacks, data
    objects before manifests (a manifest is a backup's commit, so it must never arrive first),
    streaming each one (bounded memory). It never overwrites or deletes.
    """

    def __init__(self, prod: Region, dr: Region, outputs: dict[str, StackOutputs]) -> None:
        self.source = prod.aws.s3(prod.aws_region)
        self.target = dr.aws.s3(dr.aws_region)
        self.source_bucket = outputs[PROD].backup_vault.name
        self.target_bucket = outputs[DR].backup_vault.name
        self.notes = prod.aws.replication_dir or prod.aws.workdir  # where moto_server reads them
        self.notes.mkdir(parents=True, exist_ok=True)
        (self.notes / f"{self.source_bucket}{COMPLETED}").touch()  # it replicates: PENDING first
        self.copied = 0
        self.last_error = ""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="vault-copier", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.wait(VAULT_COPY_INTERVAL_S):
            try:
                self.copy_new()
                self.last_error = ""
            except Exception as error:  # a dead region: keep trying, say why
                self.last_error = " ".join(str(error).split())

    def copy_new(self) -> int:
        present = set(_keys(self.target, self.target_bucket))
        missing = [k for k in _keys(self.source, self.source_bucket) if k not in present]
        missing.sort(key=lambda key: (key.endswith("manifest.json"), key))
        for key in missing:
            body = self.source.get_object(Bucket=self.source_bucket, Key=key)["Body"]
            self.target.upload_fileobj(body, self.target_bucket, key)
            self._note(key)
            self.copied += 1
        return len(missing)

    def _note(self, key: str) -> None:
        """What S3 then reports of ``key``: REPLICA in dr, COMPLETED in prod (moto_server)."""
        for bucket, suffix in ((self.target_bucket, REPLICA), (self.source_bucket, COMPLETED)):
            with (self.notes / f"{bucket}{suffix}").open("a") as notes:
                notes.write(key + "\n")


def _keys(s3: Any, bucket: str) -> Iterator[str]:
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            yield str(item["Key"])
