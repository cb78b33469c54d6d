"""Checks of a restored store against what the writers wrote: every row, record and key.

A write belongs in a backup when the backup's consistent point covers it: a Postgres
transaction visible in the exported snapshot, a Kafka offset below the backed-up end offset, a
Redis write numbered at or below the ``drill:seq`` the RDB holds. Everything else is the data the
disaster took: the newest write lost against the newest write restored is the achieved RPO.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg
import redis
from confluent_kafka import Consumer, TopicPartition

from drkit.drill.writers import RedisSessionWriter, Write, order_fields, session_value, signal_value


@dataclass
class Verification:
    expected: int = 0
    restored: int = 0
    missing: int = 0
    unexpected: int = 0
    mismatched: int = 0
    lost_writes: int = 0
    newest_restored: datetime | None = None
    newest_lost: datetime | None = None
    baseline_identical: bool = True
    examples: list[str] = field(default_factory=list)
    lost: list[int] = field(default_factory=list)
    """Ledger numbers of the writes the disaster took (made before it, not in the backup)."""

    @property
    def ok(self) -> bool:
        return self.baseline_identical and not (self.missing or self.unexpected or self.mismatched)

    @property
    def rpo_seconds(self) -> float:
        """Newest write lost minus newest write restored (0 when nothing was lost)."""
        if self.newest_lost is None:
            return 0.0
        if self.newest_restored is None:
            return float("inf")
        return max(0.0, (self.newest_lost - self.newest_restored).total_seconds())

    def example(self, text: str) -> None:
        if len(self.examples) < 5:
            self.examples.append(text)


def split_by(
    ledger: list[Write], covered: set[int], disaster_at: datetime
) -> tuple[list[Write], list[Write]]:
    """(writes the backup covers, writes before the disaster that it does not)."""
    kept = [w for w in ledger if w.n in covered]
    lost = [w for w in ledger if w.n not in covered and w.at <= disaster_at]
    return kept, lost


def _close(result: Verification, kept: list[Write], lost: list[Write]) -> Verification:
    result.lost_writes = len(lost)
    result.lost = [w.n for w in lost]
    result.newest_restored = max((w.at for w in kept), default=None)
    result.newest_lost = max((w.at for w in lost), default=None)
    return result


# ---- PostgreSQL -----------------------------------------------------------------------------


def visible_in_snapshot(conninfo: str, txids: list[str], snapshot: str) -> set[str]:
    with psycopg.connect(conninfo) as connection:
        rows = connection.execute(
            "SELECT t FROM unnest(%s::text[]) AS t"
            " WHERE txid_visible_in_snapshot(t::bigint, %s::txid_snapshot)",
            (txids, snapshot),
        ).fetchall()
    return {str(row[0]) for row in rows}


def verify_postgres(
    conninfo: str,
    ledger: list[Write],
    snapshot: str,
    disaster_at: datetime,
    baseline: dict[str, str],
    digests: dict[str, str],
) -> Verification:
    """``baseline``: digests of the seeded tables before the drill; ``digests``: the same tables
    in the restored database (seeded orders are those with ids below the writer's first)."""
    txids = [str(w.detail["txid"]) for w in ledger if w.detail.get("txid") is not None]
    visible = visible_in_snapshot(conninfo, txids, snapshot) if txids else set()
    covered = {w.n for w in ledger if w.detail.get("txid") is None or w.detail["txid"] in visible}
    kept, lost = split_by(ledger, covered, disaster_at)
    result = Verification(expected=len(kept), baseline_identical=baseline == digests)
    if not result.baseline_identical:
        differing = [t for t in baseline if baseline[t] != digests.get(t)]
        result.example(f"seeded tables differ: {differing}")
    by_id = {int(w.detail["id"]): w for w in kept}
    lost_ids = {int(w.detail["id"]) for w in lost}
    first_id = min((int(w.detail["id"]) for w in ledger), default=None)
    rows: list[tuple[Any, ...]] = []
    if first_id is not None:
        with psycopg.connect(conninfo) as connection:
            rows = connection.execute(
                "SELECT id, symbol, side, qty, status FROM orders WHERE id >= %s", (first_id,)
            ).fetchall()
    seen = set()
    for order_id, symbol, side, qty, status in rows:
        write = by_id.get(int(order_id))
        if write is None:
            result.unexpected += 1
            where = "lost after the recovery point" if order_id in lost_ids else "unknown"
            result.example(f"order {order_id} restored but {where}")
            continue
        seen.add(int(order_id))
        if (symbol, side, int(qty), status) != order_fields(write.n):
            result.mismatched += 1
            result.example(f"order {order_id} differs: {(symbol, side, qty, status)}")
    result.restored = len(seen)
    result.missing = len(by_id.keys() - seen)
    if result.missing:
        result.example(f"{result.missing} orders missing, e.g. {sorted(by_id.keys() - seen)[:3]}")
    return _close(result, kept, lost)


# ---- Kafka ----------------------------------------------------------------------------------


def read_topics(bootstrap: str, topics: list[str]) -> dict[int, dict[str, Any]]:
    """Every record of ``topics``, by its ``drill-seq`` header."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "drkit-drill-verify",
            "enable.auto.commit": False,
            "log_level": 3,
            "isolation.level": "read_committed",
        }
    )
    found: dict[int, dict[str, Any]] = {}
    try:
        metadata = consumer.list_topics(timeout=10)
        for topic in topics:
            if topic not in metadata.topics:
                continue
            for partition in metadata.topics[topic].partitions:
                low, high = consumer.get_watermark_offsets(
                    TopicPartition(topic, partition), timeout=10
                )
                if high <= low:
                    continue
                consumer.assign([TopicPartition(topic, partition, low)])
                position = low
                while position < high:
                    message = consumer.poll(5)
                    if message is None:
                        break
                    if message.error():
                        continue
                    position = (message.offset() or 0) + 1
                    raw_headers = message.headers() or []
                    headers: list[tuple[str, Any]] = (
                        list(raw_headers.items())
                        if isinstance(raw_headers, dict)
                        else list(raw_headers)
                    )
                    seq = next((int(v) for k, v in headers if k == "drill-seq" and v), None)
                    if seq is None:
                        continue
                    found[seq] = {
                        "topic": topic,
                        "partition": partition,
                        "offset": message.offset(),
                        "key": message.key(),
                        "value": message.value(),
                        "headers": headers,
                        "timestamp_ms": message.timestamp()[1],
                    }
    finally:
        consumer.close()
    return found


def verify_kafka(
    bootstrap: str,
    ledger: list[Write],
    end_offsets: dict[str, dict[str, int]],
    disaster_at: datetime,
) -> tuple[Verification, dict[int, dict[str, Any]]]:
    covered = {
        w.n
        for w in ledger
        if w.detail["offset"]
        < end_offsets.get(w.detail["topic"], {}).get(str(w.detail["partition"]), 0)
    }
    kept, lost = split_by(ledger, covered, disaster_at)
    found = read_topics(bootstrap, sorted(end_offsets))
    result = Verification(expected=len(kept))
    for write in kept:
        record = found.get(write.n)
        if record is None:
            result.missing += 1
            result.example(f"record {write.n} ({write.detail['topic']}) missing")
            continue
        result.restored += 1
        names = [k for k, _ in record["headers"]]
        wanted = (
            write.detail["topic"],
            write.detail["partition"],
            write.detail["key"].encode(),
            signal_value(write.n),
            write.detail["timestamp_ms"],
        )
        got = (
            record["topic"],
            record["partition"],
            record["key"],
            record["value"],
            record["timestamp_ms"],
        )
        if got != wanted or names != ["drill-seq", "source"]:  # exact: no header added
            result.mismatched += 1
            result.example(f"record {write.n} differs: {got} != {wanted}")
    result.unexpected = len(found.keys() - {w.n for w in kept})
    return _close(result, kept, lost), found


# ---- Redis ----------------------------------------------------------------------------------


def verify_redis(
    client: redis.Redis[bytes], ledger: list[Write], disaster_at: datetime
) -> Verification:
    raw = client.get(RedisSessionWriter.SEQUENCE_KEY)
    sequence = int(raw) if raw is not None else 0
    covered = {w.n for w in ledger if w.n <= sequence}
    kept, lost = split_by(ledger, covered, disaster_at)
    result = Verification(expected=len(kept))
    with client.pipeline(transaction=False) as pipe:
        for write in kept:
            pipe.get(f"session:{write.n}")
        values = pipe.execute() if kept else []
    for write, value in zip(kept, values, strict=True):
        if value is None:
            result.missing += 1
            result.example(f"session:{write.n} missing")
        elif value != session_value(write.n):
            result.mismatched += 1
            result.example(f"session:{write.n} differs")
        else:
            result.restored += 1
    lost_keys = [f"session:{w.n}" for w in lost]
    if lost_keys:
        result.unexpected = int(client.exists(*lost_keys))
    return _close(result, kept, lost)
