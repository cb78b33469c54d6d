"""Structured logs: one JSON object per line in the CronJobs, plain lines at a terminal."""

from __future__ import annotations

import io
import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """``{"ts", "level", "logger", "message", ...extra}``; extra fields come from ``extra=``."""

    def format(self, record: logging.LogRecord) -> str:
        body: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        body |= {k: v for k, v in vars(record).items() if k not in _STANDARD}
        if record.exc_info:
            body["exception"] = self.formatException(record.exc_info)
        return json.dumps(body, default=str)


def configure_logging(json_lines: bool, level: int = logging.INFO) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter() if json_lines else logging.Formatter("%(levelname)s %(name)s: %(message)s")
    )
    root = logging.getLogger("drkit")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


class JsonLines(io.TextIOBase, TextIO):
    """A text stream whose every line goes out as one JSON object, formatted as a record of
    ``logger`` with ``fields``: what a run prints (its plan, result, progress) keeps the
    CronJob's log one JSON object per line, like its log records."""

    def __init__(self, stream: TextIO, logger: str, **fields: Any) -> None:
        super().__init__()
        self._stream = stream
        self._logger = logger
        self._fields = fields
        self._formatter = JsonFormatter()
        self._pending = ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        *lines, self._pending = (self._pending + text).split("\n")
        for line in lines:
            self._emit(line)
        return len(text)

    def flush(self) -> None:
        self._stream.flush()

    def close(self) -> None:
        if self.closed:
            return
        self._emit(self._pending)
        self._pending = ""
        self.flush()
        super().close()

    def _emit(self, line: str) -> None:
        message = line.strip("\r").strip()
        if message:
            record = logging.LogRecord(self._logger, logging.INFO, "", 0, message, None, None)
            record.__dict__.update(self._fields)
            self._stream.write(self._formatter.format(record) + "\n")
