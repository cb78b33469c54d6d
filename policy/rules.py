"""The DR and security rules as pure functions over resources (type, name, urn, props).

pulumi-aws v7 splits a bucket's settings into separate resources, so most rules correlate a bucket
with its ``BucketVersioning``, ``BucketServerSideEncryptionConfiguration``, ... by bucket name (the
``bucket`` property of each, the bucket's own ``bucket``). These rules check that a setting
exists; ``policy.strength`` checks it is strong enough (floors). ``policy.registry`` holds both as
the one rule set that the CrossGuard pack (``policy.pack``) and ``python -m policy check`` run.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

TAG_ROLE = "trading-dr:stack-role"
TAG_PURPOSE = "trading-dr:purpose"
PURPOSE_VAULT = "backup-vault"
PURPOSE_AUDIT = "audit-journal"
PURPOSE_ACCESS_LOGS = "access-logs"
PURPOSE_CACHE_EXPORT = "cache-export-staging"
STAGING_MAX_DAYS = 2
LOCKED_PURPOSES = (PURPOSE_VAULT, PURPOSE_AUDIT)


def _types(name: str, module: str) -> tuple[str, ...]:
    """The v7 type token and its deprecated ``...V2`` alias (so a V2 resource still counts)."""
    lower = name[0].lower() + name[1:]
    return (
        (f"aws:s3/{lower}:{name}", f"aws:s3/{lower}V2:{name}V2")
        if module == "s3"
        else (f"aws:{module}/{lower}:{name}",)
    )


BUCKET = ("aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2")
VERSIONING = _types("BucketVersioning", "s3")
ENCRYPTION = _types("BucketServerSideEncryptionConfiguration", "s3")
PUBLIC_ACCESS_BLOCK = ("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",)
LIFECYCLE = _types("BucketLifecycleConfiguration", "s3")
OBJECT_LOCK = _types("BucketObjectLockConfiguration", "s3")
LOGGING = _types("BucketLogging", "s3")
REPLICATION = ("aws:s3/bucketReplicationConfig:BucketReplicationConfig",)
KMS_KEY = "aws:kms/key:Key"
KMS_REPLICA_KEY = "aws:kms/replicaKey:ReplicaKey"
KMS_KEY_ARN = re.compile(r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/")
AWS_MANAGED_S3_KEY = "alias/aws/s3"


@dataclass(frozen=True)
class Resource:
    """What a rule needs of a resource; built from pulumi_policy's or the test mocks' records."""

    type: str
    name: str
    urn: str
    props: Mapping[str, Any]


@dataclass(frozen=True)
class Violation:
    message: str
    urn: str | None = None
    resource: str | None = None
    """The resource's name; None: the URN's last part, or the stack as a whole."""

    @property
    def subject(self) -> str:
        if self.resource:
            return self.resource
        if self.urn:
            return self.urn.rsplit("::", 1)[-1]
        return "stack"


def _of(resources: Iterable[Resource], types: Sequence[str]) -> list[Resource]:
    return [r for r in resources if r.type in types]


def _bucket_name(bucket: Resource) -> str | None:
    name = bucket.props.get("bucket") or bucket.props.get("id")
    return str(name) if name else None


def _for_bucket(
    resources: Iterable[Resource], types: Sequence[str], bucket: Resource
) -> list[Resource]:
    name = _bucket_name(bucket)
    return [r for r in _of(resources, types) if name is not None and r.props.get("bucket") == name]


def _tags(resource: Resource) -> Mapping[str, Any]:
    tags = resource.props.get("tags") or {}
    return tags if isinstance(tags, Mapping) else {}


def _purpose(bucket: Resource) -> str | None:
    value = _tags(bucket).get(TAG_PURPOSE)
    return str(value) if value is not None else None


def _list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


# ---- every bucket -----------------------------------------------------------------------------


def buckets_versioned(resources: Sequence[Resource]) -> list[Violation]:
    """Every bucket has a BucketVersioning with status Enabled."""
    violations = []
    for bucket in _of(resources, BUCKET):
        configs = _for_bucket(resources, VERSIONING, bucket)
        statuses = [(c.props.get("versioningConfiguration") or {}).get("status") for c in configs]
        if "Enabled" not in statuses:
            violations.append(
                Violation(
                    f"bucket {bucket.name!r} is not versioned: add an aws.s3.BucketVersioning with "
                    f"status Enabled (found {statuses or 'none'})",
                    bucket.urn,
                )
            )
    return violations


def _logging_targets(resources: Sequence[Resource]) -> set[str]:
    return {str(r.props.get("targetBucket")) for r in _of(resources, LOGGING)}


def buckets_encrypted_with_customer_key(resources: Sequence[Resource]) -> list[Violation]:
    """Every bucket encrypts by default with SSE-KMS and a customer-managed key.

    Two exceptions AWS forces: a server access log target (SSE-KMS is not supported there) may
    use SSE-S3 if it is tagged ``trading-dr:purpose=access-logs`` and really is a logging target;
    the ElastiCache export staging bucket (ElastiCache cannot use a customer key) may use SSE-S3
    if it is tagged ``trading-dr:purpose=cache-export-staging`` and everything in it expires
    within ``STAGING_MAX_DAYS``.
    """
    violations = []
    log_targets = _logging_targets(resources)
    for bucket in _of(resources, BUCKET):
        rules = [
            rule
            for config in _for_bucket(resources, ENCRYPTION, bucket)
            for rule in _list(config.props.get("rules"))
        ]
        defaults = [rule.get("applyServerSideEncryptionByDefault") or {} for rule in rules]
        algorithms = {d.get("sseAlgorithm") for d in defaults}
        if (
            _purpose(bucket) == PURPOSE_ACCESS_LOGS
            and algorithms == {"AES256"}
            and _bucket_name(bucket) in log_targets
        ):
            continue
        if (
            _purpose(bucket) == PURPOSE_CACHE_EXPORT
            and algorithms == {"AES256"}
            and _expires_within(resources, bucket, STAGING_MAX_DAYS)
        ):
            continue
        good = [
            d
            for d in defaults
            if d.get("sseAlgorithm") in ("aws:kms", "aws:kms:dsse")
            and isinstance(d.get("kmsMasterKeyId"), str)
            and KMS_KEY_ARN.match(d["kmsMasterKeyId"])
        ]
        if not good:
            found = sorted(str(a) for a in algorithms) or "no encryption configuration"
            violations.append(
                Violation(
                    f"bucket {bucket.name!r} is not encrypted with a customer-managed KMS key "
                    f"(SSE-KMS with a key ARN, not {AWS_MANAGED_S3_KEY!r}); found {found}",
                    bucket.urn,
                )
            )
    return violations


def _expires_within(resources: Sequence[Resource], bucket: Resource, days: int) -> bool:
    """An enabled whole-bucket rule expires objects within ``days`` and noncurrent versions."""
    for config in _for_bucket(resources, LIFECYCLE, bucket):
        for rule in _list(config.props.get("rules")):
            if rule.get("status") != "Enabled" or (rule.get("filter") or {}).get("prefix"):
                continue
            current = [e.get("days") or 0 for e in _list(rule.get("expiration"))]
            noncurrent = [
                e.get("noncurrentDays") or 0 for e in _list(rule.get("noncurrentVersionExpiration"))
            ]
            if any(0 < d <= days for d in current) and any(0 < d <= days for d in noncurrent):
                return True
    return False


def buckets_block_public_access(resources: Sequence[Resource]) -> list[Violation]:
    """Every bucket has a BucketPublicAccessBlock with all four settings true."""
    flags = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
    violations = []
    for bucket in _of(resources, BUCKET):
        blocks = _for_bucket(resources, PUBLIC_ACCESS_BLOCK, bucket)
        if not any(all(b.props.get(flag) is True for flag in flags) for b in blocks):
            violations.append(
                Violation(
                    f"bucket {bucket.name!r} does not block public access: add an "
                    f"aws.s3.BucketPublicAccessBlock with {', '.join(flags)} all true",
                    bucket.urn,
                )
            )
    return violations


# ---- vaults (backup vaults and audit journals) -----------------------------------------------


def _vaults(
    resources: Sequence[Resource], purposes: Sequence[str] = LOCKED_PURPOSES
) -> list[Resource]:
    return [b for b in _of(resources, BUCKET) if _purpose(b) in purposes]


def vaults_object_locked(resources: Sequence[Resource]) -> list[Violation]:
    """Vaults are created with Object Lock and carry a default retention."""
    violations = []
    for bucket in _vaults(resources):
        if bucket.props.get("objectLockEnabled") is not True:
            violations.append(
                Violation(
                    f"vault {bucket.name!r} is not created with object_lock_enabled=True "
                    "(it cannot be turned on later without support)",
                    bucket.urn,
                )
            )
            continue
        retentions = [
            (c.props.get("rule") or {}).get("defaultRetention") or {}
            for c in _for_bucket(resources, OBJECT_LOCK, bucket)
        ]
        if not any(
            r.get("mode") in ("COMPLIANCE", "GOVERNANCE") and (r.get("days") or r.get("years"))
            for r in retentions
        ):
            violations.append(
                Violation(
                    f"vault {bucket.name!r} has no Object Lock default retention: add an "
                    "aws.s3.BucketObjectLockConfiguration with a COMPLIANCE or GOVERNANCE "
                    "default retention",
                    bucket.urn,
                )
            )
    return violations


def vaults_have_lifecycle(resources: Sequence[Resource]) -> list[Violation]:
    """Vaults expire what their retention allows and abort abandoned multipart uploads."""
    violations = []
    for bucket in _vaults(resources):
        rules = [
            rule
            for config in _for_bucket(resources, LIFECYCLE, bucket)
            for rule in _list(config.props.get("rules"))
            if rule.get("status") == "Enabled"
        ]
        expires = any(
            (exp.get("days") or 0) > 0 for rule in rules for exp in _list(rule.get("expiration"))
        )
        aborts = any(
            (abort.get("daysAfterInitiation") or 0) > 0
            for rule in rules
            for abort in _list(rule.get("abortIncompleteMultipartUpload"))
        )
        if not (expires and aborts):
            missing = [
                what
                for what, ok in (
                    ("an expiration in days", expires),
                    ("an abort of incomplete multipart uploads", aborts),
                )
                if not ok
            ]
            violations.append(
                Violation(
                    f"vault {bucket.name!r} lifecycle lacks {' and '.join(missing)}: add an "
                    "aws.s3.BucketLifecycleConfiguration with enabled rules for both",
                    bucket.urn,
                )
            )
    return violations


def primary_vaults_replicate(resources: Sequence[Resource]) -> list[Violation]:
    """A backup vault of a primary stack replicates to another bucket, re-encrypted with KMS."""
    violations = []
    for bucket in _vaults(resources, (PURPOSE_VAULT,)):
        if _tags(bucket).get(TAG_ROLE) != "primary":
            continue
        source_arn = bucket.props.get("arn")
        ok = False
        for config in _for_bucket(resources, REPLICATION, bucket):
            for rule in _list(config.props.get("rules")):
                destination = rule.get("destination") or {}
                encryption = destination.get("encryptionConfiguration") or {}
                if (
                    rule.get("status") == "Enabled"
                    and destination.get("bucket")
                    and destination.get("bucket") != source_arn
                    and encryption.get("replicaKmsKeyId")
                ):
                    ok = True
        if not ok:
            violations.append(
                Violation(
                    f"prod vault {bucket.name!r} does not replicate to the dr vault: add an "
                    "aws.s3.BucketReplicationConfig with an enabled rule whose destination is "
                    "another bucket and whose replicas are encrypted with a KMS key",
                    bucket.urn,
                )
            )
    return violations


# ---- data stores --------------------------------------------------------------------------------

TAG_STORE = "trading-dr:store"
TAG_DATA_CLASS = "trading-dr:data-class"
TAG_ALARM = "trading-dr:alarm"
PURPOSE_DATA_STORE = "data-store"
ALARM_FRESHNESS = "backup-freshness"
RDS_CLUSTER = "aws:rds/cluster:Cluster"
RDS_GLOBAL_CLUSTER = "aws:rds/globalCluster:GlobalCluster"
BACKUP_SELECTION = "aws:backup/selection:Selection"
MSK_CLUSTER = "aws:msk/cluster:Cluster"
MSK_CLUSTER_POLICY = "aws:msk/clusterPolicy:ClusterPolicy"
CACHE_GROUP = "aws:elasticache/replicationGroup:ReplicationGroup"
CACHE_GLOBAL = "aws:elasticache/globalReplicationGroup:GlobalReplicationGroup"
METRIC_ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
CRONJOB = "kubernetes:batch/v1:CronJob"
DATA_STORE_TYPES = (RDS_CLUSTER, MSK_CLUSTER, CACHE_GROUP)
BACKUP_NAMESPACE = "TradingDR/Backups"
BACKUP_SUCCESS = "BackupSuccess"


def _labels(resource: Resource) -> Mapping[str, Any]:
    metadata = resource.props.get("metadata") or {}
    labels = metadata.get("labels") if isinstance(metadata, Mapping) else None
    return labels if isinstance(labels, Mapping) else {}


def _backup_cronjob_stores(resources: Sequence[Resource]) -> set[str]:
    """Stores with a scheduled backup CronJob (``app.kubernetes.io/instance`` = the store)."""
    stores = set()
    for job in _of(resources, (CRONJOB,)):
        labels = _labels(job)
        spec = job.props.get("spec") or {}
        if labels.get("app.kubernetes.io/component") == "backup" and spec.get("schedule"):
            stores.add(str(labels.get("app.kubernetes.io/instance")))
    return stores


def _has_standby(store: Resource, resources: Sequence[Resource]) -> bool:
    """Evidence in the primary stack that the dr stack can hold a standby of ``store``."""
    props = store.props
    if store.type == RDS_CLUSTER:
        member_of = props.get("globalClusterIdentifier")
        return any(
            (member_of and g.props.get("globalClusterIdentifier") == member_of)
            or (props.get("arn") and g.props.get("sourceDbClusterIdentifier") == props["arn"])
            for g in _of(resources, (RDS_GLOBAL_CLUSTER,))
        )
    if store.type == CACHE_GROUP:
        group = props.get("replicationGroupId")
        return any(
            group and g.props.get("primaryReplicationGroupId") == group
            for g in _of(resources, (CACHE_GLOBAL,))
        )
    if store.type == MSK_CLUSTER:
        return any(
            props.get("arn")
            and p.props.get("clusterArn") == props["arn"]
            and "kafka.amazonaws.com" in str(p.props.get("policy"))
            for p in _of(resources, (MSK_CLUSTER_POLICY,))
        )
    return False


def _has_backup_schedule(
    store: Resource, resources: Sequence[Resource], cronjob_stores: set[str]
) -> bool:
    props = store.props
    if str(_tags(store).get(TAG_STORE)) in cronjob_stores:
        return True
    if store.type == RDS_CLUSTER:
        return any(
            props.get("arn") in _list(s.props.get("resources"))
            for s in _of(resources, (BACKUP_SELECTION,))
        )
    if store.type == CACHE_GROUP:
        return (props.get("snapshotRetentionLimit") or 0) > 0 and bool(props.get("snapshotWindow"))
    return False


def primary_stores_protected(resources: Sequence[Resource]) -> list[Violation]:
    """Every data store of a primary stack has a standby in dr or a backup schedule."""
    violations = []
    cronjob_stores = _backup_cronjob_stores(resources)
    for store in _of(resources, DATA_STORE_TYPES):
        tags = _tags(store)
        if tags.get(TAG_ROLE) != "primary" or tags.get(TAG_PURPOSE) != PURPOSE_DATA_STORE:
            continue
        if _has_standby(store, resources) or _has_backup_schedule(store, resources, cronjob_stores):
            continue
        violations.append(
            Violation(
                f"data store {store.name!r} ({tags.get(TAG_STORE)}) has neither a standby in dr "
                "(global cluster, global datastore, replicator source policy) nor a backup "
                "schedule (AWS Backup selection, snapshots, backup CronJob)",
                store.urn,
            )
        )
    return violations


def _protected_data_classes(resources: Sequence[Resource]) -> dict[str, str]:
    """Data class -> a resource that holds or backs up data of it (data stores, CronJobs)."""
    classes: dict[str, str] = {}
    for resource in _of(resources, DATA_STORE_TYPES):
        tags = _tags(resource)
        if tags.get(TAG_PURPOSE) == PURPOSE_DATA_STORE and tags.get(TAG_DATA_CLASS):
            classes.setdefault(str(tags[TAG_DATA_CLASS]), resource.name)
    for job in _of(resources, (CRONJOB,)):
        data_class = _labels(job).get("trading-dr/data-class")
        if data_class:
            classes.setdefault(str(data_class), job.name)
    return classes


def _is_freshness_alarm(alarm: Resource) -> bool:
    props = alarm.props
    return (
        _tags(alarm).get(TAG_ALARM) == ALARM_FRESHNESS
        and props.get("namespace") == BACKUP_NAMESPACE
        and props.get("metricName") == BACKUP_SUCCESS
        and props.get("treatMissingData") == "breaching"
    )


def data_classes_have_freshness_alarms(resources: Sequence[Resource]) -> list[Violation]:
    """Every data class the stack holds or backs up has a backup-freshness alarm that treats
    missing data as breaching."""
    covered = {
        str(_tags(alarm).get(TAG_DATA_CLASS))
        for alarm in _of(resources, (METRIC_ALARM,))
        if _is_freshness_alarm(alarm)
    }
    return [
        Violation(
            f"data class {data_class!r} (of {holder!r}) has no backup-freshness alarm: add a "
            f"CloudWatch alarm on {BACKUP_NAMESPACE} {BACKUP_SUCCESS} tagged "
            f"{TAG_ALARM}={ALARM_FRESHNESS}, {TAG_DATA_CLASS}={data_class}, missing data breaching"
        )
        for data_class, holder in sorted(_protected_data_classes(resources).items())
        if data_class not in covered
    ]


STACK_RULES: dict[str, tuple[Callable[[Sequence[Resource]], list[Violation]], str]] = {
    "buckets-versioned": (buckets_versioned, "Every S3 bucket is versioned."),
    "buckets-encrypted-with-customer-key": (
        buckets_encrypted_with_customer_key,
        "Every S3 bucket is encrypted with a customer-managed KMS key "
        "(access-log targets: SSE-S3).",
    ),
    "buckets-block-public-access": (
        buckets_block_public_access,
        "Every S3 bucket blocks all public access.",
    ),
    "vaults-object-locked": (
        vaults_object_locked,
        "Backup vaults and audit buckets have Object Lock retention.",
    ),
    "vaults-have-lifecycle": (
        vaults_have_lifecycle,
        "Backup vaults and audit buckets expire data and abort uploads.",
    ),
    "prod-vaults-replicate-to-dr": (
        primary_vaults_replicate,
        "The prod backup vault replicates to the dr vault.",
    ),
    "prod-data-stores-have-standby-or-backup": (
        primary_stores_protected,
        "Every data store in prod has a standby in dr or a backup schedule.",
    ),
    "data-classes-have-freshness-alarms": (
        data_classes_have_freshness_alarms,
        "Every data class has a backup-freshness alarm (missing data breaches).",
    ),
}
"""name -> (check, description): every one is mandatory."""
