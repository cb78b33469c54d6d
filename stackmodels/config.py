"""The stack config: one pydantic model, read by infra through Pulumi config and by ops from the
same ``Pulumi.<stack>.yaml`` file.

Every key lives under the Pulumi project's namespace (``trading-dr:<field>``). Bad config fails at
load with one message per problem that names the key, the value and what is allowed.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Self

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from stackmodels.durations import Duration, format_duration
from stackmodels.errors import ConfigError, problems_from
from stackmodels.schedule import Cron, CronExpression

PROJECT = "trading-dr"
"""The Pulumi project name, and so the namespace of every config key."""

AWS_REGION = r"^[a-z]{2}(-gov)?-[a-z]+-\d$"
SLUG = r"^[a-z][a-z0-9-]{1,40}[a-z0-9]$"
S3_MIN_STANDARD_IA_DAYS = 30

Slug = Annotated[str, Field(pattern=SLUG)]
Region = Annotated[str, Field(pattern=AWS_REGION)]


class Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Role(StrEnum):
    PRIMARY = "primary"
    DR = "dr"


class StoreKind(StrEnum):
    POSTGRES = "postgres"
    KAFKA = "kafka"
    REDIS = "redis"
    KUBERNETES = "kubernetes"
    TIMESERIES = "timeseries"


class ObjectLockMode(StrEnum):
    COMPLIANCE = "compliance"
    GOVERNANCE = "governance"


class Lifecycle(Frozen):
    """Days after creation at which an object moves to the next, colder storage tier.

    A tier left out (null) is skipped. S3 needs 30 days in Standard before Standard-IA.
    """

    standard_ia_after_days: int | None = Field(default=30, ge=S3_MIN_STANDARD_IA_DAYS)
    glacier_after_days: int | None = Field(default=90, ge=1)
    deep_archive_after_days: int | None = Field(default=365, ge=1)

    def tiers(self) -> list[tuple[str, int]]:
        """(S3 storage class, days) in order, skipping the tiers left out."""
        named = [
            ("STANDARD_IA", self.standard_ia_after_days),
            ("GLACIER", self.glacier_after_days),
            ("DEEP_ARCHIVE", self.deep_archive_after_days),
        ]
        return [(name, days) for name, days in named if days is not None]

    @property
    def last_tier_days(self) -> int:
        tiers = self.tiers()
        return tiers[-1][1] if tiers else 0

    @model_validator(mode="after")
    def _tiers_in_order(self) -> Self:
        days = [d for _, d in self.tiers()]
        if days != sorted(set(days)):
            raise ValueError(
                f"tiers must move to colder storage later: got {self.tiers()}; "
                "allowed: standard_ia < glacier < deep_archive days"
            )
        return self


class RetentionClass(Frozen):
    """How long a kind of data is kept, and how hard the lock is (the seed's compliance table)."""

    days: int = Field(ge=1, le=36500)
    object_lock: ObjectLockMode = ObjectLockMode.GOVERNANCE


class DataClass(Frozen):
    """A row of the objectives table, with where its backups go and how long they stay."""

    description: str = ""
    rto: Duration
    rpo: Duration
    retention: Slug
    lifecycle: Lifecycle = Lifecycle()


class Store(Frozen):
    """A protected data store, named for its purpose (``trading-db``), not its host.

    ``continuous_protection`` names what meets the RPO between backups (a global database, a
    replicator, GitOps); without one the backup schedule alone must be at least as often as the RPO.
    """

    kind: StoreKind
    data_class: Slug
    schedule: CronExpression
    continuous_protection: str | None = None
    topics: list[str] = Field(default_factory=list)
    database: str | None = None


class Kubernetes(Frozen):
    namespace: Slug = "aipx"
    backup_namespace: Slug = "dr-backups"


class Gcp(Frozen):
    project: str = Field(pattern=r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$")
    location: str = "US"
    key_rotation_days: int = Field(default=90, ge=1, le=36500)
    """Rotation period of the mirror's Cloud KMS crypto key."""


IAM_ROLE_NAME = r"^[A-Za-z0-9+=,.@_-]{1,64}$"
IamRoleName = Annotated[str, Field(pattern=IAM_ROLE_NAME)]
ECR_REPOSITORY = r"^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$"
EcrRepository = Annotated[str, Field(pattern=ECR_REPOSITORY, max_length=256)]


class Access(Frozen):
    """IAM roles (names, in the stack's account) that the key policies name.

    They exist outside these stacks (SSO or account baseline); the backup writer and replication
    roles are created by the stacks themselves. ``administrators`` manage the keys but cannot use
    them, so the role Pulumi deploys with belongs here; ``operators`` restore and write the
    operations journal; ``break_glass`` is the sealed emergency role.
    """

    administrators: list[IamRoleName] = Field(
        default_factory=lambda: ["platform-admin"], min_length=1
    )
    operators: list[IamRoleName] = Field(default_factory=lambda: ["dr-operator"])
    break_glass: IamRoleName = "break-glass"


def seed_retention_classes() -> dict[str, RetentionClass]:
    """000_6de71234cc3057c0.txt, compliance: financial 7 years, audit 3, system logs 1."""
    return {
        "financial": RetentionClass(days=7 * 365, object_lock=ObjectLockMode.COMPLIANCE),
        "audit": RetentionClass(days=3 * 365, object_lock=ObjectLockMode.GOVERNANCE),
        "system": RetentionClass(days=365, object_lock=ObjectLockMode.GOVERNANCE),
    }


class StackConfig(Frozen):
    """Everything a stack is configured with; see ``Pulumi.prod.yaml`` for a full example."""

    platform: Slug
    role: Role
    region: Region
    peer_region: Region
    primary_stack: str | None = None
    active_region: Region | None = None
    data_classes: dict[Slug, DataClass] = Field(min_length=1)
    retention_classes: dict[Slug, RetentionClass] = Field(default_factory=seed_retention_classes)
    stores: dict[Slug, Store] = Field(min_length=1)
    audit_data_class: Slug | None = None
    kubernetes: Kubernetes = Kubernetes()
    gcp: Gcp
    access: Access = Access()
    ecr_repositories: list[EcrRepository] = Field(default_factory=list)
    """Container image repositories: created in both regions, replicated prod -> dr by ECR."""
    replicate_vault: bool = True
    """prod only: replicate the backup vault to the dr region's vault. Set false only for the very
    first ``pulumi up`` of a new environment, before the dr stack has created the destination."""

    @property
    def primary_region(self) -> str:
        """The region serving writes now: it flips when a failover is written back to config."""
        if self.active_region is not None:
            return self.active_region
        return self.region if self.role is Role.PRIMARY else self.peer_region

    def retention_of(self, data_class: str) -> RetentionClass:
        return self.retention_classes[self.data_classes[data_class].retention]

    @model_validator(mode="after")
    def _cross_field_rules(self) -> Self:
        problems = [*self._region_problems(), *self._reference_problems()]
        problems += self._schedule_problems() + self._retention_problems()
        if problems:
            raise ValidationError.from_exception_data(type(self).__name__, problems)
        return self

    def _region_problems(self) -> list[InitErrorDetails]:
        problems = []
        if self.peer_region == self.region:
            problems.append(
                _problem(
                    ("peer_region",), self.peer_region, f"must differ from region {self.region!r}"
                )
            )
        if self.role is Role.DR and not self.primary_stack:
            problems.append(
                _problem(
                    ("primary_stack",),
                    self.primary_stack,
                    "a dr stack must name the prod stack it reads (e.g. 'prod')",
                )
            )
        if self.role is Role.PRIMARY and self.primary_stack:
            problems.append(
                _problem(
                    ("primary_stack",),
                    self.primary_stack,
                    "only a dr stack reads another stack; prod never reads dr",
                )
            )
        allowed = {self.region, self.peer_region}
        if self.active_region is not None and self.active_region not in allowed:
            problems.append(
                _problem(
                    ("active_region",), self.active_region, f"must be one of {sorted(allowed)}"
                )
            )
        return problems

    def _reference_problems(self) -> list[InitErrorDetails]:
        problems = []
        for name, data_class in self.data_classes.items():
            if data_class.retention not in self.retention_classes:
                problems.append(
                    _problem(
                        ("data_classes", name, "retention"),
                        data_class.retention,
                        f"unknown retention class; allowed: {sorted(self.retention_classes)}",
                    )
                )
        for name, store in self.stores.items():
            if store.data_class not in self.data_classes:
                problems.append(
                    _problem(
                        ("stores", name, "data_class"),
                        store.data_class,
                        f"unknown data class; allowed: {sorted(self.data_classes)}",
                    )
                )
        audit = self.audit_data_class
        if audit is not None and audit not in self.data_classes:
            problems.append(
                _problem(
                    ("audit_data_class",),
                    audit,
                    f"unknown data class; allowed: {sorted(self.data_classes)}",
                )
            )
        return problems

    def _schedule_problems(self) -> list[InitErrorDetails]:
        problems = []
        for name, store in self.stores.items():
            data_class = self.data_classes.get(store.data_class)
            if data_class is None or store.continuous_protection:
                continue
            gap = Cron(store.schedule).max_interval
            if gap > data_class.rpo:
                problems.append(
                    _problem(
                        ("stores", name, "schedule"),
                        store.schedule,
                        f"runs up to {format_duration(gap)} apart, slower than the RPO "
                        f"{format_duration(data_class.rpo)} of data class {store.data_class!r}; "
                        "allowed: a schedule at least that frequent, or name the "
                        "continuous_protection that meets the RPO between backups",
                    )
                )
        return problems

    def _retention_problems(self) -> list[InitErrorDetails]:
        problems = []
        for name, data_class in self.data_classes.items():
            retention = self.retention_classes.get(data_class.retention)
            last = data_class.lifecycle.last_tier_days
            if retention is not None and retention.days <= last:
                problems.append(
                    _problem(
                        ("data_classes", name, "retention"),
                        data_class.retention,
                        f"keeps data {retention.days} days, not longer than the last "
                        f"lifecycle tier at {last} days; allowed: a retention class longer "
                        f"than {last} days, or drop the colder tiers from the lifecycle",
                    )
                )
        return problems

    # ---- loading -----------------------------------------------------------------------------

    @classmethod
    def from_pulumi_config(cls, values: dict[str, Any], source: str) -> StackConfig:
        """Validate the project's config keys (without the ``trading-dr:`` prefix)."""
        try:
            return cls.model_validate(values)
        except ValidationError as error:
            raise ConfigError(source, problems_from(error, prefix=PROJECT)) from None

    @classmethod
    def load(cls, path: Path) -> StackConfig:
        """Read ``Pulumi.<stack>.yaml``: the keys under ``config:`` in this project's namespace."""
        try:
            document = yaml.safe_load(path.read_text())
        except FileNotFoundError:
            raise ConfigError(str(path), ["file not found"]) from None
        except yaml.YAMLError as error:
            raise ConfigError(str(path), [f"not valid YAML: {error}"]) from None
        if not isinstance(document, dict) or not isinstance(document.get("config"), dict):
            raise ConfigError(str(path), ["config: missing; a mapping of keys is required"])
        values, foreign = split_namespace(document["config"])
        problems = [
            f"{key}: unknown key; keys of this project are {PROJECT}:<field>, or a provider's "
            "namespace (aws:, gcp:, kubernetes:, pulumi:)"
            for key in foreign
        ]
        try:
            config = cls.model_validate(values)
        except ValidationError as error:
            problems += problems_from(error, prefix=PROJECT)
        if problems:
            raise ConfigError(str(path), problems)
        return config

    @classmethod
    def for_stack(cls, stack: str, project_dir: Path | None = None) -> StackConfig:
        return cls.load((project_dir or Path.cwd()) / f"Pulumi.{stack}.yaml")


_PROVIDER_NAMESPACES = ("aws:", "gcp:", "kubernetes:", "pulumi:")


def split_namespace(config: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Project keys without the prefix, and keys that belong to no known namespace."""
    values: dict[str, Any] = {}
    foreign: list[str] = []
    for key, value in config.items():
        if key.startswith(f"{PROJECT}:"):
            values[key.removeprefix(f"{PROJECT}:")] = value
        elif not key.startswith(_PROVIDER_NAMESPACES):
            foreign.append(key)
    return values, foreign


def _problem(location: tuple[str, ...], value: Any, message: str) -> InitErrorDetails:
    return InitErrorDetails(
        type=PydanticCustomError("stack_rule", message),
        loc=location,
        input=value,
    )
