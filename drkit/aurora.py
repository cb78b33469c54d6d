"""Aurora: manual cluster snapshots copied to the DR region (before deployments, monthly), as the
first seed's secondary backup asks. AWS does the copying; we start it, wait, and report.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TextIO

WAIT = {"Delay": 15, "MaxAttempts": 240}
"""Up to an hour per wait: snapshots of large clusters take that long."""


class AuroraError(RuntimeError):
    """An Aurora call failed; the message names the cluster or snapshot."""


@dataclass(frozen=True)
class SnapshotRequest:
    cluster_id: str
    primary_region: str
    dr_region: str
    dr_kms_key_arn: str
    reason: str = "manual"

    def snapshot_id(self, now: datetime) -> str:
        reason = re.sub(r"[^a-z0-9-]", "-", self.reason.lower()).strip("-") or "manual"
        return f"{self.cluster_id}-{reason}-{now.astimezone(UTC):%Y%m%d-%H%M%S}"[:255]


@dataclass(frozen=True)
class SnapshotResult:
    snapshot_arn: str
    dr_snapshot_arn: str
    started_at: datetime
    finished_at: datetime


def plan(request: SnapshotRequest, now: datetime) -> list[str]:
    snapshot = request.snapshot_id(now)
    return [
        f"create cluster snapshot {snapshot} of {request.cluster_id} in {request.primary_region}",
        "wait until it is available",
        f"copy it to {request.dr_region} as {snapshot}-dr, re-encrypted with "
        f"{request.dr_kms_key_arn}, tags copied",
        f"wait until the copy is available in {request.dr_region}",
    ]


def snapshot_to_dr(
    request: SnapshotRequest,
    primary_rds: Any,
    dr_rds: Any,
    out: TextIO,
    wait: dict[str, int] = WAIT,
    now: datetime | None = None,
) -> SnapshotResult:
    started = now or datetime.now(UTC)
    snapshot_id = request.snapshot_id(started)
    out.write(f"creating snapshot {snapshot_id} of {request.cluster_id}\n")
    snapshot = _call(
        primary_rds.create_db_cluster_snapshot,
        f"snapshot of {request.cluster_id}",
        DBClusterIdentifier=request.cluster_id,
        DBClusterSnapshotIdentifier=snapshot_id,
        Tags=[{"Key": "trading-dr:reason", "Value": request.reason}],
    )["DBClusterSnapshot"]
    _call(
        primary_rds.get_waiter("db_cluster_snapshot_available").wait,
        f"waiting for {snapshot_id}",
        DBClusterSnapshotIdentifier=snapshot_id,
        WaiterConfig=wait,
    )
    out.write(f"snapshot {snapshot_id} available; copying to {request.dr_region}\n")
    copy_id = f"{snapshot_id}-dr"
    copy = _call(
        dr_rds.copy_db_cluster_snapshot,
        f"copy of {snapshot_id} to {request.dr_region}",
        SourceDBClusterSnapshotIdentifier=snapshot["DBClusterSnapshotArn"],
        TargetDBClusterSnapshotIdentifier=copy_id,
        KmsKeyId=request.dr_kms_key_arn,
        SourceRegion=request.primary_region,
        CopyTags=True,
    )["DBClusterSnapshot"]
    _call(
        dr_rds.get_waiter("db_cluster_snapshot_available").wait,
        f"waiting for {copy_id} in {request.dr_region}",
        DBClusterSnapshotIdentifier=copy_id,
        WaiterConfig=wait,
    )
    out.write(f"copy {copy_id} available in {request.dr_region}\n")
    return SnapshotResult(
        snapshot_arn=str(snapshot["DBClusterSnapshotArn"]),
        dr_snapshot_arn=str(copy["DBClusterSnapshotArn"]),
        started_at=started,
        finished_at=datetime.now(UTC),
    )


def _call(operation: Any, what: str, **arguments: Any) -> Any:
    try:
        return operation(**arguments)
    except Exception as error:
        raise AuroraError(f"{what} failed: {error}") from error
