"""The backup CronJobs: one per store, each running ``python -m drkit backup <store>`` on schedule.

They live in a namespace of their own that enforces the ``restricted`` Pod Security Standard and
accepts no inbound traffic. Every pod runs the image built by the repo's Dockerfile as UID 10001
with a read-only root filesystem, no capabilities and the runtime's seccomp profile; it writes
only ``/tmp`` (an emptyDir). It reads:

- the stack's config and outputs from one ConfigMap mounted at ``/etc/drkit`` (``DRKIT_PROJECT``
  and ``DRKIT_OUTPUTS``), so a run uses exactly what the stack was deployed with, not what an
  image happened to be built with;
- the store's credentials from its Secret (``<store>-backup-credentials``, keys ``username`` and
  ``password``, the ``kubernetes.io/basic-auth`` layout) through ``secretKeyRef``: never a literal
  value in a manifest or in Pulumi state. The Secrets are made outside this program (synced from
  the secret store), so a password never passes through Pulumi;
- AWS credentials through IRSA: the service account names the store's role
  (components/backup_iam.py) and asks for regional STS, so the dr cluster never needs us-east-1.

Timing follows from the schedule's shortest gap between two runs (``Cron.min_interval``):
``concurrencyPolicy: Forbid`` never lets two runs of a store overlap (the engine relies on it to
abort a killed run's uploads); a run may start at most ``startingDeadlineSeconds`` late
(min(300 s, half the gap)); ``activeDeadlineSeconds`` ends a hung run (retries included) before the
next is due, so a stuck pg_dump costs one run, not every run after it. One retry
(``backoffLimit: 1``) for transient failures; exit code 2 (bad input: nothing was done) fails the
Job at once, and an evicted or preempted pod does not count as a failure (``podFailurePolicy``).

Memory is bounded by the engine's design, not by the data size (see ``ENGINE_MEMORY_MIB``).

Only the store of kind ``kubernetes`` talks to the Kubernetes API, with its pod's own service
account, so only its ServiceAccount gets RBAC (``state_namespace``; the others get none):

- a Role in the application namespace with ``list`` on every resource of every API group. The
  backup discovers the namespaced kinds at run time (custom resources included; see
  ``drkit.kubestate.reader``), so the kinds cannot be enumerated at deploy time, and it reads each
  with paginated lists only. ``get`` is left out on purpose: on ``*`` it would also cover the
  ``get`` subresources (``pods/log``, ``pods/proxy``, ``services/proxy``), that is, reaching the
  application's pods through the API server. No write verb, no ``watch``;
- a ClusterRole with ``get``/``list`` on ``customresourcedefinitions`` (the backup stores the
  definitions of the custom resources it finds) and on the application's own namespace object
  only (``resourceNames``: the backup reads it with a ``metadata.name`` field selector);
- a RoleBinding and a ClusterRoleBinding of those to the ServiceAccount. The CronJob waits for
  them, so its first run is not refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Literal, Self

import pulumi
import pulumi_kubernetes as k8s
from pydantic import AfterValidator, Field, model_validator

from components._common import (
    PACKAGE,
    ComponentArgs,
    IamRoleArnInput,
    StrInput,
    child_opts,
    require_provider,
)
from stackmodels.config import IMAGE_REFERENCE, StoreKind
from stackmodels.schedule import Cron, CronExpression

RUN_AS = 10001
"""The image's numeric non-root user and group (Dockerfile ``USER 10001:10001``)."""
CONTAINER = "backup"
TIME_ZONE = "Etc/UTC"
CONFIG_DIR = "/etc/drkit"
OUTPUTS_FILE = "outputs.json"
CONFIG_MAP = "drkit-stack"
GCP_CREDENTIALS_DIR = "/var/run/secrets/drkit/gcp"
GCP_CREDENTIALS_FILE = "credentials.json"
ROLE_ARN_ANNOTATION = "eks.amazonaws.com/role-arn"
RBAC_API_GROUP = "rbac.authorization.k8s.io"
READ_STATE_VERBS = ["list"]
"""In the application namespace: the backup reads every kind with paginated lists only."""
READ_CLUSTER_VERBS = ["get", "list"]

MAX_STARTING_DEADLINE_SECONDS = 300
END_MARGIN_SECONDS = 60
"""Between a hung run's deadline and the next run: the pod's 30 s grace period, and some slack."""
MIN_ACTIVE_DEADLINE_SECONDS = 60
BACKOFF_LIMIT = 1
SUCCESSFUL_JOBS_HISTORY = 3
FAILED_JOBS_HISTORY = 5
EXIT_BAD_INPUT = 2
"""``python -m drkit``: 0 committed, 1 backup failed (worth a retry), 2 bad input (never is)."""

PART_MIB = 16
"""drkit.storage.objectstore.DEFAULT_PART_SIZE: the S3 part / GCS chunk each destination holds."""
QUEUE_CHUNKS, CHUNK_MIB = 4, 1
"""drkit.storage.tee.ThreadedWriter depth x drkit.backup.engine.COMPRESSED_CHUNK."""
DESTINATIONS = 2
"""The vault and the GCS mirror, written at once from one read of the source."""
RUNTIME_MIB = 128
"""Python with drkit, boto3 (S3, CloudWatch) and google-cloud-storage clients: ~100 MiB measured."""
COMPRESSOR_MIB = 64
"""zstd level 3 with two worker threads (drkit.backup.engine): ~50 MiB measured over 200 MiB."""
DUMP_TOOL_MIB = 64
"""pg_dump / redis-cli / the Kafka consumer's bounded queue: the child runs in the same cgroup."""
ENGINE_MEMORY_MIB = (
    RUNTIME_MIB
    + DESTINATIONS * (2 * PART_MIB + QUEUE_CHUNKS * CHUNK_MIB)  # a part being filled + one sent
    + COMPRESSOR_MIB
    + DUMP_TOOL_MIB
)
"""What one run needs whatever the data size: 128 + 2 x 36 + 64 + 64 = 328 MiB."""

_K8S_NAME = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
_QUANTITY = re.compile(r"^(\d+(?:\.\d+)?)(m|Ki|Mi|Gi|Ti)?$")
_MEMORY_UNITS = {"Ki": 1 / 1024, "Mi": 1, "Gi": 1024, "Ti": 1024 * 1024}


def cronjob_name(store: str) -> str:
    return f"backup-{store}"


def service_account_name(store: str) -> str:
    """The IRSA subject is ``system:serviceaccount:<namespace>:<this>`` (components/backup_iam)."""
    return f"backup-{store}"


def rbac_name(namespace: str, store: str) -> str:
    """``dr-backups:backup-app-state``: the Roles and bindings of the service account
    ``<namespace>/backup-<store>``, named for it (cluster-wide names must not collide)."""
    return f"{namespace}:{service_account_name(store)}"


def state_reader_rules() -> list[k8s.rbac.v1.PolicyRuleArgsDict]:
    """The Role in the application namespace (module docstring: why ``*``, why no ``get``)."""
    return [{"api_groups": ["*"], "resources": ["*"], "verbs": READ_STATE_VERBS}]


def cluster_reader_rules(state_namespace: str) -> list[k8s.rbac.v1.PolicyRuleArgsDict]:
    """The ClusterRole: the CRDs, and the application's namespace object (by name only)."""
    return [
        {
            "api_groups": ["apiextensions.k8s.io"],
            "resources": ["customresourcedefinitions"],
            "verbs": READ_CLUSTER_VERBS,
        },
        {
            "api_groups": [""],
            "resources": ["namespaces"],
            "resource_names": [state_namespace],
            "verbs": READ_CLUSTER_VERBS,
        },
    ]


def env_prefix(store: str) -> str:
    """``trading-db`` -> ``DRKIT_TRADING_DB`` (drkit.context.env_prefix, which reads them)."""
    return "DRKIT_" + store.upper().replace("-", "_")


def mebibytes(quantity: str) -> float:
    """A memory quantity in MiB; binary units only, so ``512M`` (not 512 MiB) is not misread."""
    match = _QUANTITY.match(quantity)
    if match is None or match.group(2) not in _MEMORY_UNITS:
        raise ValueError(f"{quantity!r} is not a memory quantity in Ki, Mi, Gi or Ti")
    return float(match.group(1)) * _MEMORY_UNITS[match.group(2)]


def _cpu(quantity: str) -> str:
    match = _QUANTITY.match(quantity)
    if match is None or match.group(2) not in (None, "m"):
        raise ValueError(f"{quantity!r} is not a CPU quantity (cores like 1 or 0.5, or 250m)")
    return quantity


def _memory(quantity: str) -> str:
    mebibytes(quantity)
    return quantity


Cpu = Annotated[str, AfterValidator(_cpu)]
Memory = Annotated[str, AfterValidator(_memory)]


@dataclass(frozen=True)
class JobTiming:
    starting_deadline_seconds: int
    active_deadline_seconds: int


def job_timing(schedule: str) -> JobTiming:
    """Deadlines that keep a late or hung run from eating into the next one (module docstring)."""
    gap = int(Cron(schedule).min_interval.total_seconds())
    starting = min(MAX_STARTING_DEADLINE_SECONDS, gap // 2)
    active = gap - starting - END_MARGIN_SECONDS
    if active < MIN_ACTIVE_DEADLINE_SECONDS:
        raise ValueError(
            f"schedule {schedule!r} runs {gap} s apart: too often for a backup job, which needs "
            f"{MIN_ACTIVE_DEADLINE_SECONDS + END_MARGIN_SECONDS} s plus its start window"
        )
    return JobTiming(starting, active)


class JobResources(ComponentArgs):
    """Requests and limits of a backup container; the memory limit must cover the engine."""

    cpu_request: Cpu = "250m"
    cpu_limit: Cpu = "1"
    memory_request: Memory = f"{ENGINE_MEMORY_MIB}Mi"
    memory_limit: Memory = "512Mi"
    """The engine's bound plus headroom for a large catalog in pg_dump or a burst of Kafka fetch
    buffers; going over it is an OOM kill, which the Job reports as a failed run."""
    ephemeral_storage_request: Memory = "64Mi"
    ephemeral_storage_limit: Memory = "512Mi"
    tmp_size_limit: Memory = "256Mi"
    """/tmp: the engine streams, so only the tools' scratch files land here."""

    @model_validator(mode="after")
    def _limits_cover_requests(self) -> Self:
        if mebibytes(self.memory_limit) < ENGINE_MEMORY_MIB:
            raise ValueError(
                f"memory_limit: {self.memory_limit} is below the engine's bounded need of "
                f"{ENGINE_MEMORY_MIB}Mi (parts of {PART_MIB} MiB x {DESTINATIONS} destinations, "
                "queues, runtime and the dump tool); the run would be OOM-killed"
            )
        if mebibytes(self.memory_request) > mebibytes(self.memory_limit):
            raise ValueError(
                f"memory_request: {self.memory_request} is above memory_limit {self.memory_limit}"
            )
        if mebibytes(self.tmp_size_limit) > mebibytes(self.ephemeral_storage_limit):
            raise ValueError(
                f"tmp_size_limit: {self.tmp_size_limit} is above ephemeral_storage_limit "
                f"{self.ephemeral_storage_limit}"
            )
        return self


class StoreJob(ComponentArgs):
    """One store's CronJob."""

    store: str = Field(pattern=r"^[a-z][a-z0-9-]{1,40}[a-z0-9]$")
    """A slug of at most 42 characters: ``backup-<store>`` stays within a CronJob's 52."""
    kind: str = Field(pattern=r"^[a-z]+$")
    data_class: str = Field(pattern=r"^[a-z][a-z0-9-]{1,40}[a-z0-9]$")
    schedule: CronExpression
    role_arn: IamRoleArnInput
    credentials_secret: str | None = Field(default=None, pattern=_K8S_NAME)
    """The Secret with ``username`` and ``password``; None for a store that needs none."""
    state_namespace: str | None = Field(default=None, pattern=_K8S_NAME)
    """For a store of kind ``kubernetes`` (required there, refused elsewhere): the application
    namespace its backup reads. Its ServiceAccount gets the RBAC in the module docstring."""
    resources: JobResources = JobResources()

    @property
    def timing(self) -> JobTiming:
        return job_timing(self.schedule)

    @model_validator(mode="after")
    def _schedule_leaves_room(self) -> Self:
        try:
            job_timing(self.schedule)
        except ValueError as error:
            raise ValueError(f"schedule of store {self.store!r}: {error}") from None
        return self

    @model_validator(mode="after")
    def _state_namespace_for_kubernetes_only(self) -> Self:
        reads_cluster = self.kind == StoreKind.KUBERNETES.value
        if reads_cluster and self.state_namespace is None:
            raise ValueError(
                f"state_namespace: store {self.store!r} of kind {self.kind!r} backs up a "
                "namespace; name it, or its service account can read nothing"
            )
        if not reads_cluster and self.state_namespace is not None:
            raise ValueError(
                f"state_namespace: store {self.store!r} of kind {self.kind!r} does not read the "
                "Kubernetes API; only a store of kind 'kubernetes' gets read access to a namespace"
            )
        return self


class BackupCronJobsArgs(ComponentArgs):
    platform: str = Field(pattern=r"^[a-z][a-z0-9-]{1,40}[a-z0-9]$")
    stack: str = Field(pattern=_K8S_NAME)
    namespace: str = Field(pattern=_K8S_NAME)
    image: str = Field(pattern=IMAGE_REFERENCE)
    outputs_json: StrInput
    """The stack outputs (``StackOutputs``) as JSON: what ``--outputs`` reads in the pod."""
    config_yaml: str = Field(min_length=1)
    """``Pulumi.<stack>.yaml`` as the program read it: what the pod's ``StackConfig`` loads."""
    pushgateway_url: str | None = Field(default=None, pattern=r"^https?://\S+$")
    cloudwatch: bool = True
    suspend: bool = False
    """True in the stack whose region is not the active primary: its stores are standbys."""
    gcp_credentials_secret: str | None = Field(default=None, pattern=_K8S_NAME)
    """A Secret with ``credentials.json`` for the GCS mirror (Application Default Credentials)."""
    jobs: list[StoreJob] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        stores = [job.store for job in self.jobs]
        if len(stores) != len(set(stores)):
            raise ValueError(f"jobs: stores must be unique, got {stores}")
        if self.image.endswith(":latest"):
            raise ValueError(f"image: {self.image!r} must name a release tag or digest")
        return self


def labels(args: BackupCronJobsArgs, job: StoreJob) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": "drkit-backup",
        "app.kubernetes.io/instance": job.store,
        "app.kubernetes.io/component": "backup",
        "app.kubernetes.io/part-of": args.platform,
        "app.kubernetes.io/managed-by": "pulumi",
        "trading-dr/data-class": job.data_class,
        "trading-dr/store-kind": job.kind,
    }


def _secret_env(name: str, secret: str, key: str) -> k8s.core.v1.EnvVarArgsDict:
    return {"name": name, "value_from": {"secret_key_ref": {"name": secret, "key": key}}}


def container_env(args: BackupCronJobsArgs, job: StoreJob) -> list[k8s.core.v1.EnvVarArgsDict]:
    """Settings as plain values; anything secret only as a reference to its Secret."""
    env: list[k8s.core.v1.EnvVarArgsDict] = [
        {"name": "DRKIT_STACK", "value": args.stack},
        {"name": "DRKIT_YES", "value": "true"},  # unattended: the schedule is the confirmation
        {"name": "DRKIT_PROJECT", "value": CONFIG_DIR},
        {"name": "DRKIT_OUTPUTS", "value": f"{CONFIG_DIR}/{OUTPUTS_FILE}"},
        {"name": "DRKIT_CLOUDWATCH", "value": "true" if args.cloudwatch else "false"},
        {"name": "DRKIT_LOG_FORMAT", "value": "json"},
    ]
    if args.pushgateway_url:
        env.append({"name": "DRKIT_PUSHGATEWAY", "value": args.pushgateway_url})
    if args.gcp_credentials_secret:
        env.append(
            {
                "name": "GOOGLE_APPLICATION_CREDENTIALS",
                "value": f"{GCP_CREDENTIALS_DIR}/{GCP_CREDENTIALS_FILE}",
            }
        )
    if job.credentials_secret:
        prefix = env_prefix(job.store)
        env.append(_secret_env(f"{prefix}_USER", job.credentials_secret, "username"))
        env.append(_secret_env(f"{prefix}_PASSWORD", job.credentials_secret, "password"))
    return env


def pod_volumes(
    args: BackupCronJobsArgs, job: StoreJob
) -> tuple[list[k8s.core.v1.VolumeArgsDict], list[k8s.core.v1.VolumeMountArgsDict]]:
    volumes: list[k8s.core.v1.VolumeArgsDict] = [
        {"name": "tmp", "empty_dir": {"size_limit": job.resources.tmp_size_limit}},
        {
            "name": "stack",
            "config_map": {
                "name": CONFIG_MAP,
                "default_mode": 0o444,
                "items": [
                    {"key": OUTPUTS_FILE, "path": OUTPUTS_FILE},
                    {"key": config_file(args.stack), "path": config_file(args.stack)},
                ],
            },
        },
    ]
    mounts: list[k8s.core.v1.VolumeMountArgsDict] = [
        {"name": "tmp", "mount_path": "/tmp"},
        {"name": "stack", "mount_path": CONFIG_DIR, "read_only": True},
    ]
    if args.gcp_credentials_secret:
        volumes.append(
            {
                "name": "gcp-credentials",
                "secret": {
                    "secret_name": args.gcp_credentials_secret,
                    "default_mode": 0o440,  # group-readable: fsGroup is the container's group
                    "items": [{"key": GCP_CREDENTIALS_FILE, "path": GCP_CREDENTIALS_FILE}],
                },
            }
        )
        mounts.append(
            {"name": "gcp-credentials", "mount_path": GCP_CREDENTIALS_DIR, "read_only": True}
        )
    return volumes, mounts


def config_file(stack: str) -> str:
    return f"Pulumi.{stack}.yaml"


def pod_spec(args: BackupCronJobsArgs, job: StoreJob) -> k8s.core.v1.PodSpecArgsDict:
    volumes, mounts = pod_volumes(args, job)
    resources = job.resources
    container: k8s.core.v1.ContainerArgsDict = {
        "name": CONTAINER,
        "image": args.image,
        "image_pull_policy": "IfNotPresent",
        "args": ["backup", job.store],
        "env": container_env(args, job),
        "resources": {
            "requests": {
                "cpu": resources.cpu_request,
                "memory": resources.memory_request,
                "ephemeral-storage": resources.ephemeral_storage_request,
            },
            "limits": {
                "cpu": resources.cpu_limit,
                "memory": resources.memory_limit,
                "ephemeral-storage": resources.ephemeral_storage_limit,
            },
        },
        "security_context": {
            "allow_privilege_escalation": False,
            "privileged": False,
            "read_only_root_filesystem": True,
            "run_as_non_root": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "volume_mounts": mounts,
        "termination_message_policy": "FallbackToLogsOnError",
    }
    return {
        "restart_policy": "Never",
        "service_account_name": service_account_name(job.store),
        # The IRSA webhook projects an STS-audience token for the annotated service account.
        "automount_service_account_token": True,
        "enable_service_links": False,
        "termination_grace_period_seconds": 30,
        "security_context": {
            "run_as_non_root": True,
            "run_as_user": RUN_AS,
            "run_as_group": RUN_AS,
            "fs_group": RUN_AS,
            "seccomp_profile": {"type": "RuntimeDefault"},
        },
        "containers": [container],
        "volumes": volumes,
    }


def cronjob_spec(args: BackupCronJobsArgs, job: StoreJob) -> k8s.batch.v1.CronJobSpecArgsDict:
    timing = job.timing
    job_labels = labels(args, job)
    return {
        "schedule": job.schedule,
        "time_zone": TIME_ZONE,
        "concurrency_policy": "Forbid",
        "starting_deadline_seconds": timing.starting_deadline_seconds,
        "successful_jobs_history_limit": SUCCESSFUL_JOBS_HISTORY,
        "failed_jobs_history_limit": FAILED_JOBS_HISTORY,
        "suspend": args.suspend,
        "job_template": {
            "metadata": {"labels": job_labels},
            "spec": {
                "backoff_limit": BACKOFF_LIMIT,
                "active_deadline_seconds": timing.active_deadline_seconds,
                "pod_failure_policy": {
                    "rules": [
                        {
                            "action": "FailJob",
                            "on_exit_codes": {
                                "container_name": CONTAINER,
                                "operator": "In",
                                "values": [EXIT_BAD_INPUT],
                            },
                        },
                        {
                            "action": "Ignore",
                            "on_pod_conditions": [{"type": "DisruptionTarget", "status": "True"}],
                        },
                    ]
                },
                "template": {
                    "metadata": {"labels": job_labels},
                    "spec": pod_spec(args, job),
                },
            },
        },
    }


def _name(metadata: k8s.meta.v1.outputs.ObjectMeta) -> str:
    if not metadata.name:
        raise ValueError("a named Kubernetes object came back without metadata.name")
    return metadata.name


def _role_ref(
    kind: Literal["Role", "ClusterRole"], role: k8s.rbac.v1.Role | k8s.rbac.v1.ClusterRole
) -> k8s.rbac.v1.RoleRefArgsDict:
    """What a binding grants: ``role`` (a ``kind``), by the name Kubernetes gave it."""
    return {"api_group": RBAC_API_GROUP, "kind": kind, "name": role.metadata.apply(_name)}


@dataclass(frozen=True)
class StateReaderRbac:
    """What lets one store's ServiceAccount read a namespace's state (module docstring)."""

    role: k8s.rbac.v1.Role
    role_binding: k8s.rbac.v1.RoleBinding
    cluster_role: k8s.rbac.v1.ClusterRole
    cluster_role_binding: k8s.rbac.v1.ClusterRoleBinding

    @property
    def resources(self) -> list[pulumi.Resource]:
        return [self.role, self.role_binding, self.cluster_role, self.cluster_role_binding]


class BackupCronJobs(pulumi.ComponentResource):
    """The namespace, its shared ConfigMap, per store a ServiceAccount and a CronJob, and for a
    store of kind ``kubernetes`` the RBAC that lets it read the application namespace."""

    namespace_name: pulumi.Output[str]
    cronjob_names: dict[str, pulumi.Output[str]]
    state_readers: dict[str, StateReaderRbac]
    """By store: only the stores that read Kubernetes state."""

    def __init__(
        self, name: str, args: BackupCronJobsArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(f"{PACKAGE}:kubernetes:BackupCronJobs", name, None, opts)
        provider = require_provider(opts, "BackupCronJobs")
        managed = {
            "app.kubernetes.io/managed-by": "pulumi",
            "app.kubernetes.io/part-of": args.platform,
        }
        self.namespace = k8s.core.v1.Namespace(
            f"{name}-namespace",
            metadata={
                "name": args.namespace,
                "labels": {
                    **managed,
                    "pod-security.kubernetes.io/enforce": "restricted",
                    "pod-security.kubernetes.io/enforce-version": "latest",
                    "pod-security.kubernetes.io/audit": "restricted",
                    "pod-security.kubernetes.io/warn": "restricted",
                },
            },
            # It also holds the stores' Secrets, which this program does not own: removing the
            # CronJobs from the program must not delete them with the namespace.
            opts=child_opts(self, provider, retain_on_delete=True),
        )
        namespace = self.namespace.metadata.apply(_name)
        self.deny_ingress = k8s.networking.v1.NetworkPolicy(
            f"{name}-deny-ingress",
            metadata={"name": "deny-ingress", "namespace": namespace, "labels": managed},
            spec={"pod_selector": {}, "policy_types": ["Ingress"]},
            opts=child_opts(self, provider),
        )
        self.stack_config = k8s.core.v1.ConfigMap(
            f"{name}-stack",
            metadata={"name": CONFIG_MAP, "namespace": namespace, "labels": managed},
            data={OUTPUTS_FILE: args.outputs_json, config_file(args.stack): args.config_yaml},
            opts=child_opts(self, provider),
        )
        self.service_accounts: dict[str, k8s.core.v1.ServiceAccount] = {}
        self.cronjobs: dict[str, k8s.batch.v1.CronJob] = {}
        self.state_readers = {}
        for job in args.jobs:
            job_labels = labels(args, job)
            self.service_accounts[job.store] = k8s.core.v1.ServiceAccount(
                f"{name}-{job.store}-sa",
                metadata={
                    "name": service_account_name(job.store),
                    "namespace": namespace,
                    "labels": job_labels,
                    "annotations": {
                        ROLE_ARN_ANNOTATION: job.role_arn,
                        # Regional STS: the dr cluster's jobs never depend on us-east-1.
                        "eks.amazonaws.com/sts-regional-endpoints": "true",
                    },
                },
                automount_service_account_token=True,
                opts=child_opts(self, provider),
            )
            reader = self._state_reader(name, args, job, namespace, provider)
            if reader is not None:
                self.state_readers[job.store] = reader
            self.cronjobs[job.store] = k8s.batch.v1.CronJob(
                f"{name}-{job.store}",
                metadata={
                    "name": cronjob_name(job.store),
                    "namespace": namespace,
                    "labels": job_labels,
                },
                spec=cronjob_spec(args, job),
                opts=child_opts(
                    self,
                    provider,
                    depends_on=[
                        self.service_accounts[job.store],
                        self.stack_config,
                        *(reader.resources if reader is not None else []),
                    ],
                ),
            )
        self.namespace_name = namespace
        self.cronjob_names = {
            store: cronjob.metadata.apply(_name) for store, cronjob in self.cronjobs.items()
        }
        self.register_outputs({"namespace": self.namespace_name, "cronjobs": self.cronjob_names})

    def _state_reader(
        self,
        name: str,
        args: BackupCronJobsArgs,
        job: StoreJob,
        namespace: pulumi.Output[str],
        provider: pulumi.ProviderResource,
    ) -> StateReaderRbac | None:
        """The Role and ClusterRole of the module docstring, bound to the store's account;
        None for a store that does not read Kubernetes state. ``namespace``: the backup
        namespace's name as an output of the created Namespace."""
        if job.state_namespace is None:
            return None
        prefix = f"{name}-{job.store}"
        rbac = rbac_name(args.namespace, job.store)
        job_labels = labels(args, job)
        account = self.service_accounts[job.store]
        subject: k8s.rbac.v1.SubjectArgsDict = {
            "kind": "ServiceAccount",
            "name": account.metadata.apply(_name),
            "namespace": namespace,
        }
        role = k8s.rbac.v1.Role(
            f"{prefix}-state-reader",
            metadata={"name": rbac, "namespace": job.state_namespace, "labels": job_labels},
            rules=state_reader_rules(),
            opts=child_opts(self, provider),
        )
        role_binding = k8s.rbac.v1.RoleBinding(
            f"{prefix}-state-reader-binding",
            metadata={"name": rbac, "namespace": job.state_namespace, "labels": job_labels},
            role_ref=_role_ref("Role", role),
            subjects=[subject],
            opts=child_opts(self, provider),
        )
        cluster_role = k8s.rbac.v1.ClusterRole(
            f"{prefix}-cluster-reader",
            metadata={"name": rbac, "labels": job_labels},
            rules=cluster_reader_rules(job.state_namespace),
            opts=child_opts(self, provider),
        )
        cluster_role_binding = k8s.rbac.v1.ClusterRoleBinding(
            f"{prefix}-cluster-reader-binding",
            metadata={"name": rbac, "labels": job_labels},
            role_ref=_role_ref("ClusterRole", cluster_role),
            subjects=[subject],
            opts=child_opts(self, provider),
        )
        return StateReaderRbac(role, role_binding, cluster_role, cluster_role_binding)
