"""Kubernetes Secrets from the isolated copy alone (issue 22): the backup wraps its Secrets data key
under the isolated vault's own key too (KMS ``Encrypt`` across accounts, same encryption context),
so a restore with ``--source isolated`` opens them as the isolated vault's reader role, with prod's
key disabled (as an attacker holding prod can disable it, or schedule its deletion).

Real servers: the session's kube-apiserver, prod's AWS emulator (prod's key), the isolated
account's emulator (its key, its reader role through STS), which refuse a disabled key as KMS does
(``drkit.local.moto_server.patch_kms_use``).
"""

from __future__ import annotations

import base64
import io
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from drkit.backup.engine import IsolatedCopyFailed
from drkit.backups import backup_store
from drkit.context import OpsContext
from drkit.kubestate.api import KubeApi
from drkit.kubestate.compare import compare_states, namespace_state
from drkit.local.isolated import admin_client
from drkit.local.kubernetes import LocalKubernetes
from drkit.local.s3 import LocalAws
from drkit.local.stores import kubernetes_endpoint
from drkit.ops.executor import Status
from drkit.ops.restore_k8s import OBJECTS_REPORT, RestoreK8sRequest, build_plan
from drkit.ops.run import RunOptions, run_plan
from drkit.ops.verbs import RestoreEnv
from drkit.recovery import RecoveryError
from drkit.seed.kubernetes import SeededNamespace, seed_namespace
from drkit.storage.objectstore import Encryption, ObjectStoreError
from stackmodels import StackOutputs
from tests.integration.kubernetes_fixture import kubernetes_api

pytestmark = pytest.mark.integration
__all__ = ["kubernetes_api"]  # the session's API server, imported for pytest

STORE = "app-state"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def api(kubernetes_api: LocalKubernetes) -> Iterator[KubeApi]:
    with kubernetes_api.api_client() as client:
        yield KubeApi(client)


def attach(project: Path, cluster: LocalKubernetes, namespace: str) -> OpsContext:
    """The session's API server as the project's ``app-state`` store, for ``namespace``."""
    path = project / ".drkit" / "local" / "outputs.json"
    outputs = StackOutputs.from_file(path, "local")
    stores = dict(outputs.stores) | {STORE: kubernetes_endpoint(cluster, namespace)}
    outputs.model_copy(update={"stores": stores, "k8s_namespace": namespace}).write(path)
    return OpsContext.load("local", project_dir=project)


def restore(ctx: OpsContext, project: Path, request: RestoreK8sRequest) -> tuple[Any, str]:
    out = io.StringIO()
    plan, prepared = build_plan(ctx, request, RestoreEnv(project, out))
    try:
        report = run_plan(ctx, plan, RunOptions(yes=True), project, out, "restore-k8s")
    finally:
        prepared.close()
    return report, out.getvalue()


def test_secrets_restore_from_the_isolated_copy_with_prods_key_disabled(
    project_isolated: Path,
    kubernetes_api: LocalKubernetes,
    aws_emulator: LocalAws,
    isolated_aws: LocalAws,
    api: KubeApi,
) -> None:
    seeded: SeededNamespace = seed_namespace(
        api, unique("aipx-iso"), group=f"{uuid.uuid4().hex[:8]}.aipx.io"
    )
    ctx = attach(project_isolated, kubernetes_api, seeded.namespace)
    isolated = ctx.outputs.isolated_vault
    assert isolated is not None
    before = namespace_state(api, seeded.namespace)
    manifest = backup_store(ctx, STORE, [])
    assert manifest.destinations[-1] == f"s3://{isolated.bucket.name}" and not manifest.skipped
    secrets = manifest.consistent_point["secrets"]
    wrapped = secrets["isolated"]
    assert secrets["count"] == 3
    assert secrets["kms_key_id"] == ctx.outputs.vault_key_arn  # prod's key, as before
    assert wrapped["kms_key_id"] == isolated.kms_key_arn  # and the isolated vault's own
    assert wrapped["encryption_context"] == secrets["encryption_context"]
    assert wrapped["encrypted_data_key"] != secrets["encrypted_data_key"]
    # the isolated copy's manifest carries it (read as the vault account's administrator)
    s3 = admin_client(isolated_aws, "s3", isolated.bucket.region)
    body = s3.get_object(Bucket=isolated.bucket.name, Key=manifest.prefix + "manifest.json")
    stored = json.loads(body["Body"].read())
    assert stored["consistent_point"]["secrets"]["isolated"] == wrapped

    prod_kms: Any = aws_emulator.client("kms")
    prod_key = ctx.outputs.vault_key_arn.rsplit("/", 1)[1]
    prod_kms.disable_key(KeyId=prod_key)  # what an attacker holding prod can do
    try:
        never = unique("aipx-iso-never")
        with pytest.raises(RecoveryError, match=r"KMS Decrypt.*DisabledException") as refused:
            build_plan(ctx, RestoreK8sRequest(namespace_to=never), RestoreEnv(project_isolated))
        assert "Nothing was changed" in str(refused.value)
        assert not api.exists(f"/api/v1/namespaces/{never}")

        target = unique("aipx-iso-restored")
        report, out = restore(
            ctx, project_isolated, RestoreK8sRequest(namespace_to=target, source="isolated")
        )
        assert report.status is Status.SUCCEEDED, out
        # The production vault takes no write under its disabled key (S3 refuses an SSE-KMS
        # write whose key KMS refuses), so the restore held its target's lease in the isolated
        # vault, through the reader role: taken, then released.
        with pytest.raises(ObjectStoreError, match="DisabledException"):
            ctx.vault().put_bytes(
                f"leases/probe/{uuid.uuid4().hex}.json",
                b"{}",
                Encryption(kms_key_id=ctx.outputs.vault_key_arn),
            )
        leases = s3.list_objects_v2(Bucket=isolated.bucket.name, Prefix="leases/restore/")
        assert leases.get("KeyCount", 0) >= 2, leases
    finally:
        prod_kms.enable_key(KeyId=prod_key)
    diff = compare_states(before, namespace_state(api, target), seeded.namespace, target)
    assert diff.ok and diff.equal == len(before), diff.summary()

    def secrets_of(namespace: str) -> dict[str, Any]:
        listed = api.get(f"/api/v1/namespaces/{namespace}/secrets")["items"]
        return {item["metadata"]["name"]: item.get("data") for item in listed}

    original = secrets_of(seeded.namespace)
    assert len(original) == 3 and secrets_of(target) == original  # every value, equal
    revealed = base64.b64decode(original["aws-credentials"]["secret_access_key"]).decode()
    assert revealed == seeded.secret_values[1]
    report_file = project_isolated / "reports" / report.run_id / OBJECTS_REPORT
    outcomes = json.loads(report_file.read_text())
    assert sum(o["resource"] == "secrets" and o["outcome"] == "restored" for o in outcomes) == 3


def test_a_backup_without_the_isolated_wrap_is_refused_from_the_isolated_copy(
    project_isolated: Path, kubernetes_api: LocalKubernetes, api: KubeApi, isolated_aws: LocalAws
) -> None:
    """A failed wrap drops the isolated copy (a failed run with isolated_copy: required); its vault
    copy restores. KMS in the isolated account refuses a key that is disabled there."""
    seeded: SeededNamespace = seed_namespace(
        api, unique("aipx-nw"), group=f"{uuid.uuid4().hex[:8]}.aipx.io"
    )
    ctx = attach(project_isolated, kubernetes_api, seeded.namespace)
    isolated = ctx.outputs.isolated_vault
    assert isolated is not None
    kms = admin_client(isolated_aws, "kms", isolated.bucket.region)
    key = isolated.kms_key_arn.rsplit("/", 1)[1]
    kms.disable_key(KeyId=key)
    try:
        with pytest.raises(IsolatedCopyFailed, match=r"not wrapped under its key.*Disabled"):
            backup_store(ctx, STORE, [])
    finally:
        kms.enable_key(KeyId=key)
