"""The test restore of an Aurora-backed PostgreSQL store on a dr stack: a NEW scratch cluster made
by ``restore.aurora``'s own plan, checked through its writer, and deleted after.

A dr stack exports the store as the Aurora global database's read-only secondary, whose writer is
prod's (``drkit.ops.scratch_postgres``): neither may take a scratch database. Where the stack's
outputs name the store's Aurora cluster in the stack's region, the drill (and ``invoke verify`` on
that stack) restores that cluster instead:

- **into** ``<cluster>-<purpose>-<holder tag>`` (``-dr-test-`` for the drill, the holder tag's
  ``_`` as ``-``, the cluster part cut short so the writer ``<id>-writer`` fits 63), tagged
  ``trading-dr:reason=<purpose>`` and ``trading-dr:restore-run=<purpose>.<holder tag>``, with its
  writer ``<id>-writer``: ``drkit.ops.restore_aurora``'s plan, its steps run in order (restore,
  wait, writer, wait, verify), the waits every 30 s on AWS and every second on the emulator;
- **from** the cluster's latest restorable time (``--latest``), not the newest DR snapshot: the
  secondary's continuous backup needs no snapshot to exist (the manual DR snapshots are monthly and
  before deploys), its latest point is what a region-loss restore would use, and it stays in the
  region; a restore from a snapshot would prove the monthly copy instead (``restore.aurora
  --snapshot-id``);
- **checked** through the new cluster's writer endpoint with the stack's Aurora master secret (in
  the region's Secrets Manager): it is out of recovery (writable), every table the store's newest
  backup counted is there, its rows are counted and compared with the backup's counts and schema
  fingerprint and content checksums (``drkit.pg_exact``). The cluster holds the store as of its
  restore point, later than the backup: the same data when nothing was written since (the local
  drill), the backup's data plus what was written since otherwise, so a difference there is
  reported, not failed; a missing table, a cluster still read-only, or no rows where the backup
  had some fails it;
- **deleted** after, also when anything failed: the writer (no final snapshot), waited until gone,
  then the cluster. A drill killed before that leaves the cluster: the next run, or ``invoke verify
  --cleanup``, finds it by its name (its holder's run gone, ``drkit.ops.scratch``) and deletes it
  the same way, only when its ``trading-dr:reason`` tag is the purpose its name says.
"""

from __future__ import annotations

import io
import json
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
from botocore.exceptions import BotoCoreError, ClientError

from drkit.backup.postgres import PostgresSource
from drkit.context import OpsContext
from drkit.ops.plan import StepContext
from drkit.ops.restore_aurora import MAX_TARGET, WRITER_SUFFIX, RestoreAuroraRequest, build_plan
from drkit.ops.scratch import PURPOSES, VERIFY, CheckMissed, Holder, sweep
from drkit.ops.selection import Chosen
from drkit.ops.verbs import RestoreEnv
from drkit.recovery import RecoveryError
from drkit.restore.aurora import (
    RESTORE_WAIT,
    TAG_REASON,
    TAG_RUN,
    describe_cluster,
    tags_of,
    writer_of,
)
from drkit.restore.postgres import compare_restored, count_rows
from stackmodels.outputs import AuroraCluster

EMULATOR_WAIT = {"Delay": 1, "MaxAttempts": 300}
"""The local world's restore is a base backup of a small standby: seconds, not the hours a full
copy of a large cluster may take (``RESTORE_WAIT``)."""
_SCRATCH = re.compile(r"^(.+)-(verify|dr-test)-([0-9a-f]{8})-(\d{1,10})-(\d{1,12})-([0-9a-f]{6})$")


def aurora_cluster(ctx: OpsContext, store: str) -> AuroraCluster | None:
    """The store's Aurora cluster in the stack's own region, when the outputs export one."""
    aurora, config = ctx.outputs.aurora, ctx.config.aurora
    if aurora is None or config is None or config.store != store:
        return None
    return aurora.clusters.get(ctx.outputs.region)


def cluster_name(cluster_id: str, holder: Holder, purpose: str = VERIFY) -> str:
    """``<cluster>-<purpose>-<holder tag with hyphens>``, at most ``MAX_TARGET`` (56)."""
    if purpose not in PURPOSES:
        raise ValueError(f"scratch purpose {purpose!r}: one of {', '.join(PURPOSES)}")
    suffix = f"-{purpose}-{holder.tag.replace('_', '-')}"
    return cluster_id[: MAX_TARGET - len(suffix)].rstrip("-") + suffix


def parse_cluster(name: str, cluster_id: str) -> tuple[Holder, str] | None:
    """(holder, purpose) of a scratch cluster of ``cluster_id``, else None."""
    match = _SCRATCH.match(name)
    if match is None:
        return None
    stem, purpose = match.group(1), match.group(2)
    if not cluster_id.startswith(stem) or (stem != cluster_id and len(name) < MAX_TARGET - 1):
        return None
    holder = Holder.parse("_".join(match.groups()[2:]))
    return None if holder is None else (holder, purpose)


def run_id(holder: Holder, purpose: str) -> str:
    return f"{purpose}.{holder.tag}"


def _wait(ctx: OpsContext) -> dict[str, int]:
    return EMULATOR_WAIT if ctx.outputs.aws_endpoint_url else RESTORE_WAIT


def _rds(ctx: OpsContext, region: str) -> Any:
    return ctx.aws("rds", region)


def master_login(ctx: OpsContext, region: str) -> tuple[str, str]:
    """(user, password) from the stack's Aurora master secret, read in ``region``."""
    aurora = ctx.outputs.aurora
    secret = aurora.master_secret if aurora else None
    if not secret:
        raise RecoveryError(
            f"stack {ctx.stack!r} exports no Aurora master secret: the scratch cluster's data "
            "cannot be checked"
        )
    try:
        body = ctx.aws("secretsmanager", region).get_secret_value(SecretId=secret)
        values = json.loads(body["SecretString"])
    except (ClientError, BotoCoreError, KeyError, ValueError) as error:
        raise RecoveryError(
            f"reading the Aurora master secret {secret!r} failed: {error}"
        ) from None
    default = ctx.config.aurora.master_username if ctx.config.aurora else "postgres"
    return str(values.get("username") or default), str(values["password"])


def test_restore(
    ctx: OpsContext, chosen: Chosen, holder: Holder, purpose: str = VERIFY
) -> tuple[str, dict[str, Any]]:
    cluster = aurora_cluster(ctx, chosen.store)
    if cluster is None:
        raise RecoveryError(f"stack {ctx.stack!r} exports no Aurora cluster of {chosen.store!r}")
    target = cluster_name(cluster.id, holder, purpose)
    wait = _wait(ctx)
    request = RestoreAuroraRequest(
        latest=True,
        target_cluster=target,
        cluster=cluster.id,
        region=cluster.region,
        reason=purpose,
        wait_delay=wait["Delay"],
        wait_attempts=wait["MaxAttempts"],
    )
    waits = io.StringIO()
    plan, prepared = build_plan(ctx, request, RestoreEnv(project_dir=Path.cwd(), out=waits))
    context = StepContext(run_id=run_id(holder, purpose))
    started = datetime.now().astimezone()
    try:
        for layer in plan.layers:
            for step in layer:
                if step.is_done(context):
                    continue
                context.results[step.id] = step.apply(context)
                step.verify(context)
        restore_seconds = (datetime.now().astimezone() - started).total_seconds()
        detail, figures = _check(ctx, chosen, cluster, prepared.figures)
    finally:
        delete_cluster(_rds(ctx, cluster.region), target, wait, context.run_id)
    where = (
        f"scratch Aurora cluster {target} restored from {cluster.id} to "
        f"{prepared.figures.get('recovery_point')} (latest restorable time) in "
        f"{restore_seconds:.1f}s, deleted after"
    )
    return f"{detail} ({where})", figures | {
        "scratch_cluster": target,
        "cluster_restore_seconds": round(restore_seconds, 3),
        "recovery_point": prepared.figures.get("recovery_point"),
    }


def _check(
    ctx: OpsContext, chosen: Chosen, cluster: AuroraCluster, figures: dict[str, Any]
) -> tuple[str, dict[str, Any]]:
    host, _, port = str(figures["endpoint"]).rpartition(":")
    user, password = master_login(ctx, cluster.region)
    database = (ctx.outputs.aurora.database if ctx.outputs.aurora else None) or (
        ctx.outputs.stores[chosen.store].database or chosen.store
    )
    target = PostgresSource(host, int(port), database, user, password)
    try:
        with psycopg.connect(target.conninfo(), autocommit=True) as connection:
            row = connection.execute("SELECT pg_is_in_recovery()").fetchone()
        if row is None or row[0]:
            raise CheckMissed(f"the scratch cluster at {host}:{port} is read-only (in recovery)")
        expected = chosen.manifest.counts
        found = count_rows(target, list(expected))
        difference, compared = compare_restored(chosen.manifest, target)
    except psycopg.Error as error:
        raise CheckMissed(
            f"the scratch cluster at {host}:{port} does not hold the backup's tables: "
            f"{' '.join(str(error).split())}"
        ) from None
    rows, backed_up = sum(found.values()), sum(expected.values())
    if backed_up and not rows:
        raise CheckMissed(f"the scratch cluster holds no rows; the backup had {backed_up:,}")
    backup = chosen.entry.backup_id
    if difference is None and found == expected:
        detail = (
            f"{backup}: {rows:,} rows in {len(found)} tables match the manifest; {compared}, "
            "nothing written since the backup"
        )
    else:
        changed = {k: (expected[k], found[k]) for k in expected if found.get(k) != expected[k]}
        detail = (
            f"{backup}: all {len(found)} tables of the backup restored, {rows:,} rows "
            f"({backed_up:,} in the backup); written since the backup: "
            f"{difference or ''}{'; rows (backup, restored) ' + str(changed) if changed else ''}"
        )
    return detail, {"rows": rows, "backup_rows": backed_up}


def delete_cluster(rds: Any, cluster_id: str, wait: dict[str, int], run: str | None) -> bool:
    """Delete the scratch cluster's instances, then the cluster, each waited for. ``run``: only
    a cluster tagged with that run (None: any scratch cluster the caller checked). False when
    there was nothing of it to delete."""
    found = describe_cluster(rds, cluster_id)
    if found is None:
        return False
    if run is not None and tags_of(found).get(TAG_RUN) != run:
        return False  # not this run's: never touched
    members = [str(m["DBInstanceIdentifier"]) for m in found.get("DBClusterMembers") or []]
    writer = writer_of(found) or f"{cluster_id}{WRITER_SUFFIX}"
    for instance in sorted(set(members) | {writer}):
        try:
            rds.delete_db_instance(
                DBInstanceIdentifier=instance, SkipFinalSnapshot=True, DeleteAutomatedBackups=True
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "DBInstanceNotFound":
                raise
            continue
        rds.get_waiter("db_instance_deleted").wait(DBInstanceIdentifier=instance, WaiterConfig=wait)
    rds.delete_db_cluster(DBClusterIdentifier=cluster_id, SkipFinalSnapshot=True)
    rds.get_waiter("db_cluster_deleted").wait(DBClusterIdentifier=cluster_id, WaiterConfig=wait)
    return True


def cleanup(ctx: OpsContext, store: str, now: datetime, forced: bool, dry_run: bool) -> list[str]:
    """Delete the scratch clusters of ``store``'s Aurora cluster that killed runs left; a line
    per one found."""
    cluster = aurora_cluster(ctx, store)
    if cluster is None:
        return []
    rds = _rds(ctx, cluster.region)
    found: list[tuple[str, Holder]] = []
    for page in rds.get_paginator("describe_db_clusters").paginate():
        for item in page.get("DBClusters", []):
            name = str(item["DBClusterIdentifier"])
            parsed = parse_cluster(name, cluster.id)
            if parsed is not None and tags_of(item).get(TAG_REASON) == parsed[1]:
                found.append((name, parsed[0]))
    wait = _wait(ctx)

    def remove(name: str) -> None:
        delete_cluster(rds, name, wait, None)

    return sweep(found, now, forced, dry_run, remove, "Aurora cluster", ("delete", "deleted"))
