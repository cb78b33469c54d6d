"""The region's S3 server access log bucket.

S3 delivers server access logs only to a bucket encrypted with SSE-S3 (not SSE-KMS) and without
an Object Lock default retention, so this is the one bucket that is not KMS-encrypted: it is tagged
``trading-dr:purpose=access-logs``, and the policy pack accepts SSE-S3 only for a bucket so tagged
that really is a logging target. Only the S3 logging service of this account may write to it.
"""

from __future__ import annotations

from typing import Any, Literal

import pulumi
import pulumi_aws as aws
from pydantic import Field

from components import s3
from components._common import (
    PACKAGE,
    PURPOSE_ACCESS_LOGS,
    ComponentArgs,
    StrInput,
    child_opts,
    require_provider,
    tags,
    to_json,
)


class AccessLogBucketArgs(ComponentArgs):
    platform: str = Field(min_length=1)
    stack_role: Literal["primary", "dr"]
    bucket_name: StrInput
    account_id: str = Field(pattern=r"^\d{12}$")
    retention_days: int = Field(default=365, ge=1)
    noncurrent_version_expiration_days: int = Field(default=30, ge=1)
    protect: bool = True


def access_log_policy(bucket_arn: str, account_id: str) -> dict[str, Any]:
    return s3.policy_document(
        [
            s3.deny_insecure_transport(bucket_arn),
            {
                "Sid": "S3ServerAccessLogsDelivery",
                "Effect": "Allow",
                "Principal": {"Service": "logging.s3.amazonaws.com"},
                "Action": "s3:PutObject",
                "Resource": f"{bucket_arn}/*",
                "Condition": {"StringEquals": {"aws:SourceAccount": account_id}},
            },
        ]
    )


class AccessLogBucket(pulumi.ComponentResource):
    bucket_name: pulumi.Output[str]
    arn: pulumi.Output[str]

    def __init__(
        self, name: str, args: AccessLogBucketArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(f"{PACKAGE}:storage:AccessLogBucket", name, None, opts)
        provider = require_provider(opts, "AccessLogBucket")
        self.bucket = aws.s3.Bucket(
            f"{name}-bucket",
            bucket=args.bucket_name,
            force_destroy=False,
            tags=tags(args.platform, args.stack_role, PURPOSE_ACCESS_LOGS),
            opts=child_opts(self, provider, protect=args.protect),
        )
        self.hardened = s3.harden_bucket(
            self, name, self.bucket, provider, kms_key_arn=None, access_log_bucket=None
        )
        self.lifecycle = aws.s3.BucketLifecycleConfiguration(
            f"{name}-lifecycle",
            bucket=self.bucket.id,
            rules=[
                {
                    "id": "expire-access-logs",
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
            policy=self.bucket.arn.apply(
                lambda arn: to_json(access_log_policy(arn, args.account_id))
            ),
            opts=child_opts(self, provider, depends_on=[self.hardened.public_access_block]),
        )
        self.bucket_name = self.bucket.bucket
        self.arn = self.bucket.arn
        self.register_outputs({"bucket_name": self.bucket_name, "arn": self.arn})
