"""ElastiCache through the engine: a manual snapshot exported by CopySnapshot to the region's
staging bucket, streamed from there into the vault and the GCS mirror (size and SHA-256 in the
manifest, keys counted on the way), the staged objects deleted, and restored by seeding a new
replication group from the vault's objects.

moto (the ``aws_emulator``) implements CreateSnapshot, DescribeSnapshots, DeleteSnapshot,
CreateReplicationGroup and DescribeReplicationGroups, so those run against it, and S3 (vault and
staging bucket). It has no CopySnapshot: where the export is needed against moto, a botocore hook
answers that one call (after the client has validated it against the service model) and writes
the .rdb into the staging bucket as ElastiCache would. The exact call sequences, the statuses
moto never goes through (creating, exporting, failed) and the bounded backoff are pinned with
botocore's Stubber, which validates every request against the service model.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse, HTTPHeaders
from botocore.exceptions import ClientError
from botocore.stub import ANY, Stubber

from drkit.backup.engine import BackupFailed, Destinations, run_backup
from drkit.backup.manifest import Manifest
from drkit.backup.redis import (
    ElastiCacheHandler,
    Polling,
    RedisHandler,
    RedisSource,
    snapshot_name_for,
)
from drkit.catalog import CatalogEntry
from drkit.local.redis import LocalRedis
from drkit.local.s3 import LocalAws
from drkit.ops import verify_redis
from drkit.ops.scratch import Holder
from drkit.ops.selection import Chosen
from drkit.recovery import BackupIndex
from drkit.redis_rdb import read_rdb
from drkit.restore.redis import ElastiCacheRestoreRequest, holds_backup, restore_elasticache
from drkit.restore.redis_copy import restore_by_copy
from drkit.restore.stream import IntegrityError, raw_chunks
from drkit.storage.s3 import S3Store
from stackmodels.config import StackConfig
from tests.integration.forgery import overwrite

pytestmark = pytest.mark.integration

STORE, DATA_CLASS = "sessions", "cache"
ROOT = Path(__file__).resolve().parents[2]
FAST = Polling(first=0.01, factor=2.0, cap=0.05, timeout=30.0)


@pytest.fixture(scope="module")
def exported_rdb(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """What ElastiCache would write: a real RDB, 120 keys in db0 and db1, 30 with a TTL."""
    with LocalRedis(tmp_path_factory.mktemp("elasticache-rdb")) as server:
        for db in (0, 1):
            client = server.client(db)
            for i in range(60):
                client.set(f"session:{i}", f"user-{i}", ex=3_600 if i % 4 == 0 else None)
            client.hset("limits", mapping={"max_order": 100, "max_position": 5_000})
        server.client().save()
        return server.rdb_path.read_bytes()


@pytest.fixture
def elasticache(aws_emulator: LocalAws) -> Iterator[tuple[Any, str]]:
    client: Any = aws_emulator.client("elasticache")
    group = f"cache-{secrets.token_hex(3)}"
    client.create_replication_group(
        ReplicationGroupId=group,
        ReplicationGroupDescription="session cache",
        CacheNodeType="cache.t4g.small",
        Engine="redis",
        NumCacheClusters=2,
    )
    yield client, group


@pytest.fixture
def staging(aws_emulator: LocalAws) -> S3Store:
    """The region's export staging bucket (components.cache_export): versioned, like the real."""
    s3: Any = aws_emulator.s3()
    name = f"cache-export-{secrets.token_hex(4)}"
    s3.create_bucket(Bucket=name)
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    return S3Store(s3, name)


def staged(staging: S3Store) -> list[str]:
    return [item.key for item in staging.list_objects("")]


def exports_like_elasticache(client: Any, staging: Any, body: bytes) -> list[dict[str, Any]]:
    """Answer CopySnapshot (moto lacks it) and write ``<name>-0001.rdb`` into the bucket."""
    calls: list[dict[str, Any]] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        calls.append(dict(params))

    def answer(**_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        params = calls[-1]
        assert params["TargetBucket"] == staging.bucket
        staging.put_bytes(f"{params['TargetSnapshotName']}-0001.rdb", body)
        snapshot = {"SnapshotName": params["SourceSnapshotName"], "SnapshotStatus": "exporting"}
        return AWSResponse("", 200, HTTPHeaders(), None), {"Snapshot": snapshot}

    client.meta.events.register("before-parameter-build.elasticache.CopySnapshot", record)
    client.meta.events.register("before-call.elasticache.CopySnapshot", answer)
    return calls


def test_export_is_staged_streamed_into_vault_and_mirror_and_cleared(
    elasticache: tuple[Any, str],
    destinations: Destinations,
    staging: S3Store,
    exported_rdb: bytes,
) -> None:
    client, group = elasticache
    copies = exports_like_elasticache(client, staging, exported_rdb)
    handler = ElastiCacheHandler(client, staging, replication_group_id=group, polling=FAST)
    manifest = run_backup(STORE, DATA_CLASS, handler, destinations)

    name = snapshot_name_for(manifest.prefix)
    assert copies == [
        {
            "SourceSnapshotName": name,
            "TargetSnapshotName": manifest.prefix + "redis",
            "TargetBucket": staging.bucket,
        }
    ]
    [export] = manifest.objects
    assert (export.key, export.compression) == (manifest.prefix + "redis-0001.rdb", "none")
    assert export.sha256 == hashlib.sha256(exported_rdb).hexdigest()
    assert export.size == export.raw_size == len(exported_rdb)
    assert destinations.vault.get_bytes(export.key) == exported_rdb  # written by the backup
    head = destinations.vault.client.head_object(  # type: ignore[attr-defined]
        Bucket=destinations.vault.bucket,  # type: ignore[attr-defined]
        Key=export.key,
    )
    assert head["ServerSideEncryption"] == "aws:kms"  # the vault's key, not ElastiCache's SSE-S3
    assert staged(staging) == []  # the staging copy is gone once the vault holds the backup
    assert destinations.mirror is not None
    assert destinations.mirror.get_bytes(export.key) == exported_rdb  # copied in the same read
    assert b"".join(raw_chunks(destinations.mirror, export)) == exported_rdb
    assert manifest.counts == {
        "keys": 122,
        "keys_with_ttl": 30,
        "db0.keys": 61,
        "db0.keys_with_ttl": 15,
        "db1.keys": 61,
        "db1.keys_with_ttl": 15,
    }
    point = manifest.consistent_point
    created = read_rdb([exported_rdb]).created_at
    assert created is not None
    assert point["snapshot_time"] == created.isoformat()  # moto gives no NodeSnapshots
    assert (point["snapshot_name"], point["rdb_version"], point["shards"]) == (name, 10, 1)
    assert manifest.source == {"ReplicationGroupId": group, "snapshot_name": name}
    with pytest.raises(ClientError, match="SnapshotNotFound"):  # the S3 export is the backup
        client.describe_snapshots(SnapshotName=name)


def snapshot(name: str, status: str, **extra: Any) -> dict[str, Any]:
    return {"SnapshotName": name, "SnapshotStatus": status, **extra}


class Recorder:
    """Every ElastiCache call's parameters in order, and a fake clock driven by ``sleep``."""

    def __init__(self, client: Any) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.slept: list[float] = []
        self.now = 0.0
        self.on_sleep: list[Any] = []
        client.meta.events.register("before-parameter-build.elasticache.*", self._record)

    def _record(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        self.calls.append((model.name, dict(params)))

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds
        if self.on_sleep:
            self.on_sleep.pop(0)()

    def clock(self) -> float:
        return self.now


def test_exact_calls_statuses_and_backoff_under_stubber(
    aws_emulator: LocalAws, destinations: Destinations, exported_rdb: bytes
) -> None:
    client = aws_emulator.client("elasticache")
    recorder = Recorder(client)
    s3: Any = aws_emulator.s3()
    staging = S3Store(s3, f"cache-export-{secrets.token_hex(4)}")
    s3.create_bucket(Bucket=staging.bucket)
    taken = datetime(2026, 11, 21, 4, 15, tzinfo=UTC)
    node = {"CacheClusterId": "cache-001", "NodeGroupId": "0001", "SnapshotCreateTime": taken}
    available = snapshot(
        "n", "available", Engine="redis", EngineVersion="7.1.0", NodeSnapshots=[node]
    )
    stubber = Stubber(client)
    stubber.add_response(
        "create_snapshot",
        {"Snapshot": snapshot("n", "creating")},
        {"ReplicationGroupId": "sessions-prod", "SnapshotName": ANY},
    )
    for status in ("creating", "creating"):
        stubber.add_response(
            "describe_snapshots", {"Snapshots": [snapshot("n", status)]}, {"SnapshotName": ANY}
        )
    stubber.add_response("describe_snapshots", {"Snapshots": [available]}, {"SnapshotName": ANY})
    stubber.add_response(
        "copy_snapshot",
        {"Snapshot": snapshot("n", "exporting")},
        {
            "SourceSnapshotName": ANY,
            "TargetSnapshotName": ANY,
            "TargetBucket": staging.bucket,
        },
    )
    stubber.add_response(
        "describe_snapshots", {"Snapshots": [snapshot("n", "exporting")]}, {"SnapshotName": ANY}
    )
    stubber.add_response("describe_snapshots", {"Snapshots": [available]}, {"SnapshotName": ANY})
    stubber.add_response(
        "delete_snapshot", {"Snapshot": snapshot("n", "deleting")}, {"SnapshotName": ANY}
    )
    exports: list[str] = []

    def aws_finishes_the_export() -> None:  # during the first wait after CopySnapshot
        name = recorder.calls[-1][1]["SnapshotName"]
        assert name == recorder.calls[0][1]["SnapshotName"]
        export = next(p for op, p in recorder.calls if op == "CopySnapshot")
        exports.append(f"{export['TargetSnapshotName']}-0001.rdb")
        staging.put_bytes(exports[0], exported_rdb)

    recorder.on_sleep = [lambda: None, lambda: None, aws_finishes_the_export]
    handler = ElastiCacheHandler(
        client,
        staging,
        replication_group_id="sessions-prod",
        polling=Polling(first=5.0, factor=1.5, cap=30.0, timeout=3_600.0),
        sleep=recorder.sleep,
        clock=recorder.clock,
    )
    with stubber:
        manifest = run_backup(STORE, DATA_CLASS, handler, destinations)
        stubber.assert_no_pending_responses()

    name = snapshot_name_for(manifest.prefix)
    assert recorder.calls == [
        ("CreateSnapshot", {"ReplicationGroupId": "sessions-prod", "SnapshotName": name}),
        ("DescribeSnapshots", {"SnapshotName": name}),
        ("DescribeSnapshots", {"SnapshotName": name}),
        ("DescribeSnapshots", {"SnapshotName": name}),
        (
            "CopySnapshot",
            {
                "SourceSnapshotName": name,
                "TargetSnapshotName": manifest.prefix + "redis",
                "TargetBucket": staging.bucket,
            },
        ),
        ("DescribeSnapshots", {"SnapshotName": name}),
        ("DescribeSnapshots", {"SnapshotName": name}),
        ("DeleteSnapshot", {"SnapshotName": name}),
    ]
    assert recorder.slept == [5.0, 7.5, 5.0]  # growing within a wait, reset for the next one
    assert [item.key for item in manifest.objects] == exports  # same key, vault and staging
    assert staged(staging) == []
    assert manifest.consistent_point["snapshot_time"] == taken.isoformat()
    assert manifest.tool_versions == {"engine": "redis 7.1.0"}
    assert manifest.counts["keys"] == 122


def test_a_failed_snapshot_fails_the_backup_and_is_cleaned_up(
    aws_emulator: LocalAws, destinations: Destinations, staging: S3Store
) -> None:
    client = aws_emulator.client("elasticache")
    stubber = Stubber(client)
    stubber.add_response("create_snapshot", {"Snapshot": snapshot("n", "creating")})
    stubber.add_response("describe_snapshots", {"Snapshots": [snapshot("n", "failed")]})
    stubber.add_response(
        "delete_snapshot", {"Snapshot": snapshot("n", "deleting")}, {"SnapshotName": ANY}
    )
    handler = ElastiCacheHandler(client, staging, cache_cluster_id="sessions-001", polling=FAST)
    with stubber, pytest.raises(BackupFailed, match=r"snapshot drkit-\S+ is failed"):
        run_backup(STORE, DATA_CLASS, handler, destinations)
    stubber.assert_no_pending_responses()
    for store in destinations.stores:
        assert list(store.list_objects(f"{DATA_CLASS}/{STORE}/")) == []


def test_a_snapshot_that_never_finishes_times_out_with_capped_intervals(
    aws_emulator: LocalAws, destinations: Destinations, staging: S3Store
) -> None:
    client = aws_emulator.client("elasticache")
    recorder = Recorder(client)
    stubber = Stubber(client)
    stubber.add_response("create_snapshot", {"Snapshot": snapshot("n", "creating")})
    for _ in range(7):
        stubber.add_response("describe_snapshots", {"Snapshots": [snapshot("n", "creating")]})
    stubber.add_response("delete_snapshot", {"Snapshot": snapshot("n", "deleting")})
    handler = ElastiCacheHandler(
        client,
        staging,
        replication_group_id="sessions-prod",
        polling=Polling(first=5.0, factor=2.0, cap=20.0, timeout=100.0),
        sleep=recorder.sleep,
        clock=recorder.clock,
    )
    with stubber, pytest.raises(BackupFailed, match=r"within 100s \(last status creating\)"):
        run_backup(STORE, DATA_CLASS, handler, destinations)
    stubber.assert_no_pending_responses()
    assert recorder.slept == [5.0, 10.0, 20.0, 20.0, 20.0, 20.0]
    assert sum(recorder.slept) <= 100.0


def elasticache_backup(
    elasticache: tuple[Any, str], destinations: Destinations, staging: S3Store, body: bytes
) -> Manifest:
    client, group = elasticache
    exports_like_elasticache(client, staging, body)
    handler = ElastiCacheHandler(client, staging, replication_group_id=group, polling=FAST)
    return run_backup(STORE, DATA_CLASS, handler, destinations)


def test_restore_seeds_a_new_replication_group_in_moto(
    elasticache: tuple[Any, str],
    destinations: Destinations,
    staging: S3Store,
    exported_rdb: bytes,
) -> None:
    manifest = elasticache_backup(elasticache, destinations, staging, exported_rdb)
    client = elasticache[0]
    request = ElastiCacheRestoreRequest("sessions-dr", "cache.t4g.small", replicas=1)
    result = restore_elasticache(manifest, destinations.vault, client, request, delay=1)

    bucket = destinations.vault.bucket  # type: ignore[attr-defined]
    assert result.snapshot_arns == [f"arn:aws:s3:::{bucket}/{manifest.objects[0].key}"]
    assert result.status == "available" and result.endpoint is not None
    [group] = client.describe_replication_groups(ReplicationGroupId="sessions-dr")[
        "ReplicationGroups"
    ]
    assert group["Status"] == "available"  # the request itself is pinned under Stubber below


def test_restore_sends_exactly_this_request_under_stubber(
    aws_emulator: LocalAws, destinations: Destinations, exported_rdb: bytes
) -> None:
    key = "cache/sessions/2026/11/21/20261121T041500Z-abcdef/redis-0001.rdb"
    destinations.vault.put_bytes(key, exported_rdb)
    manifest = Manifest.model_validate(
        {
            "backup_id": "20261121T041500Z-abcdef",
            "store": STORE,
            "kind": "elasticache",
            "data_class": DATA_CLASS,
            "source": {},
            "tool_versions": {},
            "started_at": "2026-11-21T04:15:00Z",
            "finished_at": "2026-11-21T04:20:00Z",
            "consistent_point": {},
            "objects": [
                {
                    "name": "redis-0001.rdb",
                    "key": key,
                    "size": len(exported_rdb),
                    "sha256": hashlib.sha256(exported_rdb).hexdigest(),
                    "raw_size": len(exported_rdb),
                    "compression": "none",
                    "content": "Redis RDB snapshot exported by ElastiCache",
                }
            ],
            "destinations": [],
            "encryption": {},
        }
    )
    client = aws_emulator.client("elasticache")
    bucket = destinations.vault.bucket  # type: ignore[attr-defined]
    arn = f"arn:aws:s3:::{bucket}/{key}"
    group = {
        "ReplicationGroupId": "sessions-dr",
        "Status": "available",
        "NodeGroups": [
            {"NodeGroupId": "0001", "PrimaryEndpoint": {"Address": "primary.dr", "Port": 6379}}
        ],
    }
    stubber = Stubber(client)
    stubber.add_response(
        "create_replication_group",
        {"ReplicationGroup": {**group, "Status": "creating"}},
        {
            "ReplicationGroupId": "sessions-dr",
            "ReplicationGroupDescription": "restored by drkit",
            "SnapshotArns": [arn],
            "CacheNodeType": "cache.r7g.large",
            "Engine": "redis",
            "EngineVersion": "7.1",
            "NumCacheClusters": 3,
            "AutomaticFailoverEnabled": True,
            "MultiAZEnabled": True,
            "CacheSubnetGroupName": "dr-private",
            "SecurityGroupIds": ["sg-0123"],
            "AtRestEncryptionEnabled": True,
            "KmsKeyId": "alias/dr-cache",
            "TransitEncryptionEnabled": True,
        },
    )
    for status in ("creating", "available", "available"):  # two for the waiter, one for us
        stubber.add_response(
            "describe_replication_groups",
            {"ReplicationGroups": [{**group, "Status": status}]},
            {"ReplicationGroupId": "sessions-dr"},
        )
    request = ElastiCacheRestoreRequest(
        "sessions-dr",
        "cache.r7g.large",
        engine_version="7.1",
        replicas=2,
        subnet_group="dr-private",
        security_group_ids=("sg-0123",),
        kms_key_id="alias/dr-cache",
        extra={"TransitEncryptionEnabled": True},
    )
    with stubber:
        result = restore_elasticache(manifest, destinations.vault, client, request, delay=0)
        stubber.assert_no_pending_responses()
    assert result.endpoint == "primary.dr:6379"


def test_restore_refuses_a_tampered_export_before_calling_aws(
    elasticache: tuple[Any, str],
    destinations: Destinations,
    staging: S3Store,
    exported_rdb: bytes,
) -> None:
    manifest = elasticache_backup(elasticache, destinations, staging, exported_rdb)
    tampered = bytearray(exported_rdb)
    tampered[len(tampered) // 2] ^= 0x01
    overwrite(destinations.vault, manifest.objects[0].key, bytes(tampered))
    client = elasticache[0]
    request = ElastiCacheRestoreRequest("sessions-tampered", "cache.t4g.small")
    with pytest.raises(IntegrityError, match=r"expected .* SHA-256"):
        restore_elasticache(manifest, destinations.vault, client, request, delay=1)
    groups = client.describe_replication_groups()["ReplicationGroups"]
    assert "sessions-tampered" not in [g["ReplicationGroupId"] for g in groups]


def test_a_self_hosted_backup_can_seed_elasticache(
    elasticache: tuple[Any, str], destinations: Destinations, tmp_path: Path
) -> None:
    """DR from the StatefulSet to ElastiCache: the zstd dump is written out raw first."""
    with LocalRedis(tmp_path / "statefulset") as server:
        server.client().set("k", "v")
        source = RedisSource(server.host, server.port, server.password)
        manifest = run_backup(
            STORE, DATA_CLASS, RedisHandler(source, rdb_path=server.rdb_path), destinations
        )
        dump = server.rdb_path.read_bytes()
    client = elasticache[0]
    request = ElastiCacheRestoreRequest("sessions-from-k8s", "cache.t4g.small", replicas=0)
    result = restore_elasticache(manifest, destinations.vault, client, request, delay=1)
    seed = f"restore-seeds/{manifest.backup_id}/dump.rdb"
    bucket = destinations.vault.bucket  # type: ignore[attr-defined]
    assert result.snapshot_arns == [f"arn:aws:s3:::{bucket}/{seed}"]
    assert destinations.vault.get_bytes(seed) == dump


def test_the_handler_needs_one_target_and_a_staging_bucket(staging: S3Store) -> None:
    with pytest.raises(ValueError, match="exactly one"):
        ElastiCacheHandler(object(), staging)
    with pytest.raises(ValueError, match="staging: the S3 bucket ElastiCache exports to"):
        ElastiCacheHandler(object(), replication_group_id="sessions-prod")


def test_a_failed_export_leaves_nothing_staged_and_nothing_in_the_vault(
    aws_emulator: LocalAws, destinations: Destinations, staging: S3Store, exported_rdb: bytes
) -> None:
    """ElastiCache wrote part of the export, then the snapshot failed: the run fails, the
    snapshot is deleted, and the staged object is cleared; the vault gets no object."""
    client = aws_emulator.client("elasticache")
    recorder = Recorder(client)
    stubber = Stubber(client)
    stubber.add_response("create_snapshot", {"Snapshot": snapshot("n", "creating")})
    stubber.add_response("describe_snapshots", {"Snapshots": [snapshot("n", "available")]})
    stubber.add_response("copy_snapshot", {"Snapshot": snapshot("n", "exporting")})
    stubber.add_response("describe_snapshots", {"Snapshots": [snapshot("n", "exporting")]})
    stubber.add_response("describe_snapshots", {"Snapshots": [snapshot("n", "failed")]})
    stubber.add_response("delete_snapshot", {"Snapshot": snapshot("n", "deleting")})

    def a_partial_object_appears() -> None:
        export = next(p for op, p in recorder.calls if op == "CopySnapshot")
        staging.put_bytes(f"{export['TargetSnapshotName']}-0002.rdb", exported_rdb[:100])

    recorder.on_sleep = [a_partial_object_appears]
    handler = ElastiCacheHandler(
        client,
        staging,
        replication_group_id="sessions-prod",
        polling=FAST,
        sleep=recorder.sleep,
        clock=recorder.clock,
    )
    with stubber, pytest.raises(BackupFailed, match=r"is failed while waiting to finish export"):
        run_backup(STORE, DATA_CLASS, handler, destinations)
    stubber.assert_no_pending_responses()
    assert staged(staging) == []
    for store in destinations.stores:
        assert list(store.list_objects(f"{DATA_CLASS}/{STORE}/")) == []


def shard_keys(shard: int) -> dict[str, str]:
    return {f"{{s{shard}}}session:{i}": f"user-{shard}-{i}" for i in range(60)}


@pytest.fixture(scope="module")
def two_shards(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[bytes], bytes]:
    """Two real redis-servers' RDBs as a cluster's two node groups (disjoint keys, db0 only, a
    few with the same absolute expiry), and one server's RDB holding both shards' keys."""
    expiry = int(datetime.now(UTC).timestamp() * 1000) + 3_600_000
    rdbs = []
    with LocalRedis(tmp_path_factory.mktemp("whole")) as whole:
        for shard in (1, 2):
            with LocalRedis(tmp_path_factory.mktemp(f"shard-{shard}")) as server:
                for client in (server.client(), whole.client()):
                    client.mset(shard_keys(shard))  # type: ignore[arg-type]
                    client.hset(f"{{s{shard}}}limits", mapping={"max": shard})
                    for i in range(0, 60, 7):
                        client.pexpireat(f"{{s{shard}}}session:{i}", expiry)
                server.client().save()
                rdbs.append(server.rdb_path.read_bytes())
        whole.client().save()
        return rdbs, whole.rdb_path.read_bytes()


def test_a_multi_shard_export_records_one_fingerprint_of_its_shards_and_restores_by_it(
    elasticache: tuple[Any, str],
    destinations: Destinations,
    staging: S3Store,
    two_shards: tuple[list[bytes], bytes],
    tmp_path: Path,
) -> None:
    client, group = elasticache
    rdbs, whole = two_shards
    copies = exports_like_elasticache(client, staging, rdbs[0])

    def second_shard(**_: Any) -> None:  # the export's other node group, once it is staged
        if copies and not staging.exists(f"{copies[-1]['TargetSnapshotName']}-0002.rdb"):
            staging.put_bytes(f"{copies[-1]['TargetSnapshotName']}-0002.rdb", rdbs[1])

    def two_node_groups(parsed: dict[str, Any], **_: Any) -> None:
        second_shard()
        for snapshot in parsed.get("Snapshots", []):  # moto answers none: as ElastiCache does
            snapshot["NodeSnapshots"] = [{"NodeGroupId": "0001"}, {"NodeGroupId": "0002"}]

    client.meta.events.register("after-call.elasticache.DescribeSnapshots", two_node_groups)
    handler = ElastiCacheHandler(client, staging, replication_group_id=group, polling=FAST)
    manifest = run_backup(STORE, DATA_CLASS, handler, destinations)

    assert [o.name for o in manifest.objects] == ["redis-0001.rdb", "redis-0002.rdb"]
    assert manifest.consistent_point["shards"] == 2
    assert manifest.counts["keys"] == 122
    # The fingerprint of the shards together is the fingerprint of one server holding them all.
    content = manifest.consistent_point["content"]
    assert content == read_rdb([whole], content=True).content()
    assert content["db0"]["persistent"] == 122 - 18 and content["db0"]["expiring"] == 18
    assert len(content["db0"]["sample"]) == 32

    with LocalRedis(tmp_path / "target") as target:
        source = RedisSource(target.host, target.port, password=target.password)
        result = restore_by_copy(manifest, destinations.vault, source)
        assert (result.copied, result.keys_per_db) == (122, {0: 122})
        assert holds_backup(manifest, source) is None
        # invoke verify's test restore of a multi-shard backup: the same judgement.
        index = BackupIndex(StackConfig.for_stack("prod", ROOT), destinations.vault)
        chosen = Chosen(STORE, index, CatalogEntry.of(manifest), manifest, destinations.vault)
        detail, figures = verify_redis.test_restore(
            None,  # type: ignore[arg-type]  # unused by a test restore of Redis
            chosen,
            Holder.mine(),
            "vault",
        )
        assert "2 shards, 122 keys copied" in detail
        assert "content matches the fingerprint of the shards together" in detail
        assert figures == {"keys_loaded": 122, "keys_expected": 122}
        sampled = bytes.fromhex(min(content["db0"]["sample"]))
        with target.client() as writer:
            value = writer.get(sampled)
            writer.set(sampled, b"changed", keepttl=True)
            assert holds_backup(manifest, source) == (
                f"db0: sampled string values differ from the backup's, first {sampled.decode()!r}"
            )
            writer.set(sampled, value or b"", keepttl=True)
            assert holds_backup(manifest, source) is None
            writer.delete("{s1}limits")
        assert holds_backup(manifest, source) == (
            "db0 holds 103 keys without a TTL, the backup 104"
        )
