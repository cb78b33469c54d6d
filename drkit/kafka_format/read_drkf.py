#!/usr/bin/env python3
"""Read drkit's Kafka backup objects (framed format "DRKF" version 1) without drkit.

Standalone on purpose: Python 3.9 or newer and its standard library, nothing else. The format is
specified in KAFKA_FORMAT.md, stored beside this file in the vault. Objects in the vault are
zstd-compressed (``topics/<topic>/<partition>.kfr.zst``); this reader decompresses them with
Python's own ``compression.zstd`` (3.14 and newer) or else the ``zstd`` command-line tool
(Debian/Ubuntu ``apt install zstd``, macOS ``brew install zstd``). An uncompressed ``.kfr`` is
read as it is.

    python3 read_drkf.py OBJECT [OBJECT ...]        one JSON line per record
    python3 read_drkf.py --check OBJECT [...]       verify only, print the record counts

OBJECT is a file (downloaded from the vault, e.g. ``aws s3 cp s3://VAULT/KEY .``) or ``-`` for
standard input. Each JSON line holds topic, partition, offset, timestamp (milliseconds since the
epoch), timestamp_type (0 none, 1 CreateTime, 2 LogAppendTime), key, value and headers (a list of
[name, value]); bytes are base64, absent ones null. Every frame's CRC-32, the offsets and the
trailer are checked: a damaged or cut-short object exits 1 naming the object and the place.
Memory holds one record at a time.
"""

from __future__ import annotations

import base64
import contextlib
import json
import shutil
import struct
import subprocess
import sys
import threading
import zlib
from collections.abc import Callable, Iterator
from typing import IO, Any

MAGIC = b"DRKF"
VERSION = 1
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
MAX_FRAME = 128 * 1024 * 1024
HEADER, RECORD, TRAILER = ord("H"), ord("R"), ord("T")
TIMESTAMP_TYPES = (0, 1, 2)
CHUNK = 1024 * 1024


class Corrupt(Exception):
    """The object is not a whole, intact DRKF object."""


class Unreadable(Exception):
    """The object cannot be opened or decompressed here (the message says what to install)."""


class Stream:
    """Exact reads from a binary file, with bytes already read put back in front."""

    def __init__(self, raw: Any, head: bytes = b"") -> None:
        self.raw = raw
        self.head = head

    def read(self, size: int = -1) -> bytes:
        if size < 0:
            return self.head + bytes(self.raw.read())
        out = self.head[:size]
        self.head = self.head[size:]
        while len(out) < size:
            more = self.raw.read(min(CHUNK, size - len(out)))
            if not more:
                break
            out += more
        return out


def open_object(path: str) -> tuple[Stream, Callable[[], None]]:
    """A Stream of the object's uncompressed bytes, and a closer."""
    raw = sys.stdin.buffer if path == "-" else open(path, "rb")  # noqa: SIM115
    head = raw.read(4)
    if head != ZSTD_MAGIC:
        return Stream(raw, head), raw.close
    try:
        from compression import zstd  # type: ignore[import-not-found]  # Python 3.14+

        reader = zstd.ZstdFile(Stream(raw, head))
        return Stream(reader), reader.close
    except ImportError:
        pass
    tool = shutil.which("zstd")
    if tool is None:
        raise Unreadable(
            f"{path} is zstd-compressed and neither Python's compression.zstd (3.14+) nor the "
            "zstd tool is here: install zstd (apt install zstd, brew install zstd)"
        )
    process = subprocess.Popen([tool, "-dcq"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert process.stdin is not None and process.stdout is not None
    feeder = threading.Thread(target=_feed, args=(Stream(raw, head), process.stdin), daemon=True)
    feeder.start()
    output = process.stdout

    def close() -> None:
        output.close()
        feeder.join()
        raw.close()
        if process.wait() != 0:
            raise Corrupt(f"{path}: zstd could not decompress it (exit {process.returncode})")

    return Stream(output), close


def _feed(source: Stream, sink: IO[bytes]) -> None:
    """Copy the compressed bytes into zstd's standard input (a thread: both pipes stay bounded)."""
    try:
        while chunk := source.read(CHUNK):
            sink.write(chunk)
    except BrokenPipeError:
        pass
    finally:
        with contextlib.suppress(BrokenPipeError):
            sink.close()


def frames(stream: Stream, where: str) -> Iterator[tuple[int, bytes, int]]:
    """(type, body, byte offset) of each frame, its length and CRC checked."""
    position = len(MAGIC) + 1
    while True:
        prefix = stream.read(4)
        if not prefix:
            return
        if len(prefix) < 4:
            raise Corrupt(f"{where}: cut short inside a frame length at byte {position}")
        (length,) = struct.unpack(">I", prefix)
        if length < 1 or length > MAX_FRAME:
            raise Corrupt(f"{where}: frame length {length} at byte {position} is impossible")
        rest = stream.read(length + 4)
        if len(rest) < length + 4:
            raise Corrupt(f"{where}: cut short inside the frame at byte {position}")
        (crc,) = struct.unpack(">I", rest[length:])  # CRC-32 of length, type and body
        if zlib.crc32(prefix + rest[:length]) != crc:
            raise Corrupt(f"{where}: CRC mismatch in the frame at byte {position}")
        yield rest[0], rest[1:length], position
        position += 4 + length + 4


def optional_bytes(body: bytes, position: int) -> tuple[bytes | None, int]:
    (length,) = struct.unpack_from(">i", body, position)
    position += 4
    if length == -1:
        return None, position
    if length < 0 or position + length > len(body):
        raise struct.error(f"length {length} overruns the frame")
    return body[position : position + length], position + length


def decode_record(body: bytes, where: str) -> dict[str, Any]:
    try:
        partition, offset, timestamp_type, timestamp = struct.unpack_from(">iqBq", body, 0)
        key, position = optional_bytes(body, 21)
        value, position = optional_bytes(body, position)
        (count,) = struct.unpack_from(">I", body, position)
        position += 4
        headers: list[tuple[str, bytes | None]] = []
        for _ in range(count):
            (length,) = struct.unpack_from(">I", body, position)
            position += 4
            if position + length > len(body):
                raise struct.error("header name overruns the frame")
            name = body[position : position + length].decode("utf-8")
            header_value, position = optional_bytes(body, position + length)
            headers.append((name, header_value))
    except (struct.error, UnicodeDecodeError) as error:
        raise Corrupt(f"{where}: malformed record ({error})") from None
    if position != len(body):
        raise Corrupt(f"{where}: {len(body) - position} stray bytes in a record")
    if timestamp_type not in TIMESTAMP_TYPES:
        raise Corrupt(f"{where}: unknown timestamp type {timestamp_type}")
    return {
        "partition": partition,
        "offset": offset,
        "timestamp": timestamp,
        "timestamp_type": timestamp_type,
        "key": key,
        "value": value,
        "headers": headers,
    }


def read_object(stream: Stream, where: str) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """Yield (header, record) for every record; check the whole object while doing so."""
    preamble = stream.read(5)
    if preamble[:4] != MAGIC:
        raise Corrupt(f"{where}: not a DRKF object (magic {preamble[:4]!r})")
    if len(preamble) < 5 or preamble[4] != VERSION:
        raise Corrupt(f"{where}: format version {preamble[4:5].hex()}, this reader reads 1")
    header: dict[str, Any] | None = None
    count, first, last = 0, -1, -1
    trailer: tuple[int, ...] | None = None
    for kind, body, at in frames(stream, where):
        place = f"{where} (frame at byte {at})"
        if trailer is not None:
            raise Corrupt(f"{place}: data after the trailer")
        if header is None:
            if kind != HEADER:
                raise Corrupt(f"{place}: the first frame is not the header")
            header = json.loads(body.decode("utf-8"))
            for name in ("topic", "partition", "start_offset", "end_offset"):
                if name not in header:
                    raise Corrupt(f"{place}: header has no {name}")
        elif kind == RECORD:
            record = decode_record(body, place)
            offset = record["offset"]
            if record["partition"] != header["partition"]:
                raise Corrupt(f"{place}: record of partition {record['partition']}")
            if not header["start_offset"] <= offset < header["end_offset"]:
                raise Corrupt(f"{place}: offset {offset} outside the header's range")
            if offset <= last:
                raise Corrupt(f"{place}: offset {offset} not above the previous {last}")
            count, last = count + 1, offset
            first = offset if first == -1 else first
            yield header, record
        elif kind == TRAILER:
            if len(body) != 24:
                raise Corrupt(f"{place}: trailer of {len(body)} bytes, not 24")
            trailer = struct.unpack(">Qqq", body)
            if trailer != (count, first, last):
                raise Corrupt(f"{place}: trailer says {trailer}, read {(count, first, last)}")
        else:
            raise Corrupt(f"{place}: unknown frame type {kind!r}")
    if header is None:
        raise Corrupt(f"{where}: no header frame")
    if trailer is None:
        raise Corrupt(f"{where}: no trailer (the object was cut short)")


def as_json(header: dict[str, Any], record: dict[str, Any]) -> dict[str, Any]:
    def b64(data: bytes | None) -> str | None:
        return None if data is None else base64.b64encode(data).decode("ascii")

    return {
        "topic": header["topic"],
        "partition": record["partition"],
        "offset": record["offset"],
        "timestamp": record["timestamp"],
        "timestamp_type": record["timestamp_type"],
        "key": b64(record["key"]),
        "value": b64(record["value"]),
        "headers": [[name, b64(value)] for name, value in record["headers"]],
    }


def main(argv: list[str]) -> int:
    check = "--check" in argv
    paths = [a for a in argv if a != "--check"]
    if not paths or any(a.startswith("--") and a != "-" for a in paths):
        sys.stderr.write(__doc__)
        return 2
    out = sys.stdout
    for path in paths:
        try:
            stream, close = open_object(path)
        except OSError as error:
            sys.stderr.write(f"read_drkf: cannot open {path}: {error.strerror or error}\n")
            return 2
        except Unreadable as error:
            sys.stderr.write(f"read_drkf: {error}\n")
            return 2
        count = 0
        try:
            for header, record in read_object(stream, path):
                count += 1
                if not check:
                    out.write(json.dumps(as_json(header, record), separators=(",", ":")) + "\n")
            close()
        except Corrupt as error:
            sys.stderr.write(f"read_drkf: {error}\n")
            return 1
        if check:
            out.write(f"{path}: {count} records, intact\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
