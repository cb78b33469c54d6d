"""``python -m benchmarks``: every benchmark in one run, written to ``benchmarks/RESULTS.md``.

It starts the local servers (PostgreSQL, Redis, Kafka, the S3 and GCS emulators) on 127.0.0.1,
generates the data, runs the seed's pipeline and ours in turn ``--runs`` times for each figure,
and writes RESULTS.md (with results.json beside it). ``--quick`` makes the data tiny and the
seed's waits short: a smoke run of the harness (the integration test uses it), not a measurement.
``--only SECTION`` runs the sections named and keeps the others' figures from the results already
there, each marked with the run that measured it. A section that fails is reported as failed and
the others still run; the exit code is then 1.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import tempfile
import time
import traceback
import warnings
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

warnings.filterwarnings("ignore", category=FutureWarning)

from benchmarks import (  # noqa: E402
    catalog,
    failover,
    kafka,
    memory,
    postgres,
    redis,
)
from benchmarks.environment import AWS_CLI, ROOT, Bench, Options, Servers  # noqa: E402
from benchmarks.report import (  # noqa: E402
    Report,
    Section,
    load_average,
    machine,
    merged,
    previous_sections,
    versions,
    write,
)
from drkit.backup.postgres import postgres_binary  # noqa: E402
from drkit.local.gcs import LocalGcs  # noqa: E402
from drkit.local.kafka import KAFKA_VERSION, LocalKafka  # noqa: E402
from drkit.local.postgres import LocalPostgres  # noqa: E402
from drkit.local.redis import LocalRedis  # noqa: E402
from drkit.local.s3 import LocalAws  # noqa: E402

SECTIONS: dict[str, Callable[[Bench], Section]] = {
    "postgres_backup": postgres.backup_section,
    "postgres_restore": postgres.restore_section,
    "postgres_parallel": postgres.parallel_section,
    "kafka": kafka.kafka_section,
    "redis": redis.redis_section,
    "memory": memory.memory_section,
    "catalog": catalog.catalog_section,
    "failover": failover.failover_section,
}
DEFAULT_OUTPUT = ROOT / "benchmarks" / "RESULTS.md"
QUICK_OUTPUT = ROOT / ".drkit" / "benchmarks" / "RESULTS-quick.md"


@dataclass
class LocalServers:
    postgres: LocalPostgres
    redis: LocalRedis
    aws: LocalAws
    gcs: LocalGcs
    kafka: LocalKafka


def tool_versions() -> dict[str, str]:
    return versions(
        {
            "PostgreSQL (pg_dump)": [postgres_binary("pg_dump"), "--version"],
            "psql": [postgres_binary("psql"), "--version"],
            "gzip": ["gzip", "--version"],
            "aws CLI": [AWS_CLI, "--version"],
            "redis-server": ["redis-server", "--version"],
            "java": ["java", "-version"],
        }
    ) | {"Kafka (broker and console tools)": KAFKA_VERSION}


def run(options: Options, servers: Servers, output: Path, command: str, workdir: Path) -> int:
    """Run the chosen sections against ``servers`` and write the results; 0 when all passed."""
    report = Report(
        command=command,
        runs=options.runs,
        quick=options.quick,
        started_at=datetime.now(UTC),
        machine=machine(),
        versions=tool_versions(),
        load_before=load_average(),
    )
    bench = Bench(servers, options, workdir)
    failed = 0
    chosen = options.sections or list(SECTIONS)
    for key in chosen:
        print(f"== {key}", flush=True)
        started = time.monotonic()
        try:
            section = SECTIONS[key](bench)
        except Exception as error:
            failed += 1
            traceback.print_exc()
            section = Section(
                key=key,
                title=f"{key} (FAILED)",
                summary=f"**This section failed:** `{type(error).__name__}: {error}`"[:2000],
            )
            section.seconds = time.monotonic() - started
        report.sections.append(section)
        for line in section.headlines:
            print(f"   {line}", flush=True)
        print(f"   ({section.seconds:.0f} s)", flush=True)
    if options.sections:  # --only: keep what earlier runs measured of the other sections
        kept = previous_sections(output, options.quick)
        report.sections = merged(report.sections, kept, list(SECTIONS))
        if kept:
            print(f"   kept the other sections of {output} from their runs", flush=True)
    report.load_after = load_average()
    report.finished_at = datetime.now(UTC)
    data = write(report, output)
    print(f"wrote {output} and {data}", flush=True)
    return 1 if failed else 0


def parser() -> argparse.ArgumentParser:
    main = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    main.add_argument("--runs", type=int, default=3, help="runs per figure (median, spread)")
    main.add_argument("--quick", action="store_true", help="tiny data: a smoke run, no figures")
    main.add_argument("--postgres-mb", type=int, help="database size in MiB (default 1024)")
    main.add_argument(
        "--only", action="append", choices=list(SECTIONS), help="run only these sections"
    )
    main.add_argument("--output", type=Path, help="RESULTS.md path (results.json goes beside)")
    main.add_argument(
        "--workdir", type=Path, help="where the run's temporary directory goes (default: /tmp)"
    )
    return main


def main(argv: Sequence[str] | None = None) -> int:
    arguments = parser().parse_args(argv)
    if arguments.runs < 1:
        sys.stderr.write("error: --runs must be at least 1\n")
        return 2
    options = Options.for_quick(arguments.runs) if arguments.quick else Options(arguments.runs)
    if arguments.postgres_mb:
        options.postgres_mb = arguments.postgres_mb
    options.sections = list(arguments.only or [])
    output = arguments.output or (QUICK_OUTPUT if arguments.quick else DEFAULT_OUTPUT)
    command = ".venv/bin/python -m benchmarks" + "".join(
        f" {shlex.quote(arg)}" for arg in (sys.argv[1:] if argv is None else argv)
    )
    with ExitStack() as stack:
        if arguments.workdir is not None:
            arguments.workdir.mkdir(parents=True, exist_ok=True)
        workdir = Path(
            stack.enter_context(
                tempfile.TemporaryDirectory(prefix="drkit-bench-", dir=arguments.workdir)
            )
        )
        print("== starting PostgreSQL, Redis, Kafka, the S3 and GCS emulators", flush=True)
        servers = LocalServers(
            postgres=stack.enter_context(LocalPostgres(workdir / "postgres")),
            redis=stack.enter_context(LocalRedis(workdir / "redis")),
            aws=stack.enter_context(LocalAws(workdir / "aws")),
            gcs=stack.enter_context(LocalGcs(workdir / "gcs")),
            kafka=stack.enter_context(LocalKafka(workdir / "kafka")),
        )
        return run(options, servers, output, command, workdir / "bench")


if __name__ == "__main__":
    raise SystemExit(main())
