"""Scale the target region's workloads up to the replica count their label asks for.

With services in the stack config, each service has its own step, ``workloads.<service>``, for
the workloads labelled ``trading-dr/service=<service>``: it runs once the stores that service
uses are promoted (and, for Kafka, the bootstrap ConfigMap points at the target), not once every
store is. A warm service's workloads already run in the target region: the step restarts them
(a pod template annotation naming the run) so they read the new primaries. ``workloads.scale-up``
takes the labelled workloads of no service, after every promotion. Done means ``spec.replicas``
equals the label (and, warm, the template names this run); pods becoming ready is the cluster's
job (the post-check reports it when a controller is there to make them).
"""

from __future__ import annotations

from typing import Any

from drkit.failover import kube
from drkit.failover.request import Runtime
from drkit.failover.topology import Topology
from drkit.ops.plan import FunctionStep, StepContext

CATCH_ALL = "workloads.scale-up"


def workload_step_id(service: str) -> str:
    return f"workloads.{service}"


def workloads_step(topology: Topology, runtime: Runtime) -> FunctionStep:
    """The labelled workloads of no service (all of them when the config names no service)."""
    side = topology.target_kube
    by_service = bool(topology.config.services)
    selector = kube.service_selector(None) if by_service else kube.REPLICAS_LABEL

    def api() -> Any:
        return runtime.kube.api(side.context)

    def done(context: StepContext) -> bool:
        workloads = kube.labelled_workloads(api(), side.namespace, selector=selector)
        return (bool(workloads) or by_service) and not kube.misscaled(
            api(), side.namespace, primary=True, selector=selector
        )

    def apply(context: StepContext) -> dict[str, list[int]]:
        changes = kube.scale_all(api(), side.namespace, primary=True, selector=selector)
        context.note(f"{len(changes)} workloads scaled up")
        return changes

    def verify(context: StepContext) -> None:
        if not kube.labelled_workloads(api(), side.namespace):
            raise RuntimeError(
                f"no Deployment or StatefulSet in {side.namespace} carries {kube.REPLICAS_LABEL}: "
                "nothing would serve in the new primary region"
            )
        wrong = kube.misscaled(api(), side.namespace, primary=True, selector=selector)
        if wrong:
            raise RuntimeError("not scaled: " + "; ".join(wrong))

    which = f"labelled {kube.REPLICAS_LABEL}=<n>" + (
        f" and no {kube.SERVICE_LABEL}" if by_service else ""
    )
    return FunctionStep(
        CATCH_ALL,
        f"scale workloads {which} in {side.context or 'current context'}/{side.namespace} "
        f"({side.region}) to n",
        apply,
        check=done,
        confirm=verify,
    )


def service_steps(topology: Topology, runtime: Runtime) -> list[FunctionStep]:
    return [service_step(topology, runtime, name) for name in topology.config.services]


def service_step(topology: Topology, runtime: Runtime, service: str) -> FunctionStep:
    side = topology.target_kube
    warm = topology.config.services[service].warm
    selector = kube.service_selector(service)

    def api() -> Any:
        return runtime.kube.api(side.context)

    def workloads() -> list[kube.Workload]:
        return kube.labelled_workloads(api(), side.namespace, selector=selector)

    def pending(context: StepContext) -> list[str]:
        wrong = kube.misscaled(api(), side.namespace, primary=True, selector=selector)
        if warm:
            wrong += [
                f"{w.key()} not restarted by this run"
                for w in workloads()
                if w.restarted_by != context.run_id
            ]
        return wrong

    def done(context: StepContext) -> bool:
        return not pending(context)  # none labelled: nothing to do (the preflight warns)

    def apply(context: StepContext) -> dict[str, Any]:
        cold = [w.key() for w in workloads() if w.replicas != w.wanted_when_primary]
        changes = kube.scale_all(api(), side.namespace, primary=True, selector=selector)
        restarted = []
        if warm:
            for workload in workloads():
                if workload.restarted_by != context.run_id:
                    kube.restart(api(), side.namespace, workload, context.run_id)
                    restarted.append(workload.key())
            if cold:
                context.note(f"warm service {service}, but not running: {', '.join(cold)}")
        context.note(f"{len(changes)} scaled up, {len(restarted)} restarted")
        return {"scaled": changes, "restarted": restarted}

    def verify(context: StepContext) -> None:
        wrong = pending(context)
        if wrong:
            raise RuntimeError(f"service {service}: " + "; ".join(wrong))

    stores = ", ".join(topology.config.services[service].stores)
    what = "restart (warm: already running) and scale to n" if warm else "scale to n"
    return FunctionStep(
        workload_step_id(service),
        f"service {service} (uses {stores}): {what} the workloads labelled "
        f"{kube.SERVICE_LABEL}={service}, {kube.REPLICAS_LABEL}=<n> in "
        f"{side.context or 'current context'}/{side.namespace} ({side.region})",
        apply,
        check=done,
        confirm=verify,
    )
