"""A manifest is bound to its backup, and verify checks every backup that could be restored.

Fifteen backups of one store; the default verify checks the newest and a rotating sample (each
backup once a week, coverage reported); then five are tampered with, five different ways, as a
forger with write access to the vault would (plain PUTs, a copy): ``verify --all`` names exactly
those five, and a restore of a forged manifest is refused before anything is written.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import psycopg
import pytest

from drkit.backup.manifest import MANIFEST_NAME, Manifest
from drkit.context import OpsContext
from drkit.endpoints import postgres_source
from drkit.ops.restore_postgres import RestorePostgresRequest, build_plan
from drkit.ops.run import RunOptions
from drkit.ops.verbs import RestoreEnv
from drkit.ops.verify import Check, VerifyRequest, run_verify
from drkit.recovery import RecoveryError
from drkit.storage.s3 import S3Store
from tests.integration.forgery import overwrite
from tests.integration.ops_helpers import context, database_backup

pytestmark = pytest.mark.integration


def integrity(ctx: OpsContext, project: Path, everything: bool = False) -> Check:
    request = VerifyRequest(stores=["trading-db"], test_restore=False, all_backups=everything)
    _run, report = run_verify(ctx, request, RunOptions(yes=True), project, io.StringIO())
    return next(c for c in report.checks if c.check == "integrity")


def forge(ctx: OpsContext, manifest: Manifest, **changes: Any) -> None:
    body = manifest.model_dump(mode="json") | changes
    overwrite(ctx.vault(), manifest.prefix + MANIFEST_NAME, json.dumps(body).encode())


def database_exists(ctx: OpsContext, name: str) -> bool:
    server = postgres_source(ctx, "trading-db")
    with psycopg.connect(server.conninfo("postgres")) as connection:
        row = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
        return row.fetchone() is not None


def test_verify_all_finds_five_tampered_of_fifteen_and_forged_manifests_are_refused(
    project: Path,
) -> None:
    ctx = context(project)
    backups = [database_backup(ctx)] + [database_backup(ctx, seed=False) for _ in range(14)]

    # The default verify: the newest plus ceil(15 / 7) = 3 never-checked ones per run.
    first = integrity(ctx, project)
    assert first.status == "ok", first.detail
    assert first.figures["in_window"] == 15 and first.figures["checked"] == 4
    second = integrity(ctx, project)
    assert second.figures["checked"] == 4  # the newest again, and the next three in rotation
    assert second.figures["checked_within_week"] == 7
    assert second.figures["never_checked"] == 8
    assert "7/15 (46.7%) checked within the last week, 8 never" in second.detail

    vault = ctx.vault()
    assert isinstance(vault, S3Store)
    dump = [next(i for i in m.objects if i.name == "database.dump") for m in backups]
    overwrite(vault, dump[1].key, b"\0" * dump[1].size)  # same size, other bytes
    forge(ctx, backups[3], objects=[i.model_dump() for i in backups[2].objects])
    forge(ctx, backups[5], backup_id=backups[4].backup_id)
    vault.client.copy_object(  # another backup's dump (and its tags) copied in
        Bucket=vault.bucket,
        Key=dump[7].key,
        CopySource={"Bucket": vault.bucket, "Key": dump[6].key},
    )
    forge(ctx, backups[9], counts={table: n + 1 for table, n in backups[9].counts.items()})
    tampered = {backups[n].backup_id for n in (1, 3, 5, 7, 9)}

    found = integrity(ctx, project, everything=True)
    assert found.status == "miss"
    assert found.figures["checked"] == 10 and found.figures["failed"] == 5
    for backup_id in tampered:
        assert backup_id in found.detail
    assert "fingerprint" in found.detail  # the replaced dump
    assert "outside its own backup's prefix" in found.detail  # pointing at another's objects
    assert "but its path says" in found.detail  # backup_id differing from its path
    assert f"belongs to backup {backups[6].backup_id}" in found.detail  # the copied object
    assert "disagrees with its catalog entry (counts" in found.detail

    # A restore of a forged manifest is refused before anything is written.
    for forged, reason in ((3, "outside its own backup's prefix"), (5, "but its path says")):
        request = RestorePostgresRequest(
            backup=backups[forged].backup_id, target_database="forged_target"
        )
        with pytest.raises(RecoveryError, match=reason):
            build_plan(ctx, request, RestoreEnv(project))
    copied = RestorePostgresRequest(backup=backups[7].backup_id, target_database="forged_target")
    with pytest.raises(RecoveryError, match=f"belongs to backup {backups[6].backup_id}"):
        build_plan(ctx, copied, RestoreEnv(project))
    assert not database_exists(ctx, "forged_target")
