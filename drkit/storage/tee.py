"""One read of the source, written to every destination at once, with its SHA-256 and size.

Each destination gets its own thread and a bounded queue of chunks, so a slow destination slows
the pipeline (back-pressure) instead of growing memory, and a failed one fails the whole write.
"""

from __future__ import annotations

import hashlib
import queue
import threading

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
    """Writes every chunk to all destinations and hashes it; commit only when all succeeded."""

    def __init__(self, writers: dict[str, ObjectWriter]) -> None:
        self._writers = [ThreadedWriter(writer, name) for name, writer in writers.items()]
        self._sha256 = hashlib.sha256()
        self.size = 0

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
        for writer in self._writers:
            writer.write(chunk)

    def commit(self) -> None:
        try:
            for writer in self._writers:
                writer.finish()
            for writer in self._writers:
                writer.commit()
        except BaseException:
            self.abort()
            raise

    def abort(self) -> None:
        for writer in self._writers:
            writer.abort()
