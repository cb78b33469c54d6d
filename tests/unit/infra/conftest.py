"""Run the real program once per stack (prod, then dr fed with prod's exports) for the session."""

from __future__ import annotations

import pytest
from program_harness import StackRun, run_stack


@pytest.fixture(scope="session")
def prod() -> StackRun:
    return run_stack("prod")


@pytest.fixture(scope="session")
def dr(prod: StackRun) -> StackRun:
    return run_stack("dr", {"prod": prod.outputs})


@pytest.fixture(scope="session", params=["prod", "dr"])
def run(request: pytest.FixtureRequest, prod: StackRun, dr: StackRun) -> StackRun:
    return prod if request.param == "prod" else dr
