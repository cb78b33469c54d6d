"""Aurora manual snapshot copied to the DR region, against the AWS emulator's RDS and KMS."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from typing import Any

import pytest

from drkit.aurora import AuroraError, SnapshotRequest, plan, snapshot_to_dr
from drkit.local.s3 import LocalAws
from tests.integration.aurora_world import dr_context

pytestmark = pytest.mark.integration

FAST = {"Delay": 1, "MaxAttempts": 10}


def cluster(aws: LocalAws, name: str) -> None:
    rds: Any = aws.client("rds", "us-east-1")
    rds.create_db_cluster(
        DBClusterIdentifier=name,
        Engine="aurora-postgresql",
        MasterUsername="dr",
        MasterUserPassword="not-a-real-password",
        StorageEncrypted=True,
    )


def dr_key(aws: LocalAws) -> str:
    kms: Any = aws.client("kms", "us-west-2")
    return str(kms.create_key(Description="dr replica")["KeyMetadata"]["Arn"])


def test_snapshot_is_taken_and_copied_to_the_dr_region(aws_emulator: LocalAws) -> None:
    cluster(aws_emulator, "aipx-prod-snap")
    request = SnapshotRequest(
        "aipx-prod-snap", "us-east-1", "us-west-2", dr_key(aws_emulator), reason="Pre deploy v2.3"
    )
    now = datetime(2026, 11, 21, 4, 0, tzinfo=UTC)
    assert plan(request, now)[0] == (
        "create cluster snapshot aipx-prod-snap-pre-deploy-v2-3-20261121-040000 of "
        "aipx-prod-snap in us-east-1"
    )
    result = snapshot_to_dr(
        request,
        aws_emulator.client("rds", "us-east-1"),
        aws_emulator.client("rds", "us-west-2"),
        io.StringIO(),
        FAST,
        now,
    )
    assert result.snapshot_arn.startswith("arn:aws:rds:us-east-1:")
    assert result.dr_snapshot_arn.startswith("arn:aws:rds:us-west-2:")
    west: Any = aws_emulator.client("rds", "us-west-2")
    copied = west.describe_db_cluster_snapshots(
        DBClusterSnapshotIdentifier="aipx-prod-snap-pre-deploy-v2-3-20261121-040000-dr"
    )["DBClusterSnapshots"][0]
    assert copied["Status"] == "available"
    assert copied["KmsKeyId"] == request.dr_kms_key_arn


def test_unknown_cluster_is_named(aws_emulator: LocalAws) -> None:
    request = SnapshotRequest("no-such-cluster", "us-east-1", "us-west-2", dr_key(aws_emulator))
    with pytest.raises(AuroraError, match="snapshot of no-such-cluster failed"):
        snapshot_to_dr(
            request,
            aws_emulator.client("rds", "us-east-1"),
            aws_emulator.client("rds", "us-west-2"),
            io.StringIO(),
            FAST,
        )


def test_task_snapshots_the_writer_and_copies_with_the_dr_clusters_key(
    aws_emulator: LocalAws,
) -> None:
    from drkit.ops.aurora_snapshot import AuroraSnapshotRequest, SnapshotPlanError, take_snapshot

    cluster(aws_emulator, "aipx-east-task")
    west: Any = aws_emulator.client("rds", "us-west-2")
    key = dr_key(aws_emulator)
    west.create_db_cluster(
        DBClusterIdentifier="aipx-west-task",
        Engine="aurora-postgresql",
        MasterUsername="dr",
        MasterUserPassword="not-a-real-password",
        StorageEncrypted=True,
        KmsKeyId=key,
    )
    ctx = dr_context(aws_emulator, {"us-east-1": "aipx-east-task", "us-west-2": "aipx-west-task"})
    out = io.StringIO()
    assert take_snapshot(ctx, AuroraSnapshotRequest(reason="monthly", dry_run=True), out) is None
    assert "copy it to us-west-2" in out.getvalue() and key in out.getvalue()
    east: Any = aws_emulator.client("rds", "us-east-1")
    assert not [
        s
        for s in east.describe_db_cluster_snapshots()["DBClusterSnapshots"]
        if s["DBClusterIdentifier"] == "aipx-east-task" and s.get("SnapshotType") == "manual"
    ]  # dry run created nothing
    result = take_snapshot(ctx, AuroraSnapshotRequest(reason="monthly"), io.StringIO())
    assert result is not None and ":us-west-2:" in result.dr_snapshot_arn
    copies = west.describe_db_cluster_snapshots(SnapshotType="manual")["DBClusterSnapshots"]
    copy = next(c for c in copies if c["DBClusterSnapshotArn"] == result.dr_snapshot_arn)
    assert copy["KmsKeyId"] == key  # readable by the dr cluster

    with pytest.raises(SnapshotPlanError, match="pass --kms-key ARN"):
        take_snapshot(
            dr_context(aws_emulator, {"us-east-1": "aipx-east-task"}),
            AuroraSnapshotRequest(),
            io.StringIO(),
        )
