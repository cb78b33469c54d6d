"""The region's ElastiCache export staging bucket: where ``CopySnapshot`` writes a snapshot's
``.rdb`` objects before the backup streams them into the vault.

Why not export into the vault directly. ElastiCache writes the export itself, as an AWS service
account, and the vault refuses that writer three ways:

- **ACLs.** In the Regions enabled by default, the only documented way to let ElastiCache write
  is a bucket ACL granting its canonical user (``540804c3…`` in the ``aws`` partition) *List
  objects*, *Write objects* and *Read bucket permissions* (ElastiCache User Guide, "Exporting a
  backup", step 2). The vault is ``BucketOwnerEnforced``: ACLs are disabled, and S3 rejects the
  grant (``AccessControlListNotSupported``). Only Regions opted in after 2019-03-20 take a bucket
  policy for the regional service principal ``<region>.elasticache-snapshot.amazonaws.com``
  instead, and our Regions are not among them.
- **Encryption.** The vault encrypts with SSE-KMS under a customer key whose policy names each
  user; ElastiCache's account is not one and cannot be (a canonical user is no KMS principal), so
  its ``GenerateDataKey`` would be denied, and the vault's policy refuses any other encryption.
- **Object Lock.** Anything written to the vault is retained for its data class's full period; a
  failed or partial export could never be removed, and a retried one would collide.

So each region with an ElastiCache group gets this small bucket, and the backup (``drkit``'s
ElastiCache handler) exports the snapshot here, streams each ``.rdb`` into the vault and the
mirror like any other backup object (SHA-256 and size in the manifest, the vault's key and lock),
then deletes what it staged. The bucket:

- is in the group's region and account (the export requires it);
- keeps ACLs enabled with ``BucketOwnerPreferred`` ownership (the grant needs ACLs; objects written
  with ``bucket-owner-full-control`` become ours), grants ElastiCache's canonical user ``READ``,
  ``WRITE`` and ``READ_ACP`` on the bucket (default Regions) or the documented policy statement
  for the regional principal (opt-in Regions), and nobody else anything: the public access block
  is on (it stops public ACLs, not a grant to one canonical user);
- encrypts with SSE-S3 (ElastiCache cannot use our key; the policy pack accepts SSE-S3 only for a
  bucket tagged ``trading-dr:purpose=cache-export-staging`` whose objects expire within two days);
- expires everything after ``expire_days`` (one), noncurrent versions and incomplete uploads
  after a day, so a run that died before its clean-up leaves nothing for long;
- refuses plain HTTP, logs access to the region's access-log bucket, and is versioned like every
  bucket here (a deletion is a delete marker the lifecycle removes a day later).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import pulumi
import pulumi_aws as aws
from pydantic import Field

from components import s3
from components._common import (
    PACKAGE,
    PURPOSE_CACHE_EXPORT,
    ComponentArgs,
    StrInput,
    child_opts,
    policy_document,
    require_provider,
    to_json,
)

CANONICAL_IDS = {
    "aws": "540804c33a284a299d2547575ce1010f2312ef3da9b3a053c8bc45bf233e4353",
    "aws-us-gov": "40fa568277ad703bd160f66ae4f83fc9dfdfd06c2f1b5060ca22442ac3ef8be6",
    "aws-cn": "b14d6a125bdf69854ed8ef2e71d8a20b7c490f252229b806e514966e490b8d83",
}
"""ElastiCache's canonical user per partition (ElastiCache User Guide, "Exporting a backup")."""
DEFAULT_REGIONS = frozenset(
    {
        "us-east-1",
        "us-east-2",
        "us-west-1",
        "us-west-2",
        "ca-central-1",
        "sa-east-1",
        "eu-west-1",
        "eu-west-2",
        "eu-west-3",
        "eu-central-1",
        "eu-north-1",
        "ap-south-1",
        "ap-northeast-1",
        "ap-northeast-2",
        "ap-northeast-3",
        "ap-southeast-1",
        "ap-southeast-2",
        "us-gov-west-1",
        "us-gov-east-1",
        "cn-north-1",
        "cn-northwest-1",
    }
)
"""Regions enabled by default (introduced before 2019-03-20): ElastiCache is granted by ACL."""
GRANTED_PERMISSIONS = ["READ", "WRITE", "READ_ACP"]
"""List objects, write objects, read bucket permissions."""
OPT_IN_ACTIONS = [
    "s3:PutObject",
    "s3:GetObject",
    "s3:ListBucket",
    "s3:GetBucketAcl",
    "s3:ListMultipartUploadParts",
    "s3:ListBucketMultipartUploads",
]


@dataclass(frozen=True)
class ExportGrant:
    """How ElastiCache is let in: its canonical user by ACL, or its regional service principal."""

    canonical_id: str | None
    service_principal: str | None


def export_grant(partition: str, region: str) -> ExportGrant:
    """The documented grant for ``region``: ACL in a default Region, bucket policy otherwise."""
    if region in DEFAULT_REGIONS:
        if partition not in CANONICAL_IDS:
            raise ValueError(f"partition {partition!r}: no known ElastiCache canonical user")
        return ExportGrant(CANONICAL_IDS[partition], None)
    return ExportGrant(None, f"{region}.elasticache-snapshot.amazonaws.com")


def export_bucket_policy(bucket_arn: str, grant: ExportGrant) -> dict[str, Any]:
    """TLS only; in an opt-in Region, the regional ElastiCache principal's documented actions."""
    statements = [s3.deny_insecure_transport(bucket_arn)]
    if grant.service_principal is not None:
        statements.append(
            {
                "Sid": "ElastiCacheExportsSnapshots",
                "Effect": "Allow",
                "Principal": {"Service": grant.service_principal},
                "Action": OPT_IN_ACTIONS,
                "Resource": [bucket_arn, f"{bucket_arn}/*"],
            }
        )
    return policy_document(statements)


def export_acl(owner_id: str, grant: ExportGrant) -> aws.s3.BucketAclAccessControlPolicyArgsDict:
    """The bucket ACL (default Regions): the owner keeps full control, ElastiCache gets the three
    permissions the export needs."""
    assert grant.canonical_id is not None
    grants: list[aws.s3.BucketAclAccessControlPolicyGrantArgsDict] = [
        {"grantee": {"id": owner_id, "type": "CanonicalUser"}, "permission": "FULL_CONTROL"}
    ]
    for permission in GRANTED_PERMISSIONS:
        grants.append(
            {
                "grantee": {"id": grant.canonical_id, "type": "CanonicalUser"},
                "permission": permission,
            }
        )
    return {"owner": {"id": owner_id}, "grants": grants}


class CacheExportBucketArgs(ComponentArgs):
    platform: str = Field(min_length=1)
    stack_role: Literal["primary", "dr"]
    bucket_name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")
    region: str = Field(pattern=r"^[a-z]{2}(-gov)?-[a-z]+-\d$")
    partition: str = Field(default="aws", pattern=r"^aws[a-z-]*$")
    access_log_bucket: StrInput
    expire_days: int = Field(default=1, ge=1, le=2)
    """Staged exports live minutes; a day's margin covers a run killed before its clean-up."""
    protect: bool = True


class CacheExportBucket(pulumi.ComponentResource):
    """The staging bucket, its grant to ElastiCache, lifecycle and policy (module docstring)."""

    bucket_name: pulumi.Output[str]
    arn: pulumi.Output[str]

    def __init__(
        self, name: str, args: CacheExportBucketArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(f"{PACKAGE}:cache:CacheExportBucket", name, None, opts)
        provider = require_provider(opts, "CacheExportBucket")
        grant = export_grant(args.partition, args.region)
        self.hardened = s3.hardened_bucket(
            self,
            name,
            provider,
            args,
            purpose=PURPOSE_CACHE_EXPORT,
            object_lock=False,
            kms_key_arn=None,
            access_log_bucket=args.access_log_bucket,
            object_ownership="BucketOwnerPreferred",
        )
        self.bucket = self.hardened.bucket
        expiry = s3.expire_all_rule("expire-staged-exports", args.expire_days, 1)
        self.lifecycle = s3.lifecycle(self, name, self.hardened, provider, [expiry])
        policy = self.bucket.arn.apply(lambda arn: to_json(export_bucket_policy(arn, grant)))
        self.policy = s3.bucket_policy(self, name, self.hardened, provider, policy)
        self.acl: aws.s3.BucketAcl | None = None
        if grant.canonical_id is not None:
            owner = aws.s3.get_canonical_user_id_output(
                opts=pulumi.InvokeOptions(provider=provider)
            )
            self.acl = aws.s3.BucketAcl(
                f"{name}-acl",
                bucket=self.bucket.id,
                access_control_policy=owner.id.apply(lambda owner_id: export_acl(owner_id, grant)),
                opts=child_opts(self, provider, depends_on=[self.hardened.ownership]),
            )
        self.bucket_name = self.bucket.bucket
        self.arn = self.bucket.arn
        self.register_outputs({"bucket_name": self.bucket_name, "arn": self.arn})
