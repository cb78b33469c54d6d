"""Bad input through the real commands (``invoke ...`` and ``python -m drkit backup``, each a
process of its own): exit 2, one line on stderr naming the bad input, no traceback, nothing
changed. A failure that is not the input's fault (S3 unreachable) is exit 1, one line naming the
cause; ``DRKIT_DEBUG=1`` brings the traceback back.

The probes of issue 13: a target database given as a connection string, ``template1``, the
source database itself, a name longer than PostgreSQL keeps, a target that is not empty; two Kafka
renames onto one topic; a cluster namespace and a malformed ElastiCache group as targets; a vault
bucket that does not exist and an S3 endpoint that does not answer; ``--outputs`` that is a
directory or ``/dev/zero``; a stack file that is a directory, is not UTF-8 or gives a key twice.

The commands of a test run side by side (each process spends most of its time importing).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from drkit.endpoints import postgres_source
from drkit.local.s3 import LocalAws
from tests.integration.ops_helpers import context, database_backup

pytestmark = [pytest.mark.integration, pytest.mark.reliability]

ROOT = Path(__file__).resolve().parents[2]
SIDE_BY_SIDE = 4
HANG_GUARD_SECONDS = 240  # a command that never ends fails the test instead of hanging it


@dataclass(frozen=True)
class Ran:
    command: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    def __str__(self) -> str:
        return f"{' '.join(self.command)} -> {self.returncode}\n{self.stdout}{self.stderr}"


def invoke(*arguments: str) -> list[str]:
    return [sys.executable, "-m", "invoke", *arguments]


def drkit_backup(project: Path, *arguments: str) -> list[str]:
    return [sys.executable, "-m", "drkit", "backup", *arguments, "--project-dir", str(project)]


def run_all(
    project: Path, commands: Sequence[list[str]], env: dict[str, str] | None = None
) -> list[Ran]:
    """Run the commands side by side in ``project`` (its own tasks.py, rooted there)."""
    (project / "tasks.py").write_text(
        (ROOT / "tasks.py")
        .read_text()
        .replace("ROOT = Path(__file__).resolve().parent", f"ROOT = Path({str(project)!r})")
    )
    environment = {k: v for k, v in os.environ.items() if k != "DRKIT_DEBUG"} | (env or {})

    def one(command: list[str]) -> Ran:
        result = subprocess.run(
            command,
            capture_output=True,
            text=True,
            cwd=project,
            env=environment,
            timeout=HANG_GUARD_SECONDS,
            check=False,
        )
        return Ran(tuple(command), result.returncode, result.stdout, result.stderr)

    with ThreadPoolExecutor(SIDE_BY_SIDE) as pool:
        return list(pool.map(one, commands))


def assert_refused(ran: Ran, *named: str) -> None:
    """Exit 2, one line on stderr that starts with ``error:`` and names the input."""
    assert ran.returncode == 2, ran
    assert "Traceback" not in ran.stderr + ran.stdout, ran
    lines = ran.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), ran
    for text in named:
        assert text in lines[0], (text, str(ran))


def nothing_journaled(project: Path) -> bool:
    return not (project / ".drkit" / "journal").exists()


# --- PostgreSQL targets ------------------------------------------------------------------------


def databases(conninfo: str) -> set[str]:
    with psycopg.connect(conninfo) as connection:
        return {str(r[0]) for r in connection.execute("SELECT datname FROM pg_database")}


def user_tables(conninfo: str) -> list[str]:
    with psycopg.connect(conninfo) as connection:
        rows = connection.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"
        ).fetchall()
    return [str(r[0]) for r in rows]


def test_a_target_database_is_a_plain_new_name_or_refused(project: Path) -> None:
    ctx = context(project)
    manifest = database_backup(ctx)
    source = postgres_source(ctx, "trading-db")
    canary = f"{source.database}_canary"
    with psycopg.connect(source.conninfo("postgres"), autocommit=True) as connection:
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(canary)))
    canary_db = postgres_source(ctx, "trading-db", canary)
    with psycopg.connect(canary_db.conninfo(), autocommit=True) as connection:
        connection.execute("CREATE TABLE live_orders (id int)")
        connection.execute("INSERT INTO live_orders VALUES (1), (2)")
    connection_string = f"postgresql://{source.user}@{source.host}:{source.port}/{canary}"
    before = databases(source.conninfo("postgres"))
    restore = ["restore.postgres", "--stack", "local", "--yes", "--target-database"]

    connection_string_run, source_run, busy_run = run_all(
        project,
        [
            invoke(*restore, connection_string),
            invoke(*restore, source.database),
            invoke(*restore, canary),
        ],
    )

    assert_refused(connection_string_run, repr(connection_string), "not a connection string")
    assert_refused(source_run, f"'{source.database}' is the source database")
    assert_refused(busy_run, f"target database '{canary}'", "is not empty", "--force")
    assert databases(source.conninfo("postgres")) == before  # none created, none dropped
    assert user_tables(canary_db.conninfo()) == ["live_orders"]
    with psycopg.connect(canary_db.conninfo()) as connection:
        assert connection.execute("SELECT count(*) FROM live_orders").fetchone() == (2,)
    assert sorted(user_tables(source.conninfo())) == sorted(
        t.split(".", 1)[1] for t in manifest.counts
    )
    assert nothing_journaled(project)


# --- Kafka, Kubernetes and ElastiCache targets -------------------------------------------------


def test_renames_onto_one_topic_and_a_cluster_namespace_are_refused(project: Path) -> None:
    merge, namespace = run_all(
        project,
        [
            invoke("restore.kafka", "--rename", "orders=all", "--rename", "ticks=all", "--yes"),
            invoke("restore.k8s", "--namespace-to", "kube-system", "--yes"),
        ],
    )
    assert_refused(merge, "two topics would be restored into one (orders, ticks -> 'all')")
    assert_refused(namespace, "--namespace-to 'kube-system' is one of the cluster's own")
    assert nothing_journaled(project)


def test_invoke_parse_errors_and_a_malformed_aurora_target_are_refused(project: Path) -> None:
    """invoke's own parse errors (an unknown flag, a flag without its value, an unknown task)
    are refusals too: exit 2, one line (``drkit.invoke_parse``); so is a new Aurora cluster id
    that breaks RDS's rules (``drkit.targets``)."""
    unknown, no_value, no_task, aurora = run_all(
        project,
        [
            invoke("restore.postgres", "--yes", "--bogus"),
            invoke("restore.postgres", "--yes", "--target-database"),
            invoke("restore.nothing"),
            invoke("restore.aurora", "--latest", "--target-cluster", "Prod--DB", "--yes"),
        ],
    )
    assert_refused(unknown, "'--bogus'", "invoke --help restore.postgres")
    assert_refused(no_value, "--target-database needs a value")
    assert_refused(no_task, "'restore.nothing'", "invoke --list")
    assert_refused(aurora, "--target-cluster 'Prod--DB': not an Aurora cluster id")
    assert nothing_journaled(project)


# --- the vault: missing or unreachable ---------------------------------------------------------


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def outputs_variant(project: Path, name: str, **changes: object) -> Path:
    values = json.loads((project / ".drkit" / "local" / "outputs.json").read_text())
    for key, value in changes.items():
        if key == "vault":
            values["backup_vault"]["name"] = value
        else:
            values[key] = value
    path = project / f"{name}.json"
    path.write_text(json.dumps(values))
    return path


def vault_keys(aws: LocalAws, bucket: str) -> list[str]:
    listed = aws.s3().list_objects_v2(Bucket=bucket)
    return [item["Key"] for item in listed.get("Contents", [])]


def test_a_missing_vault_and_an_unreachable_endpoint_are_refused_in_one_line(
    project: Path, aws_emulator: LocalAws
) -> None:
    vault = json.loads((project / ".drkit" / "local" / "outputs.json").read_text())
    vault_name = vault["backup_vault"]["name"]
    missing = outputs_variant(project, "missing", vault=f"{vault_name}-gone")
    endpoint = f"http://127.0.0.1:{closed_port()}"
    unreachable = outputs_variant(project, "unreachable", aws_endpoint_url=endpoint)
    before = vault_keys(aws_emulator, vault_name)

    restored, backed_up, down, down_debug = run_all(
        project,
        [
            invoke("restore.redis", "--stack", "local", "--outputs", str(missing), "--yes"),
            drkit_backup(project, "trading-db", "--stack", "local", "--outputs", str(missing)),
            invoke("backups.list", "--stack", "local", "--outputs", str(unreachable)),
        ],
    ) + run_all(
        project,
        [invoke("backups.list", "--stack", "local", "--outputs", str(unreachable))],
        env={"DRKIT_DEBUG": "1"},
    )

    for ran in (restored, backed_up):
        assert_refused(ran, f"{vault_name}-gone", "name a bucket that does not exist")
    assert down.returncode == 2, down  # what the operator fixes: start the stack, check the path
    assert "Traceback" not in down.stderr, down
    [line] = down.stderr.strip().splitlines()
    assert line.startswith(f"error: cannot reach {endpoint}/") and "`invoke local.up`" in line
    assert down_debug.returncode == 1 and "Traceback (most recent call last)" in down_debug.stderr
    assert vault_keys(aws_emulator, vault_name) == before
    assert nothing_journaled(project)


# --- files that are not what they should be ----------------------------------------------------


def test_outputs_and_stack_files_that_cannot_be_read_are_refused_at_once(project: Path) -> None:
    outputs = project / ".drkit" / "local" / "outputs.json"
    (project / "Pulumi.folder.yaml").mkdir()
    stack_file = (project / "Pulumi.prod.yaml").read_bytes()
    (project / "Pulumi.latin1.yaml").write_bytes(
        stack_file.replace(b"config:", b"# caf\xe9\nconfig:", 1)
    )
    latin1_line = stack_file[: stack_file.index(b"config:")].count(b"\n") + 1
    lines = stack_file.decode().splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("  trading-dr:region:"))
    (project / "Pulumi.twice.yaml").write_text(
        "\n".join([*lines[: first + 1], "  trading-dr:region: eu-west-1", *lines[first + 1 :]])
        + "\n"
    )
    listing = ["backups.list", "--stack"]

    runs = run_all(
        project,
        [
            invoke(*listing, "local", "--outputs", str(project)),
            drkit_backup(project, "trading-db", "--stack", "local", "--outputs", "/dev/zero"),
            invoke(*listing, "folder", "--outputs", str(outputs)),
            drkit_backup(
                project, "trading-db", "--stack", "latin1", "--yes", "--outputs", str(outputs)
            ),
            invoke(*listing, "twice", "--outputs", str(outputs)),
            drkit_backup(project, "trading-db", "--stack", "local", "--wait", "soon"),
        ],
    )
    directory, zero, folder, latin1, twice, bad_flag = runs

    assert_refused(directory, f"outputs file {project} is a directory, not a file")
    assert_refused(zero, "outputs file /dev/zero is larger than 4096 KiB")
    assert_refused(folder, "Pulumi.folder.yaml", "is a directory, not a file")
    not_utf8 = f"is not UTF-8 text (byte 0xe9 on line {latin1_line})"
    assert_refused(latin1, "Pulumi.latin1.yaml", not_utf8)
    duplicate = f"duplicate key 'trading-dr:region' at lines {first + 1} and {first + 2}"
    assert_refused(twice, "Pulumi.twice.yaml", duplicate)
    assert_refused(bad_flag, "argument --wait: invalid int value: 'soon'")
    assert not (project / "reports").exists() and nothing_journaled(project)
