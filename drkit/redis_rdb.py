"""Read a Redis RDB file as a stream and count what it holds, without loading it.

A backup records the key counts of the snapshot it stored, and a restore checks the server against
them; the only trustworthy source for those counts is the RDB itself (the live server has moved on
by the time anyone asks it). RDB files since Redis 3.2 carry a RESIZEDB hint per database (hash
table sizes), but those hints sit at the start of each database, so reaching database 1's hint
already means walking past every key of database 0. This module therefore walks the whole file,
skipping each value by its encoded length, and counts the keys and the keys with an expiry in each
database exactly; the RESIZEDB hints, where present, are kept alongside as a cross-check.

Memory stays bounded: values are skipped, never materialised, and the input is an iterator of
chunks, so the same walk serves a file on disk, a ``redis-cli --rdb -`` pipe and an object read
back from S3. ``RdbTap`` runs the walk on a thread of its own while the same chunks go elsewhere.

Content fingerprint (``content=True``, what a backup records): per database, the keys without a
TTL and those with one are counted and digested apart, each key as the first 128 bits of the
SHA-1 of its type name and name (and, for a key with a TTL, its absolute expiry in milliseconds),
combined with XOR (names are unique in a database), so the order of keys in the file does not
matter and a live server's keys, read with SCAN in any order, give the same digest
(``drkit.redis_content`` computes it inside the server with a script). Values are not decoded,
except for a sample: the ``SAMPLE_SIZE`` string keys without a TTL whose digest is lowest keep a
SHA-256 of their value.

Format reference: Redis ``src/rdb.h`` and ``rdbLoadRioWithLoadingCtx``/``rdbLoadObject`` in
``src/rdb.c`` (RDB versions 1 to 12: Redis 2.x to 8.x, and Valkey up to RDB 11).
"""

from __future__ import annotations

import hashlib
import heapq
import queue
import struct
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

MAGIC = b"REDIS"
CHUNK = 1024 * 1024
NEWEST_KNOWN_VERSION = 12
"""RDB 12 is Redis 7.4 to 8.x. A newer file is still walked; unknown types fail by name."""

# Opcodes (rdb.h).
OP_KEY_META = 0xF3
OP_SLOT_INFO = 0xF4
OP_FUNCTION2 = 0xF5
OP_FUNCTION_PRE_GA = 0xF6
OP_MODULE_AUX = 0xF7
OP_IDLE = 0xF8
OP_FREQ = 0xF9
OP_AUX = 0xFA
OP_RESIZEDB = 0xFB
OP_EXPIRETIME_MS = 0xFC
OP_EXPIRETIME = 0xFD
OP_SELECTDB = 0xFE
OP_EOF = 0xFF

# Value types (rdb.h), grouped by how they are laid out on disk.
TYPE_NAMES = {
    0: "string",
    1: "list",
    2: "set",
    3: "zset",
    4: "hash",
    5: "zset (binary scores)",
    6: "module (pre-GA)",
    7: "module",
    9: "hash (zipmap)",
    10: "list (ziplist)",
    11: "set (intset)",
    12: "zset (ziplist)",
    13: "hash (ziplist)",
    14: "list (quicklist)",
    15: "stream",
    16: "hash (listpack)",
    17: "zset (listpack)",
    18: "list (quicklist 2)",
    19: "stream (v2)",
    20: "set (listpack)",
    21: "stream (v3)",
    22: "hash with field TTLs (7.4 RC)",
    23: "hash listpack with field TTLs (7.4 RC)",
    24: "hash with field TTLs",
    25: "hash listpack with field TTLs",
}
_ONE_BLOB = frozenset({9, 10, 11, 12, 13, 16, 17, 20, 23})
_STRING_LIST = frozenset({1, 2, 14})
_STREAMS = frozenset({15, 19, 21})

# Module value sub-opcodes (rdb.h RDB_MODULE_OPCODE_*).
_MODULE_EOF, _MODULE_SINT, _MODULE_UINT, _MODULE_FLOAT, _MODULE_DOUBLE, _MODULE_STRING = range(6)

# String encodings behind a length byte of the form 11xxxxxx.
_ENC_INT8, _ENC_INT16, _ENC_INT32, _ENC_LZF = range(4)

_STREAM_ID = 16
_MS_TIME = 8

SAMPLE_SIZE = 32
"""String keys per database whose value digest the content fingerprint keeps."""
TYPE_OF = {
    **dict.fromkeys((0,), "string"),
    **dict.fromkeys((1, 10, 14, 18), "list"),
    **dict.fromkeys((2, 11, 20), "set"),
    **dict.fromkeys((3, 5, 12, 17), "zset"),
    **dict.fromkeys((4, 9, 13, 16, 22, 23, 24, 25), "hash"),
    **dict.fromkeys((15, 19, 21), "stream"),
}
"""The name ``TYPE`` answers for each value type (a module type answers its own name: "module")."""
_TYPE_PREFIXES = {value_type: name.encode() + b"\0" for value_type, name in TYPE_OF.items()}


def key_digest(kind: str, key: bytes, expiry_ms: int | None = None) -> int:
    """One key's share of a database digest: its type name, name and absolute expiry."""
    data = kind.encode() + b"\0" + key
    if expiry_ms is not None:
        data += b"\0" + str(expiry_ms).encode()
    return int.from_bytes(hashlib.sha1(data).digest()[:16], "big")


@dataclass
class ContentDigest:
    """One database's keys as the fingerprint sees them (see the module docstring)."""

    persistent: int = 0
    persistent_digest: int = 0
    expiring: int = 0
    expiring_digest: int = 0
    min_expiry_ms: int | None = None
    sample: list[tuple[int, bytes, str]] = field(default_factory=list)
    """A heap of (-rank, key, SHA-256 of the value): the lowest-ranked string keys."""

    def add(self, kind: str, key: bytes, expiry_ms: int | None) -> int:
        """Count and digest one key; its digest (a persistent string's sample rank)."""
        digest = key_digest(kind, key, expiry_ms)
        if expiry_ms is None:
            self.persistent += 1
            self.persistent_digest ^= digest
        else:
            self.expiring += 1
            self.expiring_digest ^= digest
            if self.min_expiry_ms is None or expiry_ms < self.min_expiry_ms:
                self.min_expiry_ms = expiry_ms
        return digest

    def wants_sample(self, rank: int) -> bool:
        return len(self.sample) < SAMPLE_SIZE or -self.sample[0][0] > rank

    def threshold(self) -> int | None:
        """The rank a key must be below to enter the sample (None: not full yet)."""
        return -self.sample[0][0] if len(self.sample) >= SAMPLE_SIZE else None

    def keep_sample(self, rank: int, key: bytes, value: bytes) -> None:
        entry = (-rank, key, hashlib.sha256(value).hexdigest())
        if len(self.sample) < SAMPLE_SIZE:
            heapq.heappush(self.sample, entry)
        else:
            heapq.heapreplace(self.sample, entry)

    def as_json(self) -> dict[str, object]:
        return {
            "persistent": self.persistent,
            "persistent_digest": f"{self.persistent_digest:032x}",
            "expiring": self.expiring,
            "expiring_digest": f"{self.expiring_digest:032x}",
            "min_expiry_ms": self.min_expiry_ms,
            "sample": {key.hex(): digest for _, key, digest in sorted(self.sample)},
        }


def combined(digests: Iterable[ContentDigest]) -> ContentDigest:
    """One database's fingerprint from its shards' (an ElastiCache cluster's node groups hold
    disjoint keys): counts added, digests XOR-ed (the digest of the union, since XOR does not
    care which file a key came from), the earliest expiry, and the sample of the lowest-ranked
    string keys among all the shards' samples (each shard's holds its lowest ones, so these are
    the union's)."""
    total = ContentDigest()
    entries: list[tuple[int, bytes, str]] = []
    for digest in digests:
        total.persistent += digest.persistent
        total.persistent_digest ^= digest.persistent_digest
        total.expiring += digest.expiring
        total.expiring_digest ^= digest.expiring_digest
        if digest.min_expiry_ms is not None and (
            total.min_expiry_ms is None or digest.min_expiry_ms < total.min_expiry_ms
        ):
            total.min_expiry_ms = digest.min_expiry_ms
        entries.extend(digest.sample)
    total.sample = heapq.nlargest(SAMPLE_SIZE, entries)  # -rank: the lowest ranks
    heapq.heapify(total.sample)
    return total


def combined_content(summaries: list[RdbSummary]) -> dict[str, dict[str, object]] | None:
    """The content fingerprint per database (``db<n>``) of several shards' RDB files together,
    if every walk took one."""
    if not summaries or any(summary.content() is None for summary in summaries):
        return None
    numbers = sorted({n for summary in summaries for n in summary.databases})
    return {
        f"db{n}": combined(
            db.content
            for summary in summaries
            if (db := summary.databases.get(n)) is not None and db.content is not None
        ).as_json()
        for n in numbers
    }


class RdbFormatError(ValueError):
    """The bytes are not a complete RDB file; the message says where the walk stopped and why."""


class RdbUnsupported(RdbFormatError):
    """A well-formed RDB that uses something this reader cannot skip (a new type or opcode).

    ``partial`` holds what was read before it (the version and AUX fields at least), so a backup
    can still record those and say its key counts are unavailable, rather than fail.
    """

    partial: RdbSummary | None = None


@dataclass
class DatabaseCounts:
    """One logical database (``SELECT n``) in the file."""

    keys: int = 0
    keys_with_ttl: int = 0
    resizedb_keys: int | None = None
    resizedb_expires: int | None = None
    content: ContentDigest | None = None


@dataclass
class RdbSummary:
    """What a walk of one RDB file found: its version, AUX fields and per-database counts."""

    version: int
    aux: dict[str, str] = field(default_factory=dict)
    databases: dict[int, DatabaseCounts] = field(default_factory=dict)
    functions: int = 0
    module_aux: int = 0
    checksum: str = ""
    size: int = 0

    @property
    def keys(self) -> int:
        return sum(db.keys for db in self.databases.values())

    @property
    def keys_with_ttl(self) -> int:
        return sum(db.keys_with_ttl for db in self.databases.values())

    @property
    def redis_version(self) -> str | None:
        return self.aux.get("redis-ver") or self.aux.get("valkey-ver")

    @property
    def created_at(self) -> datetime | None:
        """The ``ctime`` AUX field: when the saving process started writing (the fork)."""
        value = self.aux.get("ctime")
        return datetime.fromtimestamp(int(value), UTC) if value and value.isdigit() else None

    @property
    def resizedb_present(self) -> bool:
        return any(db.resizedb_keys is not None for db in self.databases.values())

    def resizedb_disagreements(self) -> list[str]:
        """Databases whose RESIZEDB hint differs from the keys actually walked."""
        return [
            f"db{number}: RESIZEDB says {db.resizedb_keys} keys/{db.resizedb_expires} expires,"
            f" the file holds {db.keys}/{db.keys_with_ttl}"
            for number, db in sorted(self.databases.items())
            if db.resizedb_keys is not None
            and (db.resizedb_keys, db.resizedb_expires) != (db.keys, db.keys_with_ttl)
        ]

    def content(self) -> dict[str, dict[str, object]] | None:
        """The content fingerprint per database (``db<n>``), if the walk took one."""
        if any(db.content is None for db in self.databases.values()):
            return None
        return {
            f"db{n}": db.content.as_json()
            for n, db in sorted(self.databases.items())
            if db.content is not None
        }

    def counts(self) -> dict[str, int]:
        """Totals and per-database counts, in the shape a manifest records and verify compares."""
        result = {"keys": self.keys, "keys_with_ttl": self.keys_with_ttl}
        for number, db in sorted(self.databases.items()):
            result[f"db{number}.keys"] = db.keys
            result[f"db{number}.keys_with_ttl"] = db.keys_with_ttl
        return result


class _Reader:
    """Pulls exact byte counts out of an iterator of arbitrarily sized chunks."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = iter(chunks)
        self._buffer = b""
        self._position = 0
        self._consumed = 0  # bytes of earlier buffers, for offsets in messages

    @property
    def offset(self) -> int:
        return self._consumed + self._position

    def _next_chunk(self, wanted: int) -> bytes:
        for chunk in self._chunks:
            if chunk:
                return chunk
        raise RdbFormatError(
            f"the stream ended at offset {self.offset} while {wanted} more bytes were expected"
            " (truncated RDB)"
        )

    def read(self, size: int) -> bytes:
        end = self._position + size
        if end <= len(self._buffer):
            data = self._buffer[self._position : end]
            self._position = end
            return data
        parts = [self._buffer[self._position :]]
        missing = size - len(parts[0])
        self._consumed += len(self._buffer)
        self._buffer, self._position = b"", 0
        while missing > 0:
            chunk = self._next_chunk(missing)
            if len(chunk) > missing:
                parts.append(chunk[:missing])
                self._buffer, self._position = chunk, missing
                return b"".join(parts)
            parts.append(chunk)
            self._consumed += len(chunk)
            missing -= len(chunk)
        return b"".join(parts)

    def skip(self, size: int) -> None:
        end = self._position + size
        if end <= len(self._buffer):
            self._position = end
            return
        missing = end - len(self._buffer)
        self._consumed += len(self._buffer)
        self._buffer, self._position = b"", 0
        while missing > 0:
            chunk = self._next_chunk(missing)
            if len(chunk) > missing:
                self._buffer, self._position = chunk, missing
                return
            self._consumed += len(chunk)
            missing -= len(chunk)

    def byte(self) -> int:
        if self._position < len(self._buffer):
            value = self._buffer[self._position]
            self._position += 1
            return value
        return self.read(1)[0]

    def drain(self) -> int:
        """Read to the end of the input; the number of bytes that were left."""
        left = len(self._buffer) - self._position
        self._consumed += len(self._buffer)
        self._buffer, self._position = b"", 0
        for chunk in self._chunks:
            left += len(chunk)
            self._consumed += len(chunk)
        return left


class _Walker:
    """The RDB grammar, skipping every value; see the module docstring."""

    def __init__(self, reader: _Reader, content: bool = False) -> None:
        self.r = reader
        self.version = 0
        self.content = content

    # -- primitives -------------------------------------------------------------------------

    def length(self) -> tuple[int, bool]:
        """(value, is_special_encoding) of a length prefix."""
        first = self.r.byte()
        kind = first >> 6
        if kind == 0:
            return first & 0x3F, False
        if kind == 1:
            return ((first & 0x3F) << 8) | self.r.byte(), False
        if first == 0x80:
            return int.from_bytes(self.r.read(4), "big"), False
        if first == 0x81:
            return int.from_bytes(self.r.read(8), "big"), False
        if kind == 3:
            return first & 0x3F, True
        raise RdbFormatError(f"invalid length prefix 0x{first:02x} at offset {self.r.offset - 1}")

    def plain_length(self) -> int:
        value, encoded = self.length()
        if encoded:
            offset = self.r.offset - 1
            raise RdbFormatError(f"expected a length at offset {offset}, found a string encoding")
        return value

    def skip_string(self) -> None:
        value, encoded = self.length()
        if not encoded:
            self.r.skip(value)
        elif value == _ENC_INT8:
            self.r.skip(1)
        elif value == _ENC_INT16:
            self.r.skip(2)
        elif value == _ENC_INT32:
            self.r.skip(4)
        elif value == _ENC_LZF:
            compressed = self.plain_length()
            self.plain_length()
            self.r.skip(compressed)
        else:
            raise RdbFormatError(f"unknown string encoding {value} at offset {self.r.offset - 1}")

    def string(self) -> bytes:
        """A string's value; only used for AUX fields, which are small."""
        value, encoded = self.length()
        if not encoded:
            return self.r.read(value)
        if value == _ENC_INT8:
            return str(struct.unpack("<b", self.r.read(1))[0]).encode()
        if value == _ENC_INT16:
            return str(struct.unpack("<h", self.r.read(2))[0]).encode()
        if value == _ENC_INT32:
            return str(struct.unpack("<i", self.r.read(4))[0]).encode()
        if value == _ENC_LZF:
            compressed = self.plain_length()
            expected = self.plain_length()
            return lzf_decompress(self.r.read(compressed), expected)
        raise RdbFormatError(f"unknown string encoding {value} at offset {self.r.offset - 1}")

    def skip_double_as_text(self) -> None:
        """RDB_TYPE_ZSET scores: a length byte (253-255 are NaN and infinities) and ASCII."""
        size = self.r.byte()
        if size < 253:
            self.r.skip(size)

    def skip_module_value(self, where: str) -> None:
        while True:
            opcode = self.plain_length()
            if opcode == _MODULE_EOF:
                return
            if opcode in (_MODULE_SINT, _MODULE_UINT):
                self.plain_length()
            elif opcode == _MODULE_FLOAT:
                self.r.skip(4)
            elif opcode == _MODULE_DOUBLE:
                self.r.skip(8)
            elif opcode == _MODULE_STRING:
                self.skip_string()
            else:
                raise RdbFormatError(f"unknown module opcode {opcode} in {where}")

    # -- values -------------------------------------------------------------------------------

    def skip_value(self, value_type: int, key_offset: int) -> None:
        if value_type == 0 or value_type in _ONE_BLOB:
            self.skip_string()
        elif value_type in _STRING_LIST:
            for _ in range(self.plain_length()):
                self.skip_string()
        elif value_type == 3:
            for _ in range(self.plain_length()):
                self.skip_string()
                self.skip_double_as_text()
        elif value_type == 5:
            for _ in range(self.plain_length()):
                self.skip_string()
                self.r.skip(8)
        elif value_type == 4:
            for _ in range(self.plain_length()):
                self.skip_string()
                self.skip_string()
        elif value_type == 18:
            for _ in range(self.plain_length()):
                self.plain_length()  # container: packed or plain
                self.skip_string()
        elif value_type in _STREAMS:
            self.skip_stream(value_type)
        elif value_type == 7:
            self.plain_length()  # module type id
            self.skip_module_value(f"the module value of the key at offset {key_offset}")
        elif value_type in (22, 24):
            if value_type == 24:
                self.r.skip(_MS_TIME)  # the smallest field expiry; field TTLs are relative to it
            for _ in range(self.plain_length()):
                self.plain_length()  # field TTL
                self.skip_string()
                self.skip_string()
        elif value_type == 25:
            self.r.skip(_MS_TIME)
            self.skip_string()
        else:
            name = TYPE_NAMES.get(value_type, "unknown")
            raise RdbUnsupported(
                f"value type {value_type} ({name}) of the key at offset {key_offset} cannot be"
                f" skipped by this reader (RDB version {self.version})"
            )

    def skip_stream(self, value_type: int) -> None:
        for _ in range(self.plain_length()):  # listpacks: master ID, then the listpack
            self.skip_string()
            self.skip_string()
        self.plain_length()  # length
        self.plain_length()  # last ID ms
        self.plain_length()  # last ID seq
        if value_type >= 19:
            for _ in range(5):  # first ID (2), max deleted ID (2), entries added
                self.plain_length()
        for _ in range(self.plain_length()):  # consumer groups
            self.skip_string()  # name
            self.plain_length()  # last delivered ID ms
            self.plain_length()  # ... seq
            if value_type >= 19:
                self.plain_length()  # entries read
            for _ in range(self.plain_length()):  # group PEL
                self.r.skip(_STREAM_ID + _MS_TIME)
                self.plain_length()  # delivery count
            for _ in range(self.plain_length()):  # consumers
                self.skip_string()
                self.r.skip(_MS_TIME * (2 if value_type >= 21 else 1))  # seen (and active) time
                self.r.skip(_STREAM_ID * self.plain_length())  # consumer PEL

    # -- the file -------------------------------------------------------------------------------

    def walk(self) -> RdbSummary:
        magic = self.r.read(9)
        if magic[:5] != MAGIC or not magic[5:].isdigit():
            raise RdbFormatError(f"not an RDB file: it starts with {magic!r}, not b'REDIS00nn'")
        self.version = int(magic[5:])
        summary = RdbSummary(version=self.version)
        try:
            self._records(summary)
        except RdbUnsupported as error:
            error.partial = summary
            raise
        summary.size = self.r.offset
        return summary

    def _records(self, summary: RdbSummary) -> None:
        database: DatabaseCounts | None = None  # files before RDB 2 may have no SELECTDB
        expiry_pending = False
        expiry_ms: int | None = None
        reader = self.r
        fast = not self.content
        while True:
            # Fast path: runs of string-like records inside the current buffer (most keys).
            if database is not None and len(reader._buffer) - reader._position > _FAST_MARGIN:
                collected: list[_Compact] | None = None if fast else []
                buffer = reader._buffer
                end, keys, with_ttl = _skip_compact_run(buffer, reader._position, collected)
                if keys and (fast or not expiry_pending):
                    if collected:
                        self._content_run(database, buffer, collected)
                    reader._position = end
                    database.keys += keys
                    database.keys_with_ttl += with_ttl + (1 if expiry_pending else 0)
                    expiry_pending = False
                    continue
            opcode_offset = reader.offset
            opcode = reader.byte()
            if opcode == OP_EOF:
                if self.version >= 5:
                    summary.checksum = self.r.read(8).hex()
                break
            if opcode == OP_AUX:
                key = self.string().decode(errors="replace")
                summary.aux[key] = self.string().decode(errors="replace")
            elif opcode == OP_SELECTDB:
                database = summary.databases.setdefault(self.plain_length(), DatabaseCounts())
                if self.content and database.content is None:
                    database.content = ContentDigest()
            elif opcode == OP_RESIZEDB:
                database = database or summary.databases.setdefault(0, DatabaseCounts())
                database.resizedb_keys = self.plain_length()
                database.resizedb_expires = self.plain_length()
            elif opcode == OP_EXPIRETIME_MS:
                expiry_ms = int.from_bytes(self.r.read(8), "little")
                expiry_pending = True
            elif opcode == OP_EXPIRETIME:
                expiry_ms = int.from_bytes(self.r.read(4), "little") * 1000
                expiry_pending = True
            elif opcode == OP_FREQ:
                self.r.skip(1)
            elif opcode == OP_IDLE:
                self.plain_length()
            elif opcode == OP_SLOT_INFO:
                for _ in range(3):  # slot id, slot size, expires in slot
                    self.plain_length()
            elif opcode == OP_FUNCTION2:
                self.skip_string()
                summary.functions += 1
            elif opcode == OP_MODULE_AUX:
                self.plain_length()  # module id
                self.plain_length()  # when opcode
                self.plain_length()  # when
                self.skip_module_value(f"the module AUX data at offset {opcode_offset}")
                summary.module_aux += 1
            elif opcode in (OP_KEY_META, OP_FUNCTION_PRE_GA):
                raise RdbUnsupported(
                    f"opcode 0x{opcode:02x} at offset {opcode_offset} cannot be skipped by this"
                    f" reader (RDB version {self.version})"
                )
            else:
                database = database or summary.databases.setdefault(0, DatabaseCounts())
                if self.content:
                    self._content_record(database, opcode, opcode_offset, expiry_ms)
                else:
                    self.skip_string()  # the key
                    self.skip_value(opcode, opcode_offset)
                database.keys += 1
                if expiry_pending:
                    database.keys_with_ttl += 1
                expiry_pending, expiry_ms = False, None

    def _content_record(
        self, database: DatabaseCounts, value_type: int, offset: int, expiry_ms: int | None
    ) -> None:
        if database.content is None:
            database.content = ContentDigest()
        content = database.content
        key = self.string()
        kind = TYPE_OF.get(value_type, "module")
        rank = content.add(kind, key, expiry_ms)
        if value_type == 0 and expiry_ms is None and content.wants_sample(rank):
            content.keep_sample(rank, key, self.string())
            return
        self.skip_value(value_type, offset)

    @staticmethod
    def _content_run(database: DatabaseCounts, buffer: bytes, run: list[_Compact]) -> None:
        """The fingerprint of records the fast path skipped (keys and values in ``buffer``)."""
        if database.content is None:
            database.content = ContentDigest()
        content = database.content
        # key_digest and ContentDigest.add inlined: this loop runs once per key.
        sha1, from_bytes, prefixes = hashlib.sha1, int.from_bytes, _TYPE_PREFIXES
        threshold = content.threshold()
        persistent = expiring = 0
        persistent_digest = expiring_digest = 0
        for value_type, key, expiry_ms, value_at in run:
            prefix = prefixes.get(value_type, b"module\0")
            if expiry_ms is None:
                rank = from_bytes(sha1(prefix + key).digest(), "big") >> 32
                persistent += 1
                persistent_digest ^= rank
                if value_type == 0 and (threshold is None or rank < threshold):
                    content.keep_sample(rank, key, _string_at(buffer, value_at))
                    threshold = content.threshold()
            else:
                text = prefix + key + b"\0" + str(expiry_ms).encode()
                expiring += 1
                expiring_digest ^= from_bytes(sha1(text).digest(), "big") >> 32
                if content.min_expiry_ms is None or expiry_ms < content.min_expiry_ms:
                    content.min_expiry_ms = expiry_ms
        content.persistent += persistent
        content.persistent_digest ^= persistent_digest
        content.expiring += expiring
        content.expiring_digest ^= expiring_digest


_FAST_MARGIN = 32
_FAST_TYPES = frozenset({0}) | _ONE_BLOB


def _string_end(buffer: bytes, position: int) -> int:
    """Where the string starting at ``position`` ends; raises IndexError past the buffer."""
    first = buffer[position]
    kind = first >> 6
    if kind == 0:
        return position + 1 + (first & 0x3F)
    if kind == 1:
        return position + 2 + (((first & 0x3F) << 8) | buffer[position + 1])
    if first == 0x80:
        return position + 5 + int.from_bytes(buffer[position + 1 : position + 5], "big")
    if kind == 3:
        encoding = first & 0x3F
        if encoding == _ENC_INT8:
            return position + 2
        if encoding == _ENC_INT16:
            return position + 3
        if encoding == _ENC_INT32:
            return position + 5
        if encoding == _ENC_LZF:
            compressed, position = _length_at(buffer, position + 1)
            _, position = _length_at(buffer, position)
            return position + compressed
    raise IndexError  # anything unusual takes the careful path


def _length_at(buffer: bytes, position: int) -> tuple[int, int]:
    first = buffer[position]
    kind = first >> 6
    if kind == 0:
        return first & 0x3F, position + 1
    if kind == 1:
        return ((first & 0x3F) << 8) | buffer[position + 1], position + 2
    if first == 0x80:
        return int.from_bytes(buffer[position + 1 : position + 5], "big"), position + 5
    raise IndexError


_Compact = tuple[int, bytes, int | None, int]
"""A record the fast path skipped: (value type, key, expiry in ms or None, value offset)."""


def _skip_compact_run(
    buffer: bytes, position: int, collect: list[_Compact] | None = None
) -> tuple[int, int, int]:
    """Skip consecutive ``[expiry] type key value`` records of string-like types that lie wholly
    in ``buffer``: (end, records, records with an expiry). Stops at anything else, leaving it to
    the careful path. One tight loop, because per-record calls dominate a walk of small keys.
    ``collect`` gets each record skipped (a key that is not a short raw string stops the run).
    """
    size = len(buffer)
    keys = with_ttl = 0
    fast_types = _FAST_TYPES
    string_end = _string_end
    while True:
        try:
            value_type = buffer[position]
            start = position
            expires = value_type == OP_EXPIRETIME_MS
            if expires:
                start += 9
                value_type = buffer[start]
            if value_type not in fast_types:
                break
            # The key: nearly always a short raw string, so check that case inline.
            first = buffer[start + 1]
            if collect is not None and first >= 64:
                break
            end = start + 2 + first if first < 64 else string_end(buffer, start + 1)
            value_at = end
            first = buffer[end]
            if first < 64:
                end += 1 + first
            elif first == 0xC3 and buffer[end + 1] < 64:  # LZF, short compressed size
                compressed = buffer[end + 1]
                _, end = _length_at(buffer, end + 2)  # the uncompressed size
                end += compressed
            else:
                end = string_end(buffer, end)
        except IndexError:
            break
        if end > size:
            break
        if collect is not None:
            expiry = (
                int.from_bytes(buffer[position + 1 : position + 9], "little") if expires else None
            )
            collect.append((value_type, buffer[start + 2 : value_at], expiry, value_at))
        position = end
        keys += 1
        with_ttl += expires
    return position, keys, with_ttl


def _string_at(buffer: bytes, position: int) -> bytes:
    """The string encoded at ``position`` (raw, an integer or LZF), whole in ``buffer``."""
    first = buffer[position]
    kind = first >> 6
    if kind != 3:
        size, begin = _length_at(buffer, position)
        return buffer[begin : begin + size]
    encoding = first & 0x3F
    if encoding == _ENC_INT8:
        return str(struct.unpack_from("<b", buffer, position + 1)[0]).encode()
    if encoding == _ENC_INT16:
        return str(struct.unpack_from("<h", buffer, position + 1)[0]).encode()
    if encoding == _ENC_INT32:
        return str(struct.unpack_from("<i", buffer, position + 1)[0]).encode()
    compressed, begin = _length_at(buffer, position + 1)
    expected, begin = _length_at(buffer, begin)
    return lzf_decompress(buffer[begin : begin + compressed], expected)


def lzf_decompress(data: bytes, expected: int) -> bytes:
    """LZF (liblzf) decompression, for the occasional compressed AUX value."""
    out = bytearray()
    position = 0
    while position < len(data):
        control = data[position]
        position += 1
        if control < 32:  # a literal run of control + 1 bytes
            out += data[position : position + control + 1]
            position += control + 1
            continue
        length = control >> 5
        if length == 7:
            length += data[position]
            position += 1
        reference = len(out) - ((control & 0x1F) << 8) - data[position] - 1
        position += 1
        if reference < 0:
            raise RdbFormatError("corrupt LZF data: a back reference points before the start")
        for _ in range(length + 2):
            out.append(out[reference])
            reference += 1
    if len(out) != expected:
        raise RdbFormatError(f"corrupt LZF data: {len(out)} bytes out, {expected} expected")
    return bytes(out)


def read_rdb(
    chunks: Iterable[bytes], *, allow_trailing: bool = False, content: bool = False
) -> RdbSummary:
    """Walk a whole RDB from its chunks; raises RdbFormatError if it is truncated or malformed.
    ``content``: take the content fingerprint too (each key read, not skipped)."""
    reader = _Reader(chunks)
    summary = _Walker(reader, content).walk()
    trailing = reader.drain()
    if trailing and not allow_trailing:
        raise RdbFormatError(f"{trailing} bytes follow the RDB's EOF marker and checksum")
    return summary


def read_rdb_header(chunks: Iterable[bytes]) -> tuple[int, dict[str, str]]:
    """The version and the AUX fields that precede the first database: a cheap freshness check."""
    walker = _Walker(_Reader(chunks))
    magic = walker.r.read(9)
    if magic[:5] != MAGIC or not magic[5:].isdigit():
        raise RdbFormatError(f"not an RDB file: it starts with {magic!r}, not b'REDIS00nn'")
    aux: dict[str, str] = {}
    while walker.r.byte() == OP_AUX:
        key = walker.string().decode(errors="replace")
        aux[key] = walker.string().decode(errors="replace")
    return int(magic[5:]), aux


class RdbTap:
    """Walks an RDB on its own thread while the same chunks are uploaded by the caller.

    ``feed`` every chunk in order, then ``result()``. The queue is bounded, so a slow walk slows
    the upload rather than growing memory; a walk that fails keeps draining (the upload is not
    blocked) and ``result()`` raises its error.
    """

    def __init__(self, depth: int = 8, content: bool = False) -> None:
        self.content = content
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=depth)
        self._summary: RdbSummary | None = None
        self._error: BaseException | None = None
        self._finished = False
        self._thread = threading.Thread(target=self._run, name="rdb walk", daemon=True)
        self._thread.start()

    def feed(self, chunk: bytes) -> None:
        if chunk:
            self._queue.put(chunk)

    def observe(self, chunks: Iterable[bytes]) -> Iterator[bytes]:
        """Pass chunks through unchanged, feeding each to the walk; ends the input when done."""
        try:
            for chunk in chunks:
                self.feed(chunk)
                yield chunk
        finally:
            self.close()

    def close(self) -> None:
        """End of input (idempotent); a walk still expecting bytes reports a truncated RDB."""
        if not self._finished:
            self._finished = True
            self._queue.put(None)

    def result(self, timeout: float | None = None) -> RdbSummary:
        self.close()
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise TimeoutError("the RDB walk did not finish")
        if self._error is not None:
            raise self._error
        assert self._summary is not None
        return self._summary

    def _chunks(self) -> Iterator[bytes]:
        while (chunk := self._queue.get()) is not None:
            yield chunk

    def _run(self) -> None:
        chunks = self._chunks()
        try:
            self._summary = read_rdb(chunks, content=self.content)
        except BaseException as error:
            self._error = error
            for _ in chunks:  # keep the producer unblocked until it says the input ended
                pass


def file_chunks(path: Path, chunk_size: int = CHUNK) -> Iterator[bytes]:
    with path.open("rb") as source:
        while chunk := source.read(chunk_size):
            yield chunk


def read_rdb_file(path: Path) -> RdbSummary:
    return read_rdb(file_chunks(path))
