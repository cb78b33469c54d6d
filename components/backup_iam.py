"""The IAM role of one store's backup CronJob (IRSA): it writes its store's prefix, nothing else.

The pod's service account token (audience ``sts.amazonaws.com``) is exchanged for this role, and
the trust policy accepts exactly one ``system:serviceaccount:<namespace>:<name>`` of one cluster's
OIDC provider. What the role may do is what one backup run does, no more:

- write objects under ``<data class>/<store>/`` of the vault, with their Object Lock
  (``PutObjectRetention``), abort and inspect its own multipart uploads;
- read back its own store's objects (an incremental Kafka backup continues from the previous
  manifest): data it can read from the store itself anyway;
- create and read its store's lease (``leases/backup/<store>/``: one run at a time,
  ``drkit.lease``) and its catalog entries and day checkpoints (``catalog/<store>/``,
  ``drkit.catalog``), locked like the rest; never delete them (``run_prefixes``);
- list those three prefixes only (``s3:prefix``), and list in-flight multipart uploads, which the
  engine does at start to abort the uploads of a killed run (IAM has no prefix condition for that
  action; it shows upload key names, never data);
- use the vault key only through S3 in the region, only for this vault
  (``kms:EncryptionContext:aws:s3:arn``): ``GenerateDataKey`` for each object and ``Decrypt``,
  which S3 needs for every multipart upload under SSE-KMS and to read its own objects back;
- for a store that seals Secrets (kind ``kubernetes``, ``seals_secrets``): call KMS
  ``GenerateDataKey`` directly, once per backup, only with the encryption context
  ``drkit:purpose`` = ``kubernetes-secrets`` and ``drkit:backup`` under its own prefix
  (``stackmodels.sealing``). Never ``Decrypt``: the backup keeps only the encrypted data key and
  does not open it again (``drkit.backup.kubernetes``); the restore runs as an operator;
- for a store backed by MSK with IAM authentication (``kafka``): connect to and describe its
  cluster, describe, read and read the dynamic configuration of the store's own topics only, and
  describe the backup's throwaway consumer groups (``stackmodels.kafka_access``); no write, no
  group of the applications, no other topic;
- for a store served by ElastiCache (``elasticache``): snapshot its own replication group, export
  and delete its own ``drkit-*`` snapshots (``drkit.backup.redis.ElastiCacheHandler``) to the
  region's export staging bucket (``components.cache_export``, which grants ElastiCache), and
  there list, read and delete what the export wrote under the store's prefix, once it is streamed
  into the vault. ``CopySnapshot`` also needs the caller to have ``s3:ListAllMyBuckets`` and
  ``s3:GetBucketLocation`` on ``*`` (ElastiCache API permissions reference); they show bucket
  names and regions, never data;
- put metrics in the ``TradingDR/Backups`` CloudWatch namespace only;
- journal its runs: create the audit events of ``drkit.audit`` under ``events/`` of the region's
  audit bucket, with their Object Lock (``PutObjectRetention``), the vault key through S3 for
  that bucket only; never read, delete or reconfigure anything there.

It can neither read a backup nor delete one (the
engine's best-effort clean-up of a failed run's objects is denied and logged; the vault's
lifecycle handles what is left), nor touch the bucket's configuration: an explicit deny keeps it
so even if a broader policy is attached later. Restores use the operators' roles, never this one.

The policy names no KMS key ARN: the vault key's policy names these roles (it has no account-root
delegation), and the roles must exist before that policy does. So the IAM side bounds KMS use by
region, service and encryption context, and the key policy is what grants it.
"""

from __future__ import annotations

from typing import Any, Self

import pulumi
from pydantic import Field, model_validator

from components._common import (
    PACKAGE,
    ComponentArgs,
    S3BucketArnInput,
    policy_document,
    require_provider,
    to_json,
)
from components.backup_vault import CATALOG_PREFIX, LEASE_PREFIX
from components.iam import iam_role, inline_policy
from stackmodels.kafka_access import READER_GROUP_PREFIX
from stackmodels.sealing import (
    BACKUP_CONTEXT_KEY,
    KUBERNETES_SECRETS_PURPOSE,
    PURPOSE_CONTEXT_KEY,
    condition_key,
)

METRICS_NAMESPACE = "TradingDR/Backups"
"""drkit.backup.metrics.CLOUDWATCH_NAMESPACE (components never import the ops package)."""
STS_AUDIENCE = "sts.amazonaws.com"
AUDIT_EVENTS_PREFIX = "events/"
"""drkit.audit.PREFIX: where each run's audit events go."""

WRITE_ACTIONS = [
    "s3:AbortMultipartUpload",
    "s3:ListMultipartUploadParts",
    "s3:PutObject",
    "s3:PutObjectRetention",
]
KMS_ACTIONS = ["kms:Decrypt", "kms:GenerateDataKey"]
SEAL_SECRETS_ACTIONS = ["kms:GenerateDataKey"]
WRAP_SECRETS_ACTIONS = ["kms:Encrypt"]
DENIED_ACTIONS = [
    "s3:BypassGovernanceRetention",
    "s3:Delete*",
    "s3:PutBucket*",
    "s3:PutEncryptionConfiguration",
    "s3:PutLifecycleConfiguration",
    "s3:PutReplicationConfiguration",
]

_K8S_NAME = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
_SLUG = r"^[a-z][a-z0-9-]{1,40}[a-z0-9]$"


class KafkaReadAccess(ComponentArgs):
    """An MSK cluster (by name: its ARN ends in a UUID only AWS knows) and the topics to read."""

    cluster_name: str = Field(pattern=r"^[a-zA-Z0-9][a-zA-Z0-9-]{0,63}$")
    topics: list[str] = Field(min_length=1)


class ElastiCacheSnapshotAccess(ComponentArgs):
    """The replication group whose snapshots the backup takes, and the staging bucket it exports
    them to before streaming them into the vault."""

    replication_group_id: str = Field(pattern=r"^[a-z][a-z0-9-]{0,39}$")
    export_bucket_arn: str = Field(pattern=r"^arn:aws[a-z-]*:s3:::[a-z0-9.-]+$")
    snapshot_prefix: str = Field(default="drkit-", pattern=r"^[a-z][a-z0-9-]*$")
    """``drkit.backup.redis.snapshot_name_for`` names every snapshot so."""


class IsolatedVaultGrant(ComponentArgs):
    """The isolated backup account's vault (stack ``vault``), where the job creates its third
    copy: ``s3:PutObject`` under its own prefix and ``kms:GenerateDataKey`` / ``kms:Decrypt``
    (a multipart upload needs both) on that vault's key through S3 in that vault's region for
    that bucket only, nothing else there (the vault's own policies allow no more to another
    account: ``components.isolated_vault``)."""

    bucket_arn: Any
    key_arn: Any
    region: Any
    """Outputs of the StackReference to the vault stack (or plain strings)."""


class BackupJobRoleArgs(ComponentArgs):
    role_name: str = Field(pattern=r"^[A-Za-z0-9+=,.@_-]{1,64}$")
    oidc_provider_arn: str = Field(
        pattern=r"^arn:aws[a-z-]*:iam::\d{12}:oidc-provider/[a-z0-9.-]+(?:/[A-Za-z0-9._-]+)*$"
    )
    oidc_issuer_url: str = Field(pattern=r"^https://[a-z0-9.-]+(?:/[A-Za-z0-9._-]+)*$")
    namespace: str = Field(pattern=_K8S_NAME)
    service_account: str = Field(pattern=_K8S_NAME)
    vault_arn: S3BucketArnInput
    audit_bucket_arn: str | None = Field(default=None, pattern=r"^arn:aws[a-z-]*:s3:::[a-z0-9.-]+$")
    """The region's audit bucket, where the job journals its runs (``drkit.audit``)."""
    data_class: str = Field(pattern=_SLUG)
    store: str = Field(pattern=_SLUG)
    region: str = Field(pattern=r"^[a-z]{2}(-gov)?-[a-z]+-\d$")
    account_id: str = Field(pattern=r"^\d{12}$")
    partition: str = Field(default="aws", pattern=r"^aws[a-z-]*$")
    seals_secrets: bool = False
    """The store's backup seals Kubernetes Secrets (kind ``kubernetes``): it gets a KMS data key
    directly, not through S3 (module docstring)."""
    kafka: KafkaReadAccess | None = None
    """The MSK cluster and topics the store's backup reads with IAM authentication."""
    elasticache: ElastiCacheSnapshotAccess | None = None
    """The ElastiCache replication group the store's backup snapshots and exports."""
    isolated: IsolatedVaultGrant | None = None
    """The isolated vault the job writes its third copy to; None: none (no statement)."""
    tags: dict[str, str] = Field(default_factory=dict)

    @property
    def issuer(self) -> str:
        """The issuer as IAM condition keys spell it: host and path, no scheme."""
        return self.oidc_issuer_url.removeprefix("https://")

    @property
    def subject(self) -> str:
        return f"system:serviceaccount:{self.namespace}:{self.service_account}"

    @property
    def prefix(self) -> str:
        return f"{self.data_class}/{self.store}/"

    @model_validator(mode="after")
    def _provider_matches_issuer(self) -> Self:
        if not self.oidc_provider_arn.endswith(f":oidc-provider/{self.issuer}"):
            raise ValueError(
                f"oidc_provider_arn {self.oidc_provider_arn!r} is not the provider of "
                f"oidc_issuer_url {self.oidc_issuer_url!r}"
            )
        return self


def trust_policy(args: BackupJobRoleArgs) -> dict[str, Any]:
    """Only this service account of this cluster, only with an STS-audience token."""
    return policy_document(
        [
            {
                "Sid": "BackupServiceAccount",
                "Effect": "Allow",
                "Principal": {"Federated": args.oidc_provider_arn},
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {
                    "StringEquals": {
                        f"{args.issuer}:sub": args.subject,
                        f"{args.issuer}:aud": STS_AUDIENCE,
                    }
                },
            }
        ]
    )


def kafka_statements(args: BackupJobRoleArgs) -> list[dict[str, Any]]:
    """MSK IAM access control: what ``drkit.backup.kafka`` does, on this store's topics only."""
    if args.kafka is None:
        return []
    base = f"arn:{args.partition}:kafka:{args.region}:{args.account_id}"
    cluster = args.kafka.cluster_name
    return [
        {
            "Sid": "KafkaConnect",
            "Effect": "Allow",
            "Action": ["kafka-cluster:Connect", "kafka-cluster:DescribeCluster"],
            "Resource": f"{base}:cluster/{cluster}/*",
        },
        {
            "Sid": "KafkaReadOwnTopics",
            "Effect": "Allow",
            "Action": [
                "kafka-cluster:DescribeTopic",
                "kafka-cluster:DescribeTopicDynamicConfiguration",
                "kafka-cluster:ReadData",
            ],
            "Resource": [
                f"{base}:topic/{cluster}/*/{topic}" for topic in sorted(args.kafka.topics)
            ],
        },
        {
            "Sid": "KafkaBackupReaderGroups",
            "Effect": "Allow",
            "Action": ["kafka-cluster:DescribeGroup"],
            "Resource": f"{base}:group/{cluster}/*/{READER_GROUP_PREFIX}*",
        },
    ]


def elasticache_statements(vault_arn: str, args: BackupJobRoleArgs) -> list[dict[str, Any]]:
    """Snapshot, export and delete the store's own snapshots; list, read and delete what the
    export staged under the store's prefix."""
    if args.elasticache is None:
        return []
    base = f"arn:{args.partition}:elasticache:{args.region}:{args.account_id}"
    group = f"{base}:replicationgroup:{args.elasticache.replication_group_id}"
    snapshots = f"{base}:snapshot:{args.elasticache.snapshot_prefix}*"
    staging = args.elasticache.export_bucket_arn
    return [
        {
            "Sid": "SnapshotOwnGroup",
            "Effect": "Allow",
            "Action": ["elasticache:CreateSnapshot"],
            "Resource": [group, snapshots],
        },
        {
            "Sid": "ExportAndDeleteOwnSnapshots",
            "Effect": "Allow",
            "Action": ["elasticache:CopySnapshot", "elasticache:DeleteSnapshot"],
            "Resource": snapshots,
        },
        {
            "Sid": "WatchSnapshots",
            "Effect": "Allow",
            "Action": ["elasticache:DescribeSnapshots"],
            "Resource": "*",
        },
        {
            "Sid": "ExportFindsItsBucket",
            "Effect": "Allow",
            "Action": ["s3:GetBucketLocation", "s3:ListAllMyBuckets"],
            "Resource": "*",
        },
        {
            "Sid": "ListOwnStagedExports",
            "Effect": "Allow",
            "Action": "s3:ListBucket",
            "Resource": staging,
            "Condition": {"StringLike": {"s3:prefix": [f"{args.prefix}*"]}},
        },
        {
            "Sid": "ReadAndClearOwnStagedExports",
            "Effect": "Allow",
            "Action": ["s3:GetObject", "s3:DeleteObject"],
            "Resource": f"{staging}/{args.prefix}*",
        },
    ]


def audit_statements(args: BackupJobRoleArgs) -> list[dict[str, Any]]:
    """Create audit events, locked; nothing else in the audit bucket."""
    if args.audit_bucket_arn is None:
        return []
    audit = args.audit_bucket_arn
    return [
        {
            "Sid": "JournalRuns",
            "Effect": "Allow",
            "Action": ["s3:PutObject", "s3:PutObjectRetention"],
            "Resource": f"{audit}/{AUDIT_EVENTS_PREFIX}*",
        },
        {
            "Sid": "NeverEraseTheJournal",
            "Effect": "Deny",
            "Action": DENIED_ACTIONS,
            "Resource": [audit, f"{audit}/*"],
        },
    ]


def run_prefixes(store: str) -> list[str]:
    """Where a store's backup runs coordinate and record themselves in the vault, beside its
    data prefix: its lease (``leases/backup/<store>/``, drkit.lease) and its catalog
    (``catalog/<store>/``, drkit.catalog)."""
    return [f"{LEASE_PREFIX}backup/{store}/", f"{CATALOG_PREFIX}{store}/"]


def isolated_statements(
    args: BackupJobRoleArgs, bucket_arn: str | None, key_arn: str | None, region: str | None
) -> list[dict[str, Any]]:
    """Create the own prefix's objects in the isolated vault, with its key through S3; a store
    that seals Secrets also wraps its data key under that key (Encrypt, that purpose only)."""
    if bucket_arn is None or key_arn is None or region is None:
        return []
    statements: list[dict[str, Any]] = [
        {
            # Its objects and its catalog entries (create-only: no read, no list there).
            "Sid": "IsolatedVaultCreateOwnPrefix",
            "Effect": "Allow",
            "Action": "s3:PutObject",
            "Resource": [
                f"{bucket_arn}/{args.prefix}*",
                f"{bucket_arn}/{CATALOG_PREFIX}{args.store}/*",
            ],
        },
        {
            "Sid": "IsolatedVaultKeyThroughS3",
            "Effect": "Allow",
            "Action": KMS_ACTIONS,
            "Resource": key_arn,
            "Condition": {
                "StringEquals": {"kms:ViaService": f"s3.{region}.amazonaws.com"},
                "StringLike": {"kms:EncryptionContext:aws:s3:arn": [bucket_arn, f"{bucket_arn}/*"]},
            },
        },
    ]
    if args.seals_secrets:
        statements.append(
            {
                # The Secrets data key, wrapped under the isolated vault's key too, so the
                # isolated copy opens without this account's key (drkit.backup.kubernetes).
                "Sid": "IsolatedVaultWrapsSecretsKey",
                "Effect": "Allow",
                "Action": WRAP_SECRETS_ACTIONS,
                "Resource": key_arn,
                "Condition": {
                    "StringEquals": {
                        condition_key(PURPOSE_CONTEXT_KEY): KUBERNETES_SECRETS_PURPOSE
                    },
                    "StringLike": {condition_key(BACKUP_CONTEXT_KEY): f"{args.prefix}*"},
                },
            }
        )
    return statements


def job_policy(
    vault_arn: str,
    args: BackupJobRoleArgs,
    isolated: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    own = f"{vault_arn}/{args.prefix}*"
    runs = [f"{vault_arn}/{prefix}*" for prefix in run_prefixes(args.store)]
    audit = [args.audit_bucket_arn] if args.audit_bucket_arn else []
    keys = f"arn:{args.partition}:kms:{args.region}:{args.account_id}:key/*"
    sealing: list[dict[str, Any]] = []
    if args.seals_secrets:
        sealing.append(
            {
                "Sid": "SealKubernetesSecrets",
                "Effect": "Allow",
                "Action": SEAL_SECRETS_ACTIONS,
                "Resource": keys,
                "Condition": {
                    "StringEquals": {
                        condition_key(PURPOSE_CONTEXT_KEY): KUBERNETES_SECRETS_PURPOSE
                    },
                    # The backup's prefix (drkit.backup.manifest.backup_prefix) starts with the
                    # store's own: a data key for another store's backups is refused.
                    "StringLike": {condition_key(BACKUP_CONTEXT_KEY): f"{args.prefix}*"},
                },
            }
        )
    return policy_document(
        [
            *kafka_statements(args),
            *elasticache_statements(vault_arn, args),
            {
                "Sid": "WriteOwnPrefix",
                "Effect": "Allow",
                "Action": WRITE_ACTIONS,
                "Resource": own,
            },
            {
                # The previous backup's manifest, which an incremental (Kafka) continues from.
                "Sid": "ReadOwnPrefix",
                "Effect": "Allow",
                "Action": "s3:GetObject",
                "Resource": own,
            },
            {
                # The store's lease (one run at a time) and its catalog entries and day
                # checkpoints: create and read, never delete (drkit.lease, drkit.catalog).
                "Sid": "LeaseAndCatalogOwnStore",
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:PutObject", "s3:PutObjectRetention"],
                "Resource": runs,
            },
            {
                "Sid": "ListOwnPrefix",
                "Effect": "Allow",
                "Action": "s3:ListBucket",
                "Resource": vault_arn,
                "Condition": {
                    "StringLike": {
                        "s3:prefix": [
                            f"{args.prefix}*",
                            *(f"{p}*" for p in run_prefixes(args.store)),
                        ]
                    }
                },
            },
            {
                "Sid": "FindUploadsOfKilledRuns",
                "Effect": "Allow",
                "Action": "s3:ListBucketMultipartUploads",
                "Resource": vault_arn,
            },
            {
                "Sid": "VaultKeyThroughS3",
                "Effect": "Allow",
                "Action": KMS_ACTIONS,
                "Resource": keys,
                "Condition": {
                    "StringEquals": {"kms:ViaService": f"s3.{args.region}.amazonaws.com"},
                    # S3 Bucket Keys (the vault's setting) use the bucket ARN as the context;
                    # without them it is the object ARN, which must be under the own prefix.
                    "StringLike": {
                        "kms:EncryptionContext:aws:s3:arn": [vault_arn, own, *runs, *audit]
                    },
                },
            },
            *sealing,
            *(isolated or []),
            *audit_statements(args),
            {
                "Sid": "BackupMetrics",
                "Effect": "Allow",
                "Action": "cloudwatch:PutMetricData",
                "Resource": "*",
                "Condition": {"StringEquals": {"cloudwatch:namespace": METRICS_NAMESPACE}},
            },
            {
                "Sid": "NeverDeleteOrReconfigure",
                "Effect": "Deny",
                "Action": DENIED_ACTIONS,
                "Resource": [vault_arn, f"{vault_arn}/*"],
            },
        ]
    )


class BackupJobRole(pulumi.ComponentResource):
    """The role and its inline policy (see the module docstring for what it may do)."""

    arn: pulumi.Output[str]
    name: pulumi.Output[str]
    seals_secrets: bool
    """The vault key's policy must name this role in ``VaultKeyArgs.secret_sealer_arns``."""

    def __init__(
        self, name: str, args: BackupJobRoleArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(f"{PACKAGE}:security:BackupJobRole", name, None, opts)
        provider = require_provider(opts, "BackupJobRole")
        self.role = iam_role(
            self,
            name,
            provider,
            args,
            description=f"Backup CronJob of {args.store}: writes {args.prefix} of the vault only",
            assume_role_policy=to_json(trust_policy(args)),
            max_session_duration=3600,
        )
        grant = args.isolated
        policy = pulumi.Output.all(
            args.vault_arn,
            grant.bucket_arn if grant else None,
            grant.key_arn if grant else None,
            grant.region if grant else None,
        ).apply(lambda v: to_json(job_policy(v[0], args, isolated_statements(args, *v[1:]))))
        self.policy = inline_policy(self, name, provider, self.role, policy)
        self.arn = self.role.arn
        self.name = self.role.name
        self.seals_secrets = args.seals_secrets
        self.register_outputs({"arn": self.arn, "name": self.name})
