"""The I/O bounds from the environment, and a child's stream: stalls fail, children end."""

from __future__ import annotations

import os
import sys

import pytest

from drkit.backup.child import ChildStream, SourceStalled
from drkit.bounds import CLEANUP_CAP, IoBounds

pytestmark = pytest.mark.unit

FAST = IoBounds(timeout=1.0, attempts=1, stall=0.5, grace=1.0)


def test_defaults_and_overrides_from_the_environment() -> None:
    assert IoBounds.from_env({}) == IoBounds(timeout=60.0, attempts=3, stall=300.0)
    bounds = IoBounds.from_env(
        {"DRKIT_IO_TIMEOUT": "2.5", "DRKIT_IO_ATTEMPTS": "4", "DRKIT_STALL_TIMEOUT": "30"}
    )
    assert (bounds.timeout, bounds.attempts, bounds.stall) == (2.5, 4, 30.0)
    assert bounds.request == 4 * 2 * 2.5 + 3 * 2.0
    assert bounds.cleanup == min(bounds.request, CLEANUP_CAP)
    config = bounds.botocore_config()
    assert (config.connect_timeout, config.read_timeout) == (2.5, 2.5)
    assert config.retries == {"total_max_attempts": 4, "mode": "standard"}
    assert bounds.gcs_timeout() == (2.5, 2.5)
    assert bounds.gcs_retry().timeout == 10.0


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DRKIT_IO_TIMEOUT", "0"),
        ("DRKIT_IO_TIMEOUT", "soon"),
        ("DRKIT_IO_TIMEOUT", "inf"),
        ("DRKIT_IO_ATTEMPTS", "2.5"),
        ("DRKIT_IO_ATTEMPTS", "0"),
        ("DRKIT_STALL_TIMEOUT", "-1"),
    ],
)
def test_a_bad_value_is_refused_naming_the_variable(name: str, value: str) -> None:
    with pytest.raises(ValueError, match=f"{name}='{value}' is not valid"):
        IoBounds.from_env({name: value})


def python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def test_the_output_streams_and_the_exit_is_recorded() -> None:
    child = ChildStream(
        "writer", python("import sys; sys.stdout.write('x' * 300000); sys.exit(3)"), {}, FAST
    )
    assert b"".join(child.chunks()) == b"x" * 300000
    assert child.returncode == 3


def test_a_silent_source_fails_as_stalled_and_is_ended() -> None:
    child = ChildStream("sleeper", python("import time; time.sleep(60)"), {}, FAST)
    with pytest.raises(SourceStalled, match=r"sleeper sent nothing for 0\.5s"):
        list(child.chunks())
    assert child.pid is not None and not _alive(child.pid)
    assert child.returncode is not None and child.returncode < 0  # ended by a signal


def test_a_consumer_that_stops_early_ends_the_child_even_if_it_ignores_sigterm() -> None:
    code = (
        "import signal, sys\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "sys.stderr.write('starting\\n'); sys.stderr.flush()\n"
        "while True: sys.stdout.write('y' * 65536)\n"
    )
    child = ChildStream("stubborn", python(code), {}, FAST, chunk=65536)
    stream = child.chunks()
    assert next(stream) == b"y" * 65536
    stream.close()  # what the engine does when a destination fails
    assert child.pid is not None and not _alive(child.pid)
    assert child.returncode == -9  # SIGTERM ignored: killed after the grace
    assert "starting" in child.stderr


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
