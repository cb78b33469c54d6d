"""Restores killed with SIGKILL at every step boundary and inside Redis's swap, then resumed.

Each case runs the real ``invoke restore.redis`` / ``invoke restore.postgres`` as a subprocess with
``DRKIT_KILL_AT`` naming the point (``drkit.killpoints``), checks what the kill left (a Redis
server down, a staging file beside ``dump.rdb``), runs ``--resume <run id>`` and checks the end:
the server up, holding exactly the backup's keys, no staging or ``.before-restore`` file left; the
database holding exactly the backup's row counts. After the kill that the issue reported (Redis
stopped, a ``.partial`` beside ``dump.rdb``) the resume is an ``invoke`` subprocess too; elsewhere
it calls the same task function in this process (the imports cost a subprocess seconds of CPU).

One project, one cache server and one backup of each serve the whole module: every case first puts
other data on the cache (saved to its ``dump.rdb``, so a rollback would show), or restores into a
database of its own.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis
from invoke.context import Context

from drkit.backup.manifest import Manifest
from drkit.endpoints import postgres_source
from drkit.killpoints import ENV
from drkit.local.gcs import LocalGcs
from drkit.local.postgres import LocalPostgres
from drkit.local.process import port_open
from drkit.local.redis import LocalRedis
from drkit.local.s3 import LocalAws
from drkit.ops.restore_redis import MARKER_SUFFIX
from drkit.restore.postgres import count_rows
from tests.integration.conftest import SessionServers, provision_project
from tests.integration.ops_helpers import (
    DATABASE,
    ROOT,
    attach_cache,
    cache_backup,
    cache_snapshot,
    context,
    database_backup,
    fill_cache,
)

pytestmark = [pytest.mark.integration, pytest.mark.reliability]

KILLED = -9
SWAP_POINTS = ["redis.stopped", "redis.old-renamed", "redis.new-in-place", "redis.before-start"]
"""Kills inside the swap: the server is down when the process dies."""


@dataclass
class World:
    project: Path
    cache: LocalRedis
    backed_up: dict[bytes, Any]
    cache_manifest: Manifest
    database_manifest: Manifest


@pytest.fixture(scope="module")
def world(
    tmp_path_factory: pytest.TempPathFactory,
    postgres_server: LocalPostgres,
    redis_server: LocalRedis,
    aws_emulator: LocalAws,
    gcs_emulator: LocalGcs,
) -> Iterator[World]:
    servers = SessionServers(postgres_server, redis_server, aws_emulator, gcs_emulator)
    project = provision_project(tmp_path_factory.mktemp("reliability"), servers)
    (project / "tasks.py").write_text(
        (ROOT / "tasks.py")
        .read_text()
        .replace("ROOT = Path(__file__).resolve().parent", f"ROOT = Path({str(project)!r})")
    )
    cache = LocalRedis(tmp_path_factory.mktemp("cache"))
    cache.start()
    try:
        attach_cache(project, cache)
        ctx = context(project)
        with cache.client() as client:
            fill_cache(client, "backed-up")
            backed_up = cache_snapshot(client)
        yield World(project, cache, backed_up, cache_backup(ctx), database_backup(ctx))
    finally:
        with contextlib.suppress(redis.RedisError), cache.client() as client:
            client.shutdown(nosave=True)  # whichever process started it last
        cache.stop()


def invoke(
    project: Path, *arguments: str, kill_at: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != ENV}
    if kill_at is not None:
        env[ENV] = kill_at
    return subprocess.run(
        [sys.executable, "-m", "invoke", *arguments],
        capture_output=True,
        text=True,
        cwd=project,
        env=env,
        check=False,
        timeout=120,
    )


def resume_in_process(project: Path, task: str, run: str = "", **options: Any) -> str:
    """``invoke <task> --resume <run> --yes``, by calling the project's task function here."""
    spec = importlib.util.spec_from_file_location("reliability_tasks", project / "tasks.py")
    assert spec is not None and spec.loader is not None
    tasks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tasks)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        getattr(tasks, task)(Context(), resume=run, yes=True, **options)  # Exit on a failure
    return out.getvalue()


def newest_run(project: Path) -> str:
    journals = sorted((project / ".drkit" / "journal").glob("*.jsonl"), key=os.path.getmtime)
    return journals[-1].stem


def swap_events(project: Path, run: str) -> list[dict[str, Any]]:
    path = project / ".drkit" / "journal" / f"{run}.jsonl"
    events = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [e for e in events if e["event"] == "redis_swap"]


def other_data_on(cache: LocalRedis) -> None:
    """Keys unlike the backup's, saved to dump.rdb: a rolled-back server would come up on them
    again. The previous case's marker goes (it says the running server holds that restore's
    data, which is no longer true: a restart would void it too, at seconds per case)."""
    with cache.client() as client:
        client.flushall()
        fill_cache(client, "current", keys=7)
        client.save()
    cache.rdb_path.with_name(cache.rdb_path.name + MARKER_SUFFIX).unlink(missing_ok=True)


def leftovers(cache: LocalRedis) -> list[str]:
    return sorted(
        p.name for p in cache.data_dir.iterdir() if p.name.endswith((".partial", ".before-restore"))
    )


def assert_backup_served(world: World) -> None:
    with world.cache.client() as client:
        assert cache_snapshot(client) == world.backed_up
    assert leftovers(world.cache) == []


REDIS_POINTS = [
    "redis.staged",
    *SWAP_POINTS,
    "applied:restore.session-cache",
    "after:restore.session-cache",
]
"""Every step boundary (``before:restore`` is ``redis.staged`` with less done, ``before:verify``
is ``after:restore``; after the read-only verify there is nothing to recover) and every point
inside the swap."""


@pytest.mark.parametrize("point", REDIS_POINTS)
def test_redis_restore_killed_then_resumed(world: World, point: str) -> None:
    other_data_on(world.cache)
    killed = invoke(world.project, "restore.redis", "--force", "--yes", kill_at=point)
    assert killed.returncode == KILLED, killed.stdout + killed.stderr
    run = newest_run(world.project)
    down = not port_open(world.cache.port, world.cache.host)
    assert down is (point in SWAP_POINTS)  # the state the issue reported: Redis left down
    if point in ("redis.stopped", "redis.old-renamed"):
        assert any(name.endswith(".partial") for name in leftovers(world.cache))

    if point == "redis.stopped":
        resumed = invoke(world.project, "restore.redis", "--resume", run, "--yes")
        assert resumed.returncode == 0, resumed.stdout + resumed.stderr
        out = resumed.stdout
    else:
        out = resume_in_process(world.project, "restore_redis", run)

    assert "succeeded: restore redis session-cache" in out
    assert_backup_served(world)
    phases = [e["phase"] for e in swap_events(world.project, run)]
    if point in SWAP_POINTS:  # finished from the journal, never rolled back and redone
        assert phases[-2:] == ["recovered", "started"] or phases[-1] == "recovered", phases
        recovered = next(e for e in swap_events(world.project, run) if e["phase"] == "recovered")
        assert recovered["outcome"] == "finished"
        assert "was left by a killed restore" in out
    if point.startswith(("applied:restore", "after:restore")):
        assert phases.count("stopping") == 1  # the server was not stopped a second time
        assert "ok (already done)  restore.session-cache" in out or "ok (resumed)" in out


def test_a_staged_file_that_is_not_the_journaled_one_is_rolled_back(world: World) -> None:
    """The kill left a staging file whose bytes differ from the journal's SHA-256: it is never
    loaded; the previous file goes back, the server starts on it, and the restore is redone."""
    other_data_on(world.cache)
    killed = invoke(world.project, "restore.redis", "--force", "--yes", kill_at="redis.stopped")
    assert killed.returncode == KILLED, killed.stdout + killed.stderr
    run = newest_run(world.project)
    (staged,) = world.cache.data_dir.glob("*.partial")
    with staged.open("ab") as handle:
        handle.write(b"tampered")

    resume_in_process(world.project, "restore_redis", run)

    recovered = next(e for e in swap_events(world.project, run) if e["phase"] == "recovered")
    assert recovered["outcome"] == "rolled back"
    assert_backup_served(world)


def test_a_fresh_run_finishes_the_swap_a_killed_run_left(world: World) -> None:
    """No --resume: the next `invoke restore.redis` finds the killed run's journal, takes over its
    lease at once, finishes its swap and starts the server; same backup, so its keys are no
    reason to refuse."""
    other_data_on(world.cache)
    killed = invoke(world.project, "restore.redis", "--force", "--yes", kill_at="redis.old-renamed")
    assert killed.returncode == KILLED, killed.stdout + killed.stderr
    run = newest_run(world.project)
    # The killed run's lease on the target is not waited out: its process is gone from this host.

    out = resume_in_process(world.project, "restore_redis")  # no --resume, no --force

    assert f"down after a killed restore (run {run})" in out
    assert_backup_served(world)


POSTGRES_POINTS = [
    "applied:create-database",
    "postgres.streaming",
    "postgres.sent",
    "applied:restore",
    "after:restore",
]
"""Every step boundary (``after:create-database`` is ``before:restore``, ``before:verify`` is
``after:restore``), and twice inside ``pg_restore``: its input cut short (its transaction rolls
back), and all its input sent (it commits after its parent is gone)."""


@pytest.mark.parametrize("point", POSTGRES_POINTS)
def test_postgres_restore_killed_then_resumed(world: World, point: str) -> None:
    database = "killed_" + point.replace(":", "_").replace(".", "_").replace("-", "_")
    step = {"create-database": f"create-database.{database}"}
    kind, _, name = point.partition(":")
    kill_at = f"{kind}:{step.get(name, f'{name}.{DATABASE}')}" if name else point
    arguments = ["restore.postgres", "--target-database", database, "--yes"]
    killed = invoke(world.project, *arguments, kill_at=kill_at)
    assert killed.returncode == KILLED, killed.stdout + killed.stderr
    run = newest_run(world.project)

    out = resume_in_process(world.project, "restore_postgres", run)

    assert "succeeded: restore postgres trading-db" in out
    if point in ("applied:restore", "after:restore"):
        assert "TargetNotEmpty" not in out and "FAILED" not in out
    ctx = context(world.project)
    target = postgres_source(ctx, DATABASE, database)
    expected = world.database_manifest.counts
    assert count_rows(target, list(expected)) == expected
    # No connection stays on the restored database. A backend of the killed run (or of the
    # pg_restore it left orphaned) ends on its own once it reads its client's EOF: given a few
    # seconds; one the resumed run leaked would stay, as this process still holds it.
    deadline = time.monotonic() + 10
    while True:
        with psycopg.connect(target.conninfo("postgres")) as connection:
            orphans = connection.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (database,)
            ).fetchone()
        if orphans == (0,) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert orphans == (0,)
