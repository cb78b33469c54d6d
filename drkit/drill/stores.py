"""Each kind's part in the drill besides its writer (``drkit.drill.writers``), as its entry in
``drkit.kinds`` names it:

- ``<kind>_server``: the drill environment's server of the kind, which the loss of the region
  takes;
- ``<kind>_seed``: what the drill puts into the store before the soak, and the figures the report
  keeps of it (``seeded``);
- ``<kind>_restore``: the store restored into a new server of the kind (``Local.fresh``) from
  the object store given (``region-loss-from-backups``: the GCS mirror; ``account-compromise``:
  the isolated vault), and every write of its writer checked there.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from drkit.backup.postgres import PostgresSource
from drkit.drill.verify import Verification, verify_kafka, verify_postgres, verify_redis
from drkit.drill.world import DrillWorld, create_topics, seeded_digests
from drkit.drill.writers import PostgresOrderWriter, Writer
from drkit.endpoints import postgres_source
from drkit.local.kafka import LocalKafka
from drkit.local.postgres import LocalPostgres
from drkit.local.redis import LocalRedis
from drkit.restore.kafka import restore_kafka
from drkit.restore.postgres import compare_restored, restore_postgres
from drkit.restore.redis import local_redis_target, restore_redis
from drkit.seed.postgres import TradingDataSize, seed_trading_database

if TYPE_CHECKING:
    from drkit.backup.manifest import Manifest
    from drkit.catalog import CatalogEntry
    from drkit.local.environment import LocalEnvironment
    from drkit.local.process import LocalServer
    from drkit.recovery import BackupIndex
    from drkit.storage.objectstore import ObjectStore


@dataclass(frozen=True)
class Seeded:
    """What a kind's seed put in: ``figures`` go into the report's ``seeded``, ``said`` into the
    drill's line (``74,010 rows``)."""

    figures: dict[str, Any]
    said: str


def chain_ending_at(index: BackupIndex, entry: CatalogEntry) -> list[Manifest]:
    """``entry`` and the backups it is incremental on, back to a full one, oldest first."""
    manifest = index.manifest(entry)
    chain = [manifest]
    while (parent := manifest.consistent_point.get("incremental_from")) is not None:
        manifest = index.manifest(index.by_id(entry.store, str(parent)))
        chain.append(manifest)
    return list(reversed(chain))


def _burst(writer: Writer, megabytes: float, each: int) -> int:
    """As many writes of about ``each`` bytes as fill ``megabytes`` (500 at least), written."""
    count = max(500, int(megabytes * 1024 * 1024 / each))
    writer.burst(count)
    return count


# --- PostgreSQL ----------------------------------------------------------------------------------


def postgres_server(env: LocalEnvironment) -> LocalServer | None:
    return env.postgres


def postgres_seed(world: DrillWorld, store: str, megabytes: float) -> Seeded:
    """The trading dataset; its static tables' digests are what every restore is checked
    against (``world.baseline``)."""
    conninfo = postgres_source(world.ctx, store).conninfo()
    counts = seed_trading_database(conninfo, TradingDataSize.for_megabytes(megabytes))
    world.seeded_order_max = counts["public.orders"]
    world.baseline = seeded_digests(conninfo, world.seeded_order_max)
    return Seeded({"postgres_rows": counts}, f"{sum(counts.values()):,} rows")


def postgres_restore(
    world: DrillWorld,
    objects: ObjectStore,
    index: BackupIndex,
    entry: CatalogEntry,
    server: LocalServer,
    disaster_at: datetime,
) -> tuple[Manifest, Verification]:
    assert isinstance(server, LocalPostgres)
    store = entry.store
    manifest = index.manifest(entry)
    database = postgres_source(world.ctx, store).database
    server.create_database(database)
    target = PostgresSource(server.host, server.port, database, server.user, server.password)
    with world.phase(store, "restore (DR)"):
        restore_postgres(manifest, objects, target)
    return manifest, check_postgres(world, target, manifest, world.writers[store], disaster_at)


def check_postgres(
    world: DrillWorld,
    target: PostgresSource,
    manifest: Manifest,
    writer: Writer,
    disaster_at: datetime,
) -> Verification:
    """Every order against the writers' ledger, then the restored database against what the
    backup recorded in its snapshot (schema fingerprint, content checksums, sequences)."""
    assert isinstance(writer, PostgresOrderWriter)
    conninfo = target.conninfo()
    check = verify_postgres(
        conninfo,
        writer.ledger,
        manifest.consistent_point["txid_snapshot"],
        disaster_at,
        world.baseline,
        seeded_digests(conninfo, world.seeded_order_max),
    )
    difference, _compared = compare_restored(manifest, target)
    if difference is not None:
        check.mismatched += 1
        check.example(f"differs from the backup's snapshot: {difference}")
    return check


# --- Kafka ---------------------------------------------------------------------------------------

KAFKA_RECORD_BYTES = 120
"""About the size of one of the events writer's records."""


def kafka_server(env: LocalEnvironment) -> LocalServer | None:
    return env.kafka


def kafka_seed(world: DrillWorld, store: str, megabytes: float) -> Seeded:
    """The store's topics, and a burst of the events writer's records filling its share."""
    assert world.env.kafka is not None
    create_topics(world.env.kafka.bootstrap, list(world.config.stores[store].topics))
    records = _burst(world.writers[store], megabytes, KAFKA_RECORD_BYTES)
    return Seeded({"kafka_records": records}, f"{records:,} Kafka records")


def kafka_restore(
    world: DrillWorld,
    objects: ObjectStore,
    index: BackupIndex,
    entry: CatalogEntry,
    server: LocalServer,
    disaster_at: datetime,
) -> tuple[Manifest, Verification]:
    """The chain of backups ending at ``entry`` (full + incrementals) into the new broker."""
    assert isinstance(server, LocalKafka)
    store = entry.store
    chain = chain_ending_at(index, entry)
    with world.phase(store, "restore (DR)"):
        restore_kafka(chain, objects, server.bootstrap)
    check, _ = verify_kafka(
        server.bootstrap,
        world.writers[store].ledger,
        chain[-1].consistent_point["end_offsets"],
        disaster_at,
    )
    return chain[-1], check


# --- Redis ---------------------------------------------------------------------------------------

REDIS_KEY_BYTES = 100
"""About the size of one of the sessions writer's keys."""


def redis_server(env: LocalEnvironment) -> LocalServer | None:
    return env.redis


def redis_seed(world: DrillWorld, store: str, megabytes: float) -> Seeded:
    """A burst of the sessions writer's keys filling its share."""
    keys = _burst(world.writers[store], megabytes, REDIS_KEY_BYTES)
    return Seeded({"redis_keys": keys}, f"{keys:,} Redis keys")


def redis_restore(
    world: DrillWorld,
    objects: ObjectStore,
    index: BackupIndex,
    entry: CatalogEntry,
    server: LocalServer,
    disaster_at: datetime,
) -> tuple[Manifest, Verification]:
    assert isinstance(server, LocalRedis)
    store = entry.store
    manifest = index.manifest(entry)
    with world.phase(store, "restore (DR)"):
        restore_redis(manifest, objects, local_redis_target(server))
    return manifest, verify_redis(server.client(), world.writers[store].ledger, disaster_at)
