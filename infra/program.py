"""Compose the components for one stack and export exactly the ``StackOutputs`` fields.

prod (role primary): keys, vault, audit and access-log buckets, the replication to the dr vault,
the GCS mirror and the container registry with its replication; the data stores' primaries (Aurora
global database, MSK, ElastiCache global datastore), AWS Backup, the DNS zone with its health
checks and PRIMARY records, budgets. dr: the same regional pieces with the replica key, the data
stores' secondaries, the MSK Replicator, the failover switches and SECONDARY records, reading prod
through a StackReference and never writing to the primary region. Both: the data-store key, the
alert topic, the CloudWatch alarms, the Prometheus rules and the Grafana dashboard, and (with
``isolated_vault_stack``) the backup jobs' create-only grant on the isolated vault, read from the
``vault`` stack through a StackReference. vault (role ``vault``, ``infra.vault``): the isolated
backup account's vault, key, logs, audit trail and reader role; it reads no other stack.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_gcp as gcp
import pulumi_kubernetes as k8s

from components import failover_naming, naming
from components.access_logs import AccessLogBucket, AccessLogBucketArgs
from components.alarms import AlertTopic, AlertTopicArgs
from components.audit_bucket import AuditBucket, AuditBucketArgs
from components.aws_backup import AwsBackupRole, AwsBackupRoleArgs
from components.backup_iam import IsolatedVaultGrant
from components.backup_vault import BackupVault, BackupVaultArgs, Tier, VaultDataClass
from components.data_key import DataStoreKey, DataStoreKeyArgs
from components.ecr import ContainerRegistry, ContainerRegistryArgs
from components.gcs_mirror import GcsMirror, GcsMirrorArgs, MirrorDataClass
from components.iam import BackupWriterRole, BackupWriterRoleArgs
from components.keys import KeyRole, VaultKey, VaultKeyArgs
from components.replication import (
    ReplicationRole,
    ReplicationRoleArgs,
    VaultReplication,
    VaultReplicationArgs,
)
from infra import monitoring, standby
from infra.kubernetes import define_backup_job_roles, define_backup_jobs
from infra.providers import aws_provider as regional_aws_provider
from infra.providers import kubernetes_provider
from infra.vault import define_vault_stack
from stackmodels import StackConfig, StackOutputs
from stackmodels.config import RetentionClass, Role, VaultStackConfig

REPLICATION_TIME_MINUTES = 15


def vault_data_classes(config: StackConfig) -> list[VaultDataClass]:
    classes = []
    for name, data_class in config.data_classes.items():
        retention = config.retention_of(name)
        classes.append(
            VaultDataClass(
                name=name,
                lock_mode="COMPLIANCE"
                if retention.object_lock.value == "compliance"
                else "GOVERNANCE",
                retention_days=retention.days,
                tiers=[
                    Tier(storage_class=storage_class, days=days)
                    for storage_class, days in data_class.lifecycle.tiers()
                ],
            )
        )
    return classes


def audit_retention(config: StackConfig) -> RetentionClass:
    """The journal keeps the audit data class's retention (or the ``audit`` retention class)."""
    return config.journal_retention()


def _bucket(name: pulumi.Input[str], arn: pulumi.Input[str], region: str) -> dict[str, Any]:
    return {"name": name, "arn": arn, "region": region}


def _stack_reference_name(primary_stack: str) -> str:
    if "/" in primary_stack:
        return primary_stack
    return f"{pulumi.get_organization()}/{pulumi.get_project()}/{primary_stack}"


def _check_destination(replication: Any, vault_name: str) -> Any:
    """dr's vault must be the destination prod replicates to (both derive it from config)."""
    if replication and replication["destination"]["name"] != vault_name:
        raise ValueError(
            f"prod replicates to {replication['destination']['name']!r} but this stack's vault "
            f"is {vault_name!r}: platform, account or regions differ between the two stacks"
        )
    return replication


def define_data_stores(
    stack: standby.Stack,
    *,
    administrator_arns: list[str],
    operator_arns: list[str],
    break_glass_arn: str,
) -> tuple[standby.Stack, standby.Standbys]:
    """The data-store key and alert topic, then the data stores, their standbys and backups.

    Returns ``stack`` with the key and the topic, and what the data stores declared."""
    config = stack.config
    backup_role = AwsBackupRole(
        "aws-backup-role",
        AwsBackupRoleArgs(
            role_name=f"{config.platform}-aws-backup-{stack.region}",
            account_id=stack.account,
            partition=stack.partition,
            tags=stack.tags,
        ),
        stack.opts,
    )
    key = DataStoreKey(
        "data-key",
        DataStoreKeyArgs(
            platform=config.platform,
            region=stack.region,
            account_id=stack.account,
            administrator_arns=administrator_arns,
            service_user_arns=[backup_role.arn, *operator_arns],
            break_glass_arn=break_glass_arn,
            tags=stack.tags,
        ),
        stack.opts,
    )
    topic = AlertTopic(
        "alerts",
        AlertTopicArgs(
            topic_name=failover_naming.alert_topic_name(config.platform),
            account_id=stack.account,
            kms_key_arn=key.arn,
            emails=config.alerts.emails,
            tags=stack.tags,
        ),
        stack.opts,
    )
    stack = dataclasses.replace(stack, data_key_arn=key.arn, topic_arn=topic.arn)
    return stack, standby.define_standbys(stack, backup_role.arn)


@dataclass(frozen=True)
class Site:
    """The region being declared: its provider, account, names and the prod reference (dr)."""

    stack: standby.Stack
    vault_name: str
    vault_arn: str

    @property
    def config(self) -> StackConfig:
        return self.stack.config

    @property
    def primary(self) -> bool:
        return self.config.role is Role.PRIMARY

    @property
    def stack_role(self) -> str:
        return "primary" if self.primary else "dr"

    @property
    def peer_vault_name(self) -> str:
        return naming.vault_bucket_name(
            self.config.platform, self.stack.account, self.config.peer_region
        )

    def role_arn(self, name: str) -> str:
        return naming.iam_role_arn(self.stack.partition, self.stack.account, name)

    def role_arns(self, names: Iterable[str]) -> list[str]:
        return [self.role_arn(name) for name in names]


def define_site(config: StackConfig) -> Site:
    """The region's explicit provider, who deploys, and (dr) the reference to prod's outputs."""
    primary = config.role is Role.PRIMARY
    aws_provider = regional_aws_provider(config.region)
    invoke = pulumi.InvokeOptions(provider=aws_provider)
    account = aws.get_caller_identity(opts=invoke).account_id
    partition = aws.get_partition(opts=invoke).partition
    prod: pulumi.StackReference | None = None
    if not primary:
        assert config.primary_stack is not None  # StackConfig requires it for a dr stack
        prod = pulumi.StackReference(_stack_reference_name(config.primary_stack))
    vault_name = naming.vault_bucket_name(config.platform, account, config.region)
    return Site(
        stack=standby.Stack(
            config=config,
            provider=aws_provider,
            account=account,
            partition=partition,
            tags={
                "trading-dr:platform": config.platform,
                "trading-dr:stack-role": "primary" if primary else "dr",
            },
            prod=prod,
        ),
        vault_name=vault_name,
        vault_arn=naming.s3_arn(partition, vault_name),
    )


def _check_writer(writers: Any, account: str, vault_stack: str) -> Any:
    """The vault stack must accept this stack's account as a writer (both come from config)."""
    accounts = sorted({w["account_id"] for w in (writers or {}).values()})
    if account not in accounts:
        raise ValueError(
            f"the vault stack {vault_stack!r} accepts writers of accounts {accounts}, not this "
            f"stack's account {account}: add it to that stack's trading-dr:writers"
        )
    return writers


def define_isolated(site: Site) -> tuple[pulumi.Input[Any], IsolatedVaultGrant | None]:
    """The isolated vault (``isolated_vault`` export) and the grant the backup jobs get there,
    through a StackReference to the vault stack; (None, None) when the config names none."""
    name = site.config.isolated_vault_stack
    if name is None:
        return None, None
    vault = pulumi.StackReference(_stack_reference_name(name))
    isolated = vault.require_output("isolated_vault")
    checked = pulumi.Output.all(
        isolated,
        vault.require_output("writers").apply(lambda w: _check_writer(w, site.stack.account, name)),
    ).apply(lambda v: v[0])
    grant = IsolatedVaultGrant(
        bucket_arn=checked.apply(lambda v: v["bucket"]["arn"]),
        key_arn=checked.apply(lambda v: v["kms_key_arn"]),
        region=checked.apply(lambda v: v["bucket"]["region"]),
    )
    return checked, grant


@dataclass(frozen=True)
class Storage:
    """The backup storage of the region: access logs, writer role, key, vault, audit journal, and
    the cross-region replication (its exports and, in prod, the dr side's names)."""

    logs: AccessLogBucket
    writer: BackupWriterRole
    key: VaultKey
    vault: BackupVault
    audit: AuditBucket
    job_roles: dict[str, Any]
    peer_vault: pulumi.Input[Any]
    peer_key_arn: pulumi.Input[str]
    replication: pulumi.Input[Any]
    isolated: pulumi.Input[Any] = None


def _key_common(site: Site, writer: BackupWriterRole, job_roles: dict[str, Any]) -> dict[str, Any]:
    """The vault key's args both roles share: who administers, uses, seals and opens."""
    config, stack = site.config, site.stack
    operators = site.role_arns(config.access.operators)
    key_users: list[pulumi.Input[str]] = [writer.arn]
    key_users += [role.arn for role in job_roles.values()]
    key_users += operators
    return {
        "platform": config.platform,
        "region": config.region,
        "account_id": stack.account,
        "administrator_arns": site.role_arns(config.access.administrators),
        "user_arns": key_users,
        # The Kubernetes-state backup seals Secrets with a data key of its own; restores (the
        # operators) open them. Both stacks: a failed-over dr seals with the replica key.
        # Operators seal too: ``invoke backup.store app-state`` on demand runs as an operator.
        "secret_sealer_arns": [
            *(role.arn for role in job_roles.values() if role.seals_secrets),
            *operators,
        ],
        "secret_opener_arns": operators,
        "break_glass_arn": site.role_arn(config.access.break_glass),
        "tags": stack.tags,
    }


def define_storage(site: Site) -> Storage:
    """Access logs, the writer role, the CronJobs' roles, the vault key (prod's primary with its
    replication role, dr's replica of it), the vault, the audit journal, and prod's replication
    to the dr vault."""
    config, stack = site.config, site.stack
    platform, region, peer = config.platform, config.region, config.peer_region
    account, partition, opts = stack.account, stack.partition, stack.opts
    vault_name, vault_arn = site.vault_name, site.vault_arn
    logs = AccessLogBucket(
        "access-logs",
        AccessLogBucketArgs(
            platform=platform,
            stack_role=site.stack_role,
            bucket_name=naming.access_log_bucket_name(platform, account, region),
            account_id=account,
            retention_days=config.retention_classes.get("system", RetentionClass(days=365)).days,
        ),
        opts,
    )
    writer = BackupWriterRole(
        "backup-writer",
        BackupWriterRoleArgs(
            role_name=naming.backup_writer_role_name(platform, region),
            trusted_principal_arns=[f"arn:{partition}:iam::{account}:root"],
            vault_arn=vault_arn,
            tags=stack.tags,
        ),
        opts,
    )
    isolated, isolated_grant = define_isolated(site)
    # The backup CronJobs' roles exist before the key: its policy names every user.
    job_roles = define_backup_job_roles(
        config,
        account=account,
        partition=partition,
        vault_arn=vault_arn,
        audit_arn=naming.s3_arn(partition, naming.audit_bucket_name(platform, account, region)),
        provider=stack.provider,
        isolated=isolated_grant,
    )
    key_common = _key_common(site, writer, job_roles)

    replication_role: ReplicationRole | None = None
    replication_out: pulumi.Input[Any]
    if stack.prod is None:
        dr_vault_name = site.peer_vault_name
        replication_role = ReplicationRole(
            "replication-role",
            ReplicationRoleArgs(
                role_name=naming.replication_role_name(platform, region),
                account_id=account,
                source_bucket_arn=vault_arn,
                destination_bucket_arn=naming.s3_arn(partition, dr_vault_name),
                tags=stack.tags,
            ),
            opts,
        )
        key = VaultKey(
            "vault-key",
            VaultKeyArgs(
                role=KeyRole.PRIMARY,
                replication_source_role_arn=replication_role.arn,
                **key_common,
            ),
            opts,
        )
        dr_key_arn = key.arn.apply(lambda arn: naming.replica_key_arn(arn, peer))
        peer_vault: pulumi.Input[Any] = _bucket(
            dr_vault_name, naming.s3_arn(partition, dr_vault_name), peer
        )
        peer_key_arn: pulumi.Input[str] = dr_key_arn
        replication_out = {
            "source": _bucket(vault_name, vault_arn, region),
            "destination": peer_vault,
            "role_arn": replication_role.arn,
            "destination_key_arn": dr_key_arn,
            "replication_time_minutes": REPLICATION_TIME_MINUTES,
            "enabled": config.replicate_vault,
        }
    else:
        prod = stack.prod
        prod_replication = prod.get_output("vault_replication")
        key = VaultKey(
            "vault-key",
            VaultKeyArgs(
                role=KeyRole.REPLICA,
                primary_key_arn=prod.require_output("vault_key_arn"),
                replication_destination_role_arn=prod_replication.apply(
                    lambda r: r["role_arn"] if r else None
                ),
                **key_common,
            ),
            opts,
        )
        peer_vault = prod.require_output("backup_vault")
        peer_key_arn = prod.require_output("vault_key_arn")
        replication_out = prod_replication.apply(lambda r: _check_destination(r, vault_name))

    vault = BackupVault(
        "backup-vault",
        BackupVaultArgs(
            platform=platform,
            stack_role=site.stack_role,
            bucket_name=vault_name,
            kms_key_arn=key.arn,
            access_log_bucket=logs.bucket_name,
            data_classes=vault_data_classes(config),
        ),
        opts,
    )
    journal = audit_retention(config)
    audit = AuditBucket(
        "audit",
        AuditBucketArgs(
            platform=platform,
            stack_role=site.stack_role,
            bucket_name=naming.audit_bucket_name(platform, account, region),
            kms_key_arn=key.arn,
            access_log_bucket=logs.bucket_name,
            lock_mode="COMPLIANCE" if journal.object_lock.value == "compliance" else "GOVERNANCE",
            retention_days=journal.days,
        ),
        opts,
    )
    if replication_role is not None and config.replicate_vault:
        VaultReplication(
            "vault-replication",
            VaultReplicationArgs(
                source_bucket=vault.bucket_name,
                destination_bucket_arn=naming.s3_arn(partition, site.peer_vault_name),
                destination_key_arn=dr_key_arn,
                role_arn=replication_role.arn,
                replication_time_minutes=REPLICATION_TIME_MINUTES,
            ),
            pulumi.ResourceOptions(provider=stack.provider, depends_on=[vault]),
        )
    return Storage(
        logs=logs,
        writer=writer,
        key=key,
        vault=vault,
        audit=audit,
        job_roles=job_roles,
        peer_vault=peer_vault,
        peer_key_arn=peer_key_arn,
        replication=replication_out,
        isolated=isolated,
    )


def define_registry(site: Site) -> ContainerRegistry:
    """The backup image's repositories; prod replicates them to the dr region."""
    config = site.config
    return ContainerRegistry(
        "ecr",
        ContainerRegistryArgs(
            account_id=site.stack.account,
            repositories=config.ecr_repositories,
            replicate_to_regions=[config.peer_region] if site.primary else [],
            tags=site.stack.tags,
        ),
        site.stack.opts,
    )


def define_mirror(site: Site) -> dict[str, pulumi.Input[Any]]:
    """prod: the GCS mirror; dr: prod's. Returns the ``gcs_*`` exports."""
    config = site.config
    if site.stack.prod is not None:
        prod = site.stack.prod
        return {
            "gcs_mirror_bucket": prod.require_output("gcs_mirror_bucket"),
            "gcs_mirror_key": prod.get_output("gcs_mirror_key"),
            "gcs_writer_service_account": prod.get_output("gcs_writer_service_account"),
        }
    gcp_provider = gcp.Provider(f"gcp-{config.gcp.project}", project=config.gcp.project)
    mirror = GcsMirror(
        "gcs-mirror",
        GcsMirrorArgs(
            platform=config.platform,
            project=config.gcp.project,
            location=config.gcp.location,
            bucket_name=f"{config.gcp.project}-backup-mirror",
            writer_account_id=f"{config.platform}-backup-writer",
            key_rotation_days=config.gcp.key_rotation_days,
            data_classes=[
                MirrorDataClass.from_s3_tiers(
                    name, config.retention_of(name).days, data_class.lifecycle.tiers()
                )
                for name, data_class in config.data_classes.items()
            ],
        ),
        pulumi.ResourceOptions(provider=gcp_provider),
    )
    return {
        "gcs_mirror_bucket": mirror.bucket_name,
        "gcs_mirror_key": mirror.crypto_key_id,
        "gcs_writer_service_account": mirror.writer_email,
    }


def define_monitoring(
    site: Site, stack: standby.Stack, data_stores: standby.Standbys, dns: standby.DnsDefined
) -> tuple[dict[str, Any], k8s.Provider]:
    """The alarms, budgets and the cluster's rules and dashboard. Returns the ``alarms`` export
    and the region's one cluster provider (the backup CronJobs take it too)."""
    config = site.config
    vault_source = (
        (site.vault_name, site.peer_vault_name) if site.primary and config.replicate_vault else None
    )
    alarms = monitoring.define_alarms(
        stack,
        data_stores,
        switch_services=dns.switch_services,
        vault_replication=vault_source,
    )
    monitoring.define_budgets(stack)
    cluster = kubernetes_provider(config)
    monitoring.define_kubernetes_monitoring(stack, cluster)
    return alarms, cluster


def stack_outputs(
    stack_name: str,
    stack: standby.Stack,
    storage: Storage,
    registry: ContainerRegistry,
    mirror: dict[str, pulumi.Input[Any]],
    data_stores: standby.Standbys,
    dns: standby.DnsDefined,
    alarms: dict[str, Any],
) -> dict[str, Any]:
    """The ``StackOutputs`` values, checked to name exactly its fields."""
    config = stack.config
    region, peer = config.region, config.peer_region
    assert stack.topic_arn is not None
    peer_topic: pulumi.Input[str | None] = (
        failover_naming.alert_topic_arn(stack.partition, peer, stack.account, config.platform)
        if stack.is_prod
        else stack.prod_value("alerts_topic_arn")
    )
    this_vault = _bucket(storage.vault.bucket_name, storage.vault.arn, region)
    sections = {**data_stores.outputs, **dns.outputs}
    outputs: dict[str, Any] = {
        "stack": stack_name,
        "role": config.role.value,
        "region": region,
        "platform": config.platform,
        "backup_vault": this_vault,
        "vault_key_arn": storage.key.arn,
        "audit_bucket": _bucket(storage.audit.bucket_name, storage.audit.arn, region),
        "k8s_namespace": config.kubernetes.namespace,
        "k8s_backup_namespace": config.kubernetes.backup_namespace,
        "stores": data_stores.stores,
        "isolated_vault": storage.isolated,  # the vault stack's, through a StackReference
        "aws_endpoint_url": None,
        "gcs_endpoint_url": None,
        "backup_vaults": {region: this_vault, peer: storage.peer_vault},
        "vault_key_arns": {region: storage.key.arn, peer: storage.peer_key_arn},
        "vault_replication": storage.replication,
        "access_log_bucket": _bucket(storage.logs.bucket_name, storage.logs.arn, region),
        "backup_writer_role_arn": storage.writer.arn,
        "ecr_repositories": registry.repository_urls,
        **mirror,
        "aurora": sections.get("aurora"),
        "msk": sections.get("msk"),
        "elasticache": sections.get("elasticache"),
        "dns": sections.get("dns"),
        "aws_backup": sections.get("aws_backup"),
        "alerts_topic_arn": stack.topic_arn,
        "alerts_topic_arns": {region: stack.topic_arn, peer: peer_topic},
        "alarms": alarms,
    }
    missing = set(StackOutputs.output_names()) ^ set(outputs)
    if missing:
        raise AssertionError(f"exports and StackOutputs fields differ: {sorted(missing)}")
    return outputs


def define_stack(config: StackConfig | VaultStackConfig, stack: str) -> dict[str, Any]:
    """Declare the stack's resources; export and return the ``StackOutputs`` values (the
    ``VaultStackOutputs`` ones for the isolated account's stack, role ``vault``)."""
    if isinstance(config, VaultStackConfig):
        return define_vault_stack(config, stack)
    site = define_site(config)
    storage = define_storage(site)
    registry = define_registry(site)
    mirror = define_mirror(site)
    context, data_stores = define_data_stores(
        dataclasses.replace(site.stack, access_log_bucket=storage.logs.bucket_name),
        administrator_arns=site.role_arns(config.access.administrators),
        operator_arns=site.role_arns(config.access.operators),
        break_glass_arn=site.role_arn(config.access.break_glass),
    )
    dns = standby.define_dns(context, data_stores)
    alarms, cluster = define_monitoring(site, context, data_stores, dns)
    outputs = stack_outputs(stack, context, storage, registry, mirror, data_stores, dns, alarms)
    define_backup_jobs(
        config,
        stack,
        role_arns={store: role.arn for store, role in storage.job_roles.items()},
        outputs=outputs,
        provider=cluster,
    )
    for output_name, value in outputs.items():
        pulumi.export(output_name, value)
    return outputs
