"""The session's Kafka broker: started once (a JVM takes seconds), stopped when the session ends.

Imported into ``tests/integration/conftest.py``; usable on its own as a plugin with
``-p tests.integration.kafka_fixture``. With ``DRKIT_KAFKA_BOOTSTRAP`` set it yields that broker.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from drkit.local.kafka import LocalKafka


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalKafka]:
    with LocalKafka(tmp_path_factory.mktemp("kafka")) as broker:
        yield broker
