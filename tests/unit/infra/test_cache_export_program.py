"""The ElastiCache export staging bucket: the grant ElastiCache needs, the bucket policy, the
lifecycle, the backup role's access, and the outputs the backup finds it by (real program under
mocks), plus the grant rules as plain functions."""

from __future__ import annotations

import json

import pytest
from program_harness import ACCOUNT, StackRun

from components.cache_export import (
    CANONICAL_IDS,
    OPT_IN_ACTIONS,
    export_acl,
    export_bucket_policy,
    export_grant,
)
from stackmodels import StackOutputs

pytestmark = pytest.mark.unit

BUCKET = "aws:s3/bucket:Bucket"
ELASTICACHE_ID = "540804c33a284a299d2547575ce1010f2312ef3da9b3a053c8bc45bf233e4353"


def staging_name(run: StackRun) -> str:
    return f"aipx-cache-export-{ACCOUNT}-{run.config.region}"


def of_staging(run: StackRun, type_: str) -> dict:
    [found] = run.for_bucket(type_, staging_name(run))
    return found.inputs


def test_each_region_stages_exports_in_its_own_bucket_with_elasticaches_grant(
    run: StackRun,
) -> None:
    bucket = run.one(BUCKET, "cache-export-bucket")
    assert bucket.inputs["bucket"] == staging_name(run) and bucket.region == run.config.region
    assert bucket.inputs["tags"]["trading-dr:purpose"] == "cache-export-staging"
    ownership = of_staging(run, "aws:s3/bucketOwnershipControls:BucketOwnershipControls")
    assert ownership["rule"] == {"objectOwnership": "BucketOwnerPreferred"}  # ACLs on
    acl = run.one("aws:s3/bucketAcl:BucketAcl", "cache-export-acl")
    assert acl.options is not None and any(
        "cache-export-ownership" in urn for urn in acl.options.depends_on
    )
    policy = acl.inputs["accessControlPolicy"]
    grants = {(g["grantee"]["id"], g["permission"]) for g in policy["grants"]}
    owner = policy["owner"]["id"]
    assert grants == {
        (owner, "FULL_CONTROL"),
        (ELASTICACHE_ID, "READ"),
        (ELASTICACHE_ID, "WRITE"),
        (ELASTICACHE_ID, "READ_ACP"),
    }
    assert all(g["grantee"]["type"] == "CanonicalUser" for g in policy["grants"])
    block = of_staging(run, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")
    assert all(block[flag] is True for flag in ("blockPublicAcls", "ignorePublicAcls"))


def test_staging_is_sse_s3_tls_only_logged_and_expires_in_a_day(run: StackRun) -> None:
    [rule] = of_staging(
        run,
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
    )["rules"]
    assert rule["applyServerSideEncryptionByDefault"] == {"sseAlgorithm": "AES256"}
    [lifecycle] = of_staging(
        run, "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"
    )["rules"]
    assert lifecycle["expiration"] == {"days": 1}
    assert lifecycle["noncurrentVersionExpiration"] == {"noncurrentDays": 1}
    assert lifecycle["abortIncompleteMultipartUpload"] == {"daysAfterInitiation": 1}
    statements = json.loads(of_staging(run, "aws:s3/bucketPolicy:BucketPolicy")["policy"])[
        "Statement"
    ]
    assert [s["Sid"] for s in statements] == ["DenyInsecureTransport"]  # default Region: ACL
    logging = of_staging(run, "aws:s3/bucketLogging:BucketLogging")
    assert logging["targetBucket"] == f"aipx-access-logs-{ACCOUNT}-{run.config.region}"


def export_buckets(run: StackRun) -> dict[str, str | None]:
    outputs = StackOutputs.model_validate(run.outputs)
    assert outputs.elasticache is not None
    return {r: g.export_bucket for r, g in outputs.elasticache.replication_groups.items()}


def test_outputs_name_each_regions_export_bucket(prod: StackRun, dr: StackRun) -> None:
    east = f"aipx-cache-export-{ACCOUNT}-us-east-1"
    assert export_buckets(prod) == {"us-east-1": east}
    # dr carries prod's side too: after a failover it backs up from its own region's bucket
    assert export_buckets(dr) == {
        "us-east-1": east,
        "us-west-2": f"aipx-cache-export-{ACCOUNT}-us-west-2",
    }


def test_the_backup_role_reads_and_clears_only_its_staged_prefix(run: StackRun) -> None:
    name = f"aipx-backup-session-cache-{run.config.region}"
    [policy] = [r for r in run.of_type("aws:iam/rolePolicy:RolePolicy") if r.inputs["role"] == name]
    statements = {s["Sid"]: s for s in json.loads(policy.inputs["policy"])["Statement"]}
    staging = f"arn:aws:s3:::{staging_name(run)}"
    prefix = f"{run.config.stores['session-cache'].data_class}/session-cache/"
    assert statements["ReadAndClearOwnStagedExports"] == {
        "Sid": "ReadAndClearOwnStagedExports",
        "Effect": "Allow",
        "Action": ["s3:GetObject", "s3:DeleteObject"],
        "Resource": f"{staging}/{prefix}*",
    }
    assert statements["ListOwnStagedExports"]["Resource"] == staging
    assert statements["ListOwnStagedExports"]["Condition"] == {
        "StringLike": {"s3:prefix": [f"{prefix}*"]}
    }
    assert statements["ExportFindsItsBucket"]["Action"] == [
        "s3:GetBucketLocation",
        "s3:ListAllMyBuckets",
    ]
    vault_reads = {
        sid
        for sid, s in statements.items()
        if "s3:GetObject" in s["Action"] and "backup-vault" in str(s["Resource"])
    }
    # The vault is read back only for the run's own bookkeeping: its previous manifests, its
    # lease and its catalog (components.backup_iam); the export is read in the staging bucket.
    assert vault_reads == {"ReadOwnPrefix", "LeaseAndCatalogOwnStore"}


# ---- the grant rules, without Pulumi ----------------------------------------------------------


def test_default_regions_get_the_acl_grant_and_opt_in_regions_the_service_principal() -> None:
    assert export_grant("aws", "us-east-1").canonical_id == CANONICAL_IDS["aws"] == ELASTICACHE_ID
    gov = export_grant("aws-us-gov", "us-gov-west-1")
    assert gov.canonical_id == CANONICAL_IDS["aws-us-gov"] and gov.service_principal is None
    hong_kong = export_grant("aws", "ap-east-1")
    assert hong_kong.canonical_id is None
    assert hong_kong.service_principal == "ap-east-1.elasticache-snapshot.amazonaws.com"
    arn = "arn:aws:s3:::staging"
    statements = export_bucket_policy(arn, hong_kong)["Statement"]
    assert statements[1]["Principal"] == {"Service": hong_kong.service_principal}
    assert statements[1]["Action"] == OPT_IN_ACTIONS
    assert statements[1]["Resource"] == [arn, f"{arn}/*"]
    with pytest.raises(ValueError, match="partition 'aws-iso'"):
        export_grant("aws-iso", "us-east-1")


def test_the_acl_keeps_the_owner_in_full_control() -> None:
    acl = export_acl("owner-id", export_grant("aws", "us-west-2"))
    assert acl["owner"] == {"id": "owner-id"}
    assert acl["grants"][0] == {
        "grantee": {"id": "owner-id", "type": "CanonicalUser"},
        "permission": "FULL_CONTROL",
    }
    assert [g["permission"] for g in acl["grants"][1:]] == ["READ", "WRITE", "READ_ACP"]
