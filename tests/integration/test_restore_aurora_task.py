"""``invoke restore.aurora`` against the AWS emulator's RDS: point in time and snapshot restores
into a new cluster with the source's settings and a writer, a dry run that creates nothing, bad
input refused before anything changes, the journal, and an interrupted run resumed.

moto cannot produce two states the refusals need (see ``aurora_world``): a ``LatestRestorableTime``
behind the present and a snapshot that is not ``available``; those two cases use a Stubber for the
one describe call, the rest of the world stays on moto.
"""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from drkit.aurora import SnapshotRequest, snapshot_to_dr
from drkit.local.s3 import LocalAws
from drkit.ops.executor import RunReport, Status
from drkit.ops.restore_aurora import RestoreAuroraRequest, build_plan
from drkit.ops.run import RunOptions, run_plan
from drkit.ops.selection import TargetNotEmptyError
from drkit.ops.verbs import RestoreEnv
from drkit.recovery import RecoveryError
from drkit.restore.aurora import TAG_REASON, TAG_RESTORE_POINT, TAG_RESTORED_FROM, TAG_RUN
from drkit.targets import TargetRefused
from tests.integration.aurora_world import (
    ROOT,
    AuroraSource,
    FailOnce,
    StubOnly,
    audit_bucket,
    aurora_source,
    cluster_ids,
    dr_context,
    dr_outputs,
)

pytestmark = pytest.mark.integration

FAST = {"wait_delay": 0, "wait_attempts": 5}
"""No real waiting: moto reports a new cluster ``available`` at its first describe."""


def rds(aws: LocalAws, region: str = "us-east-1") -> Any:
    return aws.client("rds", region)


def cluster(aws: LocalAws, name: str, region: str = "us-east-1") -> dict[str, Any]:
    return dict(rds(aws, region).describe_db_clusters(DBClusterIdentifier=name)["DBClusters"][0])


def tags(resource: dict[str, Any]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in resource.get("TagList", [])}


def still(described: dict[str, Any]) -> dict[str, Any]:
    """A cluster as described, without the one field moto moves on every call."""
    return {k: v for k, v in described.items() if k != "LatestRestorableTime"}


def source_world(aws: LocalAws, prefix: str = "aipx-db") -> tuple[Any, AuroraSource]:
    source = aurora_source(aws, prefix)
    audit_bucket(aws)
    return dr_context(aws, {"us-east-1": source.id}), source


def run(
    ctx: Any,
    project: Path,
    request: RestoreAuroraRequest,
    resume: str | None = None,
    **options: Any,
) -> tuple[RunReport, str]:
    out = io.StringIO()
    plan, prepared = build_plan(ctx, request, RestoreEnv(project, out, resume))
    report = run_plan(
        ctx,
        plan,
        RunOptions(resume=resume, **options),
        project,
        out,
        "restore-aurora",
        prepared.figures,
    )
    return report, out.getvalue()


def test_point_in_time_restore_into_a_new_cluster_with_the_source_settings(
    aws_emulator: LocalAws, tmp_path: Path
) -> None:
    ctx, source = source_world(aws_emulator)
    before = cluster(aws_emulator, source.id)
    at = before["EarliestRestorableTime"] + timedelta(milliseconds=1)
    target = f"{source.id}-pitr"
    request = RestoreAuroraRequest(at=at.isoformat(), target_cluster=target, reason="drill", **FAST)

    report, out = run(ctx, tmp_path, request, yes=True)

    assert report.status is Status.SUCCEEDED, out
    restored = cluster(aws_emulator, target)
    assert restored["Status"] == "available"
    assert restored["DBSubnetGroup"] == source.subnet_group
    assert [g["VpcSecurityGroupId"] for g in restored["VpcSecurityGroups"]] == [
        source.security_group
    ]
    assert restored["KmsKeyId"] == source.kms_key and restored["StorageEncrypted"]
    assert restored["Port"] == 5433
    assert restored["IAMDatabaseAuthenticationEnabled"] and restored["DeletionProtection"]
    assert restored["BackupRetentionPeriod"] == 7
    assert tags(restored) == {
        "team": "trading",
        "store": "trading-db",
        TAG_RESTORED_FROM: source.arn,
        TAG_RESTORE_POINT: at.isoformat(),
        TAG_REASON: "drill",
        TAG_RUN: report.run_id,
    }
    writer = rds(aws_emulator).describe_db_instances(DBInstanceIdentifier=f"{target}-writer")[
        "DBInstances"
    ][0]
    assert writer["DBClusterIdentifier"] == target
    assert writer["DBInstanceClass"] == "db.r7g.large"  # the source writer's
    assert writer["DBInstanceStatus"] == "available"
    assert restored["DBClusterMembers"] == [
        {
            "DBInstanceIdentifier": f"{target}-writer",
            "IsClusterWriter": True,
            "DBClusterParameterGroupStatus": "in-sync",
            "PromotionTier": 1,
        }
    ]
    assert still(cluster(aws_emulator, source.id)) == still(before)  # the source untouched

    assert [s.outcome for s in report.steps] == ["done"] * 5
    assert all(s.seconds is not None for s in report.steps)
    endpoint = f"{restored['Endpoint']}:5433"
    assert report.figures["endpoint"] == endpoint
    assert report.figures["recovery_point"] == at.isoformat()
    assert report.figures["recovery_point_kind"] == "requested time"
    assert f"{target} available at {endpoint}" in out
    saved = json.loads((tmp_path / "reports" / "latest" / "restore-aurora.json").read_text())
    assert saved["figures"]["endpoint"] == endpoint and saved["status"] == "succeeded"


def test_the_run_is_journaled_event_by_event_and_copied_to_the_audit_bucket(
    aws_emulator: LocalAws, tmp_path: Path
) -> None:
    ctx, source = source_world(aws_emulator)
    target = f"{source.id}-journal"
    report, out = run(
        ctx, tmp_path, RestoreAuroraRequest(latest=True, target_cluster=target, **FAST), yes=True
    )
    assert report.status is Status.SUCCEEDED, out

    journal = tmp_path / ".drkit" / "journal" / f"{report.run_id}.jsonl"
    events = [json.loads(line) for line in journal.read_text().splitlines()]
    started = events[0]
    assert started["event"] == "run_started" and started["plan"] == f"restore aurora {target}"
    assert started["parameters"]["restored_from"] == source.arn
    assert started["parameters"]["target_cluster"] == target
    assert "user" in started and "host" in started
    finished = {e["step"]: e for e in events if e["event"] == "step_finished"}
    assert list(finished) == [
        f"restore-cluster.{target}",
        f"wait-cluster.{target}",
        f"create-writer.{target}-writer",
        f"wait-writer.{target}-writer",
        f"verify.{target}",
    ]
    restore = finished[f"restore-cluster.{target}"]["result"]
    assert restore["cluster_arn"] == f"arn:aws:rds:us-east-1:123456789012:cluster:{target}"
    # --latest: the latest restorable time read as the restore started, also on the cluster
    assert restore["recovery_point"] == tags(cluster(aws_emulator, target))[TAG_RESTORE_POINT]
    assert datetime.fromisoformat(restore["recovery_point"]) <= datetime.now(UTC)
    assert finished[f"verify.{target}"]["result"]["endpoint"] == report.figures["endpoint"]
    assert events[-1]["event"] == "run_finished" and events[-1]["status"] == "succeeded"
    copy = report.figures["journal_copy"]
    assert copy == f"s3://aipx-audit-west/journal/{report.run_id}.jsonl"
    s3: Any = aws_emulator.client("s3", "us-west-2")
    body = s3.get_object(Bucket="aipx-audit-west", Key=f"journal/{report.run_id}.jsonl")["Body"]
    assert body.read() == journal.read_bytes()


def test_snapshot_restore_in_the_dr_region_takes_the_dr_clusters_settings(
    aws_emulator: LocalAws, tmp_path: Path
) -> None:
    east = aurora_source(aws_emulator, "aipx-east")
    west = aurora_source(
        aws_emulator, "aipx-west", region="us-west-2", instance_class="db.r6g.xlarge"
    )
    audit_bucket(aws_emulator)
    copied = snapshot_to_dr(
        SnapshotRequest(east.id, "us-east-1", "us-west-2", west.kms_key, reason="monthly"),
        rds(aws_emulator),
        rds(aws_emulator, "us-west-2"),
        io.StringIO(),
        {"Delay": 0, "MaxAttempts": 3},
    )
    west_rds = rds(aws_emulator, "us-west-2")
    snapshot = west_rds.describe_db_cluster_snapshots(
        DBClusterSnapshotIdentifier=copied.dr_snapshot_arn.rsplit(":", 1)[1]
    )["DBClusterSnapshots"][0]
    ctx = dr_context(aws_emulator, {"us-east-1": east.id, "us-west-2": west.id})
    request = RestoreAuroraRequest(
        snapshot_id=snapshot["DBClusterSnapshotIdentifier"], region="us-west-2", **FAST
    )

    report, out = run(ctx, tmp_path, request, yes=True)

    assert report.status is Status.SUCCEEDED, out
    created = snapshot["SnapshotCreateTime"].astimezone(UTC)
    target = f"{west.id}-restored-{created:%Y%m%d%H%M}"  # the default name
    restored = cluster(aws_emulator, target, "us-west-2")
    assert (restored["Engine"], restored["EngineVersion"]) == ("aurora-postgresql", "16.8")
    assert restored["DBSubnetGroup"] == west.subnet_group  # the dr region's, not the origin's
    assert [g["VpcSecurityGroupId"] for g in restored["VpcSecurityGroups"]] == [west.security_group]
    assert restored["KmsKeyId"] == west.kms_key
    assert tags(restored)[TAG_RESTORED_FROM] == snapshot["DBClusterSnapshotArn"]
    assert tags(restored)[TAG_RESTORE_POINT] == created.isoformat()
    assert report.figures["recovery_point"] == created.isoformat()
    assert report.figures["recovery_point_kind"] == "snapshot creation time"
    writer = west_rds.describe_db_instances(DBInstanceIdentifier=f"{target}-writer")["DBInstances"][
        0
    ]
    assert writer["DBInstanceClass"] == "db.r6g.xlarge"  # the dr writer's class
    assert target not in cluster_ids(aws_emulator, "us-east-1")


def test_dry_run_prints_the_real_ids_and_creates_nothing(
    aws_emulator: LocalAws, tmp_path: Path
) -> None:
    ctx, source = source_world(aws_emulator)
    at = cluster(aws_emulator, source.id)["EarliestRestorableTime"] + timedelta(seconds=0.5)
    # A time in the past: a run right after the cluster's creation would ask for the future.
    time.sleep(max(0.0, (at - datetime.now(UTC)).total_seconds()) + 0.05)
    target = f"{source.id}-dry"
    request = RestoreAuroraRequest(
        at=at.isoformat(), target_cluster=target, instance_class="db.r7g.2xlarge", **FAST
    )
    before = cluster_ids(aws_emulator)

    report, out = run(ctx, tmp_path, request, dry_run=True)

    assert report.status is Status.DRY_RUN
    for real in (
        source.arn,
        at.isoformat(),
        target,
        f"{target}-writer",
        "db.r7g.2xlarge",
        source.subnet_group,
        source.security_group,
        source.kms_key,
        "full-copy",
    ):
        assert real in out, real
    assert "dry run: nothing was changed" in out
    assert cluster_ids(aws_emulator) == before
    assert not (tmp_path / ".drkit" / "journal").exists()


def test_bad_input_is_named_and_changes_nothing(aws_emulator: LocalAws, tmp_path: Path) -> None:
    ctx, source = source_world(aws_emulator)
    described = cluster(aws_emulator, source.id)
    earliest = described["EarliestRestorableTime"]
    ok = (earliest + timedelta(milliseconds=1)).isoformat()
    snapshot = rds(aws_emulator).create_db_cluster_snapshot(
        DBClusterIdentifier=source.id, DBClusterSnapshotIdentifier=f"{source.id}-snap"
    )["DBClusterSnapshot"]["DBClusterSnapshotIdentifier"]
    other = aurora_source(aws_emulator, "aipx-other")
    before = cluster_ids(aws_emulator)
    future = (datetime.now(UTC) + timedelta(minutes=10)).isoformat()
    ancient = (earliest - timedelta(hours=1)).isoformat()
    refusals: list[tuple[RestoreAuroraRequest, str]] = [
        (
            RestoreAuroraRequest(at=ok, region="eu-nowhere-1"),
            "--region 'eu-nowhere-1' is not an AWS region that offers RDS",
        ),
        (
            RestoreAuroraRequest(at=ok, region="eu-west-1"),
            r"stack 'dr' exports no Aurora cluster in eu-west-1 \(it has clusters in us-east-1\)",
        ),
        (
            RestoreAuroraRequest(at=ok, cluster="no-such-cluster"),
            "there is no Aurora cluster 'no-such-cluster' in us-east-1",
        ),
        (RestoreAuroraRequest(at=future), re.escape(f"--at {future} is in the future")),
        (
            RestoreAuroraRequest(at=ancient),
            re.escape(
                f"--at {ancient} is before the earliest restorable time of cluster "
                f"'{source.id}', {earliest.isoformat()} (it keeps 7 days of backups)"
            ),
        ),
        (RestoreAuroraRequest(at="last tuesday"), "--at 'last tuesday' is not a timestamp"),
        (
            RestoreAuroraRequest(snapshot_id="no-such-snapshot"),
            "cluster snapshot 'no-such-snapshot' does not exist in us-east-1",
        ),
        (
            RestoreAuroraRequest(at=ok, snapshot_id=snapshot),
            "give one of --at TIME, --latest or --snapshot-id ID, not --at and --snapshot-id",
        ),
        (RestoreAuroraRequest(), "say what to restore: --at TIME"),
        (
            RestoreAuroraRequest(latest=True, target_cluster=other.id),
            f"cluster '{other.id}' already exists in us-east-1 \\(available\\); a restore "
            "creates a new cluster and never writes into an existing one.*Nothing was changed",
        ),
    ]
    for request, message in refusals:
        with pytest.raises(RecoveryError, match=message):
            build_plan(ctx, request, RestoreEnv(tmp_path))
    with pytest.raises(TargetRefused, match=f"--target-cluster '{source.id}' is the cluster being"):
        build_plan(
            ctx,
            RestoreAuroraRequest(snapshot_id=snapshot, target_cluster=source.id),
            RestoreEnv(tmp_path),
        )
    with pytest.raises(TargetNotEmptyError):
        build_plan(
            ctx, RestoreAuroraRequest(latest=True, target_cluster=other.id), RestoreEnv(tmp_path)
        )

    assert cluster_ids(aws_emulator) == before
    assert still(cluster(aws_emulator, source.id)) == still(described)
    assert not (tmp_path / ".drkit" / "journal").exists()


def test_a_time_after_the_latest_restorable_and_a_snapshot_not_available_stubbed(
    aws_emulator: LocalAws, tmp_path: Path
) -> None:
    """moto's LatestRestorableTime is always "now" and its snapshots are available at once: the
    describe call that reports those states is answered by a Stubber, with RDS's own shapes."""
    source = aurora_source(aws_emulator, "aipx-stub")
    real = cluster(aws_emulator, source.id)
    now = datetime.now(UTC)
    window = {"EarliestRestorableTime": now - timedelta(days=7)}
    window["LatestRestorableTime"] = now - timedelta(minutes=5)
    described = {k: v for k, v in real.items() if k not in ("ResponseMetadata",)} | window
    stubbed = StubOnly({"describe_db_clusters"})
    ctx = dr_context(aws_emulator, {"us-east-1": source.id}, wrap=stubbed)
    target = f"{source.id}-late"
    ctx.aws("rds", "us-east-1")  # makes the stubbed client
    assert stubbed.stubber is not None
    stubbed.stubber.add_response(
        "describe_db_clusters", {"DBClusters": [described]}, {"DBClusterIdentifier": source.id}
    )
    stubbed.stubber.add_client_error(
        "describe_db_clusters",
        service_error_code="DBClusterNotFoundFault",
        http_status_code=404,
        expected_params={"DBClusterIdentifier": target},
    )
    two_minutes_ago = (now - timedelta(minutes=2)).isoformat()
    with pytest.raises(
        RecoveryError,
        match=re.escape(
            f"--at {two_minutes_ago} is after the latest restorable time of cluster "
            f"'{source.id}', {window['LatestRestorableTime'].isoformat()}"
        )
        + ".*or --latest",
    ):
        build_plan(
            ctx,
            RestoreAuroraRequest(at=two_minutes_ago, target_cluster=target),
            RestoreEnv(tmp_path),
        )
    stubbed.stubber.assert_no_pending_responses()

    creating = StubOnly({"describe_db_cluster_snapshots"})
    ctx = dr_context(aws_emulator, {"us-east-1": source.id}, wrap=creating)
    ctx.aws("rds", "us-east-1")
    assert creating.stubber is not None
    creating.stubber.add_response(
        "describe_db_cluster_snapshots",
        {
            "DBClusterSnapshots": [
                {
                    "DBClusterSnapshotIdentifier": "pre-deploy-1",
                    "DBClusterIdentifier": source.id,
                    "Engine": "aurora-postgresql",
                    "EngineVersion": "16.8",
                    "Status": "creating",
                    "PercentProgress": 40,
                    "SnapshotType": "manual",
                }
            ]
        },
        {"DBClusterSnapshotIdentifier": "pre-deploy-1"},
    )
    with pytest.raises(
        RecoveryError, match="cluster snapshot 'pre-deploy-1' is creating, not available"
    ):
        build_plan(ctx, RestoreAuroraRequest(snapshot_id="pre-deploy-1"), RestoreEnv(tmp_path))
    creating.stubber.assert_no_pending_responses()
    assert target not in cluster_ids(aws_emulator)


def test_a_run_that_failed_at_the_writer_is_resumed_without_a_second_cluster(
    aws_emulator: LocalAws, tmp_path: Path
) -> None:
    source = aurora_source(aws_emulator, "aipx-resume")
    audit_bucket(aws_emulator)
    fault = FailOnce("CreateDBInstance", "InsufficientDBInstanceCapacity")
    ctx = dr_context(aws_emulator, {"us-east-1": source.id}, wrap=fault)
    target = f"{source.id}-again"
    request = RestoreAuroraRequest(latest=True, target_cluster=target, **FAST)

    first, out = run(ctx, tmp_path, request, yes=True)

    assert first.status is Status.FAILED, out
    outcomes = {s.id: s.outcome for s in first.steps}
    assert outcomes == {
        f"restore-cluster.{target}": "done",
        f"wait-cluster.{target}": "done",
        f"create-writer.{target}-writer": "failed",
        f"wait-writer.{target}-writer": "not_run",
        f"verify.{target}": "not_run",
    }
    assert "InsufficientDBInstanceCapacity" in out and len(fault.failed) == 1
    made = cluster(aws_emulator, target)
    assert tags(made)[TAG_RUN] == first.run_id

    # A new run (not a resume) must not adopt the half-made cluster, nor make another.
    with pytest.raises(
        TargetNotEmptyError,
        match=f"restore run {first.run_id} created it. Finish that run with --resume "
        f"{first.run_id}",
    ):
        build_plan(ctx, request, RestoreEnv(tmp_path))

    second, out = run(ctx, tmp_path, request, resume=first.run_id, yes=True)

    assert second.status is Status.SUCCEEDED, out
    assert {s.id: s.outcome for s in second.steps} == {
        f"restore-cluster.{target}": "resumed",
        f"wait-cluster.{target}": "resumed",
        f"create-writer.{target}-writer": "done",
        f"wait-writer.{target}-writer": "done",
        f"verify.{target}": "done",
    }
    after = cluster(aws_emulator, target)
    assert after["DbClusterResourceId"] == made["DbClusterResourceId"]  # the same cluster
    assert after["ClusterCreateTime"] == made["ClusterCreateTime"]
    restored = [
        c
        for c in rds(aws_emulator).describe_db_clusters()["DBClusters"]
        if tags(c).get(TAG_RESTORED_FROM) == source.arn
    ]
    assert [c["DBClusterIdentifier"] for c in restored] == [target]
    assert [m["DBInstanceIdentifier"] for m in after["DBClusterMembers"]] == [f"{target}-writer"]
    assert second.figures["recovery_point"] == tags(after)[TAG_RESTORE_POINT]
    journal = tmp_path / ".drkit" / "journal" / f"{first.run_id}.jsonl"
    events = [json.loads(line)["event"] for line in journal.read_text().splitlines()]
    assert events.count("run_started") == 2 and events.count("run_finished") == 2


def test_the_invoke_task_end_to_end(aws_emulator: LocalAws, tmp_path: Path) -> None:
    source = aurora_source(aws_emulator, "aipx-cli")
    audit_bucket(aws_emulator)
    project = tmp_path
    (project / "Pulumi.dr.yaml").write_text((ROOT / "Pulumi.dr.yaml").read_text())
    (project / "tasks.py").write_text(
        (ROOT / "tasks.py")
        .read_text()
        .replace("ROOT = Path(__file__).resolve().parent", f"ROOT = Path({str(project)!r})")
    )
    outputs = project / "dr-outputs.json"
    dr_outputs(aws_emulator, {"us-east-1": source.id}).write(outputs)
    target = f"{source.id}-cli"
    command = [
        sys.executable,
        "-m",
        "invoke",
        "restore.aurora",
        "--stack",
        "dr",
        "--latest",
        "--target-cluster",
        target,
        "--outputs",
        str(outputs),
        "--reason",
        "cli test",
    ]

    def invoke(*extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*command, *extra], capture_output=True, text=True, cwd=project, check=False
        )

    dry = invoke("--dry-run")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert f"plan: restore aurora {target}" in dry.stdout and source.arn in dry.stdout
    assert target not in cluster_ids(aws_emulator)

    done = invoke("--yes")
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"succeeded: restore aurora {target}" in done.stdout
    report = json.loads((project / "reports" / "latest" / "restore-aurora.json").read_text())
    assert report["figures"]["endpoint"] == f"{cluster(aws_emulator, target)['Endpoint']}:5433"
    assert tags(cluster(aws_emulator, target))[TAG_REASON] == "cli test"

    again = invoke("--yes")
    assert again.returncode == 2
    assert f"error: cluster '{target}' already exists in us-east-1: restore run" in again.stderr
    run_id = again.stderr.split("--resume ")[1].split(",")[0]
    resume = ["--stack", "dr", "--resume", run_id, "--yes", "--outputs", str(outputs)]
    resumed = subprocess.run(
        [sys.executable, "-m", "invoke", "restore.aurora", *resume],
        capture_output=True,
        text=True,
        cwd=project,
        check=False,
    )  # the journal's parameters are the request: the same target, adopted, nothing redone
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert resumed.stdout.count("ok (resumed)") == 5
    both = invoke("--at", "2026-01-01T00:00:00Z", "--yes")
    assert both.returncode == 2
    assert "not --at and --latest" in both.stderr
