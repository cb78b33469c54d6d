"""The region-failover scenario's verdict on each write (``drkit.drill.region_failover``): a write
prod acknowledged and dr lacks is lost to the RPO, whenever its writer stamped it (a write prod
acknowledged as it was killed is stamped a moment after the disaster's own timestamp); a write dr
acknowledged and lacks is a failure."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, cast

import pytest

from drkit.drill.region_failover import _split
from drkit.drill.writers import Write

if TYPE_CHECKING:
    from drkit.context import OpsContext

pytestmark = pytest.mark.unit
DISASTER = datetime(2026, 12, 3, 17, 14, 15, tzinfo=UTC)
PROD, DR = "127.0.0.1:5001", "127.0.0.1:5002"


def write(n: int, seconds: float, address: str) -> Write:
    return Write(n, DISASTER + timedelta(seconds=seconds), {"address": address})


def test_a_write_prod_acknowledged_as_it_died_is_lost_not_missing() -> None:
    ledger = [
        write(1, -2.0, PROD),  # replicated
        write(2, -0.1, PROD),  # lost: acknowledged before the kill
        write(3, +0.02, PROD),  # lost: acknowledged by prod, stamped after the disaster
        write(4, +5.0, DR),  # written in dr after the failover
    ]
    check, kept, lost = _split(ledger, {1, 4}, DISASTER, DR)
    assert [w.n for w in kept] == [1, 4] and [w.n for w in lost] == [2, 3]
    assert check.missing == 0 and check.lost_writes == 2 and check.expected == 2


def test_a_write_dr_acknowledged_and_lacks_is_a_failure() -> None:
    ledger = [write(1, -1.0, PROD), write(2, +3.0, DR)]
    check, kept, lost = _split(ledger, {1}, DISASTER, DR)
    assert check.missing == 1 and lost == [] and [w.n for w in kept] == [1]


def test_each_writer_names_the_server_of_a_url_as_it_records_its_writes() -> None:
    from drkit.drill.writers import KafkaEventWriter, PostgresOrderWriter, RedisSessionWriter

    assert PostgresOrderWriter.address_of(f"postgresql://u:p@{DR}/db") == DR
    assert RedisSessionWriter.address_of(f"redis://:secret@{DR}/0") == DR
    assert KafkaEventWriter.address_of(DR) == DR


def test_the_scenario_plays_the_kinds_written_and_replicated_into_dr() -> None:
    """The registry's kinds with a drill writer and a continuous protection in the local stack:
    the time series store (backups only) and Kubernetes (no writer) stay out."""
    from drkit.drill.region_failover import played_kinds
    from stackmodels.config import StoreKind

    assert list(played_kinds()) == [StoreKind.POSTGRES, StoreKind.KAFKA, StoreKind.REDIS]
    assert all(writer.prepare is None for writer in list(played_kinds().values())[1:])
    assert played_kinds()[StoreKind.POSTGRES].prepare is not None  # its trading schema


def test_a_kafka_writer_writes_the_topics_its_address_names(tmp_path: Path) -> None:
    """The mirrored topics only, not every topic of the store's configuration (which the
    factory never reads then)."""
    from drkit.drill.writers import KafkaEventWriter, StableAddress, kafka_writer
    from drkit.local.names import StableName, write_names_file

    names = tmp_path / "names.json"
    write_names_file(names, {"events": StableName(region="prod", host="127.0.0.1", port=1)})
    address = StableAddress(names, "events", topics=("trading.signals",))
    writer = kafka_writer(cast("OpsContext", None), address, "events", 1.0)
    assert isinstance(writer, KafkaEventWriter) and writer.topics == ["trading.signals"]
