"""What every benchmark section shares: the servers, where files go, the tools' command lines,
and the connection details handed to our runner (``benchmarks.ours``) in a file.

The servers are the local harness's (real PostgreSQL, Redis and Kafka; moto for S3, the GCS
emulator for the mirror), started by ``python -m benchmarks`` or handed in by the smoke test.
"""

from __future__ import annotations

import os
import secrets
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from benchmarks.connections import Connections
from drkit.backup.postgres import postgres_binary
from drkit.local.gcs import LocalGcs
from drkit.local.postgres import LocalPostgres
from drkit.local.redis import LocalRedis
from drkit.local.s3 import LocalAws
from drkit.storage.gcs import GcsStore
from drkit.storage.s3 import S3Store

if TYPE_CHECKING:
    from drkit.local.kafka import LocalKafka

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
AWS_CLI = str(Path(sys.executable).with_name("aws"))
"""The AWS CLI (v1) from the project's environment (dev group), pinned in uv.lock."""
BRIEF = {
    PYTHON: "python",
    AWS_CLI: "aws",
    postgres_binary("pg_dump"): "pg_dump",
    postgres_binary("psql"): "psql",
}


class Servers(Protocol):
    @property
    def postgres(self) -> LocalPostgres: ...
    @property
    def redis(self) -> LocalRedis: ...
    @property
    def aws(self) -> LocalAws: ...
    @property
    def gcs(self) -> LocalGcs: ...
    @property
    def kafka(self) -> LocalKafka: ...


@dataclass
class Options:
    """The sizes and repetitions of one invocation."""

    runs: int = 3
    quick: bool = False
    postgres_mb: int = 1024
    """The database under test is at least this big (``pg_database_size``), in MiB."""
    kafka_records: int = 150_000
    """Records per topic (three topics, as the seed's loop)."""
    redis_keys: int = 400_000
    catalog_days: int = 30
    catalog_stores: int = 5
    catalog_per_day: int = 96
    kafka_idle_timeout_ms: int = 30_000
    """The seed's ``--timeout-ms``."""
    redis_sleep_s: float = 30.0
    """The seed's ``sleep`` after BGSAVE."""
    sections: list[str] = field(default_factory=list)

    @classmethod
    def for_quick(cls, runs: int) -> Options:
        """Small sizes and short waits: proves the harness end to end, measures nothing."""
        return cls(
            runs=runs,
            quick=True,
            postgres_mb=24,
            kafka_records=3_000,
            redis_keys=5_000,
            catalog_days=3,
            catalog_stores=2,
            catalog_per_day=8,
            kafka_idle_timeout_ms=1_500,
            redis_sleep_s=1.0,
        )


class Bench:
    """One invocation's shared state: servers, buckets, work directory, options."""

    def __init__(self, servers: Servers, options: Options, workdir: Path) -> None:
        self.servers = servers
        self.options = options
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.bucket = f"bench-{secrets.token_hex(4)}"
        s3 = servers.aws.s3()
        s3.create_bucket(Bucket=self.bucket, ObjectLockEnabledForBucket=True)  # as the vault
        kms: Any = servers.aws.client("kms")
        self.kms_key_id = str(
            kms.create_key(Description="benchmark vault key")["KeyMetadata"]["Arn"]
        )
        servers.gcs.client().create_bucket(self.bucket)
        self.connections = Connections(
            pg_host=servers.postgres.host,
            pg_port=servers.postgres.port,
            pg_user=servers.postgres.user,
            pg_password=servers.postgres.password,
            redis_host=servers.redis.host,
            redis_port=servers.redis.port,
            redis_password=servers.redis.password,
            redis_rdb_path=str(servers.redis.rdb_path),
            aws_endpoint=servers.aws.endpoint_url,
            gcs_endpoint=servers.gcs.endpoint_url,
            kafka_bootstrap=servers.kafka.bootstrap,
            bucket=self.bucket,
            kms_key_id=self.kms_key_id,
        )
        self.connections_file = self.connections.write(workdir / "connections.json")
        self.cache: dict[str, Any] = {}
        """Measurements and artifacts one section makes and a later one reuses."""

    # -- object stores ------------------------------------------------------------------------

    def vault(self) -> S3Store:
        return S3Store(self.servers.aws.s3(), self.bucket)

    def mirror(self) -> GcsStore:
        return GcsStore(self.servers.gcs.client(), self.bucket)

    def clear(self, prefix: str) -> None:
        """Remove what a run wrote, outside the measured window: the emulators keep it in memory."""
        self.vault().delete_prefix(prefix)
        self.mirror().delete_prefix(prefix)

    # -- command environments -----------------------------------------------------------------

    def postgres_env(self, database: str) -> dict[str, str]:
        """libpq variables for pg_dump and psql, as the seed's CronJob gets them."""
        pg = self.servers.postgres
        return {
            **self.tool_env(),
            "PGHOST": pg.host,
            "PGPORT": str(pg.port),
            "PGUSER": pg.user,
            "PGPASSWORD": pg.password,
            "PGDATABASE": database,
        }

    def tool_env(self) -> dict[str, str]:
        """The environment of every measured command: the emulators' endpoints, dummy keys."""
        base = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PG"))}
        return {
            **base,
            **self.servers.aws.credentials_env,
            "STORAGE_EMULATOR_HOST": self.servers.gcs.endpoint_url,
            "PYTHONWARNINGS": "ignore::FutureWarning",
            "PYTHONPATH": str(ROOT),
        }

    def show(self, command: str | list[str], brief: bool = False) -> str:
        """A command as the report prints it: ``$B`` for the bucket, ``$W`` for the work
        directory, our runner's connection file left out (it only holds endpoints and keys);
        ``brief`` also drops the tools' directories, for a table cell."""
        text = command if isinstance(command, str) else " ".join(command)
        text = text.replace(f" --connections {self.connections_file}", "")
        text = text.replace(self.bucket, "$B").replace(str(self.workdir), "$W")
        if brief:
            for path in sorted(BRIEF, key=len, reverse=True):
                text = text.replace(path, BRIEF[path])
        return text

    def ours(self, action: str, *arguments: str) -> list[str]:
        """Our engine, run as its own process (like the CronJob) so it is measured as one."""
        return [
            PYTHON,
            "-m",
            "benchmarks.ours",
            "--connections",
            str(self.connections_file),
            action,
            *arguments,
        ]


def gcs_copy(url: str) -> str:
    """The seed's ``gsutil cp - gs://...``: gsutil speaks only HTTPS to its JSON API host, and the
    emulator only HTTP, so Google's own client library uploads stdin instead (``gcs_cp``)."""
    return f"{PYTHON} -m benchmarks.gcs_cp - {url}"
