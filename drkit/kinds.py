"""The registry of store kinds: everything that differs per kind of data store, in one entry.

Each ``stackmodels.config.StoreKind`` has one ``KindEntry`` in ``REGISTRY``:

- ``backup``: the backup path (plan text and handler factory) of each service that can serve the
  kind (``drkit.backup.paths``), whether its backups form chains, and the service of a store the
  stack exports no endpoint for (a Kubernetes store's job reads its own cluster);
- ``restore``: the plan builder ``invoke restore.all`` uses for one store of the kind, the same
  steps as the kind's own restore task (``drkit.ops.restore_*``), or ``NotYet`` with the reason;
  its priority in the order of ``restore.all`` (lowest first) with the reason, as Velero orders a
  restore; whether it is restored only when named;
- ``verify``: the test restore of ``invoke verify`` (``drkit.ops.verify_*``) and, where it
  leaves a scratch target that a killed run can orphan, the cleanup of those;
- ``local``: the servers the local two-region stack starts for the kind, with the continuous
  protection between them (``drkit.local.regions``), what it provisions for a store of the
  kind (``drkit.local.stores``), and a new, empty server of the kind;
- ``drill``: the drill's writer and its rate, the scenario that loses the kind's data, what the
  drill seeds before its soak, and how the whole-stack scenarios restore the kind into a new
  server (``drkit.drill.stores``).

``drkit.handlers``, ``drkit.ops.restore_all``, ``drkit.ops.verify``, ``drkit.local.stack``,
``drkit.local.regions`` and the drill iterate this registry; none of them dispatches on a kind
itself. Every function is named by its import path (``drkit.lazy.Lazy``) and imported when it is
called, so importing the registry imports no kind's modules: the backup CronJob of one store
imports its own kind's handler and nothing of the others, nor the restore, verify, local and
drill modules.
``tests/unit/test_kinds.py`` fails when a kind lacks an entry or an entry lacks a part.
Adding a kind: ``drkit/README.md``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from drkit.backup.paths import (
    KAFKA_PATHS,
    KUBERNETES_PATHS,
    POSTGRES_PATHS,
    REDIS_PATHS,
    TIMESERIES_PATHS,
    BackupPath,
)
from drkit.lazy import Lazy
from stackmodels.config import StoreKind
from stackmodels.outputs import StoreService

if TYPE_CHECKING:
    from drkit.backup.manifest import Manifest
    from drkit.catalog import CatalogEntry
    from drkit.context import OpsContext
    from drkit.drill.stores import Seeded
    from drkit.drill.verify import Verification
    from drkit.drill.world import DrillWorld
    from drkit.drill.writers import StableAddress, Writer
    from drkit.local.environment import LocalEnvironment
    from drkit.local.lag import Lag
    from drkit.local.process import LocalServer
    from drkit.local.regions import LocalRegions, Served
    from drkit.local.stores import LocalServers, Provisioned
    from drkit.ops.plan import Plan
    from drkit.ops.scratch import Holder
    from drkit.ops.selection import Chosen
    from drkit.ops.verbs import Prepared, RestoreEnv
    from drkit.recovery import BackupIndex
    from drkit.storage.objectstore import ObjectStore
    from stackmodels import StackConfig
    from stackmodels.config import Store


@dataclass(frozen=True)
class RestoreOf:
    """One store of a ``restore.all`` run: which backup, and the run's options. Its plan is built
    as its own verb builds it (``drkit.ops.verbs``), resuming when the run resumes."""

    store: str
    backup: str
    force: bool
    source: str
    env: RestoreEnv
    """Where the journals are, and the ``restore.all`` run being resumed: each store's restore
    resumes its own part."""


RestorePlanBuilder = Callable[["OpsContext", RestoreOf], "tuple[Plan, Prepared]"]


@dataclass(frozen=True)
class VerbPlan:
    """One store's plan in ``restore.all``: that of the kind's own restore verb (the module's
    ``VERB``, ``drkit.ops.verbs``), its request made from the store, the backup and the run's
    options; ``force`` is the request field ``--force`` sets."""

    module: str
    force: str = "force"

    def __call__(self, ctx: OpsContext, r: RestoreOf) -> tuple[Plan, Prepared]:
        verb = importlib.import_module(self.module).VERB
        fields = {"store": r.store, "backup": r.backup, "source": r.source, self.force: r.force}
        plan, prepared = verb.build_plan(ctx, verb.request(**fields), r.env)
        return plan, prepared


@dataclass(frozen=True)
class NotYet:
    """A part this build does not have for the kind yet, and why (said where it is missing)."""

    reason: str


TestRestore = Callable[["OpsContext", "Chosen", "Holder", str, str], "tuple[str, dict[str, Any]]"]
"""(ctx, the backup, this run's holder tag, vault or mirror, purpose: ``verify`` or ``dr-test``)
-> (detail, figures); raises when the restored copy differs from the manifest."""
Cleanup = Callable[["OpsContext", str, datetime, bool, bool], list[str]]
"""(ctx, store, now, forced, dry run) -> one line per scratch target a killed run left."""
LocalProvision = Callable[
    ["LocalServers", "StackConfig", str, "Store", "str | None"], "Provisioned"
]
"""(servers, config, store name, its config, database suffix or None) -> endpoint and
credentials, or None when the servers do not run the kind."""
RoleProbe = Callable[[str, str], str]
"""(the server's URL, its region) -> ``primary``, ``standby`` or ``down``, asked of the server;
raises when it does not answer."""
LagReader = Callable[[dict[str, Any], str | None, str], "Lag"]
"""(the local stack's state, the primary's URL or None when it is down, the standby's) -> the
replication lag into the standby, read from the replication itself (unknown while what
replicates, recorded in the state, is not running)."""
Missing = Callable[[], "str | None"]
"""Why this machine cannot run the kind's local servers (what to build first), or None."""
ServedIn = Callable[["LocalRegions", str, str], "Served | None"]
"""(the stack, a region, the store) -> the store's server in that region as the local stack's
state file names it (client URL, port, process); None where the region does not run it."""
StartServers = Callable[["LocalRegions"], None]
"""Start the kind's servers in each region of the local stack and the continuous protection
from prod into dr (run in parallel with the other kinds')."""
FreshServer = Callable[[Path], "LocalServer"]
"""(a directory of its own) -> a new, empty server of the kind, not started yet (the drill's
servers in a region or account that lost its own)."""
Continuity = Callable[["BackupIndex", "Manifest", "dict[str, CatalogEntry]"], None]
"""(the catalog, a backup's manifest, the catalog entries of the backups before it) -> None;
raises naming the gap when the backup does not continue its chain."""
History = Callable[["ObjectStore", "Manifest"], Any]
"""(where the backup is, its manifest) -> what ``backups.info`` shows beside it."""
WriterFactory = Callable[["OpsContext", "StableAddress", str, float], "Writer"]
"""(ctx, the store's stable address, store, rate per second) -> the writer that trades into the
store through its stable name (re-read before every write)."""
WriterPrecondition = Callable[[str], None]
"""(the URL of a server of the kind the drill did not prepare) -> None: what the writer needs
there before its first write (PostgreSQL: the trading schema it inserts into)."""
SeedFunction = Callable[["DrillWorld", str, float], "Seeded"]
"""(the drill's world, the store, its megabytes) -> the figures of what it put into the store
before the soak; run once every writer is made, so a seed may burst its kind's writer."""
PrimaryServer = Callable[["LocalEnvironment"], "LocalServer | None"]
"""(the drill's environment) -> its server of the kind (None: the drill did not start one)."""
RestoreFresh = Callable[
    [
        "DrillWorld",
        "ObjectStore",
        "BackupIndex",
        "CatalogEntry",
        "LocalServer",
        datetime,
    ],
    "tuple[Manifest, Verification]",
]
"""(the drill's world, the object store the backups are read from, its catalog, the backup
chosen, a new started server of the kind (``Local.fresh_server``), the disaster's time) -> the
manifest restored and every write of the kind's writer checked in the new server."""


@dataclass(frozen=True)
class DrillWriter:
    factory: WriterFactory
    rate: float
    """The writer's default rate, writes per second."""
    prepare: WriterPrecondition | None = None
    """Run on a server the drill's seed did not fill (``region-failover``'s own stack); None:
    the writer needs nothing there."""


@dataclass(frozen=True)
class DrillSeed:
    function: SeedFunction
    share: float
    """The kind's part of the drill's ``--size-mb``."""


@dataclass(frozen=True)
class FreshRestore:
    """The kind in the scenarios that lose every server of the drill (``region-loss-from-backups``
    from the mirror, ``account-compromise`` from the isolated vault)."""

    primary: PrimaryServer
    """The server the loss of the primary region takes."""
    restore: RestoreFresh
    """The store restored into a new server of the kind and verified."""


@dataclass(frozen=True)
class DrillHooks:
    scenario: str
    """The drill scenario that loses a store of the kind (``drkit.drill.scenarios.SCENARIOS``)."""
    writer: DrillWriter | None
    """What trades into a store of the kind during the drill; None: nothing writes into it."""
    seed: DrillSeed | NotYet
    """What the drill puts into a store of the kind before the soak."""
    fresh_restore: FreshRestore | NotYet
    """The kind in the scenarios that restore every store into new servers."""


@dataclass(frozen=True)
class Backup:
    paths: Mapping[StoreService, BackupPath]
    """The backup path of each service that can serve the kind (``drkit.backup.paths``)."""
    chains: Continuity | None = None
    """Its backups are incrementals on a full: this checks a backup's place in its chain
    (verify's integrity check); None: every backup stands alone."""
    history: History | None = None
    """What ``backups.info`` shows beside a backup of the kind (Kafka: its topic configuration
    snapshots and their diff); None: nothing more."""
    implicit_service: StoreService | None = None
    """The service of a store the stack exports no endpoint for (a Kubernetes store's job reads
    its own cluster); None: such a store has no backup."""


@dataclass(frozen=True)
class Restore:
    plan: RestorePlanBuilder | NotYet
    """One store's steps in ``restore.all``: those of the kind's own restore task."""
    priority: int
    """``restore.all``'s order, lowest first; stores of one kind restore in parallel."""
    reason: str
    """Why the kind restores at that point of the order."""
    named_only: bool = False
    """Left out of a restore of "everything" unless named with ``--stores``."""


@dataclass(frozen=True)
class Verify:
    test_restore: TestRestore
    scratch_cleanup: Cleanup | None = None
    """Removes the scratch targets a killed test restore left; None: it leaves none behind."""


@dataclass(frozen=True)
class Local:
    servers: StartServers
    served: ServedIn
    """Its server in a region, for the state file (``drkit.local.daemon``)."""
    provision: LocalProvision
    probe: RoleProbe
    """What ``local.status`` asks a server of the kind (``drkit.local.status``)."""
    lag: LagReader | None
    """The lag of its continuous protection into dr; None: nothing replicates it continuously."""
    missing: Missing | None
    """Checked by ``local.up`` before it starts anything; None: the kind needs nothing built."""
    fresh_server: FreshServer
    """A new, empty server of the kind (its harness class in ``drkit.local``)."""


@dataclass(frozen=True)
class KindEntry:
    kind: StoreKind
    backup: Backup
    restore: Restore
    verify: Verify
    local: Local
    drill: DrillHooks | NotYet


def _local(kind: str, server: str, replicated: bool, missing: Missing | None = None) -> Local:
    """The local stack's parts of ``kind``: ``drkit.local.regions.start_<kind>`` and
    ``served_<kind>``, ``drkit.local.stores.<kind>`` and ``drkit.local.status.probe_<kind>``
    (and ``lag_<kind>`` when prod replicates it into dr continuously); ``server``: its harness
    class, ``module:Class`` in ``drkit.local``."""
    return Local(
        Lazy(f"drkit.local.regions:start_{kind}"),
        Lazy(f"drkit.local.regions:served_{kind}"),
        Lazy(f"drkit.local.stores:{kind}"),
        Lazy(f"drkit.local.status:probe_{kind}"),
        Lazy(f"drkit.local.status:lag_{kind}") if replicated else None,
        missing,
        Lazy(f"drkit.local.{server}"),
    )


def _verify(module: str) -> Verify:
    """``test_restore`` and ``cleanup`` of ``drkit.ops.<module>``."""
    return Verify(Lazy(f"drkit.ops.{module}:test_restore"), Lazy(f"drkit.ops.{module}:cleanup"))


def _writer(kind: str, rate: float, prepare: bool = False) -> DrillWriter:
    """``drkit.drill.writers.<kind>_writer`` (and ``<kind>_prepare`` when it needs one)."""
    precondition = Lazy(f"drkit.drill.writers:{kind}_prepare") if prepare else None
    return DrillWriter(Lazy(f"drkit.drill.writers:{kind}_writer"), rate, precondition)


def _seed(kind: str, share: float) -> DrillSeed:
    """``drkit.drill.stores.<kind>_seed``, given ``share`` of the drill's size."""
    return DrillSeed(Lazy(f"drkit.drill.stores:{kind}_seed"), share)


def _fresh_restore(kind: str) -> FreshRestore:
    """``drkit.drill.stores.<kind>_server`` and ``<kind>_restore``."""
    return FreshRestore(
        Lazy(f"drkit.drill.stores:{kind}_server"), Lazy(f"drkit.drill.stores:{kind}_restore")
    )


# --- the registry --------------------------------------------------------------------------------

REGISTRY: dict[StoreKind, KindEntry] = {
    StoreKind.POSTGRES: KindEntry(
        StoreKind.POSTGRES,
        Backup(POSTGRES_PATHS),
        Restore(
            VerbPlan("drkit.ops.restore_postgres"),
            10,
            "the system of record (accounts, orders, strategies): every other store refers to it",
        ),
        Verify(
            Lazy("drkit.ops.verify_postgres:test_restore"),
            scratch_cleanup=Lazy("drkit.ops.scratch_postgres:cleanup"),
        ),
        _local("postgres", "postgres:LocalPostgres", replicated=True),
        DrillHooks(
            "database-corruption",
            _writer("postgres", 20.0, prepare=True),
            _seed("postgres", 0.7),
            _fresh_restore("postgres"),
        ),
    ),
    StoreKind.TIMESERIES: KindEntry(
        StoreKind.TIMESERIES,
        Backup(TIMESERIES_PATHS),
        Restore(
            NotYet("no restore in this build yet"),
            20,
            "historical market data: read by strategies and risk at start, depends on no stream",
        ),
        _verify("verify_timeseries"),
        _local("timeseries", "influxdb:LocalInfluxDB", replicated=False),
        NotYet("the drill runs no InfluxDB"),
    ),
    StoreKind.KAFKA: KindEntry(
        StoreKind.KAFKA,
        Backup(
            KAFKA_PATHS,
            chains=Lazy("drkit.ops.integrity:check_kafka_continuity"),
            history=Lazy("drkit.ops.backups_info:topic_history"),
        ),
        Restore(
            VerbPlan("drkit.ops.restore_kafka"),
            30,
            "event streams: consumers resume against the restored records, so those come first",
        ),
        _verify("verify_kafka"),
        _local("kafka", "kafka:LocalKafka", replicated=True),
        DrillHooks(
            "kafka-data-loss",
            _writer("kafka", 40.0),
            _seed("kafka", 0.15),
            _fresh_restore("kafka"),
        ),
    ),
    StoreKind.REDIS: KindEntry(
        StoreKind.REDIS,
        Backup(REDIS_PATHS),
        Restore(
            VerbPlan("drkit.ops.restore_redis"),
            40,
            "caches: derived data, restored after their sources so no entry is newer than them",
        ),
        _verify("verify_redis"),
        _local("redis", "redis:LocalRedis", replicated=True),
        DrillHooks(
            "redis-loss",
            _writer("redis", 40.0),
            _seed("redis", 0.15),
            _fresh_restore("redis"),
        ),
    ),
    StoreKind.KUBERNETES: KindEntry(
        StoreKind.KUBERNETES,
        Backup(KUBERNETES_PATHS, implicit_service=StoreService.KUBERNETES),
        Restore(
            # The namespace's objects back in priority order; --force replaces existing objects.
            # The data key is decrypted now and wiped when the run is over (``Prepared.close``).
            VerbPlan("drkit.ops.restore_k8s", force="replace"),
            50,
            "application state and workloads last: they start only once their data is in place",
            # Restoring the application's objects over a running cluster is a decision of its own.
            named_only=True,
        ),
        _verify("verify_k8s"),
        _local(
            "kubernetes",
            "kubernetes:LocalKubernetes",
            replicated=False,
            missing=Lazy("drkit.local.kubernetes:missing"),
        ),
        DrillHooks(
            "kubernetes-namespace-loss",
            None,
            NotYet("its scenario seeds the namespace itself, right before it strikes"),
            NotYet(
                "the whole-stack scenarios restore the data stores; the namespace's objects are "
                "restored by kubernetes-namespace-loss"
            ),
        ),
    ),
}


def restore_order() -> list[KindEntry]:
    """The kinds in the order ``restore.all`` restores them."""
    return sorted(REGISTRY.values(), key=lambda e: e.restore.priority)


def restorable_kinds() -> list[StoreKind]:
    """The kinds this build restores (a restore plan, not ``NotYet``), in the registry's order:
    what ``restore.all`` may restore and the monthly DR test restores by default."""
    return [kind for kind, item in REGISTRY.items() if not isinstance(item.restore.plan, NotYet)]


def drill_writers() -> dict[StoreKind, DrillWriter]:
    """The kinds the drill writes into, in the registry's order, and their writers."""
    return {
        kind: item.drill.writer
        for kind, item in REGISTRY.items()
        if isinstance(item.drill, DrillHooks) and item.drill.writer is not None
    }


def drill_seeds() -> dict[StoreKind, DrillSeed]:
    """The kinds the drill seeds before its soak, in the registry's order, and their seeds."""
    return {
        kind: item.drill.seed
        for kind, item in REGISTRY.items()
        if isinstance(item.drill, DrillHooks) and isinstance(item.drill.seed, DrillSeed)
    }


def fresh_restores() -> dict[StoreKind, tuple[FreshServer, FreshRestore]]:
    """The kinds the whole-stack scenarios restore into new servers, in the registry's order:
    each one's new server and its restore."""
    return {
        kind: (item.local.fresh_server, item.drill.fresh_restore)
        for kind, item in REGISTRY.items()
        if isinstance(item.drill, DrillHooks) and isinstance(item.drill.fresh_restore, FreshRestore)
    }


def of_manifest(kind: str) -> KindEntry | None:
    """The entry of a manifest's ``kind`` (a store kind's value), or None for one it is not."""
    return next((item for item in REGISTRY.values() if item.kind.value == kind), None)
