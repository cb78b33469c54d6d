"""PostgreSQL: the seed's CronJob against our engine, for backup (with each stage alone) and
restore, on the same database of at least 1 GiB.

The seed dumps twice, ``pg_dump | gzip | aws s3 cp -`` then ``pg_dump | gzip | gsutil cp -``;
ours dumps once (``pg_dump --format=custom --compress=0``), compresses with zstd and writes the
vault and the mirror at once. Both are measured as the CronJob runs them (both destinations) and
with one destination each (S3 only), so neither the second dump nor the tee hides the rest.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import zstandard

from benchmarks.environment import AWS_CLI, Bench, gcs_copy
from benchmarks.measure import Figure, Sample, ServerCpu, run_measured, shell
from benchmarks.pgdata import (
    TradingDatabase,
    create_database,
    drop_database,
    server_pid,
    table_counts,
    trading_database,
)
from benchmarks.report import (
    MB,
    PIPELINE_HEADERS,
    Runs,
    Section,
    Table,
    mebibytes,
    megabytes,
    pipeline_rows,
    ratio,
    spread,
)
from drkit.backup.engine import COMPRESSED_CHUNK, ZSTD_LEVEL
from drkit.backup.postgres import postgres_binary

PG_DUMP = postgres_binary("pg_dump")
PSQL = postgres_binary("psql")
PG_RESTORE = postgres_binary("pg_restore")
SEED_PREFIX = "seed/postgres/"


class Measured:
    """A pipeline's runs plus the database server's CPU during each."""

    def __init__(self, label: str, command: str) -> None:
        self.runs = Runs(label, command)
        self.server_cpu: list[float] = []


def _measure(bench: Bench, target: Measured, command: list[str], database: str) -> Sample:
    cpu = ServerCpu(server_pid(bench))
    cpu.start()
    sample = run_measured(command, env=bench.postgres_env(database))
    target.server_cpu.append(cpu.stop())
    return sample


def _object_size(bench: Bench, key: str) -> int:
    return int(bench.servers.aws.s3().head_object(Bucket=bench.bucket, Key=key)["ContentLength"])


def _gcs_size(bench: Bench, key: str) -> int:
    blob = bench.servers.gcs.client().bucket(bench.bucket).get_blob(key)
    return int(blob.size) if blob is not None else 0


def seed_s3_leg(database: str, bucket: str, key: str) -> str:
    return f"{PG_DUMP} {database} | gzip | {AWS_CLI} s3 cp - s3://{bucket}/{key}"


def seed_gcs_leg(database: str, bucket: str, key: str) -> str:
    return f"{PG_DUMP} {database} | gzip | {gcs_copy(f'gs://{bucket}/{key}')}"


def backup_section(bench: Bench) -> Section:
    started = time.monotonic()
    db = trading_database(bench, bench.options.postgres_mb)
    runs = bench.options.runs
    shown_key = SEED_PREFIX + "backup_N.sql.gz"
    seed_s3 = Measured("seed, S3 leg", bench.show(seed_s3_leg(db.name, bench.bucket, shown_key)))
    seed_gcs = Measured("seed, GCS leg", bench.show(seed_gcs_leg(db.name, bench.bucket, shown_key)))
    ours_both = Measured(
        "ours, S3 + GCS", bench.show(bench.ours("pg-backup", "--database", db.name))
    )
    ours_s3 = Measured(
        "ours, S3 only", bench.show(bench.ours("pg-backup", "--database", db.name, "--no-mirror"))
    )
    seed_key = ours_key = ""
    for run in range(runs):
        last = run == runs - 1
        key = f"{SEED_PREFIX}backup_{run}.sql.gz"

        def seed_legs(key: str = key) -> None:
            s3 = _measure(bench, seed_s3, shell(seed_s3_leg(db.name, bench.bucket, key)), db.name)
            seed_s3.runs.add(s3, stored=_object_size(bench, key))
            gcs = _measure(
                bench, seed_gcs, shell(seed_gcs_leg(db.name, bench.bucket, key)), db.name
            )
            seed_gcs.runs.add(gcs, stored=_gcs_size(bench, key))

        def ours_runs() -> str:
            both = _measure(
                bench, ours_both, bench.ours("pg-backup", "--database", db.name), db.name
            )
            result = json.loads(both.stdout)
            ours_both.runs.add(both, stored=result["size"])
            one = _measure(
                bench,
                ours_s3,
                bench.ours("pg-backup", "--database", db.name, "--no-mirror"),
                db.name,
            )
            single = json.loads(one.stdout)
            ours_s3.runs.add(one, stored=single["size"])
            bench.clear(single["manifest_key"].rsplit("/", 1)[0] + "/")
            return str(result["manifest_key"])

        # Alternate who goes first, so a load change on the shared machine hits both alike.
        if run % 2 == 0:
            seed_legs()
            manifest_key = ours_runs()
        else:
            manifest_key = ours_runs()
            seed_legs()
        if last:
            seed_key, ours_key = key, manifest_key
        else:
            bench.clear(key)
            bench.clear(manifest_key.rsplit("/", 1)[0] + "/")
    bench.cache["pg-artifacts"] = (seed_key, ours_key)
    bench.cache["pg-ours-backup"] = ours_both.runs

    seed_both = Runs("seed, both legs", f"{seed_s3.runs.command}\n  {seed_gcs.runs.command}")
    for a, b, size in zip(
        seed_s3.runs.samples, seed_gcs.runs.samples, seed_s3.runs.extras["stored"], strict=True
    ):
        seed_both.add(
            Sample(
                a.seconds + b.seconds, a.cpu_seconds + b.cpu_seconds, max(a.peak_rss, b.peak_rss)
            ),
            stored=size,
        )
    server_both = Figure(
        [a + b for a, b in zip(seed_s3.server_cpu, seed_gcs.server_cpu, strict=True)]
    )
    both_rows = pipeline_rows(seed_both, ours_both.runs, db.size, "stored")
    both_rows.append(
        [
            "PostgreSQL server CPU seconds",
            spread(server_both, "s"),
            spread(Figure(ours_both.server_cpu), "s"),
            ratio(Figure(ours_both.server_cpu), server_both, higher_is_better=False),
        ]
    )
    one_rows = pipeline_rows(seed_s3.runs, ours_s3.runs, db.size, "stored")
    one_rows.append(
        [
            "PostgreSQL server CPU seconds",
            spread(Figure(seed_s3.server_cpu), "s"),
            spread(Figure(ours_s3.server_cpu), "s"),
            ratio(Figure(ours_s3.server_cpu), Figure(seed_s3.server_cpu), higher_is_better=False),
        ]
    )
    stages = _stages(bench, db)
    seed_rate = seed_both.rate(db.size, MB)
    ours_rate = ours_both.runs.rate(db.size, MB)
    size_ratio = ratio(ours_both.runs.extra("stored"), seed_both.extra("stored"), False)
    section = Section(
        key="postgres_backup",
        title="PostgreSQL backup",
        summary=(
            f"Database `{db.name}`: {db.size / MB:,.0f} MB (`pg_database_size`; "
            + ", ".join(f"{table} {count:,} rows" for table, count in db.counts.items())
            + f"), generated in {db.seconds:.0f} s. The seed's CronJob dumps it twice (S3, then"
            " GCS); ours dumps it once and writes both. Throughput is MB of database per second"
            " of wall time."
        ),
        commands={
            "seed, S3 leg": seed_s3.runs.command,
            "seed, GCS leg (gsutil stand-in, see the notes)": seed_gcs.runs.command,
            "ours, S3 + GCS": ours_both.runs.command,
            "ours, S3 only": ours_s3.runs.command,
        },
        tables=[
            Table(PIPELINE_HEADERS, both_rows, "As each CronJob runs: to S3 and to GCS"),
            Table(PIPELINE_HEADERS, one_rows, "One destination each: S3 only"),
            stages.table,
        ],
        notes=[
            "`gsutil` cannot reach the GCS emulator (gslib speaks HTTPS only to its JSON API"
            " host; the emulator is HTTP), so the seed's GCS leg uploads with Google's"
            " `google-cloud-storage` client from stdin (`benchmarks/gcs_cp.py`, one resumable"
            " upload in 100 MiB chunks) - the closest real tool.",
            f"Both use the same `pg_dump` ({PG_DUMP}); the seed's plain SQL goes through"
            " `gzip -6` (single-threaded), ours through zstd level 3 with 2 threads.",
            "Ours writes with SSE-KMS (the emulated key), as production; Object Lock is off"
            " because each run's objects are deleted afterwards.",
            "Stage figures are single processes of a few seconds: they move most with the load"
            " other developers put on the machine, so read their order, not their decimals.",
            *stages.notes,
        ],
        headlines=[
            f"PostgreSQL backup ({db.size / MB:,.0f} MB database, to S3 + GCS): throughput"
            f" {ratio(ours_rate, seed_rate, higher_is_better=True)}"
            f" ({spread(ours_rate, 'MB/s')} vs {spread(seed_rate, 'MB/s')}),"
            f" stored size {size_ratio},"
            f" peak RSS {mebibytes(ours_both.runs.rss)} vs {mebibytes(seed_both.rss)},"
            f" CPU {ratio(ours_both.runs.cpu, seed_both.cpu, False)};"
            " database server CPU"
            f" {ratio(Figure(ours_both.server_cpu), server_both, False)} (one dump, not two).",
        ],
        data={
            "database": {"name": db.name, "bytes": db.size, "counts": db.counts},
            "seed_s3_leg": seed_s3.runs.as_dict() | {"server_cpu": seed_s3.server_cpu},
            "seed_gcs_leg": seed_gcs.runs.as_dict() | {"server_cpu": seed_gcs.server_cpu},
            "seed_both": seed_both.as_dict(),
            "ours_both": ours_both.runs.as_dict() | {"server_cpu": ours_both.server_cpu},
            "ours_s3": ours_s3.runs.as_dict() | {"server_cpu": ours_s3.server_cpu},
            "stages": stages.data,
        },
    )
    section.seconds = time.monotonic() - started
    return section


@dataclass
class Stages:
    table: Table
    notes: list[str]
    data: dict[str, object]


def _stages(bench: Bench, db: TradingDatabase) -> Stages:
    """Each stage alone, from files made once beforehand, so the slowest one shows."""
    directory = bench.workdir / "stages"
    directory.mkdir(parents=True, exist_ok=True)
    plain, custom = directory / "plain.sql", directory / "custom.dump"
    plain_gz, custom_zst = directory / "plain.sql.gz", directory / "custom.dump.zst"
    env = bench.postgres_env(db.name)
    run_measured(shell(f"{PG_DUMP} {db.name} > {plain}"), env=env)
    run_measured(shell(f"{PG_DUMP} --format=custom --compress=0 {db.name} > {custom}"), env=env)
    run_measured(shell(f"gzip -c {plain} > {plain_gz}"), env=env)
    _zstd_file(custom, custom_zst)
    stages = [
        ("seed", "dump", f"{PG_DUMP} {db.name} > /dev/null", None, db.size),
        ("seed", "compress", f"gzip -c {plain} > /dev/null", None, plain.stat().st_size),
        (
            "seed",
            "upload to S3",
            f"{AWS_CLI} s3 cp - s3://{bench.bucket}/stage/plain.sql.gz < {plain_gz}",
            None,
            plain_gz.stat().st_size,
        ),
        (
            "seed",
            "upload to GCS",
            f"{gcs_copy(f'gs://{bench.bucket}/stage/plain.sql.gz')} < {plain_gz}",
            None,
            plain_gz.stat().st_size,
        ),
        (
            "ours",
            "dump",
            f"{PG_DUMP} --format=custom --compress=0 {db.name} > /dev/null",
            None,
            db.size,
        ),
        ("ours", "compress", None, ["compress", str(custom)], custom.stat().st_size),
        (
            "ours",
            "upload to S3",
            None,
            ["upload", str(custom_zst), "--key", "stage/custom.zst", "--no-mirror"],
            custom_zst.stat().st_size,
        ),
        (
            "ours",
            "upload to S3 + GCS at once",
            None,
            ["upload", str(custom_zst), "--key", "stage/custom.zst"],
            custom_zst.stat().st_size,
        ),
    ]
    measured: list[tuple[str, str, str, Runs, int]] = []
    for side, stage, script, action, size in stages:
        command = shell(script) if script is not None else bench.ours(*(action or []))
        shown = bench.show(script if script is not None else command, brief=True)
        runs = Runs(f"{side} {stage}", shown)
        for _ in range(bench.options.runs):
            runs.add(run_measured(command, env=env))
            bench.clear("stage/")
        measured.append((side, stage, shown, runs, size))
    rows = [
        [
            side,
            stage,
            "`" + shown.replace("|", "\\|") + "`",
            spread(runs.seconds, "s", digits=2),
            spread(runs.rate(size, MB)),
            spread(runs.cpu, "s", digits=2),
            mebibytes(runs.rss),
        ]
        for side, stage, shown, runs, size in measured
    ]
    notes = []
    for side in ("seed", "ours"):
        mine = [(stage, runs) for s, stage, _, runs, _ in measured if s == side]
        slowest = max(mine, key=lambda item: item[1].seconds.median)
        notes.append(
            f"Slowest stage of the {side} pipeline: **{slowest[0]}**"
            f" ({spread(slowest[1].seconds, 's', digits=2)}): it bounds that pipeline's throughput."
        )
    sizes = {
        "plain SQL dump": plain.stat().st_size,
        "gzip of it": plain_gz.stat().st_size,
        "custom-format dump": custom.stat().st_size,
        "zstd of it": custom_zst.stat().st_size,
    }
    notes.append(
        "Stage inputs: "
        + ", ".join(f"{name} {size / MB:,.0f} MB" for name, size in sizes.items())
        + "; MB/s is of each stage's input (of the database for the dumps)."
    )
    for path in (plain, custom, plain_gz, custom_zst):
        path.unlink(missing_ok=True)
    table = Table(
        ["pipeline", "stage", "command", "wall time", "MB/s", "CPU s", "peak RSS"],
        rows,
        "Each stage alone (from files on disk, output dropped or uploaded)",
    )
    data: dict[str, object] = {
        f"{side} {stage}": runs.as_dict() | {"input_bytes": size}
        for side, stage, _, runs, size in measured
    }
    return Stages(table, notes, data | {"sizes": sizes})


def _zstd_file(source: Path, target: Path) -> None:
    compressor = zstandard.ZstdCompressor(level=ZSTD_LEVEL, threads=2)
    chunker = compressor.chunker(chunk_size=COMPRESSED_CHUNK)
    with source.open("rb") as reader, target.open("wb") as writer:
        while chunk := reader.read(1024 * 1024):
            for piece in chunker.compress(chunk):
                writer.write(piece)
        for piece in chunker.finish():  # type: ignore[no-untyped-call]
            writer.write(piece)


# -- restore ---------------------------------------------------------------------------------


def _artifacts(bench: Bench, db: TradingDatabase) -> tuple[str, str]:
    """The seed's .sql.gz and our manifest from the backup section, or one unmeasured run each."""
    cached = bench.cache.get("pg-artifacts")
    if isinstance(cached, tuple) and all(cached):
        return str(cached[0]), str(cached[1])
    key = f"{SEED_PREFIX}backup_restore.sql.gz"
    run_measured(shell(seed_s3_leg(db.name, bench.bucket, key)), env=bench.postgres_env(db.name))
    result = run_measured(
        bench.ours("pg-backup", "--database", db.name), env=bench.postgres_env(db.name)
    )
    manifest_key = str(json.loads(result.stdout)["manifest_key"])
    bench.cache["pg-artifacts"] = (key, manifest_key)
    return key, manifest_key


def seed_restore(bucket: str, key: str, database: str) -> str:
    return f"{AWS_CLI} s3 cp s3://{bucket}/{key} - | gunzip | {PSQL} {database} > /dev/null"


def restore_section(bench: Bench) -> Section:
    started = time.monotonic()
    db = trading_database(bench, bench.options.postgres_mb)
    seed_key, manifest_key = _artifacts(bench, db)
    seed = Measured("seed", bench.show(seed_restore(bench.bucket, seed_key, "restore_seed")))
    ours = Measured(
        "ours",
        bench.show(
            bench.ours("pg-restore", "--manifest", manifest_key, "--database", "restore_ours")
        ),
    )
    verified = {"seed": True, "ours": True}
    for run in range(bench.options.runs):

        def run_seed() -> None:
            create_database(bench, "restore_seed")
            sample = _measure(
                bench, seed, shell(seed_restore(bench.bucket, seed_key, "restore_seed")), "postgres"
            )
            seed.runs.add(sample)
            verified["seed"] &= table_counts(bench, "restore_seed") == db.counts
            drop_database(bench, "restore_seed")

        def run_ours() -> None:
            create_database(bench, "restore_ours")
            command = bench.ours(
                "pg-restore", "--manifest", manifest_key, "--database", "restore_ours"
            )
            ours.runs.add(_measure(bench, ours, command, "postgres"))
            verified["ours"] &= table_counts(bench, "restore_ours") == db.counts
            drop_database(bench, "restore_ours")

        for step in (run_seed, run_ours) if run % 2 == 0 else (run_ours, run_seed):
            step()
    bench.cache["pg-ours-restore"] = ours.runs
    rows = pipeline_rows(seed.runs, ours.runs, db.size)
    rows.append(
        [
            "PostgreSQL server CPU seconds",
            spread(Figure(seed.server_cpu), "s"),
            spread(Figure(ours.server_cpu), "s"),
            ratio(Figure(ours.server_cpu), Figure(seed.server_cpu), higher_is_better=False),
        ]
    )
    rows.append(
        [
            "every table's row count equals the source",
            "yes" if verified["seed"] else "**no**",
            "yes" if verified["ours"] else "**no**",
            "",
        ]
    )
    seed_rate, ours_rate = seed.runs.rate(db.size, MB), ours.runs.rate(db.size, MB)
    section = Section(
        key="postgres_restore",
        title="PostgreSQL restore",
        summary=(
            "The backups of section 1 (the last run's) restored into a fresh, empty database,"
            " from the S3 vault: the seed's `aws s3 cp - | gunzip | psql` of its"
            f" {_size(bench, seed_key)} .sql.gz, ours `pg_restore` fed by the engine's verified"
            " stream (SHA-256 and size checked, zstd decompressed) in one transaction."
            " Throughput is MB of the source database per second."
        ),
        commands={"seed": seed.runs.command, "ours": ours.runs.command},
        tables=[Table(PIPELINE_HEADERS, rows)],
        notes=[
            "Most of a restore is the server loading rows and building indexes, the same work"
            " for both; the client side differs in decompression, verification and memory.",
            "The seed's `psql` runs without `ON_ERROR_STOP`, as in its script: a failed statement"
            " would not fail its restore; the row-count check is what tells.",
        ],
        headlines=[
            "PostgreSQL restore: throughput"
            f" {ratio(ours_rate, seed_rate, higher_is_better=True)}"
            f" ({spread(ours_rate, 'MB/s')} vs {spread(seed_rate, 'MB/s')}), peak RSS"
            f" {mebibytes(ours.runs.rss)} vs {mebibytes(seed.runs.rss)}; every row verified:"
            f" ours {_yes(verified['ours'])}, seed {_yes(verified['seed'])}.",
        ],
        data={
            "seed": seed.runs.as_dict() | {"server_cpu": seed.server_cpu},
            "ours": ours.runs.as_dict() | {"server_cpu": ours.server_cpu},
            "verified": verified,
        },
    )
    section.seconds = time.monotonic() - started
    return section


def _yes(flag: bool) -> str:
    return "yes" if flag else "NO"


def _size(bench: Bench, key: str) -> str:
    return megabytes(Figure([float(_object_size(bench, key))]))


# -- parallel (issue 21): format 2 with 1, 2 and 4 jobs ------------------------------------

JOBS = (1, 2, 4)


def _median_ratio(slow: Figure, fast: Figure) -> float | None:
    """How many times faster ``fast`` is than ``slow`` (wall times, medians), 2 decimals."""
    if not slow.values or not fast.values or fast.median <= 0:
        return None
    return round(slow.median / fast.median, 2)


def parallel_section(bench: Bench) -> Section:
    """The seed's pipeline, our format 1, our format 2 with 1, 2 and 4 jobs and ``pg_dump -Fd
    -j N`` to local disk, backup then restore, each run in turn on the same database."""
    started = time.monotonic()
    db = trading_database(bench, bench.options.postgres_mb)
    env = bench.postgres_env(db.name)
    key = SEED_PREFIX + "parallel.sql.gz"
    seed = Runs(
        "seed (S3, then GCS)",
        bench.show(seed_s3_leg(db.name, bench.bucket, key))
        + "\n  "
        + bench.show(seed_gcs_leg(db.name, bench.bucket, key)),
    )
    ours1 = Runs("ours, format 1", bench.show(bench.ours("pg-backup", "--database", db.name)))
    ours = {
        n: Runs(
            f"ours, format 2, --jobs {n}",
            bench.show(bench.ours("pg-backup", "--database", db.name, "--jobs", str(n))),
        )
        for n in JOBS
    }
    directory = {n: bench.workdir / f"pg-dump-dir-{n}" for n in JOBS}
    local = {
        n: Runs(
            f"pg_dump -Fd -j {n}, local disk",
            bench.show(f"{PG_DUMP} -Fd -j {n} -f {directory[n]} {db.name}"),
        )
        for n in JOBS
    }
    stage = {
        n: Runs(
            f"pg_dump -Fd -j {n} --compress=0 (the dump stage alone)",
            bench.show(f"{PG_DUMP} -Fd -j {n} --compress=0 -f {directory[n]}-raw {db.name}"),
        )
        for n in JOBS
    }
    kept: dict[str, str] = {}

    def seed_backup() -> None:
        s3 = run_measured(shell(seed_s3_leg(db.name, bench.bucket, key)), env=env)
        gcs = run_measured(shell(seed_gcs_leg(db.name, bench.bucket, key)), env=env)
        seed.add(
            Sample(
                s3.seconds + gcs.seconds,
                s3.cpu_seconds + gcs.cpu_seconds,
                max(s3.peak_rss, gcs.peak_rss),
            )
        )

    def our_backup(runs: Runs, name: str, *extra: str) -> None:
        sample = run_measured(bench.ours("pg-backup", "--database", db.name, *extra), env=env)
        runs.add(sample)
        manifest_key = str(json.loads(sample.stdout)["manifest_key"])
        if name in kept:
            bench.clear(kept[name].rsplit("/", 1)[0] + "/")
        kept[name] = manifest_key

    def local_dump(n: int) -> None:
        shutil.rmtree(directory[n], ignore_errors=True)
        local[n].add(
            run_measured(shell(f"{PG_DUMP} -Fd -j {n} -f {directory[n]} {db.name}"), env=env)
        )
        raw = Path(f"{directory[n]}-raw")
        shutil.rmtree(raw, ignore_errors=True)
        command = f"{PG_DUMP} -Fd -j {n} --compress=0 -f {raw} {db.name}"
        stage[n].add(run_measured(shell(command), env=env))
        shutil.rmtree(raw, ignore_errors=True)

    steps: list[Callable[[], None]] = [seed_backup, partial(our_backup, ours1, "format1")]
    steps += [partial(our_backup, ours[n], f"jobs{n}", "--jobs", str(n)) for n in JOBS]
    steps += [partial(local_dump, n) for n in JOBS]
    for run in range(bench.options.runs):
        # Rotate who goes first, so a load change on the shared machine hits all alike.
        for step in steps[run % len(steps) :] + steps[: run % len(steps)]:
            step()

    # -- restores, from the last run's backups, each into a fresh database
    target = "restore_parallel"
    r_seed = Runs(
        "seed (aws s3 cp, gunzip, psql)", bench.show(seed_restore(bench.bucket, key, target))
    )
    r_ours1 = Runs(
        "ours, format 1 (one pg_restore stream)",
        bench.show(bench.ours("pg-restore", "--manifest", kept["format1"], "--database", target)),
    )
    r_ours = {
        n: Runs(
            f"ours, format 2, --jobs {n}",
            bench.show(
                bench.ours(
                    "pg-restore",
                    "--manifest",
                    kept[f"jobs{n}"],
                    "--database",
                    target,
                    "--jobs",
                    str(n),
                )
            ),
        )
        for n in JOBS
    }
    r_local = {
        n: Runs(
            f"pg_restore -j {n}, local disk",
            bench.show(f"{PG_RESTORE} -j {n} -d {target} {directory[n]}"),
        )
        for n in JOBS
    }
    verified: dict[str, bool] = {}

    def restored(runs: Runs, command: list[str]) -> None:
        create_database(bench, target)
        runs.add(run_measured(command, env=bench.postgres_env("postgres")))
        verified[runs.label] = verified.get(runs.label, True) and (
            table_counts(bench, target) == db.counts
        )
        drop_database(bench, target)

    r_steps: list[Callable[[], None]] = [
        partial(restored, r_seed, shell(seed_restore(bench.bucket, key, target))),
        partial(
            restored,
            r_ours1,
            bench.ours("pg-restore", "--manifest", kept["format1"], "--database", target),
        ),
    ]
    r_steps += [
        partial(
            restored,
            r_ours[n],
            bench.ours(
                "pg-restore", "--manifest", kept[f"jobs{n}"], "--database", target, "--jobs", str(n)
            ),
        )
        for n in JOBS
    ]
    r_steps += [
        partial(restored, r_local[n], shell(f"{PG_RESTORE} -j {n} -d {target} {directory[n]}"))
        for n in JOBS
    ]
    for run in range(bench.options.runs):
        for step in r_steps[run % len(r_steps) :] + r_steps[: run % len(r_steps)]:
            step()
    for n in JOBS:
        shutil.rmtree(directory[n], ignore_errors=True)
    bench.clear(key)
    for manifest_key in kept.values():
        bench.clear(manifest_key.rsplit("/", 1)[0] + "/")

    def rows(seed_runs: Runs, all_runs: list[Runs]) -> list[list[str]]:
        return [
            [
                runs.label,
                spread(runs.seconds, "s"),
                spread(runs.rate(db.size, MB), "MB/s"),
                mebibytes(runs.rss),
                ratio(runs.seconds, seed_runs.seconds, higher_is_better=False),
            ]
            for runs in all_runs
        ]

    headers = ["pipeline", "wall time", "throughput", "peak RSS", "vs the seed"]
    backup_all = [seed, ours1, *ours.values(), *local.values(), *stage.values()]
    restore_all = [r_seed, r_ours1, *r_ours.values(), *r_local.values()]
    best_backup = min(ours.values(), key=lambda r: r.seconds.median)
    best_restore = min(r_ours.values(), key=lambda r: r.seconds.median)
    jobs_of_best = next(n for n in JOBS if ours[n] is best_backup)
    slowest_stage = stage[jobs_of_best]  # the dump alone, same jobs, no compression or upload
    headline = {
        "postgres_backup_vs_seed": _median_ratio(seed.seconds, best_backup.seconds),
        "postgres_restore_vs_seed": _median_ratio(r_seed.seconds, best_restore.seconds),
        "postgres_backup_vs_slowest_stage": _median_ratio(
            best_backup.seconds, slowest_stage.seconds
        ),
        "peak_rss_mib": {
            "postgres_parallel_backup": {
                r.label: round(r.rss.median / (1024 * 1024), 1) for r in backup_all
            },
            "postgres_parallel_restore": {
                r.label: round(r.rss.median / (1024 * 1024), 1) for r in restore_all
            },
        },
        "postgres_parallel_database_mb": round(db.size / MB),
        "postgres_parallel_best": {"backup": best_backup.label, "restore": best_restore.label},
    }
    section = Section(
        key="postgres_parallel",
        title="PostgreSQL in parallel (format 2, --jobs N)",
        summary=(
            f"Database `{db.name}`: {db.size / MB:,.0f} MB, "
            + ", ".join(f"{t} {c:,} rows" for t, c in db.counts.items())
            + ". In one run, in turn: the seed's two dumps (S3 then GCS), our format 1 (one"
            " `pg_dump` stream to S3 + GCS), our format 2 with 1, 2 and 4 jobs (one exported"
            " snapshot; the schema, then each table's COPY stream, N at a time, each to S3 + GCS),"
            " and `pg_dump -Fd -j N` to local disk as the single-machine reference; then each"
            " backup restored into a fresh database (ours from the S3 vault: format 2 is pre-data,"
            " COPY N at a time, then `pg_restore --section=post-data -j N`), against `gunzip |"
            " psql` and `pg_restore -j N` from local disk."
        ),
        commands={f"backup, {r.label}": r.command for r in backup_all}
        | {f"restore, {r.label}": r.command for r in restore_all},
        tables=[
            Table(headers, rows(seed, backup_all), "Backup (ours: to S3 + GCS)"),
            Table(
                [*headers, "row counts equal"],
                [
                    [*row, "yes" if verified.get(r.label) else "**no**"]
                    for row, r in zip(rows(r_seed, restore_all), restore_all, strict=True)
                ],
                "Restore (ours: from the S3 vault)",
            ),
        ],
        notes=[
            "Two tables of the trading database (orders, market_ticks) hold nearly all of it,"
            " about equally: format 2 splits the work per table (no key ranges yet), so beyond"
            " 2 jobs nothing more runs at once; `pg_dump -Fd -j N` has the same bound.",
            "`postgres_backup_vs_slowest_stage` in results.json is the best format-2 backup's"
            " wall time over that of `pg_dump -Fd -j N --compress=0` alone (same N, to local"
            " disk: no compression, no upload), the dump stage by itself; `pg_dump -Fd -j N`"
            " (gzip inside pg_dump) is the single-machine reference.",
            "Format 2 with more than one job compresses each stream with zstd on the stream's"
            " own thread (no zstd worker pool per stream); with one job, as format 1, two zstd"
            " workers.",
            "The machine has 2 cores shared with other work (the load is in the header): 4 jobs"
            " cannot run 4-wide here, and figures move with the load.",
        ],
        headlines=[
            f"PostgreSQL in parallel ({db.size / MB:,.0f} MB): backup {best_backup.label}"
            f" {ratio(best_backup.seconds, seed.seconds, higher_is_better=False)} than the seed"
            f" ({spread(best_backup.seconds, 's')} vs {spread(seed.seconds, 's')}); restore"
            f" {best_restore.label} {ratio(best_restore.seconds, r_seed.seconds, False)}"
            f" ({spread(best_restore.seconds, 's')} vs {spread(r_seed.seconds, 's')});"
            f" format 1 backup {spread(ours1.seconds, 's')},"
            f" restore {spread(r_ours1.seconds, 's')}.",
        ],
        data={
            "database": {"name": db.name, "bytes": db.size, "counts": db.counts},
            "backup": {r.label: r.as_dict() for r in backup_all},
            "restore": {r.label: r.as_dict() for r in restore_all},
            "verified": verified,
            "headline": headline,
        },
    )
    section.seconds = time.monotonic() - started
    return section
