"""``postgres-streaming``: a physical hot standby (``pg_basebackup -R``, a replication slot).

- fence, where the old primary answers: ``default_transaction_read_only`` on, written with
  ``ALTER SYSTEM`` (so it survives a restart), reloaded, and every client session ended, so no
  session keeps writing to it;
- replayed: the standby's replay LSN against the fenced primary's flush LSN (bytes behind);
- promote: ``SELECT pg_promote(wait => true)`` on the standby; done when ``pg_is_in_recovery()`` is
  false, so a run killed after the promotion never promotes twice;
- post-check: a row written and read back through the stable name.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import psycopg

from drkit.failover.kinds.base import CONNECT_TIMEOUT_S, Health, Protection, Replayed
from drkit.local.lag import Lag, postgres_lag
from drkit.local.names import StableName
from stackmodels.config import ProtectionKind

PROMOTE_WAIT_S = 60
CHECK_TABLE = "drkit_failover_checks"


def _connect(url: str) -> psycopg.Connection[Any]:
    return psycopg.connect(url, connect_timeout=CONNECT_TIMEOUT_S, autocommit=True)


def in_recovery(url: str) -> bool:
    with _connect(url) as connection:
        row = connection.execute("SELECT pg_is_in_recovery()").fetchone()
    return bool(row and row[0])


class PostgresStreaming(Protection):
    kind = ProtectionKind.POSTGRES_STREAMING

    @classmethod
    def stable_name(cls, url: str, region: str) -> StableName:
        """The server's address and the URL's database."""
        name = super().stable_name(url, region)
        database = urlsplit(url).path.lstrip("/") or None
        return name.model_copy(update={"database": database})

    def health(self, planned: bool) -> list[Health]:
        def standby() -> str:
            return (
                "in recovery (a standby)"
                if in_recovery(self.sides.target.url)
                else ("already promoted")
            )

        return [
            self.target_health("standby", planned, psycopg.Error, standby),
            self.source_health("primary", planned),
        ]

    def lag(self) -> Lag:
        return postgres_lag(self.answering_source, self.sides.target.url)

    def fence(self) -> str:
        def read_only() -> str:
            with _connect(self.sides.source.url) as connection:
                connection.execute("ALTER SYSTEM SET default_transaction_read_only = on")
                connection.execute("SELECT pg_reload_conf()")
                ended = connection.execute(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()"
                ).fetchone()
            count = ended[0] if ended else 0
            return (
                f"{self.store}: old primary read-only (default_transaction_read_only, kept across "
                f"a restart); {count} client sessions ended"
            )

        return self.fence_source("primary", psycopg.Error, read_only)

    def replayed(self) -> Replayed:
        with _connect(self.sides.source.url) as primary:
            row = primary.execute("SELECT pg_current_wal_flush_lsn()::text").fetchone()
        assert row is not None
        flush = str(row[0])
        with _connect(self.sides.target.url) as standby:
            replay = standby.execute(
                "SELECT pg_last_wal_replay_lsn()::text, "
                "pg_wal_lsn_diff(%s::pg_lsn, pg_last_wal_replay_lsn())::bigint",
                (flush,),
            ).fetchone()
        if replay is None or replay[1] is None:
            raise RuntimeError(f"{self.store}: the standby has replayed nothing (not a standby?)")
        detail = {"primary_flush_lsn": flush, "standby_replay_lsn": replay[0]}
        return Replayed(max(0, int(replay[1])), "bytes", detail)

    def promoted(self) -> bool:
        return not in_recovery(self.sides.target.url)

    def promote(self, planned: bool) -> dict[str, Any]:
        with _connect(self.sides.target.url) as connection:
            row = connection.execute(
                "SELECT pg_promote(wait => true, wait_seconds => %s)", (PROMOTE_WAIT_S,)
            ).fetchone()
            if not row or not row[0]:
                raise RuntimeError(
                    f"{self.store}: pg_promote did not finish within {PROMOTE_WAIT_S}s"
                )
            timeline = connection.execute(
                "SELECT ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int"
            ).fetchone()
        return {"promoted": True, "timeline": timeline[0] if timeline else None}

    def postcheck(self, url: str) -> dict[str, Any]:
        with _connect(url) as connection:
            connection.execute(
                f"CREATE TABLE IF NOT EXISTS {CHECK_TABLE} "
                "(id bigserial PRIMARY KEY, at timestamptz NOT NULL DEFAULT now(), note text)"
            )
            row = connection.execute(
                f"INSERT INTO {CHECK_TABLE} (note) VALUES (%s) RETURNING id",
                (f"failover post-check {datetime.now(UTC).isoformat()}",),
            ).fetchone()
            assert row is not None
            found = connection.execute(
                f"SELECT id FROM {CHECK_TABLE} WHERE id = %s", (row[0],)
            ).fetchone()
        if found is None:
            raise RuntimeError(f"{self.store}: the post-check row was not read back")
        return {"wrote": f"{CHECK_TABLE} id {row[0]}"}
