"""Scratch targets of ``invoke verify``: named so that they can be found again, and told apart
from those of a run still going.

Every scratch target a test restore makes (a namespace, a time-series database) carries a
**holder tag**: which host (a digest of its name), which process, when it started, and a random
token. A run killed with SIGKILL cannot remove its scratch target; the next run, or
``invoke verify --cleanup``, finds it by its name or label and removes it when its holder is gone:

- the holder ran on this host and its process is gone (or a zombie): removed at once;
- it started more than ``STALE_AFTER`` ago: removed, whatever host it ran on (no test restore
  takes that long);
- it ran on another host and is younger: a run there may still be using it, so the next run
  leaves it; ``--cleanup`` removes it (the operator says no other verify is running);
- its process on this host is alive: never removed.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import socket
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from drkit.recovery import RecoveryError

STALE_AFTER = timedelta(hours=6)
_TAG = re.compile(r"^([0-9a-f]{8})_(\d{1,10})_(\d{1,12})_([0-9a-f]{6})$")


class ScratchExists(RecoveryError):
    """The scratch target's name is taken: refused, never written to, replaced or removed."""


class RestoreDiffers(RuntimeError):
    """The scratch copy is not what the backup holds."""


class CheckMissed(RuntimeError):
    """A check of ``invoke verify`` found a problem (the step fails; the others still run)."""


def host_digest(name: str | None = None) -> str:
    """Eight hex digits naming a host (its name may be long, or not fit a database name)."""
    return hashlib.sha256((name or socket.gethostname()).encode()).hexdigest()[:8]


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
