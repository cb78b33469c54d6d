"""``invoke status``: DR readiness at a glance, and it never hangs on a dark region."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from drkit.failover.command import status
from drkit.failover.status import StatusReport
from drkit.local.kubernetes import LocalKubernetes
from drkit.local.s3 import LocalAws
from tests.integration.failover_world import (
    DR,
    PROD,
    World,
    build_world,
    db_cluster,
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
    yield build_world(tmp_path, aws_emulator, kubernetes_api, dead_prod=True)


def read(world: World) -> StatusReport:
    return status(
        stack="dr",
        outputs=str(world.project / "dr-outputs.json"),
        kubeconfig=str(world.kubeconfig),
        project_dir=world.project,
        runtime=world.runtime(),
    )


def expect_standbys(world: World, writer: str) -> None:
    ids = world.ids
    world.clients.stub("rds", DR).add_response(
        "describe_global_clusters",
        global_cluster(ids, writer),
        {"GlobalClusterIdentifier": ids.global_db},
    )
    world.clients.stub("rds", DR).add_response(
        "describe_db_clusters", db_cluster(ids, DR), {"DBClusterIdentifier": ids.db(DR)}
    )
    world.clients.stub("elasticache", DR).add_response(
        "describe_replication_groups",
        replication_group(ids, DR),
        {"ReplicationGroupId": ids.cache(DR)},
    )
    world.clients.stub("kafka", DR).add_response(
        "describe_cluster_v2",
        {"ClusterInfo": {"ClusterArn": ids.msk_arn(DR), "State": "ACTIVE"}},
        {"ClusterArn": ids.msk_arn(DR)},
    )


def test_status_reports_a_ready_standby(world: World) -> None:
    put_lag(world.aws, world.ids, aurora_ms=900, cache_s=0.3, kafka_ms=1500)
    expect_standbys(world, writer=PROD)
    report = read(world)
    world.clients.assert_no_pending()
    text = report.to_text()
    assert report.exit_code == 0, text
    assert report.primary_region == PROD and report.standby_region == DR
    assert "writer of" in report.primary_source
    rows = {r.store: r for r in report.rows}
    assert rows["trading-db"].lag == "0.9s / 15m" and rows["trading-db"].standby == "available"
    assert rows["event-stream"].lag == "1.5s / 30s" and rows["event-stream"].standby == "ACTIVE"
    assert rows["session-cache"].lag == "0.3s / 1m"
    assert all(r.backup_ok for r in report.rows)  # five stores, backed up 3 minutes ago
    assert rows["market-ticks"].lag == "-" and "ready" in text.splitlines()[-1]
    assert '"ok": true' in report.to_json()


def test_status_flags_a_lag_above_its_rpo(world: World) -> None:
    put_lag(world.aws, world.ids, aurora_ms=900, cache_s=120.0, kafka_ms=1500)
    expect_standbys(world, writer=PROD)
    report = read(world)
    assert report.exit_code == 1
    rows = {r.store: r for r in report.rows}
    assert rows["session-cache"].misses == ["lag"]
    assert "session-cache" in report.to_text() and "MISS: lag" in report.to_text()


def test_status_after_a_failover_reads_the_dark_prod_side_without_hanging(world: World) -> None:
    world.clients.stub("rds", DR).add_response(
        "describe_global_clusters",
        global_cluster(world.ids, DR),
        {"GlobalClusterIdentifier": world.ids.global_db},
    )
    report = read(world)
    world.clients.assert_no_pending()
    assert report.primary_region == DR and report.standby_region == PROD
    rows = {r.store: r for r in report.rows}
    assert rows["trading-db"].standby.startswith("unreachable")
    assert rows["session-cache"].standby.startswith("unreachable")
    assert report.exit_code == 1 and "NOT READY" in report.to_text()
    # Every prod call was one attempt against the refusing endpoint: no retries, no hang.
    calls = world.clients.dead_calls
    for call in (
        ("rds", "DescribeDBClusters"),
        ("elasticache", "DescribeReplicationGroups"),
        ("kafka", "DescribeClusterV2"),
        ("cloudwatch", "GetMetricStatistics"),
    ):
        assert calls.count(call) == 1, calls
