"""The backup CronJobs' args and config fail at construction, naming the field (plain pydantic),
and infra/kubernetes.py names the config key it is missing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s
import pytest
from program_harness import ROOT, RecordingMocks, run_program
from pydantic import ValidationError

from components.backup_cronjobs import (
    ENGINE_MEMORY_MIB,
    BackupCronJobsArgs,
    JobResources,
    StoreJob,
    job_timing,
)
from components.backup_iam import BackupJobRoleArgs, job_policy, trust_policy
from infra.kubernetes import BackupJobsConfigError, define_backup_job_roles, define_backup_jobs
from stackmodels import StackConfig
from stackmodels.errors import ConfigError

pytestmark = pytest.mark.unit

ROLE_ARN = "arn:aws:iam::123456789012:role/aipx-backup-trading-db-us-east-1"
ISSUER = "https://oidc.eks.us-east-1.amazonaws.com/id/ABCDEF0123456789"
PROVIDER = (
    "arn:aws:iam::123456789012:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/ABCDEF0123456789"
)
VAULT = "arn:aws:s3:::aipx-backup-vault-123456789012-us-east-1"
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/aipx/backup-runner:0.1.0"


def role_args(**overrides: Any) -> BackupJobRoleArgs:
    values: dict[str, Any] = {
        "role_name": "aipx-backup-trading-db-us-east-1",
        "oidc_provider_arn": PROVIDER,
        "oidc_issuer_url": ISSUER,
        "namespace": "dr-backups",
        "service_account": "backup-trading-db",
        "vault_arn": VAULT,
        "data_class": "user-data",
        "store": "trading-db",
        "region": "us-east-1",
        "account_id": "123456789012",
    }
    return BackupJobRoleArgs(**(values | overrides))


def store_job(**overrides: Any) -> StoreJob:
    values: dict[str, Any] = {
        "store": "trading-db",
        "kind": "postgres",
        "data_class": "user-data",
        "schedule": "*/15 * * * *",
        "role_arn": ROLE_ARN,
        "credentials_secret": "trading-db-backup-credentials",
    }
    return StoreJob(**(values | overrides))


def cronjobs_args(**overrides: Any) -> BackupCronJobsArgs:
    values: dict[str, Any] = {
        "platform": "aipx",
        "stack": "prod",
        "namespace": "dr-backups",
        "image": IMAGE,
        "outputs_json": "{}",
        "config_yaml": "config: {}\n",
        "jobs": [store_job()],
    }
    return BackupCronJobsArgs(**(values | overrides))


def config(stack: str = "prod") -> StackConfig:
    return StackConfig.for_stack(stack, ROOT)


def with_kubernetes(base: StackConfig, **changes: Any) -> StackConfig:
    return base.model_copy(update={"kubernetes": base.kubernetes.model_copy(update=changes)})


# ---- the IRSA role ----------------------------------------------------------------------------


def test_role_trust_names_the_service_account_of_the_issuer() -> None:
    [statement] = trust_policy(role_args())["Statement"]
    assert statement["Condition"]["StringEquals"] == {
        "oidc.eks.us-east-1.amazonaws.com/id/ABCDEF0123456789:sub": (
            "system:serviceaccount:dr-backups:backup-trading-db"
        ),
        "oidc.eks.us-east-1.amazonaws.com/id/ABCDEF0123456789:aud": "sts.amazonaws.com",
    }


def test_role_policy_is_scoped_to_the_stores_prefix() -> None:
    policy = job_policy(VAULT, role_args(store="other-db", service_account="backup-other-db"))
    [write] = [s for s in policy["Statement"] if s["Sid"] == "WriteOwnPrefix"]
    assert write["Resource"] == f"{VAULT}/user-data/other-db/*"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("oidc_provider_arn", PROVIDER.replace("us-east-1", "us-west-2")),
        ("namespace", "Dr_Backups"),
        ("role_name", "x" * 65),
        ("vault_arn", "aipx-backup-vault"),
        ("store", "Trading DB"),
    ],
)
def test_role_args_name_the_bad_field(field: str, value: str) -> None:
    with pytest.raises(ValidationError, match=field):
        role_args(**{field: value})


def test_only_a_sealing_role_may_get_a_data_key_directly_and_never_decrypt() -> None:
    plain = {s["Sid"] for s in job_policy(VAULT, role_args())["Statement"]}
    assert "SealKubernetesSecrets" not in plain
    sealing = role_args(
        store="app-state",
        service_account="backup-app-state",
        data_class="app-config",
        seals_secrets=True,
    )
    [seal] = [
        s for s in job_policy(VAULT, sealing)["Statement"] if s["Sid"] == "SealKubernetesSecrets"
    ]
    assert seal["Action"] == ["kms:GenerateDataKey"]
    assert seal["Condition"] == {
        "StringEquals": {"kms:EncryptionContext:drkit:purpose": "kubernetes-secrets"},
        "StringLike": {"kms:EncryptionContext:drkit:backup": "app-config/app-state/*"},
    }


# ---- the CronJob args -------------------------------------------------------------------------


def test_timing_follows_the_shortest_gap_of_the_schedule() -> None:
    assert job_timing("*/15 * * * *") == job_timing("0,15,30,45 * * * *")
    quarter = job_timing("*/15 * * * *")
    assert (quarter.starting_deadline_seconds, quarter.active_deadline_seconds) == (300, 540)
    hourly = job_timing("5 * * * *")
    assert (hourly.starting_deadline_seconds, hourly.active_deadline_seconds) == (300, 3240)
    weekdays = job_timing("0 9 * * 1-5")  # the shortest gap (a day) bounds the run, not 3 days
    assert weekdays.active_deadline_seconds == 86400 - 300 - 60
    five = job_timing("*/5 * * * *")
    assert (five.starting_deadline_seconds, five.active_deadline_seconds) == (150, 90)


def test_a_schedule_too_frequent_for_a_backup_names_the_store() -> None:
    with pytest.raises(ValidationError, match=r"schedule of store 'trading-db'.*60 s apart"):
        store_job(schedule="* * * * *")


def test_memory_limit_must_cover_the_engines_bound() -> None:
    with pytest.raises(ValidationError, match=rf"memory_limit.*{ENGINE_MEMORY_MIB}Mi"):
        JobResources(memory_limit="256Mi")
    with pytest.raises(ValidationError, match="memory_limit"):
        JobResources(memory_limit="512M")  # decimal megabytes: not what anyone meant
    with pytest.raises(ValidationError, match="memory_request"):
        JobResources(memory_request="1Gi")
    with pytest.raises(ValidationError, match="cpu_limit"):
        JobResources(cpu_limit="1Gi")


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"image": "aipx/backup-runner"}, "image"),
        ({"image": "registry.example/aipx/backup-runner:latest"}, "image"),
        ({"jobs": [store_job(), store_job()]}, "jobs"),
        ({"jobs": []}, "jobs"),
        ({"namespace": "DR"}, "namespace"),
        ({"outputs_json": ""}, "outputs_json"),
    ],
)
def test_cronjobs_args_name_the_bad_field(overrides: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError, match=field):
        cronjobs_args(**overrides)


def test_store_names_fit_a_cronjob_name() -> None:
    with pytest.raises(ValidationError, match="store"):
        store_job(store="s" * 43)  # backup-<store> must stay within 52 characters
    store_job(store="s" * 42)


def test_only_a_kubernetes_store_names_the_namespace_it_reads() -> None:
    kubernetes = {
        "store": "app-state",
        "kind": "kubernetes",
        "data_class": "app-config",
        "schedule": "0 * * * *",
        "credentials_secret": None,
    }
    assert store_job(**kubernetes, state_namespace="aipx").state_namespace == "aipx"
    with pytest.raises(ValidationError, match=r"state_namespace: store 'app-state'.*backs up"):
        store_job(**kubernetes)
    with pytest.raises(ValidationError, match=r"state_namespace: store 'trading-db'.*postgres"):
        store_job(state_namespace="aipx")
    with pytest.raises(ValidationError, match="state_namespace"):
        store_job(**kubernetes, state_namespace="Not_A_Namespace")


# ---- config keys ------------------------------------------------------------------------------


def _roles(base: StackConfig) -> dict[str, Any]:
    def program() -> dict[str, Any]:
        provider = aws.Provider("aws", region=base.region)
        define_backup_job_roles(
            base, account="123456789012", partition="aws", vault_arn=VAULT, provider=provider
        )
        return {}

    return run_program(program, "prod", RecordingMocks())[0]


def _jobs(base: StackConfig) -> dict[str, Any]:
    def program() -> dict[str, Any]:
        provider = k8s.Provider("k8s")
        role_arns: dict[str, pulumi.Input[str]] = {store: ROLE_ARN for store in base.stores}
        return define_backup_jobs(
            base, "prod", role_arns=role_arns, outputs={"stack": "prod"}, provider=provider
        )

    return run_program(program, "prod", RecordingMocks())[0]


def test_roles_without_the_clusters_oidc_provider_name_the_key() -> None:
    base = with_kubernetes(config(), oidc_provider_arn=None, oidc_issuer_url=None)
    with pytest.raises(BackupJobsConfigError, match=r"trading-dr:kubernetes\.oidc_provider_arn"):
        _roles(base)


def test_roles_of_the_other_regions_cluster_are_refused() -> None:
    dr = config("dr")
    prod = config("prod")
    base = with_kubernetes(
        dr,
        oidc_provider_arn=prod.kubernetes.oidc_provider_arn,
        oidc_issuer_url=prod.kubernetes.oidc_issuer_url,
    )
    with pytest.raises(BackupJobsConfigError, match=r"oidc_issuer_url.*us-east-1.*us-west-2"):
        _roles(base)


def test_jobs_without_an_image_name_the_key() -> None:
    with pytest.raises(BackupJobsConfigError, match=r"trading-dr:kubernetes\.backup_image"):
        _jobs(with_kubernetes(config(), backup_image=None))


def test_dr_jobs_pull_from_their_own_regions_registry() -> None:
    base = with_kubernetes(config("dr"), backup_image=IMAGE)
    with pytest.raises(BackupJobsConfigError, match=r"backup_image.*us-east-1.*us-west-2"):
        _jobs(base)


def test_a_failover_written_to_config_moves_the_backups_to_dr() -> None:
    assert _jobs(config("prod"))["suspended"] is False
    assert _jobs(config("prod").model_copy(update={"active_region": "us-west-2"}))["suspended"]
    dr = config("dr").model_copy(update={"active_region": "us-west-2"})
    assert _jobs(dr)["suspended"] is False


def test_bad_kubernetes_keys_fail_at_load_with_the_key(tmp_path: Path) -> None:
    text = (ROOT / "Pulumi.prod.yaml").read_text()
    path = tmp_path / "Pulumi.prod.yaml"
    path.write_text(text.replace(":0.1.0", ":latest"))
    with pytest.raises(ConfigError, match=r"trading-dr:kubernetes\.backup_image.*latest"):
        StackConfig.load(path)
    path.write_text(
        text.replace(
            "oidc_issuer_url: https://oidc.eks.us-east-1",
            "oidc_issuer_url: https://oidc.eks.us-east-2",
        )
    )
    with pytest.raises(ConfigError, match="oidc_provider_arn"):
        StackConfig.load(path)
