"""Time-series (InfluxDB 1.x): an hour of points exported to Parquet, one object per measurement.

The seed's historical market data is exported hourly "to Parquet for compression and query
efficiency". A backup covers a half-open window ``[start, end)`` (by default the last full UTC
hour), so a point stamped exactly on the hour belongs to the next backup: consecutive hourly
backups neither lose nor repeat a boundary point.

Each measurement is read with one chunked ``/query`` (points in time order, every field and tag
named with ``::field``/``::tag`` so a tag and a field of the same name stay apart) and written as
Parquet row groups of at most ``row_group_rows`` rows, each handed to the vault as soon as it is
encoded: memory holds one row group, whatever the hour's size. The schema keeps what a restore
needs to write identical points: ``time`` as UTC nanoseconds, tags as dictionary-encoded strings
(null where a point has no such tag), fields in their InfluxDB types, and each column's role,
key and type in its Parquet field metadata. Pages are zstd-compressed inside Parquet (so query
engines read the objects as they are), and the engine does not compress them again.

InfluxDB has no snapshots: the window is in the past, and a point written into it after the
export (a late arrival) is not in this backup. ``snapshot_time`` is the window's end.
"""

from __future__ import annotations

import io
import itertools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, unquote

import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.parquet as pq  # type: ignore[import-untyped]

from drkit.backup.engine import BackupSession, Capture
from drkit.influx import FIELD_TYPES, InfluxEndpoint, InfluxError, qualified, quote_ident

PARQUET_SUFFIX = ".parquet"
PARQUET_CONTENT = "Apache Parquet (zstd pages), the points of one InfluxDB measurement"
PARQUET_ZSTD_LEVEL = 3
ROW_GROUP_ROWS = 50_000
"""Rows per Parquet row group: the unit of memory on both sides, and of skipping on restore."""
QUERY_CHUNK_POINTS = 10_000
FORMAT = "drkit-influxdb-parquet/1"

TIME_COLUMN = "time"
TAG_TYPE = pa.dictionary(pa.int32(), pa.string())
ARROW_TYPES: dict[str, pa.DataType] = {
    "float": pa.float64(),
    "integer": pa.int64(),
    "unsigned": pa.uint64(),
    "string": pa.string(),
    "boolean": pa.bool_(),
}
TIME_TYPE = pa.timestamp("ns", tz="UTC")

# Parquet key-value metadata: per file, and per column (role, InfluxDB key and type).
META_FORMAT = b"drkit.format"
META_MEASUREMENT = b"influxdb.measurement"
META_DATABASE = b"influxdb.database"
META_RETENTION_POLICY = b"influxdb.retention_policy"
META_WINDOW_START = b"influxdb.window_start_ns"
META_WINDOW_END = b"influxdb.window_end_ns"
META_ROLE = b"influxdb.role"
META_KEY = b"influxdb.key"
META_TYPE = b"influxdb.type"


def utc_ns(moment: datetime) -> int:
    """Nanoseconds since the epoch of an aware datetime (exact: datetimes hold microseconds)."""
    if moment.tzinfo is None:
        raise ValueError(f"{moment!r} has no time zone; pass an aware datetime (UTC)")
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000


def from_ns(nanoseconds: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=nanoseconds // 1_000)


@dataclass(frozen=True)
class TimeWindow:
    """The half-open interval ``[start, end)`` of point timestamps a backup or restore covers."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if utc_ns(self.start) >= utc_ns(self.end):
            raise ValueError(f"time window start {self.start} is not before its end {self.end}")

    @classmethod
    def last_full_hour(cls, now: datetime) -> TimeWindow:
        """The hour that ended most recently: at 10:05 UTC, ``[09:00, 10:00)``."""
        end = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
        return cls(end - timedelta(hours=1), end)

    @property
    def start_ns(self) -> int:
        return utc_ns(self.start)

    @property
    def end_ns(self) -> int:
        return utc_ns(self.end)

    def where(self) -> str:
        """InfluxQL: integer time literals are nanoseconds, so the bounds are exact."""
        return f"time >= {self.start_ns} AND time < {self.end_ns}"

    def intersect(self, other: TimeWindow) -> TimeWindow | None:
        start, end = max(self.start, other.start), min(self.end, other.end)
        return TimeWindow(start, end) if start < end else None


def object_name(measurement: str) -> str:
    """A safe object name for any measurement name (``/`` and spaces are legal in InfluxDB)."""
    return quote(measurement, safe="") + PARQUET_SUFFIX


def measurement_of(name: str) -> str:
    if not name.endswith(PARQUET_SUFFIX):
        raise ValueError(f"{name!r} is not a measurement's Parquet object (*{PARQUET_SUFFIX})")
    return unquote(name[: -len(PARQUET_SUFFIX)])


@dataclass(frozen=True)
class Column:
    """One Parquet column after ``time``: a tag or a field, and how it maps back to InfluxDB."""

    name: str
    role: str  # "tag" or "field"
    key: str
    kind: str  # "tag", or the field's InfluxDB type

    @property
    def arrow_type(self) -> pa.DataType:
        return TAG_TYPE if self.role == "tag" else ARROW_TYPES[self.kind]

    def arrow_field(self) -> pa.Field:
        metadata = {META_ROLE: self.role.encode(), META_KEY: self.key.encode()}
        metadata[META_TYPE] = self.kind.encode()
        return pa.field(self.name, self.arrow_type, nullable=True, metadata=metadata)


@dataclass(frozen=True)
class MeasurementLayout:
    """The columns of one measurement's Parquet file: tags (sorted), then fields (sorted)."""

    measurement: str
    columns: tuple[Column, ...]

    @classmethod
    def build(
        cls, measurement: str, tag_keys: Sequence[str], field_types: dict[str, str]
    ) -> MeasurementLayout:
        """Columns are named by their keys; a field whose key is also a tag's gets ``::field``."""
        taken = {TIME_COLUMN}
        columns = []
        for key in sorted(tag_keys):
            name = key if key not in taken else f"{key}::tag"
            taken.add(name)
            columns.append(Column(name, "tag", key, "tag"))
        for key, kind in sorted(field_types.items()):
            if kind not in ARROW_TYPES:
                raise InfluxError(
                    f"field {key!r} of {measurement!r} has type {kind!r}; known: {FIELD_TYPES}"
                )
            name = key if key not in taken else f"{key}::field"
            taken.add(name)
            columns.append(Column(name, "field", key, kind))
        return cls(measurement, tuple(columns))

    @classmethod
    def from_schema(cls, schema: pa.Schema) -> MeasurementLayout:
        """Read a layout back from a file this module wrote; anything else is refused."""
        metadata = schema.metadata or {}
        if metadata.get(META_FORMAT) != FORMAT.encode():
            raise ValueError(
                f"not a time-series backup object (format {metadata.get(META_FORMAT)!r}, "
                f"expected {FORMAT!r})"
            )
        if schema.names[:1] != [TIME_COLUMN]:
            raise ValueError(f"the first column is {schema.names[:1]}, expected ['time']")
        columns = []
        for arrow_field in list(schema)[1:]:
            meta = arrow_field.metadata or {}
            columns.append(
                Column(
                    arrow_field.name,
                    meta[META_ROLE].decode(),
                    meta[META_KEY].decode(),
                    meta[META_TYPE].decode(),
                )
            )
        return cls(metadata[META_MEASUREMENT].decode(), tuple(columns))

    @property
    def fields(self) -> list[Column]:
        return [c for c in self.columns if c.role == "field"]

    @property
    def tags(self) -> list[Column]:
        return [c for c in self.columns if c.role == "tag"]

    def arrow_schema(self, file_metadata: dict[bytes, bytes]) -> pa.Schema:
        time = pa.field(TIME_COLUMN, TIME_TYPE, nullable=False)
        metadata = {META_FORMAT: FORMAT.encode(), META_MEASUREMENT: self.measurement.encode()}
        return pa.schema(
            [time] + [c.arrow_field() for c in self.columns], metadata=metadata | file_metadata
        )

    def select(self, source: str, window: TimeWindow) -> str:
        """Every point of the window in time order; columns in layout order after ``time``."""
        names = [
            f"{quote_ident(c.key)}::{'tag' if c.role == 'tag' else 'field'}" for c in self.columns
        ]
        return f"SELECT {', '.join(names)} FROM {source} WHERE {window.where()}"


class _Spool(io.RawIOBase):
    """Where ParquetWriter writes: bytes are kept only until the next :meth:`drain`."""

    def __init__(self) -> None:
        super().__init__()
        self._pieces: list[bytes] = []
        self._position = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        piece = bytes(data)
        self._pieces.append(piece)
        self._position += len(piece)
        return len(piece)

    def tell(self) -> int:
        return self._position

    def drain(self) -> Iterator[bytes]:
        if self._pieces:
            piece = b"".join(self._pieces)
            self._pieces.clear()
            yield piece


@dataclass
class _MeasurementExport:
    """Streams one measurement's window out of InfluxDB as Parquet bytes, counting points."""

    endpoint: InfluxEndpoint
    database: str
    retention_policy: str
    layout: MeasurementLayout
    window: TimeWindow
    row_group_rows: int = ROW_GROUP_ROWS
    chunk_points: int = QUERY_CHUNK_POINTS
    points: int = 0
    _last_time: int = field(default=-(2**63))

    def parquet_chunks(self) -> Iterator[bytes]:
        schema = self.layout.arrow_schema(
            {
                META_DATABASE: self.database.encode(),
                META_RETENTION_POLICY: self.retention_policy.encode(),
                META_WINDOW_START: str(self.window.start_ns).encode(),
                META_WINDOW_END: str(self.window.end_ns).encode(),
            }
        )
        spool = _Spool()
        writer = pq.ParquetWriter(
            spool,
            schema,
            compression="zstd",
            compression_level=PARQUET_ZSTD_LEVEL,
            use_dictionary=True,
            write_statistics=True,
            sorting_columns=[pq.SortingColumn(0)],
        )
        try:
            for batch in self._batches(schema):
                writer.write_batch(batch, row_group_size=self.row_group_rows)
                yield from spool.drain()
        finally:
            writer.close()  # on failure the footer goes nowhere: the spool is not drained again
        yield from spool.drain()

    def _batches(self, schema: pa.Schema) -> Iterator[pa.RecordBatch]:
        if not self.layout.fields:  # no field in this retention policy: no point to export
            return
        width = 1 + len(self.layout.columns)
        columns: list[list[Any]] = [[] for _ in range(width)]
        statement = self.layout.select(
            qualified(self.database, self.retention_policy, self.layout.measurement), self.window
        )
        for series in self.endpoint.stream(statement, self.database, self.chunk_points):
            if not series.values:
                continue
            if len(series.columns) != width:
                raise InfluxError(
                    f"{statement!r} returned columns {series.columns}, expected {width}"
                )
            for column, values in zip(columns, zip(*series.values, strict=True), strict=True):
                column.extend(values)
            while len(columns[0]) >= self.row_group_rows:
                head = [c[: self.row_group_rows] for c in columns]
                columns = [c[self.row_group_rows :] for c in columns]
                yield self._batch(schema, head)
        if columns[0]:
            yield self._batch(schema, columns)

    def _batch(self, schema: pa.Schema, columns: list[list[Any]]) -> pa.RecordBatch:
        times = columns[0]
        if times[0] < self._last_time or any(a > b for a, b in itertools.pairwise(times)):
            raise InfluxError(f"{self.layout.measurement!r}: points did not arrive in time order")
        self._last_time = times[-1]
        if times[0] < self.window.start_ns or times[-1] >= self.window.end_ns:
            raise InfluxError(f"{self.layout.measurement!r}: a point outside {self.window}")
        arrays = [pa.array(times, type=TIME_TYPE)]
        for column, values in zip(self.layout.columns, columns[1:], strict=True):
            if column.role == "tag":
                arrays.append(pa.array(values, type=pa.string()).dictionary_encode())
            else:
                arrays.append(pa.array(values, type=column.arrow_type))
        self.points += len(times)
        return pa.RecordBatch.from_arrays(arrays, schema=schema)


@dataclass
class TimeseriesHandler:
    """Backs up one InfluxDB database's points in one time window, measurement by measurement."""

    endpoint: InfluxEndpoint
    database: str
    retention_policy: str | None = None
    window: TimeWindow | None = None
    measurements: Sequence[str] | None = None
    row_group_rows: int = ROW_GROUP_ROWS
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    kind: str = "timeseries"

    def backup(self, session: BackupSession) -> Capture:
        window = self.window or TimeWindow.last_full_hour(self.now())
        version = self.endpoint.ping()
        if self.database not in self.endpoint.databases():
            raise InfluxError(
                f"database {self.database!r} does not exist on {self.endpoint.address}"
            )
        policy = self.retention_policy or self.endpoint.default_retention_policy(self.database)
        existing = self.endpoint.measurements(self.database)
        wanted = sorted(existing) if self.measurements is None else sorted(self.measurements)
        unknown = sorted(set(wanted) - set(existing))
        if unknown:
            raise ValueError(
                f"measurements {unknown} are not in database {self.database!r}; it has {existing}"
            )
        counts: dict[str, int] = {}
        for measurement in wanted:
            layout = MeasurementLayout.build(
                measurement,
                self.endpoint.tag_keys(self.database, policy, measurement),
                self.endpoint.field_types(self.database, policy, measurement),
            )
            export = _MeasurementExport(
                self.endpoint, self.database, policy, layout, window, self.row_group_rows
            )
            session.write_stream(
                object_name(measurement),
                export.parquet_chunks(),
                content=PARQUET_CONTENT,
                compress=False,
            )
            counts[measurement] = export.points
        return Capture(
            source={
                "host": self.endpoint.host,
                "port": self.endpoint.port,
                "database": self.database,
                "retention_policy": policy,
            },
            tool_versions={"influxdb": version, "pyarrow": pa.__version__},
            consistent_point={
                "window_start": window.start.isoformat(),
                "window_end": window.end.isoformat(),
                "snapshot_time": window.end.isoformat(),
            },
            counts=counts,
        )


def window_of(consistent_point: dict[str, Any]) -> TimeWindow:
    """The window a time-series manifest covers."""
    try:
        return TimeWindow(
            datetime.fromisoformat(consistent_point["window_start"]),
            datetime.fromisoformat(consistent_point["window_end"]),
        )
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(
            f"consistent point {consistent_point} has no valid window_start/window_end: {error}"
        ) from error
