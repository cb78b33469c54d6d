"""The stack config change after a failover: one line set or inserted, everything else kept."""

from __future__ import annotations

from pathlib import Path

import pytest

from drkit.failover.stack_config import KEY, StackConfigEditError, active_region_change
from stackmodels import ConfigError, StackConfig

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("stack", ["prod", "dr"])
def test_the_key_is_inserted_after_peer_region_and_nothing_else_moves(
    tmp_path: Path, stack: str
) -> None:
    path = tmp_path / f"Pulumi.{stack}.yaml"
    original = (ROOT / f"Pulumi.{stack}.yaml").read_text()
    path.write_text(original)
    change = active_region_change(path, "us-west-2", "failover to us-west-2")
    assert change.changed and path.read_text() == original  # not written yet
    change.write()
    after = path.read_text().splitlines()
    before = original.splitlines()
    anchor = next(i for i, line in enumerate(before) if "trading-dr:peer_region:" in line)
    assert after[: anchor + 1] == before[: anchor + 1]
    assert after[anchor + 1 : anchor + 3] == [
        "  # The region that writes now (failover to us-west-2): the next `pulumi up` agrees "
        "with it.",
        f"  {KEY}: us-west-2",
    ]
    assert after[anchor + 3 :] == before[anchor + 1 :]
    assert StackConfig.load(path).primary_region == "us-west-2"
    assert "+  trading-dr:active_region: us-west-2" in change.diff()


def test_an_existing_value_is_replaced_keeping_its_comment_and_line_ending(tmp_path: Path) -> None:
    path = tmp_path / "Pulumi.dr.yaml"
    text = (
        (ROOT / "Pulumi.dr.yaml")
        .read_text()
        .replace(
            "  trading-dr:peer_region: us-east-1\n",
            "  trading-dr:peer_region: us-east-1\n"
            "  trading-dr:active_region: us-west-2  # drill 3\n",
        )
    )
    path.write_bytes(text.replace("\n", "\r\n").encode())
    change = active_region_change(path, "us-east-1", "failback to us-east-1")
    change.write()
    body = path.read_bytes().decode()
    assert "  trading-dr:active_region: us-east-1  # drill 3\r\n" in body
    assert body.count("\r\n") == text.count("\n") and "\n" not in body.replace("\r\n", "")
    assert StackConfig.load(path).active_region == "us-east-1"
    again = active_region_change(path, "us-east-1", "failback to us-east-1")
    assert not again.changed and again.diff() == ""


def test_a_region_the_stack_does_not_have_is_refused_and_nothing_is_written(
    tmp_path: Path,
) -> None:
    path = tmp_path / "Pulumi.prod.yaml"
    path.write_text((ROOT / "Pulumi.prod.yaml").read_text())
    before = path.read_text()
    with pytest.raises(ConfigError, match="active_region"):
        active_region_change(path, "eu-west-1", "failover")
    assert path.read_text() == before


def test_a_file_without_a_region_line_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "Pulumi.odd.yaml"
    path.write_text("config:\n  trading-dr:platform: aipx\n")
    with pytest.raises(StackConfigEditError, match="no trading-dr:peer_region: or"):
        active_region_change(path, "us-west-2", "failover")
    with pytest.raises(StackConfigEditError, match="not found"):
        active_region_change(tmp_path / "missing.yaml", "us-west-2", "failover")
