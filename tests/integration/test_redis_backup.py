"""Self-hosted Redis through the engine: BGSAVE polled to completion, dump.rdb streamed to the S3
vault and the GCS mirror with its key counts, restored by swapping the file into a stopped server;
every key comes back with its value and its expiry. Failures leave nothing that looks like a backup,
and a restore that cannot be trusted leaves the running server as it was."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import redis

from drkit.backup.engine import BackupFailed, Destinations, run_backup
from drkit.backup.manifest import MANIFEST_NAME, Manifest
from drkit.backup.redis import RedisHandler, RedisSource
from drkit.local.redis import LocalRedis
from drkit.restore.redis import (
    RedisRestoreError,
    TargetNotEmpty,
    VolumeTarget,
    local_redis_target,
    restore_redis,
)
from drkit.restore.stream import IntegrityError
from tests.integration.forgery import overwrite

pytestmark = pytest.mark.integration

STORE, DATA_CLASS = "session-cache", "cache"
KEYS_PER_DB = 14
TTL_KEYS_PER_DB = 4


def fill(client: redis.Redis[bytes], tag: str) -> None:
    """Every value type, small and large encodings, 4 of the 14 keys with an expiry."""
    client.set("str", f"order-book-{tag}")
    client.set("int", 42)
    client.set("bin", bytes(range(256)) * 8)
    client.set("quote", f"bid {tag}", ex=3_600)
    client.hset("session:small", mapping={"user": tag, "role": "trader"})
    client.hset("session:large", mapping={f"field{i}": "x" * (i % 70) for i in range(400)})
    client.rpush("fills:small", *[f"fill-{i}" for i in range(5)])
    client.rpush("fills:large", *[f"{'p' * 80}-{i}" for i in range(2_000)])
    client.pexpire("fills:large", 7_200_000)
    client.sadd("symbols:ints", *range(50))
    client.sadd("symbols", *[f"SYM{i}" for i in range(200)])
    client.zadd("leaders:small", {"alice": 3.25, "bob": float("inf")})
    client.zadd("leaders:large", {f"trader{i}": i * 0.5 for i in range(500)})
    client.expire("leaders:large", 86_400)
    for i in range(200):
        client.xadd("events", {"seq": i, "kind": "tick" if i % 2 else "trade"})
    client.xgroup_create("events", "risk", id="0")
    client.xreadgroup("risk", "worker-1", {"events": ">"}, count=7)
    client.set("lock", tag, px=900_000)


def state(client: redis.Redis[bytes]) -> dict[bytes, tuple[bytes, Any, int]]:
    """Every key's (type, value, absolute expiry in ms or -1), read through the server."""
    result: dict[bytes, tuple[bytes, Any, int]] = {}
    untyped: Any = client  # the stubs lack a few stream and TYPE signatures
    for key in client.scan_iter(count=1_000):
        kind = untyped.type(key)
        value: Any
        if kind == b"string":
            value = client.get(key)
        elif kind == b"hash":
            value = client.hgetall(key)
        elif kind == b"list":
            value = client.lrange(key, 0, -1)
        elif kind == b"set":
            value = client.smembers(key)
        elif kind == b"zset":
            value = client.zrange(key, 0, -1, withscores=True)
        elif kind == b"stream":
            groups = untyped.xinfo_groups(key)
            value = (
                client.xrange(key),
                [(g["name"], g["pending"], g["last-delivered-id"]) for g in groups],
                untyped.xpending(key, "risk"),
            )
        else:
            raise AssertionError(f"unexpected type {kind!r} of {key!r}")
        result[key] = (kind, value, int(client.execute_command("PEXPIRETIME", key)))
    return result


def ttls(client: redis.Redis[bytes]) -> dict[bytes, int]:
    return {key: int(client.pttl(key)) for key in client.scan_iter() if client.pttl(key) > 0}


def source_of(server: LocalRedis, retries: int = 3) -> RedisSource:
    return RedisSource(server.host, server.port, server.password, retries=retries)


def handler_for(server: LocalRedis, retries: int = 3) -> RedisHandler:
    return RedisHandler(source_of(server, retries), rdb_path=server.rdb_path)


def nothing_stored(destinations: Destinations) -> None:
    for store in destinations.stores:
        assert list(store.list_objects(f"{DATA_CLASS}/{STORE}/")) == []
        assert store.pending_uploads(f"{DATA_CLASS}/") == []


@pytest.fixture
def source(tmp_path: Path) -> Iterator[LocalRedis]:
    with LocalRedis(tmp_path / "source") as server:
        yield server


@pytest.fixture
def filled(source: LocalRedis) -> LocalRedis:
    fill(source.client(0), "db0")
    fill(source.client(3), "db3")
    return source


def test_round_trip_restores_every_key_value_and_ttl(
    filled: LocalRedis, destinations: Destinations, tmp_path: Path
) -> None:
    expected = {db: state(filled.client(db)) for db in (0, 3)}
    ttl_before = ttls(filled.client(0))
    manifest = run_backup(STORE, DATA_CLASS, handler_for(filled), destinations)

    assert manifest.kind == "redis"
    assert manifest.counts == {
        "keys": 2 * KEYS_PER_DB,
        "keys_with_ttl": 2 * TTL_KEYS_PER_DB,
        "db0.keys": KEYS_PER_DB,
        "db0.keys_with_ttl": TTL_KEYS_PER_DB,
        "db3.keys": KEYS_PER_DB,
        "db3.keys_with_ttl": TTL_KEYS_PER_DB,
    }
    point = manifest.consistent_point
    server_version = filled.client().info("server")["redis_version"]
    assert point["method"] == "bgsave + shared volume"
    assert (point["rdb_version"], point["redis_version"]) == (10, server_version)
    assert point["waited_for_running_bgsave"] is False
    assert "RESIZEDB hints agree" in point["key_counts"]
    last_save = datetime.fromtimestamp(
        int(filled.client().info("persistence")["rdb_last_save_time"])
    )
    assert datetime.fromisoformat(point["save_time"]).timestamp() == last_save.timestamp()
    assert manifest.recovery_point <= datetime.fromisoformat(point["save_time"])
    [dump] = manifest.objects
    assert (dump.name, dump.compression) == ("dump.rdb", "zstd")
    assert dump.raw_size == filled.rdb_path.stat().st_size and dump.size < dump.raw_size
    for store in destinations.stores:
        assert Manifest.model_validate_json(store.get_bytes(manifest.prefix + MANIFEST_NAME)) == (
            manifest
        )

    for index, store in enumerate(destinations.stores):  # from the vault, then from the mirror
        with LocalRedis(tmp_path / f"target{index}", persistence=True) as target:
            staged: list[tuple[str, int]] = []
            result = restore_redis(
                manifest,
                store,
                local_redis_target(target),
                progress=lambda name, written, seen=staged: seen.append((name, written)),
            )
            assert staged and staged[-1] == ("dump.rdb", dump.raw_size)  # progress while staging
            assert [n for _, n in staged] == sorted(n for _, n in staged)
            assert result.keys_per_db == {0: KEYS_PER_DB, 3: KEYS_PER_DB}
            assert (result.loaded, result.expired_on_load) == (2 * KEYS_PER_DB, 0)
            for db in (0, 3):
                assert state(target.client(db)) == expected[db]  # values and absolute expiries
            restored_ttl = ttls(target.client(0))
            assert restored_ttl.keys() == ttl_before.keys()
            assert all(0 < restored_ttl[key] <= ttl_before[key] for key in ttl_before)
            assert not list(target.data_dir.glob("*.partial"))
            assert not list(target.data_dir.glob("*.before-restore"))


def test_a_bgsave_already_running_is_waited_for_then_ours_runs(
    filled: LocalRedis, destinations: Destinations
) -> None:
    client = filled.client()
    client.config_set("rdb-key-save-delay", 20_000)  # microseconds per key: ~0.6 s per save
    client.bgsave()  # a save point or an operator got there first
    assert client.info("persistence")["rdb_bgsave_in_progress"] == 1
    client.set("written-after-the-other-save-forked", "must be in the backup")
    saves_before = client.info("persistence")["rdb_saves"]

    manifest = run_backup(STORE, DATA_CLASS, handler_for(filled), destinations)
    client.config_set("rdb-key-save-delay", 0)

    assert manifest.consistent_point["waited_for_running_bgsave"] is True
    assert client.info("persistence")["rdb_saves"] == saves_before + 1  # ours, after theirs
    assert manifest.counts["db0.keys"] == KEYS_PER_DB + 1


def test_restore_refuses_a_corrupt_object_and_leaves_the_server_untouched(
    filled: LocalRedis, destinations: Destinations, tmp_path: Path
) -> None:
    manifest = run_backup(STORE, DATA_CLASS, handler_for(filled), destinations)
    vault = destinations.vault
    body = bytearray(vault.get_bytes(manifest.objects[0].key))
    body[len(body) // 2] ^= 0xFF
    overwrite(vault, manifest.objects[0].key, bytes(body))

    with LocalRedis(tmp_path / "target", persistence=True) as target:
        target.client(0).set("live", "position")
        target.client().save()
        saved = target.rdb_path.read_bytes()
        pid = target.client().info("server")["process_id"]
        with pytest.raises(IntegrityError):
            restore_redis(manifest, vault, local_redis_target(target), force=True)
        assert target.client().info("server")["process_id"] == pid  # never stopped
        assert target.client(0).get("live") == b"position"
        assert target.client().dbsize() == 1
        assert target.rdb_path.read_bytes() == saved
        assert not list(target.data_dir.glob(".drkit-restore-*"))


def test_restore_refusals_change_nothing(
    filled: LocalRedis, destinations: Destinations, tmp_path: Path
) -> None:
    manifest = run_backup(STORE, DATA_CLASS, handler_for(filled), destinations)
    with LocalRedis(tmp_path / "target") as target:
        target.client(2).set("existing", 1)
        with pytest.raises(TargetNotEmpty, match=r"holds keys \(db2: 1\).*Nothing was changed"):
            restore_redis(manifest, destinations.vault, local_redis_target(target))
        target.client().config_set("appendonly", "yes")
        with pytest.raises(RedisRestoreError, match="appendonly yes"):
            restore_redis(manifest, destinations.vault, local_redis_target(target), force=True)
        target.client().config_set("appendonly", "no")
        assert target.client(2).get("existing") == b"1"


def test_a_server_that_will_not_start_on_the_new_file_gets_its_old_one_back(
    filled: LocalRedis, destinations: Destinations, tmp_path: Path
) -> None:
    manifest = run_backup(STORE, DATA_CLASS, handler_for(filled), destinations)
    with LocalRedis(tmp_path / "target", persistence=True) as target:
        target.client(0).set("before", "restore")
        base = local_redis_target(target)
        starts: list[str] = []

        def start_fails_once() -> None:
            starts.append("start")
            if len(starts) == 1:
                raise RuntimeError("simulated: the pod did not become ready")
            target.start()

        flaky = VolumeTarget(base.name, base.source, base.rdb_path, target.stop, start_fails_once)
        with pytest.raises(RedisRestoreError, match="previous data file was put back"):
            restore_redis(manifest, destinations.vault, flaky, force=True)
        assert starts == ["start", "start"]
        assert target.client(0).get("before") == b"restore"
        assert target.client().dbsize() == 1


def test_a_path_that_is_not_the_servers_file_falls_back_to_replication(
    filled: LocalRedis, destinations: Destinations, tmp_path: Path
) -> None:
    stale = tmp_path / "not-the-data-volume" / "dump.rdb"
    stale.parent.mkdir()
    filled.client().save()
    stale.write_bytes(filled.rdb_path.read_bytes())  # an old copy: never replaced by our save
    filled.client(0).set("newer", "than the copy")
    filled.client().config_set("repl-diskless-sync-delay", 0)  # default 5 s: waits for replicas

    handler = RedisHandler(source_of(filled), rdb_path=stale)
    manifest = run_backup(STORE, DATA_CLASS, handler, destinations)
    assert manifest.consistent_point["method"] == "replication (redis-cli --rdb)"
    assert "was not replaced by our BGSAVE" in manifest.consistent_point["fallback_reason"]
    assert manifest.counts["db0.keys"] == KEYS_PER_DB + 1
    assert manifest.tool_versions["redis_cli"].startswith("redis-cli")

    strict = RedisHandler(source_of(filled), rdb_path=stale, replication_fallback=False)
    with pytest.raises(BackupFailed, match="replication fallback is off"):
        run_backup(STORE, "strict", strict, destinations)


def kill_server(server: LocalRedis) -> None:
    """SIGKILL the server and its save child (one process group, which the harness started)."""
    os.killpg(int(server.client().info("server")["process_id"]), signal.SIGKILL)


def test_a_server_that_dies_during_bgsave_fails_the_backup(
    filled: LocalRedis, destinations: Destinations
) -> None:
    filled.client().config_set("rdb-key-save-delay", 200_000)  # a save that takes seconds
    watcher_saw: list[int] = []

    def kill_once_saving() -> None:
        with filled.client() as client:
            for _ in range(200):
                if client.info("persistence")["rdb_bgsave_in_progress"] == 1:
                    watcher_saw.append(1)
                    kill_server(filled)
                    return
                time.sleep(0.02)

    watcher = threading.Thread(target=kill_once_saving)
    watcher.start()
    try:
        with pytest.raises(BackupFailed, match=f"redis {filled.host}:{filled.port}"):
            run_backup(STORE, DATA_CLASS, handler_for(filled, retries=0), destinations)
    finally:
        watcher.join()
        filled.stop()
    assert watcher_saw == [1]
    nothing_stored(destinations)


def test_a_server_that_dies_mid_stream_fails_the_backup(
    filled: LocalRedis, destinations: Destinations
) -> None:
    client = filled.client()
    client.config_set("repl-diskless-sync-delay", 0)
    client.config_set("rdb-key-save-delay", 50_000)  # the replication fork streams slowly
    killed: list[int] = []

    def kill_mid_stream(name: str, raw: int) -> None:
        if not killed:
            killed.append(raw)
            kill_server(filled)

    handler = RedisHandler(source_of(filled, retries=0))  # no shared volume: replication only
    try:
        with pytest.raises(BackupFailed, match="redis-cli --rdb exited 1"):
            run_backup(STORE, DATA_CLASS, handler, destinations, kill_mid_stream)
    finally:
        filled.stop()
    assert killed and killed[0] > 0
    nothing_stored(destinations)


def test_a_save_that_outlasts_the_timeout_fails_naming_the_server(
    filled: LocalRedis, destinations: Destinations
) -> None:
    filled.client().config_set("rdb-key-save-delay", 100_000)  # ~3 s for this data set
    handler = RedisHandler(source_of(filled), rdb_path=filled.rdb_path, save_timeout=0.5)
    with pytest.raises(
        BackupFailed,
        match=rf"redis {filled.host}:{filled.port}: BGSAVE did not finish within 0.5s"
        r" \(rdb_bgsave_in_progress:1",
    ):
        run_backup(STORE, DATA_CLASS, handler, destinations)
    nothing_stored(destinations)
