"""``postgres-streaming``: a physical hot standby (``pg_basebackup -R``, a replication slot).

- fence, where the old primary answers: ``default_transaction_read_only`` on, written with
  ``ALTER SYSTEM`` (so it survives a restart), reloaded, and every client session ended, so no
  session keeps writing to it;
- replayed: the standby's replay LSN against the fenced primary's flush LSN (bytes behind);
- promote: ``SELECT pg_promote(wait => true)`` on the standby; done when ``pg_is_in_recovery()`` is
  false, so a run killed after the promotion never promotes twice;
- post-check: a row written and read back through the stable name;
- rejoin (failback): the old primary is stopped (fast shutdown) and ``pg_rewind`` rewinds its data
  directory onto the new primary's timeline (``wal_log_hints`` is on, so it can); when rewind
  cannot work (no common timeline history, the WAL since the fork already recycled on the new
  primary, or ``wal_log_hints``/checksums off) a fresh ``pg_basebackup`` replaces the directory.
  Either way it gets ``standby.signal``, ``primary_conninfo`` and a fresh slot on the new primary,
  loses the fence, and starts as a hot standby; done when it streams from the new primary.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from drkit.failover.kinds.base import CONNECT_TIMEOUT_S, Health, Protection, Replayed
from drkit.local.lag import Lag, postgres_lag
from drkit.local.names import StableName
from stackmodels.config import ProtectionKind

PROMOTE_WAIT_S = 60
REWIND_TIMEOUT_S = 300
STREAM_WAIT_S = 90.0
REWOUND_STREAM_WAIT_S = 20.0
BASEBACKUP_TRIES = 3
FENCE_SETTING = "default_transaction_read_only"
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

    # -- failback --------------------------------------------------------------------------------

    def _slot(self) -> str:
        return f"{self.sides.target.region}_standby"

    def rejoined(self) -> bool:
        """The target streams from the source, on the source's timeline."""
        try:
            with _connect(self.sides.source.url) as primary:
                timeline = primary.execute(
                    "SELECT ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))"
                    "::bit(32)::int"
                ).fetchone()
            with _connect(self.sides.target.url) as connection:
                row = connection.execute(
                    "SELECT pg_is_in_recovery(), status, sender_port, received_tli "
                    "FROM pg_stat_wal_receiver RIGHT JOIN (SELECT 1) AS one ON true"
                ).fetchone()
        except psycopg.Error:
            return False
        source_port = conninfo_to_dict(self.sides.source.url).get("port")
        return (
            row is not None
            and timeline is not None
            and bool(row[0])
            and row[1] == "streaming"
            and str(row[2]) == str(source_port)
            and row[3] == timeline[0]
        )

    def rejoin(self) -> dict[str, Any]:
        region = self.sides.target.region
        process = self.process("postgres", region)
        if process is None:
            raise RuntimeError(f"{self.store}: no recorded postgres process in {region}")
        slot = self._slot()
        with _connect(self.sides.source.url) as primary:
            primary.execute(
                "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
                "WHERE slot_name = %s AND NOT active",
                (slot,),
            )
            primary.execute(
                "SELECT pg_create_physical_replication_slot(%s, true) "
                "WHERE NOT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = %s)",
                (slot, slot),
            )
            # a recently promoted source's control file names its new timeline only after a
            # checkpoint; without one pg_rewind finds "no rewind required" and does nothing
            primary.execute("CHECKPOINT")
        started = time.monotonic()
        rewound = self._reseed(process, slot, rewind=True)
        if rewound["method"] == "pg_rewind" and not self._streams(REWOUND_STREAM_WAIT_S):
            # rewind said it was done, but the standby cannot follow the new timeline (the old
            # primary's own WAL since the fork was not all there): copy it whole instead
            rewound = self._reseed(process, slot, rewind=False) | {
                "rewind_refused": "rewound standby did not follow the new timeline "
                f"within {REWOUND_STREAM_WAIT_S:.0f}s ({rewound['rewind']})"
            }
        if not self._streams(STREAM_WAIT_S):
            raise RuntimeError(
                f"{self.store}: the {region} standby does not stream from the new primary "
                f"within {STREAM_WAIT_S:.0f}s (log {process['log']})"
            )
        return rewound | {"slot": slot, "seconds": round(time.monotonic() - started, 3)}

    def _streams(self, wait: float) -> bool:
        deadline = time.monotonic() + wait
        while not self.rejoined():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.2)
        return True

    def _reseed(self, process: dict[str, Any], slot: str, rewind: bool) -> dict[str, Any]:
        """Stop the target, rewind it (``rewind``) or copy it whole when rewind fails, make it a
        standby of the source, start it again."""
        from drkit.local.recorded import start_recorded, stop_recorded

        region = self.sides.target.region
        command = list(process["command"])
        data_dir = Path(command[command.index("-D") + 1])
        bin_dir = Path(command[0]).parent
        user = process.get("user")
        stop_recorded(self.sides.project_dir, "postgres", region, signal.SIGINT)  # fast shutdown
        source = self._source_conninfo()
        done: dict[str, Any] = {}
        if rewind:
            result = _run(
                [
                    str(bin_dir / "pg_rewind"),
                    "--target-pgdata", str(data_dir),
                    "--source-server", source,
                    "--write-recovery-conf",
                    "--no-sync",
                ],
                user,
            )  # fmt: skip
            said = _last_line(result.stderr + "\n" + result.stdout)
            if result.returncode == 0:
                done = {"method": "pg_rewind", "rewind": said}
            else:
                done = {"rewind_refused": said}
        if "method" not in done:
            for attempt in range(BASEBACKUP_TRIES):  # the slot frees as the old walsender exits
                shutil.rmtree(data_dir, ignore_errors=True)
                backup = _run(
                    [
                        str(bin_dir / "pg_basebackup"),
                        "--pgdata", str(data_dir),
                        "--dbname", source,
                        "--write-recovery-conf",
                        "--slot", slot,
                        "--wal-method", "stream",
                        "--checkpoint", "fast",
                        "--no-sync",
                    ],
                    user,
                )  # fmt: skip
                if backup.returncode == 0:
                    break
                time.sleep(1.0 + attempt)
            if backup.returncode != 0:
                raise RuntimeError(
                    f"{self.store}: pg_basebackup from the new primary failed: "
                    f"{_last_line(backup.stderr or backup.stdout)}"
                    + (f" (after pg_rewind: {done['rewind_refused']})" if done else "")
                )
            done["method"] = "pg_basebackup"
        _standby_settings(data_dir / "postgresql.auto.conf", slot)
        (data_dir / "standby.signal").touch()
        start_recorded(self.sides.project_dir, "postgres", region)
        return done

    def _source_conninfo(self) -> str:
        parts = conninfo_to_dict(self.sides.source.url)
        parts["dbname"] = "postgres"
        return make_conninfo(**{k: str(v) for k, v in parts.items()})


def _run(command: list[str], user: str | None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command,
        capture_output=True,
        text=True,
        user=user,
        cwd="/",
        timeout=REWIND_TIMEOUT_S,
        check=False,
    )


def _last_line(text: str) -> str:
    """The tool's own error (its last lines, without the cleanup notes that follow it)."""
    lines = [
        " ".join(line.split())
        for line in text.splitlines()
        if line.strip() and "removing" not in line and "changes to" not in line
    ]
    return "; ".join(lines[-2:]) if lines else "no output"


def _standby_settings(path: Path, slot: str) -> None:
    """The rejoined standby's ``postgresql.auto.conf``: the fence (``ALTER SYSTEM`` by a failover)
    and any other slot name gone, this slot named; rewritten in place (owner kept)."""
    kept = [
        line
        for line in path.read_text().splitlines()
        if not line.strip().startswith((FENCE_SETTING, "primary_slot_name"))
    ]
    path.write_text("\n".join([*kept, f"primary_slot_name = '{slot}'"]) + "\n")
