"""What a person reads (issue 20 item 4): durations as the config writes them, times to the
second with their offset, plans without unset options, tables as wide as their contents."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from drkit.failover.preflight import Preflight
from drkit.failover.status import StatusReport, StoreRow
from drkit.human import iso_time, table
from drkit.ops import cli
from drkit.ops.backups_info import Listing, StoreSummary
from drkit.ops.plan import FunctionStep, Plan
from stackmodels.durations import config_text, format_duration, parse_duration

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("written", ["30s", "1m", "5m", "15m", "30m", "1h", "4h", "7d", "365d"])
def test_a_config_duration_prints_as_the_config_writes_it(written: str) -> None:
    assert format_duration(parse_duration(written)) == written
    assert config_text(parse_duration(written)) == written


def test_the_config_keeps_what_people_read_as_two_units_in_one() -> None:
    """``90s`` reads ``1m30s``; the config model serializes it as ``90s``, which it reads back."""
    for written, shown in (("90s", "1m30s"), ("90m", "1h30m"), ("36h", "1d12h")):
        assert format_duration(parse_duration(written)) == shown
        assert config_text(parse_duration(written)) == written


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (0, "0s"),
        (0.25, "0.2s"),
        (3.6, "3.6s"),
        (45.377, "45.4s"),
        (59.97, "1m"),
        (60, "1m"),
        (90, "1m30s"),
        (119, "1m59s"),
        (150, "2m30s"),
        (1009.8, "16m50s"),
        (3599.6, "1h"),
        (7199, "2h"),
        (5400, "1h30m"),
        (8100, "2h15m"),
        (16335.7, "4h32m"),
        (273700, "3d4h"),
        (-30, "-30s"),
    ],
)
def test_a_measured_duration_prints_in_its_two_largest_units(seconds: float, shown: str) -> None:
    assert format_duration(seconds) == shown
    assert format_duration(timedelta(seconds=seconds)) == shown


def test_times_are_iso_8601_to_the_second_with_an_offset() -> None:
    moment = datetime(2026, 11, 21, 4, 15, 0, 123456, tzinfo=UTC)
    assert iso_time(moment) == "2026-11-21T04:15:00+00:00"
    assert iso_time(moment.isoformat()) == "2026-11-21T04:15:00+00:00"
    assert iso_time(datetime(2026, 11, 21, 4, 15, 0, 999999)) == "2026-11-21T04:15:00+00:00"
    east = datetime(2026, 11, 21, 5, 15, 7, tzinfo=timezone(timedelta(hours=1)))
    assert iso_time(east) == "2026-11-21T05:15:07+01:00"
    assert iso_time(None) == "-" and iso_time("", "never") == "never"
    assert iso_time("yesterday") == "yesterday"


def test_a_table_sizes_each_column_to_its_widest_cell_and_never_cuts_one() -> None:
    name = "historical-market-data-ticks-eu"  # far past the 15 characters tables used to cut
    lines = table(("store", "n", "state"), [(name, 7, "ok"), ("db", 12345, "")], right=(1,))
    assert lines == [
        "store                                n  state",
        "-------------------------------  -----  -----",
        "historical-market-data-ticks-eu      7  ok",
        "db                               12345",
    ]
    assert table(("a", "b"), [("x",)], rule=False) == ["a  b", "x"]
    with pytest.raises(ValueError, match="more cells than the header"):
        table(("a",), [("x", "y")])


def test_a_plan_leaves_out_unset_options_and_shows_the_rest_as_people_read_them() -> None:
    step = FunctionStep("restore", "restore it", lambda _context: None)
    parameters = {
        "store": "trading-db",
        "at": None,
        "tables": [],
        "force": False,
        "target": "",
        "rename": {},
        "since": datetime(2026, 11, 21, 4, 15, 0, 500000, tzinfo=UTC),
        "window": timedelta(minutes=15),
        "topics": ["orders", "signals"],
        "lineage_header": True,
        "newest": {"trading-db": "20261121T041500Z-3f9a1c", "session-cache": None},
        "replicas": 0,
    }
    text = Plan("restore postgres trading-db", [[step]], parameters).describe()
    for unset in ("at:", "tables:", "force:", "target:", "rename:", "None", "False", "[]"):
        assert unset not in text
    assert "  store: trading-db\n" in text
    assert "  since: 2026-11-21T04:15:00+00:00\n" in text
    assert "  window: 15m\n" in text
    assert "  topics: orders, signals\n" in text
    assert "  lineage_header: yes\n" in text
    assert "  newest: trading-db=20261121T041500Z-3f9a1c\n" in text
    assert "  replicas: 0\n" in text  # a number is set, even when it is zero


def test_config_check_prints_objectives_as_the_config_writes_them(
    capsys: pytest.CaptureFixture[str],
) -> None:
    cli.config_check(ROOT, stack="prod")
    printed = capsys.readouterr().out
    assert "0:00:30" not in printed and "0:15:00" not in printed
    assert "RPO 30s" in printed and "RPO 15m" in printed
    header, rule, *rows = printed.splitlines()[1:]
    assert header.split() == ["store", "kind", "schedule", "data", "class", "objectives"]
    assert set(rule.replace(" ", "")) == {"-"}
    for row in rows:  # the objectives line up under their header, however long the schedule
        assert row.index("RPO ") == header.index("objectives"), (header, row)


def test_backups_list_shows_long_store_names_and_times_whole() -> None:
    name = "historical-market-data-ticks"
    newest = {
        "backup_id": "20261121T041500Z-3f9a1c",
        "recovery_point": "2026-11-21T04:15:00.123456+00:00",
        "age_seconds": 5400.0,
        "verified_at": None,
    }
    stores = [
        StoreSummary(name, "timeseries", "historical", 3, 3 * 1024**2, newest=newest),
        StoreSummary("app-state", "kubernetes", "app-config"),
    ]
    listing = Listing(
        "vault",
        "2026-11-14T04:15:00.5+00:00",
        "2026-11-21T05:45:00.5+00:00",
        stores,
        None,
        None,
        4,
    )
    text = listing.to_text()
    assert name in text and "2026-11-21T04:15:00+00:00" in text and ".123456" not in text
    assert "backups in vault from 2026-11-14T04:15:00+00:00 to 2026-11-21T05:45:00+00:00" in text
    assert " 1h30m " in text  # the age, as a duration
    assert "app-state" in text and "none" in text


def test_dr_status_fits_its_columns_to_the_rows() -> None:
    long = StoreRow("historical-market-data-ticks", lag="1.5s / 30s", backup="2m30s old")
    long.standby = "available"
    report = StatusReport("us-east-1", "stack config", "us-west-2", [long, StoreRow("db")])
    lines = report.to_text().splitlines()
    assert lines[1].startswith("store ") and "historical-market-data-ticks  1.5s / 30s" in lines[3]


def test_the_preflight_lines_up_its_details_after_the_longest_check() -> None:
    preflight = Preflight(planned=True)
    preflight.add("aurora.global-cluster-membership-of-dr", True, "in the cluster", blocks=True)
    preflight.add("dns", False, "health check unreadable", blocks=False)
    lines = preflight.to_text().splitlines()
    assert lines[0] == "preflight:"
    assert lines[1].index("in the cluster") == lines[2].index("health check unreadable")
    assert "aurora.global-cluster-membership-of-dr" in lines[1]


def test_config_check_of_the_vault_stack_names_its_account_and_writers(
    capsys: pytest.CaptureFixture[str],
) -> None:
    cli.config_check(ROOT, stack="vault")
    printed = capsys.readouterr().out
    assert printed.startswith(
        "Pulumi.vault.yaml: valid (vault in us-east-2, account 210987654321, 6 data classes; "
        "writers: prod (123456789012), dr (123456789012); reader: 123456789012)"
    )
