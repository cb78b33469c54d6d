"""The standby components' args and the alarm math, as plain pydantic and functions (no Pulumi),
and the stack config's rules for the new sections."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from program_harness import ROOT
from pydantic import ValidationError

from components import failover_naming as names
from components.alarms import AlarmSpec, MetricQuery, freshness_window, periods_for
from components.aurora import AuroraClusterArgs, ClusterRole
from components.aws_backup import AwsBackupArgs
from components.data_key import data_key_policy
from components.elasticache import CacheReplicationGroupArgs, GroupRole
from components.msk import (
    MskClusterArgs,
    MskReplicatorArgs,
    ReplicatedCluster,
    kafka_resource_arns,
    server_properties,
    topic_pattern,
)
from components.network import StorePlacementArgs
from components.prometheus_rules import missing_expression
from components.timestream import InfluxDbInstanceArgs
from infra.standby import first_broker
from stackmodels import ConfigError, StackConfig
from stackmodels.config import PROJECT

pytestmark = pytest.mark.unit

KEY = "arn:aws:kms:us-west-2:123456789012:key/0123abcd-0000-1111-2222-333344445555"
ROLE = "arn:aws:iam::123456789012:role/writer"
NETWORK: dict[str, Any] = {
    "vpc_id": "vpc-0a1b2c3d4e5f60002",
    "subnet_ids": ["subnet-0a1b2c3d4e5f60021", "subnet-0a1b2c3d4e5f60022"],
    "client_cidrs": ["10.20.0.0/16"],
}


# ---- Aurora -----------------------------------------------------------------------------------


def aurora_args(**overrides: Any) -> AuroraClusterArgs:
    values: dict[str, Any] = {
        "role": ClusterRole.SECONDARY,
        "cluster_identifier": "aipx-trading-db-us-west-2",
        "global_cluster_identifier": "aipx-trading-db",
        "engine_version": "16.8",
        "instance_class": "db.r7g.large",
        "kms_key_arn": KEY,
        **NETWORK,
    }
    values.update(overrides)
    return AuroraClusterArgs(**values)


def test_aurora_secure_defaults() -> None:
    args = aurora_args()
    assert (args.instances, args.backup_retention_days, args.protect) == (2, 30, True)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"instances": 1}, "instances"),
        ({"backup_retention_days": 7}, "backup_retention_days"),
        ({"global_cluster_identifier": None}, "a secondary joins a global cluster"),
        ({"master_username": "admin"}, "a secondary has no master user"),
        ({"adopt_cluster": True}, "only the primary cluster can be adopted"),
        ({"role": ClusterRole.PRIMARY}, "a new primary needs a master user and password"),
        ({"kms_key_arn": "alias/aws/rds"}, "not a KMS key ARN"),
        ({"cluster_identifier": "Trading_DB"}, "cluster_identifier"),
    ],
)
def test_aurora_args_reject(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        aurora_args(**overrides)


def test_an_adopted_primary_needs_no_global_cluster_or_password() -> None:
    args = aurora_args(role=ClusterRole.PRIMARY, global_cluster_identifier=None, adopt_cluster=True)
    assert args.adopt_cluster


# ---- ElastiCache, MSK, AWS Backup -------------------------------------------------------------


def cache_args(**overrides: Any) -> CacheReplicationGroupArgs:
    values: dict[str, Any] = {
        "role": GroupRole.SECONDARY,
        "replication_group_id": "aipx-session-cache-uw2",
        "description": "session cache",
        "global_datastore_id": "ldgnf-aipx-session-cache",
        "kms_key_arn": KEY,
        "auth_token": "a-long-enough-token",
        **NETWORK,
    }
    values.update(overrides)
    return CacheReplicationGroupArgs(**values)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"nodes": 1}, "nodes"),
        ({"global_datastore_id": None}, "a secondary joins the global datastore"),
        ({"global_datastore_suffix": "x-y"}, "only the primary creates the datastore"),
        ({"role": GroupRole.PRIMARY}, "the primary creates the datastore, not joins"),
        ({"replication_group_id": "a" * 41}, "replication_group_id"),
        ({"snapshot_window": "5am"}, "snapshot_window"),
    ],
)
def test_cache_args_reject(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        cache_args(**overrides)


def test_msk_brokers_must_spread_evenly_over_the_subnets() -> None:
    common: dict[str, Any] = {
        "cluster_name": "aipx-event-stream-us-west-2",
        "kafka_version": "3.8.x",
        "instance_type": "kafka.m7g.large",
        "kms_key_arn": KEY,
        "default_retention_ms": 1,
        **NETWORK,
    }
    assert MskClusterArgs(broker_nodes=4, **common).broker_nodes == 4
    with pytest.raises(ValidationError, match="broker_nodes: 3 is not a multiple of the 2"):
        MskClusterArgs(broker_nodes=3, **common)


def test_replicator_topics_are_exact_kafka_names() -> None:
    side = ReplicatedCluster(arn="arn:aws:kafka:x", subnet_ids=["a", "b"], security_group_id="s")
    common: dict[str, Any] = {
        "replicator_name": "r",
        "role_name": "r",
        "account_id": "123456789012",
        "source": side,
        "target": side,
    }
    with pytest.raises(ValidationError, match="are not Kafka topic names"):
        MskReplicatorArgs(topics=["orders", "bad topic"], **common)
    assert topic_pattern("market.data") == "^market\\.data$"


def test_msk_helpers() -> None:
    arns = kafka_resource_arns("arn:aws:kafka:us-east-1:123456789012:cluster/c/uuid-1")
    assert arns[1:] == [
        "arn:aws:kafka:us-east-1:123456789012:topic/c/uuid-1/*",
        "arn:aws:kafka:us-east-1:123456789012:group/c/uuid-1/*",
    ]
    with pytest.raises(ValueError, match="not an MSK cluster ARN"):
        kafka_resource_arns("arn:aws:rds:us-east-1:123456789012:cluster:x")
    assert "default.replication.factor=2" in server_properties(1, brokers=2)
    assert first_broker("b-1.x:9098,b-2.x:9098") == ("b-1.x", 9098)
    with pytest.raises(ValueError, match="not 'host:port"):
        first_broker("")


def backup_args(**overrides: Any) -> AwsBackupArgs:
    values: dict[str, Any] = {
        "vault_name": "aipx-aws-backup-us-east-1",
        "kms_key_arn": KEY,
        "lock_mode": "compliance",
        "min_retention_days": 90,
        "max_retention_days": 2555,
        "plan_name": "aipx-aurora",
        "schedule": "cron(0 5 1 * ? *)",
        "delete_after_days": 90,
        "copy_to_vault_arn": (
            "arn:aws:backup:us-west-2:123456789012:backup-vault:aipx-aws-backup-us-west-2"
        ),
        "role_arn": ROLE,
    }
    values.update(overrides)
    return AwsBackupArgs(**values)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"delete_after_days": 30}, "outside the vault lock's 90-2555 days"),
        ({"min_retention_days": 3000}, "above max_retention_days"),
        ({"changeable_for_days": 1}, "changeable_for_days"),
        ({"copy_to_vault_arn": "aipx-aws-backup-us-west-2"}, "copy_to_vault_arn"),
        ({"schedule": "0 5 1 * *"}, "schedule"),
    ],
)
def test_backup_args_reject(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        backup_args(**overrides)


def test_data_key_policy_names_principals_and_services() -> None:
    policy = data_key_policy(
        account_id="123456789012",
        region="us-west-2",
        administrators=[ROLE],
        service_users=[ROLE, ROLE],
        break_glass=ROLE,
    )
    statements = {s["Sid"]: s for s in policy["Statement"]}
    assert statements["UseThroughDataServices"]["Principal"] == {"AWS": [ROLE]}
    assert "kms:Decrypt" not in statements["KeyAdministration"]["Action"]
    services = statements["UseThroughDataServices"]["Condition"]["StringEquals"]["kms:ViaService"]
    assert services == [
        f"{s}.us-west-2.amazonaws.com"
        for s in ("rds", "kafka", "elasticache", "backup", "secretsmanager", "sns")
    ]


# ---- the alarm math ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rpo", "gap", "window"),
    [
        (timedelta(minutes=15), timedelta(minutes=15), timedelta(minutes=15)),
        (timedelta(seconds=30), timedelta(hours=1), timedelta(hours=1)),
        (timedelta(hours=1), timedelta(minutes=15), timedelta(hours=1)),
    ],
)
def test_freshness_window_is_the_longer_of_rpo_and_schedule(
    rpo: timedelta, gap: timedelta, window: timedelta
) -> None:
    assert freshness_window(rpo, gap) == window


@pytest.mark.parametrize(
    ("window", "expected"),
    [
        (timedelta(seconds=30), (60, 1)),
        (timedelta(minutes=15), (900, 1)),
        (timedelta(seconds=901), (960, 1)),
        (timedelta(hours=6), (21_600, 1)),
        (timedelta(days=1), (86_400, 1)),
        (timedelta(hours=36), (3_600, 36)),
        (timedelta(days=3), (86_400, 3)),
        (timedelta(days=7), (86_400, 7)),
    ],
)
def test_periods_follow_cloudwatch_rules(window: timedelta, expected: tuple[int, int]) -> None:
    period, evaluations = periods_for(window)
    assert (period, evaluations) == expected
    assert period * evaluations >= window.total_seconds()
    AlarmSpec(  # and CloudWatch's rules accept it
        key="k",
        name="n",
        description="d",
        kind="backup-freshness",
        namespace="N",
        metric="M",
        statistic="Sum",
        period=period,
        evaluation_periods=evaluations,
        threshold=1,
        comparison="LessThanThreshold",
        treat_missing_data="breaching",
    )


def test_a_window_beyond_a_week_is_refused() -> None:
    with pytest.raises(ValueError, match="7-day evaluation limit"):
        periods_for(timedelta(days=8))


def spec(**overrides: Any) -> AlarmSpec:
    values: dict[str, Any] = {
        "key": "k",
        "name": "n",
        "description": "d",
        "kind": "replication-lag",
        "namespace": "AWS/RDS",
        "metric": "M",
        "statistic": "Maximum",
        "period": 60,
        "threshold": 1,
        "comparison": "GreaterThanThreshold",
        "treat_missing_data": "breaching",
    }
    values.update(overrides)
    return AlarmSpec(**values)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"period": 45}, "not 10, 20, 30 or a multiple of 60"),
        ({"period": 600, "evaluation_periods": 145}, "exceeds CloudWatch's 86400s"),
        ({"period": 3600, "evaluation_periods": 169}, "exceeds CloudWatch's 604800s"),
        ({"datapoints_to_alarm": 2}, "more than evaluation_periods"),
        ({"statistic": None}, "a single-metric alarm needs one"),
        (
            {"queries": [MetricQuery(id="e", expression="MAX(METRICS())", return_data=True)]},
            "a namespace and metric, or metric-math queries",
        ),
    ],
)
def test_alarm_specs_reject(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        spec(**overrides)


def test_prometheus_missing_expression_includes_absence() -> None:
    expression = missing_expression("trading-db", timedelta(minutes=15))
    assert expression.endswith(
        'or absent(backup_last_success_timestamp_seconds{component="trading-db"})'
    )
    assert "> 900)" in expression


def test_names_are_deterministic_and_checked() -> None:
    assert names.failover_switch_alarm_name("aipx", "db") == "aipx-failover-switch-db"
    assert names.backup_vault_arn("aws", "us-west-2", "123456789012", "v") == (
        "arn:aws:backup:us-west-2:123456789012:backup-vault:v"
    )
    assert names.elasticache_group_id("aipx", "session-cache", "ap-southeast-2") == (
        "aipx-session-cache-as2"
    )
    with pytest.raises(ValueError, match="longer than 40"):
        names.elasticache_group_id("a" * 30, "session-cache", "us-east-1")
    with pytest.raises(ValueError, match="shorten"):
        names.aurora_cluster_id("aipx", "x" * 60, "us-east-1")


# ---- the stack config's new sections ----------------------------------------------------------


def config_problems(stack: str, **changes: Any) -> list[str]:
    values = StackConfig.for_stack(stack, ROOT).model_dump(mode="json")
    for key, value in changes.items():
        if value is None:
            values.pop(key, None)
        else:
            values[key] = value
    with pytest.raises(ConfigError) as caught:
        StackConfig.from_pulumi_config(values, source="test")
    return caught.value.problems


def prod_section(key: str, **changes: Any) -> dict[str, Any]:
    section: dict[str, Any] = StackConfig.for_stack("prod", ROOT).model_dump(mode="json")[key]
    section.update(changes)
    return section


def test_data_stores_need_a_network() -> None:
    problems = config_problems("prod", network=None)
    assert any(p.startswith(f"{PROJECT}:network = None: required when aurora") for p in problems)


def test_a_data_store_section_names_a_store_of_its_kind() -> None:
    problems = config_problems("prod", aurora=prod_section("aurora", store="session-cache"))
    [problem] = [p for p in problems if p.startswith(f"{PROJECT}:aurora.store")]
    assert problem.startswith(f"{PROJECT}:aurora.store = 'session-cache'")
    assert "kind 'postgres'; allowed: ['trading-db']" in problem


def test_only_prod_adopts_a_cluster() -> None:
    aurora = prod_section("aurora", adopt_primary_cluster_identifier="legacy-orders-db")
    [problem] = config_problems("dr", aurora=aurora)
    assert "aurora.adopt_primary_cluster_identifier" in problem and "only the primary" in problem


def test_topics_name_known_classes() -> None:
    msk = prod_section("msk", topics={"orders": "hot"})
    [problem] = config_problems("prod", msk=msk)
    assert problem.startswith(f"{PROJECT}:msk.topics.orders = 'hot': unknown topic class")


def test_a_dns_ttl_must_fit_the_rto_after_the_switch() -> None:
    dns = prod_section("dns")
    dns["services"]["cache"]["ttl"] = 200  # market-data RTO 5m - 2m switch = 180s at most
    [problem] = config_problems("prod", dns=dns)
    assert problem.startswith(f"{PROJECT}:dns.services.cache.ttl = 200")
    assert "a TTL of at most 180s" in problem


def test_dns_names_only_stores_with_regional_endpoints() -> None:
    dns = prod_section("dns")
    dns["services"]["stream"] = {"store": "event-stream", "ttl": 10}
    [problem] = config_problems("prod", dns=dns)
    assert "dns.services.stream.store = 'event-stream'" in problem


def test_dns_covers_both_regions_vpcs() -> None:
    dns = prod_section("dns")
    del dns["vpc_ids"]["us-west-2"]
    [problem] = config_problems("prod", dns=dns)
    assert "dns.vpc_ids" in problem and "us-west-2" in problem


def test_older_stack_files_stay_valid_without_the_new_sections() -> None:
    values = StackConfig.for_stack("prod", ROOT).model_dump(mode="json")
    sections = ("network", "aurora", "msk", "elasticache", "timestream", "dns", "alerts", "budgets")
    for key in sections:
        values.pop(key)
    config = StackConfig.from_pulumi_config(values, source="test")
    assert config.aurora is None and config.dns is None
    assert {k: b.limit_usd for k, b in config.budgets.items()} == {
        "backup": 10_000,
        "data-transfer": 5_000,
        "storage": 15_000,
    }


# ---- Placement --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args_type",
    [AuroraClusterArgs, CacheReplicationGroupArgs, MskClusterArgs, InfluxDbInstanceArgs],
)
def test_every_data_store_takes_its_placement_from_one_model(args_type: type) -> None:
    assert issubclass(args_type, StorePlacementArgs)
    fields = args_type.model_fields
    assert fields["vpc_id"].metadata == StorePlacementArgs.model_fields["vpc_id"].metadata
    assert fields["client_cidrs"].metadata == (
        StorePlacementArgs.model_fields["client_cidrs"].metadata
    )


def test_placement_rejects_a_bad_vpc_and_no_clients() -> None:
    with pytest.raises(ValidationError, match="vpc_id"):
        StorePlacementArgs(**{**NETWORK, "vpc_id": "vpc-XYZ"})
    with pytest.raises(ValidationError, match="client_cidrs"):
        StorePlacementArgs(**{**NETWORK, "client_cidrs": []})
