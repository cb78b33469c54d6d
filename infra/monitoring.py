"""What watches the backups and the standbys: CloudWatch alarms, the Prometheus rules, the Grafana
dashboard, and the cost budgets.

Which alarms act follows ``active_region`` (``StackConfig.primary_region``):

- freshness alarms exist in both regions, with actions only where the backups run now (the
  active region), so the standby's alarms stay quiet until a failover moves the CronJobs there;
- replication-lag alarms watch the member that *receives* replication, so they act in the region
  that is standby now (dr normally; prod after a failover, once it rejoins as the secondary);
- the vault's S3 replication alarms live with the source bucket (prod); the failover switches
  always notify (a fence raised or lifted is news).

The Prometheus rules go to the active region's cluster only (the Pushgateway there holds the
metrics); the dashboard is in both.
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.alarms import (
    REPLICATION_FAILURES,
    REPLICATION_LAG,
    AlarmSpec,
    MetricAlarms,
    MetricAlarmsArgs,
    MetricQuery,
    freshness_alarm,
    freshness_window,
)
from components.budgets import CostBudget, CostBudgets, CostBudgetsArgs
from components.dashboard import BackupDashboard, BackupDashboardArgs
from components.dns_failover import switch_alarm
from components.prometheus_rules import BackupAlertRules, BackupAlertRulesArgs, WatchedComponent
from infra.standby import Stack, Standbys
from stackmodels import metrics
from stackmodels.schedule import Cron

VAULT_REPLICATION_RULE = "vault-to-dr"
"""The rule id of the prod vault's replication configuration (``components.replication``)."""
S3_REPLICATION_THRESHOLD_SECONDS = 15 * 60
"""S3 Replication Time Control's threshold: 99.99% of objects within 15 minutes."""
LAG_PERIOD = 60


def watched_components(stack: Stack) -> list[WatchedComponent]:
    config = stack.config
    watched = []
    for name, store in config.stores.items():
        rpo = config.data_classes[store.data_class].rpo
        watched.append(
            WatchedComponent(
                name=name,
                data_class=store.data_class,
                window=freshness_window(rpo, Cron(store.schedule).max_interval),
                rpo=rpo,
            )
        )
    return watched


def freshness_alarms(stack: Stack) -> list[AlarmSpec]:
    config = stack.config
    return [
        freshness_alarm(
            platform=config.platform,
            store=name,
            data_class=store.data_class,
            rpo=config.data_classes[store.data_class].rpo,
            schedule_gap=Cron(store.schedule).max_interval,
            namespace=metrics.CLOUDWATCH_NAMESPACE,
            metric=metrics.BACKUP_SUCCESS,
            dimension=metrics.COMPONENT_DIMENSION,
            active=stack.active,
        )
        for name, store in config.stores.items()
    ]


def _rpo_seconds(stack: Stack, store: str) -> float:
    config = stack.config
    return config.data_classes[config.stores[store].data_class].rpo.total_seconds()


def _lag_alarm(
    stack: Stack,
    store: str,
    *,
    description: str,
    threshold: float,
    namespace: str | None = None,
    metric: str | None = None,
    dimensions: dict[str, str] | None = None,
    queries: list[MetricQuery] | None = None,
) -> AlarmSpec:
    """``store``'s replication lag above ``threshold`` (its RPO, in the metric's unit), from the
    worst sample of a minute (one metric, or the ``queries``' expression); missing data breaches;
    actions only where replication is received (the region that is not active)."""
    config = stack.config
    return AlarmSpec(
        key=f"lag-{store}",
        name=f"{config.platform}-replication-lag-{store}-{stack.region}",
        description=description,
        kind=REPLICATION_LAG,
        namespace=namespace,
        metric=metric,
        dimensions=dimensions or {},
        statistic="Maximum" if metric is not None else None,
        queries=queries or [],
        period=LAG_PERIOD,
        threshold=threshold,
        comparison="GreaterThanThreshold",
        treat_missing_data="breaching",
        actions_enabled=not stack.active,
        store=store,
        data_class=config.stores[store].data_class,
    )


def replication_alarms(stack: Stack, standbys: Standbys) -> list[AlarmSpec]:
    """Lag over the RPO of each continuously protected store whose receiving side is here."""
    config = stack.config
    specs: list[AlarmSpec] = []
    if config.aurora is not None and standbys.aurora_cluster_id is not None:
        store = config.aurora.store
        specs.append(
            _lag_alarm(
                stack,
                store,
                description=(
                    f"Aurora global replication to {standbys.aurora_cluster_id} lags more than "
                    f"the RPO of {store} ({int(_rpo_seconds(stack, store))}s). Missing data "
                    "breaches: a secondary that stops reporting is not replicating."
                ),
                namespace="AWS/RDS",
                metric="AuroraGlobalDBReplicationLag",
                dimensions={"DBClusterIdentifier": standbys.aurora_cluster_id},
                threshold=_rpo_seconds(stack, store) * 1000,
            )
        )
    if config.elasticache is not None and standbys.cache_group_id is not None:
        store = config.elasticache.store
        members = [f"{standbys.cache_group_id}-{n:03d}" for n in range(1, standbys.cache_nodes + 1)]
        specs.append(
            _lag_alarm(
                stack,
                store,
                description=(
                    f"The global datastore's replication to {standbys.cache_group_id} lags more "
                    f"than the RPO of {store} ({int(_rpo_seconds(stack, store))}s); the lag is "
                    "reported by whichever member is the region's primary node."
                ),
                queries=[
                    *(
                        MetricQuery(
                            id=f"m{index}",
                            namespace="AWS/ElastiCache",
                            metric="GlobalDatastoreReplicationLag",
                            dimensions={"CacheClusterId": member},
                            statistic="Maximum",
                        )
                        for index, member in enumerate(members, start=1)
                    ),
                    MetricQuery(id="lag", expression="MAX(METRICS())", return_data=True),
                ],
                threshold=_rpo_seconds(stack, store),
            )
        )
    if config.msk is not None and standbys.replicator_name is not None:
        store = config.msk.store
        specs.append(
            _lag_alarm(
                stack,
                store,
                description=(
                    f"MSK Replicator {standbys.replicator_name} takes longer than the RPO of "
                    f"{store} ({int(_rpo_seconds(stack, store))}s) to copy critical records."
                ),
                namespace="AWS/Kafka",
                metric="ReplicationLatency",
                dimensions={"ReplicatorName": standbys.replicator_name},
                threshold=_rpo_seconds(stack, store) * 1000,
            )
        )
    return specs


def vault_replication_alarms(stack: Stack, source: str, destination: str) -> list[AlarmSpec]:
    """prod: the vault's replication is late (past RTC's 15 minutes) or failing."""
    platform = stack.config.platform
    dimensions: dict[str, Any] = {
        "SourceBucket": source,
        "DestinationBucket": destination,
        "RuleId": VAULT_REPLICATION_RULE,
    }
    return [
        AlarmSpec(
            key="vault-replication-latency",
            name=f"{platform}-vault-replication-latency",
            description=(
                "Backups reach the dr vault later than Replication Time Control's 15 minutes."
            ),
            kind=REPLICATION_LAG,
            namespace="AWS/S3",
            metric="ReplicationLatency",
            dimensions=dimensions,
            statistic="Maximum",
            period=LAG_PERIOD,
            evaluation_periods=5,
            datapoints_to_alarm=3,
            threshold=S3_REPLICATION_THRESHOLD_SECONDS,
            comparison="GreaterThanThreshold",
            treat_missing_data="notBreaching",
        ),
        AlarmSpec(
            key="vault-replication-failures",
            name=f"{platform}-vault-replication-failures",
            description="Objects of the prod vault failed to replicate to the dr vault.",
            kind=REPLICATION_FAILURES,
            namespace="AWS/S3",
            metric="OperationsFailedReplication",
            dimensions=dimensions,
            statistic="Sum",
            period=300,
            threshold=0,
            comparison="GreaterThanThreshold",
            treat_missing_data="notBreaching",
        ),
    ]


def define_alarms(
    stack: Stack,
    standbys: Standbys,
    *,
    switch_services: list[str],
    vault_replication: tuple[str, str] | None,
) -> dict[str, Any]:
    """Every CloudWatch alarm of the stack; returns the ``alarms`` output."""
    assert stack.topic_arn is not None
    specs = freshness_alarms(stack) + replication_alarms(stack, standbys)
    if vault_replication is not None:
        specs += vault_replication_alarms(stack, *vault_replication)
    specs += [
        switch_alarm(
            platform=stack.config.platform,
            service=service,
            namespace=metrics.FAILOVER_NAMESPACE,
            metric=metrics.PRIMARY_FENCED,
            dimension=metrics.SERVICE_DIMENSION,
        )
        for service in switch_services
    ]
    MetricAlarms(
        "alarms",
        MetricAlarmsArgs(alarms=specs, topic_arn=stack.topic_arn, tags=stack.tags),
        stack.opts,
    )
    return {
        spec.key: {
            "name": spec.name,
            "region": stack.region,
            "what": spec.kind,
            "store": spec.store,
        }
        for spec in specs
    }


def define_kubernetes_monitoring(stack: Stack, provider: k8s.Provider) -> None:
    config = stack.config
    watched = watched_components(stack)
    opts = pulumi.ResourceOptions(provider=provider)
    namespace = config.kubernetes.monitoring_namespace
    if stack.active:
        BackupAlertRules(
            "backup-alerts",
            BackupAlertRulesArgs(platform=config.platform, namespace=namespace, components=watched),
            opts,
        )
    BackupDashboard(
        "backup-dashboard",
        BackupDashboardArgs(platform=config.platform, namespace=namespace, components=watched),
        opts,
    )


def define_budgets(stack: Stack) -> None:
    """prod only: budgets are account-wide and AWS Budgets is a global service."""
    config = stack.config
    if not stack.is_prod or not config.budgets:
        return
    assert stack.topic_arn is not None
    CostBudgets(
        "budgets",
        CostBudgetsArgs(
            platform=config.platform,
            account_id=stack.account,
            budgets=[
                CostBudget(key=key, limit_usd=b.limit_usd, cost_filters=dict(b.cost_filters))
                for key, b in config.budgets.items()
            ],
            topic_arn=stack.topic_arn,
            tags=stack.tags,
        ),
        stack.opts,
    )
