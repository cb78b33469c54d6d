"""Aurora global database: make the target region's cluster the writer.

Unplanned: ``failover_global_cluster(..., AllowDataLoss=True)``, the managed failover meant for a
regional outage: the promotion needs only the target region, and Aurora re-adds the old primary
as a secondary once its region recovers (after a snapshot of its divergent writes). Planned:
``switchover_global_cluster``, which synchronizes first (no data loss) and demotes the old writer.

Done means ``describe_global_clusters`` (called in the target region) shows the target member as
writer, the global cluster ``available`` and no failover in progress. A failover already under
way toward the target is waited for, never requested twice.
"""

from __future__ import annotations

from typing import Any

from drkit.failover.request import Runtime
from drkit.failover.topology import Topology
from drkit.failover.waiting import wait_for
from drkit.ops.plan import FunctionStep, StepContext


def global_cluster(rds: Any, global_id: str) -> dict[str, Any]:
    clusters = rds.describe_global_clusters(GlobalClusterIdentifier=global_id)["GlobalClusters"]
    if not clusters:
        raise RuntimeError(f"global cluster {global_id!r} not found")
    return dict(clusters[0])


def writer_arn(cluster: dict[str, Any]) -> str | None:
    for member in cluster.get("GlobalClusterMembers", []):
        if member.get("IsWriter"):
            return str(member["DBClusterArn"])
    return None


def settled_with_writer(cluster: dict[str, Any], arn: str) -> bool:
    return (
        writer_arn(cluster) == arn
        and cluster.get("Status") == "available"
        and not cluster.get("FailoverState")
    )


def aurora_step(topology: Topology, runtime: Runtime) -> FunctionStep:
    aurora = topology.outputs.aurora
    assert aurora is not None
    target, planned = topology.target, topology.planned
    global_id = aurora.global_cluster_id
    arn = aurora.clusters[target].arn
    seen: dict[str, Any] = {}

    def rds() -> Any:
        return runtime.aws.client("rds", target)

    def describe() -> dict[str, Any]:
        cluster = global_cluster(rds(), global_id)
        seen["last"] = cluster
        return cluster

    def done(context: StepContext) -> bool:
        return settled_with_writer(describe(), arn)

    def apply(context: StepContext) -> dict[str, Any]:
        cluster = describe()
        state = cluster.get("FailoverState") or {}
        if state and state.get("ToDbClusterArn") == arn:
            context.note(f"a {state.get('Status', 'failover')} toward {target} is under way")
        elif planned:
            rds().switchover_global_cluster(
                GlobalClusterIdentifier=global_id, TargetDbClusterIdentifier=arn
            )
        else:
            rds().failover_global_cluster(
                GlobalClusterIdentifier=global_id, TargetDbClusterIdentifier=arn, AllowDataLoss=True
            )
        start = runtime.monotonic()
        wait_for(
            runtime,
            lambda: True if settled_with_writer(describe(), arn) else None,
            topology.request.wait_seconds,
            f"{arn} to be the writer of {global_id}",
            lambda: _summary(seen.get("last", {})),
        )
        return {"writer": arn, "waited_seconds": round(runtime.monotonic() - start, 1)}

    def verify(context: StepContext) -> None:
        cluster = describe()
        if not settled_with_writer(cluster, arn):
            raise RuntimeError(f"{global_id}: {_summary(cluster)}; expected writer {arn}")
        context.note(f"{aurora.clusters[target].id} writes")

    call = "switchover_global_cluster" if planned else "failover_global_cluster(AllowDataLoss=True)"
    return FunctionStep(
        "aurora.promote",
        f"{call} of {global_id} to {aurora.clusters[target].id} ({target}); wait until it writes",
        apply,
        check=done,
        confirm=verify,
    )


def _summary(cluster: dict[str, Any]) -> str:
    state = cluster.get("FailoverState") or {}
    failover = f", {state.get('Status')}" if state else ""
    return f"status {cluster.get('Status', '?')}{failover}, writer {writer_arn(cluster)}"
