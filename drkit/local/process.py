"""Run a server in the foreground under the harness, on a free loopback port, and stop it.

Servers are never daemonized: a daemon's parent exits, and here its children become zombies that
nobody reaps. Each server is a direct child of the harness, so stopping it is a signal and a wait.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

LOOPBACK = "127.0.0.1"


class ServerStartError(RuntimeError):
    """A local server did not come up; the message names it and quotes the end of its log."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def port_open(port: int, host: str = LOOPBACK) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


def log_tail(path: Path, lines: int = 30) -> str:
    if not path.exists():
        return "(no log written)"
    text = path.read_text(errors="replace").splitlines()
    return "\n".join(text[-lines:])


class ManagedProcess:
    """One server process, started in the foreground with its output sent to a log file."""

    def __init__(
        self,
        name: str,
        command: Sequence[str],
        log_path: Path,
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        user: str | None = None,
    ) -> None:
        self.name = name
        self.command = list(command)
        self.log_path = log_path
        self._env = dict(os.environ if env is None else env)
        self._cwd = cwd
        self._user = user
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    @property
    def user(self) -> str | None:
        return self._user

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        try:
            self._process = subprocess.Popen(
                self.command,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self._env,
                cwd=self._cwd,
                user=self._user,
                start_new_session=True,
            )
        finally:
            log.close()

    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def wait_until(self, ready: Callable[[], bool], timeout: float, what: str) -> None:
        """Poll ``ready`` until it holds; fail fast, with the log, if the process exits."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running():
                raise ServerStartError(
                    f"{self.name} exited before {what} (exit code "
                    f"{None if self._process is None else self._process.returncode}); "
                    f"log {self.log_path}:\n{log_tail(self.log_path)}"
                )
            with contextlib.suppress(Exception):
                if ready():
                    return
            time.sleep(0.1)
        self.stop()
        raise ServerStartError(
            f"{self.name}: {what} did not happen within {timeout:.0f}s; "
            f"log {self.log_path}:\n{log_tail(self.log_path)}"
        )

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM the process group, then SIGKILL what is left; always reaps the child."""
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=timeout)
        self._process = None


class LocalServer:
    """A server of the harness as a context manager: started on enter, closed on exit, and
    closed too when starting fails half way (so a failed start leaves nothing running)."""

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """What exit does: stop (servers with throwaway state also remove it)."""
        self.stop()

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


# --- a recorded process, by pid and start time ------------------------------------------------


def process_start_time(pid: int) -> int | None:
    """The process's start time (clock ticks since boot), or None if it is gone or a zombie."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()
    if fields[0] in ("Z", "X"):
        return None
    return int(fields[19])


def alive(pid: int | None, start_time: int | None) -> bool:
    """True when ``pid`` is the very process recorded (not a reused pid) and not a zombie."""
    if pid is None:
        return False
    now = process_start_time(pid)
    return now is not None and (start_time is None or now == start_time)


def recorded_alive(process: Mapping[str, Any]) -> bool:
    """``alive`` for a process as the local stack's state records it (``pid``, ``start_time``)."""
    return alive(process.get("pid"), process.get("start_time"))
