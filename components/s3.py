"""Shared S3 building blocks: the hardening every bucket gets, and bucket-policy statements.

pulumi-aws v7 splits a bucket's settings into separate resources; ``hardened_bucket`` creates the
bucket with the ones every bucket here needs, and ``default_retention``, ``lifecycle`` and
``bucket_policy`` the ones that differ, each as a child of the calling component, with its
provider and after what it must follow.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import pulumi
import pulumi_aws as aws

from components._common import child_opts, tags

SSE_KMS = "aws:kms"
SSE_S3 = "AES256"


class BucketArgs(Protocol):
    """The args fields every bucket component has."""

    @property
    def platform(self) -> str: ...
    @property
    def stack_role(self) -> str: ...
    @property
    def bucket_name(self) -> pulumi.Input[str]: ...
    @property
    def protect(self) -> bool: ...


@dataclass(frozen=True)
class HardenedBucket:
    bucket: aws.s3.Bucket
    ownership: aws.s3.BucketOwnershipControls
    public_access_block: aws.s3.BucketPublicAccessBlock
    versioning: aws.s3.BucketVersioning
    encryption: aws.s3.BucketServerSideEncryptionConfiguration
    logging: aws.s3.BucketLogging | None


def hardened_bucket(
    owner: pulumi.Resource,
    name: str,
    provider: pulumi.ProviderResource,
    args: BucketArgs,
    *,
    purpose: str,
    object_lock: bool,
    kms_key_arn: pulumi.Input[str] | None,
    access_log_bucket: pulumi.Input[str] | None,
    object_ownership: str = "BucketOwnerEnforced",
) -> HardenedBucket:
    """The bucket ``<name>-bucket``, tagged with its ``purpose`` (the policy pack reads it), never
    force-destroyed, Object Lock enabled if ``object_lock``; owner-enforced, private, versioned,
    encrypted (SSE-KMS with bucket keys unless no key is given, which only the access-log bucket
    may do), and logging to ``access_log_bucket``. ``object_ownership`` stays owner-enforced (ACLs
    off) except where a service can only be granted access by ACL (the ElastiCache export)."""
    bucket = aws.s3.Bucket(
        f"{name}-bucket",
        bucket=args.bucket_name,
        object_lock_enabled=True if object_lock else None,
        force_destroy=False,
        tags=tags(args.platform, args.stack_role, purpose),
        opts=child_opts(owner, provider, protect=args.protect),
    )
    ownership = aws.s3.BucketOwnershipControls(
        f"{name}-ownership",
        bucket=bucket.id,
        rule={"object_ownership": object_ownership},
        opts=child_opts(owner, provider),
    )
    public_access_block = aws.s3.BucketPublicAccessBlock(
        f"{name}-public-access-block",
        bucket=bucket.id,
        block_public_acls=True,
        block_public_policy=True,
        ignore_public_acls=True,
        restrict_public_buckets=True,
        opts=child_opts(owner, provider),
    )
    versioning = aws.s3.BucketVersioning(
        f"{name}-versioning",
        bucket=bucket.id,
        versioning_configuration={"status": "Enabled"},
        opts=child_opts(owner, provider),
    )
    if kms_key_arn is not None:
        rule: aws.s3.BucketServerSideEncryptionConfigurationRuleArgsDict = {
            "apply_server_side_encryption_by_default": {
                "sse_algorithm": SSE_KMS,
                "kms_master_key_id": kms_key_arn,
            },
            "bucket_key_enabled": True,
        }
    else:
        rule = {"apply_server_side_encryption_by_default": {"sse_algorithm": SSE_S3}}
    encryption = aws.s3.BucketServerSideEncryptionConfiguration(
        f"{name}-encryption",
        bucket=bucket.id,
        rules=[rule],
        opts=child_opts(owner, provider),
    )
    logging = None
    if access_log_bucket is not None:
        logging = aws.s3.BucketLogging(
            f"{name}-access-logging",
            bucket=bucket.id,
            target_bucket=access_log_bucket,
            target_prefix=bucket.id.apply(lambda b: f"{b}/"),
            target_object_key_format={"partitioned_prefix": {"partition_date_source": "EventTime"}},
            opts=child_opts(owner, provider),
        )
    return HardenedBucket(bucket, ownership, public_access_block, versioning, encryption, logging)


def default_retention(
    owner: pulumi.Resource,
    name: str,
    hardened: HardenedBucket,
    provider: pulumi.ProviderResource,
    *,
    mode: str,
    days: int,
) -> aws.s3.BucketObjectLockConfiguration:
    """The bucket's default Object Lock retention (set once versioning is on)."""
    return aws.s3.BucketObjectLockConfiguration(
        f"{name}-object-lock",
        bucket=hardened.bucket.id,
        object_lock_enabled="Enabled",
        rule={"default_retention": {"mode": mode, "days": days}},
        opts=child_opts(owner, provider, depends_on=[hardened.versioning]),
    )


def lifecycle(
    owner: pulumi.Resource,
    name: str,
    hardened: HardenedBucket,
    provider: pulumi.ProviderResource,
    rules: list[aws.s3.BucketLifecycleConfigurationRuleArgsDict],
) -> aws.s3.BucketLifecycleConfiguration:
    """The bucket's lifecycle ``rules`` (set once versioning is on)."""
    return aws.s3.BucketLifecycleConfiguration(
        f"{name}-lifecycle",
        bucket=hardened.bucket.id,
        rules=rules,
        opts=child_opts(owner, provider, depends_on=[hardened.versioning]),
    )


def expire_all_rule(
    rule_id: str, days: int, noncurrent_days: int
) -> aws.s3.BucketLifecycleConfigurationRuleArgsDict:
    """One rule for the whole bucket: objects expire after ``days``, noncurrent versions after
    ``noncurrent_days``, incomplete multipart uploads after a day."""
    return {
        "id": rule_id,
        "status": "Enabled",
        "filter": {"prefix": ""},
        "expiration": {"days": days},
        "noncurrent_version_expiration": {"noncurrent_days": noncurrent_days},
        "abort_incomplete_multipart_upload": {"days_after_initiation": 1},
    }


def bucket_policy(
    owner: pulumi.Resource,
    name: str,
    hardened: HardenedBucket,
    provider: pulumi.ProviderResource,
    policy: pulumi.Input[str],
) -> aws.s3.BucketPolicy:
    """The bucket's policy (set once the public access block is, which it must not trip)."""
    return aws.s3.BucketPolicy(
        f"{name}-policy",
        bucket=hardened.bucket.id,
        policy=policy,
        opts=child_opts(owner, provider, depends_on=[hardened.public_access_block]),
    )


# ---- bucket policy statements (pure: tested without Pulumi) ----------------------------------


def deny(
    sid: str, action: str | list[str], resource: str | list[str], condition: dict[str, Any]
) -> dict[str, Any]:
    """A statement denying ``action`` on ``resource`` to everyone when ``condition`` holds."""
    return {
        "Sid": sid,
        "Effect": "Deny",
        "Principal": "*",
        "Action": action,
        "Resource": resource,
        "Condition": condition,
    }


def asks_for_other(key: str, value: str) -> dict[str, Any]:
    """A condition true when the request sets ``key`` to something other than ``value``; a request
    that does not set it is not matched (it gets the bucket's default)."""
    return {"Null": {key: "false"}, "StringNotEquals": {key: value}}


def deny_insecure_transport(bucket_arn: str) -> dict[str, Any]:
    return deny(
        "DenyInsecureTransport",
        "s3:*",
        [bucket_arn, f"{bucket_arn}/*"],
        {"Bool": {"aws:SecureTransport": "false"}},
    )


def deny_other_encryption(bucket_arn: str, key_arn: str) -> list[dict[str, Any]]:
    """Deny puts that ask for another encryption than SSE-KMS with ``key_arn``.

    A put that asks for nothing gets the bucket default (SSE-KMS with the key), so the headers are
    checked only when present (``Null: false``): multipart UploadPart requests carry none.
    """
    objects = f"{bucket_arn}/*"
    return [
        deny(
            "DenyEncryptionOtherThanSseKms",
            "s3:PutObject",
            objects,
            asks_for_other("s3:x-amz-server-side-encryption", SSE_KMS),
        ),
        deny(
            "DenyKmsKeyOtherThanVaultKey",
            "s3:PutObject",
            objects,
            asks_for_other("s3:x-amz-server-side-encryption-aws-kms-key-id", key_arn),
        ),
        deny(
            "DenyCustomerProvidedKeys",
            "s3:PutObject",
            objects,
            {"Null": {"s3:x-amz-server-side-encryption-customer-algorithm": "false"}},
        ),
    ]


def deny_weaker_object_lock(
    bucket_arn: str, prefix: str, mode: str, days: int, sid: str
) -> list[dict[str, Any]]:
    """Deny puts under ``prefix`` that ask for a weaker lock than the data class needs.

    The bucket's default retention (the strictest class) applies when a put asks for none.
    """
    objects = f"{bucket_arn}/{prefix}*"
    statements: list[dict[str, Any]] = []
    if mode == "COMPLIANCE":  # governance is the weakest mode: any mode satisfies it
        statements.append(
            deny(
                f"{sid}LockMode",
                "s3:PutObject",
                objects,
                asks_for_other("s3:object-lock-mode", mode),
            )
        )
    statements.append(
        deny(
            f"{sid}LockDays",
            ["s3:PutObject", "s3:PutObjectRetention"],
            objects,
            {"NumericLessThan": {"s3:object-lock-remaining-retention-days": str(days)}},
        )
    )
    return statements
