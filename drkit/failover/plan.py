"""The failover plan: a dependency graph of idempotent steps, from the topology.

    fence.primary                          stop the old primary's writers where they answer
    measure.lag                            replication lag into the target just before cut-over
    aurora.promote | elasticache.promote | kafka.clients     in parallel, after the lag
    workloads.<service>                    once the stores that service uses are promoted
    dns.<name>                             once the store it fronts is promoted
    workloads.scale-up                     workloads of no service, once every store is
    postcheck                              the new primary writes; names lead to it

The lag is read after the fence (in a planned switchover the writers are stopped, so what is left
is the true loss bound) and before any promotion. Each service (stack config ``services``) waits
only for its own stores: trading signals on Kafka do not wait for Aurora's promotion. The plan is
eager: the executor starts each step as soon as its own dependencies end. With no services in the
config, the workloads wait for every promotion. A failback puts its rejoin checks before the
fence.
"""

from __future__ import annotations

from typing import Any

from drkit.context import Credentials
from drkit.failover.dns import dns_steps
from drkit.failover.fence import fence_step
from drkit.failover.kinds.aws import PLAN_STEPS
from drkit.failover.lag import read_lags
from drkit.failover.postchecks import postcheck_step
from drkit.failover.request import Runtime
from drkit.failover.topology import Topology
from drkit.failover.workloads import service_steps, workloads_step
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
    promotions: list[Step] = [
        p.build(topology, runtime) for p in PLAN_STEPS.values() if p.planned(topology)
    ]
    workloads = workloads_step(topology, runtime)
    services = service_steps(topology, runtime)
    names = dns_steps(topology, runtime)
    check = postcheck_step(topology, runtime, credentials)
    promoted = store_promotions(topology)
    after_all = [s.id for s in promotions] or [measure.id]

    def after(stores: list[str]) -> list[str]:
        return sorted({promoted[s] for s in stores if s in promoted}) or [measure.id]

    fronted = (
        {name: entry.store for name, entry in outputs.dns.services.items()}
        if outputs.dns is not None
        else {}
    )
    depends: dict[str, list[str]] = {
        fence.id: [g.id for g in gates],
        measure.id: [fence.id],
        **{s.id: [measure.id] for s in promotions},
        **{
            step.id: after(topology.config.services[step.id.removeprefix("workloads.")].stores)
            for step in services
        },
        workloads.id: after_all,
        **{
            n.id: after([fronted[n.id.removeprefix("dns.")]])
            if n.id.removeprefix("dns.") in fronted
            else after_all
            for n in names
        },
        check.id: [*(s.id for s in services), workloads.id, *(n.id for n in names)],
    }
    steps: list[Step] = [*gates, fence, measure, *promotions, *services, workloads, *names, check]
    return Plan.from_dependencies(plan_name(topology), steps, depends, parameters, eager=True)


def store_promotions(topology: Topology) -> dict[str, str]:
    """Store -> the step after which it is usable in the target region (Kafka: the clients'
    bootstrap list points there), by the AWS protection kinds (``drkit.failover.kinds.aws``)."""
    found: dict[str, str] = {}
    for protection in PLAN_STEPS.values():
        store = protection.promotes(topology)
        if store is not None:
            found[store] = protection.step
    return found
