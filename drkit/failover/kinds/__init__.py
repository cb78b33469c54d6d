"""Protection kinds as plugins: what a failover does to one store, by what protects it.

The failover plan keeps its shape (preflight, fence, lag at cut-over, promotions in parallel,
clients and names, post-check); what differs per store comes from its protection kind
(``stackmodels.config.ProtectionKind``), one module per kind, behind ``Protection``:

- ``health``: preflight, the target answers as a standby (or is already promoted), the source
  answers or not;
- ``lag``: the replication lag into the target, read from the replication itself, ``None`` when it
  cannot be read (never 0);
- ``fence``: stop the old primary taking writes, where it answers;
- ``promoted`` / ``promote``: make the target writable; ``promoted`` is the idempotence check (a
  promotion that already happened, say before a killed run, is never repeated);
- ``repoint``: move what the clients read besides the stable name (a ConfigMap), if anything;
- ``postcheck``: the new primary accepts a write, reached through the stable name.

Adding a kind is one module here plus one line in ``REGISTRY``. Every ``ProtectionKind`` is in
exactly one of ``REGISTRY``, ``PLAN_STEPS`` and ``NOTHING_TO_PROMOTE``
(``tests/unit/test_kinds.py`` checks): the AWS kinds (``aurora-global-database``,
``elasticache-global-datastore``, ``msk-replicator``) are still steps of ``drkit.failover.plan``,
registered with their step in ``PLAN_STEPS`` (``aws.py``; issue 17 moves them behind this
interface later), and ``gitops`` has nothing to promote.
"""

from __future__ import annotations

from drkit.failover.kinds.aws import PLAN_STEPS, PlanStep
from drkit.failover.kinds.base import Endpoint, Health, Protection, StoreSides
from drkit.failover.kinds.mirrormaker2 import MirrorMaker2
from drkit.failover.kinds.postgres_streaming import PostgresStreaming
from drkit.failover.kinds.redis_replica import RedisReplica
from stackmodels.config import ProtectionKind

REGISTRY: dict[ProtectionKind, type[Protection]] = {
    ProtectionKind.POSTGRES_STREAMING: PostgresStreaming,
    ProtectionKind.REDIS_REPLICA: RedisReplica,
    ProtectionKind.MIRRORMAKER2: MirrorMaker2,
}
"""The kinds with a local module, used by the local two-region stack (``drkit.failover.local``)."""
NOTHING_TO_PROMOTE = frozenset({ProtectionKind.GITOPS})
"""Both clusters already run the same manifests: a failover moves no data for these."""


def protection_for(sides: StoreSides) -> Protection:
    if sides.kind not in REGISTRY:
        raise ValueError(
            f"store {sides.store!r}: no failover module for protection kind {sides.kind.value!r}; "
            f"known: {', '.join(sorted(k.value for k in REGISTRY))}"
        )
    return REGISTRY[sides.kind](sides)


__all__ = [
    "NOTHING_TO_PROMOTE",
    "PLAN_STEPS",
    "REGISTRY",
    "Endpoint",
    "Health",
    "PlanStep",
    "Protection",
    "StoreSides",
    "protection_for",
]
