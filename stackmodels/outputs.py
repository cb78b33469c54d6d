"""The stack outputs: everything ops needs to find, exported by infra under exactly these names.

Ops reads them from Pulumi (``pulumi stack output --json --show-secrets -s STACK``) or from a JSON
file (``--outputs FILE``, which the local environment writes), so a renamed resource breaks a test
rather than a 3 a.m. failover.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from stackmodels.config import Role, StoreKind
from stackmodels.errors import OutputsError, format_location
from stackmodels.strict_yaml import UnreadableFile, read_text


class Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Bucket(Frozen):
    name: str = Field(min_length=3, max_length=63)
    arn: str = Field(pattern=r"^arn:aws[a-z-]*:s3:::")
    region: str


MAX_OUTPUTS_BYTES = 4 * 1024 * 1024
"""Stack outputs are a few kilobytes of JSON; more is not an outputs file (``/dev/zero``)."""
KMS_KEY_ARN = r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/"


class VaultReplication(Frozen):
    """How the primary vault copies every new backup to the dr vault (S3 Replication Time Control).

    prod exports it; dr re-exports what it read from prod, so a failover still knows it.
    """

    source: Bucket
    destination: Bucket
    role_arn: str = Field(pattern=r"^arn:aws[a-z-]*:iam::\d{12}:role/")
    destination_key_arn: str = Field(pattern=KMS_KEY_ARN)
    """The dr region's replica of the vault key: replicas are re-encrypted with it."""
    replication_time_minutes: int = Field(ge=1)
    """The Replication Time Control threshold: 99.99% of objects replicate within it."""
    enabled: bool = True
    """False only while bootstrapping a new environment (``replicate_vault: false``)."""


StoreAuth = Literal["none", "msk-iam"]
"""How a client proves who it is beyond the credentials secret: ``msk-iam`` is MSK's IAM
authentication (TLS + SASL/OAUTHBEARER with a SigV4 token); ``none`` adds nothing."""


class StoreService(StrEnum):
    """What serves a store: a server the platform runs itself, or an AWS managed service.

    The backup path of a store follows from it (``drkit.handlers``): a self-hosted Redis is saved
    with BGSAVE or read over replication, ElastiCache (which refuses both) is snapshotted and the
    snapshot exported to the vault by AWS.
    """

    POSTGRESQL = "postgresql"
    AURORA_POSTGRESQL = "aurora-postgresql"
    KAFKA = "kafka"
    MSK = "msk"
    REDIS = "redis"
    ELASTICACHE = "elasticache"
    KUBERNETES = "kubernetes"
    INFLUXDB = "influxdb"
    TIMESTREAM_INFLUXDB = "timestream-influxdb"


SERVICE_KINDS: dict[StoreService, StoreKind] = {
    StoreService.POSTGRESQL: StoreKind.POSTGRES,
    StoreService.AURORA_POSTGRESQL: StoreKind.POSTGRES,
    StoreService.KAFKA: StoreKind.KAFKA,
    StoreService.MSK: StoreKind.KAFKA,
    StoreService.REDIS: StoreKind.REDIS,
    StoreService.ELASTICACHE: StoreKind.REDIS,
    StoreService.KUBERNETES: StoreKind.KUBERNETES,
    StoreService.INFLUXDB: StoreKind.TIMESERIES,
    StoreService.TIMESTREAM_INFLUXDB: StoreKind.TIMESERIES,
}
"""The kind of store each service serves."""

SELF_HOSTED: dict[StoreKind, StoreService] = {
    StoreKind.POSTGRES: StoreService.POSTGRESQL,
    StoreKind.KAFKA: StoreService.KAFKA,
    StoreKind.REDIS: StoreService.REDIS,
    StoreKind.KUBERNETES: StoreService.KUBERNETES,
    StoreKind.TIMESERIES: StoreService.INFLUXDB,
}
"""The service an endpoint that names none is: the kind's own server, run by the platform."""

SERVICES_WITHOUT_CREDENTIALS = frozenset(
    {StoreService.KAFKA, StoreService.MSK, StoreService.ELASTICACHE, StoreService.KUBERNETES}
)
"""Backed up without the store's user and password: Kafka and MSK read with the job's identity
(IAM for MSK), ElastiCache through the AWS API (snapshot and export), Kubernetes with the pod's
service account. The others' CronJobs take ``DRKIT_<STORE>_USER``/``_PASSWORD`` from a Secret."""

SERVICE_NAMES: dict[StoreService, str] = {
    StoreService.POSTGRESQL: "a self-hosted PostgreSQL",
    StoreService.AURORA_POSTGRESQL: "an Aurora PostgreSQL cluster",
    StoreService.KAFKA: "a self-hosted Kafka cluster",
    StoreService.MSK: "an MSK cluster",
    StoreService.REDIS: "a self-hosted Redis",
    StoreService.ELASTICACHE: "an ElastiCache replication group",
    StoreService.KUBERNETES: "a Kubernetes cluster",
    StoreService.INFLUXDB: "a self-hosted InfluxDB",
    StoreService.TIMESTREAM_INFLUXDB: "a Timestream for InfluxDB instance",
}


class StoreEndpoint(Frozen):
    """Where a protected store answers; the secret that holds its credentials, never the secret."""

    kind: StoreKind
    service: StoreService
    """What serves the store; omitted, the kind's self-hosted server (``SELF_HOSTED``)."""
    host: str
    port: int = Field(ge=1, le=65535)
    auth: StoreAuth = "none"
    database: str | None = None
    credentials_secret: str | None = None
    resource_id: str | None = None
    data_path: str | None = None
    """Where the backup job sees the store's data file on a shared volume (a self-hosted Redis's
    dump.rdb); None when the data comes only over the network."""
    tls: bool = False
    """Clients must speak TLS (ElastiCache with in-transit encryption, Timestream for InfluxDB)."""
    tls_ca_file: str | None = None
    """The CA bundle that signed the server's certificate, when not a public CA (local only)."""

    @model_validator(mode="before")
    @classmethod
    def _default_service(cls, values: Any) -> Any:
        if isinstance(values, dict) and values.get("service") is None and "kind" in values:
            try:
                kind = StoreKind(values["kind"])
            except ValueError:
                return values  # the field's own error names the kind
            return {**values, "service": SELF_HOSTED[kind].value}
        return values

    @model_validator(mode="after")
    def _service_serves_kind(self) -> Self:
        served = SERVICE_KINDS[self.service]
        if served is not self.kind:
            raise ValueError(
                f"service {self.service.value!r} ({SERVICE_NAMES[self.service]}) serves kind "
                f"{served.value!r}, not the exported kind {self.kind.value!r}"
            )
        return self

    def describe(self) -> str:
        return f"{SERVICE_NAMES[self.service]} ({self.service.value}) at {self.host}:{self.port}"


ARN = r"^arn:aws[a-z-]*:"


class AuroraCluster(Frozen):
    """One member cluster of the global database, in its region."""

    id: str
    arn: str = Field(pattern=r"^arn:aws[a-z-]*:rds:")
    region: str
    endpoint: str
    """The cluster (writer) endpoint: active in the primary, live after promotion in dr."""
    reader_endpoint: str
    port: int = Field(default=5432, ge=1, le=65535)


class AuroraOutputs(Frozen):
    """The Aurora PostgreSQL global database: what ``invoke failover`` switches over."""

    global_cluster_id: str
    global_cluster_arn: str = Field(pattern=ARN)
    global_writer_endpoint: str | None = None
    """Follows the writer across a switchover or failover (Aurora's global writer endpoint)."""
    primary_region: str
    """The region the stack config says writes now (``active_region``)."""
    clusters: dict[str, AuroraCluster] = Field(default_factory=dict)
    """By region: prod exports its own; dr exports its own and prod's (read from prod)."""
    database: str | None = None
    master_secret: str | None = None
    """The Secrets Manager secret (replicated to both regions) holding the master password."""


class MskCluster(Frozen):
    arn: str = Field(pattern=r"^arn:aws[a-z-]*:kafka:")
    name: str
    region: str
    bootstrap_brokers_sasl_iam: str | None = None
    """Comma-separated ``host:9098`` list (IAM auth); unknown until the cluster exists."""
    security_group_id: str
    subnet_ids: list[str] = Field(default_factory=list)


class TopicClassOutputs(Frozen):
    retention_ms: int = Field(ge=1)
    local_retention_ms: int | None = None
    replicated: bool = False
    tiered: bool = False


class MskOutputs(Frozen):
    clusters: dict[str, MskCluster] = Field(default_factory=dict)
    """By region (dr lists prod's too)."""
    replicator_arn: str | None = None
    """The MSK Replicator prod -> dr (it lives in the dr region; dr exports it)."""
    replicated_topics: list[str] = Field(default_factory=list)
    topic_classes: dict[str, TopicClassOutputs] = Field(default_factory=dict)
    topics: dict[str, str] = Field(default_factory=dict)
    """Topic -> topic class: what a topic is created with (retention, tiered storage)."""


class ReplicationGroup(Frozen):
    id: str
    arn: str = Field(pattern=r"^arn:aws[a-z-]*:elasticache:")
    region: str
    primary_endpoint: str
    reader_endpoint: str | None = None
    port: int = Field(default=6379, ge=1, le=65535)
    export_bucket: str | None = None
    """The staging bucket in this group's region that ElastiCache exports its snapshots to
    (``components.cache_export``); the backup streams them from there into the vault."""


class ElastiCacheOutputs(Frozen):
    global_datastore_id: str
    """The global replication group (``<prefix>-<suffix>``): failover promotes a member of it."""
    primary_region: str
    replication_groups: dict[str, ReplicationGroup] = Field(default_factory=dict)
    auth_secret: str | None = None


class FailoverSwitch(Frozen):
    """How ``invoke failover`` fences a service's primary without touching Route 53's API.

    Publish ``metric`` = 1 in ``namespace`` with ``dimensions`` in ``region`` (the dr region, up
    while the primary is dark): the alarm goes to ALARM and stays there (missing data keeps its
    state), the primary's health check turns unhealthy and Route 53's data plane answers with the
    secondary record. Publishing 0 lifts the fence.
    """

    alarm_name: str
    region: str
    namespace: str
    metric: str
    dimensions: dict[str, str]
    health_check_id: str | None = None
    """The primary's health check that reads the alarm (created by prod)."""


class DnsRecord(Frozen):
    set_identifier: str
    target: str
    region: str


class DnsService(Frozen):
    name: str
    """The fully qualified name clients use."""
    type: str = "CNAME"
    ttl: int = Field(ge=1)
    store: str
    primary: DnsRecord | None = None
    secondary: DnsRecord | None = None


class DnsOutputs(Frozen):
    zone_id: str
    zone_name: str
    services: dict[str, DnsService] = Field(default_factory=dict)
    switches: dict[str, FailoverSwitch] = Field(default_factory=dict)


class BackupVaultRef(Frozen):
    name: str
    arn: str = Field(pattern=r"^arn:aws[a-z-]*:backup:")
    region: str


class AwsBackupOutputs(Frozen):
    vaults: dict[str, BackupVaultRef] = Field(default_factory=dict)
    """AWS Backup vaults by region (dr lists prod's too)."""
    plan_id: str | None = None
    plan_arn: str | None = None
    role_arn: str | None = None
    lock_mode: str | None = None
    """``compliance`` or ``governance`` (Vault Lock)."""


class Alarm(Frozen):
    name: str
    region: str
    what: str
    """``freshness``, ``replication-lag``, ``replication-failures``."""
    store: str | None = None


class IsolatedVault(Frozen):
    """The isolated backup account's vault (stack ``vault``, its own AWS account and region): a
    third, create-only copy. The production accounts' writer roles may only create objects under
    their prefixes; no principal outside the vault account may delete, overwrite, change retention
    or change the policy. Restores read it through ``reader_role_arn``."""

    account_id: str = Field(pattern=r"^\d{12}$")
    bucket: Bucket
    kms_key_arn: str = Field(pattern=KMS_KEY_ARN)
    """The vault account's own key (owned and administered there)."""
    reader_role_arn: str = Field(pattern=r"^arn:aws[a-z-]*:iam::\d{12}:role/")
    """Assumed by the dr account's operators for restores and verify (``--source isolated``)."""
    endpoint_url: str | None = None
    """Only the local environment sets it: the isolated account's own AWS API emulator."""


class VaultWriterGrant(Frozen):
    """What the vault accepts from one production account (``VaultStackConfig.writers``)."""

    account_id: str = Field(pattern=r"^\d{12}$")
    role_arns: list[str] = Field(min_length=1)
    """ARN patterns (``*`` allowed) the bucket and key policies match ``aws:PrincipalArn`` to."""
    prefixes: list[str] = Field(min_length=1)


class VaultStackOutputs(Frozen):
    """The ``vault`` stack's exports (not ``StackOutputs``: it has no stores, no region pair).

    prod and dr read ``isolated_vault`` (re-exported as their own ``isolated_vault``) and
    ``writers`` (to check that the vault accepts their account) through a StackReference."""

    stack: str
    role: Literal["vault"]
    platform: str
    account_id: str = Field(pattern=r"^\d{12}$")
    region: str
    isolated_vault: IsolatedVault
    writers: dict[str, VaultWriterGrant] = Field(min_length=1)
    access_log_bucket: Bucket
    audit_bucket: Bucket
    """Where the audit trail (CloudTrail, the vault's S3 data events) delivers, locked."""
    trail_arn: str = Field(pattern=r"^arn:aws[a-z-]*:cloudtrail:")

    @classmethod
    def output_names(cls) -> list[str]:
        return list(cls.model_fields)

    @classmethod
    def parse(cls, values: Any, stack: str) -> VaultStackOutputs:
        if not isinstance(values, dict):
            raise OutputsError(stack, [f"expected a JSON object of outputs, got {type(values)}"])
        try:
            return cls.model_validate(values)
        except ValidationError as error:
            raise OutputsError(stack, _describe(error)) from None


class StackOutputs(Frozen):
    """One stack's exports. Keys are the Pulumi output names, one to one."""

    stack: str
    role: Role
    region: str
    platform: str
    backup_vault: Bucket
    """This stack's region's vault: backups are written here (``<data class>/<store>/...``)."""
    vault_key_arn: str = Field(pattern=r"^arn:aws[a-z-]*:kms:")
    """This region's vault key: the multi-region primary in prod, its replica in dr."""
    audit_bucket: Bucket
    """This region's operations journal (who ran what, when, with what result), Object Locked."""
    gcs_mirror_bucket: str
    """The one GCS mirror (created by prod; dr re-exports it)."""
    backup_vaults: dict[str, Bucket] = Field(default_factory=dict)
    """Every vault this stack knows, by region: prod lists its own and the dr vault it replicates
    to; dr lists its own and prod's (read through the StackReference) for a failover."""
    vault_key_arns: dict[str, str] = Field(default_factory=dict)
    """The vault key of each region in ``backup_vaults``."""
    vault_replication: VaultReplication | None = None
    """prod vault -> dr vault; exported by both stacks."""
    access_log_bucket: Bucket | None = None
    """Where S3 server access logs of the vault and audit bucket go (this region)."""
    backup_writer_role_arn: str | None = None
    """The IAM role backup jobs write to the vault with (this region)."""
    gcs_mirror_key: str | None = None
    """The Cloud KMS crypto key id the mirror encrypts with by default."""
    gcs_writer_service_account: str | None = None
    """The service account backup jobs write to the mirror with (objectCreator + objectViewer)."""
    ecr_repositories: dict[str, str] = Field(default_factory=dict)
    """Container repositories of this region: name -> repository URL."""
    aurora: AuroraOutputs | None = None
    msk: MskOutputs | None = None
    elasticache: ElastiCacheOutputs | None = None
    dns: DnsOutputs | None = None
    aws_backup: AwsBackupOutputs | None = None
    alerts_topic_arn: str | None = None
    """This region's SNS topic every alarm and budget notifies."""
    alerts_topic_arns: dict[str, str] = Field(default_factory=dict)
    """Every region's alert topic this stack knows (dr lists prod's too)."""
    alarms: dict[str, Alarm] = Field(default_factory=dict)
    """The CloudWatch alarms of this stack by key (``freshness-<store>``, ...)."""
    k8s_namespace: str
    k8s_backup_namespace: str
    stores: dict[str, StoreEndpoint] = Field(default_factory=dict)
    isolated_vault: IsolatedVault | None = None
    """The isolated backup account's vault, read from the ``vault`` stack (StackReference)."""
    aws_endpoint_url: str | None = None
    """Only the local environment sets it: the AWS API emulator's URL."""
    gcs_endpoint_url: str | None = None
    """Only the local environment sets it: the GCS emulator's URL."""

    @classmethod
    def output_names(cls) -> list[str]:
        return list(cls.model_fields)

    @classmethod
    def parse(cls, values: Any, stack: str) -> StackOutputs:
        """Validate raw outputs; each missing or mistyped output is named with the stack."""
        if not isinstance(values, dict):
            raise OutputsError(stack, [f"expected a JSON object of outputs, got {type(values)}"])
        try:
            return cls.model_validate(values)
        except ValidationError as error:
            raise OutputsError(stack, _describe(error)) from None

    @classmethod
    def from_file(cls, path: Path, stack: str | None = None) -> StackOutputs:
        name = stack or path.stem
        try:
            values = json.loads(read_text(path, MAX_OUTPUTS_BYTES, what="outputs file"))
        except UnreadableFile as error:  # missing, a directory, /dev/zero, not UTF-8
            raise OutputsError(name, [str(error)]) from None
        except json.JSONDecodeError as error:
            raise OutputsError(name, [f"outputs file {path} is not JSON: {error}"]) from None
        return cls.parse(values, name)

    @classmethod
    def from_pulumi(cls, stack: str, cwd: Path | None = None) -> StackOutputs:
        """Ask the Pulumi CLI; it reads the state backend, not the (possibly dead) region."""
        pulumi = shutil.which("pulumi")
        if pulumi is None:
            raise OutputsError(
                stack,
                [
                    "the pulumi CLI is not on PATH (looked in $PATH): install it from "
                    "https://www.pulumi.com/docs/install/ (it is not on PyPI) and run "
                    "`pulumi login`, or pass --outputs FILE"
                ],
            )
        command = [pulumi, "stack", "output", "--json", "--show-secrets", "--stack", stack]
        result = subprocess.run(command, capture_output=True, text=True, cwd=cwd, check=False)
        if result.returncode != 0:
            raise OutputsError(stack, [f"`{' '.join(command)}` failed: {result.stderr.strip()}"])
        return cls.parse(json.loads(result.stdout), stack)

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.model_dump_json(indent=2) + "\n")

    def check_kinds(self, kinds: dict[str, StoreKind], source: str) -> None:
        """Refuse outputs that export a store as another kind than the stack config gives it
        (``kinds``: store -> kind, from ``source``): one line per store, naming both."""
        problems = []
        for store, endpoint in sorted(self.stores.items()):
            kind = kinds.get(store)
            if kind is not None and kind is not endpoint.kind:
                problems.append(
                    f"store {store!r} is of kind {kind.value!r} in {source}, but the outputs "
                    f"export {SERVICE_NAMES[endpoint.service]} for it (service "
                    f"{endpoint.service.value!r}, kind {endpoint.kind.value!r})"
                )
        if problems:
            raise OutputsError(self.stack, problems)


def _describe(error: ValidationError) -> list[str]:
    lines = []
    for item in error.errors(include_url=False):
        name = format_location(item["loc"])
        if item["type"] == "missing":
            lines.append(f"output {name!r} is missing")
        elif item["type"] == "value_error":
            lines.append(f"output {name!r}: {item['msg'].removeprefix('Value error, ')}")
        elif item["type"] == "extra_forbidden":
            lines.append(f"output {name!r} is not one this kit knows (renamed in infra?)")
        else:
            lines.append(f"output {name!r} = {item.get('input')!r}: {item['msg']}")
    return lines
