"""The operations journal: an append-only JSON-lines file per run, copied to the audit bucket.

It records who ran what, when and with what result, event by event, and it is how ``--resume``
knows which steps already finished: a step is done when the journal holds its ``step_finished``
event with a successful outcome.
"""

from __future__ import annotations

import getpass
import json
import os
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from drkit import audit
from drkit.storage.objectstore import Encryption, ObjectExists, ObjectStore

SUCCESSFUL = {"done", "already_done", "resumed"}
MAX_COPIES = 100
"""A run resumed this often still gets every copy of its journal kept."""


class JournalError(ValueError):
    """The journal to resume from does not exist or belongs to another plan."""


def new_run_id(plan_name: str, now: datetime | None = None) -> str:
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    slug = "".join(c if c.isalnum() else "-" for c in plan_name.lower()).strip("-")
    return f"{moment:%Y%m%dT%H%M%SZ}-{slug}"[:120]


class Journal:
    """Events of one run, appended and flushed one line at a time (a crash loses nothing)."""

    def __init__(self, directory: Path, run_id: str) -> None:
        self.directory = directory
        self.run_id = run_id
        self.path = directory / f"{run_id}.jsonl"
        self._lock = threading.Lock()

    @classmethod
    def open_existing(cls, directory: Path, run_id: str, plan_name: str) -> Journal:
        journal = cls(directory, run_id)
        if not journal.path.exists():
            known = sorted(p.stem for p in directory.glob("*.jsonl"))[-5:]
            raise JournalError(
                f"no journal {journal.path} to resume; recent runs: {', '.join(known) or 'none'}"
            )
        started = next((e for e in journal.events() if e["event"] == "run_started"), None)
        if started is None or started.get("plan") != plan_name:
            raise JournalError(
                f"journal {run_id} is of plan {started and started.get('plan')!r}, "
                f"not {plan_name!r}: it cannot be resumed by this command"
            )
        return journal

    def append(self, event: str, **fields: Any) -> None:
        record = {"ts": datetime.now(UTC).isoformat(), "run_id": self.run_id, "event": event}
        record |= fields
        line = json.dumps(record, default=str) + "\n"
        with self._lock:
            self.directory.mkdir(parents=True, exist_ok=True)
            with self.path.open("a") as handle:
                handle.write(line)
                handle.flush()
                os.fsync(handle.fileno())
        audit.journal_event(self.run_id, event, fields)

    def events(self) -> Iterator[dict[str, Any]]:
        if not self.path.exists():
            return
        with self.path.open() as handle:
            for line in handle:
                if line.strip():
                    yield json.loads(line)

    def finished_steps(self) -> set[str]:
        return {
            e["step"]
            for e in self.events()
            if e["event"] == "step_finished" and e.get("outcome") in SUCCESSFUL
        }

    def results(self) -> dict[str, Any]:
        return {
            e["step"]: e.get("result")
            for e in self.events()
            if e["event"] == "step_finished" and e.get("outcome") in SUCCESSFUL
        }

    def upload(self, store: ObjectStore, encryption: Encryption | None = None) -> str:
        """Copy the journal to the audit bucket under ``journal/<run id>.jsonl``; a resumed run's
        later copies go beside it (``<run id>.2.jsonl``, ...): writes are create-only."""
        body = self.path.read_bytes()
        for attempt in range(1, MAX_COPIES + 1):
            suffix = "" if attempt == 1 else f".{attempt}"
            key = f"journal/{self.run_id}{suffix}.jsonl"
            try:
                store.put_bytes(key, body, encryption)
            except ObjectExists:
                continue
            return f"{store.name}/{key}"
        raise ObjectExists(f"{store.name}/journal/{self.run_id}.*.jsonl: {MAX_COPIES} copies exist")


def operator() -> dict[str, str]:
    """Who is running this: recorded in every run's first event."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    return {"user": user, "host": socket.gethostname()}
