"""``invoke restore.redis``: a Redis backup into the store's self-hosted server, or into a new
ElastiCache replication group seeded from the S3 export, as a plan.

Self-hosted (``--stack local``; see ``drkit.ops.redis_target`` for how the server is found): the
RDB is streamed into a staging file beside the data file and verified against the manifest while
the server still runs; only then is the server stopped, the file swapped in and the server started,
and its keys counted against the manifest. A server that holds keys is refused unless ``--force``.

Killed at any point, the run leaves something ``--resume`` (or a fresh run) finishes: before the
server is stopped the journal gets a ``redis_swap`` event naming the data file, the staged file
(size, SHA-256) and where the previous file goes; the next run finds the newest unfinished one for
this data file, and its restore step first brings the server back (``recover_swap``: the swap
finished when the staged file is the journaled one, else the previous file put back), then
restores as usual, or stops there when the server already runs on this backup's file.

Already restored is judged by the data: the server's content against the backup's fingerprint
(keys per database, their names, types and expiries, a sample of values: ``drkit.redis_content``),
never by a marker. A server that holds this backup's data is left alone (the step is "already
done"); one that lost it, or part of it, without a restart is restored again. ``--force`` always
restores. The marker beside the data file only tells that the server's keys came from a restore
of this backup (so a re-run does not refuse them as someone else's), never that they are intact.
The verify step compares the same fingerprint after the restore.

Any Redis by URL (``--target-url redis://[user:password@]host:port``, ``rediss://`` for TLS with
``?ssl_ca_certs=FILE``): the backup is loaded into a throwaway server here and copied key by key
with DUMP/RESTORE, nothing stopped (``drkit.restore.redis_copy``); a multi-shard ElastiCache
export's shards all go into that one server, judged against the fingerprint of the shards
together. The password never reaches the
plan, the journal or a report (``***``); ``--resume`` of such a run takes it from
``REDISCLI_AUTH``.

ElastiCache (``--replication-group NAME``): a new group created with ``SnapshotArns`` pointing at
the backup's ``.rdb`` objects, after they were read through and verified. An existing group of that
name is refused: the restore never writes into a live cache.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

from botocore.exceptions import ClientError
from pydantic import AfterValidator, Field

from drkit import targets
from drkit.backup.manifest import Manifest, StoredObject
from drkit.backup.redis import RedisSource
from drkit.context import OpsContext
from drkit.ops.journal import Journal
from drkit.ops.plan import FunctionStep, Plan, StepContext
from drkit.ops.redis_target import live_target, server_run_id
from drkit.ops.selection import Chosen, TargetNotEmptyError, check_present, choose
from drkit.ops.verbs import Holds, RestoreEnv, RestoreRequest, RestoreVerb
from drkit.progress import ByteProgress
from drkit.recovery import RecoveryError
from drkit.restore.redis import (
    ElastiCacheRestoreRequest,
    RedisRestoreError,
    Swap,
    TargetNotEmpty,
    VolumeTarget,
    _preflight,
    answers,
    holds_backup,
    rdb_object,
    rdb_objects,
    recover_swap,
    restore_elasticache,
    restore_redis,
    staged_files,
    verify_restored,
)
from drkit.restore.redis_copy import PASSWORD_ENV, masked, parse_target_url, restore_by_copy
from drkit.restore.redis_copy import preflight as url_preflight
from stackmodels.config import StoreKind

MARKER_SUFFIX = ".drkit-restored.json"
"""Beside the data file after a restore: which backup the running server (by run_id) loaded."""
JOURNAL_DIR = Path(".drkit/journal")  # drkit.ops.run's, which imports the task modules' callers
SWAP_EVENT = "redis_swap"
PENDING_PHASES = {"stopping", "starting"}
"""A swap whose last journaled phase is one of these was cut short: the server may be down."""
SCAN_JOURNALS = 50
"""A fresh run looks for a killed run's swap in this many newest journals."""


def _group_name(name: str | None) -> str | None:
    return None if name is None else targets.replication_group(name)


class RestoreRedisRequest(RestoreRequest):
    store: str = "session-cache"
    at: str | None = None
    backup: str | None = None
    force: bool = False
    source: str = Field(default="vault", pattern="^(vault|mirror|isolated)$")
    replication_group: Annotated[str | None, AfterValidator(_group_name)] = None
    node_type: str | None = Field(default=None, pattern=r"^cache\.[a-z0-9]+\.[a-z0-9]+$")
    replicas: int = Field(default=1, ge=0, le=5)
    wait_delay: int = Field(default=30, ge=0)
    target_url: str | None = None
    """Restore into this server (``redis://``, ``rediss://``) by DUMP/RESTORE, stopping nothing."""


@dataclass(frozen=True)
class Prepared(Holds):
    chosen: Chosen
    rdbs: list[StoredObject]
    target: VolumeTarget | None
    elasticache: ElastiCacheRestoreRequest | None
    left_by: str | None = None
    """The run whose swap was cut short on this target (its journal holds the record)."""
    recovering: bool = False
    """The server is down after a killed restore: the step brings it back before anything."""
    figures: dict[str, Any] = field(default_factory=dict)
    url_target: RedisSource | None = None
    """``--target-url``: the server the keys are copied into."""


def pending_swap(journal_dir: Path, rdb_path: Path, resume: str | None) -> tuple[str, Swap] | None:
    """The swap of ``rdb_path`` a killed run left unfinished, with that run's id: in the resumed
    run's journal, or (a fresh run) in the newest journal that swapped this file at all."""
    if resume:
        candidates = [journal_dir / f"{resume}.jsonl"]
    else:
        found = [p for p in journal_dir.glob("*.jsonl") if p.is_file()]
        candidates = sorted(found, key=lambda p: p.stat().st_mtime, reverse=True)[:SCAN_JOURNALS]
    for path in candidates:
        last: dict[str, Any] | None = None
        try:
            for event in Journal(journal_dir, path.stem).events():
                if event.get("event") == SWAP_EVENT and event.get("rdb") == str(rdb_path):
                    last = event
        except (ValueError, OSError):  # a line cut short by the kill: this journal tells nothing
            continue
        if last is not None:
            if last.get("phase") not in PENDING_PHASES:
                return None
            try:
                return path.stem, Swap.from_fields(last)
            except (KeyError, ValueError):
                return None
    return None


def prepare(
    ctx: OpsContext, request: RestoreRedisRequest, project_dir: Path, resume: str | None = None
) -> Prepared:
    """Resolve and check everything; raises ValueError subclasses naming the bad input."""
    config = ctx.store_config(request.store)
    if config.kind is not StoreKind.REDIS:
        raise RecoveryError(f"store {request.store!r} is {config.kind.value}, not redis")
    chosen = choose(ctx, request.store, request.at, request.backup, request.source)
    manifest = chosen.manifest
    if request.target_url is not None:
        return _prepare_url(request, chosen, resume)
    if request.replication_group is None:
        try:
            rdbs = [rdb_object(manifest)]
        except RedisRestoreError as error:
            raise RecoveryError(str(error)) from None
        check_present(chosen.objects, manifest, rdbs)
        target = live_target(ctx, request.store, project_dir)
        left = pending_swap(project_dir / JOURNAL_DIR, target.rdb_path, resume)
        if not answers(target) and (
            left is not None or staged_files(target) or target.previous_path.exists()
        ):
            # Down after a killed restore: the step brings it back first, then checks it.
            return Prepared(chosen, rdbs, target, None, left and left[0], recovering=True)
        # A resumed run finds the keys its own restore loaded: not a reason to refuse; nor are
        # the keys a killed restore of this same backup was already replacing.
        force = (
            request.force
            or (left is not None and left[1].backup_id == manifest.backup_id)
            or loaded_by_restore(target, manifest.backup_id)
            or holds_backup(manifest, target.source) is None
        )
        _checked(manifest, rdbs[0], target, force)
        return Prepared(chosen, rdbs, target, None, left and left[0])
    if request.source != "vault":
        raise RecoveryError("ElastiCache seeds from S3: restore into it from the vault only")
    rdbs = sorted((i for i in manifest.objects if i.name.endswith(".rdb")), key=lambda i: i.name)
    if not rdbs:
        raise RecoveryError(f"backup {manifest.backup_id} holds no RDB object")
    check_present(chosen.objects, manifest, rdbs)
    _refuse_existing_group(ctx, request.replication_group)
    node_type = request.node_type or (ctx.config.elasticache and ctx.config.elasticache.node_type)
    if not node_type:
        raise RecoveryError("give --node-type (the stack config has no elasticache section)")
    cache = ctx.config.elasticache
    elasticache = ElastiCacheRestoreRequest(
        replication_group_id=request.replication_group,
        cache_node_type=node_type,
        description=f"restored by drkit from {request.store} backup {manifest.backup_id}",
        engine_version=cache.engine_version if cache is not None else None,
        replicas=request.replicas,
    )
    return Prepared(chosen, rdbs, None, elasticache)


def url_source(url: str) -> RedisSource:
    """``--target-url`` as a server to reach; a resumed run's URL (password ``***``) takes the
    password from ``REDISCLI_AUTH``."""
    try:
        source = parse_target_url(url)
    except ValueError as error:
        raise RecoveryError(str(error)) from None
    if source.password == "***":
        password = os.environ.get(PASSWORD_ENV)
        if not password:
            raise RecoveryError(
                f"the journal keeps --target-url without its password ({url}): set "
                f"{PASSWORD_ENV} to the target's password to resume"
            )
        source = dataclasses.replace(source, password=password)
    return source


def _prepare_url(request: RestoreRedisRequest, chosen: Chosen, resume: str | None) -> Prepared:
    if request.replication_group is not None:
        raise RecoveryError("give --target-url or --replication-group, not both")
    assert request.target_url is not None
    manifest = chosen.manifest
    try:
        rdbs = rdb_objects(manifest)  # several: an ElastiCache export's shards, copied together
    except RedisRestoreError as error:
        raise RecoveryError(str(error)) from None
    check_present(chosen.objects, manifest, rdbs)
    source = url_source(request.target_url)
    already = not request.force and holds_backup(manifest, source) is None
    try:
        url_preflight(manifest, source, request.force or bool(resume) or already)
    except TargetNotEmpty as error:
        raise TargetNotEmptyError(str(error)) from None
    except RedisRestoreError as error:
        raise RecoveryError(str(error)) from None
    return Prepared(chosen, rdbs, None, None, url_target=source)


def _checked(manifest: Manifest, rdb: StoredObject, target: VolumeTarget, force: bool) -> None:
    """``_preflight`` with its refusals as the task's (exit 2, naming the flag)."""
    try:
        _preflight(manifest, rdb, target, force)
    except TargetNotEmpty as error:
        raise TargetNotEmptyError(str(error).replace("Pass force", "Pass --force")) from None
    except RedisRestoreError as error:
        raise RecoveryError(str(error)) from None


def marker_path(target: VolumeTarget) -> Path:
    return target.rdb_path.with_name(target.rdb_path.name + MARKER_SUFFIX)


def loaded_by_restore(target: VolumeTarget, backup_id: str) -> bool:
    """The server runs on the data of ``backup_id``: a restore of it wrote the marker, and the
    server has not restarted since (Redis's run_id is new at every start)."""
    try:
        recorded = json.loads(marker_path(target).read_text())
        return bool(
            recorded.get("backup_id") == backup_id
            and recorded.get("run_id") == server_run_id(target)
        )
    except Exception:  # no marker, an unreadable one, a server that does not answer
        return False


def _refuse_existing_group(ctx: OpsContext, group: str) -> None:
    client = ctx.aws("elasticache")
    try:
        found = client.describe_replication_groups(ReplicationGroupId=group)["ReplicationGroups"]
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "ReplicationGroupNotFoundFault":
            return
        raise RecoveryError(f"cannot check ElastiCache for {group!r}: {error}") from None
    status = found[0].get("Status", "?") if found else "?"
    raise TargetNotEmptyError(
        f"ElastiCache replication group {group!r} already exists ({status}); a restore creates a "
        "new group and never writes into a live one. Pick another --replication-group name. "
        "Nothing was changed."
    )


def build_plan(
    ctx: OpsContext, request: RestoreRedisRequest, env: RestoreEnv
) -> tuple[Plan, Prepared]:
    """``env.resume``: the run id being resumed (its journal is where a cut-short swap is looked
    for; a fresh run looks in the newest journals)."""
    project_dir, resume = env.project_dir, env.resume
    prepared = prepare(ctx, request, project_dir, resume)
    prepared.figures.update(data_loss_figures(prepared))
    if prepared.url_target is not None:
        steps = _url_steps(request, prepared, resume)
    elif prepared.elasticache is not None:
        steps = _elasticache_steps(ctx, request, prepared)
    else:
        steps = _self_hosted_steps(request, prepared, project_dir / JOURNAL_DIR, resume)
    entry = prepared.chosen.entry
    if prepared.url_target is not None:
        target = prepared.url_target.name
    elif prepared.target is None:
        target = f"new ElastiCache group {request.replication_group}"
    else:
        target = prepared.target.name
    parameters: dict[str, Any] = request.model_dump() | {
        "stack": ctx.stack,
        "backup_id": entry.backup_id,
        "recovery_point": entry.recovery_point.isoformat(),
        "target": target,
    }
    if request.target_url is not None:
        parameters["target_url"] = masked(request.target_url)
    plan = Plan.from_dependencies(
        f"restore redis {request.store}",
        steps,
        {steps[1].id: [steps[0].id]},
        parameters,
    )
    return plan, prepared


def _self_hosted_steps(
    request: RestoreRedisRequest, prepared: Prepared, journal_dir: Path, resume: str | None
) -> list[FunctionStep]:
    target = prepared.target
    assert target is not None
    manifest, objects = prepared.chosen.manifest, prepared.chosen.objects
    rdb = prepared.rdbs[0]
    marker = marker_path(target)
    step_id = f"restore.{request.store}"

    def write_marker() -> None:
        marker.write_text(
            json.dumps({"backup_id": manifest.backup_id, "run_id": server_run_id(target)})
        )

    def record(context: StepContext, phase: str, swap: Swap | None, **extra: Any) -> None:
        if context.journal is not None:
            fields = swap.fields() if swap is not None else {"rdb": str(target.rdb_path)}
            context.journal.append(SWAP_EVENT, step=step_id, phase=phase, **fields, **extra)

    def recover(context: StepContext) -> dict[str, Any] | None:
        """Bring back what a killed run left; the step's result when that finished the job."""
        left = pending_swap(journal_dir, target.rdb_path, resume)
        swap = left[1] if left else None
        outcome = recover_swap(target, swap)
        if outcome == "nothing":
            return None
        record(context, "recovered", swap, outcome=outcome, left_by=left and left[0])
        context.note(
            f"{target.name} was left by a killed restore"
            f"{f' (run {left[0]})' if left else ''}: {outcome}"
        )
        if outcome == "finished" and swap is not None and swap.backup_id == manifest.backup_id:
            keyspace, _, _ = verify_restored(manifest, target)
            write_marker()
            target.previous_path.unlink(missing_ok=True)
            return {"keys_per_db": {str(db): n for db, n in keyspace.items()}, "recovered": True}
        if outcome != "cleaned":  # the server holds other data than when the plan was checked
            same = swap is not None and swap.backup_id == manifest.backup_id
            force = request.force or same or loaded_by_restore(target, manifest.backup_id)
            _checked(manifest, rdb, target, force)
        return None

    def restore(context: StepContext) -> dict[str, Any]:
        recovered = recover(context)
        if recovered is not None:
            return recovered

        def on_swap(phase: str, swap: Swap) -> None:
            if phase == "started":
                write_marker()
            record(context, phase, swap)

        progress = ByteProgress(f"stage {rdb.name} for {target.name}", total=rdb.raw_size)
        try:
            result = restore_redis(
                manifest, objects, target, force=True, progress=progress, on_swap=on_swap
            )
        finally:
            progress.done()
        context.note(
            f"{sum(result.keys_per_db.values()):,} keys in {len(result.keys_per_db)} databases; "
            f"server down {result.downtime_seconds:.2f}s"
        )
        return {
            "keys_per_db": {str(db): n for db, n in result.keys_per_db.items()},
            "downtime_seconds": result.downtime_seconds,
        }

    def restored_already(context: StepContext) -> bool:
        """Judged by the data (never by the marker alone). ``--force`` always restores, once: a
        resumed forced run whose restore had finished finds the backup's data and stops there."""
        return (
            (not request.force or resume is not None)
            and not staged_files(target)
            and pending_swap(journal_dir, target.rdb_path, resume) is None
            and holds_backup(manifest, target.source) is None
        )

    def verify(context: StepContext) -> None:
        loaded_here = step_id in context.results  # else found holding the data already
        keyspace, loaded, expired = verify_restored(manifest, target, loaded_here)
        if "keys" not in manifest.counts:
            context.note("the backup has no key counts: the restored keys were not compared")
            return
        seen = f"the load saw {loaded} plus {expired} expired, " if loaded_here else ""
        context.note(
            f"{sum(keyspace.values()):,} keys; {seen}the backup holds {manifest.counts['keys']}"
        )
        context.note(_content_verdict(manifest, target.source))

    recovering = (
        f"bring back {target.name}, down after a killed restore"
        f"{f' (run {prepared.left_by})' if prepared.left_by else ''}: finish its swap or put "
        "the previous file back, and start it; then, unless it runs on this backup already, "
        if prepared.recovering
        else ""
    )
    return [
        FunctionStep(
            step_id,
            f"{recovering}stream {rdb.key} of backup {manifest.backup_id} ({objects.name}, saved "
            f"at {prepared.chosen.entry.recovery_point.isoformat()}) beside {target.rdb_path} and "
            f"verify its SHA-256; then stop {target.name}, swap the file in, start it",
            restore,
            check=restored_already,
        ),
        FunctionStep(
            f"verify.{request.store}",
            f"compare the keys of {target.name} with the manifest's "
            f"({manifest.counts.get('keys', 'no count')} keys)",
            lambda c: None,
            confirm=verify,
            mutates=False,
        ),
    ]


def _content_verdict(manifest: Manifest, source: RedisSource) -> str:
    """The verify's content comparison: a note when it matches or cannot be made, else fails."""
    if not isinstance(manifest.consistent_point.get("content"), dict):
        return "the backup has no content fingerprint: keys counted only"
    difference = holds_backup(manifest, source)
    if difference is not None:
        raise RecoveryError(f"{source.name} after restoring {manifest.backup_id}: {difference}")
    return "content matches the backup's fingerprint (key names, types, expiries, sampled values)"


def _url_steps(
    request: RestoreRedisRequest, prepared: Prepared, resume: str | None
) -> list[FunctionStep]:
    source = prepared.url_target
    assert source is not None
    manifest, objects = prepared.chosen.manifest, prepared.chosen.objects
    names = ", ".join(rdb.name for rdb in prepared.rdbs)
    keys = ", ".join(rdb.key for rdb in prepared.rdbs)

    def restore(context: StepContext) -> dict[str, Any]:
        progress = ByteProgress(f"stage {names} for {source.name}")
        try:
            result = restore_by_copy(
                manifest, objects, source, force=request.force or bool(resume), progress=progress
            )
        except TargetNotEmpty as error:
            raise TargetNotEmptyError(str(error)) from None
        finally:
            progress.done()
        context.note(
            f"{result.copied:,} keys copied into {source.name} "
            f"({result.expired} expired on the way) in {result.seconds:.2f}s"
        )
        return {
            "keys_per_db": {str(db): n for db, n in result.keys_per_db.items()},
            "copied": result.copied,
        }

    def restored_already(context: StepContext) -> bool:
        forced = request.force and resume is None  # a resumed forced run: its copy may be done
        return not forced and holds_backup(manifest, source) is None

    def verify(context: StepContext) -> None:
        context.note(_content_verdict(manifest, source))

    return [
        FunctionStep(
            f"restore.{request.store}",
            f"stream {keys} of backup {manifest.backup_id} ({objects.name}, saved at "
            f"{prepared.chosen.entry.recovery_point.isoformat()}), verify "
            + ("its SHA-256, load it" if len(prepared.rdbs) == 1 else "each SHA-256, load each")
            + f" into a throwaway redis-server here and copy every key into {source.name} with "
            "DUMP/RESTORE (nothing is stopped)",
            restore,
            check=restored_already,
        ),
        FunctionStep(
            f"verify.{request.store}",
            f"compare the content of {source.name} with the backup's fingerprint "
            f"({manifest.counts.get('keys', 'no count')} keys)",
            lambda c: None,
            confirm=verify,
            mutates=False,
        ),
    ]


def _elasticache_steps(
    ctx: OpsContext, request: RestoreRedisRequest, prepared: Prepared
) -> list[FunctionStep]:
    group = prepared.elasticache
    assert group is not None
    manifest, objects = prepared.chosen.manifest, prepared.chosen.objects
    client = ctx.aws("elasticache")

    def create(context: StepContext) -> dict[str, Any]:
        result = restore_elasticache(manifest, objects, client, group, delay=request.wait_delay)
        context.note(f"{result.replication_group_id} {result.status}, endpoint {result.endpoint}")
        return {"status": result.status, "endpoint": result.endpoint, "seeds": result.snapshot_arns}

    def exists(context: StepContext) -> bool:
        with contextlib.suppress(ClientError):
            found = client.describe_replication_groups(
                ReplicationGroupId=group.replication_group_id
            )["ReplicationGroups"]
            return bool(found) and found[0].get("Status") == "available"
        return False

    def verify(context: StepContext) -> None:
        found = client.describe_replication_groups(ReplicationGroupId=group.replication_group_id)[
            "ReplicationGroups"
        ]
        status = found[0].get("Status") if found else "missing"
        if status != "available":
            raise RecoveryError(f"replication group {group.replication_group_id} is {status}")
        context.note(
            f"{group.replication_group_id} available; key count not checked from here "
            "(ElastiCache answers inside its VPC only: run `invoke verify` there)"
        )

    names = ", ".join(item.key for item in prepared.rdbs)
    return [
        FunctionStep(
            f"create-replication-group.{group.replication_group_id}",
            f"verify {names} ({objects.name}) and create ElastiCache replication group "
            f"{group.replication_group_id!r} ({group.cache_node_type}, {group.replicas} replicas) "
            f"seeded from backup {manifest.backup_id}",
            create,
            check=exists,
        ),
        FunctionStep(
            f"verify.{request.store}",
            f"check that {group.replication_group_id} is available",
            lambda c: None,
            confirm=verify,
            mutates=False,
        ),
    ]


def data_loss_figures(prepared: Prepared, now: datetime | None = None) -> dict[str, Any]:
    moment = now or datetime.now(UTC)
    entry = prepared.chosen.entry
    return {
        "backup_id": entry.backup_id,
        "recovery_point": entry.recovery_point.isoformat(),
        "recovery_point_age_seconds": round((moment - entry.recovery_point).total_seconds(), 1),
        "keys_in_backup": prepared.chosen.manifest.counts.get("keys", "not counted"),
    }


VERB = RestoreVerb(RestoreRedisRequest, build_plan, "restore-redis")
