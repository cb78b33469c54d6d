"""The framed Kafka record format: every field survives, and every damage is an error."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable

import pytest

from drkit.kafka_frames import (
    MAX_FRAME,
    RECORD_FRAME,
    TIMESTAMP_CREATE_TIME,
    TIMESTAMP_LOG_APPEND_TIME,
    TIMESTAMP_NOT_AVAILABLE,
    FrameError,
    FrameReader,
    FrameWriter,
    ObjectHeader,
    Record,
    Trailer,
    encode,
    encode_record,
    read_records,
)

pytestmark = pytest.mark.unit

HEADER = ObjectHeader(topic="strategy-signals", partition=2, start_offset=100, end_offset=10_000)
TS = 1_767_225_600_123

EDGE_CASES = [
    Record(2, 100, TS, TIMESTAMP_CREATE_TIME, key=None, value=b"no key"),
    Record(2, 101, TS + 1, TIMESTAMP_CREATE_TIME, key=b"", value=b"empty key, not None"),
    Record(2, 102, TS + 2, TIMESTAMP_CREATE_TIME, key=b"order-42", value=None),  # tombstone
    Record(2, 103, TS + 3, TIMESTAMP_CREATE_TIME, key=b"", value=b""),
    Record(2, 105, TS, TIMESTAMP_LOG_APPEND_TIME, key=bytes(range(256)), value=bytes(range(256))),
    Record(2, 106, -1, TIMESTAMP_NOT_AVAILABLE, key=b"\x00", value=b"\xff\x00\xfe"),
    Record(
        2,
        107,
        TS,
        TIMESTAMP_CREATE_TIME,
        key=b"k",
        value=b"v",
        headers=(
            ("trace-id", b"abc"),
            ("trace-id", b"abc"),  # duplicate name and value, kept twice, in order
            ("trace-id", b"def"),
            ("empty", b""),
            ("null", None),
            ("名前-ñ-🚀", "値".encode()),
            ("", b"nameless"),
        ),
    ),
    Record(
        2,
        108,
        TS,
        key=b"many",
        value=b"headers",
        headers=tuple((f"h{i % 7}", None if i % 5 == 0 else str(i).encode()) for i in range(2000)),
    ),
    Record(2, 9_999, TS, key=b"big", value=bytes(range(256)) * (6 * 4096)),  # 6 MiB, last offset
]


def encoded(records: Iterable[Record], header: ObjectHeader = HEADER) -> bytes:
    return b"".join(encode(FrameWriter(header), records))


def test_round_trip_keeps_every_field_of_every_edge_case() -> None:
    data = encoded(EDGE_CASES)
    reader = FrameReader([data])
    assert reader.header == HEADER
    assert list(reader) == EDGE_CASES
    assert reader.trailer == Trailer(len(EDGE_CASES), 100, 9_999)


def test_none_and_empty_stay_distinct() -> None:
    records = list(read_records([encoded(EDGE_CASES[:4])]))
    assert records[0].key is None and records[1].key == b""
    assert records[2].value is None and records[3].value == b""


def test_reading_byte_by_byte_gives_the_same_records() -> None:
    data = encoded(EDGE_CASES[:8])
    assert list(read_records(data[i : i + 1] for i in range(len(data)))) == EDGE_CASES[:8]


def test_an_empty_partition_is_a_header_and_a_trailer() -> None:
    reader = FrameReader([encoded([])])
    assert list(reader) == []
    assert reader.trailer == Trailer(0, -1, -1)


def test_encoder_streams_in_bounded_chunks() -> None:
    small = [Record(2, 100 + i, TS, key=b"k", value=b"x" * 1000) for i in range(2000)]
    chunks = list(encode(FrameWriter(HEADER), small, chunk_target=64 * 1024))
    assert len(chunks) > 20
    assert max(len(chunk) for chunk in chunks) < 64 * 1024 + 2000
    assert list(read_records(chunks)) == small


def test_every_flipped_byte_is_detected() -> None:
    data = encoded(EDGE_CASES[:7])
    for position in range(len(data)):
        damaged = bytearray(data)
        damaged[position] ^= 0x5A
        with pytest.raises(FrameError):
            list(read_records([bytes(damaged)]))


def test_a_single_flipped_bit_in_a_big_value_is_detected() -> None:
    data = bytearray(encoded(EDGE_CASES))
    data[len(data) // 2] ^= 0x01
    with pytest.raises(FrameError, match="checksum"):
        list(read_records([bytes(data)]))


def test_every_truncation_is_detected() -> None:
    data = encoded(EDGE_CASES[:7])
    for length in range(len(data)):
        with pytest.raises(FrameError):
            list(read_records([data[:length]]))


def test_a_dropped_whole_frame_is_detected() -> None:
    writer = FrameWriter(HEADER)
    frames = [writer.start(), *(writer.record(r) for r in EDGE_CASES[:4]), writer.finish()]
    without_one = b"".join(frames[:2] + frames[3:])
    with pytest.raises(FrameError, match="records are missing"):
        list(read_records([without_one]))


def test_a_repeated_frame_is_detected() -> None:
    writer = FrameWriter(HEADER)
    frames = [writer.start(), *(writer.record(r) for r in EDGE_CASES[:3]), writer.finish()]
    repeated = b"".join([*frames[:3], frames[2], *frames[3:]])
    with pytest.raises(FrameError, match="does not follow"):
        list(read_records([repeated]))


def test_bytes_after_the_trailer_are_detected() -> None:
    with pytest.raises(FrameError, match="after the trailer"):
        list(read_records([encoded(EDGE_CASES[:2]) + b"\x00"]))


def test_a_frame_from_another_partition_is_detected() -> None:
    other = encode_record(Record(1, 104, TS, key=b"k", value=b"v"))
    writer = FrameWriter(HEADER)
    data = writer.start() + writer.record(EDGE_CASES[0]) + other + writer.finish()
    with pytest.raises(FrameError, match="partition 1"):
        list(read_records([data]))


def test_wrong_magic_and_unknown_version_are_named() -> None:
    data = encoded([])
    with pytest.raises(FrameError, match="not a framed Kafka object"):
        list(read_records([b"PK\x03\x04" + data[4:]]))
    with pytest.raises(FrameError, match="format version 9"):
        list(read_records([data[:4] + b"\x09" + data[5:]]))


def test_an_impossible_length_fails_without_buffering_the_rest() -> None:
    data = bytearray(encoded(EDGE_CASES[:2]))
    first_record = len(FrameWriter(HEADER).start())
    data[first_record : first_record + 4] = struct.pack(">I", MAX_FRAME + 1)
    with pytest.raises(FrameError, match="impossible frame length"):
        list(read_records([bytes(data)]))


def test_a_valid_crc_over_a_malformed_body_is_still_an_error() -> None:
    body = b"\x00" * 5  # too short for a record's fixed fields
    head = struct.pack(">I", len(body) + 1) + bytes([RECORD_FRAME])
    forged = head + body + struct.pack(">I", zlib.crc32(body, zlib.crc32(head)))
    writer = FrameWriter(HEADER)
    with pytest.raises(FrameError, match="too short"):
        list(read_records([writer.start() + forged + writer.finish()]))


def test_writer_refuses_what_the_reader_would_reject() -> None:
    writer = FrameWriter(HEADER)
    writer.record(EDGE_CASES[1])
    with pytest.raises(ValueError, match="not after the previous offset 101"):
        writer.record(EDGE_CASES[0])
    with pytest.raises(ValueError, match="record of partition 1"):
        writer.record(Record(1, 200, TS))
    with pytest.raises(ValueError, match=r"outside \[100, 10000\)"):
        writer.record(Record(2, 10_000, TS))
    with pytest.raises(ValueError, match="timestamp type 7"):
        encode_record(Record(2, 300, TS, timestamp_type=7))


def test_writer_tracks_the_timestamp_range_for_the_manifest() -> None:
    writer = FrameWriter(HEADER)
    for record in EDGE_CASES:
        writer.record(record)
    assert (writer.min_timestamp, writer.max_timestamp) == (TS, TS + 3)
    assert writer.trailer == Trailer(len(EDGE_CASES), 100, 9_999)
