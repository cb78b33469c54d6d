"""Fence writes to the old primary, where it still answers.

The writers are the applications: the source cluster's labelled workloads are scaled to 0, so
nothing keeps writing to the old Aurora writer, the old ElastiCache primary or the old MSK cluster
once the DR side is promoted. The same step asks the source region's RDS API about the old writer,
which tells the timeline whether the primary region was reachable at all. (Aurora itself demotes
the old primary when it comes back after a global failover; ElastiCache and Kafka have no such
fence, hence the writers.)

Unplanned, the primary region is assumed dark: every call here uses the fast-fail clients (3 s to
connect, no retries) and "unreachable" is done with a note. Planned, the primary must answer:
a switchover that cannot stop the writers first would lose data, so any failure fails the step.
"""

from __future__ import annotations

from typing import Any

import urllib3.exceptions
from botocore.exceptions import BotoCoreError, ClientError
from kubernetes.client.rest import ApiException  # type: ignore[import-untyped]
from kubernetes.config import ConfigException  # type: ignore[import-untyped]

from drkit.failover import kube
from drkit.failover.request import Runtime
from drkit.failover.topology import Topology
from drkit.ops.plan import FunctionStep, StepContext

UNREACHABLE = (
    BotoCoreError,
    urllib3.exceptions.HTTPError,
    ConnectionError,
    TimeoutError,
    OSError,
)


def fence_step(topology: Topology, runtime: Runtime) -> FunctionStep:
    source, planned = topology.source, topology.planned
    kube_side = topology.source_kube
    aurora = topology.outputs.aurora
    cluster_id = aurora.clusters[source].id if aurora is not None else None

    def probe_aws(context: StepContext) -> str:
        try:
            rds = runtime.aws.client("rds", source, fast_fail=True)
            if cluster_id is None:
                rds.describe_db_clusters(MaxRecords=20)
                return "reachable"
            cluster = rds.describe_db_clusters(DBClusterIdentifier=cluster_id)["DBClusters"][0]
            return f"reachable: {cluster_id} is {cluster.get('Status', '?')}"
        except (*UNREACHABLE, ClientError) as error:
            if planned:
                raise RuntimeError(
                    f"planned switchover needs the primary region {source}: {error}"
                ) from error
            context.note(f"{source} AWS unreachable ({type(error).__name__})")
            return f"unreachable: {error}"

    def stop_writers(context: StepContext) -> Any:
        if kube_side is None:
            if planned:
                raise RuntimeError(
                    "planned switchover needs to stop the writers, but the source stack's config "
                    "file (its kubernetes context) is not here"
                )
            context.note("no source cluster config: writers not fenced")
            return "skipped: the source stack's config file is not here"
        try:
            api = runtime.kube.api(kube_side.context, fast_fail=True)
            changes = kube.scale_all(api, kube_side.namespace, primary=False, fast_fail=True)
        except (*UNREACHABLE, ApiException, ConfigException) as error:
            if planned:
                raise RuntimeError(
                    f"planned switchover needs to stop the writers in {kube_side.context!r}: "
                    f"{error}"
                ) from error
            context.note(f"{source} Kubernetes unreachable ({type(error).__name__})")
            return f"unreachable: {error}"
        context.note(f"{len(changes)} workloads scaled to 0 in {source}")
        return changes

    def apply(context: StepContext) -> dict[str, Any]:
        return {"region": source, "aws": probe_aws(context), "writers": stop_writers(context)}

    where = f"{kube_side.context or 'current context'}/{kube_side.namespace}" if kube_side else "-"
    mode = "must answer: planned" if planned else "3 s timeout; unplanned: unreachable is fine"
    return FunctionStep(
        "fence.primary",
        f"fence the old primary in {source}: scale workloads labelled "
        f"{kube.REPLICAS_LABEL} in {where} to 0; ask RDS there about {cluster_id or 'clusters'} "
        f"({mode})",
        apply,
    )
