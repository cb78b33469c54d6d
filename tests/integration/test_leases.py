"""One run per store (and per restore target) at a time: the lease in the vault.

An overlapping backup is refused with who holds the store and until when (exit 2), or waits
with ``--wait``; the first run completes untouched. An expired lease is taken over, and its old
holder can no longer commit. Everything is create-only: no vault key ever has two versions.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from drkit.backup.engine import Destinations
from drkit.backup.manifest import MANIFEST_NAME, Manifest
from drkit.backups import backup_store
from drkit.endpoints import postgres_source
from drkit.killpoints import ENV as KILL_AT
from drkit.lease import (
    LeaseHeld,
    LeaseLost,
    LeaseRecord,
    _create,
    acquire,
    current,
    held,
    process_identity,
    scope_slug,
)
from drkit.ops.restore_postgres import RestorePostgresRequest, build_plan
from drkit.ops.selection import verify_checksums
from drkit.ops.verbs import RestoreEnv
from drkit.restore.postgres import count_rows
from drkit.seed.postgres import TradingDataSize, seed_trading_database
from drkit.storage.s3 import S3Store
from tests.integration.ops_helpers import ROOT, context, run

pytestmark = pytest.mark.integration


def versions(vault: S3Store) -> Counter[str]:
    found: Counter[str] = Counter()
    for page in vault.client.get_paginator("list_object_versions").paginate(Bucket=vault.bucket):
        found.update(v["Key"] for v in page.get("Versions", []))
    return found


def invoke(
    project: Path, *arguments: str, wait: bool = True, env: dict[str, str] | None = None
) -> Any:
    tasks = project / "tasks.py"
    if not tasks.exists():
        tasks.write_text(
            (ROOT / "tasks.py")
            .read_text()
            .replace("ROOT = Path(__file__).resolve().parent", f"ROOT = Path({str(project)!r})")
        )
    command = [sys.executable, "-m", "invoke", *arguments]
    if not wait:
        return subprocess.Popen(
            command, cwd=project, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
    return subprocess.run(
        command, cwd=project, capture_output=True, text=True, check=False, env=env
    )


def test_an_overlapping_backup_is_refused_or_waits_and_the_first_completes(
    project: Path,
) -> None:
    ctx = context(project)
    seed_trading_database(
        postgres_source(ctx, "trading-db").conninfo(), TradingDataSize.for_megabytes(1)
    )
    running, release = threading.Event(), threading.Event()
    first: list[Manifest] = []

    def paused(name: str, raw: int) -> None:  # the first run stops mid-stream until released
        running.set()
        release.wait(120)

    def scheduled_run() -> None:
        first.append(backup_store(ctx, "trading-db", [], paused))

    thread = threading.Thread(target=scheduled_run)
    thread.start()
    try:
        assert running.wait(60)
        refused = invoke(project, "backup.store", "trading-db")
        assert refused.returncode == 2, refused.stdout + refused.stderr
        message = refused.stderr.strip()
        assert "backup/trading-db is busy: backup of trading-db by " in message
        assert "lease until" in message and "Traceback" not in refused.stderr
        assert len(message.splitlines()) == 1
        queued = invoke(project, "backup.store", "trading-db", "--wait", "120", wait=False)
    finally:
        release.set()
        thread.join(120)
    assert first, "the first run did not complete"
    out, err = queued.communicate(timeout=180)
    assert queued.returncode == 0, out + err
    assert "committed" in out

    vault = ctx.vault()
    manifest = first[0]
    assert vault.exists(manifest.prefix + MANIFEST_NAME)
    assert verify_checksums(vault, manifest.objects)[0] == len(manifest.objects)  # untouched

    # Both same-day backups are listed from the mirror, and no vault key has two versions.
    listed = invoke(
        project,
        "backups.list",
        "--source",
        "mirror",
        "--stores",
        "trading-db",
        "--detail",
        "--format",
        "json",
    )
    assert listed.returncode == 0, listed.stderr
    body = json.loads(listed.stdout)
    ids = [e["backup_id"] for e in body["stores"][0]["entries"]]
    assert len(ids) == 2 and manifest.backup_id in ids
    assert ids[0][:8] == ids[1][:8]  # one day
    assert max(versions(vault).values()) == 1


def test_an_expired_lease_is_taken_over_and_its_holder_cannot_commit(
    destinations: Destinations,
) -> None:
    vault = destinations.vault
    assert isinstance(vault, S3Store)
    a = acquire(vault, "backup/orders", "run-a", "backup of orders", ttl=timedelta(minutes=1))
    with pytest.raises(LeaseHeld, match=r"backup/orders is busy: backup of orders by .*run-a"):
        acquire(vault, "backup/orders", "run-b", "backup of orders")

    # Two minutes later by B's clock, A's lease has expired (A stalled): B takes it over.
    later = datetime.now(UTC) + timedelta(minutes=2)
    b = acquire(vault, "backup/orders", "run-b", "backup of orders", now=lambda: later)
    assert b.record.generation > a.record.generation
    a.renew()  # A's next heartbeat finds the next generation taken
    with pytest.raises(LeaseLost, match=r"taken over: backup of orders by .*run-b"):
        a.check()  # so A must not commit
    a.release()  # writes nothing: the lease is B's
    b.release()
    found = current(vault, "backup/orders")
    assert found is not None and found.released and found.owner == "run-b"
    acquire(vault, "backup/orders", "run-c", "backup of orders").release()  # free again

    # A resumed run (same owner: a restore's run id) takes over its killed run's lease at once.
    killed = acquire(vault, "restore/db", "run-9", "restore")
    killed._stop.set()  # the process died: no heartbeat, no release
    resumed = acquire(vault, "restore/db", "run-9", "restore")
    assert resumed.record.generation == killed.record.generation + 1
    resumed.release()
    assert max(versions(vault).values()) == 1  # every generation is a key of its own


def test_a_second_restore_into_one_target_is_refused(project: Path) -> None:
    ctx = context(project)
    seed_trading_database(
        postgres_source(ctx, "trading-db").conninfo(), TradingDataSize.for_megabytes(1)
    )
    backup_store(ctx, "trading-db", [])
    request = RestorePostgresRequest(target_database="leased_target")
    plan, _ = build_plan(ctx, request, RestoreEnv(project))
    scope = scope_slug(f"restore/{plan.parameters['target']}")
    holding = held(ctx.vault(), scope, "another-run", "restore postgres trading-db (run x)")
    with holding, pytest.raises(LeaseHeld, match="is busy: restore postgres trading-db"):
        run(ctx, project, plan, yes=True)
    report, out = run(ctx, project, plan, yes=True)
    assert report.status.value == "succeeded", out


def holding_record(scope: str, pid: int, host: str, process: str | None) -> LeaseRecord:
    now = datetime.now(UTC)
    return LeaseRecord(
        scope=scope,
        generation=0,
        holder=f"{host}/{pid}/abcdef",
        owner="another-run",
        purpose=f"backup of {scope}",
        acquired_at=now.isoformat(),
        expires_at=(now + timedelta(minutes=5)).isoformat(),
        host=host,
        pid=pid,
        process=process or "",
    )


@pytest.mark.reliability
def test_a_dead_holders_lease_is_taken_over_at_once_a_live_or_remote_one_is_not(
    destinations: Destinations,
) -> None:
    """The lease names its holder's host, pid and process identity: a run on the same host
    takes over at once from a holder SIGKILLed (or whose pid now belongs to another process),
    and refuses while the holder lives, or when it runs on another host, until expiry."""
    vault = destinations.vault
    child = subprocess.Popen(["sleep", "600"])
    try:
        identity = process_identity(child.pid)
        assert identity is not None
        _create(
            vault,
            holding_record("backup/live", child.pid, socket.gethostname(), identity),
            destinations.encryption,
        )
        with pytest.raises(LeaseHeld, match=r"backup/live is busy: backup of backup/live"):
            acquire(vault, "backup/live", "run-b", "backup")  # alive: refused
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        taken = acquire(vault, "backup/live", "run-b", "backup")  # dead: at once, no --wait
        assert taken.record.generation == 1 and taken.record.pid == os.getpid()
        taken.release()
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    dead_pid = child.pid

    # On another host nothing can be proved: refused, although that pid is gone here too.
    _create(
        vault,
        holding_record("backup/remote", dead_pid, "another-host", identity),
        destinations.encryption,
    )
    with pytest.raises(LeaseHeld, match="backup/remote is busy"):
        acquire(vault, "backup/remote", "run-b", "backup")

    # This very pid, but another start time: the holder's pid was reused; it is gone.
    mine = process_identity(os.getpid())
    assert mine is not None
    reused = mine.rsplit("/", 1)[0] + "/1"
    _create(
        vault,
        holding_record("backup/reused", os.getpid(), socket.gethostname(), reused),
        destinations.encryption,
    )
    acquire(vault, "backup/reused", "run-b", "backup").release()

    # A record without a process identity (written before it was recorded): expiry only.
    _create(
        vault,
        holding_record("backup/old", dead_pid, socket.gethostname(), None),
        destinations.encryption,
    )
    with pytest.raises(LeaseHeld, match="backup/old is busy"):
        acquire(vault, "backup/old", "run-b", "backup")


@pytest.mark.reliability
def test_a_fresh_restore_takes_over_the_lease_of_a_sigkilled_one(project: Path) -> None:
    """``invoke restore.postgres`` SIGKILLed after it created its target: its lease (5 minutes)
    is not waited out; a fresh run (no --resume) into the same target takes it and completes."""
    ctx = context(project)
    seed_trading_database(
        postgres_source(ctx, "trading-db").conninfo(), TradingDataSize.for_megabytes(1)
    )
    manifest = backup_store(ctx, "trading-db", [])
    database = "killed_lease_target"
    env = {**os.environ, KILL_AT: f"applied:create-database.{database}"}
    killed = invoke(project, "restore.postgres", "--target-database", database, "--yes", env=env)
    assert killed.returncode == -signal.SIGKILL, killed.stdout + killed.stderr
    plan, _ = build_plan(ctx, RestorePostgresRequest(target_database=database), RestoreEnv(project))
    scope = scope_slug(f"restore/{plan.parameters['target']}")
    left = current(ctx.vault(), scope)
    assert left is not None and not left.released and left.pid != os.getpid()
    assert left.expiry > datetime.now(UTC) + timedelta(minutes=1)  # far from expiring

    report, out = run(ctx, project, plan, yes=True)  # no --wait, no --resume

    assert report.status.value == "succeeded", out
    taken = current(ctx.vault(), scope)
    assert taken is not None and taken.generation > left.generation and taken.released
    target = postgres_source(ctx, "trading-db", database)
    assert count_rows(target, list(manifest.counts)) == manifest.counts
