"""A test hook that kills this process at a named point, as a crash or ``kill -9`` would.

``DRKIT_KILL_AT=<point>[,<point>...]`` makes ``reached(point)`` send SIGKILL to the process itself:
nothing is flushed, no ``finally`` runs, children are orphaned. Without the variable (always, in
production) ``reached`` returns at once. The reliability tests use it to prove that a restore
killed at any point is finished by ``--resume``.

Points:

- ``before:<step id>``: the executor journaled ``step_started``, the step has not begun;
- ``applied:<step id>``: the step's effect is in place, ``step_finished`` is not journaled yet;
- ``after:<step id>``: ``step_finished`` is journaled;
- ``redis.staged``, ``redis.stopped``, ``redis.old-renamed``, ``redis.new-in-place``,
  ``redis.before-start``: inside a Redis restore's swap (``drkit.restore.redis``);
- ``postgres.streaming``, ``postgres.sent``: ``pg_restore`` has its first chunk, or all of its
  input (``drkit.restore.postgres``).
- ``postgres.pre-data``, ``postgres.table-data``: a format-2 (parallel) restore has loaded its
  pre-data, or its tables' rows (``drkit.restore.postgres_parallel``).
- ``mirrormaker2.stopped``: a failover's MirrorMaker 2 is stopped, its fork not recorded yet
  (``drkit.failover.kinds.mirrormaker2``).
"""

from __future__ import annotations

import os
import signal

ENV = "DRKIT_KILL_AT"


def reached(point: str) -> None:
    """SIGKILL this process if ``point`` is one of those named in ``DRKIT_KILL_AT``."""
    wanted = os.environ.get(ENV)
    if wanted and point in (name.strip() for name in wanted.split(",")):
        os.kill(os.getpid(), signal.SIGKILL)
