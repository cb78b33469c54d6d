"""The diff between the broker's topic settings and the config's topic classes; when a topic
configuration snapshot is due (first, changed, daily) and what differs between two."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from drkit.backup.kafka import TopicConfig
from drkit.kafka_topics import (
    CHANGED,
    DAILY,
    FIRST,
    Change,
    diff,
    snapshot_diff,
    snapshot_reason,
    snapshot_time,
    wanted_settings,
)
from stackmodels import StackConfig
from stackmodels.config import Msk

ROOT = Path(__file__).resolve().parents[2]
DAY_MS = 86_400_000


def msk() -> Msk:
    return Msk(
        store="event-stream", topics={"orders": "critical", "ticks": "standard", "old": "archive"}
    )


def fitting(days: int) -> dict[str, str | None]:
    return {"retention.ms": str(days * DAY_MS), "cleanup.policy": "delete"}


def test_each_class_asks_for_its_retention_and_time_based_cleanup() -> None:
    classes = msk().topic_classes
    assert wanted_settings(classes["critical"]) == {
        "retention.ms": str(7 * DAY_MS),
        "cleanup.policy": "delete",
    }
    assert wanted_settings(classes["archive"]) == {
        "retention.ms": str(30 * DAY_MS),
        "cleanup.policy": "delete",
        "remote.storage.enable": "true",
        "local.retention.ms": str(DAY_MS),
    }


def test_only_differing_keys_of_known_topics_are_changes() -> None:
    current = {
        "orders": {"retention.ms": str(DAY_MS), "cleanup.policy": "compact"},
        "ticks": fitting(3),
        "stray": {"retention.ms": "1", "cleanup.policy": "compact"},
    }
    found = diff(current, msk())
    assert found.changes == [
        Change("orders", "cleanup.policy", "compact", "delete"),
        Change("orders", "retention.ms", str(DAY_MS), str(7 * DAY_MS)),
    ]
    assert found.unknown == ["stray"]
    assert found.missing == ["old"]
    text = found.describe()
    assert f"  orders retention.ms: {DAY_MS} -> {7 * DAY_MS}\n" in text
    assert "left as they are: stray" in text
    assert "not on the broker: old" in text


def test_a_config_the_broker_lacks_is_a_change_from_unset() -> None:
    current = {"old": {**fitting(30), "remote.storage.enable": None, "local.retention.ms": None}}
    found = diff(current, msk())
    assert [(c.key, c.current) for c in found.changes] == [
        ("local.retention.ms", None),
        ("remote.storage.enable", None),
    ]
    assert "remote.storage.enable: (unset) -> true" in found.describe()


def test_matching_topics_leave_nothing_to_do() -> None:
    found = diff({"orders": fitting(7), "ticks": fitting(3)}, msk())
    assert found.changes == []
    assert found.describe().startswith("nothing to change")


def test_the_shipped_prod_topics_each_have_a_class() -> None:
    config = StackConfig.for_stack("prod", ROOT)
    assert config.msk is not None
    current = {topic: fitting(0) for topic in config.msk.topics}
    found = diff(current, config.msk)
    assert {c.topic for c in found.changes} == set(config.msk.topics)
    assert found.unknown == [] and found.missing == []


NOW = datetime(2026, 12, 3, 13, 30, tzinfo=UTC)


def key(moment: datetime, digest: str) -> str:
    return f"trading-signals/event-stream/topic-configs/{moment:%Y%m%dT%H%M%S%fZ}-{digest}.json"


def test_a_snapshot_is_due_first_on_change_and_once_a_day() -> None:
    earlier_today, yesterday = NOW - timedelta(hours=13), NOW - timedelta(days=1)
    assert snapshot_time(key(earlier_today, "ab")) == earlier_today
    assert snapshot_reason([], "ab", NOW) == FIRST
    assert snapshot_reason([key(earlier_today, "ab")], "cd", NOW) == CHANGED
    assert snapshot_reason([key(earlier_today, "ab")], "ab", NOW) is None
    assert snapshot_reason([key(yesterday, "ab")], "ab", NOW) == DAILY
    # The newest decides, not an older one with the same digest.
    assert snapshot_reason([key(yesterday, "cd"), key(earlier_today, "ab")], "cd", NOW) == CHANGED


def test_the_diff_between_two_snapshots_names_each_changed_setting() -> None:
    old = {
        "orders": TopicConfig(partitions=3, replication_factor=3, configs={"retention.ms": "1"}),
        "gone": TopicConfig(partitions=1, replication_factor=1, configs={}),
    }
    new = {
        "orders": TopicConfig(
            partitions=6, replication_factor=3, configs={"cleanup.policy": "compact"}
        ),
        "ticks": TopicConfig(partitions=2, replication_factor=1, configs={"retention.ms": "5"}),
    }
    assert snapshot_diff(old, new) == [
        "gone: removed (was 1 partitions, replication 1)",
        "orders partitions: 3 -> 6",
        "orders cleanup.policy: (default) -> compact",
        "orders retention.ms: 1 -> (default)",
        "ticks: added (2 partitions, replication 1, retention.ms=5)",
    ]
    assert snapshot_diff(new, new) == []
