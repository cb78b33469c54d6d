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
    ResourceValidationPolicy,
    StackValidationArgs,
)

from policy import pack, registry, rules, strength
from policy.floors import Floors
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


def test_kms_key_rotation(prod_resources: list[Resource], prod_floors: Floors) -> None:
    key = _resource(prod_resources, "vault-key-key")
    assert strength.key_is_hardened(key, prod_floors) == []
    [violation] = strength.key_is_hardened(_with(key, enableKeyRotation=False), prod_floors)
    assert violation.message == "enableKeyRotation is False; floor: true"
    assert violation.resource == "vault-key-key" and violation.urn == key.urn
    [violation] = strength.key_is_hardened(
        _with(key, customerMasterKeySpec="RSA_2048"), prod_floors
    )
    assert "cannot rotate" in violation.message


def _with(resource: Resource, **props: Any) -> Resource:
    return Resource(resource.type, resource.name, resource.urn, {**resource.props, **props})


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
    validate = pack.stack_validator(registry.RULES[0].check)
    assert registry.RULES[0].name == "buckets-versioned"
    good = StackValidationArgs([_policy_resource(r) for r in prod_resources])
    validate(good, lambda message, urn=None: reported.append((message, urn)))
    assert reported == []
    bad = StackValidationArgs(
        [_policy_resource(r) for r in without(prod_resources, "backup-vault-versioning")]
    )
    validate(bad, lambda message, urn=None: reported.append((message, urn)))
    [(message, urn)] = reported
    assert "not versioned" in message and urn and urn.endswith("::backup-vault-bucket")


def test_stack_wrapper_reports_a_stack_without_config(prod_resources: list[Resource]) -> None:
    reported: list[str] = []
    validate = pack.stack_validator(registry.RULES[0].check)
    elsewhere = [
        Resource(r.type, r.name, r.urn.replace("urn:pulumi:prod::", "urn:pulumi:nope::"), r.props)
        for r in prod_resources
    ]
    validate(
        StackValidationArgs([_policy_resource(r) for r in elsewhere]),
        lambda message, urn=None: reported.append(message),
    )
    [message] = reported
    assert "no floors for stack 'nope'" in message and "file not found" in message


def test_resource_wrapper_reports_an_unrotated_key(prod_resources: list[Resource]) -> None:
    key = _resource(prod_resources, "vault-key-key")
    reported: list[str] = []
    [rule] = [r for r in registry.RULES if r.name == "kms-keys-hardened"]
    assert rule.per_resource is not None
    validate = pack.resource_validator(rule.per_resource)
    for props, expected in ((key.props, 0), ({**key.props, "enableKeyRotation": False}, 1)):
        args = ResourceValidationArgs(key.type, props, key.urn, key.name, _options(), None)
        validate(args, lambda message, urn=None: reported.append(message))
        assert len(reported) == expected


def test_pack_holds_every_rule_as_mandatory() -> None:
    from pulumi_policy import EnforcementLevel

    built = pack.policies()
    assert [p.name for p in built] == [rule.name for rule in registry.RULES]
    assert len({p.name for p in built}) == len(built)
    assert {p.enforcement_level for p in built} == {EnforcementLevel.MANDATORY}
    per_resource = {p.name for p in built if isinstance(p, ResourceValidationPolicy)}
    assert per_resource == {r.name for r in registry.RULES if r.per_resource is not None}


# ---- data stores ------------------------------------------------------------------------------

AURORA_PRIMARY = "aurora-primary-cluster"
AURORA_SECONDARY = "aurora-secondary-cluster"


def _resource(resources: list[Resource], name: str) -> Resource:
    [found] = [r for r in resources if r.name == name]
    return found


@pytest.mark.parametrize(
    "rule",
    [r for r in registry.RULES if r.per_resource is not None],
    ids=[r.name for r in registry.RULES if r.per_resource is not None],
)
def test_every_resource_rule_accepts_what_the_components_produce(
    rule: registry.Rule,
    prod_resources: list[Resource],
    dr_resources: list[Resource],
    prod_floors: Floors,
    dr_floors: Floors,
) -> None:
    assert rule.per_resource is not None
    checked = 0
    for resources, floors in ((prod_resources, prod_floors), (dr_resources, dr_floors)):
        for resource in resources:
            assert rule.per_resource(resource, floors) == [], (rule.name, resource.name)
            empty = Resource(resource.type, resource.name, resource.urn, {})
            checked += bool(rule.per_resource(empty, floors))
    assert checked >= 2, f"{rule.name} saw no resource of its type in prod and dr"


def test_aurora_without_deletion_protection_or_30_days_is_rejected(
    prod_resources: list[Resource],
    dr_resources: list[Resource],
    prod_floors: Floors,
) -> None:
    for cluster in (
        _resource(prod_resources, AURORA_PRIMARY),
        _resource(dr_resources, AURORA_SECONDARY),
    ):
        [problem] = strength.aurora_is_protected(
            _with(cluster, deletionProtection=False), prod_floors
        )
        assert problem.message == "deletionProtection is False; floor: true"
        [problem] = strength.aurora_is_protected(
            _with(cluster, backupRetentionPeriod=7), prod_floors
        )
        assert "backupRetentionPeriod is 7 days; floor: 30 days" in problem.message
        [problem] = strength.aurora_is_protected(_with(cluster, kmsKeyId=None), prod_floors)
        assert "customer-managed" in problem.message


def test_msk_without_encryption_is_rejected(
    prod_resources: list[Resource], prod_floors: Floors
) -> None:
    [cluster] = [r for r in prod_resources if r.type == rules.MSK_CLUSTER]
    props = copy.deepcopy(dict(cluster.props))
    props["encryptionInfo"]["encryptionInTransit"]["clientBroker"] = "TLS_PLAINTEXT"
    [problem] = strength.msk_is_encrypted(_with(cluster, **props), prod_floors)
    assert "clientBroker is TLS_PLAINTEXT; floor: TLS" in problem.message
    props = copy.deepcopy(dict(cluster.props))
    del props["encryptionInfo"]["encryptionAtRestKmsKeyArn"]
    [problem] = strength.msk_is_encrypted(
        Resource(cluster.type, cluster.name, cluster.urn, props), prod_floors
    )
    assert "encryptionAtRestKmsKeyArn is unset" in problem.message
    open_door = _with(cluster, clientAuthentication={"unauthenticated": True})
    assert "unauthenticated" in strength.msk_is_encrypted(open_door, prod_floors)[0].message


def test_elasticache_without_encryption_is_rejected(
    dr_resources: list[Resource], dr_floors: Floors
) -> None:
    [group] = [r for r in dr_resources if r.type == rules.CACHE_GROUP]
    assert strength.elasticache_is_encrypted(group, dr_floors) == []
    problems = strength.elasticache_is_encrypted(
        _with(
            group,
            atRestEncryptionEnabled=False,
            transitEncryptionEnabled=False,
            transitEncryptionMode="preferred",
        ),
        dr_floors,
    )
    assert [p.message.split(";")[0] for p in problems] == [
        "atRestEncryptionEnabled is False",
        "transitEncryptionEnabled is False",
        "transitEncryptionMode is 'preferred'",
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
    validate = pack.resource_validator(strength.aurora_is_protected)
    for props, expected in (
        (cluster.props, 0),
        ({**cluster.props, "deletionProtection": False}, 1),
    ):
        args = ResourceValidationArgs(
            cluster.type, props, cluster.urn, cluster.name, _options(), None
        )
        validate(args, lambda message, urn=None: reported.append(message))
        assert len(reported) == expected
