"""The diff between the broker's topic settings and the config's topic classes."""

from __future__ import annotations

from pathlib import Path

from drkit.kafka_topics import Change, diff, wanted_settings
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
