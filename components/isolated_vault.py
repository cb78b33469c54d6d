"""The isolated backup account's vault (stack ``vault``): copies a compromised production account
cannot delete (issue 22).

Everything lives in the vault account and its own region: the vault bucket (Object Lock
COMPLIANCE by default, the classes' lifecycle, TLS only, owner-enforced, private), its own KMS
key, the access-log bucket, and an audit trail (CloudTrail with the vault's S3 data events) into a
locked bucket. The production accounts get exactly this, by the bucket and key policies:

- each writer (a production account's backup roles, matched by ``aws:PrincipalArn``) may
  ``s3:PutObject`` under its prefixes and nothing else; the put must carry ``If-None-Match`` (a
  create, never an overwrite: ``s3:if-none-match``, multipart parts exempted by
  ``s3:ObjectCreationOperation``) and any encryption it asks for must be the vault key. Objects
  take the bucket's default retention: ``s3:PutObjectRetention`` is denied to other accounts, so
  a writer cannot ask for a lock per object (nor shorten one);
- the key lets the writers ``kms:GenerateDataKey`` and ``kms:Decrypt`` only through S3 in the
  vault's region and only for this bucket (``kms:EncryptionContext:aws:s3:arn``): S3 needs
  Decrypt for a multipart upload under SSE-KMS. It reads nothing back for them: a writer has no
  ``s3:GetObject`` there, and KMS directly (not through S3) refuses it;
- one direct use: a writer may ``kms:Encrypt`` (never Decrypt) with the encryption context of a
  Kubernetes Secrets data key (``drkit:purpose`` = ``kubernetes-secrets``, ``drkit:backup`` under
  its prefixes: ``stackmodels.sealing``), wrapping the data key of its own backup under this key,
  so the isolated copy's Secrets open without the production key; the reader role may
  ``kms:Decrypt`` directly with that purpose only, to open them;
- every principal outside the vault account is denied deleting objects or versions, changing
  retention, legal holds, governance bypass, the policy, the lifecycle, Object Lock, versioning,
  encryption, replication, ACLs and ownership, whatever another statement allows;
- the reader role, in the vault account, may be assumed by the named roles of the dr account
  (``aws:PrincipalArn``) and may list, read and decrypt (through S3); its one write is the lease
  of a restore from this vault (``leases/restore/``: create-only generations, the bucket's
  default lock, no lock headers, the key through S3), so a restore after an account compromise
  needs nothing of the production account. Every other put and every delete is denied to it.

The trust is by account and ``aws:PrincipalArn`` condition, not by role ARN as principal: the
production roles need not exist when the vault stack is created, and a role deleted and recreated
in a production account gets no access it did not have by name.
"""

from __future__ import annotations

import re
from typing import Any

import pulumi
import pulumi_aws as aws
from pydantic import Field

from components._common import (
    PACKAGE,
    ComponentArgs,
    child_opts,
    policy_document,
    require_provider,
    to_json,
)
from components.access_logs import AccessLogBucket, AccessLogBucketArgs
from components.audit_bucket import AuditBucket, AuditBucketArgs
from components.backup_vault import BackupVault, BackupVaultArgs, VaultDataClass
from components.iam import iam_role, inline_policy, trust_policy
from components.keys import administration_statement, break_glass_statement, customer_key
from stackmodels.sealing import (
    BACKUP_CONTEXT_KEY,
    KUBERNETES_SECRETS_PURPOSE,
    PURPOSE_CONTEXT_KEY,
    condition_key,
)

STACK_ROLE = "vault"
OUTSIDE_DENIED_ACTIONS = [
    "s3:BypassGovernanceRetention",
    "s3:DeleteBucket",
    "s3:DeleteBucketPolicy",
    "s3:DeleteObject*",
    "s3:PutBucketAcl",
    "s3:PutBucketLogging",
    "s3:PutBucketObjectLockConfiguration",
    "s3:PutBucketOwnershipControls",
    "s3:PutBucketPolicy",
    "s3:PutBucketPublicAccessBlock",
    "s3:PutBucketVersioning",
    "s3:PutEncryptionConfiguration",
    "s3:PutLifecycleConfiguration",
    "s3:PutObjectAcl",
    "s3:PutObjectLegalHold",
    "s3:PutObjectRetention",
    "s3:PutObjectTagging",
    "s3:PutObjectVersionAcl",
    "s3:PutObjectVersionTagging",
    "s3:PutReplicationConfiguration",
]
"""What no principal outside the vault account may do to the vault, whatever is allowed."""
WRITER_ACTIONS = ["s3:PutObject"]
WRITER_KEY_ACTIONS = ["kms:Decrypt", "kms:GenerateDataKey"]
"""Through S3 for this bucket only; Decrypt is what a multipart upload under SSE-KMS needs."""
READER_OBJECT_ACTIONS = [
    "s3:GetObject",
    "s3:GetObjectAttributes",
    "s3:GetObjectRetention",
    "s3:GetObjectVersion",
]
READER_BUCKET_ACTIONS = ["s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketVersions"]
READER_KEY_ACTIONS = ["kms:Decrypt", "kms:DescribeKey", "kms:GenerateDataKey"]
"""Through S3 only: reading objects back, and sealing the restore leases it creates."""
RESTORE_LEASES = "leases/restore/"
"""Where a restore from this vault holds its target's lease (``drkit.ops.run``)."""
WRITER_WRAP_ACTIONS = ["kms:Encrypt"]
"""Directly (not through S3), only for a Kubernetes Secrets data key of the writer's prefixes."""
READER_OPEN_ACTIONS = ["kms:Decrypt"]
"""Directly, only for a Kubernetes Secrets data key: the isolated copy's Secrets."""


class Writer(ComponentArgs):
    """A production account's backup roles and the prefixes they may create objects under."""

    name: str = Field(pattern=r"^[a-z][a-z0-9-]{0,40}$")
    account_id: str = Field(pattern=r"^\d{12}$")
    role_arns: list[str] = Field(min_length=1)
    prefixes: list[str] = Field(min_length=1)

    @property
    def sid(self) -> str:
        return "".join(part.capitalize() for part in re.split(r"-", self.name))


class IsolatedVaultArgs(ComponentArgs):
    platform: str = Field(min_length=1)
    account_id: str = Field(pattern=r"^\d{12}$")
    region: str = Field(pattern=r"^[a-z]{2}(-gov)?-[a-z]+-\d$")
    partition: str = Field(default="aws", pattern=r"^aws[a-z-]*$")
    vault_bucket_name: str
    audit_bucket_name: str
    access_log_bucket_name: str
    trail_name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{2,127}$")
    reader_role_name: str = Field(pattern=r"^[A-Za-z0-9+=,.@_-]{1,64}$")
    administrator_arns: list[str] = Field(min_length=1)
    break_glass_arn: str
    writers: list[Writer] = Field(min_length=1)
    reader_account_id: str = Field(pattern=r"^\d{12}$")
    reader_principal_arns: list[str] = Field(min_length=1)
    reader_max_session_hours: int = Field(default=1, ge=1, le=12)
    data_classes: list[VaultDataClass] = Field(min_length=1)
    audit_lock_mode: str = "COMPLIANCE"
    audit_retention_days: int = Field(ge=1)
    access_log_retention_days: int = Field(default=365, ge=1)
    rotation_period_days: int = Field(default=365, ge=90, le=2560)
    deletion_window_days: int = Field(default=30, ge=7, le=30)
    protect: bool = True
    tags: dict[str, str] = Field(default_factory=dict)

    def root(self, account: str) -> str:
        return f"arn:{self.partition}:iam::{account}:root"

    @property
    def trail_arn(self) -> str:
        return (
            f"arn:{self.partition}:cloudtrail:{self.region}:{self.account_id}:"
            f"trail/{self.trail_name}"
        )

    @property
    def vault_arn(self) -> str:
        return f"arn:{self.partition}:s3:::{self.vault_bucket_name}"

    @property
    def reader_role_arn(self) -> str:
        return f"arn:{self.partition}:iam::{self.account_id}:role/{self.reader_role_name}"


# ---- policies (pure: tested without Pulumi) ---------------------------------------------------


def outside_account(account_id: str) -> dict[str, Any]:
    """True for a principal of any account but ``account_id`` (and for AWS services)."""
    return {"StringNotEquals": {"aws:PrincipalAccount": account_id}}


def vault_statements(
    args: IsolatedVaultArgs, bucket_arn: str, key_arn: str
) -> list[dict[str, Any]]:
    """The cross-account part of the vault's bucket policy (module docstring)."""
    objects = f"{bucket_arn}/*"
    statements: list[dict[str, Any]] = [
        {
            "Sid": f"Writer{writer.sid}CreatesUnderItsPrefixes",
            "Effect": "Allow",
            "Principal": {"AWS": args.root(writer.account_id)},
            "Action": WRITER_ACTIONS,
            "Resource": [f"{bucket_arn}/{prefix}*" for prefix in writer.prefixes],
            "Condition": {"ArnLike": {"aws:PrincipalArn": sorted(writer.role_arns)}},
        }
        for writer in args.writers
    ]
    statements += [
        {
            "Sid": "OutsideNeverDeletesOrReconfigures",
            "Effect": "Deny",
            "Principal": "*",
            "Action": OUTSIDE_DENIED_ACTIONS,
            "Resource": [bucket_arn, objects],
            "Condition": outside_account(args.account_id),
        },
        {
            "Sid": "OutsideCreatesOnly",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:PutObject",
            "Resource": objects,
            "Condition": {
                **outside_account(args.account_id),
                "Null": {"s3:if-none-match": "true"},
                "Bool": {"s3:ObjectCreationOperation": "true"},
            },
        },
    ]
    return statements


def isolated_key_policy(args: IsolatedVaultArgs) -> dict[str, Any]:
    """The vault key's policy: administrators manage, break-glass recovers, the writers use it
    through S3 for this bucket (multipart uploads) and wrap their Secrets data keys (Encrypt, that
    purpose and their prefixes only), the reader decrypts through S3 and opens Secrets data keys,
    CloudTrail encrypts this account's trail's log files."""
    via_s3 = f"s3.{args.region}.amazonaws.com"
    bucket_context = {"kms:EncryptionContext:aws:s3:arn": [args.vault_arn, f"{args.vault_arn}/*"]}
    statements = [
        administration_statement(args.administrator_arns),
        break_glass_statement(args.break_glass_arn),
    ]
    statements += [
        {
            "Sid": f"Writer{writer.sid}UploadsThroughS3",
            "Effect": "Allow",
            "Principal": {"AWS": args.root(writer.account_id)},
            "Action": WRITER_KEY_ACTIONS,
            "Resource": "*",
            "Condition": {
                "StringEquals": {"kms:ViaService": via_s3},
                "StringLike": bucket_context,
                "ArnLike": {"aws:PrincipalArn": sorted(writer.role_arns)},
            },
        }
        for writer in args.writers
    ]
    statements += [
        {
            "Sid": f"Writer{writer.sid}WrapsSecretsKeys",
            "Effect": "Allow",
            "Principal": {"AWS": args.root(writer.account_id)},
            "Action": WRITER_WRAP_ACTIONS,
            "Resource": "*",
            "Condition": {
                "StringEquals": secrets_purpose(),
                "StringLike": {
                    condition_key(BACKUP_CONTEXT_KEY): sorted(f"{p}*" for p in writer.prefixes)
                },
                "ArnLike": {"aws:PrincipalArn": sorted(writer.role_arns)},
            },
        }
        for writer in args.writers
    ]
    statements += [
        {
            "Sid": "ReaderOpensSecretsKeys",
            "Effect": "Allow",
            "Principal": {"AWS": args.reader_role_arn},
            "Action": READER_OPEN_ACTIONS,
            "Resource": "*",
            "Condition": {"StringEquals": secrets_purpose()},
        },
        {
            "Sid": "ReaderDecryptsThroughS3",
            "Effect": "Allow",
            "Principal": {"AWS": args.reader_role_arn},
            "Action": READER_KEY_ACTIONS,
            "Resource": "*",
            "Condition": {"StringEquals": {"kms:ViaService": via_s3}},
        },
        {
            "Sid": "CloudTrailEncryptsLogs",
            "Effect": "Allow",
            "Principal": {"Service": "cloudtrail.amazonaws.com"},
            "Action": ["kms:DescribeKey", "kms:GenerateDataKey*"],
            "Resource": "*",
            "Condition": {"StringEquals": {"aws:SourceArn": args.trail_arn}},
        },
    ]
    return policy_document(statements, policy_id="trading-dr-isolated-vault-key")


def secrets_purpose() -> dict[str, str]:
    """The encryption context of a Kubernetes Secrets data key, as a condition."""
    return {condition_key(PURPOSE_CONTEXT_KEY): KUBERNETES_SECRETS_PURPOSE}


def reader_trust(args: IsolatedVaultArgs) -> dict[str, Any]:
    """The named roles of the dr account, and no other principal of it."""
    return trust_policy(
        {"AWS": args.root(args.reader_account_id)},
        {"ArnLike": {"aws:PrincipalArn": sorted(args.reader_principal_arns)}},
    )


def reader_policy(vault_arn: str, key_arn: str, region: str) -> dict[str, Any]:
    return policy_document(
        [
            {
                "Sid": "ListVault",
                "Effect": "Allow",
                "Action": READER_BUCKET_ACTIONS,
                "Resource": vault_arn,
            },
            {
                "Sid": "ReadBackups",
                "Effect": "Allow",
                "Action": READER_OBJECT_ACTIONS,
                "Resource": f"{vault_arn}/*",
            },
            {
                "Sid": "DecryptThroughS3",
                "Effect": "Allow",
                "Action": READER_KEY_ACTIONS,
                "Resource": key_arn,
                "Condition": {"StringEquals": {"kms:ViaService": f"s3.{region}.amazonaws.com"}},
            },
            {
                "Sid": "OpenSecretsKeys",
                "Effect": "Allow",
                "Action": READER_OPEN_ACTIONS,
                "Resource": key_arn,
                "Condition": {"StringEquals": secrets_purpose()},
            },
            {
                "Sid": "HoldsRestoreLeases",
                "Effect": "Allow",
                "Action": "s3:PutObject",
                "Resource": f"{vault_arn}/{RESTORE_LEASES}*",
            },
            {
                "Sid": "NeverDeletes",
                "Effect": "Deny",
                "Action": ["s3:Delete*", "s3:BypassGovernanceRetention"],
                "Resource": [vault_arn, f"{vault_arn}/*"],
            },
            {
                # Every put but a restore lease's object (no retention, legal hold, ACL, tagging
                # or bucket setting there either: only s3:PutObject is allowed above).
                "Sid": "NeverWritesButRestoreLeases",
                "Effect": "Deny",
                "Action": "s3:Put*",
                "NotResource": f"{vault_arn}/{RESTORE_LEASES}*",
            },
        ]
    )


# ---- the component ----------------------------------------------------------------------------


class IsolatedVault(pulumi.ComponentResource):
    """The vault account's key, vault, access logs, audit trail and reader role."""

    vault_bucket_name: pulumi.Output[str]
    vault_arn: pulumi.Output[str]
    key_arn: pulumi.Output[str]
    reader_role_arn: pulumi.Output[str]

    def __init__(
        self, name: str, args: IsolatedVaultArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(f"{PACKAGE}:storage:IsolatedVault", name, None, opts)
        provider = require_provider(opts, "IsolatedVault")
        child = pulumi.ResourceOptions(parent=self, provider=provider)
        # The reader role exists before the key, whose policy names it; its policy, which names
        # the key, comes after.
        self.reader = iam_role(
            self,
            f"{name}-reader",
            provider,
            _RoleArgs(role_name=args.reader_role_name, tags=args.tags),
            description="Restores from the isolated vault: list, read, decrypt (dr operators)",
            assume_role_policy=to_json(reader_trust(args)),
            max_session_duration=args.reader_max_session_hours * 3600,
        )
        self.key = customer_key(
            self,
            name,
            provider,
            args,
            description=f"{args.platform} isolated backup vault key ({args.region})",
            policy=self.reader.arn.apply(lambda _: to_json(isolated_key_policy(args))),
        )
        self.alias = aws.kms.Alias(
            f"{name}-alias",
            name=f"alias/{args.platform}-isolated-vault",
            target_key_id=self.key.key_id,
            opts=child_opts(self, provider),
        )
        self.logs = AccessLogBucket(
            f"{name}-access-logs",
            AccessLogBucketArgs(
                platform=args.platform,
                stack_role=STACK_ROLE,
                bucket_name=args.access_log_bucket_name,
                account_id=args.account_id,
                retention_days=args.access_log_retention_days,
                protect=args.protect,
            ),
            child,
        )
        self.vault = BackupVault(
            name,
            BackupVaultArgs(
                platform=args.platform,
                stack_role=STACK_ROLE,
                bucket_name=args.vault_bucket_name,
                kms_key_arn=self.key.arn,
                access_log_bucket=self.logs.bucket_name,
                data_classes=args.data_classes,
                protect=args.protect,
                extra_statements=lambda bucket, key: vault_statements(args, bucket, key),
            ),
            child,
        )
        self.reader_policy = inline_policy(
            self,
            f"{name}-reader",
            provider,
            self.reader,
            pulumi.Output.all(self.vault.arn, self.key.arn).apply(
                lambda v: to_json(reader_policy(v[0], v[1], args.region))
            ),
        )
        self.audit = AuditBucket(
            f"{name}-audit",
            AuditBucketArgs(
                platform=args.platform,
                stack_role=STACK_ROLE,
                bucket_name=args.audit_bucket_name,
                kms_key_arn=self.key.arn,
                access_log_bucket=self.logs.bucket_name,
                lock_mode="COMPLIANCE" if args.audit_lock_mode == "COMPLIANCE" else "GOVERNANCE",
                retention_days=args.audit_retention_days,
                trail_arn=args.trail_arn,
                protect=args.protect,
            ),
            child,
        )
        self.trail = aws.cloudtrail.Trail(
            f"{name}-trail",
            name=args.trail_name,
            s3_bucket_name=self.audit.bucket_name,
            kms_key_id=self.key.arn,
            enable_log_file_validation=True,
            include_global_service_events=True,
            is_multi_region_trail=False,
            event_selectors=[
                {
                    "read_write_type": "All",
                    "include_management_events": True,
                    "data_resources": [
                        {"type": "AWS::S3::Object", "values": [f"{args.vault_arn}/"]}
                    ],
                }
            ],
            tags=args.tags,
            opts=child_opts(self, provider, depends_on=[self.audit.policy]),
        )
        self.vault_bucket_name = self.vault.bucket_name
        self.vault_arn = self.vault.arn
        self.key_arn = self.key.arn
        self.reader_role_arn = self.reader.arn
        self.register_outputs(
            {
                "vault_bucket_name": self.vault_bucket_name,
                "key_arn": self.key_arn,
                "reader_role_arn": self.reader_role_arn,
            }
        )


class _RoleArgs(ComponentArgs):
    role_name: str
    tags: dict[str, str] = Field(default_factory=dict)
