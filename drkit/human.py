"""What a person reads: times and tables, one way for every command.

- ``iso_time``: ISO 8601 to the second with its offset (``2026-11-21T04:15:00+00:00``), never
  microseconds and never a naive time.
- ``table``: columns as wide as their widest cell (never cut), right-aligned where asked.

Durations are ``stackmodels.durations.format_duration`` (``30s``, ``15m``, ``1h``), sizes
``drkit.progress.human_bytes``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

GAP = "  "


def iso_time(moment: datetime | str | None, missing: str = "-") -> str:
    """``moment`` to the second with its offset; a naive time is taken as UTC; a string is
    parsed first (ISO 8601) and returned as given when it is not a time."""
    if moment is None or moment == "":
        return missing
    if isinstance(moment, str):
        try:
            parsed = datetime.fromisoformat(moment)
        except ValueError:
            return moment
    else:
        parsed = moment
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.isoformat(timespec="seconds")


def table(
    header: Sequence[str],
    rows: Iterable[Sequence[object]],
    right: Iterable[int] = (),
    rule: bool = True,
) -> list[str]:
    """The lines of a table: ``header``, a rule under it (``rule``), then ``rows``; each column
    as wide as its widest cell, columns ``right`` (by index) right-aligned, the last column not
    padded. A row shorter than the header leaves the rest blank."""
    cells = [[str(cell) for cell in row] for row in rows]
    width = len(header)
    for row in cells:
        if len(row) > width:
            raise ValueError(f"table row {row!r} has more cells than the header {list(header)!r}")
    body = [list(header), *[row + [""] * (width - len(row)) for row in cells]]
    widths = [max(len(row[i]) for row in body) for i in range(width)]
    aligned = set(right)

    def line(row: Sequence[str]) -> str:
        parts = [
            cell.rjust(widths[i]) if i in aligned else cell.ljust(widths[i])
            for i, cell in enumerate(row)
        ]
        return GAP.join(parts).rstrip()

    lines = [line(body[0])]
    if rule:
        lines.append(GAP.join("-" * w for w in widths))
    lines += [line(row) for row in body[1:]]
    return lines
