"""The local stack's processes started after ``local.up``: a region brought back, a standby
re-seeded by a failback, a MirrorMaker 2 reversed.

``local.up``'s supervisor records every process it starts in ``.drkit/local/stack.json`` (pid,
start time, command, log, OS user). A process started later is recorded there too, in place of
the entry of the same name and region, so ``local.status``, the failover and ``local.down`` (which
stops by recorded pid and start time only) know it. Each change is a read-modify-write of the
state file under ``.drkit/local/state.lock``.

A process started here is in its own session (``start_new_session``), like the supervisor's, and
outlives the command that started it; ``local.down`` stops it with the rest.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TextIO

STATE_LOCK = "state.lock"
STOP_WAIT_S = 60.0
BACK_WAIT_S = 180.0


@contextlib.contextmanager
def _locked(project_dir: Path) -> Iterator[None]:
    from drkit.local.daemon import state_dir

    directory = state_dir(project_dir)
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / STATE_LOCK).open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def update_state(project_dir: Path, change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    """Apply ``change`` to the state file's body, under the lock; returns the new body."""
    from drkit.local.daemon import STATE_FILE, read_state, state_dir, write_private

    with _locked(project_dir):
        state = read_state(project_dir)
        if state is None:
            raise RuntimeError(f"no local stack is up in {project_dir}")
        change(state)
        write_private(state_dir(project_dir) / STATE_FILE, state)
    return state


def recorded(state: dict[str, Any], name: str, region: str | None) -> dict[str, Any] | None:
    for process in state.get("processes", []):
        if process["name"] == name and process.get("region") == region:
            return dict(process)
    return None


def is_alive(process: dict[str, Any] | None) -> bool:
    from drkit.local.process import alive

    return process is not None and alive(process.get("pid"), process.get("start_time"))


def _user_of(process: dict[str, Any]) -> str | None:
    if "user" in process:
        return process["user"] if isinstance(process["user"], str) else None
    if process["name"] == "postgres":  # a state written before users were recorded
        from drkit.local.postgres import default_os_user

        return default_os_user()
    return None


def stop_recorded(
    project_dir: Path, name: str, region: str, sig: signal.Signals = signal.SIGTERM
) -> bool:
    """Stop the recorded process (``sig`` to its group, SIGKILL after ``STOP_WAIT_S``); False
    when it was not running."""
    from drkit.local.daemon import _reap, read_state

    state = read_state(project_dir) or {}
    process = recorded(state, name, region)
    if process is None or not is_alive(process):
        return False
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process["pid"], sig)
    deadline = time.monotonic() + STOP_WAIT_S
    while is_alive(process) and time.monotonic() < deadline:
        _reap(process["pid"])
        time.sleep(0.1)
    if is_alive(process):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process["pid"], signal.SIGKILL)
        while is_alive(process):
            _reap(process["pid"])
            time.sleep(0.1)
    return True


def start_recorded(
    project_dir: Path,
    name: str,
    region: str,
    command: list[str] | None = None,
    log: str | None = None,
    like: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Start ``name`` in ``region`` from its recorded command (or ``command``) and record it;
    ``like`` is the entry to take the user, log and command from when none is recorded yet."""
    from drkit.local.daemon import read_state
    from drkit.local.process import process_start_time

    state = read_state(project_dir) or {}
    entry = recorded(state, name, region) or dict(like or {})
    if not entry and command is None:
        raise RuntimeError(f"no recorded {name} process in {region} to start again")
    entry = {**entry, "name": name, "region": region}
    entry["command"] = list(command or entry["command"])
    entry["log"] = log or entry["log"]
    Path(entry["log"]).parent.mkdir(parents=True, exist_ok=True)
    with open(entry["log"], "ab") as output:
        child = subprocess.Popen(
            entry["command"],
            stdout=output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            user=_user_of(entry),
            start_new_session=True,
        )
    entry["pid"], entry["start_time"] = child.pid, process_start_time(child.pid)
    entry["user"] = _user_of(entry)

    def record(body: dict[str, Any]) -> None:
        processes = body.setdefault("processes", [])
        for index, process in enumerate(processes):
            if process["name"] == name and process.get("region") == region:
                processes[index] = entry
                return
        processes.append(entry)

    update_state(project_dir, record)
    return entry


def restart_region(project_dir: Path, region: str, out: TextIO) -> list[str]:
    """A region comes back after an outage: every recorded process of ``region`` that is not
    running starts again from its command, on the same ports and data (a PostgreSQL that was
    killed recovers as the primary it was: nothing tells it otherwise). Waits until each of the
    region's stores answers; returns the processes started."""
    from drkit.local.daemon import read_state
    from drkit.local.status import probe_role

    state = read_state(project_dir)
    if state is None:
        raise RuntimeError(f"no local stack is up in {project_dir}")
    started = []
    for process in state.get("processes", []):
        if process.get("region") != region or is_alive(process):
            continue
        if process["name"] == "mirror-maker":
            continue  # a mirror is (re)started by the failover or failback that owns its flow
        start_recorded(project_dir, process["name"], region)
        started.append(process["name"])
    deadline = time.monotonic() + BACK_WAIT_S
    waiting = dict(state["stores"][region])
    while waiting and time.monotonic() < deadline:
        for store, entry in list(waiting.items()):
            if probe_role(entry["kind"], entry["url"], region) != "down":
                del waiting[store]
        time.sleep(0.2)
    if waiting:
        raise RuntimeError(
            f"{region}: {', '.join(sorted(waiting))} did not answer within {BACK_WAIT_S:.0f}s"
        )
    out.write(f"{region} back: {', '.join(started) or 'nothing was down'}\n")
    return started
