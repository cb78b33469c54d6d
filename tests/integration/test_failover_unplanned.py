"""``invoke failover --to dr`` with the primary region dark: moto for CloudWatch, S3 and Route 53,
Stubbers for the RDS, ElastiCache and MSK calls moto lacks, the real kube-apiserver, and every
us-east-1 endpoint refusing connections."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from drkit.failover.operation import Outcome, run_operation
from drkit.local.kubernetes import LocalKubernetes
from drkit.local.postgres import LocalPostgres
from drkit.local.s3 import LocalAws
from drkit.ops.executor import Status
from drkit.ops.run import RunOptions
from tests.integration.failover_expect import (
    expect_aurora_failover,
    expect_cache_disassociation,
    expect_postcheck,
    expect_preflight,
    expect_replicator,
)
from tests.integration.failover_world import (
    DR,
    PROD,
    World,
    build_world,
    datastore,
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
    world = build_world(tmp_path, aws_emulator, kubernetes_api, postgres_server, dead_prod=True)
    put_lag(aws_emulator, world.ids, aurora_ms=1200, cache_s=0.8, kafka_ms=2500)
    yield world


def run(world: World, out: io.StringIO, **options: Any) -> Outcome:
    return run_operation(
        world.ctx,
        world.request(
            **{k: v for k, v in options.items() if k not in ("yes", "resume", "dry_run")}
        ),
        world.runtime(),
        world.project,
        out,
        RunOptions(
            dry_run=bool(options.get("dry_run", False)),
            yes=bool(options.get("yes", True)),
            resume=options.get("resume"),
        ),
    )


def test_unplanned_failover_completes_with_the_primary_region_refusing_connections(
    world: World,
) -> None:
    expect_preflight(world)
    expect_aurora_failover(world)
    expect_cache_disassociation(world)
    expect_replicator(world)
    expect_postcheck(world)
    out = io.StringIO()
    outcome = run(world, out)
    text = out.getvalue()
    report = outcome.report
    assert report.status is Status.SUCCEEDED, text
    world.clients.assert_no_pending()

    # The DR side serves: workloads at their labelled counts (the unlabelled one untouched), Kafka
    # clients on the DR cluster, both switches published and their alarms in ALARM.
    assert world.replicas(DR) == {"trading-engine": 3, "market-data-feed": 2, "batch-report": 1}
    assert world.bootstrap(DR) == world.ids.bootstrap(DR)
    assert set(world.alarm_states().values()) == {"ALARM"}
    assert 1.0 in world.switch_data()

    # Only the fence tried the dark region, once (no retries); the post-check did not call
    # Route 53's API, which lives there.
    assert world.clients.dead_calls == [("rds", "DescribeDBClusters")]
    outcomes = {s.id: s.outcome for s in report.steps}
    nothing = {"workloads.signals", "workloads.scale-up"}  # no workload of theirs here
    assert {o for i, o in outcomes.items() if i not in nothing} == {"done"}, outcomes
    assert {outcomes[i] for i in nothing} == {"already_done"}
    assert "nothing of signals would start after the switch" in text
    fence = next(s for s in report.steps if s.id == "fence.primary")
    assert "us-east-1 AWS unreachable" in fence.detail
    assert "Kubernetes unreachable" in fence.detail

    # The timeline: RTO measured, data-loss window from the lag at cut-over (the largest: Kafka).
    figures = report.figures
    assert figures["rto_seconds"] > 0
    assert figures["data_loss_window"] == "2.5s"
    assert figures["data_loss_window_seconds"] == 2.5
    body = json.loads((world.project / "reports" / "latest" / "failover.json").read_text())
    assert body["status"] == "succeeded" and body["figures"]["rto"].endswith("s")
    markdown = (world.project / "reports" / "latest" / "failover.md").read_text()
    assert "| 5 | postcheck | done |" in markdown and "| data_loss_window | 2.5s |" in markdown
    check = next(s for s in report.steps if s.id == "postcheck")
    assert check.outcome == "done"
    journal = Path(report.journal)
    events = [json.loads(line) for line in journal.read_text().splitlines()]
    assert events[0]["event"] == "run_started" and events[-1]["event"] == "run_finished"
    postcheck = next(
        e for e in events if e["event"] == "step_finished" and e["step"] == "postcheck"
    )
    assert "heartbeat row" in postcheck["result"]["checks"]["aurora"]
    assert "Route 53's API region was unreachable" in postcheck["result"]["checks"]["dns"]
    assert figures["journal_copy"].startswith(f"s3://{world.outputs.audit_bucket.name}/journal/")

    # The stack config change is printed, not written without --update-stack-config.
    assert "+  trading-dr:active_region: us-west-2" in text
    assert "active_region" not in (world.project / "Pulumi.dr.yaml").read_text()

    # A second run finds every step already done and changes nothing.
    expect_preflight(world)
    ids = world.ids
    world.clients.stub("rds", DR).add_response(
        "describe_global_clusters",
        global_cluster(ids, DR),
        {"GlobalClusterIdentifier": ids.global_db},
    )
    cache = world.clients.stub("elasticache", DR)
    cache.add_response(
        "describe_global_replication_groups",
        datastore(ids, PROD, None),
        {"GlobalReplicationGroupId": ids.datastore, "ShowMemberInfo": True},
    )
    cache.add_response(
        "describe_replication_groups",
        replication_group(ids, DR),
        {"ReplicationGroupId": ids.cache(DR)},
    )
    expect_postcheck(world)
    later = world.runtime()
    later.now = lambda: datetime.now(UTC) + timedelta(seconds=2)  # a new run id
    again = run_operation(
        world.ctx, world.request(), later, world.project, io.StringIO(), RunOptions(yes=True)
    )
    assert again.report.status is Status.SUCCEEDED
    assert {
        s.id: s.outcome
        for s in again.report.steps
        if s.id.split(".")[0] in ("aurora", "elasticache", "kafka", "workloads", "dns")
    } == {
        "aurora.promote": "already_done",
        "elasticache.promote": "already_done",
        "kafka.clients": "already_done",
        "workloads.signals": "already_done",
        "workloads.market-data": "already_done",
        "workloads.trading": "already_done",
        "workloads.scale-up": "already_done",
        "dns.cache": "already_done",
        "dns.db": "already_done",
    }
    world.clients.assert_no_pending()


@pytest.fixture
def reachable_world(
    tmp_path: Path,
    aws_emulator: LocalAws,
    kubernetes_api: LocalKubernetes,  # noqa: F811
) -> Iterator[World]:
    world = build_world(tmp_path, aws_emulator, kubernetes_api, dead_prod=False)
    put_lag(aws_emulator, world.ids, aurora_ms=700, cache_s=0.1, kafka_ms=300)
    yield world


def test_an_unplanned_failover_fences_a_reachable_primary_and_can_edit_records(
    reachable_world: World,
) -> None:
    world, ids = reachable_world, reachable_world.ids
    expect_preflight(world)
    world.clients.stub("rds", PROD).add_response(
        "describe_db_clusters",
        {"DBClusters": [{"DBClusterIdentifier": ids.db(PROD), "Status": "available"}]},
        {"DBClusterIdentifier": ids.db(PROD)},
    )
    expect_aurora_failover(world)
    expect_cache_disassociation(world)
    expect_replicator(world)
    expect_postcheck(world)
    expect_health_checks(world)
    out = io.StringIO()
    outcome = run(world, out, dns_control_plane=True)
    report = outcome.report
    assert report.status is Status.SUCCEEDED, out.getvalue()
    world.clients.assert_no_pending()

    # The fence reached prod: its writers are stopped (the unlabelled job is left alone).
    assert world.replicas(PROD) == {"trading-engine": 0, "market-data-feed": 0, "batch-report": 1}
    fence = next(s for s in report.steps if s.id == "fence.primary")
    assert "2 workloads scaled to 0 in us-east-1" in fence.detail

    # --dns-control-plane: prod's PRIMARY records now answer with dr's endpoints, keeping their
    # failover role and health check; the switch metric was not published.
    route53: Any = world.aws.client("route53", "us-east-1")
    assert world.outputs.dns is not None
    for name, service in world.outputs.dns.services.items():
        records = route53.list_resource_record_sets(HostedZoneId=world.outputs.dns.zone_id)
        primary = next(
            r
            for r in records["ResourceRecordSets"]
            if r["Name"].rstrip(".") == service.name
            and r.get("SetIdentifier", "").startswith("primary")
        )
        assert service.secondary is not None
        assert primary["ResourceRecords"] == [{"Value": service.secondary.target}]
        assert primary["Failover"] == "PRIMARY"
        assert primary["HealthCheckId"] == world.outputs.dns.switches[name].health_check_id
    assert set(world.alarm_states().values()) == {"OK"}
    assert world.switch_data() == []


def test_bootstrap_brokers_come_from_msk_when_the_outputs_lack_them(
    tmp_path: Path,
    aws_emulator: LocalAws,
    kubernetes_api: LocalKubernetes,  # noqa: F811
) -> None:
    world = build_world(
        tmp_path, aws_emulator, kubernetes_api, dead_prod=True, with_bootstrap=False
    )
    put_lag(aws_emulator, world.ids, aurora_ms=100, cache_s=0.1, kafka_ms=100)
    expect_preflight(world)
    expect_aurora_failover(world)
    expect_cache_disassociation(world)
    kafka = world.clients.stub("kafka", DR)
    kafka.add_response(  # asked once (is_done), remembered for apply and verify
        "get_bootstrap_brokers",
        {"BootstrapBrokerStringSaslIam": world.ids.bootstrap(DR)},
        {"ClusterArn": world.ids.msk_arn(DR)},
    )
    expect_replicator(world)
    expect_postcheck(world)
    outcome = run(world, io.StringIO())
    assert outcome.report.status is Status.SUCCEEDED
    world.clients.assert_no_pending()
    assert world.bootstrap(DR) == world.ids.bootstrap(DR)
