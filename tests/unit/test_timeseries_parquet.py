"""The pure parts of the time-series backup: hour windows, object names, the Parquet layout, and
the column-wise line protocol encoder checked against a row-by-row reference."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pyarrow as pa  # type: ignore[import-untyped]
import pytest

from drkit.backup.timeseries import (
    TAG_TYPE,
    TIME_TYPE,
    MeasurementLayout,
    TimeWindow,
    measurement_of,
    object_name,
)
from drkit.restore.timeseries import line_protocol
from drkit.seed.timeseries import point_line

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("now", "start"),
    [
        (datetime(2026, 11, 20, 10, 5, 30, 123, tzinfo=UTC), datetime(2026, 11, 20, 9, tzinfo=UTC)),
        (datetime(2026, 11, 20, 10, tzinfo=UTC), datetime(2026, 11, 20, 9, tzinfo=UTC)),
        (
            datetime(2026, 11, 20, 0, 30, tzinfo=timezone(timedelta(hours=2))),
            datetime(2026, 11, 19, 21, tzinfo=UTC),
        ),
    ],
)
def test_the_default_window_is_the_last_full_utc_hour(now: datetime, start: datetime) -> None:
    window = TimeWindow.last_full_hour(now)
    assert (window.start, window.end) == (start, start + timedelta(hours=1))
    assert window.end_ns - window.start_ns == 3600 * 10**9
    assert window.where() == f"time >= {window.start_ns} AND time < {window.end_ns}"


def test_windows_must_be_aware_and_non_empty() -> None:
    moment = datetime(2026, 11, 20, 9, tzinfo=UTC)
    with pytest.raises(ValueError, match="is not before its end"):
        TimeWindow(moment, moment)
    with pytest.raises(ValueError, match="has no time zone"):
        TimeWindow(datetime(2026, 11, 20, 9), moment)


@pytest.mark.parametrize("name", ["ticks", "a/b c,d", "..", "€ 株", "100%"])
def test_object_names_are_safe_and_reversible(name: str) -> None:
    stored = object_name(name)
    assert "/" not in stored and " " not in stored and stored.endswith(".parquet")
    assert measurement_of(stored) == name


def test_a_field_sharing_a_tags_key_gets_its_own_column() -> None:
    layout = MeasurementLayout.build("m", ["kind", "symbol"], {"kind": "string", "bid": "float"})
    names = [(c.name, c.role, c.key) for c in layout.columns]
    assert names == [
        ("kind", "tag", "kind"),
        ("symbol", "tag", "symbol"),
        ("bid", "field", "bid"),
        ("kind::field", "field", "kind"),
    ]
    schema = layout.arrow_schema({})
    assert MeasurementLayout.from_schema(schema) == layout
    with pytest.raises(ValueError, match="not a time-series backup object"):
        MeasurementLayout.from_schema(pa.schema([pa.field("time", TIME_TYPE)]))


def test_line_protocol_matches_the_row_by_row_reference() -> None:
    fields = {"ask": "float", "n": "integer", "u": "unsigned", "ok": "boolean", "note": "string"}
    layout = MeasurementLayout.build("quotes, odd", ["symbol", "venue"], fields)
    rows: list[tuple[int, str | None, str | None, dict[str, object]]] = [
        (1, "A B,C=D", "XNAS", {"ask": 5.0, "n": -(2**63), "u": 2**64 - 1, "ok": True}),
        (2, None, None, {"note": 'say "hi", back\\slash\\\nnext'}),  # no tag at all
        (3, "", "ARCX", {"ask": 1e-300, "ok": False}),  # an empty tag is an absent tag
        (4, "€", None, {"ask": 0.1, "n": 7}),
    ]
    columns: dict[str, list[object]] = {"time": [r[0] for r in rows]}
    columns["symbol"] = [r[1] for r in rows]
    columns["venue"] = [r[2] for r in rows]
    for key in sorted(fields):
        columns[key] = [r[3].get(key) for r in rows]
    schema = layout.arrow_schema({})
    table = pa.table(
        [
            pa.array(columns[f.name], type=TAG_TYPE.value_type if f.type == TAG_TYPE else f.type)
            for f in schema
        ],
        schema=pa.schema(
            [f.with_type(TAG_TYPE.value_type) if f.type == TAG_TYPE else f for f in schema]
        ),
    )
    table = table.cast(schema)

    expected = [
        point_line(
            "quotes, odd",
            {k: v for k, v in (("symbol", symbol), ("venue", venue)) if v},
            {key: (fields[key], value) for key, value in sorted(values.items())},
            time,
        )
        for time, symbol, venue, values in rows
    ]
    # Arrow writes the float 5.0 as "5": still a float to line protocol, which marks integers
    # with "i" (the integration round trip checks the field types InfluxDB ends up with).
    expected[0] = expected[0].replace("ask=5.0,", "ask=5,")
    assert line_protocol(layout, table) == expected
