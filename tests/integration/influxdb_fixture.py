"""The session's InfluxDB 1.x server: started once, stopped when the session ends.

Imported into ``tests/integration/conftest.py``; usable on its own as a plugin with
``-p tests.integration.influxdb_fixture``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from drkit.local.influxdb import LocalInfluxDB


@pytest.fixture(scope="session")
def influxdb_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalInfluxDB]:
    with LocalInfluxDB(tmp_path_factory.mktemp("influxdb")) as server:
        yield server
