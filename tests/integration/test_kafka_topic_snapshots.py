"""Topic-configuration snapshots of a Kafka store, on the session's broker, the vault (moto) and
the mirror (the GCS emulator, its bucket under a retention policy): the backup stores one in both
when the configuration changed and once a day otherwise, ``invoke kafka.topics --snapshot`` takes
one now by the same rule, and ``invoke backups.info`` (from the vault or the mirror) shows the
newest two as of a backup and what changed between them."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ResourceType,
)
from invoke.context import Context

import tasks
from drkit.kafka_topics import Change, settle, snapshot_prefix, take_snapshots
from drkit.storage.objectstore import ObjectExists
from tests.integration.ops_helpers import (
    context,
    create_topics,
    produce,
    stream_backup,
    unique_topics,
)

pytestmark = pytest.mark.integration
STREAM, DATA_CLASS = "event-stream", "trading-signals"
HOUR_MS = 3_600_000


def test_snapshots_daily_on_change_and_now_with_the_diff_in_backups_info(
    project_with_kafka: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    project = project_with_kafka
    topics = unique_topics(project)
    ctx = context(project)
    exported = ctx.outputs.stores[STREAM]
    bootstrap = f"{exported.host}:{exported.port}"
    create_topics(bootstrap, topics)
    produce(bootstrap, topics[0], 0, 5)
    vault, mirror = ctx.vault(), ctx.mirror()
    assert mirror is not None
    prefix = snapshot_prefix(DATA_CLASS, STREAM)

    def stored() -> list[str]:
        keys = sorted(info.key for info in vault.list_objects(prefix))
        # The mirror holds the same snapshots under the same keys, byte for byte.
        assert sorted(info.key for info in mirror.list_objects(prefix)) == keys
        assert all(mirror.get_bytes(key) == vault.get_bytes(key) for key in keys)
        return keys

    # Yesterday's snapshot (the first), then today's first backup stores the daily one.
    out = io.StringIO()
    assert take_snapshots(ctx, out, now=datetime.now(UTC) - timedelta(days=1)) == 0
    (yesterday,) = stored()
    assert f"{STREAM}: stored {yesterday} (first) in {vault.name}" in out.getvalue()
    assert f"{STREAM}: stored {yesterday} (first) in {mirror.name}" in out.getvalue()
    # Create-only in the mirror as in the vault: a second write of a key is refused, naming it.
    with pytest.raises(ObjectExists, match=yesterday):
        mirror.put_bytes(yesterday, b"{}")
    stream_backup(ctx)
    daily = stored()
    assert len(daily) == 2 and daily[0] == yesterday
    assert vault.get_bytes(daily[1]) == vault.get_bytes(yesterday)  # same configuration
    stream_backup(ctx)
    assert stored() == daily  # unchanged, and one is stored today already

    monkeypatch.setattr(tasks, "ROOT", project)
    capsys.readouterr()
    tasks.kafka_topics(Context(), snapshot=True)
    assert "topic configuration unchanged since" in capsys.readouterr().out
    assert stored() == daily

    # A retention change: `kafka.topics --snapshot` stores it at once.
    admin = AdminClient({"bootstrap.servers": bootstrap})
    entry = ConfigEntry("retention.ms", str(HOUR_MS), incremental_operation=AlterConfigOpType.SET)
    resource = ConfigResource(ResourceType.TOPIC, topics[1], incremental_configs=[entry])
    for future in admin.incremental_alter_configs([resource]).values():
        future.result(timeout=30)
    settle(admin, [Change(topics[1], "retention.ms", None, str(HOUR_MS))])
    tasks.kafka_topics(Context(), snapshot=True)
    changed = stored()
    assert len(changed) == 3 and changed[:2] == daily
    printed = capsys.readouterr().out
    assert f"{STREAM}: stored {changed[2]} (changed) in {vault.name}" in printed
    assert f"{STREAM}: stored {changed[2]} (changed) in {mirror.name}" in printed

    manifest = stream_backup(ctx)  # same configuration as the one just stored: none more
    assert stored() == changed
    tasks.backups_info(Context(), manifest.backup_id, store=STREAM)
    printed = capsys.readouterr().out
    assert "topic configuration snapshots (newest two as of this backup):" in printed
    assert printed.index(changed[1]) < printed.index(changed[2])
    assert f"{topics[1]} retention.ms: (default) -> {HOUR_MS}" in printed
    for source in ("vault", "mirror"):  # a region-loss restore reads the mirror alone
        tasks.backups_info(
            Context(), manifest.backup_id, store=STREAM, source=source, format="json"
        )
        body = json.loads(capsys.readouterr().out)
        assert body["topic_configs"] == {
            "snapshots": changed[1:],
            "diff": [f"{topics[1]} retention.ms: (default) -> {HOUR_MS}"],
        }, source

    # Each kafka.topics run journaled itself in the audit bucket: started, then succeeded.
    tasks.audit_list(Context(), operation="kafka.topics", json=True)
    events = json.loads(capsys.readouterr().out)
    by_run: dict[str, list[str]] = {}
    for event in events:
        assert event["stack"] == "local" and event["arguments"]["snapshot"] is True
        by_run.setdefault(event["run_id"], []).append(f"{event['event']}:{event['outcome']}")
    assert len(by_run) == 2
    assert all(
        run[0] == "started:started" and run[-1] == "finished:succeeded" for run in by_run.values()
    )
