"""The storage stacks as the engine would receive them: the real program on the real config."""

from __future__ import annotations

import json
from typing import Any

import pytest
from program_harness import ACCOUNT, StackRun

from stackmodels import StackOutputs
from stackmodels.config import StoreKind

pytestmark = pytest.mark.unit

BUCKET = "aws:s3/bucket:Bucket"
SSE = "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
VERSIONING = "aws:s3/bucketVersioning:BucketVersioning"
PAB = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
POLICY = "aws:s3/bucketPolicy:BucketPolicy"
LOCK = "aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration"
LIFECYCLE = "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"
LOGGING = "aws:s3/bucketLogging:BucketLogging"
REPLICATION = "aws:s3/bucketReplicationConfig:BucketReplicationConfig"


def vault_name(region: str) -> str:
    return f"aipx-backup-vault-{ACCOUNT}-{region}"


def policy_statements(run: StackRun, bucket: str) -> dict[str, dict[str, Any]]:
    [policy] = run.for_bucket(POLICY, bucket)
    return {s["Sid"]: s for s in json.loads(policy.inputs["policy"])["Statement"]}


def key_arn(run: StackRun) -> str:
    return str(run.outputs["vault_key_arn"])


# ---- exports ----------------------------------------------------------------------------------


def test_exports_are_exactly_the_stack_outputs(run: StackRun) -> None:
    assert set(run.outputs) == set(StackOutputs.output_names())
    parsed = StackOutputs.parse(json.loads(json.dumps(run.outputs)), run.stack)
    assert parsed.backup_vault.name == vault_name(run.config.region)
    assert parsed.backup_vault.region == run.config.region
    assert set(parsed.backup_vaults) == {"us-east-1", "us-west-2"}
    assert set(parsed.vault_key_arns) == {"us-east-1", "us-west-2"}
    assert parsed.vault_replication is not None
    assert parsed.gcs_mirror_bucket == "aipx-dr-mirror-backup-mirror"
    assert set(parsed.ecr_repositories) == set(run.config.ecr_repositories)


def test_dr_outputs_carry_prod_vault_and_key_for_a_failover(prod: StackRun, dr: StackRun) -> None:
    assert dr.outputs["backup_vaults"]["us-east-1"] == prod.outputs["backup_vault"]
    assert dr.outputs["vault_key_arns"]["us-east-1"] == prod.outputs["vault_key_arn"]
    assert dr.outputs["vault_replication"]["source"] == prod.outputs["backup_vault"]
    assert dr.outputs["gcs_writer_service_account"] == prod.outputs["gcs_writer_service_account"]


# ---- regions and providers --------------------------------------------------------------------


def test_every_resource_has_an_explicit_provider_in_its_stack_region(run: StackRun) -> None:
    for resource in run.resources:
        if resource.type.startswith(("pulumi:providers:", "trading-dr:")):
            continue
        assert resource.provider, f"{resource.type} {resource.name} has no explicit provider"
        expected = run.config.region
        if resource.type.startswith("gcp:"):
            expected = run.config.gcp.project
        elif resource.type.startswith("kubernetes:"):
            expected = run.config.kubernetes.context
        assert resource.region == expected, f"{resource.type} {resource.name} in {resource.region}"


def test_prod_and_dr_never_cross(prod: StackRun, dr: StackRun) -> None:
    aws_providers = {
        s: [r for r in run.of_type("pulumi:providers:aws")]
        for s, run in (("prod", prod), ("dr", dr))
    }
    assert [p.inputs["region"] for p in aws_providers["prod"]] == ["us-east-1"]
    assert [p.inputs["region"] for p in aws_providers["dr"]] == ["us-west-2"]
    assert not dr.of_type("pulumi:providers:gcp"), "the GCS mirror belongs to prod only"


# ---- the vault --------------------------------------------------------------------------------


def test_vault_bucket_is_object_locked_and_protected(run: StackRun) -> None:
    [bucket] = [
        b for b in run.of_type(BUCKET) if b.inputs["bucket"] == vault_name(run.config.region)
    ]
    assert bucket.inputs["objectLockEnabled"] is True
    assert bucket.inputs["forceDestroy"] is False
    assert bucket.inputs["tags"]["trading-dr:purpose"] == "backup-vault"


def test_every_bucket_is_encrypted_with_the_cmk_and_bucket_keys(run: StackRun) -> None:
    for bucket in run.of_type(BUCKET):
        name = bucket.inputs["bucket"]
        [config] = run.for_bucket(SSE, name)
        [rule] = config.inputs["rules"]
        default = rule["applyServerSideEncryptionByDefault"]
        if bucket.inputs["tags"]["trading-dr:purpose"] in ("access-logs", "cache-export-staging"):
            # S3 log delivery and ElastiCache's export cannot use the key (their docstrings)
            assert default == {"sseAlgorithm": "AES256"}
            continue
        assert default == {"sseAlgorithm": "aws:kms", "kmsMasterKeyId": key_arn(run)}
        assert rule["bucketKeyEnabled"] is True


def test_every_bucket_is_versioned_private_and_owner_enforced(run: StackRun) -> None:
    for bucket in run.of_type(BUCKET):
        name = bucket.inputs["bucket"]
        [versioning] = run.for_bucket(VERSIONING, name)
        assert versioning.inputs["versioningConfiguration"] == {"status": "Enabled"}
        [block] = run.for_bucket(PAB, name)
        for flag in (
            "blockPublicAcls",
            "blockPublicPolicy",
            "ignorePublicAcls",
            "restrictPublicBuckets",
        ):
            assert block.inputs[flag] is True
        [ownership] = run.for_bucket("aws:s3/bucketOwnershipControls:BucketOwnershipControls", name)
        # ACLs stay off but where ElastiCache can only be granted by ACL (components.cache_export)
        staging = bucket.inputs["tags"]["trading-dr:purpose"] == "cache-export-staging"
        expected = "BucketOwnerPreferred" if staging else "BucketOwnerEnforced"
        assert ownership.inputs["rule"] == {"objectOwnership": expected}


def test_every_bucket_policy_denies_insecure_transport(run: StackRun) -> None:
    for bucket in run.of_type(BUCKET):
        statement = policy_statements(run, bucket.inputs["bucket"])["DenyInsecureTransport"]
        assert statement["Effect"] == "Deny"
        assert statement["Principal"] == "*"
        assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        assert f"arn:aws:s3:::{bucket.inputs['bucket']}/*" in statement["Resource"]


def test_vault_policy_denies_other_encryption_and_other_keys(run: StackRun) -> None:
    statements = policy_statements(run, vault_name(run.config.region))
    algorithm = statements["DenyEncryptionOtherThanSseKms"]
    assert algorithm["Effect"] == "Deny" and algorithm["Action"] == "s3:PutObject"
    assert algorithm["Condition"]["StringNotEquals"] == {
        "s3:x-amz-server-side-encryption": "aws:kms"
    }
    assert algorithm["Condition"]["Null"] == {"s3:x-amz-server-side-encryption": "false"}
    key = statements["DenyKmsKeyOtherThanVaultKey"]
    assert key["Condition"]["StringNotEquals"] == {
        "s3:x-amz-server-side-encryption-aws-kms-key-id": key_arn(run)
    }
    assert "DenyCustomerProvidedKeys" in statements


def test_vault_default_lock_is_the_strictest_class(run: StackRun) -> None:
    [lock] = run.for_bucket(LOCK, vault_name(run.config.region))
    assert lock.inputs["rule"]["defaultRetention"] == {"mode": "COMPLIANCE", "days": 2555}


@pytest.mark.parametrize(
    ("data_class", "mode", "days"),
    [
        ("trading-signals", "COMPLIANCE", 2555),
        ("user-data", "COMPLIANCE", 2555),
        ("app-config", "COMPLIANCE", 1095),
        ("monitoring-logs", "GOVERNANCE", 365),
    ],
)
def test_vault_policy_denies_weaker_locks_per_class(
    run: StackRun, data_class: str, mode: str, days: int
) -> None:
    statements = policy_statements(run, vault_name(run.config.region))
    sid = "Class" + "".join(part.capitalize() for part in data_class.split("-"))
    prefix = f"arn:aws:s3:::{vault_name(run.config.region)}/{data_class}/*"
    lock_days = statements[f"{sid}LockDays"]
    assert lock_days["Resource"] == prefix
    assert lock_days["Condition"] == {
        "NumericLessThan": {"s3:object-lock-remaining-retention-days": str(days)}
    }
    if mode == "COMPLIANCE":
        assert statements[f"{sid}LockMode"]["Condition"]["StringNotEquals"] == {
            "s3:object-lock-mode": "COMPLIANCE"
        }
    else:
        assert f"{sid}LockMode" not in statements


def test_vault_lifecycle_tiers_and_expiry_per_class(run: StackRun) -> None:
    [lifecycle] = run.for_bucket(LIFECYCLE, vault_name(run.config.region))
    rules = {rule["id"]: rule for rule in lifecycle.inputs["rules"]}
    for name, data_class in run.config.data_classes.items():
        rule = rules[f"class-{name}"]
        assert rule["status"] == "Enabled"
        assert rule["filter"] == {"prefix": f"{name}/"}
        assert [(t["storageClass"], t["days"]) for t in rule["transitions"]] == (
            data_class.lifecycle.tiers()
        )
        assert rule["expiration"] == {"days": run.config.retention_of(name).days}
        assert rule["noncurrentVersionExpiration"] == {"noncurrentDays": 30}
    assert [(t["storageClass"], t["days"]) for t in rules["class-user-data"]["transitions"]] == [
        ("STANDARD_IA", 30),
        ("GLACIER", 90),
        ("DEEP_ARCHIVE", 365),
    ]
    assert [t["storageClass"] for t in rules["class-monitoring-logs"]["transitions"]] == [
        "STANDARD_IA",
        "GLACIER",
    ]
    assert rules["class-monitoring-logs"]["expiration"] == {"days": 365}
    housekeeping = rules["housekeeping"]
    assert housekeeping["abortIncompleteMultipartUpload"] == {"daysAfterInitiation": 1}
    assert housekeeping["expiration"] == {"expiredObjectDeleteMarker": True}


def test_vault_and_audit_log_to_the_access_log_bucket(run: StackRun) -> None:
    log_bucket = f"aipx-access-logs-{ACCOUNT}-{run.config.region}"
    logged = {r.inputs["bucket"]: r.inputs for r in run.of_type(LOGGING)}
    for bucket in (vault_name(run.config.region), f"aipx-audit-{ACCOUNT}-{run.config.region}"):
        assert logged[bucket]["targetBucket"] == log_bucket
        assert logged[bucket]["targetPrefix"] == f"{bucket}/"
    assert log_bucket not in logged  # a log bucket does not log into itself
    statements = policy_statements(run, log_bucket)
    delivery = statements["S3ServerAccessLogsDelivery"]
    assert delivery["Principal"] == {"Service": "logging.s3.amazonaws.com"}
    assert delivery["Condition"] == {"StringEquals": {"aws:SourceAccount": ACCOUNT}}
    [lock] = [r for r in run.of_type(LOCK) if r.inputs["bucket"] == log_bucket] or [None]
    assert lock is None  # S3 refuses log delivery into a bucket with default retention


def test_audit_bucket_is_object_locked_with_the_audit_retention(run: StackRun) -> None:
    name = f"aipx-audit-{ACCOUNT}-{run.config.region}"
    [bucket] = [b for b in run.of_type(BUCKET) if b.inputs["bucket"] == name]
    assert bucket.inputs["objectLockEnabled"] is True
    [lock] = run.for_bucket(LOCK, name)
    assert lock.inputs["rule"]["defaultRetention"] == {"mode": "COMPLIANCE", "days": 1095}
    [lifecycle] = run.for_bucket(LIFECYCLE, name)
    [rule] = lifecycle.inputs["rules"]
    assert rule["expiration"] == {"days": 1095}
    assert rule["abortIncompleteMultipartUpload"] == {"daysAfterInitiation": 1}
    assert run.outputs["audit_bucket"]["name"] == name


# ---- keys -------------------------------------------------------------------------------------


def key_statements(policy: str) -> dict[str, dict[str, Any]]:
    return {s["Sid"]: s for s in json.loads(policy)["Statement"]}


def test_prod_key_is_a_rotating_multi_region_primary(prod: StackRun) -> None:
    key = prod.one("aws:kms/key:Key", "vault-key-key")
    assert key.region == "us-east-1"
    assert key.inputs["multiRegion"] is True
    assert key.inputs["enableKeyRotation"] is True
    assert key.inputs["customerMasterKeySpec"] == "SYMMETRIC_DEFAULT"
    assert key.inputs["deletionWindowInDays"] == 30
    assert not prod.of_type("aws:kms/replicaKey:ReplicaKey")


def test_dr_key_is_the_replica_of_the_prod_key(prod: StackRun, dr: StackRun) -> None:
    [replica] = dr.of_type("aws:kms/replicaKey:ReplicaKey")
    assert replica.region == "us-west-2"
    assert replica.inputs["primaryKeyArn"] == prod.outputs["vault_key_arn"]
    assert not [k for k in dr.of_type("aws:kms/key:Key") if k.name == "vault-key-key"]
    # prod derived the replica's ARN from the shared multi-region key id: they must agree
    assert dr.outputs["vault_key_arn"] == prod.outputs["vault_replication"]["destination_key_arn"]


def test_key_policies_are_least_privilege(prod: StackRun, dr: StackRun) -> None:
    key = prod.one("aws:kms/key:Key", "vault-key-key")
    [replica] = dr.of_type("aws:kms/replicaKey:ReplicaKey")
    role = f"arn:aws:iam::{ACCOUNT}:role"
    for run, policy, region in (
        (prod, key.inputs["policy"], "us-east-1"),
        (dr, replica.inputs["policy"], "us-west-2"),
    ):
        statements = key_statements(policy)
        admin = statements["KeyAdministration"]
        assert admin["Principal"]["AWS"] == [f"{role}/platform-admin", f"{role}/pulumi-deployer"]
        assert not {
            "kms:Decrypt",
            "kms:Encrypt",
            "kms:GenerateDataKey",
            "kms:CreateGrant",
            "kms:DisableKeyRotation",
            "kms:*",
        } & set(admin["Action"])
        use = statements["BackupUseThroughS3"]
        job_roles = [  # one IRSA role per store, for its backup CronJob
            f"{role}/{run.config.platform}-backup-{store}-{region}" for store in run.config.stores
        ]
        assert use["Principal"]["AWS"] == sorted(
            [run.outputs["backup_writer_role_arn"], f"{role}/dr-operator", *job_roles]
        )
        assert use["Action"] == ["kms:Decrypt", "kms:GenerateDataKey"]
        assert use["Condition"]["StringEquals"]["kms:ViaService"] == f"s3.{region}.amazonaws.com"
        assert statements["BreakGlass"]["Principal"]["AWS"] == f"{role}/break-glass"
        assert "kms:*" not in statements["BreakGlass"]["Action"]
        for statement in statements.values():
            assert statement["Principal"] != "*" and statement["Principal"] != {
                "AWS": f"arn:aws:iam::{ACCOUNT}:root"
            }
    replication_role = prod.outputs["vault_replication"]["role_arn"]
    source = key_statements(key.inputs["policy"])["ReplicationReadsSource"]
    assert source["Principal"]["AWS"] == replication_role
    assert source["Action"] == ["kms:Decrypt"]
    destination = key_statements(replica.inputs["policy"])["ReplicationWritesDestination"]
    assert destination["Principal"]["AWS"] == replication_role
    assert destination["Action"] == ["kms:Encrypt", "kms:GenerateDataKey"]
    assert destination["Condition"]["StringEquals"]["kms:ViaService"] == (
        "s3.us-west-2.amazonaws.com"
    )


def test_key_policies_let_the_kubernetes_backup_seal_and_the_operators_open(
    prod: StackRun, dr: StackRun
) -> None:
    """The Kubernetes-state backup gets a data key directly (not through S3), only for the
    sealing purpose; the operators (restore, drill) decrypt it; nobody else, in both regions."""
    key = prod.one("aws:kms/key:Key", "vault-key-key")
    [replica] = dr.of_type("aws:kms/replicaKey:ReplicaKey")
    role = f"arn:aws:iam::{ACCOUNT}:role"
    condition = {"StringEquals": {"kms:EncryptionContext:drkit:purpose": "kubernetes-secrets"}}
    for run, policy, region in (
        (prod, key.inputs["policy"], "us-east-1"),
        (dr, replica.inputs["policy"], "us-west-2"),
    ):
        statements = key_statements(policy)
        sealers = [
            f"{role}/{run.config.platform}-backup-{store}-{region}"
            for store, settings in run.config.stores.items()
            if settings.kind is StoreKind.KUBERNETES
        ]
        assert sealers == [f"{role}/aipx-backup-app-state-{region}"]
        # and the operators, whose on-demand ``invoke backup.store app-state`` seals as well
        assert statements["SealKubernetesSecrets"] == {
            "Sid": "SealKubernetesSecrets",
            "Effect": "Allow",
            "Principal": {"AWS": sorted([*sealers, f"{role}/dr-operator"])},
            "Action": ["kms:GenerateDataKey"],
            "Resource": "*",
            "Condition": condition,
        }
        assert statements["OpenKubernetesSecrets"] == {
            "Sid": "OpenKubernetesSecrets",
            "Effect": "Allow",
            "Principal": {"AWS": [f"{role}/dr-operator"]},
            "Action": ["kms:Decrypt"],
            "Resource": "*",
            "Condition": condition,
        }
        # every other job role stays a through-S3 user only
        others = {
            f"{role}/{run.config.platform}-backup-{store}-{region}" for store in run.config.stores
        } - set(sealers)
        assert others and others <= set(statements["BackupUseThroughS3"]["Principal"]["AWS"])
        for statement in statements.values():
            if others & principals(statement):
                assert statement["Sid"] == "BackupUseThroughS3"
                assert statement["Condition"]["StringEquals"]["kms:ViaService"] == (
                    f"s3.{region}.amazonaws.com"
                )
        # Decrypt outside S3 is the operators' and break-glass's only: never the sealer's
        direct_decrypt = set().union(
            *(
                principals(s)
                for s in statements.values()
                if "kms:Decrypt" in s["Action"]
                and "kms:ViaService" not in s.get("Condition", {}).get("StringEquals", {})
            )
        )
        assert direct_decrypt == {f"{role}/dr-operator", f"{role}/break-glass"}


def principals(statement: dict[str, Any]) -> set[str]:
    found = statement["Principal"]["AWS"]
    return {found} if isinstance(found, str) else set(found)


# ---- replication ------------------------------------------------------------------------------


def test_prod_replicates_its_vault_to_the_dr_vault(prod: StackRun, dr: StackRun) -> None:
    [config] = prod.of_type(REPLICATION)
    assert config.region == "us-east-1"
    assert config.inputs["bucket"] == vault_name("us-east-1")
    assert config.inputs["role"] == prod.outputs["vault_replication"]["role_arn"]
    [rule] = config.inputs["rules"]
    assert rule["status"] == "Enabled"
    assert rule["deleteMarkerReplication"] == {"status": "Disabled"}
    assert rule["sourceSelectionCriteria"] == {"sseKmsEncryptedObjects": {"status": "Enabled"}}
    destination = rule["destination"]
    assert destination["bucket"] == dr.outputs["backup_vault"]["arn"]
    assert destination["bucket"] == f"arn:aws:s3:::{vault_name('us-west-2')}"
    assert destination["encryptionConfiguration"] == {
        "replicaKmsKeyId": dr.outputs["vault_key_arn"]
    }
    assert destination["replicationTime"] == {"status": "Enabled", "time": {"minutes": 15}}
    assert destination["metrics"] == {"status": "Enabled", "eventThreshold": {"minutes": 15}}


def test_dr_owns_nothing_in_the_primary_region(dr: StackRun) -> None:
    assert not dr.of_type(REPLICATION)
    assert {r.region for r in dr.resources if r.type.startswith("aws:")} == {"us-west-2"}


def test_replication_role_may_do_only_what_replication_needs(prod: StackRun) -> None:
    [role] = [
        r
        for r in prod.of_type("aws:iam/role:Role")
        if r.inputs["name"] == "aipx-vault-replication-us-east-1"
    ]
    trust = json.loads(role.inputs["assumeRolePolicy"])["Statement"][0]
    assert trust["Principal"] == {"Service": "s3.amazonaws.com"}
    assert trust["Condition"]["ArnLike"] == {
        "aws:SourceArn": f"arn:aws:s3:::{vault_name('us-east-1')}"
    }
    [policy] = [
        r
        for r in prod.of_type("aws:iam/rolePolicy:RolePolicy")
        if r.inputs["role"] == "aipx-vault-replication-us-east-1"
    ]
    statements = {s["Sid"]: s for s in json.loads(policy.inputs["policy"])["Statement"]}
    actions = {a for s in statements.values() for a in s["Action"]}
    assert actions == {
        "s3:GetReplicationConfiguration",
        "s3:ListBucket",
        "s3:GetObjectVersionForReplication",
        "s3:GetObjectVersionAcl",
        "s3:GetObjectVersionTagging",
        "s3:GetObjectRetention",
        "s3:GetObjectLegalHold",
        "s3:ReplicateObject",
        "s3:ReplicateTags",
    }
    assert statements["WriteDestinationReplicas"]["Resource"] == (
        f"arn:aws:s3:::{vault_name('us-west-2')}/*"
    )
    assert all(s["Effect"] == "Allow" for s in statements.values())


def test_backup_writer_cannot_delete_or_bypass_retention(run: StackRun) -> None:
    name = f"aipx-backup-writer-{run.config.region}"
    [policy] = [r for r in run.of_type("aws:iam/rolePolicy:RolePolicy") if r.inputs["role"] == name]
    actions = {a for s in json.loads(policy.inputs["policy"])["Statement"] for a in s["Action"]}
    assert {"s3:PutObject", "s3:PutObjectRetention", "s3:GetObject"} <= actions
    assert not {a for a in actions if "Delete" in a or "Bypass" in a or a.endswith("*")}


# ---- GCS mirror -------------------------------------------------------------------------------


def test_gcs_mirror_bucket_settings(prod: StackRun) -> None:
    [bucket] = prod.of_type("gcp:storage/bucket:Bucket")
    inputs = bucket.inputs
    assert inputs["uniformBucketLevelAccess"] is True
    assert inputs["publicAccessPrevention"] == "enforced"
    assert inputs["location"] == "US"
    assert inputs["versioning"] == {"enabled": False}  # a retention policy excludes versioning
    assert inputs["retentionPolicy"] == {"retentionPeriod": str(365 * 86400), "isLocked": True}
    [key] = prod.of_type("gcp:kms/cryptoKey:CryptoKey")
    assert inputs["encryption"] == {"defaultKmsKeyName": prod.outputs["gcs_mirror_key"]}
    assert key.inputs["rotationPeriod"] == f"{90 * 86400}s"
    [ring] = prod.of_type("gcp:kms/keyRing:KeyRing")
    assert ring.inputs["location"] == "us"
    [agent] = prod.of_type("gcp:kms/cryptoKeyIAMMember:CryptoKeyIAMMember")
    assert agent.inputs["role"] == "roles/cloudkms.cryptoKeyEncrypterDecrypter"
    assert agent.inputs["member"].startswith("serviceAccount:service-")


def test_gcs_mirror_lifecycle_mirrors_the_s3_tiers(prod: StackRun) -> None:
    [bucket] = prod.of_type("gcp:storage/bucket:Bucket")
    rules = bucket.inputs["lifecycleRules"]
    by_prefix: dict[str, list[tuple[str, int]]] = {}
    for rule in rules:
        prefixes = rule["condition"].get("matchesPrefixes") or ["*"]
        action = rule["action"].get("storageClass") or rule["action"]["type"]
        by_prefix.setdefault(prefixes[0], []).append((action, rule["condition"]["age"]))
    assert by_prefix["user-data/"] == [
        ("NEARLINE", 30),
        ("COLDLINE", 90),
        ("ARCHIVE", 365),
        ("Delete", 2555),
    ]
    assert by_prefix["monitoring-logs/"] == [("NEARLINE", 30), ("COLDLINE", 90), ("Delete", 365)]
    assert by_prefix["*"] == [("AbortIncompleteMultipartUpload", 1)]


def test_gcs_writer_has_object_create_and_view_only(prod: StackRun) -> None:
    bindings = prod.of_type("gcp:storage/bucketIAMMember:BucketIAMMember")
    assert sorted(b.inputs["role"] for b in bindings) == [
        "roles/storage.objectCreator",
        "roles/storage.objectViewer",
    ]
    email = prod.outputs["gcs_writer_service_account"]
    assert {b.inputs["member"] for b in bindings} == {f"serviceAccount:{email}"}


# ---- ECR --------------------------------------------------------------------------------------


def test_ecr_repositories_scan_on_push_and_keep_the_last_50(run: StackRun) -> None:
    repositories = run.of_type("aws:ecr/repository:Repository")
    assert sorted(r.inputs["name"] for r in repositories) == sorted(run.config.ecr_repositories)
    for repository in repositories:
        assert repository.inputs["imageScanningConfiguration"] == {"scanOnPush": True}
        assert repository.inputs["imageTagMutability"] == "IMMUTABLE"
    for policy in run.of_type("aws:ecr/lifecyclePolicy:LifecyclePolicy"):
        [rule] = json.loads(policy.inputs["policy"])["rules"]
        assert rule["selection"] == {
            "tagStatus": "any",
            "countType": "imageCountMoreThan",
            "countNumber": 50,
        }
        assert rule["action"] == {"type": "expire"}


def test_ecr_replicates_from_prod_to_the_dr_region(prod: StackRun, dr: StackRun) -> None:
    [replication] = prod.of_type("aws:ecr/replicationConfiguration:ReplicationConfiguration")
    [rule] = replication.inputs["replicationConfiguration"]["rules"]
    assert rule["destinations"] == [{"region": "us-west-2", "registryId": ACCOUNT}]
    assert {f["filter"] for f in rule["repositoryFilters"]} == set(prod.config.ecr_repositories)
    assert not dr.of_type("aws:ecr/replicationConfiguration:ReplicationConfiguration")


# ---- data sources -----------------------------------------------------------------------------


def test_program_calls_only_answered_data_sources(run: StackRun) -> None:
    assert "aws:index/getCallerIdentity:getCallerIdentity" in run.calls
    assert not run.warnings
