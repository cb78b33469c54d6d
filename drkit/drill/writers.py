"""Writers that keep the platform busy during the drill and remember every write they made.

Each ledger entry carries what verification needs to decide, exactly, whether a write belongs in
a restored backup: the Postgres transaction id (checked against the backup's exported snapshot),
the Kafka partition and offset (against the backup's end offsets), the Redis sequence number
(against the ``drill:seq`` counter the RDB holds). Content is derived from the sequence number, so
a restored row or record can be compared field by field without keeping it in memory.
"""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import psycopg
import redis
from confluent_kafka import Producer

SYMBOLS = ["AAPL", "MSFT", "NVDA", "ES=F", "EURUSD"]


def order_fields(n: int) -> tuple[str, str, int, str]:
    """(symbol, side, qty, status) of drill order ``n``: content is a function of the number."""
    return SYMBOLS[n % len(SYMBOLS)], "buy" if n % 2 else "sell", 1 + n % 97, "open"


def signal_value(n: int) -> bytes:
    digest = hashlib.sha256(f"signal-{n}".encode()).hexdigest()[:16]
    return f'{{"n": {n}, "score": "{digest}"}}'.encode()


def session_value(n: int) -> bytes:
    return hashlib.sha256(f"session-{n}".encode()).hexdigest().encode()


@dataclass
class Write:
    n: int
    at: datetime
    detail: dict[str, Any] = field(default_factory=dict)


class Writer(threading.Thread):
    """Writes at ``rate`` per second until stopped; pauses while its store is down."""

    name_prefix = "writer"

    def __init__(self, rate: float) -> None:
        super().__init__(name=self.name_prefix, daemon=True)
        self.rate = rate
        self.ledger: list[Write] = []
        self.failures = 0
        self.next_n = 1
        self._stop_event = threading.Event()
        self._running = threading.Event()
        self._running.set()
        self._lock = threading.Lock()

    def run(self) -> None:
        interval = 1.0 / self.rate
        while not self._stop_event.is_set():
            started = time.monotonic()
            if self._running.is_set():
                try:
                    with self._lock:
                        self._write_one(self.next_n)
                        self.next_n += 1
                except Exception:
                    self.failures += 1
            self._stop_event.wait(max(0.0, interval - (time.monotonic() - started)))

    def pause(self) -> None:
        """Stop writing and wait for an in-flight write: the service is down."""
        self._running.clear()
        with self._lock:
            pass

    def resume(self) -> None:
        self._running.set()

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=30)
        self.close()

    def forget(self, lost: set[int]) -> None:
        """Writes a disaster took are gone for good: later checks must not expect them."""
        self.ledger = [w for w in self.ledger if w.n not in lost]

    def _write_one(self, n: int) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass


class PostgresOrderWriter(Writer):
    """One order per transaction, with the transaction id that the snapshot can be asked about."""

    name_prefix = "orders writer"

    def __init__(self, conninfo: str, rate: float) -> None:
        super().__init__(rate)
        self.conninfo = conninfo
        self._connection: psycopg.Connection[tuple[Any, ...]] | None = None

    def retarget(self, conninfo: str) -> None:
        """After a restore the application points at the recovered database."""
        with self._lock:
            self.close()
            self.conninfo = conninfo

    def burst(self, count: int) -> None:
        with self._lock:
            for _ in range(count):
                self._write_one(self.next_n)
                self.next_n += 1

    def _write_one(self, n: int) -> None:
        if self._connection is None or self._connection.closed:
            self._connection = psycopg.connect(self.conninfo, connect_timeout=3)
        symbol, side, qty, status = order_fields(n)
        with self._connection.transaction():
            row = self._connection.execute(
                "INSERT INTO orders (account_id, symbol, side, qty, status, placed_at)"
                " VALUES (1, %s, %s, %s, %s, clock_timestamp())"
                " RETURNING id, txid_current()::text",
                (symbol, side, qty, status),
            ).fetchone()
        assert row is not None
        self.ledger.append(Write(n, datetime.now(UTC), {"id": int(row[0]), "txid": row[1]}))

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


class KafkaEventWriter(Writer):
    """Strategy signals and order events with keys, headers and timestamps; offsets come from
    the broker's delivery reports."""

    name_prefix = "events writer"

    def __init__(self, bootstrap: str, topics: list[str], rate: float) -> None:
        super().__init__(rate)
        self.topics = topics
        self.bootstrap = bootstrap
        self.producer = self._producer()

    def _write_one(self, n: int) -> None:
        self._produce(n)
        self.producer.flush(5)

    def _produce(self, n: int) -> None:
        topic = self.topics[n % len(self.topics)]
        timestamp_ms = int(time.time() * 1000)
        headers: list[tuple[str, str | bytes | None]] = [
            ("drill-seq", str(n).encode()),
            ("source", b"drill"),
        ]

        def delivered(error: Any, message: Any) -> None:
            if error is not None:
                self.failures += 1
                return
            self.ledger.append(
                Write(
                    n,
                    datetime.now(UTC),
                    {
                        "topic": message.topic(),
                        "partition": message.partition(),
                        "offset": message.offset(),
                        "key": f"strategy-{n % 17}",
                        "timestamp_ms": timestamp_ms,
                    },
                )
            )

        self.producer.produce(
            topic,
            key=f"strategy-{n % 17}".encode(),
            value=signal_value(n),
            headers=headers,
            timestamp=timestamp_ms,
            on_delivery=delivered,
        )

    def renew(self, bootstrap: str | None = None) -> None:
        """A new producer: after topics are recreated (or the cluster replaced) the old one's
        idempotence sequence numbers no longer match any partition."""
        with self._lock:
            self.producer.flush(5)
            if bootstrap is not None:
                self.bootstrap = bootstrap
            self.producer = self._producer()

    def _producer(self) -> Producer:
        return Producer(
            {
                "bootstrap.servers": self.bootstrap,
                "acks": "all",
                "enable.idempotence": True,
                "linger.ms": 5,
                "log_level": 2,  # not the connection errors of a broker the drill just killed
            }
        )

    def burst(self, count: int) -> None:
        """Seed: ``count`` records as fast as the broker takes them, one flush at the end."""
        with self._lock:
            for _ in range(count):
                self._produce(self.next_n)
                self.next_n += 1
                self.producer.poll(0)
            self.producer.flush(30)

    def close(self) -> None:
        self.producer.flush(5)


class RedisSessionWriter(Writer):
    """Session keys with a TTL, and ``drill:seq`` counting them in the same transaction."""

    name_prefix = "sessions writer"
    SEQUENCE_KEY = "drill:seq"

    def __init__(self, client: redis.Redis[bytes], rate: float) -> None:
        super().__init__(rate)
        self.client = client

    def burst(self, count: int) -> None:
        with self._lock:
            for _ in range(count):
                self._write_one(self.next_n)
                self.next_n += 1

    def _write_one(self, n: int) -> None:
        with self.client.pipeline(transaction=True) as pipe:
            pipe.set(f"session:{n}", session_value(n), ex=86400)
            pipe.set(self.SEQUENCE_KEY, n)
            pipe.execute()
        self.ledger.append(Write(n, datetime.now(UTC)))
