"""Five-field cron schedules (the Kubernetes CronJob dialect) and the longest gap between runs.

The longest gap is what a schedule guarantees for the RPO: a backup every 15 minutes can lose at
most 15 minutes of data, ``0 */6 * * *`` up to six hours, ``0 9 * * 1-5`` a whole weekend.
"""

from __future__ import annotations

import itertools
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from typing import Annotated

from pydantic import AfterValidator

ALLOWED = (
    "a five-field cron expression (minute hour day-of-month month day-of-week) using numbers, "
    "*, */N, A-B, A-B/N and commas, or one of @hourly, @daily, @weekly"
)
_SPAN_DAYS = 2 * 366 + 31
"""Two years and a month: every weekday, month length and a year boundary, leap year included."""
_MACROS = {"@hourly": "0 * * * *", "@daily": "0 0 * * *", "@weekly": "0 0 * * 0"}
_FIELDS = (
    ("minute", 0, 59),
    ("hour", 0, 23),
    ("day of month", 1, 31),
    ("month", 1, 12),
    ("day of week", 0, 7),
)


def _parse_field(text: str, name: str, low: int, high: int) -> frozenset[int]:
    values: set[int] = set()
    for part in text.split(","):
        base, _, step_text = part.partition("/")
        step = int(step_text) if step_text.isdigit() else None
        if step_text and (step is None or step == 0):
            raise ValueError(f"{name} step {step_text!r} must be a positive number; {ALLOWED}")
        if base == "*":
            start, end = low, high
        elif "-" in base:
            first, _, last = base.partition("-")
            if not (first.isdigit() and last.isdigit()):
                raise ValueError(f"{name} range {base!r} is not A-B; {ALLOWED}")
            start, end = int(first), int(last)
        elif base.isdigit():
            start = end = int(base)
            if step is not None:
                end = high
        else:
            raise ValueError(f"{name} value {base!r} is not a number; {ALLOWED}")
        if not (low <= start <= end <= high):
            raise ValueError(f"{name} {base!r} is outside {low}-{high}")
        values.update(range(start, end + 1, step or 1))
    return frozenset(values)


class Cron:
    """A parsed cron expression; ``max_interval`` is the longest gap between two runs."""

    def __init__(self, expression: str) -> None:
        text = _MACROS.get(expression.strip(), expression.strip())
        parts = text.split()
        if len(parts) != 5:
            raise ValueError(f"has {len(parts)} fields, not 5; {ALLOWED}")
        self.expression = expression
        fields = [_parse_field(p, *spec) for p, spec in zip(parts, _FIELDS, strict=True)]
        self.minutes, self.hours, self.days, self.months, weekdays = fields
        self.weekdays = frozenset(d % 7 for d in weekdays)
        self._any_day = parts[2] == "*"
        self._any_weekday = parts[4] == "*"
        if not any(self._day_matches(day) for day in _days(_SPAN_DAYS)):
            raise ValueError("never runs (no date matches its day and month fields)")

    def _day_matches(self, day: date) -> bool:
        if day.month not in self.months:
            return False
        by_dom = day.day in self.days
        by_dow = (day.isoweekday() % 7) in self.weekdays
        if self._any_day or self._any_weekday:
            return by_dom and by_dow  # cron: a '*' field leaves the other one in charge
        return by_dom or by_dow  # cron: both restricted means either matches

    def _run_minutes(self, days: int = _SPAN_DAYS) -> list[int]:
        """Minutes since 1 Jan 2024 at which the schedule fires, over ``days`` days."""
        runs: list[int] = []
        hours, minutes = sorted(self.hours), sorted(self.minutes)
        for offset, day in enumerate(_days(days)):
            if self._day_matches(day):
                for hour in hours:
                    runs.extend(offset * 1440 + hour * 60 + minute for minute in minutes)
        return runs

    @property
    def max_interval(self) -> timedelta:
        return _max_interval(self)

    @property
    def min_interval(self) -> timedelta:
        """The shortest gap: how long a run may take before the next one is due."""
        return _min_interval(self)

    def next_after(self, moment: datetime) -> datetime:
        """The first run strictly after ``moment`` (whole minutes, ``moment``'s time zone)."""
        start = moment.replace(second=0, microsecond=0) + timedelta(minutes=1)
        for offset in range(_SPAN_DAYS):
            day = (start + timedelta(days=offset)).date()
            if not self._day_matches(day):
                continue
            for hour in sorted(self.hours):
                for minute in sorted(self.minutes):
                    run = datetime.combine(day, time(hour, minute), start.tzinfo)
                    if run >= start:
                        return run
        raise ValueError(f"{self.expression!r} has no run after {moment.isoformat()}")

    def __hash__(self) -> int:
        return hash(self.expression)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Cron) and other.expression == self.expression

    def _longest_gap(self) -> timedelta:
        return timedelta(minutes=max(self._gaps()))

    def _shortest_gap(self) -> timedelta:
        return timedelta(minutes=min(self._gaps()))

    def _gaps(self) -> list[int]:
        runs = self._run_minutes()
        if len(runs) < 2:
            return [_SPAN_DAYS * 1440]
        return [later - earlier for earlier, later in itertools.pairwise(runs)]


def _days(count: int) -> list[date]:
    start = date(2024, 1, 1)
    return [start + timedelta(days=offset) for offset in range(count)]


@lru_cache(maxsize=256)
def _max_interval(cron: Cron) -> timedelta:
    return cron._longest_gap()


@lru_cache(maxsize=256)
def _min_interval(cron: Cron) -> timedelta:
    return cron._shortest_gap()


def _check_cron(expression: str) -> str:
    Cron(expression)
    return expression


CronExpression = Annotated[str, AfterValidator(_check_cron)]
