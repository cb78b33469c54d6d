"""What ``invoke local.status`` reports: each store's role, pid, URL and lag, read live.

The state file says what ``local.up`` started; this module asks each server what it is now:
PostgreSQL ``pg_is_in_recovery()``, Redis ``INFO replication``, a Kafka broker's metadata, the
API server's ``/readyz``. A process that is gone (or a zombie), or a server that does not answer,
is ``down``. Lag comes from ``drkit.local.lag``, the functions the failover reuses.
"""

from __future__ import annotations

import contextlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg

from drkit.human import table
from drkit.kinds import REGISTRY
from drkit.local import lag as lag_readers
from drkit.local.lag import Lag
from drkit.local.process import alive
from stackmodels.config import StoreKind

PROBE_TIMEOUT_S = 3


def _process_of(state: dict[str, Any], name: str, region: str) -> dict[str, Any]:
    for process in state.get("processes", []):
        if process["name"] == name and process["region"] == region:
            return dict(process)
    return {}


def probe_role(kind: str, url: str, region: str) -> str:
    """``primary``, ``standby`` or ``down``, from the server itself: the kind's ``local.probe``
    (``drkit.kinds``, the ``probe_<kind>`` functions below); a server that does not answer is
    ``down``."""
    try:
        return str(REGISTRY[StoreKind(kind)].local.probe(url, region))
    except Exception:
        return "down"


def probe_postgres(url: str, region: str) -> str:
    with psycopg.connect(url, connect_timeout=PROBE_TIMEOUT_S) as connection:
        row = connection.execute("SELECT pg_is_in_recovery()").fetchone()
    return "standby" if row and row[0] else "primary"


def probe_redis(url: str, region: str) -> str:
    with lag_readers._redis_client(url) as client:
        role = client.info("replication").get("role")
    return "standby" if role == "slave" else "primary"


def probe_kafka(url: str, region: str) -> str:
    from drkit.local.kafka import broker_answers

    if not broker_answers(url, timeout=PROBE_TIMEOUT_S):
        return "down"
    return _by_region(region)


def probe_timeseries(url: str, region: str) -> str:
    from drkit.influx import InfluxEndpoint

    parts = urlsplit(url)
    InfluxEndpoint(parts.hostname or "127.0.0.1", parts.port or 8086, timeout=2.0).ping()
    return _by_region(region)


def probe_kubernetes(url: str, region: str) -> str:
    from drkit.local.process import port_open

    if not port_open(int(url.rpartition(":")[2])):
        return "down"
    return _by_region(region)


def _by_region(region: str) -> str:
    """A server that does not say its role (no replication of its own): prod's is primary."""
    return "primary" if region == "prod" else "standby"


def lag_postgres(state: dict[str, Any], primary_url: str | None, standby_url: str) -> Lag:
    return lag_readers.postgres_lag(primary_url, standby_url)


def lag_redis(state: dict[str, Any], primary_url: str | None, standby_url: str) -> Lag:
    return lag_readers.redis_lag(primary_url, standby_url)


def lag_kafka(state: dict[str, Any], primary_url: str | None, standby_url: str) -> Lag:
    """MirrorMaker 2's lag, unknown while its process is not running."""
    return lag_readers.mirrored_lag(state, primary_url, standby_url)


def stack_status(state: dict[str, Any]) -> dict[str, Any]:
    """The JSON ``local.status --json`` prints (see the README)."""
    regions: dict[str, Any] = {}
    entries: list[tuple[str, str, dict[str, Any]]] = []
    for region, stores in state["stores"].items():
        for name, store in stores.items():
            entries.append((region, name, store))

    def one(item: tuple[str, str, dict[str, Any]]) -> dict[str, Any]:
        region, _, store = item
        process = _process_of(state, store["process"], region)
        running = alive(process.get("pid"), process.get("start_time"))
        role = probe_role(store["kind"], store["url"], region) if running else "down"
        return {"role": role, "pid": process.get("pid") if running else None, "url": store["url"]}

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(one, entries))
    for (region, name, store), result in zip(entries, results, strict=True):
        result["kind"] = store["kind"]
        result["protection"] = store.get("protection")
        result["lag_seconds"] = None
        regions.setdefault(region, {"stores": {}})["stores"][name] = result
    _add_lag(state, regions)
    processes = [
        {
            "name": p["name"],
            "pid": p["pid"],
            "region": p["region"],
            "alive": alive(p["pid"], p.get("start_time")),
        }
        for p in state.get("processes", [])
    ]
    supervisor = state.get("supervisor", {})
    return {
        "status": state.get("status"),
        "regions": regions,
        "processes": processes,
        "supervisor": {
            "pid": supervisor.get("pid"),
            "alive": alive(supervisor.get("pid"), supervisor.get("start_time")),
        },
        "outputs": state.get("outputs", {}),
        "names": state.get("names"),
        "kubeconfig": state.get("kubeconfig"),
    }


def _add_lag(state: dict[str, Any], regions: dict[str, Any]) -> None:
    """Each replicated store's lag, measured once, on both its primary and standby entries."""
    if "dr" not in regions or "prod" not in regions:
        return
    for name, standby in regions["dr"]["stores"].items():
        primary = regions["prod"]["stores"].get(name)
        lag = REGISTRY[StoreKind(state["stores"]["dr"][name]["kind"])].local.lag
        if lag is None or standby["role"] == "down":
            continue
        primary_url = primary["url"] if primary and primary["role"] != "down" else None
        reading = None
        with contextlib.suppress(Exception):
            reading = lag(state, primary_url, standby["url"])
        if reading is None:
            continue
        standby["lag_seconds"] = reading.seconds
        standby["lag"] = reading.as_json()
        if primary is not None:
            primary["lag_seconds"] = reading.seconds


def _replicated(kind: str) -> bool:
    """Its kind has a lag to show (``local.lag``): prod replicates it into dr continuously."""
    return REGISTRY[StoreKind(kind)].local.lag is not None


def describe(report: dict[str, Any]) -> str:
    """The human form of ``stack_status``."""
    if not report.get("regions"):
        return f"no local stack is up (status: {report.get('status')}); invoke local.up\n"
    lines = []
    for region, body in report["regions"].items():
        lines.append(f"{region}:")
        rows = []
        for name, store in body["stores"].items():
            lag = store["lag_seconds"]
            replicated = store.get("protection") is not None and _replicated(store["kind"])
            shown = "-" if not replicated else ("unknown" if lag is None else f"{lag:.2f}s")
            note = store.get("lag", {}).get("note", "") if store.get("lag") else ""
            rows.append((name, store["role"], store["pid"] or "-", shown, store["url"], note))
        header = ("store", "role", "pid", "lag", "url", "note")
        lines += ["  " + line for line in table(header, rows, right=(2, 3))]
    down = [p for p in report["processes"] if not p["alive"]]
    lines.append(
        f"{len(report['processes'])} processes, {len(down)} down"
        + (": " + ", ".join(f"{p['name']} ({p['region']})" for p in down) if down else "")
    )
    return "\n".join(lines) + "\n"


__all__ = ["Path", "describe", "probe_role", "stack_status"]
