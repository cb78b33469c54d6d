"""restore.aurora without AWS: the request's parsing, the restore window check, the restore and
writer calls' arguments (validated against botocore's RDS service model), and the waits (boto3's
waiters answered by a Stubber, so the slicing into single attempts is measured, not assumed)."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from botocore.validate import ParamValidator
from pydantic import ValidationError

import drkit.restore.aurora as mechanics
from drkit.aurora import AuroraError
from drkit.ops.restore_aurora import (
    MAX_TARGET,
    RestoreAuroraRequest,
    Wanted,
    check_restorable,
    default_target,
)
from drkit.recovery import RecoveryError
from drkit.restore.aurora import (
    TAG_RESTORED_FROM,
    TAG_RUN,
    ClusterSettings,
    FromSnapshot,
    InstanceSettings,
    PointInTime,
    RestoreSpec,
    restore_arguments,
    wait_until_available,
    writer_arguments,
)

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 21, 4, 0, tzinfo=UTC)
SOURCE: dict[str, Any] = {
    "DBClusterIdentifier": "aipx-trading-db",
    "DBClusterArn": "arn:aws:rds:us-east-1:123456789012:cluster:aipx-trading-db",
    "Engine": "aurora-postgresql",
    "EngineVersion": "16.8",
    "Status": "available",
    "DBSubnetGroup": "aipx-db-subnets",
    "VpcSecurityGroups": [{"VpcSecurityGroupId": "sg-0db", "Status": "active"}],
    "KmsKeyId": "arn:aws:kms:us-east-1:123456789012:key/k-1",
    "Port": 5432,
    "IAMDatabaseAuthenticationEnabled": True,
    "DeletionProtection": True,
    "DBClusterParameterGroup": "aipx-pg16",
    "BackupRetentionPeriod": 30,
    "PreferredBackupWindow": "03:00-03:30",
    "EnabledCloudwatchLogsExports": ["postgresql"],
    "CopyTagsToSnapshot": True,
    "EarliestRestorableTime": NOW - timedelta(days=30),
    "LatestRestorableTime": NOW - timedelta(minutes=5),
    "TagList": [
        {"Key": "team", "Value": "trading"},
        {"Key": "aws:cloudformation:stack-name", "Value": "x"},
        {"Key": TAG_RUN, "Value": "an-older-restore"},
    ],
}


def test_exactly_one_restore_point_is_asked_for() -> None:
    at = RestoreAuroraRequest(at="2026-11-21T03:15:00").wanted()
    assert at == Wanted(at=datetime(2026, 11, 21, 3, 15, tzinfo=UTC))  # UTC if no zone
    assert RestoreAuroraRequest(latest=True).wanted() == Wanted()
    assert RestoreAuroraRequest(snapshot_id="s-1").wanted() == Wanted(snapshot="s-1")
    with pytest.raises(RecoveryError, match="not --at and --latest and --snapshot-id"):
        RestoreAuroraRequest(at="2026-11-21T03:15:00Z", latest=True, snapshot_id="s").wanted()
    with pytest.raises(RecoveryError, match="say what to restore"):
        RestoreAuroraRequest().wanted()
    with pytest.raises(RecoveryError, match="--at 'noon' is not a timestamp"):
        RestoreAuroraRequest(at="noon").wanted()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("target_cluster", "Restored"),
        ("target_cluster", "a--b"),
        ("target_cluster", "trailing-"),
        ("target_cluster", "9starts-with-a-digit"),
        ("target_cluster", "x" * (MAX_TARGET + 1)),
        ("instance_class", "r7g.large"),
        ("reason", "why?"),
        ("wait_attempts", 0),
    ],
)
def test_bad_fields_are_named(field: str, value: Any) -> None:
    with pytest.raises(ValidationError, match=field):
        RestoreAuroraRequest(**{field: value})


def test_good_fields_and_a_journaled_request() -> None:
    request = RestoreAuroraRequest(
        target_cluster="x" * MAX_TARGET, instance_class="db.serverless", reason="drill 2026/11"
    )
    assert request.wait == {"Delay": 30, "MaxAttempts": 480}
    saved = request.model_dump() | {"restored_from": "arn:...", "copied_settings": "..."}
    assert RestoreAuroraRequest.resumed(saved) == request  # descriptions are not fields


def test_a_run_journaled_before_the_flag_was_snapshot_id_resumes_its_snapshot() -> None:
    saved = RestoreAuroraRequest(target_cluster="x").model_dump()
    del saved["snapshot_id"]
    request = RestoreAuroraRequest.resumed(saved | {"snapshot": "pre-deploy-1"})
    assert request.snapshot_id == "pre-deploy-1"
    assert request.wanted() == Wanted(snapshot="pre-deploy-1")


def test_the_default_target_fits_the_writer_suffix() -> None:
    name = default_target("a" * 32 + "-" + "b" * 30, NOW)
    assert name == "a" * 32 + "-restored-202611210400"
    assert len(name) <= MAX_TARGET and "--" not in name


def test_the_restorable_window() -> None:
    check_restorable(NOW - timedelta(days=1), SOURCE, NOW)
    with pytest.raises(RecoveryError, match="is in the future"):
        check_restorable(NOW + timedelta(seconds=1), SOURCE, NOW)
    with pytest.raises(RecoveryError, match=r"before the earliest .* keeps 30 days of backups"):
        check_restorable(NOW - timedelta(days=31), SOURCE, NOW)
    with pytest.raises(RecoveryError, match="after the latest restorable time"):
        check_restorable(NOW - timedelta(minutes=1), SOURCE, NOW)
    with pytest.raises(RecoveryError, match="reports no restorable window"):
        check_restorable(NOW - timedelta(days=1), {"DBClusterIdentifier": "c"}, NOW)


def validate(operation: str, arguments: dict[str, Any]) -> None:
    """As botocore validates a request before sending it: names, types, required members."""
    model = boto3.client("rds", region_name="us-east-1").meta.service_model
    report = ParamValidator().validate(arguments, model.operation_model(operation).input_shape)
    assert not report.has_errors(), report.generate_report()


def ours(run: str = "r-1") -> dict[str, str]:
    return {TAG_RESTORED_FROM: SOURCE["DBClusterArn"], TAG_RUN: run}


def test_point_in_time_arguments_copy_the_source_settings() -> None:
    settings = ClusterSettings.of(SOURCE)
    at = NOW - timedelta(hours=2)
    arguments = restore_arguments(
        RestoreSpec("restored", PointInTime("aipx-trading-db", at), settings, ours())
    )
    validate("RestoreDBClusterToPointInTime", arguments)
    assert arguments == {
        "DBClusterIdentifier": "restored",
        "SourceDBClusterIdentifier": "aipx-trading-db",
        "RestoreType": "full-copy",
        "RestoreToTime": at,
        "DBSubnetGroupName": "aipx-db-subnets",
        "VpcSecurityGroupIds": ["sg-0db"],
        "KmsKeyId": SOURCE["KmsKeyId"],
        "Port": 5432,
        "EnableIAMDatabaseAuthentication": True,
        "DeletionProtection": True,
        "DBClusterParameterGroupName": "aipx-pg16",
        "BackupRetentionPeriod": 30,
        "PreferredBackupWindow": "03:00-03:30",
        "EnableCloudwatchLogsExports": ["postgresql"],
        "CopyTagsToSnapshot": True,
        "Tags": [  # the source's own, not aws:* nor an older restore's run; then ours
            {"Key": "team", "Value": "trading"},
            {"Key": TAG_RESTORED_FROM, "Value": SOURCE["DBClusterArn"]},
            {"Key": TAG_RUN, "Value": "r-1"},
        ],
    }
    latest = restore_arguments(
        RestoreSpec("restored", PointInTime("aipx-trading-db", None), settings, ours())
    )
    validate("RestoreDBClusterToPointInTime", latest)
    assert latest["UseLatestRestorableTime"] is True and "RestoreToTime" not in latest
    assert latest["RestoreType"] == "full-copy"  # copy-on-write cannot take a time


def test_snapshot_arguments_take_the_engine_from_the_snapshot() -> None:
    settings = ClusterSettings.of(SOURCE)
    arguments = restore_arguments(
        RestoreSpec("restored", FromSnapshot("pre-deploy", "aurora-postgresql", "16.6"), settings)
    )
    validate("RestoreDBClusterFromSnapshot", arguments)
    assert arguments["SnapshotIdentifier"] == "pre-deploy"
    assert (arguments["Engine"], arguments["EngineVersion"]) == ("aurora-postgresql", "16.6")
    assert "RestoreType" not in arguments and "SourceDBClusterIdentifier" not in arguments


def test_tags_are_capped_at_rds_limit_keeping_ours() -> None:
    many = {"TagList": [{"Key": f"k{n}", "Value": "v"} for n in range(60)]}
    settings = ClusterSettings.of(SOURCE | many)
    tags = RestoreSpec("t", PointInTime("s", None), settings, ours()).all_tags()
    assert len(tags) == 50
    assert {"Key": TAG_RUN, "Value": "r-1"} in tags


def test_writer_arguments() -> None:
    instance = {
        "DBInstanceClass": "db.r7g.large",
        "DBParameterGroups": [{"DBParameterGroupName": "aipx-pg16-instance"}],
        "PubliclyAccessible": False,
        "AutoMinorVersionUpgrade": False,
    }
    arguments = writer_arguments(
        "restored",
        "restored-writer",
        "aurora-postgresql",
        InstanceSettings.of(instance, "db.r7g.xlarge"),
        [{"Key": TAG_RUN, "Value": "r-1"}],
    )
    validate("CreateDBInstance", arguments)
    assert arguments["DBInstanceClass"] == "db.r7g.xlarge"  # --instance-class wins
    assert arguments["DBParameterGroupName"] == "aipx-pg16-instance"
    assert arguments["AutoMinorVersionUpgrade"] is False
    assert InstanceSettings.of(None, "db.r7g.large") == InstanceSettings("db.r7g.large")


def stubbed_rds() -> tuple[Any, Stubber]:
    client = boto3.client(
        "rds",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    stubber = Stubber(client)
    stubber.activate()
    return client, stubber


def statuses(stubber: Stubber, *seen: str) -> None:
    for status in seen:
        stubber.add_response(
            "describe_db_clusters",
            {"DBClusters": [{"DBClusterIdentifier": "c", "Status": status}]},
            {"DBClusterIdentifier": "c"},
        )


def test_the_waiter_is_asked_one_attempt_at_a_time_with_its_delay() -> None:
    rds, stubber = stubbed_rds()
    statuses(stubber, "creating", "creating", "backing-up", "available")
    slept: list[float] = []
    out = io.StringIO()
    wait_until_available(
        rds,
        "db_cluster_available",
        "cluster c",
        out,
        {"Delay": 7, "MaxAttempts": 10},
        sleep=slept.append,
        DBClusterIdentifier="c",
    )
    stubber.assert_no_pending_responses()
    assert slept == [7, 7, 7]  # Delay between attempts, none after success
    lines = out.getvalue().splitlines()
    assert [line.split(":")[1].split("(")[0].strip() for line in lines[:-1]] == [
        "creating",
        "backing-up",
    ]  # printed when the status changes
    assert lines[-1].startswith("  cluster c: available after")


def test_the_waiter_gives_up_after_max_attempts_and_stops_on_a_failure_state() -> None:
    rds, stubber = stubbed_rds()
    statuses(stubber, "creating", "creating", "creating")
    slept: list[float] = []
    with pytest.raises(AuroraError, match=r"after 3 attempts 5s apart .*rerun with --resume"):
        wait_until_available(
            rds,
            "db_cluster_available",
            "cluster c",
            io.StringIO(),
            {"Delay": 5, "MaxAttempts": 3},
            sleep=slept.append,
            DBClusterIdentifier="c",
        )
    assert slept == [5, 5]  # three attempts, as WaiterConfig MaxAttempts=3 makes
    statuses(stubber, "creating", "incompatible-restore")
    with pytest.raises(AuroraError, match=r"terminal failure.*status incompatible-restore"):
        wait_until_available(
            rds,
            "db_cluster_available",
            "cluster c",
            io.StringIO(),
            {"Delay": 0, "MaxAttempts": 10},
            sleep=slept.append,
            DBClusterIdentifier="c",
        )
    stubber.assert_no_pending_responses()


def test_both_waiters_exist_in_the_installed_botocore() -> None:
    names = boto3.client("rds", region_name="us-east-1").waiter_names
    assert set(mechanics.STATUS_PATHS) <= set(names)
