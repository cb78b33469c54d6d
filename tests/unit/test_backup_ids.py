"""Backup ids sort in start order, also for runs started in the same second."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from drkit.backup.binding import BACKUP_ID
from drkit.backup.manifest import new_backup_id


def test_runs_started_in_the_same_second_sort_in_start_order() -> None:
    second = datetime(2026, 12, 3, 9, 13, 38, tzinfo=UTC)
    starts = [second + timedelta(milliseconds=ms) for ms in (0, 1, 250, 999)]
    for _ in range(50):  # the random part never decides the order
        ids = [new_backup_id(at) for at in starts]
        assert sorted(ids) == ids
        assert all(BACKUP_ID.match(backup_id) for backup_id in ids)
    assert new_backup_id(second + timedelta(milliseconds=500)).startswith("20261203T091338Z-1f4")
