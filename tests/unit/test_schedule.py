"""Cron schedules and the longest gap they leave, which bounds the RPO a backup alone can meet."""

from __future__ import annotations

from datetime import timedelta

import pytest

from stackmodels.schedule import Cron

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("expression", "gap"),
    [
        ("*/15 * * * *", timedelta(minutes=15)),
        ("0 * * * *", timedelta(hours=1)),
        ("@hourly", timedelta(hours=1)),
        ("0 */6 * * *", timedelta(hours=6)),
        ("5,35 * * * *", timedelta(minutes=30)),
        ("0 9-17 * * *", timedelta(hours=16)),
        ("0 9 * * 1-5", timedelta(days=3)),
        ("0 0 * * 0", timedelta(days=7)),
        ("0 0 1 * *", timedelta(days=31)),
        ("0 0 1,15 * 1", timedelta(days=7)),  # both day fields restricted: either one matches
    ],
)
def test_longest_gap(expression: str, gap: timedelta) -> None:
    assert Cron(expression).max_interval == gap


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("* * * *", "has 4 fields"),
        ("60 * * * *", "outside 0-59"),
        ("*/0 * * * *", "step '0'"),
        ("a * * * *", "is not a number"),
        ("0 0 31 2 *", "never runs"),
        ("5-1 * * * *", "outside"),
    ],
)
def test_bad_expressions_say_what_is_wrong(expression: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Cron(expression)


@pytest.mark.parametrize(
    ("expression", "after", "expected"),
    [
        ("*/15 * * * *", "2026-11-21T04:07:30+00:00", "2026-11-21T04:15:00+00:00"),
        ("*/15 * * * *", "2026-11-21T04:15:00+00:00", "2026-11-21T04:30:00+00:00"),
        ("0 */6 * * *", "2026-11-21T04:07:00+00:00", "2026-11-21T06:00:00+00:00"),
        ("0 9 * * 1-5", "2026-11-21T10:00:00+00:00", "2026-11-23T09:00:00+00:00"),  # Sat -> Mon
        ("0 0 1 * *", "2026-12-15T00:00:00+00:00", "2027-01-01T00:00:00+00:00"),
    ],
)
def test_next_run_after(expression: str, after: str, expected: str) -> None:
    from datetime import datetime

    assert Cron(expression).next_after(datetime.fromisoformat(after)) == datetime.fromisoformat(
        expected
    )
