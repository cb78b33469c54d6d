"""The backup vault: one S3 bucket per region, data classes as prefixes.

Layout ``<data class>/<store>/<UTC date path>/<backup id>/...`` with ``manifest.json`` last. Each
data class gets its own lifecycle rule (tiers, expiry at its retention) on its prefix. Object Lock's
default retention is bucket-wide, so it is the strictest class's (compliance, the longest days): an
object whose writer asks for nothing is over-protected, never under-protected. Writers of the
other classes ask for their class's lock per object (``x-amz-object-lock-*`` headers), and the
bucket policy denies a put under a class's prefix that asks for less than the class needs.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated, Any, Literal, Self

import pulumi
import pulumi_aws as aws
from pydantic import Field, model_validator

from components import s3
from components._common import (
    PACKAGE,
    PURPOSE_VAULT,
    ComponentArgs,
    KmsKeyArnInput,
    StrInput,
    policy_document,
    require_provider,
    to_json,
    unique_names,
)

LockMode = Literal["COMPLIANCE", "GOVERNANCE"]
StorageClass = Literal[
    "STANDARD_IA", "GLACIER", "DEEP_ARCHIVE", "GLACIER_IR", "INTELLIGENT_TIERING"
]
_STRENGTH = {"GOVERNANCE": 0, "COMPLIANCE": 1}
CATALOG_PREFIX = "catalog/"
CATALOG_NONCURRENT_DAYS = 7
LEASE_PREFIX = "leases/"
LEASE_EXPIRATION_DAYS = 7
"""A run's lease objects (``drkit.lease``) are locked a day past their expiry; gone a week on."""


class Tier(ComponentArgs):
    storage_class: StorageClass
    days: int = Field(ge=1)


class VaultDataClass(ComponentArgs):
    """A data class as the vault sees it: a prefix, a lock and a lifecycle."""

    name: str = Field(pattern=r"^[a-z][a-z0-9-]{1,40}[a-z0-9]$")
    lock_mode: LockMode
    retention_days: int = Field(ge=1, le=36500)
    tiers: list[Tier] = Field(default_factory=list)

    @property
    def prefix(self) -> str:
        return f"{self.name}/"

    @model_validator(mode="after")
    def _expires_after_last_tier(self) -> Self:
        days = [tier.days for tier in self.tiers]
        if days != sorted(set(days)):
            raise ValueError(f"tiers: days must increase from tier to tier, got {days}")
        if days and self.retention_days <= days[-1]:
            raise ValueError(
                f"retention_days: {self.retention_days} must be after the last tier "
                f"({days[-1]} days) of data class {self.name!r}"
            )
        return self


class BackupVaultArgs(ComponentArgs):
    platform: str = Field(min_length=1)
    stack_role: Literal["primary", "dr", "vault"]
    bucket_name: StrInput
    """Explicit and deterministic (``components.naming.vault_bucket_name``): prod replicates to
    the dr vault by name without reading the dr stack."""
    kms_key_arn: KmsKeyArnInput
    access_log_bucket: StrInput
    data_classes: Annotated[list[VaultDataClass], unique_names("data_classes")] = Field(
        min_length=1
    )
    noncurrent_version_expiration_days: int = Field(default=30, ge=1)
    abort_incomplete_multipart_days: int = Field(default=1, ge=1)
    protect: bool = True
    extra_statements: Callable[[str, str], list[dict[str, Any]]] | None = None
    """More bucket-policy statements, from the bucket's and the key's ARNs (the isolated vault's
    cross-account grants and denials, ``components.isolated_vault``)."""

    @property
    def default_lock(self) -> VaultDataClass:
        """The strictest class: compliance before governance, then the longest retention."""
        return max(self.data_classes, key=lambda c: (_STRENGTH[c.lock_mode], c.retention_days))


def lifecycle_rules(
    args: BackupVaultArgs,
) -> list[aws.s3.BucketLifecycleConfigurationRuleArgsDict]:
    rules: list[aws.s3.BucketLifecycleConfigurationRuleArgsDict] = []
    for data_class in args.data_classes:
        rules.append(
            {
                "id": f"class-{data_class.name}",
                "status": "Enabled",
                "filter": {"prefix": data_class.prefix},
                "transitions": [
                    {"days": tier.days, "storage_class": tier.storage_class}
                    for tier in data_class.tiers
                ],
                "expiration": {"days": data_class.retention_days},
                "noncurrent_version_expiration": {
                    "noncurrent_days": args.noncurrent_version_expiration_days
                },
            }
        )
    rules.append(
        {
            # The backup catalog (drkit/catalog.py) is append-only: small objects written once,
            # locked like the backups they describe, so they go with the longest-kept class.
            # (Catalogs of older builds rewrote day segments: their noncurrent versions go a
            # week later.)
            "id": "catalog",
            "status": "Enabled",
            "filter": {"prefix": CATALOG_PREFIX},
            "expiration": {"days": max(c.retention_days for c in args.data_classes)},
            "noncurrent_version_expiration": {"noncurrent_days": CATALOG_NONCURRENT_DAYS},
        }
    )
    rules.append(
        {
            "id": "leases",
            "status": "Enabled",
            "filter": {"prefix": LEASE_PREFIX},
            "expiration": {"days": LEASE_EXPIRATION_DAYS},
            "noncurrent_version_expiration": {"noncurrent_days": 1},
        }
    )
    rules.append(
        {
            "id": "housekeeping",
            "status": "Enabled",
            "filter": {"prefix": ""},
            "abort_incomplete_multipart_upload": {
                "days_after_initiation": args.abort_incomplete_multipart_days
            },
            "expiration": {"expired_object_delete_marker": True},
        }
    )
    return rules


def vault_policy(bucket_arn: str, key_arn: str, args: BackupVaultArgs) -> str:
    statements = [s3.deny_insecure_transport(bucket_arn)]
    statements += s3.deny_other_encryption(bucket_arn, key_arn)
    for data_class in args.data_classes:
        sid = "Class" + "".join(part.capitalize() for part in re.split(r"-", data_class.name))
        statements += s3.deny_weaker_object_lock(
            bucket_arn, data_class.prefix, data_class.lock_mode, data_class.retention_days, sid
        )
    if args.extra_statements is not None:
        statements += args.extra_statements(bucket_arn, key_arn)
    return to_json(policy_document(statements))


class BackupVault(pulumi.ComponentResource):
    """The region's backup vault (see the module docstring for the layout and the locks)."""

    bucket_name: pulumi.Output[str]
    arn: pulumi.Output[str]

    def __init__(
        self, name: str, args: BackupVaultArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(f"{PACKAGE}:storage:BackupVault", name, None, opts)
        provider = require_provider(opts, "BackupVault")
        self.hardened = s3.hardened_bucket(
            self,
            name,
            provider,
            args,
            purpose=PURPOSE_VAULT,
            object_lock=True,
            kms_key_arn=args.kms_key_arn,
            access_log_bucket=args.access_log_bucket,
        )
        self.bucket = self.hardened.bucket
        strictest = args.default_lock
        self.object_lock = s3.default_retention(
            self,
            name,
            self.hardened,
            provider,
            mode=strictest.lock_mode,
            days=strictest.retention_days,
        )
        self.lifecycle = s3.lifecycle(self, name, self.hardened, provider, lifecycle_rules(args))
        policy = pulumi.Output.all(self.bucket.arn, args.kms_key_arn).apply(
            lambda v: vault_policy(v[0], v[1], args)
        )
        self.policy = s3.bucket_policy(self, name, self.hardened, provider, policy)
        self.bucket_name = self.bucket.bucket
        self.arn = self.bucket.arn
        self.register_outputs({"bucket_name": self.bucket_name, "arn": self.arn})
