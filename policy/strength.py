"""Rules with floors: a setting must exist *and* be at least as strong as the floor.

Each function takes the stack's resources and its ``Floors`` and returns violations that name the
resource, the setting, the value found and the floor. They read resource properties the way the
engine hands them to a policy pack (camelCase, as the mocks record them too).
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from policy.floors import (
    AUDIT_JOURNAL_DAYS,
    AUDIT_JOURNAL_MODE,
    LOCK_STRENGTH,
    MIN_BACKUP_LOCK_CHANGEABLE_DAYS,
    MIN_KMS_DELETION_WINDOW_DAYS,
    RTC_MINUTES,
    SEED_TIERS,
    ClassFloor,
    Floors,
)
from policy.rules import (
    BUCKET,
    CACHE_GROUP,
    CRONJOB,
    ENCRYPTION,
    KMS_KEY,
    KMS_KEY_ARN,
    KMS_REPLICA_KEY,
    LIFECYCLE,
    MSK_CLUSTER,
    OBJECT_LOCK,
    PURPOSE_ACCESS_LOGS,
    PURPOSE_AUDIT,
    PURPOSE_VAULT,
    RDS_CLUSTER,
    REPLICATION,
    TAG_DATA_CLASS,
    Resource,
    Violation,
    _for_bucket,
    _list,
    _of,
    _purpose,
    _tags,
)

BUCKET_POLICY = ("aws:s3/bucketPolicy:BucketPolicy",)
BACKUP_VAULT = "aws:backup/vault:Vault"
BACKUP_VAULT_LOCK = "aws:backup/vaultLockConfiguration:VaultLockConfiguration"
GCS_BUCKET = "gcp:storage/bucket:Bucket"
GCP_CRYPTO_KEY = "gcp:kms/cryptoKey:CryptoKey"
GCS_PURPOSE_LABEL = "purpose"
GCS_MIRROR_PURPOSE = "backup-mirror"
SECONDS_PER_DAY = 86400
SEED_ORDER = [storage_class for storage_class, _ in SEED_TIERS]


def _violation(resource: Resource, message: str) -> Violation:
    return Violation(message, resource.urn, resource.name)


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.removesuffix("s"))
        except ValueError:
            return None
    return None


def _days(value: Any) -> str:
    number = _number(value)
    if number is None:
        return "unset" if value is None else repr(value)
    shown = int(number) if number == int(number) else number
    return f"{shown} day" if shown == 1 else f"{shown} days"


def _policy(document: Any) -> dict[str, Any]:
    """A policy document given as JSON text or already parsed; {} if neither."""
    if isinstance(document, str):
        try:
            parsed = json.loads(document)
        except ValueError:
            return {}
        return parsed if isinstance(parsed, dict) else {}
    return dict(document) if isinstance(document, Mapping) else {}


def _statements(document: Any) -> list[Mapping[str, Any]]:
    return [s for s in _list(_policy(document).get("Statement")) if isinstance(s, Mapping)]


def _matches(granted: Iterable[str], wanted: str) -> bool:
    """Whether an IAM action list (with wildcards, any case) grants ``wanted``."""
    return any(fnmatch.fnmatchcase(wanted.lower(), str(g).lower()) for g in granted)


def _principals(statement: Mapping[str, Any]) -> list[str]:
    principal = statement.get("Principal")
    if principal == "*" or principal is None:
        return ["*"]
    if isinstance(principal, Mapping):
        return [str(p) for values in principal.values() for p in _list(values)]
    return [str(p) for p in _list(principal)]


def _role_of(arn: str) -> str | None:
    match = re.match(r"^arn:aws[a-z-]*:iam::\d{12}:role/(?:.*/)?([^/]+)$", arn)
    return match.group(1) if match else None


# ---- Object Lock ---------------------------------------------------------------------------


def _default_retention(config: Resource) -> tuple[str | None, float | None]:
    retention = (config.props.get("rule") or {}).get("defaultRetention") or {}
    days = _number(retention.get("days"))
    years = _number(retention.get("years"))
    if days is None and years is not None:
        days = years * 365
    mode = retention.get("mode")
    return (str(mode) if mode else None), days


def _lock_floor_problems(
    config: Resource, floor_mode: str, floor_days: int, why: str
) -> list[Violation]:
    mode, days = _default_retention(config)
    problems = []
    if mode not in LOCK_STRENGTH or LOCK_STRENGTH[mode] < LOCK_STRENGTH[floor_mode]:
        problems.append(
            _violation(
                config,
                f"Object Lock default retention mode is {mode or 'unset'}; floor: {floor_mode} "
                f"({why})",
            )
        )
    if days is None or days < floor_days:
        problems.append(
            _violation(
                config,
                f"Object Lock default retention is {_days(days)}; floor: {floor_days} days ({why})",
            )
        )
    return problems


def _class_lock_statements(
    policy: Resource | None, bucket_arn: str, floor: ClassFloor
) -> tuple[float | None, bool]:
    """(the strongest days floor the bucket policy enforces under the class's prefix, whether it
    denies a weaker mode than COMPLIANCE there)."""
    covered = (f"{bucket_arn}/*", f"{bucket_arn}/{floor.prefix}*")
    days_floor: float | None = None
    mode_denied = False
    for statement in _statements(policy.props.get("policy")) if policy else []:
        if statement.get("Effect") != "Deny" or "*" not in _principals(statement):
            continue
        if not any(str(r) in covered for r in _list(statement.get("Resource"))):
            continue
        actions = [str(a) for a in _list(statement.get("Action"))]
        condition = statement.get("Condition") or {}
        less = (condition.get("NumericLessThan") or {}).get(
            "s3:object-lock-remaining-retention-days"
        )
        if _matches(actions, "s3:PutObject") and less is not None:
            value = _number(less)
            if value is not None:
                days_floor = value if days_floor is None else max(days_floor, value)
        not_equal = (condition.get("StringNotEquals") or {}).get("s3:object-lock-mode")
        if _matches(actions, "s3:PutObject") and not_equal == "COMPLIANCE":
            mode_denied = True
    return days_floor, mode_denied


def object_lock_meets_retention(resources: Sequence[Resource], floors: Floors) -> list[Violation]:
    """Vault and journal Object Lock: the bucket default at least the strictest class (mode and
    days), and each class's prefix refusing a weaker per-object lock (bucket policy)."""
    violations: list[Violation] = []
    for bucket in _of(resources, BUCKET):
        purpose = _purpose(bucket)
        if purpose not in (PURPOSE_VAULT, PURPOSE_AUDIT):
            continue
        configs = _for_bucket(resources, OBJECT_LOCK, bucket)
        if purpose == PURPOSE_VAULT:
            strictest = floors.strictest
            mode, days, why = strictest.lock_mode, strictest.days, strictest.describe()
        else:
            journal = floors.journal
            mode, days = journal.lock_mode, journal.days
            why = f"the audit journal's retention class {journal.name!r}"
        if not configs:
            violations.append(
                _violation(
                    bucket,
                    f"Object Lock default retention is unset; floor: {mode} {days} days ({why})",
                )
            )
        for config in configs:
            violations += _lock_floor_problems(config, mode, days, why)
        if purpose != PURPOSE_VAULT:
            continue
        policies = _for_bucket(resources, BUCKET_POLICY, bucket)
        arn = str(bucket.props.get("arn") or f"arn:aws:s3:::{bucket.props.get('bucket')}")
        for floor in floors.classes.values():
            enforced, mode_denied = _class_lock_statements(
                policies[0] if policies else None, arn, floor
            )
            target = policies[0] if policies else bucket
            if enforced is None or enforced < floor.days:
                violations.append(
                    _violation(
                        target,
                        f"bucket policy denies puts under {floor.prefix!r} locked for less than "
                        f"{_days(enforced) if enforced is not None else 'no minimum'}; floor: "
                        f"{floor.days} days ({floor.describe()})",
                    )
                )
            if floor.lock_mode == "COMPLIANCE" and not mode_denied:
                violations.append(
                    _violation(
                        target,
                        f"bucket policy lets puts under {floor.prefix!r} ask for a lock mode "
                        f"other than COMPLIANCE; floor: COMPLIANCE ({floor.describe()})",
                    )
                )
    return violations


def audit_journal_locked(resources: Sequence[Resource], floors: Floors) -> list[Violation]:
    """The audit journal: created with Object Lock and locked COMPLIANCE for the seed's 3 years
    at least, whatever retention class the config gives it (the absolute floor: an audit log
    that an administrator can unlock, or that ends sooner, is not one)."""
    why = "the audit journal: the first seed keeps audit logs 3 years, under COMPLIANCE"
    floor = f"floor: {AUDIT_JOURNAL_MODE} {AUDIT_JOURNAL_DAYS} days ({why})"
    violations: list[Violation] = []
    for bucket in _of(resources, BUCKET):
        if _purpose(bucket) != PURPOSE_AUDIT:
            continue
        if bucket.props.get("objectLockEnabled") is not True:
            violations.append(_violation(bucket, f"Object Lock is not enabled; {floor}"))
        configs = _for_bucket(resources, OBJECT_LOCK, bucket)
        if not configs:
            violations.append(
                _violation(bucket, f"Object Lock default retention is unset; {floor}")
            )
        for config in configs:
            violations += _lock_floor_problems(config, AUDIT_JOURNAL_MODE, AUDIT_JOURNAL_DAYS, why)
    return violations


# ---- lifecycle -------------------------------------------------------------------------------


def _enabled_rules(resources: Sequence[Resource], bucket: Resource) -> list[Mapping[str, Any]]:
    return [
        rule
        for config in _for_bucket(resources, LIFECYCLE, bucket)
        for rule in _list(config.props.get("rules"))
        if isinstance(rule, Mapping) and rule.get("status") == "Enabled"
    ]


def _rule_prefix(rule: Mapping[str, Any]) -> str:
    rule_filter = rule.get("filter") or {}
    prefix = rule_filter.get("prefix")
    if prefix is None:
        prefix = (rule_filter.get("and") or {}).get("prefix")
    if prefix is None:
        prefix = rule.get("prefix")
    return str(prefix or "")


def _expiry_days(rule: Mapping[str, Any]) -> float | None:
    for expiration in _list(rule.get("expiration")):
        days = _number((expiration or {}).get("days"))
        if days is not None and days > 0:
            return days
    return None


def _lifecycle_config(resources: Sequence[Resource], bucket: Resource) -> Resource:
    configs = _for_bucket(resources, LIFECYCLE, bucket)
    return configs[0] if configs else bucket


def _expiry_problems(
    resources: Sequence[Resource], bucket: Resource, prefix: str, floor_days: int, why: str
) -> list[Violation]:
    """Every enabled rule that expires objects under ``prefix`` waits ``floor_days``."""
    problems = []
    for rule in _enabled_rules(resources, bucket):
        rule_prefix = _rule_prefix(rule)
        days = _expiry_days(rule)
        if days is None or not (prefix.startswith(rule_prefix) or rule_prefix.startswith(prefix)):
            continue
        if days < floor_days:
            problems.append(
                _violation(
                    _lifecycle_config(resources, bucket),
                    f"lifecycle rule {rule.get('id')!r} expires {rule_prefix or 'every object'!r}"
                    f" after {_days(days)}; floor: {floor_days} days ({why})",
                )
            )
    return problems


def _transition_problems(
    config: Resource, rule: Mapping[str, Any], floor: ClassFloor
) -> list[Violation]:
    transitions = [
        (str(t.get("storageClass")), _number(t.get("days")))
        for t in _list(rule.get("transitions"))
        if isinstance(t, Mapping)
    ]
    problems = []
    configured = dict(floor.tiers)
    order = [SEED_ORDER.index(c) if c in SEED_ORDER else -1 for c, _ in transitions]
    days = [d or 0 for _, d in transitions]
    if -1 in order or order != sorted(set(order)) or days != sorted(set(days)):
        problems.append(
            _violation(
                config,
                f"lifecycle rule {rule.get('id')!r} transitions {transitions}: out of the first "
                f"seed's tier order; floor: {' -> '.join(f'{c} {d}' for c, d in SEED_TIERS)} "
                "days, each tier colder and later than the one before",
            )
        )
    for storage_class, tier_days in transitions:
        wanted = configured.get(storage_class)
        if wanted is None and storage_class in SEED_ORDER:
            problems.append(
                _violation(
                    config,
                    f"lifecycle rule {rule.get('id')!r} moves {floor.prefix!r} to "
                    f"{storage_class} at {_days(tier_days)}; floor: no {storage_class} tier "
                    f"(data class {floor.data_class!r} leaves it out)",
                )
            )
        elif wanted is not None and (tier_days or 0) < wanted:
            problems.append(
                _violation(
                    config,
                    f"lifecycle rule {rule.get('id')!r} moves {floor.prefix!r} to "
                    f"{storage_class} after {_days(tier_days)}; floor: {wanted} days "
                    f"(data class {floor.data_class!r}; colder sooner slows its restores)",
                )
            )
    return problems


def lifecycle_keeps_retention(resources: Sequence[Resource], floors: Floors) -> list[Violation]:
    """No lifecycle expiry before the retention of what it expires, and each class's transitions
    in the seed's tier order, no earlier than its configured tiers."""
    violations: list[Violation] = []
    for bucket in _of(resources, BUCKET):
        purpose = _purpose(bucket)
        if purpose == PURPOSE_VAULT:
            for floor in floors.classes.values():
                violations += _expiry_problems(
                    resources, bucket, floor.prefix, floor.days, floor.describe()
                )
            violations += _expiry_problems(
                resources,
                bucket,
                "catalog/",
                floors.longest_days,
                "the backup catalog lives as long as the longest-kept class",
            )
            config = _lifecycle_config(resources, bucket)
            for rule in _enabled_rules(resources, bucket):
                prefix = _rule_prefix(rule)
                for floor in floors.classes.values():
                    if floor.prefix.startswith(prefix) and rule.get("transitions"):
                        violations += _transition_problems(config, rule, floor)
        elif purpose == PURPOSE_AUDIT:
            violations += _expiry_problems(
                resources,
                bucket,
                "",
                floors.journal.days,
                f"the audit journal's retention class {floors.journal.name!r}",
            )
        elif purpose == PURPOSE_ACCESS_LOGS:
            violations += _expiry_problems(
                resources,
                bucket,
                "",
                floors.access_log_days,
                "server access logs keep the 'system' retention class",
            )
    return _unique(violations)


def _unique(violations: list[Violation]) -> list[Violation]:
    seen: set[tuple[str, str | None]] = set()
    unique = []
    for violation in violations:
        key = (violation.message, violation.urn)
        if key not in seen:
            seen.add(key)
            unique.append(violation)
    return unique


# ---- replication ------------------------------------------------------------------------------


def _key_id(arn: str) -> str:
    return arn.rsplit("/", 1)[-1]


def _arn_region(arn: str) -> str:
    parts = arn.split(":")
    return parts[3] if len(parts) > 3 else ""


def _bucket_key(resources: Sequence[Resource], bucket_name: Any) -> str | None:
    for config in _of(resources, ENCRYPTION):
        if config.props.get("bucket") != bucket_name:
            continue
        for rule in _list(config.props.get("rules")):
            default = (rule or {}).get("applyServerSideEncryptionByDefault") or {}
            if default.get("kmsMasterKeyId"):
                return str(default["kmsMasterKeyId"])
    return None


def replication_is_timely_and_safe(
    resources: Sequence[Resource], floors: Floors
) -> list[Violation]:
    """Replication rules: RTC (15 minutes) and metrics on, delete markers not replicated, KMS
    objects replicated and re-encrypted with the replica of the vault key in the peer region."""
    violations: list[Violation] = []
    for config in _of(resources, REPLICATION):
        source_key = _bucket_key(resources, config.props.get("bucket"))
        for rule in _list(config.props.get("rules")):
            if not isinstance(rule, Mapping) or rule.get("status") != "Enabled":
                continue
            rid = rule.get("id")
            destination = rule.get("destination") or {}
            rtc = destination.get("replicationTime") or {}
            rtc_minutes = _number((rtc.get("time") or {}).get("minutes"))
            if rtc.get("status") != "Enabled" or rtc_minutes is None or rtc_minutes > RTC_MINUTES:
                violations.append(
                    _violation(
                        config,
                        f"replication rule {rid!r}: Replication Time Control is "
                        f"{rtc.get('status') or 'unset'} ({rtc_minutes or 'no'} minutes); floor: "
                        f"Enabled, {RTC_MINUTES} minutes",
                    )
                )
            metrics = destination.get("metrics") or {}
            threshold = _number((metrics.get("eventThreshold") or {}).get("minutes"))
            if metrics.get("status") != "Enabled" or threshold is None or threshold > RTC_MINUTES:
                violations.append(
                    _violation(
                        config,
                        f"replication rule {rid!r}: replication metrics are "
                        f"{metrics.get('status') or 'unset'} (threshold {threshold or 'none'}); "
                        f"floor: Enabled, {RTC_MINUTES}-minute threshold (the lag alarm reads "
                        "them)",
                    )
                )
            markers = (rule.get("deleteMarkerReplication") or {}).get("status")
            if markers != "Disabled":
                violations.append(
                    _violation(
                        config,
                        f"replication rule {rid!r}: delete-marker replication is "
                        f"{markers or 'unset'}; floor: Disabled (a delete in prod must not "
                        "hide the dr copy)",
                    )
                )
            selection = (rule.get("sourceSelectionCriteria") or {}).get(
                "sseKmsEncryptedObjects"
            ) or {}
            if selection.get("status") != "Enabled":
                violations.append(
                    _violation(
                        config,
                        f"replication rule {rid!r}: SSE-KMS objects are "
                        f"{selection.get('status') or 'not selected'}; floor: Enabled (the "
                        "vault's objects are all SSE-KMS)",
                    )
                )
            replica_key = str(
                (destination.get("encryptionConfiguration") or {}).get("replicaKmsKeyId") or ""
            )
            wanted = f"the vault key's replica in {floors.peer_region}" + (
                f" (key/{_key_id(source_key)})" if source_key else ""
            )
            if (
                not KMS_KEY_ARN.match(replica_key)
                or _arn_region(replica_key) != floors.peer_region
                or (source_key is not None and _key_id(replica_key) != _key_id(source_key))
            ):
                violations.append(
                    _violation(
                        config,
                        f"replication rule {rid!r}: replicas are encrypted with "
                        f"{replica_key or 'no replica key'}; floor: {wanted}",
                    )
                )
    return violations


# ---- keys -------------------------------------------------------------------------------------


def key_is_hardened(resource: Resource, floors: Floors) -> list[Violation]:
    """KMS keys rotate (customer keys), keep 30 days to cancel a deletion, and their policy lets
    only administrators and break-glass delete or fully control them."""
    if resource.type not in (KMS_KEY, KMS_REPLICA_KEY, GCP_CRYPTO_KEY):
        return []
    props = resource.props
    problems = []
    if resource.type == GCP_CRYPTO_KEY:
        period = _number(props.get("rotationPeriod"))
        floor = floors.gcp_key_rotation_days * SECONDS_PER_DAY
        if period is None or period > floor:
            problems.append(
                _violation(
                    resource,
                    f"rotationPeriod is {props.get('rotationPeriod') or 'unset'}; floor: "
                    f"{floor}s ({floors.gcp_key_rotation_days} days, gcp.key_rotation_days)",
                )
            )
        return problems
    if resource.type == KMS_KEY:
        spec = props.get("customerMasterKeySpec") or "SYMMETRIC_DEFAULT"
        if spec != "SYMMETRIC_DEFAULT":
            problems.append(
                _violation(
                    resource,
                    f"customerMasterKeySpec is {spec!r}, which cannot rotate; floor: "
                    "SYMMETRIC_DEFAULT with enableKeyRotation true",
                )
            )
        elif props.get("enableKeyRotation") is not True:
            problems.append(
                _violation(
                    resource,
                    f"enableKeyRotation is {props.get('enableKeyRotation')}; floor: true",
                )
            )
    window = _number(props.get("deletionWindowInDays"))
    if window is not None and window < MIN_KMS_DELETION_WINDOW_DAYS:
        problems.append(
            _violation(
                resource,
                f"deletionWindowInDays is {int(window)}; floor: {MIN_KMS_DELETION_WINDOW_DAYS}",
            )
        )
    allowed = {*floors.key_administrators, floors.break_glass}
    for statement in _statements(props.get("policy")):
        if statement.get("Effect") != "Allow":
            continue
        actions = [str(a) for a in _list(statement.get("Action"))]
        everything = bool(statement.get("NotAction")) or any(
            a.lower() in ("*", "kms:*") for a in actions
        )
        deletes = everything or _matches(actions, "kms:ScheduleKeyDeletion")
        if not deletes:
            continue
        granted = "kms:*" if everything else "kms:ScheduleKeyDeletion"
        beyond = [p for p in _principals(statement) if _role_of(p) not in allowed]
        if beyond:
            problems.append(
                _violation(
                    resource,
                    f"key policy statement {statement.get('Sid')!r} grants {granted} to "
                    f"{beyond}; floor: only administrators {sorted(floors.key_administrators)} "
                    f"and break-glass {floors.break_glass!r}",
                )
            )
    return problems


# ---- data stores ------------------------------------------------------------------------------


def aurora_is_protected(resource: Resource, floors: Floors) -> list[Violation]:
    if resource.type != RDS_CLUSTER:
        return []
    props = resource.props
    problems = []
    if props.get("deletionProtection") is not True:
        problems.append(
            _violation(
                resource, f"deletionProtection is {props.get('deletionProtection')}; floor: true"
            )
        )
    retention = _number(props.get("backupRetentionPeriod"))
    floor = floors.aurora_backup_retention_days
    if retention is None or retention < floor:
        problems.append(
            _violation(
                resource,
                f"backupRetentionPeriod is {_days(retention)}; floor: {floor} days "
                "(aurora.backup_retention_days, and never under 30: point-in-time recovery)",
            )
        )
    if props.get("storageEncrypted") is not True:
        problems.append(
            _violation(
                resource, f"storageEncrypted is {props.get('storageEncrypted')}; floor: true"
            )
        )
    if not KMS_KEY_ARN.match(str(props.get("kmsKeyId") or "")):
        problems.append(
            _violation(
                resource,
                f"kmsKeyId is {props.get('kmsKeyId') or 'unset'}; floor: a customer-managed "
                "KMS key ARN",
            )
        )
    return problems


def msk_is_encrypted(resource: Resource, floors: Floors) -> list[Violation]:
    if resource.type != MSK_CLUSTER:
        return []
    encryption = resource.props.get("encryptionInfo") or {}
    problems = []
    at_rest = encryption.get("encryptionAtRestKmsKeyArn")
    if not KMS_KEY_ARN.match(str(at_rest or "")):
        problems.append(
            _violation(
                resource,
                f"encryptionInfo.encryptionAtRestKmsKeyArn is {at_rest or 'unset'}; floor: a "
                "customer-managed KMS key ARN",
            )
        )
    transit = encryption.get("encryptionInTransit") or {}
    if transit.get("clientBroker") != "TLS":
        problems.append(
            _violation(
                resource,
                "encryptionInfo.encryptionInTransit.clientBroker is "
                f"{transit.get('clientBroker') or 'unset'}; floor: TLS",
            )
        )
    if transit.get("inCluster") is False:
        problems.append(
            _violation(
                resource, "encryptionInfo.encryptionInTransit.inCluster is false; floor: true"
            )
        )
    if (resource.props.get("clientAuthentication") or {}).get("unauthenticated") is True:
        problems.append(
            _violation(resource, "clientAuthentication.unauthenticated is true; floor: false")
        )
    return problems


def elasticache_is_encrypted(resource: Resource, floors: Floors) -> list[Violation]:
    if resource.type != CACHE_GROUP:
        return []
    props = resource.props
    problems = []
    if props.get("atRestEncryptionEnabled") is not True:
        problems.append(
            _violation(
                resource,
                f"atRestEncryptionEnabled is {props.get('atRestEncryptionEnabled')}; floor: true",
            )
        )
    if props.get("transitEncryptionEnabled") is not True:
        problems.append(
            _violation(
                resource,
                f"transitEncryptionEnabled is {props.get('transitEncryptionEnabled')}; floor: true",
            )
        )
    mode = props.get("transitEncryptionMode")
    if mode is not None and mode != "required":
        problems.append(
            _violation(
                resource,
                f"transitEncryptionMode is {mode!r}; floor: 'required' (no plaintext clients)",
            )
        )
    return problems


# ---- AWS Backup -------------------------------------------------------------------------------


def backup_vault_locked(resources: Sequence[Resource], floors: Floors) -> list[Violation]:
    """Each AWS Backup vault has a Vault Lock no shorter than its data class's regulated
    retention, with a cooling-off (``changeable_for_days``) so it becomes immutable."""
    violations: list[Violation] = []
    locks = _of(resources, (BACKUP_VAULT_LOCK,))
    for vault in _of(resources, (BACKUP_VAULT,)):
        name = vault.props.get("name")
        mine = [lock for lock in locks if lock.props.get("backupVaultName") == name]
        data_class = floors.classes.get(str(_tags(vault).get(TAG_DATA_CLASS)))
        regulated = data_class is not None and data_class.lock_mode == "COMPLIANCE"
        if not mine:
            violations.append(
                _violation(
                    vault,
                    f"Vault Lock is unset; floor: a lock with minRetentionDays "
                    f"{floors.aws_backup_min_retention_days}"
                    + (f" and maxRetentionDays {data_class.days}" if data_class else ""),
                )
            )
        for lock in mine:
            minimum = _number(lock.props.get("minRetentionDays"))
            if minimum is None or minimum < floors.aws_backup_min_retention_days:
                violations.append(
                    _violation(
                        lock,
                        f"minRetentionDays is {_days(minimum)}; floor: "
                        f"{floors.aws_backup_min_retention_days} days "
                        "(aws_backup.delete_after_days)",
                    )
                )
            maximum = _number(lock.props.get("maxRetentionDays"))
            if data_class is not None and maximum is not None and maximum < data_class.days:
                violations.append(
                    _violation(
                        lock,
                        f"maxRetentionDays is {_days(maximum)}; floor: {data_class.days} days "
                        f"({data_class.describe()})",
                    )
                )
            changeable = _number(lock.props.get("changeableForDays"))
            if regulated and (changeable is None or changeable < MIN_BACKUP_LOCK_CHANGEABLE_DAYS):
                violations.append(
                    _violation(
                        lock,
                        f"changeableForDays is {_days(changeable)}: the lock stays changeable "
                        f"forever; floor: a cooling-off of {MIN_BACKUP_LOCK_CHANGEABLE_DAYS}+ "
                        f"days, then immutable ({data_class.describe() if data_class else ''})",
                    )
                )
    return violations


# ---- bucket policies -------------------------------------------------------------------------

DANGEROUS_S3_ACTIONS = (
    "s3:DeleteObject",
    "s3:DeleteObjectVersion",
    "s3:PutBucketPolicy",
    "s3:BypassGovernanceRetention",
)
"""What only break-glass may be allowed: deleting objects or versions, replacing the policy, and
shortening a governance lock (``s3:PutObjectRetention`` with bypass)."""


def _denies_insecure_transport(policy: Resource, bucket_arn: str) -> bool:
    """A Deny of every S3 action, to everyone, on the bucket and its objects, without TLS."""
    for statement in _statements(policy.props.get("policy")):
        condition = (statement.get("Condition") or {}).get("Bool") or {}
        actions = {str(a).lower() for a in _list(statement.get("Action"))}
        covered = {str(r) for r in _list(statement.get("Resource"))}
        if (
            statement.get("Effect") == "Deny"
            and "*" in _principals(statement)
            and str(condition.get("aws:SecureTransport")).lower() == "false"
            and actions & {"s3:*", "*"}
            and ("*" in covered or {bucket_arn, f"{bucket_arn}/*"} <= covered)
        ):
            return True
    return False


def bucket_policies_are_strict(resources: Sequence[Resource], floors: Floors) -> list[Violation]:
    """Every bucket's policy denies non-TLS requests, and allows deletes, policy changes and
    lock bypass to nobody beyond break-glass."""
    violations: list[Violation] = []
    for bucket in _of(resources, BUCKET):
        arn = str(bucket.props.get("arn") or f"arn:aws:s3:::{bucket.props.get('bucket')}")
        policies = _for_bucket(resources, BUCKET_POLICY, bucket)
        if not any(_denies_insecure_transport(p, arn) for p in policies):
            violations.append(
                _violation(
                    policies[0] if policies else bucket,
                    "bucket policy does not deny requests with aws:SecureTransport false; "
                    "floor: a Deny of s3:* on the bucket and its objects without TLS",
                )
            )
        for policy in policies:
            for statement in _statements(policy.props.get("policy")):
                if statement.get("Effect") != "Allow":
                    continue
                actions = [str(a) for a in _list(statement.get("Action"))]
                if statement.get("NotAction"):
                    granted = list(DANGEROUS_S3_ACTIONS)
                else:
                    granted = [a for a in DANGEROUS_S3_ACTIONS if _matches(actions, a)]
                beyond = [p for p in _principals(statement) if _role_of(p) != floors.break_glass]
                if granted and beyond:
                    violations.append(
                        _violation(
                            policy,
                            f"bucket policy statement {statement.get('Sid')!r} allows "
                            f"{granted} to {beyond}; floor: only break-glass "
                            f"{floors.break_glass!r}",
                        )
                    )
    return violations


# ---- GCS mirror --------------------------------------------------------------------------------


def gcs_mirror_retained(resources: Sequence[Resource], floors: Floors) -> list[Violation]:
    """The GCS mirror's locked retention policy covers the shortest class it holds (it is
    bucket-wide; ``components.gcs_mirror``), and its lifecycle deletes no class early."""
    violations: list[Violation] = []
    for bucket in _of(resources, (GCS_BUCKET,)):
        labels = bucket.props.get("labels") or {}
        if labels.get(GCS_PURPOSE_LABEL) != GCS_MIRROR_PURPOSE:
            continue
        policy = bucket.props.get("retentionPolicy") or {}
        period = _number(policy.get("retentionPeriod"))
        shortest = floors.shortest
        floor = shortest.days * SECONDS_PER_DAY
        if period is None or period < floor:
            violations.append(
                _violation(
                    bucket,
                    f"retentionPolicy.retentionPeriod is {policy.get('retentionPeriod') or 'unset'}"
                    f"s; floor: {floor}s ({shortest.days} days, the shortest class held: "
                    f"{shortest.describe()})",
                )
            )
        if policy.get("isLocked") is not True:
            violations.append(
                _violation(
                    bucket,
                    f"retentionPolicy.isLocked is {policy.get('isLocked')}; floor: true",
                )
            )
        for rule in _list(bucket.props.get("lifecycleRules")):
            if ((rule or {}).get("action") or {}).get("type") != "Delete":
                continue
            condition = rule.get("condition") or {}
            age = _number(condition.get("age"))
            prefixes = [str(p) for p in _list(condition.get("matchesPrefixes"))] or [""]
            for floor_class in floors.classes.values():
                if any(floor_class.prefix.startswith(p) for p in prefixes) and (
                    age is None or age < floor_class.days
                ):
                    violations.append(
                        _violation(
                            bucket,
                            f"lifecycle deletes {prefixes} after {_days(age)}; floor: "
                            f"{floor_class.days} days ({floor_class.describe()})",
                        )
                    )
    return violations


# ---- CronJobs ---------------------------------------------------------------------------------

SECRET_NAME = re.compile(
    r"PASSWORD|PASSWD|SECRET|TOKEN|API_?KEY|ACCESS_KEY|PRIVATE_KEY|CREDENTIAL", re.IGNORECASE
)


def _containers(pod: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [
        c
        for key in ("initContainers", "containers")
        for c in _list(pod.get(key))
        if isinstance(c, Mapping)
    ]


def cronjob_is_safe(resource: Resource, floors: Floors) -> list[Violation]:
    """A CronJob forbids concurrent runs, never runs as root, and takes secrets by reference."""
    if resource.type != CRONJOB:
        return []
    spec = resource.props.get("spec") or {}
    problems = []
    policy = spec.get("concurrencyPolicy")
    if policy != "Forbid":
        problems.append(
            _violation(
                resource,
                f"spec.concurrencyPolicy is {policy or 'unset (Allow)'}; floor: Forbid "
                "(one backup of a store at a time)",
            )
        )
    pod = ((spec.get("jobTemplate") or {}).get("spec") or {}).get("template") or {}
    pod_spec = pod.get("spec") or {}
    pod_context = pod_spec.get("securityContext") or {}
    for container in _containers(pod_spec):
        name = container.get("name")
        context = container.get("securityContext") or {}
        user = _number(context.get("runAsUser", pod_context.get("runAsUser")))
        non_root = context.get("runAsNonRoot", pod_context.get("runAsNonRoot"))
        if user == 0 or (non_root is not True and user is None):
            problems.append(
                _violation(
                    resource,
                    f"container {name!r} runs as root (runAsUser {user}, runAsNonRoot "
                    f"{non_root}); floor: runAsNonRoot true and a non-zero runAsUser",
                )
            )
        for env in _list(container.get("env")):
            if not isinstance(env, Mapping) or "value" not in env:
                continue
            value = env.get("value")
            if (
                SECRET_NAME.search(str(env.get("name")))
                and value
                and not str(value).startswith("/")
            ):
                problems.append(
                    _violation(
                        resource,
                        f"container {name!r} env {env.get('name')!r} holds an inline value; "
                        "floor: valueFrom a Secret (secretKeyRef) or a mounted file",
                    )
                )
    return problems
