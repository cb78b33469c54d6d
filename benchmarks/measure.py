"""Run a command and measure it the way the benchmarks compare pipelines: wall time, the peak
resident memory of its whole process tree, and the CPU seconds of that tree.

A pipeline is several processes at once (``pg_dump | gzip | aws``), so its memory is the sum of
theirs at a moment, not the largest one: ``getrusage``'s ``ru_maxrss`` (what ``/usr/bin/time``
reports) is the largest single process, which would flatter a pipeline. So a thread samples the
tree under ``/proc`` every ``SAMPLE_INTERVAL`` seconds and keeps the largest sum of resident sets.
CPU comes from ``wait4``: Linux returns the child's own usage plus that of every descendant it
waited for, which a shell pipeline and our runner both do, so nothing is missed between samples.

Servers (PostgreSQL's backends, Redis's save child, the emulators) are not the command's children
and are not counted here; ``ServerCpu`` measures a server's process tree separately.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

SAMPLE_INTERVAL = 0.05
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class CommandFailed(RuntimeError):
    """A measured command exited non-zero; the message quotes the end of its stderr."""


@dataclass(frozen=True)
class Sample:
    """One run of one command."""

    seconds: float
    cpu_seconds: float
    peak_rss: int
    """Bytes: the largest sum of the resident sets of the command's process tree."""
    stdout: str = ""
    stderr: str = ""


@dataclass
class Figure:
    """One quantity over several runs: reported as the median with the min-max spread."""

    values: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return float(statistics.median(self.values)) if self.values else float("nan")

    @property
    def low(self) -> float:
        return min(self.values) if self.values else float("nan")

    @property
    def high(self) -> float:
        return max(self.values) if self.values else float("nan")

    def as_dict(self) -> dict[str, object]:
        return {"median": self.median, "min": self.low, "max": self.high, "values": self.values}


def children(pid: int) -> list[int]:
    """Direct children of ``pid``, over all its threads (any thread may fork)."""
    found: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for task in tasks:
        try:
            text = Path(f"/proc/{pid}/task/{task}/children").read_text()
        except OSError:
            continue
        found.extend(int(part) for part in text.split())
    return found


def tree(root: int) -> list[int]:
    """``root`` and every descendant alive now."""
    pids, queue = [], [root]
    while queue:
        pid = queue.pop()
        pids.append(pid)
        queue.extend(children(pid))
    return pids


def rss_bytes(pid: int) -> int:
    try:
        fields = Path(f"/proc/{pid}/statm").read_text().split()
    except OSError:
        return 0  # exited between listing and reading
    return int(fields[1]) * PAGE_SIZE


class _PeakSampler(threading.Thread):
    def __init__(self, root: int) -> None:
        super().__init__(name=f"rss sampler {root}", daemon=True)
        self.root = root
        self.peak = 0
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.is_set():
            self.peak = max(self.peak, sum(rss_bytes(pid) for pid in tree(self.root)))
            self._done.wait(SAMPLE_INTERVAL)

    def finish(self) -> int:
        self._done.set()
        self.join()
        return self.peak


def run_measured(
    command: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    stdout: IO[bytes] | int | None = subprocess.PIPE,
    timeout: float = 3600.0,
) -> Sample:
    """Run ``command`` to the end and measure it; raise CommandFailed on a non-zero exit."""
    started = time.monotonic()
    process = subprocess.Popen(
        list(command),
        env=dict(env) if env is not None else None,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=stdout,
        stderr=subprocess.PIPE,
    )
    sampler = _PeakSampler(process.pid)
    sampler.start()
    out_chunks: list[bytes] = []
    err_chunks: list[bytes] = []
    readers = [
        threading.Thread(target=lambda: err_chunks.append(_read(process.stderr)), daemon=True)
    ]
    if stdout == subprocess.PIPE:
        readers.append(
            threading.Thread(target=lambda: out_chunks.append(_read(process.stdout)), daemon=True)
        )
    for reader in readers:
        reader.start()
    deadline = started + timeout
    status = 0
    while True:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid == process.pid:
            break
        if time.monotonic() > deadline:
            process.kill()
            _, status, usage = os.wait4(process.pid, 0)
            break
        time.sleep(0.01)
    seconds = time.monotonic() - started
    peak = sampler.finish()
    process.returncode = os.waitstatus_to_exitcode(status)  # reaped by wait4, not by Popen
    for reader in readers:
        reader.join()
    errors = b"".join(err_chunks).decode(errors="replace")
    if process.returncode != 0:
        shown = " ".join(command)
        raise CommandFailed(
            f"{shown[:300]} exited {process.returncode} after {seconds:.1f}s: {errors[-2000:]}"
        )
    return Sample(
        seconds=seconds,
        cpu_seconds=usage.ru_utime + usage.ru_stime,
        peak_rss=peak,
        stdout=b"".join(out_chunks).decode(errors="replace"),
        stderr=errors[-20_000:],
    )


def _read(stream: IO[bytes] | None) -> bytes:
    return stream.read() if stream is not None else b""


def shell(script: str) -> list[str]:
    """A seed pipeline as the seed runs it: ``/bin/sh -c``, failing if any stage fails."""
    return ["/bin/bash", "-o", "pipefail", "-e", "-c", script]


class ServerCpu:
    """CPU seconds a server's process tree used between ``start`` and ``stop``.

    A server forks a process per client (PostgreSQL) or per save (Redis) and reaps it, so the
    total is the live tree's own time plus the root's reaped-children time (``cutime``/``cstime``).
    """

    def __init__(self, root: int | None) -> None:
        self.root = root
        self._before = 0.0

    def _total(self) -> float:
        if self.root is None:
            return 0.0
        ticks = 0
        for pid in tree(self.root):
            fields = _stat_fields(pid)
            if fields:
                ticks += int(fields[11]) + int(fields[12])  # utime, stime
                if pid == self.root:
                    ticks += int(fields[13]) + int(fields[14])  # cutime, cstime
        return ticks / CLOCK_TICKS

    def start(self) -> None:
        self._before = self._total()

    def stop(self) -> float:
        return self._total() - self._before


def _stat_fields(pid: int) -> list[str]:
    """``/proc/<pid>/stat`` fields after the command name (which may hold spaces)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return []
    return text[text.rindex(")") + 2 :].split()
