"""The local kinds' fence and promote on real servers that answer (the old primary is up).

Throwaway servers: a fence makes them refuse writes, which the session-wide ones must not.
"""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
import redis

from drkit.failover.kinds import Endpoint, StoreSides, protection_for
from drkit.local.postgres import LocalPostgres
from drkit.local.redis import LocalRedis
from stackmodels.config import ProtectionKind

pytestmark = pytest.mark.integration


def sides(tmp_path: Path, kind: ProtectionKind, url: str) -> StoreSides:
    """The old primary answers; the target is the same server (promote finds it a primary)."""
    return StoreSides(
        store="store",
        kind=kind,
        source=Endpoint("prod", url, answers=True),
        target=Endpoint("dr", url, answers=True),
        project_dir=tmp_path,
        state={},
    )


def test_a_fenced_postgresql_ends_its_sessions_and_refuses_writes(tmp_path: Path) -> None:
    with LocalPostgres(tmp_path / "pg") as server:
        url = server.dsn()
        kind = protection_for(sides(tmp_path, ProtectionKind.POSTGRES_STREAMING, url))
        writer = psycopg.connect(url, autocommit=True)
        writer.execute("CREATE TABLE orders (id int)")
        assert kind.promoted()  # a primary: promote would change nothing
        note = kind.fence()
        assert "read-only" in note and "1 client sessions ended" in note
        with pytest.raises(psycopg.OperationalError):
            writer.execute("INSERT INTO orders VALUES (1)")
        writer.close()
        with (
            psycopg.connect(url, autocommit=True) as again,
            pytest.raises(psycopg.errors.ReadOnlySqlTransaction),
        ):
            again.execute("INSERT INTO orders VALUES (2)")
        with psycopg.connect(url) as reader:
            setting = reader.execute(
                "SELECT setting FROM pg_file_settings WHERE name = 'default_transaction_read_only'"
            ).fetchone()
        assert setting == ("on",)  # in postgresql.auto.conf: it survives a restart


def test_a_fenced_redis_refuses_writes_and_a_master_counts_as_promoted(tmp_path: Path) -> None:
    with LocalRedis(tmp_path / "redis") as server:
        kind = protection_for(sides(tmp_path, ProtectionKind.REDIS_REPLICA, server.url))
        assert kind.promoted()
        assert "refuses writes" in kind.fence()
        with redis.Redis.from_url(server.url) as client, pytest.raises(redis.ResponseError):
            client.set("session:1", b"x")


def test_an_unreachable_old_primary_is_reported_not_fenced(tmp_path: Path) -> None:
    dark = "postgresql://postgres:x@127.0.0.1:9/postgres"
    kind = protection_for(
        StoreSides(
            "trading-db",
            ProtectionKind.POSTGRES_STREAMING,
            Endpoint("prod", dark, answers=False),
            Endpoint("dr", dark, answers=False),
            tmp_path,
            {},
        )
    )
    assert "did not answer" in kind.fence()
    assert kind.lag().seconds is None
