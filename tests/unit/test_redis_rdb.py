"""The streaming RDB walk: real files from the local redis-server with known contents (several
databases, every value type Redis 7.0 writes, keys with and without TTLs), split at every kind of
chunk boundary, truncated, padded; and hand-built records for encodings Redis 7.0 no longer
writes (older files, modules, hash field TTLs) but ElastiCache or an old StatefulSet may."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from drkit.backup.redis import RedisBackupError, walked
from drkit.local.redis import LocalRedis
from drkit.redis_rdb import (
    SAMPLE_SIZE,
    ContentDigest,
    RdbFormatError,
    RdbTap,
    RdbUnsupported,
    combined,
    file_chunks,
    lzf_decompress,
    read_rdb,
    read_rdb_file,
    read_rdb_header,
)

pytestmark = pytest.mark.unit

# (database, keys, keys with a TTL) of the file the fixture writes.
EXPECTED = {0: (2_000 + 15, 500 + 3), 2: (15, 3), 5: (1, 0)}


def fill(client: redis.Redis[bytes], big: int = 0) -> None:
    """15 keys of every type and encoding Redis 7.0 writes, 3 of them with a TTL."""
    client.set("s:int", 12345)
    client.set("s:neg", -7)
    client.set("s:compressible", "v" * 500)  # LZF in the file
    client.set("s:binary", bytes(range(256)) * 4)
    client.set("s:ttl", "soon", ex=1000)
    client.hset("h:listpack", mapping={"a": 1, "b": "two"})
    client.hset("h:table", mapping={f"f{i}": "v" * (i % 90) for i in range(600)})
    client.rpush("l:small", *range(10))
    client.rpush("l:large", *[f"{'y' * 100}{i}" for i in range(3000)])
    client.rpush("l:plain", "z" * 20_000)  # a quicklist PLAIN node
    client.sadd("set:intset", *range(100))
    client.sadd("set:table", *[f"m{i}" for i in range(300)])
    client.zadd("z:listpack", {"a": 1.5, "b": float("inf"), "c": float("-inf")})
    client.zadd("z:skiplist", {f"m{i}": i / 3 for i in range(1000)})
    for i in range(300):
        client.xadd("x:stream", {"k": i, "v": "p" * (i % 7)})
    client.xgroup_create("x:stream", "g1", id="0")
    client.xreadgroup("g1", "c1", {"x:stream": ">"}, count=5)
    client.xreadgroup("g1", "c2", {"x:stream": ">"}, count=3)
    client.expire("l:large", 500)
    client.pexpire("z:skiplist", 123_456)
    pipeline = client.pipeline(transaction=False)
    for i in range(big):
        pipeline.set(f"key:{i}", "w" * (i % 50), ex=3600 if i % 4 == 0 else None)
    pipeline.execute()


@pytest.fixture(scope="module")
def rdb_file(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    with LocalRedis(tmp_path_factory.mktemp("rdb")) as server:
        fill(server.client(0), big=2_000)
        fill(server.client(2))
        server.client(5).set("only", 1)
        server.client(0).execute_command(
            "FUNCTION",
            "LOAD",
            "#!lua name=lib\nredis.register_function('one', function() return 1 end)",
        )
        server.client(0).save()
        version = str(server.client().info("server")["redis_version"])
        yield server.rdb_path, version


def chunked(data: bytes, size: int) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def test_counts_every_database_of_a_real_rdb(rdb_file: tuple[Path, str]) -> None:
    path, version = rdb_file
    summary = read_rdb_file(path)

    assert summary.version == 10  # Redis 7.0
    assert summary.redis_version == version
    assert {db: (c.keys, c.keys_with_ttl) for db, c in summary.databases.items()} == EXPECTED
    assert summary.counts() == {
        "keys": 2_031,
        "keys_with_ttl": 506,
        "db0.keys": 2_015,
        "db0.keys_with_ttl": 503,
        "db2.keys": 15,
        "db2.keys_with_ttl": 3,
        "db5.keys": 1,
        "db5.keys_with_ttl": 0,
    }
    assert summary.resizedb_present and summary.resizedb_disagreements() == []
    assert summary.functions == 1
    assert summary.size == path.stat().st_size
    assert len(summary.checksum) == 16 and summary.checksum != "0" * 16
    assert summary.created_at is not None


@pytest.mark.parametrize("size", [1, 2, 7, 61, 4096, 1 << 20])
def test_chunk_boundaries_do_not_change_the_result(rdb_file: tuple[Path, str], size: int) -> None:
    path, _ = rdb_file
    data = path.read_bytes()
    whole = read_rdb([data])
    assert read_rdb(chunked(data, size)) == whole


def test_truncated_file_is_an_error_at_any_cut(rdb_file: tuple[Path, str]) -> None:
    data = rdb_file[0].read_bytes()
    for cut in (5, 9, 100, len(data) // 3, len(data) // 2, len(data) - 9, len(data) - 1):
        with pytest.raises(RdbFormatError, match="truncated"):
            read_rdb(chunked(data[:cut], 4096))


def test_garbage_is_rejected_by_name(rdb_file: tuple[Path, str]) -> None:
    data = rdb_file[0].read_bytes()
    with pytest.raises(RdbFormatError, match="3 bytes follow the RDB's EOF"):
        read_rdb([data, b"xyz"])
    assert read_rdb([data, b"xyz"], allow_trailing=True).keys == 2_031
    with pytest.raises(RdbFormatError, match="not an RDB file"):
        read_rdb([b"PGDMP" + data[5:]])


def test_header_has_the_aux_fields(rdb_file: tuple[Path, str]) -> None:
    version, aux = read_rdb_header(file_chunks(rdb_file[0], 64))
    assert version == 10
    assert aux["redis-ver"] == rdb_file[1]
    assert aux["ctime"].isdigit()


def test_lzf_matches_what_redis_compressed(rdb_file: tuple[Path, str]) -> None:
    data = rdb_file[0].read_bytes()
    start = data.index(b"\x0es:compressible") + 15
    assert data[start] == 0xC3  # Redis stored the value LZF-compressed
    compressed, position = data[start + 1], start + 2
    expected = ((data[position] & 0x3F) << 8) | data[position + 1]  # 14-bit length
    body = data[position + 2 : position + 2 + compressed]
    assert lzf_decompress(body, expected) == b"v" * 500


def test_tap_walks_while_the_chunks_go_elsewhere(rdb_file: tuple[Path, str]) -> None:
    path, _ = rdb_file
    tap = RdbTap(depth=2)
    forwarded = b"".join(tap.observe(file_chunks(path, 1000)))
    assert forwarded == path.read_bytes()
    assert tap.result().counts() == read_rdb_file(path).counts()


def test_tap_with_a_broken_stream_does_not_block_the_upload(rdb_file: tuple[Path, str]) -> None:
    data = rdb_file[0].read_bytes()
    tap = RdbTap(depth=2)
    forwarded = list(tap.observe(chunked(b"NOTREDIS!" + data, 512)))  # walk fails at once
    assert len(forwarded) > 10
    with pytest.raises(RdbFormatError, match="not an RDB file"):
        tap.result()
    truncated = RdbTap(depth=2)
    list(truncated.observe(chunked(data[: len(data) // 2], 512)))
    with pytest.raises(RdbFormatError, match="truncated"):
        truncated.result()


# --- hand-built records for encodings Redis 7.0 does not write --------------------------------


def length(value: int) -> bytes:
    if value < 64:
        return bytes([value])
    if value < 16384:
        return bytes([0x40 | (value >> 8), value & 0xFF])
    if value < 1 << 32:
        return b"\x80" + value.to_bytes(4, "big")
    return b"\x81" + value.to_bytes(8, "big")


def string(value: bytes) -> bytes:
    return length(len(value)) + value


def record(value_type: int, key: bytes, body: bytes) -> bytes:
    return bytes([value_type]) + string(key) + body


def module_value(*parts: bytes) -> bytes:
    return b"".join(parts) + length(0)  # RDB_MODULE_OPCODE_EOF


def legacy_rdb() -> bytes:
    """An RDB exercising opcodes and types that only old, module or 7.4+ servers write."""
    lzf = bytes([2]) + b"abc" + bytes([(1 << 5) | 0, 2])  # "abc", then copy 3 from 3 back
    aux = b"\xfa" + string(b"note") + b"\xc3" + length(len(lzf)) + length(6) + lzf
    body = [
        b"REDIS0012",
        b"\xfa" + string(b"redis-ver") + string(b"7.4.1"),
        b"\xfa" + string(b"ctime") + b"\xc2" + struct.pack("<i", 1_700_000_000),
        aux,
        b"\xf7" + length(12345) + length(2) + length(2) + module_value(length(2) + length(9)),
        b"\xf5" + string(b"#!lua name=x\n"),
        b"\xfe" + length(0),
        b"\xfb" + length(12) + length(3),
        b"\xf4" + length(42) + length(11) + length(3),  # cluster slot info
        b"\xfd" + struct.pack("<I", 1_900_000_000),  # old seconds expiry
        record(1, b"list", length(2) + string(b"a") + b"\xc0\x05"),  # list, int-encoded item
        record(2, b"set", length(1) + string(b"m")),
        b"\xf9\x05",  # LFU freq
        record(3, b"zset-text", length(2) + string(b"a") + b"\x031.5" + string(b"b") + b"\xfe"),
        b"\xf8" + length(100),  # LRU idle
        record(4, b"hash", length(1) + string(b"f") + string(b"v")),
        record(9, b"zipmap", string(b"\x00" * 8)),
        record(10, b"ziplist", string(b"\x01" * 12)),
        b"\xfc" + struct.pack("<Q", 1_900_000_000_000),
        record(14, b"quicklist", length(2) + string(b"zl1") + string(b"zl2")),
        record(
            7,
            b"module",
            length(0x1234_5678_9ABC)
            + module_value(
                length(1) + length(5),  # SINT
                length(3) + b"\x00" * 4,  # FLOAT
                length(4) + b"\x00" * 8,  # DOUBLE
                length(5) + string(b"blob"),  # STRING
            ),
        ),
        b"\xfc" + struct.pack("<Q", 1_900_000_000_000),
        record(
            24,
            b"hash-field-ttl",
            struct.pack("<Q", 1_900_000_000_000)
            + length(2)
            # (ttl, field, value) twice: one field with a TTL, one without
            + length(5)
            + string(b"f1")
            + string(b"v1")
            + length(0)
            + string(b"f2")
            + string(b"v2"),
        ),
        record(25, b"hash-lp-ttl", struct.pack("<Q", 1) + string(b"\x00" * 20)),
        record(22, b"hash-rc", length(1) + length(7) + string(b"f") + string(b"v")),
        record(23, b"hash-lp-rc", string(b"\x00" * 10)),
        b"\xfe" + length(3),
        record(5, b"zset2", length(1) + string(b"m") + struct.pack("<d", 2.5)),
        record(
            21,
            b"stream",
            length(1)
            + string(b"\x00" * 16)
            + string(b"lp")
            + length(3) * 3  # length, last id
            + length(0) * 5  # first id, max deleted id, entries added
            + length(1)  # one group
            + string(b"g")
            + length(1) * 3  # last id, entries read
            + length(1)
            + b"\x01" * 24
            + length(2)  # one PEL entry, delivered twice
            + length(1)
            + string(b"c")
            + b"\x00" * 16
            + length(1)
            + b"\x01" * 16,  # one consumer: seen, active, its PEL
        ),
        b"\xff" + b"\x00" * 8,
    ]
    return b"".join(body)


def test_legacy_module_and_field_ttl_encodings_are_skipped() -> None:
    summary = read_rdb(chunked(legacy_rdb(), 3))
    assert summary.version == 12
    assert summary.aux["note"] == "abcabc"  # LZF-compressed AUX value
    assert summary.aux["ctime"] == "1700000000"  # integer-encoded AUX value
    assert summary.module_aux == 1 and summary.functions == 1
    assert {db: (c.keys, c.keys_with_ttl) for db, c in summary.databases.items()} == {
        0: (12, 3),
        3: (2, 0),
    }
    assert summary.resizedb_disagreements() == []
    assert summary.checksum == "0" * 16


def test_an_unknown_type_is_unsupported_not_misread() -> None:
    data = b"REDIS0013" + b"\xfe\x00" + record(26, b"future", string(b"x")) + b"\xff" + b"\x00" * 8
    with pytest.raises(RdbUnsupported, match=r"value type 26 \(unknown\) of the key at offset 11"):
        read_rdb([data])


def test_resizedb_that_disagrees_with_the_walk_is_reported() -> None:
    data = b"REDIS0009\xfe\x00\xfb\x02\x00" + record(0, b"k", string(b"v")) + b"\xff" + b"\0" * 8
    assert read_rdb([data]).resizedb_disagreements() == [
        "db0: RESIZEDB says 2 keys/0 expires, the file holds 1/0"
    ]


def test_an_unknown_type_leaves_the_backup_with_counts_marked_unavailable() -> None:
    header = b"REDIS0013\xfa" + string(b"redis-ver") + string(b"9.0.0") + b"\xfe\x00"
    data = header + record(0, b"a", string(b"1")) + record(26, b"b", b"") + b"\xff" + b"\0" * 8
    tap = RdbTap()
    list(tap.observe([data]))
    walk = walked(tap, "redis test:6379")
    assert walk.counts == {}
    assert walk.note.startswith("unavailable: value type 26")
    assert (walk.summary.version, walk.summary.redis_version) == (13, "9.0.0")


def test_resizedb_disagreement_fails_the_backup_rather_than_record_wrong_counts() -> None:
    data = b"REDIS0009\xfe\x00\xfb\x02\x00" + record(0, b"k", string(b"v")) + b"\xff" + b"\0" * 8
    tap = RdbTap()
    list(tap.observe([data]))
    with pytest.raises(RedisBackupError, match="redis test:6379: the RDB walk disagrees"):
        walked(tap, "redis test:6379")


def test_shards_combine_into_the_fingerprint_of_all_their_keys() -> None:
    """Disjoint shards: counts add, digests XOR, the earliest expiry, the lowest-ranked sample."""
    whole, shards = ContentDigest(), [ContentDigest(), ContentDigest()]
    for i in range(100):
        key, expiry = f"k{i}".encode(), (1_000 + i if i % 5 == 0 else None)
        for digest in (whole, shards[i % 2]):
            rank = digest.add("string", key, expiry)
            if expiry is None and digest.wants_sample(rank):
                digest.keep_sample(rank, key, str(i).encode())
    together = combined(shards)
    assert together.as_json() == whole.as_json()
    assert (together.persistent, together.expiring, together.min_expiry_ms) == (80, 20, 1_000)
    assert len(together.sample) == SAMPLE_SIZE
    assert combined([]).as_json() == ContentDigest().as_json()
