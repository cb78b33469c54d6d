"""The GCS mirror: a third copy of every backup, outside AWS, created by the prod stack only.

Immutability: GCS offers either a bucket retention policy (which excludes Object Versioning) or
versioning with Object Retention Lock (a per-object retention the writer sets, which needs
``storage.objects.setRetention`` — more than objectCreator). This mirror takes a *locked bucket
retention policy without versioning*: every object is undeletable and unreplaceable for the
shortest data class retention, by anyone, including project owners, and the writer needs only
objectCreator (which cannot delete or overwrite anyway). Lifecycle deletes each class's objects at
its own retention, mirrors the S3 tiers (NEARLINE, COLDLINE, ARCHIVE) and aborts incomplete
multipart uploads after a day. The longer financial retention is enforced by the S3 vaults'
compliance-mode Object Lock in two regions; the mirror guarantees the floor.
"""

from __future__ import annotations

from typing import Annotated, Literal

import pulumi
import pulumi_gcp as gcp
from pydantic import Field

from components._common import (
    PACKAGE,
    ComponentArgs,
    child_opts,
    require_provider,
    unique_names,
)

GCS_TIER = {"STANDARD_IA": "NEARLINE", "GLACIER": "COLDLINE", "DEEP_ARCHIVE": "ARCHIVE"}
"""The S3 storage classes of the vault's tiers and their GCS counterparts."""
WRITER_ROLES = ["roles/storage.objectCreator", "roles/storage.objectViewer"]
SECONDS_PER_DAY = 86400


class MirrorTier(ComponentArgs):
    storage_class: Literal["NEARLINE", "COLDLINE", "ARCHIVE"]
    days: int = Field(ge=1)


class MirrorDataClass(ComponentArgs):
    name: str = Field(pattern=r"^[a-z][a-z0-9-]{1,40}[a-z0-9]$")
    retention_days: int = Field(ge=1, le=36500)
    tiers: list[MirrorTier] = Field(default_factory=list)

    @classmethod
    def from_s3_tiers(
        cls, name: str, retention_days: int, tiers: list[tuple[str, int]]
    ) -> MirrorDataClass:
        return cls(
            name=name,
            retention_days=retention_days,
            tiers=[MirrorTier(storage_class=GCS_TIER[s], days=d) for s, d in tiers],
        )


class GcsMirrorArgs(ComponentArgs):
    platform: str = Field(min_length=1)
    project: str = Field(pattern=r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$")
    location: str = "US"
    bucket_name: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]$")
    writer_account_id: str = Field(pattern=r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$")
    data_classes: Annotated[list[MirrorDataClass], unique_names("data_classes")] = Field(
        min_length=1
    )
    key_rotation_days: int = Field(default=90, ge=1)
    lock_retention_policy: bool = True
    """Locking is irreversible: the retention can then only grow, and the bucket cannot be
    deleted before its youngest object's retention ends."""
    soft_delete_days: int = Field(default=7, ge=0, le=90)
    protect: bool = True

    @property
    def retention_floor_days(self) -> int:
        return min(c.retention_days for c in self.data_classes)

    @property
    def key_location(self) -> str:
        """A key ring lives where the bucket does (``US`` multi-region -> ``us``)."""
        return self.location.lower()


def mirror_lifecycle(args: GcsMirrorArgs) -> list[gcp.storage.BucketLifecycleRuleArgsDict]:
    rules: list[gcp.storage.BucketLifecycleRuleArgsDict] = []
    for data_class in args.data_classes:
        prefix = [f"{data_class.name}/"]
        for tier in data_class.tiers:
            rules.append(
                {
                    "action": {"type": "SetStorageClass", "storage_class": tier.storage_class},
                    "condition": {"age": tier.days, "matches_prefixes": prefix},
                }
            )
        rules.append(
            {
                "action": {"type": "Delete"},
                "condition": {"age": data_class.retention_days, "matches_prefixes": prefix},
            }
        )
    # The append-only catalog goes with the longest-kept class; restore leases taken in the
    # mirror (``--source mirror``) as soon as the retention policy lets them.
    longest = max(c.retention_days for c in args.data_classes)
    for kept, age in (("catalog/", longest), ("leases/", args.retention_floor_days)):
        rules.append(
            {"action": {"type": "Delete"}, "condition": {"age": age, "matches_prefixes": [kept]}}
        )
    rules.append(
        {
            "action": {"type": "AbortIncompleteMultipartUpload"},
            "condition": {"age": 1},
        }
    )
    return rules


class GcsMirror(pulumi.ComponentResource):
    bucket_name: pulumi.Output[str]
    crypto_key_id: pulumi.Output[str]
    writer_email: pulumi.Output[str]

    def __init__(
        self, name: str, args: GcsMirrorArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(f"{PACKAGE}:storage:GcsMirror", name, None, opts)
        provider = require_provider(opts, "GcsMirror")
        self.key_ring = gcp.kms.KeyRing(
            f"{name}-key-ring",
            name=f"{args.platform}-backup-mirror",
            location=args.key_location,
            project=args.project,
            opts=child_opts(self, provider, protect=args.protect),
        )
        self.crypto_key = gcp.kms.CryptoKey(
            f"{name}-key",
            name=f"{args.platform}-backup-mirror",
            key_ring=self.key_ring.id,
            purpose="ENCRYPT_DECRYPT",
            rotation_period=f"{args.key_rotation_days * SECONDS_PER_DAY}s",
            opts=child_opts(self, provider, protect=args.protect),
        )
        storage_agent = gcp.storage.get_project_service_account_output(
            project=args.project, opts=pulumi.InvokeOutputOptions(provider=provider, parent=self)
        )
        self.key_binding = gcp.kms.CryptoKeyIAMMember(
            f"{name}-key-storage-agent",
            crypto_key_id=self.crypto_key.id,
            role="roles/cloudkms.cryptoKeyEncrypterDecrypter",
            member=storage_agent.email_address.apply(lambda e: f"serviceAccount:{e}"),
            opts=child_opts(self, provider),
        )
        self.writer = gcp.serviceaccount.Account(
            f"{name}-writer",
            account_id=args.writer_account_id,
            display_name="Backup jobs write to the GCS mirror with this account",
            project=args.project,
            opts=child_opts(self, provider),
        )
        self.bucket = gcp.storage.Bucket(
            f"{name}-bucket",
            name=args.bucket_name,
            project=args.project,
            location=args.location,
            storage_class="STANDARD",
            uniform_bucket_level_access=True,
            public_access_prevention="enforced",
            encryption={"default_kms_key_name": self.crypto_key.id},
            versioning={"enabled": False},
            retention_policy={
                "retention_period": str(args.retention_floor_days * SECONDS_PER_DAY),
                "is_locked": args.lock_retention_policy,
            },
            soft_delete_policy={
                "retention_duration_seconds": args.soft_delete_days * SECONDS_PER_DAY
            },
            lifecycle_rules=mirror_lifecycle(args),
            force_destroy=False,
            labels={"platform": args.platform, "purpose": "backup-mirror"},
            opts=child_opts(self, provider, protect=args.protect, depends_on=[self.key_binding]),
        )
        self.writer_bindings = [
            gcp.storage.BucketIAMMember(
                f"{name}-writer-{role.rsplit('.', 1)[-1].lower()}",
                bucket=self.bucket.name,
                role=role,
                member=self.writer.email.apply(lambda e: f"serviceAccount:{e}"),
                opts=child_opts(self, provider),
            )
            for role in WRITER_ROLES
        ]
        self.bucket_name = self.bucket.name
        self.crypto_key_id = self.crypto_key.id
        self.writer_email = self.writer.email
        self.register_outputs(
            {
                "bucket_name": self.bucket_name,
                "crypto_key_id": self.crypto_key_id,
                "writer_email": self.writer_email,
            }
        )
