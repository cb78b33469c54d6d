"""Deterministic names: how prod knows the dr vault and key without reading the dr stack.

prod replicates into the dr vault, but prod may not read dr (DESIGN.md: one direction). Both
stacks compute the vault's name from the same inputs, so they agree without a reference; the dr
stack checks it at deploy time against the destination prod exported.
"""

from __future__ import annotations

import re

_BUCKET = re.compile(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")


def _bucket(name: str) -> str:
    if not _BUCKET.match(name):
        raise ValueError(
            f"bucket name {name!r} is not valid: 3-63 characters of a-z, 0-9 and '-'; "
            "shorten the platform name"
        )
    return name


def vault_bucket_name(platform: str, account_id: str, region: str) -> str:
    """``aipx-backup-vault-123456789012-us-west-2``: the account keeps it globally unique."""
    return _bucket(f"{platform}-backup-vault-{account_id}-{region}")


def audit_bucket_name(platform: str, account_id: str, region: str) -> str:
    return _bucket(f"{platform}-audit-{account_id}-{region}")


def access_log_bucket_name(platform: str, account_id: str, region: str) -> str:
    return _bucket(f"{platform}-access-logs-{account_id}-{region}")


def cache_export_bucket_name(platform: str, account_id: str, region: str) -> str:
    """The region's ElastiCache export staging bucket (``components.cache_export``)."""
    return _bucket(f"{platform}-cache-export-{account_id}-{region}")


def replication_role_name(platform: str, source_region: str) -> str:
    return f"{platform}-vault-replication-{source_region}"


def backup_writer_role_name(platform: str, region: str) -> str:
    return f"{platform}-backup-writer-{region}"


def s3_arn(partition: str, bucket: str) -> str:
    return f"arn:{partition}:s3:::{bucket}"


def iam_role_arn(partition: str, account_id: str, role: str) -> str:
    return f"arn:{partition}:iam::{account_id}:role/{role}"


def replica_key_arn(primary_key_arn: str, replica_region: str) -> str:
    """A multi-region replica keeps its primary's key id (``mrk-...``); only the region differs."""
    match = re.match(
        r"^arn:(aws[a-z-]*):kms:[a-z0-9-]+:(\d{12}):key/(mrk-[0-9a-f]+)$", primary_key_arn
    )
    if match is None:
        raise ValueError(
            f"{primary_key_arn!r} is not the ARN of a multi-region key (key id 'mrk-...')"
        )
    partition, account, key_id = match.groups()
    return f"arn:{partition}:kms:{replica_region}:{account}:key/{key_id}"
