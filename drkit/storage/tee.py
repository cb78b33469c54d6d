"""One read of the source, written to every destination at once, with its SHA-256 and size.

Each destination gets its own thread and a bounded queue of chunks, so a slow destination slows
the pipeline (back-pressure) instead of growing memory, and a failed one fails the whole write;
except a *detachable* one (the isolated account's vault, issue 22): its failure drops it from this
write, which goes on to the others, and is recorded in ``detached`` with its cause.
"""

from __future__ import annotations

import hashlib
import queue
import threading
from collections.abc import Callable, Collection

from drkit.storage.objectstore import ObjectStoreError, ObjectWriter

_END = b""


class ThreadedWriter:
    """Runs a writer's calls on a thread of its own, with at most ``depth`` chunks waiting."""

    def __init__(self, writer: ObjectWriter, name: str, depth: int = 4) -> None:
        self.name = name
        self._writer = writer
        self._queue: queue.Queue[bytes] = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=f"upload {name}", daemon=True)
        self._thread.start()

    def write(self, chunk: bytes) -> None:
        while self._error is None:
            try:
                self._queue.put(chunk, timeout=0.2)
                return
            except queue.Full:
                continue
        self._raise()

    def finish(self) -> None:
        """Wait for the queued chunks to be written; raise if any write failed."""
        self._queue.put(_END)
        self._thread.join()
        self._raise()

    def commit(self) -> None:
        self._writer.commit()

    @property
    def fingerprint(self) -> str | None:
        return self._writer.fingerprint

    def abort(self) -> None:
        if self._thread.is_alive():
            self._error = self._error or ObjectStoreError(f"{self.name}: aborted")
            self._queue.put(_END)  # the thread drains what is queued without writing it
            self._thread.join()
        self._writer.abort()

    def _run(self) -> None:
        while True:
            chunk = self._queue.get()
            if chunk is _END:
                return
            if self._error is not None:
                continue
            try:
                self._writer.write(chunk)
            except BaseException as error:
                self._error = error

    def _raise(self) -> None:
        if self._error is not None:
            raise ObjectStoreError(f"{self.name}: {self._error}") from self._error


class TeeWriter:
    """Writes every chunk to all destinations and hashes it; commit only when all succeeded.

    ``detachable``: names of destinations whose failure drops them instead of failing the write
    (``detached``: name to cause). Their aborted upload is cleaned up by ``cleanup``, which must
    return within its own bound (the engine's ``bounded``): a dead endpoint must not hold the
    others up."""

    def __init__(
        self,
        writers: dict[str, ObjectWriter],
        detachable: Collection[str] = (),
        cleanup: Callable[[Callable[[], None], str], object] | None = None,
    ) -> None:
        self._writers = [ThreadedWriter(writer, name) for name, writer in writers.items()]
        self._sha256 = hashlib.sha256()
        self.size = 0
        self._detachable = frozenset(detachable)
        self._cleanup = cleanup
        self.detached: dict[str, str] = {}

    def _detach(self, writer: ThreadedWriter, error: BaseException) -> None:
        """Drop a detachable destination that failed; raise for any other."""
        if writer.name not in self._detachable or not isinstance(error, Exception):
            raise error
        self._writers.remove(writer)
        self.detached[writer.name] = " ".join(str(error).split()) or type(error).__name__
        if self._cleanup is not None:
            self._cleanup(writer.abort, f"aborting the upload to {writer.name}")
        else:
            writer.abort()

    @property
    def sha256(self) -> str:
        return self._sha256.hexdigest()

    @property
    def fingerprints(self) -> dict[str, str]:
        """Per destination, what the store says it holds (after ``commit``): the S3 ETag, the
        GCS MD5. A LIST returns them again, so a verify can check a backup without reading it."""
        return {w.name: w.fingerprint for w in self._writers if w.fingerprint}

    def write(self, chunk: bytes) -> None:
        if not chunk:
            return
        self._sha256.update(chunk)
        self.size += len(chunk)
        for writer in list(self._writers):
            try:
                writer.write(chunk)
            except BaseException as error:
                self._detach(writer, error)

    def commit(self) -> None:
        try:
            for writer in list(self._writers):
                try:
                    writer.finish()
                except BaseException as error:
                    self._detach(writer, error)
            for writer in list(self._writers):
                try:
                    writer.commit()
                except BaseException as error:
                    self._detach(writer, error)
        except BaseException:
            self.abort()
            raise

    def abort(self) -> None:
        for writer in self._writers:
            writer.abort()
