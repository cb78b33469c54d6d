"""``invoke verify``: is every store's backup fresh, intact, replicated and restorable?

Per store:
- **freshness**: the age of its newest complete backup against its window, ``max(RPO, longest gap
  of its schedule)`` (the same window as its freshness alarm, ``components.alarms``): a store whose
  schedule is slower than its RPO has its RPO met by its ``continuous_protection`` between backups,
  whose health is the replication check's business. Read from the catalog: a few small GETs per
  store, never one per manifest.
- **checksums**: every object of the newest backup read through, in the vault and in the mirror,
  against the SHA-256 and size in its manifest.
- **integrity** (``drkit.ops.integrity``): every backup that could be restored, not only the
  newest: with ``--all`` each committed backup in the store's retention window, by default the
  newest plus a rotating sample that checks each one at least once a week; manifest bound to its
  backup, objects present in both copies with the fingerprint they were written with (LIST and
  HEAD, no data read), Kafka chains continuous. Reports coverage.
- **test restore**: the newest backup restored into a scratch target (a new database on the
  store's server, a throwaway ``redis-server``, renamed topics on the cluster, a scratch
  namespace compared object by object with the archive (``drkit.ops.verify_k8s``), a scratch
  InfluxDB database (``drkit.ops.verify_timeseries``)), its counts compared with the manifest's,
  the scratch target removed; on success the catalog entry is marked verified. Scratch namespaces
  and time-series databases carry their run's holder tag (``drkit.ops.scratch``): before its test
  restore, each run removes those a killed run left, and ``run_cleanup`` (``invoke verify
  --cleanup``) removes them on demand.

Per stack, **replication**: the vault's newest objects' S3 ``ReplicationStatus`` where the stack
exports a vault replication, and Aurora's ``AuroraGlobalDBReplicationLag`` from CloudWatch where it
exports a global database. What a stack does not have is reported ``not_configured``; what it has
but cannot be read is ``unreachable``, which fails the run like a miss: never a fake OK.

Every check is a step of one layer (all run, whatever another finds); the run ends with
``reports/verify.md`` and ``reports/verify.json`` and exits non-zero when anything missed.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any, TextIO

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel, ConfigDict, Field

from drkit.catalog import Catalog, CatalogEntry
from drkit.context import OpsContext
from drkit.kinds import REGISTRY
from drkit.ops.executor import Confirm, RunReport, Status, terminal_confirm
from drkit.ops.integrity import check_store
from drkit.ops.plan import FunctionStep, Plan, Step, StepContext
from drkit.ops.run import RunOptions, run_plan
from drkit.ops.scratch import PURPOSES, VERIFY, CheckMissed, Holder
from drkit.ops.selection import Chosen, object_store, readable, verify_checksums
from drkit.progress import ByteProgress, human_bytes
from drkit.recovery import BackupIndex
from drkit.reports import REPORTS_DIR, record_run, run_dir
from drkit.storage.objectstore import Encryption, ObjectStore
from stackmodels.durations import format_duration
from stackmodels.schedule import Cron

LOOKBACK = timedelta(days=7)
"""How far back freshness looks for a store's newest backup (to report its age when stale)."""
AURORA_LAG_METRIC = "AuroraGlobalDBReplicationLag"
LAG_WINDOW = timedelta(minutes=10)

OK, MISS, NOT_CONFIGURED, UNREACHABLE = "ok", "miss", "not_configured", "unreachable"
PASSING = {OK, NOT_CONFIGURED}


class VerifyRequest(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    stores: list[str] = Field(default_factory=list)
    test_restore: bool = True
    source: str = Field(default="vault", pattern="^(vault|mirror|isolated)$")
    all_backups: bool = False
    """Integrity-check every backup in the retention window, not the newest and a sample."""
    purpose: str = Field(default=VERIFY, pattern=f"^({'|'.join(PURPOSES)})$")
    """What the scratch targets are named for: ``verify``, or ``dr-test`` (the monthly drill)."""


@dataclass
class Check:
    subject: str
    check: str
    status: str
    detail: str
    figures: dict[str, Any] = field(default_factory=dict)


@dataclass
class VerifyReport:
    stack: str
    started_at: str
    checks: list[Check] = field(default_factory=list)
    run_status: str = ""

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(c.status in PASSING for c in self.checks)

    @property
    def misses(self) -> list[Check]:
        return [c for c in self.checks if c.status not in PASSING]

    def to_json(self) -> str:
        body = asdict(self) | {"ok": self.ok, "misses": len(self.misses)}
        return json.dumps(body, indent=2, default=str) + "\n"

    def to_markdown(self) -> str:
        verdict = "PASS" if self.ok else f"FAIL ({len(self.misses)} missed)"
        lines = [
            f"# Backup verification: {verdict}",
            "",
            f"Stack `{self.stack}`, started {self.started_at}; run {self.run_status}.",
            "",
        ]
        for kind in ("freshness", "checksums", "integrity", "replication", "test-restore"):
            rows = [c for c in self.checks if c.check == kind]
            if not rows:
                continue
            lines += [f"## {kind}", "", "| subject | status | detail |", "| --- | --- | --- |"]
            lines += [f"| {c.subject} | {c.status} | {c.detail} |" for c in rows]
            lines.append("")
        return "\n".join(lines)


class Verification:
    """The checks of one run; each step records its Check here, then raises if it missed."""

    def __init__(
        self,
        ctx: OpsContext,
        request: VerifyRequest,
        now: datetime | None = None,
        scratch_token: str | None = None,
    ):
        self.ctx = ctx
        self.request = request
        self.now = now or datetime.now(UTC)
        self.holder = Holder.mine(token=scratch_token)
        """Tags this run's scratch targets (its token names them)."""
        self.objects = object_store(ctx, request.source)
        self.index = BackupIndex(ctx.config, self.objects)
        self.stores = list(request.stores) or list(ctx.config.stores)
        for name in self.stores:
            ctx.store_config(name)
        self.report = VerifyReport(ctx.stack, self.now.isoformat())
        self._lock = threading.Lock()
        with readable(self.objects):
            found = self.index.catalog.entries(self.stores, self.now - LOOKBACK, self.now)
        self.newest: dict[str, CatalogEntry] = {}
        for entry in found:  # oldest first: the last one per store wins
            self.newest[entry.store] = entry

    def record(self, check: Check) -> Check:
        with self._lock:
            self.report.checks.append(check)
        if check.status not in PASSING:
            raise CheckMissed(check.detail)
        return check

    # --- freshness ---------------------------------------------------------------------------

    def window(self, store: str) -> tuple[timedelta, timedelta]:
        config = self.ctx.config.stores[store]
        rpo = self.ctx.config.data_classes[config.data_class].rpo
        return rpo, max(rpo, Cron(config.schedule).max_interval)

    def freshness(self, store: str) -> Check:
        rpo, window = self.window(store)
        config = self.ctx.config.stores[store]
        entry = self.newest.get(store)
        figures: dict[str, Any] = {
            "data_class": config.data_class,
            "rpo_seconds": rpo.total_seconds(),
            "window_seconds": window.total_seconds(),
        }
        if entry is None:
            return Check(
                store,
                "freshness",
                MISS,
                f"no complete backup in the last {LOOKBACK.days} days in {self.objects.name} "
                f"(window {_duration(window)}, RPO {_duration(rpo)})",
                figures,
            )
        age = self.now - entry.recovery_point
        figures |= {"backup_id": entry.backup_id, "age_seconds": round(age.total_seconds(), 1)}
        covered = (
            f"; {config.continuous_protection} covers the RPO between backups"
            if window > rpo and config.continuous_protection
            else ""
        )
        status = OK if age <= window else MISS
        return Check(
            store,
            "freshness",
            status,
            f"newest {entry.backup_id} is {_duration(age)} old, window {_duration(window)} "
            f"(RPO {_duration(rpo)} of {config.data_class}{covered})",
            figures,
        )

    # --- checksums ---------------------------------------------------------------------------

    def chosen(self, store: str) -> Chosen | None:
        entry = self.newest.get(store)
        if entry is None:
            return None
        with readable(self.objects):
            manifest = self.index.manifest(entry)
        return Chosen(store, self.index, entry, manifest, self.objects)

    def _other_copy(self) -> ObjectStore | None:
        """The copy checked beside the source: the mirror for the vault, the vault for the
        mirror; none for the isolated vault, which stands alone (the prod copies may be gone)."""
        if self.request.source == "isolated":
            return None
        return self.ctx.mirror() if self.request.source == "vault" else self.ctx.vault()

    def checksums(self, store: str) -> Check:
        chosen = self.chosen(store)
        if chosen is None:
            return Check(store, "checksums", MISS, "no recent backup to check")
        copies: list[ObjectStore] = [self.objects]
        mirror = self._other_copy()
        if mirror is not None:
            copies.append(mirror)
        problems, checked = [], []
        for copy in copies:
            total = sum(item.size for item in chosen.manifest.objects)
            progress = ByteProgress(f"checksums {store} {copy.name}", total=total)
            try:
                count, size = verify_checksums(copy, chosen.manifest.objects, progress)
                checked.append(f"{copy.name}: {count} objects, {human_bytes(size)}")
            except Exception as error:
                problems.append(f"{copy.name}: {error}")
            finally:
                progress.done()
        backup = chosen.entry.backup_id
        if problems:
            return Check(store, "checksums", MISS, f"{backup}: " + "; ".join(problems))
        return Check(
            store, "checksums", OK, f"{backup} matches its manifest in " + "; ".join(checked)
        )

    # --- integrity ---------------------------------------------------------------------------

    def chained(self, store: str) -> bool:
        return REGISTRY[self.ctx.config.stores[store].kind].backup.chains is not None

    def integrity(self, store: str) -> Check:
        copies: list[ObjectStore] = [self.objects]
        other = self._other_copy()
        if other is not None:
            copies.append(other)
        with readable(self.objects):
            coverage = check_store(
                self.index,
                copies,
                store,
                self.now,
                self.request.all_backups,
                Encryption(kms_key_id=self.ctx.outputs.vault_key_arn),
            )
        detail = coverage.describe()
        if coverage.failed:
            worst = "; ".join(f"{b}: {e}" for b, e in list(coverage.failed.items())[:5])
            return Check(store, "integrity", MISS, f"{detail}: {worst}", coverage.figures())
        if not coverage.in_window:
            return Check(store, "integrity", MISS, "no backup in the retention window to check")
        return Check(store, "integrity", OK, detail, coverage.figures())

    # --- replication -------------------------------------------------------------------------

    def vault_replication(self) -> Check:
        replication = self.ctx.outputs.vault_replication
        if replication is None:
            return Check(
                "vault", "replication", NOT_CONFIGURED, "the stack exports no vault replication"
            )
        if not replication.enabled:
            return Check(
                "vault",
                "replication",
                MISS,
                f"replication {replication.source.name} -> {replication.destination.name} is "
                "disabled (replicate_vault: false)",
            )
        own = self.ctx.outputs.backup_vault.name
        expected = "REPLICA" if own == replication.destination.name else "COMPLETED"
        client = self.ctx.aws("s3")
        limit = timedelta(minutes=replication.replication_time_minutes)
        problems, seen = [], 0
        for store, entry in sorted(self.newest.items()):
            keys = [entry.manifest_key]
            try:
                manifest = self.index.manifest(entry)
                keys += [item.key for item in manifest.objects]
            except Exception as error:
                problems.append(f"{store}: {error}")
            for key in keys:
                try:
                    head = client.head_object(Bucket=own, Key=key)
                except (ClientError, BotoCoreError) as error:
                    return Check("vault", "replication", UNREACHABLE, f"s3://{own}/{key}: {error}")
                seen += 1
                status = head.get("ReplicationStatus")
                age = self.now - head["LastModified"]
                if status == expected or (status == "PENDING" and age <= limit):
                    continue
                problems.append(
                    f"s3://{own}/{key}: replication status {status or 'absent'}"
                    + (f" after {_duration(age)}" if status == "PENDING" else "")
                )
        if problems:
            return Check("vault", "replication", MISS, "; ".join(problems[:5]))
        return Check(
            "vault",
            "replication",
            OK,
            f"{seen} newest objects {expected.lower()} -> {replication.destination.name}",
        )

    def aurora_lag(self) -> Check:
        aurora = self.ctx.outputs.aurora
        if aurora is None:
            return Check(
                "aurora",
                "replication",
                NOT_CONFIGURED,
                "the stack exports no Aurora global database",
            )
        secondaries = [c for r, c in aurora.clusters.items() if r != aurora.primary_region]
        if not secondaries:
            return Check(
                "aurora",
                "replication",
                UNREACHABLE,
                f"global database {aurora.global_cluster_id}: no secondary cluster in the outputs",
            )
        store = self.ctx.config.aurora.store if self.ctx.config.aurora else None
        data_class = self.ctx.config.stores[store].data_class if store else None
        rpo = self.ctx.config.data_classes[data_class].rpo if data_class else timedelta(minutes=1)
        found, problems = [], []
        for cluster in secondaries:
            try:
                points = self.ctx.aws("cloudwatch", cluster.region).get_metric_statistics(
                    Namespace="AWS/RDS",
                    MetricName=AURORA_LAG_METRIC,
                    Dimensions=[{"Name": "DBClusterIdentifier", "Value": cluster.id}],
                    StartTime=self.now - LAG_WINDOW,
                    EndTime=self.now + timedelta(minutes=1),
                    Period=60,
                    Statistics=["Maximum"],
                )["Datapoints"]
            except (ClientError, BotoCoreError) as error:
                return Check(
                    "aurora", "replication", UNREACHABLE, f"CloudWatch in {cluster.region}: {error}"
                )
            if not points:
                return Check(
                    "aurora",
                    "replication",
                    UNREACHABLE,
                    f"{cluster.id} ({cluster.region}): no {AURORA_LAG_METRIC} datapoints in "
                    f"the last {_duration(LAG_WINDOW)}: is it a secondary of "
                    f"{aurora.global_cluster_id}?",
                )
            lag = timedelta(milliseconds=max(float(p["Maximum"]) for p in points))
            found.append(f"{cluster.id} {lag.total_seconds():.1f}s")
            if lag > rpo:
                problems.append(f"{cluster.id} lags {_duration(lag)}, RPO {_duration(rpo)}")
        if problems:
            return Check("aurora", "replication", MISS, "; ".join(problems))
        return Check(
            "aurora",
            "replication",
            OK,
            f"max lag over {_duration(LAG_WINDOW)}: {', '.join(found)} (RPO {_duration(rpo)})",
        )

    # --- test restore ------------------------------------------------------------------------

    def test_restore(self, store: str) -> Check:
        chosen = self.chosen(store)
        if chosen is None:
            return Check(store, "test-restore", MISS, "no recent backup to restore")
        removed = self._leftovers(store)
        restore = REGISTRY[self.ctx.config.stores[store].kind].verify.test_restore
        detail, figures = restore(
            self.ctx, chosen, self.holder, self.request.source, self.request.purpose
        )
        Catalog(self.objects, self.ctx.outputs.vault_key_arn).mark_verified(chosen.entry, self.now)
        if removed:
            detail += "; before it, " + "; ".join(removed)
            figures["leftovers"] = removed
        return Check(store, "test-restore", OK, detail, figures)

    def _leftovers(self, store: str) -> list[str]:
        """Remove what killed runs left on this store's server (never a live run's)."""
        cleanup = REGISTRY[self.ctx.config.stores[store].kind].verify.scratch_cleanup
        if cleanup is None:
            return []
        lines = cleanup(self.ctx, store, datetime.now(UTC), False, False)
        return [line for line in lines if not line.startswith("kept ")]


def _duration(value: timedelta) -> str:
    return format_duration(value)


def build_plan(
    ctx: OpsContext,
    request: VerifyRequest,
    now: datetime | None = None,
    scratch_token: str | None = None,
) -> tuple[Plan, Verification]:
    verification = Verification(ctx, request, now, scratch_token)

    def step(
        subject: str,
        kind: str,
        description: str,
        check: Callable[[], Check],
        mutates: bool = False,
    ) -> FunctionStep:
        def run(context: StepContext) -> dict[str, Any]:
            try:
                result = check()
            except Exception as error:  # a check that cannot finish has missed
                result = Check(subject, kind, MISS, f"{type(error).__name__}: {error}")
            verification.record(result)
            context.note(result.detail)
            return asdict(result)

        return FunctionStep(f"{kind}.{subject}", description, run, mutates=mutates)

    steps: list[Step] = []
    scope = "every backup" if request.all_backups else "the newest and a rotating sample"
    alone = request.source == "isolated"  # the isolated copy is checked alone
    read_in = "the isolated vault" if alone else "the vault and the mirror"
    for store in verification.stores:
        entry = verification.newest.get(store)
        newest = entry.backup_id if entry else "none in the last week"
        _rpo, window = verification.window(store)
        steps.append(
            step(
                store,
                "freshness",
                f"age of {store}'s newest backup ({newest}) against {_duration(window)}",
                partial(verification.freshness, store),
            )
        )
        steps.append(
            step(
                store,
                "checksums",
                f"read backup {newest} of {store} in {read_in} and check every "
                "object's size and SHA-256",
                partial(verification.checksums, store),
            )
        )
        steps.append(
            step(
                store,
                "integrity",
                f"{scope} of {store}'s backups in its retention window: manifest bound to its "
                f"backup, objects' fingerprints in {'it' if alone else 'both copies'} (LIST "
                "and HEAD, no data read)"
                + (", chain continuity" if verification.chained(store) else "")
                + "; report coverage",
                partial(verification.integrity, store),
            )
        )
        if request.test_restore:
            steps.append(
                step(
                    store,
                    "test-restore",
                    f"restore {newest} of {store} into a scratch target, compare counts with "
                    "the manifest, remove the scratch target, mark the backup verified",
                    partial(verification.test_restore, store),
                    mutates=True,
                )
            )
    if not alone:  # the prod vault's replication is not the isolated copy's business
        steps.append(
            step(
                "vault",
                "replication",
                "S3 replication status of each store's newest backup objects",
                verification.vault_replication,
            )
        )
    steps.append(
        step(
            "aurora",
            "replication",
            f"Aurora {AURORA_LAG_METRIC} over the last {_duration(LAG_WINDOW)}",
            verification.aurora_lag,
        )
    )
    parameters: dict[str, Any] = request.model_dump() | {
        "stack": ctx.stack,
        "source": verification.objects.name,
        "newest": {s: e.backup_id for s, e in verification.newest.items()},
    }
    return Plan("verify", [steps], parameters), verification


def write_verify_report(report: VerifyReport, directory: Path) -> tuple[Path, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    markdown, body = directory / "verify.md", directory / "verify.json"
    markdown.write_text(report.to_markdown())
    body.write_text(report.to_json())
    return markdown, body


def run_verify(
    ctx: OpsContext,
    request: VerifyRequest,
    options: RunOptions,
    project_dir: Path,
    out: TextIO,
    confirm: Confirm = terminal_confirm,
    now: datetime | None = None,
    scratch_token: str | None = None,
) -> tuple[RunReport, VerifyReport]:
    """Build, run and report; the exit code is the run's, or 1 when a check missed."""
    plan, verification = build_plan(ctx, request, now, scratch_token)
    run = run_plan(ctx, plan, options, project_dir, out, "verify-run", confirm=confirm)
    report = verification.report
    report.run_status = run.status.value
    if options.dry_run:
        return run, report
    root = project_dir / REPORTS_DIR
    markdown, _ = write_verify_report(report, run_dir(root, run.run_id))
    record_run(
        root,
        run.run_id,
        operation="verify",
        stack=ctx.stack,
        outcome=run.status.value if run.exit_code else ("passed" if report.ok else "failed"),
        started_at=run.started_at,
        seconds=run.seconds,
        finished_at=run.finished_at,
        journal=run.journal,
    )
    for miss in report.misses:
        out.write(f"MISS {miss.check} {miss.subject} ({miss.status}): {miss.detail}\n")
    verdict = "PASS" if report.ok else f"FAIL: {len(report.misses)} check(s) missed"
    out.write(f"verify {verdict}; report {markdown}\n")
    return run, report


def exit_code(run: RunReport, report: VerifyReport) -> int:
    if run.status is Status.DRY_RUN:
        return 0
    return run.exit_code or (0 if report.ok else 1)


def run_cleanup(ctx: OpsContext, stores: list[str], out: TextIO, *, dry_run: bool = False) -> int:
    """``invoke verify --cleanup``: remove the scratch targets killed verify runs left on each
    store's server, also those a run on another host made (the operator says none is running),
    never one whose process on this host is alive. Exit code: 1 when a store could not be
    cleaned, else 0."""
    names = stores or list(ctx.config.stores)
    for name in names:
        ctx.store_config(name)
    now, failed, seen = datetime.now(UTC), 0, 0
    for name in names:
        cleanup = REGISTRY[ctx.config.stores[name].kind].verify.scratch_cleanup
        if cleanup is None:
            continue
        try:
            lines = cleanup(ctx, name, now, True, dry_run)
        except Exception as error:  # one store's server down: report it, clean the others
            failed += 1
            out.write(f"{name}: cleanup failed: {type(error).__name__}: {error}\n")
            continue
        seen += len(lines)
        for line in lines:
            out.write(f"{name}: {line}\n")
    mode = ", dry run: nothing removed" if dry_run else ""
    out.write(f"verify cleanup: {seen} scratch target(s) found{mode}\n")
    return 1 if failed else 0
