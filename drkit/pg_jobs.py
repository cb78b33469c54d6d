"""How many PostgreSQL connections a parallel backup or restore may open (``--jobs``).

``--jobs auto`` (or no number where a parallel run is asked for) is the machine's cores, capped by
what the server has free: ``max_connections``, less the slots reserved for superusers (and, from
PostgreSQL 16, ``reserved_connections``), less the client connections in use. A number is checked
against the same room: ``--jobs 0``, or more jobs than the room allows, is refused (a
``ValueError``: exit 2) naming the limit, before anything is read or written.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import psycopg

from drkit.backup.postgres import PostgresSource


class JobsRefused(ValueError):
    """``--jobs`` is not a positive number, or more than the server's free connections allow."""


@dataclass(frozen=True)
class ConnectionRoom:
    max_connections: int
    reserved: int
    in_use: int

    @property
    def free(self) -> int:
        return max(0, self.max_connections - self.reserved - self.in_use)

    def describe(self, server: str) -> str:
        return (
            f"PostgreSQL on {server} has {self.free} connection(s) free (max_connections "
            f"{self.max_connections}, {self.reserved} reserved, {self.in_use} in use)"
        )


def connection_room(source: PostgresSource) -> ConnectionRoom:
    """The server's connection limit and what is in use now (this connection counted)."""
    with psycopg.connect(source.conninfo()) as connection:
        row = connection.execute(
            "SELECT current_setting('max_connections')::int,"
            " current_setting('superuser_reserved_connections')::int"
            " + coalesce(current_setting('reserved_connections', true)::int, 0),"
            " (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')"
        ).fetchone()
    assert row is not None
    # This connection is closed before the run opens its own: not in use then.
    return ConnectionRoom(int(row[0]), int(row[1]), max(0, int(row[2]) - 1))


def parse_jobs(jobs: str | int) -> int | None:
    """None for ``auto`` (or blank); the number otherwise; refuses anything else and 0."""
    text = str(jobs).strip().lower()
    if text in ("", "auto"):
        return None
    try:
        number = int(text)
    except ValueError:
        raise JobsRefused(
            f"--jobs {jobs}: give a number of parallel jobs (1 or more) or auto"
        ) from None
    if number < 1:
        raise JobsRefused(
            f"--jobs {jobs}: at least 1 job is needed (auto: the machine's {cores()} core(s), "
            "within the server's free connections). Nothing was changed."
        )
    return number


def cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def resolve_jobs(source: PostgresSource, jobs: str | int, extra: int, doing: str) -> int:
    """The number of jobs for ``doing`` (``backup``, ``restore``): each job holds one connection
    and the run ``extra`` more (a backup's snapshot, a restore's leader). Refuses ``--jobs 0`` and
    more jobs than the server's free connections allow, naming the limit."""
    wanted = parse_jobs(jobs)
    room = connection_room(source)
    allowed = room.free - extra
    server = f"{source.host}:{source.port}"
    if allowed < 1:
        raise JobsRefused(
            f"--jobs: {room.describe(server)}; a parallel {doing} needs {extra + 1} at least. "
            "Nothing was changed."
        )
    if wanted is None:
        return max(1, min(cores(), allowed))
    if wanted > allowed:
        raise JobsRefused(
            f"--jobs {wanted}: {room.describe(server)}; a {doing} with {wanted} jobs needs "
            f"{wanted + extra}, so at most {allowed} job(s) here. Nothing was changed."
        )
    return wanted
