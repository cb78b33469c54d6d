"""The backup CronJobs as Pulumi would declare them, for each stack's real config file.

Every Kubernetes object is validated against the official OpenAPI spec of the Kubernetes release
(tests/unit/infra/k8s_openapi.py), and the pieces the pods depend on are checked against their
consumers: the env against ``python -m drkit``'s parser, the ConfigMap against ``StackConfig`` and
``StackOutputs``, the IRSA trust and permissions against the service account and the vault layout.
"""

from __future__ import annotations

import copy
import fnmatch
import inspect
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from backup_jobs_harness import manifest, manifests, run_backup_jobs
from k8s_openapi import ENUMS, KubernetesSchema, kubernetes_schema
from program_harness import ACCOUNT, Recorded, StackRun

from components.backup_cronjobs import (
    CHUNK_MIB,
    ENGINE_MEMORY_MIB,
    PART_MIB,
    QUEUE_CHUNKS,
    RUN_AS,
    mebibytes,
)
from components.backup_cronjobs import env_prefix as component_env_prefix
from components.backup_iam import METRICS_NAMESPACE
from drkit.__main__ import parser
from drkit.backup.engine import COMPRESSED_CHUNK
from drkit.backup.kubernetes import PURPOSE
from drkit.backup.manifest import backup_prefix, new_backup_id
from drkit.backup.metrics import CLOUDWATCH_NAMESPACE
from drkit.context import OpsContext, env_prefix
from drkit.kubestate.api import CRDS, NAMESPACES
from drkit.stack_choice import choose
from drkit.storage.objectstore import DEFAULT_PART_SIZE, MiB
from drkit.storage.tee import ThreadedWriter
from stackmodels import StackConfig, StackOutputs
from stackmodels.config import StoreKind
from stackmodels.kafka_access import READER_GROUP_PREFIX
from stackmodels.schedule import Cron
from stackmodels.sealing import secrets_context

pytestmark = pytest.mark.unit

CRONJOB = "kubernetes:batch/v1:CronJob"
SERVICE_ACCOUNT = "kubernetes:core/v1:ServiceAccount"
NAMESPACE = "kubernetes:core/v1:Namespace"
CONFIG_MAP = "kubernetes:core/v1:ConfigMap"
K8S_ROLE = "kubernetes:rbac.authorization.k8s.io/v1:Role"
K8S_ROLE_BINDING = "kubernetes:rbac.authorization.k8s.io/v1:RoleBinding"
K8S_CLUSTER_ROLE = "kubernetes:rbac.authorization.k8s.io/v1:ClusterRole"
K8S_CLUSTER_ROLE_BINDING = "kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding"
RBAC_TYPES = (K8S_ROLE, K8S_ROLE_BINDING, K8S_CLUSTER_ROLE, K8S_CLUSTER_ROLE_BINDING)
ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
SECRET_NAME = re.compile(r"(?i)(password|passwd|secret|token|credential|private|api_?key)")


@pytest.fixture(scope="module")
def prod_jobs() -> StackRun:
    return run_backup_jobs("prod")


@pytest.fixture(scope="module")
def dr_jobs() -> StackRun:
    return run_backup_jobs("dr")


@pytest.fixture(scope="module", params=["prod", "dr"])
def jobs(request: pytest.FixtureRequest, prod_jobs: StackRun, dr_jobs: StackRun) -> StackRun:
    return prod_jobs if request.param == "prod" else dr_jobs


@pytest.fixture(scope="module")
def schema() -> KubernetesSchema:
    return kubernetes_schema()


def cronjobs(run: StackRun) -> dict[str, dict[str, Any]]:
    """CronJob manifests by store (the instance label)."""
    found = {}
    for resource in run.of_type(CRONJOB):
        body = manifest(resource)
        found[body["metadata"]["labels"]["app.kubernetes.io/instance"]] = body
    return found


def pod(cronjob: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return spec


def container(cronjob: dict[str, Any]) -> dict[str, Any]:
    [only] = pod(cronjob)["containers"]
    assert isinstance(only, dict)
    return only


def env_of(cronjob: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {item["name"]: item for item in container(cronjob)["env"]}


def statements(resource: Recorded, field: str) -> dict[str, dict[str, Any]]:
    return {s["Sid"]: s for s in json.loads(resource.inputs[field])["Statement"]}


def role_of(run: StackRun, store: str) -> tuple[Recorded, Recorded]:
    name = f"aipx-backup-{store}-{run.config.region}"
    [role] = [r for r in run.of_type(ROLE) if r.inputs["name"] == name]
    [policy] = [r for r in run.of_type(ROLE_POLICY) if r.inputs["role"] == name]
    return role, policy


def vault_arn(run: StackRun) -> str:
    return f"arn:aws:s3:::aipx-backup-vault-{ACCOUNT}-{run.config.region}"


def audit_arn(run: StackRun) -> str:
    return f"arn:aws:s3:::aipx-audit-{ACCOUNT}-{run.config.region}"


def walk(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    yield path, value
    if isinstance(value, dict):
        for key, item in value.items():
            yield from walk(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from walk(item, f"{path}[{index}]")


# ---- schedules and timing ---------------------------------------------------------------------


def test_one_cronjob_per_store_with_its_schedule(jobs: StackRun) -> None:
    found = cronjobs(jobs)
    assert set(found) == set(jobs.config.stores)
    for store, cronjob in found.items():
        assert cronjob["metadata"]["name"] == f"backup-{store}"
        assert cronjob["metadata"]["namespace"] == jobs.config.kubernetes.backup_namespace
        spec = cronjob["spec"]
        assert spec["schedule"] == jobs.config.stores[store].schedule
        assert spec["timeZone"] == "Etc/UTC"
        assert container(cronjob)["args"] == ["backup", store]
    assert found["trading-db"]["spec"]["schedule"] == "*/15 * * * *"
    assert found["session-cache"]["spec"]["schedule"] == "0 */6 * * *"


def test_runs_never_overlap_and_a_hung_run_ends_before_the_next(jobs: StackRun) -> None:
    for store, cronjob in cronjobs(jobs).items():
        spec, job = cronjob["spec"], cronjob["spec"]["jobTemplate"]["spec"]
        gap = int(Cron(jobs.config.stores[store].schedule).min_interval.total_seconds())
        assert spec["concurrencyPolicy"] == "Forbid"
        assert 0 < spec["startingDeadlineSeconds"] <= min(300, gap // 2)
        # the latest start plus the longest run, retries included, ends before the next run
        assert spec["startingDeadlineSeconds"] + job["activeDeadlineSeconds"] < gap
        assert job["backoffLimit"] == 1
        assert spec["successfulJobsHistoryLimit"] == 3
        assert spec["failedJobsHistoryLimit"] == 5
    trading_db = cronjobs(jobs)["trading-db"]
    assert trading_db["spec"]["startingDeadlineSeconds"] == 300
    assert trading_db["spec"]["jobTemplate"]["spec"]["activeDeadlineSeconds"] == 540


def test_bad_input_fails_at_once_and_evictions_do_not_count(jobs: StackRun) -> None:
    for cronjob in cronjobs(jobs).values():
        job = cronjob["spec"]["jobTemplate"]["spec"]
        rules = job["podFailurePolicy"]["rules"]
        assert {
            "action": "FailJob",
            "onExitCodes": {"containerName": "backup", "operator": "In", "values": [2]},
        } in rules
        assert {
            "action": "Ignore",
            "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}],
        } in rules
        assert pod(cronjob)["restartPolicy"] == "Never"  # podFailurePolicy requires it


def test_cronjobs_run_only_where_the_stores_are_primary(
    prod_jobs: StackRun, dr_jobs: StackRun
) -> None:
    assert all(c["spec"]["suspend"] is False for c in cronjobs(prod_jobs).values())
    assert all(c["spec"]["suspend"] is True for c in cronjobs(dr_jobs).values())
    assert prod_jobs.outputs["suspended"] is False
    assert dr_jobs.outputs["suspended"] is True


# ---- pod security -----------------------------------------------------------------------------


def test_namespace_enforces_the_restricted_pod_security_standard(jobs: StackRun) -> None:
    [namespace] = jobs.of_type(NAMESPACE)
    labels = namespace.inputs["metadata"]["labels"]
    assert namespace.inputs["metadata"]["name"] == "dr-backups"
    for mode in ("enforce", "audit", "warn"):
        assert labels[f"pod-security.kubernetes.io/{mode}"] == "restricted"
    [policy] = jobs.of_type("kubernetes:networking.k8s.io/v1:NetworkPolicy")
    assert policy.inputs["spec"] == {"podSelector": {}, "policyTypes": ["Ingress"]}


def test_pods_run_as_non_root_with_a_read_only_root_filesystem(jobs: StackRun) -> None:
    for store, cronjob in cronjobs(jobs).items():
        spec = pod(cronjob)
        assert spec["securityContext"] == {
            "runAsNonRoot": True,
            "runAsUser": RUN_AS,
            "runAsGroup": RUN_AS,
            "fsGroup": RUN_AS,
            "seccompProfile": {"type": "RuntimeDefault"},
        }
        for key in ("hostNetwork", "hostPID", "hostIPC", "hostUsers"):
            assert key not in spec
        assert container(cronjob)["securityContext"] == {
            "allowPrivilegeEscalation": False,
            "privileged": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
        }
        assert spec["serviceAccountName"] == f"backup-{store}"
        assert spec["automountServiceAccountToken"] is True  # IRSA's projected token
        assert spec["enableServiceLinks"] is False


def test_only_tmp_is_writable_and_every_other_volume_is_read_only(jobs: StackRun) -> None:
    for cronjob in cronjobs(jobs).values():
        volumes = {v["name"]: v for v in pod(cronjob)["volumes"]}
        assert volumes["tmp"] == {"name": "tmp", "emptyDir": {"sizeLimit": "256Mi"}}
        for volume in volumes.values():
            # the restricted standard allows these kinds only; none writes to the node
            assert set(volume) - {"name"} <= {"emptyDir", "configMap", "secret", "projected"}
        mounts = {m["mountPath"]: m for m in container(cronjob)["volumeMounts"]}
        assert mounts["/tmp"]["name"] == "tmp" and not mounts["/tmp"].get("readOnly")
        for path, mount in mounts.items():
            if path != "/tmp":
                assert mount["readOnly"] is True, path


def test_resources_are_requested_and_limited_above_the_engines_bound(jobs: StackRun) -> None:
    for cronjob in cronjobs(jobs).values():
        resources = container(cronjob)["resources"]
        for kind in ("requests", "limits"):
            assert set(resources[kind]) == {"cpu", "memory", "ephemeral-storage"}
        assert mebibytes(resources["requests"]["memory"]) >= ENGINE_MEMORY_MIB
        assert mebibytes(resources["limits"]["memory"]) >= mebibytes(
            resources["requests"]["memory"]
        )
    # 16 MiB parts x (vault + mirror) + queues + zstd + runtime + dump tool
    assert ENGINE_MEMORY_MIB == 128 + 2 * (2 * 16 + 4) + 64 + 64


def test_the_bound_uses_the_engines_real_sizes_and_names(jobs: StackRun) -> None:
    """components/ never imports the ops package: its copies of drkit's values are checked here."""
    assert PART_MIB * MiB == DEFAULT_PART_SIZE
    assert CHUNK_MIB * MiB == COMPRESSED_CHUNK
    assert inspect.signature(ThreadedWriter).parameters["depth"].default == QUEUE_CHUNKS
    assert METRICS_NAMESPACE == CLOUDWATCH_NAMESPACE
    for store in jobs.config.stores:
        assert component_env_prefix(store) == env_prefix(store)


# ---- secrets ----------------------------------------------------------------------------------


def test_credentials_come_from_secrets_by_reference_only(jobs: StackRun) -> None:
    assert not [r for r in jobs.resources if r.type == "kubernetes:core/v1:Secret"], (
        "Secrets are made outside Pulumi: a password must never be in the program or its state"
    )
    variables = 0
    for body in manifests(jobs):
        for path, item in walk(body):
            if not (isinstance(item, dict) and ("value" in item or "valueFrom" in item)):
                continue
            variables += 1
            if "valueFrom" in item:
                assert set(item["valueFrom"]) == {"secretKeyRef"}, path
            elif SECRET_NAME.search(item["name"]):
                # a literal value is never a secret: the one credential-named variable is a path
                assert item["name"] == "GOOGLE_APPLICATION_CREDENTIALS", path
                assert item["value"].startswith("/var/run/secrets/"), path
        text = json.dumps(body)
        assert not re.search(r"AKIA[0-9A-Z]{16}|PRIVATE KEY|://[^/\s:@]+:[^/\s@]+@", text)
    assert variables >= 7 * len(jobs.config.stores)


def test_store_credentials_are_the_variables_drkit_reads(jobs: StackRun) -> None:
    for store, cronjob in cronjobs(jobs).items():
        env = env_of(cronjob)
        prefix = env_prefix(store)  # what drkit.context.Credentials.for_store reads
        kind = jobs.config.stores[store].kind
        if kind in (StoreKind.KUBERNETES, StoreKind.KAFKA):  # service account; MSK's IAM auth
            assert f"{prefix}_USER" not in env and f"{prefix}_PASSWORD" not in env
            continue
        for suffix, key in (("USER", "username"), ("PASSWORD", "password")):
            assert env[f"{prefix}_{suffix}"] == {
                "name": f"{prefix}_{suffix}",
                "valueFrom": {"secretKeyRef": {"name": f"{store}-backup-credentials", "key": key}},
            }
    assert "DRKIT_TRADING_DB_PASSWORD" in env_of(cronjobs(jobs)["trading-db"])
    # MSK has no password: a reference to a Secret nothing syncs would keep the pod from starting
    assert not [
        n for n, item in env_of(cronjobs(jobs)["event-stream"]).items() if "valueFrom" in item
    ]


def test_the_container_env_is_what_python_m_drkit_parses(
    jobs: StackRun, monkeypatch: pytest.MonkeyPatch
) -> None:
    for store, cronjob in cronjobs(jobs).items():
        env = env_of(cronjob)
        for name, item in env.items():
            if "value" in item:
                monkeypatch.setenv(name, item["value"])
        arguments = parser().parse_args(container(cronjob)["args"])
        assert arguments.command == "backup" and arguments.store == store
        assert arguments.stack == "" and arguments.yes is True  # DRKIT_STACK, DRKIT_YES=true
        assert choose(arguments.stack, Path("/etc/drkit")).name == jobs.stack
        assert str(arguments.outputs) == "/etc/drkit/outputs.json"
        assert str(arguments.project_dir) == "/etc/drkit"
        assert arguments.pushgateway == jobs.config.kubernetes.pushgateway_url
        assert arguments.cloudwatch is True
        assert arguments.log_format == "json"


def test_the_configmap_is_the_stack_config_and_outputs_the_pod_loads(
    jobs: StackRun, tmp_path: Path
) -> None:
    [config_map] = jobs.of_type(CONFIG_MAP)
    data = config_map.inputs["data"]
    config_file = f"Pulumi.{jobs.stack}.yaml"
    assert set(data) == {"outputs.json", config_file}
    for name, text in data.items():
        (tmp_path / name).write_text(text)
    # what the pod does: DRKIT_PROJECT=/etc/drkit, DRKIT_OUTPUTS=/etc/drkit/outputs.json
    ctx = OpsContext.load(jobs.stack, tmp_path / "outputs.json", tmp_path)
    assert ctx.config == jobs.config
    assert ctx.outputs == StackOutputs.parse(json.loads(data["outputs.json"]), jobs.stack)
    assert ctx.outputs.backup_vault.arn == vault_arn(jobs)
    for cronjob in cronjobs(jobs).values():
        [stack_volume] = [v for v in pod(cronjob)["volumes"] if v["name"] == "stack"]
        assert stack_volume["configMap"]["name"] == config_map.inputs["metadata"]["name"]
        assert {i["path"] for i in stack_volume["configMap"]["items"]} == set(data)


def test_stack_config_yaml_round_trips_with_explicit_nulls(tmp_path: Path) -> None:
    from infra.kubernetes import stack_config_yaml

    config = StackConfig.for_stack("prod", Path(__file__).resolve().parents[3])
    path = tmp_path / "Pulumi.prod.yaml"
    path.write_text(stack_config_yaml(config))
    assert StackConfig.load(path) == config
    # a tier left out on purpose must stay out, not come back as the default
    document = yaml.safe_load(path.read_text())["config"]
    lifecycle = document["trading-dr:data_classes"]["monitoring-logs"]["lifecycle"]
    assert lifecycle["deep_archive_after_days"] is None


# ---- IRSA -------------------------------------------------------------------------------------


def test_each_service_account_is_bound_to_its_stores_role(jobs: StackRun) -> None:
    accounts = {r.inputs["metadata"]["name"]: r.inputs for r in jobs.of_type(SERVICE_ACCOUNT)}
    assert set(accounts) == {f"backup-{store}" for store in jobs.config.stores}
    for store in jobs.config.stores:
        account = accounts[f"backup-{store}"]
        role, _ = role_of(jobs, store)
        arn = f"arn:aws:iam::{ACCOUNT}:role/{role.inputs['name']}"
        assert account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"] == arn
        assert account["metadata"]["annotations"]["eks.amazonaws.com/sts-regional-endpoints"] == (
            "true"
        )
        assert account["metadata"]["namespace"] == "dr-backups"
        assert jobs.outputs["role_arns"][store] == arn


def test_trust_policy_accepts_only_the_stores_service_account(jobs: StackRun) -> None:
    issuer = jobs.config.kubernetes.oidc_issuer_url
    assert issuer is not None and f"oidc.eks.{jobs.config.region}." in issuer
    host = issuer.removeprefix("https://")
    for store in jobs.config.stores:
        role, _ = role_of(jobs, store)
        [trust] = statements(role, "assumeRolePolicy").values()
        assert trust["Effect"] == "Allow"
        assert trust["Action"] == "sts:AssumeRoleWithWebIdentity"
        assert trust["Principal"] == {"Federated": jobs.config.kubernetes.oidc_provider_arn}
        assert trust["Condition"] == {
            "StringEquals": {
                f"{host}:sub": f"system:serviceaccount:dr-backups:backup-{store}",
                f"{host}:aud": "sts.amazonaws.com",
            }
        }


def test_role_may_write_only_its_own_prefix(jobs: StackRun) -> None:
    vault = vault_arn(jobs)
    staging = vault.replace("-backup-vault-", "-cache-export-")
    for store, settings in jobs.config.stores.items():
        own = f"{vault}/{settings.data_class}/{store}/*"
        staged = f"{staging}/{settings.data_class}/{store}/*"
        _, policy = role_of(jobs, store)
        found = statements(policy, "policy")
        allowed = [s for s in found.values() if s["Effect"] == "Allow"]
        exports = jobs.config.elasticache is not None and jobs.config.elasticache.store == store
        for statement in [s for s in allowed if _actions(s)[0].startswith("s3:")]:
            resources = _resources(statement)
            if exports and resources == ["*"]:  # CopySnapshot's documented lookups
                assert set(_actions(statement)) == {"s3:GetBucketLocation", "s3:ListAllMyBuckets"}
            elif exports and resources == [staging]:
                assert _actions(statement) == ["s3:ListBucket"]
                assert statement["Condition"] == {
                    "StringLike": {"s3:prefix": [f"{settings.data_class}/{store}/*"]}
                }
            elif exports and resources == [staged]:
                assert set(_actions(statement)) == {"s3:GetObject", "s3:DeleteObject"}
            elif resources == [f"{audit_arn(jobs)}/events/*"]:  # its runs' audit events
                assert set(_actions(statement)) == {"s3:PutObject", "s3:PutObjectRetention"}
            elif resources == [vault]:
                # bucket-level: listing is narrowed to the prefix, uploads are names only
                assert set(_actions(statement)) <= {
                    "s3:ListBucket",
                    "s3:ListBucketMultipartUploads",
                }
            elif resources == [f"{vault}/leases/backup/{store}/*", f"{vault}/catalog/{store}/*"]:
                # its lease and its catalog: created and read, never deleted
                assert set(_actions(statement)) == {
                    "s3:GetObject",
                    "s3:PutObject",
                    "s3:PutObjectRetention",
                }
            else:
                assert resources == [own], statement
        listing = found["ListOwnPrefix"]
        assert listing["Condition"] == {
            "StringLike": {
                "s3:prefix": [
                    f"{settings.data_class}/{store}/*",
                    f"leases/backup/{store}/*",
                    f"catalog/{store}/*",
                ]
            }
        }
        assert _actions(found["ReadOwnPrefix"]) == ["s3:GetObject"]
        assert set(_actions(found["WriteOwnPrefix"])) == {
            "s3:PutObject",
            "s3:PutObjectRetention",
            "s3:AbortMultipartUpload",
            "s3:ListMultipartUploadParts",
        }
        actions = {a for s in allowed for a in _actions(s)}
        risky = {a for a in actions if "Delete" in a or "Bypass" in a or "Get" in a}
        # It reads back only its own objects, lease and catalog (a Kafka chain's previous
        # manifest, the run's coordination): tested above by resource.
        risky -= {"s3:GetObject"} if not exports else set()
        if exports:
            # ElastiCache writes the export to the staging bucket; the job reads it from there
            # (into the vault and mirror) and deletes it, and deletes its own ElastiCache
            # snapshot: never a vault object.
            assert risky == {
                "s3:GetObject",
                "s3:DeleteObject",
                "s3:GetBucketLocation",
                "elasticache:DeleteSnapshot",
            }
            assert _resources(found["ReadAndClearOwnStagedExports"]) == [staged]
            assert _resources(found["ExportAndDeleteOwnSnapshots"])[0].endswith(":drkit-*")
        else:
            assert not risky
        assert not {a for a in actions if a.endswith("*")}
        denied = found["NeverDeleteOrReconfigure"]
        assert denied["Effect"] == "Deny"
        assert {"s3:Delete*", "s3:BypassGovernanceRetention"} <= set(denied["Action"])


def test_role_uses_the_vault_key_through_s3_only_and_its_metric_namespace(jobs: StackRun) -> None:
    region = jobs.config.region
    for store, settings in jobs.config.stores.items():
        _, policy = role_of(jobs, store)
        found = statements(policy, "policy")
        kms = found["VaultKeyThroughS3"]
        assert kms["Action"] == ["kms:Decrypt", "kms:GenerateDataKey"]
        assert kms["Resource"] == f"arn:aws:kms:{region}:{ACCOUNT}:key/*"
        assert kms["Condition"]["StringEquals"] == {"kms:ViaService": f"s3.{region}.amazonaws.com"}
        assert kms["Condition"]["StringLike"] == {
            "kms:EncryptionContext:aws:s3:arn": [
                vault_arn(jobs),
                f"{vault_arn(jobs)}/{settings.data_class}/{store}/*",
                f"{vault_arn(jobs)}/leases/backup/{store}/*",
                f"{vault_arn(jobs)}/catalog/{store}/*",
                audit_arn(jobs),
            ]
        }
        metrics = found["BackupMetrics"]
        assert metrics["Action"] == "cloudwatch:PutMetricData"
        assert metrics["Condition"] == {
            "StringEquals": {"cloudwatch:namespace": CLOUDWATCH_NAMESPACE}
        }


def test_role_journals_its_runs_create_only_and_erases_nothing(jobs: StackRun) -> None:
    """Each job writes its audit events (drkit.audit) under ``events/`` of the region's audit
    bucket, with their lock; it may not read, delete or reconfigure anything there."""
    audit = audit_arn(jobs)
    for store in jobs.config.stores:
        _, policy = role_of(jobs, store)
        found = statements(policy, "policy")
        journal = found["JournalRuns"]
        assert (journal["Effect"], _resources(journal)) == ("Allow", [f"{audit}/events/*"])
        assert set(_actions(journal)) == {"s3:PutObject", "s3:PutObjectRetention"}
        on_audit = [
            s
            for s in found.values()
            if s["Effect"] == "Allow" and any(r.startswith(audit) for r in _resources(s))
        ]
        assert on_audit == [journal], store
        denied = found["NeverEraseTheJournal"]
        assert denied["Effect"] == "Deny" and _resources(denied) == [audit, f"{audit}/*"]
        assert {"s3:Delete*", "s3:BypassGovernanceRetention"} <= set(denied["Action"])


def test_only_the_msk_store_may_read_kafka_and_only_its_own_topics(jobs: StackRun) -> None:
    """MSK takes IAM authentication only: the event-stream backup may connect to its cluster, read
    its store's topics (no write), and describe only its own throwaway consumer groups."""
    region = jobs.config.region
    msk = jobs.config.msk
    assert msk is not None and msk.store == "event-stream"
    cluster = f"aipx-event-stream-{region}"
    base = f"arn:aws:kafka:{region}:{ACCOUNT}"
    for store in jobs.config.stores:
        _, policy = role_of(jobs, store)
        found = statements(policy, "policy")
        kafka = {sid: s for sid, s in found.items() if _actions(s)[0].startswith("kafka-cluster:")}
        if store != msk.store:
            assert kafka == {}, store
            continue
        assert kafka == {
            "KafkaConnect": {
                "Sid": "KafkaConnect",
                "Effect": "Allow",
                "Action": ["kafka-cluster:Connect", "kafka-cluster:DescribeCluster"],
                "Resource": f"{base}:cluster/{cluster}/*",
            },
            "KafkaReadOwnTopics": {
                "Sid": "KafkaReadOwnTopics",
                "Effect": "Allow",
                "Action": [
                    "kafka-cluster:DescribeTopic",
                    "kafka-cluster:DescribeTopicDynamicConfiguration",
                    "kafka-cluster:ReadData",
                ],
                "Resource": [
                    f"{base}:topic/{cluster}/*/{topic}"
                    for topic in sorted(jobs.config.stores[store].topics)
                ],
            },
            "KafkaBackupReaderGroups": {
                "Sid": "KafkaBackupReaderGroups",
                "Effect": "Allow",
                "Action": ["kafka-cluster:DescribeGroup"],
                "Resource": f"{base}:group/{cluster}/*/{READER_GROUP_PREFIX}*",
            },
        }
        assert sorted(jobs.config.stores[store].topics) == [
            "market-data",
            "order-events",
            "strategy-signals",
        ]


def sealing_stores(run: StackRun) -> set[str]:
    return {s for s, c in run.config.stores.items() if c.kind is StoreKind.KUBERNETES}


def test_only_the_kubernetes_store_may_get_a_data_key_directly(jobs: StackRun) -> None:
    region = jobs.config.region
    assert sealing_stores(jobs) == {"app-state"}
    for store, settings in jobs.config.stores.items():
        _, policy = role_of(jobs, store)
        found = statements(policy, "policy")
        kms = [s for s in found.values() if any(a.startswith("kms:") for a in _actions(s))]
        if store not in sealing_stores(jobs):
            assert "SealKubernetesSecrets" not in found
            assert [s["Sid"] for s in kms] == ["VaultKeyThroughS3"]
            continue
        assert found["SealKubernetesSecrets"] == {
            "Sid": "SealKubernetesSecrets",
            "Effect": "Allow",
            "Action": ["kms:GenerateDataKey"],
            "Resource": f"arn:aws:kms:{region}:{ACCOUNT}:key/*",
            "Condition": {
                "StringEquals": {"kms:EncryptionContext:drkit:purpose": "kubernetes-secrets"},
                "StringLike": {
                    "kms:EncryptionContext:drkit:backup": f"{settings.data_class}/{store}/*"
                },
            },
        }
        # never Decrypt outside S3: the backup keeps the encrypted data key and never opens it
        for statement in kms:
            if "kms:Decrypt" in _actions(statement):
                assert statement["Sid"] == "VaultKeyThroughS3"
                assert "kms:ViaService" in statement["Condition"]["StringEquals"]
        assert sorted(s["Sid"] for s in kms) == ["SealKubernetesSecrets", "VaultKeyThroughS3"]


def _condition_holds(condition: dict[str, dict[str, Any]], context: dict[str, str]) -> bool:
    """IAM's StringEquals / StringLike on ``kms:EncryptionContext:<key>``, for this context."""
    prefix = "kms:EncryptionContext:"
    for operator, entries in condition.items():
        for key, expected in entries.items():
            value = context.get(key.removeprefix(prefix))
            patterns = expected if isinstance(expected, list) else [expected]
            if value is None:
                return False
            if operator == "StringEquals" and value not in patterns:
                return False
            if operator == "StringLike" and not any(
                fnmatch.fnmatchcase(value, p) for p in patterns
            ):
                return False
    return True


def test_the_sealing_condition_admits_the_context_the_backup_sends(jobs: StackRun) -> None:
    """The context ``drkit.backup.kubernetes`` builds for a real backup prefix passes the job
    role's condition; another store's backup, or another purpose, does not."""
    assert PURPOSE == "kubernetes-secrets"
    [store] = sealing_stores(jobs)
    data_class = jobs.config.stores[store].data_class
    _, policy = role_of(jobs, store)
    condition = statements(policy, "policy")["SealKubernetesSecrets"]["Condition"]
    backup_id = new_backup_id(datetime(2026, 11, 21, 4, 15, tzinfo=UTC))
    context = secrets_context(backup_prefix(data_class, store, backup_id))
    assert context == {
        "drkit:purpose": PURPOSE,
        "drkit:backup": f"{data_class}/{store}/2026/11/21/{backup_id}/",
    }
    assert _condition_holds(condition, context)
    other = secrets_context(backup_prefix("user-data", "trading-db", backup_id))
    assert not _condition_holds(condition, other)
    assert not _condition_holds(condition, context | {"drkit:purpose": "something-else"})


def _actions(statement: dict[str, Any]) -> list[str]:
    action = statement["Action"]
    return [action] if isinstance(action, str) else list(action)


def _resources(statement: dict[str, Any]) -> list[str]:
    resource = statement["Resource"]
    return [resource] if isinstance(resource, str) else list(resource)


# ---- RBAC of the Kubernetes-state backup ------------------------------------------------------


def rbac_objects(run: StackRun) -> dict[str, dict[str, Any]]:
    """The one Role, RoleBinding, ClusterRole and ClusterRoleBinding, by kind."""
    found: dict[str, dict[str, Any]] = {}
    for type_ in RBAC_TYPES:
        [resource] = run.of_type(type_)
        body = manifest(resource)
        found[body["kind"]] = body
    return found


def test_only_the_kubernetes_stores_service_account_gets_rbac(jobs: StackRun) -> None:
    for type_ in RBAC_TYPES:
        resources = jobs.of_type(type_)
        assert len(resources) == len(sealing_stores(jobs)) == 1, type_
        labels = resources[0].inputs["metadata"]["labels"]
        assert labels["app.kubernetes.io/instance"] == "app-state"
        assert labels["trading-dr/store-kind"] == "kubernetes"
    for body in rbac_objects(jobs).values():
        assert body["metadata"]["name"] == "dr-backups:backup-app-state"
        if body["kind"] in ("RoleBinding", "ClusterRoleBinding"):
            # the app-state account only: no other store's account, no group
            assert body["subjects"] == [
                {"kind": "ServiceAccount", "name": "backup-app-state", "namespace": "dr-backups"}
            ]


def test_the_role_lets_the_backup_list_the_application_namespace_only(jobs: StackRun) -> None:
    found = rbac_objects(jobs)
    role, binding = found["Role"], found["RoleBinding"]
    # the namespace the backup reads: the one ops exports and the handler backs up
    assert role["metadata"]["namespace"] == jobs.config.kubernetes.namespace == "aipx"
    assert binding["metadata"]["namespace"] == role["metadata"]["namespace"]
    # every kind (they are discovered at run time), list only: no get (proxy, logs), no writes
    assert role["rules"] == [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["list"]}]
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": role["metadata"]["name"],
    }


def test_the_cluster_role_reads_the_crds_and_the_namespace_object_only(jobs: StackRun) -> None:
    found = rbac_objects(jobs)
    cluster_role, binding = found["ClusterRole"], found["ClusterRoleBinding"]
    assert "namespace" not in cluster_role["metadata"]
    assert cluster_role["rules"] == [
        {
            "apiGroups": ["apiextensions.k8s.io"],
            "resources": ["customresourcedefinitions"],
            "verbs": ["get", "list"],
        },
        {
            "apiGroups": [""],
            "resources": ["namespaces"],
            "resourceNames": [jobs.config.kubernetes.namespace],
            "verbs": ["get", "list"],
        },
    ]
    # the cluster-scoped kinds the reader touches (drkit.kubestate.api) are exactly these
    covered = {(r["apiGroups"][0], r["resources"][0]) for r in cluster_role["rules"]}
    assert covered == {(CRDS.group, CRDS.resource), (NAMESPACES.group, NAMESPACES.resource)}
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": cluster_role["metadata"]["name"],
    }


def test_the_kubernetes_cronjob_waits_for_its_rbac(jobs: StackRun) -> None:
    [cronjob] = [
        r
        for r in jobs.of_type(CRONJOB)
        if r.inputs["metadata"]["labels"]["app.kubernetes.io/instance"] == "app-state"
    ]
    assert cronjob.options is not None
    for type_ in RBAC_TYPES:
        [resource] = jobs.of_type(type_)
        assert any(urn.endswith(f"::{resource.name}") for urn in cronjob.options.depends_on), type_
    assert pod(manifest(cronjob))["serviceAccountName"] == "backup-app-state"


# ---- providers --------------------------------------------------------------------------------


def test_every_resource_has_an_explicit_provider(jobs: StackRun) -> None:
    for resource in jobs.resources:
        if resource.type.startswith(("pulumi:providers:", "trading-dr:")):
            continue
        assert resource.provider, f"{resource.type} {resource.name} has no explicit provider"
        if resource.type.startswith("aws:"):
            assert resource.region == jobs.config.region
        else:
            assert "pulumi:providers:kubernetes" in resource.provider
    assert not jobs.warnings


# ---- OpenAPI validation -----------------------------------------------------------------------


def test_every_manifest_is_valid_for_the_kubernetes_release(
    jobs: StackRun, schema: KubernetesSchema
) -> None:
    found = manifests(jobs)
    assert {m["kind"] for m in found} == {
        "Namespace",
        "NetworkPolicy",
        "ConfigMap",
        "ServiceAccount",
        "CronJob",
        "Role",
        "RoleBinding",
        "ClusterRole",
        "ClusterRoleBinding",
    }
    for body in found:
        assert schema.errors(body) == [], f"{body['kind']} {body['metadata']['name']}"


BROKEN = [
    ("concurrencyPolicy", lambda c: c["spec"].update(concurrencyPolicy="Sometimes")),
    ("image", lambda c: container(c).pop("image")),
    ("securityContxt", lambda c: container(c).update(securityContxt={})),  # a typo: unknown field
    ("startingDeadlineSeconds", lambda c: c["spec"].update(startingDeadlineSeconds="300")),
    ("schedule", lambda c: c["spec"].pop("schedule")),  # required by the spec
    ("memory", lambda c: container(c)["resources"]["limits"].update(memory="512MB")),
    ("runAsUser", lambda c: pod(c)["securityContext"].update(runAsUser=2**40)),  # see below
    ("name", lambda c: container(c).pop("name")),
    ("apiVersion", lambda c: c.update(apiVersion="batch/v2")),
]


@pytest.mark.parametrize(("field", "edit"), BROKEN, ids=[f for f, _ in BROKEN])
def test_a_broken_manifest_is_rejected(
    prod_jobs: StackRun, schema: KubernetesSchema, field: str, edit: Any
) -> None:
    cronjob = copy.deepcopy(cronjobs(prod_jobs)["trading-db"])
    edit(cronjob)
    errors = schema.errors(cronjob)
    if field == "runAsUser":
        assert errors == []  # 2**40 is a valid int64: no stricter than the server, then past it
        pod(cronjob)["securityContext"]["runAsUser"] = 2**63
        errors = schema.errors(cronjob)
    assert errors, f"a CronJob with a bad {field} was accepted"
    assert any(field in error for error in errors) or field == "apiVersion", errors


def rbac_manifest(run: StackRun, kind: str) -> dict[str, Any]:
    [body] = [m for m in manifests(run) if m["kind"] == kind]
    return copy.deepcopy(body)


BROKEN_RBAC = [
    ("Role", "verbs", lambda r: r["rules"][0].pop("verbs")),  # required by the spec
    ("Role", "resourceName", lambda r: r["rules"][0].update(resourceName=["x"])),  # a typo
    ("ClusterRole", "verbs", lambda r: r["rules"][0].update(verbs="list")),  # a list, not a string
    ("RoleBinding", "roleRef", lambda r: r.pop("roleRef")),
    ("RoleBinding", "name", lambda r: r["subjects"][0].pop("name")),
    ("ClusterRoleBinding", "apiGroups", lambda r: r["roleRef"].update(apiGroups=["x"])),
    (
        "ClusterRoleBinding",
        "apiVersion",
        lambda r: r.update(apiVersion="rbac.authorization.k8s.io/v2"),
    ),
]


@pytest.mark.parametrize(
    ("kind", "field", "edit"), BROKEN_RBAC, ids=[f"{k}-{f}" for k, f, _ in BROKEN_RBAC]
)
def test_a_broken_rbac_manifest_is_rejected(
    prod_jobs: StackRun, schema: KubernetesSchema, kind: str, field: str, edit: Any
) -> None:
    body = rbac_manifest(prod_jobs, kind)
    assert schema.errors(body) == []
    edit(body)
    errors = schema.errors(body)
    assert errors, f"a {kind} with a bad {field} was accepted"
    assert any(field in error for error in errors) or field == "apiVersion", errors


def test_enum_rules_are_the_values_the_official_spec_describes(schema: KubernetesSchema) -> None:
    """ENUMS adds the server's Go validation; each value must be named in the spec's own text."""
    for (name, field), values in ENUMS.items():
        api_version = "batch/v1" if ".batch." in name else "v1"
        description = schema.official(api_version)[name]["properties"][field]["description"]
        for value in values:
            assert value in description, f"{name}.{field}: {value!r} not in {description!r}"


def test_the_schema_is_the_pinned_release_from_the_go_module_proxy(
    schema: KubernetesSchema,
) -> None:
    module, version, checksum = (schema.directory / "VERSION").read_text().split()
    assert module == "k8s.io/kubernetes" and version == schema.version
    assert checksum.startswith("h1:")  # verified against the Go checksum database on download
