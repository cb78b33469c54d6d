"""``invoke restore.aurora``: an Aurora cluster restored into a NEW cluster, as a plan: to a point
in time (``--at TIME``, or ``--latest``) or from a cluster snapshot (``--snapshot-id ID``).

Everything that can be refused is refused before the plan is printed, naming the bad input, with
nothing changed: a region or cluster that does not exist; ``--at`` in the future, before the
cluster's ``EarliestRestorableTime`` or after its ``LatestRestorableTime`` (both read from
``describe_db_clusters``); a snapshot that does not exist or is not ``available``; a target cluster
or writer instance id that is taken; more than one of ``--at``, ``--latest``, ``--snapshot-id``.

The new cluster takes its network, encryption and access settings from the source cluster (for a
snapshot: from the stack's cluster in that region, or ``--cluster``), see ``drkit.restore.aurora``.
The source is only ever described. A run interrupted once the restore started is finished with
``--resume RUN_ID``: the target then exists tagged ``trading-dr:restore-run=RUN_ID`` and the plan
goes on with the waits and the writer. A target without that tag is never touched.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import cache
from itertools import pairwise
from typing import Annotated, Any

import boto3
from pydantic import AfterValidator, Field

from drkit import targets
from drkit.aurora import AuroraError
from drkit.context import OpsContext
from drkit.ops.plan import FunctionStep, Plan, StepContext
from drkit.ops.selection import TargetNotEmptyError
from drkit.ops.verbs import Holds, RestoreEnv, RestoreRequest, RestoreVerb
from drkit.recovery import RecoveryError, parse_timestamp
from drkit.restore.aurora import (
    RESTORE_TYPE,
    RESTORE_WAIT,
    TAG_REASON,
    TAG_RESTORE_POINT,
    TAG_RESTORED_FROM,
    TAG_RUN,
    ClusterSettings,
    FromSnapshot,
    InstanceSettings,
    PointInTime,
    RestoreSpec,
    create_writer,
    describe_cluster,
    describe_instance,
    describe_snapshot,
    start_restore,
    tags_of,
    wait_until_available,
    writer_arguments,
    writer_of,
)

CLUSTER_ID = r"^[a-z]([a-z0-9]|-[a-z0-9])*$"
"""RDS's rule: a letter first, letters, digits and single hyphens, no hyphen last (lower case)."""
WRITER_SUFFIX = "-writer"
MAX_TARGET = 63 - len(WRITER_SUFFIX)
"""The writer instance is ``<target>-writer`` and instance ids have at most 63 characters."""
TAG_VALUE = r"^[\w .:/=+@-]*$"


def _target_name(name: str | None) -> str | None:
    return None if name is None else targets.aurora_cluster(name)


class RestoreAuroraRequest(RestoreRequest):
    """A journaled run's plan parameters hold what it resolved under the fields' own names (the
    target cluster, the source cluster, its region, the instance class): ``resumed`` pins them
    as it reads them."""

    at: str | None = None
    latest: bool = False
    snapshot_id: str | None = None
    target_cluster: Annotated[str | None, AfterValidator(_target_name)] = None
    cluster: str | None = Field(default=None, pattern=CLUSTER_ID, max_length=63)
    """The cluster to restore (point in time) or to copy the settings from (snapshot)."""
    region: str | None = None
    instance_class: str | None = Field(default=None, pattern=r"^db\.[a-z0-9]+(\.[a-z0-9]+)?$")
    reason: str = Field(default="manual", min_length=1, max_length=200, pattern=TAG_VALUE)
    wait_delay: int = Field(default=RESTORE_WAIT["Delay"], ge=0)
    wait_attempts: int = Field(default=RESTORE_WAIT["MaxAttempts"], ge=1)

    def wanted(self) -> Wanted:
        """Which restore point was asked for; exactly one of --at, --latest, --snapshot-id."""
        given = [
            name
            for name, value in (
                ("--at", self.at),
                ("--latest", self.latest),
                ("--snapshot-id", self.snapshot_id),
            )
            if value
        ]
        if len(given) > 1:
            raise RecoveryError(
                f"give one of --at TIME, --latest or --snapshot-id ID, not {' and '.join(given)}"
            )
        if not given:
            raise RecoveryError(
                "say what to restore: --at TIME (a point in time), --latest (the latest "
                "restorable time) or --snapshot-id ID (a cluster snapshot)"
            )
        if self.at:
            return Wanted(at=parse_timestamp(self.at))
        return Wanted(snapshot=self.snapshot_id)

    @classmethod
    def pinned(cls, saved: Mapping[str, Any]) -> dict[str, Any]:
        """A run journaled before ``--snapshot`` became ``--snapshot-id`` saved it as
        ``snapshot``: resuming it restores the same snapshot."""
        if saved.get("snapshot") and not saved.get("snapshot_id"):
            return {"snapshot_id": saved["snapshot"]}
        return {}

    @property
    def wait(self) -> dict[str, int]:
        return {"Delay": self.wait_delay, "MaxAttempts": self.wait_attempts}


@dataclass(frozen=True)
class Wanted:
    """``--at`` (``at``), ``--snapshot-id`` (``snapshot``) or, with neither, ``--latest``."""

    at: datetime | None = None
    snapshot: str | None = None


@dataclass
class Prepared(Holds):
    region: str
    source: dict[str, Any]
    """The described cluster restored (point in time) or whose settings are copied (snapshot)."""
    spec: RestoreSpec
    """Without the run tag: the run's id is added when the restore is started."""
    writer_id: str
    instance: InstanceSettings
    engine: str
    restored_from: str
    """The source cluster's ARN, or the snapshot's."""
    recovery_point: str
    """ISO time, or ``latest`` until the restore starts and reads it."""
    recovery_point_kind: str
    resuming: bool = False
    figures: dict[str, Any] = field(default_factory=dict)


@cache
def _rds_regions() -> frozenset[str]:
    session = boto3.session.Session()
    return frozenset(
        region
        for partition in session.get_available_partitions()
        for region in session.get_available_regions("rds", partition)
    )


def default_target(cluster_id: str, moment: datetime) -> str:
    base = cluster_id[:33].rstrip("-")
    return f"{base}-restored-{moment.astimezone(UTC):%Y%m%d%H%M}"


def prepare(ctx: OpsContext, request: RestoreAuroraRequest, resume: str | None = None) -> Prepared:
    """Resolve and check everything; raises ValueError subclasses naming the bad input."""
    try:
        return _prepare(ctx, request, resume)
    except AuroraError as error:  # a describe call failed (access, network): nothing changed
        raise RecoveryError(str(error)) from None


def _prepare(ctx: OpsContext, request: RestoreAuroraRequest, resume: str | None) -> Prepared:
    wanted = request.wanted()
    aurora = ctx.outputs.aurora
    known = aurora.clusters if aurora is not None else {}
    region = request.region or (aurora.primary_region if aurora is not None else None)
    if region is None:
        raise RecoveryError(
            f"stack {ctx.stack!r} exports no Aurora database: give --region and --cluster"
        )
    if region not in known and region not in _rds_regions():
        raise RecoveryError(f"--region {region!r} is not an AWS region that offers RDS")
    if request.cluster:
        cluster_id = request.cluster
    elif region in known:
        cluster_id = known[region].id
    else:
        raise RecoveryError(
            f"stack {ctx.stack!r} exports no Aurora cluster in {region} (it has clusters in "
            f"{', '.join(sorted(known)) or 'no region'}); pick one of those with --region, or "
            "name the cluster with --cluster"
        )
    if request.target_cluster:  # before any AWS call
        protected = {cluster_id: f"the cluster being restored ({cluster_id!r} in {region})"}
        if aurora is not None:
            for member in aurora.clusters.values():
                protected.setdefault(
                    member.id,
                    f"a member of global database {aurora.global_cluster_id!r} "
                    f"(in {member.region})",
                )
            protected.setdefault(
                aurora.global_cluster_id, f"the id of global database {aurora.global_cluster_id!r}"
            )
        targets.aurora_cluster(request.target_cluster, protected)
    rds = ctx.aws("rds", region)
    source = describe_cluster(rds, cluster_id)
    if source is None:
        raise RecoveryError(f"there is no Aurora cluster {cluster_id!r} in {region}")
    snapshot = describe_snapshot(rds, wanted.snapshot) if wanted.snapshot else None

    now = datetime.now(UTC)
    moment = wanted.at or (_snapshot_time(snapshot) if snapshot else None) or now
    target_id = request.target_cluster or default_target(cluster_id, moment)
    target = describe_cluster(rds, target_id)
    resuming = target is not None and resume is not None and tags_of(target).get(TAG_RUN) == resume
    if target is not None and not resuming:
        _refuse_existing(target, region)
    if not resuming:  # a resumed run has its cluster: the restore point was checked back then
        if wanted.snapshot:
            _check_snapshot(wanted.snapshot, snapshot, region)
        elif wanted.at is not None:
            check_restorable(wanted.at, source, now)
    writer_id = f"{target_id}{WRITER_SUFFIX}"
    _check_writer_id(rds, writer_id, target_id, resuming)
    instance = _instance_settings(ctx, request, rds, source)

    settings = ClusterSettings.of(source)
    if wanted.snapshot:
        assert snapshot is not None or resuming
        engine = str((snapshot or target or source)["Engine"])
        version = (snapshot or target or source).get("EngineVersion")
        spec_source: PointInTime | FromSnapshot = FromSnapshot(wanted.snapshot, engine, version)
        restored_from = str(snapshot["DBClusterSnapshotArn"]) if snapshot else wanted.snapshot
        kind = "snapshot creation time"
        point = _iso(_snapshot_time(snapshot))
    else:
        engine = settings.engine
        spec_source = PointInTime(cluster_id, wanted.at)
        restored_from = str(source["DBClusterArn"])
        kind = "requested time" if wanted.at else "latest restorable time"
        point = _iso(wanted.at) if wanted.at else "latest"
    if resuming and target is not None:
        point = tags_of(target).get(TAG_RESTORE_POINT, point)
    tags = {TAG_RESTORED_FROM: restored_from, TAG_RESTORE_POINT: point, TAG_REASON: request.reason}
    spec = RestoreSpec(target_id, spec_source, settings, tags)
    prepared = Prepared(
        region, source, spec, writer_id, instance, engine, restored_from, point, kind, resuming
    )
    prepared.figures |= {
        "region": region,
        "restored_from": restored_from,
        "target_cluster": target_id,
        "writer_instance": writer_id,
        "instance_class": instance.instance_class,
        "recovery_point": point,
        "recovery_point_kind": kind,
    }
    return prepared


def check_restorable(at: datetime, cluster: Mapping[str, Any], now: datetime) -> None:
    """``at`` inside the cluster's restorable window, as RDS reports it."""
    name = cluster.get("DBClusterIdentifier")
    if at > now:
        raise RecoveryError(f"--at {_iso(at)} is in the future (it is {_iso(now)} now)")
    earliest, latest = cluster.get("EarliestRestorableTime"), cluster.get("LatestRestorableTime")
    if earliest is None or latest is None:
        raise RecoveryError(
            f"cluster {name!r} reports no restorable window (EarliestRestorableTime "
            f"{earliest}, LatestRestorableTime {latest}): are its automated backups on?"
        )
    if at < earliest:
        raise RecoveryError(
            f"--at {_iso(at)} is before the earliest restorable time of cluster {name!r}, "
            f"{_iso(earliest)} (it keeps {cluster.get('BackupRetentionPeriod', '?')} days of "
            "backups); pick a later time or restore a snapshot with --snapshot-id"
        )
    if at > latest:
        raise RecoveryError(
            f"--at {_iso(at)} is after the latest restorable time of cluster {name!r}, "
            f"{_iso(latest)} (it trails the present by a few minutes); pick an earlier time or "
            "--latest"
        )


def _check_snapshot(snapshot_id: str, snapshot: Mapping[str, Any] | None, region: str) -> None:
    if snapshot is None:
        raise RecoveryError(
            f"cluster snapshot {snapshot_id!r} does not exist in {region} (list them with "
            f"`aws rds describe-db-cluster-snapshots --region {region}`)"
        )
    status = snapshot.get("Status")
    if status != "available":
        raise RecoveryError(
            f"cluster snapshot {snapshot_id!r} is {status}, not available: wait until it is, "
            "or pick another"
        )


def _refuse_existing(target: Mapping[str, Any], region: str) -> None:
    name, run = target["DBClusterIdentifier"], tags_of(target).get(TAG_RUN)
    if run:
        raise TargetNotEmptyError(
            f"cluster {name!r} already exists in {region}: restore run {run} created it. Finish "
            f"that run with --resume {run}, or pick another --target-cluster. Nothing was changed."
        )
    raise TargetNotEmptyError(
        f"cluster {name!r} already exists in {region} ({target.get('Status')}); a restore creates "
        "a new cluster and never writes into an existing one. Pick another --target-cluster. "
        "Nothing was changed."
    )


def _check_writer_id(rds: Any, writer_id: str, target_id: str, resuming: bool) -> None:
    found = describe_instance(rds, writer_id)
    if found is None or (resuming and found.get("DBClusterIdentifier") == target_id):
        return
    raise TargetNotEmptyError(
        f"DB instance {writer_id!r} already exists (in cluster "
        f"{found.get('DBClusterIdentifier')!r}); the new cluster's writer needs that id. Pick "
        "another --target-cluster. Nothing was changed."
    )


def _instance_settings(
    ctx: OpsContext, request: RestoreAuroraRequest, rds: Any, source: Mapping[str, Any]
) -> InstanceSettings:
    writer_id = writer_of(source)
    writer = describe_instance(rds, writer_id) if writer_id else None
    configured = ctx.config.aurora.instance_class if ctx.config.aurora else None
    instance_class = (
        request.instance_class or (writer and writer.get("DBInstanceClass")) or configured
    )
    if not instance_class:
        raise RecoveryError(
            f"give --instance-class: cluster {source['DBClusterIdentifier']!r} has no writer "
            "instance to copy it from and the stack config has no aurora.instance_class"
        )
    return InstanceSettings.of(writer, str(instance_class))


def _snapshot_time(snapshot: Mapping[str, Any] | None) -> datetime | None:
    return snapshot.get("SnapshotCreateTime") if snapshot else None


def _iso(moment: datetime | None) -> str:
    return moment.astimezone(UTC).isoformat() if moment is not None else "unknown"


def build_plan(
    ctx: OpsContext, request: RestoreAuroraRequest, env: RestoreEnv
) -> tuple[Plan, Prepared]:
    """``env.resume``: a target cluster tagged with that run id is the run's own: the plan goes
    on with the waits and the writer. Waits are reported to ``env.out`` (default stderr)."""
    resume = env.resume
    prepared = prepare(ctx, request, resume)
    stream = env.out or sys.stderr
    spec, region, writer_id = prepared.spec, prepared.region, prepared.writer_id
    target_id, source_id = spec.target_cluster_id, str(prepared.source["DBClusterIdentifier"])
    source_resource = prepared.source.get("DbClusterResourceId")
    instance = prepared.instance

    def rds() -> Any:
        return ctx.aws("rds", region)

    def created_by_this_run(context: StepContext) -> bool:
        found = describe_cluster(rds(), target_id)
        return found is not None and tags_of(found).get(TAG_RUN) == context.run_id

    def restore(context: StepContext) -> dict[str, Any]:
        client = rds()
        found = describe_cluster(client, target_id)  # taken since the plan was printed?
        if found is not None:
            _refuse_existing(found, region)
        tags = spec.tags | {TAG_RUN: context.run_id}
        if isinstance(spec.source, PointInTime) and spec.source.at is None:
            now = describe_cluster(client, source_id) or {}
            latest = now.get("LatestRestorableTime")
            tags[TAG_RESTORE_POINT] = _iso(latest) if latest else "latest"
            context.note(
                f"latest restorable time when the restore started: {tags[TAG_RESTORE_POINT]}"
            )
        cluster = start_restore(client, replace(spec, tags=tags))
        prepared.figures["recovery_point"] = tags[TAG_RESTORE_POINT]
        context.note(f"{target_id} {cluster.get('Status')}")
        return {
            "cluster_arn": cluster.get("DBClusterArn"),
            "status": cluster.get("Status"),
            "recovery_point": tags[TAG_RESTORE_POINT],
        }

    def wait_cluster(context: StepContext) -> dict[str, Any]:
        seconds = wait_until_available(
            rds(),
            "db_cluster_available",
            f"cluster {target_id}",
            stream,
            request.wait,
            DBClusterIdentifier=target_id,
        )
        context.note(f"{target_id} available after {seconds:.0f}s")
        return {"status": "available", "seconds": round(seconds, 3)}

    def writer_exists(context: StepContext) -> bool:
        found = describe_instance(rds(), writer_id)
        return found is not None and found.get("DBClusterIdentifier") == target_id

    def create(context: StepContext) -> dict[str, Any]:
        cluster = describe_cluster(rds(), target_id) or {}
        arguments = writer_arguments(
            target_id, writer_id, prepared.engine, instance, cluster.get("TagList") or []
        )
        created = create_writer(rds(), arguments)
        context.note(f"{writer_id} {created.get('DBInstanceStatus')}")
        return {
            "instance_arn": created.get("DBInstanceArn"),
            "status": created.get("DBInstanceStatus"),
        }

    def wait_writer(context: StepContext) -> dict[str, Any]:
        seconds = wait_until_available(
            rds(),
            "db_instance_available",
            f"writer {writer_id}",
            stream,
            request.wait,
            DBInstanceIdentifier=writer_id,
        )
        context.note(f"{writer_id} available after {seconds:.0f}s")
        return {"status": "available", "seconds": round(seconds, 3)}

    def verify(context: StepContext) -> dict[str, Any]:
        client = rds()
        cluster = describe_cluster(client, target_id)
        if cluster is None or cluster.get("Status") != "available":
            raise RecoveryError(
                f"cluster {target_id} is {(cluster or {}).get('Status', 'missing')}"
            )
        if writer_of(cluster) != writer_id:
            raise RecoveryError(
                f"the writer of {target_id} is {writer_of(cluster)}, not {writer_id}"
            )
        writer = describe_instance(client, writer_id) or {}
        if writer.get("DBInstanceStatus") != "available":
            raise RecoveryError(
                f"writer {writer_id} is {writer.get('DBInstanceStatus', 'missing')}"
            )
        endpoint = cluster.get("Endpoint")
        if not endpoint:
            raise RecoveryError(f"cluster {target_id} reports no endpoint")
        source = describe_cluster(client, source_id)
        if source is None or source.get("DbClusterResourceId") != source_resource:
            raise RecoveryError(f"source cluster {source_id} is gone or was replaced")
        point = tags_of(cluster).get(TAG_RESTORE_POINT, prepared.recovery_point)
        result = {
            "endpoint": f"{endpoint}:{cluster.get('Port')}",
            "reader_endpoint": cluster.get("ReaderEndpoint"),
            "writer_instance": writer_id,
            "recovery_point": point,
            "recovery_point_kind": prepared.recovery_point_kind,
        }
        prepared.figures |= result | _age(point)
        context.note(
            f"{target_id} available at {result['endpoint']}, writer {writer_id} "
            f"({writer.get('DBInstanceClass')}) available; restored to {point} "
            f"({prepared.recovery_point_kind}); source {source_id} {source.get('Status')}, "
            "untouched"
        )
        return result

    steps = [
        FunctionStep(
            f"restore-cluster.{target_id}",
            _restore_description(prepared),
            restore,
            check=created_by_this_run,
        ),
        FunctionStep(
            f"wait-cluster.{target_id}",
            f"wait until cluster {target_id} is available (boto3 waiter db_cluster_available, "
            f"every {request.wait_delay}s, at most {request.wait_attempts} times)",
            wait_cluster,
            mutates=False,
        ),
        FunctionStep(
            f"create-writer.{writer_id}",
            f"create writer instance {writer_id} ({instance.instance_class}, {prepared.engine}, "
            f"parameter group {instance.parameter_group or '(default)'}, "
            f"{'public' if instance.publicly_accessible else 'not public'}) in {target_id}, "
            "with the cluster's tags",
            create,
            check=writer_exists,
        ),
        FunctionStep(
            f"wait-writer.{writer_id}",
            f"wait until {writer_id} is available (boto3 waiter db_instance_available, every "
            f"{request.wait_delay}s, at most {request.wait_attempts} times)",
            wait_writer,
            mutates=False,
        ),
        FunctionStep(
            f"verify.{target_id}",
            f"check that {target_id} and its writer are available, report the endpoint and the "
            f"restore point; check that the source {source_id} is still there, unchanged",
            verify,
            mutates=False,
        ),
    ]
    parameters: dict[str, Any] = request.model_dump() | {
        "region": region,
        "cluster": source_id,
        "target_cluster": target_id,
        "instance_class": instance.instance_class,
        "stack": ctx.stack,
        "restored_from": prepared.restored_from,
        "recovery_point": f"{prepared.recovery_point} ({prepared.recovery_point_kind})",
        "target": f"new cluster {target_id} in {region}, writer {writer_id} "
        f"({instance.instance_class})",
        "copied_settings": f"from {source_id}: {spec.settings.summary()}",
    }
    if prepared.resuming:
        parameters["resuming"] = f"{target_id} exists, created by run {resume}"
    plan = Plan.from_dependencies(
        f"restore aurora {target_id}",
        steps,
        {later.id: [earlier.id] for earlier, later in pairwise(steps)},
        parameters,
    )
    return plan, prepared


def _restore_description(prepared: Prepared) -> str:
    spec = prepared.spec
    if isinstance(spec.source, PointInTime):
        when = (
            f"to {_iso(spec.source.at)}"
            if spec.source.at
            else "to its latest restorable time (UseLatestRestorableTime)"
        )
        how = (
            f"restore_db_cluster_to_point_in_time ({RESTORE_TYPE}) of {prepared.restored_from} "
            f"{when}"
        )
    else:
        how = (
            f"restore_db_cluster_from_snapshot of {prepared.restored_from} (taken "
            f"{prepared.recovery_point}, {spec.source.engine} {spec.source.engine_version})"
        )
    return (
        f"{how} into NEW cluster {spec.target_cluster_id} in {prepared.region}, tagged "
        f"{TAG_RESTORED_FROM}, {TAG_REASON}={spec.tags[TAG_REASON]!r} and {TAG_RUN}=<run id>"
    )


def _age(point: str) -> dict[str, Any]:
    try:
        moment = parse_timestamp(point)
    except RecoveryError:
        return {}
    return {"recovery_point_age_seconds": round((datetime.now(UTC) - moment).total_seconds(), 1)}


VERB = RestoreVerb(RestoreAuroraRequest, build_plan, "restore-aurora")
