"""The PostgreSQL, Kafka and Redis scratch targets of ``invoke verify`` and of the monthly drill
carry their run's holder tag (``drkit.ops.scratch``): what a SIGKILLed run left is removed by the
next run, and ``invoke verify --cleanup`` removes what gone runs left, and nothing else: not a live
run's, not a database or topic that only looks alike, not the store's own."""

from __future__ import annotations

import io
import json
import signal
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import psycopg
import pytest
from confluent_kafka.admin import AdminClient
from invoke.context import Context
from psycopg import sql

import tasks
from drkit.context import OpsContext
from drkit.endpoints import postgres_source
from drkit.local.redis import LocalRedis
from drkit.ops.run import RunOptions
from drkit.ops.scratch import (
    DRILL,
    VERIFY,
    Holder,
    database_name,
    parse_topic,
    pid_alive,
    topic_name,
)
from drkit.ops.throwaway import working_in
from drkit.ops.verify import VerifyRequest, exit_code, run_verify
from tests.integration.ops_helpers import (
    CACHE,
    attach_cache,
    cache_backup,
    cache_server,
    context,
    create_topics,
    database_backup,
    delete_topics,
    fill_cache,
    produce,
    stream_backup,
    unique_topics,
)

pytestmark = pytest.mark.integration
__all__ = ["cache_server"]
DB, STREAM = "trading-db", "event-stream"


def databases(ctx: OpsContext) -> set[str]:
    server = postgres_source(ctx, DB)
    with psycopg.connect(server.conninfo("postgres")) as connection:
        return {str(r[0]) for r in connection.execute("SELECT datname FROM pg_database")}


def create_database(ctx: OpsContext, name: str) -> None:
    server = postgres_source(ctx, DB)
    with psycopg.connect(server.conninfo("postgres"), autocommit=True) as connection:
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def drop_database(ctx: OpsContext, name: str) -> None:
    server = postgres_source(ctx, DB)
    with psycopg.connect(server.conninfo("postgres"), autocommit=True) as connection:
        connection.execute(sql.SQL("DROP DATABASE {}").format(sql.Identifier(name)))


def topics_on(bootstrap: str) -> set[str]:
    return set(AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=10).topics)


def scratch_copies(bootstrap: str, topics: list[str]) -> set[str]:
    """Scratch topics (any run's) of the test's own topics."""
    return {t for t in topics_on(bootstrap) if (p := parse_topic(t)) and p[1] in topics}


KILLED_RUN = """
import os, signal, sys, threading
from pathlib import Path
from drkit.context import OpsContext
from drkit.ops import verify, verify_kafka, verify_postgres
from drkit.local.redis import LocalRedis
from drkit.ops.run import RunOptions

both = threading.Barrier(2, timeout=90)
count_rows, restore_kafka = verify_postgres.count_rows, verify_kafka.restore_kafka

def killed():
    both.wait()  # the other store's scratch target is made too
    os.kill(os.getpid(), signal.SIGKILL)

def counted_then_killed(*args, **kwargs):
    count_rows(*args, **kwargs)
    killed()

def restored_then_killed(*args, **kwargs):
    restore_kafka(*args, **kwargs)
    killed()

verify_postgres.count_rows = counted_then_killed
verify_kafka.restore_kafka = restored_then_killed
project = Path(sys.argv[1])
ctx = OpsContext.load("local", project_dir=project)
request = verify.VerifyRequest(stores=["trading-db", "event-stream"])
verify.run_verify(ctx, request, RunOptions(yes=True), project, sys.stdout)
raise SystemExit("not killed")
"""


def test_a_killed_runs_scratch_database_and_topics_go_with_the_next_run_and_cleanup_spares_others(
    project_with_kafka: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    project = project_with_kafka
    topics = unique_topics(project)
    ctx = context(project)
    exported = ctx.outputs.stores[STREAM]
    bootstrap = f"{exported.host}:{exported.port}"
    create_topics(bootstrap, topics)
    for topic in topics:
        produce(bootstrap, topic, 0, 10)
    database_backup(ctx)
    stream_backup(ctx)
    own = databases(ctx)

    # A verify SIGKILLed once its scratch database and topics hold the restored data.
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(KILLED_RUN), str(project)],
        capture_output=True,
        text=True,
        check=False,
        timeout=180,
    )
    assert done.returncode == -signal.SIGKILL, done.stdout + done.stderr
    database = postgres_source(ctx, DB).database
    (left_db,) = {d for d in databases(ctx) - own if d.startswith(f"{database}_verify_")}
    left_topics = scratch_copies(bootstrap, topics)
    assert len(left_topics) == len(topics)

    out = io.StringIO()
    run, report = run_verify(
        ctx, VerifyRequest(stores=[DB, STREAM]), RunOptions(yes=True), project, out
    )

    assert exit_code(run, report) == 0, out.getvalue()
    detail = {c.subject: c.detail for c in report.checks if c.check == "test-restore"}
    assert f"before it, dropped database {left_db}: its run (pid" in detail[DB]
    for topic in left_topics:
        assert f"deleted topic {topic}: its run (pid" in detail[STREAM]
    assert databases(ctx) == own
    assert not scratch_copies(bootstrap, topics)

    # Left by gone runs (verify and drill), and what cleanup must spare.
    gone = Holder("0" * 8, 1, 1_700_000_000, "0dead0")  # another host, long ago
    live = Holder.mine()  # this process: its run is going
    doomed_dbs = {database_name(database, gone, VERIFY), database_name(database, gone, DRILL)}
    spared_dbs = {
        database_name(database, live, VERIFY),
        f"{database}_verify_notatag",
        database_name(f"other{database}", gone, VERIFY),  # another database's scratch copy
    }
    doomed_topics = {topic_name(topics[0], gone, VERIFY), topic_name(topics[1], gone, DRILL)}
    spared_topics = {topic_name(topics[0], live, DRILL), f"verify.notatag.{topics[0]}"}
    for name in doomed_dbs | spared_dbs:
        create_database(ctx, name)
    create_topics(bootstrap, sorted(doomed_topics | spared_topics))
    monkeypatch.setattr(tasks, "ROOT", project)
    capsys.readouterr()

    tasks.verify(Context(), stores=f"{DB},{STREAM}", cleanup=True, dry_run=True)

    printed = capsys.readouterr().out
    for name in doomed_dbs:
        assert f"{DB}: would drop database {name}: started" in printed
    for name in doomed_topics:
        assert f"{STREAM}: would delete topic {name}: started" in printed
    assert f"kept database {database_name(database, live, VERIFY)}" in printed
    assert f"kept topic {topic_name(topics[0], live, DRILL)}" in printed
    assert databases(ctx) >= doomed_dbs | spared_dbs  # a dry run removes nothing

    tasks.verify(Context(), stores=f"{DB},{STREAM}", cleanup=True)

    printed = capsys.readouterr().out
    for name in doomed_dbs:
        assert f"{DB}: dropped database {name}: started" in printed
    for name in doomed_topics:
        assert f"{STREAM}: deleted topic {name}: started" in printed
    assert databases(ctx) == own | spared_dbs
    listed = topics_on(bootstrap)
    assert not doomed_topics & listed
    assert spared_topics | set(topics) <= listed
    for name in spared_dbs:
        drop_database(ctx, name)
    delete_topics(bootstrap, sorted(spared_topics))


KILLED_REDIS_RUN = """
import os, signal, sys
from pathlib import Path
from drkit.context import OpsContext
from drkit.ops import verify, verify_redis
from drkit.local.redis import LocalRedis
from drkit.ops.run import RunOptions

restore_redis = verify_redis.restore_redis

def restored_then_killed(*args, **kwargs):
    restore_redis(*args, **kwargs)
    os.kill(os.getpid(), signal.SIGKILL)

verify_redis.restore_redis = restored_then_killed
project = Path(sys.argv[1])
ctx = OpsContext.load("local", project_dir=project)
request = verify.VerifyRequest(stores=["session-cache"])
verify.run_verify(ctx, request, RunOptions(yes=True), project, sys.stdout)
raise SystemExit("not killed")
"""


def test_the_scratch_redis_server_a_killed_run_left_is_stopped_by_the_next_run(
    project: Path, cache_server: LocalRedis
) -> None:
    attach_cache(project, cache_server)
    ctx = context(project)
    with cache_server.client() as client:
        fill_cache(client, "killed")
    cache_backup(ctx)
    before = set(Path(tempfile.gettempdir()).glob("drkit-scratch-redis-*"))

    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(KILLED_REDIS_RUN), str(project)],
        capture_output=True,
        text=True,
        check=False,
        timeout=180,
    )

    assert done.returncode == -signal.SIGKILL, done.stdout + done.stderr
    (left,) = set(Path(tempfile.gettempdir()).glob("drkit-scratch-redis-*")) - before
    record = json.loads((left / "server.json").read_text())
    (server,) = working_in(record["cwd"])  # the killed run's redis-server still runs
    out = io.StringIO()
    run, report = run_verify(ctx, VerifyRequest(stores=[CACHE]), RunOptions(yes=True), project, out)
    assert exit_code(run, report) == 0, out.getvalue()
    (detail,) = [c.detail for c in report.checks if c.check == "test-restore"]
    assert f"before it, removed throwaway redis server in {left}: its run (pid" in detail
    assert not pid_alive(server) and working_in(record["cwd"]) == [] and not left.exists()
