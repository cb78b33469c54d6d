"""The seeds' disaster scenarios, each: strike, restore, verify every write, measure.

RTO is measured from the disaster to the verified, serving store. RPO is the newest write lost
minus the newest write restored; with the schedule compressed ``factor`` times, the same gap on
the real schedule is ``factor`` times longer, and that is what the objective is held against.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from drkit.backup.manifest import Manifest
from drkit.drill.stores import chain_ending_at, check_postgres
from drkit.drill.verify import Verification, verify_kafka, verify_redis
from drkit.drill.world import DrillWorld, delete_topics
from drkit.drill.writers import KafkaEventWriter, PostgresOrderWriter
from drkit.endpoints import postgres_source
from drkit.kinds import fresh_restores
from drkit.kubestate.api import KubeApi
from drkit.kubestate.compare import compare_states, namespace_state
from drkit.kubestate.sealing import decrypt_data_key
from drkit.local.postgres import LocalPostgres
from drkit.local.process import LocalServer
from drkit.recovery import BackupIndex, Selection
from drkit.restore.kafka import restore_kafka
from drkit.restore.kubernetes import Target as KubernetesTarget
from drkit.restore.kubernetes import restore_namespace
from drkit.restore.postgres import restore_postgres
from drkit.restore.redis import local_redis_target, restore_redis
from drkit.seed.kubernetes import seed_namespace, wipe_namespace
from drkit.storage.objectstore import ObjectStore
from stackmodels.config import StoreKind


@dataclass
class StoreOutcome:
    store: str
    data_class: str
    backup_id: str
    recovery_point: str
    verification: Verification
    rpo_seconds: float
    rpo_schedule_seconds: float
    rpo_objective_seconds: float
    rto_objective_seconds: float
    continuous_protection: str | None
    rto_seconds: float | None = None
    """This store's RTO: the scenario's (backups), or its own (region-failover)."""
    rpo_basis: str = "backups"
    """``backups``: the newest backup restored; ``replication``: the continuous protection."""
    newest_kept_before_kill_seconds: float | None = None

    @property
    def rpo_met(self) -> bool | None:
        """Judged against the objective; from backups, None for a store whose RPO the
        continuous protection meets (backups alone cannot: see ``region-failover``)."""
        if self.rpo_basis == "replication":
            return self.rpo_seconds <= self.rpo_objective_seconds
        if self.continuous_protection:
            return None
        return self.rpo_schedule_seconds <= self.rpo_objective_seconds

    @property
    def rto_met(self) -> bool | None:
        if self.rto_seconds is None:
            return None
        return self.rto_seconds <= self.rto_objective_seconds


@dataclass
class ScenarioResult:
    name: str
    description: str
    status: str = "not run"
    disaster_at: str = ""
    verified_at: str = ""
    rto_seconds: float | None = None
    stores: list[StoreOutcome] = field(default_factory=list)
    detail: str = ""
    skew_seconds: float | None = None
    refusals: list[str] = field(default_factory=list)
    """``account-compromise``: each kind of deletion the attacker tried, made and refused."""

    @property
    def rto_met(self) -> bool | None:
        if not self.stores or any(s.rto_met is None for s in self.stores):
            return None
        return all(s.rto_met for s in self.stores)

    @property
    def rpo_met(self) -> bool | None:
        verdicts = [s.rpo_met for s in self.stores if s.rpo_met is not None]
        return all(verdicts) if verdicts else None

    @property
    def verified(self) -> bool:
        return bool(self.stores) and all(s.verification.ok for s in self.stores)

    def as_dict(self) -> dict[str, Any]:
        body = asdict(self)
        body |= {"rto_met": self.rto_met, "rpo_met": self.rpo_met, "verified": self.verified}
        for store, outcome in zip(body["stores"], self.stores, strict=True):
            store["rpo_met"] = outcome.rpo_met
            store["rto_met"] = outcome.rto_met
            store["verification"]["ok"] = outcome.verification.ok
        return body


def outcome(world: DrillWorld, store: str, manifest: Manifest, check: Verification) -> StoreOutcome:
    config = world.config.stores[store]
    data_class = world.config.data_classes[config.data_class]
    rpo = check.rpo_seconds
    if check.newest_restored is None and check.newest_lost is not None:
        # no drill write made it into the backup: the loss window starts at its consistent point
        rpo = max(0.0, (check.newest_lost - manifest.recovery_point).total_seconds())
    return StoreOutcome(
        store=store,
        data_class=config.data_class,
        backup_id=manifest.backup_id,
        recovery_point=manifest.recovery_point.isoformat(),
        verification=check,
        rpo_seconds=round(rpo, 3),
        # from the figure reported, so the two columns agree to the rounding of the second
        rpo_schedule_seconds=round(round(rpo, 3) * world.factor, 1),
        rpo_objective_seconds=data_class.rpo.total_seconds(),
        rto_objective_seconds=data_class.rto.total_seconds(),
        continuous_protection=config.continuous_protection,
    )


def kafka_chain(index: BackupIndex, store: str, at: datetime) -> list[Manifest]:
    """The newest backup at or before ``at`` and the incrementals back to its full backup."""
    return chain_ending_at(index, index.latest(store, at))


# ---- single-store scenarios -----------------------------------------------------------------


def database_corruption(world: DrillWorld) -> ScenarioResult:
    """004's scenario 2: PostgreSQL data is corrupted. Restore beside it, verify, swap in."""
    store = world.store(StoreKind.POSTGRES)
    writer = world.writers[store]
    assert isinstance(writer, PostgresOrderWriter)
    result = ScenarioResult(
        "database-corruption",
        "orders deleted and accounts overwritten in "
        f"{store}; restore the newest backup beside it, verify, swap in",
    )
    source = postgres_source(world.ctx, store)
    with world.phase(store, "disaster"):
        writer.pause()  # the application stops when the corruption is found
        _pause_backups(world, store)
        disaster_at = datetime.now(UTC)
        with psycopg.connect(source.conninfo(), autocommit=True) as connection:
            connection.execute("DELETE FROM orders WHERE id % 7 = 0")
            connection.execute("UPDATE accounts SET tier = 'corrupted' WHERE id % 3 = 0")
    world.say(f"disaster: {store} corrupted (orders deleted, accounts overwritten)")
    vault = world.ctx.vault()
    with world.phase(store, "restore"):
        manifest = world.index(vault).manifest(world.index(vault).latest(store, disaster_at))
        recovered = f"{source.database}_recovered"
        world.env.postgres.create_database(recovered)
        target = postgres_source(world.ctx, store, recovered)
        restore_postgres(manifest, vault, target)
    world.say(f"restored {manifest.backup_id} into {recovered}; verifying every order")
    with world.phase(store, "verify"):
        check = check_postgres(world, target, manifest, writer, disaster_at)
    if check.ok:
        with world.phase(store, "swap in"):
            _swap_database(world.env.postgres, source.database, recovered, writer)
    else:
        world.say(f"{recovered} differs from the backup: not swapped in, left for inspection")
    verified_at = datetime.now(UTC)
    writer.forget(set(check.lost))
    writer.resume()
    _resume_backups(world, store)
    return _finish(result, disaster_at, verified_at, [outcome(world, store, manifest, check)])


def kafka_data_loss(world: DrillWorld) -> ScenarioResult:
    """004's scenario 3: Kafka topics are lost. Recreate them from the backup chain."""
    store = world.store(StoreKind.KAFKA)
    writer = world.writers[store]
    assert isinstance(writer, KafkaEventWriter) and world.env.kafka is not None
    bootstrap = world.env.kafka.bootstrap
    topics = list(world.config.stores[store].topics)
    result = ScenarioResult(
        "kafka-data-loss",
        f"topics {', '.join(topics)} deleted; restore "
        "them from the full + incremental chain with keys, headers, "
        "timestamps and partitions",
    )
    with world.phase(store, "disaster"):
        writer.pause()
        _pause_backups(world, store)
        disaster_at = datetime.now(UTC)
        delete_topics(bootstrap, topics)
    world.say(f"disaster: topics {', '.join(topics)} deleted")
    vault = world.ctx.vault()
    with world.phase(store, "restore"):
        chain = kafka_chain(world.index(vault), store, disaster_at)
        restore_kafka(chain, vault, bootstrap)
    world.say(f"restored a chain of {len(chain)} backups; verifying every record")
    with world.phase(store, "verify"):
        check, found = verify_kafka(
            bootstrap, writer.ledger, chain[-1].consistent_point["end_offsets"], disaster_at
        )
        verified_at = datetime.now(UTC)
    _reindex_kafka(writer, found)
    writer.renew()
    writer.resume()
    _resume_backups(world, store)
    return _finish(result, disaster_at, verified_at, [outcome(world, store, chain[-1], check)])


def redis_loss(world: DrillWorld) -> ScenarioResult:
    """The cache loses its data (node replaced, volume gone). Restore the RDB, restart."""
    store = world.store(StoreKind.REDIS)
    writer = world.writers[store]
    redis_server = world.env.redis
    result = ScenarioResult(
        "redis-loss",
        f"{store} restarted with an empty data volume; restore "
        "the newest RDB into it and check every session key",
    )
    with world.phase(store, "disaster"):
        writer.pause()
        _pause_backups(world, store)
        disaster_at = datetime.now(UTC)
        redis_server.stop()
        redis_server.rdb_path.unlink(missing_ok=True)
        redis_server.start()
    world.say(f"disaster: {store} came back empty")
    vault = world.ctx.vault()
    with world.phase(store, "restore"):
        manifest = world.index(vault).manifest(world.index(vault).latest(store, disaster_at))
        restore_redis(manifest, vault, local_redis_target(redis_server))
    with world.phase(store, "verify"):
        check = verify_redis(redis_server.client(), writer.ledger, disaster_at)
        verified_at = datetime.now(UTC)
    writer.forget(set(check.lost))
    writer.resume()
    _resume_backups(world, store)
    return _finish(result, disaster_at, verified_at, [outcome(world, store, manifest, check)])


def kubernetes_namespace_loss(world: DrillWorld) -> ScenarioResult:
    """004's scenario 1 for the application's state: the namespace's objects are lost. Restore
    them from the newest backup in priority order and compare every object with the original."""
    store = world.store(StoreKind.KUBERNETES)
    cluster = world.env.kubernetes
    assert cluster is not None, "the drill starts a kube-apiserver for this scenario"
    namespace = world.ctx.outputs.k8s_namespace
    result = ScenarioResult(
        "kubernetes-namespace-loss",
        f"every object of namespace {namespace} deleted, its CRD with them; restore the newest "
        "backup in priority order (CRDs, access, config, storage, services, workloads, routes, "
        "custom resources), Secrets decrypted with KMS, and compare every object",
    )
    with cluster.api_client() as client:
        api = KubeApi(client)
        with world.phase(store, "seed"):
            seeded = seed_namespace(api, namespace)
            before = namespace_state(api, namespace)
        backup = world.backup(store)
        world.say(
            f"{namespace}: {len(before)} objects; backup {backup.backup_id} holds "
            f"{sum(backup.counts.values())}, {backup.counts.get('secrets', 0)} Secrets sealed"
        )
        with world.phase(store, "disaster"):
            disaster_at = datetime.now(UTC)
            deleted = wipe_namespace(api, namespace, [seeded.crd])
        world.say(f"disaster: {deleted} objects of {namespace} deleted, CRD {seeded.crd} with them")
        vault = world.ctx.vault()
        with world.phase(store, "restore"):
            manifest = world.index(vault).manifest(world.index(vault).latest(store, disaster_at))
            envelope = manifest.consistent_point["secrets"]
            kms = world.ctx.aws("kms")
            with decrypt_data_key(kms, envelope, world.ctx.outputs.vault_key_arn) as key:
                target = KubernetesTarget(api, namespace, namespace)
                ledger = restore_namespace(manifest, vault, target, key)
        world.say(f"restored {manifest.backup_id}: {ledger.counts()}; comparing every object")
        with world.phase(store, "verify"):
            diff = compare_states(before, namespace_state(api, namespace), namespace, namespace)
            verified_at = datetime.now(UTC)
    failures = ledger.failures()
    check = Verification(
        expected=diff.expected,
        restored=diff.equal,
        missing=len(diff.missing),
        unexpected=len(diff.unexpected),
        mismatched=len(diff.mismatched) + len(failures),
    )
    for failure in failures:
        check.example(f"{failure.label} failed: {failure.detail}")
    if not diff.ok:
        check.example(diff.summary())
    return _finish(result, disaster_at, verified_at, [outcome(world, store, manifest, check)])


# ---- the whole region -----------------------------------------------------------------------


def region_loss(world: DrillWorld) -> ScenarioResult:
    """004's scenario 4: the primary region is gone with its vault, and the continuous protection
    with it (both regions lost). New servers, every store restored from the GCS mirror at one
    common recovery point. The backups' RPO is the schedule's: for the stores whose objective
    is tighter than their schedule (trading signals, market data), only the continuous protection
    meets it, which ``region-failover`` measures."""
    kinds = fresh_restores()
    stores = [world.store(k) for k in kinds]
    result = ScenarioResult(
        REGION_LOSS_FROM_BACKUPS,
        "every server of the primary region lost, and its S3 "
        "vault with them; restore all stores from the GCS mirror into new "
        "servers at one common recovery point",
    )
    env = world.env
    with world.phase("region", "disaster"):
        world.stop_writers()
        for writer in world.writers.values():
            writer.abandon()
        for store in stores:
            _pause_backups(world, store)
        disaster_at = datetime.now(UTC)
        for _new, hooks in kinds.values():
            server = hooks.primary(env)
            assert server is not None, "the drill starts a server of every kind it restores"
            server.stop()
    world.say(f"disaster: the servers of {', '.join(stores)} in the primary region are gone")
    mirror = world.ctx.mirror()
    assert mirror is not None
    index = world.index(mirror)
    servers = fresh_servers(env.workdir / "dr-region")
    try:
        with world.phase("region", "start DR servers"):
            start_servers(servers)
        world.say(f"DR servers up; choosing one recovery point for {', '.join(stores)}")
        _point, chosen, skew = index.common_point(stores, at=disaster_at)
        result.skew_seconds = round(skew.total_seconds(), 3)
        with world.phase("region", "restore + verify all"):
            done = restore_into(world, mirror, index, chosen, servers, disaster_at)
        verified_at = datetime.now(UTC)
        outcomes = [outcome(world, store, *done[store]) for store in stores]
        world.say(f"all stores verified in the DR region (skew {result.skew_seconds}s)")
    finally:
        stop_servers(servers)
    return _finish(result, disaster_at, verified_at, outcomes)


def fresh_servers(workdir: Path) -> dict[StoreKind, LocalServer]:
    """A new, empty server of each kind the whole-stack scenarios restore, each in its own
    directory of ``workdir``, not started yet."""
    return {kind: new(workdir / kind.value) for kind, (new, _hooks) in fresh_restores().items()}


def start_servers(servers: dict[StoreKind, LocalServer]) -> None:
    with ThreadPoolExecutor(len(servers)) as pool:
        for future in [pool.submit(server.start) for server in servers.values()]:
            future.result()


def stop_servers(servers: dict[StoreKind, LocalServer]) -> None:
    for server in reversed(servers.values()):
        server.stop()


def restore_into(
    world: DrillWorld,
    objects: ObjectStore,
    index: BackupIndex,
    chosen: list[Selection],
    servers: dict[StoreKind, LocalServer],
    disaster_at: datetime,
) -> dict[str, tuple[Manifest, Verification]]:
    """Each store of ``servers``' kinds restored from ``objects`` (the backup ``chosen`` for it)
    into its new server and verified, all at once: store -> (manifest, verification)."""
    entries = {selection.store: selection.entry for selection in chosen}
    kinds = fresh_restores()
    with ThreadPoolExecutor(len(servers)) as pool:
        futures = {}
        for kind, server in servers.items():
            store = world.store(kind)
            restore = kinds[kind][1].restore
            futures[store] = pool.submit(
                restore, world, objects, index, entries[store], server, disaster_at
            )
        return {store: future.result() for store, future in futures.items()}


# ---- helpers --------------------------------------------------------------------------------


def _reindex_kafka(writer: KafkaEventWriter, found: dict[int, dict[str, Any]]) -> None:
    """The recreated topics gave every restored record a new offset: follow them."""
    writer.ledger = [w for w in writer.ledger if w.n in found]
    for write in writer.ledger:
        record = found[write.n]
        write.detail |= {"partition": record["partition"], "offset": record["offset"]}


def _swap_database(
    server: LocalPostgres, name: str, recovered: str, writer: PostgresOrderWriter
) -> None:
    """Put the verified copy in place of the corrupted database (the application reconnects)."""
    writer.close()
    with psycopg.connect(server.dsn("postgres"), autocommit=True) as connection:
        for database in (name, recovered):
            connection.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = %s AND pid <> pg_backend_pid()",
                (database,),
            )
        connection.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
        connection.execute(
            sql.SQL("ALTER DATABASE {} RENAME TO {}").format(
                sql.Identifier(recovered), sql.Identifier(name)
            )
        )


def _pause_backups(world: DrillWorld, store: str) -> None:
    if world.scheduler is not None:
        world.scheduler.pause(store)


def _resume_backups(world: DrillWorld, store: str) -> None:
    if world.scheduler is not None:
        world.scheduler.resume(store)


def _finish(
    result: ScenarioResult,
    disaster_at: datetime,
    verified_at: datetime,
    outcomes: list[StoreOutcome],
) -> ScenarioResult:
    result.disaster_at = disaster_at.isoformat()
    result.verified_at = verified_at.isoformat()
    result.rto_seconds = round((verified_at - disaster_at).total_seconds(), 3)
    for store in outcomes:
        store.rto_seconds = result.rto_seconds
    result.stores = outcomes
    result.status = (
        "passed"
        if result.verified and result.rto_met is not False and (result.rpo_met is not False)
        else "failed"
    )
    return result


def account_compromise(world: DrillWorld) -> ScenarioResult:
    """Prod's credentials empty what they can; every store from the isolated vault:
    ``drkit.drill.compromise``."""
    from drkit.drill.compromise import account_compromise as play

    return play(world)


def region_failover(world: DrillWorld) -> ScenarioResult:
    """The prod region killed mid-write and failed over to dr: ``drkit.drill.region_failover``."""
    from drkit.drill.region_failover import region_failover as play

    return play(world)


REGION_FAILOVER = "region-failover"
ACCOUNT_COMPROMISE = "account-compromise"
REGION_LOSS_FROM_BACKUPS = "region-loss-from-backups"

SCENARIOS: dict[str, Callable[[DrillWorld], ScenarioResult]] = {
    "database-corruption": database_corruption,
    "kafka-data-loss": kafka_data_loss,
    "redis-loss": redis_loss,
    "kubernetes-namespace-loss": kubernetes_namespace_loss,
    REGION_FAILOVER: region_failover,
    ACCOUNT_COMPROMISE: account_compromise,
    REGION_LOSS_FROM_BACKUPS: region_loss,
}
"""In the order the drill plays them. region-failover plays on a two-region stack of its own;
the backup-only region loss goes last (it takes every server of the drill's world with it)."""
