"""The floors a stack's protection must not go below: from its config, and absolute ones.

The config sets the per-stack floors (each data class's retention class: days and Object Lock
mode; the Aurora backup window; AWS Backup's minimum; who administers the keys). The absolute
floors hold whatever the config says: a key deletion window of 30 days, 30 days of Aurora
backups, S3 Replication Time Control's 15 minutes, the first seed's storage tiers.

The CrossGuard pack learns the stack from a resource URN (``urn:pulumi:<stack>::...``) and reads
``Pulumi.<stack>.yaml`` next to the pack; ``python -m policy check`` takes ``--stack``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

from stackmodels import StackConfig
from stackmodels.config import (
    ObjectLockMode,
    RetentionClass,
    VaultStackConfig,
    is_vault_config,
    read_config_section,
)

ROOT = Path(__file__).resolve().parent.parent

MIN_KMS_DELETION_WINDOW_DAYS = 30
"""AWS allows 7; a key scheduled for deletion by mistake must stay recoverable a month."""
MIN_AURORA_RETENTION_DAYS = 30
"""The seed: continuous backups with 30 days of point-in-time recovery."""
RTC_MINUTES = 15
"""S3 Replication Time Control replicates 99.99% of objects within 15 minutes (the only value)."""
MIN_BACKUP_LOCK_CHANGEABLE_DAYS = 3
"""AWS Backup's cooling-off: Vault Lock becomes immutable only with a grace period of 3+ days."""
SEED_TIERS = (("STANDARD_IA", 30), ("GLACIER", 90), ("DEEP_ARCHIVE", 365))
"""The first seed's tiers, coldest last: a transition may skip a tier, never reorder them."""
LOCK_STRENGTH = {"GOVERNANCE": 0, "COMPLIANCE": 1}
AUDIT_JOURNAL_DAYS = 3 * 365
"""The first seed: audit logging of all access, audit logs kept 3 years."""
AUDIT_JOURNAL_MODE = "COMPLIANCE"
"""Nothing, root included, may shorten or lift an audit event's lock (issue 19)."""
SEED_RETENTION = {
    "financial": (7 * 365, "COMPLIANCE"),
    "audit": (3 * 365, "COMPLIANCE"),
    "system": (365, "GOVERNANCE"),
}
"""The first seed's compliance table: a retention class of one of these names is held to at
least this, whatever the config says, so a PR that weakens the config itself still fails."""


@dataclass(frozen=True)
class ClassFloor:
    """What a data class's backups must keep: its retention class's days and lock mode."""

    data_class: str
    retention_class: str
    days: int
    lock_mode: str
    """``COMPLIANCE`` or ``GOVERNANCE`` (S3's spelling)."""
    tiers: tuple[tuple[str, int], ...]
    """(S3 storage class, days) the class's lifecycle configures, in order."""

    @property
    def prefix(self) -> str:
        return f"{self.data_class}/"

    def describe(self) -> str:
        return (
            f"retention class {self.retention_class!r}: {self.lock_mode}, {self.days} days, "
            f"of data class {self.data_class!r}"
        )


@dataclass(frozen=True)
class JournalFloor:
    """The audit journal's retention (the audit data class's, else the ``audit`` class)."""

    name: str
    days: int
    lock_mode: str


@dataclass(frozen=True)
class VaultWriterFloor:
    """One production account the isolated vault accepts, and where it may create objects."""

    name: str
    account_id: str
    prefixes: tuple[str, ...]


@dataclass(frozen=True)
class IsolatedFloor:
    """A ``vault`` stack's: its account, and the only grants principals outside it may hold."""

    account_id: str
    writers: tuple[VaultWriterFloor, ...]

    @property
    def writer_accounts(self) -> set[str]:
        return {w.account_id for w in self.writers}


@dataclass(frozen=True)
class Floors:
    stack: str
    role: str
    region: str
    peer_region: str
    classes: dict[str, ClassFloor]
    journal: JournalFloor
    access_log_days: int
    aurora_backup_retention_days: int
    aws_backup_min_retention_days: int
    gcp_key_rotation_days: int
    key_administrators: tuple[str, ...]
    break_glass: str
    isolated: IsolatedFloor | None = None
    """Set for a ``vault`` stack (the isolated backup account) only."""

    @property
    def strictest(self) -> ClassFloor:
        """The class the bucket-wide default retention must meet: strongest mode, then days."""
        return max(self.classes.values(), key=lambda c: (LOCK_STRENGTH[c.lock_mode], c.days))

    @property
    def longest_days(self) -> int:
        return max(c.days for c in self.classes.values())

    @property
    def shortest(self) -> ClassFloor:
        return min(self.classes.values(), key=lambda c: c.days)

    @classmethod
    def from_config(cls, stack: str, config: StackConfig) -> Floors:
        classes = {
            name: ClassFloor(
                data_class=name,
                retention_class=data_class.retention,
                days=_floor_days(data_class.retention, config.retention_of(name)),
                lock_mode=_floor_mode(data_class.retention, config.retention_of(name)),
                tiers=tuple(data_class.lifecycle.tiers()),
            )
            for name, data_class in config.data_classes.items()
        }
        journal_name, journal = _journal_retention(config)
        system = config.retention_classes.get("system")
        aurora_days = config.aurora.backup_retention_days if config.aurora else 0
        return cls(
            stack=stack,
            role=config.role.value,
            region=config.region,
            peer_region=config.peer_region,
            classes=classes,
            journal=JournalFloor(
                journal_name,
                _floor_days(journal_name, journal),
                _floor_mode(journal_name, journal),
            ),
            access_log_days=_floor_days("system", system)
            if system
            else SEED_RETENTION["system"][0],
            aurora_backup_retention_days=max(MIN_AURORA_RETENTION_DAYS, aurora_days),
            aws_backup_min_retention_days=config.aws_backup.delete_after_days,
            gcp_key_rotation_days=config.gcp.key_rotation_days,
            key_administrators=tuple(config.access.administrators),
            break_glass=config.access.break_glass,
        )

    @classmethod
    def from_vault_config(cls, stack: str, config: VaultStackConfig) -> Floors:
        """A vault stack's floors: its classes and journal as prod's, and what it may grant."""
        classes = {
            name: ClassFloor(
                data_class=name,
                retention_class=data_class.retention,
                days=_floor_days(data_class.retention, config.retention_of(name)),
                lock_mode=_floor_mode(data_class.retention, config.retention_of(name)),
                tiers=tuple(data_class.lifecycle.tiers()),
            )
            for name, data_class in config.data_classes.items()
        }
        journal = config.retention_classes[config.audit_retention]
        system = config.retention_classes.get("system")
        return cls(
            stack=stack,
            role=config.role,
            region=config.region,
            peer_region="",
            classes=classes,
            journal=JournalFloor(
                config.audit_retention,
                _floor_days(config.audit_retention, journal),
                _floor_mode(config.audit_retention, journal),
            ),
            access_log_days=_floor_days("system", system)
            if system
            else SEED_RETENTION["system"][0],
            aurora_backup_retention_days=MIN_AURORA_RETENTION_DAYS,
            aws_backup_min_retention_days=MIN_AURORA_RETENTION_DAYS,
            gcp_key_rotation_days=config.key_rotation_days,
            key_administrators=tuple(config.access.administrators),
            break_glass=config.access.break_glass,
            isolated=IsolatedFloor(
                account_id=config.account_id,
                writers=tuple(
                    VaultWriterFloor(name, w.account_id, tuple(config.prefixes_of(name)))
                    for name, w in config.writers.items()
                ),
            ),
        )


def _mode(retention: RetentionClass) -> str:
    return "COMPLIANCE" if retention.object_lock is ObjectLockMode.COMPLIANCE else "GOVERNANCE"


def _floor_days(name: str, retention: RetentionClass) -> int:
    seed_days, _ = SEED_RETENTION.get(name, (0, "GOVERNANCE"))
    return max(retention.days, seed_days)


def _floor_mode(name: str, retention: RetentionClass) -> str:
    _, seed_mode = SEED_RETENTION.get(name, (0, "GOVERNANCE"))
    return max(_mode(retention), seed_mode, key=LOCK_STRENGTH.__getitem__)


def _journal_retention(config: StackConfig) -> tuple[str, RetentionClass]:
    """As ``infra.program.audit_retention`` picks it (the pack does not import the program)."""
    if config.audit_data_class is not None:
        data_class = config.data_classes[config.audit_data_class]
        return data_class.retention, config.retention_of(config.audit_data_class)
    if "audit" in config.retention_classes:
        return "audit", config.retention_classes["audit"]
    name = max(config.retention_classes, key=lambda n: config.retention_classes[n].days)
    return name, config.retention_classes[name]


def stack_of_urn(urn: str) -> str | None:
    """``prod`` of ``urn:pulumi:prod::trading-dr::aws:s3/bucket:Bucket::vault``."""
    if not urn.startswith("urn:pulumi:"):
        return None
    stack = urn.removeprefix("urn:pulumi:").split("::", 1)[0]
    return stack or None


@functools.cache
def floors_for_stack(stack: str, project_dir: Path = ROOT) -> Floors:
    """The floors of ``Pulumi.<stack>.yaml``; ``ConfigError`` if it is missing or invalid."""
    path = project_dir / f"Pulumi.{stack}.yaml"
    config = read_config_section(path)
    if is_vault_config(config):
        return Floors.from_vault_config(stack, VaultStackConfig.from_config_keys(config, str(path)))
    return Floors.from_config(stack, StackConfig.from_config_keys(config, str(path)))
