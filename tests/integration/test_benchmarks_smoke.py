"""The benchmark harness end to end on tiny data (``--quick`` sizes, one run per figure).

Performance is judged by ``python -m benchmarks``, never here: this test only proves that every
section runs against the real servers and that the results files are well formed. No timing is
asserted.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from benchmarks.__main__ import SECTIONS, run
from benchmarks.environment import Options
from drkit.local.gcs import LocalGcs
from drkit.local.kafka import LocalKafka
from drkit.local.postgres import LocalPostgres
from drkit.local.redis import LocalRedis
from drkit.local.s3 import LocalAws

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]


@dataclass
class Servers:
    postgres: LocalPostgres
    redis: LocalRedis
    aws: LocalAws
    gcs: LocalGcs
    kafka: LocalKafka


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[LocalRedis]:
    """Its own Redis: the benchmark flushes the server it fills, and others share the session's."""
    with LocalRedis(tmp_path / "redis") as server:
        yield server


def table_blocks(markdown: str) -> list[list[str]]:
    blocks: list[list[str]] = [[]]
    for line in markdown.splitlines():
        if line.startswith("|"):
            blocks[-1].append(line)
        elif blocks[-1]:
            blocks.append([])
    return [block for block in blocks if block]


def cells(row: str) -> list[str]:
    """A Markdown table row's cells; ``\\|`` inside a cell is not a separator."""
    return row.replace("\\|", "").strip().strip("|").split("|")


def test_quick_run_writes_well_formed_results(
    tmp_path: Path,
    postgres_server: LocalPostgres,
    own_redis: LocalRedis,
    aws_emulator: LocalAws,
    gcs_emulator: LocalGcs,
    kafka_broker: LocalKafka,
) -> None:
    servers = Servers(postgres_server, own_redis, aws_emulator, gcs_emulator, kafka_broker)
    output = tmp_path / "RESULTS.md"
    command = ".venv/bin/python -m benchmarks --quick --runs 1"

    code = run(Options.for_quick(runs=1), servers, output, command, tmp_path / "work")

    markdown = output.read_text()
    data = json.loads((tmp_path / "results.json").read_text())
    assert code == 0, markdown
    assert "FAILED" not in markdown
    assert command in markdown and "median of N = 1 runs" in markdown
    assert "load average" in markdown and "Smoke run" in markdown
    for heading in ("## Headline ratios", "## Machine and versions"):
        assert heading in markdown
    titles = [line for line in markdown.splitlines() if line.startswith("## ") and ". " in line]
    assert len(titles) == len(SECTIONS)
    assert titles[-1].endswith("Failover critical path")

    assert set(data["sections"]) == set(SECTIONS)
    assert data["runs"] == 1 and data["quick"] is True
    for key in SECTIONS:
        section = data["sections"][key]
        assert section["headlines"], key
        assert section["tables"], key
        for table in section["tables"]:
            assert all(len(row) == len(table["headers"]) for row in table["rows"]), key
    assert len(data["headlines"]) == len(SECTIONS)

    for block in table_blocks(markdown):
        widths = {len(cells(row)) for row in block}
        assert len(widths) == 1, block
        assert {cell.strip() for cell in cells(block[1])} == {"---"}, block

    backup = data["sections"]["postgres_backup"]["data"]
    assert len(backup["seed_both"]["seconds"]["values"]) == 1
    assert len(backup["ours_both"]["seconds"]["values"]) == 1
    assert data["sections"]["postgres_restore"]["data"]["verified"] == {"seed": True, "ours": True}
    trip = data["sections"]["kafka"]["data"]["round_trip"]
    assert trip["ours"]["records back"] == trip["ours"]["records"] > 0

    failover = data["sections"]["failover"]
    assert len(failover["tables"]) == 6
    assert failover["data"]["layers"] and failover["data"]["depends"]
    for level in ("low", "typical", "high"):
        figures = failover["data"]["levels"][level]
        assert set(figures["seconds"]) == {s for layer in failover["data"]["layers"] for s in layer}
        assert len(figures["measured_ours"]["values"]) == 1
        assert len(figures["measured_one_after_another"]["values"]) == 1
        assert figures["critical_path"]
    assert failover["data"]["stores"]
    signals = failover["data"]["services"]["signals"]  # waits for Kafka only, not for Aurora
    assert signals["critical_path_typical"][2] == ["kafka.clients"]

    # --only: the chosen section is measured again, the others keep their first run's figures
    again = Options.for_quick(runs=1)
    again.sections = ["failover"]
    only = ".venv/bin/python -m benchmarks --quick --runs 1 --only failover"
    assert run(again, servers, output, only, tmp_path / "work-again") == 0
    merged = json.loads((tmp_path / "results.json").read_text())
    assert list(merged["sections"]) == list(SECTIONS)
    assert merged["sections"]["failover"]["measured_by"]["command"] == only
    for key in set(SECTIONS) - {"failover"}:
        assert merged["sections"][key]["measured_by"]["command"] == command, key
        assert merged["sections"][key]["tables"] == data["sections"][key]["tables"], key
    rerun = output.read_text()
    assert "Measured in 2 runs" in rerun and only in rerun and command in rerun
