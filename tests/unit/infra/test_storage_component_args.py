"""Component args validate at construction, with messages that name the field (plain pydantic)."""

from __future__ import annotations

from typing import Any

import pulumi
import pytest
from pydantic import ValidationError

from components import naming
from components.backup_vault import BackupVaultArgs, Tier, VaultDataClass
from components.ecr import ContainerRegistryArgs
from components.gcs_mirror import GcsMirrorArgs, MirrorDataClass
from components.keys import KeyRole, VaultKeyArgs, key_policy
from components.replication import VaultReplicationArgs
from components.s3 import deny_weaker_object_lock

pytestmark = pytest.mark.unit

KEY = "arn:aws:kms:us-east-1:123456789012:key/mrk-0123abcd"
ROLE = "arn:aws:iam::123456789012:role/writer"


def vault_args(**overrides: Any) -> BackupVaultArgs:
    values: dict[str, Any] = {
        "platform": "aipx",
        "stack_role": "primary",
        "bucket_name": "aipx-backup-vault-123456789012-us-east-1",
        "kms_key_arn": KEY,
        "access_log_bucket": "aipx-access-logs",
        "data_classes": [
            VaultDataClass(
                name="user-data",
                lock_mode="COMPLIANCE",
                retention_days=2555,
                tiers=[Tier(storage_class="STANDARD_IA", days=30)],
            ),
            VaultDataClass(name="monitoring-logs", lock_mode="GOVERNANCE", retention_days=365),
        ],
    }
    values.update(overrides)
    return BackupVaultArgs(**values)


def test_vault_default_lock_is_the_strictest_class() -> None:
    assert vault_args().default_lock.name == "user-data"


def test_vault_args_accept_outputs_for_inputs() -> None:
    args = vault_args(kms_key_arn=pulumi.Output.from_input(KEY))
    assert isinstance(args.kms_key_arn, pulumi.Output)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("kms_key_arn", "alias/aws/s3", "not a KMS key ARN"),
        ("kms_key_arn", "", "must not be empty"),
        ("bucket_name", 42, "string or a pulumi Output"),
        ("data_classes", [], "at least 1"),
        ("stack_role", "secondary", "'primary', 'dr' or 'vault'"),
    ],
)
def test_vault_args_reject_bad_fields(field: str, value: Any, message: str) -> None:
    with pytest.raises(ValidationError) as error:
        vault_args(**{field: value})
    assert error.value.errors()[0]["loc"][0] == field
    assert message in str(error.value)


def test_vault_args_reject_duplicate_classes() -> None:
    same = VaultDataClass(name="user-data", lock_mode="GOVERNANCE", retention_days=30)
    with pytest.raises(ValidationError, match="data_classes: names must be unique"):
        vault_args(data_classes=[same, same])


def test_data_class_expiry_must_follow_the_last_tier() -> None:
    with pytest.raises(ValidationError, match="retention_days: 300 must be after the last tier"):
        VaultDataClass(
            name="user-data",
            lock_mode="COMPLIANCE",
            retention_days=300,
            tiers=[Tier(storage_class="DEEP_ARCHIVE", days=365)],
        )


def test_replica_key_needs_its_primary() -> None:
    common: dict[str, Any] = {
        "platform": "aipx",
        "region": "us-west-2",
        "account_id": "123456789012",
        "administrator_arns": [ROLE],
        "user_arns": [ROLE],
        "break_glass_arn": ROLE,
    }
    with pytest.raises(ValidationError, match="primary_key_arn: a replica key needs"):
        VaultKeyArgs(role=KeyRole.REPLICA, **common)
    with pytest.raises(ValidationError, match="primary_key_arn: only a replica"):
        VaultKeyArgs(role=KeyRole.PRIMARY, primary_key_arn=KEY, **common)
    with pytest.raises(ValidationError, match="region"):
        VaultKeyArgs(role=KeyRole.PRIMARY, **{**common, "region": "mars-1"})


def test_key_policy_grants_replication_only_where_asked() -> None:
    policy = key_policy(
        account_id="123456789012",
        region="us-east-1",
        administrators=[ROLE],
        users=[ROLE],
        break_glass=ROLE,
    )
    assert [s["Sid"] for s in policy["Statement"]] == [
        "KeyAdministration",
        "BackupUseThroughS3",
        "BreakGlass",
    ]


def test_key_policy_names_secret_sealers_and_openers_only_when_given() -> None:
    sealer, operator = f"{ROLE}-sealer", f"{ROLE}-operator"
    policy = key_policy(
        account_id="123456789012",
        region="us-east-1",
        administrators=[ROLE],
        users=[ROLE],
        break_glass=ROLE,
        secret_sealers=[sealer],
        secret_openers=[operator],
    )
    found = {s["Sid"]: s for s in policy["Statement"]}
    condition = {"StringEquals": {"kms:EncryptionContext:drkit:purpose": "kubernetes-secrets"}}
    assert found["SealKubernetesSecrets"]["Principal"] == {"AWS": [sealer]}
    assert found["SealKubernetesSecrets"]["Action"] == ["kms:GenerateDataKey"]
    assert found["SealKubernetesSecrets"]["Condition"] == condition
    assert found["OpenKubernetesSecrets"]["Principal"] == {"AWS": [operator]}
    assert found["OpenKubernetesSecrets"]["Action"] == ["kms:Decrypt"]
    assert found["OpenKubernetesSecrets"]["Condition"] == condition
    # no statement without a principal (KMS refuses an empty principal list)
    bare = key_policy(
        account_id="123456789012",
        region="us-east-1",
        administrators=[ROLE],
        users=[ROLE],
        break_glass=ROLE,
        secret_sealers=[],
        secret_openers=[],
    )
    assert "SealKubernetesSecrets" not in {s["Sid"] for s in bare["Statement"]}


def test_secrets_sealed_with_nobody_to_open_them_are_refused() -> None:
    common: dict[str, Any] = {
        "platform": "aipx",
        "region": "us-east-1",
        "account_id": "123456789012",
        "administrator_arns": [ROLE],
        "user_arns": [ROLE],
        "break_glass_arn": ROLE,
        "role": KeyRole.PRIMARY,
    }
    with pytest.raises(ValidationError, match="secret_opener_arns: roles seal Kubernetes"):
        VaultKeyArgs(secret_sealer_arns=[ROLE], **common)
    args = VaultKeyArgs(secret_sealer_arns=[ROLE], secret_opener_arns=[ROLE], **common)
    assert args.secret_opener_arns == [ROLE]
    with pytest.raises(ValidationError, match="secret_sealer_arns"):
        VaultKeyArgs(secret_sealer_arns=["not-an-arn"], secret_opener_arns=[ROLE], **common)


def test_replication_time_is_fixed_at_15_minutes() -> None:
    with pytest.raises(ValidationError, match="replication_time_minutes"):
        VaultReplicationArgs(
            source_bucket="a",
            destination_bucket_arn="arn:aws:s3:::b",
            destination_key_arn=KEY,
            role_arn=ROLE,
            replication_time_minutes=30,
        )  # type: ignore[arg-type]


def test_ecr_repository_names_are_checked() -> None:
    with pytest.raises(ValidationError, match="repositories"):
        ContainerRegistryArgs(account_id="123456789012", repositories=["Bad Name"])


def test_gcs_mirror_maps_s3_tiers_and_floors_retention() -> None:
    mirror = GcsMirrorArgs(
        platform="aipx",
        project="aipx-dr-mirror",
        bucket_name="aipx-dr-mirror-backup-mirror",
        writer_account_id="aipx-backup-writer",
        data_classes=[
            MirrorDataClass.from_s3_tiers(
                "a-class", 2555, [("STANDARD_IA", 30), ("GLACIER", 90), ("DEEP_ARCHIVE", 365)]
            ),
            MirrorDataClass.from_s3_tiers("b-class", 365, [("STANDARD_IA", 30)]),
        ],
    )
    assert [t.storage_class for t in mirror.data_classes[0].tiers] == [
        "NEARLINE",
        "COLDLINE",
        "ARCHIVE",
    ]
    assert mirror.retention_floor_days == 365
    assert mirror.key_location == "us"


def test_weaker_lock_statements_only_bind_compliance_mode() -> None:
    governance = deny_weaker_object_lock("arn:aws:s3:::v", "logs/", "GOVERNANCE", 365, "Logs")
    assert [s["Sid"] for s in governance] == ["LogsLockDays"]
    compliance = deny_weaker_object_lock("arn:aws:s3:::v", "fin/", "COMPLIANCE", 2555, "Fin")
    assert [s["Sid"] for s in compliance] == ["FinLockMode", "FinLockDays"]


def test_names_are_deterministic_and_checked() -> None:
    assert naming.vault_bucket_name("aipx", "123456789012", "us-west-2") == (
        "aipx-backup-vault-123456789012-us-west-2"
    )
    assert naming.replica_key_arn(KEY, "us-west-2") == (
        "arn:aws:kms:us-west-2:123456789012:key/mrk-0123abcd"
    )
    with pytest.raises(ValueError, match="multi-region"):
        naming.replica_key_arn("arn:aws:kms:us-east-1:123456789012:key/1234", "us-west-2")
    with pytest.raises(ValueError, match="shorten the platform name"):
        naming.vault_bucket_name("a" * 40, "123456789012", "us-west-2")


def test_components_refuse_to_run_without_an_explicit_provider() -> None:
    from components._common import require_provider

    with pytest.raises(ValueError, match=r"opts\.provider is required"):
        require_provider(pulumi.ResourceOptions(), "BackupVault")
