"""InfluxDB through the engine: an hour of points exported to Parquet in the vault and the mirror,
restored point for point (every tag, field and type) into another database; windows are exact,
and failures (a corrupted object, a server that dies mid-export) leave nothing half-done."""

from __future__ import annotations

import http.client
import io
import re
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.parquet as pq  # type: ignore[import-untyped]
import pytest

from drkit.backup.engine import BackupFailed, Destinations, Progress, run_backup
from drkit.backup.manifest import MANIFEST_NAME, Manifest
from drkit.backup.timeseries import PARQUET_CONTENT, TimeseriesHandler, TimeWindow
from drkit.influx import InfluxEndpoint, InfluxError, quote_ident
from drkit.local.influxdb import LocalInfluxDB
from drkit.restore.stream import IntegrityError
from drkit.restore.timeseries import TargetHasPoints, restore_timeseries
from drkit.seed.timeseries import point_line, seed_market_data, write_lines
from tests.integration.forgery import overwrite

pytestmark = pytest.mark.integration

STORE = "market-ticks"
DATA_CLASS = "historical-market-data"
HOUR = datetime(2026, 11, 20, 9, tzinfo=UTC)
WINDOW = TimeWindow(HOUR, HOUR + timedelta(hours=1))
NS = 1_000_000_000
EDGE = "edge cases, odd"


def backup(
    server: LocalInfluxDB,
    database: str,
    destinations: Destinations,
    *,
    window: TimeWindow | None = WINDOW,
    now: datetime | None = None,
    row_group_rows: int = 10_000,
    progress: Progress | None = None,
) -> Manifest:
    handler = TimeseriesHandler(
        server.endpoint(), database, window=window, row_group_rows=row_group_rows
    )
    if now is not None:
        handler.now = lambda: now
    return run_backup(STORE, DATA_CLASS, handler, destinations, progress)


def points(
    endpoint: InfluxEndpoint, database: str, measurement: str, window: TimeWindow
) -> list[tuple[Any, ...]]:
    """Every point of the window: (tags, columns, rows) per series, in InfluxDB's series order
    (by series key, then time), so two databases holding the same points compare equal."""
    statement = f"SELECT *::field FROM {quote_ident(measurement)} WHERE {window.where()} GROUP BY *"
    return [
        (sorted(series.tags.items()), series.columns, series.values)
        for series in endpoint.query(statement, database)
    ]


def exported_times(destinations: Destinations, manifest: Manifest) -> list[int]:
    ticks = next(o for o in manifest.objects if o.name == "ticks.parquet")
    table = pq.read_table(io.BytesIO(destinations.vault.get_bytes(ticks.key)), columns=["time"])
    return list(table.column(0).cast(pa.int64()).to_pylist())


def schema(endpoint: InfluxEndpoint, database: str, measurement: str) -> tuple[Any, ...]:
    return (
        endpoint.field_types(database, "autogen", measurement),
        endpoint.tag_keys(database, "autogen", measurement),
    )


def write_edge_cases(endpoint: InfluxEndpoint, database: str, at: int) -> None:
    """A measurement whose name, tags and strings need escaping, with a tag and a field both
    named ``kind``, the extreme integers, and points that lack most fields and some or all tags."""
    fields: dict[str, tuple[str, object]] = {
        "kind": ("string", "field-kind"),
        "big": ("integer", 2**63 - 1),
        "small": ("integer", -(2**63)),
        "tiny": ("float", 1e-300),
        "whole": ("float", 5.0),
        "text": ("string", 'line1\nline2 "quoted", back\\slash\\'),
        "unicode": ("string", "€ 株 ✓"),
        "flag": ("boolean", False),
    }
    write_lines(
        endpoint,
        database,
        [
            point_line(EDGE, {"symbol": "A B,C=D", "kind": "x"}, fields, at + 5),
            point_line(EDGE, {"symbol": "A B,C=D"}, {"whole": ("float", -0.5)}, at + 6),
            point_line(EDGE, {}, {"whole": ("float", 1.25)}, at + 7),  # a point without tags
        ],
    )


def test_round_trip_of_an_hour_keeps_every_point_tag_and_field_type(
    influxdb_server: LocalInfluxDB, destinations: Destinations
) -> None:
    endpoint = influxdb_server.endpoint()
    seeded = seed_market_data(endpoint, "market", WINDOW, points_per_second=1)
    write_edge_cases(endpoint, "market", WINDOW.start_ns)
    around = [
        TimeWindow(HOUR - timedelta(minutes=5), HOUR),
        TimeWindow(WINDOW.end, WINDOW.end + timedelta(minutes=5)),
    ]
    for outside in around:  # the neighbouring hours are not part of this backup
        seed_market_data(endpoint, "market", outside, points_per_second=1)
    seen: dict[str, int] = {}

    manifest = backup(
        influxdb_server,
        "market",
        destinations,
        row_group_rows=5_000,
        progress=lambda name, raw: seen.__setitem__(name, seen.get(name, 0) + 1),
    )

    assert seeded == {"ticks": 21_600, "signals": 2_160}
    assert manifest.counts == {"ticks": 21_600, "signals": 2_160, EDGE: 3}
    assert manifest.kind == "timeseries" and manifest.data_class == DATA_CLASS
    assert manifest.consistent_point == {
        "window_start": "2026-11-20T09:00:00+00:00",
        "window_end": "2026-11-20T10:00:00+00:00",
        "snapshot_time": "2026-11-20T10:00:00+00:00",
    }
    assert manifest.recovery_point == WINDOW.end
    assert manifest.source["retention_policy"] == "autogen"
    assert manifest.tool_versions["influxdb"].startswith("1.")
    assert {o.name for o in manifest.objects} == {
        "ticks.parquet",
        "signals.parquet",
        "edge%20cases%2C%20odd.parquet",
    }
    assert all(o.compression == "none" and o.content == PARQUET_CONTENT for o in manifest.objects)
    assert seen["ticks.parquet"] >= 5  # handed over row group by row group, not at the end

    ticks = next(o for o in manifest.objects if o.name == "ticks.parquet")
    parquet = pq.ParquetFile(io.BytesIO(destinations.vault.get_bytes(ticks.key)))
    assert parquet.metadata.num_rows == 21_600
    assert parquet.metadata.num_row_groups == 5  # 5 000 rows each, the last 1 600
    column = parquet.metadata.row_group(0).column(1)
    assert column.compression == "ZSTD"
    assert parquet.schema_arrow.field("time").type == pa.timestamp("ns", tz="UTC")
    assert parquet.schema_arrow.field("symbol").type == pa.dictionary(pa.int32(), pa.string())
    assert [parquet.schema_arrow.field(f).type for f in ("ask", "bid", "halted", "volume")] == [
        pa.float64(),
        pa.float64(),
        pa.bool_(),
        pa.int64(),
    ]
    times = parquet.read(columns=["time"]).column(0).cast(pa.int64()).to_pylist()
    assert times == sorted(times) and WINDOW.start_ns <= times[0] and times[-1] < WINDOW.end_ns

    # Restored from the vault here; the mirror's copy restores in the tests below.
    result = restore_timeseries([manifest], destinations.vault, endpoint, "market_back")
    assert result.counts == result.written == manifest.counts
    around_too = TimeWindow(HOUR - timedelta(days=1), HOUR + timedelta(days=1))
    for measurement in manifest.counts:
        assert schema(endpoint, "market_back", measurement) == schema(
            endpoint, "market", measurement
        )
        # Nothing from the neighbouring hours was exported, and nothing in the hour was lost.
        assert points(endpoint, "market_back", measurement, around_too) == points(
            endpoint, "market", measurement, WINDOW
        )


def test_hourly_windows_are_exact_at_the_boundaries(
    influxdb_server: LocalInfluxDB, destinations: Destinations
) -> None:
    endpoint = influxdb_server.endpoint()
    influxdb_server.create_database("boundaries")
    hour = 3600 * NS
    start = WINDOW.start_ns
    stamps = [start - 1, start, start + 1, start + hour - 1, start + hour, start + hour + 1]
    stamps += [start + 2 * hour - 1, start + 2 * hour]
    write_lines(
        endpoint,
        "boundaries",
        [
            point_line("ticks", {"symbol": "AAPL"}, {"bid": ("float", t % 1000 / 10)}, t)
            for t in stamps
        ],
    )
    # Run at 10:05 and 11:05: the default window is the hour that ended last.
    first = backup(
        influxdb_server,
        "boundaries",
        destinations,
        window=None,
        now=HOUR + timedelta(hours=1, minutes=5),
    )
    second = backup(
        influxdb_server,
        "boundaries",
        destinations,
        window=None,
        now=HOUR + timedelta(hours=2, minutes=5),
    )
    third = backup(
        influxdb_server,
        "boundaries",
        destinations,
        window=None,
        now=HOUR + timedelta(hours=3, minutes=5),
    )

    assert first.consistent_point["window_start"] == "2026-11-20T09:00:00+00:00"
    assert first.consistent_point["window_end"] == second.consistent_point["window_start"]
    # The point on 10:00:00.000000000 is the second hour's first point, not the first's last.
    assert (first.counts, second.counts, third.counts) == ({"ticks": 3}, {"ticks": 3}, {"ticks": 1})
    assert exported_times(destinations, first) == [start, start + 1, start + hour - 1]
    assert exported_times(destinations, second) == [
        start + hour,
        start + hour + 1,
        start + 2 * hour - 1,
    ]

    result = restore_timeseries([second, first], destinations.vault, endpoint, "boundaries_back")
    assert result.backups == [first.backup_id, second.backup_id]
    assert result.counts == {"ticks": 6}
    around = TimeWindow(HOUR - timedelta(days=1), HOUR + timedelta(days=1))
    restored = [
        row[0]
        for _, _, rows in points(endpoint, "boundaries_back", "ticks", around)
        for row in rows
    ]
    assert restored == [
        start,
        start + 1,
        start + hour - 1,
        start + hour,
        start + hour + 1,
        start + 2 * hour - 1,
    ]

    with pytest.raises(ValueError, match="leave a gap"):
        restore_timeseries([first, third], destinations.vault, endpoint, "with_a_gap")
    assert "with_a_gap" not in endpoint.databases()


def test_an_empty_hour_is_a_valid_backup_with_zero_counts(
    influxdb_server: LocalInfluxDB, destinations: Destinations
) -> None:
    endpoint = influxdb_server.endpoint()
    earlier = TimeWindow(HOUR - timedelta(hours=2), HOUR - timedelta(hours=1))
    seed_market_data(endpoint, "quiet", earlier, points_per_second=1)  # nothing in WINDOW

    manifest = backup(influxdb_server, "quiet", destinations)

    assert manifest.counts == {"signals": 0, "ticks": 0}
    assert destinations.vault.exists(manifest.prefix + MANIFEST_NAME)
    ticks = next(o for o in manifest.objects if o.name == "ticks.parquet")
    parquet = pq.ParquetFile(io.BytesIO(destinations.vault.get_bytes(ticks.key)))
    assert parquet.metadata.num_rows == 0
    assert parquet.schema_arrow.names == [
        "time",
        "symbol",
        "venue",
        "ask",
        "bid",
        "halted",
        "volume",
    ]
    result = restore_timeseries(
        [manifest], destinations.mirror or destinations.vault, endpoint, "quiet_back"
    )
    assert result.written == result.counts == {"signals": 0, "ticks": 0}


def test_restore_of_a_sub_range_and_refusing_occupied_targets(
    influxdb_server: LocalInfluxDB, destinations: Destinations
) -> None:
    endpoint = influxdb_server.endpoint()
    seed_market_data(endpoint, "subrange", WINDOW, points_per_second=1)
    manifest = backup(influxdb_server, "subrange", destinations, row_group_rows=2_000)
    quarter = TimeWindow(HOUR + timedelta(minutes=15), HOUR + timedelta(minutes=45))

    result = restore_timeseries(
        [manifest], destinations.vault, endpoint, "subrange_back",
        start=quarter.start, end=quarter.end, measurements=["ticks"],
    )  # fmt: skip

    expected = points(endpoint, "subrange", "ticks", quarter)
    assert (
        result.counts
        == result.written
        == {"ticks": sum(len(rows) for _, _, rows in expected)}
        == {"ticks": 30 * 60 * 6}
    )
    assert points(endpoint, "subrange_back", "ticks", WINDOW) == expected
    assert "signals" not in endpoint.measurements("subrange_back")

    with pytest.raises(
        TargetHasPoints, match=r"'subrange_back' .* already has points of \['ticks'\]"
    ):
        restore_timeseries([manifest], destinations.vault, endpoint, "subrange_back")
    assert points(endpoint, "subrange_back", "ticks", WINDOW) == expected  # refused: unchanged
    again = restore_timeseries(
        [manifest], destinations.vault, endpoint, "subrange_back", force=True
    )
    assert again.counts == manifest.counts

    with pytest.raises(ValueError, match="not inside what the backups cover"):
        restore_timeseries(
            [manifest],
            destinations.vault,
            endpoint,
            "elsewhere",
            end=WINDOW.end + timedelta(seconds=1),
        )


def test_a_corrupted_parquet_object_fails_the_restore_and_writes_nothing(
    influxdb_server: LocalInfluxDB, destinations: Destinations, tmp_path: Path
) -> None:
    endpoint = influxdb_server.endpoint()
    seed_market_data(endpoint, "corrupt", WINDOW, points_per_second=1)
    manifest = backup(influxdb_server, "corrupt", destinations)
    ticks = next(o for o in manifest.objects if o.name == "ticks.parquet")  # after signals
    body = bytearray(destinations.vault.get_bytes(ticks.key))
    body[len(body) // 2] ^= 0xFF
    overwrite(destinations.vault, ticks.key, bytes(body))

    with pytest.raises(IntegrityError, match=r"ticks\.parquet: expected"):
        restore_timeseries(
            [manifest], destinations.vault, endpoint, "corrupt_back", spool_dir=tmp_path
        )

    assert "corrupt_back" not in endpoint.databases()  # not even the signals were written
    assert list(tmp_path.iterdir()) == []  # the spool is gone
    # The mirror's copy is intact: the same backup restores from there.
    result = restore_timeseries(
        [manifest], destinations.mirror or destinations.vault, endpoint, "corrupt_back"
    )
    assert result.counts == manifest.counts


def test_the_server_stopping_mid_export_fails_the_backup_and_leaves_no_manifest(
    destinations: Destinations, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # On loopback the kernel buffers up to tcp_rmem's max (32 MiB here) plus the server's send
    # buffer (tcp_wmem's max, 4 MiB): a whole answer can be in flight before the kill, and then
    # nothing is cut. A receive buffer the size of a busy link's, and an answer (~12 MB of ticks)
    # three times the send buffer, leave most of it unsent when the server dies.
    connect = http.client.HTTPConnection.connect

    def connect_with_small_buffer(self: http.client.HTTPConnection) -> None:
        connect(self)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)

    monkeypatch.setattr(http.client.HTTPConnection, "connect", connect_with_small_buffer)
    with LocalInfluxDB(tmp_path / "dying") as server:  # its own server: this test kills it
        seed_market_data(server.endpoint(), "dying", WINDOW, points_per_second=12)
        killed: list[str] = []

        def kill_on_first_row_group(name: str, raw: int) -> None:
            if name == "ticks.parquet" and not killed:
                killed.append(name)
                server.kill()

        with pytest.raises(BackupFailed) as failure:
            backup(
                server,
                "dying",
                destinations,
                row_group_rows=5_000,
                progress=kill_on_first_row_group,
            )

    assert killed
    # The ticks query was cut mid-stream, and the cut was noticed (not taken as the end).
    assert isinstance(failure.value.__cause__, InfluxError)
    assert re.search(r"ticks.* (is truncated|broke off)", str(failure.value))
    for store in destinations.stores:
        # Write once: a failed run's finished objects stay (nothing is deleted from a locked
        # vault), but without a manifest no restore or listing ever sees them.
        keys = [item.key for item in store.list_objects(f"{DATA_CLASS}/{STORE}/")]
        assert not [key for key in keys if key.endswith("/" + MANIFEST_NAME)]
        assert store.pending_uploads(f"{DATA_CLASS}/") == []


@pytest.fixture
def cut_short_server() -> Iterator[int]:
    """A loopback HTTP server that starts a chunked query response and then hangs up."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        connection, _ = listener.accept()
        with connection:
            connection.recv(65536)
            piece = (
                b'{"results":[{"statement_id":0,"series":[{"name":"ticks",'
                b'"columns":["time","bid"],"values":[[1,2.5]]}],"partial":true}]}\n'
            )
            connection.sendall(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n"
                + f"{len(piece):x}\r\n".encode()
                + piece
                + b"\r\n"
            )

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield port
    thread.join(timeout=10)
    listener.close()


def test_a_response_that_breaks_off_is_an_error_not_a_short_export(cut_short_server: int) -> None:
    endpoint = InfluxEndpoint("127.0.0.1", cut_short_server, timeout=10)
    received = []
    with pytest.raises(InfluxError, match=r"broke off|truncated"):
        for series in endpoint.stream("SELECT * FROM ticks", "db"):
            received.append(series)
    assert [s.values for s in received] == [[[1, 2.5]]]  # what came before the cut was read
