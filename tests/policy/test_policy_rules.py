"""Each rule accepts what the components produce and rejects a bad resource or stack."""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from pulumi_policy import (
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    StackValidationArgs,
)

from policy import pack, rules
from policy.rules import Resource, Violation

pytestmark = pytest.mark.policy

Check = Callable[[Sequence[Resource]], list[Violation]]
VAULT = "backup-vault-bucket"
LOGS = "access-logs-bucket"


def edit(
    resources: list[Resource], name: str, change: Callable[[dict[str, Any]], None]
) -> list[Resource]:
    """A copy of the stack with one resource's props changed."""
    edited = []
    for resource in resources:
        if resource.name == name:
            props = copy.deepcopy(dict(resource.props))
            change(props)
            resource = Resource(resource.type, resource.name, resource.urn, props)
        edited.append(resource)
    return edited


def without(resources: list[Resource], name: str) -> list[Resource]:
    return [r for r in resources if r.name != name]


@pytest.mark.parametrize(
    "check", [c for c, _ in rules.STACK_RULES.values()], ids=list(rules.STACK_RULES)
)
def test_every_stack_rule_accepts_what_the_components_produce(
    check: Check, prod_resources: list[Resource], dr_resources: list[Resource]
) -> None:
    assert check(prod_resources) == []
    assert check(dr_resources) == []


def test_unversioned_or_suspended_bucket_is_rejected(prod_resources: list[Resource]) -> None:
    [violation] = rules.buckets_versioned(without(prod_resources, "backup-vault-versioning"))
    assert "backup-vault-bucket" in violation.message and violation.urn
    suspended = edit(
        prod_resources,
        "audit-versioning",
        lambda p: p.update(versioningConfiguration={"status": "Suspended"}),
    )
    [violation] = rules.buckets_versioned(suspended)
    assert "'audit-bucket' is not versioned" in violation.message


def test_bucket_without_customer_key_is_rejected(prod_resources: list[Resource]) -> None:
    sse_s3 = edit(
        prod_resources,
        "backup-vault-encryption",
        lambda p: p.update(
            rules=[{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"}}]
        ),
    )
    [violation] = rules.buckets_encrypted_with_customer_key(sse_s3)
    assert "customer-managed KMS key" in violation.message
    aws_managed = edit(
        prod_resources,
        "audit-encryption",
        lambda p: p.update(
            rules=[
                {
                    "applyServerSideEncryptionByDefault": {
                        "sseAlgorithm": "aws:kms",
                        "kmsMasterKeyId": "alias/aws/s3",
                    }
                }
            ]
        ),
    )
    assert len(rules.buckets_encrypted_with_customer_key(aws_managed)) == 1
    assert (
        len(rules.buckets_encrypted_with_customer_key(without(prod_resources, "audit-encryption")))
        == 1
    )


def test_sse_s3_is_allowed_only_for_a_real_access_log_target(
    prod_resources: list[Resource],
) -> None:
    not_a_target = [r for r in prod_resources if r.type not in rules.LOGGING]
    [violation] = rules.buckets_encrypted_with_customer_key(not_a_target)
    assert LOGS in violation.message
    untagged = edit(prod_resources, LOGS, lambda p: p.update(tags={}))
    assert len(rules.buckets_encrypted_with_customer_key(untagged)) == 1


STAGING = "cache-export-bucket"


def test_sse_s3_is_allowed_for_the_cache_export_staging_only_while_it_expires_fast(
    prod_resources: list[Resource],
) -> None:
    assert rules.buckets_encrypted_with_customer_key(prod_resources) == []
    untagged = edit(prod_resources, STAGING, lambda p: p.update(tags={}))
    [violation] = rules.buckets_encrypted_with_customer_key(untagged)
    assert STAGING in violation.message

    def keep_a_week(props: dict[str, Any]) -> None:
        props["rules"][0]["expiration"] = {"days": 7}

    [violation] = rules.buckets_encrypted_with_customer_key(
        edit(prod_resources, "cache-export-lifecycle", keep_a_week)
    )
    assert STAGING in violation.message
    no_lifecycle = without(prod_resources, "cache-export-lifecycle")
    assert len(rules.buckets_encrypted_with_customer_key(no_lifecycle)) == 1


def test_bucket_with_public_access_is_rejected(prod_resources: list[Resource]) -> None:
    loose = edit(
        prod_resources,
        "backup-vault-public-access-block",
        lambda p: p.update(restrictPublicBuckets=False),
    )
    [violation] = rules.buckets_block_public_access(loose)
    assert "does not block public access" in violation.message
    assert (
        len(rules.buckets_block_public_access(without(prod_resources, "audit-public-access-block")))
        == 1
    )


def test_vault_without_object_lock_is_rejected(dr_resources: list[Resource]) -> None:
    unlocked = edit(dr_resources, VAULT, lambda p: p.update(objectLockEnabled=False))
    [violation] = rules.vaults_object_locked(unlocked)
    assert "object_lock_enabled" in violation.message
    [violation] = rules.vaults_object_locked(without(dr_resources, "audit-object-lock"))
    assert "no Object Lock default retention" in violation.message


def test_vault_without_expiry_or_multipart_abort_is_rejected(
    prod_resources: list[Resource],
) -> None:
    no_abort = edit(
        prod_resources,
        "backup-vault-lifecycle",
        lambda p: p.update(rules=[r for r in p["rules"] if r["id"] != "housekeeping"]),
    )
    [violation] = rules.vaults_have_lifecycle(no_abort)
    assert "abort of incomplete multipart uploads" in violation.message
    [violation] = rules.vaults_have_lifecycle(without(prod_resources, "backup-vault-lifecycle"))
    assert "an expiration in days and an abort" in violation.message


def test_prod_vault_without_replication_is_rejected(prod_resources: list[Resource]) -> None:
    [violation] = rules.primary_vaults_replicate(
        without(prod_resources, "vault-replication-configuration")
    )
    assert "does not replicate to the dr vault" in violation.message

    def disable(props: dict[str, Any]) -> None:
        props["rules"][0]["status"] = "Disabled"

    disabled = edit(prod_resources, "vault-replication-configuration", disable)
    assert len(rules.primary_vaults_replicate(disabled)) == 1

    def unencrypted(props: dict[str, Any]) -> None:
        del props["rules"][0]["destination"]["encryptionConfiguration"]

    assert (
        len(
            rules.primary_vaults_replicate(
                edit(prod_resources, "vault-replication-configuration", unencrypted)
            )
        )
        == 1
    )


def test_dr_vault_need_not_replicate(dr_resources: list[Resource]) -> None:
    assert not any(r.type in rules.REPLICATION for r in dr_resources)
    assert rules.primary_vaults_replicate(dr_resources) == []


def test_kms_key_rotation(prod_resources: list[Resource]) -> None:
    [key] = [r for r in prod_resources if r.type == rules.KMS_KEY and r.name == "vault-key-key"]
    assert rules.kms_key_rotates(key.type, key.props) == []
    assert rules.kms_key_rotates(key.type, {**key.props, "enableKeyRotation": False}) == [
        "KMS key does not rotate: set enable_key_rotation=True"
    ]
    assert (
        "cannot rotate"
        in rules.kms_key_rotates(key.type, {**key.props, "customerMasterKeySpec": "RSA_2048"})[0]
    )
    assert rules.kms_key_rotates(rules.KMS_REPLICA_KEY, {}) == []


# ---- the pulumi_policy wrappers, driven with pulumi_policy's own argument objects ------------


def _options() -> PolicyResourceOptions:
    return PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), [])


def _policy_resource(resource: Resource) -> PolicyResource:
    return PolicyResource(
        resource.type, resource.props, resource.urn, resource.name, _options(), None, None, [], {}
    )


def test_stack_wrapper_reports_each_violation_with_its_urn(
    prod_resources: list[Resource],
) -> None:
    reported: list[tuple[str, str | None]] = []
    validate = pack.stack_validator(rules.buckets_versioned)
    good = StackValidationArgs([_policy_resource(r) for r in prod_resources])
    validate(good, lambda message, urn=None: reported.append((message, urn)))
    assert reported == []
    bad = StackValidationArgs(
        [_policy_resource(r) for r in without(prod_resources, "backup-vault-versioning")]
    )
    validate(bad, lambda message, urn=None: reported.append((message, urn)))
    [(message, urn)] = reported
    assert "not versioned" in message and urn and urn.endswith("::backup-vault-bucket")


def test_resource_wrapper_reports_an_unrotated_key(prod_resources: list[Resource]) -> None:
    [key] = [r for r in prod_resources if r.type == rules.KMS_KEY and r.name == "vault-key-key"]
    reported: list[str] = []
    for props, expected in ((key.props, 0), ({**key.props, "enableKeyRotation": False}, 1)):
        args = ResourceValidationArgs(key.type, props, key.urn, key.name, _options(), None)
        pack.kms_validate(args, lambda message, urn=None: reported.append(message))
        assert len(reported) == expected


def test_pack_holds_every_rule_as_mandatory() -> None:
    from pulumi_policy import EnforcementLevel

    built = pack.policies()
    assert {p.name for p in built} == {
        *rules.STACK_RULES,
        *rules.RESOURCE_RULES,
        "kms-keys-rotate",
    }
    assert {p.enforcement_level for p in built} == {EnforcementLevel.MANDATORY}


# ---- data stores ------------------------------------------------------------------------------

AURORA_PRIMARY = "aurora-primary-cluster"
AURORA_SECONDARY = "aurora-secondary-cluster"


def _resource(resources: list[Resource], name: str) -> Resource:
    [found] = [r for r in resources if r.name == name]
    return found


@pytest.mark.parametrize(
    ("name", "check"),
    [(n, c) for n, (c, _) in rules.RESOURCE_RULES.items()],
    ids=list(rules.RESOURCE_RULES),
)
def test_every_resource_rule_accepts_what_the_components_produce(
    name: str,
    check: Callable[[str, Any], list[str]],
    prod_resources: list[Resource],
    dr_resources: list[Resource],
) -> None:
    checked = 0
    for resource in [*prod_resources, *dr_resources]:
        assert check(resource.type, resource.props) == [], (name, resource.name)
        checked += bool(check(resource.type, {}))
    assert checked >= 2, f"{name} saw no resource of its type in prod and dr"


def test_aurora_without_deletion_protection_or_30_days_is_rejected(
    prod_resources: list[Resource], dr_resources: list[Resource]
) -> None:
    for cluster in (
        _resource(prod_resources, AURORA_PRIMARY),
        _resource(dr_resources, AURORA_SECONDARY),
    ):
        unprotected = {**cluster.props, "deletionProtection": False}
        [problem] = rules.aurora_cluster_protected(cluster.type, unprotected)
        assert "deletion protection" in problem
        short = {**cluster.props, "backupRetentionPeriod": 7}
        [problem] = rules.aurora_cluster_protected(cluster.type, short)
        assert "7 days" in problem and "30" in problem
        plain = {**cluster.props, "kmsKeyId": None}
        [problem] = rules.aurora_cluster_protected(cluster.type, plain)
        assert "customer-managed" in problem


def test_msk_without_encryption_is_rejected(prod_resources: list[Resource]) -> None:
    [cluster] = [r for r in prod_resources if r.type == rules.MSK_CLUSTER]
    props = copy.deepcopy(dict(cluster.props))
    props["encryptionInfo"]["encryptionInTransit"]["clientBroker"] = "TLS_PLAINTEXT"
    [problem] = rules.msk_cluster_encrypted(cluster.type, props)
    assert "plaintext in transit" in problem
    props = copy.deepcopy(dict(cluster.props))
    del props["encryptionInfo"]["encryptionAtRestKmsKeyArn"]
    [problem] = rules.msk_cluster_encrypted(cluster.type, props)
    assert "at rest" in problem
    open_door = {**cluster.props, "clientAuthentication": {"unauthenticated": True}}
    assert "unauthenticated" in rules.msk_cluster_encrypted(cluster.type, open_door)[0]


def test_elasticache_without_encryption_is_rejected(dr_resources: list[Resource]) -> None:
    [group] = [r for r in dr_resources if r.type == rules.CACHE_GROUP]
    assert rules.elasticache_encrypted(group.type, group.props) == []
    problems = rules.elasticache_encrypted(
        group.type,
        {**group.props, "atRestEncryptionEnabled": False, "transitEncryptionEnabled": False},
    )
    assert [p.split(" is ")[1] for p in problems] == [
        "not encrypted at rest",
        "not encrypted in transit (TLS)",
    ]


def test_prod_store_without_standby_or_backup_is_rejected(prod_resources: list[Resource]) -> None:
    assert rules.primary_stores_protected(prod_resources) == []
    # The program's backup CronJobs are a backup schedule for every store; take them away to
    # see each standby judged on its own (test_a_backup_cronjob_is_a_backup_schedule puts one back).
    prod_resources = [r for r in prod_resources if r.type != rules.CRONJOB]
    assert rules.primary_stores_protected(prod_resources) == []
    # Aurora: out of the global cluster and without an AWS Backup selection
    orphan = without(
        edit(prod_resources, AURORA_PRIMARY, lambda p: p.update(globalClusterIdentifier=None)),
        "aws-backup-selection",
    )
    [violation] = rules.primary_stores_protected(orphan)
    assert AURORA_PRIMARY in violation.message and "trading-db" in violation.message
    # either protection alone is enough
    assert rules.primary_stores_protected(without(prod_resources, "aws-backup-selection")) == []
    # ElastiCache: no global datastore and no snapshots
    lonely_cache = edit(
        without(prod_resources, "cache-primary-global"),
        "cache-primary-group",
        lambda p: p.update(snapshotRetentionLimit=0),
    )
    [violation] = rules.primary_stores_protected(lonely_cache)
    assert "session-cache" in violation.message
    # MSK: no policy letting the replicator read it
    [violation] = rules.primary_stores_protected(without(prod_resources, "msk-replication-source"))
    assert "event-stream" in violation.message


def test_a_backup_cronjob_is_a_backup_schedule(prod_resources: list[Resource]) -> None:
    no_jobs = [r for r in prod_resources if r.type != rules.CRONJOB]
    unprotected = without(no_jobs, "msk-replication-source")
    assert rules.primary_stores_protected(unprotected) != []
    cronjob = Resource(
        rules.CRONJOB,
        "event-stream-backup",
        "urn:pulumi:prod::trading-dr::kubernetes:batch/v1:CronJob::event-stream-backup",
        {
            "metadata": {
                "labels": {
                    "app.kubernetes.io/component": "backup",
                    "app.kubernetes.io/instance": "event-stream",
                    "trading-dr/data-class": "trading-signals",
                }
            },
            "spec": {"schedule": "0 * * * *"},
        },
    )
    assert rules.primary_stores_protected([*unprotected, cronjob]) == []


def test_dr_stores_need_no_standby_of_their_own(dr_resources: list[Resource]) -> None:
    bare = [r for r in dr_resources if r.type not in (rules.BACKUP_SELECTION,)]
    assert rules.primary_stores_protected(bare) == []


def test_data_class_without_freshness_alarm_is_rejected(
    prod_resources: list[Resource], dr_resources: list[Resource]
) -> None:
    for resources in (prod_resources, dr_resources):
        assert rules.data_classes_have_freshness_alarms(resources) == []
    [violation] = rules.data_classes_have_freshness_alarms(
        without(prod_resources, "alarms-freshness-trading-db")
    )
    assert "'user-data'" in violation.message
    lenient = edit(
        dr_resources,
        "alarms-freshness-session-cache",
        lambda p: p.update(treatMissingData="notBreaching"),
    )
    [violation] = rules.data_classes_have_freshness_alarms(lenient)
    assert "'market-data'" in violation.message


def test_a_cronjob_data_class_needs_its_freshness_alarm(prod_resources: list[Resource]) -> None:
    cronjob = Resource(
        rules.CRONJOB,
        "logs-backup",
        "urn:pulumi:prod::trading-dr::kubernetes:batch/v1:CronJob::logs-backup",
        {"metadata": {"labels": {"trading-dr/data-class": "monitoring-logs"}}, "spec": {}},
    )
    [violation] = rules.data_classes_have_freshness_alarms([*prod_resources, cronjob])
    assert "'monitoring-logs'" in violation.message and "logs-backup" in violation.message


def test_resource_wrappers_report_data_store_problems(prod_resources: list[Resource]) -> None:
    cluster = _resource(prod_resources, AURORA_PRIMARY)
    reported: list[str] = []
    validate = pack.resource_validator(rules.aurora_cluster_protected)
    for props, expected in (
        (cluster.props, 0),
        ({**cluster.props, "deletionProtection": False}, 1),
    ):
        args = ResourceValidationArgs(
            cluster.type, props, cluster.urn, cluster.name, _options(), None
        )
        validate(args, lambda message, urn=None: reported.append(message))
        assert len(reported) == expected
