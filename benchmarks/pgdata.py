"""A trading database of a given size, generated inside PostgreSQL in about a minute per GiB.

The benchmark needs data that compresses like the real thing, not like a counter: client order
ids are random UUIDs, prices and sizes come from ``random()``, tags are random hex, so gzip and
zstd get about 2.7x on the dump, as on real order books, instead of the 20x of repeated rows.
Rows are made with ``generate_series`` server-side in batches; indexes are built once the heap is
near the target (faster than maintaining them row by row); then small batches top it up until
``pg_database_size`` reaches the target. Each database is made once per invocation and reused.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from psycopg import sql

from benchmarks.environment import Bench

MiB = 1024 * 1024
INDEX_OVERHEAD = 1.42
"""Database size after indexing over heap size before, measured on this schema."""
SYMBOLS = "ARRAY['AAPL','MSFT','NVDA','AMZN','ES=F','NQ=F','EURUSD','BTC-USD','TSLA','META']"

SCHEMA = [
    "CREATE TABLE accounts (id bigint PRIMARY KEY, email text NOT NULL, tier text NOT NULL,"
    " created_at timestamptz NOT NULL)",
    "CREATE TABLE orders (id bigint NOT NULL, client_order_id uuid NOT NULL,"
    " account_id bigint NOT NULL, symbol text NOT NULL, side text NOT NULL,"
    " qty numeric(18,4) NOT NULL, limit_price numeric(18,6), status text NOT NULL,"
    " placed_at timestamptz NOT NULL, tag text)",
    "CREATE TABLE market_ticks (symbol text NOT NULL, ts timestamptz NOT NULL,"
    " bid numeric(18,6) NOT NULL, ask numeric(18,6) NOT NULL, bid_size integer NOT NULL,"
    " ask_size integer NOT NULL, venue text NOT NULL)",
]
ACCOUNTS = (
    "INSERT INTO accounts SELECT g, 'trader' || g || '@example.com',"
    " (ARRAY['retail','pro','institutional'])[1 + g % 3],"
    " timestamptz '2024-01-01' + g * interval '1 minute' FROM generate_series(1, {accounts}) g"
)
ORDERS = (
    "INSERT INTO orders SELECT g, gen_random_uuid(), 1 + (random() * ({accounts} - 1))::bigint,"
    f" ({SYMBOLS})[1 + (random() * 9)::int],"
    " CASE WHEN random() < 0.5 THEN 'buy' ELSE 'sell' END, round((random() * 1000)::numeric, 4),"
    " round((50 + random() * 450)::numeric, 6),"
    " (ARRAY['filled','cancelled','open','partial'])[1 + (random() * 3)::int],"
    " timestamptz '2025-01-02 14:30' + g * interval '7 milliseconds',"
    " substr(md5(random()::text), 1, 12) FROM generate_series({first}, {last}) g"
)
TICKS = (
    f"INSERT INTO market_ticks SELECT ({SYMBOLS})[1 + g % 10],"
    " timestamptz '2025-01-02 14:30' + g * interval '1 millisecond',"
    " round((100 + random() * 10)::numeric, 6), round((100.01 + random() * 10)::numeric, 6),"
    " (random() * 10000)::int, (random() * 10000)::int,"
    " (ARRAY['XNAS','XNYS','BATS','ARCA'])[1 + (random() * 3)::int]"
    " FROM generate_series({first}, {last}) g"
)
INDEXES = [
    "ALTER TABLE orders ADD PRIMARY KEY (id)",
    "CREATE INDEX orders_placed_at ON orders (placed_at)",
    "ALTER TABLE market_ticks ADD PRIMARY KEY (symbol, ts)",
]
TABLES = ("accounts", "orders", "market_ticks")


@dataclass(frozen=True)
class TradingDatabase:
    name: str
    size: int
    """``pg_database_size`` in bytes: the "MB of database" that throughputs are per."""
    counts: dict[str, int]
    seconds: float
    """How long generating it took."""


def trading_database(bench: Bench, megabytes: int) -> TradingDatabase:
    """The database of at least ``megabytes`` MiB, made on first use and reused after."""
    key = f"pg-database-{megabytes}"
    cached = bench.cache.get(key)
    if isinstance(cached, TradingDatabase):
        return cached
    database = _generate(bench, f"bench_{megabytes}mb", megabytes * MiB)
    bench.cache[key] = database
    return database


def _generate(bench: Bench, name: str, target: int) -> TradingDatabase:
    started = time.monotonic()
    pg = bench.servers.postgres
    with pg.connect(autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    accounts = max(1_000, min(100_000, target // (10 * 1024)))
    # About 4,900 order + tick pairs per MB of heap: a batch is ~1/20 of the data, so the
    # database ends within a few percent of the target instead of a whole batch past it.
    batch = max(5_000, target // 4_000)
    with pg.connect(name, autocommit=True) as connection:
        for statement in SCHEMA:
            connection.execute(statement.encode())
        connection.execute(ACCOUNTS.format(accounts=accounts).encode())

        def size() -> int:
            row = connection.execute("SELECT pg_database_size(current_database())").fetchone()
            return int(row[0]) if row else 0

        rows = 0

        def add(count: int) -> None:
            nonlocal rows
            bounds = {"first": rows + 1, "last": rows + count, "accounts": accounts}
            connection.execute(ORDERS.format(**bounds).encode())
            connection.execute(TICKS.format(**bounds).encode())
            rows += count

        while size() * INDEX_OVERHEAD < target * 0.97:
            add(batch)
        for statement in INDEXES:
            connection.execute(statement.encode())
        while size() < target:
            add(max(2_000, batch // 5))
        connection.execute("VACUUM ANALYZE")
        total = size()
        counts = {}
        for table in TABLES:
            row = connection.execute(
                sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))
            ).fetchone()
            counts[f"public.{table}"] = int(row[0]) if row else 0
    return TradingDatabase(name, total, counts, time.monotonic() - started)


def drop_database(bench: Bench, name: str) -> None:
    with bench.servers.postgres.connect(autocommit=True) as admin:
        admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def create_database(bench: Bench, name: str) -> None:
    drop_database(bench, name)
    with bench.servers.postgres.connect(autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def table_counts(bench: Bench, database: str) -> dict[str, int]:
    counts = {}
    with bench.servers.postgres.connect(database) as connection:
        for table in TABLES:
            row = connection.execute(
                sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))
            ).fetchone()
            counts[f"public.{table}"] = int(row[0]) if row else 0
    return counts


def server_pid(bench: Bench) -> int | None:
    """The postmaster's pid (first line of ``postmaster.pid``), to measure the server's CPU."""
    try:
        text = (bench.servers.postgres.data_dir / "postmaster.pid").read_text()
    except OSError:
        return None
    first = text.split("\n", 1)[0].strip()
    return int(first) if first.isdigit() else None
