"""Every S3 request a backup CronJob makes is one its IAM role allows.

The local world's S3 (moto) enforces no IAM, so a backup that is green locally could be refused on
AWS at its first request (the lease) or lose its catalog without failing. This test runs real
backups as the CronJob runs them (``drkit.backups.take_backup``) against the local vault, records
each S3 request from botocore, and evaluates it against the job role's policy exactly as
``components.backup_iam.job_policy`` writes it for that store: action, resource and the
``s3:prefix`` condition, an explicit Deny winning (``tests/iam_policy.py``). The same for the
isolated vault's reader role during a restore from it (``reader_policy``).
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.client import BaseClient

from components.backup_iam import BackupJobRoleArgs, job_policy
from components.isolated_vault import reader_policy
from drkit.backups import BackupRequest, take_backup
from drkit.context import OpsContext
from drkit.ops.executor import Status
from drkit.ops.restore_postgres import RestorePostgresRequest, build_plan
from drkit.ops.verbs import RestoreEnv
from tests.iam_policy import S3Request, allowed, s3_requests
from tests.integration.ops_helpers import (
    context,
    create_topics,
    database_backup,
    produce,
    run,
    unique_topics,
)

pytestmark = pytest.mark.integration

ISSUER = "https://oidc.eks.us-east-1.amazonaws.com/id/ABCDEF0123456789"
PROVIDER = (
    "arn:aws:iam::123456789012:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/ABCDEF0123456789"
)


@pytest.fixture
def recorded() -> Iterator[list[tuple[str, dict[str, Any]]]]:
    """Every S3 API call made in-process, as (operation, parameters)."""
    calls: list[tuple[str, dict[str, Any]]] = []
    original = BaseClient._make_api_call

    def record(self: BaseClient, operation: str, params: dict[str, Any]) -> Any:
        if self.meta.service_model.service_name == "s3":
            calls.append((operation, dict(params)))
        return original(self, operation, params)

    BaseClient._make_api_call = record  # type: ignore[method-assign]
    try:
        yield calls
    finally:
        BaseClient._make_api_call = original  # type: ignore[method-assign]


def role_policy(ctx: OpsContext, store: str) -> dict[str, Any]:
    config = ctx.config.stores[store]
    args = BackupJobRoleArgs(
        role_name=f"aipx-backup-{store}-us-east-1",
        oidc_provider_arn=PROVIDER,
        oidc_issuer_url=ISSUER,
        namespace="dr-backups",
        service_account=f"backup-{store}",
        vault_arn=f"arn:aws:s3:::{ctx.outputs.backup_vault.name}",
        audit_bucket_arn=f"arn:aws:s3:::{ctx.outputs.audit_bucket.name}",
        data_class=config.data_class,
        store=store,
        region="us-east-1",
        account_id="123456789012",
    )
    return job_policy(args.vault_arn, args)


def backup(project: Path, store: str) -> None:
    out = io.StringIO()
    code = take_backup(BackupRequest(stack="local", store=store, wait_seconds=5), project, out)
    assert code == 0, out.getvalue()


def refused(
    ctx: OpsContext, store: str, calls: list[tuple[str, dict[str, Any]]]
) -> list[S3Request]:
    policy = role_policy(ctx, store)
    ours = {ctx.outputs.backup_vault.name, ctx.outputs.audit_bucket.name}
    requests = [r for operation, params in calls for r in s3_requests(operation, params)]
    mine = [r for r in requests if r.bucket in ours]
    assert mine, "no request to the vault was recorded"
    return [r for r in mine if not allowed(policy, r)]


@pytest.mark.parametrize("store", ["trading-db", "session-cache"])
def test_a_backup_job_makes_only_requests_its_role_allows(
    project: Path, recorded: list[tuple[str, dict[str, Any]]], store: str
) -> None:
    backup(project, store)
    backup(project, store)  # the second reads the first's lease and catalog day
    ctx = OpsContext.load("local", None, project)
    denied = refused(ctx, store, recorded)
    assert denied == [], "\n".join(str(r) for r in denied)
    operations = {operation for operation, _ in recorded}
    assert {"PutObject", "ListObjectsV2"} <= operations  # the lease, the catalog, the objects
    keys = {str(params.get("Key")) for _, params in recorded}
    assert any(k.startswith(f"leases/backup/{store}/") for k in keys)
    assert any(k.startswith(f"catalog/{store}/") for k in keys)


def test_a_kafka_backup_job_continuing_its_chain_makes_only_allowed_requests(
    project_with_kafka: Path, recorded: list[tuple[str, dict[str, Any]]]
) -> None:
    topics = unique_topics(project_with_kafka)
    ctx = OpsContext.load("local", None, project_with_kafka)
    exported = ctx.outputs.stores["event-stream"]
    bootstrap = f"{exported.host}:{exported.port}"
    create_topics(bootstrap, topics)
    produce(bootstrap, topics[0], 0, 5)
    backup(project_with_kafka, "event-stream")
    produce(bootstrap, topics[0], 5, 5)
    backup(project_with_kafka, "event-stream")  # incremental: reads the catalog and a manifest
    denied = refused(ctx, "event-stream", recorded)
    assert denied == [], "\n".join(str(r) for r in denied)
    assert "GetObject" in {operation for operation, _ in recorded}  # the previous manifest


def test_the_policy_evaluation_refuses_what_the_role_was_not_given() -> None:
    """The evaluator is not permissive: the lease of another store, the catalog of another
    store, another store's prefix and any delete are refused."""
    args = BackupJobRoleArgs(
        role_name="aipx-backup-trading-db-us-east-1",
        oidc_provider_arn=PROVIDER,
        oidc_issuer_url=ISSUER,
        namespace="dr-backups",
        service_account="backup-trading-db",
        vault_arn="arn:aws:s3:::vault",
        data_class="user-data",
        store="trading-db",
        region="us-east-1",
        account_id="123456789012",
    )
    policy = job_policy(args.vault_arn, args)
    ok = [
        S3Request("s3:PutObject", "vault", "leases/backup/trading-db/000000000001.json"),
        S3Request("s3:GetObject", "vault", "catalog/trading-db/2026/12/04/x.json"),
        S3Request("s3:ListBucket", "vault", None, "catalog/trading-db/2026/12/"),
        S3Request("s3:GetObject", "vault", "user-data/trading-db/20261204T000000Z/manifest.json"),
    ]
    for request in ok:
        assert allowed(policy, request), request
    denied = [
        S3Request("s3:PutObject", "vault", "leases/backup/other-db/000000000001.json"),
        S3Request("s3:PutObject", "vault", "catalog/other-db/2026/12/04/x.json"),
        S3Request("s3:ListBucket", "vault", None, "catalog/"),
        S3Request("s3:PutObject", "vault", "user-data/other-db/x"),
        S3Request("s3:DeleteObject", "vault", "user-data/trading-db/x"),
        S3Request("s3:DeleteObject", "vault", "leases/backup/trading-db/000000000001.json"),
    ]
    for request in denied:
        assert not allowed(policy, request), request


def test_a_restore_from_the_isolated_vault_makes_only_requests_its_reader_role_allows(
    project_isolated: Path, recorded: list[tuple[str, dict[str, Any]]]
) -> None:
    """The reader role lists, reads and holds the restore's lease there, nothing else
    (``components.isolated_vault.reader_policy``), and its lease really is there."""
    ctx = context(project_isolated)
    isolated = ctx.outputs.isolated_vault
    assert isolated is not None
    database_backup(ctx)
    recorded.clear()  # the restore's requests only
    request = RestorePostgresRequest(target_database="from_isolated_iam", source="isolated")
    plan, _ = build_plan(ctx, request, RestoreEnv(project_isolated))
    report, out = run(ctx, project_isolated, plan, yes=True)
    assert report.status is Status.SUCCEEDED, out
    vault_arn = f"arn:aws:s3:::{isolated.bucket.name}"
    policy = reader_policy(vault_arn, isolated.kms_key_arn, isolated.bucket.region)
    requests = [r for operation, params in recorded for r in s3_requests(operation, params)]
    mine = [r for r in requests if r.bucket == isolated.bucket.name]
    denied = [r for r in mine if not allowed(policy, r)]
    assert denied == [], "\n".join(str(r) for r in denied)
    writes = {r.key for r in mine if r.action == "s3:PutObject"}
    assert writes and all(str(k).startswith("leases/restore/") for k in writes)
    assert {r.action for r in mine} >= {"s3:GetObject", "s3:ListBucket", "s3:PutObject"}
