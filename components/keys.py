"""The vault key: a multi-region customer-managed KMS key in prod, its replica in dr.

The key policy names every principal explicitly and grants each only what it does (no account-root
``kms:*`` delegation): administrators manage but cannot use the key, the backup writer and the
operators use it only through S3 in the key's region, the replication role decrypts at the source
or encrypts at the destination, and the break-glass role can recover a locked-out key.

One use is direct, not through S3: the backup of Kubernetes state seals Secrets with a data key of
its own (``drkit.kubestate.sealing``). The roles that seal (``secret_sealer_arns``: the IRSA role
of each store of kind ``kubernetes``) may call ``GenerateDataKey``, and the roles that restore
(``secret_opener_arns``: the operators) ``Decrypt``, each only with the encryption context
``drkit:purpose`` = ``kubernetes-secrets`` (``stackmodels.sealing``). The sealers never get
``Decrypt``: a backup never opens what it sealed.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Self

import pulumi
import pulumi_aws as aws
from pydantic import Field, model_validator

from components._common import (
    PACKAGE,
    ComponentArgs,
    IamRoleArnInput,
    KmsKeyArnInput,
    child_opts,
    require_provider,
    to_json,
)
from stackmodels.sealing import KUBERNETES_SECRETS_PURPOSE, PURPOSE_CONTEXT_KEY, condition_key

ADMIN_ACTIONS = [
    "kms:CancelKeyDeletion",
    "kms:CreateAlias",
    "kms:DeleteAlias",
    "kms:DescribeKey",
    "kms:DisableKey",
    "kms:EnableKey",
    "kms:EnableKeyRotation",
    "kms:GetKeyPolicy",
    "kms:GetKeyRotationStatus",
    "kms:ListAliases",
    "kms:ListGrants",
    "kms:ListKeyPolicies",
    "kms:ListResourceTags",
    "kms:PutKeyPolicy",
    "kms:ReplicateKey",
    "kms:RevokeGrant",
    "kms:RotateKeyOnDemand",
    "kms:ScheduleKeyDeletion",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:UpdateAlias",
    "kms:UpdateKeyDescription",
    "kms:UpdatePrimaryRegion",
]
"""Manage, never use: no Encrypt/Decrypt/GenerateDataKey, no CreateGrant, no DisableKeyRotation."""

USE_VIA_S3_ACTIONS = ["kms:Decrypt", "kms:GenerateDataKey"]
SEAL_SECRETS_ACTIONS = ["kms:GenerateDataKey"]
OPEN_SECRETS_ACTIONS = ["kms:Decrypt"]
REPLICATION_SOURCE_ACTIONS = ["kms:Decrypt"]
REPLICATION_DESTINATION_ACTIONS = ["kms:Encrypt", "kms:GenerateDataKey"]
BREAK_GLASS_ACTIONS = [
    "kms:CancelKeyDeletion",
    "kms:Decrypt",
    "kms:DescribeKey",
    "kms:EnableKey",
    "kms:GetKeyPolicy",
    "kms:PutKeyPolicy",
]


class KeyRole(StrEnum):
    PRIMARY = "primary"
    """A multi-region primary key (prod)."""
    REPLICA = "replica"
    """A replica of the primary in another region (dr)."""


def key_policy(
    *,
    account_id: str,
    region: str,
    administrators: list[str],
    users: list[str],
    break_glass: str,
    replication_source: str | None = None,
    replication_destination: str | None = None,
    secret_sealers: list[str] | None = None,
    secret_openers: list[str] | None = None,
) -> dict[str, Any]:
    """The key policy document; ``users`` are the backup writer and the operators (ARNs);
    ``secret_sealers`` / ``secret_openers`` seal and open Kubernetes Secrets (module docstring)."""
    via_s3 = {
        "StringEquals": {
            "kms:ViaService": f"s3.{region}.amazonaws.com",
            "kms:CallerAccount": account_id,
        }
    }
    sealing = {"StringEquals": {condition_key(PURPOSE_CONTEXT_KEY): KUBERNETES_SECRETS_PURPOSE}}
    statements: list[dict[str, Any]] = [
        {
            "Sid": "KeyAdministration",
            "Effect": "Allow",
            "Principal": {"AWS": sorted(administrators)},
            "Action": ADMIN_ACTIONS,
            "Resource": "*",
        },
        {
            "Sid": "BackupUseThroughS3",
            "Effect": "Allow",
            "Principal": {"AWS": sorted(users)},
            "Action": USE_VIA_S3_ACTIONS,
            "Resource": "*",
            "Condition": via_s3,
        },
        {
            "Sid": "BreakGlass",
            "Effect": "Allow",
            "Principal": {"AWS": break_glass},
            "Action": BREAK_GLASS_ACTIONS,
            "Resource": "*",
        },
    ]
    if secret_sealers:
        statements.append(
            {
                "Sid": "SealKubernetesSecrets",
                "Effect": "Allow",
                "Principal": {"AWS": sorted(secret_sealers)},
                "Action": SEAL_SECRETS_ACTIONS,
                "Resource": "*",
                "Condition": sealing,
            }
        )
    if secret_openers:
        statements.append(
            {
                "Sid": "OpenKubernetesSecrets",
                "Effect": "Allow",
                "Principal": {"AWS": sorted(secret_openers)},
                "Action": OPEN_SECRETS_ACTIONS,
                "Resource": "*",
                "Condition": sealing,
            }
        )
    if replication_source is not None:
        statements.append(
            {
                "Sid": "ReplicationReadsSource",
                "Effect": "Allow",
                "Principal": {"AWS": replication_source},
                "Action": REPLICATION_SOURCE_ACTIONS,
                "Resource": "*",
                "Condition": via_s3,
            }
        )
    if replication_destination is not None:
        statements.append(
            {
                "Sid": "ReplicationWritesDestination",
                "Effect": "Allow",
                "Principal": {"AWS": replication_destination},
                "Action": REPLICATION_DESTINATION_ACTIONS,
                "Resource": "*",
                "Condition": via_s3,
            }
        )
    return {"Version": "2012-10-17", "Id": "trading-dr-vault-key", "Statement": statements}


class VaultKeyArgs(ComponentArgs):
    platform: str = Field(min_length=1)
    region: str = Field(pattern=r"^[a-z]{2}(-gov)?-[a-z]+-\d$")
    role: KeyRole
    account_id: str = Field(pattern=r"^\d{12}$")
    primary_key_arn: KmsKeyArnInput | None = None
    """Required for a replica: the multi-region primary (dr reads it from prod's outputs)."""
    administrator_arns: list[str] = Field(min_length=1)
    user_arns: list[IamRoleArnInput] = Field(min_length=1)
    """The backup writer and the operators: they use the key through S3 in ``region``."""
    break_glass_arn: IamRoleArnInput
    replication_source_role_arn: IamRoleArnInput | None = None
    """The replication role when this key encrypts the replication source (prod)."""
    replication_destination_role_arn: IamRoleArnInput | None = None
    """The replication role when this key encrypts the replication destination (dr)."""
    secret_sealer_arns: list[IamRoleArnInput] = Field(default_factory=list)
    """Roles that seal Kubernetes Secrets in backups: ``GenerateDataKey`` directly, only with the
    sealing encryption context (the IRSA roles of the stores of kind ``kubernetes``)."""
    secret_opener_arns: list[IamRoleArnInput] = Field(default_factory=list)
    """Roles that open sealed Secrets to restore or drill them: ``Decrypt`` directly, only with
    the sealing encryption context (the operators)."""
    deletion_window_days: int = Field(default=30, ge=7, le=30)
    rotation_period_days: int = Field(default=365, ge=90, le=2560)
    protect: bool = True
    tags: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _replica_names_primary(self) -> Self:
        if self.role is KeyRole.REPLICA and self.primary_key_arn is None:
            raise ValueError("primary_key_arn: a replica key needs its multi-region primary")
        if self.role is KeyRole.PRIMARY and self.primary_key_arn is not None:
            raise ValueError("primary_key_arn: only a replica key names a primary")
        if self.secret_sealer_arns and not self.secret_opener_arns:
            raise ValueError(
                "secret_opener_arns: roles seal Kubernetes Secrets with this key "
                "(secret_sealer_arns) but no role may open them, so no restore could read them"
            )
        return self


class VaultKey(pulumi.ComponentResource):
    """The region's vault key, with an alias ``alias/<platform>-backup-vault``."""

    arn: pulumi.Output[str]
    key_id: pulumi.Output[str]

    def __init__(
        self, name: str, args: VaultKeyArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(f"{PACKAGE}:security:VaultKey", name, None, opts)
        provider = require_provider(opts, "VaultKey")
        policy = pulumi.Output.all(
            users=pulumi.Output.all(*args.user_arns),
            break_glass=args.break_glass_arn,
            source=args.replication_source_role_arn,
            destination=args.replication_destination_role_arn,
            sealers=pulumi.Output.all(*args.secret_sealer_arns),
            openers=pulumi.Output.all(*args.secret_opener_arns),
        ).apply(
            lambda v: to_json(
                key_policy(
                    account_id=args.account_id,
                    region=args.region,
                    administrators=args.administrator_arns,
                    users=list(v["users"]),
                    break_glass=v["break_glass"],
                    replication_source=v["source"],
                    replication_destination=v["destination"],
                    secret_sealers=list(v["sealers"]),
                    secret_openers=list(v["openers"]),
                )
            )
        )
        description = f"{args.platform} backup vault key ({args.role.value}, {args.region})"
        key: aws.kms.Key | aws.kms.ReplicaKey
        if args.role is KeyRole.PRIMARY:
            key = aws.kms.Key(
                f"{name}-key",
                description=description,
                multi_region=True,
                enable_key_rotation=True,
                rotation_period_in_days=args.rotation_period_days,
                key_usage="ENCRYPT_DECRYPT",
                customer_master_key_spec="SYMMETRIC_DEFAULT",
                deletion_window_in_days=args.deletion_window_days,
                policy=policy,
                tags=args.tags,
                opts=child_opts(self, provider, protect=args.protect),
            )
        else:
            assert args.primary_key_arn is not None
            key = aws.kms.ReplicaKey(
                f"{name}-replica",
                description=description,
                primary_key_arn=args.primary_key_arn,
                deletion_window_in_days=args.deletion_window_days,
                policy=policy,
                tags=args.tags,
                opts=child_opts(self, provider, protect=args.protect),
            )
        self.key = key
        self.arn = key.arn
        self.key_id = key.key_id
        self.alias = aws.kms.Alias(
            f"{name}-alias",
            name=f"alias/{args.platform}-backup-vault",
            target_key_id=key.key_id,
            opts=child_opts(self, provider),
        )
        self.register_outputs({"arn": self.arn, "key_id": self.key_id})
