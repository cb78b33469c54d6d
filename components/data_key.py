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
from pydantic import Field

from components._common import (
    PACKAGE,
    ComponentArgs,
    IamRoleArnInput,
    policy_document,
    require_provider,
    to_json,
)
from components.keys import (
    administration_statement,
    break_glass_statement,
    customer_key,
    key_alias,
    key_statement,
)

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
    via_data_services = {
        "StringEquals": {
            "kms:ViaService": [f"{service}.{region}.amazonaws.com" for service in DATA_SERVICES],
            "kms:CallerAccount": account_id,
        }
    }
    return policy_document(
        [
            administration_statement(administrators),
            key_statement(
                "UseThroughDataServices",
                {"AWS": sorted(set(service_users))},
                SERVICE_USE_ACTIONS,
                via_data_services,
            ),
            key_statement(
                "NotificationsToTheAlertTopic",
                {"Service": list(NOTIFIERS)},
                NOTIFIER_ACTIONS,
                {"StringEquals": {"aws:SourceAccount": account_id}},
            ),
            break_glass_statement(break_glass),
        ],
        policy_id="trading-dr-data-key",
    )


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
        description = f"{args.platform} data stores ({args.region})"
        self.key = customer_key(self, name, provider, args, description=description, policy=policy)
        self.alias = key_alias(
            self, name, provider, alias=f"{args.platform}-data-stores", key=self.key
        )
        self.arn = self.key.arn
        self.key_id = self.key.key_id
        self.register_outputs({"arn": self.arn, "key_id": self.key_id})
