"""``invoke failover --stack local --to dr --planned`` on the real two-region local stack.

One stack for the module (``local.up``, both regions up). In file order: a standby lagging above
its RPO, and one that is down, are refused before anything changes; then writers keep writing to
every store through the stable names while the planned switchover runs, and every write that was
acknowledged (before the fence refused them, and after the names led to dr) is in dr.
"""

from __future__ import annotations

import io
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis
from confluent_kafka import Consumer, Producer, TopicPartition

from drkit.failover.operation import PreflightBlocked
from drkit.local.daemon import down, up
from drkit.local.lag import postgres_lag
from drkit.local.names import resolve
from tests.integration.test_failover_local import STORES, by_name, failover, url
from tests.integration.test_local_regions import eventually, scratch_project

pytestmark = pytest.mark.integration

TOPIC = "order-events"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, Any]]]:
    project = scratch_project(tmp_path_factory.mktemp("failover-planned"))
    state = up(project, regions=2, only=STORES, out=io.StringIO())
    try:
        yield project, state
    finally:
        down(project, out=io.StringIO())


def test_a_planned_switchover_is_refused_while_a_standby_lags_above_its_rpo_or_is_down(
    stack: tuple[Path, dict[str, Any]],
) -> None:
    project, state = stack
    config = project / "local-stack.yaml"
    original = config.read_text()
    prod_db, dr_db = url(state, "prod", "trading-db"), url(state, "dr", "trading-db")
    # trading-db's RPO made 1 s for this test; its standby stops replaying while prod writes.
    config.write_text(original + "  trading-dr:data_classes:\n    user-data:\n      rpo: 1s\n")
    with psycopg.connect(dr_db, autocommit=True) as standby:
        standby.execute("SELECT pg_wal_replay_pause()")
    try:
        with psycopg.connect(prod_db, autocommit=True) as prod:
            prod.execute("CREATE TABLE lagging (n int)")
            prod.execute("INSERT INTO lagging VALUES (1)")

        def lagging() -> float | None:
            seconds = postgres_lag(prod_db, dr_db).seconds
            return seconds if seconds is not None and seconds > 1.5 else None

        eventually(lagging, "trading-db's standby lagging above 1 s")
        with pytest.raises(PreflightBlocked) as refused:
            failover(project, planned=True)
        message = str(refused.value)
        assert "\n" not in message
        assert "trading-db: lag: " in message and "above its RPO 1s" in message
    finally:
        config.write_text(original)
        with psycopg.connect(dr_db, autocommit=True) as standby:
            standby.execute("SELECT pg_wal_replay_resume()")
    # Nothing changed: prod still takes writes, and the name still leads to it.
    with psycopg.connect(prod_db, autocommit=True) as prod:
        prod.execute("INSERT INTO lagging VALUES (2)")
    assert resolve(project, "trading-db").region == "prod"

    # dr's Redis stopped (SIGSTOP): a standby that does not answer is refused as well.
    [replica] = [p for p in state["processes"] if p["name"] == "redis" and p["region"] == "dr"]
    os.kill(replica["pid"], signal.SIGSTOP)
    try:
        with pytest.raises(PreflightBlocked, match="session-cache: dr replica"):
            failover(project, planned=True)
    finally:
        os.kill(replica["pid"], signal.SIGCONT)


class Writer(threading.Thread):
    """Writes 1, 2, 3... through a store's stable name; keeps the numbers acknowledged."""

    def __init__(self, write: Callable[[int], None]) -> None:
        super().__init__(daemon=True)
        self.write = write
        self.acknowledged: list[int] = []
        self.refused = 0
        self.done = threading.Event()

    def run(self) -> None:
        n = 0
        while not self.done.is_set():
            n += 1
            try:
                self.write(n)
            except Exception:
                self.refused += 1
                time.sleep(0.05)
                continue
            self.acknowledged.append(n)
            time.sleep(0.01)


def test_a_planned_switchover_loses_no_acknowledged_write(
    stack: tuple[Path, dict[str, Any]],
) -> None:
    project, state = stack

    with psycopg.connect(by_name(state, project, "trading-db"), autocommit=True) as db:
        db.execute("CREATE TABLE planned (n int PRIMARY KEY)")

    def to_postgres(n: int) -> None:
        with psycopg.connect(by_name(state, project, "trading-db"), connect_timeout=2) as db:
            db.execute("INSERT INTO planned VALUES (%s)", (n,))

    def to_redis(n: int) -> None:
        with redis.Redis.from_url(by_name(state, project, "session-cache"), socket_timeout=2) as r:
            r.set(f"planned:{n}", n)

    def to_kafka(n: int) -> None:
        producer = Producer(
            {
                "bootstrap.servers": by_name(state, project, "event-stream"),
                "acks": "all",
                "message.timeout.ms": 3000,
                "log_level": 2,
            }
        )
        failed: list[Any] = []
        producer.produce(
            TOPIC,
            key=f"planned-{n}".encode(),
            value=b"x",
            on_delivery=lambda error, _: failed.append(error) if error else None,
        )
        if producer.flush(5) or failed:
            raise RuntimeError(f"not acknowledged: {failed}")

    writers = {
        "trading-db": Writer(to_postgres),
        "session-cache": Writer(to_redis),
        "event-stream": Writer(to_kafka),
    }
    for writer in writers.values():
        writer.start()
    eventually(
        lambda: all(len(w.acknowledged) >= 5 for w in writers.values()) or None,
        "every writer acknowledged in prod",
    )
    outcome, printed = failover(project, planned=True)
    assert outcome.exit_code == 0, printed
    steps = {s.id: s.outcome for s in outcome.report.steps}
    assert steps["replayed"] == "done" and steps["postcheck"] == "done"
    assert all(resolve(project, store).region == "dr" for store in writers)
    switched = {store: len(w.acknowledged) for store, w in writers.items()}
    eventually(
        lambda: all(len(w.acknowledged) > switched[s] for s, w in writers.items()) or None,
        "every writer acknowledged again, in dr",
    )
    for writer in writers.values():
        writer.done.set()
        writer.join(timeout=30)

    pg, cache, events = (writers[s].acknowledged for s in writers)
    with psycopg.connect(url(state, "dr", "trading-db")) as dr:
        found = {row[0] for row in dr.execute("SELECT n FROM planned")}
    assert set(pg) <= found, sorted(set(pg) - found)[:10]
    with redis.Redis.from_url(url(state, "dr", "session-cache")) as dr_cache:
        missing = [n for n in cache if dr_cache.get(f"planned:{n}") is None]
    assert missing == []
    keys = consumed_keys(url(state, "dr", "event-stream"))
    lost = sorted(n for n in events if f"planned-{n}" not in keys)
    assert lost == [], lost[:10]
    print(
        f"acknowledged writes all in dr: trading-db {len(pg)}, session-cache {len(cache)}, "
        f"event-stream {len(events)}; refused during the switch: "
        + ", ".join(f"{s} {w.refused}" for s, w in writers.items())
        + f"; switchover {outcome.report.seconds:.1f}s"
    )


def consumed_keys(bootstrap: str) -> set[str]:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "planned-check",
            "enable.auto.commit": False,
            "log_level": 3,
        }
    )
    keys: set[str] = set()
    try:
        metadata = consumer.list_topics(TOPIC, timeout=10)
        for partition in metadata.topics[TOPIC].partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(TOPIC, partition), timeout=10)
            consumer.assign([TopicPartition(TOPIC, partition, low)])
            position = low
            deadline = time.monotonic() + 30
            while position < high and time.monotonic() < deadline:
                message = consumer.poll(0.5)
                if message is None or message.error() is not None:
                    continue
                position = (message.offset() or 0) + 1
                if message.key():
                    keys.add(message.key().decode())
    finally:
        consumer.close()
    return keys
