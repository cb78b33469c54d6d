"""The backup writer: the IAM role the backup jobs of a region write to its vault with.

It may add and read backups, ask for an object's lock (``s3:PutObjectRetention``, needed for the
``x-amz-object-lock-*`` headers), and use the vault key through S3; it may not delete, bypass
governance retention, or touch the bucket's configuration. Its trust starts at the account (the
CronJobs' IRSA role binding narrows it to the cluster's service account, a later concern).

Its IAM policy names no KMS key: the vault key's policy grants this role by ARN (same account, so
that alone suffices), which lets the role exist before the key whose policy names it.
"""

from __future__ import annotations

from typing import Any, Protocol

import pulumi
import pulumi_aws as aws
from pydantic import Field

from components._common import (
    PACKAGE,
    ComponentArgs,
    S3BucketArnInput,
    child_opts,
    policy_document,
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
    return policy_document(
        [
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
        ]
    )


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
    return policy_document([statement])


def service_trust_policy(
    service: str, account_id: str, conditions: dict[str, Any] | None = None
) -> dict[str, Any]:
    """An AWS service (``backup.amazonaws.com``) may assume the role on behalf of this account
    only (``aws:SourceAccount``), and under ``conditions`` besides."""
    return trust_policy(
        {"Service": service},
        {"StringEquals": {"aws:SourceAccount": account_id}, **(conditions or {})},
    )


class RoleArgs(Protocol):
    """The args fields every component with a role has."""

    @property
    def role_name(self) -> str: ...
    @property
    def tags(self) -> dict[str, str]: ...


def iam_role(
    owner: pulumi.Resource,
    name: str,
    provider: pulumi.ProviderResource,
    args: RoleArgs,
    *,
    description: str,
    assume_role_policy: pulumi.Input[str],
    max_session_duration: int | None = None,
) -> aws.iam.Role:
    """A component's role ``<name>-role``, named ``args.role_name`` in IAM."""
    return aws.iam.Role(
        f"{name}-role",
        name=args.role_name,
        description=description,
        assume_role_policy=assume_role_policy,
        max_session_duration=max_session_duration,
        tags=args.tags,
        opts=child_opts(owner, provider),
    )


def inline_policy(
    owner: pulumi.Resource,
    name: str,
    provider: pulumi.ProviderResource,
    role: aws.iam.Role,
    policy: pulumi.Input[str],
) -> aws.iam.RolePolicy:
    """The role's inline policy ``<name>-policy``."""
    return aws.iam.RolePolicy(
        f"{name}-policy", role=role.id, policy=policy, opts=child_opts(owner, provider)
    )


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
        self.role = iam_role(
            self,
            name,
            provider,
            args,
            description="Backup jobs write to the vault with this role",
            assume_role_policy=to_json(trust_policy({"AWS": args.trusted_principal_arns})),
            max_session_duration=3600,
        )
        policy = pulumi.Output.from_input(args.vault_arn).apply(
            lambda arn: to_json(writer_policy(arn))
        )
        self.policy = inline_policy(self, name, provider, self.role, policy)
        self.arn = self.role.arn
        self.name = self.role.name
        self.register_outputs({"arn": self.arn, "name": self.name})
