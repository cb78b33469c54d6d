"""Which Redis backup path runs is what the stack's outputs say serves the store.

An ElastiCache-shaped local Redis (AUTH, TLS only, BGSAVE/SAVE/SYNC/PSYNC/CONFIG renamed away)
exported as a self-hosted Redis: ``python -m drkit backup`` stops with one line naming the
disabled command, exit 1, no traceback and no hang. The same store exported as ElastiCache (its
replication group in the AWS emulator) gets the snapshot-and-export handler, which backs it up.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from drkit.backup.engine import run_backup
from drkit.backup.redis import ElastiCacheHandler, Polling, RedisHandler
from drkit.context import Credentials, OpsContext, StoreCredentials
from drkit.endpoints import NoHandler
from drkit.handlers import backup_handler
from drkit.local.redis import ELASTICACHE_DISABLED, LocalRedis
from drkit.local.s3 import LocalAws
from drkit.local.stack import write_state
from stackmodels import StackOutputs
from stackmodels.outputs import ElastiCacheOutputs, ReplicationGroup, StoreEndpoint, StoreService
from tests.integration.test_elasticache_backup import exports_like_elasticache

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
STORE = "session-cache"
HANG_GUARD_S = 120
"""A run that refuses must end; this only stops a hung test, it asserts nothing about speed."""


@pytest.fixture(scope="module")
def managed_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRedis]:
    with LocalRedis(tmp_path_factory.mktemp("elasticache-shaped"), elasticache_shaped=True) as r:
        client = r.client()
        for i in range(50):
            client.set(f"session:{i}", f"user-{i}")
        yield r


@pytest.fixture(scope="module")
def snapshot_rdb(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """What ElastiCache's export of ``managed_redis`` would hold: an RDB of the same keys (the
    managed server itself cannot SAVE; ElastiCache snapshots from outside the Redis process)."""
    with LocalRedis(tmp_path_factory.mktemp("snapshot-rdb")) as server:
        client = server.client()
        for i in range(50):
            client.set(f"session:{i}", f"user-{i}")
        client.save()
        return server.rdb_path.read_bytes()


def point_store_at(
    project: Path, endpoint: StoreEndpoint, password: str, **sections: Any
) -> OpsContext:
    """Rewrite the project's local outputs and credentials so ``STORE`` is ``endpoint`` (and
    the output ``sections`` are as given)."""
    state = project / ".drkit" / "local"
    outputs = StackOutputs.from_file(state / "outputs.json", "local")
    credentials = Credentials.from_file(state / "credentials.json")
    outputs = outputs.model_copy(update={"stores": {**outputs.stores, STORE: endpoint}, **sections})
    stores = {**credentials.stores, STORE: StoreCredentials("default", password)}
    write_state(state, outputs, Credentials(stores))
    return OpsContext.load("local", project_dir=project)


def self_hosted(redis: LocalRedis, data_path: Path | None) -> StoreEndpoint:
    return StoreEndpoint(
        kind="redis",
        service="redis",
        host=redis.host,
        port=redis.port,
        tls=True,
        tls_ca_file=str(redis.tls_ca_file),
        data_path=str(data_path) if data_path else None,
    )


def run_cli(project: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "drkit", "backup", STORE, "--stack", "local"]
    command += ["--project-dir", str(project)]
    return subprocess.run(
        command, capture_output=True, text=True, check=False, cwd=ROOT, timeout=HANG_GUARD_S
    )


def test_the_server_refuses_what_elasticache_refuses(managed_redis: LocalRedis) -> None:
    client = managed_redis.client()
    assert client.ping()
    for command in ELASTICACHE_DISABLED:
        with pytest.raises(Exception, match=f"unknown command '{command}'"):
            client.execute_command(command)
    plain = redis.Redis(
        host=managed_redis.host,
        port=managed_redis.port,
        password=managed_redis.password,
        socket_timeout=5,
    )
    with pytest.raises(redis.ConnectionError):  # TLS only: a plain client is cut off
        plain.ping()


@pytest.mark.parametrize(
    ("data_path", "refused"),
    [(True, "BGSAVE is disabled on this server"), (False, "SYNC/PSYNC are disabled")],
    ids=["bgsave-and-shared-volume", "replication"],
)
def test_the_self_hosted_path_refuses_an_elasticache_shaped_redis(
    project: Path, managed_redis: LocalRedis, data_path: bool, refused: str
) -> None:
    endpoint = self_hosted(managed_redis, managed_redis.rdb_path if data_path else None)
    ctx = point_store_at(project, endpoint, managed_redis.password)
    assert isinstance(backup_handler(ctx, STORE), RedisHandler)

    result = run_cli(project)

    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    [failed] = [line for line in result.stdout.splitlines() if line.startswith("FAILED")]
    assert refused in failed and f"redis 127.0.0.1:{managed_redis.port} (TLS)" in failed
    assert "service 'elasticache'" in failed  # and it says which path would work
    assert "source: a self-hosted Redis (redis)" in result.stdout


def test_outputs_that_export_elasticache_choose_the_snapshot_export(
    project: Path, managed_redis: LocalRedis, aws_emulator: LocalAws, snapshot_rdb: bytes
) -> None:
    before = OpsContext.load("local", project_dir=project)
    client: Any = aws_emulator.client("elasticache", before.outputs.region)
    group = "aipx-session-cache-local"
    client.create_replication_group(
        ReplicationGroupId=group,
        ReplicationGroupDescription="session cache (ElastiCache-shaped)",
        CacheNodeType="cache.t4g.small",
        Engine="redis",
        NumCacheClusters=2,
    )
    endpoint = StoreEndpoint(
        kind="redis",
        service=StoreService.ELASTICACHE,
        host=managed_redis.host,
        port=managed_redis.port,
        tls=True,
        resource_id=group,
    )
    ctx = point_store_at(project, endpoint, managed_redis.password)
    with pytest.raises(NoHandler, match=r"without its export staging bucket"):
        backup_handler(ctx, STORE)  # outputs of a stack deployed before the staging bucket

    region = before.outputs.region
    bucket = f"aipx-cache-export-{region}"
    aws_emulator.s3().create_bucket(Bucket=bucket)
    member = ReplicationGroup(
        id=group,
        arn=f"arn:aws:elasticache:{region}:123456789012:replicationgroup:{group}",
        region=region,
        primary_endpoint=managed_redis.host,
        export_bucket=bucket,
    )
    cache = ElastiCacheOutputs(
        global_datastore_id="ldgnf-session-cache",
        primary_region=region,
        replication_groups={region: member},
    )
    ctx = point_store_at(project, endpoint, managed_redis.password, elasticache=cache)

    handler = backup_handler(ctx, STORE)

    assert isinstance(handler, ElastiCacheHandler)
    assert handler.replication_group_id == group
    assert handler.client.meta.region_name == region
    assert (handler.staging.bucket, handler.staging.client.meta.region_name) == (bucket, region)
    handler.polling = Polling(first=0.01, factor=2.0, cap=0.05, timeout=30.0)
    destinations = ctx.destinations(ctx.store_config(STORE).data_class)
    exports_like_elasticache(handler.client, handler.staging, snapshot_rdb)
    manifest = run_backup(STORE, ctx.store_config(STORE).data_class, handler, destinations)
    assert manifest.kind == "elasticache"
    assert manifest.source["ReplicationGroupId"] == group
    assert manifest.counts["keys"] == 50
    assert list(handler.staging.list_objects("")) == []
