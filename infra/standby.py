"""The data stores and their standbys: Aurora global database, MSK with its replicator,
ElastiCache global datastore, AWS Backup, and DNS failover.

prod creates the primaries (and the global cluster, the global datastore, the DNS zone with its
health checks and PRIMARY records); dr creates the secondaries, joining what prod exported, the
replicator, the failover switches and the SECONDARY records. Each function returns what it
declared (a frozen ``Defined``: its sections of the exports, its stores' entries, its DNS
targets) and ``define_standbys`` gathers them in a frozen ``Standbys``. dr's outputs carry prod's
side too (read through the StackReference), so a failover finds everything in dr's outputs alone.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws

from components import failover_naming as names
from components import naming
from components.aurora import (
    AuroraCluster,
    AuroraClusterArgs,
    AuroraGlobalCluster,
    AuroraGlobalClusterArgs,
    ClusterRole,
)
from components.aws_backup import AwsBackup, AwsBackupArgs
from components.cache_export import CacheExportBucket, CacheExportBucketArgs
from components.dns_failover import (
    FailoverZone,
    FailoverZoneArgs,
    SecondaryRecords,
    SecondaryRecordsArgs,
    ServiceRecord,
)
from components.elasticache import CacheReplicationGroup, CacheReplicationGroupArgs, GroupRole
from components.msk import (
    MskCluster,
    MskClusterArgs,
    MskReplicator,
    MskReplicatorArgs,
    ReplicatedCluster,
)
from components.timestream import PORT as TIMESTREAM_PORT
from components.timestream import InfluxDbInstance, InfluxDbInstanceArgs
from stackmodels import StackConfig
from stackmodels import metrics as metric_names
from stackmodels.config import Network, ObjectLockMode
from stackmodels.outputs import StoreService

TAG_STORE = "trading-dr:store"
TAG_DATA_CLASS = "trading-dr:data-class"
TAG_PURPOSE = "trading-dr:purpose"
PURPOSE_DATA_STORE = "data-store"


@dataclass(frozen=True)
class Stack:
    """What every part of the program shares about the stack being declared (the data-store key
    and the alert topic once they exist: ``dataclasses.replace`` adds them)."""

    config: StackConfig
    provider: aws.Provider
    account: str
    partition: str
    tags: dict[str, str]
    prod: pulumi.StackReference | None
    data_key_arn: pulumi.Output[str] | None = None
    topic_arn: pulumi.Output[str] | None = None
    access_log_bucket: pulumi.Input[str] | None = None
    """The region's access-log bucket, where buckets declared with the data stores log."""

    @property
    def region(self) -> str:
        return self.config.region

    @property
    def peer(self) -> str:
        return self.config.peer_region

    @property
    def is_prod(self) -> bool:
        return self.prod is None

    @property
    def active(self) -> bool:
        """Whether this stack's region writes now (``active_region``, after a failover)."""
        return self.config.primary_region == self.region

    @property
    def prod_region(self) -> str:
        return self.region if self.is_prod else self.peer

    @property
    def opts(self) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(provider=self.provider)

    @property
    def invoke(self) -> pulumi.InvokeOptions:
        return pulumi.InvokeOptions(provider=self.provider)

    @property
    def network(self) -> Network:
        assert self.config.network is not None  # StackConfig requires it with any data store
        return self.config.network

    def placement(self) -> dict[str, Any]:
        """The ``StorePlacementArgs`` fields of a data store: this stack's VPC, subnets, clients."""
        network = self.network
        return {
            "vpc_id": network.vpc_id,
            "subnet_ids": network.subnet_ids,
            "client_cidrs": network.client_cidrs,
        }

    def key(self) -> pulumi.Output[str]:
        assert self.data_key_arn is not None
        return self.data_key_arn

    def store_tags(self, store: str) -> dict[str, str]:
        data_class = self.config.stores[store].data_class
        return {
            **self.tags,
            TAG_STORE: store,
            TAG_DATA_CLASS: data_class,
            TAG_PURPOSE: PURPOSE_DATA_STORE,
        }

    def from_prod(self, output: str, *path: str) -> pulumi.Output[Any]:
        """A value of prod's outputs (dr only), failing the deployment if prod lacks it."""
        assert self.prod is not None

        def dig(value: Any) -> Any:
            for part in path:
                if not isinstance(value, dict) or part not in value:
                    raise ValueError(
                        f"prod's output {output!r} has no {'.'.join(path)!r}: deploy prod first "
                        "with the same data stores configured"
                    )
                value = value[part]
            return value

        return self.prod.require_output(output).apply(dig)

    def members(self, output: str, key: str, this: dict[str, Any]) -> pulumi.Output[dict[str, Any]]:
        """Region -> member of a data store: ``this`` for this region and, in dr, the other
        regions' entries of prod's ``output.key``."""
        peers: pulumi.Input[dict[str, Any]] = {}
        if not self.is_prod:
            region = self.region
            peers = self.from_prod(output, key).apply(
                lambda entries: {r: e for r, e in entries.items() if r != region}
            )
        return merged(peers, self.region, this)

    def prod_value(self, output: str, *path: str) -> pulumi.Output[Any]:
        """Like ``from_prod`` but None where prod has no such value (optional outputs)."""
        assert self.prod is not None

        def dig(value: Any) -> Any:
            for part in path:
                value = value.get(part) if isinstance(value, dict) else None
            return value

        return self.prod.get_output(output).apply(dig)


@dataclass(frozen=True, kw_only=True)
class Defined:
    """What one part declared: its sections of the exports (output name -> value), its stores'
    entries in ``stores``, and the endpoints its DNS names point at."""

    outputs: dict[str, Any] = field(default_factory=dict)
    stores: dict[str, dict[str, Any]] = field(default_factory=dict)
    dns_targets: dict[str, pulumi.Output[str]] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class AuroraDefined(Defined):
    cluster_id: str
    cluster_arn: pulumi.Output[str]


@dataclass(frozen=True, kw_only=True)
class MskDefined(Defined):
    replicator_name: str | None


@dataclass(frozen=True, kw_only=True)
class CacheDefined(Defined):
    group_id: str
    nodes: int


@dataclass(frozen=True, kw_only=True)
class DnsDefined(Defined):
    switch_services: list[str]
    """The services whose dr switch alarms this stack creates (with its other alarms)."""


@dataclass(frozen=True)
class Standbys:
    """The data stores this stack declared: what the program exports and the alarms need."""

    aurora: AuroraDefined | None = None
    msk: MskDefined | None = None
    cache: CacheDefined | None = None
    timeseries: Defined | None = None
    aws_backup: Defined | None = None

    def _parts(self) -> list[Defined]:
        parts = (self.aurora, self.msk, self.cache, self.timeseries, self.aws_backup)
        return [part for part in parts if part is not None]

    @property
    def outputs(self) -> dict[str, Any]:
        return {name: value for part in self._parts() for name, value in part.outputs.items()}

    @property
    def stores(self) -> dict[str, dict[str, Any]]:
        return {name: entry for part in self._parts() for name, entry in part.stores.items()}

    @property
    def dns_targets(self) -> dict[str, pulumi.Output[str]]:
        return {s: target for part in self._parts() for s, target in part.dns_targets.items()}

    @property
    def aurora_cluster_id(self) -> str | None:
        return self.aurora.cluster_id if self.aurora else None

    @property
    def aurora_cluster_arn(self) -> pulumi.Output[str] | None:
        return self.aurora.cluster_arn if self.aurora else None

    @property
    def cache_group_id(self) -> str | None:
        return self.cache.group_id if self.cache else None

    @property
    def cache_nodes(self) -> int:
        return self.cache.nodes if self.cache else 0

    @property
    def replicator_name(self) -> str | None:
        return self.msk.replicator_name if self.msk else None


def secret_password(stack: Stack, secret_name: str) -> pulumi.Output[str]:
    """The ``password`` of a Secrets Manager secret in this stack's region, kept secret.

    The secret exists outside the stacks and is replicated to both regions by Secrets Manager, so
    the dr stack reads its own region's replica; the value goes to write-only arguments and never
    into the Pulumi state.
    """
    version = aws.secretsmanager.get_secret_version_output(secret_id=secret_name, opts=stack.invoke)

    def password(secret_string: str) -> str:
        try:
            value = json.loads(secret_string)["password"]
        except (ValueError, KeyError, TypeError):
            raise ValueError(f"secret {secret_name!r} must be JSON with a 'password' key") from None
        return str(value)

    return pulumi.Output.secret(version.secret_string.apply(password))


def merged(
    peers: pulumi.Input[dict[str, Any]], region: str, this: dict[str, Any]
) -> pulumi.Output[dict[str, Any]]:
    """``{region: this}`` plus the peer regions' entries read from prod (dr)."""
    return pulumi.Output.all(peers=peers, this=this).apply(
        lambda v: {**(v["peers"] or {}), region: v["this"]}
    )


# ---- Aurora ------------------------------------------------------------------------------------


def define_aurora(stack: Stack) -> AuroraDefined | None:
    config = stack.config
    aurora = config.aurora
    if aurora is None:
        return None
    store = config.stores[aurora.store]
    platform, region = config.platform, stack.region
    cluster_id = names.aurora_cluster_id(platform, aurora.store, region)
    tags = stack.store_tags(aurora.store)
    common: dict[str, Any] = {
        "cluster_identifier": cluster_id,
        "engine_version": aurora.engine_version,
        "instance_class": aurora.instance_class,
        "instances": aurora.instances,
        "kms_key_arn": stack.key(),
        **stack.placement(),
        "backup_retention_days": aurora.backup_retention_days,
        "backup_window": aurora.backup_window,
        "maintenance_window": aurora.maintenance_window,
        "tags": tags,
    }
    global_id: pulumi.Input[str]
    if stack.is_prod:
        global_name = names.aurora_global_cluster_id(platform, aurora.store)
        adopted = aurora.adopt_primary_cluster_identifier
        if adopted is None:
            global_cluster = AuroraGlobalCluster(
                "aurora-global",
                AuroraGlobalClusterArgs(
                    global_cluster_identifier=global_name,
                    engine_version=aurora.engine_version,
                    tags=tags,
                ),
                stack.opts,
            )
            cluster = AuroraCluster(
                "aurora-primary",
                AuroraClusterArgs(
                    role=ClusterRole.PRIMARY,
                    global_cluster_identifier=global_cluster.id,
                    database_name=store.database,
                    master_username=aurora.master_username,
                    master_password=secret_password(stack, aurora.master_secret),
                    master_password_version=aurora.master_secret_version,
                    **common,
                ),
                stack.opts,
            )
        else:
            cluster_id = adopted
            cluster = AuroraCluster(
                "aurora-primary",
                AuroraClusterArgs(
                    role=ClusterRole.PRIMARY,
                    adopt_cluster=True,
                    **{**common, "cluster_identifier": adopted},
                ),
                stack.opts,
            )
            global_cluster = AuroraGlobalCluster(
                "aurora-global",
                AuroraGlobalClusterArgs(
                    global_cluster_identifier=global_name,
                    engine_version=aurora.engine_version,
                    source_cluster_arn=cluster.arn,
                    tags=tags,
                ),
                stack.opts,
            )
        global_id, global_arn = global_cluster.id, global_cluster.arn
        global_endpoint: pulumi.Input[str | None] = global_cluster.endpoint
    else:
        global_id = stack.from_prod("aurora", "global_cluster_id")
        global_arn = stack.from_prod("aurora", "global_cluster_arn")
        global_endpoint = stack.prod_value("aurora", "global_writer_endpoint")
        cluster = AuroraCluster(
            "aurora-secondary",
            AuroraClusterArgs(
                role=ClusterRole.SECONDARY, global_cluster_identifier=global_id, **common
            ),
            stack.opts,
        )
    this = {
        "id": cluster_id,
        "arn": cluster.arn,
        "region": region,
        "endpoint": cluster.endpoint,
        "reader_endpoint": cluster.reader_endpoint,
        "port": 5432,
    }
    output = {
        "global_cluster_id": global_id,
        "global_cluster_arn": global_arn,
        "global_writer_endpoint": global_endpoint,
        "primary_region": config.primary_region,
        "clusters": stack.members("aurora", "clusters", this),
        "database": store.database,
        "master_secret": aurora.master_secret,
    }
    entry = {
        "kind": store.kind.value,
        "service": StoreService.AURORA_POSTGRESQL.value,
        "host": cluster.endpoint,
        "port": 5432,
        "database": store.database,
        "credentials_secret": aurora.master_secret,
        "resource_id": cluster_id,
    }
    return AuroraDefined(
        outputs={"aurora": output},
        stores={aurora.store: entry},
        dns_targets={aurora.store: cluster.endpoint},
        cluster_id=cluster_id,
        cluster_arn=cluster.arn,
    )


# ---- MSK ---------------------------------------------------------------------------------------


def _retention_ms(value: Any) -> int:
    return int(value.total_seconds() * 1000)


def _subnet(index: int) -> Any:
    """The source cluster's ``index``-th subnet: the replicator's ENIs on the source side."""
    return lambda cluster: cluster["subnet_ids"][index]


def define_msk(stack: Stack) -> MskDefined | None:
    config = stack.config
    msk = config.msk
    if msk is None:
        return None
    platform, region, network = config.platform, stack.region, stack.network
    store = config.stores[msk.store]
    default_class = msk.topic_classes.get("standard") or min(
        msk.topic_classes.values(), key=lambda c: c.retention
    )
    cluster = MskCluster(
        "msk",
        MskClusterArgs(
            cluster_name=names.msk_cluster_name(platform, msk.store, region),
            kafka_version=msk.kafka_version,
            instance_type=msk.instance_type,
            broker_nodes=msk.broker_nodes,
            volume_gib=msk.volume_gib,
            kms_key_arn=stack.key(),
            **stack.placement(),
            default_retention_ms=_retention_ms(default_class.retention),
            tiered_storage=any(c.tiered for c in msk.topic_classes.values()),
            allow_replication_source=stack.is_prod,
            tags=stack.store_tags(msk.store),
        ),
        stack.opts,
    )
    this = {
        "arn": cluster.arn,
        "name": cluster.name,
        "region": region,
        "bootstrap_brokers_sasl_iam": cluster.bootstrap_brokers_sasl_iam,
        "security_group_id": cluster.security_group_id,
        "subnet_ids": network.subnet_ids,
    }
    replicated = msk.replicated_topics()
    replicator_arn: pulumi.Input[str | None] = None
    replicator_name: str | None = None
    if not stack.is_prod:
        source = stack.from_prod("msk", "clusters", stack.prod_region)
        if replicated:
            name = names.msk_replicator_name(platform, msk.store, stack.prod_region, region)
            replicator = MskReplicator(
                "msk-replicator",
                MskReplicatorArgs(
                    replicator_name=name,
                    role_name=f"{name}-replicator"[:64],
                    account_id=stack.account,
                    source=ReplicatedCluster(
                        arn=source.apply(lambda c: c["arn"]),
                        subnet_ids=[
                            source.apply(_subnet(index)) for index in range(len(network.subnet_ids))
                        ],
                        security_group_id=source.apply(lambda c: c["security_group_id"]),
                    ),
                    target=ReplicatedCluster(
                        arn=cluster.arn,
                        subnet_ids=list(network.subnet_ids),
                        security_group_id=cluster.security_group_id,
                    ),
                    topics=replicated,
                    tags=stack.store_tags(msk.store),
                ),
                stack.opts,
            )
            replicator_arn = replicator.arn
            replicator_name = name
    output = {
        "clusters": stack.members("msk", "clusters", this),
        "replicator_arn": replicator_arn,
        "replicated_topics": replicated,
        "topic_classes": {
            name: {
                "retention_ms": _retention_ms(c.retention),
                "local_retention_ms": (
                    _retention_ms(c.local_retention) if c.local_retention is not None else None
                ),
                "replicated": c.replicate,
                "tiered": c.tiered,
            }
            for name, c in msk.topic_classes.items()
        },
        "topics": dict(msk.topics),
    }
    broker = cluster.bootstrap_brokers_sasl_iam.apply(first_broker)
    entry = {
        "kind": store.kind.value,
        "service": StoreService.MSK.value,
        "host": broker.apply(lambda b: b[0]),
        "port": broker.apply(lambda b: b[1]),
        "auth": "msk-iam",
        "database": None,
        "credentials_secret": None,
        "resource_id": cluster.arn,
    }
    return MskDefined(
        outputs={"msk": output}, stores={msk.store: entry}, replicator_name=replicator_name
    )


def first_broker(bootstrap: str | None) -> tuple[str, int]:
    """(host, port) of the first ``host:port`` of a bootstrap list: enough to bootstrap from,
    a Kafka client discovers the other brokers itself."""
    first = (bootstrap or "").split(",")[0].strip()
    host, _, port = first.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"bootstrap brokers {bootstrap!r} are not 'host:port,...'")
    return host, int(port)


# ---- ElastiCache -------------------------------------------------------------------------------


def define_elasticache(stack: Stack) -> CacheDefined | None:
    config = stack.config
    cache = config.elasticache
    if cache is None:
        return None
    platform, region = config.platform, stack.region
    store = config.stores[cache.store]
    group_id = names.elasticache_group_id(platform, cache.store, region)
    common: dict[str, Any] = {
        "replication_group_id": group_id,
        "description": f"{platform} {cache.store} ({region})",
        "engine_version": cache.engine_version,
        "node_type": cache.node_type,
        "nodes": cache.nodes,
        "kms_key_arn": stack.key(),
        "auth_token": secret_password(stack, cache.auth_secret),
        "auth_token_version": cache.auth_secret_version,
        **stack.placement(),
        "snapshot_retention_days": cache.snapshot_retention_days,
        "snapshot_window": cache.snapshot_window,
        "maintenance_window": cache.maintenance_window,
        "tags": stack.store_tags(cache.store),
    }
    if stack.is_prod:
        group = CacheReplicationGroup(
            "cache-primary",
            CacheReplicationGroupArgs(
                role=GroupRole.PRIMARY,
                global_datastore_suffix=names.elasticache_global_suffix(platform, cache.store),
                **common,
            ),
            stack.opts,
        )
        assert group.global_datastore_id is not None
        datastore_id: pulumi.Input[str] = group.global_datastore_id
    else:
        datastore_id = stack.from_prod("elasticache", "global_datastore_id")
        group = CacheReplicationGroup(
            "cache-secondary",
            CacheReplicationGroupArgs(
                role=GroupRole.SECONDARY, global_datastore_id=datastore_id, **common
            ),
            stack.opts,
        )
    assert stack.access_log_bucket is not None
    export = CacheExportBucket(
        "cache-export",
        CacheExportBucketArgs(
            platform=platform,
            stack_role="primary" if stack.is_prod else "dr",
            bucket_name=naming.cache_export_bucket_name(platform, stack.account, region),
            region=region,
            partition=stack.partition,
            access_log_bucket=stack.access_log_bucket,
        ),
        stack.opts,
    )
    this = {
        "id": group_id,
        "arn": group.arn,
        "region": region,
        "primary_endpoint": group.primary_endpoint,
        "reader_endpoint": group.reader_endpoint,
        "port": 6379,
        "export_bucket": export.bucket_name,
    }
    output = {
        "global_datastore_id": datastore_id,
        "primary_region": config.primary_region,
        "replication_groups": stack.members("elasticache", "replication_groups", this),
        "auth_secret": cache.auth_secret,
    }
    entry = {
        "kind": store.kind.value,
        "service": StoreService.ELASTICACHE.value,
        "host": group.primary_endpoint,
        "port": 6379,
        "tls": True,
        "database": None,
        "credentials_secret": cache.auth_secret,
        "resource_id": group_id,
    }
    return CacheDefined(
        outputs={"elasticache": output},
        stores={cache.store: entry},
        dns_targets={cache.store: group.primary_endpoint},
        group_id=group_id,
        nodes=cache.nodes,
    )


# ---- Timestream for InfluxDB -------------------------------------------------------------------


def define_timestream(stack: Stack) -> Defined | None:
    """This region's instance behind the time-series store, exported as its endpoint."""
    config = stack.config
    section = config.timestream
    if section is None:
        return None
    store = config.stores[section.store]
    bucket = section.bucket or store.database or section.store.replace("-", "_")
    instance = InfluxDbInstance(
        "timestream",
        InfluxDbInstanceArgs(
            name=f"{config.platform}-{section.store}-{stack.region}"[:40].rstrip("-"),
            instance_type=section.instance_type,
            storage_type=section.storage_type,
            allocated_storage_gib=section.allocated_storage_gib,
            deployment_type=section.deployment_type,
            organization=section.organization,
            bucket=bucket,
            username=section.username,
            password=secret_password(stack, section.auth_secret),
            **stack.placement(),
            tags=stack.store_tags(section.store),
        ),
        stack.opts,
    )
    entry = {
        "kind": store.kind.value,
        "service": StoreService.TIMESTREAM_INFLUXDB.value,
        "host": instance.endpoint,
        "port": TIMESTREAM_PORT,
        "tls": True,
        "database": bucket,
        "credentials_secret": section.auth_secret,
        "resource_id": instance.id,
    }
    return Defined(stores={section.store: entry})


# ---- AWS Backup --------------------------------------------------------------------------------


def define_aws_backup(
    stack: Stack, aurora: AuroraDefined | None, role_arn: pulumi.Output[str]
) -> Defined | None:
    """The region's AWS Backup vault and the plan for the Aurora cluster (when there is one)."""
    config = stack.config
    if config.aurora is None:
        return None
    plan = config.aws_backup
    retention = config.retention_of(config.stores[config.aurora.store].data_class)
    lock_mode = "compliance" if retention.object_lock is ObjectLockMode.COMPLIANCE else "governance"
    vault_name = names.backup_vault_name(config.platform, stack.region)
    peer_vault = names.backup_vault_name(config.platform, stack.peer)
    peer_arn = names.backup_vault_arn(stack.partition, stack.peer, stack.account, peer_vault)
    selected = [aurora.cluster_arn] if stack.active and aurora is not None else []
    backup = AwsBackup(
        "aws-backup",
        AwsBackupArgs(
            vault_name=vault_name,
            kms_key_arn=stack.key(),
            lock_mode=lock_mode,
            min_retention_days=plan.delete_after_days,
            max_retention_days=retention.days,
            changeable_for_days=plan.lock_changeable_for_days,
            plan_name=f"{config.platform}-aurora-{stack.region}",
            schedule=plan.schedule,
            delete_after_days=plan.delete_after_days,
            copy_to_vault_arn=peer_arn,
            role_arn=role_arn,
            selected_resource_arns=selected,
            tags=stack.store_tags(config.aurora.store),
        ),
        stack.opts,
    )
    vaults: dict[str, Any] = {
        stack.region: {"name": backup.vault_name, "arn": backup.vault_arn, "region": stack.region},
        stack.peer: {"name": peer_vault, "arn": peer_arn, "region": stack.peer},
    }
    output = {
        "vaults": vaults,
        "plan_id": backup.plan_id,
        "plan_arn": backup.plan_arn,
        "role_arn": role_arn,
        "lock_mode": lock_mode,
    }
    return Defined(outputs={"aws_backup": output})


def define_standbys(stack: Stack, backup_role_arn: pulumi.Output[str]) -> Standbys:
    """Every data store this stack configures, its standby, and AWS Backup for Aurora."""
    aurora = define_aurora(stack)
    msk = define_msk(stack)
    cache = define_elasticache(stack)
    timeseries = define_timestream(stack)
    aws_backup = define_aws_backup(stack, aurora, backup_role_arn)
    return Standbys(aurora, msk, cache, timeseries, aws_backup)


# ---- DNS ---------------------------------------------------------------------------------------


def _records(stack: Stack, standbys: Standbys) -> list[ServiceRecord]:
    dns = stack.config.dns
    assert dns is not None
    return [
        ServiceRecord(
            service=service,
            fqdn=f"{service}.{dns.zone_name}",
            target=standbys.dns_targets[spec.store],
            ttl=spec.ttl,
        )
        for service, spec in dns.services.items()
    ]


def define_dns(stack: Stack, standbys: Standbys) -> DnsDefined:
    """prod: zone, checks, PRIMARY records; dr: SECONDARY records and the services of the dr
    switches (their alarms are created with the stack's other alarms)."""
    config = stack.config
    dns = config.dns
    if dns is None:
        return DnsDefined(switch_services=[])
    platform = config.platform
    dr_region = stack.peer if stack.is_prod else stack.region
    records = _records(stack, standbys)
    switches: dict[str, dict[str, Any]] = {
        service: {
            "alarm_name": names.failover_switch_alarm_name(platform, service),
            "region": dr_region,
            "namespace": metric_names.FAILOVER_NAMESPACE,
            "metric": metric_names.PRIMARY_FENCED,
            "dimensions": {metric_names.SERVICE_DIMENSION: service},
        }
        for service in dns.services
    }
    this_side = "primary" if stack.is_prod else "secondary"
    services: dict[str, Any] = {
        service: {
            "name": record.fqdn,
            "type": "CNAME",
            "ttl": record.ttl,
            "store": dns.services[service].store,
            this_side: {
                "set_identifier": f"{this_side}-{stack.region}",
                "target": record.target,
                "region": stack.region,
            },
        }
        for service, record in ((r.service, r) for r in records)
    }
    if stack.is_prod:
        zone = FailoverZone(
            "dns",
            FailoverZoneArgs(
                zone_name=dns.zone_name,
                vpcs=dict(dns.vpc_ids),
                region=stack.region,
                switch_region=dr_region,
                switch_alarm_names={s: v["alarm_name"] for s, v in switches.items()},
                records=records,
                tags=stack.tags,
            ),
            stack.opts,
        )
        zone_id: pulumi.Input[str] = zone.zone_id
        for service, check in zone.health_check_ids.items():
            switches[service]["health_check_id"] = check
        output = {
            "zone_id": zone_id,
            "zone_name": dns.zone_name,
            "services": services,
            "switches": switches,
        }
        return DnsDefined(outputs={"dns": output}, switch_services=[])
    zone_id = stack.from_prod("dns", "zone_id")
    SecondaryRecords(
        "dns",
        SecondaryRecordsArgs(zone_id=zone_id, region=stack.region, records=records),
        stack.opts,
    )
    prod_dns = stack.prod.get_output("dns") if stack.prod is not None else None

    def combine(values: dict[str, Any]) -> dict[str, Any]:
        prod_side = values["prod"] or {}
        prod_services = prod_side.get("services", {})
        prod_switches = prod_side.get("switches", {})
        services, switches = values["services"], values["switches"]
        return {
            "services": {
                service: {**prod_services.get(service, {}), **entry}
                for service, entry in services.items()
            },
            "switches": {
                service: {**switch, **prod_switches.get(service, {})}
                for service, switch in switches.items()
            },
        }

    combined = pulumi.Output.all(prod=prod_dns, services=services, switches=switches).apply(combine)
    output = {
        "zone_id": zone_id,
        "zone_name": dns.zone_name,
        "services": combined.apply(lambda c: c["services"]),
        "switches": combined.apply(lambda c: c["switches"]),
    }
    return DnsDefined(outputs={"dns": output}, switch_services=list(dns.services))
