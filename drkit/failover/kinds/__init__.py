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

Adding a kind is one module here plus one line in ``REGISTRY``. The AWS kinds
(``aurora-global-database``, ``elasticache-global-datastore``, ``msk-replicator``) are still the
steps of ``drkit.failover.plan`` (issue 17 moves them behind this interface later).
"""

from __future__ import annotations

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


def protection_for(sides: StoreSides) -> Protection:
    if sides.kind not in REGISTRY:
        raise ValueError(
            f"store {sides.store!r}: no failover module for protection kind {sides.kind.value!r}; "
            f"known: {', '.join(sorted(k.value for k in REGISTRY))}"
        )
    return REGISTRY[sides.kind](sides)


__all__ = ["REGISTRY", "Endpoint", "Health", "Protection", "StoreSides", "protection_for"]
