"""The restore verbs' one contract (``drkit.ops.verbs``): the same ``build_plan(ctx, request,
env)``, requests from flags, and a resumed request pinned to what the journaled run resolved."""

from __future__ import annotations

import inspect

import pytest

from drkit.ops import cli
from drkit.ops.restore_all import RestoreAllRequest
from drkit.ops.restore_aurora import RestoreAuroraRequest
from drkit.ops.restore_k8s import RestoreK8sRequest
from drkit.ops.restore_kafka import RestoreKafkaRequest
from drkit.ops.restore_postgres import RestorePostgresRequest
from drkit.ops.restore_redis import RestoreRedisRequest
from drkit.ops.verbs import RestoreRequest
from drkit.targets import TargetRefused

FIRST = "20261121T041500123Z-3f9a1c"


@pytest.mark.parametrize("name", cli.RESTORE_VERBS)
def test_every_verb_keeps_the_contract(name: str) -> None:
    verb = cli.restore_verb(name)
    assert issubclass(verb.request, RestoreRequest)
    assert list(inspect.signature(verb.build_plan).parameters) == ["ctx", "request", "env"]
    assert verb.report == f"restore-{name}"


def test_an_unknown_verb_is_refused() -> None:
    with pytest.raises(ValueError, match="restore verb 'mongo': one of postgres, redis"):
        cli.restore_verb("mongo")


def test_flags_left_blank_keep_the_defaults() -> None:
    flags = {"store": "trading-db", "at": "", "backup": "", "target_database": "", "table": None}
    assert RestorePostgresRequest.from_flags(**flags) == RestorePostgresRequest()
    assert RestorePostgresRequest.from_flags(table=["orders"]).tables == ["orders"]
    assert RestoreRedisRequest.from_flags(replication_group="", node_type="") == (
        RestoreRedisRequest()
    )
    kafka = RestoreKafkaRequest.from_flags(topic=["a", "b"], rename=["a=a-copy"], since="")
    assert (kafka.topics, kafka.rename, kafka.since) == (["a", "b"], {"a": "a-copy"}, None)
    assert RestoreK8sRequest.from_flags(kinds="configmaps, secrets,").kinds == [
        "configmaps",
        "secrets",
    ]
    assert RestoreAllRequest.from_flags(stores="", at="").stores == []
    assert RestoreAuroraRequest.from_flags(reason="manual", at="").at is None
    with pytest.raises(TargetRefused, match="--rename 'a': write it as SOURCE_TOPIC=TARGET_TOPIC"):
        RestoreKafkaRequest.from_flags(rename=["a"])
    with pytest.raises(ValueError, match="reason"):  # a blank flag with a real default is bad
        RestoreAuroraRequest.from_flags(reason="")


def test_a_resumed_request_restores_the_first_runs_backup_into_its_target() -> None:
    """What a journal's ``run_started`` holds: the request as given (``at`` or "the newest"),
    and what the run resolved."""
    saved = RestorePostgresRequest(tables=["orders"]).model_dump() | {
        "stack": "local",
        "backup_id": FIRST,
        "recovery_point": "2026-11-21T04:15:00+00:00",
        "target": "127.0.0.1:5432/trading_restored_202611210415",
    }
    resumed = RestorePostgresRequest.resumed(saved)
    assert resumed == RestorePostgresRequest(
        backup=FIRST, target_database="trading_restored_202611210415", tables=["orders"]
    )
    at = RestoreRedisRequest(at="2026-11-21T05:00:00Z", force=True).model_dump()
    assert RestoreRedisRequest.resumed(at | {"backup_id": FIRST, "target": "redis x"}) == (
        RestoreRedisRequest(backup=FIRST, force=True)
    )
    kafka = RestoreKafkaRequest(rename={"a": "b"}).model_dump() | {"chain": [FIRST]}
    assert RestoreKafkaRequest.resumed(kafka | {"backup_id": FIRST}).backup == FIRST
    k8s = RestoreK8sRequest(namespace_to="restored").model_dump() | {"backup_id": FIRST}
    assert RestoreK8sRequest.resumed(k8s).backup == FIRST


def test_a_resumed_restore_all_keeps_each_stores_backup() -> None:
    saved = RestoreAllRequest(at="2026-11-21T05:00:00Z").model_dump() | {
        "backups": {"trading-db": FIRST},
        "order": ["trading-db (postgres ...)"],
        "skew_seconds": 0.0,
    }
    assert RestoreAllRequest.resumed(saved) == RestoreAllRequest(backups={"trading-db": FIRST})
