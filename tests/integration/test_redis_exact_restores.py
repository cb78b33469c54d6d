"""``invoke restore.redis`` judged by the data, and exact: a tricky dataset (TTLs, binary and
unicode keys, every type, streams with consumer groups and pending entries, HyperLogLog, bitmaps,
several databases) comes back exactly, into the store's own server from the vault and into any
Redis by URL (AUTH user, TLS) from the vault and the mirror; "already restored" is decided from the
server's content against the manifest's fingerprint, never from a marker, and ``--force`` always
restores."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from drkit.local.redis import LocalRedis
from drkit.ops.executor import Status
from drkit.ops.restore_redis import RestoreRedisRequest, build_plan
from drkit.ops.selection import TargetNotEmptyError
from drkit.ops.verbs import RestoreEnv
from drkit.restore.redis_copy import masked
from tests.integration.ops_helpers import (
    attach_cache,
    cache_backup,
    cache_server,
    context,
    run,
    run_id,
)

pytestmark = pytest.mark.integration
__all__ = ["cache_server"]  # the fixture, imported for pytest

HOUR_MS = 3_600_000


def fill_tricky(client_for: Any) -> None:
    """What naive tools lose: expiries, binary and unicode names, every type and encoding."""
    with client_for(0) as c:
        c.set(b"\x00\xffbin\r\n key\x7f", bytes(range(256)))
        c.set("clé:東京:🚀", "naïve ✓".encode())
        c.set("empty", b"")
        c.set("int", 12345)  # integer-encoded
        c.set("big", "abc" * 4000)  # LZF-compressed in the RDB
        c.set("ttl:ms", "soon", px=2 * HOUR_MS)
        c.set("ttl:s", "later", ex=3 * 3600)
        c.rpush("list:small", b"a", b"\x00", "ü".encode())
        c.rpush("list:big", *[f"item-{i}" * 3 for i in range(300)])
        c.sadd("set:ints", 1, 2, 3, -7)
        c.sadd("set:small", "a", "b", "東")
        c.sadd("set:big", *[f"m{i}" for i in range(700)])
        c.zadd("zset:small", {"a": 1.5, "b": float("inf"), "c": -2.25, "d": float("-inf")})
        c.zadd("zset:big", {f"z{i}": i / 3 for i in range(300)})
        c.hset("hash:small", mapping={"user": "alice", "ü": b"\xff\x00"})
        c.hset("hash:big", mapping={f"f{i}": f"v{i}" for i in range(700)})
        c.expire("hash:small", 4 * 3600)  # a TTL on a non-string
        c.pfadd("hll", *[f"user-{i}" for i in range(2000)])
        c.setbit("bitmap", 7, 1)
        c.setbit("bitmap", 100_000, 1)
        for i in range(1, 13):
            c.xadd("stream", {"n": str(i), "bin": b"\x00\xff"}, id=f"{1000 + i}-{i % 3}")
        c.xdel("stream", "1005-2")  # a deleted entry: max-deleted-entry-id
        c.xgroup_create("stream", "g1", id="0")
        c.xreadgroup("g1", "alice", {"stream": ">"}, count=4)
        c.xreadgroup("g1", "bob", {"stream": ">"}, count=2)
        c.xack("stream", "g1", "1001-1")
        c.xgroup_create("stream", "g2", id="$")
        c.xgroup_createconsumer("stream", "g2", "idle-consumer")
    with client_for(3) as c:
        c.set("db3:only", "here")
        c.hset("db3:hash", mapping={"a": "1"})
        c.set("db3:ttl", "x", px=5 * HOUR_MS)


def exact(client_for: Any, databases: tuple[int, ...] = (0, 3)) -> dict[int, dict[bytes, Any]]:
    """Every key of each database: type, absolute expiry, and its whole value read by type."""
    found: dict[int, dict[bytes, Any]] = {}
    for db in databases:
        with client_for(db) as c:
            found[db] = {key: _entry(c, key) for key in c.scan_iter(count=1000)}
    return found


def _entry(c: redis.Redis[bytes], key: bytes) -> tuple[bytes, int, Any]:
    kind = c.type(key)
    value: Any
    if kind == b"string":
        value = c.get(key)
    elif kind == b"list":
        value = c.lrange(key, 0, -1)
    elif kind == b"set":
        value = sorted(c.smembers(key))
    elif kind == b"zset":
        value = c.zrange(key, 0, -1, withscores=True)
    elif kind == b"hash":
        value = c.hgetall(key)
    elif kind == b"stream":
        info = c.xinfo_stream(key)
        groups = c.xinfo_groups(key)
        value = (
            c.xrange(key),
            {k: info[k] for k in ("length", "last-generated-id", "max-deleted-entry-id")},
            {k: info[k] for k in ("entries-added", "recorded-first-entry-id")},
            groups,
            [
                [
                    (p["message_id"], p["consumer"], p["times_delivered"])
                    for p in c.xpending_range(key, g["name"], "-", "+", 100)
                ]
                for g in groups
            ],
            [
                sorted((x["name"], x["pending"]) for x in c.xinfo_consumers(key, g["name"]))
                for g in groups
            ],
        )
    else:
        raise AssertionError(f"unexpected type {kind!r} of {key!r}")
    return kind, int(c.execute_command("PEXPIRETIME", key)), value


@contextlib.contextmanager
def server(tmp_path: Path, **options: Any) -> Iterator[LocalRedis]:
    with LocalRedis(tmp_path, **options) as started:
        yield started


def test_the_stores_own_server_is_judged_by_its_data_and_restored_exactly(
    project: Path, cache_server: LocalRedis
) -> None:
    attach_cache(project, cache_server)
    ctx = context(project)
    fill_tricky(cache_server.client)
    before = exact(cache_server.client)
    manifest = cache_backup(ctx)
    content = manifest.consistent_point["content"]
    assert set(content) == {"db0", "db3"}
    assert content["db0"]["persistent"] + content["db0"]["expiring"] == len(before[0])
    assert content["db0"]["expiring"] == 3 and content["db0"]["sample"]

    def restore(**flags: Any) -> str:
        plan, _ = build_plan(ctx, RestoreRedisRequest(**flags), RestoreEnv(project))
        report, out = run(ctx, project, plan, yes=True)
        assert report.status is Status.SUCCEEDED, out
        return out

    # The server holds the backup's data (no restore ever ran, no marker): nothing to do.
    running = run_id(cache_server)
    assert "ok (already done)  restore.session-cache" in restore()
    assert run_id(cache_server) == running

    with cache_server.client() as client:
        client.flushall()  # the data is lost; the server keeps running
    out = restore()
    assert "(already done)" not in out and "content matches" in out
    assert exact(cache_server.client) == before

    with cache_server.client() as client:
        client.delete("list:big")  # part of it lost: not the backup's data any more
        client.set("quote:new", "written after the restore")
    out = restore()  # keys from this backup's own restore: no --force needed
    assert "(already done)" not in out
    assert exact(cache_server.client) == before

    restarted = run_id(cache_server)
    out = restore(force=True)  # the same data: --force restores all the same
    assert "(already done)" not in out
    assert run_id(cache_server) != restarted
    assert exact(cache_server.client) == before


def test_into_any_redis_by_url_with_an_acl_user_and_with_tls_from_vault_and_mirror(
    project: Path, cache_server: LocalRedis, tmp_path: Path
) -> None:
    attach_cache(project, cache_server)
    ctx = context(project)
    fill_tricky(cache_server.client)
    before = exact(cache_server.client)
    cache_backup(ctx)
    running = run_id(cache_server)

    with (
        server(tmp_path / "plain") as plain,
        server(tmp_path / "tls", elasticache_shaped=True) as managed,
    ):
        with plain.client() as client:
            client.acl_setuser(
                "restorer", enabled=True, passwords=["+s3cr:t/pw"], keys=["*"],
                channels=["*"], commands=["+@all"],
            )  # fmt: skip
        by_user = f"redis://restorer:s3cr%3At%2Fpw@{plain.host}:{plain.port}"
        ca = managed.tls_ca_file
        by_tls = (
            f"rediss://default:{managed.password}@{managed.host}:{managed.port}?ssl_ca_certs={ca}"
        )
        for url, source, target in ((by_user, "vault", plain), (by_tls, "mirror", managed)):
            request = RestoreRedisRequest(target_url=url, source=source)
            plan, _ = build_plan(ctx, request, RestoreEnv(project))
            report, out = run(ctx, project, plan, yes=True)
            assert report.status is Status.SUCCEEDED, out
            assert "content matches" in out
            assert exact(target.client) == before, source
            assert "s3cr" not in out and managed.password not in out
            assert masked(url) in plan.parameters["target_url"]
            _, out = run(ctx, project, build_plan(ctx, request, RestoreEnv(project))[0], yes=True)
            assert "ok (already done)  restore.session-cache" in out

        with managed.client() as client:
            client.set("someone-elses", "data")
        with pytest.raises(
            TargetNotEmptyError, match=r"holds keys \(db0: 20, db3: 3\) that are not.*--force"
        ):
            build_plan(ctx, RestoreRedisRequest(target_url=by_tls), RestoreEnv(project))
        request = RestoreRedisRequest(target_url=by_tls, force=True)
        report, out = run(ctx, project, build_plan(ctx, request, RestoreEnv(project))[0], yes=True)
        assert report.status is Status.SUCCEEDED, out
        assert exact(managed.client) == before  # emptied first: nothing added
    assert run_id(cache_server) == running  # the store's own server was never stopped
