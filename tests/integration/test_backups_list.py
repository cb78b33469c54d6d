"""``invoke backups.list`` and ``invoke backups.info ID``: what exists per store, from the catalog
(never one request per manifest), and one backup in full."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from drkit.local.redis import LocalRedis
from drkit.ops.backups_info import InfoRequest, ListRequest, backup_info, list_backups
from drkit.recovery import RecoveryError
from drkit.storage.s3 import S3Store
from tests.integration.ops_helpers import (
    ROOT,
    attach_cache,
    cache_backup,
    cache_server,
    context,
    database_backup,
    fill_cache,
)

pytestmark = pytest.mark.integration
__all__ = ["cache_server"]


def test_list_reads_the_catalog_only_and_shows_each_store(
    project: Path, cache_server: LocalRedis, monkeypatch: pytest.MonkeyPatch
) -> None:
    attach_cache(project, cache_server)
    ctx = context(project)
    with cache_server.client() as client:
        fill_cache(client, "x")
    cache = cache_backup(ctx)
    first = database_backup(ctx)
    second = database_backup(ctx, seed=False)
    read: list[str] = []
    real = S3Store.get_bytes

    def counting(self: S3Store, key: str) -> bytes:
        read.append(key)
        return real(self, key)

    monkeypatch.setattr(S3Store, "get_bytes", counting)
    listing = list_backups(ctx, ListRequest(detail=True))

    assert read and all(key.startswith("catalog/") for key in read)  # no manifest read
    # One GET per store and day with backups (its newest checkpoint), never one per backup;
    # per store a LIST of its catalog and one of its verification records.
    assert len(read) == 2
    assert listing.catalog_reads == len(read) + 5 * 2
    by_store = {s.store: s for s in listing.stores}
    db = by_store["trading-db"]
    assert db.backups == 2 and db.size == first.size + second.size
    assert db.newest is not None and db.newest["backup_id"] == second.backup_id
    assert [e["backup_id"] for e in db.entries] == [second.backup_id, first.backup_id]
    assert by_store["session-cache"].newest["backup_id"] == cache.backup_id  # type: ignore[index]
    assert by_store["app-state"].backups == 0
    assert listing.common_point is None  # not every store has a backup: no common point
    text = listing.to_text()
    assert second.backup_id in text and "not verified" in text and "none" in text

    pair = list_backups(ctx, ListRequest(stores=["trading-db", "session-cache"]))
    assert pair.common_point == cache.recovery_point.isoformat()
    assert pair.skew_seconds is not None and pair.skew_seconds > 0  # db's first came later
    with pytest.raises(ValueError, match="unknown store 'orders-db'"):
        list_backups(ctx, ListRequest(stores=["orders-db"]))


def test_info_shows_one_backup_in_full(project: Path) -> None:
    ctx = context(project)
    manifest = database_backup(ctx)
    info = backup_info(ctx, InfoRequest(backup_id=manifest.backup_id))
    assert info.manifest == manifest
    text = info.to_text()
    assert f"backup {manifest.backup_id} of trading-db (postgres" in text
    dump = next(i for i in manifest.objects if i.name == "database.dump")
    assert dump.sha256 in text and "verified      not yet" in text
    assert json.loads(info.to_json())["manifest"]["backup_id"] == manifest.backup_id
    with pytest.raises(RecoveryError, match="'20200101T000000Z-abcdef' is in no catalog"):
        backup_info(ctx, InfoRequest(backup_id="20200101T000000Z-abcdef"))
    with pytest.raises(RecoveryError, match="is malformed"):
        backup_info(ctx, InfoRequest(backup_id="yesterday"))


def test_the_invoke_tasks(project: Path) -> None:
    manifest = database_backup(context(project))
    (project / "tasks.py").write_text(
        (ROOT / "tasks.py")
        .read_text()
        .replace("ROOT = Path(__file__).resolve().parent", f"ROOT = Path({str(project)!r})")
    )
    invoke = [sys.executable, "-m", "invoke"]
    listed = subprocess.run(
        [*invoke, "backups.list", "--stores", "trading-db", "--format", "json"],
        capture_output=True,
        text=True,
        cwd=project,
        check=False,
    )
    assert listed.returncode == 0, listed.stderr
    body = json.loads(listed.stdout)
    assert body["stores"][0]["newest"]["backup_id"] == manifest.backup_id
    info = subprocess.run(
        [*invoke, "backups.info", manifest.backup_id],
        capture_output=True,
        text=True,
        cwd=project,
        check=False,
    )
    assert info.returncode == 0 and f"backup {manifest.backup_id}" in info.stdout
    missing = subprocess.run(
        [*invoke, "backups.info", "20200101T000000Z-abcdef"],
        capture_output=True,
        text=True,
        cwd=project,
        check=False,
    )
    assert missing.returncode == 2 and "is in no catalog" in missing.stderr
