"""One run per store (or restore target) at a time: a lease in the vault, made of create-only
objects, so it works under Object Lock where nothing can be replaced or deleted.

A lease is a sequence of small objects ``leases/<scope>/<n>.json``, one per generation, where
``<n>`` counts *down* (``LAST_GENERATION - generation``, zero-padded): S3 and GCS list keys in
ascending order, so the first key listed is the newest generation, one LIST request whatever
the history. Each generation says who holds the scope, for what, and until when, or that it was
released:

- **acquire**: read the newest generation. Held by another run and not expired: refuse (or wait).
  Otherwise create the next generation, create-only: of two runs racing for it, the store lets
  exactly one create the key; the other re-reads and sees the winner.
- **renew**: a heartbeat thread creates the next generation with a new expiry every
  ``ttl / 4``. If that key is taken, someone took the lease over after it expired: the lease is
  **lost**, and the holder must not commit (``check`` raises).
- **release**: the next generation, marked released.
- **takeover**: an expired lease is taken like a free one, by creating the next generation; the
  old holder finds its next renewal refused and stops before it commits. A resumed run (same
  ``owner``, e.g. a restore's run id) takes over its own killed run's lease at once. So does any
  run whose holder is provably dead: each generation records the holder's host, pid and
  process identity (boot id, pid namespace, start time); a run on the same host, same boot and
  same pid namespace that finds no process with that pid and start time takes the lease over
  at once instead of waiting out its expiry (a SIGKILLed run, an OOM-killed pod's rerun on the
  node). A holder that is alive, or on another host or namespace (where nothing can be proved),
  keeps its lease until it expires.

Lease objects are locked for a day past their expiry (GOVERNANCE), and the vault's lifecycle
(``leases/`` rule) removes them after a week.
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from drkit.storage.objectstore import Encryption, ObjectExists, ObjectStore, ObjectStoreError

log = logging.getLogger("drkit.lease")

LEASE_PREFIX = "leases/"
LAST_GENERATION = 10**12 - 1
DEFAULT_TTL = timedelta(minutes=5)
LOCK_MARGIN = timedelta(days=1)
RELEASE_JOIN_SECONDS = 10.0


class LeaseHeld(ValueError):
    """Another live run holds the scope; nothing was done (a refusal: exit 2)."""


class LeaseLost(RuntimeError):
    """This run's lease expired and another run took it over: it must not commit."""


@dataclass(frozen=True)
class LeaseRecord:
    scope: str
    generation: int
    holder: str
    """``host/pid/token``: which process."""
    owner: str
    """What the run is (a backup id, a restore run id): a resumed run with the same owner takes
    over its own lease."""
    purpose: str
    acquired_at: str
    expires_at: str
    released: bool = False
    host: str = ""
    """The holder's host name (empty in records written before it was recorded)."""
    pid: int = 0
    process: str = ""
    """``<boot id>/<pid namespace>/<start time in clock ticks>`` of ``pid``: a pid reused by
    another process, or seen from another boot or namespace, does not match."""

    @property
    def expiry(self) -> datetime:
        return datetime.fromisoformat(self.expires_at)

    def describe(self) -> str:
        return (
            f"{self.purpose} by {self.holder} (owner {self.owner}), since {self.acquired_at}, "
            f"lease until {self.expires_at}"
        )


def scope_slug(text: str) -> str:
    """A scope safe as a key: ``restore/h:5432/db`` -> ``restore/h_5432_db``."""
    head, _, rest = text.partition("/")
    return f"{head}/{re.sub(r'[^A-Za-z0-9._-]+', '_', rest)}" if rest else head


def _key(scope: str, generation: int) -> str:
    return f"{LEASE_PREFIX}{scope}/{LAST_GENERATION - generation:012d}.json"


def current(vault: ObjectStore, scope: str) -> LeaseRecord | None:
    """The newest generation of ``scope`` (one LIST page, one GET), or None."""
    for item in vault.list_objects(f"{LEASE_PREFIX}{scope}/"):
        body = json.loads(vault.get_bytes(item.key))
        return LeaseRecord(**body)
    return None


class Lease:
    """A held lease; renewed on a thread until released."""

    def __init__(
        self,
        vault: ObjectStore,
        record: LeaseRecord,
        ttl: timedelta,
        encryption: Encryption,
        now: Callable[[], datetime],
        locked: bool = True,
    ) -> None:
        self.vault = vault
        self.record = record
        self.ttl = ttl
        self._encryption = encryption
        self._locked = locked
        self._now = now
        self.lost: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._beat, name=f"lease {record.scope}", daemon=True
        )
        self._thread.start()

    def check(self) -> None:
        """Raise ``LeaseLost`` unless this run still holds the lease (call before committing)."""
        if self.lost is None and self._now() >= self.record.expiry:
            self.renew()
        if self.lost is not None:
            raise LeaseLost(f"lease on {self.record.scope} lost: {self.lost}")

    def renew(self) -> None:
        record = _next(self.record, self._now(), self.ttl)
        try:
            _create(self.vault, record, self._encryption, self._locked)
        except ObjectExists:
            taken = current(self.vault, self.record.scope)
            self.lost = f"taken over: {taken.describe() if taken else 'by another run'}"
            return
        self.record = record

    def release(self) -> None:
        self._stop.set()
        # A heartbeat stuck on a stalled store must not hold the run: its request has the
        # store client's own timeouts, and the lease expires on its own.
        self._thread.join(timeout=RELEASE_JOIN_SECONDS)
        if self.lost is not None:
            return
        record = _next(self.record, self._now(), timedelta(0), released=True)
        try:
            _create(self.vault, record, self._encryption, self._locked)
        except ObjectStoreError as error:  # it expires on its own
            log.warning(
                "lease on %s not released (it expires at %s): %s",
                record.scope,
                self.record.expires_at,
                error,
            )

    def _beat(self) -> None:
        while not self._stop.wait(self.ttl.total_seconds() / 4):
            if self.lost is not None:
                return
            try:
                self.renew()
            except ObjectStoreError as error:  # retried at the next beat, checked at commit
                log.warning("lease on %s not renewed: %s", self.record.scope, error)


def _next(
    record: LeaseRecord, now: datetime, ttl: timedelta, *, released: bool = False
) -> LeaseRecord:
    return LeaseRecord(
        scope=record.scope,
        generation=record.generation + 1,
        holder=record.holder,
        owner=record.owner,
        purpose=record.purpose,
        acquired_at=record.acquired_at,
        expires_at=(now + ttl).isoformat(),
        released=released,
        host=record.host,
        pid=record.pid,
        process=record.process,
    )


def _create(
    vault: ObjectStore, record: LeaseRecord, encryption: Encryption, locked: bool = True
) -> None:
    """One generation, create-only; locked GOVERNANCE a margin past its expiry, unless
    ``locked`` is False (a store whose bucket default lock applies and that refuses lock headers
    from this caller: the isolated vault)."""
    lock = (
        Encryption(
            kms_key_id=encryption.kms_key_id,
            lock_mode="GOVERNANCE",
            lock_until=record.expiry + LOCK_MARGIN,
        )
        if locked
        else Encryption(kms_key_id=encryption.kms_key_id)
    )
    body = json.dumps(asdict(record), indent=1).encode()
    vault.put_bytes(_key(record.scope, record.generation), body, lock)


def holder_id() -> str:
    return f"{socket.gethostname()}/{os.getpid()}/{secrets.token_hex(3)}"


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="ascii", errors="replace") as handle:
            return handle.read().strip()
    except OSError:
        return None


def process_identity(pid: int) -> str | None:
    """``<boot id>/<pid namespace>/<start time>`` of ``pid`` as this process sees it, or None
    when no such process exists (or this is not Linux: then nothing is ever proved dead)."""
    boot = _read("/proc/sys/kernel/random/boot_id")
    try:
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:
        return None
    stat = _read(f"/proc/{pid}/stat")
    if boot is None or stat is None:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    if len(fields) < 20 or fields[0] in ("Z", "X"):  # a zombie has exited
        return None
    return f"{boot}/{namespace}/{fields[19]}"


def holder_dead(record: LeaseRecord) -> bool:
    """True only when ``record``'s holder provably no longer runs: same host, same boot, same
    pid namespace as this process, and no live process with its pid and start time."""
    if not record.pid or not record.process or record.host != socket.gethostname():
        return False
    mine = process_identity(os.getpid())
    if mine is None:
        return False
    boot, namespace, _ = record.process.rsplit("/", 2)
    if not mine.startswith(f"{boot}/{namespace}/"):
        return False  # another boot or another namespace: its pids mean nothing here
    return process_identity(record.pid) != record.process


def acquire(
    vault: ObjectStore,
    scope: str,
    owner: str,
    purpose: str,
    *,
    encryption: Encryption | None = None,
    ttl: timedelta = DEFAULT_TTL,
    wait: timedelta = timedelta(0),
    poll: float = 2.0,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    locked: bool = True,
) -> Lease:
    """Take the lease on ``scope`` or raise ``LeaseHeld`` naming who holds it and until when;
    with ``wait``, poll until it is free or ``wait`` has passed. ``locked``: each generation
    carries its own GOVERNANCE lock (see ``_create``)."""
    encryption = encryption or Encryption()
    deadline = time.monotonic() + wait.total_seconds()
    holder = holder_id()
    while True:
        found = current(vault, scope)
        moment = now()
        free = found is None or found.released or found.expiry <= moment or found.owner == owner
        dead = not free and found is not None and holder_dead(found)
        if free or dead:
            record = LeaseRecord(
                scope=scope,
                generation=found.generation + 1 if found else 0,
                holder=holder,
                owner=owner,
                purpose=purpose,
                acquired_at=moment.isoformat(),
                expires_at=(moment + ttl).isoformat(),
                host=socket.gethostname(),
                pid=os.getpid(),
                process=process_identity(os.getpid()) or "",
            )
            try:
                _create(vault, record, encryption, locked)
            except ObjectExists:
                continue  # another run created this generation first: read it
            if dead:
                assert found is not None
                log.warning(
                    "took over the lease on %s from a dead run (pid %d on %s is gone): %s",
                    scope,
                    found.pid,
                    found.host,
                    found.describe(),
                )
            elif found is not None and not found.released and found.owner != owner:
                log.warning("took over the expired lease on %s: %s", scope, found.describe())
            return Lease(vault, record, ttl, encryption, now, locked)
        assert found is not None
        if time.monotonic() >= deadline:
            waited = f" after waiting {wait.total_seconds():.0f}s" if wait else ""
            raise LeaseHeld(
                f"{scope} is busy{waited}: {found.describe()}; retry after it ends, or pass "
                "--wait to queue behind it. Nothing was done."
            )
        time.sleep(min(poll, max(0.0, deadline - time.monotonic())))


@contextmanager
def held(
    vault: ObjectStore, scope: str, owner: str, purpose: str, **options: Any
) -> Iterator[Lease]:
    lease = acquire(vault, scope, owner, purpose, **options)
    try:
        yield lease
    finally:
        lease.release()
