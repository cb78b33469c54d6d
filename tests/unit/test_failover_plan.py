"""The failover plan as data: which steps, in which layers, asking AWS for exactly what."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from drkit.context import Credentials, OpsContext
from drkit.failover.dns import check_alarm_watches_switch
from drkit.failover.failback import rejoin_steps
from drkit.failover.plan import build_plan
from drkit.failover.request import FailoverRequest, Runtime
from drkit.failover.topology import Topology, TopologyError, resolve
from stackmodels import StackConfig, StackOutputs
from stackmodels.outputs import FailoverSwitch

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
PROD, DR = "us-east-1", "us-west-2"
A = "123456789012"


def outputs(**changes: Any) -> StackOutputs:
    bucket = {"name": "aipx-vault-dr", "arn": "arn:aws:s3:::aipx-vault-dr", "region": DR}
    values: dict[str, Any] = {
        "stack": "dr",
        "role": "dr",
        "region": DR,
        "platform": "aipx",
        "backup_vault": bucket,
        "vault_key_arn": f"arn:aws:kms:{DR}:{A}:key/mrk-1",
        "audit_bucket": bucket | {"name": "aipx-audit-dr", "arn": "arn:aws:s3:::aipx-audit-dr"},
        "gcs_mirror_bucket": "aipx-mirror",
        "aurora": {
            "global_cluster_id": "aipx-trading-db",
            "global_cluster_arn": f"arn:aws:rds::{A}:global-cluster:aipx-trading-db",
            "primary_region": PROD,
            "clusters": {
                r: {
                    "id": f"aipx-trading-db-{r}",
                    "arn": f"arn:aws:rds:{r}:{A}:cluster:aipx-trading-db-{r}",
                    "region": r,
                    "endpoint": f"w.{r}",
                    "reader_endpoint": f"r.{r}",
                }
                for r in (PROD, DR)
            },
        },
        "elasticache": {
            "global_datastore_id": "ldgnf-aipx-session-cache",
            "primary_region": PROD,
            "replication_groups": {
                r: {
                    "id": f"aipx-session-cache-{r}",
                    "arn": f"arn:aws:elasticache:{r}:{A}:replicationgroup:g",
                    "region": r,
                    "primary_endpoint": f"c.{r}",
                }
                for r in (PROD, DR)
            },
        },
        "msk": {
            "clusters": {
                r: {
                    "arn": f"arn:aws:kafka:{r}:{A}:cluster/es-{r}/x",
                    "name": f"es-{r}",
                    "region": r,
                    "security_group_id": "sg-1",
                }
                for r in (PROD, DR)
            },
            "replicator_arn": f"arn:aws:kafka:{DR}:{A}:replicator/es-ue1-to-uw2/x",
        },
        "dns": {
            "zone_id": "Z1",
            "zone_name": "aipx.internal",
            "services": {
                s: {
                    "name": f"{s}.aipx.internal",
                    "ttl": 30,
                    "store": store,
                    "primary": {
                        "set_identifier": f"primary-{PROD}",
                        "target": f"p.{s}",
                        "region": PROD,
                    },
                    "secondary": {
                        "set_identifier": f"secondary-{DR}",
                        "target": f"d.{s}",
                        "region": DR,
                    },
                }
                for s, store in (("db", "trading-db"), ("cache", "session-cache"))
            },
            "switches": {
                s: {
                    "alarm_name": f"aipx-failover-switch-{s}",
                    "region": DR,
                    "namespace": "TradingDR/Failover",
                    "metric": "PrimaryFenced",
                    "dimensions": {"Service": s},
                    "health_check_id": f"hc-{s}",
                }
                for s in ("db", "cache")
            },
        },
        "k8s_namespace": "aipx",
        "k8s_backup_namespace": "dr-backups",
    }
    return StackOutputs.parse(values | changes, "dr")


class Unused:
    def client(self, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError("building a plan calls no API")

    def api(self, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError("building a plan calls no API")


RUNTIME = Runtime(aws=Unused(), kube=Unused())


def topology(**request: Any) -> Topology:
    ctx = OpsContext("dr", StackConfig.for_stack("dr", ROOT), outputs())
    return resolve(ctx, FailoverRequest(**request), ROOT)


def layers(topo: Topology) -> list[list[str]]:
    gates = rejoin_steps(topo, RUNTIME) if topo.failback else []
    plan = build_plan(topo, RUNTIME, Credentials(), {}, before=gates)
    return [[step.id for step in layer] for layer in plan.layers]


def descriptions(topo: Topology) -> dict[str, str]:
    gates = rejoin_steps(topo, RUNTIME) if topo.failback else []
    plan = build_plan(topo, RUNTIME, Credentials(), {}, before=gates)
    return {step.id: step.description for step in plan.steps}


def test_an_unplanned_failover_fences_measures_promotes_then_serves_then_checks() -> None:
    topo = topology()
    assert (topo.source, topo.target, topo.failback) == (PROD, DR, False)
    assert topo.target_kube.context == "aipx-dr" and topo.source_kube is not None
    assert topo.source_kube.context == "aipx-prod"
    assert layers(topo) == [
        ["fence.primary"],
        ["measure.lag"],
        ["aurora.promote", "elasticache.promote", "kafka.clients"],
        [
            "workloads.signals",
            "workloads.market-data",
            "workloads.trading",
            "workloads.scale-up",
            "dns.cache",
            "dns.db",
        ],
        ["postcheck"],
    ]
    text = descriptions(topo)
    assert (
        "failover_global_cluster(AllowDataLoss=True) of aipx-trading-db" in text["aurora.promote"]
    )
    assert "disassociate_global_replication_group" in text["elasticache.promote"]
    assert "3 s timeout; unplanned: unreachable is fine" in text["fence.primary"]
    assert "PrimaryFenced=1" in text["dns.db"] and "wait for alarm" in text["dns.db"]
    assert "drains" not in text["kafka.clients"]


def test_each_service_waits_only_for_the_promotions_of_its_own_stores() -> None:
    topo = topology()
    plan = build_plan(topo, RUNTIME, Credentials(), {})
    assert plan.eager  # the executor starts a step once its own dependencies end
    promotion = {
        "trading-db": "aurora.promote",
        "session-cache": "elasticache.promote",
        "event-stream": "kafka.clients",
    }
    services = topo.config.services
    assert services  # Pulumi.dr.yaml names the services
    for name, service in services.items():
        wanted = sorted(promotion[s] for s in service.stores)
        assert plan.depends_on[f"workloads.{name}"] == wanted, name
    # trading signals use only Kafka: they do not wait for Aurora or ElastiCache.
    assert services["signals"].stores == ["event-stream"] and services["signals"].warm
    assert plan.depends_on["workloads.signals"] == ["kafka.clients"]
    assert "restart (warm: already running)" in descriptions(topo)["workloads.signals"]
    # each name waits for the store it fronts; workloads of no service for every promotion
    assert plan.depends_on["dns.db"] == ["aurora.promote"]
    assert plan.depends_on["dns.cache"] == ["elasticache.promote"]
    assert plan.depends_on["workloads.scale-up"] == sorted(promotion.values())


def test_without_services_every_workload_waits_for_every_promotion() -> None:
    topo = topology()
    config = topo.config.model_copy(update={"services": {}})
    plan = build_plan(replace(topo, config=config), RUNTIME, Credentials(), {})
    assert not [
        s.id for s in plan.steps if s.id.startswith("workloads.") and s.id != "workloads.scale-up"
    ]
    assert plan.depends_on["workloads.scale-up"] == [
        "aurora.promote",
        "elasticache.promote",
        "kafka.clients",
    ]


def test_a_planned_switchover_asks_for_no_data_loss() -> None:
    text = descriptions(topology(planned=True))
    assert text["aurora.promote"].startswith("switchover_global_cluster of aipx-trading-db")
    assert (
        "failover_global_replication_group(ldgnf-aipx-session-cache" in text["elasticache.promote"]
    )
    assert "after the replicator drains" in text["kafka.clients"]
    assert "must answer: planned" in text["fence.primary"]


def test_an_unplanned_failover_can_keep_the_cache_datastore() -> None:
    text = descriptions(topology(cache_promotion="failover"))
    assert "failover_global_replication_group" in text["elasticache.promote"]


def test_failback_gates_on_replication_toward_prod_and_lifts_the_dns_fence() -> None:
    topo = topology(to="prod", planned=True)
    assert (topo.source, topo.target, topo.failback) == (DR, PROD, True)
    assert topo.target_kube.context == "aipx-prod"
    assert layers(topo)[:2] == [["rejoin.aurora", "rejoin.elasticache"], ["fence.primary"]]
    text = descriptions(topo)
    assert "PrimaryFenced=0" in text["dns.db"] and "OK" in text["dns.db"]
    assert "switchover_global_cluster" in text["aurora.promote"]


def test_the_control_plane_fallback_edits_the_primary_records() -> None:
    text = descriptions(topology(dns_control_plane=True))
    assert text["dns.db"] == (
        "UPSERT db.aipx.internal PRIMARY (primary-us-east-1) -> d.db (Route 53 control plane, "
        "us-east-1)"
    )


def test_only_the_dr_stack_with_both_sides_can_drive_a_failover() -> None:
    prod = OpsContext("prod", StackConfig.for_stack("prod", ROOT), outputs())
    with pytest.raises(TopologyError, match="use --stack dr"):
        resolve(prod, FailoverRequest(), ROOT)
    aurora = outputs().aurora
    assert aurora is not None
    half = outputs().model_copy(update={"aurora": aurora.model_copy(update={"clusters": {}})})
    with pytest.raises(TopologyError, match=r"aurora\.clusters has no entry for us-west-2"):
        resolve(OpsContext("dr", StackConfig.for_stack("dr", ROOT), half), FailoverRequest(), ROOT)


def test_publishing_is_refused_when_the_alarm_watches_another_metric() -> None:
    switch = FailoverSwitch(
        alarm_name="a",
        region=DR,
        namespace="TradingDR/Failover",
        metric="PrimaryFenced",
        dimensions={"Service": "db"},
    )
    alarm = {"Namespace": "TradingDR/Failover", "MetricName": "PrimaryFenced", "Dimensions": []}
    with pytest.raises(RuntimeError, match="publishing would not move it"):
        check_alarm_watches_switch(alarm, switch)
    check_alarm_watches_switch(alarm | {"Dimensions": [{"Name": "Service", "Value": "db"}]}, switch)
