"""Session-wide real servers for the integration tests: each started once, stopped at the end."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from drkit.backup.engine import Destinations
from drkit.local.gcs import LocalGcs
from drkit.local.isolated import ISOLATED_ACCOUNT, provision_isolated
from drkit.local.postgres import LocalPostgres
from drkit.local.pushgateway import LocalPushgateway
from drkit.local.redis import LocalRedis
from drkit.local.s3 import LocalAws
from drkit.local.stack import provision, write_state
from drkit.storage.gcs import GcsStore
from drkit.storage.objectstore import Encryption
from drkit.storage.s3 import S3Store
from stackmodels import StackConfig

if TYPE_CHECKING:
    from drkit.local.influxdb import LocalInfluxDB
    from drkit.local.kafka import LocalKafka

# Kafka's fixture is written separately; until it exists, the other servers still work.
with contextlib.suppress(ImportError):
    from tests.integration.kafka_fixture import kafka_broker  # noqa: F401
with contextlib.suppress(ImportError):
    from tests.integration.influxdb_fixture import influxdb_server  # noqa: F401


@pytest.fixture(autouse=True)
def drkit_stack_local(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every task acts on a stack it is told (``drkit.stack_choice``): here, unless a test says
    otherwise with ``--stack``, the local stack the ``project`` fixtures provision. Inherited by
    the ``invoke`` and ``python -m drkit`` subprocesses the tests run."""
    monkeypatch.setenv("DRKIT_STACK", "local")


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPostgres]:
    with LocalPostgres(tmp_path_factory.mktemp("postgres")) as server:
        yield server


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRedis]:
    with LocalRedis(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture(scope="session")
def aws_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalAws]:
    with LocalAws(tmp_path_factory.mktemp("aws")) as server:
        yield server


@pytest.fixture(scope="session")
def isolated_aws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalAws]:
    """The isolated backup account's own AWS emulator (issue 22), enforcing its vault's rules."""
    workdir = tmp_path_factory.mktemp("aws-vault")
    with LocalAws(workdir, isolated_account=ISOLATED_ACCOUNT) as server:
        yield server


@pytest.fixture(scope="session")
def gcs_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalGcs]:
    with LocalGcs(tmp_path_factory.mktemp("gcs")) as server:
        yield server


@pytest.fixture
def destinations(aws_emulator: LocalAws, gcs_emulator: LocalGcs) -> Iterator[Destinations]:
    """A fresh vault bucket (SSE-KMS with an emulated key) and a fresh mirror bucket per test,
    with the mirror's retention policy (nothing younger than 7 days replaced or deleted).

    Parts are small (5 MiB to S3, 1 MiB to GCS) so modest test data takes the multipart paths.
    """
    name = f"vault-{secrets.token_hex(4)}"
    s3 = aws_emulator.s3()
    s3.create_bucket(Bucket=name, ObjectLockEnabledForBucket=True)  # as the real vault
    kms: Any = aws_emulator.client("kms")
    key = kms.create_key(Description="vault key")["KeyMetadata"]["Arn"]
    gcs = gcs_emulator.client()
    gcs_emulator.create_locked_bucket(name, timedelta(days=7))
    yield Destinations(
        vault=S3Store(s3, name, part_size=5 * 1024 * 1024),
        mirror=GcsStore(gcs, name, part_size=1024 * 1024),
        encryption=Encryption(kms_key_id=key),
    )


@pytest.fixture(scope="session")
def pushgateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPushgateway]:
    with LocalPushgateway(tmp_path_factory.mktemp("pushgateway")) as server:
        yield server


ROOT = Path(__file__).resolve().parents[2]


@dataclass
class SessionServers:
    """The session's servers in the shape ``provision`` takes (Kafka left out: not every test
    needs the broker, and starting it costs seconds)."""

    postgres: LocalPostgres
    redis: LocalRedis
    aws: LocalAws
    gcs: LocalGcs
    kafka: LocalKafka | None = None
    influxdb: LocalInfluxDB | None = None
    isolated: LocalAws | None = None
    """The isolated backup account's emulator: when set, the stack has an isolated vault."""


@pytest.fixture
def project(
    tmp_path: Path,
    postgres_server: LocalPostgres,
    redis_server: LocalRedis,
    aws_emulator: LocalAws,
    gcs_emulator: LocalGcs,
) -> Path:
    """A project directory whose ``--stack local`` is provisioned on the session's servers:
    prod's stack file, and the outputs and credentials the local environment writes."""
    servers = SessionServers(postgres_server, redis_server, aws_emulator, gcs_emulator)
    return provision_project(tmp_path, servers)


@pytest.fixture
def project_isolated(
    tmp_path: Path,
    postgres_server: LocalPostgres,
    redis_server: LocalRedis,
    aws_emulator: LocalAws,
    gcs_emulator: LocalGcs,
    isolated_aws: LocalAws,
) -> Path:
    """``project`` with an isolated backup account: backups land in three places."""
    servers = SessionServers(
        postgres_server, redis_server, aws_emulator, gcs_emulator, isolated=isolated_aws
    )
    return provision_project(tmp_path, servers)


@pytest.fixture
def project_with_kafka(
    tmp_path: Path,
    postgres_server: LocalPostgres,
    redis_server: LocalRedis,
    aws_emulator: LocalAws,
    gcs_emulator: LocalGcs,
    kafka_broker: LocalKafka,
) -> Path:
    """``project`` with the session's Kafka broker as the ``event-stream`` store."""
    servers = SessionServers(
        postgres_server, redis_server, aws_emulator, gcs_emulator, kafka=kafka_broker
    )
    return provision_project(tmp_path, servers)


def provision_project(directory: Path, servers: SessionServers) -> Path:
    (directory / "Pulumi.prod.yaml").write_text((ROOT / "Pulumi.prod.yaml").read_text())
    config = StackConfig.for_stack("prod", directory)
    suffix = secrets.token_hex(4)
    outputs, credentials = provision(servers, config, suffix=suffix, separate_databases=True)
    if servers.isolated is not None:
        isolated = provision_isolated(servers.isolated, config, suffix)
        outputs = outputs.model_copy(update={"isolated_vault": isolated})
    write_state(directory / ".drkit" / "local", outputs, credentials)
    return directory
