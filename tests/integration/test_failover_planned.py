"""``invoke failover --to dr --planned``: a switchover with the primary up, no data loss.

The primary answers (its RDS calls are stubbed in us-east-1, its cluster is the real
kube-apiserver), so the fence really stops prod's writers before anything is promoted, the
preflight blocks on lag above an RPO, and Kafka clients move only once the replicator has drained.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from drkit.failover.operation import PreflightBlocked, run_operation
from drkit.local.kubernetes import LocalKubernetes
from drkit.local.postgres import LocalPostgres
from drkit.local.s3 import LocalAws
from drkit.ops.executor import Status
from drkit.ops.run import RunOptions
from stackmodels import StackConfig
from tests.integration.failover_world import (
    DR,
    PROD,
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
    postgres_server: LocalPostgres,
) -> Iterator[World]:
    yield build_world(tmp_path, aws_emulator, kubernetes_api, postgres_server, dead_prod=False)


def expect_preflight(world: World) -> None:
    ids = world.ids
    rds, cache, kafka = (world.clients.stub(s, DR) for s in ("rds", "elasticache", "kafka"))
    rds.add_response(
        "describe_db_clusters", db_cluster(ids, DR), {"DBClusterIdentifier": ids.db(DR)}
    )
    cache.add_response(
        "describe_replication_groups",
        replication_group(ids, DR),
        {"ReplicationGroupId": ids.cache(DR)},
    )
    kafka.add_response(
        "describe_cluster_v2",
        {"ClusterInfo": {"ClusterArn": ids.msk_arn(DR), "State": "ACTIVE"}},
        {"ClusterArn": ids.msk_arn(DR)},
    )
    world.clients.stub("rds", PROD).add_response(  # the primary answers
        "describe_db_clusters", db_cluster(ids, PROD), {"DBClusterIdentifier": ids.db(PROD)}
    )


def expect_switchover(world: World) -> None:
    ids = world.ids
    world.clients.stub("rds", PROD).add_response(  # the fence asks about the old writer
        "describe_db_clusters", db_cluster(ids, PROD), {"DBClusterIdentifier": ids.db(PROD)}
    )
    rds = world.clients.stub("rds", DR)
    describe = {"GlobalClusterIdentifier": ids.global_db}
    rds.add_response("describe_global_clusters", global_cluster(ids, PROD), describe)
    rds.add_response("describe_global_clusters", global_cluster(ids, PROD), describe)
    rds.add_response(
        "switchover_global_cluster",
        {},
        {"GlobalClusterIdentifier": ids.global_db, "TargetDbClusterIdentifier": ids.db_arn(DR)},
    )
    rds.add_response(
        "describe_global_clusters",
        global_cluster(ids, PROD, status="switching-over", moving_to=DR),
        describe,
    )
    for _ in range(2):
        rds.add_response("describe_global_clusters", global_cluster(ids, DR), describe)
    cache = world.clients.stub("elasticache", DR)
    members = {"GlobalReplicationGroupId": ids.datastore, "ShowMemberInfo": True}
    cache.add_response("describe_global_replication_groups", datastore(ids, PROD, DR), members)
    cache.add_response("describe_global_replication_groups", datastore(ids, PROD, DR), members)
    cache.add_response(
        "failover_global_replication_group",
        {},
        {
            "GlobalReplicationGroupId": ids.datastore,
            "PrimaryRegion": DR,
            "PrimaryReplicationGroupId": ids.cache(DR),
        },
    )
    cache.add_response(
        "describe_global_replication_groups", datastore(ids, PROD, DR, "modifying"), members
    )
    for _ in range(2):
        cache.add_response("describe_global_replication_groups", datastore(ids, DR, PROD), members)
    world.clients.stub("kafka", DR).add_response(
        "describe_replicator",
        {"ReplicatorArn": ids.replicator_arn, "ReplicatorState": "RUNNING"},
        {"ReplicatorArn": ids.replicator_arn},
    )
    # post-check
    rds.add_response("describe_global_clusters", global_cluster(ids, DR), describe)
    cache.add_response("describe_global_replication_groups", datastore(ids, DR, PROD), members)
    cache.add_response(
        "describe_replication_groups",
        replication_group(ids, DR),
        {"ReplicationGroupId": ids.cache(DR)},
    )
    expect_health_checks(world)


def switch(world: World, out: io.StringIO, **changes: Any) -> Any:
    return run_operation(
        world.ctx,
        world.request(planned=True, **changes),
        world.runtime(),
        world.project,
        out,
        RunOptions(yes=True),
    )


def test_planned_switchover_fences_prod_then_promotes_without_data_loss(world: World) -> None:
    put_lag(
        world.aws, world.ids, aurora_ms=800, cache_s=0.5, kafka_ms=2500, age=timedelta(minutes=3)
    )
    put_lag(world.aws, world.ids, aurora_ms=None, cache_s=None, kafka_ms=0)  # drained since
    before = {p: (world.project / p).read_text() for p in ("Pulumi.prod.yaml", "Pulumi.dr.yaml")}
    expect_preflight(world)
    expect_switchover(world)
    out = io.StringIO()
    outcome = switch(world, out, update_stack_config=True)
    text = out.getvalue()
    assert outcome.report.status is Status.SUCCEEDED, text
    world.clients.assert_no_pending()  # every queued call, switchover and cache failover included

    assert world.replicas(PROD) == {"trading-engine": 0, "market-data-feed": 0, "batch-report": 1}
    assert world.replicas(DR) == {"trading-engine": 3, "market-data-feed": 2, "batch-report": 1}
    assert world.bootstrap(DR) == world.ids.bootstrap(DR)
    assert set(world.alarm_states().values()) == {"ALARM"}
    assert world.clients.dead_calls == []
    fence = next(s for s in outcome.report.steps if s.id == "fence.primary")
    assert "2 workloads scaled to 0 in us-east-1" in fence.detail
    assert outcome.report.figures["data_loss_window"] == "0.8s"  # the lag read after the fence
    assert "writers were fenced" in outcome.report.figures["data_loss_note"]

    # --update-stack-config: both files name the new primary; nothing else in them moved.
    assert outcome.config_written
    for name, text_before in before.items():
        after = (world.project / name).read_text()
        added = [line for line in after.splitlines() if line not in text_before.splitlines()]
        assert added == [
            "  # The region that writes now (failover to us-west-2): the next `pulumi up` agrees "
            "with it.",
            "  trading-dr:active_region: us-west-2",
        ]
        assert [line for line in text_before.splitlines() if line not in after.splitlines()] == []
        assert StackConfig.load(world.project / name).primary_region == DR


def test_a_planned_switchover_is_refused_when_a_lag_is_above_its_rpo(world: World) -> None:
    put_lag(world.aws, world.ids, aurora_ms=1_200_000, cache_s=0.5, kafka_ms=0)  # 20 min > 15 min
    expect_preflight(world)
    out = io.StringIO()
    with pytest.raises(PreflightBlocked, match=r"lag trading-db: trading-db: lag 20m \(RPO 15m\)"):
        switch(world, out)
    assert re.search(r"^  FAIL +lag trading-db +trading-db: lag 20m", out.getvalue(), re.M)
    world.clients.assert_no_pending()  # preflight only: nothing promoted
    assert world.replicas(PROD)["trading-engine"] == 3
    assert world.replicas(DR)["trading-engine"] == 0
    assert not (world.project / ".drkit" / "journal").exists()


def test_kafka_clients_do_not_move_before_the_replicator_drains(world: World) -> None:
    put_lag(world.aws, world.ids, aurora_ms=800, cache_s=0.5, kafka_ms=2500)  # never drains
    expect_preflight(world)
    ids = world.ids
    world.clients.stub("rds", PROD).add_response(
        "describe_db_clusters", db_cluster(ids, PROD), {"DBClusterIdentifier": ids.db(PROD)}
    )
    rds = world.clients.stub("rds", DR)
    describe = {"GlobalClusterIdentifier": ids.global_db}
    rds.add_response("describe_global_clusters", global_cluster(ids, DR), describe)  # done
    cache = world.clients.stub("elasticache", DR)
    cache.add_response(
        "describe_global_replication_groups",
        datastore(ids, DR, PROD),
        {"GlobalReplicationGroupId": ids.datastore, "ShowMemberInfo": True},
    )
    world.clients.stub("kafka", DR).add_response(
        "describe_replicator",
        {"ReplicatorArn": ids.replicator_arn, "ReplicatorState": "RUNNING"},
        {"ReplicatorArn": ids.replicator_arn},
    )
    out = io.StringIO()
    outcome = switch(world, out, wait_seconds=60.0)
    assert outcome.report.status is Status.FAILED
    kafka = next(s for s in outcome.report.steps if s.id == "kafka.clients")
    assert kafka.outcome == "failed"
    assert "gave up after 60s waiting for replicator" in kafka.detail and "2.5s" in kafka.detail
    assert world.bootstrap(DR) is None  # the applications were not pointed at dr
    assert world.replicas(DR)["trading-engine"] == 0  # the next layer never ran
    world.clients.assert_no_pending()
