"""The data stores and their standbys as the engine receives them, for both stacks' real config:
Aurora global database, MSK and its replicator, ElastiCache global datastore, AWS Backup, DNS."""

from __future__ import annotations

import json
from typing import Any

import pytest
from program_harness import ACCOUNT, Recorded, StackRun

from stackmodels import StackOutputs

pytestmark = pytest.mark.unit

GLOBAL = "aws:rds/globalCluster:GlobalCluster"
CLUSTER = "aws:rds/cluster:Cluster"
INSTANCE = "aws:rds/clusterInstance:ClusterInstance"
MSK = "aws:msk/cluster:Cluster"
REPLICATOR = "aws:msk/replicator:Replicator"
CACHE = "aws:elasticache/replicationGroup:ReplicationGroup"
DATASTORE = "aws:elasticache/globalReplicationGroup:GlobalReplicationGroup"
VAULT = "aws:backup/vault:Vault"
LOCK = "aws:backup/vaultLockConfiguration:VaultLockConfiguration"
PLAN = "aws:backup/plan:Plan"
SELECTION = "aws:backup/selection:Selection"
ZONE = "aws:route53/zone:Zone"
CHECK = "aws:route53/healthCheck:HealthCheck"
RECORD = "aws:route53/record:Record"
KEY = "aws:kms/key:Key"
SG = "aws:ec2/securityGroup:SecurityGroup"
INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"


def data_key(run: StackRun) -> str:
    return str(run.one(KEY, "data-key-key").state["arn"])


def only(run: StackRun, type_: str) -> Recorded:
    [found] = run.of_type(type_)
    return found


def options(resource: Recorded) -> Any:
    assert resource.options is not None, f"{resource.name}: options not captured"
    return resource.options


# ---- the data-store key -----------------------------------------------------------------------


def test_each_region_has_its_own_rotating_data_key(prod: StackRun, dr: StackRun) -> None:
    keys = {run.stack: run.one(KEY, "data-key-key") for run in (prod, dr)}
    assert {k.region for k in keys.values()} == {"us-east-1", "us-west-2"}
    for key in keys.values():
        assert key.inputs["enableKeyRotation"] is True
        assert not key.inputs.get("multiRegion")  # dr's key never needs the primary region
        assert options(key).protect is True
        statements = {s["Sid"]: s for s in json.loads(key.inputs["policy"])["Statement"]}
        use = statements["UseThroughDataServices"]
        assert (
            f"arn:aws:iam::{ACCOUNT}:role/aipx-aws-backup-{key.region}" in use["Principal"]["AWS"]
        )
        assert (
            f"rds.{key.region}.amazonaws.com" in use["Condition"]["StringEquals"]["kms:ViaService"]
        )
        assert "kms:*" not in use["Action"]
        assert statements["NotificationsToTheAlertTopic"]["Principal"] == {
            "Service": ["cloudwatch.amazonaws.com", "budgets.amazonaws.com"]
        }
        for statement in statements.values():
            assert statement["Principal"] != {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}


# ---- Aurora -----------------------------------------------------------------------------------


def test_prod_creates_an_encrypted_protected_global_cluster(prod: StackRun, dr: StackRun) -> None:
    global_cluster = only(prod, GLOBAL)
    assert global_cluster.inputs["engine"] == "aurora-postgresql"
    assert global_cluster.inputs["engineVersion"] == "16.8"
    assert global_cluster.inputs["storageEncrypted"] is True
    assert global_cluster.inputs["deletionProtection"] is True
    assert options(global_cluster).protect is True
    assert "sourceDbClusterIdentifier" in options(global_cluster).ignore_changes
    assert not dr.of_type(GLOBAL), "the global cluster is prod's; dr only joins it"


def test_each_member_cluster_is_secure_and_protected(run: StackRun) -> None:
    cluster = only(run, CLUSTER)
    inputs = cluster.inputs
    assert inputs["clusterIdentifier"] == f"aipx-trading-db-{run.config.region}"
    assert inputs["storageEncrypted"] is True
    assert inputs["kmsKeyId"] == data_key(run)
    assert inputs["backupRetentionPeriod"] == 30
    assert inputs["deletionProtection"] is True
    assert inputs["iamDatabaseAuthenticationEnabled"] is True
    assert inputs["copyTagsToSnapshot"] is True
    assert inputs["skipFinalSnapshot"] is False
    assert cluster.region == run.config.region
    assert options(cluster).protect is True
    # a failover flips these: the next `pulumi up` must neither detach nor re-point anything
    assert {"globalClusterIdentifier", "replicationSourceIdentifier"} <= set(
        options(cluster).ignore_changes
    )
    assert inputs["globalClusterIdentifier"] == "aipx-trading-db"


def test_each_member_has_two_instances_for_a_local_failover(run: StackRun) -> None:
    instances = run.of_type(INSTANCE)
    assert len(instances) >= 2
    cluster_id = only(run, CLUSTER).inputs["clusterIdentifier"]
    for instance in instances:
        assert instance.inputs["clusterIdentifier"] == cluster_id
        assert instance.inputs["instanceClass"] == "db.r7g.large"
        assert instance.inputs["publiclyAccessible"] is False
        assert instance.inputs["performanceInsightsKmsKeyId"] == data_key(run)
        assert options(instance).protect is True
    assert sorted(i.inputs["promotionTier"] for i in instances) == [0, 1]


def test_primary_has_the_master_user_write_only_and_secondary_none(
    prod: StackRun, dr: StackRun
) -> None:
    primary, secondary = only(prod, CLUSTER).inputs, only(dr, CLUSTER).inputs
    assert primary["masterUsername"] == "trading_admin"
    assert primary["databaseName"] == "aipx"
    assert primary["masterPasswordWo"], "the password reaches AWS only as a write-only input"
    assert "masterPassword" not in primary
    assert primary["masterPasswordWoVersion"] == 1
    assert not {"masterUsername", "masterPasswordWo", "databaseName"} & set(secondary)
    assert "aws:secretsmanager/getSecretVersion:getSecretVersion" in prod.calls


def test_security_groups_admit_only_the_clients_on_the_store_port(run: StackRun) -> None:
    rules = run.of_type(INGRESS)
    side = "primary" if run.stack == "prod" else "secondary"
    ports = {r.name.split("-sg-")[0]: r.inputs["fromPort"] for r in rules}
    assert ports == {
        f"aurora-{side}": 5432,
        "msk": 9098,
        f"cache-{side}": 6379,
        "timestream": 8086,
    }
    cidrs = {r.inputs.get("cidrIpv4") for r in rules if "cidrIpv4" in r.inputs}
    assert cidrs == set(run.config.network.client_cidrs if run.config.network else [])
    for rule in rules:
        assert rule.inputs["fromPort"] == rule.inputs["toPort"]


def test_adopting_an_existing_primary_imports_it_into_the_global_cluster(
    prod_adopting: StackRun,
) -> None:
    cluster = only(prod_adopting, CLUSTER)
    assert options(cluster).import_id == "legacy-orders-db"
    assert cluster.inputs["clusterIdentifier"] == "legacy-orders-db"
    # where it lives stays as it is; the secure settings are still declared (an import of a
    # cluster that lacks them fails, naming the difference)
    assert {"kmsKeyId", "dbSubnetGroupName", "vpcSecurityGroupIds", "masterUsername"} <= set(
        options(cluster).ignore_changes
    )
    assert cluster.inputs["deletionProtection"] is True
    assert cluster.inputs["backupRetentionPeriod"] == 30
    assert options(cluster).protect is True
    global_cluster = only(prod_adopting, GLOBAL)
    assert global_cluster.inputs["sourceDbClusterIdentifier"] == cluster.state["arn"]
    assert global_cluster.inputs["forceDestroy"] is True
    assert "engine" not in global_cluster.inputs  # inherited from the source cluster
    assert not prod_adopting.of_type(INSTANCE), "an adopted cluster keeps its own instances"
    outputs = prod_adopting.outputs["aurora"]
    assert outputs["clusters"]["us-east-1"]["id"] == "legacy-orders-db"


def test_a_failover_changes_nothing_the_clusters_are_declared_with(
    prod: StackRun, dr: StackRun, prod_failed_over: StackRun, dr_failed_over: StackRun
) -> None:
    """``active_region`` flips; the member clusters' and the global cluster's declarations do
    not, so `pulumi up` after a failover neither detaches nor promotes anything."""
    for before, after in ((prod, prod_failed_over), (dr, dr_failed_over)):
        for type_ in (GLOBAL, CLUSTER, INSTANCE, CACHE, DATASTORE, MSK):
            assert sorted(json.dumps(r.inputs) for r in before.of_type(type_)) == sorted(
                json.dumps(r.inputs) for r in after.of_type(type_)
            ), type_
    assert dr_failed_over.outputs["aurora"]["primary_region"] == "us-west-2"
    assert dr_failed_over.outputs["elasticache"]["primary_region"] == "us-west-2"


# ---- AWS Backup -------------------------------------------------------------------------------


def test_each_region_has_a_compliance_locked_vault(run: StackRun) -> None:
    vault = only(run, VAULT)
    assert vault.inputs["name"] == f"aipx-aws-backup-{run.config.region}"
    assert vault.inputs["kmsKeyArn"] == data_key(run)
    assert vault.inputs["forceDestroy"] is False
    assert options(vault).protect is True
    lock = only(run, LOCK)
    # trading-db is user-data, kept in the financial retention class: compliance mode
    assert lock.inputs["changeableForDays"] == 3
    assert lock.inputs["minRetentionDays"] == 90
    assert lock.inputs["maxRetentionDays"] == 2555
    assert run.outputs["aws_backup"]["lock_mode"] == "compliance"


def test_monthly_snapshots_kept_90_days_and_copied_to_the_other_vault(
    prod: StackRun, dr: StackRun
) -> None:
    for run, other in ((prod, dr), (dr, prod)):
        [rule] = only(run, PLAN).inputs["rules"]
        assert rule["schedule"] == "cron(0 5 1 * ? *)"
        assert rule["lifecycle"] == {"deleteAfter": 90}
        [copy] = rule["copyActions"]
        assert copy["lifecycle"] == {"deleteAfter": 90}
        # prod names dr's vault without reading dr: both agree
        other_vault = only(other, VAULT)
        assert copy["destinationVaultArn"] == other_vault.state["arn"]


def test_the_plan_selects_the_cluster_of_the_region_that_writes(
    prod: StackRun, dr: StackRun, prod_failed_over: StackRun, dr_failed_over: StackRun
) -> None:
    [selection] = prod.of_type(SELECTION)
    assert selection.inputs["resources"] == [only(prod, CLUSTER).state["arn"]]
    assert selection.inputs["iamRoleArn"] == prod.outputs["aws_backup"]["role_arn"]
    assert not dr.of_type(SELECTION)
    [selection] = dr_failed_over.of_type(SELECTION)
    assert selection.inputs["resources"] == [only(dr, CLUSTER).state["arn"]]
    assert not prod_failed_over.of_type(SELECTION)


def test_the_backup_role_trusts_only_aws_backup(run: StackRun) -> None:
    role = run.one("aws:iam/role:Role", "aws-backup-role-role")
    [statement] = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
    assert statement["Principal"] == {"Service": "backup.amazonaws.com"}
    assert statement["Condition"] == {"StringEquals": {"aws:SourceAccount": ACCOUNT}}
    attached = {
        r.inputs["policyArn"].rsplit("/", 1)[1]
        for r in run.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
    }
    assert attached == {
        "AWSBackupServiceRolePolicyForBackup",
        "AWSBackupServiceRolePolicyForRestores",
    }


# ---- MSK --------------------------------------------------------------------------------------


def test_each_msk_cluster_is_encrypted_tls_and_iam_only(run: StackRun) -> None:
    cluster = only(run, MSK).inputs
    assert cluster["clusterName"] == f"aipx-event-stream-{run.config.region}"
    assert cluster["encryptionInfo"] == {
        "encryptionAtRestKmsKeyArn": data_key(run),
        "encryptionInTransit": {"clientBroker": "TLS", "inCluster": True},
    }
    assert cluster["clientAuthentication"] == {"sasl": {"iam": True}, "unauthenticated": False}
    broker = cluster["brokerNodeGroupInfo"]
    assert len(broker["clientSubnets"]) == 3 and cluster["numberOfBrokerNodes"] == 3
    assert broker["connectivityInfo"] == {
        "vpcConnectivity": {"clientAuthentication": {"sasl": {"iam": True}}}
    }
    assert cluster["storageMode"] == "TIERED"  # the archive class keeps 30 days in S3
    assert options(only(run, MSK)).protect is True
    configuration = only(run, "aws:msk/configuration:Configuration").inputs
    properties = dict(line.split("=", 1) for line in configuration["serverProperties"].splitlines())
    assert properties["auto.create.topics.enable"] == "false"
    assert properties["min.insync.replicas"] == "2"
    assert properties["log.retention.ms"] == str(3 * 86_400_000)  # standard: 3 days


def test_topic_classes_carry_the_seed_retention(run: StackRun) -> None:
    classes = run.outputs["msk"]["topic_classes"]
    day = 86_400_000
    assert classes["critical"] == {
        "retention_ms": 7 * day,
        "local_retention_ms": None,
        "replicated": True,
        "tiered": False,
    }
    assert classes["standard"]["retention_ms"] == 3 * day
    assert classes["archive"]["retention_ms"] == 30 * day and classes["archive"]["tiered"]
    assert run.outputs["msk"]["replicated_topics"] == ["order-events", "strategy-signals"]


def test_prod_lets_the_replicator_reach_its_cluster(prod: StackRun, dr: StackRun) -> None:
    policy = only(prod, "aws:msk/clusterPolicy:ClusterPolicy")
    cluster_arn = only(prod, MSK).state["arn"]
    assert policy.inputs["clusterArn"] == cluster_arn
    [statement] = json.loads(policy.inputs["policy"])["Statement"]
    assert statement["Principal"] == {"Service": "kafka.amazonaws.com"}
    assert statement["Resource"] == cluster_arn
    assert not dr.of_type("aws:msk/clusterPolicy:ClusterPolicy")


def test_dr_replicates_the_critical_topics_from_prod(prod: StackRun, dr: StackRun) -> None:
    assert not prod.of_type(REPLICATOR)
    replicator = only(dr, REPLICATOR)
    assert replicator.region == "us-west-2"  # MSK runs a replicator in its target region
    source, target = only(prod, MSK).state, only(dr, MSK).state
    info = replicator.inputs["replicationInfoList"]
    assert (info["sourceKafkaClusterArn"], info["targetKafkaClusterArn"]) == (
        source["arn"],
        target["arn"],
    )
    [topics] = info["topicReplications"]
    assert topics["topicsToReplicates"] == ["^order-events$", "^strategy-signals$"]
    assert topics["topicNameConfiguration"] == {"type": "IDENTICAL"}
    assert topics["copyTopicConfigurations"] is True
    assert topics["startingPosition"] == {"type": "EARLIEST"}
    [groups] = info["consumerGroupReplications"]
    assert groups["synchroniseConsumerGroupOffsets"] is True
    sides = {
        c["amazonMskCluster"]["mskClusterArn"]: c["vpcConfig"]
        for c in replicator.inputs["kafkaClusters"]
    }
    assert prod.config.network is not None and dr.config.network is not None
    assert sides[source["arn"]]["subnetIds"] == prod.config.network.subnet_ids
    assert sides[target["arn"]]["subnetIds"] == dr.config.network.subnet_ids
    role = dr.one("aws:iam/role:Role", "msk-replicator-role")
    [trust] = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
    assert trust["Principal"] == {"Service": "kafka.amazonaws.com"}
    policy = json.loads(
        dr.one("aws:iam/rolePolicy:RolePolicy", "msk-replicator-policy").inputs["policy"]
    )
    resources = policy["Statement"][0]["Resource"]
    assert source["arn"] in resources and target["arn"] in resources
    assert any(":topic/aipx-event-stream-us-east-1/" in r for r in resources)
    assert dr.outputs["msk"]["replicator_arn"] == replicator.state["arn"]


# ---- ElastiCache ------------------------------------------------------------------------------


def test_each_replication_group_is_encrypted_authenticated_and_multi_az(run: StackRun) -> None:
    group = only(run, CACHE)
    inputs = group.inputs
    assert inputs["atRestEncryptionEnabled"] is True
    assert inputs["kmsKeyId"] == data_key(run)
    assert inputs["transitEncryptionEnabled"] is True
    assert inputs["transitEncryptionMode"] == "required"
    assert inputs["authTokenWo"] and "authToken" not in inputs
    assert inputs["automaticFailoverEnabled"] is True
    assert inputs["multiAzEnabled"] is True
    assert inputs["numCacheClusters"] == 2
    assert inputs["snapshotRetentionLimit"] == 7
    assert inputs["snapshotWindow"] == "05:00-06:00"
    assert options(group).protect is True
    assert "globalReplicationGroupId" in options(group).ignore_changes


def test_prod_creates_the_global_datastore_and_dr_joins_it(prod: StackRun, dr: StackRun) -> None:
    primary, secondary = only(prod, CACHE), only(dr, CACHE)
    datastore = only(prod, DATASTORE)
    assert datastore.inputs["primaryReplicationGroupId"] == primary.inputs["replicationGroupId"]
    assert options(datastore).protect is True
    assert "primaryReplicationGroupId" in options(datastore).ignore_changes
    assert not dr.of_type(DATASTORE)
    assert (
        secondary.inputs["globalReplicationGroupId"] == datastore.state["globalReplicationGroupId"]
    )
    assert primary.inputs["engine"] == "redis" and primary.inputs["engineVersion"] == "7.1"
    # a secondary takes engine, version and node type from the datastore (the provider refuses them)
    assert not {"engine", "engineVersion", "nodeType"} & set(secondary.inputs)


# ---- DNS --------------------------------------------------------------------------------------


def test_prod_owns_the_zone_health_checks_and_primary_records(prod: StackRun) -> None:
    zone = only(prod, ZONE)
    assert zone.inputs["name"] == "aipx.internal"
    assert zone.inputs["vpcs"] == [
        {"vpcId": "vpc-0a1b2c3d4e5f60001", "vpcRegion": "us-east-1"},
        {"vpcId": "vpc-0a1b2c3d4e5f60002", "vpcRegion": "us-west-2"},
    ]
    assert options(zone).protect is True
    checks = {c.name: c.inputs for c in prod.of_type(CHECK)}
    records = {r.name: r.inputs for r in prod.of_type(RECORD)}
    targets = {
        "db": only(prod, CLUSTER).state["endpoint"],
        "cache": only(prod, CACHE).state["primaryEndpointAddress"],
    }
    for service, ttl in (("db", 60), ("cache", 30)):
        check = checks[f"dns-{service}-check"]
        assert check["type"] == "CLOUDWATCH_METRIC"
        assert check["cloudwatchAlarmName"] == f"aipx-failover-switch-{service}"
        assert check["cloudwatchAlarmRegion"] == "us-west-2"  # up while the primary is dark
        assert check["insufficientDataHealthStatus"] == "LastKnownStatus"
        record = records[f"dns-{service}-primary"]
        assert record["name"] == f"{service}.aipx.internal"
        assert record["failoverRoutingPolicies"] == [{"type": "PRIMARY"}]
        assert record["ttl"] == ttl
        assert record["records"] == [targets[service]]
        assert record["setIdentifier"] == "primary-us-east-1"


def test_dr_owns_the_switches_and_the_secondary_records(prod: StackRun, dr: StackRun) -> None:
    assert not dr.of_type(ZONE) and not dr.of_type(CHECK)
    zone_id = only(prod, ZONE).state["zoneId"]
    records = {r.name: r.inputs for r in dr.of_type(RECORD)}
    targets = {
        "db": only(dr, CLUSTER).state["endpoint"],
        "cache": only(dr, CACHE).state["primaryEndpointAddress"],
    }
    for service in ("db", "cache"):
        record = records[f"dns-{service}-secondary"]
        assert record["zoneId"] == zone_id
        assert record["failoverRoutingPolicies"] == [{"type": "SECONDARY"}]
        assert record["records"] == [targets[service]]
        assert "healthCheckId" not in record
        switch = dr.one("aws:cloudwatch/metricAlarm:MetricAlarm", f"alarms-switch-{service}")
        # the alarm prod's health check reads, by name, in dr's region
        assert switch.inputs["name"] == f"aipx-failover-switch-{service}"
        assert switch.region == "us-west-2"
        assert switch.inputs["namespace"] == "TradingDR/Failover"
        assert switch.inputs["metricName"] == "PrimaryFenced"
        assert switch.inputs["dimensions"] == {"Service": service}
        assert switch.inputs["period"] == 60  # standard resolution: Route 53 reads no other
        assert switch.inputs["statistic"] == "Maximum"
        assert switch.inputs["treatMissingData"] == "ignore"  # fenced stays fenced
        assert switch.inputs["comparisonOperator"] == "GreaterThanOrEqualToThreshold"


def test_after_a_failover_dr_has_nothing_to_change_in_route53(
    dr: StackRun, dr_failed_over: StackRun, prod: StackRun, prod_failed_over: StackRun
) -> None:
    """A `pulumi up` of dr during the outage must not call Route 53's control plane."""
    for before, after in ((dr, dr_failed_over), (prod, prod_failed_over)):
        for type_ in (ZONE, CHECK, RECORD):
            assert sorted((r.name, json.dumps(r.inputs)) for r in before.of_type(type_)) == sorted(
                (r.name, json.dumps(r.inputs)) for r in after.of_type(type_)
            )


def test_dns_outputs_name_both_sides_and_the_switch(prod: StackRun, dr: StackRun) -> None:
    dns = StackOutputs.parse(json.loads(json.dumps(dr.outputs)), "dr").dns
    assert dns is not None
    assert dns.zone_id == only(prod, ZONE).state["zoneId"]
    db = dns.services["db"]
    assert db.primary is not None and db.secondary is not None
    assert (db.primary.region, db.secondary.region) == ("us-east-1", "us-west-2")
    switch = dns.switches["db"]
    assert switch.health_check_id == prod.outputs["dns"]["switches"]["db"]["health_check_id"]
    assert (switch.alarm_name, switch.region) == ("aipx-failover-switch-db", "us-west-2")


# ---- outputs ----------------------------------------------------------------------------------


def test_outputs_name_every_id_failover_and_restore_need(prod: StackRun, dr: StackRun) -> None:
    outputs = StackOutputs.parse(json.loads(json.dumps(dr.outputs)), "dr")
    assert outputs.aurora is not None and outputs.msk is not None
    assert outputs.elasticache is not None and outputs.aws_backup is not None
    assert outputs.aurora.global_cluster_id == "aipx-trading-db"
    assert set(outputs.aurora.clusters) == {"us-east-1", "us-west-2"}
    assert outputs.aurora.clusters["us-east-1"].arn == only(prod, CLUSTER).state["arn"]
    assert set(outputs.msk.clusters) == {"us-east-1", "us-west-2"}
    assert outputs.msk.replicator_arn
    assert (
        outputs.elasticache.global_datastore_id
        == only(prod, DATASTORE).state["globalReplicationGroupId"]
    )
    assert set(outputs.elasticache.replication_groups) == {"us-east-1", "us-west-2"}
    assert set(outputs.aws_backup.vaults) == {"us-east-1", "us-west-2"}
    assert outputs.alerts_topic_arn == only(dr, "aws:sns/topic:Topic").state["arn"]
    assert outputs.alerts_topic_arns["us-east-1"] == prod.outputs["alerts_topic_arn"]


def test_store_endpoints_point_at_this_region(run: StackRun) -> None:
    outputs = StackOutputs.parse(json.loads(json.dumps(run.outputs)), run.stack)
    db, stream, cache = (outputs.stores[n] for n in ("trading-db", "event-stream", "session-cache"))
    region = run.config.region
    assert (db.kind, db.port, db.database) == ("postgres", 5432, "aipx")
    assert db.host == only(run, CLUSTER).state["endpoint"] and region in db.host
    assert db.credentials_secret == "aipx/trading-db/master"
    assert db.resource_id == f"aipx-trading-db-{region}"
    assert (stream.kind, stream.port, stream.auth) == ("kafka", 9098, "msk-iam")
    assert (db.auth, cache.auth) == ("none", "none")
    assert stream.host.startswith("b-1.") and region in stream.host
    assert stream.resource_id == only(run, MSK).state["arn"]
    assert (cache.kind, cache.port) == ("redis", 6379)
    assert cache.host == only(run, CACHE).state["primaryEndpointAddress"]
    assert cache.credentials_secret == "aipx/session-cache/auth"


def test_dr_touches_route53_only_through_its_secondary_records(dr: StackRun) -> None:
    """Route 53's API is global (us-east-1): dr's only such resources are its SECONDARY records,
    and everything else of dr is in dr's region."""
    route53 = [r for r in dr.resources if r.type.startswith("aws:route53/")]
    assert {r.type for r in route53} == {RECORD}
    assert all(r.inputs["failoverRoutingPolicies"] == [{"type": "SECONDARY"}] for r in route53)
    assert not dr.of_type("aws:budgets/budget:Budget")
    assert {r.region for r in dr.resources if r.type.startswith("aws:")} == {"us-west-2"}


def test_the_stream_backup_may_read_the_msk_cluster_this_stack_creates(run: StackRun) -> None:
    """The backup job's IAM names the MSK cluster by name (its ARN ends in a UUID only AWS
    knows): the name must be the one the cluster is created with, or every backup is denied."""
    cluster = only(run, MSK).inputs["clusterName"]
    role = f"aipx-backup-event-stream-{run.config.region}"
    [policy] = [
        r for r in run.of_type("aws:iam/rolePolicy:RolePolicy") if r.inputs.get("role") == role
    ]
    found = {s["Sid"]: s for s in json.loads(policy.inputs["policy"])["Statement"]}
    assert found["KafkaConnect"]["Resource"].split(":cluster/")[1] == f"{cluster}/*"
    assert all(
        r.split(":topic/")[1].startswith(f"{cluster}/*/")
        for r in found["KafkaReadOwnTopics"]["Resource"]
    )
