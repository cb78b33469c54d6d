"""The data-store key: the customer-managed KMS key of one region's databases, caches and streams.

Separate from the vault key (``components.keys``), which is scoped to backups through S3: this one
encrypts Aurora, MSK, ElastiCache, the AWS Backup vault, the alert topic and the secrets those
services read. Each region has its own single-region key (the issue: "the secondary cluster in dr
with its own key"); nothing replicates it, so the dr stack creates it without the primary region.

The policy names each principal and grants it only its job: administrators manage the key and
never use it directly; the deploying administrators, the AWS Backup role and the operators use it
only *through* the data services of this region (``kms:ViaService``), which is how RDS, MSK and
ElastiCache get their grants when a cluster is created or restored; CloudWatch (alarms) and AWS
Budgets may encrypt messages to the alert topic; the break-glass role can recover the key.
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_aws as aws
from pydantic import Field

from components._common import (
    PACKAGE,
    ComponentArgs,
    IamRoleArnInput,
    child_opts,
    require_provider,
    to_json,
)
from components.keys import ADMIN_ACTIONS, BREAK_GLASS_ACTIONS

DATA_SERVICES = ("rds", "kafka", "elasticache", "backup", "secretsmanager", "sns")
"""The services that use this key on a principal's behalf, each in the key's region."""
SERVICE_USE_ACTIONS = [
    "kms:CreateGrant",
    "kms:Decrypt",
    "kms:DescribeKey",
    "kms:Encrypt",
    "kms:GenerateDataKey*",
    "kms:ListGrants",
    "kms:ReEncrypt*",
]
NOTIFIER_ACTIONS = ["kms:Decrypt", "kms:GenerateDataKey*"]
NOTIFIERS = ("cloudwatch.amazonaws.com", "budgets.amazonaws.com")


def data_key_policy(
    *,
    account_id: str,
    region: str,
    administrators: list[str],
    service_users: list[str],
    break_glass: str,
) -> dict[str, Any]:
    """The key policy document (see the module docstring for who gets what)."""
    return {
        "Version": "2012-10-17",
        "Id": "trading-dr-data-key",
        "Statement": [
            {
                "Sid": "KeyAdministration",
                "Effect": "Allow",
                "Principal": {"AWS": sorted(administrators)},
                "Action": ADMIN_ACTIONS,
                "Resource": "*",
            },
            {
                "Sid": "UseThroughDataServices",
                "Effect": "Allow",
                "Principal": {"AWS": sorted(set(service_users))},
                "Action": SERVICE_USE_ACTIONS,
                "Resource": "*",
                "Condition": {
                    "StringEquals": {
                        "kms:ViaService": [
                            f"{service}.{region}.amazonaws.com" for service in DATA_SERVICES
                        ],
                        "kms:CallerAccount": account_id,
                    }
                },
            },
            {
                "Sid": "NotificationsToTheAlertTopic",
                "Effect": "Allow",
                "Principal": {"Service": list(NOTIFIERS)},
                "Action": NOTIFIER_ACTIONS,
                "Resource": "*",
                "Condition": {"StringEquals": {"aws:SourceAccount": account_id}},
            },
            {
                "Sid": "BreakGlass",
                "Effect": "Allow",
                "Principal": {"AWS": break_glass},
                "Action": BREAK_GLASS_ACTIONS,
                "Resource": "*",
            },
        ],
    }


class DataStoreKeyArgs(ComponentArgs):
    platform: str = Field(min_length=1)
    region: str = Field(pattern=r"^[a-z]{2}(-gov)?-[a-z]+-\d$")
    account_id: str = Field(pattern=r"^\d{12}$")
    administrator_arns: list[str] = Field(min_length=1)
    service_user_arns: list[IamRoleArnInput] = Field(min_length=1)
    """The AWS Backup role and the operators (the administrators are added: they deploy)."""
    break_glass_arn: IamRoleArnInput
    deletion_window_days: int = Field(default=30, ge=7, le=30)
    rotation_period_days: int = Field(default=365, ge=90, le=2560)
    protect: bool = True
    tags: dict[str, str] = Field(default_factory=dict)


class DataStoreKey(pulumi.ComponentResource):
    """The region's data-store key, with an alias ``alias/<platform>-data-stores``."""

    arn: pulumi.Output[str]
    key_id: pulumi.Output[str]

    def __init__(
        self, name: str, args: DataStoreKeyArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(f"{PACKAGE}:security:DataStoreKey", name, None, opts)
        provider = require_provider(opts, "DataStoreKey")
        policy = pulumi.Output.all(
            users=pulumi.Output.all(*args.service_user_arns), break_glass=args.break_glass_arn
        ).apply(
            lambda v: to_json(
                data_key_policy(
                    account_id=args.account_id,
                    region=args.region,
                    administrators=args.administrator_arns,
                    service_users=[*args.administrator_arns, *v["users"]],
                    break_glass=v["break_glass"],
                )
            )
        )
        self.key = aws.kms.Key(
            f"{name}-key",
            description=f"{args.platform} data stores ({args.region})",
            enable_key_rotation=True,
            rotation_period_in_days=args.rotation_period_days,
            key_usage="ENCRYPT_DECRYPT",
            customer_master_key_spec="SYMMETRIC_DEFAULT",
            deletion_window_in_days=args.deletion_window_days,
            policy=policy,
            tags=args.tags,
            opts=child_opts(self, provider, protect=args.protect),
        )
        self.alias = aws.kms.Alias(
            f"{name}-alias",
            name=f"alias/{args.platform}-data-stores",
            target_key_id=self.key.key_id,
            opts=child_opts(self, provider),
        )
        self.arn = self.key.arn
        self.key_id = self.key.key_id
        self.register_outputs({"arn": self.arn, "key_id": self.key_id})
