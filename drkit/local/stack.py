"""The local embedded default as a stack: provision its 'cloud' on the emulators and write the
same stack outputs a real stack exports, so every operation runs unchanged against it.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from drkit.context import Credentials, StoreCredentials
from drkit.kinds import REGISTRY
from drkit.local.moto_server import REPLICA_TAG
from drkit.local.stores import LocalServers
from stackmodels import StackConfig, StackOutputs
from stackmodels.outputs import Bucket, StoreEndpoint

LOCAL_ACCOUNT_BUCKET_SUFFIX = "local"


def _bucket(name: str, region: str) -> Bucket:
    return Bucket(name=name, arn=f"arn:aws:s3:::{name}", region=region)


def provision(
    env: LocalServers,
    config: StackConfig,
    suffix: str = LOCAL_ACCOUNT_BUCKET_SUFFIX,
    separate_databases: bool = False,
    replica_of: str | None = None,
) -> tuple[StackOutputs, Credentials]:
    """Create the vault, mirror, audit bucket and key on the emulators; describe the servers.

    ``suffix`` ends every bucket name (and, with ``separate_databases``, every database name), so
    several local stacks can share one set of servers. ``replica_of``: the vault key is that
    multi-Region key's replica in this region (the dr region of a two-region stack).
    """
    region = config.region
    vault = f"{config.platform}-backup-vault-{region}-{suffix}"
    audit = f"{config.platform}-audit-{region}-{suffix}"
    mirror = f"{config.platform}-backup-mirror-{suffix}"
    s3 = env.aws.s3(region)
    # Outside us-east-1, S3 (and moto) refuse a bucket without its region's location constraint.
    location: Any = (
        {}
        if region == "us-east-1"
        else {"CreateBucketConfiguration": {"LocationConstraint": region}}
    )
    for bucket in (vault, audit):
        s3.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True, **location)
    # The audit bucket's default retention, as components.audit_bucket sets it: the journal's
    # retention class (COMPLIANCE, 3 years). Each audit event also asks for its own lock.
    journal = config.journal_retention()
    s3.put_object_lock_configuration(
        Bucket=audit,
        ObjectLockConfiguration={
            "ObjectLockEnabled": "Enabled",
            "Rule": {
                "DefaultRetention": {
                    "Mode": journal.object_lock.value.upper(),  # type: ignore[typeddict-item]
                    "Days": journal.days,
                }
            },
        },
    )
    kms: Any = env.aws.client("kms", region)
    # A multi-Region key as the real vault key is (components.keys); ``replica_of`` (dr, given
    # prod's key) makes its replica in this region (drkit.local.moto_server).
    tags = [{"TagKey": REPLICA_TAG, "TagValue": replica_of}] if replica_of else []
    key_arn = kms.create_key(
        Description=f"{config.platform} backup vault key (local)", MultiRegion=True, Tags=tags
    )["KeyMetadata"]["Arn"]
    # The mirror's locked retention policy, as components.gcs_mirror sets it: the shortest
    # retention of the data classes. Nothing younger can be replaced or deleted.
    # One mirror is shared by the regions of a local stack: the first region creates it.
    if env.gcs.client().lookup_bucket(mirror) is None:
        floor = min(config.retention_of(name).days for name in config.data_classes)
        env.gcs.create_locked_bucket(mirror, timedelta(days=floor))

    stores: dict[str, StoreEndpoint] = {}
    credentials: dict[str, StoreCredentials] = {}
    for name, store in config.stores.items():
        provisioned = REGISTRY[store.kind].local.provision(
            env, config, name, store, suffix if separate_databases else None
        )
        if provisioned is None:
            continue
        stores[name], found = provisioned
        if found is not None:
            credentials[name] = found
    outputs = StackOutputs(
        stack="local",
        role=config.role,
        region=region,
        platform=config.platform,
        backup_vault=_bucket(vault, region),
        vault_key_arn=key_arn,
        audit_bucket=_bucket(audit, region),
        gcs_mirror_bucket=mirror,
        k8s_namespace=config.kubernetes.namespace,
        k8s_backup_namespace=config.kubernetes.backup_namespace,
        stores=stores,
        aws_endpoint_url=env.aws.endpoint_url,
        gcs_endpoint_url=env.gcs.endpoint_url,
    )
    return outputs, Credentials(credentials)


def write_state(state_dir: Path, outputs: StackOutputs, credentials: Credentials) -> None:
    """``outputs.json`` and ``credentials.json`` (mode 600), which ``--stack local`` reads."""
    outputs.write(state_dir / "outputs.json")
    credentials.write(state_dir / "credentials.json")
