"""Scratch targets of ``invoke verify`` and of the monthly drill (``invoke drill --stack S``):
named so that they can be found again, and told apart from those of a run still going.

Every scratch target a test restore makes (a namespace, a PostgreSQL or time-series database, Kafka
topics) carries a **holder tag**: which host (a digest of its name), which process, when it started,
and a random token. A run killed with SIGKILL cannot remove its scratch target; the next run, or
``invoke verify --cleanup``, finds it by its name or label and removes it when its holder is gone:

- the holder ran on this host and its process is gone (or a zombie): removed at once;
- it started more than ``STALE_AFTER`` ago: removed, whatever host it ran on (no test restore
  takes that long);
- it ran on another host and is younger: a run there may still be using it, so the next run
  leaves it; ``--cleanup`` removes it (the operator says no other verify is running);
- its process on this host is alive: never removed.

Names, one scheme per kind of target, with the run's **purpose** (``verify``, or ``dr-test`` for
the monthly drill) in them:

- databases (PostgreSQL, InfluxDB): ``<database>_<purpose>_<holder tag>`` (``dr-test`` as
  ``dr_test``), the database part cut short to fit 63 characters;
- Kafka topics: ``<purpose>.<holder tag>.<topic>``: one prefix per run, so a listing finds them;
- namespaces: ``<namespace>-verify-<token>``; the drill restores into ``<namespace>-dr-test``, the
  namespace of the second seed's monthly drill (``aipx-dr-test``). Both carry the holder tag as a
  label (``drkit.ops.verify_k8s``), which is how they are found again.

``sweep`` is the one way a cleanup judges what it found and removes it.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from drkit.recovery import RecoveryError

STALE_AFTER = timedelta(hours=6)
PID_CLOCK_SLACK_S = 2.0
"""A holder's run started before it named itself; a process under that pid started later than
this after the name is another process (the clock ticks and whole seconds, rounded)."""
_TAG_BODY = r"[0-9a-f]{8}_\d{1,10}_\d{1,12}_[0-9a-f]{6}"
_TAG = re.compile(r"^([0-9a-f]{8})_(\d{1,10})_(\d{1,12})_([0-9a-f]{6})$")
VERIFY, DRILL = "verify", "dr-test"
PURPOSES = (VERIFY, DRILL)
"""What made a scratch target: ``invoke verify``, or the monthly drill."""
MAX_DATABASE_NAME = 63
"""PostgreSQL's identifier limit (InfluxDB has none; one rule for both)."""
_DATABASE = re.compile(rf"^(.+)_(verify|dr_test)_({_TAG_BODY})$")
_TOPIC = re.compile(rf"^(verify|dr-test)\.({_TAG_BODY})\.(.+)$")


class ScratchExists(RecoveryError):
    """The scratch target's name is taken: refused, never written to, replaced or removed."""


class RestoreDiffers(RuntimeError):
    """The scratch copy is not what the backup holds."""


class CheckMissed(RuntimeError):
    """A check of ``invoke verify`` found a problem (the step fails; the others still run)."""


def host_digest(name: str | None = None) -> str:
    """Eight hex digits naming where a pid means one process: this host, its current boot and
    this pid namespace (two pods on one node, or one host rebooted, are different places: a pid
    seen there proves nothing here). ``name`` digests a given host name instead."""
    if name is not None:
        return hashlib.sha256(name.encode()).hexdigest()[:8]
    boot = _read("/proc/sys/kernel/random/boot_id") or ""
    try:
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:
        namespace = ""
    place = "/".join(part for part in (socket.gethostname(), boot, namespace) if part)
    return hashlib.sha256(place.encode()).hexdigest()[:8]


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text(encoding="ascii", errors="replace").strip()
    except OSError:
        return None


def process_started(pid: int) -> float | None:
    """When ``pid`` started, in seconds since the epoch (from ``/proc``), or None if unknown."""
    stat, kernel = _read(f"/proc/{pid}/stat"), _read("/proc/stat")
    if stat is None or kernel is None:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    boot = [line.split()[1] for line in kernel.splitlines() if line.startswith("btime ")]
    if len(fields) < 20 or not boot:
        return None
    return int(boot[0]) + int(fields[19]) / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Holder:
    host: str
    pid: int
    started: int
    """Seconds since the epoch."""
    token: str

    @classmethod
    def mine(cls, now: datetime | None = None, token: str | None = None) -> Holder:
        moment = now or datetime.now(UTC)
        return cls(host_digest(), os.getpid(), int(moment.timestamp()), token or _token())

    @property
    def tag(self) -> str:
        """``<host>_<pid>_<started>_<token>``: fits a database name and a label value."""
        return f"{self.host}_{self.pid}_{self.started}_{self.token}"

    @classmethod
    def parse(cls, tag: str) -> Holder | None:
        match = _TAG.match(tag)
        if match is None:
            return None
        host, pid, started, token = match.groups()
        return cls(host, int(pid), int(started), token)

    @property
    def started_at(self) -> datetime:
        return datetime.fromtimestamp(self.started, UTC)

    def orphaned(self, now: datetime, forced: bool = False) -> str | None:
        """Why this holder's scratch target may be removed, or None while its run may live."""
        age = now - self.started_at
        if self.host == host_digest():
            if self.pid != os.getpid() and not pid_alive(self.pid):
                return f"its run (pid {self.pid} on this host) is gone"
            started = process_started(self.pid) if self.pid != os.getpid() else None
            if started is not None and started > self.started + PID_CLOCK_SLACK_S:
                return f"its run (pid {self.pid} on this host) is gone: the pid is reused"
            if age > STALE_AFTER:
                return f"started {_hours(age)} ago, past the {_hours(STALE_AFTER)} bound"
            return None
        if age > STALE_AFTER:
            return (
                f"started {_hours(age)} ago on another host, past the {_hours(STALE_AFTER)} bound"
            )
        if forced:
            return "--cleanup: made by a run on another host"
        return None


def _purpose(purpose: str) -> str:
    if purpose not in PURPOSES:
        raise ValueError(f"scratch purpose {purpose!r}: one of {', '.join(PURPOSES)}")
    return purpose


def database_name(database: str, holder: Holder, purpose: str = VERIFY) -> str:
    """``<database>_<purpose>_<holder tag>``, the database part cut short to fit 63."""
    suffix = f"_{_purpose(purpose).replace('-', '_')}_{holder.tag}"
    return database[: MAX_DATABASE_NAME - len(suffix)] + suffix


def parse_database(name: str, database: str) -> Holder | None:
    """The holder of ``name`` when it is a scratch copy of ``database``, else None."""
    match = _DATABASE.match(name)
    if match is None:
        return None
    stem = match.group(1)
    if stem != database and not (database.startswith(stem) and len(name) == MAX_DATABASE_NAME):
        return None
    return Holder.parse(match.group(3))


def topic_name(topic: str, holder: Holder, purpose: str = VERIFY) -> str:
    """``<purpose>.<holder tag>.<topic>`` (a Kafka topic name takes up to 249 characters)."""
    return f"{_purpose(purpose)}.{holder.tag}.{topic}"


def topic_prefix(holder: Holder, purpose: str = VERIFY) -> str:
    return f"{_purpose(purpose)}.{holder.tag}."


def parse_topic(name: str) -> tuple[Holder, str] | None:
    """(holder, original topic) of a scratch topic, else None."""
    match = _TOPIC.match(name)
    if match is None:
        return None
    holder = Holder.parse(match.group(2))
    return None if holder is None else (holder, match.group(3))


def namespace_name(namespace: str, holder: Holder, purpose: str = VERIFY) -> str:
    """``<namespace>-verify-<token>``; for the drill ``<namespace>-dr-test`` (the seed's
    ``aipx-dr-test``). Cut short to fit 63 characters."""
    suffix = f"-{DRILL}" if _purpose(purpose) == DRILL else f"-{VERIFY}-{holder.token}"
    return namespace[: 63 - len(suffix)].rstrip("-") + suffix


def sweep(
    found: Iterable[tuple[str, Holder]],
    now: datetime,
    forced: bool,
    dry_run: bool,
    remove: Callable[[str], None],
    what: str,
    verb: tuple[str, str] = ("remove", "removed"),
) -> list[str]:
    """Remove each ``(name, holder)`` whose run is gone; one line per one found.

    ``what`` names the kind (``database``, ``topic``), ``verb`` how it goes (``drop``)."""
    lines = []
    for name, holder in found:
        reason = holder.orphaned(now, forced)
        if reason is None:
            lines.append(f"kept {what} {name}: its run may still be going")
            continue
        if not dry_run:
            remove(name)
        done = f"would {verb[0]}" if dry_run else verb[1]
        lines.append(f"{done} {what} {name}: {reason}")
    return lines


def pid_alive(pid: int) -> bool:
    """Is a process ``pid`` running on this host (a zombie, killed but not reaped, is not)?"""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")


def _token() -> str:
    return secrets.token_hex(3)


def _hours(value: timedelta) -> str:
    return f"{value.total_seconds() / 3600:.1f}h"
