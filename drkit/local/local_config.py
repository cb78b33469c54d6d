"""The local stack's config: prod's, with the local protections of ``local-stack.yaml``.

The local stack is not a Pulumi stack (nothing in it is deployed by Pulumi, and a
``Pulumi.local.yaml`` would make every ``pulumi`` command and the CI preview matrix treat it as
one), so its file is ``local-stack.yaml``: the same ``config:`` keys, laid over
``Pulumi.prod.yaml`` key by key (nested mappings merge), and validated by ``StackConfig`` as every
stack's config is. It names what protects each store between the local regions
(``continuous_protection: postgres-streaming | redis-replica | mirrormaker2 | gitops``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from stackmodels import StackConfig
from stackmodels.config import read_config_section, split_namespace
from stackmodels.errors import ConfigError

LOCAL_CONFIG_FILE = "local-stack.yaml"
BASE_STACK = "prod"


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def local_stack_config(project_dir: Path) -> StackConfig:
    """``Pulumi.prod.yaml`` overlaid with ``local-stack.yaml``, validated."""
    base = read_config_section(project_dir / f"Pulumi.{BASE_STACK}.yaml")
    local_path = project_dir / LOCAL_CONFIG_FILE
    merged = _merge(base, read_config_section(local_path))
    values, foreign = split_namespace(merged)
    if foreign:
        raise ConfigError(str(local_path), [f"{key}: unknown key" for key in foreign])
    return StackConfig.from_pulumi_config(values, str(local_path))
