"""The long-term Kafka format can be read without drkit (issue 20 item 8): a real backup of a real
broker stores the format's specification and ``read_drkf.py`` beside the data, once; that reader,
run as a separate isolated Python (``-I -S``: no site-packages, no project on the path), yields
exactly the records drkit's reader yields from the same objects, and refuses damaged ones."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from drkit.backup.engine import Destinations
from drkit.kafka_format import FILES, HERE, READER, SPECIFICATION, format_prefix, store_reader_once
from drkit.kafka_frames import FrameReader, Record
from drkit.local.kafka import LocalKafka
from drkit.restore.stream import raw_chunks
from drkit.storage.objectstore import read_all
from tests.integration.test_kafka_backup import backup, seed

pytestmark = pytest.mark.integration

PREFIX = format_prefix("trading-signals", "signals-bus")


def standalone(
    reader: Path, *arguments: str, stdin: bytes | None = None
) -> subprocess.CompletedProcess[bytes]:
    """The reader as an auditor runs it: isolated Python, only PATH (for the zstd tool) kept."""
    assert shutil.which("zstd"), "the zstd tool: scripts/bootstrap.sh installs Debian's zstd"
    return subprocess.run(
        [sys.executable, "-I", "-S", str(reader), *arguments],
        input=stdin,
        capture_output=True,
        check=False,
        timeout=120,
        env={"PATH": os.environ["PATH"]},
        cwd=reader.parent,
    )


def as_json(topic: str, record: Record) -> dict[str, Any]:
    def b64(data: bytes | None) -> str | None:
        return None if data is None else base64.b64encode(data).decode()

    return {
        "topic": topic,
        "partition": record.partition,
        "offset": record.offset,
        "timestamp": record.timestamp,
        "timestamp_type": record.timestamp_type,
        "key": b64(record.key),
        "value": b64(record.value),
        "headers": [[name, b64(value)] for name, value in record.headers],
    }


def test_the_standalone_reader_in_the_vault_reads_what_drkit_reads(
    kafka_broker: LocalKafka, destinations: Destinations, tmp_path: Path
) -> None:
    seeded = seed(kafka_broker, 240)
    manifest = backup(seeded.topic, kafka_broker, destinations)
    vault = destinations.vault

    # Stored once, beside the data, byte for byte the repository's copy.
    stored = sorted(info.key for info in vault.list_objects(PREFIX))
    assert stored == sorted(PREFIX + name for name in FILES)
    for name in FILES:
        assert vault.get_bytes(PREFIX + name) == (HERE / name).read_bytes()
    mirror = destinations.mirror  # a restore from the mirror alone has them too
    assert mirror is not None
    assert sorted(info.key for info in mirror.list_objects(PREFIX)) == stored
    for name in FILES:
        assert mirror.get_bytes(PREFIX + name) == (HERE / name).read_bytes()
    assert store_reader_once(vault, "trading-signals", "signals-bus") == []  # create-only, once
    backup(seeded.topic, kafka_broker, destinations, previous=manifest)
    assert sorted(info.key for info in vault.list_objects(PREFIX)) == stored

    # The auditor's copy: the reader and the spec from the vault, the objects from the vault.
    reader = tmp_path / READER
    reader.write_bytes(vault.get_bytes(PREFIX + READER))
    (tmp_path / SPECIFICATION).write_bytes(vault.get_bytes(PREFIX + SPECIFICATION))
    frames = [item for item in manifest.objects if item.name.endswith(".kfr")]
    assert len(frames) >= 2
    total = 0
    for item in frames:
        path = tmp_path / item.name.replace("/", "_")
        path.write_bytes(read_all(vault.open_stream(item.key)))
        drkit = FrameReader(raw_chunks(vault, item), item.key)
        topic = drkit.read_header().topic
        expected = [as_json(topic, record) for record in drkit]
        assert expected, item.key
        result = standalone(reader, str(path))
        assert result.returncode == 0, result.stderr.decode()
        got = [json.loads(line) for line in result.stdout.decode().splitlines()]
        assert got == expected
        total += len(got)
        # The same from standard input, and --check.
        piped = standalone(reader, "-", stdin=path.read_bytes())
        assert piped.returncode == 0 and piped.stdout == result.stdout
        checked = standalone(reader, "--check", str(path))
        assert checked.stdout.decode() == f"{path}: {len(got)} records, intact\n"
    assert total == 240
    assert sum(len(v) for v in seeded.originals.values()) == 240


def test_the_standalone_reader_refuses_damaged_objects(
    kafka_broker: LocalKafka, destinations: Destinations, tmp_path: Path
) -> None:
    seeded = seed(kafka_broker, 60)
    manifest = backup(seeded.topic, kafka_broker, destinations)
    reader = tmp_path / READER
    reader.write_bytes(destinations.vault.get_bytes(PREFIX + READER))
    item = next(i for i in manifest.objects if i.name.endswith(".kfr"))
    plain = b"".join(raw_chunks(destinations.vault, item))

    whole = tmp_path / "whole.kfr"
    whole.write_bytes(plain)
    assert standalone(reader, "--check", str(whole)).returncode == 0  # uncompressed reads too

    flipped = bytearray(plain)
    flipped[len(plain) // 2] ^= 0x01
    (tmp_path / "flipped.kfr").write_bytes(bytes(flipped))
    result = standalone(reader, str(tmp_path / "flipped.kfr"))
    assert result.returncode == 1
    assert b"CRC mismatch in the frame at byte" in result.stderr

    (tmp_path / "cut.kfr").write_bytes(plain[: len(plain) - 33])  # the trailer frame dropped
    result = standalone(reader, str(tmp_path / "cut.kfr"))
    assert result.returncode == 1
    assert b"no trailer (the object was cut short)" in result.stderr

    result = standalone(reader, str(tmp_path / "absent.kfr"))
    assert result.returncode == 2
    assert result.stderr.startswith(b"read_drkf: cannot open ")
