"""Throwaway servers a test restore starts on this host, found again after a kill.

A test restore that cannot use the store's own server starts one of its own: a ``redis-server``
for every Redis test restore, a PostgreSQL server for a dr stack's (``drkit.ops.scratch_postgres``).
Each lives in a temporary directory ``drkit-scratch-<kind>-<holder tag>-*`` (``drkit.ops.scratch``)
with a record of its working directory (unique to it) and its other directories, and is stopped
and removed when the test restore ends. The server runs in a session of its own, so a run killed
with SIGKILL leaves it running: ``sweep`` (the next run, or ``invoke verify --cleanup``) stops the
servers whose run is gone, found by that working directory (a restore may have restarted the
server under another pid; a process working anywhere else is never signalled), and removes their
directories.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import tempfile
import time
from datetime import datetime
from pathlib import Path

from drkit.local.process import LocalServer
from drkit.ops.scratch import Holder, pid_alive, sweep

PREFIX = "drkit-scratch-"
RECORD = "server.json"
STOP_TIMEOUT_S = 30.0


def make_workdir(kind: str, holder: Holder, parent: Path | None = None) -> Path:
    return Path(tempfile.mkdtemp(prefix=f"{PREFIX}{kind}-{holder.tag}-", dir=parent))


def record(
    workdir: Path, server: LocalServer, paths: list[Path], stop: signal.Signals = signal.SIGTERM
) -> None:
    """Note the running ``server``'s pid, working directory, the signal that stops it at once
    (PostgreSQL: SIGQUIT, immediate shutdown) and ``paths`` to remove."""
    from drkit.local.regions import managed_processes

    (pid,) = [process.pid for _name, process in managed_processes(server)]
    assert pid is not None
    body = {
        "pid": pid,
        "cwd": os.readlink(f"/proc/{pid}/cwd"),
        "stop": int(stop),
        "paths": [str(p) for p in paths],
    }
    (workdir / RECORD).write_text(json.dumps(body))


def sweep_servers(
    kind: str, now: datetime, forced: bool, dry_run: bool, parent: Path | None = None
) -> list[str]:
    """Stop and remove the throwaway ``kind`` servers of runs that are gone; a line per one."""
    directory = parent or Path(tempfile.gettempdir())
    prefix = f"{PREFIX}{kind}-"
    found = []
    for path in sorted(directory.glob(f"{prefix}*")):
        holder = Holder.parse(path.name.removeprefix(prefix).rsplit("-", 1)[0])
        if holder is not None and path.is_dir():
            found.append((str(path), holder))
    return sweep(found, now, forced, dry_run, remove, f"throwaway {kind} server in")


def remove(workdir: str) -> None:
    """Stop the server working in the recorded directory, then remove its directories."""
    path = Path(workdir)
    try:
        body = json.loads((path / RECORD).read_text())
    except (OSError, ValueError):
        body = {}  # killed before the server was up: only the directory is left
    cwd = body.get("cwd")
    servers = working_in(cwd) if isinstance(cwd, str) else []
    for pid in servers:
        os.kill(pid, int(body.get("stop") or signal.SIGTERM))
    deadline = time.monotonic() + STOP_TIMEOUT_S
    for pid in servers:
        while pid_alive(pid):
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                break
            time.sleep(0.05)
    for other in body.get("paths") or []:
        shutil.rmtree(str(other), ignore_errors=True)
    shutil.rmtree(path, ignore_errors=True)


def working_in(cwd: str) -> list[int]:
    """The live processes whose working directory is ``cwd`` and whose parent's is not (a
    server, not its workers)."""
    found: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.readlink(entry / "cwd") != cwd:
                continue
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue  # gone meanwhile, or not ours to read
        found[int(entry.name)] = parent
    return sorted(pid for pid, parent in found.items() if parent not in found and pid_alive(pid))
