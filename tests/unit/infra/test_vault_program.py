"""The ``vault`` stack (the isolated backup account, issue 22) under the mocks, and prod and dr
reading it through a StackReference: what the engine is asked to create, and the contract."""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pytest
from program_harness import ACCOUNT, RecordingMocks, StackRun, config_variant, run_stack

from components.isolated_vault import OUTSIDE_DENIED_ACTIONS
from infra.vault import WrongAccount
from stackmodels import StackOutputs
from stackmodels.outputs import IsolatedVault, VaultStackOutputs

pytestmark = pytest.mark.unit

VAULT_ACCOUNT = "210987654321"
VAULT_BUCKET = f"aipx-backup-vault-{VAULT_ACCOUNT}-us-east-2"
VAULT_ARN = f"arn:aws:s3:::{VAULT_BUCKET}"
AUDIT_BUCKET = f"aipx-audit-{VAULT_ACCOUNT}-us-east-2"
BUCKET = "aws:s3/bucket:Bucket"
POLICY = "aws:s3/bucketPolicy:BucketPolicy"
KEY = "aws:kms/key:Key"
ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
TRAIL = "aws:cloudtrail/trail:Trail"


def statements(document: Any) -> dict[str, dict[str, Any]]:
    parsed = json.loads(document) if isinstance(document, str) else document
    return {s["Sid"]: s for s in parsed["Statement"]}


def outside_principals(run: StackRun) -> dict[str, list[str]]:
    """Sid -> principals of another account than the vault's, in the key and bucket policies."""
    found: dict[str, list[str]] = {}
    documents = [r.inputs["policy"] for r in run.of_type(POLICY) + run.of_type(KEY)]
    for document in documents:
        for sid, statement in statements(document).items():
            if statement["Effect"] != "Allow":
                continue
            principal = statement["Principal"]
            values = [v for vs in principal.values() for v in ([vs] if isinstance(vs, str) else vs)]
            foreign = [v for v in values if v.startswith("arn:") and VAULT_ACCOUNT not in v]
            if foreign:
                found[sid] = foreign
    return found


def test_everything_is_in_the_vault_region_and_account(vault: StackRun) -> None:
    regions = {r.region for r in vault.resources if r.type.startswith("aws:")}
    assert regions == {"us-east-2"}
    assert {b.inputs["bucket"] for b in vault.of_type(BUCKET)} == {
        VAULT_BUCKET,
        AUDIT_BUCKET,
        f"aipx-access-logs-{VAULT_ACCOUNT}-us-east-2",
    }
    assert all(VAULT_ACCOUNT in r.state["arn"] for r in vault.of_type(KEY) + vault.of_type(ROLE))
    assert "aws:index/getCallerIdentity:getCallerIdentity" in vault.calls


def test_the_vault_is_locked_compliance_versioned_private_and_owner_enforced(
    vault: StackRun,
) -> None:
    bucket = vault.one(BUCKET, "isolated-vault-bucket")
    assert bucket.inputs["objectLockEnabled"] is True
    assert bucket.inputs["tags"]["trading-dr:stack-role"] == "vault"
    assert bucket.options is not None and bucket.options.protect
    [lock] = vault.for_bucket(
        "aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration", VAULT_BUCKET
    )
    assert lock.inputs["rule"]["defaultRetention"] == {"mode": "COMPLIANCE", "days": 2555}
    [versioning] = vault.for_bucket("aws:s3/bucketVersioning:BucketVersioning", VAULT_BUCKET)
    assert versioning.inputs["versioningConfiguration"]["status"] == "Enabled"
    [ownership] = vault.for_bucket(
        "aws:s3/bucketOwnershipControls:BucketOwnershipControls", VAULT_BUCKET
    )
    assert ownership.inputs["rule"]["objectOwnership"] == "BucketOwnerEnforced"
    [block] = vault.for_bucket(
        "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", VAULT_BUCKET
    )
    flags = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
    assert all(block.inputs[f] is True for f in flags)
    [lifecycle] = vault.for_bucket(
        "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", VAULT_BUCKET
    )
    rules = {r["id"]: r for r in lifecycle.inputs["rules"]}
    assert rules["class-user-data"]["expiration"]["days"] == 2555
    assert [t["storageClass"] for t in rules["class-user-data"]["transitions"]] == [
        "STANDARD_IA",
        "GLACIER",
        "DEEP_ARCHIVE",
    ]
    assert rules["class-monitoring-logs"]["expiration"]["days"] == 365
    [encryption] = vault.for_bucket(
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
        VAULT_BUCKET,
    )
    default = encryption.inputs["rules"][0]["applyServerSideEncryptionByDefault"]
    assert default["sseAlgorithm"] == "aws:kms"
    assert default["kmsMasterKeyId"] == vault.one(KEY, "isolated-vault-key").state["arn"]


def test_writers_only_create_under_their_prefixes_with_if_none_match(vault: StackRun) -> None:
    policy = statements(vault.one(POLICY, "isolated-vault-policy").inputs["policy"])
    prod = policy["WriterProdCreatesUnderItsPrefixes"]
    assert prod["Principal"] == {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}
    assert prod["Action"] == ["s3:PutObject"]
    assert f"{VAULT_ARN}/user-data/*" in prod["Resource"]
    assert f"{VAULT_ARN}/catalog/*" in prod["Resource"]
    assert f"{VAULT_ARN}/*" not in prod["Resource"]
    assert prod["Condition"] == {
        "ArnLike": {"aws:PrincipalArn": [f"arn:aws:iam::{ACCOUNT}:role/aipx-backup-*-us-east-1"]}
    }
    dr = policy["WriterDrCreatesUnderItsPrefixes"]
    assert dr["Condition"]["ArnLike"]["aws:PrincipalArn"] == [
        f"arn:aws:iam::{ACCOUNT}:role/aipx-backup-*-us-west-2"
    ]
    outside = {"StringNotEquals": {"aws:PrincipalAccount": VAULT_ACCOUNT}}
    denied = policy["OutsideNeverDeletesOrReconfigures"]
    assert (denied["Effect"], denied["Principal"], denied["Condition"]) == ("Deny", "*", outside)
    assert denied["Action"] == OUTSIDE_DENIED_ACTIONS
    for action in (
        "s3:DeleteObject*",
        "s3:PutObjectRetention",
        "s3:PutObjectLegalHold",
        "s3:BypassGovernanceRetention",
        "s3:PutBucketPolicy",
        "s3:PutLifecycleConfiguration",
        "s3:PutBucketObjectLockConfiguration",
    ):
        assert action in denied["Action"]
    assert denied["Resource"] == [VAULT_ARN, f"{VAULT_ARN}/*"]
    create_only = policy["OutsideCreatesOnly"]
    assert create_only["Condition"] == {
        **outside,
        "Null": {"s3:if-none-match": "true"},
        "Bool": {"s3:ObjectCreationOperation": "true"},
    }
    # The vault's own guards are there too: TLS only, the vault key only, per-class locks.
    assert {"DenyInsecureTransport", "DenyKmsKeyOtherThanVaultKey", "ClassUserDataLockDays"} <= set(
        policy
    )


def test_the_key_lets_writers_only_generate_data_keys_and_the_reader_decrypt(
    vault: StackRun,
) -> None:
    key = vault.one(KEY, "isolated-vault-key")
    assert key.inputs["enableKeyRotation"] is True
    assert key.inputs.get("multiRegion") is None
    policy = statements(key.inputs["policy"])
    writer = policy["WriterProdUploadsThroughS3"]
    assert writer["Action"] == ["kms:Decrypt", "kms:GenerateDataKey"]  # multipart uploads
    assert writer["Condition"]["StringEquals"] == {"kms:ViaService": "s3.us-east-2.amazonaws.com"}
    assert writer["Condition"]["StringLike"] == {
        "kms:EncryptionContext:aws:s3:arn": [VAULT_ARN, f"{VAULT_ARN}/*"]
    }
    reader = policy["ReaderDecryptsThroughS3"]
    assert reader["Principal"] == {
        "AWS": f"arn:aws:iam::{VAULT_ACCOUNT}:role/aipx-isolated-vault-reader"
    }
    # through S3 only: reads, and the restore leases it seals (leases/restore/)
    assert reader["Action"] == ["kms:Decrypt", "kms:DescribeKey", "kms:GenerateDataKey"]
    assert reader["Condition"] == {"StringEquals": {"kms:ViaService": "s3.us-east-2.amazonaws.com"}}
    # The Secrets data key of a Kubernetes backup: the writers wrap it (Encrypt only, that
    # purpose, their own prefixes), the reader opens it (Decrypt, that purpose): the isolated
    # copy's Secrets open without the production key.
    wrap = policy["WriterProdWrapsSecretsKeys"]
    assert wrap["Action"] == ["kms:Encrypt"]
    assert wrap["Principal"] == {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}
    assert wrap["Condition"]["StringEquals"] == {
        "kms:EncryptionContext:drkit:purpose": "kubernetes-secrets"
    }
    prefixes = wrap["Condition"]["StringLike"]["kms:EncryptionContext:drkit:backup"]
    assert prefixes and all(p.endswith("/*") and p != "*" for p in prefixes), prefixes
    assert wrap["Condition"]["ArnLike"] == writer["Condition"]["ArnLike"]
    opens = policy["ReaderOpensSecretsKeys"]
    assert opens["Principal"] == reader["Principal"] and opens["Action"] == ["kms:Decrypt"]
    assert opens["Condition"] == {
        "StringEquals": {"kms:EncryptionContext:drkit:purpose": "kubernetes-secrets"}
    }
    administrators = policy["KeyAdministration"]["Principal"]["AWS"]
    assert administrators == [
        f"arn:aws:iam::{VAULT_ACCOUNT}:role/pulumi-deployer",
        f"arn:aws:iam::{VAULT_ACCOUNT}:role/vault-admin",
    ]
    # Outside the vault account: the writers' statements and nothing else, anywhere.
    assert outside_principals(vault) == {
        "WriterProdCreatesUnderItsPrefixes": [f"arn:aws:iam::{ACCOUNT}:root"],
        "WriterDrCreatesUnderItsPrefixes": [f"arn:aws:iam::{ACCOUNT}:root"],
        "WriterProdUploadsThroughS3": [f"arn:aws:iam::{ACCOUNT}:root"],
        "WriterDrUploadsThroughS3": [f"arn:aws:iam::{ACCOUNT}:root"],
        "WriterProdWrapsSecretsKeys": [f"arn:aws:iam::{ACCOUNT}:root"],
        "WriterDrWrapsSecretsKeys": [f"arn:aws:iam::{ACCOUNT}:root"],
    }


def test_the_reader_role_trusts_only_the_dr_operators_and_only_reads(vault: StackRun) -> None:
    role = vault.one(ROLE, "isolated-vault-reader-role")
    [trust] = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
    assert trust["Principal"] == {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}
    assert trust["Condition"] == {
        "ArnLike": {"aws:PrincipalArn": [f"arn:aws:iam::{ACCOUNT}:role/dr-operator"]}
    }
    assert role.inputs["maxSessionDuration"] == 3600
    policy = statements(vault.one(ROLE_POLICY, "isolated-vault-reader-policy").inputs["policy"])
    assert policy["ReadBackups"]["Action"] == [
        "s3:GetObject",
        "s3:GetObjectAttributes",
        "s3:GetObjectRetention",
        "s3:GetObjectVersion",
    ]
    assert (
        policy["DecryptThroughS3"]["Resource"] == vault.one(KEY, "isolated-vault-key").state["arn"]
    )
    assert policy["OpenSecretsKeys"]["Action"] == ["kms:Decrypt"]
    assert policy["OpenSecretsKeys"]["Condition"] == {
        "StringEquals": {"kms:EncryptionContext:drkit:purpose": "kubernetes-secrets"}
    }
    # Its one write: the lease of a restore from this vault; every other put and every delete
    # is denied.
    assert policy["HoldsRestoreLeases"] == {
        "Sid": "HoldsRestoreLeases",
        "Effect": "Allow",
        "Action": "s3:PutObject",
        "Resource": f"{VAULT_ARN}/leases/restore/*",
    }
    assert policy["NeverWritesButRestoreLeases"]["Effect"] == "Deny"
    assert policy["NeverWritesButRestoreLeases"]["Action"] == "s3:Put*"
    assert policy["NeverWritesButRestoreLeases"]["NotResource"] == f"{VAULT_ARN}/leases/restore/*"
    assert policy["NeverDeletes"]["Effect"] == "Deny"
    assert set(policy["NeverDeletes"]["Action"]) == {"s3:Delete*", "s3:BypassGovernanceRetention"}
    allowed = {sid for sid, s in policy.items() if s["Effect"] == "Allow"}
    assert allowed == {
        "ListVault",
        "ReadBackups",
        "DecryptThroughS3",
        "OpenSecretsKeys",
        "HoldsRestoreLeases",
    }


def test_access_logs_and_an_audit_trail_into_a_locked_bucket(vault: StackRun) -> None:
    [logging] = vault.for_bucket("aws:s3/bucketLogging:BucketLogging", VAULT_BUCKET)
    assert logging.inputs["targetBucket"] == f"aipx-access-logs-{VAULT_ACCOUNT}-us-east-2"
    trail = vault.one(TRAIL, "isolated-vault-trail")
    assert trail.inputs["s3BucketName"] == AUDIT_BUCKET
    assert trail.inputs["enableLogFileValidation"] is True
    assert trail.inputs["kmsKeyId"] == vault.one(KEY, "isolated-vault-key").state["arn"]
    [selector] = trail.inputs["eventSelectors"]
    assert selector["readWriteType"] == "All"
    assert selector["dataResources"] == [{"type": "AWS::S3::Object", "values": [f"{VAULT_ARN}/"]}]
    audit = vault.one(BUCKET, "isolated-vault-audit-bucket")
    assert audit.inputs["objectLockEnabled"] is True
    [lock] = vault.for_bucket(
        "aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration", AUDIT_BUCKET
    )
    assert lock.inputs["rule"]["defaultRetention"] == {"mode": "COMPLIANCE", "days": 1095}
    delivery = statements(vault.one(POLICY, "isolated-vault-audit-policy").inputs["policy"])
    trail_arn = f"arn:aws:cloudtrail:us-east-2:{VAULT_ACCOUNT}:trail/aipx-isolated-vault-trail"
    assert delivery["CloudTrailDelivery"]["Condition"] == {
        "StringEquals": {"aws:SourceArn": trail_arn}
    }
    assert delivery["CloudTrailDelivery"]["Resource"] == (
        f"arn:aws:s3:::{AUDIT_BUCKET}/AWSLogs/{VAULT_ACCOUNT}/*"
    )
    assert trail.options is not None
    assert any("isolated-vault-audit-policy" in d for d in trail.options.depends_on)


def test_the_vault_exports_its_own_outputs_model(vault: StackRun) -> None:
    outputs = VaultStackOutputs.parse(vault.outputs, "vault")
    assert outputs.isolated_vault.account_id == VAULT_ACCOUNT
    assert outputs.isolated_vault.bucket.name == VAULT_BUCKET
    assert outputs.isolated_vault.reader_role_arn.endswith(":role/aipx-isolated-vault-reader")
    assert outputs.isolated_vault.endpoint_url is None
    assert sorted(outputs.writers) == ["dr", "prod"]
    assert outputs.trail_arn.endswith(":trail/aipx-isolated-vault-trail")


def test_the_vault_refuses_the_credentials_of_another_account() -> None:
    with pytest.raises(WrongAccount, match="trading-dr:account_id is 210987654321 but"):
        run_stack("vault", account=ACCOUNT)


def test_prod_without_a_vault_stack_exports_none_and_grants_nothing(prod: StackRun) -> None:
    assert prod.outputs["isolated_vault"] is None
    for policy in prod.of_type(ROLE_POLICY):
        assert "IsolatedVault" not in policy.inputs["policy"]


@pytest.mark.parametrize("stack", ["prod", "dr"])
def test_prod_and_dr_export_the_isolated_vault_and_grant_create_only(
    stack: str, prod_isolated: StackRun, dr_isolated: StackRun, vault: StackRun
) -> None:
    run = prod_isolated if stack == "prod" else dr_isolated
    region = run.config.region
    outputs = StackOutputs.parse(run.outputs, stack)
    assert outputs.isolated_vault == IsolatedVault.model_validate(vault.outputs["isolated_vault"])
    key_arn = vault.outputs["isolated_vault"]["kms_key_arn"]
    jobs = [p for p in run.of_type(ROLE_POLICY) if p.name.startswith("backup-job-")]
    assert len(jobs) == len(run.config.stores)
    for job in jobs:
        store = job.name.removeprefix("backup-job-").removesuffix("-policy")
        data_class = run.config.stores[store].data_class
        policy = statements(job.inputs["policy"])
        isolated = {sid: s for sid, s in policy.items() if VAULT_ACCOUNT in json.dumps(s)}
        wraps = isolated.pop("IsolatedVaultWrapsSecretsKey", None)
        if run.config.stores[store].kind.value == "kubernetes":  # it seals Secrets
            assert wraps == {
                "Sid": "IsolatedVaultWrapsSecretsKey",
                "Effect": "Allow",
                "Action": ["kms:Encrypt"],
                "Resource": key_arn,
                "Condition": {
                    "StringEquals": {"kms:EncryptionContext:drkit:purpose": "kubernetes-secrets"},
                    "StringLike": {"kms:EncryptionContext:drkit:backup": f"{data_class}/{store}/*"},
                },
            }, store
        else:
            assert wraps is None, store
        assert isolated == {
            "IsolatedVaultCreateOwnPrefix": {
                "Sid": "IsolatedVaultCreateOwnPrefix",
                "Effect": "Allow",
                "Action": "s3:PutObject",
                "Resource": [
                    f"{VAULT_ARN}/{data_class}/{store}/*",
                    f"{VAULT_ARN}/catalog/{store}/*",
                ],
            },
            "IsolatedVaultKeyThroughS3": {
                "Sid": "IsolatedVaultKeyThroughS3",
                "Effect": "Allow",
                "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
                "Resource": key_arn,
                "Condition": {
                    "StringEquals": {"kms:ViaService": "s3.us-east-2.amazonaws.com"},
                    "StringLike": {
                        "kms:EncryptionContext:aws:s3:arn": [VAULT_ARN, f"{VAULT_ARN}/*"]
                    },
                },
            },
        }, store
        # The job's own vault stays in its region; the isolated grant changes nothing there.
        assert f"s3.{region}.amazonaws.com" in json.dumps(policy["VaultKeyThroughS3"])


def test_a_vault_that_does_not_accept_this_account_fails_the_deploy(vault: StackRun) -> None:
    outputs = json.loads(json.dumps(vault.outputs))
    for writer in outputs["writers"].values():
        writer["account_id"] = "999999999999"
    with pytest.raises(Exception, match="accepts writers of accounts \\['999999999999'\\]"):
        run_stack(
            "prod",
            {"vault": outputs},
            config_variant("prod", isolated_vault_stack="vault"),
        )


def _vault_entry_point(config: dict[str, str]) -> RecordingMocks:
    import runpy

    from program_harness import ROOT, run_program

    mocks = RecordingMocks(account=VAULT_ACCOUNT)

    def program() -> dict[str, Any]:
        pulumi.runtime.set_all_config(config)
        runpy.run_path(str(ROOT / "infra" / "__main__.py"), run_name="__main__")
        return {}

    run_program(program, "vault", mocks)
    return mocks


def _vault_config_strings() -> dict[str, str]:
    import yaml
    from program_harness import ROOT

    document = yaml.safe_load((ROOT / "Pulumi.vault.yaml").read_text())
    return {
        key: value if isinstance(value, str) else json.dumps(value)
        for key, value in document["config"].items()
    }


def test_the_entry_point_declares_the_vault_stack_from_its_config() -> None:
    """``pulumi up -s vault``: ``infra/__main__.py`` picks the vault model by the role."""
    mocks = _vault_entry_point(_vault_config_strings())
    [bucket] = [r for r in mocks.resources if r.name == "isolated-vault-bucket"]
    assert bucket.inputs["bucket"] == VAULT_BUCKET
    assert not any(r.type.startswith("gcp:") for r in mocks.resources)


def test_the_entry_point_refuses_a_bad_vault_config_naming_the_key() -> None:
    from stackmodels import ConfigError

    config = _vault_config_strings()
    config["trading-dr:writers"] = json.dumps(
        {"prod": {"account_id": VAULT_ACCOUNT, "roles": ["aipx-backup-*"]}}
    )
    with pytest.raises(ConfigError) as refused:
        _vault_entry_point(config)
    [problem] = refused.value.problems
    assert problem.startswith(f"trading-dr:writers.prod.account_id = '{VAULT_ACCOUNT}'")
