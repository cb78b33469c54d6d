"""The region's S3 server access log bucket.

S3 delivers server access logs only to a bucket encrypted with SSE-S3 (not SSE-KMS) and without
an Object Lock default retention, so this is the one bucket that is not KMS-encrypted: it is tagged
``trading-dr:purpose=access-logs``, and the policy pack accepts SSE-S3 only for a bucket so tagged
that really is a logging target. Only the S3 logging service of this account may write to it.
"""

from __future__ import annotations

from typing import Any, Literal

import pulumi
from pydantic import Field

from components import s3
from components._common import (
    PACKAGE,
    PURPOSE_ACCESS_LOGS,
    ComponentArgs,
    StrInput,
    policy_document,
    require_provider,
    to_json,
)


class AccessLogBucketArgs(ComponentArgs):
    platform: str = Field(min_length=1)
    stack_role: Literal["primary", "dr", "vault"]
    bucket_name: StrInput
    account_id: str = Field(pattern=r"^\d{12}$")
    retention_days: int = Field(default=365, ge=1)
    noncurrent_version_expiration_days: int = Field(default=30, ge=1)
    protect: bool = True


def access_log_policy(bucket_arn: str, account_id: str) -> dict[str, Any]:
    return policy_document(
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
        self.hardened = s3.hardened_bucket(
            self,
            name,
            provider,
            args,
            purpose=PURPOSE_ACCESS_LOGS,
            object_lock=False,
            kms_key_arn=None,
            access_log_bucket=None,
        )
        self.bucket = self.hardened.bucket
        expiry = s3.expire_all_rule(
            "expire-access-logs", args.retention_days, args.noncurrent_version_expiration_days
        )
        self.lifecycle = s3.lifecycle(self, name, self.hardened, provider, [expiry])
        policy = self.bucket.arn.apply(lambda arn: to_json(access_log_policy(arn, args.account_id)))
        self.policy = s3.bucket_policy(self, name, self.hardened, provider, policy)
        self.bucket_name = self.bucket.bucket
        self.arn = self.bucket.arn
        self.register_outputs({"bucket_name": self.bucket_name, "arn": self.arn})
