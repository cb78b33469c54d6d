"""``invoke restore.redis`` as an on-call engineer uses it: the RDB into the store's own server
(stopped, file replaced, restarted, keys counted), or into a new ElastiCache group; plan first,
confirmation, journal, resume after an interruption, and a report."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from drkit.local.redis import LocalRedis
from drkit.ops.executor import Status
from drkit.ops.restore_redis import RestoreRedisRequest, build_plan
from drkit.ops.selection import TargetNotEmptyError
from drkit.ops.verbs import RestoreEnv
from tests.integration.ops_helpers import (
    ROOT,
    attach_cache,
    cache_backup,
    cache_server,
    cache_snapshot,
    context,
    fill_cache,
    run,
    run_id,
)

pytestmark = pytest.mark.integration
__all__ = ["cache_server"]  # the fixture, imported for pytest


def test_restore_into_the_stopped_server_brings_every_key_back(
    project: Path, cache_server: LocalRedis
) -> None:
    attach_cache(project, cache_server)
    ctx = context(project)
    with cache_server.client() as client:
        fill_cache(client, "backed-up")
        before = cache_snapshot(client)
    manifest = cache_backup(ctx)
    with cache_server.client() as client:
        client.flushall()  # the disaster: the cache lost everything
    first_run = run_id(cache_server)

    plan, _ = build_plan(ctx, RestoreRedisRequest(), RestoreEnv(project))
    report, out = run(ctx, project, plan, yes=True)

    assert report.status is Status.SUCCEEDED, out
    assert manifest.backup_id in out  # the plan names the real backup id
    with cache_server.client() as client:
        assert cache_snapshot(client) == before
        assert 3_000 < client.ttl("lock") <= 3_600  # expiries come back too
    assert run_id(cache_server) != first_run  # it was really stopped and started
    assert [s.outcome for s in report.steps] == ["done", "done"]
    assert "43 keys" in out  # counted against the manifest


def test_a_server_holding_keys_is_refused_unless_forced_and_rerun_is_idempotent(
    project: Path, cache_server: LocalRedis
) -> None:
    attach_cache(project, cache_server)
    ctx = context(project)
    with cache_server.client() as client:
        fill_cache(client, "old")
    cache_backup(ctx)
    with cache_server.client() as client:
        fill_cache(client, "new")
        newer = cache_snapshot(client)
    running = run_id(cache_server)

    with pytest.raises(TargetNotEmptyError, match=r"holds keys \(db0: 43\).*--force"):
        build_plan(ctx, RestoreRedisRequest(), RestoreEnv(project))
    plan, _ = build_plan(ctx, RestoreRedisRequest(force=True), RestoreEnv(project))
    report, out = run(ctx, project, plan, dry_run=True)
    assert report.status is Status.DRY_RUN and "swap the file in" in out
    with cache_server.client() as client:  # neither refusal nor dry run touched it
        assert cache_snapshot(client) == newer
    assert run_id(cache_server) == running

    report, out = run(ctx, project, plan, yes=True)
    assert report.status is Status.SUCCEEDED, out
    with cache_server.client() as client:
        assert client.get("quote:0") == b"old-0"
    restarted = run_id(cache_server)
    plan, _ = build_plan(
        ctx, RestoreRedisRequest(), RestoreEnv(project)
    )  # its own data: not refused
    again, out = run(ctx, project, plan, yes=True)
    assert again is not None and again.status is Status.SUCCEEDED, out
    assert "ok (already done)  restore.session-cache" in out
    assert run_id(cache_server) == restarted  # not stopped a second time


def test_restore_interrupted_half_way_then_resumed(project: Path, cache_server: LocalRedis) -> None:
    """Ctrl-C while the RDB streams from the vault: the server is untouched; --resume finishes."""
    attach_cache(project, cache_server)
    ctx = context(project)
    with cache_server.client() as client:
        fill_cache(client, "backed-up")
        before = cache_snapshot(client)
    cache_backup(ctx)
    with cache_server.client() as client:
        client.flushall()
    running = run_id(cache_server)
    script = f"""
import sys
from pathlib import Path
from drkit.context import OpsContext
from drkit.ops.restore_redis import RestoreRedisRequest, build_plan
from drkit.ops.run import RunOptions, run_plan
from drkit.ops.verbs import RestoreEnv
import drkit.restore.redis as restore
real = restore.raw_chunks
def interrupted(store, item):
    chunks = real(store, item)
    yield next(chunks)
    raise KeyboardInterrupt
restore.raw_chunks = interrupted
project = Path({str(project)!r})
ctx = OpsContext.load("local", project_dir=project)
plan, _ = build_plan(ctx, RestoreRedisRequest(), RestoreEnv(project))
report = run_plan(ctx, plan, RunOptions(yes=True), project, sys.stdout, "r")
print("RUN_ID", report.run_id)
sys.exit(report.exit_code)
"""
    first = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, check=False
    )
    assert first.returncode == 130, first.stdout + first.stderr
    assert run_id(cache_server) == running  # never stopped: the download had not finished
    assert not list(cache_server.data_dir.glob(".drkit-restore-*"))  # no staging file left
    run_id_ = first.stdout.split("RUN_ID ")[1].split()[0]

    plan, _ = build_plan(ctx, RestoreRedisRequest(), RestoreEnv(project))
    report, out = run(ctx, project, plan, yes=True, resume=run_id_)
    assert report.status is Status.SUCCEEDED, out
    with cache_server.client() as client:
        assert cache_snapshot(client) == before


def test_into_a_new_elasticache_group_seeded_from_the_vault(
    project: Path, cache_server: LocalRedis
) -> None:
    attach_cache(project, cache_server)
    ctx = context(project)
    with cache_server.client() as client:
        fill_cache(client, "backed-up")
    manifest = cache_backup(ctx)
    request = RestoreRedisRequest(
        replication_group="cache-restored", node_type="cache.t4g.small", wait_delay=1
    )
    plan, _ = build_plan(ctx, request, RestoreEnv(project))
    report, out = run(ctx, project, plan, yes=True)
    assert report.status is Status.SUCCEEDED, out
    assert "key count not checked from here" in out  # said, not faked
    group = ctx.aws("elasticache").describe_replication_groups(ReplicationGroupId="cache-restored")[
        "ReplicationGroups"
    ][0]
    assert group["Status"] == "available"
    seed = f"restore-seeds/{manifest.backup_id}/dump.rdb"  # the zstd dump written out raw
    assert ctx.vault().exists(seed)
    with pytest.raises(TargetNotEmptyError, match="'cache-restored' already exists"):
        build_plan(ctx, request, RestoreEnv(project))


def test_the_invoke_task_end_to_end(project: Path, cache_server: LocalRedis) -> None:
    attach_cache(project, cache_server)
    ctx = context(project)
    with cache_server.client() as client:
        fill_cache(client, "backed-up")
    cache_backup(ctx)
    (project / "tasks.py").write_text(
        (ROOT / "tasks.py")
        .read_text()
        .replace("ROOT = Path(__file__).resolve().parent", f"ROOT = Path({str(project)!r})")
    )
    command = [sys.executable, "-m", "invoke", "restore.redis", "--force", "--yes"]
    result = subprocess.run(command, capture_output=True, text=True, cwd=project, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "succeeded: restore redis session-cache" in result.stdout
    report = json.loads((project / "reports" / "latest" / "restore-redis.json").read_text())
    assert report["figures"]["keys_in_backup"] == 43
    with cache_server.client() as client:  # restarted by the task's process, still serving
        assert client.get("quote:1") == b"backed-up-1"
    refused = subprocess.run(
        [*command[:-2], "--backup", "20200101T000000Z-abcdef"],
        capture_output=True,
        text=True,
        cwd=project,
        check=False,
    )
    assert refused.returncode == 2
    assert "backup '20200101T000000Z-abcdef' of 'session-cache' does not exist" in refused.stderr
