"""Historical market data in InfluxDB: quote ticks per symbol and venue, and strategy signals.

Deterministic (arithmetic on the point's index, no randomness), so a test can compute what any
window must hold. The data exercises what a time-series backup must keep: every field type
(``bid``/``ask`` float, ``volume`` integer, ``halted`` boolean, ``action``/``reason`` string),
points that lack a field (quote-only ticks have no ``volume``), nanosecond timestamps that are
not on a round boundary, and tag and string values that need escaping (``ES=F``, quotes, commas).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

from drkit.backup.timeseries import TimeWindow
from drkit.influx import (
    InfluxEndpoint,
    escape_key,
    escape_measurement,
    field_literal,
    quote_ident,
)

SYMBOLS = ("AAPL", "MSFT", "NVDA", "ES=F", "EURUSD", "BTC-USD")
VENUES = ("XNAS", "XNYS", "ARCX")
STRATEGIES = ("mean-revert", "momentum")
ACTIONS = ("buy", "sell", "hold")
WRITE_BATCH = 5_000
SECOND = 1_000_000_000


def point_line(
    measurement: str, tags: dict[str, str], fields: dict[str, tuple[str, object]], time_ns: int
) -> str:
    """One line of line protocol; ``fields`` maps a key to (InfluxDB type, value)."""
    tag_text = "".join(f",{escape_key(k)}={escape_key(v)}" for k, v in sorted(tags.items()) if v)
    field_text = ",".join(f"{escape_key(k)}={field_literal(t, v)}" for k, (t, v) in fields.items())
    return f"{escape_measurement(measurement)}{tag_text} {field_text} {time_ns}"


def tick_lines(
    window: TimeWindow, points_per_second: int, symbols: Sequence[str] = SYMBOLS
) -> Iterator[str]:
    """``points_per_second`` ticks per symbol, in time order, all inside ``[start, end)``.

    Symbol ``s`` ticks ``s * 7`` ns after each step, so timestamps carry nanoseconds and two
    symbols never share one.
    """
    step = SECOND // points_per_second
    count = (window.end_ns - window.start_ns) // step
    for k in range(count + 1):
        for s, symbol in enumerate(symbols):
            time_ns = window.start_ns + k * step + s * 7
            if time_ns >= window.end_ns:
                continue
            bid = round(50 + 25 * s + ((k * 37 + s * 11) % 2000) * 0.01, 2)
            fields: dict[str, tuple[str, object]] = {
                "bid": ("float", bid),
                "ask": ("float", round(bid + 0.01 * (1 + k % 3), 2)),
                "halted": ("boolean", (k + s) % 600 == 0),
            }
            if k % 97 != 0:  # a quote-only update carries no volume
                fields["volume"] = ("integer", 100 * (1 + (k * 13 + s) % 50))
            venue = VENUES[(k + s) % len(VENUES)]
            yield point_line("ticks", {"symbol": symbol, "venue": venue}, fields, time_ns)


def signal_lines(
    window: TimeWindow, every_seconds: int, symbols: Sequence[str] = SYMBOLS
) -> Iterator[str]:
    """A strategy signal per symbol every ``every_seconds``, with string fields to escape."""
    step = every_seconds * SECOND
    first = -(-window.start_ns // step) * step  # the first multiple of the step in the window
    for n, time_ns in enumerate(range(first, window.end_ns, step)):
        for s, symbol in enumerate(symbols):
            score = round(((n * 31 + s * 17) % 400 - 200) / 100, 2)
            action = ACTIONS[(n + s) % len(ACTIONS)]
            fields: dict[str, tuple[str, object]] = {
                "action": ("string", action),
                "score": ("float", score),
                "reason": ("string", f'z={score:+.2f}, "spread" {n % 5} ticks \\ {symbol}'),
            }
            tags = {"symbol": symbol, "strategy": STRATEGIES[(n + s) % len(STRATEGIES)]}
            yield point_line("signals", tags, fields, time_ns + s)


def write_lines(
    endpoint: InfluxEndpoint, database: str, lines: Iterable[str], batch: int = WRITE_BATCH
) -> int:
    """Write line protocol in batches; returns the number of lines written."""
    pending: list[str] = []
    total = 0
    for line in lines:
        pending.append(line)
        if len(pending) >= batch:
            endpoint.write(database, "\n".join(pending).encode())
            total += len(pending)
            pending.clear()
    if pending:
        endpoint.write(database, "\n".join(pending).encode())
        total += len(pending)
    return total


def seed_market_data(
    endpoint: InfluxEndpoint,
    database: str,
    window: TimeWindow,
    *,
    points_per_second: int = 1,
    signal_every_seconds: int = 10,
    symbols: Sequence[str] = SYMBOLS,
) -> dict[str, int]:
    """Create ``database`` if needed and fill ``window``; returns points per measurement."""
    endpoint.query(f"CREATE DATABASE {quote_ident(database)}", write=True)
    return {
        "ticks": write_lines(endpoint, database, tick_lines(window, points_per_second, symbols)),
        "signals": write_lines(
            endpoint, database, signal_lines(window, signal_every_seconds, symbols)
        ),
    }
