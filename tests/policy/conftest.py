"""The policy rules see what the mocks recorded for the real program (prod and dr).

Each stack is run once per session (``program_harness`` caches the runs); mutation tests copy the
recorded resources and change one setting, which is what the pack sees of a program that set it.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit" / "infra"))

from program_harness import StackRun, run_stack

from policy.floors import Floors, floors_for_stack
from policy.rules import Resource


def urn_of(run: StackRun, type_: str, name: str) -> str:
    return f"urn:pulumi:{run.stack}::trading-dr::{type_}::{name}"


def as_policy_resources(run: StackRun) -> list[Resource]:
    """What CrossGuard's stack validation sees: each resource's type, name, URN and state."""
    return [Resource(r.type, r.name, urn_of(run, r.type, r.name), r.state) for r in run.resources]


def as_resource_records(run: StackRun) -> list[dict[str, Any]]:
    """The stack as ``python -m policy check`` reads it: the mocks' records, outputs apart."""
    return [
        {
            "type": r.type,
            "name": r.name,
            "urn": urn_of(run, r.type, r.name),
            "inputs": r.inputs,
            "outputs": {k: v for k, v in r.state.items() if r.inputs.get(k) != v},
            "parent": r.urn_parent,
        }
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


@pytest.fixture(scope="session")
def prod_floors() -> Floors:
    return floors_for_stack("prod")


@pytest.fixture(scope="session")
def dr_floors() -> Floors:
    return floors_for_stack("dr")
