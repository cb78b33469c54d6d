"""The one rule set: what the CrossGuard pack enforces and ``python -m policy check`` evaluates.

A ``Rule`` is a name, a description and a check over the whole stack with its floors. Rules over
one resource at a time (``per_resource``) are also run by CrossGuard as resource policies, each
resource as the engine registers it; the check itself is the same function either way.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from policy import isolated, rules, strength
from policy.floors import Floors
from policy.rules import Resource, Violation

StackCheck = Callable[[Sequence[Resource], Floors], list[Violation]]
ResourceCheck = Callable[[Resource, Floors], list[Violation]]


@dataclass(frozen=True)
class Rule:
    name: str
    description: str
    check: StackCheck
    per_resource: ResourceCheck | None = None
    """Set for a rule that looks at one resource at a time (``check`` maps it over the stack)."""


def _without_floors(check: Callable[[Sequence[Resource]], list[Violation]]) -> StackCheck:
    def run(resources: Sequence[Resource], floors: Floors) -> list[Violation]:
        return check(resources)

    return run


def _each(check: ResourceCheck) -> StackCheck:
    def run(resources: Sequence[Resource], floors: Floors) -> list[Violation]:
        return [v for resource in resources for v in check(resource, floors)]

    return run


def _resource_rule(name: str, description: str, check: ResourceCheck) -> Rule:
    return Rule(name, description, _each(check), check)


RULES: tuple[Rule, ...] = (
    *(
        Rule(name, description, _without_floors(check))
        for name, (check, description) in rules.STACK_RULES.items()
    ),
    Rule(
        "object-lock-meets-retention",
        "Vault and journal Object Lock: default retention and per-class prefixes at least as "
        "strong and long as the retention class.",
        strength.object_lock_meets_retention,
    ),
    Rule(
        "audit-journal-locked",
        "The audit bucket is created with Object Lock, COMPLIANCE for 3 years at least (the "
        "first seed's audit logs), whatever the config says.",
        strength.audit_journal_locked,
    ),
    Rule(
        "lifecycle-keeps-retention",
        "No lifecycle expiry before the retention class; tiers in the seed's order, no earlier "
        "than the data class's.",
        strength.lifecycle_keeps_retention,
    ),
    Rule(
        "replication-timely-and-safe",
        "Vault replication with RTC and metrics, no delete markers, re-encrypted with the "
        "replica key.",
        strength.replication_is_timely_and_safe,
    ),
    Rule(
        "backup-vault-locked",
        "AWS Backup vaults are locked no shorter than the regulated class, immutable after a "
        "cooling-off.",
        strength.backup_vault_locked,
    ),
    Rule(
        "bucket-policies-strict",
        "Bucket policies deny non-TLS and allow deletes, policy changes and lock bypass to "
        "break-glass only.",
        strength.bucket_policies_are_strict,
    ),
    Rule(
        "isolated-vault-grants-only-writes",
        "A vault stack (the isolated backup account) grants other accounts only creates under "
        "the writers' prefixes and encryption with its key, and denies them every delete, "
        "retention, policy or lock change, and every overwrite.",
        isolated.isolated_vault_grants_only_writes,
    ),
    Rule(
        "gcs-mirror-retained",
        "The GCS mirror's retention is locked and covers the shortest class; no class deleted "
        "early.",
        strength.gcs_mirror_retained,
    ),
    _resource_rule(
        "kms-keys-hardened",
        "KMS keys rotate, keep a 30-day deletion window, and only administrators and "
        "break-glass may delete them.",
        strength.key_is_hardened,
    ),
    _resource_rule(
        "aurora-clusters-protected",
        "Aurora clusters have deletion protection, the configured (30+) days of backups and a "
        "customer key.",
        strength.aurora_is_protected,
    ),
    _resource_rule(
        "msk-clusters-encrypted",
        "MSK clusters are encrypted at rest (customer key) and in transit (TLS).",
        strength.msk_is_encrypted,
    ),
    _resource_rule(
        "elasticache-encrypted",
        "ElastiCache replication groups are encrypted at rest and in transit (TLS required).",
        strength.elasticache_is_encrypted,
    ),
    _resource_rule(
        "cronjobs-safe",
        "CronJobs forbid concurrent runs, never run as root, and take secrets by reference.",
        strength.cronjob_is_safe,
    ),
)


def evaluate(resources: Sequence[Resource], floors: Floors) -> list[tuple[str, Violation]]:
    """Every violation of the whole rule set, as (rule name, violation), in rule order."""
    return [(rule.name, v) for rule in RULES for v in rule.check(resources, floors)]
