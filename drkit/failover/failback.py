"""``invoke failback --to prod``: return to the original region once it is back.

Failback is a planned switchover in the other direction, preceded by gates that wait for
replication toward prod to be re-established and caught up (lag under the RPO):

- Aurora: after ``failover_global_cluster`` AWS re-adds the old primary to the global database as
  a secondary by itself when its region recovers (keeping a snapshot of the writes it had not
  replicated). The gate waits for the prod member to be back and its lag under the RPO.
- ElastiCache: after a ``failover_global_replication_group`` the prod group is already a secondary;
  the gate waits for it and its lag. After a disassociation (the unplanned default) the datastore
  holds only the stale prod group, and AWS does "not support adding an existing cluster as
  secondary": the gate refuses and names the documented way back (README, "Failback").
- Kafka: nothing replicates dr -> prod; the Kafka step reports it (see kafka_clients).

Then the same steps as a failover run with source dr and target prod, planned: fence dr's writers,
switch Aurora and ElastiCache over without data loss, point Kafka clients at prod, scale prod's
workloads, publish 0 to lift the DNS fence, post-check.
"""

from __future__ import annotations

from typing import Any

from drkit.failover import aurora as aurora_steps
from drkit.failover import elasticache as cache_steps
from drkit.failover.lag import read_lags
from drkit.failover.request import Runtime
from drkit.failover.topology import Topology
from drkit.failover.waiting import wait_for
from drkit.ops.plan import FunctionStep, StepContext

DISASSOCIATED_HELP = (
    "{group} is not a member of {datastore}: it was disassociated by an unplanned failover, and "
    "ElastiCache cannot add an existing cluster as a secondary. Way back (README, Failback): "
    "create a global datastore around the live dr group (create_global_replication_group, "
    "PrimaryReplicationGroupId={dr_group}), delete the stale prod group, let `pulumi up -s prod` "
    "re-create it as that datastore's secondary, then run `invoke failback` again"
)


class FailbackRefused(RuntimeError):
    """Replication toward prod is not (re-)established; the message says how to get there."""


def _lag_within_rpo(topology: Topology, runtime: Runtime, store: str) -> tuple[bool, str]:
    for reading in read_lags(topology, runtime, topology.target):
        if reading.store == store:
            return reading.within_rpo is True, reading.describe()
    return False, f"{store}: no lag metric into {topology.target}"


def rejoin_steps(topology: Topology, runtime: Runtime) -> list[FunctionStep]:
    """Each AWS protection kind's rejoin and lag gate (its ``PlanStep.rejoin``), in
    ``PLAN_STEPS`` order; a kind without one (MSK: nothing replicates dr -> prod) adds none."""
    from drkit.failover.kinds.aws import PLAN_STEPS

    steps = [
        step
        for kind in PLAN_STEPS.values()
        if kind.rejoin is not None and (step := kind.rejoin(topology, runtime)) is not None
    ]
    return steps


def aurora_rejoin_step(topology: Topology, runtime: Runtime) -> FunctionStep | None:
    """``aurora-global-database``: AWS re-adds the old primary as a secondary by itself; wait
    for it, then for its lag under the RPO."""
    target, wait = topology.target, topology.request.wait_seconds
    aurora = topology.outputs.aurora
    if aurora is not None and topology.config.aurora is not None:
        store = topology.config.aurora.store
        member = aurora.clusters[target]

        def aurora_back(context: StepContext) -> dict[str, Any]:
            rds = runtime.aws.client("rds", topology.source)
            last: dict[str, str] = {}

            def rejoined() -> str | None:
                cluster = aurora_steps.global_cluster(rds, aurora.global_cluster_id)
                arns = [m["DBClusterArn"] for m in cluster.get("GlobalClusterMembers", [])]
                if member.arn not in arns:
                    last["state"] = f"{member.id} not a member yet"
                    return None
                ok, detail = _lag_within_rpo(topology, runtime, store)
                last["state"] = detail
                return detail if ok else None

            detail = wait_for(
                runtime,
                rejoined,
                wait,
                f"{member.id} to rejoin {aurora.global_cluster_id} within its RPO",
                lambda: last.get("state", "?"),
            )
            context.note(detail)
            return {"rejoined": member.id, "lag": detail}

        return FunctionStep(
            "rejoin.aurora",
            f"wait until {member.id} is back in {aurora.global_cluster_id} as a secondary "
            f"(AWS re-adds it) with lag under the RPO of {store}",
            aurora_back,
            mutates=False,
        )
    return None


def cache_rejoin_step(topology: Topology, runtime: Runtime) -> FunctionStep | None:
    """``elasticache-global-datastore``: the prod group is a secondary again (a failover kept
    the datastore) with lag under the RPO; refused, naming the way back, after a disassociation."""
    target, wait = topology.target, topology.request.wait_seconds
    cache = topology.outputs.elasticache
    if cache is not None and topology.config.elasticache is not None:
        store = topology.config.elasticache.store
        group = cache.replication_groups[target].id
        dr_group = cache.replication_groups[topology.source].id

        def cache_back(context: StepContext) -> dict[str, Any]:
            client = runtime.aws.client("elasticache", topology.source)
            datastore = cache_steps.datastore(client, cache.global_datastore_id)
            if cache_steps.role_of(datastore, dr_group) is None:
                raise FailbackRefused(
                    DISASSOCIATED_HELP.format(
                        group=dr_group, datastore=cache.global_datastore_id, dr_group=dr_group
                    )
                )
            last: dict[str, str] = {}

            def caught_up() -> str | None:
                store_now = cache_steps.datastore(client, cache.global_datastore_id)
                if cache_steps.role_of(store_now, group) != "SECONDARY":
                    last["state"] = f"{group} is {cache_steps.role_of(store_now, group)}"
                    return None
                ok, detail = _lag_within_rpo(topology, runtime, store)
                last["state"] = detail
                return detail if ok else None

            detail = wait_for(
                runtime,
                caught_up,
                wait,
                f"{group} to replicate from {dr_group} within its RPO",
                lambda: last.get("state", "?"),
            )
            context.note(detail)
            return {"secondary": group, "lag": detail}

        return FunctionStep(
            "rejoin.elasticache",
            f"check {group} is a secondary of {cache.global_datastore_id} again with lag "
            f"under the RPO of {store} (refuses if the dr group was disassociated)",
            cache_back,
            mutates=False,
        )
    return None
