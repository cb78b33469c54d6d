"""Pulumi entry point: read every StackConfig field from the stack's config, then compose."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pulumi

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from infra.program import define_stack
from stackmodels import StackConfig
from stackmodels.config import VaultStackConfig, any_stack_config


def stack_config_keys() -> dict[str, Any]:
    """Every config key of the stack, as the engine hands them to the program: the CLI's language
    host through ``PULUMI_CONFIG``, the Automation API and the test mocks through the runtime."""
    keys: dict[str, Any] = dict(pulumi.runtime.get_config_env())
    keys.update(pulumi.runtime.config.CONFIG.get())
    return keys


def _decoded(raw: Any) -> Any:
    if not isinstance(raw, str):
        return raw
    try:
        return json.loads(raw)  # objects, lists, booleans and numbers
    except ValueError:
        return raw  # plain strings


def read_config() -> StackConfig | VaultStackConfig:
    """Every key in the stack's config, not only the fields the program knows: a misspelt
    ``trading-dr:`` key fails ``pulumi up`` with the same line ``invoke config.check`` prints.
    The role picks the model: ``vault`` is the isolated backup account's stack."""
    values = {key: _decoded(raw) for key, raw in stack_config_keys().items()}
    return any_stack_config(values, source=f"Pulumi.{pulumi.get_stack()}.yaml")


define_stack(read_config(), pulumi.get_stack())
