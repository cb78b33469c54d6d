"""AWS Backup: a vault per region, the plan for the Aurora clusters, and the role it runs as.

The seed's "secondary backup" of the database: monthly snapshots kept 90 days, copied to the dr
region's vault (000_6de71234cc3057c0.txt). It complements, never replaces, Aurora's own automated
backups (30 days of point-in-time recovery) and the streaming backups of the engine.

- **Vault** per region, encrypted with the region's data-store key, with **Vault Lock**: in
  compliance mode (a grace period, ``changeable_for_days``, after which nobody, root included, can
  shorten retention or delete a recovery point early) when the protected data class is regulated
  (its retention class locks in compliance mode), governance mode otherwise. The lock's minimum is
  the plan's retention, so no rule can ask for less than the seed's 90 days.
- **Plan**: one rule, the monthly schedule, lifecycle ``delete_after`` 90 days, and a copy action
  to the peer region's vault with the same lifecycle. prod names the dr vault by its deterministic
  name (``components.failover_naming``), as it does the S3 vault, so prod never reads dr.
- **Selection**: the cluster(s) of the region that writes now (``active_region``): snapshots of a
  secondary add nothing while its primary is backed up, and after a failover the dr stack's plan
  takes over, copying back to prod's vault.
- **Role**: trusted by ``backup.amazonaws.com`` only, with AWS's managed backup and restore
  policies for the service (the data key's policy grants it the key through the services).
"""

from __future__ import annotations

from typing import Literal, Self

import pulumi
import pulumi_aws as aws
from pydantic import Field, model_validator

from components._common import (
    PACKAGE,
    ComponentArgs,
    KmsKeyArnInput,
    StrInput,
    child_opts,
    require_provider,
    to_json,
)
from components.iam import iam_role, service_trust_policy

BACKUP_VAULT_ARN = r"^arn:aws[a-z-]*:backup:[a-z0-9-]+:\d{12}:backup-vault:"
BACKUP_POLICY = "arn:{partition}:iam::aws:policy/service-role/AWSBackupServiceRolePolicyForBackup"
RESTORE_POLICY = (
    "arn:{partition}:iam::aws:policy/service-role/AWSBackupServiceRolePolicyForRestores"
)


class AwsBackupRoleArgs(ComponentArgs):
    role_name: str = Field(pattern=r"^[A-Za-z0-9+=,.@_-]{1,64}$")
    account_id: str = Field(pattern=r"^\d{12}$")
    partition: str = "aws"
    tags: dict[str, str] = Field(default_factory=dict)


class AwsBackupRole(pulumi.ComponentResource):
    """The role AWS Backup assumes; created before the data key, whose policy names it."""

    arn: pulumi.Output[str]

    def __init__(
        self, name: str, args: AwsBackupRoleArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(f"{PACKAGE}:backup:AwsBackupRole", name, None, opts)
        provider = require_provider(opts, "AwsBackupRole")
        self.role = iam_role(
            self,
            name,
            provider,
            args,
            description="AWS Backup takes, copies and restores the data stores' recovery points",
            assume_role_policy=to_json(
                service_trust_policy("backup.amazonaws.com", args.account_id)
            ),
        )
        self.attachments = [
            aws.iam.RolePolicyAttachment(
                f"{name}-{suffix}",
                role=self.role.name,
                policy_arn=policy.format(partition=args.partition),
                opts=child_opts(self, provider),
            )
            for suffix, policy in (("backup", BACKUP_POLICY), ("restore", RESTORE_POLICY))
        ]
        self.arn = self.role.arn
        self.register_outputs({"arn": self.arn})


class AwsBackupArgs(ComponentArgs):
    vault_name: str = Field(pattern=r"^[A-Za-z0-9_-]{2,50}$")
    kms_key_arn: KmsKeyArnInput
    lock_mode: Literal["compliance", "governance"]
    min_retention_days: int = Field(ge=1)
    """The lock's floor: the plan's ``delete_after`` (the seed's 90 days)."""
    max_retention_days: int = Field(ge=1, le=36500)
    """The lock's ceiling: the protected data class's retention."""
    changeable_for_days: int = Field(default=3, ge=3)
    plan_name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,50}$")
    schedule: str = Field(pattern=r"^cron\(.+\)$")
    delete_after_days: int = Field(ge=1)
    copy_to_vault_arn: str = Field(pattern=BACKUP_VAULT_ARN)
    role_arn: StrInput
    selected_resource_arns: list[StrInput] = Field(default_factory=list)
    """What the plan backs up now (the active region's cluster); empty: the plan waits."""
    protect: bool = True
    tags: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _retention_fits_the_lock(self) -> Self:
        if self.min_retention_days > self.max_retention_days:
            raise ValueError(
                f"min_retention_days: {self.min_retention_days} is above max_retention_days "
                f"{self.max_retention_days}"
            )
        if not self.min_retention_days <= self.delete_after_days <= self.max_retention_days:
            raise ValueError(
                f"delete_after_days: {self.delete_after_days} is outside the vault lock's "
                f"{self.min_retention_days}-{self.max_retention_days} days: AWS Backup would "
                "refuse every recovery point"
            )
        return self


class AwsBackup(pulumi.ComponentResource):
    """A region's AWS Backup vault (locked), its plan and the plan's selection."""

    vault_name: pulumi.Output[str]
    vault_arn: pulumi.Output[str]
    plan_id: pulumi.Output[str]
    plan_arn: pulumi.Output[str]

    def __init__(
        self, name: str, args: AwsBackupArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(f"{PACKAGE}:backup:AwsBackup", name, None, opts)
        provider = require_provider(opts, "AwsBackup")
        self.vault = aws.backup.Vault(
            f"{name}-vault",
            name=args.vault_name,
            kms_key_arn=args.kms_key_arn,
            force_destroy=False,
            tags=args.tags,
            opts=child_opts(self, provider, protect=args.protect),
        )
        self.lock = aws.backup.VaultLockConfiguration(
            f"{name}-vault-lock",
            backup_vault_name=self.vault.name,
            min_retention_days=args.min_retention_days,
            max_retention_days=args.max_retention_days,
            # a grace period makes it a compliance lock; without one it stays governance
            changeable_for_days=(
                args.changeable_for_days if args.lock_mode == "compliance" else None
            ),
            opts=child_opts(self, provider, protect=args.protect),
        )
        lifecycle: aws.backup.PlanRuleLifecycleArgsDict = {"delete_after": args.delete_after_days}
        rule: aws.backup.PlanRuleArgsDict = {
            "rule_name": "monthly-snapshot",
            "target_vault_name": self.vault.name,
            "schedule": args.schedule,
            "schedule_expression_timezone": "Etc/UTC",
            "start_window": 60,
            "completion_window": 24 * 60,
            "lifecycle": lifecycle,
            "copy_actions": [
                {"destination_vault_arn": args.copy_to_vault_arn, "lifecycle": lifecycle}
            ],
            "recovery_point_tags": args.tags,
        }
        self.plan = aws.backup.Plan(
            f"{name}-plan",
            name=args.plan_name,
            rules=[rule],
            tags=args.tags,
            opts=child_opts(self, provider, depends_on=[self.lock]),
        )
        self.selection: aws.backup.Selection | None = None
        if args.selected_resource_arns:
            self.selection = aws.backup.Selection(
                f"{name}-selection",
                name=f"{args.plan_name}-clusters",
                plan_id=self.plan.id,
                iam_role_arn=args.role_arn,
                resources=args.selected_resource_arns,
                opts=child_opts(self, provider),
            )
        self.vault_name = self.vault.name
        self.vault_arn = self.vault.arn
        self.plan_id = self.plan.id
        self.plan_arn = self.plan.arn
        self.register_outputs(
            {
                "vault_name": self.vault_name,
                "vault_arn": self.vault_arn,
                "plan_id": self.plan_id,
                "plan_arn": self.plan_arn,
            }
        )
