"""``invoke backup.aurora-snapshot``: a manual cluster snapshot of the writer, copied to the other
region (the first seed's secondary backup: before deployments and monthly)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TextIO

from drkit.aurora import SnapshotRequest, SnapshotResult, plan, snapshot_to_dr
from drkit.context import OpsContext


class SnapshotPlanError(ValueError):
    """The stack's outputs cannot say which cluster to snapshot or where to copy it."""


@dataclass(frozen=True)
class AuroraSnapshotRequest:
    reason: str = "manual"
    kms_key: str | None = None
    dry_run: bool = False


def resolve(ctx: OpsContext, request: AuroraSnapshotRequest) -> SnapshotRequest:
    aurora = ctx.outputs.aurora
    if aurora is None:
        raise SnapshotPlanError(f"stack {ctx.stack!r} exports no Aurora global database")
    source_region = aurora.primary_region
    target_region = next(
        (r for r in (ctx.config.region, ctx.config.peer_region) if r != source_region), None
    )
    source = aurora.clusters.get(source_region)
    if source is None or target_region is None:
        raise SnapshotPlanError(
            f"stack {ctx.stack!r} exports no Aurora cluster in the writer's region "
            f"{source_region}; run with --stack dr, whose outputs list both regions"
        )
    key = request.kms_key or _cluster_key(ctx, aurora.clusters.get(target_region), target_region)
    return SnapshotRequest(source.id, source_region, target_region, key, request.reason)


def _cluster_key(ctx: OpsContext, cluster: object, region: str) -> str:
    """The key the other region's cluster encrypts with: the copy is readable there."""
    identifier = getattr(cluster, "id", None)
    if identifier is None:
        raise SnapshotPlanError(
            f"no Aurora cluster in {region} in stack {ctx.stack!r}'s outputs to take the "
            "encryption key from; pass --kms-key ARN"
        )
    described = ctx.aws("rds", region).describe_db_clusters(DBClusterIdentifier=identifier)
    return str(described["DBClusters"][0]["KmsKeyId"])


def take_snapshot(
    ctx: OpsContext, request: AuroraSnapshotRequest, out: TextIO
) -> SnapshotResult | None:
    resolved = resolve(ctx, request)
    for line in plan(resolved, datetime.now(UTC)):
        out.write(f"plan: {line}\n")
    if request.dry_run:
        out.write("dry run: nothing was created\n")
        return None
    result = snapshot_to_dr(
        resolved, ctx.aws("rds", resolved.primary_region), ctx.aws("rds", resolved.dr_region), out
    )
    seconds = (result.finished_at - result.started_at).total_seconds()
    out.write(
        f"snapshot {result.snapshot_arn} copied to {result.dr_snapshot_arn} in {seconds:.0f}s\n"
    )
    return result
