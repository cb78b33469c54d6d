"""A source tool's output as a stream, with the child process always ended, whatever happens.

``pg_dump`` and ``redis-cli --rdb`` write the backup to stdout. ``ChildStream.chunks`` yields
that output; however the consumer stops (the stream ends, a destination fails and the engine
closes the generator, an exception, Ctrl-C), the child is terminated (SIGTERM, then SIGKILL
after a grace) and reaped. Nothing of it is left blocked on a full pipe holding a snapshot.

A source that sends nothing for ``stall`` seconds fails the stream (``SourceStalled``). Only
time spent waiting for the source counts: while the consumer is busy (a slow upload pushing
back), the child simply blocks on its pipe.

Its stderr is read by a daemon thread into a bounded tail, so it can neither fill its pipe nor
keep the process alive at exit.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import select
import subprocess
import threading
import time
from collections.abc import Iterator, Mapping, Sequence

from drkit.bounds import IoBounds

CHUNK = 1024 * 1024
STDERR_TAIL = 64 * 1024
_F_SETPIPE_SZ = 1031


class SourceStalled(RuntimeError):
    """The source sent nothing for the stall timeout."""


class ChildStream:
    """One child process whose stdout is the data; ``returncode`` and ``stderr`` once ended."""

    def __init__(
        self,
        name: str,
        command: Sequence[str],
        env: Mapping[str, str],
        bounds: IoBounds,
        chunk: int = CHUNK,
        *,
        whole_chunks: bool = True,
    ) -> None:
        """``whole_chunks``: hand over ``chunk`` bytes at a time (fewer calls downstream);
        otherwise whatever has arrived, as soon as it arrives (``read1``)."""
        self.name = name
        self._command = list(command)
        self._env = dict(env)
        self._bounds = bounds
        self._chunk = chunk
        self._whole = whole_chunks
        self._stderr = bytearray()
        self.returncode: int | None = None
        self.pid: int | None = None

    @property
    def stderr(self) -> str:
        """The end of what the child wrote to stderr, on one line."""
        text = bytes(self._stderr).decode(errors="replace")
        return " ".join(text.split())

    def chunks(self) -> Iterator[bytes]:
        process = subprocess.Popen(
            self._command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=self._env,
        )
        self.pid = process.pid
        assert process.stdout is not None and process.stderr is not None
        stdout = process.stdout.fileno()
        with contextlib.suppress(OSError):  # a bigger pipe: fewer wake-ups (Linux; best effort)
            fcntl.fcntl(stdout, _F_SETPIPE_SZ, CHUNK)
        drain = threading.Thread(
            target=self._drain, args=(process.stderr,), name=f"{self.name} stderr", daemon=True
        )
        drain.start()
        try:
            while True:
                block = self._read(stdout)
                if not block:
                    break
                yield block
            try:
                self.returncode = process.wait(timeout=self._bounds.stall)
            except subprocess.TimeoutExpired:
                raise SourceStalled(
                    f"{self.name} closed its output but did not exit within {self._bounds.stall:g}s"
                ) from None
        finally:
            self.returncode = stop(process, self._bounds.grace)
            drain.join(timeout=self._bounds.grace)
            process.stdout.close()

    def _read(self, fd: int) -> bytes:
        """``chunk`` bytes (or what has arrived, without ``whole_chunks``); empty at the end."""
        block = bytearray()
        while len(block) < self._chunk:
            deadline = time.monotonic() + self._bounds.stall
            while True:
                ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
                if ready:
                    break
                if time.monotonic() >= deadline:
                    raise SourceStalled(
                        f"{self.name} sent nothing for {self._bounds.stall:g}s "
                        "(DRKIT_STALL_TIMEOUT): the source is stalled"
                    )
            piece = os.read(fd, self._chunk - len(block))
            if not piece:
                break
            block += piece
            if not self._whole:
                break
        return bytes(block)

    def _drain(self, stream: object) -> None:
        read = getattr(stream, "read1", None)
        assert read is not None
        with contextlib.suppress(OSError, ValueError):
            while piece := read(65536):
                self._stderr += piece
                del self._stderr[:-STDERR_TAIL]


def stop(process: subprocess.Popen[bytes], grace: float) -> int:
    """SIGTERM, wait ``grace``, SIGKILL, reap; the exit status (negative: the signal)."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            process.terminate()
        try:
            return process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
    return process.wait()
