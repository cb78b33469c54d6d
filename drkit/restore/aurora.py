"""Aurora restores into a new cluster, the way AWS does them: to a point in time
(``restore_db_cluster_to_point_in_time``) or from a cluster snapshot
(``restore_db_cluster_from_snapshot``); then the writer instance, which a restored Aurora cluster
does not have; each waited for with boto3's waiters (``db_cluster_available``,
``db_instance_available``, both in botocore's RDS waiter model).

What AWS does not carry over by itself is copied from the cluster the restore is modelled on: a
point-in-time restore gets the VPC's default security group, the default subnet group and the
default parameter groups unless told otherwise, and neither kind of restore copies tags. The
source cluster is only ever described, never modified.

``RestoreType='full-copy'``, never ``copy-on-write``. A copy-on-write restore is a clone: RDS
refuses it together with ``RestoreToTime``, so it can only serve "the latest restorable time",
while a restore after corruption or a bad deploy needs a time before the damage. Using full-copy
for ``--latest`` as well keeps one behaviour and gives a cluster whose storage shares no pages with
the source (a clone also counts toward the source's limit of copy-on-write clones). The price is
time: a full copy of a large cluster takes longer than a clone, which ``RESTORE_WAIT`` allows for,
and an interrupted wait is resumed, not restarted.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TextIO

from botocore.exceptions import ClientError, WaiterError

from drkit.aurora import AuroraError
from drkit.ops.retry import is_throttling

RESTORE_WAIT = {"Delay": 30, "MaxAttempts": 480}
"""Up to four hours per wait: a full copy of a large cluster replays a lot of log."""

RESTORE_TYPE = "full-copy"

TAG_RESTORED_FROM = "trading-dr:restored-from"
"""The ARN of the source cluster (point in time) or of the snapshot."""
TAG_RESTORE_POINT = "trading-dr:restore-point"
TAG_REASON = "trading-dr:reason"
TAG_RUN = "trading-dr:restore-run"
"""The journaled run that created the cluster: only that run may resume into it."""
OUR_TAGS = (TAG_RESTORED_FROM, TAG_RESTORE_POINT, TAG_REASON, TAG_RUN)
MAX_TAGS = 50
"""RDS's limit of tags per resource."""

NOT_FOUND = {"DBClusterNotFoundFault", "DBInstanceNotFound", "DBClusterSnapshotNotFoundFault"}


def call(operation: Any, what: str, **arguments: Any) -> Any:
    """Like ``drkit.aurora``'s wrapping, naming what failed; throttling passes through untouched
    so that the executor's backoff can retry it."""
    try:
        return operation(**arguments)
    except ClientError as error:
        if is_throttling(error):
            raise
        raise AuroraError(f"{what} failed: {error}") from error


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _describe_one(operation: Any, key: str, what: str, **arguments: Any) -> dict[str, Any] | None:
    try:
        found = operation(**arguments)[key]
    except ClientError as error:
        if _code(error) in NOT_FOUND:
            return None
        if is_throttling(error):
            raise
        raise AuroraError(f"describing {what} failed: {error}") from error
    return dict(found[0]) if found else None


def describe_cluster(rds: Any, cluster_id: str) -> dict[str, Any] | None:
    """The cluster, or None when there is no cluster of that id in the client's region."""
    return _describe_one(
        rds.describe_db_clusters,
        "DBClusters",
        f"cluster {cluster_id}",
        DBClusterIdentifier=cluster_id,
    )


def describe_instance(rds: Any, instance_id: str) -> dict[str, Any] | None:
    return _describe_one(
        rds.describe_db_instances,
        "DBInstances",
        f"instance {instance_id}",
        DBInstanceIdentifier=instance_id,
    )


def describe_snapshot(rds: Any, snapshot_id: str) -> dict[str, Any] | None:
    return _describe_one(
        rds.describe_db_cluster_snapshots,
        "DBClusterSnapshots",
        f"cluster snapshot {snapshot_id}",
        DBClusterSnapshotIdentifier=snapshot_id,
    )


def tags_of(resource: Mapping[str, Any]) -> dict[str, str]:
    return {str(t["Key"]): str(t.get("Value", "")) for t in resource.get("TagList") or []}


def writer_of(cluster: Mapping[str, Any]) -> str | None:
    """The id of the cluster's writer instance, if it has one."""
    for member in cluster.get("DBClusterMembers") or []:
        if member.get("IsClusterWriter"):
            return str(member["DBInstanceIdentifier"])
    return None


@dataclass(frozen=True)
class ClusterSettings:
    """What a restored cluster takes from the cluster it is modelled on."""

    engine: str
    engine_version: str | None
    subnet_group: str | None
    security_group_ids: tuple[str, ...]
    kms_key_id: str | None
    port: int | None
    iam_auth: bool
    deletion_protection: bool
    parameter_group: str | None
    backup_retention_days: int | None
    backup_window: str | None
    log_exports: tuple[str, ...]
    copy_tags_to_snapshot: bool
    serverless_v2_scaling: dict[str, float] | None
    tags: dict[str, str]
    """The source's own tags (not ``aws:`` ones, not a previous restore's ``trading-dr:``)."""

    @classmethod
    def of(cls, cluster: Mapping[str, Any]) -> ClusterSettings:
        scaling = cluster.get("ServerlessV2ScalingConfiguration")
        return cls(
            engine=str(cluster["Engine"]),
            engine_version=cluster.get("EngineVersion"),
            subnet_group=cluster.get("DBSubnetGroup"),
            security_group_ids=tuple(
                str(g["VpcSecurityGroupId"]) for g in cluster.get("VpcSecurityGroups") or []
            ),
            kms_key_id=cluster.get("KmsKeyId"),
            port=cluster.get("Port"),
            iam_auth=bool(cluster.get("IAMDatabaseAuthenticationEnabled")),
            deletion_protection=bool(cluster.get("DeletionProtection")),
            parameter_group=cluster.get("DBClusterParameterGroup"),
            backup_retention_days=cluster.get("BackupRetentionPeriod"),
            backup_window=cluster.get("PreferredBackupWindow"),
            log_exports=tuple(cluster.get("EnabledCloudwatchLogsExports") or ()),
            copy_tags_to_snapshot=bool(cluster.get("CopyTagsToSnapshot")),
            serverless_v2_scaling=(
                {k: v for k, v in scaling.items() if k in ("MinCapacity", "MaxCapacity")}
                if scaling
                else None
            ),
            tags={
                key: value
                for key, value in tags_of(cluster).items()
                if not key.startswith("aws:") and key not in OUR_TAGS
            },
        )

    def summary(self) -> str:
        """One line for the plan: where the new cluster will live and how it is locked down."""
        return (
            f"subnet group {self.subnet_group or '(default)'}, security groups "
            f"{', '.join(self.security_group_ids) or '(VPC default)'}, KMS key "
            f"{self.kms_key_id or '(not encrypted)'}, port {self.port}, IAM auth "
            f"{'on' if self.iam_auth else 'off'}, deletion protection "
            f"{'on' if self.deletion_protection else 'off'}, parameter group "
            f"{self.parameter_group or '(default)'}, backups kept {self.backup_retention_days} "
            f"days, {len(self.tags)} tags copied"
        )


@dataclass(frozen=True)
class InstanceSettings:
    """What the new writer takes from the source's writer (or from the stack config)."""

    instance_class: str
    parameter_group: str | None = None
    publicly_accessible: bool = False
    auto_minor_version_upgrade: bool = True

    @classmethod
    def of(cls, instance: Mapping[str, Any] | None, instance_class: str) -> InstanceSettings:
        if instance is None:
            return cls(instance_class)
        groups = instance.get("DBParameterGroups") or []
        return cls(
            instance_class=instance_class,
            parameter_group=str(groups[0]["DBParameterGroupName"]) if groups else None,
            publicly_accessible=bool(instance.get("PubliclyAccessible")),
            auto_minor_version_upgrade=instance.get("AutoMinorVersionUpgrade") is not False,
        )


@dataclass(frozen=True)
class PointInTime:
    """Restore ``source_cluster_id`` as it was at ``at``, or at its latest restorable time."""

    source_cluster_id: str
    at: datetime | None


@dataclass(frozen=True)
class FromSnapshot:
    snapshot_id: str
    engine: str
    engine_version: str | None


@dataclass(frozen=True)
class RestoreSpec:
    target_cluster_id: str
    source: PointInTime | FromSnapshot
    settings: ClusterSettings
    tags: dict[str, str] = field(default_factory=dict)
    """Ours (``trading-dr:*``): they win over the source's tags of the same key."""

    def all_tags(self) -> list[dict[str, str]]:
        merged = {k: v for k, v in self.settings.tags.items() if k not in self.tags}
        room = MAX_TAGS - len(self.tags)
        kept = dict(list(merged.items())[: max(room, 0)]) | self.tags
        return [{"Key": k, "Value": v} for k, v in kept.items()]


def restore_arguments(spec: RestoreSpec) -> dict[str, Any]:
    """The keyword arguments of the restore call: pure, so the plan and the tests can read them."""
    settings = spec.settings
    arguments: dict[str, Any] = {
        "DBClusterIdentifier": spec.target_cluster_id,
        "EnableIAMDatabaseAuthentication": settings.iam_auth,
        "DeletionProtection": settings.deletion_protection,
        "CopyTagsToSnapshot": settings.copy_tags_to_snapshot,
        "Tags": spec.all_tags(),
    }
    optional: dict[str, Any] = {
        "DBSubnetGroupName": settings.subnet_group,
        "VpcSecurityGroupIds": list(settings.security_group_ids) or None,
        "KmsKeyId": settings.kms_key_id,
        "Port": settings.port,
        "DBClusterParameterGroupName": settings.parameter_group,
        "BackupRetentionPeriod": settings.backup_retention_days,
        "PreferredBackupWindow": settings.backup_window,
        "EnableCloudwatchLogsExports": list(settings.log_exports) or None,
        "ServerlessV2ScalingConfiguration": settings.serverless_v2_scaling,
    }
    arguments |= {key: value for key, value in optional.items() if value is not None}
    source = spec.source
    if isinstance(source, PointInTime):
        arguments |= {
            "SourceDBClusterIdentifier": source.source_cluster_id,
            "RestoreType": RESTORE_TYPE,
        }
        if source.at is None:
            arguments["UseLatestRestorableTime"] = True
        else:
            arguments["RestoreToTime"] = source.at
    else:
        arguments |= {"SnapshotIdentifier": source.snapshot_id, "Engine": source.engine}
        if source.engine_version:
            arguments["EngineVersion"] = source.engine_version
    return arguments


def start_restore(rds: Any, spec: RestoreSpec) -> dict[str, Any]:
    """Ask RDS for the new cluster; returns it as RDS described it (``creating``)."""
    arguments = restore_arguments(spec)
    if isinstance(spec.source, PointInTime):
        operation = rds.restore_db_cluster_to_point_in_time
        what = f"point-in-time restore of {spec.source.source_cluster_id}"
    else:
        operation = rds.restore_db_cluster_from_snapshot
        what = f"restore of snapshot {spec.source.snapshot_id}"
    cluster = call(operation, f"{what} into {spec.target_cluster_id}", **arguments)
    return dict(cluster["DBCluster"])


def writer_arguments(
    cluster_id: str, instance_id: str, engine: str, instance: InstanceSettings, tags: list[Any]
) -> dict[str, Any]:
    arguments: dict[str, Any] = {
        "DBInstanceIdentifier": instance_id,
        "DBClusterIdentifier": cluster_id,
        "Engine": engine,
        "DBInstanceClass": instance.instance_class,
        "PubliclyAccessible": instance.publicly_accessible,
        "AutoMinorVersionUpgrade": instance.auto_minor_version_upgrade,
        "Tags": tags,
    }
    if instance.parameter_group:
        arguments["DBParameterGroupName"] = instance.parameter_group
    return arguments


def create_writer(rds: Any, arguments: dict[str, Any]) -> dict[str, Any]:
    created = call(
        rds.create_db_instance,
        f"creating writer instance {arguments['DBInstanceIdentifier']} in "
        f"{arguments['DBClusterIdentifier']}",
        **arguments,
    )
    return dict(created["DBInstance"])


PROGRESS_EVERY = 60.0
"""Seconds between progress lines while the status stays the same."""

STATUS_PATHS = {
    "db_cluster_available": ("DBClusters", "Status"),
    "db_instance_available": ("DBInstances", "DBInstanceStatus"),
}


def wait_until_available(
    rds: Any,
    waiter_name: str,
    what: str,
    out: TextIO,
    config: Mapping[str, int],
    sleep: Callable[[float], None] = time.sleep,
    **arguments: Any,
) -> float:
    """boto3's waiter ``waiter_name``, asked one attempt at a time so each change of status can
    be printed: its acceptors decide (``available`` succeeds; ``failed``, ``deleting``,
    ``incompatible-restore``... end the wait at once), ``Delay`` seconds between attempts, at
    most ``MaxAttempts`` of them, as ``WaiterConfig`` means to the waiter itself. A line is
    printed when the status changes and every ``PROGRESS_EVERY`` seconds."""
    waiter = rds.get_waiter(waiter_name)
    many, status_key = STATUS_PATHS[waiter_name]
    delay, attempts = int(config["Delay"]), int(config["MaxAttempts"])
    started = time.monotonic()
    last, shown = "?", started
    for attempt in range(1, attempts + 1):
        try:
            waiter.wait(WaiterConfig={"Delay": delay, "MaxAttempts": 1}, **arguments)
        except WaiterError as error:
            response: Mapping[str, Any] = error.last_response or {}
            found = response.get(many) or [{}]
            status = str(found[0].get(status_key, "?"))
            if not str(error.kwargs.get("reason", "")).startswith("Max attempts exceeded"):
                raise AuroraError(
                    f"waiting for {what}: {error.kwargs.get('reason')} (status {status})"
                ) from error
            now = time.monotonic()
            if status != last or now - shown >= PROGRESS_EVERY:
                out.write(
                    f"  {what}: {status} ({now - started:.0f}s, attempt {attempt}/{attempts})\n"
                )
                out.flush()
                last, shown = status, now
            if attempt < attempts:
                sleep(delay)
            continue
        seconds = time.monotonic() - started
        out.write(f"  {what}: available after {seconds:.0f}s\n")
        out.flush()
        return seconds
    raise AuroraError(
        f"gave up waiting for {what} after {attempts} attempts {delay}s apart (last status "
        f"{last}); it may still become available: rerun with --resume to keep waiting"
    )
