"""Durations written the way the seeds write them: ``30s``, ``15m``, ``4h``, ``7d``."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_PATTERN = re.compile(r"^\s*(\d+)\s*([smhd])\s*$")
ALLOWED = "a duration like 30s, 15m, 4h or 7d (a whole number and one of s, m, h, d)"


def parse_duration(value: Any) -> timedelta:
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool):
        raise ValueError(ALLOWED)
    if isinstance(value, int):
        seconds = value
    elif isinstance(value, str) and (match := _PATTERN.match(value)):
        seconds = int(match.group(1)) * _UNITS[match.group(2)]
    else:
        raise ValueError(ALLOWED)
    if seconds <= 0:
        raise ValueError(f"must be positive; {ALLOWED}")
    return timedelta(seconds=seconds)


def format_duration(value: timedelta | float) -> str:
    """The inverse of ``parse_duration``: ``30s``, ``15m``, ``1h``, ``7d`` for a whole number of
    its largest unit (the way the config writes it). Any other duration, a measured one: its two
    largest units, rounded (``1m30s``, ``2h15m``, ``3d4h``), or tenths of a second under a minute
    (``3.6s``)."""
    total = value.total_seconds() if isinstance(value, timedelta) else float(value)
    sign, total = ("-", -total) if total < 0 else ("", total)
    if total < 60 and total != int(total):
        tenths = round(total, 1)
        return f"{sign}{tenths:g}s" if tenths < 60 else f"{sign}1m"
    seconds = round(total)
    if seconds == 0:
        return "0s"
    for index, (unit, size) in enumerate(_LARGEST_FIRST[:-1]):
        if seconds >= size:
            smaller, small_size = _LARGEST_FIRST[index + 1]
            rest = round((seconds % size) / small_size)
            whole = seconds // size
            if rest * small_size == size:
                whole, rest = whole + 1, 0
            return f"{sign}{whole}{unit}" + (f"{rest}{smaller}" if rest else "")
    return f"{sign}{seconds}s"


_LARGEST_FIRST = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))


def config_text(value: timedelta) -> str:
    """A duration as the config file holds it, which ``parse_duration`` reads back: one whole
    number and one unit (``90s`` stays ``90s``, where people read ``1m30s``)."""
    seconds = int(value.total_seconds())
    for unit, size in _LARGEST_FIRST[:-1]:
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    PlainSerializer(config_text, return_type=str),
]
