"""The data-loss window: the largest lag at cut-over, and "unknown" rather than a false 0."""

from __future__ import annotations

from typing import Any

import pytest

from drkit.failover.lag import LagReading, data_loss_window, replicator_name

pytestmark = pytest.mark.unit


def reading(store: str, seconds: float | None, metric: str = "AWS/X Lag") -> dict[str, Any]:
    return LagReading(store, "us-west-2", metric, 60.0, seconds).as_dict()


def test_the_window_is_the_largest_lag() -> None:
    figures = data_loss_window([reading("a", 1.5), reading("b", 0.2), reading("c", None, "none")])
    assert figures == {"data_loss_window": "1.5s", "data_loss_window_seconds": 1.5}


def test_a_store_without_a_datapoint_makes_the_window_unknown_never_zero() -> None:
    figures = data_loss_window([reading("a", 0.0), reading("b", None)])
    assert figures["data_loss_window"] == "unknown (at least 0.0s, no lag datapoint for b)"
    assert figures["data_loss_window_seconds"] is None
    only_missing = data_loss_window([reading("b", None)])
    assert only_missing["data_loss_window"] == "unknown (no lag datapoint for b)"
    assert LagReading("b", "r", "m", 60.0).within_rpo is None
    assert data_loss_window([])["data_loss_window"].startswith("unknown")


def test_the_replicator_name_comes_from_its_arn() -> None:
    arn = "arn:aws:kafka:us-west-2:123456789012:replicator/aipx-es-ue1-to-uw2/0a1b-2c3d"
    assert replicator_name(arn) == "aipx-es-ue1-to-uw2"
    with pytest.raises(ValueError, match="is not an MSK Replicator ARN"):
        replicator_name("arn:aws:kafka:us-west-2:123456789012:cluster/x/y")
