"""The isolated backup account (issue 22) on real servers: a third AWS emulator standing for the
vault account, which refuses what its bucket policy and Object Lock refuse on AWS.

A backup lands in three places in one pass; a restore with ``--source isolated`` reads through the
reader role (STS AssumeRole) and round-trips while the prod vault's copy is hidden; the prod
account's credentials cannot delete, overwrite, shorten a retention or change the policy there.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg
import pytest
from botocore.exceptions import ClientError

from drkit.backup.engine import IsolatedCopyFailed
from drkit.backup.manifest import MANIFEST_NAME, Manifest
from drkit.catalog import Catalog
from drkit.context import OpsContext
from drkit.endpoints import postgres_source
from drkit.local.isolated import ISOLATED_ACCOUNT, admin_client
from drkit.ops.executor import Status
from drkit.ops.restore_all import RestoreAllRequest
from drkit.ops.restore_all import build_plan as restore_all_plan
from drkit.ops.restore_postgres import RestorePostgresRequest, build_plan
from drkit.ops.selection import object_store
from drkit.ops.verbs import RestoreEnv
from drkit.ops.verify import VerifyRequest
from drkit.ops.verify import build_plan as verify_plan
from drkit.recovery import RecoveryError
from drkit.seed.postgres import table_digests
from drkit.storage.objectstore import Encryption
from drkit.storage.s3 import S3Store
from stackmodels import StackOutputs
from stackmodels.outputs import Bucket
from tests.integration.conftest import SessionServers, provision_project
from tests.integration.ops_helpers import (
    ROOT,
    attach_cache,
    cache_backup,
    cache_server,
    cache_snapshot,
    context,
    create_topics,
    database_backup,
    delete_topics,
    fill_cache,
    produce,
    run,
    stream_backup,
    unique_topics,
)

if TYPE_CHECKING:
    from drkit.local.gcs import LocalGcs
    from drkit.local.kafka import LocalKafka
    from drkit.local.postgres import LocalPostgres
    from drkit.local.redis import LocalRedis
    from drkit.local.s3 import LocalAws

pytestmark = pytest.mark.integration
__all__ = ["cache_server"]


def isolated_copy(ctx: OpsContext, manifest: Manifest) -> dict[str, Any]:
    """Every key of the backup in the isolated vault, with its HEAD, read as the reader role."""
    reader = ctx.isolated_reader()
    keys = [item.key for item in manifest.objects] + [manifest.prefix + MANIFEST_NAME]
    return {key: reader.client.head_object(Bucket=reader.bucket, Key=key) for key in keys}


def test_a_backup_lands_in_three_places_the_third_under_the_isolated_key(
    project_isolated: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ctx = context(project_isolated)
    isolated = ctx.outputs.isolated_vault
    assert isolated is not None and isolated.account_id == ISOLATED_ACCOUNT
    manifest = database_backup(ctx)
    writer = ctx.isolated_writer()
    assert writer is not None
    mirror = ctx.mirror()
    assert mirror is not None
    assert manifest.destinations == [ctx.vault().name, mirror.name, writer.name]
    heads = isolated_copy(ctx, manifest)
    for item in manifest.objects:
        head = heads[item.key]
        assert head["ContentLength"] == item.size
        assert head["SSEKMSKeyId"] == isolated.kms_key_arn  # the vault account's own key
        assert head["ObjectLockMode"] == "COMPLIANCE"  # the bucket's default: no lock asked
        assert head["ETag"].strip('"') == item.fingerprints[writer.name]
    # the same bytes as the prod vault's copy, and the catalog entry is there too
    assert all(ctx.vault().exists(key) and mirror.exists(key) for key in heads)
    entry = Catalog(ctx.isolated_reader()).read_entry("trading-db", manifest.backup_id)
    assert entry is not None and entry.size == manifest.size
    # The writer may not list or read there (the local account refuses it, as the bucket policy
    # does): the entry is written alone, with no read of the day, so no catalog warning.
    assert "not updated" not in caplog.text
    day = manifest.started_at.date()
    listed = Catalog(ctx.isolated_reader()).store_entries("trading-db", day, day)
    assert manifest.backup_id in {e.backup_id for e in listed}


def test_a_restore_from_the_isolated_vault_round_trips_with_the_prod_copy_hidden(
    project_isolated: Path,
) -> None:
    ctx = context(project_isolated)
    manifest = database_backup(ctx)
    expected = table_digests(postgres_source(ctx, "trading-db").conninfo())
    # What a prod-credentialed attacker can do to the prod vault: hide every object
    hidden = ctx.vault().delete_prefix(manifest.prefix)
    assert hidden == len(manifest.objects) + 1
    with pytest.raises(RecoveryError, match=r"its manifest .* is gone"):
        build_plan(
            ctx, RestorePostgresRequest(target_database="from_vault"), RestoreEnv(project_isolated)
        )
    request = RestorePostgresRequest(target_database="from_isolated", source="isolated")
    plan, _ = build_plan(ctx, request, RestoreEnv(project_isolated))
    report, out = run(ctx, project_isolated, plan, yes=True)
    assert report.status is Status.SUCCEEDED, out
    restored = postgres_source(ctx, "trading-db", "from_isolated")
    assert table_digests(restored.conninfo()) == expected


def refused(call: Any) -> str:
    with pytest.raises(ClientError) as caught:
        call()
    return str(caught.value.response["Error"]["Code"])


def test_prod_credentials_cannot_delete_overwrite_or_unlock_the_isolated_copy(
    project_isolated: Path,
) -> None:
    ctx = context(project_isolated)
    manifest = database_backup(ctx)
    writer = ctx.isolated_writer()
    assert writer is not None
    s3, bucket = writer.client, writer.bucket
    key = manifest.objects[0].key
    version = ctx.isolated_reader().client.head_object(Bucket=bucket, Key=key)["VersionId"]
    later = datetime.now(UTC) + timedelta(days=1)
    attempts = {
        "delete": lambda: s3.delete_object(Bucket=bucket, Key=key),
        "delete version": lambda: s3.delete_object(Bucket=bucket, Key=key, VersionId=version),
        "delete many": lambda: s3.delete_objects(
            Bucket=bucket, Delete={"Objects": [{"Key": key, "VersionId": version}]}
        ),
        "overwrite": lambda: s3.put_object(Bucket=bucket, Key=key, Body=b"ransom"),
        "overwrite create-only": lambda: s3.put_object(
            Bucket=bucket, Key=key, Body=b"ransom", IfNoneMatch="*"
        ),
        # a lock per object needs s3:PutObjectRetention on AWS: the bucket's default only
        "create with a lock": lambda: s3.put_object(
            Bucket=bucket,
            Key=f"{key}.locked",
            Body=b"x",
            IfNoneMatch="*",
            ObjectLockMode="COMPLIANCE",
            ObjectLockRetainUntilDate=later,
        ),
        "upload with a lock": lambda: s3.create_multipart_upload(
            Bucket=bucket,
            Key=f"{key}.locked",
            ObjectLockMode="COMPLIANCE",
            ObjectLockRetainUntilDate=later,
        ),
        "copy over": lambda: s3.copy_object(
            Bucket=bucket, Key=key, CopySource={"Bucket": bucket, "Key": key}
        ),
        "shorten retention": lambda: s3.put_object_retention(
            Bucket=bucket,
            Key=key,
            Retention={"Mode": "GOVERNANCE", "RetainUntilDate": later},
            BypassGovernanceRetention=True,
        ),
        "policy": lambda: s3.put_bucket_policy(
            Bucket=bucket, Policy='{"Version": "2012-10-17", "Statement": []}'
        ),
        "lock rule": lambda: s3.put_object_lock_configuration(
            Bucket=bucket, ObjectLockConfiguration={"ObjectLockEnabled": "Enabled"}
        ),
        "delete bucket": lambda: s3.delete_bucket(Bucket=bucket),
    }
    codes = {name: refused(call) for name, call in attempts.items()}
    assert codes == {
        name: ("PreconditionFailed" if name == "overwrite create-only" else "AccessDenied")
        for name in attempts
    }
    # The reader role, in the vault account itself, cannot delete either.
    reader = ctx.isolated_reader()
    assert refused(lambda: reader.client.delete_object(Bucket=bucket, Key=key)) == "AccessDenied"
    versions = reader.client.list_object_versions(Bucket=bucket, Prefix=key)
    assert [v["VersionId"] for v in versions.get("Versions", [])] == [version]
    assert not versions.get("DeleteMarkers")
    assert ctx.isolated_reader().get_bytes(key) == ctx.vault().get_bytes(key)


def test_an_unwritable_isolated_vault_fails_the_backup_naming_it(project_isolated: Path) -> None:
    state = project_isolated / ".drkit" / "local" / "outputs.json"
    outputs = StackOutputs.from_file(state, "local")
    assert outputs.isolated_vault is not None
    gone = "aipx-isolated-vault-missing"
    broken = outputs.isolated_vault.model_copy(
        update={"bucket": Bucket(name=gone, arn=f"arn:aws:s3:::{gone}", region="us-west-2")}
    )
    outputs.model_copy(update={"isolated_vault": broken}).write(state)
    ctx = context(project_isolated)
    with pytest.raises(IsolatedCopyFailed, match=f"s3://{gone}.*NoSuchBucket") as failure:
        database_backup(ctx)
    # the vault's and the mirror's commit stand (a two-copy backup), saying what is missing
    committed = [
        Manifest.model_validate_json(ctx.vault().get_bytes(info.key))
        for info in ctx.vault().list_objects("")
        if info.key.endswith(MANIFEST_NAME) and "/trading-db/" in info.key
    ]
    assert [m.backup_id for m in committed] == [failure.value.manifest.backup_id]
    assert list(committed[0].skipped) == [f"s3://{gone}"]


def invoke(project: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    (project / "tasks.py").write_text(
        (ROOT / "tasks.py")
        .read_text()
        .replace("ROOT = Path(__file__).resolve().parent", f"ROOT = Path({str(project)!r})")
    )
    return subprocess.run(
        [sys.executable, "-m", "invoke", *arguments],
        capture_output=True,
        text=True,
        cwd=project,
        check=False,
    )


def test_source_isolated_lists_shows_and_verifies(project_isolated: Path) -> None:
    manifest = database_backup(context(project_isolated))
    listed = invoke(
        project_isolated, "backups.list", "--stores", "trading-db", "--source", "isolated"
    )
    assert listed.returncode == 0 and manifest.backup_id in listed.stdout, listed.stderr
    info = invoke(project_isolated, "backups.info", manifest.backup_id, "--source", "isolated")
    assert info.returncode == 0 and f"backup {manifest.backup_id}" in info.stdout, info.stderr
    verified = invoke(
        project_isolated, "verify", "--stores", "trading-db", "--source", "isolated", "--yes"
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "isolated-vault" in verified.stdout


def test_source_isolated_is_refused_without_a_vault_stack(project: Path) -> None:
    for task in (["restore.all"], ["backups.list"]):
        result = invoke(project, *task, "--source", "isolated")
        assert result.returncode == 2, (task, result.stdout, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "has no isolated vault" in lines[0], (task, result.stderr)
    ctx = context(project)
    with pytest.raises(RecoveryError, match="has no isolated vault"):
        object_store(ctx, "isolated")
    with pytest.raises(RecoveryError, match="has no isolated vault"):
        build_plan(ctx, RestorePostgresRequest(source="isolated"), RestoreEnv(project))
    with pytest.raises(RecoveryError, match="has no isolated vault"):
        verify_plan(ctx, VerifyRequest(source="isolated"))


def test_restore_all_from_the_isolated_vault_with_every_prod_copy_hidden(
    tmp_path: Path,
    postgres_server: LocalPostgres,
    redis_server: LocalRedis,
    aws_emulator: LocalAws,
    gcs_emulator: LocalGcs,
    kafka_broker: LocalKafka,
    isolated_aws: LocalAws,
    cache_server: LocalRedis,
) -> None:
    servers = SessionServers(
        postgres_server,
        redis_server,
        aws_emulator,
        gcs_emulator,
        kafka=kafka_broker,
        isolated=isolated_aws,
    )
    project = provision_project(tmp_path, servers)
    topics = unique_topics(project)
    attach_cache(project, cache_server)
    ctx = context(project)
    endpoint = ctx.outputs.stores["event-stream"]
    bootstrap = f"{endpoint.host}:{endpoint.port}"
    create_topics(bootstrap, topics)
    for topic in topics:
        produce(bootstrap, topic, 0, 12)
    with cache_server.client() as client:
        fill_cache(client, "t0")
        cache_at_point = cache_snapshot(client)
    manifests = [cache_backup(ctx), database_backup(ctx), stream_backup(ctx)]
    at_point = table_digests(postgres_source(ctx, "trading-db").conninfo())
    for manifest in manifests:  # the prod copies, hidden as prod's credentials can
        ctx.vault().delete_prefix(manifest.prefix)
    with cache_server.client() as client:
        client.flushall()
    delete_topics(bootstrap, topics)

    request = RestoreAllRequest(source="isolated")
    plan, prepared = restore_all_plan(ctx, request, RestoreEnv(project))
    assert {s.store: s.entry.backup_id for s in prepared.selections} == {
        m.store: m.backup_id for m in manifests
    }
    report, out = run(ctx, project, plan, yes=True)
    assert report.status is Status.SUCCEEDED, out
    assert all(s.outcome == "done" for s in report.steps)
    target_db = next(s.id for s in report.steps if s.id.startswith("create-database."))
    restored = postgres_source(ctx, "trading-db", target_db.split(".", 1)[1])
    assert table_digests(restored.conninfo()) == at_point
    with cache_server.client() as client:
        assert cache_snapshot(client) == cache_at_point


def test_a_multipart_object_in_the_isolated_vault_takes_the_default_compliance_retention(
    project_isolated: Path, isolated_aws: LocalAws
) -> None:
    """S3 applies the bucket's default retention to a completed multipart upload as to a PUT
    (moto does not; ``drkit.local.moto_server.patch_multipart_lock``): the isolated copy's large
    objects are locked, and not even the vault account's administrator can delete them."""
    ctx = context(project_isolated)
    isolated = ctx.outputs.isolated_vault
    writer = ctx.isolated_writer()
    assert isolated is not None and writer is not None
    store = S3Store(writer.client, writer.bucket, part_size=5 * 1024 * 1024)
    key = f"user-data/multipart-{secrets.token_hex(4)}/big.bin"
    upload = store.writer(key, Encryption(kms_key_id=isolated.kms_key_arn))
    for _ in range(3):  # 12 MiB: three parts, sent as a multipart upload
        upload.write(os.urandom(4 * 1024 * 1024))
    upload.commit()
    head = ctx.isolated_reader().client.head_object(Bucket=writer.bucket, Key=key)
    assert head["ContentLength"] == 12 * 1024 * 1024
    assert int(head["ETag"].strip('"').rsplit("-", 1)[1]) == 3  # a multipart object's ETag
    assert head["ObjectLockMode"] == "COMPLIANCE"
    longest = max(ctx.config.retention_of(c).days for c in ctx.config.data_classes)
    until = head["ObjectLockRetainUntilDate"]
    expected = datetime.now(UTC) + timedelta(days=longest)
    assert abs((until - expected).total_seconds()) < 300, (until, expected)
    admin = admin_client(isolated_aws, "s3", isolated.bucket.region)
    version = head["VersionId"]
    for call in (
        lambda: admin.delete_object(Bucket=writer.bucket, Key=key, VersionId=version),
        lambda: admin.delete_object(
            Bucket=writer.bucket, Key=key, VersionId=version, BypassGovernanceRetention=True
        ),
    ):
        assert refused(call) == "AccessDenied"
    assert refused(lambda: writer.client.delete_object(Bucket=writer.bucket, Key=key)) == (
        "AccessDenied"
    )
    versions = admin.list_object_versions(Bucket=writer.bucket, Prefix=key)
    assert [v["VersionId"] for v in versions["Versions"]] == [version]


def database_exists(ctx: OpsContext, name: str) -> bool:
    with psycopg.connect(postgres_source(ctx, "trading-db").conninfo()) as connection:
        row = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
        return row.fetchone() is not None


def test_a_tampered_object_in_the_isolated_vault_is_refused_naming_it(
    project_isolated: Path, isolated_aws: LocalAws
) -> None:
    """The vault account's administrator (or anyone holding it) writes a new version over a
    backup's dump, as Object Lock allows: same size, same binding metadata, other bytes. A restore
    from the isolated vault refuses it by name before anything is changed: no database created."""
    ctx = context(project_isolated)
    manifest = database_backup(ctx)
    isolated = ctx.outputs.isolated_vault
    assert isolated is not None
    bucket = isolated.bucket.name
    admin = admin_client(isolated_aws, "s3", isolated.bucket.region)
    dump = next(item for item in manifest.objects if item.name == "database.dump")
    head = admin.head_object(Bucket=bucket, Key=dump.key)
    admin.put_object(
        Bucket=bucket,
        Key=dump.key,
        Body=b"\0" * dump.size,
        Metadata=head["Metadata"],
        ServerSideEncryption="aws:kms",
        SSEKMSKeyId=isolated.kms_key_arn,
    )
    versions = admin.list_object_versions(Bucket=bucket, Prefix=dump.key)["Versions"]
    assert len(versions) == 2  # the original stays under its lock, the new one on top

    target = "from_tampered"
    request = RestorePostgresRequest(target_database=target, source="isolated")
    with pytest.raises(RecoveryError) as refusal:
        build_plan(ctx, request, RestoreEnv(project_isolated))
    message = str(refusal.value)
    assert f"s3://{bucket}/{dump.key} is not the object that was written" in message
    assert "nothing was changed" in message
    assert not database_exists(ctx, target)
    # the task: one line naming the object, exit 2
    result = invoke(
        project_isolated,
        "restore.postgres",
        "--source",
        "isolated",
        "--target-database",
        target,
        "--yes",
    )
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and dump.key in lines[0], result.stderr
    assert not database_exists(ctx, target)
    # the prod vault's copy is untouched and restores
    plan, _ = build_plan(
        ctx, RestorePostgresRequest(target_database=target), RestoreEnv(project_isolated)
    )
    report, out = run(ctx, project_isolated, plan, yes=True)
    assert report.status is Status.SUCCEEDED, out
