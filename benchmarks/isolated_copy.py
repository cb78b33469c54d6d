"""What the third copy costs (issue 22): one PostgreSQL backup to the vault and the mirror, and one
to the vault, the mirror and the isolated account's vault, on the same servers and data.

``python -m benchmarks.isolated_copy [--size-mb 200]`` starts PostgreSQL, the prod account's and
the isolated account's AWS emulators and the GCS emulator on 127.0.0.1, seeds the database, takes
a small warm-up backup, then one backup without and one with the isolated copy (one run each, as
the issue asks), and writes ``benchmarks/ISOLATED_COPY.md``. One run on a shared machine: the
figure is indicative, not a median.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from drkit.backup.engine import Destinations, run_backup
from drkit.backup.postgres import PostgresHandler, PostgresSource
from drkit.local.gcs import LocalGcs
from drkit.local.isolated import ISOLATED_ACCOUNT, provision_isolated
from drkit.local.postgres import LocalPostgres
from drkit.local.s3 import LocalAws
from drkit.seed.postgres import TradingDataSize, seed_trading_database
from drkit.storage.gcs import GcsStore
from drkit.storage.objectstore import Encryption
from drkit.storage.s3 import S3Store
from stackmodels import StackConfig

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "ISOLATED_COPY.md"


def measure(size_mb: float, workdir: Path) -> dict[str, Any]:
    config = StackConfig.for_stack("prod", ROOT)
    servers = (
        LocalPostgres(workdir / "postgres"),
        LocalAws(workdir / "aws"),
        LocalAws(workdir / "aws-vault", isolated_account=ISOLATED_ACCOUNT),
        LocalGcs(workdir / "gcs"),
    )
    postgres, aws, isolated_aws, gcs = servers
    for server in servers:
        server.start()
    try:
        postgres.create_database("bench")
        source = PostgresSource(
            postgres.host, postgres.port, "bench", postgres.user, postgres.password
        )
        counts = seed_trading_database(source.conninfo(), TradingDataSize.for_megabytes(size_mb))
        s3 = aws.s3()
        s3.create_bucket(Bucket="bench-vault", ObjectLockEnabledForBucket=True)
        kms: Any = aws.client("kms")
        key = kms.create_key(Description="vault key")["KeyMetadata"]["Arn"]
        gcs.create_locked_bucket("bench-mirror", timedelta(days=1))
        isolated = provision_isolated(isolated_aws, config, "bench")
        two = Destinations(
            vault=S3Store(s3, "bench-vault"),
            mirror=GcsStore(gcs.client(), "bench-mirror"),
            encryption=Encryption(kms_key_id=key),
        )
        three = Destinations(
            vault=two.vault,
            mirror=two.mirror,
            encryption=two.encryption,
            # as the prod writer reaches it: prod's own (dummy) credentials, across accounts
            isolated=S3Store(isolated_aws.s3(isolated.bucket.region), isolated.bucket.name),
            isolated_encryption=Encryption(kms_key_id=isolated.kms_key_arn),  # default lock
        )
        handler = PostgresHandler(source)
        run_backup("warm-up", "user-data", handler, two)
        figures: dict[str, Any] = {"rows": counts}
        for name, destinations in (("vault + mirror", two), ("vault + mirror + isolated", three)):
            clock = time.monotonic()
            manifest = run_backup("trading-db", "user-data", handler, destinations)
            figures[name] = {
                "seconds": round(time.monotonic() - clock, 2),
                "stored_bytes": manifest.size,
                "raw_bytes": manifest.raw_size,
                "copies": len(manifest.destinations),
            }
        return figures
    finally:
        for server in reversed(servers):
            server.stop()


def write(figures: dict[str, Any], size_mb: float) -> None:
    two, three = figures["vault + mirror"], figures["vault + mirror + isolated"]
    extra = three["seconds"] - two["seconds"]
    load = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    RESULTS.write_text(
        "# The isolated copy's cost in backup time (issue 22)\n\n"
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC by "
        f"`.venv/bin/python -m benchmarks.isolated_copy --size-mb {size_mb:g}`: one PostgreSQL "
        "backup each way, one run (not a median), after a warm-up backup, on the same servers "
        f"and data; load average {load} (1 / 5 / 15 min, 2 cores, shared with other runs).\n\n"
        "| destinations | seconds | raw MB | stored MB | MB/s (raw) |\n"
        "| --- | ---: | ---: | ---: | ---: |\n"
        + "".join(
            f"| {name} | {f['seconds']} | {f['raw_bytes'] / 1e6:.1f} | "
            f"{f['stored_bytes'] / 1e6:.1f} | {f['raw_bytes'] / 1e6 / f['seconds']:.1f} |\n"
            for name, f in (
                (n, figures[n]) for n in ("vault + mirror", "vault + mirror + isolated")
            )
        )
        + f"\nThe third copy added {extra:+.2f} s ({extra / two['seconds'] * 100:+.0f}%). "
        "It is one more upload thread fed by the same compressed stream (``TeeWriter``): the "
        "dump is read and compressed once, so the cost is the third upload's, overlapped with "
        "the other two, plus its manifest and catalog entry.\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size-mb", type=float, default=200.0)
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-isolated-") as directory:
        figures = measure(arguments.size_mb, Path(directory))
    write(figures, arguments.size_mb)
    print(RESULTS.read_text())


if __name__ == "__main__":
    main()
