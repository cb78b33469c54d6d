"""The local round trip, the main job until ``invoke drill`` lands.

It does for real, on this machine: start the local servers, provision the local stack, seed the
trading database, back it up once with the engine to the S3 vault and the GCS mirror, corrupt the
database, restore from the vault and from the mirror into fresh databases, and compare every row.
It reports measured figures: sizes, throughput, the time from disaster to verified restore (RTO),
and the writes made after the backup that the restore cannot contain (RPO).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import psycopg

from drkit.backup.engine import run_backup
from drkit.backup.manifest import Manifest
from drkit.backup.postgres import PostgresHandler
from drkit.context import OpsContext
from drkit.endpoints import postgres_source
from drkit.local.environment import LocalEnvironment
from drkit.local.stack import provision, write_state
from drkit.ops.journal import new_run_id
from drkit.ops.redis_target import write_local_control
from drkit.progress import ByteProgress, human_bytes
from drkit.reports import record_run, run_dir
from drkit.restore.postgres import restore_postgres
from drkit.seed.postgres import TradingDataSize, seed_trading_database, table_digests
from stackmodels import StackConfig
from stackmodels.config import StoreKind

STORE = "trading-db"


@dataclass
class Step:
    name: str
    started: str
    seconds: float
    detail: str = ""


@dataclass
class RoundTripReport:
    started_at: str
    size_mb: float
    steps: list[Step] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)
    verified: dict[str, bool] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return bool(self.verified) and all(self.verified.values())


class Narrator:
    """Numbered steps with their measured duration, printed as they finish."""

    def __init__(self, report: RoundTripReport, total: int, out: TextIO) -> None:
        self.report, self.total, self.out, self.number = report, total, out, 0

    @contextmanager
    def step(self, name: str) -> Iterator[Callable[[str], None]]:
        self.number += 1
        self.out.write(f"[{self.number}/{self.total}] {name} ...\n")
        self.out.flush()
        started, clock = datetime.now(UTC).isoformat(), time.monotonic()
        details: list[str] = []
        yield details.append
        seconds = time.monotonic() - clock
        detail = "; ".join(details)
        self.report.steps.append(Step(name, started, round(seconds, 3), detail))
        self.out.write(f"      done in {seconds:.2f}s{': ' + detail if detail else ''}\n")
        self.out.flush()


def run_round_trip(
    workdir: Path, project_dir: Path, size_mb: float, reports_dir: Path, out: TextIO = sys.stdout
) -> RoundTripReport:
    report = RoundTripReport(started_at=datetime.now(UTC).isoformat(), size_mb=size_mb)
    say = Narrator(report, total=8, out=out)
    config = StackConfig.for_stack("prod", project_dir)
    out.write("== Local round trip: PostgreSQL -> S3 vault + GCS mirror -> restore -> verify\n")
    with say.step("start local servers (PostgreSQL, Redis, AWS emulator, GCS emulator)"):
        env = LocalEnvironment(workdir).__enter__()
    try:
        with say.step("provision the local stack (vault, mirror, audit bucket, KMS key)") as note:
            outputs, credentials = provision(env, config)
            write_state(project_dir / ".drkit" / "local", outputs, credentials)
            write_local_control(project_dir, config.stores_of(StoreKind.REDIS)[0], env.redis)
            ctx = OpsContext("local", config, outputs, credentials)
            note(f"vault s3://{outputs.backup_vault.name}, mirror gs://{outputs.gcs_mirror_bucket}")
        source = postgres_source(ctx, STORE)
        with say.step(f"seed the trading database ({size_mb:g} MB target)") as note:
            counts = seed_trading_database(
                source.conninfo(), TradingDataSize.for_megabytes(size_mb)
            )
            before = table_digests(source.conninfo())
            note(", ".join(f"{t.split('.')[1]} {n:,}" for t, n in counts.items()))
        with say.step(f"back up {STORE} once to the vault and the mirror") as note:
            progress = ByteProgress(STORE, out)
            clock = time.monotonic()
            data_class = config.stores[STORE].data_class
            manifest = run_backup(
                STORE, data_class, PostgresHandler(source), ctx.destinations(data_class), progress
            )
            progress.done()
            seconds = time.monotonic() - clock
            dump = manifest.objects[0]
            report.figures |= {
                "backup_id": manifest.backup_id,
                "dump_bytes": dump.raw_size,
                "stored_bytes": dump.size,
                "compression_ratio": round(dump.raw_size / max(dump.size, 1), 2),
                "backup_seconds": round(seconds, 3),
                "backup_mib_per_second": round(dump.raw_size / 1048576 / max(seconds, 1e-6), 1),
                "consistent_point": manifest.consistent_point,
            }
            note(
                f"{manifest.backup_id}: {human_bytes(dump.raw_size)} dump -> "
                f"{human_bytes(dump.size)} zstd, sha256 {dump.sha256[:12]}..."
            )
        with say.step("disaster: corrupt orders, then keep writing") as note:
            disaster_clock = time.monotonic()
            deleted = _corrupt(source.conninfo())
            note(f"{deleted:,} orders deleted, 25 orders written after the backup")
        for name, store in (("vault", ctx.vault()), ("mirror", ctx.mirror())):
            assert store is not None
            with say.step(f"restore from the {name} into a fresh database and verify") as note:
                database = f"aipx_from_{name}"
                env.postgres.create_database(database)
                target = postgres_source(ctx, STORE, database)
                restore_postgres(manifest, store, target)
                after = table_digests(target.conninfo())
                same = after == before
                report.verified[name] = same
                note(f"{sum(counts.values()):,} rows, {'identical' if same else 'DIFFERENT'}")
                if name == "vault":
                    report.figures["rto_seconds"] = round(time.monotonic() - disaster_clock, 3)
                    report.figures |= _data_loss(source.conninfo(), target.conninfo(), manifest)
    finally:
        with say.step("stop local servers"):
            env.__exit__(None, None, None)
    directory = _write_reports(report, reports_dir)
    out.write(_summary(report))
    out.write(f"reports: {directory / 'roundtrip.md'} and roundtrip.json\n")
    return report


def _corrupt(conninfo: str) -> int:
    """Delete a tenth of the orders, then keep trading: 25 orders placed after the backup."""
    with psycopg.connect(conninfo, autocommit=True) as connection:
        deleted = connection.execute("DELETE FROM orders WHERE id % 10 = 3").rowcount
        for _ in range(25):
            connection.execute(
                "INSERT INTO orders (account_id, symbol, side, qty, status, placed_at)"
                " VALUES (1, 'AAPL', 'buy', 1, 'open', clock_timestamp())"
            )
            time.sleep(0.01)
    return deleted


def _data_loss(source: str, restored: str, manifest: Manifest) -> dict[str, Any]:
    """Measured RPO: writes after the consistent point are in the source, not in the restore."""
    point = manifest.recovery_point
    query = "SELECT count(*), max(placed_at) FROM orders WHERE placed_at > %s"
    with psycopg.connect(source) as connection:
        late = connection.execute(query, (point,)).fetchone()
    with psycopg.connect(restored) as connection:
        leaked = connection.execute(query, (point,)).fetchone()
    assert late is not None and leaked is not None
    newest_lost = late[1]
    return {
        "writes_lost": int(late[0]),
        "writes_after_point_in_restore": int(leaked[0]),
        "rpo_seconds": round((newest_lost - point).total_seconds(), 3) if newest_lost else 0.0,
    }


def _summary(report: RoundTripReport) -> str:
    figures = report.figures
    verdict = "PASS" if report.ok else "FAIL"
    return (
        f"\n== Round trip {verdict}\n"
        f"  backup     {human_bytes(figures['dump_bytes'])}"
        f" -> {human_bytes(figures['stored_bytes'])}"
        f" (x{figures['compression_ratio']}) in {figures['backup_seconds']}s"
        f" ({figures['backup_mib_per_second']} MiB/s)\n"
        f"  restore    vault {'verified' if report.verified.get('vault') else 'FAILED'},"
        f" mirror {'verified' if report.verified.get('mirror') else 'FAILED'}\n"
        f"  RTO        {figures.get('rto_seconds')}s from disaster to a verified restore\n"
        f"  RPO        {figures.get('writes_lost')} writes after the backup's consistent point"
        f" are lost, the newest {figures.get('rpo_seconds')}s after it"
        " (the 15-minute schedule bounds this window)\n"
    )


def _write_reports(report: RoundTripReport, root: Path) -> Path:
    """``root/<run id>/roundtrip.md`` and ``.json``, ``root/latest`` pointed at them."""
    started = datetime.fromisoformat(report.started_at)
    run_id = new_run_id("local roundtrip", started)
    reports_dir = run_dir(root, run_id)
    body = asdict(report) | {"ok": report.ok}
    (reports_dir / "roundtrip.json").write_text(json.dumps(body, indent=2, default=str) + "\n")
    lines = [
        "# Local round trip",
        "",
        f"Started {report.started_at}; verdict {'PASS' if report.ok else 'FAIL'}.",
        "",
        "| step | seconds | detail |",
        "| --- | ---: | --- |",
    ]
    lines += [f"| {s.name} | {s.seconds:.2f} | {s.detail} |" for s in report.steps]
    lines += ["", "| figure | value |", "| --- | --- |"]
    lines += [f"| {k} | {v} |" for k, v in report.figures.items() if k != "consistent_point"]
    (reports_dir / "roundtrip.md").write_text("\n".join(lines) + "\n")
    record_run(
        root,
        run_id,
        operation="local roundtrip",
        stack="local",
        outcome="passed" if report.ok else "failed",
        started_at=started,
        seconds=(datetime.now(UTC) - started).total_seconds(),
    )
    return reports_dir
