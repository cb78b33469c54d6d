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

import yaml

from stackmodels import StackConfig
from stackmodels.config import split_namespace
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


def _config_section(path: Path) -> dict[str, Any]:
    try:
        document = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(str(path), ["file not found"]) from None
    except yaml.YAMLError as error:
        raise ConfigError(str(path), [f"not valid YAML: {error}"]) from None
    if not isinstance(document, dict) or not isinstance(document.get("config"), dict):
        raise ConfigError(str(path), ["config: missing; a mapping of keys is required"])
    return dict(document["config"])


def local_stack_config(project_dir: Path) -> StackConfig:
    """``Pulumi.prod.yaml`` overlaid with ``local-stack.yaml``, validated."""
    base = _config_section(project_dir / f"Pulumi.{BASE_STACK}.yaml")
    local_path = project_dir / LOCAL_CONFIG_FILE
    merged = _merge(base, _config_section(local_path))
    values, foreign = split_namespace(merged)
    if foreign:
        raise ConfigError(str(local_path), [f"{key}: unknown key" for key in foreign])
    return StackConfig.from_pulumi_config(values, str(local_path))
