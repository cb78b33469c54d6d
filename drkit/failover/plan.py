"""The failover plan: layers of steps, each idempotent, from the topology.

    1  fence.primary                       stop the old primary's writers where they answer
    2  measure.lag                         replication lag into the target just before cut-over
    3  aurora.promote | elasticache.promote | kafka.clients     in parallel
    4  workloads.scale-up | dns.<service>...                    in parallel
    5  postcheck                           the new primary writes; names lead to it

The lag is read after the fence (in a planned switchover the writers are stopped, so what is left
is the true loss bound) and before any promotion. Workloads start only once every store is
promoted and Kafka clients point at the target; DNS moves once the stores it fronts are writable.
A failback puts its rejoin checks before the fence.
"""

from __future__ import annotations

from typing import Any

from drkit.context import Credentials
from drkit.failover.aurora import aurora_step
from drkit.failover.dns import dns_steps
from drkit.failover.elasticache import cache_step
from drkit.failover.fence import fence_step
from drkit.failover.kafka_clients import kafka_step
from drkit.failover.lag import read_lags
from drkit.failover.postchecks import postcheck_step
from drkit.failover.request import Runtime
from drkit.failover.topology import Topology
from drkit.failover.workloads import workloads_step
from drkit.ops.plan import FunctionStep, Plan, Step, StepContext

MEASURE = "measure.lag"
POSTCHECK = "postcheck"


def plan_name(topology: Topology) -> str:
    if topology.failback:
        return f"failback to prod ({topology.target})"
    mode = "planned switchover" if topology.planned else "unplanned"
    return f"failover to dr ({topology.target}, {mode})"


def measure_step(topology: Topology, runtime: Runtime) -> FunctionStep:
    def apply(context: StepContext) -> dict[str, Any]:
        readings = read_lags(topology, runtime, topology.target)
        for reading in readings:
            context.note(reading.describe())
        return {"readings": [r.as_dict() for r in readings]}

    return FunctionStep(
        MEASURE,
        f"read the replication lag into {topology.target} at cut-over (CloudWatch there): the "
        "data-loss window",
        apply,
        mutates=False,
    )


def build_plan(
    topology: Topology,
    runtime: Runtime,
    credentials: Credentials,
    parameters: dict[str, Any],
    before: list[FunctionStep] | None = None,
) -> Plan:
    outputs = topology.outputs
    gates = list(before or [])
    fence = fence_step(topology, runtime)
    measure = measure_step(topology, runtime)
    promotions: list[Step] = []
    if outputs.aurora is not None:
        promotions.append(aurora_step(topology, runtime))
    if outputs.elasticache is not None:
        promotions.append(cache_step(topology, runtime))
    if outputs.msk is not None and topology.config.msk is not None:
        promotions.append(kafka_step(topology, runtime))
    workloads = workloads_step(topology, runtime)
    names = dns_steps(topology, runtime)
    check = postcheck_step(topology, runtime, credentials)
    stores = [s.id for s in promotions if s.id != "kafka.clients"]
    depends: dict[str, list[str]] = {
        fence.id: [g.id for g in gates],
        measure.id: [fence.id],
        **{s.id: [measure.id] for s in promotions},
        workloads.id: [s.id for s in promotions] or [measure.id],
        **{n.id: stores or [measure.id] for n in names},
        check.id: [workloads.id, *(n.id for n in names)],
    }
    steps: list[Step] = [*gates, fence, measure, *promotions, workloads, *names, check]
    return Plan.from_dependencies(plan_name(topology), steps, depends, parameters)
