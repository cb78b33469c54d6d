"""The KMS encryption context of the data keys that seal Kubernetes Secrets in a backup.

The backup of a store of kind ``kubernetes`` (``drkit.backup.kubernetes``) asks KMS for one data
key per backup, directly (``GenerateDataKey``, not through S3), with this encryption context; a
restore gets it back with ``Decrypt`` and the context stored in the manifest. The vault key's
policy and the backup job's IAM policy (``components.keys``, ``components.backup_iam``) allow those
calls only for this purpose. Both sides import these constants, so a renamed purpose fails a test
instead of every backup of Kubernetes state in production.
"""

from __future__ import annotations

PURPOSE_CONTEXT_KEY = "drkit:purpose"
BACKUP_CONTEXT_KEY = "drkit:backup"
"""Its value is the backup's prefix, ``<data class>/<store>/<date path>/<backup id>/``."""
KUBERNETES_SECRETS_PURPOSE = "kubernetes-secrets"


def secrets_context(backup_prefix: str) -> dict[str, str]:
    """The encryption context of a backup's Secrets data key."""
    return {PURPOSE_CONTEXT_KEY: KUBERNETES_SECRETS_PURPOSE, BACKUP_CONTEXT_KEY: backup_prefix}


def condition_key(context_key: str) -> str:
    """The IAM/KMS policy condition key of an encryption-context key."""
    return f"kms:EncryptionContext:{context_key}"
