"""Session-wide real servers for the integration tests: each started once, stopped at the end."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest

from drkit.local.gcs import LocalGcs
from drkit.local.postgres import LocalPostgres
from drkit.local.redis import LocalRedis
from drkit.local.s3 import LocalAws

# Kafka's fixture is written separately; until it exists, the other servers still work.
with contextlib.suppress(ImportError):
    from tests.integration.kafka_fixture import kafka_broker  # noqa: F401


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
def gcs_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalGcs]:
    with LocalGcs(tmp_path_factory.mktemp("gcs")) as server:
        yield server
