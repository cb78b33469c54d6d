"""The vault's lifecycle keeps the append-only catalog and the leases from piling up."""

from __future__ import annotations

import pytest

from components.backup_vault import BackupVaultArgs, Tier, VaultDataClass, lifecycle_rules
from drkit.catalog import CATALOG_PREFIX
from drkit.lease import LEASE_PREFIX

pytestmark = pytest.mark.unit


def test_catalog_and_lease_prefixes_have_their_own_expiry() -> None:
    args = BackupVaultArgs(
        platform="aipx",
        stack_role="primary",
        bucket_name="aipx-backup-vault",
        kms_key_arn="arn:aws:kms:us-east-1:123456789012:key/mrk-0123456789abcdef0123456789abcdef",
        access_log_bucket="aipx-logs",
        data_classes=[
            VaultDataClass(
                name="user-data",
                lock_mode="COMPLIANCE",
                retention_days=2555,
                tiers=[Tier(storage_class="GLACIER", days=90)],
            )
        ],
    )
    rules = {rule["id"]: rule for rule in lifecycle_rules(args)}
    catalog = rules["catalog"]
    assert catalog["filter"] == {"prefix": CATALOG_PREFIX}  # the prefix the engine writes
    assert catalog["noncurrent_version_expiration"] == {"noncurrent_days": 7}
    assert catalog["expiration"] == {"days": 2555}  # with the longest-kept backups
    leases = rules["leases"]
    assert leases["filter"] == {"prefix": LEASE_PREFIX}
    assert leases["expiration"] == {"days": 7}
