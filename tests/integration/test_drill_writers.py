"""The drill's writers reach their store through its stable name, re-read before every write: a
name moved (as a failover moves it) takes the next write to where it leads, with no restart."""

from __future__ import annotations

import uuid
from pathlib import Path

import psycopg
import pytest

from drkit.drill.writers import PostgresOrderWriter, StableAddress, postgres_url
from drkit.local.names import StableName, point_file, write_names_file
from drkit.local.postgres import LocalPostgres
from drkit.seed.postgres import TradingDataSize, seed_trading_database

pytestmark = pytest.mark.integration


def test_postgres_writer_follows_its_moved_stable_name(
    postgres_server: LocalPostgres, tmp_path: Path
) -> None:
    server = postgres_server
    first, second = (f"writers_{uuid.uuid4().hex[:8]}_{side}" for side in ("a", "b"))
    for database in (first, second):
        server.create_database(database)
        seed_trading_database(server.dsn(database), TradingDataSize(10, 10, 10, 10))
    names = tmp_path / "names.json"
    here = StableName(region="prod", host=server.host, port=server.port, database=first)
    write_names_file(names, {"trading-db": here})
    address = StableAddress(names, "trading-db", server.user, server.password)
    writer = PostgresOrderWriter(address.locator(postgres_url), rate=10)

    writer.burst(3)
    point_file(names, "trading-db", here.model_copy(update={"region": "dr", "database": second}))
    writer.burst(2)
    writer.close()

    def drill_orders(database: str) -> int:
        with psycopg.connect(server.dsn(database)) as connection:
            row = connection.execute("SELECT count(*) FROM orders WHERE id > 10").fetchone()
        return int(row[0]) if row else -1

    assert [w.n for w in writer.ledger] == [1, 2, 3, 4, 5]
    # three where the name first led, two where it was moved to
    assert (drill_orders(first), drill_orders(second)) == (3, 2)
    assert [w.detail["address"] for w in writer.ledger] == [here.address] * 5
    assert writer.failures == 0


def test_stable_address_names_a_missing_store(tmp_path: Path) -> None:
    names = tmp_path / "names.json"
    write_names_file(names, {})
    with pytest.raises(KeyError, match="no stable name for store 'trading-db'"):
        StableAddress(names, "trading-db").locator(postgres_url)()
