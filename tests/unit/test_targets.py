"""Restore targets are names, checked (drkit.targets): each refusal names the input and the rule."""

from __future__ import annotations

import re

import pytest

from drkit.ops.restore_aurora import RestoreAuroraRequest
from drkit.ops.restore_k8s import RestoreK8sRequest
from drkit.ops.restore_kafka import parse_renames
from drkit.ops.restore_redis import RestoreRedisRequest
from drkit.targets import (
    TargetRefused,
    aurora_cluster,
    kafka_renames,
    kafka_targets,
    kubernetes_namespace,
    postgres_database,
    replication_group,
)

pytestmark = [pytest.mark.unit, pytest.mark.reliability]


@pytest.mark.parametrize(
    "name", ["restored", "aipx_restored_202612030715", "_scratch", "Upper_Case1", "x" * 63]
)
def test_plain_database_names_are_accepted(name: str) -> None:
    assert postgres_database(name, ["aipx"]) == name


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("postgresql://oncall@db.internal:5432/canary", "not a connection string"),
        ("host=db.internal dbname=canary", "not a connection string"),
        ("dbname=canary", "not a connection string"),
        ("canary; DROP DATABASE aipx", "not a connection string"),
        ("../canary", "not a connection string"),
        ("9lives", "not starting with a digit"),
        ("trading-db", "letters, digits and _"),
        ("é" * 32, "is 64 bytes; PostgreSQL names are at most 63"),
        ("x" * 64, "is 64 bytes; PostgreSQL names are at most 63 .*would truncate"),
        ("", "is empty"),
        ("template0", "one of PostgreSQL's own databases"),
        ("template1", "one of PostgreSQL's own databases"),
        ("postgres", "one of PostgreSQL's own databases"),
        ("TEMPLATE1", "one of PostgreSQL's own databases"),
        ("aipx", "is the source database"),
    ],
)
def test_database_names_that_are_refused(name: str, why: str) -> None:
    with pytest.raises(TargetRefused, match=why):
        postgres_database(name, ["aipx", ""])


def test_a_refused_name_is_shown_as_typed_and_shortened() -> None:
    pasted = "postgresql://" + "x" * 200
    with pytest.raises(TargetRefused) as refused:
        postgres_database(pasted)
    message = str(refused.value)
    assert "'postgresql://xxx" in message and "...'" in message and len(message) < 300
    assert "\n" not in message


def test_two_renames_onto_one_topic_are_refused() -> None:
    with pytest.raises(TargetRefused, match=r"\(orders, trades -> 'merged'\)"):
        parse_renames(["orders=merged", "trades=merged"])
    with pytest.raises(TargetRefused, match="topic 'orders' renamed twice"):
        kafka_renames(["orders=a", "orders=b"])
    with pytest.raises(TargetRefused, match="write it as SOURCE_TOPIC=TARGET_TOPIC"):
        kafka_renames(["orders"])
    assert kafka_renames(["orders=orders-copy", "orders=orders-copy", "ticks=t2"]) == {
        "orders": "orders-copy",
        "ticks": "t2",
    }


def test_a_rename_onto_a_topic_restored_under_its_own_name_is_refused() -> None:
    with pytest.raises(TargetRefused, match=r"\(orders, trades -> 'trades'\)"):
        kafka_targets({"orders": "trades", "trades": "trades"})
    assert kafka_targets({"orders": "trades", "trades": "trades-old"}) == {
        "orders": "trades",
        "trades": "trades-old",
    }


@pytest.mark.parametrize("name", ["cache-restored", "c", "a1-b2-c3", "x" * 40])
def test_elasticache_group_ids_that_are_valid(name: str) -> None:
    assert replication_group(name) == name


@pytest.mark.parametrize("name", ["", "1cache", "cache--x", "cache-", "Cache", "x" * 41, "a_b"])
def test_elasticache_group_ids_that_are_refused(name: str) -> None:
    with pytest.raises(TargetRefused, match="not an ElastiCache replication group id"):
        replication_group(name)
    with pytest.raises(ValueError, match="not an ElastiCache replication group id"):
        RestoreRedisRequest(replication_group=name)


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("kube-system", "one of the cluster's own namespaces"),
        ("kube-public", "one of the cluster's own namespaces"),
        ("kube-node-lease", "one of the cluster's own namespaces"),
        ("default", "one of the cluster's own namespaces"),
        ("Trading", "not a namespace name"),
        ("trading.app", "not a namespace name"),
        ("-trading", "not a namespace name"),
        ("n" * 64, "not a namespace name"),
        ("trading", "is the namespace the backup was taken from; omit --namespace-to"),
    ],
)
def test_namespaces_that_are_refused(name: str, why: str) -> None:
    with pytest.raises(TargetRefused, match=why):
        kubernetes_namespace(name, "trading")


def test_a_namespace_name_is_checked_when_the_request_is_parsed() -> None:
    assert RestoreK8sRequest(namespace_to="trading-restored").namespace_to == "trading-restored"
    assert RestoreK8sRequest().namespace_to is None
    with pytest.raises(ValueError, match="'kube-system' is one of the cluster's own namespaces"):
        RestoreK8sRequest(namespace_to="kube-system")


@pytest.mark.parametrize("name", ["a", "aipx-db-restored-202612031300", "r2-d2", "x" * 56])
def test_aurora_cluster_ids_by_rds_rules_are_accepted(name: str) -> None:
    assert aurora_cluster(name) == name
    assert RestoreAuroraRequest(target_cluster=name).target_cluster == name


@pytest.mark.parametrize(
    "name",
    [
        "",
        "9lives",
        "-restored",
        "restored-",
        "double--hyphen",
        "Upper",
        "under_score",
        "dot.ted",
        "x" * 57,
        "arn:aws:rds:us-east-1:123456789012:cluster:aipx",
    ],
)
def test_malformed_aurora_cluster_ids_are_refused(name: str) -> None:
    with pytest.raises(TargetRefused, match="not an Aurora cluster id") as refused:
        aurora_cluster(name)
    assert "\n" not in str(refused.value)
    with pytest.raises(ValueError, match="not an Aurora cluster id"):
        RestoreAuroraRequest(target_cluster=name)


def test_the_restored_cluster_and_the_global_database_are_refused_as_targets() -> None:
    protected = {
        "aipx-db-use1": "the cluster being restored ('aipx-db-use1' in us-east-1)",
        "aipx-db-usw2": "a member of global database 'aipx-global' (in us-west-2)",
        "aipx-global": "the id of global database 'aipx-global'",
    }
    for taken, what in protected.items():
        with pytest.raises(TargetRefused, match=re.escape(f"'{taken}' is {what}")):
            aurora_cluster(taken, protected)
    assert aurora_cluster("aipx-db-use1-restored", protected) == "aipx-db-use1-restored"
