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
from typing import Any, Protocol, Self

import pulumi
import pulumi_aws as aws
from pydantic import Field, model_validator

from components._common import (
    PACKAGE,
    ComponentArgs,
    IamRoleArnInput,
    KmsKeyArnInput,
    child_opts,
    policy_document,
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


def key_statement(
    sid: str,
    principal: dict[str, Any],
    actions: list[str],
    condition: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Allow ``principal`` the ``actions`` on this key (``*`` in a key policy), under
    ``condition`` when given."""
    statement: dict[str, Any] = {
        "Sid": sid,
        "Effect": "Allow",
        "Principal": principal,
        "Action": actions,
        "Resource": "*",
    }
    if condition is not None:
        statement["Condition"] = condition
    return statement


def administration_statement(administrators: list[str]) -> dict[str, Any]:
    """The administrators manage the key and never use it (``ADMIN_ACTIONS``)."""
    return key_statement("KeyAdministration", {"AWS": sorted(administrators)}, ADMIN_ACTIONS)


def break_glass_statement(break_glass: str) -> dict[str, Any]:
    """The break-glass role can recover a locked-out key."""
    return key_statement("BreakGlass", {"AWS": break_glass}, BREAK_GLASS_ACTIONS)


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
        administration_statement(administrators),
        key_statement("BackupUseThroughS3", {"AWS": sorted(users)}, USE_VIA_S3_ACTIONS, via_s3),
        break_glass_statement(break_glass),
    ]
    if secret_sealers:
        statements.append(
            key_statement(
                "SealKubernetesSecrets",
                {"AWS": sorted(secret_sealers)},
                SEAL_SECRETS_ACTIONS,
                sealing,
            )
        )
    if secret_openers:
        statements.append(
            key_statement(
                "OpenKubernetesSecrets",
                {"AWS": sorted(secret_openers)},
                OPEN_SECRETS_ACTIONS,
                sealing,
            )
        )
    if replication_source is not None:
        statements.append(
            key_statement(
                "ReplicationReadsSource",
                {"AWS": replication_source},
                REPLICATION_SOURCE_ACTIONS,
                via_s3,
            )
        )
    if replication_destination is not None:
        statements.append(
            key_statement(
                "ReplicationWritesDestination",
                {"AWS": replication_destination},
                REPLICATION_DESTINATION_ACTIONS,
                via_s3,
            )
        )
    return policy_document(statements, policy_id="trading-dr-vault-key")


class KeyArgs(Protocol):
    """The args fields every component with a customer key has."""

    @property
    def rotation_period_days(self) -> int: ...
    @property
    def deletion_window_days(self) -> int: ...
    @property
    def tags(self) -> dict[str, str]: ...
    @property
    def protect(self) -> bool: ...


def customer_key(
    owner: pulumi.Resource,
    name: str,
    provider: pulumi.ProviderResource,
    args: KeyArgs,
    *,
    description: str,
    policy: pulumi.Input[str],
    multi_region: bool | None = None,
) -> aws.kms.Key:
    """A symmetric customer-managed key ``<name>-key`` with automatic rotation
    (``multi_region``: a multi-region primary; unset: a single-region key)."""
    return aws.kms.Key(
        f"{name}-key",
        description=description,
        multi_region=multi_region,
        enable_key_rotation=True,
        rotation_period_in_days=args.rotation_period_days,
        key_usage="ENCRYPT_DECRYPT",
        customer_master_key_spec="SYMMETRIC_DEFAULT",
        deletion_window_in_days=args.deletion_window_days,
        policy=policy,
        tags=args.tags,
        opts=child_opts(owner, provider, protect=args.protect),
    )


def key_alias(
    owner: pulumi.Resource,
    name: str,
    provider: pulumi.ProviderResource,
    *,
    alias: str,
    key: aws.kms.Key | aws.kms.ReplicaKey,
) -> aws.kms.Alias:
    """The alias ``<name>-alias``: ``alias/<alias>`` names ``key``."""
    return aws.kms.Alias(
        f"{name}-alias",
        name=f"alias/{alias}",
        target_key_id=key.key_id,
        opts=child_opts(owner, provider),
    )


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
            key = customer_key(
                self,
                name,
                provider,
                args,
                description=description,
                policy=policy,
                multi_region=True,
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
        self.alias = key_alias(self, name, provider, alias=f"{args.platform}-backup-vault", key=key)
        self.register_outputs({"arn": self.arn, "key_id": self.key_id})
