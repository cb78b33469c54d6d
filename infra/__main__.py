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


def read_config() -> StackConfig:
    config = pulumi.Config()
    values: dict[str, Any] = {}
    for name in StackConfig.model_fields:
        raw = config.get(name)
        if raw is None:
            continue
        try:
            values[name] = json.loads(raw)  # objects, lists, booleans and numbers
        except ValueError:
            values[name] = raw  # plain strings
    return StackConfig.from_pulumi_config(values, source=f"Pulumi.{pulumi.get_stack()}.yaml")


define_stack(read_config(), pulumi.get_stack())
