"""The recorded stacks as the pack and ``python -m policy check`` see them."""

from __future__ import annotations

from typing import Any

from program_harness import StackRun

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
