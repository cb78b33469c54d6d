"""Progress on long work, for a person at a terminal or a log collector.

On a terminal the line updates in place a few times a second; otherwise (a CronJob's log, read
with ``kubectl logs``) whole lines, never a ``\\r``: one at each tenth of the total when it is
known, and one every few seconds otherwise, so the log shows the work advancing without flooding.
Where the total is known (a restore: the manifest's size; a backup: the size of the store's
previous backup, from the catalog) each line has the percentage and the time left (ETA).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

from stackmodels.durations import format_duration

MiB = 1024 * 1024


def human_bytes(size: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(size) < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"


class _Progress:
    """A line now and then: in place a few times a second on a terminal (``\\r``), otherwise
    whole lines, so ``kubectl logs`` reads one line per step: every ``interval`` seconds, and,
    when the total is known, also at each ``step_percent`` of it."""

    def __init__(
        self,
        label: str,
        stream: TextIO | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.label = label
        self.stream = stream or sys.stderr
        self.interactive = self.stream.isatty()
        self.interval = 0.25 if self.interactive else 5.0
        self._clock = clock
        self.started = clock()
        self._last = self.started
        self._shown = False
        self._width = 0

    def _due(self) -> float | None:
        """The time now when a line is due, else None."""
        now = self._clock()
        if now - self._last < self.interval:
            return None
        self._last = now
        return now

    def _show(self, line: str) -> None:
        if self.interactive:
            self.stream.write("\r" + line.ljust(self._width))
            self._width = max(self._width, len(line))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()
        self._shown = True

    def done(self) -> None:
        if self._shown and self.interactive:
            self.stream.write("\r" + " " * self._width + "\r")
            self.stream.flush()


class ByteProgress(_Progress):
    """Callable as the engine's ``progress(name, bytes of that object so far)``: the bytes of
    every object are added up. With ``total`` (a restore: the manifest's size; a backup: the
    previous backup's, an ``estimate``) each line has the percentage and the time left. A
    callable ``total`` is asked once, at the first call (a backup reads its catalog once the run
    holds its lease and reads data, so a dead vault fails the run as it did, no later)."""

    def __init__(
        self,
        label: str,
        stream: TextIO | None = None,
        *,
        total: int | Callable[[], int | None] | None = None,
        estimate: bool = False,
        step_percent: int = 10,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(label, stream, clock=clock)
        self.total: int | None = None
        self._pending_total = total if callable(total) else None
        self.estimate = estimate
        self.step_percent = step_percent
        self._set_total(None if callable(total) else total)
        self._objects: dict[str, int] = {}
        self.done_bytes = 0
        self._step = 0

    def _set_total(self, total: int | None) -> None:
        self.total = total if total and total > 0 else None
        if self.total is not None and not self.interactive:
            self.interval = 30.0  # the percentage steps give the lines; this the quiet stretches

    def __call__(self, name: str, raw: int) -> None:
        if self._pending_total is not None:
            ask, self._pending_total = self._pending_total, None
            self._set_total(ask())
        self.done_bytes += raw - self._objects.get(name, 0)
        self._objects[name] = raw
        step = self._percent_step()
        now = self._clock() if step > self._step else self._due()
        if now is None:
            return
        self._last = now
        self._step = max(self._step, step)
        self._show(self.line(name, now))

    def _percent_step(self) -> int:
        """How many ``step_percent`` steps are done (0 without a total); interactive: none (the
        line is redrawn on its own interval)."""
        if self.total is None or self.interactive or self.step_percent <= 0:
            return 0
        return min(100, 100 * self.done_bytes // self.total) // self.step_percent

    def line(self, name: str, now: float) -> str:
        elapsed = max(now - self.started, 1e-6)
        rate = self.done_bytes / elapsed
        done = self.done_bytes
        head = f"{self.label}: {name}"
        if self.total is None:
            return f"{head} {human_bytes(done)} read, {human_bytes(rate)}/s"
        about = "~" if self.estimate else ""
        if done > self.total and self.estimate:
            return (
                f"{head} {human_bytes(done)} of {about}{human_bytes(self.total)} (past the "
                f"previous backup's size), {human_bytes(rate)}/s"
            )
        if done >= self.total:
            return f"{head} 100% ({human_bytes(done)} of {human_bytes(self.total)}), " + (
                f"{human_bytes(rate)}/s"
            )
        percent = 100 * done / self.total
        eta = format_duration((self.total - done) / rate) if rate > 0 else "unknown"
        return (
            f"{head} {percent:.0f}% ({human_bytes(done)} of {about}{human_bytes(self.total)}), "
            f"{human_bytes(rate)}/s, ETA {eta}"
        )


class RecordProgress(_Progress):
    """Records produced per partition (a Kafka restore)."""

    def __call__(self, topic: str, partition: int, produced: int) -> None:
        if self._due() is None:
            return
        self._show(f"{self.label}: {topic}/{partition} {produced:,} records produced")
