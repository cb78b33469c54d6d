"""Bounded polling: every wait in a failover has a deadline and says what it waited for."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from drkit.failover.request import Runtime

T = TypeVar("T")


class WaitTimeout(TimeoutError):
    """A promotion or switch did not complete in time; the step can be resumed."""


def wait_for(
    runtime: Runtime,
    probe: Callable[[], T | None],
    seconds: float,
    what: str,
    last: Callable[[], str] | None = None,
) -> T:
    """Call ``probe`` until it returns something other than None, at most ``seconds`` long."""
    deadline = runtime.monotonic() + seconds
    while True:
        found = probe()
        if found is not None:
            return found
        if runtime.monotonic() >= deadline:
            state = f" (last seen: {last()})" if last is not None else ""
            raise WaitTimeout(f"gave up after {seconds:.0f}s waiting for {what}{state}")
        runtime.sleep(runtime.poll_seconds)
