"""Progress on long work, for a person at a terminal or a log collector.

On a terminal the line updates in place a few times a second; otherwise a line is printed every
few seconds, so a CronJob's log shows the backup advancing without flooding.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

MiB = 1024 * 1024


def human_bytes(size: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(size) < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"


class _Progress:
    """A line now and then: in place a few times a second on a terminal, otherwise a line every
    few seconds."""

    def __init__(self, label: str, stream: TextIO | None = None) -> None:
        self.label = label
        self.stream = stream or sys.stderr
        self.interactive = self.stream.isatty()
        self.interval = 0.25 if self.interactive else 5.0
        self.started = time.monotonic()
        self._last = self.started
        self._shown = False

    def _due(self) -> float | None:
        """The time now when a line is due, else None."""
        now = time.monotonic()
        if now - self._last < self.interval:
            return None
        self._last = now
        return now

    def _show(self, line: str) -> None:
        self.stream.write(("\r" + line.ljust(78)) if self.interactive else line + "\n")
        self.stream.flush()
        self._shown = True

    def done(self) -> None:
        if self._shown and self.interactive:
            self.stream.write("\r" + " " * 78 + "\r")
            self.stream.flush()


class ByteProgress(_Progress):
    """Callable as the engine's ``progress(name, raw_bytes)``."""

    def __call__(self, name: str, raw: int) -> None:
        now = self._due()
        if now is None:
            return
        rate = raw / max(now - self.started, 1e-6)
        self._show(f"{self.label}: {name} {human_bytes(raw)} read, {human_bytes(rate)}/s")


class RecordProgress(_Progress):
    """Records produced per partition (a Kafka restore)."""

    def __call__(self, topic: str, partition: int, produced: int) -> None:
        if self._due() is None:
            return
        self._show(f"{self.label}: {topic}/{partition} {produced:,} records produced")
