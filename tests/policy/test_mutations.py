"""Mutation tests: each weakening of issue 19, applied alone to the real prod or dr program, must
fail the whole pack with a violation that names the setting and the floor.

The programs run once per session under the mocks (``conftest``); a mutation edits one recorded
resource's properties. That is faithful: the pack sees nothing of a resource but its type, name,
URN and properties, so a program that set the weaker value would hand it exactly this. Two
mutations go through the real program instead, because the weakening is in the stack config
(which also sets the floors): the vault replication switched off, and the financial retention
class weakened in ``Pulumi.prod.yaml`` itself (the seed's absolute floor catches it).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from policy_harness import as_policy_resources
from program_harness import config_variant, run_stack

from policy.floors import Floors
from policy.registry import evaluate
from policy.rules import Resource

pytestmark = pytest.mark.policy

Change = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class Mutation:
    id: str
    stack: str
    resource: str
    change: Change
    policy: str
    says: tuple[str, ...]
    """What the violation's message must name: the setting, the value found, the floor."""
    flagged: str | None = None
    """The resource the violation names, if not the mutated one."""


def setting(path: str, value: Any) -> Change:
    """Set a dotted path (list indexes allowed) to ``value``; ``None`` deletes it."""

    def change(props: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = props
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        if value is None:
            if isinstance(node, list):
                del node[int(last)]
            else:
                node.pop(last, None)
        elif isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value

    return change


def every_rule(change: Callable[[dict[str, Any]], None], key: str = "rules") -> Change:
    def apply(props: dict[str, Any]) -> None:
        for rule in props[key]:
            change(rule)

    return apply


def in_policy(change: Callable[[list[dict[str, Any]]], None], key: str = "policy") -> Change:
    """Edit the statements of a JSON policy document held in ``props[key]``."""

    def apply(props: dict[str, Any]) -> None:
        document = json.loads(props[key])
        change(document["Statement"])
        props[key] = json.dumps(document)

    return apply


def drop_statement(sid: str) -> Change:
    def change(statements: list[dict[str, Any]]) -> None:
        statements[:] = [s for s in statements if s.get("Sid") != sid]

    return in_policy(change)


def add_statement(statement: dict[str, Any]) -> Change:
    return in_policy(lambda statements: statements.append(statement))


def rule_with_id(rule_id: str, change: Callable[[dict[str, Any]], None]) -> Change:
    def apply(props: dict[str, Any]) -> None:
        [rule] = [r for r in props["rules"] if r.get("id") == rule_id]
        change(rule)

    return apply


def expire_after(days: int) -> Callable[[dict[str, Any]], None]:
    def change(rule: dict[str, Any]) -> None:
        if (rule.get("expiration") or {}).get("days"):
            rule["expiration"]["days"] = days

    return change


def container(path: str, value: Any) -> Change:
    return setting(f"spec.jobTemplate.spec.template.spec.containers.0.{path}", value)


def inline_password(props: dict[str, Any]) -> None:
    env = props["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["env"]
    [password] = [e for e in env if e["name"] == "DRKIT_TRADING_DB_PASSWORD"]
    password.pop("valueFrom")
    password["value"] = "hunter2-in-the-manifest"


ACCOUNT_ROOT = "arn:aws:iam::123456789012:root"
OPERATOR = "arn:aws:iam::123456789012:role/dr-operator"
VAULT_OBJECTS = "arn:aws:s3:::aipx-backup-vault-123456789012-us-east-1/*"
AUDIT_OBJECTS = "arn:aws:s3:::aipx-audit-123456789012-us-east-1/*"
LOGS_BUCKET = "arn:aws:s3:::aipx-access-logs-123456789012-us-east-1"
REPLICATION_DESTINATION = "rules.0.destination"
SOURCE_REGION_KEY = "arn:aws:kms:us-east-1:123456789012:key/mrk-088a7df2a1fea390a56dfb2423efff9f"
BACKUP_CRONJOB = "backup-jobs-trading-db"


def grant(sid: str, action: str | list[str], principal: str, resource: str) -> dict[str, Any]:
    return {
        "Sid": sid,
        "Effect": "Allow",
        "Principal": {"AWS": principal},
        "Action": action,
        "Resource": resource,
    }


MUTATIONS = [
    # Object Lock: the bucket default and each class's prefix
    Mutation(
        "vault-lock-governance-1-day",
        "prod",
        "backup-vault-object-lock",
        setting("rule.defaultRetention", {"mode": "GOVERNANCE", "days": 1}),
        "object-lock-meets-retention",
        ("mode is GOVERNANCE", "floor: COMPLIANCE", "'financial'"),
    ),
    Mutation(
        "vault-lock-30-days",
        "dr",
        "backup-vault-object-lock",
        setting("rule.defaultRetention.days", 30),
        "object-lock-meets-retention",
        ("default retention is 30 days", "floor: 2555 days", "'financial'"),
    ),
    Mutation(
        "vault-lock-1-year",
        "dr",
        "backup-vault-object-lock",
        setting("rule.defaultRetention", {"mode": "COMPLIANCE", "years": 1}),
        "object-lock-meets-retention",
        ("is 365 days", "floor: 2555 days"),
    ),
    Mutation(
        "class-prefix-lock-days-dropped",
        "prod",
        "backup-vault-policy",
        drop_statement("ClassTradingSignalsLockDays"),
        "object-lock-meets-retention",
        ("'trading-signals/'", "floor: 2555 days"),
    ),
    Mutation(
        "class-prefix-lock-days-shortened",
        "prod",
        "backup-vault-policy",
        in_policy(
            lambda statements: [
                s["Condition"]["NumericLessThan"].update(
                    {"s3:object-lock-remaining-retention-days": "1"}
                )
                for s in statements
                if s.get("Sid") == "ClassAppConfigLockDays"
            ]
        ),
        "object-lock-meets-retention",
        ("'app-config/'", "locked for less than 1 day", "floor: 1095 days"),
    ),
    Mutation(
        "class-prefix-lock-mode-dropped",
        "dr",
        "backup-vault-policy",
        drop_statement("ClassUserDataLockMode"),
        "object-lock-meets-retention",
        ("'user-data/'", "other than COMPLIANCE", "floor: COMPLIANCE"),
    ),
    Mutation(
        "audit-lock-30-days",
        "prod",
        "audit-object-lock",
        setting("rule.defaultRetention.days", 30),
        "object-lock-meets-retention",
        ("default retention is 30 days", "floor: 1095 days", "audit journal"),
    ),
    # the audit journal: COMPLIANCE for the seed's 3 years, whatever the config says
    Mutation(
        "audit-lock-governance",
        "prod",
        "audit-object-lock",
        setting("rule.defaultRetention.mode", "GOVERNANCE"),
        "audit-journal-locked",
        ("mode is GOVERNANCE", "floor: COMPLIANCE", "audit journal", "3 years"),
    ),
    Mutation(
        "audit-lock-1-year",
        "dr",
        "audit-object-lock",
        setting("rule.defaultRetention", {"mode": "COMPLIANCE", "years": 1}),
        "audit-journal-locked",
        ("is 365 days", "floor: 1095 days", "audit journal"),
    ),
    Mutation(
        "audit-bucket-without-object-lock",
        "prod",
        "audit-bucket",
        setting("objectLockEnabled", None),
        "audit-journal-locked",
        ("Object Lock is not enabled", "floor: COMPLIANCE 1095 days"),
    ),
    # lifecycle: expiry before retention, tiers out of order
    Mutation(
        "every-vault-expiry-1-day",
        "prod",
        "backup-vault-lifecycle",
        every_rule(expire_after(1)),
        "lifecycle-keeps-retention",
        ("'class-trading-signals'", "after 1 day;", "floor: 2555 days"),
    ),
    Mutation(
        "class-expiry-a-day-short",
        "dr",
        "backup-vault-lifecycle",
        rule_with_id("class-app-config", expire_after(1094)),
        "lifecycle-keeps-retention",
        ("'class-app-config'", "1094 days", "floor: 1095 days"),
    ),
    Mutation(
        "catalog-expiry-30-days",
        "prod",
        "backup-vault-lifecycle",
        rule_with_id("catalog", expire_after(30)),
        "lifecycle-keeps-retention",
        ("'catalog'", "30 days", "floor: 2555 days"),
    ),
    Mutation(
        "bucket-wide-expiry-added",
        "prod",
        "backup-vault-lifecycle",
        rule_with_id("housekeeping", setting("expiration", {"days": 7})),
        "lifecycle-keeps-retention",
        ("'housekeeping'", "'every object'", "7 days", "floor:"),
    ),
    Mutation(
        "tiers-reordered",
        "prod",
        "backup-vault-lifecycle",
        rule_with_id(
            "class-user-data",
            setting(
                "transitions",
                [
                    {"storageClass": "GLACIER", "days": 90},
                    {"storageClass": "STANDARD_IA", "days": 120},
                ],
            ),
        ),
        "lifecycle-keeps-retention",
        ("'class-user-data'", "out of the first seed's tier order", "STANDARD_IA 30"),
    ),
    Mutation(
        "glacier-after-a-week",
        "dr",
        "backup-vault-lifecycle",
        rule_with_id("class-market-data", setting("transitions.1.days", 7)),
        "lifecycle-keeps-retention",
        ("GLACIER after 7 days", "floor: 90 days"),
    ),
    Mutation(
        "deep-archive-for-a-class-without-it",
        "prod",
        "backup-vault-lifecycle",
        rule_with_id(
            "class-monitoring-logs",
            lambda rule: rule["transitions"].append({"storageClass": "DEEP_ARCHIVE", "days": 180}),
        ),
        "lifecycle-keeps-retention",
        ("DEEP_ARCHIVE", "floor: no DEEP_ARCHIVE tier", "'monitoring-logs'"),
    ),
    Mutation(
        "audit-expiry-1-day",
        "dr",
        "audit-lifecycle",
        every_rule(expire_after(1)),
        "lifecycle-keeps-retention",
        ("'journal-retention'", "after 1 day;", "floor: 1095 days"),
    ),
    Mutation(
        "access-logs-expiry-30-days",
        "prod",
        "access-logs-lifecycle",
        every_rule(expire_after(30)),
        "lifecycle-keeps-retention",
        ("after 30 days", "floor: 365 days"),
    ),
    # replication
    Mutation(
        "replication-without-rtc",
        "prod",
        "vault-replication-configuration",
        setting(f"{REPLICATION_DESTINATION}.replicationTime", None),
        "replication-timely-and-safe",
        ("Replication Time Control is unset", "floor: Enabled, 15 minutes"),
    ),
    Mutation(
        "replication-without-metrics",
        "prod",
        "vault-replication-configuration",
        setting(f"{REPLICATION_DESTINATION}.metrics.status", "Disabled"),
        "replication-timely-and-safe",
        ("replication metrics are Disabled", "floor: Enabled"),
    ),
    Mutation(
        "delete-marker-replication-on",
        "prod",
        "vault-replication-configuration",
        setting("rules.0.deleteMarkerReplication.status", "Enabled"),
        "replication-timely-and-safe",
        ("delete-marker replication is Enabled", "floor: Disabled"),
    ),
    Mutation(
        "replica-under-the-source-region-key",
        "prod",
        "vault-replication-configuration",
        setting(
            f"{REPLICATION_DESTINATION}.encryptionConfiguration.replicaKmsKeyId", SOURCE_REGION_KEY
        ),
        "replication-timely-and-safe",
        (SOURCE_REGION_KEY, "floor: the vault key's replica in us-west-2"),
    ),
    Mutation(
        "replica-not-re-encrypted",
        "prod",
        "vault-replication-configuration",
        setting(f"{REPLICATION_DESTINATION}.encryptionConfiguration", None),
        "replication-timely-and-safe",
        ("no replica key", "floor: the vault key's replica"),
    ),
    Mutation(
        "kms-objects-not-replicated",
        "prod",
        "vault-replication-configuration",
        setting("rules.0.sourceSelectionCriteria.sseKmsEncryptedObjects.status", "Disabled"),
        "replication-timely-and-safe",
        ("SSE-KMS objects are Disabled", "floor: Enabled"),
    ),
    # keys
    Mutation(
        "vault-key-rotation-off",
        "prod",
        "vault-key-key",
        setting("enableKeyRotation", False),
        "kms-keys-hardened",
        ("enableKeyRotation is False", "floor: true"),
    ),
    Mutation(
        "data-key-deletion-window-7",
        "dr",
        "data-key-key",
        setting("deletionWindowInDays", 7),
        "kms-keys-hardened",
        ("deletionWindowInDays is 7", "floor: 30"),
    ),
    Mutation(
        "replica-key-deletion-window-7",
        "dr",
        "vault-key-replica",
        setting("deletionWindowInDays", 7),
        "kms-keys-hardened",
        ("deletionWindowInDays is 7", "floor: 30"),
    ),
    Mutation(
        "key-policy-kms-star-to-account-root",
        "prod",
        "vault-key-key",
        add_statement(grant("EnableRootAccess", "kms:*", ACCOUNT_ROOT, "*")),
        "kms-keys-hardened",
        ("'EnableRootAccess'", "grants kms:*", ACCOUNT_ROOT, "floor: only administrators"),
    ),
    Mutation(
        "key-policy-operator-may-delete",
        "prod",
        "data-key-key",
        add_statement(grant("OperatorDeletes", "kms:ScheduleKeyDeletion", OPERATOR, "*")),
        "kms-keys-hardened",
        ("grants kms:ScheduleKeyDeletion", OPERATOR, "break-glass 'break-glass'"),
    ),
    Mutation(
        "gcs-key-rotates-yearly",
        "prod",
        "gcs-mirror-key",
        setting("rotationPeriod", "31536000s"),
        "kms-keys-hardened",
        ("rotationPeriod is 31536000s", "floor: 7776000s"),
    ),
    # Aurora
    Mutation(
        "aurora-deletion-protection-off",
        "prod",
        "aurora-primary-cluster",
        setting("deletionProtection", False),
        "aurora-clusters-protected",
        ("deletionProtection is False", "floor: true"),
    ),
    Mutation(
        "aurora-backups-7-days",
        "dr",
        "aurora-secondary-cluster",
        setting("backupRetentionPeriod", 7),
        "aurora-clusters-protected",
        ("backupRetentionPeriod is 7 days", "floor: 30 days"),
    ),
    Mutation(
        "aurora-unencrypted",
        "prod",
        "aurora-primary-cluster",
        setting("storageEncrypted", False),
        "aurora-clusters-protected",
        ("storageEncrypted is False", "floor: true"),
    ),
    # AWS Backup Vault Lock
    Mutation(
        "backup-lock-7-days-minimum",
        "prod",
        "aws-backup-vault-lock",
        setting("minRetentionDays", 7),
        "backup-vault-locked",
        ("minRetentionDays is 7 days", "floor: 90 days"),
    ),
    Mutation(
        "backup-lock-shorter-than-the-class",
        "dr",
        "aws-backup-vault-lock",
        setting("maxRetentionDays", 365),
        "backup-vault-locked",
        ("maxRetentionDays is 365 days", "floor: 2555 days", "'financial'"),
    ),
    Mutation(
        "backup-lock-changeable",
        "prod",
        "aws-backup-vault-lock",
        setting("changeableForDays", None),
        "backup-vault-locked",
        ("changeableForDays is unset", "floor: a cooling-off of 3+ days"),
    ),
    # bucket policies
    Mutation(
        "vault-allows-plain-http",
        "prod",
        "backup-vault-policy",
        drop_statement("DenyInsecureTransport"),
        "bucket-policies-strict",
        ("aws:SecureTransport false", "floor: a Deny"),
    ),
    Mutation(
        "audit-deletable-by-operators",
        "dr",
        "audit-policy",
        add_statement(
            grant(
                "OperatorsTidyUp",
                "s3:DeleteObject*",
                OPERATOR,
                AUDIT_OBJECTS.replace("us-east-1", "us-west-2"),
            )
        ),
        "bucket-policies-strict",
        ("'OperatorsTidyUp'", "s3:DeleteObjectVersion", OPERATOR, "floor: only break-glass"),
    ),
    Mutation(
        "logs-policy-replaceable-by-root",
        "prod",
        "access-logs-policy",
        add_statement(grant("RootManages", "s3:PutBucketPolicy", ACCOUNT_ROOT, LOGS_BUCKET)),
        "bucket-policies-strict",
        ("s3:PutBucketPolicy", ACCOUNT_ROOT, "floor: only break-glass"),
    ),
    Mutation(
        "vault-retention-bypass-for-operators",
        "prod",
        "backup-vault-policy",
        add_statement(
            grant(
                "OperatorsShortenLocks",
                ["s3:PutObjectRetention", "s3:BypassGovernanceRetention"],
                OPERATOR,
                VAULT_OBJECTS,
            )
        ),
        "bucket-policies-strict",
        ("s3:BypassGovernanceRetention", OPERATOR, "floor: only break-glass"),
    ),
    # GCS mirror
    Mutation(
        "gcs-retention-1-day",
        "prod",
        "gcs-mirror-bucket",
        setting("retentionPolicy.retentionPeriod", "86400"),
        "gcs-mirror-retained",
        ("retentionPeriod is 86400s", "floor: 31536000s", "'system'"),
    ),
    Mutation(
        "gcs-retention-unlocked",
        "prod",
        "gcs-mirror-bucket",
        setting("retentionPolicy.isLocked", False),
        "gcs-mirror-retained",
        ("isLocked is False", "floor: true"),
    ),
    Mutation(
        "gcs-deletes-financial-after-a-year",
        "prod",
        "gcs-mirror-bucket",
        setting("lifecycleRules.3.condition.age", 365),
        "gcs-mirror-retained",
        ("['trading-signals/']", "after 365 days", "floor: 2555 days"),
    ),
    # MSK and ElastiCache
    Mutation(
        "msk-plaintext-clients",
        "prod",
        "msk-cluster",
        setting("encryptionInfo.encryptionInTransit.clientBroker", "TLS_PLAINTEXT"),
        "msk-clusters-encrypted",
        ("clientBroker is TLS_PLAINTEXT", "floor: TLS"),
    ),
    Mutation(
        "msk-unencrypted-at-rest",
        "dr",
        "msk-cluster",
        setting("encryptionInfo.encryptionAtRestKmsKeyArn", None),
        "msk-clusters-encrypted",
        ("encryptionAtRestKmsKeyArn is unset", "floor: a customer-managed KMS key"),
    ),
    Mutation(
        "elasticache-unencrypted-at-rest",
        "dr",
        "cache-secondary-group",
        setting("atRestEncryptionEnabled", False),
        "elasticache-encrypted",
        ("atRestEncryptionEnabled is False", "floor: true"),
    ),
    Mutation(
        "elasticache-plaintext-clients",
        "prod",
        "cache-primary-group",
        setting("transitEncryptionMode", "preferred"),
        "elasticache-encrypted",
        ("transitEncryptionMode is 'preferred'", "floor: 'required'"),
    ),
    # CronJobs
    Mutation(
        "cronjob-concurrent-runs",
        "prod",
        BACKUP_CRONJOB,
        setting("spec.concurrencyPolicy", "Allow"),
        "cronjobs-safe",
        ("concurrencyPolicy is Allow", "floor: Forbid"),
    ),
    Mutation(
        "cronjob-as-root",
        "dr",
        BACKUP_CRONJOB,
        container("securityContext.runAsUser", 0),
        "cronjobs-safe",
        ("runs as root", "runAsUser 0", "floor: runAsNonRoot true"),
    ),
    Mutation(
        "cronjob-inline-secret",
        "prod",
        BACKUP_CRONJOB,
        inline_password,
        "cronjobs-safe",
        ("'DRKIT_TRADING_DB_PASSWORD' holds an inline value", "floor: valueFrom a Secret"),
    ),
]


def mutate(resources: list[Resource], name: str, change: Change) -> list[Resource]:
    [target] = [r for r in resources if r.name == name]
    props = copy.deepcopy(dict(target.props))
    change(props)
    return [Resource(r.type, r.name, r.urn, props) if r is target else r for r in resources]


def test_there_are_enough_mutations() -> None:
    assert len(MUTATIONS) >= 25
    assert len({m.id for m in MUTATIONS}) == len(MUTATIONS)


def test_unmutated_stacks_pass_the_whole_pack(
    prod_resources: list[Resource],
    dr_resources: list[Resource],
    prod_floors: Floors,
    dr_floors: Floors,
) -> None:
    assert evaluate(prod_resources, prod_floors) == []
    assert evaluate(dr_resources, dr_floors) == []


@pytest.mark.parametrize("mutation", MUTATIONS, ids=[m.id for m in MUTATIONS])
def test_each_weakening_fails_the_pack(
    mutation: Mutation,
    prod_resources: list[Resource],
    dr_resources: list[Resource],
    prod_floors: Floors,
    dr_floors: Floors,
) -> None:
    resources, floors = (
        (prod_resources, prod_floors) if mutation.stack == "prod" else (dr_resources, dr_floors)
    )
    violations = evaluate(mutate(resources, mutation.resource, mutation.change), floors)
    named = [
        (policy, v)
        for policy, v in violations
        if policy == mutation.policy and v.subject == (mutation.flagged or mutation.resource)
    ]
    messages = [v.message for _, v in named]
    assert any(all(part in m for part in mutation.says) for m in messages), (
        f"{mutation.id}: no {mutation.policy} violation of {mutation.resource} saying "
        f"{mutation.says}; got {[(p, v.subject, v.message) for p, v in violations]}"
    )


def test_vault_replication_switched_off_in_config_fails(
    prod_resources: list[Resource], prod_floors: Floors
) -> None:
    run = run_stack("prod", config=config_variant("prod", replicate_vault=False))
    violations = evaluate(as_policy_resources(run), prod_floors)
    assert [(p, v.subject) for p, v in violations] == [
        ("prod-vaults-replicate-to-dr", "backup-vault-bucket")
    ]


def test_retention_class_weakened_in_config_fails_on_the_seed_floor() -> None:
    weakened = config_variant(
        "prod",
        retention_classes={
            "financial": {"days": 400, "object_lock": "governance"},
            "audit": {"days": 1095, "object_lock": "governance"},
            "system": {"days": 365, "object_lock": "governance"},
        },
    )
    run = run_stack("prod", config=weakened)
    violations = evaluate(as_policy_resources(run), Floors.from_config("prod", weakened))
    lock = [v.message for p, v in violations if v.subject == "backup-vault-object-lock"]
    assert any("floor: COMPLIANCE" in m for m in lock), violations
    assert any("is 1095 days; floor: 2555 days" in m for m in lock), violations
    assert {p for p, _ in violations} == {
        "object-lock-meets-retention",
        "audit-journal-locked",
        "lifecycle-keeps-retention",
        "backup-vault-locked",
        "gcs-mirror-retained",
    }


def test_audit_class_weakened_in_config_fails_on_the_absolute_floor() -> None:
    """A PR that makes the audit class GOVERNANCE for 400 days in ``Pulumi.prod.yaml`` (which also
    sets the floors the config-relative rules compare with) still fails: the journal's floor is
    absolute."""
    weakened = config_variant(
        "prod",
        retention_classes={
            "financial": {"days": 2555, "object_lock": "compliance"},
            "audit": {"days": 400, "object_lock": "governance"},
            "system": {"days": 365, "object_lock": "governance"},
        },
    )
    run = run_stack("prod", config=weakened)
    violations = evaluate(as_policy_resources(run), Floors.from_config("prod", weakened))
    journal = [v.message for p, v in violations if p == "audit-journal-locked"]
    assert any("mode is GOVERNANCE; floor: COMPLIANCE" in m for m in journal), violations
    assert any("is 400 days; floor: 1095 days" in m for m in journal), violations
