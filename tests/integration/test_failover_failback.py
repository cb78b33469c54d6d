"""``invoke failback --to prod``: wait for replication toward prod, then switch over back.

The world starts where a failover to dr left it: dr writes (Aurora writer, ElastiCache primary),
dr's workloads serve, prod's are at 0, the switch alarms are in ALARM. prod is back up.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from kubernetes.client import AppsV1Api  # type: ignore[import-untyped]

from drkit.failover.operation import Outcome, run_operation
from drkit.local.kubernetes import LocalKubernetes
from drkit.local.s3 import LocalAws
from drkit.ops.executor import Status
from drkit.ops.run import RunOptions
from tests.integration.failover_world import (
    DR,
    PROD,
    WORKLOADS,
    World,
    build_world,
    datastore,
    db_cluster,
    expect_health_checks,
    global_cluster,
    put_lag,
    replication_group,
)
from tests.integration.kubernetes_fixture import kubernetes_api  # noqa: F401

pytestmark = pytest.mark.integration


@pytest.fixture
def world(
    tmp_path: Path,
    aws_emulator: LocalAws,
    kubernetes_api: LocalKubernetes,  # noqa: F811
) -> Iterator[World]:
    world = build_world(tmp_path, aws_emulator, kubernetes_api, dead_prod=False, prod_serving=False)
    with kubernetes_api.api_client() as api:  # dr serves, as the failover left it
        apps = AppsV1Api(api)
        for name, (kind, count) in WORKLOADS.items():
            scale = (
                apps.patch_namespaced_deployment_scale
                if kind == "deployment"
                else apps.patch_namespaced_stateful_set_scale
            )
            scale(name, world.namespaces[DR], {"spec": {"replicas": count}})
    cloudwatch: Any = aws_emulator.client("cloudwatch", DR)
    for service, alarm in world.alarms.items():  # fenced ten minutes ago
        cloudwatch.put_metric_data(
            Namespace="TradingDR/Failover",
            MetricData=[
                {
                    "MetricName": "PrimaryFenced",
                    "Dimensions": [{"Name": "Service", "Value": world.ids.service(service)}],
                    "Timestamp": datetime.now(UTC) - timedelta(minutes=10),
                    "Value": 1.0,
                }
            ],
        )
        cloudwatch.set_alarm_state(AlarmName=alarm, StateValue="ALARM", StateReason="failover")
    put_lag(aws_emulator, world.ids, aurora_ms=300, cache_s=0.4, kafka_ms=None, region=PROD)
    yield world


def expect_preflight_and_gates(world: World, cache_rejoined: bool = True) -> None:
    ids, clients = world.ids, world.clients
    clients.stub("rds", PROD).add_response(
        "describe_db_clusters", db_cluster(ids, PROD), {"DBClusterIdentifier": ids.db(PROD)}
    )
    clients.stub("elasticache", PROD).add_response(
        "describe_replication_groups",
        replication_group(ids, PROD),
        {"ReplicationGroupId": ids.cache(PROD)},
    )
    clients.stub("kafka", PROD).add_response(
        "describe_cluster_v2",
        {"ClusterInfo": {"ClusterArn": ids.msk_arn(PROD), "State": "ACTIVE"}},
        {"ClusterArn": ids.msk_arn(PROD)},
    )
    clients.stub("rds", DR).add_response(  # the current primary answers
        "describe_db_clusters", db_cluster(ids, DR), {"DBClusterIdentifier": ids.db(DR)}
    )
    clients.stub("rds", DR).add_response(  # rejoin.aurora: prod is a member again
        "describe_global_clusters",
        global_cluster(ids, DR),
        {"GlobalClusterIdentifier": ids.global_db},
    )
    members = {"GlobalReplicationGroupId": ids.datastore, "ShowMemberInfo": True}
    cache = clients.stub("elasticache", DR)
    if cache_rejoined:
        for _ in range(2):
            cache.add_response(
                "describe_global_replication_groups", datastore(ids, DR, PROD), members
            )
    else:  # the unplanned failover disassociated dr: the datastore holds only stale prod
        cache.add_response(
            "describe_global_replication_groups", datastore(ids, PROD, None), members
        )


def expect_switchback(world: World) -> None:
    ids, clients = world.ids, world.clients
    clients.stub("rds", DR).add_response(  # the fence asks about dr's writer
        "describe_db_clusters", db_cluster(ids, DR), {"DBClusterIdentifier": ids.db(DR)}
    )
    rds = clients.stub("rds", PROD)
    describe = {"GlobalClusterIdentifier": ids.global_db}
    rds.add_response("describe_global_clusters", global_cluster(ids, DR), describe)
    rds.add_response("describe_global_clusters", global_cluster(ids, DR), describe)
    rds.add_response(
        "switchover_global_cluster",
        {},
        {"GlobalClusterIdentifier": ids.global_db, "TargetDbClusterIdentifier": ids.db_arn(PROD)},
    )
    for _ in range(3):  # poll, verify, post-check
        rds.add_response("describe_global_clusters", global_cluster(ids, PROD), describe)
    cache = clients.stub("elasticache", PROD)
    members = {"GlobalReplicationGroupId": ids.datastore, "ShowMemberInfo": True}
    cache.add_response("describe_global_replication_groups", datastore(ids, DR, PROD), members)
    cache.add_response("describe_global_replication_groups", datastore(ids, DR, PROD), members)
    cache.add_response(
        "failover_global_replication_group",
        {},
        {
            "GlobalReplicationGroupId": ids.datastore,
            "PrimaryRegion": PROD,
            "PrimaryReplicationGroupId": ids.cache(PROD),
        },
    )
    for _ in range(3):  # poll, verify, post-check
        cache.add_response("describe_global_replication_groups", datastore(ids, PROD, DR), members)
    cache.add_response(
        "describe_replication_groups",
        replication_group(ids, PROD),
        {"ReplicationGroupId": ids.cache(PROD)},
    )
    clients.stub("kafka", DR).add_response(
        "describe_replicator",
        {"ReplicatorArn": ids.replicator_arn, "ReplicatorState": "RUNNING"},
        {"ReplicatorArn": ids.replicator_arn},
    )
    expect_health_checks(world)


def failback(world: World) -> tuple[Outcome, str]:
    out = io.StringIO()
    outcome = run_operation(
        world.ctx,
        world.request(to="prod", planned=True),
        world.runtime(),
        world.project,
        out,
        RunOptions(yes=True),
    )
    return outcome, out.getvalue()


def test_failback_waits_for_replication_toward_prod_then_switches_back(world: World) -> None:
    expect_preflight_and_gates(world)
    expect_switchback(world)
    outcome, text = failback(world)
    assert outcome.report.status is Status.SUCCEEDED, text
    world.clients.assert_no_pending()
    steps = [s.id for s in outcome.report.steps]
    assert steps[:3] == ["rejoin.aurora", "rejoin.elasticache", "fence.primary"]
    assert world.replicas(PROD) == {"trading-engine": 3, "market-data-feed": 2, "batch-report": 1}
    assert world.replicas(DR) == {"trading-engine": 0, "market-data-feed": 0, "batch-report": 1}
    assert world.bootstrap(PROD) == world.ids.bootstrap(PROD)
    assert set(world.alarm_states().values()) == {"OK"}  # the fence on prod's records is lifted
    assert 0.0 in world.switch_data()
    kafka = next(s for s in outcome.report.steps if s.id == "kafka.clients")
    assert "no replication us-east-1 <- us-west-2" in kafka.detail
    assert "+  trading-dr:active_region: us-east-1" in text
    assert outcome.report.figures["direction"] == "us-west-2 -> us-east-1"


def test_failback_refuses_while_the_cache_was_disassociated(world: World) -> None:
    expect_preflight_and_gates(world, cache_rejoined=False)
    outcome, _ = failback(world)
    assert outcome.report.status is Status.FAILED
    gate = next(s for s in outcome.report.steps if s.id == "rejoin.elasticache")
    assert gate.outcome == "failed"
    assert "cannot add an existing cluster as a secondary" in gate.detail
    assert "create_global_replication_group" in gate.detail
    assert next(s for s in outcome.report.steps if s.id == "fence.primary").outcome == "not_run"
    assert world.replicas(DR)["trading-engine"] == 3  # dr keeps serving
    world.clients.assert_no_pending()
