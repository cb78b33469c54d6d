"""A small InfluxDB 1.x HTTP client: the queries and writes the time-series backup and restore need.

Only the standard library: ``/query`` answers JSON, and with ``chunked=true`` it streams one JSON
document per line, so a whole hour of points is never held at once. Errors come back inside a
200 response as well as with 4xx codes; both raise :class:`InfluxError` with the statement.

Identifiers are always double-quoted (measurement names may hold any character), and the line
protocol helpers escape exactly what InfluxDB's parser unescapes, so a point written back is the
point that was read.
"""

from __future__ import annotations

import base64
import http.client
import json
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

FIELD_TYPES = ("float", "integer", "string", "boolean", "unsigned")
"""What ``SHOW FIELD KEYS`` calls the value types of InfluxDB 1.x fields."""


class InfluxError(RuntimeError):
    """InfluxDB refused a request or a query failed; the message quotes the statement."""


@dataclass(frozen=True)
class Series:
    """One piece of a query result: columns and rows (``time`` first, as nanoseconds)."""

    name: str
    columns: list[str]
    values: list[list[Any]]
    tags: dict[str, str]


@dataclass(frozen=True)
class InfluxEndpoint:
    """Where an InfluxDB 1.x server answers HTTP; credentials go in a header, never a URL."""

    host: str
    port: int
    user: str | None = None
    password: str | None = None
    timeout: float = 60.0
    tls: bool = False
    """HTTPS (Timestream for InfluxDB answers only HTTPS), verified against the system CAs or
    ``tls_ca_file``."""
    tls_ca_file: str | None = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def ping(self) -> str:
        """The server's version (``X-Influxdb-Version``); raises if it does not answer 204."""
        connection = self._connection()
        try:
            connection.request("GET", "/ping", headers=self._headers())
            response = connection.getresponse()
            response.read()
            if response.status != 204:
                raise InfluxError(f"{self.address}: /ping answered {response.status}")
            return response.getheader("X-Influxdb-Version") or "unknown"
        finally:
            connection.close()

    def query(
        self, statement: str, database: str | None = None, *, write: bool = False
    ) -> list[Series]:
        """Run one statement and return its series; ``write`` for statements that change state."""
        params = {"q": statement, "epoch": "ns"} | ({"db": database} if database else {})
        body = self._request("POST" if write else "GET", "/query", params).decode()
        return list(_series_of(json.loads(body), statement))

    def stream(self, statement: str, database: str, chunk_points: int = 10_000) -> Iterator[Series]:
        """Run a SELECT with a chunked response, yielding series pieces as they arrive.

        A response that ends before InfluxDB's last, non-partial piece (the server died, the
        connection dropped) raises: a short export must never pass for a complete one.
        """
        params = {
            "q": statement,
            "db": database,
            "epoch": "ns",
            "chunked": "true",
            "chunk_size": str(chunk_points),
        }
        connection = self._connection()
        try:
            connection.request("GET", "/query?" + urlencode(params), headers=self._headers())
            response = connection.getresponse()
            if response.status != 200:
                raise InfluxError(
                    f"{self.address}: {statement!r} answered {response.status}: "
                    f"{response.read()[:500].decode(errors='replace')}"
                )
            complete = False
            try:
                while line := response.readline():
                    if not line.strip():
                        continue
                    document = json.loads(line)
                    complete = not any(r.get("partial") for r in document.get("results", []))
                    yield from _series_of(document, statement)
            except (http.client.HTTPException, OSError, ValueError) as error:
                raise InfluxError(
                    f"{self.address}: the response to {statement!r} broke off: {error!r}"
                ) from error
            if not complete:
                raise InfluxError(f"{self.address}: the response to {statement!r} is truncated")
        finally:
            connection.close()

    def write(self, database: str, lines: bytes, retention_policy: str | None = None) -> None:
        """Write line protocol with nanosecond timestamps; the whole batch or an error."""
        params = {"db": database, "precision": "ns"}
        if retention_policy:
            params["rp"] = retention_policy
        self._request("POST", "/write", params, lines)

    def databases(self) -> list[str]:
        return [str(row[0]) for s in self.query("SHOW DATABASES") for row in s.values]

    def measurements(self, database: str) -> list[str]:
        return [str(row[0]) for s in self.query("SHOW MEASUREMENTS", database) for row in s.values]

    def default_retention_policy(self, database: str) -> str:
        for series in self.query(f"SHOW RETENTION POLICIES ON {quote_ident(database)}"):
            index = series.columns.index("default")
            for row in series.values:
                if row[index]:
                    return str(row[0])
        raise InfluxError(f"database {database!r} on {self.address} has no default policy")

    def field_types(self, database: str, retention_policy: str, measurement: str) -> dict[str, str]:
        """Field key to type. A key with two types (InfluxDB allows one per shard) raises."""
        source = qualified(database, retention_policy, measurement)
        types: dict[str, str] = {}
        for series in self.query(f"SHOW FIELD KEYS FROM {source}", database):
            for key, kind in series.values:
                if key in types and types[key] != kind:
                    raise InfluxError(
                        f"field {key!r} of measurement {measurement!r} in {database!r} has "
                        f"types {types[key]!r} and {kind!r} in different shards; the JSON API "
                        "cannot tell them apart, so it cannot be backed up faithfully"
                    )
                types[str(key)] = str(kind)
        return types

    def tag_keys(self, database: str, retention_policy: str, measurement: str) -> list[str]:
        source = qualified(database, retention_policy, measurement)
        return [
            str(row[0])
            for series in self.query(f"SHOW TAG KEYS FROM {source}", database)
            for row in series.values
        ]

    def _connection(self) -> http.client.HTTPConnection:
        if self.tls:
            context = ssl.create_default_context(cafile=self.tls_ca_file)
            return http.client.HTTPSConnection(
                self.host, self.port, timeout=self.timeout, context=context
            )
        return http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if self.user is not None:
            token = base64.b64encode(f"{self.user}:{self.password or ''}".encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        return headers

    def _request(
        self, method: str, path: str, params: dict[str, str], body: bytes | None = None
    ) -> bytes:
        connection = self._connection()
        try:
            headers = self._headers()
            if body is not None:
                headers["Content-Type"] = "text/plain; charset=utf-8"
            connection.request(method, f"{path}?{urlencode(params)}", body=body, headers=headers)
            response = connection.getresponse()
            data = response.read()
        except (http.client.HTTPException, OSError) as error:
            raise InfluxError(f"{self.address}: {method} {path} failed: {error!r}") from error
        finally:
            connection.close()
        if response.status >= 300:
            what = params.get("q") or f"{path} to {params.get('db')!r}"
            raise InfluxError(
                f"{self.address}: {what!r} answered {response.status}: "
                f"{data[:500].decode(errors='replace')}"
            )
        return data


def _series_of(document: dict[str, Any], statement: str) -> Iterator[Series]:
    if "error" in document:
        raise InfluxError(f"{statement!r} failed: {document['error']}")
    for result in document.get("results", []):
        if "error" in result:
            raise InfluxError(f"{statement!r} failed: {result['error']}")
        for series in result.get("series", []):
            yield Series(
                name=str(series.get("name", "")),
                columns=list(series.get("columns", [])),
                values=series.get("values", []),
                tags=dict(series.get("tags") or {}),
            )


def quote_ident(name: str) -> str:
    """An InfluxQL identifier, double-quoted so any measurement, tag or field name is safe."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def qualified(database: str, retention_policy: str, measurement: str) -> str:
    return ".".join(quote_ident(part) for part in (database, retention_policy, measurement))


def escape_measurement(name: str) -> str:
    """Line protocol: a measurement escapes commas and spaces."""
    return name.replace(",", "\\,").replace(" ", "\\ ")


def escape_key(text: str) -> str:
    """Line protocol: tag keys, tag values and field keys escape commas, equals signs and spaces."""
    return text.replace(",", "\\,").replace("=", "\\=").replace(" ", "\\ ")


def quote_field_string(value: str) -> str:
    """Line protocol: a string field value, double-quoted with quotes and backslashes escaped."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def field_literal(kind: str, value: object) -> str:
    """A field value as line protocol writes it, keeping its InfluxDB type."""
    if kind == "float":
        return repr(float(value))  # type: ignore[arg-type]
    if kind == "integer":
        return f"{int(value)}i"  # type: ignore[call-overload]
    if kind == "unsigned":
        return f"{int(value)}u"  # type: ignore[call-overload]
    if kind == "boolean":
        return "true" if value else "false"
    if kind == "string":
        return quote_field_string(str(value))
    raise ValueError(f"unknown InfluxDB field type {kind!r}; allowed: {FIELD_TYPES}")
