"""Everything a drill runs against: the local servers, the stack, the writers and the schedule."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import psycopg
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from drkit.backup.manifest import Manifest
from drkit.backups import backup_store
from drkit.context import OpsContext
from drkit.drill.scheduler import CompressedScheduler
from drkit.drill.writers import StableAddress, Writer
from drkit.kinds import drill_writers
from drkit.local.environment import LocalEnvironment
from drkit.local.names import NAMES_FILE, StableName, write_names_file
from drkit.recovery import BackupIndex
from drkit.storage.objectstore import ObjectStore
from stackmodels import StackConfig
from stackmodels.config import StoreKind

SEEDED_TABLES = ("accounts", "strategies", "market_ticks")
KEYS = {"accounts": "id", "strategies": "id", "market_ticks": "symbol, ts", "orders": "id"}


@dataclass(frozen=True)
class Phase:
    """One bar of the timeline chart."""

    lane: str
    name: str
    start: datetime
    end: datetime
    outcome: str = "ok"
    reason: str = ""
    """Why it failed (the exception, as ``failure_reason`` words it); empty when it did not."""
    scenario: str = ""
    """The scenario playing when it ran; empty for the drill's own phases and the backups."""


BACKUP_PHASE = "backup"


def failure_reason(failure: BaseException) -> str:
    """An exception as one record line: its type and message (the scheduler's wording too)."""
    return f"{type(failure).__name__}: {failure}".strip()


@dataclass
class DrillWorld:
    config: StackConfig
    env: LocalEnvironment
    ctx: OpsContext
    factor: float
    out: TextIO
    stores: dict[StoreKind, str] = field(default_factory=dict)
    writers: dict[str, Writer] = field(default_factory=dict)
    scheduler: CompressedScheduler | None = None
    baseline: dict[str, str] = field(default_factory=dict)
    seeded_order_max: int = 0
    phases: list[Phase] = field(default_factory=list)
    started: datetime = field(default_factory=lambda: datetime.now(UTC))
    project_dir: Path | None = None
    """The checkout the drill runs for (its stack config and local overlay)."""
    background: dict[str, Any] = field(default_factory=dict)
    """What a scenario started ahead of its turn (region-failover's two-region stack)."""
    scenario: str = ""
    """The scenario playing now (its phases are drawn under its label), set by the run."""

    def store(self, kind: StoreKind) -> str:
        return self.stores[kind]

    def say(self, message: str) -> None:
        elapsed = (datetime.now(UTC) - self.started).total_seconds()
        self.out.write(f"[{elapsed:6.1f}s] {message}\n")
        self.out.flush()

    @contextmanager
    def phase(self, lane: str, name: str, scenario: str | None = None) -> Iterator[None]:
        start = datetime.now(UTC)
        outcome, reason = "ok", ""
        try:
            yield
        except BaseException as failure:
            outcome, reason = "failed", failure_reason(failure)
            raise
        finally:
            self.phases.append(
                Phase(
                    lane,
                    name,
                    start,
                    datetime.now(UTC),
                    outcome,
                    reason,
                    self.scenario if scenario is None else scenario,
                )
            )

    def backup(self, store: str) -> Manifest:
        # the schedule's, from its own threads, whichever scenario plays
        with self.phase(f"backup {store}", BACKUP_PHASE, scenario=""):
            return backup_store(self.ctx, store, [])

    def index(self, objects: ObjectStore) -> BackupIndex:
        return BackupIndex(self.config, objects)

    def stop_writers(self) -> None:
        for writer in self.writers.values():
            writer.pause()


def create_topics(bootstrap: str, topics: list[str], partitions: int = 3) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 3})
    existing = admin.list_topics(timeout=10).topics
    wanted = [
        NewTopic(t, num_partitions=partitions, replication_factor=1)
        for t in topics
        if t not in existing
    ]
    for future in admin.create_topics(wanted).values() if wanted else []:
        future.result()


def delete_topics(bootstrap: str, topics: list[str], timeout: float = 60.0) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 3})
    for future in admin.delete_topics(topics, operation_timeout=30).values():
        future.result()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not set(topics) & set(admin.list_topics(timeout=10).topics):
            return
        time.sleep(0.2)
    raise TimeoutError(f"topics {topics} still listed {timeout:.0f}s after deletion")


def seeded_digests(conninfo: str, seeded_order_max: int) -> dict[str, str]:
    """Digests of what seeding wrote: the static tables, and the orders placed before the drill."""
    queries = {table: f"SELECT * FROM {table}" for table in SEEDED_TABLES}
    queries["orders (seeded)"] = f"SELECT * FROM orders WHERE id <= {int(seeded_order_max)}"
    keys = {**KEYS, "orders (seeded)": "id"}
    digests = {}
    with psycopg.connect(conninfo) as connection:
        for name, query in queries.items():
            row = connection.execute(
                f"SELECT coalesce(md5(string_agg(t::text, E'\\n' ORDER BY {keys[name]})), '')"
                f" FROM ({query}) t"
            ).fetchone()
            digests[name] = str(row[0]) if row else ""
    return digests


def write_stable_names(world: DrillWorld) -> Path:
    """The drill's own name map (``<workdir>/names.json``), the name of each store the drill
    writes into leading to the drill's server, as ``local.up`` writes the stack's: the writers
    connect through it."""
    names = {}
    for kind in drill_writers():
        store = world.store(kind)
        endpoint = world.ctx.outputs.stores[store]
        names[store] = StableName(
            region="prod", host=endpoint.host, port=endpoint.port, database=endpoint.database
        )
    path = world.env.workdir / NAMES_FILE
    write_names_file(path, names)
    return path


def stable_address(world: DrillWorld, names_file: Path, store: str) -> StableAddress:
    """A store's stable name in ``names_file``, with the credentials the stack holds for it
    (none for a store whose clients need none)."""
    endpoint = world.ctx.outputs.stores[store]
    credentials = world.ctx.credentials.stores.get(store)
    return StableAddress(
        names_file,
        store,
        user=credentials.user if credentials else "",
        password=credentials.password if credentials else "",
        tls=bool(endpoint.tls),
    )


def make_writers(
    world: DrillWorld, rates: dict[StoreKind, float], names_file: Path | None = None
) -> None:
    """A writer for each store of a kind the drill writes into (``drkit.kinds``), each reaching
    its store through the stable name in ``names_file`` (the drill's own map when None),
    re-read before every write."""
    names_file = names_file or write_stable_names(world)
    for kind, writer in drill_writers().items():
        store = world.store(kind)
        address = stable_address(world, names_file, store)
        world.writers[store] = writer.factory(world.ctx, address, store, rates[kind])
