"""Writers that keep the platform busy during the drill and remember every write they made.

Each ledger entry carries what verification needs to decide, exactly, whether a write belongs in
a restored backup: the Postgres transaction id (checked against the backup's exported snapshot),
the Kafka partition and offset (against the backup's end offsets), the Redis sequence number
(against the ``drill:seq`` counter the RDB holds). Content is derived from the sequence number, so
a restored row or record can be compared field by field without keeping it in memory.

Like the applications, each writer reaches its store through the store's stable name
(``drkit.local.names``): a ``Locator`` re-reads the name before every write, and a writer whose
name moved (a failover) or whose write failed reconnects to wherever the name leads now, so the
writers carry on in the new primary region without being told.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import psycopg
import redis
from confluent_kafka import Consumer, Producer, TopicPartition

from drkit.local.names import StableName, read_names_file
from drkit.seed.postgres import TradingDataSize, seed_trading_database

if TYPE_CHECKING:
    from drkit.context import OpsContext

Locator = Callable[[], str]
"""Where a writer connects now: a client URL (PostgreSQL, Redis) or a bootstrap (Kafka)."""

SYMBOLS = ["AAPL", "MSFT", "NVDA", "ES=F", "EURUSD"]


def order_fields(n: int) -> tuple[str, str, int, str]:
    """(symbol, side, qty, status) of drill order ``n``: content is a function of the number."""
    return SYMBOLS[n % len(SYMBOLS)], "buy" if n % 2 else "sell", 1 + n % 97, "open"


def signal_value(n: int) -> bytes:
    digest = hashlib.sha256(f"signal-{n}".encode()).hexdigest()[:16]
    return f'{{"n": {n}, "score": "{digest}"}}'.encode()


def session_value(n: int) -> bytes:
    return hashlib.sha256(f"session-{n}".encode()).hexdigest().encode()


@dataclass(frozen=True)
class StableAddress:
    """A store's stable name, read from the name map at every call, and the credentials its
    clients use. Each kind's writer turns it into its clients' locator with the URL form of the
    kind (``postgres_url``, ``redis_url``, ``kafka_bootstrap``): ``drkit.kinds`` names the writer,
    so a new kind brings its own form and nothing here changes."""

    names_file: Path
    store: str
    user: str = ""
    password: str = ""
    tls: bool = False
    topics: tuple[str, ...] = ()
    """The part of the store the writer writes (a Kafka writer's topics); empty: the stack
    config's topics."""

    def name(self) -> StableName:
        names = read_names_file(self.names_file)
        if self.store not in names:
            raise KeyError(f"no stable name for store {self.store!r} in {self.names_file}")
        return names[self.store]

    def locator(self, form: Callable[[StableAddress, StableName], str]) -> Locator:
        """The client URL in ``form``, through the name as it is at each call."""
        return lambda: form(self, self.name())


def postgres_url(address: StableAddress, name: StableName) -> str:
    """``postgresql://user:password@host:port/database``."""
    user, secret = quote(address.user, safe=""), quote(address.password, safe="")
    return f"postgresql://{user}:{secret}@{name.address}/{name.database or 'postgres'}"


def redis_url(address: StableAddress, name: StableName) -> str:
    """``redis://:password@host:port/0`` (``rediss`` with TLS)."""
    secret = quote(address.password, safe="")
    return f"{'rediss' if address.tls else 'redis'}://:{secret}@{name.address}/0"


def kafka_bootstrap(address: StableAddress, name: StableName) -> str:
    """``host:port``, the ``kafka-bootstrap`` value a failover moves with the name."""
    return name.address


def _locator(target: str | Locator) -> Locator:
    if isinstance(target, str):
        return lambda: target
    return target


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

    def burst(self, count: int) -> None:
        """Seed: ``count`` writes one after the other, before the writer starts its rate."""
        with self._lock:
            for _ in range(count):
                self._write_one(self.next_n)
                self.next_n += 1

    def abandon(self) -> None:
        """The region is lost: drop what the client holds but the store never acknowledged
        (nothing, for a writer whose writes are synchronous)."""

    def forget(self, lost: set[int]) -> None:
        """Writes a disaster took are gone for good: later checks must not expect them."""
        self.ledger = [w for w in self.ledger if w.n not in lost]

    def _write_one(self, n: int) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass

    # What a check elsewhere (the region-failover scenario) asks of the writer's own store.

    @staticmethod
    def address_of(url: str) -> str:
        """``host:port`` of a server URL, as the writer records where a write went."""
        return _address(url)

    def read_back(self, url: str, write: Write) -> bool:
        """Whether the server at ``url`` returns ``write``, content included."""
        raise NotImplementedError

    def found_in(self, url: str) -> dict[int, bool]:
        """The ledger's writes the server at ``url`` holds: write number -> content equal."""
        raise NotImplementedError


class PostgresOrderWriter(Writer):
    """One order per transaction, with the transaction id that the snapshot can be asked about."""

    name_prefix = "orders writer"

    def __init__(self, locate: str | Locator, rate: float) -> None:
        super().__init__(rate)
        self.locate = _locator(locate)
        self.conninfo = ""
        self._connection: psycopg.Connection[tuple[Any, ...]] | None = None

    def retarget(self, locate: str | Locator) -> None:
        """After a restore the application points at the recovered database."""
        with self._lock:
            self.close()
            self.locate = _locator(locate)

    def _write_one(self, n: int) -> None:
        conninfo = self.locate()
        if conninfo != self.conninfo:
            self.close()  # the name moved: new connections go where it leads now
            self.conninfo = conninfo
        if self._connection is None or self._connection.closed:
            self._connection = psycopg.connect(self.conninfo, connect_timeout=3)
        symbol, side, qty, status = order_fields(n)
        try:
            with self._connection.transaction():
                row = self._connection.execute(
                    "INSERT INTO orders (account_id, symbol, side, qty, status, placed_at)"
                    " VALUES (1, %s, %s, %s, %s, clock_timestamp())"
                    " RETURNING id, txid_current()::text",
                    (symbol, side, qty, status),
                ).fetchone()
        except psycopg.Error:
            self.close()  # reconnect (and re-read the name) at the next write
            raise
        assert row is not None
        self.ledger.append(
            Write(
                n,
                datetime.now(UTC),
                {"id": int(row[0]), "txid": row[1], "address": _address(self.conninfo)},
            )
        )

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def read_back(self, url: str, write: Write) -> bool:
        with psycopg.connect(url, connect_timeout=3) as connection:
            row = connection.execute(
                "SELECT symbol, side, qty, status FROM orders WHERE id = %s",
                (write.detail["id"],),
            ).fetchone()
        return row is not None and tuple(row) == order_fields(write.n)

    def found_in(self, url: str) -> dict[int, bool]:
        ids = {int(w.detail["id"]): w.n for w in self.ledger}
        with psycopg.connect(url, connect_timeout=5) as connection:
            rows = connection.execute(
                "SELECT id, symbol, side, qty, status FROM orders WHERE id = ANY(%s)",
                (list(ids),),
            ).fetchall()
        found = {ids[int(row[0])]: tuple(row[1:]) for row in rows}
        return {n: fields == order_fields(n) for n, fields in found.items()}


def _address(url: str) -> str:
    """``host:port`` of a client URL (where a write was acknowledged)."""
    return url.rpartition("@")[2].split("/", 1)[0]


class KafkaEventWriter(Writer):
    """Strategy signals and order events with keys, headers and timestamps; offsets come from
    the broker's delivery reports."""

    name_prefix = "events writer"

    def __init__(self, locate: str | Locator, topics: list[str], rate: float) -> None:
        super().__init__(rate)
        self.topics = topics
        self.locate = _locator(locate)
        self.bootstrap = self.locate()
        self.producer = self._producer()

    def _write_one(self, n: int) -> None:
        bootstrap = self.locate()
        if bootstrap != self.bootstrap:
            # The name moved (a failover): what the old producer still holds was never
            # acknowledged (its delivery reports count as failures), and a new producer's
            # idempotence starts afresh on the new cluster.
            self.producer.purge()
            self.producer.flush(1)
            self.bootstrap = bootstrap
            self.producer = self._producer()
        self._produce(n)
        if self.producer.flush(5) > 0:
            raise TimeoutError(f"record {n} not acknowledged by {self.bootstrap} within 5s")

    def _produce(self, n: int) -> None:
        topic = self.topics[n % len(self.topics)]
        timestamp_ms = int(time.time() * 1000)
        headers: list[tuple[str, str | bytes | None]] = [
            ("drill-seq", str(n).encode()),
            ("source", b"drill"),
        ]
        bootstrap = self.bootstrap

        def delivered(error: Any, message: Any) -> None:
            if error is not None:
                self.failures += 1
                return
            self.ledger.append(
                Write(
                    n,
                    datetime.now(UTC),
                    {
                        "address": bootstrap,
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
                self.locate = _locator(bootstrap)
            self.bootstrap = self.locate()
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

    def abandon(self) -> None:
        self.producer.purge()

    def close(self) -> None:
        self.producer.flush(5)

    @staticmethod
    def address_of(url: str) -> str:
        return url  # a bootstrap is host:port already

    def read_back(self, url: str, write: Write) -> bool:
        consumer = Consumer(
            {"bootstrap.servers": url, "group.id": "drkit-drill-readback", "log_level": 3}
        )
        try:
            partition = TopicPartition(
                write.detail["topic"], write.detail["partition"], write.detail["offset"]
            )
            consumer.assign([partition])
            message = consumer.poll(3)
            return (
                message is not None
                and not message.error()
                and message.offset() == write.detail["offset"]
                and message.value() == signal_value(write.n)
            )
        finally:
            consumer.close()

    def found_in(self, url: str) -> dict[int, bool]:
        from drkit.drill.verify import read_topics

        found = read_topics(url, self.topics)
        by_n = {w.n: w for w in self.ledger}
        return {
            n: (record["topic"], record["key"], record["value"], record["timestamp_ms"])
            == (
                by_n[n].detail["topic"],
                by_n[n].detail["key"].encode(),
                signal_value(n),
                by_n[n].detail["timestamp_ms"],
            )
            for n, record in found.items()
            if n in by_n
        }


class RedisSessionWriter(Writer):
    """Session keys with a TTL, and ``drill:seq`` counting them in the same transaction."""

    name_prefix = "sessions writer"
    SEQUENCE_KEY = "drill:seq"

    def __init__(
        self, locate: str | Locator, rate: float, *, tls_ca_file: str | None = None
    ) -> None:
        super().__init__(rate)
        self.locate = _locator(locate)
        self.tls_ca_file = tls_ca_file
        self.url = ""
        self._client: redis.Redis[bytes] | None = None

    @property
    def client(self) -> redis.Redis[bytes]:
        """A client of wherever the store's name leads now (re-read at every call)."""
        url = self.locate()
        if url != self.url or self._client is None:
            self.close()
            self.url = url
            tls: dict[str, Any] = (
                {"ssl_ca_certs": self.tls_ca_file} if url.startswith("rediss:") else {}
            )
            self._client = redis.Redis.from_url(
                url, socket_timeout=10, socket_connect_timeout=3, **tls
            )
        return self._client

    def _write_one(self, n: int) -> None:
        client = self.client
        try:
            with client.pipeline(transaction=True) as pipe:
                pipe.set(f"session:{n}", session_value(n), ex=86400)
                pipe.set(self.SEQUENCE_KEY, n)
                pipe.execute()
        except redis.RedisError:
            self.close()  # reconnect (and re-read the name) at the next write
            raise
        self.ledger.append(Write(n, datetime.now(UTC), {"address": _address(self.url)}))

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def read_back(self, url: str, write: Write) -> bool:
        with redis.Redis.from_url(url, socket_timeout=3) as client:
            return client.get(f"session:{write.n}") == session_value(write.n)

    def found_in(self, url: str) -> dict[int, bool]:
        client = redis.Redis.from_url(url, socket_timeout=10)
        with client, client.pipeline(False) as pipe:
            for write in self.ledger:
                pipe.get(f"session:{write.n}")
            values = pipe.execute() if self.ledger else []
        return {
            w.n: value == session_value(w.n)
            for w, value in zip(self.ledger, values, strict=True)
            if value is not None
        }


# --- each kind's writer, as its entry in ``drkit.kinds`` names it -------------------------------


def postgres_prepare(url: str) -> None:
    """The trading schema the orders writer inserts into, seeded small, on the server at ``url``."""
    seed_trading_database(url, TradingDataSize.for_megabytes(0.2))


def postgres_writer(ctx: OpsContext, address: StableAddress, store: str, rate: float) -> Writer:
    return PostgresOrderWriter(address.locator(postgres_url), rate)


def kafka_writer(ctx: OpsContext, address: StableAddress, store: str, rate: float) -> Writer:
    topics = list(address.topics or ctx.config.stores[store].topics)
    return KafkaEventWriter(address.locator(kafka_bootstrap), topics, rate)


def redis_writer(ctx: OpsContext, address: StableAddress, store: str, rate: float) -> Writer:
    tls_ca_file = ctx.outputs.stores[store].tls_ca_file
    return RedisSessionWriter(address.locator(redis_url), rate, tls_ca_file=tls_ca_file)
