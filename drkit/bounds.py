"""How long any one thing may take before a run gives up on it: the kit's I/O bounds, explicit.

Every request to the vault or the mirror, and every stream read from a source, has a finite
bound, so a dead, reset or stalled store ends a run with exit 1 instead of hanging it:

- ``DRKIT_IO_TIMEOUT`` (seconds, default 60): the connect timeout and the read timeout of each
  object-store request (botocore ``connect_timeout``/``read_timeout``, the GCS client's
  ``timeout=(connect, read)``), and the socket timeout of source clients (Redis).
- ``DRKIT_IO_ATTEMPTS`` (default 3): attempts per object-store request, the first included
  (botocore ``total_max_attempts``; the GCS retry deadline is ``attempts`` request timeouts).
- ``DRKIT_STALL_TIMEOUT`` (seconds, default 300): a source stream (``pg_dump``,
  ``redis-cli --rdb``, a Kafka partition read below its end offset) that sends nothing for this
  long is stalled: the run fails. It is also
  ``pg_dump --lock-wait-timeout``: a dump that cannot take its locks is a stall.

A child process is asked to stop (SIGTERM) and killed ``CHILD_GRACE`` seconds later.

A bad value is refused (``ValueError``, exit 2) with the variable's name.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from botocore.config import Config

IO_TIMEOUT = "DRKIT_IO_TIMEOUT"
IO_ATTEMPTS = "DRKIT_IO_ATTEMPTS"
STALL_TIMEOUT = "DRKIT_STALL_TIMEOUT"

CHILD_GRACE = 5.0
"""Seconds between SIGTERM and SIGKILL for a child process that must stop."""
CLEANUP_CAP = 15.0
BACKOFF_CAP = 2.0
"""The longest pause between two attempts of one request (GCS; botocore's standard mode caps
its jittered backoff at 20 s but waits far less for 3 attempts)."""


def _number(environ: Mapping[str, str], name: str, default: float, *, integer: bool) -> float:
    text = environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = int(text) if integer else float(text)
    except ValueError:
        value = -1
    if not (math.isfinite(value) and value > 0) or (integer and value > 20):
        kind = "a whole number from 1 to 20" if integer else "a number of seconds above 0"
        raise ValueError(f"{name}={text!r} is not valid: expected {kind}")
    return value


@dataclass(frozen=True)
class IoBounds:
    timeout: float = 60.0
    attempts: int = 3
    stall: float = 300.0
    grace: float = CHILD_GRACE

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> IoBounds:
        env = os.environ if environ is None else environ
        return cls(
            timeout=_number(env, IO_TIMEOUT, cls.timeout, integer=False),
            attempts=int(_number(env, IO_ATTEMPTS, cls.attempts, integer=True)),
            stall=_number(env, STALL_TIMEOUT, cls.stall, integer=False),
        )

    @property
    def request(self) -> float:
        """The longest one object-store request can take, every attempt and pause included."""
        return self.attempts * 2 * self.timeout + (self.attempts - 1) * BACKOFF_CAP

    @property
    def cleanup(self) -> float:
        """The most a failed run spends on each best-effort cleanup against the store that
        failed (aborting its uploads, releasing its lease): one request, at most 15 s."""
        return min(self.request, CLEANUP_CAP)

    def botocore_config(self, **overrides: Any) -> Config:
        """For every boto3 client the kit makes: explicit timeouts, bounded retries."""
        return Config(
            connect_timeout=self.timeout,
            read_timeout=self.timeout,
            retries={"total_max_attempts": self.attempts, "mode": "standard"},
            **overrides,
        )

    def gcs_timeout(self) -> tuple[float, float]:
        """``timeout=`` for google-cloud-storage calls: (connect, read)."""
        return (self.timeout, self.timeout)

    def gcs_retry(self) -> Any:
        """``retry=`` for google-cloud-storage calls: its default predicate (transient errors,
        resets), with a deadline of ``attempts`` request timeouts instead of 120 s."""
        from google.cloud.storage.retry import DEFAULT_RETRY  # type: ignore[import-untyped]

        return DEFAULT_RETRY.with_timeout(self.attempts * self.timeout).with_delay(
            initial=0.5, maximum=BACKOFF_CAP, multiplier=2.0
        )


def io_bounds() -> IoBounds:
    """The bounds for this process, read from the environment each time (tests change it)."""
    return IoBounds.from_env()
