"""The README's main command, small: every step runs for real; the report holds measured figures."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from drkit.roundtrip import run_round_trip
from stackmodels import StackOutputs

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def test_round_trip_backs_up_restores_and_measures(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "Pulumi.prod.yaml").write_text((ROOT / "Pulumi.prod.yaml").read_text())
    out = io.StringIO()
    report = run_round_trip(tmp_path / "servers", project, 3.0, tmp_path / "reports", out)

    assert report.ok, out.getvalue()
    assert report.verified == {"vault": True, "mirror": True}
    figures = report.figures
    assert figures["stored_bytes"] < figures["dump_bytes"]
    assert figures["writes_lost"] == 25
    assert figures["writes_after_point_in_restore"] == 0
    assert 0 < figures["rpo_seconds"] < 60
    assert 0 < figures["rto_seconds"] < 600
    assert [step.name.split()[0] for step in report.steps] == [
        "start",
        "provision",
        "seed",
        "back",
        "disaster:",
        "restore",
        "restore",
        "stop",
    ]
    written = json.loads((tmp_path / "reports" / "latest" / "roundtrip.json").read_text())
    assert written["ok"] is True and written["figures"]["backup_id"] == figures["backup_id"]
    markdown = (tmp_path / "reports" / "latest" / "roundtrip.md").read_text()
    assert "| restore from the mirror" in markdown
    outputs = StackOutputs.from_file(project / ".drkit" / "local" / "outputs.json", "local")
    assert outputs.aws_endpoint_url and outputs.stores["trading-db"].kind == "postgres"
    assert "== Round trip PASS" in out.getvalue()
