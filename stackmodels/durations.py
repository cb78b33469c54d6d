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


def format_duration(value: timedelta) -> str:
    seconds = int(value.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str),
]
