"""The backup writer: the IAM role the backup jobs of a region write to its vault with.

It may add and read backups, ask for an object's lock (``s3:PutObjectRetention``, needed for the
``x-amz-object-lock-*`` headers), and use the vault key through S3; it may not delete, bypass
governance retention, or touch the bucket's configuration. Its trust starts at the account (the
CronJobs' IRSA role binding narrows it to the cluster's service account, a later concern).

Its IAM policy names no KMS key: the vault key's policy grants this role by ARN (same account, so
that alone suffices), which lets the role exist before the key whose policy names it.
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_aws as aws
from pydantic import Field

from components._common import (
    PACKAGE,
    ComponentArgs,
    S3BucketArnInput,
    child_opts,
    require_provider,
    to_json,
)

WRITER_OBJECT_ACTIONS = [
    "s3:AbortMultipartUpload",
    "s3:GetObject",
    "s3:GetObjectRetention",
    "s3:GetObjectVersion",
    "s3:ListMultipartUploadParts",
    "s3:PutObject",
    "s3:PutObjectRetention",
]
WRITER_BUCKET_ACTIONS = ["s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads"]


def writer_policy(vault_arn: str) -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ListVault",
                "Effect": "Allow",
                "Action": WRITER_BUCKET_ACTIONS,
                "Resource": vault_arn,
            },
            {
                "Sid": "WriteAndReadBackups",
                "Effect": "Allow",
                "Action": WRITER_OBJECT_ACTIONS,
                "Resource": f"{vault_arn}/*",
            },
        ],
    }


def trust_policy(
    principal: dict[str, Any], condition: dict[str, Any] | None = None
) -> dict[str, Any]:
    statement: dict[str, Any] = {
        "Effect": "Allow",
        "Principal": principal,
        "Action": "sts:AssumeRole",
    }
    if condition:
        statement["Condition"] = condition
    return {"Version": "2012-10-17", "Statement": [statement]}


class BackupWriterRoleArgs(ComponentArgs):
    role_name: str = Field(pattern=r"^[A-Za-z0-9+=,.@_-]{1,64}$")
    trusted_principal_arns: list[str] = Field(min_length=1)
    vault_arn: S3BucketArnInput
    """Known before the vault exists (deterministic name): the key policy needs this role first."""
    tags: dict[str, str] = Field(default_factory=dict)


class BackupWriterRole(pulumi.ComponentResource):
    """The role and its inline policy; created before the vault key, whose policy names it."""

    arn: pulumi.Output[str]
    name: pulumi.Output[str]

    def __init__(
        self, name: str, args: BackupWriterRoleArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(f"{PACKAGE}:security:BackupWriterRole", name, None, opts)
        provider = require_provider(opts, "BackupWriterRole")
        self.role = aws.iam.Role(
            f"{name}-role",
            name=args.role_name,
            description="Backup jobs write to the vault with this role",
            assume_role_policy=to_json(trust_policy({"AWS": args.trusted_principal_arns})),
            max_session_duration=3600,
            tags=args.tags,
            opts=child_opts(self, provider),
        )
        self.policy = aws.iam.RolePolicy(
            f"{name}-policy",
            role=self.role.id,
            policy=pulumi.Output.from_input(args.vault_arn).apply(
                lambda arn: to_json(writer_policy(arn))
            ),
            opts=child_opts(self, provider),
        )
        self.arn = self.role.arn
        self.name = self.role.name
        self.register_outputs({"arn": self.arn, "name": self.name})
