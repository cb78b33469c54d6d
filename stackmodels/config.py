"""The stack config: one pydantic model, read by infra through Pulumi config and by ops from the
same ``Pulumi.<stack>.yaml`` file.

Every key lives under the Pulumi project's namespace (``trading-dr:<field>``). Bad config fails at
load with one message per problem that names the key, the value and what is allowed.
"""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal, Self

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from stackmodels.durations import Duration, format_duration
from stackmodels.errors import ConfigError, problems_from
from stackmodels.schedule import Cron, CronExpression
from stackmodels.strict_yaml import DuplicateKey, UnreadableFile, load_strict, read_text

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


class ProtectionKind(StrEnum):
    """What protects a store between backups, one failover module each: the managed services'
    (AWS) and the tools a self-hosted platform uses (the local two-region stack)."""

    AURORA_GLOBAL_DATABASE = "aurora-global-database"
    POSTGRES_STREAMING = "postgres-streaming"
    ELASTICACHE_GLOBAL_DATASTORE = "elasticache-global-datastore"
    REDIS_REPLICA = "redis-replica"
    MSK_REPLICATOR = "msk-replicator"
    MIRRORMAKER2 = "mirrormaker2"
    GITOPS = "gitops"


PROTECTION_STORE_KINDS: dict[ProtectionKind, StoreKind] = {
    ProtectionKind.AURORA_GLOBAL_DATABASE: StoreKind.POSTGRES,
    ProtectionKind.POSTGRES_STREAMING: StoreKind.POSTGRES,
    ProtectionKind.ELASTICACHE_GLOBAL_DATASTORE: StoreKind.REDIS,
    ProtectionKind.REDIS_REPLICA: StoreKind.REDIS,
    ProtectionKind.MSK_REPLICATOR: StoreKind.KAFKA,
    ProtectionKind.MIRRORMAKER2: StoreKind.KAFKA,
    ProtectionKind.GITOPS: StoreKind.KUBERNETES,
}
"""The store kind each protection kind can protect."""


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


class IsolatedCopy(StrEnum):
    """Whether a store's backup must reach the isolated account's vault (issue 22)."""

    REQUIRED = "required"
    """A backup whose third copy failed is a failed run (exit 1), its two copies committed."""
    OPTIONAL = "optional"
    """A backup whose third copy failed succeeds with two; its result says the copy was skipped."""


class Store(Frozen):
    """A protected data store, named for its purpose (``trading-db``), not its host.

    ``continuous_protection`` names what meets the RPO between backups (a global database, a
    replicator, GitOps); without one the backup schedule alone must be at least as often as the RPO.
    """

    kind: StoreKind
    data_class: Slug
    schedule: CronExpression
    continuous_protection: ProtectionKind | None = None
    topics: list[str] = Field(default_factory=list)
    database: str | None = None
    isolated_copy: IsolatedCopy = IsolatedCopy.REQUIRED
    """On a stack with an isolated vault: whether a backup that could not write its third copy
    there fails (``required``, the default) or succeeds with two, saying so (``optional``)."""

    @field_validator("isolated_copy", mode="before")
    @classmethod
    def _known_isolated_copy(cls, value: object) -> object:
        allowed = [choice.value for choice in IsolatedCopy]
        if not isinstance(value, IsolatedCopy) and value not in allowed:
            raise ValueError(
                f"isolated_copy {value!r}: use {' or '.join(allowed)} (whether a backup that "
                "could not reach the isolated vault fails or succeeds with two copies)"
            )
        return value

    @model_validator(mode="after")
    def _protection_fits_kind(self) -> Self:
        protection = self.continuous_protection
        if protection is not None and PROTECTION_STORE_KINDS[protection] is not self.kind:
            fitting = sorted(p for p, k in PROTECTION_STORE_KINDS.items() if k is self.kind)
            raise ValueError(
                f"continuous_protection {protection.value!r} does not protect a {self.kind.value} "
                f"store; allowed: {', '.join(fitting)}"
            )
        return self


IMAGE_REFERENCE = (
    r"^[a-z0-9]+(?:[.-][a-z0-9]+)*(?::\d+)?(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)+"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}|@sha256:[0-9a-f]{64})$"
)
"""``registry/repository:tag`` or ``registry/repository@sha256:...``: a registry and an explicit
tag (not ``latest``) or digest, so a pod never runs whatever was pushed last."""
OIDC_PROVIDER_ARN = r"^arn:aws[a-z-]*:iam::\d{12}:oidc-provider/[a-z0-9.-]+(?:/[A-Za-z0-9._-]+)*$"
OIDC_ISSUER_URL = r"^https://[a-z0-9.-]+(?:/[A-Za-z0-9._-]+)*$"


class Kubernetes(Frozen):
    """The cluster side: namespaces, and what the backup CronJobs need (infra/kubernetes.py).

    The backup keys default to None so a stack without CronJobs needs none of them; defining the
    CronJobs without them fails with the key's name.
    """

    namespace: Slug = "aipx"
    backup_namespace: Slug = "dr-backups"
    context: str | None = Field(default=None, min_length=1)
    """The kubeconfig context of this region's cluster (``infra.providers.kubernetes_provider``);
    None: the kubeconfig's current context."""
    monitoring_namespace: Slug = "monitoring"
    """Where the Prometheus Operator and Grafana's sidecar look for rules and dashboards."""
    backup_image: str | None = Field(default=None, pattern=IMAGE_REFERENCE)
    """The image that runs ``python -m drkit`` (the repo's Dockerfile), from this region's ECR."""
    pushgateway_url: str | None = Field(default=None, pattern=r"^https?://[^\s/]+(?:/\S*)?$")
    """Where each run pushes its metrics; None: CloudWatch only."""
    oidc_provider_arn: str | None = Field(default=None, pattern=OIDC_PROVIDER_ARN)
    """The cluster's IAM OIDC provider: the backup jobs' IRSA roles trust it."""
    oidc_issuer_url: str | None = Field(default=None, pattern=OIDC_ISSUER_URL)
    """The cluster's service-account token issuer (``aws eks describe-cluster ... identity``)."""

    @field_validator("backup_image")
    @classmethod
    def _not_latest(cls, image: str | None) -> str | None:
        if image is not None and image.endswith(":latest"):
            raise ValueError(f"{image!r}: name a release tag or a digest, not 'latest'")
        return image

    @model_validator(mode="after")
    def _oidc_pair(self) -> Self:
        arn, url = self.oidc_provider_arn, self.oidc_issuer_url
        if (arn is None) != (url is None):
            raise ValueError(
                "oidc_provider_arn and oidc_issuer_url: set both (the IRSA trust names the "
                "provider and conditions on its issuer) or neither"
            )
        if arn is not None and url is not None:
            issuer = url.removeprefix("https://")
            if arn.split(":oidc-provider/", 1)[1] != issuer:
                raise ValueError(
                    f"oidc_provider_arn {arn!r} is not the provider of oidc_issuer_url {url!r}: "
                    f"the ARN must end in ':oidc-provider/{issuer}'"
                )
        return self


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


VPC_ID = r"^vpc-[0-9a-f]{8,17}$"
SUBNET_ID = r"^subnet-[0-9a-f]{8,17}$"
IPV4_CIDR = r"^(\d{1,3}\.){3}\d{1,3}/\d{1,2}$"
SECRET_NAME = r"^[A-Za-z0-9/_+=.@-]{1,512}$"
EMAIL = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
DNS_NAME = r"^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$"
DNS_LABEL = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"
DNS_SWITCH_DETECTION = timedelta(minutes=2)
"""From forcing the failover switch to Route 53 answering with the secondary: one 60-second
alarm period (Route 53 reads standard-resolution alarms only) plus the health checkers picking up
the alarm state. A DNS name's TTL must fit in its RTO after this."""


class Network(Frozen):
    """The VPC the stack's data stores live in (it exists outside these stacks, like the roles)."""

    vpc_id: str = Field(pattern=VPC_ID)
    subnet_ids: list[Annotated[str, Field(pattern=SUBNET_ID)]] = Field(min_length=2)
    """Private subnets in distinct AZs; MSK puts one broker per subnet in turn."""
    client_cidrs: list[Annotated[str, Field(pattern=IPV4_CIDR)]] = Field(min_length=1)
    """Who may connect to the data stores (the Kubernetes cluster's pod and node ranges)."""


class Aurora(Frozen):
    """The Aurora PostgreSQL global database behind a ``postgres`` store."""

    store: Slug
    engine_version: str = Field(default="16.8", pattern=r"^\d+\.\d+$")
    instance_class: str = Field(default="db.r7g.large", pattern=r"^db\.[a-z0-9]+\.[a-z0-9]+$")
    instances: int = Field(default=2, ge=2, le=16)
    """At least two per region: a writer and a reader a local failover can promote."""
    backup_retention_days: int = Field(default=30, ge=30, le=35)
    """Automated backups with point-in-time recovery (the seed: continuous, 30 days)."""
    backup_window: str = Field(default="03:00-04:00", pattern=r"^\d{2}:\d{2}-\d{2}:\d{2}$")
    maintenance_window: str = Field(
        default="sun:04:30-sun:05:30", pattern=r"^[a-z]{3}:\d{2}:\d{2}-[a-z]{3}:\d{2}:\d{2}$"
    )
    master_username: str = Field(default="trading_admin", pattern=r"^[a-z][a-z0-9_]{0,62}$")
    master_secret: str = Field(pattern=SECRET_NAME)
    """Secrets Manager secret (JSON with ``password``) holding the master password, created
    outside the stacks and replicated to the peer region; read in the stack's own region and
    passed write-only, so the password is never in the Pulumi state."""
    master_secret_version: int = Field(default=1, ge=1)
    """Bump to push a rotated master password."""
    adopt_primary_cluster_identifier: str | None = Field(
        default=None, pattern=r"^[a-z][a-z0-9-]{0,62}$"
    )
    """prod only: make this existing cluster the global database's primary instead of creating
    one (it is imported; its settings must already match, encryption included)."""


class TopicClass(Frozen):
    """How long a class of Kafka topics keeps data, and where it is protected."""

    retention: Duration
    replicate: bool = False
    """Replicated to the dr cluster by the MSK Replicator (critical topics)."""
    tiered: bool = False
    """Kept in MSK tiered storage (S3-backed) beyond ``local_retention``."""
    local_retention: Duration | None = None

    @model_validator(mode="after")
    def _local_retention_only_when_tiered(self) -> Self:
        if self.local_retention is not None and not self.tiered:
            raise ValueError("local_retention: only a tiered class keeps data beyond local disk")
        if self.local_retention is not None and self.local_retention >= self.retention:
            raise ValueError("local_retention: must be shorter than retention")
        return self


def seed_topic_classes() -> dict[str, TopicClass]:
    """000_6de71234cc3057c0.txt: critical 7 days replicated, standard 3 days, archive 30 in S3."""
    return {
        "critical": TopicClass(retention=timedelta(days=7), replicate=True),
        "standard": TopicClass(retention=timedelta(days=3)),
        "archive": TopicClass(
            retention=timedelta(days=30), tiered=True, local_retention=timedelta(days=1)
        ),
    }


class Msk(Frozen):
    """The MSK cluster behind a ``kafka`` store, its topic classes and the replicator."""

    store: Slug
    kafka_version: str = Field(default="3.8.x", pattern=r"^\d+\.\d+\.(\d+|x)(\.[a-z]+)?$")
    instance_type: str = Field(default="kafka.m7g.large", pattern=r"^kafka\.[a-z0-9]+\.[a-z0-9]+$")
    broker_nodes: int = Field(default=3, ge=2)
    volume_gib: int = Field(default=1000, ge=1, le=16384)
    topic_classes: dict[Slug, TopicClass] = Field(default_factory=seed_topic_classes)
    topics: dict[str, Slug] = Field(default_factory=dict)
    """Topic name -> topic class; the critical ones are what the replicator copies to dr."""

    def replicated_topics(self) -> list[str]:
        return sorted(t for t, c in self.topics.items() if self.topic_classes[c].replicate)


class ElastiCache(Frozen):
    """The ElastiCache (Redis OSS) global datastore behind a ``redis`` store."""

    store: Slug
    engine_version: str = Field(default="7.1", pattern=r"^\d+\.\d+$")
    node_type: str = Field(default="cache.r7g.large", pattern=r"^cache\.[a-z0-9]+\.[a-z0-9]+$")
    nodes: int = Field(default=2, ge=2, le=6)
    """Primary plus replicas per region: automatic failover and Multi-AZ need two."""
    snapshot_retention_days: int = Field(default=7, ge=1, le=35)
    snapshot_window: str = Field(default="05:00-06:00", pattern=r"^\d{2}:\d{2}-\d{2}:\d{2}$")
    maintenance_window: str = Field(
        default="sun:06:30-sun:07:30", pattern=r"^[a-z]{3}:\d{2}:\d{2}-[a-z]{3}:\d{2}:\d{2}$"
    )
    auth_secret: str = Field(pattern=SECRET_NAME)
    """Secrets Manager secret (JSON with ``password``, 16-128 characters) holding the AUTH token;
    like the Aurora master secret, replicated outside the stacks and passed write-only."""
    auth_secret_version: int = Field(default=1, ge=1)


class Timestream(Frozen):
    """The Amazon Timestream for InfluxDB instance behind a ``timeseries`` store.

    Each stack creates its own region's instance: prod's is written to and backed up hourly
    (Parquet exports, the seed's historical-data method); dr's is the empty target a region-loss
    restore writes into. Timestream has no cross-region replica, so the store's RPO in dr is its
    backup schedule plus the vault's replication.
    """

    store: Slug
    instance_type: str = Field(default="db.influx.medium", pattern=r"^db\.influx\.[a-z0-9]+$")
    storage_type: Literal["InfluxIOIncludedT1", "InfluxIOIncludedT2", "InfluxIOIncludedT3"] = (
        "InfluxIOIncludedT1"
    )
    allocated_storage_gib: int = Field(default=100, ge=20, le=16384)
    deployment_type: Literal["SINGLE_AZ", "WITH_MULTIAZ_STANDBY"] = "WITH_MULTIAZ_STANDBY"
    organization: str = Field(default="trading", min_length=1, max_length=64)
    bucket: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_][A-Za-z0-9_-]{1,63}$")
    """The initial bucket, which InfluxDB's v1 API serves as a database of the same name (the
    backup's ``/query?db=``); default: the store's ``database``, or its name."""
    username: str = Field(default="admin", pattern=r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")
    auth_secret: str = Field(pattern=SECRET_NAME)
    """Secrets Manager secret (JSON with ``password``, 8-64 characters) holding the initial
    operator password, replicated to both regions outside the stacks like the others."""


class AwsBackup(Frozen):
    """The AWS Backup plan for the Aurora clusters (the seed's secondary backup)."""

    schedule: str = Field(default="cron(0 5 1 * ? *)", pattern=r"^cron\(.+\)$")
    """Monthly, on the 1st at 05:00 UTC."""
    delete_after_days: int = Field(default=90, ge=1)
    """Monthly snapshots are kept 90 days (the seed's compliance retention), in both vaults."""
    lock_changeable_for_days: int = Field(default=3, ge=3)
    """Vault Lock grace period; after it a compliance lock can no longer be removed by anyone."""


class Alerts(Frozen):
    emails: list[Annotated[str, Field(pattern=EMAIL)]] = Field(default_factory=list)
    """Subscribed to each region's alert topic (each address confirms its subscription)."""


class Budget(Frozen):
    limit_usd: int = Field(ge=1)
    cost_filters: dict[str, list[str]] = Field(default_factory=dict)
    """Cost Explorer dimension -> values (``Service``, ``UsageTypeGroup``, ``TagKeyValue``)."""


def seed_budgets() -> dict[str, Budget]:
    """000_6de71234cc3057c0.txt, cost monitoring: backup $10K, data transfer $5K, storage $15K."""
    return {
        "backup": Budget(limit_usd=10_000, cost_filters={"Service": ["AWS Backup"]}),
        "data-transfer": Budget(
            limit_usd=5_000,
            cost_filters={
                "UsageTypeGroup": [
                    "EC2: Data Transfer - Internet (Out)",
                    "EC2: Data Transfer - Region to Region (Out)",
                    "EC2: Data Transfer - Inter AZ",
                    "S3: Data Transfer - Internet (Out)",
                    "S3: Data Transfer - Region to Region (Out)",
                ]
            },
        ),
        "storage": Budget(
            limit_usd=15_000, cost_filters={"Service": ["Amazon Simple Storage Service"]}
        ),
    }


class DnsService(Frozen):
    """A name clients use for a store; it answers with the primary region until it is fenced."""

    store: Slug
    ttl: int = Field(ge=5, le=300)


class Dns(Frozen):
    """A private hosted zone with failover records (prod: zone, checks, primary; dr: secondary)."""

    zone_name: str = Field(pattern=DNS_NAME, max_length=253)
    vpc_ids: dict[Region, Annotated[str, Field(pattern=VPC_ID)]]
    """The VPC of each region the private zone answers in (both stacks' ``network.vpc_id``)."""
    services: dict[Annotated[str, Field(pattern=DNS_LABEL)], DnsService] = Field(min_length=1)


class Service(Frozen):
    """An application: the stores it uses and whether its DR workloads run before a failover.

    A failover starts a service's workloads (those labelled ``trading-dr/service=<name>``) as soon
    as the stores it uses are promoted, not once every store is. ``warm``: its workloads run in the
    DR region at their failover count all the time (they cost as much there as in prod), so the
    failover only restarts them to read the new primaries; for a service whose RTO is shorter
    than a cold start (an image pull, a node to add)."""

    stores: list[Slug] = Field(min_length=1)
    data_class: Slug
    """Its objectives (the seed's table is by service and data type)."""
    warm: bool = False


STACK_REFERENCE = r"^(?:[A-Za-z0-9][A-Za-z0-9_.-]*/){0,2}[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$"


def seed_retention_classes() -> dict[str, RetentionClass]:
    """000_6de71234cc3057c0.txt, compliance: financial 7 years, audit 3, system logs 1."""
    return {
        "financial": RetentionClass(days=7 * 365, object_lock=ObjectLockMode.COMPLIANCE),
        "audit": RetentionClass(days=3 * 365, object_lock=ObjectLockMode.COMPLIANCE),
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
    network: Network | None = None
    aurora: Aurora | None = None
    msk: Msk | None = None
    elasticache: ElastiCache | None = None
    timestream: Timestream | None = None
    aws_backup: AwsBackup = AwsBackup()
    alerts: Alerts = Alerts()
    budgets: dict[Slug, Budget] = Field(default_factory=seed_budgets)
    """Account-wide (AWS Budgets is global): created by the primary stack only."""
    dns: Dns | None = None
    services: dict[Slug, Service] = Field(default_factory=dict)
    """What each application uses; the failover plan orders each service after its own stores.
    Empty: every workload waits for every promotion."""
    isolated_vault_stack: str | None = Field(default=None, pattern=STACK_REFERENCE)
    """The ``vault`` stack (isolated backup account) this stack writes its third copy to, read
    through a StackReference (``vault`` or ``org/project/vault``); None: no isolated copy
    (``isolated_vault`` exported as null)."""

    @property
    def primary_region(self) -> str:
        """The region serving writes now: it flips when a failover is written back to config."""
        if self.active_region is not None:
            return self.active_region
        return self.region if self.role is Role.PRIMARY else self.peer_region

    def stores_of(self, kind: StoreKind) -> list[str]:
        """Names of the stores of ``kind``, in config order."""
        return [name for name, store in self.stores.items() if store.kind is kind]

    def retention_of(self, data_class: str) -> RetentionClass:
        return self.retention_classes[self.data_classes[data_class].retention]

    def journal_retention(self) -> RetentionClass:
        """The audit journal's retention: the audit data class's, else the ``audit`` retention
        class, else the longest (the audit bucket's Object Lock and each event's own lock)."""
        if self.audit_data_class is not None:
            return self.retention_of(self.audit_data_class)
        if "audit" in self.retention_classes:
            return self.retention_classes["audit"]
        return max(self.retention_classes.values(), key=lambda r: r.days)

    @model_validator(mode="after")
    def _cross_field_rules(self) -> Self:
        problems = [*self._region_problems(), *self._reference_problems()]
        problems += self._schedule_problems() + self._retention_problems()
        problems += self._data_store_problems() + self._dns_problems()
        problems += self._service_problems()
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

    def _data_store_problems(self) -> list[InitErrorDetails]:
        problems = []
        sections: list[tuple[str, Aurora | Msk | ElastiCache | Timestream | None, StoreKind]] = [
            ("aurora", self.aurora, StoreKind.POSTGRES),
            ("msk", self.msk, StoreKind.KAFKA),
            ("elasticache", self.elasticache, StoreKind.REDIS),
            ("timestream", self.timestream, StoreKind.TIMESERIES),
        ]
        for key, section, kind in sections:
            if section is None:
                continue
            store = self.stores.get(section.store)
            if store is None or store.kind is not kind:
                allowed = sorted(n for n, s in self.stores.items() if s.kind is kind)
                problems.append(
                    _problem(
                        (key, "store"),
                        section.store,
                        f"must name a store of kind {kind.value!r}; allowed: {allowed}",
                    )
                )
            if self.network is None:
                problems.append(
                    _problem(
                        ("network",),
                        None,
                        f"required when {key} is set: the VPC, subnets and client CIDRs "
                        "of the stack's data stores",
                    )
                )
        if self.msk is not None:
            for topic, topic_class in self.msk.topics.items():
                if topic_class not in self.msk.topic_classes:
                    problems.append(
                        _problem(
                            ("msk", "topics", topic),
                            topic_class,
                            f"unknown topic class; allowed: {sorted(self.msk.topic_classes)}",
                        )
                    )
        adopted = self.aurora.adopt_primary_cluster_identifier if self.aurora else None
        if adopted is not None and self.role is not Role.PRIMARY:
            problems.append(
                _problem(
                    ("aurora", "adopt_primary_cluster_identifier"),
                    adopted,
                    "only the primary stack adopts the global database's primary cluster",
                )
            )
        return problems

    def _dns_problems(self) -> list[InitErrorDetails]:
        if self.dns is None:
            return []
        problems = []
        allowed = {self.region, self.peer_region}
        if len(allowed) == 2 and set(self.dns.vpc_ids) != allowed:  # else: peer_region's problem
            problems.append(
                _problem(
                    ("dns", "vpc_ids"),
                    sorted(self.dns.vpc_ids),
                    f"must name the VPC of each of {sorted(allowed)}",
                )
            )
        fronted = {
            section.store for section in (self.aurora, self.elasticache) if section is not None
        }
        for name, service in self.dns.services.items():
            if service.store not in fronted:
                problems.append(
                    _problem(
                        ("dns", "services", name, "store"),
                        service.store,
                        "must be the store of the aurora or elasticache section (a DNS name "
                        f"fronts one endpoint per region); allowed: {sorted(fronted)}",
                    )
                )
                continue
            store = self.stores.get(service.store)
            data_class = self.data_classes.get(store.data_class) if store else None
            if store is None or data_class is None:
                continue
            switch = DNS_SWITCH_DETECTION + timedelta(seconds=service.ttl)
            if switch > data_class.rto:
                problems.append(
                    _problem(
                        ("dns", "services", name, "ttl"),
                        service.ttl,
                        f"the switch takes up to {format_duration(DNS_SWITCH_DETECTION)} plus "
                        f"the TTL, more than the RTO {format_duration(data_class.rto)} of data "
                        f"class {store.data_class!r}; allowed: a TTL of at most "
                        f"{max(0, int((data_class.rto - DNS_SWITCH_DETECTION).total_seconds()))}s",
                    )
                )
        return problems

    def _service_problems(self) -> list[InitErrorDetails]:
        return [
            _problem(
                ("services", name, "stores"),
                store,
                f"is not a store of this stack; allowed: {sorted(self.stores)}",
            )
            for name, service in self.services.items()
            for store in service.stores
            if store not in self.stores
        ] + [
            _problem(
                ("services", name, "data_class"),
                service.data_class,
                f"is not a data class; allowed: {sorted(self.data_classes)}",
            )
            for name, service in self.services.items()
            if service.data_class not in self.data_classes
        ]

    # ---- loading -----------------------------------------------------------------------------

    @classmethod
    def from_pulumi_config(cls, values: dict[str, Any], source: str) -> StackConfig:
        """Validate the project's config keys (without the ``trading-dr:`` prefix)."""
        try:
            return cls.model_validate(values)
        except ValidationError as error:
            raise ConfigError(source, problems_from(error, prefix=PROJECT)) from None

    @classmethod
    def from_config_keys(cls, config: dict[str, Any], source: str) -> StackConfig:
        """Validate a stack's ``config:`` mapping with its namespaced keys, as ``config.check``
        and the Pulumi program both read it: an unknown ``trading-dr:`` key (a misspelt field) and
        a key in no known namespace are problems, never ignored."""
        values, foreign = split_namespace(config)
        problems = [
            f"{key}: unknown key; keys of this project are {PROJECT}:<field>, or a provider's "
            "namespace (aws:, gcp:, kubernetes:, pulumi:)"
            for key in foreign
        ]
        try:
            validated = cls.model_validate(values)
        except ValidationError as error:
            problems += problems_from(error, prefix=PROJECT)
        if problems:
            raise ConfigError(source, problems)
        return validated

    @classmethod
    def load(cls, path: Path) -> StackConfig:
        """Read ``Pulumi.<stack>.yaml``: the keys under ``config:`` in this project's namespace."""
        return cls.from_config_keys(read_config_section(path), str(path))

    @classmethod
    def for_stack(cls, stack: str, project_dir: Path | None = None) -> StackConfig:
        return cls.load((project_dir or Path.cwd()) / f"Pulumi.{stack}.yaml")


_PROVIDER_NAMESPACES = ("aws:", "gcp:", "kubernetes:", "pulumi:")


def read_config_section(path: Path) -> dict[str, Any]:
    """The ``config:`` mapping of a stack file, read strictly (bounded, UTF-8, no key given
    twice); ``ConfigError`` naming the file and the problem."""
    try:
        document = load_strict(read_text(path, what="stack config"))
    except UnreadableFile as error:
        reason = "file not found" if error.reason == "not found" else error.reason
        raise ConfigError(str(path), [reason]) from None
    except DuplicateKey as error:
        raise ConfigError(str(path), [str(error)]) from None
    except yaml.YAMLError as error:
        raise ConfigError(str(path), [f"not valid YAML: {error}"]) from None
    if not isinstance(document, dict) or not isinstance(document.get("config"), dict):
        raise ConfigError(str(path), ["config: missing; a mapping of keys is required"])
    return dict(document["config"])


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


# ---- the isolated backup account (stack ``vault``) -------------------------------------------

ACCOUNT_ID = r"^\d{12}$"


def _account_text(value: Any) -> Any:
    """An account id the Pulumi CLI handed over as a number (config values arrive as strings and
    the entry point decodes JSON): back to its 12 digits, leading zeros included."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 10**12:
        return f"{value:012d}"
    return value


AccountId = Annotated[str, BeforeValidator(_account_text), Field(pattern=ACCOUNT_ID)]
ROLE_NAME_PATTERN = r"^[A-Za-z0-9+=,.@_*-]{1,64}$"
"""An IAM role name, ``*`` allowed (``aipx-backup-*-us-east-1``: every store's backup role)."""
VAULT_PREFIX = r"^[a-z0-9][a-z0-9_-]*/(?:[a-z0-9][a-z0-9_.-]*/)*$"
CATALOG_PREFIX = "catalog/"
"""Where the backup catalog lives in a vault (``drkit.catalog``): writable like a class prefix."""


class VaultWriter(Frozen):
    """A production account whose backup roles create objects in the isolated vault.

    ``roles``: role names in ``account_id`` (``*`` allowed); the vault's bucket and key policies
    name the account and condition on ``aws:PrincipalArn``, so the roles need not exist before the
    vault stack does. ``prefixes``: where they may create objects; empty: every data class's
    prefix and ``catalog/``."""

    account_id: AccountId
    roles: list[Annotated[str, Field(pattern=ROLE_NAME_PATTERN)]] = Field(min_length=1)
    prefixes: list[Annotated[str, Field(pattern=VAULT_PREFIX)]] = Field(default_factory=list)


class VaultReader(Frozen):
    """Who may assume the vault's reader role for restores: the named roles of the dr account
    (the trust names the account and conditions on ``aws:PrincipalArn``, so no other principal
    of that account, its root and administrators included, can assume it)."""

    account_id: AccountId
    roles: list[IamRoleName] = Field(min_length=1)
    max_session_hours: int = Field(default=1, ge=1, le=12)


class VaultDataClass(Frozen):
    """A data class as the isolated vault keeps it: its retention class and storage tiers."""

    retention: Slug
    lifecycle: Lifecycle = Lifecycle()


class VaultStackConfig(Frozen):
    """The isolated backup account's stack (``Pulumi.vault.yaml``, role ``vault``): its own AWS
    account and region, the production accounts it serves, and nothing read from prod or dr."""

    platform: Slug
    role: Literal["vault"]
    account_id: AccountId
    """The vault account: ``pulumi up`` refuses to run with credentials of another account."""
    region: Region
    access: Access = Access()
    """Roles of the vault account: administrators manage the key, break-glass recovers it."""
    writers: dict[Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{0,40}$")], VaultWriter] = Field(
        min_length=1
    )
    """By stack name (``prod``, ``dr``): what each production account may create."""
    reader: VaultReader
    data_classes: dict[Slug, VaultDataClass] = Field(min_length=1)
    retention_classes: dict[Slug, RetentionClass] = Field(default_factory=seed_retention_classes)
    audit_retention: Slug = "audit"
    """The retention class of the audit trail's bucket (CloudTrail's log files)."""
    key_rotation_days: int = Field(default=365, ge=90, le=2560)

    def retention_of(self, data_class: str) -> RetentionClass:
        return self.retention_classes[self.data_classes[data_class].retention]

    def prefixes_of(self, writer: str) -> list[str]:
        """The writer's prefixes: its own, or every data class's and the catalog's."""
        given = self.writers[writer].prefixes
        return list(given) if given else [*(f"{n}/" for n in self.data_classes), CATALOG_PREFIX]

    @model_validator(mode="after")
    def _cross_field_rules(self) -> Self:
        problems: list[InitErrorDetails] = []
        allowed = sorted(self.retention_classes)
        for name, data_class in self.data_classes.items():
            retention = self.retention_classes.get(data_class.retention)
            if retention is None:
                problems.append(
                    _problem(
                        ("data_classes", name, "retention"),
                        data_class.retention,
                        f"unknown retention class; allowed: {allowed}",
                    )
                )
            elif retention.days <= data_class.lifecycle.last_tier_days:
                problems.append(
                    _problem(
                        ("data_classes", name, "retention"),
                        data_class.retention,
                        f"keeps data {retention.days} days, not longer than the last lifecycle "
                        f"tier at {data_class.lifecycle.last_tier_days} days",
                    )
                )
        if self.audit_retention not in self.retention_classes:
            problems.append(
                _problem(
                    ("audit_retention",),
                    self.audit_retention,
                    f"unknown retention class; allowed: {allowed}",
                )
            )
        tops = {f"{n}/" for n in self.data_classes} | {CATALOG_PREFIX}
        for name, writer in self.writers.items():
            if writer.account_id == self.account_id:
                problems.append(
                    _problem(
                        ("writers", name, "account_id"),
                        writer.account_id,
                        "is the vault's own account: a writer must be a production account, "
                        "or the vault is not isolated from it",
                    )
                )
            for i, prefix in enumerate(writer.prefixes):
                if not any(prefix.startswith(top) for top in tops):
                    problems.append(
                        _problem(
                            ("writers", name, "prefixes", str(i)),
                            prefix,
                            "must lie under a data class's prefix or the catalog's (their "
                            f"lifecycle and lock rules cover it); allowed: under {sorted(tops)}",
                        )
                    )
        if self.reader.account_id == self.account_id:
            problems.append(
                _problem(
                    ("reader", "account_id"),
                    self.reader.account_id,
                    "is the vault's own account: the reader role is assumed from the dr account",
                )
            )
        if problems:
            raise ValidationError.from_exception_data(type(self).__name__, problems)
        return self

    @classmethod
    def from_config_keys(cls, config: dict[str, Any], source: str) -> VaultStackConfig:
        """As ``StackConfig.from_config_keys``: unknown and foreign keys are problems."""
        values, foreign = split_namespace(config)
        problems = [
            f"{key}: unknown key; keys of this project are {PROJECT}:<field>, or a provider's "
            "namespace (aws:, gcp:, kubernetes:, pulumi:)"
            for key in foreign
        ]
        try:
            validated = cls.model_validate(values)
        except ValidationError as error:
            problems += problems_from(error, prefix=PROJECT)
        if problems:
            raise ConfigError(source, problems)
        return validated

    @classmethod
    def load(cls, path: Path) -> VaultStackConfig:
        return cls.from_config_keys(read_config_section(path), str(path))


VAULT_ROLE = "vault"


def is_vault_config(config: dict[str, Any]) -> bool:
    """Whether a stack's ``config:`` mapping (namespaced keys) is a vault stack's."""
    return config.get(f"{PROJECT}:role") == VAULT_ROLE


def any_stack_config(config: dict[str, Any], source: str) -> StackConfig | VaultStackConfig:
    """The model the stack's ``role`` picks: ``vault`` is ``VaultStackConfig``."""
    if is_vault_config(config):
        return VaultStackConfig.from_config_keys(config, source)
    return StackConfig.from_config_keys(config, source)


def load_any(path: Path) -> StackConfig | VaultStackConfig:
    return any_stack_config(read_config_section(path), str(path))
