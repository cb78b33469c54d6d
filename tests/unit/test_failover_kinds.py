"""The protection-kind registry and the local failover's stable-name arithmetic (no server)."""

from __future__ import annotations

import pytest

from drkit.failover.kinds import REGISTRY, Protection
from drkit.failover.local import stable_target, through_name
from drkit.local.names import StableName
from stackmodels.config import PROTECTION_STORE_KINDS, ProtectionKind

pytestmark = pytest.mark.unit


def test_each_local_protection_kind_has_one_module_behind_the_interface() -> None:
    local = {
        ProtectionKind.POSTGRES_STREAMING,
        ProtectionKind.REDIS_REPLICA,
        ProtectionKind.MIRRORMAKER2,
    }
    assert local <= set(REGISTRY)
    for kind, module in REGISTRY.items():
        assert issubclass(module, Protection)
        assert module.kind is kind
        assert kind in PROTECTION_STORE_KINDS


def test_the_stable_name_of_a_target_carries_its_address_and_database() -> None:
    postgres = {
        "protection": "postgres-streaming",
        "url": "postgresql://postgres:s3cret@127.0.0.1:5544/aipx",
    }
    assert stable_target(postgres, "dr") == StableName(
        region="dr", host="127.0.0.1", port=5544, database="aipx"
    )
    kafka = {"protection": "mirrormaker2", "url": "127.0.0.1:9192"}
    assert stable_target(kafka, "dr") == StableName(region="dr", host="127.0.0.1", port=9192)
    redis = {"protection": "redis-replica", "url": "redis://:pw@127.0.0.1:6380/0"}
    assert stable_target(redis, "dr").database is None


def test_a_client_url_through_the_name_keeps_the_credentials_and_takes_the_names_address() -> None:
    name = StableName(region="dr", host="127.0.0.1", port=7001)
    redis = {"protection": "redis-replica", "url": "redis://:pw@127.0.0.1:6380/0"}
    assert through_name(redis, name) == "redis://:pw@127.0.0.1:7001/0"
    postgres = {
        "protection": "postgres-streaming",
        "url": "postgresql://postgres:s3cret@127.0.0.1:5544/aipx",
    }
    assert through_name(postgres, name) == "postgresql://postgres:s3cret@127.0.0.1:7001/aipx"
    kafka = {"protection": "mirrormaker2", "url": "127.0.0.1:9192"}
    assert through_name(kafka, name) == "127.0.0.1:7001"
