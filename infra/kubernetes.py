"""The backup CronJobs of a stack: an IRSA role per store (AWS) and the Kubernetes objects.

Two calls, because of the vault key: its policy names every role that may use it (it has no
account-root delegation) and KMS rejects a policy naming a role that does not exist yet, so

1. ``define_backup_job_roles`` runs *before* the ``VaultKey`` and its ARNs join the key's
   ``user_arns``;
2. ``define_backup_jobs`` runs once the stack outputs are known (the pods read them from a
   ConfigMap) and creates the namespace, the ConfigMap, and per store a ServiceAccount bound to
   its role and a CronJob; a store of kind ``kubernetes`` also gets read access (RBAC) to the
   application namespace ``kubernetes.namespace``, its namespace object and the CRDs.

The CronJobs exist in both stacks but run only where the stores are primary: in the other stack
they are suspended (``StackConfig.primary_region``), so writing a failover back to config
(``active_region``) and running ``pulumi up`` is what moves the backups to the dr region.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s
import yaml

from components import naming
from components.backup_cronjobs import (
    BackupCronJobs,
    BackupCronJobsArgs,
    StoreJob,
    cronjob_name,
    service_account_name,
)
from components.backup_iam import (
    BackupJobRole,
    BackupJobRoleArgs,
    ElastiCacheSnapshotAccess,
    IsolatedVaultGrant,
    KafkaReadAccess,
)
from components.failover_naming import elasticache_group_id, msk_cluster_name
from stackmodels import StackConfig
from stackmodels.config import PROJECT, StoreKind
from stackmodels.outputs import SELF_HOSTED, SERVICES_WITHOUT_CREDENTIALS, StoreService

GCS_CREDENTIALS_SECRET = "drkit-gcs-writer"
"""Secret (key ``credentials.json``) with the mirror writer's Google credentials: a Workload
Identity Federation config or a key of ``<platform>-backup-writer``; made outside Pulumi."""


def needs_credentials(
    config: StackConfig, store: str, outputs: Mapping[str, pulumi.Input[Any]]
) -> bool:
    """Whether the store's backup reads a user and password, by the service the stack exports
    for it (``SERVICES_WITHOUT_CREDENTIALS``); no Secret otherwise, since a missing one keeps the
    pod from starting. A store exported without a service is its kind's self-hosted server."""
    exported = outputs.get("stores")
    entry = exported.get(store) if isinstance(exported, Mapping) else None
    service = entry.get("service") if isinstance(entry, Mapping) else None
    if not isinstance(service, str):
        service = SELF_HOSTED[config.stores[store].kind].value
    return StoreService(service) not in SERVICES_WITHOUT_CREDENTIALS


STORES_READING_THE_CLUSTER = frozenset({StoreKind.KUBERNETES})
"""Their service account may read the application namespace (``kubernetes.namespace``), its
namespace object and the CRDs (RBAC in components/backup_cronjobs.py)."""
STORES_SEALING_SECRETS = frozenset({StoreKind.KUBERNETES})
"""Their role gets a KMS data key directly to seal Secrets, and the vault key names it as a
sealer (``BackupJobRole.seals_secrets``, ``VaultKeyArgs.secret_sealer_arns``)."""
_ECR_REGION = re.compile(r"^\d{12}\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com/")
_EKS_ISSUER_REGION = re.compile(r"^https://oidc\.eks\.([a-z0-9-]+)\.amazonaws\.com/")


class BackupJobsConfigError(ValueError):
    """The stack config lacks what the backup CronJobs need; the message names the key."""


def credentials_secret_name(store: str) -> str:
    """``<store>-backup-credentials``: keys ``username`` and ``password``."""
    return f"{store}-backup-credentials"


def backup_job_role_name(platform: str, store: str, region: str) -> str:
    name = f"{platform}-backup-{store}-{region}"
    if len(name) > 64:
        raise BackupJobsConfigError(
            f"IAM role name {name!r} is longer than 64 characters: shorten store {store!r}"
        )
    return name


def _key(field: str) -> str:
    return f"{PROJECT}:kubernetes.{field}"


def _require(value: str | None, field: str, why: str) -> str:
    if value is None:
        raise BackupJobsConfigError(f"{_key(field)} is required: {why}")
    return value


def _check_region(value: str, pattern: re.Pattern[str], field: str, region: str) -> None:
    """A dr stack must not lean on the primary region: its cluster, its registry replica."""
    match = pattern.match(value)
    if match is not None and match.group(1) != region:
        raise BackupJobsConfigError(
            f"{_key(field)} {value!r} is in {match.group(1)}, but this stack runs in {region}: "
            "use this region's cluster and ECR (images replicate to the dr region)"
        )


def kafka_read_access(config: StackConfig, store: str) -> KafkaReadAccess | None:
    """The MSK cluster (IAM authentication) behind a kafka store, and the topics it backs up."""
    if config.msk is None or config.msk.store != store:
        return None
    return KafkaReadAccess(
        cluster_name=msk_cluster_name(config.platform, store, config.region),
        topics=list(config.stores[store].topics),
    )


def elasticache_access(
    config: StackConfig, store: str, account: str, partition: str
) -> ElastiCacheSnapshotAccess | None:
    """The ElastiCache replication group behind a redis store, whose snapshots it exports, and
    the region's staging bucket the export goes to (``components.cache_export``)."""
    if config.elasticache is None or config.elasticache.store != store:
        return None
    bucket = naming.cache_export_bucket_name(config.platform, account, config.region)
    return ElastiCacheSnapshotAccess(
        replication_group_id=elasticache_group_id(config.platform, store, config.region),
        export_bucket_arn=naming.s3_arn(partition, bucket),
    )


def define_backup_job_roles(
    config: StackConfig,
    *,
    account: str,
    partition: str,
    vault_arn: pulumi.Input[str],
    audit_arn: str | None = None,
    provider: aws.Provider,
    isolated: IsolatedVaultGrant | None = None,
) -> dict[str, BackupJobRole]:
    """One IRSA role per store, by store name. Create before the vault key; see the docstring."""
    kube = config.kubernetes
    why = "the backup CronJobs' IRSA roles trust the cluster's OIDC provider"
    provider_arn = _require(kube.oidc_provider_arn, "oidc_provider_arn", why)
    issuer_url = _require(kube.oidc_issuer_url, "oidc_issuer_url", why)
    _check_region(issuer_url, _EKS_ISSUER_REGION, "oidc_issuer_url", config.region)
    roles: dict[str, BackupJobRole] = {}
    for store, settings in config.stores.items():
        roles[store] = BackupJobRole(
            f"backup-job-{store}",
            BackupJobRoleArgs(
                role_name=backup_job_role_name(config.platform, store, config.region),
                oidc_provider_arn=provider_arn,
                oidc_issuer_url=issuer_url,
                namespace=kube.backup_namespace,
                service_account=service_account_name(store),
                vault_arn=vault_arn,
                audit_bucket_arn=audit_arn,
                data_class=settings.data_class,
                store=store,
                region=config.region,
                account_id=account,
                partition=partition,
                seals_secrets=settings.kind in STORES_SEALING_SECRETS,
                kafka=kafka_read_access(config, store),
                elasticache=elasticache_access(config, store, account, partition),
                isolated=isolated,
                tags={
                    "trading-dr:platform": config.platform,
                    "trading-dr:stack-role": config.role.value,
                    "trading-dr:store": store,
                },
            ),
            pulumi.ResourceOptions(provider=provider),
        )
    return roles


def stack_config_yaml(config: StackConfig) -> str:
    """``Pulumi.<stack>.yaml`` as ``StackConfig.load`` reads it back: the pod's config file."""
    values = config.model_dump(mode="json")
    if values.get("isolated_vault_stack") is None:  # unset: as before the key existed
        values.pop("isolated_vault_stack", None)
    document = {"config": {f"{PROJECT}:{key}": value for key, value in values.items()}}
    header = "# Written by infra/kubernetes.py from the stack's config at deploy time.\n"
    return header + yaml.safe_dump(document, sort_keys=True)


def define_backup_jobs(
    config: StackConfig,
    stack: str,
    *,
    role_arns: Mapping[str, pulumi.Input[str]],
    outputs: Mapping[str, pulumi.Input[Any]],
    provider: k8s.Provider,
) -> dict[str, Any]:
    """The namespace, ConfigMap, ServiceAccounts and CronJobs; returns what to export about them.

    ``role_arns``: the store's IRSA role ARN by store (``define_backup_job_roles``);
    ``outputs``: the stack's ``StackOutputs`` values, as exported.
    """
    kube = config.kubernetes
    image = _require(
        kube.backup_image, "backup_image", "the image the CronJobs run (the repo's Dockerfile)"
    )
    _check_region(image, _ECR_REGION, "backup_image", config.region)
    missing = sorted(set(config.stores) - set(role_arns))
    if missing:
        raise BackupJobsConfigError(f"role_arns: no IRSA role for stores {missing}")
    jobs = [
        StoreJob(
            store=store,
            kind=settings.kind.value,
            data_class=settings.data_class,
            schedule=settings.schedule,
            role_arn=role_arns[store],
            credentials_secret=credentials_secret_name(store)
            if needs_credentials(config, store, outputs)
            else None,
            state_namespace=kube.namespace if settings.kind in STORES_READING_THE_CLUSTER else None,
        )
        for store, settings in config.stores.items()
    ]
    suspend = config.primary_region != config.region
    cronjobs = BackupCronJobs(
        "backup-jobs",
        BackupCronJobsArgs(
            platform=config.platform,
            stack=stack,
            namespace=kube.backup_namespace,
            image=image,
            outputs_json=pulumi.Output.json_dumps(dict(outputs), sort_keys=True, indent=2),
            config_yaml=stack_config_yaml(config),
            pushgateway_url=kube.pushgateway_url,
            cloudwatch=True,
            suspend=suspend,
            gcp_credentials_secret=GCS_CREDENTIALS_SECRET,
            jobs=jobs,
        ),
        pulumi.ResourceOptions(provider=provider),
    )
    namespace = kube.backup_namespace
    return {
        "namespace": cronjobs.namespace_name,
        "cronjobs": {store: f"{namespace}/{cronjob_name(store)}" for store in config.stores},
        "service_accounts": {
            store: f"{namespace}/{service_account_name(store)}" for store in config.stores
        },
        "role_arns": dict(role_arns),
        "suspended": suspend,
    }
