"""``invoke local.up`` / ``local.status`` / ``local.down``: the two-region local stack, kept up.

``up`` starts a supervisor (``python -m drkit.local.daemon supervise``), detached in its own
session, and returns once it reports the stack ready (or failed). The supervisor is the parent of
every server, so it reaps them (here PID 1 reaps no orphan: a server whose parent had exited would
stay a zombie), and it runs the vault copier. It writes ``.drkit/local/stack.json`` (mode 600:
the URLs carry passwords) with every process's pid, start time, ports and log, the stores' URLs
per region, and its own status (``starting``, ``ready``, ``failed``), and the outputs of each
region (``.drkit/local/<region>/outputs.json``; prod's also at ``.drkit/local/outputs.json``, which
``--stack local`` reads). dr's ``outputs-aurora.json`` adds what an AWS dr stack also exports: its
Aurora cluster, the standby as dr's emulator describes it (``drkit.local.aurora``), for
``invoke drill --stack dr`` to restore a scratch cluster of it; ``outputs.json`` leaves it out, as
the failover and status paths would then take AWS's Aurora route (switchover, CloudWatch lag),
which the local world does not serve.

One stack per checkout: ``up`` takes an exclusive lock on ``.drkit/local/lock`` and hands it to
the supervisor, which holds it for its whole life; a second ``up`` finds it taken and reports the
stack already up (waiting for it if it is still starting). ``down`` asks the supervisor to stop
(SIGTERM: every server in reverse start order), then kills, by recorded pid and start time only,
anything of the stack that outlived it, so it never touches a process it did not start.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from drkit.context import LOCAL_STATE
from drkit.human import table
from drkit.kinds import REGISTRY
from drkit.local.local_config import local_stack_config
from drkit.local.process import alive, port_open, process_start_time
from drkit.local.regions import (
    AURORA_LAG_EVERY,
    AURORA_OUTPUTS,
    DR,
    PROD,
    LocalRegions,
    selected_kinds,
)
from drkit.local.status import stack_status

STATE_FILE = "stack.json"
LOCK_FILE = "lock"
READY_TIMEOUT_S = 600.0
STOP_TIMEOUT_S = 120.0
KILLED_WAIT_S = 30.0


class LocalStackError(RuntimeError):
    """A refusal or failure of local.up/down, as one line."""


# --- processes, by pid and start time ----------------------------------------------------------


def _reap(pid: int) -> None:
    """Collect the supervisor's exit status when it is our child (a test calling ``up``)."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


# --- state -------------------------------------------------------------------------------------


def state_dir(project_dir: Path) -> Path:
    return project_dir / LOCAL_STATE


def read_state(project_dir: Path) -> dict[str, Any] | None:
    path = state_dir(project_dir) / STATE_FILE
    try:
        return dict(json.loads(path.read_text()))
    except (OSError, ValueError):
        return None


def write_private(path: Path, body: Any) -> None:
    """Atomically, mode 600."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(path.suffix + ".partial")
    with contextlib.suppress(FileNotFoundError):
        partial.unlink()
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        json.dump(body, handle, indent=2)
    partial.replace(path)


def live_processes(state: dict[str, Any]) -> list[dict[str, Any]]:
    items = [*state.get("processes", []), state.get("supervisor") or {}]
    return [p for p in items if p and alive(p.get("pid"), p.get("start_time"))]


def _name(process: dict[str, Any]) -> str:
    region = f" ({process['region']})" if process.get("region") else ""
    return f"{process['name']}{region} pid {process['pid']}"


# --- up ----------------------------------------------------------------------------------------


def up(
    project_dir: Path,
    regions: int = 2,
    only: Sequence[str] | None = None,
    out: TextIO = sys.stdout,
) -> dict[str, Any]:
    """Start the stack unless it is up; returns its state. Raises ``ValueError`` for bad input
    (nothing started) and ``LocalStackError`` when the stack cannot start (all stopped)."""
    if regions not in (1, 2):
        raise ValueError(f"--regions {regions}: allowed: 1 (prod only) or 2 (prod and dr)")
    config = local_stack_config(project_dir)
    kinds = selected_kinds(config, list(only or []))
    for kind, item in REGISTRY.items():
        reason = item.local.missing() if kind in kinds and item.local.missing else None
        if reason is not None:
            raise LocalStackError(reason)
    directory = state_dir(project_dir)
    directory.mkdir(parents=True, exist_ok=True)
    lock = (directory / LOCK_FILE).open("a+")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.close()
        return _already_up(project_dir, out)
    try:
        previous = read_state(project_dir)
        if previous is not None:
            survivors = live_processes(previous)
            if survivors:
                raise LocalStackError(
                    "a previous local stack's processes are still alive: "
                    + ", ".join(_name(p) for p in survivors)
                    + "; stop them with invoke local.down"
                )
            (directory / STATE_FILE).unlink(missing_ok=True)
        supervisor = _spawn_supervisor(project_dir, regions, list(only or []), lock.fileno())
    finally:
        lock.close()  # the supervisor holds its own copy of the locked descriptor
    state = _wait_ready(project_dir, supervisor)
    _print_where(state, out)
    return state


def _spawn_supervisor(
    project_dir: Path, regions: int, only: list[str], lock_fd: int
) -> subprocess.Popen[bytes]:
    logs = state_dir(project_dir) / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable,
        "-m",
        "drkit.local.daemon",
        "supervise",
        "--project-dir",
        str(project_dir),
        "--regions",
        str(regions),
        "--lock-fd",
        str(lock_fd),
    ]
    if only:
        command += ["--only", ",".join(only)]
    with (logs / "supervisor.log").open("ab") as log:
        return subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            pass_fds=(lock_fd,),
            start_new_session=True,
            cwd=project_dir,
        )


def _wait_ready(project_dir: Path, supervisor: subprocess.Popen[bytes]) -> dict[str, Any]:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        state = read_state(project_dir)
        if state is not None and state.get("supervisor", {}).get("pid") == supervisor.pid:
            if state.get("status") == "ready":
                return state
            if state.get("status") == "failed":
                supervisor.wait(timeout=STOP_TIMEOUT_S)
                raise LocalStackError(str(state.get("error")))
        if supervisor.poll() is not None:
            log = state_dir(project_dir) / "logs" / "supervisor.log"
            raise LocalStackError(
                f"the local stack's supervisor exited ({supervisor.returncode}) before the stack "
                f"was ready; see {log}"
            )
        time.sleep(0.2)
    down(project_dir, out=open(os.devnull, "w"))  # noqa: SIM115
    raise LocalStackError(f"the local stack was not ready within {READY_TIMEOUT_S:.0f}s")


def _already_up(project_dir: Path, out: TextIO) -> dict[str, Any]:
    """Another ``up`` (or its supervisor) holds the lock: wait for its stack, then say so."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        state = read_state(project_dir)
        if state is not None and state.get("status") == "ready":
            pid = state["supervisor"]["pid"]
            out.write(f"local stack already up (supervisor pid {pid}); invoke local.status\n")
            return state
        if state is not None and state.get("status") == "failed":
            raise LocalStackError(f"another local.up failed: {state.get('error')}")
        if state is not None and state.get("status") == "stopping":
            raise LocalStackError("the local stack is stopping (local.down); run local.up after")
        time.sleep(0.2)
    raise LocalStackError("another local.up holds the lock and its stack never became ready")


def _print_where(state: dict[str, Any], out: TextIO) -> None:
    out.write(
        f"local stack up in {state['ready_seconds']:.1f}s "
        f"(supervisor pid {state['supervisor']['pid']})\n"
    )
    slowest = sorted(state.get("server_start_seconds", {}).items(), key=lambda item: -item[1])
    out.write("  slowest to start: " + ", ".join(f"{k} {v:.0f}s" for k, v in slowest[:4]) + "\n")
    for region, stores in state["stores"].items():
        out.write(f"{region}:\n")
        rows = [(name, store["role"], store["url"]) for name, store in stores.items()]
        for line in table(("store", "role", "url"), rows, rule=False):
            out.write(f"  {line}\n")
        out.write(f"  outputs        {state['outputs'][region]}\n")
    if state.get("kubeconfig"):
        out.write(f"kubeconfig: {state['kubeconfig']} (contexts local-prod, local-dr)\n")
    out.write(f"stable names: {state['names']}\n")
    out.write("invoke local.status for roles and lag; invoke local.down stops it all\n")


# --- down --------------------------------------------------------------------------------------


def down(project_dir: Path, out: TextIO = sys.stdout) -> int:
    """Stop every process ``up`` started, and nothing else; returns how many were stopped."""
    state = read_state(project_dir)
    if state is None:
        out.write("no local stack is up\n")
        return 0
    processes = live_processes(state)
    supervisor = state.get("supervisor") or {}
    if alive(supervisor.get("pid"), supervisor.get("start_time")):
        os.kill(supervisor["pid"], signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while time.monotonic() < deadline:
            _reap(supervisor["pid"])
            if not alive(supervisor["pid"], supervisor.get("start_time")):
                break
            time.sleep(0.1)
    for process in [*state.get("processes", []), supervisor]:
        if process and alive(process.get("pid"), process.get("start_time")):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process["pid"], signal.SIGKILL)
            _reap(process["pid"])  # our child when this process started it (a failback's)
    if supervisor.get("pid"):
        for _ in range(50):
            _reap(supervisor["pid"])
            if not alive(supervisor["pid"], supervisor.get("start_time")):
                break
            time.sleep(0.1)
    deadline = time.monotonic() + KILLED_WAIT_S  # SIGKILL is delivered asynchronously (a JVM)
    while (left := live_processes(state)) and time.monotonic() < deadline:
        for process in left:
            _reap(process["pid"])
        time.sleep(0.1)
    if left:
        raise LocalStackError("still running after local.down: " + ", ".join(map(_name, left)))
    deadline = time.monotonic() + KILLED_WAIT_S  # a killed JVM's threads outlive its leader
    while (busy := [p for p in state.get("ports", []) if port_open(p)]) and (
        time.monotonic() < deadline
    ):
        time.sleep(0.2)
    (state_dir(project_dir) / STATE_FILE).unlink(missing_ok=True)
    out.write(f"local stack down: {len(processes)} processes stopped\n")
    if busy:
        raise LocalStackError(f"ports still answering after local.down: {busy}")
    return len(processes)


# --- status ------------------------------------------------------------------------------------


def status(project_dir: Path) -> dict[str, Any]:
    state = read_state(project_dir)
    if state is None or state.get("status") != "ready":
        return {"status": "down" if state is None else state.get("status"), "regions": {}}
    return stack_status(state)


# --- the supervisor ----------------------------------------------------------------------------


def supervise(project_dir: Path, regions: int, only: list[str], lock_fd: int) -> int:
    """Run the stack until SIGTERM; the lock on ``lock_fd`` is held as long as this runs."""
    started = time.monotonic()
    directory = state_dir(project_dir)
    me = {"name": "supervisor", "pid": os.getpid(), "start_time": process_start_time(os.getpid())}
    state: dict[str, Any] = {"status": "starting", "supervisor": me, "error": None}
    write_private(directory / STATE_FILE, state)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    workdir = directory / "data"
    shutil.rmtree(workdir, ignore_errors=True)
    config = local_stack_config(project_dir)
    world = LocalRegions(workdir, config, regions, only)
    try:
        world.start()
    except Exception as error:
        state |= {"status": "failed", "error": one_line(error)}
        write_private(directory / STATE_FILE, state)
        return 1
    try:
        state = _describe(world, project_dir, started) | {"supervisor": me, "error": None}
        write_private(directory / STATE_FILE, state)
        ticks = 0
        while not stop.wait(1.0):
            for _, _, process in world.processes():
                process.running()  # polls, so a killed server is reaped, not left a zombie
            ticks += 1
            if ticks % AURORA_LAG_EVERY == 1:
                with contextlib.suppress(Exception):  # a dead region publishes nothing
                    world.publish_aurora_lag()
    finally:
        # processes started since (drkit.local.recorded: a region brought back, a failback's
        # standby) are recorded in the file only: keep them, so local.down stops them too
        state = read_state(project_dir) or state
        state["status"] = "stopping"
        with contextlib.suppress(OSError):
            write_private(directory / STATE_FILE, state)
        world.stop()
        os.close(lock_fd)
    return 0


def _describe(world: LocalRegions, project_dir: Path, started: float) -> dict[str, Any]:
    """Write outputs, credentials, the name map and the kubeconfig; return the state body."""
    from drkit.local.names import write_names

    directory = state_dir(project_dir)
    outputs: dict[str, str] = {}
    for region, stack_outputs in world.outputs.items():
        path = directory / region / "outputs.json"
        stack_outputs.write(path)
        world.credentials[region].write(directory / region / "credentials.json")
        outputs[region] = str(path)
    world.outputs[PROD].write(directory / "outputs.json")
    if world.aurora is not None:  # dr as an AWS dr stack exports it: with its Aurora cluster
        world.outputs[DR].model_copy(update={"aurora": world.aurora}).write(
            directory / DR / AURORA_OUTPUTS
        )
    world.credentials[PROD].write(directory / "credentials.json")
    stores: dict[str, dict[str, Any]] = {}
    for name in world.regions:
        stores[name] = _store_entries(world, name)
    processes = []
    for process_name, region_name, process in world.processes():
        pid = process.pid
        processes.append(
            {
                "name": process_name,
                "pid": pid,
                "region": region_name,
                "start_time": process_start_time(pid) if pid else None,
                "log": str(process.log_path),
                # What it takes to start it again on the same ports and data (a region restart).
                "command": process.command,
                "user": process.user,
            }
        )
    kubeconfig = _write_kubeconfig(world, directory)
    names = write_names(directory, world)
    return {
        "status": "ready",
        "started_at": datetime.now(UTC).isoformat(),
        "ready_seconds": round(time.monotonic() - started, 1),
        "server_start_seconds": dict(world.started.seconds),
        "regions": list(world.regions),
        "stores": stores,
        "mirrored_topics": world.mirrored_topics,
        "processes": processes,
        "ports": _ports(stores),
        "outputs": outputs,
        "kubeconfig": str(kubeconfig) if kubeconfig else None,
        "names": str(names),
    }


def _store_entries(world: LocalRegions, region_name: str) -> dict[str, Any]:
    """Each store's server in the region, as its kind's ``local.served`` names it."""
    entries: dict[str, Any] = {}
    for kind, item in REGISTRY.items():
        store = world.store_of(kind)
        served = item.local.served(world, region_name, store) if store is not None else None
        if store is None or served is None:
            continue
        entries[store] = {
            "kind": kind.value,
            "url": served.url,
            "port": served.port,
            "process": served.process,
            "role": "primary" if region_name == PROD else "standby",
            "protection": (
                world.config.stores[store].continuous_protection if world.two_regions else None
            ),
        }
    return entries


def _ports(stores: dict[str, dict[str, Any]]) -> list[int]:
    return sorted({entry["port"] for region in stores.values() for entry in region.values()})


def _write_kubeconfig(world: LocalRegions, directory: Path) -> Path | None:
    """One kubeconfig with a context per region: ``local-prod`` and ``local-dr``."""
    import yaml

    clusters, users, contexts = [], [], []
    for name, region in world.regions.items():
        if region.kubernetes is None:
            continue
        context = f"local-{name}"
        clusters.append(
            {
                "name": context,
                "cluster": {
                    "server": region.kubernetes.server,
                    "certificate-authority": str(region.kubernetes.ca_path),
                },
            }
        )
        users.append({"name": f"{context}-admin", "user": {"token": region.kubernetes.token}})
        contexts.append(
            {
                "name": context,
                "context": {
                    "cluster": context,
                    "user": f"{context}-admin",
                    "namespace": world.config.kubernetes.namespace,
                },
            }
        )
    if not clusters:
        return None
    path = directory / "kubeconfig"
    body = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": clusters,
        "users": users,
        "contexts": contexts,
        "current-context": f"local-{PROD}",
    }
    path.touch(mode=0o600)
    path.write_text(yaml.safe_dump(body, sort_keys=False))
    return path


def one_line(error: BaseException) -> str:
    """The first line of a start failure (a server's quotes its log tail after it), plus the log
    line that says a port is taken, if there is one: that is the cause to name."""
    lines = str(error).strip().splitlines()
    first = lines[0].rstrip(":") if lines else type(error).__name__
    taken = next((line.strip() for line in lines[1:] if "in use" in line.lower()), None)
    return f"{first}: {taken}" if taken else first


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m drkit.local.daemon")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("supervise", help="run the local stack until SIGTERM")
    run.add_argument("--project-dir", type=Path, required=True)
    run.add_argument("--regions", type=int, default=2)
    run.add_argument("--only", default="")
    run.add_argument("--lock-fd", type=int, required=True)
    args = parser.parse_args(argv)
    only = [item for item in args.only.split(",") if item]
    return supervise(args.project_dir.resolve(), args.regions, only, args.lock_fd)


if __name__ == "__main__":
    raise SystemExit(main())


__all__ = ["DR", "PROD", "LocalStackError", "down", "status", "up"]
