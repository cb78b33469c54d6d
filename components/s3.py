"""Shared S3 building blocks: the hardening every bucket gets, and bucket-policy statements.

pulumi-aws v7 splits a bucket's settings into separate resources; ``harden_bucket`` creates the
ones every bucket here needs, as children of the calling component, with its provider.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from components._common import child_opts

SSE_KMS = "aws:kms"
SSE_S3 = "AES256"


@dataclass(frozen=True)
class HardenedBucket:
    ownership: aws.s3.BucketOwnershipControls
    public_access_block: aws.s3.BucketPublicAccessBlock
    versioning: aws.s3.BucketVersioning
    encryption: aws.s3.BucketServerSideEncryptionConfiguration
    logging: aws.s3.BucketLogging | None


def harden_bucket(
    owner: pulumi.Resource,
    name: str,
    bucket: aws.s3.Bucket,
    provider: pulumi.ProviderResource,
    *,
    kms_key_arn: pulumi.Input[str] | None,
    access_log_bucket: pulumi.Input[str] | None,
) -> HardenedBucket:
    """Owner-enforced, private, versioned, encrypted (SSE-KMS with bucket keys unless no key is
    given, which only the access-log bucket may do), and logging to ``access_log_bucket``."""
    ownership = aws.s3.BucketOwnershipControls(
        f"{name}-ownership",
        bucket=bucket.id,
        rule={"object_ownership": "BucketOwnerEnforced"},
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
    return HardenedBucket(ownership, public_access_block, versioning, encryption, logging)


# ---- bucket policy statements (pure: tested without Pulumi) ----------------------------------


def deny_insecure_transport(bucket_arn: str) -> dict[str, Any]:
    return {
        "Sid": "DenyInsecureTransport",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [bucket_arn, f"{bucket_arn}/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }


def deny_other_encryption(bucket_arn: str, key_arn: str) -> list[dict[str, Any]]:
    """Deny puts that ask for another encryption than SSE-KMS with ``key_arn``.

    A put that asks for nothing gets the bucket default (SSE-KMS with the key), so the headers are
    checked only when present (``Null: false``): multipart UploadPart requests carry none.
    """
    objects = f"{bucket_arn}/*"
    return [
        {
            "Sid": "DenyEncryptionOtherThanSseKms",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:PutObject",
            "Resource": objects,
            "Condition": {
                "Null": {"s3:x-amz-server-side-encryption": "false"},
                "StringNotEquals": {"s3:x-amz-server-side-encryption": SSE_KMS},
            },
        },
        {
            "Sid": "DenyKmsKeyOtherThanVaultKey",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:PutObject",
            "Resource": objects,
            "Condition": {
                "Null": {"s3:x-amz-server-side-encryption-aws-kms-key-id": "false"},
                "StringNotEquals": {"s3:x-amz-server-side-encryption-aws-kms-key-id": key_arn},
            },
        },
        {
            "Sid": "DenyCustomerProvidedKeys",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:PutObject",
            "Resource": objects,
            "Condition": {"Null": {"s3:x-amz-server-side-encryption-customer-algorithm": "false"}},
        },
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
            {
                "Sid": f"{sid}LockMode",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:PutObject",
                "Resource": objects,
                "Condition": {
                    "Null": {"s3:object-lock-mode": "false"},
                    "StringNotEquals": {"s3:object-lock-mode": mode},
                },
            }
        )
    statements.append(
        {
            "Sid": f"{sid}LockDays",
            "Effect": "Deny",
            "Principal": "*",
            "Action": ["s3:PutObject", "s3:PutObjectRetention"],
            "Resource": objects,
            "Condition": {
                "NumericLessThan": {"s3:object-lock-remaining-retention-days": str(days)}
            },
        }
    )
    return statements


def policy_document(statements: list[dict[str, Any]]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": statements}
