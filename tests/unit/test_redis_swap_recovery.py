"""``recover_swap`` on the files a killed Redis restore leaves, with the server down (nothing
listens on its port): finish the swap when the staged file is the journaled one, else put the
previous file back; start the server once; repeat safely. The same paths run against a real
server in tests/integration/test_reliability_restores.py; here each file state is set up exactly.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from drkit.backup.redis import RedisSource
from drkit.local.process import free_port
from drkit.restore.redis import Swap, VolumeTarget, recover_swap, staged_path

pytestmark = pytest.mark.unit

OLD, NEW = b"old rdb bytes", b"new rdb bytes from the backup"


def down_target(directory: Path, starts: list[str]) -> VolumeTarget:
    return VolumeTarget(
        name="redis under test",
        source=RedisSource("127.0.0.1", free_port(), socket_timeout=1.0, retries=0),
        rdb_path=directory / "dump.rdb",
        stop_server=lambda: None,
        start_server=lambda: starts.append("start"),
    )


def journaled(target: VolumeTarget, content: bytes = NEW) -> Swap:
    return Swap(
        backup_id="20261203T000000Z-abcdef",
        rdb=str(target.rdb_path),
        staged=str(staged_path(target.staging_dir, "20261203T000000Z-abcdef")),
        previous=str(target.previous_path),
        raw_size=len(content),
        raw_sha256=hashlib.sha256(content).hexdigest(),
    )


def files(target: VolumeTarget) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(target.staging_dir.iterdir())}


@pytest.mark.parametrize("state", ["stopped", "old-renamed", "new-in-place"])
def test_a_journaled_swap_is_finished_whatever_step_it_reached(tmp_path: Path, state: str) -> None:
    starts: list[str] = []
    target = down_target(tmp_path, starts)
    swap = journaled(target)
    if state == "stopped":
        target.rdb_path.write_bytes(OLD)
        Path(swap.staged).write_bytes(NEW)
    elif state == "old-renamed":
        target.previous_path.write_bytes(OLD)
        Path(swap.staged).write_bytes(NEW)
    else:
        target.previous_path.write_bytes(OLD)
        target.rdb_path.write_bytes(NEW)

    assert recover_swap(target, swap) == "finished"
    assert files(target) == {"dump.rdb": NEW, "dump.rdb.before-restore": OLD}
    assert recover_swap(target, swap) == "finished"  # again: the same end
    assert files(target) == {"dump.rdb": NEW, "dump.rdb.before-restore": OLD}
    assert starts == ["start", "start"]


@pytest.mark.parametrize("record", ["tampered", "none"])
def test_a_staged_file_nobody_vouches_for_is_dropped_and_the_old_file_put_back(
    tmp_path: Path, record: str
) -> None:
    starts: list[str] = []
    target = down_target(tmp_path, starts)
    swap = journaled(target)
    target.previous_path.write_bytes(OLD)  # killed after the old file moved aside
    Path(swap.staged).write_bytes(NEW + b"!" if record == "tampered" else NEW)

    assert recover_swap(target, swap if record == "tampered" else None) == "rolled back"
    assert files(target) == {"dump.rdb": OLD}
    assert starts == ["start"]


def test_an_empty_server_stays_empty_when_rolled_back(tmp_path: Path) -> None:
    starts: list[str] = []
    target = down_target(tmp_path, starts)
    staged_path(target.staging_dir, "x").write_bytes(NEW[:3])  # a download cut short
    assert recover_swap(target, None) == "rolled back"
    assert files(target) == {}
    assert starts == ["start"]


def test_the_kill_hook_kills_only_at_its_point() -> None:
    script = "from drkit import killpoints; killpoints.reached('a'); killpoints.reached('b')"
    for wanted, code in (("b", -signal.SIGKILL), ("c", 0), ("", 0)):
        env = {**os.environ, "DRKIT_KILL_AT": wanted}
        result = subprocess.run([sys.executable, "-c", script], env=env, check=False)
        assert result.returncode == code, wanted
