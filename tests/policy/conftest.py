"""The policy rules see what the mocks recorded for the real program (prod and dr)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit" / "infra"))

from program_harness import StackRun, run_stack

from policy.rules import Resource


def as_policy_resources(run: StackRun) -> list[Resource]:
    """What CrossGuard's stack validation sees: each resource's type, name, URN and state."""
    return [
        Resource(r.type, r.name, f"urn:pulumi:{run.stack}::trading-dr::{r.type}::{r.name}", r.state)
        for r in run.resources
    ]


@pytest.fixture(scope="session")
def prod_run() -> StackRun:
    return run_stack("prod")


@pytest.fixture(scope="session")
def dr_run(prod_run: StackRun) -> StackRun:
    return run_stack("dr", {"prod": prod_run.outputs})


@pytest.fixture(scope="session")
def prod_resources(prod_run: StackRun) -> list[Resource]:
    return as_policy_resources(prod_run)


@pytest.fixture(scope="session")
def dr_resources(dr_run: StackRun) -> list[Resource]:
    return as_policy_resources(dr_run)
