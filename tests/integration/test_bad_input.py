"""Bad input at 3 a.m.: each gets an error that names the problem, and nothing is changed.

An unknown store; a time in the future or older than the retention; a backup id that does not
exist; a manifest whose checksums do not match its objects; a target that is not empty; a
truncated object; credentials that cannot read the vault (a second AWS emulator that enforces IAM).
"""

from __future__ import annotations

import json
import re
import secrets
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from confluent_kafka.admin import AdminClient

from drkit.backup.manifest import MANIFEST_NAME, Manifest
from drkit.context import OpsContext
from drkit.local.gcs import LocalGcs
from drkit.local.postgres import LocalPostgres
from drkit.local.redis import LocalRedis
from drkit.local.s3 import LocalAws
from drkit.ops.backups_info import InfoRequest, ListRequest, backup_info, list_backups
from drkit.ops.executor import Status
from drkit.ops.restore_all import RestoreAllRequest
from drkit.ops.restore_all import build_plan as restore_all_plan
from drkit.ops.restore_kafka import RestoreKafkaRequest
from drkit.ops.restore_kafka import build_plan as kafka_plan
from drkit.ops.restore_redis import RestoreRedisRequest
from drkit.ops.restore_redis import build_plan as redis_plan
from drkit.ops.selection import MissingObject, TargetNotEmptyError, VaultAccessError
from drkit.ops.verbs import RestoreEnv
from drkit.ops.verify import VerifyRequest
from drkit.ops.verify import build_plan as verify_plan
from drkit.recovery import RecoveryError
from drkit.targets import TargetRefused
from tests.integration.conftest import SessionServers, provision_project
from tests.integration.forgery import overwrite
from tests.integration.ops_helpers import (
    attach_cache,
    cache_backup,
    cache_server,
    cache_snapshot,
    context,
    create_topics,
    produce,
    run,
    run_id,
    stream_backup,
    unique_topics,
)

pytestmark = pytest.mark.integration
__all__ = ["cache_server"]
MISSING_ID = "20200101T000000Z-abcdef"


def nothing_journaled(project: Path) -> bool:
    return not (project / ".drkit" / "journal").exists()


def test_an_unknown_store_is_named_by_every_task(project: Path) -> None:
    ctx = context(project)
    attempts = [
        lambda: redis_plan(ctx, RestoreRedisRequest(store="orders-db"), RestoreEnv(project)),
        lambda: kafka_plan(ctx, RestoreKafkaRequest(store="orders-db"), RestoreEnv(project)),
        lambda: restore_all_plan(ctx, RestoreAllRequest(stores=["orders-db"]), RestoreEnv(project)),
        lambda: verify_plan(ctx, VerifyRequest(stores=["orders-db"])),
        lambda: list_backups(ctx, ListRequest(stores=["orders-db"])),
        lambda: backup_info(ctx, InfoRequest(backup_id=MISSING_ID, store="orders-db")),
    ]
    for attempt in attempts:
        with pytest.raises(ValueError, match="unknown store 'orders-db'; this stack has: app-st"):
            attempt()
    with pytest.raises(RecoveryError, match="'trading-db' is postgres, not redis"):
        redis_plan(ctx, RestoreRedisRequest(store="trading-db"), RestoreEnv(project))
    assert nothing_journaled(project)


def test_times_in_the_future_or_beyond_retention_and_missing_ids(project: Path) -> None:
    ctx = context(project)
    future = (datetime.now(UTC) + timedelta(minutes=5)).isoformat()
    ancient = (datetime.now(UTC) - timedelta(days=3000)).isoformat()
    with pytest.raises(RecoveryError, match="is in the future"):
        redis_plan(ctx, RestoreRedisRequest(at=future), RestoreEnv(project))
    with pytest.raises(RecoveryError, match=r"older than the retention of 'event-stream' \(2555"):
        kafka_plan(ctx, RestoreKafkaRequest(at=ancient), RestoreEnv(project))
    with pytest.raises(RecoveryError, match="is in the future"):
        restore_all_plan(
            ctx, RestoreAllRequest(at=future, stores=["trading-db"]), RestoreEnv(project)
        )
    with pytest.raises(RecoveryError, match="is not a timestamp"):
        kafka_plan(ctx, RestoreKafkaRequest(since="last tuesday"), RestoreEnv(project))
    with pytest.raises(RecoveryError, match=f"backup '{MISSING_ID}' of 'session-cache' does not"):
        redis_plan(ctx, RestoreRedisRequest(backup=MISSING_ID), RestoreEnv(project))
    with pytest.raises(RecoveryError, match=f"backup '{MISSING_ID}' of 'event-stream' does not"):
        kafka_plan(ctx, RestoreKafkaRequest(backup=MISSING_ID), RestoreEnv(project))
    with pytest.raises(RecoveryError, match="give --at or --backup, not both"):
        redis_plan(ctx, RestoreRedisRequest(at=future, backup=MISSING_ID), RestoreEnv(project))
    assert nothing_journaled(project)


def rewrite_manifest(ctx: OpsContext, manifest: Manifest, **changes: Any) -> None:
    body = manifest.model_dump(mode="json")
    body["objects"] = [item | changes for item in body["objects"]]
    overwrite(ctx.vault(), manifest.prefix + MANIFEST_NAME, json.dumps(body).encode())


def test_checksums_that_do_not_match_fail_before_the_server_is_touched(
    project: Path, cache_server: LocalRedis
) -> None:
    attach_cache(project, cache_server)
    ctx = context(project)
    with cache_server.client() as client:
        client.set("backed-up", "yes")
    manifest = cache_backup(ctx)
    rewrite_manifest(ctx, manifest, sha256="0" * 64)
    with cache_server.client() as client:
        client.flushall()
        client.set("written-after-the-backup", "keep me")
        before = cache_snapshot(client)
    running = run_id(cache_server)

    plan, _ = redis_plan(ctx, RestoreRedisRequest(force=True), RestoreEnv(project))
    report, _out = run(ctx, project, plan, yes=True)

    assert report.status is Status.FAILED
    step = next(s for s in report.steps if s.id == "restore.session-cache")
    assert "IntegrityError" in step.detail and f"{manifest.objects[0].key}: expected" in step.detail
    assert "SHA-256 " + "0" * 64 in step.detail
    assert run_id(cache_server) == running  # never stopped
    with cache_server.client() as client:
        assert cache_snapshot(client) == before
    assert not list(cache_server.data_dir.glob(".drkit-restore-*"))


def test_a_truncated_object_and_a_busy_target_are_refused_before_the_plan(
    project: Path, cache_server: LocalRedis
) -> None:
    attach_cache(project, cache_server)
    ctx = context(project)
    with cache_server.client() as client:
        client.set("backed-up", "yes")
    manifest = cache_backup(ctx)
    with cache_server.client() as client:  # no longer the backup's data: someone else's keys
        client.set("written-later", "yes")
    with pytest.raises(TargetNotEmptyError, match=r"holds keys \(db0: 2\).*Nothing was changed"):
        redis_plan(ctx, RestoreRedisRequest(), RestoreEnv(project))
    rdb = manifest.objects[0]
    stored = ctx.vault().get_bytes(rdb.key)
    overwrite(ctx.vault(), rdb.key, stored[: len(stored) // 2])
    with pytest.raises(MissingObject, match=rf"{rdb.key} is {len(stored) // 2} bytes.*truncated"):
        redis_plan(ctx, RestoreRedisRequest(force=True), RestoreEnv(project))
    with cache_server.client() as client:
        assert client.get("backed-up") == b"yes"
    assert nothing_journaled(project)


def test_kafka_refuses_a_topic_of_other_records_and_a_damaged_chain_creates_no_topic(
    project_with_kafka: Path,
) -> None:
    project = project_with_kafka
    topics = unique_topics(project)
    ctx = context(project)
    endpoint = ctx.outputs.stores["event-stream"]
    bootstrap = f"{endpoint.host}:{endpoint.port}"
    create_topics(bootstrap, topics)
    for topic in topics:
        produce(bootstrap, topic, 0, 9)
    manifest = stream_backup(ctx)
    produce(bootstrap, topics[0], 9, 3)  # after the backup: more records than it has
    with pytest.raises(TargetNotEmptyError, match=f"target topic '{topics[0]}' partition 0 holds"):
        kafka_plan(ctx, RestoreKafkaRequest(topics=[topics[0]]), RestoreEnv(project))
    merged = f"({', '.join(sorted(topics[:2]))} -> '{topics[1]}')"
    with pytest.raises(TargetRefused, match=re.escape(merged)):
        kafka_plan(
            ctx, RestoreKafkaRequest(rename={topics[0]: topics[1]}), RestoreEnv(project)
        )  # merges the two

    frames = next(i for i in manifest.objects if i.name.startswith(f"topics/{topics[1]}/"))
    overwrite(ctx.vault(), frames.key, b"\1" * frames.size)  # same size, other bytes
    target = f"{topics[1]}-copy"
    plan, _ = kafka_plan(
        ctx,
        RestoreKafkaRequest(topics=[topics[1]], rename={topics[1]: target}),
        RestoreEnv(project),
    )
    report, out = run(ctx, project, plan, yes=True)
    assert report.status is Status.FAILED, out
    check = next(s for s in report.steps if s.id == "check.event-stream")
    assert check.outcome == "failed" and frames.key in check.detail
    assert (
        target not in AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=10).topics
    )


# --- credentials that cannot read the vault ----------------------------------------------------


@pytest.fixture(scope="module")
def locked_aws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalAws]:
    """A second AWS emulator of our own: IAM enforcement is switched on for the whole server
    (``/moto-api/reset-auth``), which the shared emulator must not be."""
    with LocalAws(tmp_path_factory.mktemp("locked-aws")) as server:
        yield server


def enforce_iam(server: LocalAws) -> None:
    request = urllib.request.Request(
        f"{server.endpoint_url}/moto-api/reset-auth",
        data=b"0",
        method="POST",
        headers={"Content-Type": "text/plain"},  # a form body would be parsed away by Flask
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200


@dataclass(frozen=True)
class KeyedContext(OpsContext):
    """The stack as seen with one IAM user's access keys (the on-call engineer's)."""

    key_id: str = ""
    secret: str = ""

    def aws(self, service: str, region: str | None = None) -> Any:
        return boto3.client(  # type: ignore[call-overload]
            service,
            region_name=region or self.outputs.region,
            endpoint_url=self.outputs.aws_endpoint_url,
            aws_access_key_id=self.key_id,
            aws_secret_access_key=self.secret,
        )


def test_credentials_that_cannot_read_the_vault(
    tmp_path: Path,
    postgres_server: LocalPostgres,
    redis_server: LocalRedis,
    gcs_emulator: LocalGcs,
    locked_aws: LocalAws,
    cache_server: LocalRedis,
) -> None:
    project = provision_project(
        tmp_path, SessionServers(postgres_server, redis_server, locked_aws, gcs_emulator)
    )
    attach_cache(project, cache_server)
    ctx = context(project)
    with cache_server.client() as client:
        client.set("backed-up", "yes")
    cache_backup(ctx)
    with cache_server.client() as client:
        client.flushall()
        client.set("live", "data")
    iam: Any = locked_aws.client("iam")
    user = f"oncall-{secrets.token_hex(3)}"
    iam.create_user(UserName=user)
    iam.put_user_policy(
        UserName=user,
        PolicyName="no-vault",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Action": "s3:ListAllMyBuckets", "Resource": "*"}
                ],
            }
        ),
    )
    key = iam.create_access_key(UserName=user)["AccessKey"]
    enforce_iam(locked_aws)
    vault = ctx.outputs.backup_vault.name
    running = run_id(cache_server)

    with pytest.raises(VaultAccessError, match=rf"cannot read s3://{vault} .*InvalidAccessKeyId"):
        redis_plan(
            ctx, RestoreRedisRequest(force=True), RestoreEnv(project)
        )  # keys IAM does not know
    limited = KeyedContext(
        ctx.stack,
        ctx.config,
        ctx.outputs,
        ctx.credentials,
        key["AccessKeyId"],
        key["SecretAccessKey"],
    )
    with pytest.raises(
        VaultAccessError, match=rf"cannot read s3://{vault} .*AccessDenied.*GetObject"
    ):
        redis_plan(limited, RestoreRedisRequest(force=True), RestoreEnv(project))
    with pytest.raises(VaultAccessError, match="s3:GetObject on the vault"):
        list_backups(limited, ListRequest())

    assert run_id(cache_server) == running
    with cache_server.client() as client:
        assert cache_snapshot(client) == {b"live": b"data"}
    assert nothing_journaled(project)
