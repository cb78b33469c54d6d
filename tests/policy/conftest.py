"""The policy rules see what the mocks recorded for the real program (prod and dr).

Each stack is run once per session (``program_harness`` caches the runs); mutation tests copy the
recorded resources and change one setting, which is what the pack sees of a program that set it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit" / "infra"))

from policy_harness import as_policy_resources
from program_harness import StackRun, run_stack

from policy.floors import Floors, floors_for_stack
from policy.rules import Resource


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


@pytest.fixture(scope="session")
def prod_floors() -> Floors:
    return floors_for_stack("prod")


@pytest.fixture(scope="session")
def dr_floors() -> Floors:
    return floors_for_stack("dr")
