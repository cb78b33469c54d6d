"""Faults during ``invoke failover``: a failing step stops its layer and leaves a resumable journal,
throttling is retried with backoff, an interrupt followed by ``--resume`` finishes without
repeating a step (the Stubbers would reject a second promotion request), and ``--dry-run``
changes nothing."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from drkit.failover.operation import Outcome, run_operation
from drkit.local.kubernetes import LocalKubernetes
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
    global_cluster,
    put_lag,
)
from tests.integration.kubernetes_fixture import kubernetes_api  # noqa: F401

pytestmark = pytest.mark.integration


@pytest.fixture
def world(
    tmp_path: Path,
    aws_emulator: LocalAws,
    kubernetes_api: LocalKubernetes,  # noqa: F811
) -> Iterator[World]:
    world = build_world(tmp_path, aws_emulator, kubernetes_api, dead_prod=True)
    put_lag(aws_emulator, world.ids, aurora_ms=400, cache_s=0.2, kafka_ms=900)
    yield world


def failover(world: World, resume: str | None = None, dry_run: bool = False) -> tuple[Outcome, str]:
    out = io.StringIO()
    outcome = run_operation(
        world.ctx,
        world.request(),
        world.runtime(),
        world.project,
        out,
        RunOptions(dry_run=dry_run, yes=True, resume=resume),
    )
    return outcome, out.getvalue()


def outcomes(outcome: Outcome) -> dict[str, str]:
    return {s.id: s.outcome for s in outcome.report.steps}


def test_a_failing_step_stops_what_depends_on_it_and_the_run_resumes_from_the_journal(
    world: World,
) -> None:
    ids = world.ids
    expect_preflight(world)
    expect_aurora_failover(world)
    expect_replicator(world)
    cache = world.clients.stub("elasticache", DR)
    members = {"GlobalReplicationGroupId": ids.datastore, "ShowMemberInfo": True}
    cache.add_response("describe_global_replication_groups", datastore(ids, PROD, DR), members)
    cache.add_response("describe_global_replication_groups", datastore(ids, PROD, DR), members)
    cache.add_client_error(
        "disassociate_global_replication_group",
        service_error_code="InvalidGlobalReplicationGroupState",
        service_message="The Global datastore is not available",
        http_status_code=400,
    )
    first, _ = failover(world)
    assert first.report.status is Status.FAILED and first.exit_code == 1
    assert outcomes(first) == {
        "fence.primary": "done",
        "measure.lag": "done",
        "aurora.promote": "done",
        "elasticache.promote": "failed",
        "kafka.clients": "done",
        # what uses only the stores that were promoted goes on: signals (Kafka), the db name
        "workloads.signals": "already_done",  # no workload of signals here
        "dns.db": "done",
        # what uses the cache does not start
        "workloads.market-data": "not_run",
        "workloads.trading": "not_run",
        "workloads.scale-up": "not_run",
        "dns.cache": "not_run",
        "postcheck": "not_run",
    }
    failed = next(s for s in first.report.steps if s.id == "elasticache.promote")
    assert "InvalidGlobalReplicationGroupState" in failed.detail
    assert world.replicas(DR)["trading-engine"] == 0
    assert world.alarm_states() == {world.alarms["db"]: "ALARM", world.alarms["cache"]: "OK"}
    world.clients.assert_no_pending()

    expect_cache_disassociation(world)
    expect_postcheck(world)
    second, _ = failover(world, resume=first.report.run_id)
    assert second.report.status is Status.SUCCEEDED
    world.clients.assert_no_pending()  # no second failover_global_cluster was asked for
    assert outcomes(second) == {
        "fence.primary": "resumed",
        "measure.lag": "resumed",
        "aurora.promote": "resumed",
        "elasticache.promote": "done",
        "kafka.clients": "resumed",
        "workloads.signals": "resumed",
        "dns.db": "resumed",
        "workloads.market-data": "done",
        "workloads.trading": "done",
        "workloads.scale-up": "already_done",  # no workload of no service here
        "dns.cache": "done",
        "postcheck": "done",
    }
    assert second.report.figures["data_loss_window"] == "0.9s"  # measured by the first run
    assert second.report.figures["rto_seconds"] > 0  # from the first run's start


def test_throttling_is_retried_with_backoff(world: World) -> None:
    ids = world.ids
    expect_preflight(world)
    rds = world.clients.stub("rds", DR)
    describe = {"GlobalClusterIdentifier": ids.global_db}
    failover_params = {
        "GlobalClusterIdentifier": ids.global_db,
        "TargetDbClusterIdentifier": ids.db_arn(DR),
        "AllowDataLoss": True,
    }
    rds.add_response("describe_global_clusters", global_cluster(ids, PROD), describe)
    for _ in range(2):
        rds.add_response("describe_global_clusters", global_cluster(ids, PROD), describe)
        rds.add_client_error(
            "failover_global_cluster",
            service_error_code="Throttling",
            service_message="Rate exceeded",
            http_status_code=400,
            expected_params=failover_params,
        )
    rds.add_response("describe_global_clusters", global_cluster(ids, PROD), describe)
    rds.add_response("failover_global_cluster", {}, failover_params)
    for _ in range(2):
        rds.add_response("describe_global_clusters", global_cluster(ids, DR), describe)
    expect_cache_disassociation(world)
    expect_replicator(world)
    expect_postcheck(world)
    outcome, _ = failover(world)
    assert outcome.report.status is Status.SUCCEEDED
    world.clients.assert_no_pending()
    aurora = next(s for s in outcome.report.steps if s.id == "aurora.promote")
    assert "throttled, retry 1 in" in aurora.detail and "throttled, retry 2 in" in aurora.detail
    backoff = [s for s in world.clock.sleeps if s != world.runtime().poll_seconds]
    assert len(backoff) == 2 and backoff[0] <= 0.5 and backoff[1] <= 1.0  # full jitter, doubling


def test_an_interrupted_run_resumes_without_repeating_steps(world: World) -> None:
    ids = world.ids
    expect_preflight(world)
    rds = world.clients.stub("rds", DR)
    describe = {"GlobalClusterIdentifier": ids.global_db}
    rds.add_response("describe_global_clusters", global_cluster(ids, PROD), describe)
    rds.add_response("describe_global_clusters", global_cluster(ids, PROD), describe)
    rds.add_response(
        "failover_global_cluster",
        {},
        {
            "GlobalClusterIdentifier": ids.global_db,
            "TargetDbClusterIdentifier": ids.db_arn(DR),
            "AllowDataLoss": True,
        },
    )
    moving = global_cluster(ids, PROD, status="failing-over", moving_to=DR)
    rds.add_response("describe_global_clusters", moving, describe)
    expect_cache_disassociation(world)
    expect_replicator(world)

    def interrupt(_: float) -> Any:  # Ctrl-C while Aurora is promoting
        world.clock.on_sleep.remove(interrupt)
        raise KeyboardInterrupt

    world.clock.on_sleep.insert(0, interrupt)
    first, text = failover(world)
    assert first.report.status is Status.INTERRUPTED and first.exit_code == 130
    assert f"rerun with --resume {first.report.run_id}" in text
    finished = {step for step, outcome in outcomes(first).items() if outcome == "done"}
    assert {"fence.primary", "measure.lag"} <= finished  # the layers before
    assert outcomes(first)["aurora.promote"] == "not_run"  # started, never finished
    assert outcomes(first)["workloads.scale-up"] == "not_run"
    # (ElastiCache and Kafka ran beside it, or were cancelled before starting: either way the
    # resumed run must not repeat what finished.)

    # Resumed: the failover under way is waited for, never requested again.
    rds.add_response("describe_global_clusters", moving, describe)  # is_done: not yet
    rds.add_response("describe_global_clusters", moving, describe)  # apply: already under way
    rds.add_response("describe_global_clusters", global_cluster(ids, DR), describe)  # poll
    rds.add_response("describe_global_clusters", global_cluster(ids, DR), describe)  # verify
    expect_postcheck(world)
    second, _ = failover(world, resume=first.report.run_id)
    assert second.report.status is Status.SUCCEEDED
    world.clients.assert_no_pending()
    resumed = outcomes(second)
    assert {step: resumed[step] for step in finished} == dict.fromkeys(finished, "resumed")
    empty = {"workloads.signals", "workloads.scale-up"}  # no workload of theirs in this world
    assert {v for k, v in resumed.items() if k not in empty} == {"resumed", "done"}
    assert {resumed[k] for k in empty} <= {"resumed", "already_done"}
    aurora = next(s for s in second.report.steps if s.id == "aurora.promote")
    assert aurora.outcome == "done" and "under way" in aurora.detail
    assert world.replicas(DR)["trading-engine"] == 3


def test_dry_run_prints_the_plan_and_changes_nothing(world: World) -> None:
    expect_preflight(world)
    outcome, text = failover(world, dry_run=True)
    assert outcome.report.status is Status.DRY_RUN and outcome.exit_code == 0
    world.clients.assert_no_pending()  # the preflight's reads only
    assert f"failover_global_cluster(AllowDataLoss=True) of {world.ids.global_db}" in text
    assert "dry run: nothing was changed" in text
    assert world.replicas(DR)["trading-engine"] == 0
    assert world.bootstrap(DR) is None
    assert set(world.alarm_states().values()) == {"OK"}
    assert not (world.project / ".drkit" / "journal").exists()
    assert "not written (pass --update-stack-config" in text
