"""Backups on the configured schedules, time compressed: a simulated clock runs ``factor`` times
faster than the real one, and each store's cron fires on it. Runs of one store never overlap
(as the CronJobs' ``concurrencyPolicy: Forbid``); different stores back up concurrently.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from drkit.backup.manifest import Manifest
from stackmodels.schedule import Cron


@dataclass
class ScheduledRun:
    store: str
    due_simulated: datetime
    started_at: datetime
    finished_at: datetime
    manifest: Manifest | None
    error: str = ""


class CompressedScheduler:
    def __init__(
        self,
        schedules: dict[str, str],
        backup: Callable[[str], Manifest],
        factor: float,
        simulated_start: datetime | None = None,
    ) -> None:
        self.crons = {store: Cron(expression) for store, expression in schedules.items()}
        self.backup = backup
        self.factor = factor
        self.simulated_start = simulated_start or datetime.now(UTC).replace(second=0, microsecond=0)
        self.runs: list[ScheduledRun] = []
        self._real_start = time.monotonic()
        self._stop = threading.Event()
        self._paused: set[str] = set()
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(
                target=self._loop, args=(store,), name=f"schedule {store}", daemon=True
            )
            for store in self.crons
        ]

    def simulated_now(self) -> datetime:
        elapsed = (time.monotonic() - self._real_start) * self.factor
        return self.simulated_start + timedelta(seconds=elapsed)

    def real_delay(self, simulated: datetime) -> float:
        return max(0.0, (simulated - self.simulated_now()).total_seconds() / self.factor)

    def start(self) -> None:
        self._real_start = time.monotonic()
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=120)

    def pause(self, store: str) -> None:
        """The store is down (a disaster struck it): no backups of it until ``resume``."""
        with self._lock:
            self._paused.add(store)

    def resume(self, store: str) -> None:
        with self._lock:
            self._paused.discard(store)

    def successful(self, store: str) -> list[ScheduledRun]:
        return [r for r in self.runs if r.store == store and r.manifest is not None]

    def _loop(self, store: str) -> None:
        cron = self.crons[store]
        due = cron.next_after(self.simulated_now())
        while not self._stop.wait(self.real_delay(due)):
            with self._lock:
                paused = store in self._paused
            if not paused:
                self._run(store, due)
            due = cron.next_after(max(due, self.simulated_now()))

    def _run(self, store: str, due: datetime) -> None:
        started = datetime.now(UTC)
        try:
            manifest: Manifest | None = self.backup(store)
            error = ""
        except Exception as failure:
            manifest, error = None, f"{type(failure).__name__}: {failure}".strip()
        self.runs.append(ScheduledRun(store, due, started, datetime.now(UTC), manifest, error))
