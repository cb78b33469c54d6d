"""Progress with a percentage and an ETA where the total is known (issue 20 item 5): redrawn in
place on a terminal, whole lines (no ``\\r``) in a log, as ``kubectl logs`` shows it."""

from __future__ import annotations

import io
import os
import pty
import select

import pytest

from drkit.progress import ByteProgress, RecordProgress

pytestmark = pytest.mark.unit

MiB = 1024 * 1024


class Clock:
    """A clock the test moves: the figures are exact, no test waits."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_log_gets_one_line_per_tenth_with_percentage_and_eta() -> None:
    clock, log = Clock(), io.StringIO()
    progress = ByteProgress("restore trading-db", log, total=100 * MiB, clock=clock)
    assert not progress.interactive
    for done in range(1, 101):  # 1 MiB a second, a call per MiB
        clock.now += 1.0
        progress("database.dump", done * MiB)
    progress.done()
    text = log.getvalue()
    assert "\r" not in text
    lines = text.splitlines()
    assert len(lines) == 10, lines  # 10%, 20%, ... 100%: one line each, nothing between
    assert lines[0] == (
        "restore trading-db: database.dump 10% (10.0 MiB of 100.0 MiB), 1.0 MiB/s, ETA 1m30s"
    )
    assert lines[3].startswith("restore trading-db: database.dump 40% (40.0 MiB")
    assert lines[3].endswith("ETA 1m")
    assert lines[-1] == "restore trading-db: database.dump 100% (100.0 MiB of 100.0 MiB), 1.0 MiB/s"


def test_a_log_still_gets_a_line_in_a_long_quiet_stretch() -> None:
    clock, log = Clock(), io.StringIO()
    progress = ByteProgress("trading-db", log, total=1000 * MiB, clock=clock)
    for _ in range(4):
        clock.now += 31.0  # slower than a tenth per interval
        progress("database.dump", 1 * MiB)
    lines = log.getvalue().splitlines()
    assert len(lines) == 4 and all(" 0% (1.0 MiB of 1000.0 MiB)" in line for line in lines)


def test_objects_add_up_and_a_backup_estimate_is_marked_and_may_be_passed() -> None:
    clock, log = Clock(), io.StringIO()
    progress = ByteProgress("trading-db", log, total=10 * MiB, estimate=True, clock=clock)
    progress.interval = 0.0
    clock.now += 2.0
    progress("a.dump", 2 * MiB)
    progress("a.dump", 4 * MiB)  # the same object further on: 4, not 6
    progress("b.dump", 1 * MiB)
    clock.now += 10.0
    progress("b.dump", 8 * MiB)
    lines = log.getvalue().splitlines()
    assert lines[0] == "trading-db: a.dump 20% (2.0 MiB of ~10.0 MiB), 1.0 MiB/s, ETA 8s"
    assert lines[2].startswith("trading-db: b.dump 50% (5.0 MiB of ~10.0 MiB)")
    assert lines[-1] == (
        "trading-db: b.dump 12.0 MiB of ~10.0 MiB (past the previous backup's size), 1.0 MiB/s"
    )


def test_without_a_total_a_log_gets_bytes_and_rate_every_interval() -> None:
    clock, log = Clock(), io.StringIO()
    progress = ByteProgress("trading-db", log, clock=clock)
    clock.now += 1.0
    progress("database.dump", MiB)  # within the first 5 s: nothing yet
    clock.now += 5.0
    progress("database.dump", 6 * MiB)
    assert log.getvalue() == "trading-db: database.dump 6.0 MiB read, 1.0 MiB/s\n"
    records = RecordProgress("restore orders", log, clock=clock)
    clock.now += 6.0
    records("orders", 1, 1200)
    assert log.getvalue().endswith("restore orders: orders/1 1,200 records produced\n")


def test_a_terminal_gets_the_line_redrawn_in_place() -> None:
    master, replica = pty.openpty()
    try:
        with os.fdopen(replica, "w", closefd=True) as terminal:
            clock = Clock()
            progress = ByteProgress("restore trading-db", terminal, total=100 * MiB, clock=clock)
            assert progress.interactive and progress.interval == 0.25
            for done in (10, 10.1, 55, 90):  # 10.1: within 0.25 s of the last, not drawn
                clock.now += 10.0 if done != 10.1 else 0.1
                progress("database.dump", int(done * MiB))
            progress.done()
            written = _read_all(master)
    finally:
        os.close(master)
    assert "\n" not in written.replace("\r\n", "")  # no new line: the same line, redrawn
    drawn = [part.strip() for part in written.split("\r") if part.strip()]
    assert drawn == [
        "restore trading-db: database.dump 10% (10.0 MiB of 100.0 MiB), 1.0 MiB/s, ETA 1m30s",
        "restore trading-db: database.dump 55% (55.0 MiB of 100.0 MiB), 2.7 MiB/s, ETA 16.4s",
        "restore trading-db: database.dump 90% (90.0 MiB of 100.0 MiB), 3.0 MiB/s, ETA 3.3s",
    ]
    assert written.endswith("\r")  # done() wiped the line and left the cursor at its start


def _read_all(master: int) -> str:
    chunks = []
    while select.select([master], [], [], 0.5)[0]:
        chunk = os.read(master, 65536)
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks).decode()


def test_a_total_given_as_a_callable_is_asked_once_at_the_first_call() -> None:
    """A backup reads its catalog for the estimate only once it reads data (after its lease)."""
    clock, log, asked = Clock(), io.StringIO(), []

    def previous() -> int:
        asked.append(clock.now)
        return 10 * MiB

    progress = ByteProgress("trading-db", log, total=previous, estimate=True, clock=clock)
    assert asked == [] and progress.total is None
    clock.now += 1.0
    progress("database.dump", 2 * MiB)
    progress("database.dump", 3 * MiB)
    assert asked == [1001.0] and progress.total == 10 * MiB
    assert log.getvalue().startswith("trading-db: database.dump 20% (2.0 MiB of ~10.0 MiB)")
    nothing = ByteProgress("trading-db", log, total=lambda: None, clock=clock)
    nothing("database.dump", MiB)
    assert nothing.total is None and nothing.interval == 5.0
