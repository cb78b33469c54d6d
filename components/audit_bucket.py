"""The region's operations journal: who ran what, when, and with what result.

Each region has its own (a failover journals in the dr region while prod is dark). Journal
entries are small immutable objects under Object Lock (the audit data class's mode and days by
default), encrypted with the region's vault key, expiring after that retention.
"""

from __future__ import annotations

from typing import Literal

import pulumi
import pulumi_aws as aws
from pydantic import Field

from components import s3
from components._common import (
    PACKAGE,
    PURPOSE_AUDIT,
    ComponentArgs,
    KmsKeyArnInput,
    StrInput,
    child_opts,
    require_provider,
    tags,
    to_json,
)


class AuditBucketArgs(ComponentArgs):
    platform: str = Field(min_length=1)
    stack_role: Literal["primary", "dr"]
    bucket_name: StrInput
    kms_key_arn: KmsKeyArnInput
    access_log_bucket: StrInput
    lock_mode: Literal["COMPLIANCE", "GOVERNANCE"] = "GOVERNANCE"
    retention_days: int = Field(ge=1, le=36500)
    noncurrent_version_expiration_days: int = Field(default=30, ge=1)
    protect: bool = True


def audit_policy(bucket_arn: str, key_arn: str) -> str:
    statements = [s3.deny_insecure_transport(bucket_arn)]
    statements += s3.deny_other_encryption(bucket_arn, key_arn)
    return to_json(s3.policy_document(statements))


class AuditBucket(pulumi.ComponentResource):
    bucket_name: pulumi.Output[str]
    arn: pulumi.Output[str]

    def __init__(
        self, name: str, args: AuditBucketArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(f"{PACKAGE}:storage:AuditBucket", name, None, opts)
        provider = require_provider(opts, "AuditBucket")
        self.bucket = aws.s3.Bucket(
            f"{name}-bucket",
            bucket=args.bucket_name,
            object_lock_enabled=True,
            force_destroy=False,
            tags=tags(args.platform, args.stack_role, PURPOSE_AUDIT),
            opts=child_opts(self, provider, protect=args.protect),
        )
        self.hardened = s3.harden_bucket(
            self,
            name,
            self.bucket,
            provider,
            kms_key_arn=args.kms_key_arn,
            access_log_bucket=args.access_log_bucket,
        )
        self.object_lock = aws.s3.BucketObjectLockConfiguration(
            f"{name}-object-lock",
            bucket=self.bucket.id,
            object_lock_enabled="Enabled",
            rule={"default_retention": {"mode": args.lock_mode, "days": args.retention_days}},
            opts=child_opts(self, provider, depends_on=[self.hardened.versioning]),
        )
        self.lifecycle = aws.s3.BucketLifecycleConfiguration(
            f"{name}-lifecycle",
            bucket=self.bucket.id,
            rules=[
                {
                    "id": "journal-retention",
                    "status": "Enabled",
                    "filter": {"prefix": ""},
                    "expiration": {"days": args.retention_days},
                    "noncurrent_version_expiration": {
                        "noncurrent_days": args.noncurrent_version_expiration_days
                    },
                    "abort_incomplete_multipart_upload": {"days_after_initiation": 1},
                }
            ],
            opts=child_opts(self, provider, depends_on=[self.hardened.versioning]),
        )
        self.policy = aws.s3.BucketPolicy(
            f"{name}-policy",
            bucket=self.bucket.id,
            policy=pulumi.Output.all(self.bucket.arn, args.kms_key_arn).apply(
                lambda v: audit_policy(v[0], v[1])
            ),
            opts=child_opts(self, provider, depends_on=[self.hardened.public_access_block]),
        )
        self.bucket_name = self.bucket.bucket
        self.arn = self.bucket.arn
        self.register_outputs({"bucket_name": self.bucket_name, "arn": self.arn})
