"""The AWS protection kinds as steps of the failover plan (``drkit.failover.plan``).

An Aurora global database, an ElastiCache global datastore and an MSK replicator each protect
the store their section of the stack config names; a failover promotes each with one step of its
own module (``aurora_step``, ``cache_step``, ``kafka_step``), planned when the dr stack's outputs
have the section. ``PLAN_STEPS`` is where the plan, its per-service dependencies and the
operation's objective find them, in this order, and where a failback finds each kind's rejoin and
lag gate (``rejoin``, ``drkit.failover.failback``): the hooks ``Protection`` has for the local
kinds, as plan steps.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from drkit.lazy import Lazy
from stackmodels.config import ProtectionKind

if TYPE_CHECKING:
    from drkit.failover.request import Runtime
    from drkit.failover.topology import Topology
    from drkit.ops.plan import FunctionStep
    from stackmodels import StackConfig, StackOutputs


class Section(Protocol):
    @property
    def store(self) -> str: ...


@dataclass(frozen=True)
class PlanStep:
    kind: ProtectionKind
    step: str
    """Its step's id: the store is usable in the target region once that step is done."""
    outputs: Callable[[StackOutputs], object | None]
    """Its section of the stack outputs; the step is planned when the outputs have it."""
    config: Callable[[StackConfig], Section | None]
    """Its section of the stack config, which names the store it protects."""
    build: Callable[[Topology, Runtime], FunctionStep]
    needs_config: bool = False
    """Planned only when the config has its section too (MSK's clients step reads its topics)."""
    rejoin: Callable[[Topology, Runtime], FunctionStep | None] | None = None
    """The failback's hook (``Protection.rejoin`` and the lag gate, for a managed service): the
    step that waits until the old primary replicates from the new one within the RPO, or None
    when the outputs lack its section; None for a kind with nothing replicating back."""

    def store(self, config: StackConfig) -> str | None:
        """The store it protects, or None when the config has no such section."""
        section = self.config(config)
        return None if section is None else section.store

    def planned(self, topology: Topology) -> bool:
        if self.outputs(topology.outputs) is None:
            return False
        return not self.needs_config or self.config(topology.config) is not None

    def promotes(self, topology: Topology) -> str | None:
        """The store its step makes usable in the target region, when the outputs and the
        config both have its section."""
        if self.outputs(topology.outputs) is None:
            return None
        return self.store(topology.config)


PLAN_STEPS: dict[ProtectionKind, PlanStep] = {
    ProtectionKind.AURORA_GLOBAL_DATABASE: PlanStep(
        ProtectionKind.AURORA_GLOBAL_DATABASE,
        "aurora.promote",
        lambda outputs: outputs.aurora,
        lambda config: config.aurora,
        Lazy("drkit.failover.aurora:aurora_step"),
        rejoin=Lazy("drkit.failover.failback:aurora_rejoin_step"),
    ),
    ProtectionKind.ELASTICACHE_GLOBAL_DATASTORE: PlanStep(
        ProtectionKind.ELASTICACHE_GLOBAL_DATASTORE,
        "elasticache.promote",
        lambda outputs: outputs.elasticache,
        lambda config: config.elasticache,
        Lazy("drkit.failover.elasticache:cache_step"),
        rejoin=Lazy("drkit.failover.failback:cache_rejoin_step"),
    ),
    ProtectionKind.MSK_REPLICATOR: PlanStep(
        ProtectionKind.MSK_REPLICATOR,
        "kafka.clients",
        lambda outputs: outputs.msk,
        lambda config: config.msk,
        Lazy("drkit.failover.kafka_clients:kafka_step"),
        needs_config=True,
    ),
}


def protected_stores(config: StackConfig) -> list[str]:
    """The stores an AWS protection kind of the config protects, in ``PLAN_STEPS`` order."""
    return [store for step in PLAN_STEPS.values() if (store := step.store(config)) is not None]
