"""A two-region world for the failover tests, as faithful as this machine allows.

- CloudWatch (alarms, metrics), S3 (vaults, catalog, audit), Route 53 (records): moto server.
- RDS global clusters, the ElastiCache global datastore, MSK bootstrap brokers and replicators:
  moto lacks these APIs, so their clients are real botocore clients with a ``Stubber`` that
  validates every request and response against the service model and checks the exact params.
- Route 53 ``get_health_check``: moto drops a health check's ``AlarmIdentifier``, so that one
  operation goes to a stubbed client; records stay on moto.
- Kubernetes: the real kube-apiserver (etcd) of the session, reached through a kubeconfig file with
  one context per cluster, by the product's own kubeconfig client.
- The dark primary: every client of us-east-1 (and Route 53, whose API lives there) points at a
  loopback port nothing listens on, and records each operation it attempted.
- CloudWatch's alarm evaluation, which moto does not do: ``evaluate_alarms`` reads each alarm's
  metric back and sets the state the way CloudWatch would; the fake sleep runs it between polls.
"""

from __future__ import annotations

import secrets
import socket
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from botocore.config import Config
from botocore.stub import Stubber
from kubernetes.client import AppsV1Api, CoreV1Api  # type: ignore[import-untyped]

from drkit.catalog import Catalog, CatalogEntry
from drkit.context import Credentials, OpsContext, StoreCredentials
from drkit.failover.clients import BotoClients, KubeconfigClients
from drkit.failover.kube import REPLICAS_LABEL, SERVICE_LABEL
from drkit.failover.request import FailoverRequest, Runtime
from drkit.local.kubernetes import ADMIN_USER, LocalKubernetes
from drkit.local.postgres import LocalPostgres
from drkit.local.process import LOOPBACK
from drkit.local.s3 import LocalAws
from drkit.storage.s3 import S3Store
from stackmodels import StackConfig, StackOutputs

ROOT = Path(__file__).resolve().parents[2]
PROD, DR = "us-east-1", "us-west-2"
ACCOUNT = "123456789012"
PLATFORM = "aipx"


@dataclass(frozen=True)
class Ids:
    """Every id of one world, unique per test: CloudWatch aggregates datapoints of the same
    metric and dimensions within a period, so worlds must not share them."""

    suffix: str

    @property
    def global_db(self) -> str:
        return f"aipx-trading-db-{self.suffix}"

    def db(self, region: str) -> str:
        return f"aipx-trading-db-{self.suffix}-{region}"

    def db_arn(self, region: str) -> str:
        return f"arn:aws:rds:{region}:{ACCOUNT}:cluster:{self.db(region)}"

    @property
    def datastore(self) -> str:
        return f"ldgnf-aipx-session-cache-{self.suffix}"

    def cache(self, region: str) -> str:
        return f"aipx-sc-{self.suffix}-{'ue1' if region == PROD else 'uw2'}"

    def msk_arn(self, region: str) -> str:
        return f"arn:aws:kafka:{region}:{ACCOUNT}:cluster/aipx-es-{self.suffix}-{region}/abc"

    def bootstrap(self, region: str) -> str:
        return ",".join(f"b-{n}.es-{self.suffix}.kafka.{region}.amazonaws.com:9098" for n in (1, 2))

    def service(self, name: str) -> str:
        """The switch metric's dimension: the product uses the service name; tests share one
        CloudWatch, so each world's is its own."""
        return f"{name}-{self.suffix}"

    @property
    def replicator_name(self) -> str:
        return f"aipx-es-{self.suffix}-ue1-to-uw2"

    @property
    def replicator_arn(self) -> str:
        return f"arn:aws:kafka:{DR}:{ACCOUNT}:replicator/{self.replicator_name}/rep-1"


SERVICES = {"db": "trading-db", "cache": "session-cache"}
WORKLOADS = {"trading-engine": ("deployment", 3), "market-data-feed": ("statefulset", 2)}
WORKLOAD_SERVICES = {"trading-engine": "trading", "market-data-feed": "market-data"}
"""The service (Pulumi.dr.yaml services) of each workload: it starts once that service's stores
are promoted."""
DEAD = {PROD}


def closed_port() -> int:
    """A loopback port with no listener: connections to it are refused at once."""
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        return int(probe.getsockname()[1])


class FakeClock:
    """Monotonic time that only sleeps advance; each sleep first lets 'CloudWatch' evaluate."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []
        self.on_sleep: list[Any] = []
        self._lock = threading.Lock()

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            self.now += seconds
        for hook in list(self.on_sleep):
            hook(seconds)


class SplitClient:
    """One botocore client to the caller: the named operations go to ``stubbed``, the rest to
    ``real`` (moto). Both are real clients of the same service model."""

    def __init__(self, real: Any, stubbed: Any, operations: set[str]) -> None:
        self._real, self._stubbed, self._operations = real, stubbed, operations

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stubbed if name in self._operations else self._real, name)


class WorldClients(BotoClients):
    """moto for what it serves, Stubbers for the rest, a refusing endpoint for a dark region."""

    def __init__(self, endpoint: str, dead_regions: set[str]) -> None:
        super().__init__(endpoint)
        self.dead_regions = dead_regions
        self.dead_endpoint = f"http://{LOOPBACK}:{closed_port()}"
        self.dead_calls: list[tuple[str, str]] = []
        self.stubbers: dict[tuple[str, str], Stubber] = {}
        self.stubbed: dict[tuple[str, str], Any] = {}
        self.overrides: dict[tuple[str, str], Any] = {}

    def stub(self, service: str, region: str) -> Stubber:
        """A Stubber for ``service`` in ``region``: every call must have been queued."""
        if (service, region) not in self.stubbers:
            client = self.make(service, region, Config())
            stubber = Stubber(client)
            stubber.activate()
            self.stubbers[(service, region)] = stubber
            self.stubbed[(service, region)] = client
        return self.stubbers[(service, region)]

    def client(self, service: str, region: str, *, fast_fail: bool = False) -> Any:
        home = "us-east-1" if service == "route53" else region
        if home in self.dead_regions:
            return super().client(service, region, fast_fail=True)
        if (service, region) in self.overrides:
            return self.overrides[(service, region)]
        if (service, region) in self.stubbed:
            return self.stubbed[(service, region)]
        return super().client(service, region, fast_fail=fast_fail)

    def make(self, service: str, region: str, config: Config) -> Any:
        home = "us-east-1" if service == "route53" else region
        if home not in self.dead_regions:
            return super().make(service, region, config)
        saved, self.endpoint_url = self.endpoint_url, self.dead_endpoint
        try:
            client = super().make(service, region, config)
        finally:
            self.endpoint_url = saved

        def record(event_name: str, **_: Any) -> None:  # once per HTTP attempt: retries show
            self.dead_calls.append((service, event_name.rsplit(".", 1)[-1]))

        client.meta.events.register("before-send", record)
        return client

    def assert_no_pending(self) -> None:
        for key, stubber in self.stubbers.items():
            try:
                stubber.assert_no_pending_responses()
            except AssertionError as error:
                raise AssertionError(f"{key}: {error}") from None


# --- Stubber responses ---------------------------------------------------------------------------


def global_cluster(
    ids: Ids,
    writer: str,
    status: str = "available",
    moving_to: str | None = None,
    members: tuple[str, ...] = (PROD, DR),
) -> dict[str, Any]:
    """A ``describe_global_clusters`` answer; ``writer`` is a region."""
    cluster: dict[str, Any] = {
        "GlobalClusterIdentifier": ids.global_db,
        "GlobalClusterArn": f"arn:aws:rds::{ACCOUNT}:global-cluster:{ids.global_db}",
        "Status": status,
        "Engine": "aurora-postgresql",
        "GlobalClusterMembers": [
            {"DBClusterArn": ids.db_arn(r), "IsWriter": r == writer, "Readers": []} for r in members
        ],
    }
    if moving_to is not None:
        cluster["FailoverState"] = {
            "Status": "failing-over",
            "FromDbClusterArn": ids.db_arn(writer),
            "ToDbClusterArn": ids.db_arn(moving_to),
            "IsDataLossAllowed": True,
        }
    return {"GlobalClusters": [cluster]}


def datastore(
    ids: Ids, primary: str | None, secondary: str | None, status: str = "available"
) -> dict[str, Any]:
    """A ``describe_global_replication_groups`` answer; ``primary``/``secondary`` are regions."""
    members = [
        {
            "ReplicationGroupId": ids.cache(region),
            "ReplicationGroupRegion": region,
            "Role": role,
            "Status": "associated",
        }
        for region, role in ((primary, "PRIMARY"), (secondary, "SECONDARY"))
        if region is not None
    ]
    return {
        "GlobalReplicationGroups": [
            {"GlobalReplicationGroupId": ids.datastore, "Status": status, "Members": members}
        ]
    }


def replication_group(ids: Ids, region: str, status: str = "available") -> dict[str, Any]:
    return {"ReplicationGroups": [{"ReplicationGroupId": ids.cache(region), "Status": status}]}


def db_cluster(ids: Ids, region: str, status: str = "available") -> dict[str, Any]:
    return {"DBClusters": [{"DBClusterIdentifier": ids.db(region), "Status": status}]}


# --- the world -----------------------------------------------------------------------------------


@dataclass
class World:
    project: Path
    aws: LocalAws
    kube: LocalKubernetes
    clients: WorldClients
    clock: FakeClock
    ctx: OpsContext
    namespaces: dict[str, str]
    kubeconfig: Path
    outputs: StackOutputs
    ids: Ids
    alarms: dict[str, str] = field(default_factory=dict)

    def runtime(self) -> Runtime:
        return Runtime(
            aws=self.clients,
            kube=KubeconfigClients(self.kubeconfig),
            sleep=self.clock.sleep,
            monotonic=self.clock.monotonic,
            poll_seconds=15.0,
        )

    def request(self, **changes: Any) -> FailoverRequest:
        return FailoverRequest(**({"dns_wait_seconds": 300.0, "wait_seconds": 900.0} | changes))

    def apps(self) -> Any:
        return AppsV1Api(self.kube.api_client())

    def replicas(self, region: str) -> dict[str, int]:
        apps, namespace = self.apps(), self.namespaces[region]
        found = {
            d.metadata.name: d.spec.replicas
            for d in apps.list_namespaced_deployment(namespace).items
        }
        found |= {
            s.metadata.name: s.spec.replicas
            for s in apps.list_namespaced_stateful_set(namespace).items
        }
        return found

    def bootstrap(self, region: str) -> str | None:
        core = CoreV1Api(self.kube.api_client())
        for item in core.list_namespaced_config_map(self.namespaces[region]).items:
            if item.metadata.name == "kafka-bootstrap":
                return str(item.data["bootstrap.servers"])
        return None

    def alarm_states(self) -> dict[str, str]:
        cloudwatch = self.aws.client("cloudwatch", DR)
        names = list(self.alarms.values())
        found = cloudwatch.describe_alarms(AlarmNames=names)["MetricAlarms"]  # type: ignore[attr-defined]
        return {a["AlarmName"]: a["StateValue"] for a in found}

    def switch_data(self) -> list[float]:
        cloudwatch: Any = self.aws.client("cloudwatch", DR)
        now = datetime.now(UTC)
        values = []
        for service in SERVICES:
            points = cloudwatch.get_metric_statistics(
                Namespace="TradingDR/Failover",
                MetricName="PrimaryFenced",
                Dimensions=[{"Name": "Service", "Value": self.ids.service(service)}],
                StartTime=now - timedelta(minutes=30),
                EndTime=now + timedelta(minutes=1),
                Period=60,
                Statistics=["Maximum"],
            )["Datapoints"]
            values += [p["Maximum"] for p in points]
        return values


def evaluate_alarms(aws: LocalAws, region: str = DR) -> None:
    """What CloudWatch does each period and moto does not: read each alarm's metric over its
    period, compare with the threshold, set the state; missing data 'ignore' keeps it."""
    cloudwatch: Any = aws.client("cloudwatch", region)
    now = datetime.now(UTC)
    for alarm in cloudwatch.describe_alarms()["MetricAlarms"]:
        if "MetricName" not in alarm:
            continue
        points = cloudwatch.get_metric_statistics(
            Namespace=alarm["Namespace"],
            MetricName=alarm["MetricName"],
            Dimensions=alarm.get("Dimensions", []),
            StartTime=now - timedelta(seconds=alarm["Period"] * 2),
            EndTime=now + timedelta(seconds=1),
            Period=alarm["Period"],
            Statistics=[alarm["Statistic"]],
        )["Datapoints"]
        if not points:
            continue
        value = max(points, key=lambda p: p["Timestamp"])[alarm["Statistic"]]
        breach = {
            "GreaterThanOrEqualToThreshold": value >= alarm["Threshold"],
            "GreaterThanThreshold": value > alarm["Threshold"],
            "LessThanThreshold": value < alarm["Threshold"],
        }[alarm["ComparisonOperator"]]
        state = "ALARM" if breach else "OK"
        if state != alarm["StateValue"]:
            cloudwatch.set_alarm_state(
                AlarmName=alarm["AlarmName"], StateValue=state, StateReason="test evaluator"
            )


def _project(directory: Path, namespaces: dict[str, str]) -> None:
    for stack, region in (("prod", PROD), ("dr", DR)):
        text = (ROOT / f"Pulumi.{stack}.yaml").read_text()
        text = text.replace("    namespace: aipx\n", f"    namespace: {namespaces[region]}\n", 1)
        (directory / f"Pulumi.{stack}.yaml").write_text(text)


def _kubeconfig(path: Path, kube: LocalKubernetes, dead_prod: bool) -> None:
    prod_server = f"https://{LOOPBACK}:{closed_port()}" if dead_prod else kube.server
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": name,
                "cluster": {"server": server, "certificate-authority": str(kube.ca_path)},
            }
            for name, server in (("dr", kube.server), ("prod", prod_server))
        ],
        "users": [{"name": ADMIN_USER, "user": {"token": kube.token}}],
        "contexts": [
            {"name": "aipx-dr", "context": {"cluster": "dr", "user": ADMIN_USER}},
            {"name": "aipx-prod", "context": {"cluster": "prod", "user": ADMIN_USER}},
        ],
        "current-context": "aipx-dr",
    }
    path.write_text(yaml.safe_dump(config))


def _workloads(kube: LocalKubernetes, namespace: str, primary: bool) -> None:
    with kube.api_client() as api:
        core, apps = CoreV1Api(api), AppsV1Api(api)
        core.create_namespace({"metadata": {"name": namespace}})
        for name, (kind, count) in WORKLOADS.items():
            labels = {
                "app": name,
                REPLICAS_LABEL: str(count),
                SERVICE_LABEL: WORKLOAD_SERVICES[name],
            }
            spec = {
                "replicas": count if primary else 0,
                "selector": {"matchLabels": {"app": name}},
                "template": {
                    "metadata": {"labels": {"app": name}},
                    "spec": {"containers": [{"name": name, "image": f"registry.local/{name}:1.0"}]},
                },
            }
            body = {"metadata": {"name": name, "labels": labels}, "spec": spec}
            if kind == "deployment":
                apps.create_namespaced_deployment(namespace, body)
            else:
                apps.create_namespaced_stateful_set(
                    namespace, body | {"spec": spec | {"serviceName": name}}
                )
        # An unlabelled workload must be left alone.
        apps.create_namespaced_deployment(
            namespace,
            {
                "metadata": {"name": "batch-report"},
                "spec": {
                    "replicas": 1,
                    "selector": {"matchLabels": {"app": "batch-report"}},
                    "template": {
                        "metadata": {"labels": {"app": "batch-report"}},
                        "spec": {"containers": [{"name": "b", "image": "registry.local/b:1.0"}]},
                    },
                },
            },
        )


def put_lag(
    aws: LocalAws,
    ids: Ids,
    *,
    aurora_ms: float | None,
    cache_s: float | None,
    kafka_ms: float | None,
    region: str = DR,
    age: timedelta = timedelta(seconds=30),
) -> None:
    """The replication-lag datapoints CloudWatch would hold (moto accepts AWS/* namespaces)."""
    cloudwatch: Any = aws.client("cloudwatch", region)
    stamp = datetime.now(UTC) - age
    group = ids.cache(region)
    for namespace, metric, name, value, ms in (
        (
            "AWS/RDS",
            "AuroraGlobalDBReplicationLag",
            ("DBClusterIdentifier", ids.db(region)),
            aurora_ms,
            True,
        ),
        (
            "AWS/ElastiCache",
            "GlobalDatastoreReplicationLag",
            ("CacheClusterId", f"{group}-001"),
            cache_s,
            False,
        ),
        (
            "AWS/Kafka",
            "ReplicationLatency",
            ("ReplicatorName", ids.replicator_name),
            kafka_ms,
            True,
        ),
    ):
        if value is None:
            continue
        cloudwatch.put_metric_data(
            Namespace=namespace,
            MetricData=[
                {
                    "MetricName": metric,
                    "Dimensions": [{"Name": name[0], "Value": name[1]}],
                    "Timestamp": stamp,
                    "Value": value,
                    "Unit": "Milliseconds" if ms else "Seconds",
                }
            ],
        )


def _backups(
    aws: LocalAws, bucket: str, config: StackConfig, age: timedelta, region: str = DR
) -> None:
    catalog = Catalog(S3Store(aws.s3(region), bucket))
    point = datetime.now(UTC) - age
    for store, spec in config.stores.items():
        backup_id = f"{point:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"
        entry = CatalogEntry(
            backup_id=backup_id,
            store=store,
            kind=spec.kind.value,
            data_class=spec.data_class,
            started_at=point,
            finished_at=point,
            recovery_point=point,
            size=1,
            raw_size=1,
            objects=1,
            manifest_key=f"{spec.data_class}/{store}/{backup_id}/manifest.json",
        )
        catalog.add(entry)


def build_world(
    directory: Path,
    aws: LocalAws,
    kube: LocalKubernetes,
    postgres: LocalPostgres | None = None,
    *,
    dead_prod: bool = True,
    with_bootstrap: bool = True,
    backup_age: timedelta = timedelta(minutes=3),
    prod_serving: bool = True,
) -> World:
    suffix = secrets.token_hex(3)
    ids = Ids(suffix)
    namespaces = {PROD: f"aipx-prod-{suffix}", DR: f"aipx-dr-{suffix}"}
    _project(directory, namespaces)
    config = StackConfig.for_stack("dr", directory)
    kubeconfig = directory / "kubeconfig"
    _kubeconfig(kubeconfig, kube, dead_prod)
    _workloads(kube, namespaces[DR], primary=False)
    if not dead_prod:
        _workloads(kube, namespaces[PROD], primary=prod_serving)

    s3: Any = aws.s3(DR)
    vault, audit = f"aipx-vault-{DR}-{suffix}", f"aipx-audit-{DR}-{suffix}"
    for bucket in (vault, audit):
        s3.create_bucket(
            Bucket=bucket,
            CreateBucketConfiguration={"LocationConstraint": DR},
            ObjectLockEnabledForBucket=True,
        )
    _backups(aws, vault, config, backup_age)
    prod_vault = f"aipx-vault-{PROD}-{suffix}"
    aws.s3(PROD).create_bucket(Bucket=prod_vault, ObjectLockEnabledForBucket=True)
    _backups(aws, prod_vault, config, backup_age, PROD)
    cloudwatch: Any = aws.client("cloudwatch", DR)
    alarms = {}
    for service in SERVICES:
        name = f"aipx-failover-switch-{service}-{suffix}"
        cloudwatch.put_metric_alarm(
            AlarmName=name,
            Namespace="TradingDR/Failover",
            MetricName="PrimaryFenced",
            Dimensions=[{"Name": "Service", "Value": ids.service(service)}],
            Statistic="Maximum",
            Period=60,
            EvaluationPeriods=1,
            Threshold=1.0,
            ComparisonOperator="GreaterThanOrEqualToThreshold",
            TreatMissingData="ignore",
        )
        alarms[service] = name
    route53: Any = aws.client("route53", "us-east-1")
    zone = route53.create_hosted_zone(Name="aipx.internal", CallerReference=suffix)["HostedZone"]
    zone_id = zone["Id"].split("/")[-1]
    endpoints = {
        "db": {r: f"{ids.db(r)}.cluster-x.{r}.rds.amazonaws.com" for r in (PROD, DR)},
        "cache": {r: f"master.{ids.cache(r)}.x.{r}.cache.amazonaws.com" for r in (PROD, DR)},
    }
    checks: dict[str, str] = {}
    changes = []
    for service in SERVICES:
        check = route53.create_health_check(
            CallerReference=f"{suffix}-{service}",
            HealthCheckConfig={
                "Type": "CLOUDWATCH_METRIC",
                "AlarmIdentifier": {"Region": DR, "Name": alarms[service]},
                "InsufficientDataHealthStatus": "LastKnownStatus",
            },
        )["HealthCheck"]
        checks[service] = check["Id"]
        for role, region, set_id in (
            ("PRIMARY", PROD, f"primary-{PROD}"),
            ("SECONDARY", DR, f"secondary-{DR}"),
        ):
            record = {
                "Name": f"{service}.aipx.internal",
                "Type": "CNAME",
                "SetIdentifier": set_id,
                "Failover": role,
                "TTL": 30,
                "ResourceRecords": [{"Value": endpoints[service][region]}],
            }
            if role == "PRIMARY":
                record["HealthCheckId"] = check["Id"]
            changes.append({"Action": "CREATE", "ResourceRecordSet": record})
    route53.change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch={"Changes": changes})

    db_port = postgres.port if postgres is not None else 5432
    outputs = StackOutputs.parse(
        {
            "stack": "dr",
            "role": "dr",
            "region": DR,
            "platform": PLATFORM,
            "backup_vault": {"name": vault, "arn": f"arn:aws:s3:::{vault}", "region": DR},
            "vault_key_arn": f"arn:aws:kms:{DR}:{ACCOUNT}:key/mrk-1",
            "audit_bucket": {"name": audit, "arn": f"arn:aws:s3:::{audit}", "region": DR},
            "gcs_mirror_bucket": "aipx-mirror",
            "backup_vaults": {
                DR: {"name": vault, "arn": f"arn:aws:s3:::{vault}", "region": DR},
                PROD: {"name": prod_vault, "arn": f"arn:aws:s3:::{prod_vault}", "region": PROD},
            },
            "aurora": {
                "global_cluster_id": ids.global_db,
                "global_cluster_arn": f"arn:aws:rds::{ACCOUNT}:global-cluster:{ids.global_db}",
                "primary_region": PROD,
                "database": "postgres",
                "clusters": {
                    r: {
                        "id": ids.db(r),
                        "arn": ids.db_arn(r),
                        "region": r,
                        "endpoint": LOOPBACK if r == DR else endpoints["db"][r],
                        "reader_endpoint": endpoints["db"][r],
                        "port": db_port,
                    }
                    for r in (PROD, DR)
                },
            },
            "msk": {
                "clusters": {
                    r: {
                        "arn": ids.msk_arn(r),
                        "name": f"aipx-event-stream-{r}",
                        "region": r,
                        "bootstrap_brokers_sasl_iam": ids.bootstrap(r) if with_bootstrap else None,
                        "security_group_id": "sg-0123456789abcdef0",
                    }
                    for r in (PROD, DR)
                },
                "replicator_arn": ids.replicator_arn,
                "replicated_topics": ["order-events", "strategy-signals"],
            },
            "elasticache": {
                "global_datastore_id": ids.datastore,
                "primary_region": PROD,
                "replication_groups": {
                    r: {
                        "id": ids.cache(r),
                        "arn": f"arn:aws:elasticache:{r}:{ACCOUNT}:replicationgroup:{ids.cache(r)}",
                        "region": r,
                        "primary_endpoint": endpoints["cache"][r],
                    }
                    for r in (PROD, DR)
                },
            },
            "dns": {
                "zone_id": zone_id,
                "zone_name": "aipx.internal",
                "services": {
                    service: {
                        "name": f"{service}.aipx.internal",
                        "ttl": 30,
                        "store": store,
                        "primary": {
                            "set_identifier": f"primary-{PROD}",
                            "target": endpoints[service][PROD],
                            "region": PROD,
                        },
                        "secondary": {
                            "set_identifier": f"secondary-{DR}",
                            "target": endpoints[service][DR],
                            "region": DR,
                        },
                    }
                    for service, store in SERVICES.items()
                },
                "switches": {
                    service: {
                        "alarm_name": alarms[service],
                        "region": DR,
                        "namespace": "TradingDR/Failover",
                        "metric": "PrimaryFenced",
                        "dimensions": {"Service": ids.service(service)},
                        "health_check_id": checks[service],
                    }
                    for service in SERVICES
                },
            },
            "k8s_namespace": namespaces[DR],
            "k8s_backup_namespace": "dr-backups",
            "aws_endpoint_url": aws.endpoint_url,
        },
        "dr",
    )
    outputs.write(directory / "dr-outputs.json")
    credentials = (
        Credentials({"trading-db": StoreCredentials(postgres.user, postgres.password)})
        if postgres is not None
        else Credentials()
    )
    ctx = OpsContext("dr", config, outputs, credentials)
    clients = WorldClients(aws.endpoint_url, DEAD if dead_prod else set())
    clock = FakeClock()
    clock.on_sleep.append(lambda _: evaluate_alarms(aws))
    world = World(
        directory, aws, kube, clients, clock, ctx, namespaces, kubeconfig, outputs, ids, alarms
    )
    # get_health_check to a Stubber (moto forgets AlarmIdentifier); the rest of Route 53 to moto.
    if not dead_prod:
        clients.stub("route53", "us-east-1")
        clients.overrides[("route53", "us-east-1")] = SplitClient(
            BotoClients.client(clients, "route53", "us-east-1"),
            clients.stubbed.pop(("route53", "us-east-1")),
            {"get_health_check"},
        )
    return world


def expect_health_checks(world: World, region_alarms: bool = True) -> None:
    """Queue the post-check's get_health_check answers: each reads its switch alarm."""
    stubber = world.clients.stubbers[("route53", "us-east-1")]
    assert world.outputs.dns is not None
    for service in sorted(world.outputs.dns.services):
        switch = world.outputs.dns.switches[service]
        stubber.add_response(
            "get_health_check",
            {
                "HealthCheck": {
                    "Id": switch.health_check_id,
                    "CallerReference": "x",
                    "HealthCheckConfig": {
                        "Type": "CLOUDWATCH_METRIC",
                        "AlarmIdentifier": {"Region": switch.region, "Name": switch.alarm_name},
                    },
                    "HealthCheckVersion": 1,
                }
            },
            {"HealthCheckId": switch.health_check_id},
        )
    del region_alarms
