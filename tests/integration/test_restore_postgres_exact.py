"""Issue 18: a PostgreSQL restore is the database with its privileges, checked exactly.

The tricky dataset (``pg_tricky``) goes through the tasks' own code (``backup.store``, then
``restore.postgres`` from the vault and from the mirror) and comes back identical: every object
with its definition and privileges, every row, every sequence's state. Verify names a changed
grant, a changed row and a lost sequence value; missing roles, an older server and a forged
fingerprint are refused or failed with what is wrong named."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest

from drkit import pg_exact
from drkit.backup.manifest import MANIFEST_NAME, Manifest
from drkit.backup.postgres import PostgresSource
from drkit.backups import backup_store
from drkit.context import OpsContext
from drkit.endpoints import postgres_source
from drkit.ops.backups_info import InfoRequest, backup_info
from drkit.ops.executor import Status
from drkit.ops.restore_postgres import RestorePostgresRequest, build_plan
from drkit.ops.run import RunOptions, run_plan
from drkit.ops.verbs import RestoreEnv
from drkit.ops.verify import VerifyRequest, exit_code, run_verify
from drkit.restore.postgres import MissingRoles, OlderServer, compare_restored
from tests.integration.forgery import overwrite
from tests.integration.pg_tricky import app_role, create_tricky_dataset

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
ITEMS = '"odd schema"."order items"'
NEW_KINDS = (
    "operator odd schema.~~~(numeric, numeric)",
    'cast ("odd schema".mood AS text)',
    "text search configuration odd schema.plain",
    "publication odd pub",
    "foreign data wrapper odd fdw",
    "server odd server",
    "policy own moods on odd schema.order items",
    "rule keep blobs on odd schema.blobs",
    "statistics odd schema.mood and price",
    "operator class odd schema.reverse ops using btree",
    "operator family odd schema.reverse ops using btree",
    "operator family odd schema.odd hash using hash",
)
"""Operators, casts, text search, publications (fingerprint version 2), operator classes and
families (version 3), policies, rules and statistics objects in the tricky dataset."""


def tricky_backup(project: Path) -> tuple[OpsContext, PostgresSource, str, Manifest]:
    ctx = OpsContext.load("local", project_dir=project)
    source = postgres_source(ctx, "trading-db")
    role = app_role()
    create_tricky_dataset(source.conninfo(), role)
    return ctx, source, role, backup_store(ctx, "trading-db", [])


def run(ctx: OpsContext, project: Path, request: RestorePostgresRequest) -> tuple[Status, str]:
    out = io.StringIO()
    plan, _ = build_plan(ctx, request, RestoreEnv(project))
    report = run_plan(ctx, plan, RunOptions(yes=True), project, out, "restore-postgres")
    return report.status, out.getvalue()


def snapshot(target: PostgresSource) -> tuple[dict[str, str], dict[str, Any], dict[str, Any]]:
    """Everything a restore must reproduce, as ``drkit.pg_exact`` reads it."""
    with psycopg.connect(target.conninfo()) as connection:
        pg_exact.apply_settings(connection)
        objects = {k: v.digest for k, v in pg_exact.schema_objects(connection).items()}
        return (
            objects,
            pg_exact.table_contents(connection, 2**40),
            pg_exact.sequence_states(connection),
        )


def forge(ctx: OpsContext, manifest: Manifest, **changes: Any) -> None:
    """Put an edited manifest over the backup's in the vault (a forger's plain PUT)."""
    body = json.loads(manifest.model_dump_json())
    for key, value in changes.items():
        if value is None:
            body.pop(key)
        else:
            body[key] = value
    overwrite(ctx.vault(), manifest.prefix + MANIFEST_NAME, json.dumps(body).encode())


def test_the_tricky_dataset_round_trips_exactly_from_the_vault_and_the_mirror(
    project: Path,
) -> None:
    ctx, source, role, manifest = tricky_backup(project)
    assert role in [r["name"] for r in manifest.roles or []]
    assert all("password" not in json.dumps(r) for r in manifest.roles or [])
    assert "table odd schema.order items" in manifest.checks["schema"]["objects"]
    assert set(NEW_KINDS) <= set(manifest.checks["schema"]["objects"])
    assert "user mapping for public server odd server" in manifest.checks["schema"]["objects"]
    assert manifest.checks["schema"]["version"] == 3
    # No label provider is loaded here: the labels' query ran, found none, and none compare.
    assert not [k for k in manifest.checks["schema"]["objects"] if k.startswith("security label")]
    assert manifest.checks["content"]["tables"]["large objects"].startswith("1:")
    assert manifest.checks["sequences"]["odd schema.cycling seq"] == [1, True]
    info = backup_info(ctx, InfoRequest(backup_id=manifest.backup_id)).to_text()
    assert f"roles         {role}, postgres" in info
    assert "content checksums of 5/5 tables, 3 sequence states" in info
    expected = snapshot(source)
    for where in ("vault", "mirror"):
        database = f"exact_{where}"
        request = RestorePostgresRequest(target_database=database, source=where)
        status, out = run(ctx, project, request)
        assert status is Status.SUCCEEDED, out
        assert "schema objects, the content of 5 tables, the state of 3 sequences" in out
        target = postgres_source(ctx, "trading-db", database)
        assert snapshot(target) == expected, where
        with psycopg.connect(target.conninfo()) as connection:
            granted = connection.execute(
                "SELECT has_schema_privilege(%s, 'odd schema', 'USAGE'),"
                f" has_table_privilege(%s, '{ITEMS}', 'INSERT'),"
                f" has_column_privilege(%s, '{ITEMS}', 'doc', 'UPDATE'),"
                f" has_table_privilege(%s, '{ITEMS}', 'DELETE'),"
                " obj_description('\"odd schema\".\"order items\"'::regclass, 'pg_class')",
                (role, role, role, role),
            ).fetchone()
            assert granted == (True, True, True, False, "items, with a comment")
            tags = connection.execute(f"SELECT tags, reading FROM {ITEMS} ORDER BY 1").fetchall()
            assert ["a", None, 'with "quote"', "with 'apostrophe'", ""] in [t[0] for t in tags]


def test_verify_names_a_changed_grant_a_changed_row_and_a_lost_sequence_value(
    project: Path,
) -> None:
    ctx, _source, role, manifest = tricky_backup(project)
    status, out = run(ctx, project, RestorePostgresRequest(target_database="tampered"))
    assert status is Status.SUCCEEDED, out
    target = postgres_source(ctx, "trading-db", "tampered")
    assert compare_restored(manifest, target)[0] is None

    with psycopg.connect(target.conninfo(), autocommit=True) as connection:
        connection.execute(f'REVOKE INSERT ON {ITEMS} FROM "{role}"')
        difference, _ = compare_restored(manifest, target)
        assert difference is not None
        assert difference.startswith(
            "table odd schema.order items: its owner or privileges differ from the backup's"
        )
        assert f'"\\"{role}\\"=r/postgres"' in difference  # what the restored table grants
        connection.execute(f'GRANT INSERT ON {ITEMS} TO "{role}"')

        connection.execute(f"UPDATE {ITEMS} SET doc = '{{}}' WHERE mood = 'sad'")
        difference, _ = compare_restored(manifest, target)
        assert difference == (
            "table odd schema.order items: its content differs from the backup's "
            "(3 rows in both, a row differs)"
        )
        connection.execute(f"UPDATE {ITEMS} SET doc = 'null' WHERE mood = 'sad'")
        assert compare_restored(manifest, target)[0] is None

        connection.execute('SELECT setval(\'"odd schema"."cycling seq"\', 1, false)')
        difference, _ = compare_restored(manifest, target)
        assert difference == (
            "sequence odd schema.cycling seq: its state (last value, is_called) is "
            "[1, False], the backup's is [1, True]"
        )


def test_verify_names_a_changed_text_search_config_policy_and_operator_class_reads_older(
    project: Path,
) -> None:
    ctx, _source, _role, manifest = tricky_backup(project)
    status, out = run(ctx, project, RestorePostgresRequest(target_database="tampered_kinds"))
    assert status is Status.SUCCEEDED, out
    target = postgres_source(ctx, "trading-db", "tampered_kinds")
    assert compare_restored(manifest, target)[0] is None
    # A fingerprint recorded before version 2: without the kinds version 2 added.
    old = json.loads(json.dumps(manifest.checks))
    old["schema"]["version"] = 1
    old["schema"]["objects"] = {
        key: value
        for key, value in old["schema"]["objects"].items()
        if not key.startswith(pg_exact.VERSION_2_KINDS)
    }
    older = manifest.model_copy(update={"checks": old})
    assert compare_restored(older, target)[0] is None
    # Version 2: without operator classes and families, security labels and subscriptions.
    two = json.loads(json.dumps(manifest.checks))
    two["schema"]["version"] = 2
    two["schema"]["objects"] = {
        key: value
        for key, value in two["schema"]["objects"].items()
        if not key.startswith(pg_exact.VERSION_3_KINDS)
    }
    version_2 = manifest.model_copy(update={"checks": two})
    assert compare_restored(version_2, target)[0] is None

    config = '"odd schema".plain'
    with psycopg.connect(target.conninfo(), autocommit=True) as connection:
        connection.execute(f"ALTER TEXT SEARCH CONFIGURATION {config} DROP MAPPING FOR url")
        assert compare_restored(manifest, target)[0] == (
            "text search configuration odd schema.plain: its definition differs from the backup's"
        )
        assert compare_restored(older, target)[0] is None  # not recorded: not compared
        connection.execute(f"DROP TEXT SEARCH CONFIGURATION {config}")
        assert compare_restored(manifest, target)[0] == (
            "text search configuration odd schema.plain is in the backup but not in the "
            "restored database"
        )
        connection.execute(
            f"CREATE TEXT SEARCH CONFIGURATION {config} (COPY = pg_catalog.simple);"
            f" ALTER TEXT SEARCH CONFIGURATION {config} DROP MAPPING FOR email;"
            f" COMMENT ON TEXT SEARCH CONFIGURATION {config} IS 'simple, without emails'"
        )
        assert compare_restored(manifest, target)[0] is None
        connection.execute(f'ALTER POLICY "own moods" ON {ITEMS} USING (true)')
        assert compare_restored(manifest, target)[0] == (
            "policy own moods on odd schema.order items: its definition differs from the backup's"
        )
        connection.execute(f"ALTER POLICY \"own moods\" ON {ITEMS} USING (mood <> 'sad')")
        assert compare_restored(manifest, target)[0] is None

        # The operator class sorts the other way now (its support function is another).
        reverse = '"odd schema"."reverse ops"'
        connection.execute(f"DROP OPERATOR CLASS {reverse} USING btree CASCADE")
        connection.execute(
            f"CREATE OPERATOR CLASS {reverse} FOR TYPE bigint USING btree AS OPERATOR 1 <,"
            " OPERATOR 2 <=, OPERATOR 3 =, OPERATOR 4 >=, OPERATOR 5 >,"
            " FUNCTION 1 btint8cmp(bigint, bigint)"
        )
        connection.execute(f"COMMENT ON OPERATOR CLASS {reverse} USING btree IS 'largest first'")
        connection.execute(f'CREATE INDEX "items reversed" ON {ITEMS} ("item id" {reverse})')
        assert compare_restored(manifest, target)[0] == (
            "operator class odd schema.reverse ops using btree: its definition differs from the"
            " backup's"
        )
        assert compare_restored(version_2, target)[0] is None  # not recorded: not compared


def test_a_fingerprint_that_does_not_match_fails_the_restore_and_leaves_the_target(
    project: Path,
) -> None:
    ctx, _source, _role, manifest = tricky_backup(project)
    checks = json.loads(json.dumps(manifest.checks))
    key = "view odd schema.happy items"
    _definition, privileges = checks["schema"]["objects"][key].split(":")
    checks["schema"]["objects"][key] = f"{'0' * 16}:{privileges}"
    forge(ctx, manifest, checks=checks)
    status, out = run(ctx, project, RestorePostgresRequest(target_database="mismatched"))
    assert status is Status.FAILED
    assert (
        "view odd schema.happy items: its definition differs from the backup's; "
        "'mismatched' is left as it is, for inspection"
    ) in out
    target = postgres_source(ctx, "trading-db", "mismatched")
    with psycopg.connect(target.conninfo()) as connection:  # there, restored, for inspection
        assert connection.execute(f"SELECT count(*) FROM {ITEMS}").fetchone() == (3,)


def test_a_backup_without_a_fingerprint_still_restores(project: Path) -> None:
    ctx, _source, _role, manifest = tricky_backup(project)
    forge(ctx, manifest, checks=None, roles=None)
    status, out = run(ctx, project, RestorePostgresRequest(target_database="older_backup"))
    assert status is Status.SUCCEEDED, out
    assert "schema fingerprint and content checksums not recorded" in out


def test_an_older_target_server_is_refused_naming_both_versions(project: Path) -> None:
    ctx, source, _role, manifest = tricky_backup(project)
    tool_versions = manifest.tool_versions | {"server": "99.1", "server_version_num": "990001"}
    forge(ctx, manifest, tool_versions=tool_versions)
    with psycopg.connect(source.conninfo()) as connection:
        row = connection.execute("SHOW server_version").fetchone()
    assert row is not None
    running = str(row[0]).split(" ")[0]
    with pytest.raises(
        OlderServer, match=f"runs PostgreSQL {running}, older than the backup's 99.1"
    ):
        build_plan(ctx, RestorePostgresRequest(target_database="too_new"), RestoreEnv(project))
    with psycopg.connect(source.conninfo("postgres")) as connection:
        exists = connection.execute("SELECT 1 FROM pg_database WHERE datname = 'too_new'")
        assert exists.fetchone() is None


def test_missing_roles_are_refused_listed_then_created_or_left_out(project: Path) -> None:
    ctx, source, role, manifest = tricky_backup(project)
    with psycopg.connect(source.conninfo(), autocommit=True) as connection:
        connection.execute(f'DROP OWNED BY "{role}"')  # the role goes; the backup still has it
        connection.execute(f'DROP ROLE "{role}"')
    (project / "tasks.py").write_text(
        (ROOT / "tasks.py")
        .read_text()
        .replace("ROOT = Path(__file__).resolve().parent", f"ROOT = Path({str(project)!r})")
    )
    command = [sys.executable, "-m", "invoke", "restore.postgres", "--target-database", "roles"]
    refused = subprocess.run(
        [*command, "--yes"], capture_output=True, text=True, cwd=project, check=False
    )
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert f"lacks 1 role(s) that the objects of backup {manifest.backup_id} reference: {role}" in (
        refused.stderr
    )
    assert "Traceback" not in refused.stderr
    with pytest.raises(MissingRoles):
        build_plan(ctx, RestorePostgresRequest(target_database="roles"), RestoreEnv(project))

    bare = RestorePostgresRequest(target_database="roles_bare", no_privileges=True)
    status, out = run(ctx, project, bare)
    assert status is Status.SUCCEEDED, out
    assert "(no privileges)" in out

    status, out = run(
        ctx, project, RestorePostgresRequest(target_database="roles", create_roles=True)
    )
    assert status is Status.SUCCEEDED, out
    assert f"create role(s) {role}" in out
    target = postgres_source(ctx, "trading-db", "roles")
    with psycopg.connect(target.conninfo()) as connection:
        created = connection.execute(
            "SELECT rolpassword IS NULL, rolcanlogin FROM pg_authid WHERE rolname = %s", (role,)
        ).fetchone()
        assert created == (True, False)
        assert connection.execute(
            f"SELECT has_table_privilege(%s, '{ITEMS}', 'INSERT')", (role,)
        ).fetchone() == (True,)


def test_verify_compares_the_test_restore_with_the_fingerprint(project: Path) -> None:
    ctx, _source, _role, _manifest = tricky_backup(project)
    out = io.StringIO()
    verification, report = run_verify(
        ctx, VerifyRequest(stores=["trading-db"]), RunOptions(yes=True), project, out
    )
    assert exit_code(verification, report) == 0, out.getvalue()
    [check] = [c for c in report.checks if c.check == "test-restore"]
    assert "schema objects, the content of 5 tables, the state of 3 sequences" in check.detail


def test_no_privileges_still_needs_the_roles_a_policy_or_a_user_mapping_names(
    project: Path,
) -> None:
    """``pg_restore --no-owner --no-privileges`` keeps a policy's ``TO`` roles and a user
    mapping's role: without them on the target the restore is refused before anything is
    touched, each role named with what needs it; ``--create-roles`` creates those (only)."""
    ctx = OpsContext.load("local", project_dir=project)
    source = postgres_source(ctx, "trading-db")
    role, reader, mapped = app_role(), app_role(), app_role()
    create_tricky_dataset(source.conninfo(), role)
    with psycopg.connect(source.conninfo(), autocommit=True) as connection:
        connection.execute(f'CREATE ROLE "{reader}" NOLOGIN')
        connection.execute(f'CREATE ROLE "{mapped}" NOLOGIN')
        connection.execute(
            f'CREATE POLICY "readers" ON {ITEMS} FOR SELECT TO "{reader}" USING (true)'
        )
        connection.execute(
            f'CREATE USER MAPPING FOR "{mapped}" SERVER "odd server"'
            " OPTIONS (user 'x', password 'not recorded either')"
        )
    manifest = backup_store(ctx, "trading-db", [])
    needed = pg_exact.needed_without_privileges(manifest.roles or [], manifest.checks)
    assert needed == {
        mapped: [f"user mapping for {mapped} server odd server"],
        reader: ["policy readers on odd schema.order items"],
    }
    assert "not recorded either" not in manifest.model_dump_json()
    with psycopg.connect(source.conninfo(), autocommit=True) as connection:
        for gone in (role, reader, mapped):  # the backup still has them, the cluster not
            connection.execute(f'DROP OWNED BY "{gone}"')
            connection.execute(f'DROP ROLE "{gone}"')
    (project / "tasks.py").write_text(
        (ROOT / "tasks.py")
        .read_text()
        .replace("ROOT = Path(__file__).resolve().parent", f"ROOT = Path({str(project)!r})")
    )
    command = [sys.executable, "-m", "invoke", "restore.postgres", "--target-database", "bare"]
    refused = subprocess.run(
        [*command, "--no-privileges", "--yes"],
        capture_output=True,
        text=True,
        cwd=project,
        check=False,
    )
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "Traceback" not in refused.stderr
    [line] = [line for line in refused.stderr.splitlines() if "lacks" in line]
    assert (
        f"lacks 2 role(s) that backup {manifest.backup_id} needs even with --no-privileges"
    ) in line
    assert f'"{reader}" (policy readers on odd schema.order items)' in line
    assert f'"{mapped}" (user mapping for {mapped} server odd server)' in line
    assert "--create-roles" in line and role not in line
    with psycopg.connect(source.conninfo("postgres")) as connection:
        exists = connection.execute("SELECT 1 FROM pg_database WHERE datname = 'bare'")
        assert exists.fetchone() is None  # refused before anything was touched

    request = RestorePostgresRequest(target_database="bare", no_privileges=True, create_roles=True)
    status, out = run(ctx, project, request)
    assert status is Status.SUCCEEDED, out
    assert f"create role(s) {', '.join(sorted([mapped, reader]))}" in out
    assert "(no privileges)" in out
    target = postgres_source(ctx, "trading-db", "bare")
    with psycopg.connect(target.conninfo()) as connection:
        found = connection.execute(
            "SELECT rolname FROM pg_roles WHERE rolname = ANY(%s) ORDER BY 1",
            ([role, reader, mapped],),
        ).fetchall()
        assert found == sorted([(mapped,), (reader,)])  # the grantee is not needed here
        policy = connection.execute(
            "SELECT polroles::regrole[]::text[] FROM pg_policy WHERE polname = 'readers'"
        ).fetchone()
        assert policy == ([f'"{reader}"'],)


def test_a_subscription_comes_back_disabled_without_its_connection_string_and_compares(
    project: Path,
) -> None:
    """``pg_dump`` restores every subscription disabled (``connect = false``): the fingerprint
    compares its publications, slot name and options, not whether it is enabled, and never
    records its connection string (a password may be in it)."""
    ctx = OpsContext.load("local", project_dir=project)
    source = postgres_source(ctx, "trading-db")
    target = postgres_source(ctx, "trading-db", "subscribed")
    subscription = "odd sub"
    with psycopg.connect(source.conninfo(), autocommit=True) as connection:
        connection.execute(
            f'CREATE SUBSCRIPTION "{subscription}" CONNECTION'
            " 'host=127.0.0.1 port=1 dbname=elsewhere password=not-in-the-manifest'"
            " PUBLICATION orders, fills WITH (connect = false, binary = true,"
            " slot_name = 'odd_slot', synchronous_commit = 'local')"
        )
        connection.execute(f"COMMENT ON SUBSCRIPTION \"{subscription}\" IS 'from elsewhere'")
        # Enabled: its worker retries a publisher that is not there, which changes nothing.
        connection.execute(f'ALTER SUBSCRIPTION "{subscription}" ENABLE')
    try:
        manifest = backup_store(ctx, "trading-db", [])
        assert f"subscription {subscription}" in manifest.checks["schema"]["objects"]
        assert "not-in-the-manifest" not in manifest.model_dump_json()
        status, out = run(ctx, project, RestorePostgresRequest(target_database="subscribed"))
        assert status is Status.SUCCEEDED, out
        with psycopg.connect(target.conninfo(), autocommit=True) as connection:
            restored = connection.execute(
                "SELECT subenabled, subslotname, subpublications, subbinary, subsynccommit"
                " FROM pg_subscription WHERE subname = %s"
                " AND subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())",
                (subscription,),
            ).fetchone()
            assert restored == (False, "odd_slot", ["orders", "fills"], True, "local")
            # Enabled or not is the operator's call, not a difference; its publications are.
            connection.execute(
                f'ALTER SUBSCRIPTION "{subscription}" SET PUBLICATION orders WITH (refresh = false)'
            )
            assert compare_restored(manifest, target)[0] == (
                f"subscription {subscription}: its definition differs from the backup's"
            )
        # invoke verify's test restore drops its scratch database: its subscription first,
        # detached from the source's slot.
        out_text = io.StringIO()
        verification, report = run_verify(
            ctx, VerifyRequest(stores=["trading-db"]), RunOptions(yes=True), project, out_text
        )
        assert exit_code(verification, report) == 0, out_text.getvalue()
        with psycopg.connect(source.conninfo("postgres")) as connection:
            assert connection.execute(
                "SELECT count(*) FROM pg_subscription WHERE subname = %s", (subscription,)
            ).fetchone() == (2,)  # the source's and the restored one; the scratch's is gone
    finally:  # a database with a subscription cannot be dropped: leave none behind
        for where in (source, target):
            with psycopg.connect(where.conninfo(), autocommit=True) as connection:
                if connection.execute(
                    "SELECT 1 FROM pg_subscription WHERE subname = %s AND subdbid ="
                    " (SELECT oid FROM pg_database WHERE datname = current_database())",
                    (subscription,),
                ).fetchone():
                    connection.execute(f'ALTER SUBSCRIPTION "{subscription}" DISABLE')
                    connection.execute(
                        f'ALTER SUBSCRIPTION "{subscription}" SET (slot_name = NONE)'
                    )
                    connection.execute(f'DROP SUBSCRIPTION "{subscription}"')
