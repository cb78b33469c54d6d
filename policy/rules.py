"""The DR and security rules as pure functions over resources (type, name, urn, props).

pulumi-aws v7 splits a bucket's settings into separate resources, so most rules correlate a bucket
with its ``BucketVersioning``, ``BucketServerSideEncryptionConfiguration``, ... by bucket name (the
``bucket`` property of each, the bucket's own ``bucket``). ``policy.pack`` wraps each function in
a ``StackValidationPolicy`` or ``ResourceValidationPolicy``; tests call them directly.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

TAG_ROLE = "trading-dr:stack-role"
TAG_PURPOSE = "trading-dr:purpose"
PURPOSE_VAULT = "backup-vault"
PURPOSE_AUDIT = "audit-journal"
PURPOSE_ACCESS_LOGS = "access-logs"
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

    The one exception S3 forces: a server access log target (SSE-KMS is not supported there) may
    use SSE-S3 if it is tagged ``trading-dr:purpose=access-logs`` and really is a logging target.
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


# ---- keys -------------------------------------------------------------------------------------


def kms_key_rotates(resource_type: str, props: Mapping[str, Any]) -> list[str]:
    """A customer-managed symmetric key rotates (a multi-region replica follows its primary)."""
    if resource_type != KMS_KEY:
        return []
    spec = props.get("customerMasterKeySpec") or "SYMMETRIC_DEFAULT"
    if spec != "SYMMETRIC_DEFAULT":
        return [f"KMS key spec {spec!r} cannot rotate; vault keys must be SYMMETRIC_DEFAULT"]
    if props.get("enableKeyRotation") is not True:
        return ["KMS key does not rotate: set enable_key_rotation=True"]
    return []


STACK_RULES = {
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
}
"""name -> (check, description): every one is mandatory."""
