"""Scale the target region's workloads up to the replica count their label asks for.

It runs after the stores are promoted and the Kafka ConfigMap points at the target cluster, so the
applications start against writable stores with the right bootstrap list. Done means every
labelled Deployment and StatefulSet has ``spec.replicas`` equal to its label (pods becoming ready
is the cluster's job; the post-check reports it when a controller is there to make them).
"""

from __future__ import annotations

from typing import Any

from drkit.failover import kube
from drkit.failover.request import Runtime
from drkit.failover.topology import Topology
from drkit.ops.plan import FunctionStep, StepContext


def workloads_step(topology: Topology, runtime: Runtime) -> FunctionStep:
    side = topology.target_kube

    def api() -> Any:
        return runtime.kube.api(side.context)

    def done(context: StepContext) -> bool:
        workloads = kube.labelled_workloads(api(), side.namespace)
        return bool(workloads) and not kube.misscaled(api(), side.namespace, primary=True)

    def apply(context: StepContext) -> dict[str, list[int]]:
        changes = kube.scale_all(api(), side.namespace, primary=True)
        context.note(f"{len(changes)} workloads scaled up")
        return changes

    def verify(context: StepContext) -> None:
        if not kube.labelled_workloads(api(), side.namespace):
            raise RuntimeError(
                f"no Deployment or StatefulSet in {side.namespace} carries {kube.REPLICAS_LABEL}: "
                "nothing would serve in the new primary region"
            )
        wrong = kube.misscaled(api(), side.namespace, primary=True)
        if wrong:
            raise RuntimeError("not scaled: " + "; ".join(wrong))

    return FunctionStep(
        "workloads.scale-up",
        f"scale workloads labelled {kube.REPLICAS_LABEL}=<n> in "
        f"{side.context or 'current context'}/{side.namespace} ({side.region}) to n",
        apply,
        check=done,
        confirm=verify,
    )
