"""Alerts for both stacks' real config: CloudWatch alarms (freshness per store, replication lag),
the SNS topic, the budgets, the Prometheus rules and the Grafana dashboard."""

from __future__ import annotations

import json
from typing import Any

import pytest
from program_harness import ACCOUNT, Recorded, StackRun

pytestmark = pytest.mark.unit

ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
TOPIC = "aws:sns/topic:Topic"
BUDGET = "aws:budgets/budget:Budget"
RULE = "kubernetes:monitoring.coreos.com/v1:PrometheusRule"
CONFIG_MAP = "kubernetes:core/v1:ConfigMap"

# store -> (window in seconds, why): max(RPO of its data class, its schedule's longest gap)
FRESHNESS = {
    "trading-db": 900,  # user-data RPO 15m, backed up every 15m
    "event-stream": 3600,  # trading-signals RPO 30s is MSK Replicator's; hourly backups
    "session-cache": 6 * 3600,  # market-data RPO 1m is the global datastore's; every 6h
    "app-state": 3600,  # app-config RPO 5m is GitOps'; hourly backups
    "market-ticks": 3600,  # historical-market-data RPO 1h, hourly at :05
}


def alarm(run: StackRun, key: str) -> Recorded:
    return run.one(ALARM, f"alarms-{key}")


def topic_arn(run: StackRun) -> str:
    [topic] = run.of_type(TOPIC)
    return str(topic.state["arn"])


@pytest.mark.parametrize(("store", "window"), FRESHNESS.items())
def test_freshness_alarm_window_per_store(run: StackRun, store: str, window: int) -> None:
    inputs = alarm(run, f"freshness-{store}").inputs
    assert inputs["namespace"] == "TradingDR/Backups"
    assert inputs["metricName"] == "BackupSuccess"
    assert inputs["dimensions"] == {"Component": store}
    assert inputs["statistic"] == "Sum"
    assert inputs["period"] * inputs["evaluationPeriods"] == window
    assert inputs["datapointsToAlarm"] == inputs["evaluationPeriods"]
    assert inputs["period"] % 60 == 0  # the engine's metrics are standard resolution
    assert inputs["comparisonOperator"] == "LessThanThreshold" and inputs["threshold"] == 1
    assert inputs["treatMissingData"] == "breaching"
    assert inputs["tags"]["trading-dr:data-class"] == run.config.stores[store].data_class


def test_freshness_alarms_act_where_the_backups_run(
    prod: StackRun, dr: StackRun, prod_failed_over: StackRun, dr_failed_over: StackRun
) -> None:
    for run, acting in (
        (prod, True),
        (dr, False),
        (prod_failed_over, False),
        (dr_failed_over, True),
    ):
        for store in FRESHNESS:
            assert alarm(run, f"freshness-{store}").inputs["actionsEnabled"] is acting, run.stack


def test_every_alarm_notifies_its_regions_topic(run: StackRun) -> None:
    alarms = run.of_type(ALARM)
    assert alarms
    for recorded in alarms:
        assert recorded.inputs["alarmActions"] == [topic_arn(run)]
        assert recorded.inputs["okActions"] == [topic_arn(run)]
        assert recorded.region == run.config.region


def test_aurora_lag_alarm_is_the_rpo_on_the_receiving_member(
    dr: StackRun, prod: StackRun, dr_failed_over: StackRun
) -> None:
    inputs = alarm(dr, "lag-trading-db").inputs
    assert inputs["namespace"] == "AWS/RDS"
    assert inputs["metricName"] == "AuroraGlobalDBReplicationLag"
    assert inputs["dimensions"] == {"DBClusterIdentifier": "aipx-trading-db-us-west-2"}
    assert inputs["threshold"] == 15 * 60 * 1000  # user-data RPO, in milliseconds
    assert inputs["comparisonOperator"] == "GreaterThanThreshold"
    assert inputs["treatMissingData"] == "breaching"
    assert inputs["actionsEnabled"] is True
    # prod's member receives replication only after a failover
    assert alarm(prod, "lag-trading-db").inputs["actionsEnabled"] is False
    assert alarm(dr_failed_over, "lag-trading-db").inputs["actionsEnabled"] is False


def test_elasticache_lag_alarm_takes_the_max_over_the_members(dr: StackRun) -> None:
    inputs = alarm(dr, "lag-session-cache").inputs
    queries = {q["id"]: q for q in inputs["metricQueries"]}
    assert queries["lag"] == {"id": "lag", "expression": "MAX(METRICS())", "returnData": True}
    members = sorted(
        q["metric"]["dimensions"]["CacheClusterId"] for i, q in queries.items() if i != "lag"
    )
    assert members == ["aipx-session-cache-uw2-001", "aipx-session-cache-uw2-002"]
    assert {q["metric"]["metricName"] for i, q in queries.items() if i != "lag"} == {
        "GlobalDatastoreReplicationLag"
    }
    assert inputs["threshold"] == 60  # market-data RPO, in seconds (the metric's unit)
    assert "metricName" not in inputs and "period" not in inputs


def test_msk_replicator_lag_alarm_is_the_trading_signals_rpo(dr: StackRun, prod: StackRun) -> None:
    inputs = alarm(dr, "lag-event-stream").inputs
    assert inputs["namespace"] == "AWS/Kafka"
    assert inputs["metricName"] == "ReplicationLatency"
    assert inputs["dimensions"] == {"ReplicatorName": "aipx-event-stream-ue1-to-uw2"}
    assert (
        dr.one("aws:msk/replicator:Replicator", "msk-replicator-replicator").inputs[
            "replicatorName"
        ]
        == "aipx-event-stream-ue1-to-uw2"
    )
    assert inputs["threshold"] == 30_000  # 30 s, in milliseconds
    assert not [a for a in prod.of_type(ALARM) if a.name == "alarms-lag-event-stream"]


def test_vault_replication_alarms_watch_the_real_rule(prod: StackRun, dr: StackRun) -> None:
    [replication] = prod.of_type("aws:s3/bucketReplicationConfig:BucketReplicationConfig")
    [rule] = replication.inputs["rules"]
    expected = {
        "SourceBucket": f"aipx-backup-vault-{ACCOUNT}-us-east-1",
        "DestinationBucket": f"aipx-backup-vault-{ACCOUNT}-us-west-2",
        "RuleId": rule["id"],
    }
    latency = alarm(prod, "vault-replication-latency").inputs
    assert latency["dimensions"] == expected
    assert latency["metricName"] == "ReplicationLatency"
    assert latency["threshold"] == 900  # Replication Time Control's 15 minutes
    failures = alarm(prod, "vault-replication-failures").inputs
    assert failures["dimensions"] == expected
    assert failures["metricName"] == "OperationsFailedReplication"
    assert failures["threshold"] == 0 and failures["statistic"] == "Sum"
    assert not [a for a in dr.of_type(ALARM) if "vault-replication" in a.name]


def test_alarm_outputs_name_every_alarm(run: StackRun) -> None:
    names = {a.inputs["name"] for a in run.of_type(ALARM)}
    assert {v["name"] for v in run.outputs["alarms"].values()} == names


# ---- the topic --------------------------------------------------------------------------------


def test_the_topic_is_encrypted_and_open_to_alarms_and_budgets_only(run: StackRun) -> None:
    [topic] = run.of_type(TOPIC)
    assert topic.inputs["name"] == "aipx-dr-alerts"
    assert topic.inputs["kmsMasterKeyId"] == run.one("aws:kms/key:Key", "data-key-key").state["arn"]
    [policy] = run.of_type("aws:sns/topicPolicy:TopicPolicy")
    statements = {s["Sid"]: s for s in json.loads(policy.inputs["policy"])["Statement"]}
    publish = statements["AlarmsAndBudgetsOfThisAccount"]
    assert publish["Principal"] == {
        "Service": ["budgets.amazonaws.com", "cloudwatch.amazonaws.com"]
    }
    assert publish["Condition"] == {"StringEquals": {"aws:SourceAccount": ACCOUNT}}
    subscriptions = run.of_type("aws:sns/topicSubscription:TopicSubscription")
    assert sorted(s.inputs["endpoint"] for s in subscriptions) == sorted(run.config.alerts.emails)
    assert {s.inputs["protocol"] for s in subscriptions} == {"email"}


# ---- budgets ----------------------------------------------------------------------------------


def test_budgets_are_the_seed_thresholds_alerting_the_topic(prod: StackRun, dr: StackRun) -> None:
    budgets = {b.inputs["name"]: b.inputs for b in prod.of_type(BUDGET)}
    assert {name: float(b["limitAmount"]) for name, b in budgets.items()} == {
        "aipx-dr-backup": 10_000,
        "aipx-dr-data-transfer": 5_000,
        "aipx-dr-storage": 15_000,
    }
    for budget in budgets.values():
        assert budget["budgetType"] == "COST" and budget["timeUnit"] == "MONTHLY"
        assert budget["limitUnit"] == "USD"
        assert budget["costFilters"]
        for notification in budget["notifications"]:
            assert notification["subscriberSnsTopicArns"] == [topic_arn(prod)]
        assert {n["notificationType"] for n in budget["notifications"]} == {
            "ACTUAL",
            "FORECASTED",
        }
    assert budgets["aipx-dr-backup"]["costFilters"] == [
        {"name": "Service", "values": ["AWS Backup"]}
    ]
    assert not dr.of_type(BUDGET), "budgets are account-wide: prod owns them"


# ---- Prometheus rules and the dashboard -------------------------------------------------------


def prometheus_rules(run: StackRun) -> dict[tuple[str, str], dict[str, Any]]:
    [rule] = run.of_type(RULE)
    [group] = [g for g in rule.inputs["spec"]["groups"] if g["name"] == "backups"]
    return {(r["alert"], r["labels"]["component"]): r for r in group["rules"]}


def test_backup_missing_has_one_threshold_per_component(prod: StackRun) -> None:
    rules = prometheus_rules(prod)
    for store, window in FRESHNESS.items():
        missing = rules[("BackupMissing", store)]
        selector = f'backup_last_success_timestamp_seconds{{component="{store}"}}'
        assert missing["expr"] == (
            f"(time() - max by (component) ({selector}) > {window}) or absent({selector})"
        )
        assert missing["labels"]["severity"] == "critical"
        assert missing["labels"]["data_class"] == prod.config.stores[store].data_class
        failed = rules[("BackupFailed", store)]
        assert failed["expr"] == f'backup_last_result{{component="{store}"}} == 0'
        assert failed["for"] == "5m"
    assert {w for w in FRESHNESS.values()} != {3600}, "not the seed's one hour for everyone"


def test_prometheus_rules_go_to_the_cluster_where_backups_run(
    prod: StackRun, dr: StackRun, dr_failed_over: StackRun, prod_failed_over: StackRun
) -> None:
    [rule] = prod.of_type(RULE)
    assert rule.inputs["apiVersion"] == "monitoring.coreos.com/v1"
    assert rule.inputs["metadata"]["namespace"] == "monitoring"
    assert rule.region == "aipx-prod"  # the provider's kubeconfig context
    assert not dr.of_type(RULE)
    assert dr_failed_over.of_type(RULE) and not prod_failed_over.of_type(RULE)


def test_dashboard_has_a_row_per_component_with_the_seed_panels(run: StackRun) -> None:
    [config_map] = [
        m for m in run.of_type(CONFIG_MAP) if "grafana_dashboard" in m.inputs["metadata"]["labels"]
    ]
    assert config_map.inputs["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert config_map.region == run.config.kubernetes.context
    [document] = config_map.inputs["data"].values()
    dashboard = json.loads(document)
    rows = [p["title"] for p in dashboard["panels"] if p["type"] == "row"]
    assert rows == [f"{s} ({run.config.stores[s].data_class})" for s in run.config.stores]
    titles = {p["title"] for p in dashboard["panels"] if p["type"] != "row"}
    assert titles == {
        "Since last success",
        "Size",
        "Duration",
        "Failures (24h)",
        "Last drill",
        "Drill RTO / RPO",
    }
    ages = [p for p in dashboard["panels"] if p["title"] == "Since last success"]
    steps = [p["fieldConfig"]["defaults"]["thresholds"]["steps"][1]["value"] for p in ages]
    assert steps == list(FRESHNESS.values())


def test_kubernetes_resources_use_the_stacks_context_provider(run: StackRun) -> None:
    [provider] = run.of_type("pulumi:providers:kubernetes")
    assert provider.name == f"k8s-{run.config.kubernetes.context}"
    assert provider.inputs["context"] == run.config.kubernetes.context
