"""The region's operations journal: who ran what, when, and with what result.

Each region has its own (a failover journals in the dr region while prod is dark). Journal
entries are small immutable objects under Object Lock (the audit data class's mode and days by
default), encrypted with the region's vault key, expiring after that retention.
"""

from __future__ import annotations

from typing import Any, Literal

import pulumi
from pydantic import Field

from components import s3
from components._common import (
    PACKAGE,
    PURPOSE_AUDIT,
    ComponentArgs,
    KmsKeyArnInput,
    StrInput,
    policy_document,
    require_provider,
    to_json,
)


class AuditBucketArgs(ComponentArgs):
    platform: str = Field(min_length=1)
    stack_role: Literal["primary", "dr", "vault"]
    bucket_name: StrInput
    kms_key_arn: KmsKeyArnInput
    access_log_bucket: StrInput
    lock_mode: Literal["COMPLIANCE", "GOVERNANCE"] = "GOVERNANCE"
    retention_days: int = Field(ge=1, le=36500)
    noncurrent_version_expiration_days: int = Field(default=30, ge=1)
    trail_arn: str | None = Field(default=None, pattern=r"^arn:aws[a-z-]*:cloudtrail:")
    """A CloudTrail trail that delivers its log files here (the isolated vault's audit trail):
    only that trail, only under ``AWSLogs/<its account>/``."""
    protect: bool = True


def trail_delivery(bucket_arn: str, trail_arn: str) -> list[dict[str, Any]]:
    """CloudTrail checks the bucket's ACL and writes its log files, for ``trail_arn`` only."""
    account = trail_arn.split(":")[4]
    service = {"Service": "cloudtrail.amazonaws.com"}
    source = {"StringEquals": {"aws:SourceArn": trail_arn}}
    return [
        {
            "Sid": "CloudTrailAclCheck",
            "Effect": "Allow",
            "Principal": service,
            "Action": "s3:GetBucketAcl",
            "Resource": bucket_arn,
            "Condition": source,
        },
        {
            "Sid": "CloudTrailDelivery",
            "Effect": "Allow",
            "Principal": service,
            "Action": "s3:PutObject",
            "Resource": f"{bucket_arn}/AWSLogs/{account}/*",
            "Condition": source,
        },
    ]


def audit_policy(bucket_arn: str, key_arn: str, trail_arn: str | None = None) -> str:
    statements = [s3.deny_insecure_transport(bucket_arn)]
    statements += s3.deny_other_encryption(bucket_arn, key_arn)
    if trail_arn is not None:
        statements += trail_delivery(bucket_arn, trail_arn)
    return to_json(policy_document(statements))


class AuditBucket(pulumi.ComponentResource):
    bucket_name: pulumi.Output[str]
    arn: pulumi.Output[str]

    def __init__(
        self, name: str, args: AuditBucketArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(f"{PACKAGE}:storage:AuditBucket", name, None, opts)
        provider = require_provider(opts, "AuditBucket")
        self.hardened = s3.hardened_bucket(
            self,
            name,
            provider,
            args,
            purpose=PURPOSE_AUDIT,
            object_lock=True,
            kms_key_arn=args.kms_key_arn,
            access_log_bucket=args.access_log_bucket,
        )
        self.bucket = self.hardened.bucket
        self.object_lock = s3.default_retention(
            self, name, self.hardened, provider, mode=args.lock_mode, days=args.retention_days
        )
        expiry = s3.expire_all_rule(
            "journal-retention", args.retention_days, args.noncurrent_version_expiration_days
        )
        self.lifecycle = s3.lifecycle(self, name, self.hardened, provider, [expiry])
        policy = pulumi.Output.all(self.bucket.arn, args.kms_key_arn).apply(
            lambda v: audit_policy(v[0], v[1], args.trail_arn)
        )
        self.policy = s3.bucket_policy(self, name, self.hardened, provider, policy)
        self.bucket_name = self.bucket.bucket
        self.arn = self.bucket.arn
        self.register_outputs({"bucket_name": self.bucket_name, "arn": self.arn})
