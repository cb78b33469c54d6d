"""Compose the components for one stack and export exactly the ``StackOutputs`` fields.

prod (role primary): keys, vault, audit and access-log buckets, the replication to the dr vault,
the GCS mirror and the container registry with its replication; the data stores' primaries (Aurora
global database, MSK, ElastiCache global datastore), AWS Backup, the DNS zone with its health
checks and PRIMARY records, budgets. dr: the same regional pieces with the replica key, the data
stores' secondaries, the MSK Replicator, the failover switches and SECONDARY records, reading prod
through a StackReference and never writing to the primary region. Both: the data-store key, the
alert topic, the CloudWatch alarms, the Prometheus rules and the Grafana dashboard.
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_gcp as gcp

from components import failover_naming, naming
from components.access_logs import AccessLogBucket, AccessLogBucketArgs
from components.alarms import AlertTopic, AlertTopicArgs
from components.audit_bucket import AuditBucket, AuditBucketArgs
from components.aws_backup import AwsBackupRole, AwsBackupRoleArgs
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
from stackmodels import StackConfig, StackOutputs
from stackmodels.config import RetentionClass, Role

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
    if config.audit_data_class is not None:
        return config.retention_of(config.audit_data_class)
    if "audit" in config.retention_classes:
        return config.retention_classes["audit"]
    return max(config.retention_classes.values(), key=lambda r: r.days)


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
) -> standby.Standbys:
    """The data-store key and alert topic, then the data stores, their standbys and backups."""
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
    stack.data_key_arn = key.arn
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
    stack.topic_arn = topic.arn
    standbys = standby.Standbys()
    standby.define_aurora(stack, standbys)
    standby.define_msk(stack, standbys)
    standby.define_elasticache(stack, standbys)
    standby.define_timestream(stack, standbys)
    standby.define_aws_backup(stack, standbys, backup_role.arn)
    return standbys


def define_stack(config: StackConfig, stack: str) -> dict[str, Any]:
    """Declare the stack's resources; export and return the ``StackOutputs`` values."""
    primary = config.role is Role.PRIMARY
    stack_role = "primary" if primary else "dr"
    region, peer = config.region, config.peer_region
    platform = config.platform

    aws_provider = regional_aws_provider(region)
    opts = pulumi.ResourceOptions(provider=aws_provider)
    invoke = pulumi.InvokeOptions(provider=aws_provider)
    account = aws.get_caller_identity(opts=invoke).account_id
    partition = aws.get_partition(opts=invoke).partition

    def role_arn(name: str) -> str:
        return naming.iam_role_arn(partition, account, name)

    vault_name = naming.vault_bucket_name(platform, account, region)
    vault_arn = naming.s3_arn(partition, vault_name)
    common_tags = {"trading-dr:platform": platform, "trading-dr:stack-role": stack_role}

    logs = AccessLogBucket(
        "access-logs",
        AccessLogBucketArgs(
            platform=platform,
            stack_role=stack_role,
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
            tags=common_tags,
        ),
        opts,
    )
    # The backup CronJobs' roles exist before the key: its policy names every user.
    job_roles = define_backup_job_roles(
        config, account=account, partition=partition, vault_arn=vault_arn, provider=aws_provider
    )
    operators = [role_arn(name) for name in config.access.operators]
    key_users: list[pulumi.Input[str]] = [writer.arn]
    key_users += [role.arn for role in job_roles.values()]
    key_users += operators
    key_common: dict[str, Any] = {
        "platform": platform,
        "region": region,
        "account_id": account,
        "administrator_arns": [role_arn(name) for name in config.access.administrators],
        "user_arns": key_users,
        # The Kubernetes-state backup seals Secrets with a data key of its own; restores (the
        # operators) open them. Both stacks: a failed-over dr seals with the replica key.
        # Operators seal too: ``invoke backup.store app-state`` on demand runs as an operator.
        "secret_sealer_arns": [
            *(role.arn for role in job_roles.values() if role.seals_secrets),
            *operators,
        ],
        "secret_opener_arns": operators,
        "break_glass_arn": role_arn(config.access.break_glass),
        "tags": common_tags,
    }

    prod: pulumi.StackReference | None = None
    replication_out: pulumi.Input[Any]
    if primary:
        dr_vault_name = naming.vault_bucket_name(platform, account, peer)
        replication_role = ReplicationRole(
            "replication-role",
            ReplicationRoleArgs(
                role_name=naming.replication_role_name(platform, region),
                account_id=account,
                source_bucket_arn=vault_arn,
                destination_bucket_arn=naming.s3_arn(partition, dr_vault_name),
                tags=common_tags,
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
        assert config.primary_stack is not None  # StackConfig requires it for a dr stack
        prod = pulumi.StackReference(_stack_reference_name(config.primary_stack))
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
            stack_role=stack_role,
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
            stack_role=stack_role,
            bucket_name=naming.audit_bucket_name(platform, account, region),
            kms_key_arn=key.arn,
            access_log_bucket=logs.bucket_name,
            lock_mode="COMPLIANCE" if journal.object_lock.value == "compliance" else "GOVERNANCE",
            retention_days=journal.days,
        ),
        opts,
    )
    if primary and config.replicate_vault:
        VaultReplication(
            "vault-replication",
            VaultReplicationArgs(
                source_bucket=vault.bucket_name,
                destination_bucket_arn=naming.s3_arn(partition, dr_vault_name),
                destination_key_arn=dr_key_arn,
                role_arn=replication_role.arn,
                replication_time_minutes=REPLICATION_TIME_MINUTES,
            ),
            pulumi.ResourceOptions(provider=aws_provider, depends_on=[vault]),
        )
    registry = ContainerRegistry(
        "ecr",
        ContainerRegistryArgs(
            account_id=account,
            repositories=config.ecr_repositories,
            replicate_to_regions=[peer] if primary else [],
            tags=common_tags,
        ),
        opts,
    )

    mirror_outputs: dict[str, pulumi.Input[Any]]
    if primary:
        gcp_provider = gcp.Provider(f"gcp-{config.gcp.project}", project=config.gcp.project)
        mirror = GcsMirror(
            "gcs-mirror",
            GcsMirrorArgs(
                platform=platform,
                project=config.gcp.project,
                location=config.gcp.location,
                bucket_name=f"{config.gcp.project}-backup-mirror",
                writer_account_id=f"{platform}-backup-writer",
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
        mirror_outputs = {
            "gcs_mirror_bucket": mirror.bucket_name,
            "gcs_mirror_key": mirror.crypto_key_id,
            "gcs_writer_service_account": mirror.writer_email,
        }
    else:
        assert prod is not None
        mirror_outputs = {
            "gcs_mirror_bucket": prod.require_output("gcs_mirror_bucket"),
            "gcs_mirror_key": prod.get_output("gcs_mirror_key"),
            "gcs_writer_service_account": prod.get_output("gcs_writer_service_account"),
        }

    stack_context = standby.Stack(
        config=config,
        provider=aws_provider,
        account=account,
        partition=partition,
        tags=common_tags,
        prod=prod,
    )
    data_stores = define_data_stores(
        stack_context,
        administrator_arns=[role_arn(name) for name in config.access.administrators],
        operator_arns=[role_arn(name) for name in config.access.operators],
        break_glass_arn=role_arn(config.access.break_glass),
    )
    switch_services = standby.define_dns(stack_context, data_stores)
    vault_source = (
        (vault_name, naming.vault_bucket_name(platform, account, peer))
        if primary and config.replicate_vault
        else None
    )
    alarms = monitoring.define_alarms(
        stack_context,
        data_stores,
        switch_services=switch_services,
        vault_replication=vault_source,
    )
    monitoring.define_budgets(stack_context)
    # the one provider of this region's cluster: the backup CronJobs take it too
    cluster = kubernetes_provider(config)
    monitoring.define_kubernetes_monitoring(stack_context, cluster)
    assert stack_context.topic_arn is not None
    peer_topic: pulumi.Input[str | None] = (
        failover_naming.alert_topic_arn(partition, peer, account, platform)
        if primary
        else stack_context.prod_value("alerts_topic_arn")
    )

    this_vault = _bucket(vault.bucket_name, vault.arn, region)
    outputs: dict[str, Any] = {
        "stack": stack,
        "role": config.role.value,
        "region": region,
        "platform": platform,
        "backup_vault": this_vault,
        "vault_key_arn": key.arn,
        "audit_bucket": _bucket(audit.bucket_name, audit.arn, region),
        "k8s_namespace": config.kubernetes.namespace,
        "k8s_backup_namespace": config.kubernetes.backup_namespace,
        "stores": data_stores.stores,
        "aws_endpoint_url": None,
        "gcs_endpoint_url": None,
        "backup_vaults": {region: this_vault, peer: peer_vault},
        "vault_key_arns": {region: key.arn, peer: peer_key_arn},
        "vault_replication": replication_out,
        "access_log_bucket": _bucket(logs.bucket_name, logs.arn, region),
        "backup_writer_role_arn": writer.arn,
        "ecr_repositories": registry.repository_urls,
        **mirror_outputs,
        "aurora": data_stores.outputs.get("aurora"),
        "msk": data_stores.outputs.get("msk"),
        "elasticache": data_stores.outputs.get("elasticache"),
        "dns": data_stores.outputs.get("dns"),
        "aws_backup": data_stores.outputs.get("aws_backup"),
        "alerts_topic_arn": stack_context.topic_arn,
        "alerts_topic_arns": {region: stack_context.topic_arn, peer: peer_topic},
        "alarms": alarms,
    }
    missing = set(StackOutputs.output_names()) ^ set(outputs)
    if missing:
        raise AssertionError(f"exports and StackOutputs fields differ: {sorted(missing)}")
    define_backup_jobs(
        config,
        stack,
        role_arns={store: role.arn for store, role in job_roles.items()},
        outputs=outputs,
        provider=cluster,
    )
    for output_name, value in outputs.items():
        pulumi.export(output_name, value)
    return outputs
