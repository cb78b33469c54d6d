"""The framed record format of Kafka backups: one object per topic-partition, every record whole.

``kafka-console-consumer`` keeps only values; a restore needs the key (it picks the partition and
drives compaction), the headers (tracing, schema ids, idempotency keys), the timestamp and its type
(retention, windowing, time-range restores), the partition and the offset (resume, audit). This
format keeps all of them, checks every frame, and makes a cut-short object fail loudly.

Layout (all integers big-endian)::

    file    = magic "DRKF" | version u8 (=1) | header frame | record frame* | trailer frame
    frame   = length u32 | type u8 | body (length - 1 bytes) | crc u32
              crc = CRC-32 (zlib) of the length, type and body bytes
    header  (type 0x48 'H') body: UTF-8 JSON object
              {"topic": str, "partition": int, "start_offset": int, "end_offset": int}
              start_offset: the first offset asked for; end_offset: the exclusive end (the high
              watermark recorded as the backup's consistent point)
    record  (type 0x52 'R') body:
              partition i32 | offset i64 | timestamp_type u8 | timestamp i64 (ms since epoch)
              | key bytes? | value bytes? | header count u32 | (name str | value bytes?)*
              bytes? = length i32 (-1 for None) | bytes;  str = length u32 | UTF-8 bytes
              timestamp_type: 0 not available, 1 CreateTime, 2 LogAppendTime (librdkafka's codes)
    trailer (type 0x54 'T') body:
              records u64 | first offset i64 | last offset i64 (both -1 when there are none)

What a reader checks, so that every corruption or truncation is an error rather than fewer
records: the magic and version; each frame's CRC (a flipped bit anywhere in a frame, its length
included, fails it); the header comes first and once; every record is of the header's partition,
inside ``[start_offset, end_offset)``, at a strictly higher offset than the one before (so a frame
repeated or moved fails); the trailer's count and first and last offsets equal what was read
(so a frame dropped whole fails); a trailer is present and nothing follows it (so a stream cut at
a frame boundary fails). The object as a whole also has its SHA-256 in the backup's manifest.

Why per partition: Kafka orders records only within a partition, and a restore writes each one
back to the same partition number, so a partition is the unit a restore reads, resumes and
verifies. A restore of one partition reads one object, a time-range restore skips objects whose
timestamp range (kept in the manifest) misses the range, and an incremental backup of a quiet
partition writes nothing. Headers are an ordered list of (name, value) with duplicate names and
``None`` values allowed, as Kafka has them.

Memory: a frame holds one record, so the largest thing in memory is one record (bounded by the
broker's ``message.max.bytes``) plus the chunk being assembled. A frame longer than ``MAX_FRAME``
is refused by the writer and treated as corruption by the reader, which also caps what a damaged
length field can make a reader buffer before its checksum fails.

The object is then zstd-compressed by the backup engine; the fixed-width integers here cost
little after compression and keep the codec simple and fast in Python.

The specification for readers without drkit is ``drkit/kafka_format/KAFKA_FORMAT.md``, with a
standard-library reader, ``read_drkf.py``, beside it; the Kafka backup stores both in the vault
(``<data class>/<store>/format/drkf-v1/``). A change here is a new ``VERSION``, a new spec and a
new reader, never an edit of v1's.
"""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

MAGIC = b"DRKF"
VERSION = 1
PREAMBLE = MAGIC + bytes([VERSION])

HEADER_FRAME = ord("H")
RECORD_FRAME = ord("R")
TRAILER_FRAME = ord("T")

TIMESTAMP_NOT_AVAILABLE = 0
TIMESTAMP_CREATE_TIME = 1
TIMESTAMP_LOG_APPEND_TIME = 2
TIMESTAMP_TYPES = (TIMESTAMP_NOT_AVAILABLE, TIMESTAMP_CREATE_TIME, TIMESTAMP_LOG_APPEND_TIME)

MAX_FRAME = 128 * 1024 * 1024
"""A length beyond this is corruption, not a record (Kafka's ``message.max.bytes`` defaults to
about 1 MiB). It also caps what a corrupt length can make a reader buffer before it fails."""

CHUNK_TARGET = 256 * 1024
"""Frames are handed on in chunks of about this size: few calls, little memory."""

_LENGTH = struct.Struct(">I")
_CRC = struct.Struct(">I")
_RECORD_FIXED = struct.Struct(">iqBq")
_I32 = struct.Struct(">i")
_U32 = struct.Struct(">I")
_TRAILER = struct.Struct(">Qqq")

Header = tuple[str, bytes | None]


class FrameError(ValueError):
    """The bytes are not a whole, intact framed object; the message says what and where."""


@dataclass(frozen=True)
class Record:
    """One Kafka record as the broker returned it."""

    partition: int
    offset: int
    timestamp: int
    timestamp_type: int = TIMESTAMP_CREATE_TIME
    key: bytes | None = None
    value: bytes | None = None
    headers: tuple[Header, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class ObjectHeader:
    topic: str
    partition: int
    start_offset: int
    end_offset: int


@dataclass(frozen=True)
class Trailer:
    records: int
    first_offset: int
    last_offset: int


# --- writing -----------------------------------------------------------------------------------


def _frame(kind: int, body: bytes) -> bytes:
    if len(body) + 1 > MAX_FRAME:
        raise ValueError(f"a frame of {len(body) + 1} bytes exceeds the format's {MAX_FRAME}")
    head = _LENGTH.pack(len(body) + 1) + bytes([kind])
    crc = zlib.crc32(body, zlib.crc32(head))
    return head + body + _CRC.pack(crc)


def _optional_bytes(value: bytes | None) -> bytes:
    if value is None:
        return _I32.pack(-1)
    return _I32.pack(len(value)) + value


def encode_record(record: Record) -> bytes:
    """The record frame of one record (its CRC included)."""
    if record.timestamp_type not in TIMESTAMP_TYPES:
        raise ValueError(
            f"record at offset {record.offset}: timestamp type {record.timestamp_type} is not one "
            f"of {TIMESTAMP_TYPES}"
        )
    parts = [
        _RECORD_FIXED.pack(
            record.partition, record.offset, record.timestamp_type, record.timestamp
        ),
        _optional_bytes(record.key),
        _optional_bytes(record.value),
        _U32.pack(len(record.headers)),
    ]
    for name, value in record.headers:
        encoded = name.encode()
        parts += [_U32.pack(len(encoded)), encoded, _optional_bytes(value)]
    return _frame(RECORD_FRAME, b"".join(parts))


class FrameWriter:
    """Frames one partition's records, checking what a reader will check, and counts them."""

    def __init__(self, header: ObjectHeader) -> None:
        if header.start_offset > header.end_offset:
            raise ValueError(
                f"{header.topic}/{header.partition}: start offset {header.start_offset} is past "
                f"the end offset {header.end_offset}"
            )
        self.header = header
        self.records = 0
        self.first_offset = -1
        self.last_offset = -1
        self.min_timestamp: int | None = None
        self.max_timestamp: int | None = None

    def start(self) -> bytes:
        """The magic, the version and the header frame."""
        body = json.dumps(
            {
                "topic": self.header.topic,
                "partition": self.header.partition,
                "start_offset": self.header.start_offset,
                "end_offset": self.header.end_offset,
            },
            separators=(",", ":"),
        ).encode()
        return PREAMBLE + _frame(HEADER_FRAME, body)

    def record(self, record: Record) -> bytes:
        header = self.header
        where = f"{header.topic}/{header.partition} offset {record.offset}"
        if record.partition != header.partition:
            raise ValueError(f"{where}: record of partition {record.partition} in this object")
        if not header.start_offset <= record.offset < header.end_offset:
            raise ValueError(
                f"{where}: outside [{header.start_offset}, {header.end_offset}) of this object"
            )
        if record.offset <= self.last_offset:
            raise ValueError(f"{where}: not after the previous offset {self.last_offset}")
        frame = encode_record(record)
        self.records += 1
        if self.first_offset < 0:
            self.first_offset = record.offset
        self.last_offset = record.offset
        if record.timestamp >= 0:
            low, high = self.min_timestamp, self.max_timestamp
            self.min_timestamp = record.timestamp if low is None else min(low, record.timestamp)
            self.max_timestamp = record.timestamp if high is None else max(high, record.timestamp)
        return frame

    def finish(self) -> bytes:
        """The trailer frame: what makes a cut-short object detectable."""
        return _frame(
            TRAILER_FRAME, _TRAILER.pack(self.records, self.first_offset, self.last_offset)
        )

    @property
    def trailer(self) -> Trailer:
        return Trailer(self.records, self.first_offset, self.last_offset)


def encode(
    writer: FrameWriter, records: Iterable[Record], chunk_target: int = CHUNK_TARGET
) -> Iterator[bytes]:
    """The whole object as a stream of chunks of about ``chunk_target`` bytes."""
    buffer = bytearray(writer.start())
    for record in records:
        buffer += writer.record(record)
        if len(buffer) >= chunk_target:
            yield bytes(buffer)
            buffer.clear()
    buffer += writer.finish()
    yield bytes(buffer)


# --- reading -----------------------------------------------------------------------------------


class _Cursor:
    """Parses the small fixed frames (the trailer); any overrun is a FrameError."""

    def __init__(self, body: bytes, where: str) -> None:
        self.body = body
        self.position = 0
        self.where = where

    def unpack(self, layout: struct.Struct) -> tuple[int, ...]:
        if self.position + layout.size > len(self.body):
            raise FrameError(f"{self.where}: frame body too short for its fields")
        values = layout.unpack_from(self.body, self.position)
        self.position += layout.size
        return values

    def done(self) -> None:
        if self.position != len(self.body):
            raise FrameError(f"{self.where}: {len(self.body) - self.position} stray bytes")


def _optional_at(body: bytes, position: int) -> tuple[bytes | None, int]:
    """The length-prefixed (``-1`` for None) bytes at ``position``, and the position after."""
    (length,) = _I32.unpack_from(body, position)
    position += 4
    if length == -1:
        return None, position
    end = position + length
    if length < 0 or end > len(body):
        raise struct.error(f"length {length} at {position - 4} overruns the frame")
    return body[position:end], end


def decode_record(body: bytes, where: str = "record") -> Record:
    """Parse a record frame's body. Written flat, with ``unpack_from``: a restore parses every
    record twice (verify, then produce), so this is the format's hot path.

    The CRC has passed by the time this runs, so a malformed body means a bug or a forged frame;
    it is still an error, never a read past the body.
    """
    try:
        partition, offset, timestamp_type, timestamp = _RECORD_FIXED.unpack_from(body, 0)
        key, position = _optional_at(body, _RECORD_FIXED.size)
        value, position = _optional_at(body, position)
        (count,) = _U32.unpack_from(body, position)
        position += 4
        headers = []
        for _ in range(count):
            (length,) = _U32.unpack_from(body, position)
            position += 4
            end = position + length
            if end > len(body):
                raise struct.error(f"header name length {length} overruns the frame")
            name = body[position:end].decode()
            header_value, position = _optional_at(body, end)
            headers.append((name, header_value))
    except struct.error as error:
        raise FrameError(f"{where}: frame body too short for its fields ({error})") from error
    except UnicodeDecodeError as error:
        raise FrameError(f"{where}: header name is not UTF-8: {error}") from error
    if position != len(body):
        raise FrameError(f"{where}: {len(body) - position} stray bytes")
    if timestamp_type not in TIMESTAMP_TYPES:
        raise FrameError(f"{where}: unknown timestamp type {timestamp_type}")
    return Record(partition, offset, timestamp, timestamp_type, key, value, tuple(headers))


class FrameReader:
    """Reads a framed object from a stream of chunks, checking everything the module doc lists.

    ``header`` is available once the first frames are read (``read_header`` forces it); iterating
    yields the records; ``trailer`` is set once iteration has finished without error. Any damage
    raises FrameError naming ``source`` and the byte position.
    """

    def __init__(self, chunks: Iterable[bytes], source: str = "kafka object") -> None:
        self._chunks = iter(chunks)
        self._buffer = bytearray()
        self._offset = 0  # of the first unread byte in the buffer
        self._position = 0  # of the first unread byte in the stream
        self._source = source
        self._header: ObjectHeader | None = None
        self.trailer: Trailer | None = None

    @property
    def header(self) -> ObjectHeader:
        return self.read_header()

    def read_header(self) -> ObjectHeader:
        if self._header is None:
            preamble = self._read_exactly(len(PREAMBLE), "the magic and version")
            if preamble[: len(MAGIC)] != MAGIC:
                raise FrameError(f"{self._source}: not a framed Kafka object (magic {preamble!r})")
            if preamble[len(MAGIC)] != VERSION:
                raise FrameError(
                    f"{self._source}: format version {preamble[len(MAGIC)]}, this reader knows "
                    f"{VERSION}"
                )
            kind, body, at = self._read_frame()
            if kind != HEADER_FRAME:
                raise FrameError(f"{self._source} at byte {at}: first frame is not the header")
            self._header = self._parse_header(body, at)
        return self._header

    def __iter__(self) -> Iterator[Record]:
        header = self.read_header()
        count, first, last = 0, -1, -1
        while True:
            kind, body, at = self._read_frame()
            where = f"{self._source} at byte {at}"
            if kind == RECORD_FRAME:
                record = decode_record(body, where)
                if record.partition != header.partition:
                    raise FrameError(
                        f"{where}: record of partition {record.partition} in the object of "
                        f"partition {header.partition}"
                    )
                if not header.start_offset <= record.offset < header.end_offset:
                    raise FrameError(
                        f"{where}: offset {record.offset} outside "
                        f"[{header.start_offset}, {header.end_offset})"
                    )
                if record.offset <= last:
                    raise FrameError(
                        f"{where}: offset {record.offset} does not follow offset {last}"
                    )
                count += 1
                first = record.offset if first < 0 else first
                last = record.offset
                yield record
            elif kind == TRAILER_FRAME:
                cursor = _Cursor(body, where)
                trailer = Trailer(*cursor.unpack(_TRAILER))
                cursor.done()
                if trailer != Trailer(count, first, last):
                    raise FrameError(
                        f"{where}: the trailer says {trailer.records} records "
                        f"({trailer.first_offset}..{trailer.last_offset}), read {count} "
                        f"({first}..{last}): records are missing"
                    )
                if self._more():
                    raise FrameError(f"{self._source}: bytes after the trailer")
                self.trailer = trailer
                return
            else:
                raise FrameError(f"{where}: unexpected frame type {kind:#04x}")

    def _parse_header(self, body: bytes, at: int) -> ObjectHeader:
        try:
            fields = json.loads(body)
            header = ObjectHeader(
                topic=str(fields["topic"]),
                partition=int(fields["partition"]),
                start_offset=int(fields["start_offset"]),
                end_offset=int(fields["end_offset"]),
            )
        except (ValueError, KeyError, TypeError) as error:
            raise FrameError(f"{self._source} at byte {at}: unreadable header: {error}") from error
        return header

    def _more(self) -> bool:
        """True when the stream has any byte left."""
        return self._available() > 0 or self._fill(1)

    def _available(self) -> int:
        return len(self._buffer) - self._offset

    def _fill(self, size: int) -> bool:
        """Buffer at least ``size`` unread bytes; False when the stream ends first."""
        while self._available() < size:
            chunk = next(self._chunks, None)
            if chunk is None:
                return False
            if self._offset:  # drop what has been read before growing the buffer
                del self._buffer[: self._offset]
                self._offset = 0
            self._buffer += chunk
        return True

    def _read_exactly(self, size: int, what: str) -> bytes:
        self._need(size, what)
        start = self._offset
        self._offset += size
        self._position += size
        return bytes(self._buffer[start : start + size])

    def _need(self, size: int, what: str) -> None:
        if not self._fill(size):
            raise FrameError(
                f"{self._source}: truncated at byte {self._position + self._available()} "
                f"while reading {what}"
            )

    def _read_frame(self) -> tuple[int, bytes, int]:
        at = self._position
        self._need(_LENGTH.size, "a frame length")
        (length,) = _LENGTH.unpack_from(self._buffer, self._offset)
        if not 1 <= length <= MAX_FRAME:
            raise FrameError(f"{self._source} at byte {at}: impossible frame length {length}")
        size = _LENGTH.size + length + _CRC.size
        self._need(size, "a frame")
        start, covered = self._offset, self._offset + _LENGTH.size + length
        (expected,) = _CRC.unpack_from(self._buffer, covered)
        with memoryview(self._buffer) as view:
            actual = zlib.crc32(view[start:covered])
        if actual != expected:
            raise FrameError(
                f"{self._source} at byte {at}: frame checksum {actual:#010x}, "
                f"stored {expected:#010x}: the frame is corrupt"
            )
        kind = self._buffer[start + _LENGTH.size]
        body = bytes(self._buffer[start + _LENGTH.size + 1 : covered])
        self._offset += size
        self._position += size
        return kind, body, at


def read_records(chunks: Iterable[bytes], source: str = "kafka object") -> Iterator[Record]:
    """Every record of a framed object, checked; raises FrameError on any damage."""
    yield from FrameReader(chunks, source)
