"""The trading database: user accounts, strategy configurations, orders and market ticks.

Generated inside PostgreSQL with ``generate_series`` so tens of megabytes take seconds, and made
deterministic (no random()) so two runs of the same size hold identical rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

SCHEMA = """
CREATE TABLE IF NOT EXISTS accounts (
    id bigint PRIMARY KEY, email text NOT NULL UNIQUE, tier text NOT NULL,
    created_at timestamptz NOT NULL);
CREATE TABLE IF NOT EXISTS strategies (
    id bigint PRIMARY KEY, account_id bigint NOT NULL REFERENCES accounts(id),
    name text NOT NULL, config jsonb NOT NULL, updated_at timestamptz NOT NULL);
CREATE TABLE IF NOT EXISTS orders (
    id bigserial PRIMARY KEY, account_id bigint NOT NULL REFERENCES accounts(id),
    strategy_id bigint REFERENCES strategies(id), symbol text NOT NULL,
    side text NOT NULL CHECK (side IN ('buy', 'sell')), qty numeric(18, 4) NOT NULL,
    limit_price numeric(18, 6), status text NOT NULL, placed_at timestamptz NOT NULL);
CREATE INDEX IF NOT EXISTS orders_placed_at ON orders (placed_at);
CREATE TABLE IF NOT EXISTS market_ticks (
    symbol text NOT NULL, ts timestamptz NOT NULL, bid numeric(18, 6) NOT NULL,
    ask numeric(18, 6) NOT NULL, volume bigint NOT NULL, PRIMARY KEY (symbol, ts));
"""

SYMBOLS = ["AAPL", "MSFT", "NVDA", "AMZN", "ES=F", "NQ=F", "EURUSD", "BTC-USD"]
ORDER_ROW_BYTES = 180
"""About what one order row costs on disk with its index entries; sizes the data set."""


@dataclass(frozen=True)
class TradingDataSize:
    accounts: int
    strategies: int
    orders: int
    ticks: int

    @classmethod
    def for_megabytes(cls, megabytes: float) -> TradingDataSize:
        orders = max(1000, int(megabytes * 1024 * 1024 * 0.6 / ORDER_ROW_BYTES))
        return cls(
            accounts=max(10, orders // 100),
            strategies=max(10, orders // 400),
            orders=orders,
            ticks=max(1000, orders // 2),
        )


def seed_trading_database(conninfo: str, size: TradingDataSize) -> dict[str, int]:
    """Create and fill the schema; returns rows per table."""
    symbols = "ARRAY[" + ",".join(f"'{s}'" for s in SYMBOLS) + "]"
    with psycopg.connect(conninfo) as connection:
        connection.execute(SCHEMA)
        connection.execute(
            "INSERT INTO accounts SELECT g, 'trader' || g || '@example.com',"
            " (ARRAY['retail','pro','institutional'])[1 + g %% 3],"
            " timestamptz '2024-01-01' + g * interval '1 minute' FROM generate_series(1, %s) g",
            (size.accounts,),
        )
        connection.execute(
            "INSERT INTO strategies SELECT g, 1 + g %% %s, 'strategy-' || g,"
            " jsonb_build_object('kind', (ARRAY['mean-revert','momentum','arb'])[1 + g %% 3],"
            " 'lookback', 10 + g %% 50, 'max_position', 1000 * (1 + g %% 7)),"
            " timestamptz '2024-06-01' + g * interval '1 second'"
            " FROM generate_series(1, %s) g",
            (size.accounts, size.strategies),
        )
        connection.execute(
            "INSERT INTO orders (account_id, strategy_id, symbol, side, qty, limit_price, status,"
            " placed_at) SELECT 1 + g %% %s, 1 + g %% %s,"
            f" ({symbols})[1 + g %% {len(SYMBOLS)}],"
            " CASE WHEN g %% 2 = 0 THEN 'buy' ELSE 'sell' END, 1 + g %% 500,"
            " round((100 + (g %% 997) * 0.37)::numeric, 6),"
            " (ARRAY['filled','cancelled','open'])[1 + g %% 3],"
            " timestamptz '2025-01-02 14:30' + g * interval '10 milliseconds'"
            " FROM generate_series(1, %s) g",
            (size.accounts, size.strategies, size.orders),
        )
        connection.execute(
            "INSERT INTO market_ticks SELECT"
            f" ({symbols})[1 + g %% {len(SYMBOLS)}],"
            " timestamptz '2025-01-02 14:30' + g * interval '1 millisecond',"
            " round((100 + (g %% 1013) * 0.01)::numeric, 6),"
            " round((100.02 + (g %% 1013) * 0.01)::numeric, 6), g %% 10000"
            " FROM generate_series(1, %s) g",
            (size.ticks,),
        )
    return table_counts(conninfo)


TABLES = ("accounts", "strategies", "orders", "market_ticks")


def table_counts(conninfo: str) -> dict[str, int]:
    with psycopg.connect(conninfo) as connection:
        counts = {}
        for table in TABLES:
            row = connection.execute(f"SELECT count(*) FROM {table}").fetchone()
            counts[f"public.{table}"] = int(row[0]) if row else 0
    return counts


def table_digests(conninfo: str) -> dict[str, str]:
    """An MD5 over every row of each table, in key order: equal digests mean identical rows."""
    keys = {"accounts": "id", "strategies": "id", "orders": "id", "market_ticks": "symbol, ts"}
    with psycopg.connect(conninfo) as connection:
        digests = {}
        for table, key in keys.items():
            row = connection.execute(
                f"SELECT coalesce(md5(string_agg(t::text, E'\\n' ORDER BY {key})), '')"
                f" FROM {table} t"
            ).fetchone()
            digests[f"public.{table}"] = str(row[0]) if row else ""
    return digests
