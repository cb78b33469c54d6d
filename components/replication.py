"""Cross-region replication of the prod vault into the dr vault, owned by the prod stack.

prod may not read dr (DESIGN.md), and the dr stack must stay updatable while the primary region is
down, so the dr stack owns nothing in the primary region. prod therefore owns the replication:
the role (``ReplicationRole``) and the bucket's replication configuration (``VaultReplication``),
naming the dr vault by its deterministic name and the dr replica key by the multi-region key's
shared id (``components.naming``). The dr stack reads the role's ARN from prod's outputs to grant
it the replica key, and checks at deploy time that its vault is the destination prod named.

Replicas are re-encrypted with the dr replica key; Replication Time Control replicates 99.99% of
new objects within 15 minutes and publishes replication metrics; delete markers are not
replicated (a delete in prod never hides a backup in dr); Object Lock retention travels with
each replica.
"""

from __future__ import annotations

from typing import Any, Literal

import pulumi
import pulumi_aws as aws
from pydantic import Field

from components._common import (
    PACKAGE,
    ComponentArgs,
    IamRoleArnInput,
    KmsKeyArnInput,
    S3BucketArnInput,
    StrInput,
    child_opts,
    policy_document,
    require_provider,
    to_json,
)
from components.iam import iam_role, inline_policy, service_trust_policy

SOURCE_BUCKET_ACTIONS = ["s3:GetReplicationConfiguration", "s3:ListBucket"]
SOURCE_OBJECT_ACTIONS = [
    "s3:GetObjectLegalHold",
    "s3:GetObjectRetention",
    "s3:GetObjectVersionAcl",
    "s3:GetObjectVersionForReplication",
    "s3:GetObjectVersionTagging",
]
DESTINATION_OBJECT_ACTIONS = ["s3:ReplicateObject", "s3:ReplicateTags"]
"""No ``s3:ReplicateDelete``: delete markers are not replicated."""


def replication_role_policy(source_arn: str, destination_arn: str) -> dict[str, Any]:
    """Only what replication needs. The KMS side is granted by the two key policies, which
    name this role (the keys' ARNs are not all known when the role is created)."""
    return policy_document(
        [
            {
                "Sid": "ReadSourceConfiguration",
                "Effect": "Allow",
                "Action": SOURCE_BUCKET_ACTIONS,
                "Resource": source_arn,
            },
            {
                "Sid": "ReadSourceVersions",
                "Effect": "Allow",
                "Action": SOURCE_OBJECT_ACTIONS,
                "Resource": f"{source_arn}/*",
            },
            {
                "Sid": "WriteDestinationReplicas",
                "Effect": "Allow",
                "Action": DESTINATION_OBJECT_ACTIONS,
                "Resource": f"{destination_arn}/*",
            },
        ]
    )


class ReplicationRoleArgs(ComponentArgs):
    role_name: str = Field(pattern=r"^[A-Za-z0-9+=,.@_-]{1,64}$")
    account_id: str = Field(pattern=r"^\d{12}$")
    source_bucket_arn: S3BucketArnInput
    destination_bucket_arn: S3BucketArnInput
    tags: dict[str, str] = Field(default_factory=dict)


class ReplicationRole(pulumi.ComponentResource):
    """The role S3 assumes to replicate; created before the vault key, whose policy names it."""

    arn: pulumi.Output[str]

    def __init__(
        self, name: str, args: ReplicationRoleArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(f"{PACKAGE}:security:ReplicationRole", name, None, opts)
        provider = require_provider(opts, "ReplicationRole")
        assume = pulumi.Output.from_input(args.source_bucket_arn).apply(
            lambda source: to_json(
                service_trust_policy(
                    "s3.amazonaws.com", args.account_id, {"ArnLike": {"aws:SourceArn": source}}
                )
            )
        )
        self.role = iam_role(
            self,
            name,
            provider,
            args,
            description="S3 replicates the backup vault to the dr region with this role",
            assume_role_policy=assume,
        )
        policy = pulumi.Output.all(args.source_bucket_arn, args.destination_bucket_arn).apply(
            lambda v: to_json(replication_role_policy(v[0], v[1]))
        )
        self.policy = inline_policy(self, name, provider, self.role, policy)
        self.arn = self.role.arn
        self.register_outputs({"arn": self.arn})


class VaultReplicationArgs(ComponentArgs):
    source_bucket: StrInput
    """The source vault's name (the bucket the configuration is set on)."""
    destination_bucket_arn: S3BucketArnInput
    destination_key_arn: KmsKeyArnInput
    role_arn: IamRoleArnInput
    replication_time_minutes: Literal[15] = 15
    """S3 Replication Time Control accepts exactly 15 minutes."""
    storage_class: Literal["STANDARD", "STANDARD_IA"] = "STANDARD"


class VaultReplication(pulumi.ComponentResource):
    """The replication configuration on the prod vault (prod region provider)."""

    def __init__(
        self, name: str, args: VaultReplicationArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(f"{PACKAGE}:storage:VaultReplication", name, None, opts)
        provider = require_provider(opts, "VaultReplication")
        minutes = args.replication_time_minutes
        self.configuration = aws.s3.BucketReplicationConfig(
            f"{name}-configuration",
            bucket=args.source_bucket,
            role=args.role_arn,
            rules=[
                {
                    "id": "vault-to-dr",
                    "status": "Enabled",
                    "priority": 1,
                    "filter": {"prefix": ""},
                    "delete_marker_replication": {"status": "Disabled"},
                    "source_selection_criteria": {
                        "sse_kms_encrypted_objects": {"status": "Enabled"},
                    },
                    "destination": {
                        "bucket": args.destination_bucket_arn,
                        "storage_class": args.storage_class,
                        "encryption_configuration": {
                            "replica_kms_key_id": args.destination_key_arn
                        },
                        "replication_time": {"status": "Enabled", "time": {"minutes": minutes}},
                        "metrics": {"status": "Enabled", "event_threshold": {"minutes": minutes}},
                    },
                }
            ],
            opts=child_opts(self, provider),
        )
        self.register_outputs({"bucket": self.configuration.bucket})
