"""Kubernetes state against a real kube-apiserver (+ etcd) and the KMS and S3/GCS emulators:
a namespace backed up in one archive with its Secrets sealed, restored by ``restore.k8s`` into
the same or another namespace in priority order, object by object."""

from __future__ import annotations

import base64
import io
import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from drkit.backup.engine import Destinations, run_backup
from drkit.backup.kubernetes import KubernetesHandler
from drkit.backup.manifest import Manifest
from drkit.backups import backup_store
from drkit.context import OpsContext
from drkit.kubestate.api import ApiResource, KubeApi
from drkit.kubestate.archive import Record
from drkit.kubestate.compare import compare_states, namespace_state
from drkit.local.kubernetes import LocalKubernetes
from drkit.local.s3 import LocalAws
from drkit.local.stores import kubernetes_endpoint
from drkit.ops.executor import Status
from drkit.ops.restore_k8s import OBJECTS_REPORT, RestoreK8sRequest, build_plan
from drkit.ops.run import RunOptions, run_plan
from drkit.ops.verbs import RestoreEnv
from drkit.recovery import RecoveryError
from drkit.restore.stream import raw_chunks
from drkit.seed.kubernetes import SeededNamespace, seed_namespace, wipe_namespace
from stackmodels import StackOutputs
from tests.integration.kubernetes_fixture import kubernetes_api

pytestmark = pytest.mark.integration
__all__ = ["kubernetes_api"]  # the session's API server, imported for pytest

ROOT = Path(__file__).resolve().parents[2]
STORE = "app-state"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def api(kubernetes_api: LocalKubernetes) -> Iterator[KubeApi]:
    with kubernetes_api.api_client() as client:
        yield KubeApi(client)


@pytest.fixture
def seeded(api: KubeApi) -> SeededNamespace:
    """The seed's kinds in a namespace of this test's own, with a CRD group of its own."""
    return seed_namespace(api, unique("aipx"), group=f"{uuid.uuid4().hex[:8]}.aipx.io")


def attach(project: Path, cluster: LocalKubernetes, namespace: str, **changes: Any) -> OpsContext:
    """Make the session's API server the project's ``app-state`` store, for ``namespace``."""
    path = project / ".drkit" / "local" / "outputs.json"
    outputs = StackOutputs.from_file(path, "local")
    stores = dict(outputs.stores) | {STORE: kubernetes_endpoint(cluster, namespace)}
    update = {"stores": stores, "k8s_namespace": namespace} | changes
    outputs.model_copy(update=update).write(path)
    return OpsContext.load("local", project_dir=project)


def restore(
    ctx: OpsContext, project: Path, request: RestoreK8sRequest, **options: Any
) -> tuple[Any, str, list[dict[str, Any]]]:
    out = io.StringIO()
    plan, prepared = build_plan(ctx, request, RestoreEnv(project, out))
    try:
        report = run_plan(
            ctx, plan, RunOptions(**options), project, out, "restore-k8s", prepared.figures
        )
    finally:
        prepared.close()
    objects_report = project / "reports" / report.run_id / OBJECTS_REPORT
    outcomes = json.loads(objects_report.read_text()) if objects_report.exists() else []
    return report, out.getvalue(), outcomes


def secret_needles(seeded: SeededNamespace) -> list[bytes]:
    """Each Secret value in plain text and as the API (and kubectl) writes it, base64."""
    needles = []
    for value in seeded.secret_values:
        needles += [value.encode(), base64.b64encode(value.encode())]
    return needles


def assert_no_secret(blob: bytes, seeded: SeededNamespace, where: str) -> None:
    for needle in secret_needles(seeded):
        assert needle not in blob, f"a Secret value ({needle[:6]!r}...) is in {where}"


def test_round_trip_into_another_namespace_every_object_equal(
    project: Path, kubernetes_api: LocalKubernetes, api: KubeApi, seeded: SeededNamespace
) -> None:
    ctx = attach(project, kubernetes_api, seeded.namespace)
    before = namespace_state(api, seeded.namespace)
    manifest = backup_store(ctx, STORE, [])
    target = unique("aipx-restored")

    report, out, outcomes = restore(ctx, project, RestoreK8sRequest(namespace_to=target), yes=True)

    assert report.status is Status.SUCCEEDED, out
    diff = compare_states(before, namespace_state(api, target), seeded.namespace, target)
    assert diff.ok and diff.equal == len(before) == 23, diff.summary()
    # What the backup holds, and what it left to the controllers.
    assert manifest.counts["secrets"] == 3 and manifest.counts[f"venues.{seeded.group}"] == 2
    assert "pods" not in manifest.counts and "replicasets.apps" not in manifest.counts
    assert manifest.source["skipped_objects"] == {"replicasets.apps": 1, "pods": 1}
    assert manifest.source["custom_resource_definitions"] == [seeded.crd]
    assert manifest.consistent_point["resource_version"].isdigit()
    # Secrets decrypted with KMS: their values came back exactly.
    restored = api.get(f"/api/v1/namespaces/{target}/secrets/aws-credentials")["data"]
    original = api.get(f"/api/v1/namespaces/{seeded.namespace}/secrets/aws-credentials")["data"]
    assert restored == original
    assert base64.b64decode(restored["secret_access_key"]).decode() == seeded.secret_values[1]
    binding = api.get(
        f"/apis/rbac.authorization.k8s.io/v1/namespaces/{target}/rolebindings/aipx-app"
    )
    assert binding["subjects"][0]["namespace"] == target  # the grant follows the account
    owned = api.get(f"/api/v1/namespaces/{target}/configmaps/venue-xnys-limits")
    venue = api.get(f"/apis/{seeded.group}/v1/namespaces/{target}/venues/xnys")
    assert owned["metadata"]["ownerReferences"][0]["uid"] == venue["metadata"]["uid"]
    # The plan: priorities in order, each with its reason; every object reported.
    steps = [s.id for s in report.steps]
    assert steps == [
        "restore.namespace",
        "restore.crds",
        "restore.access",
        "restore.config",
        "restore.storage",
        "restore.services",
        "restore.workloads",
        "restore.traffic",
        "restore.custom-resources",
        "verify.app-state",
    ]
    assert out.count("Why now:") == len(steps) - 1
    assert {o["outcome"] for o in outcomes} <= {"restored", "skipped"}
    assert sum(o["outcome"] == "restored" for o in outcomes) == 22  # all but the existing CRD
    assert f"all 23 objects of the backup are in namespace {target!r}" in out
    # Nowhere in what the run wrote either.
    for path in [*(project / ".drkit" / "journal").glob("*"), *(project / "reports").rglob("*")]:
        if path.is_dir():
            continue
        assert_no_secret(path.read_bytes(), seeded, str(path))


def test_secrets_are_never_in_plain_text_in_the_vault_the_mirror_or_the_manifest(
    kubernetes_api: LocalKubernetes,
    aws_emulator: LocalAws,
    destinations: Destinations,
    api: KubeApi,
    seeded: SeededNamespace,
) -> None:
    kms = aws_emulator.client("kms")
    key = destinations.encryption.kms_key_id
    assert key is not None
    handler = KubernetesHandler(kubernetes_api.api_client, seeded.namespace, key, kms)
    manifest = run_backup(STORE, "app-config", handler, destinations)

    assert destinations.mirror is not None
    archive = next(o for o in manifest.objects if o.name == "resources.jsonl")
    for store in (destinations.vault, destinations.mirror):
        keys = [info.key for info in store.list_objects("")]
        assert any(k.endswith("manifest.json") for k in keys)
        for object_key in keys:  # manifest, archive, catalog: every byte stored
            assert_no_secret(b"".join(store.open_stream(object_key)), seeded, object_key)
        plain = b"".join(raw_chunks(store, archive))
        assert_no_secret(plain, seeded, f"{store.name}: decompressed archive")
        assert b"risk-limits.json" in plain  # the check reads real content: a ConfigMap is there
        assert plain.count(b'"sealed":{"nonce":') == 3
    assert_no_secret(manifest.model_dump_json().encode(), seeded, "the manifest")
    envelope = manifest.consistent_point["secrets"]
    assert envelope["cipher"] == "AES-256-GCM" and envelope["count"] == 3
    assert envelope["encryption_context"]["drkit:backup"] == manifest.prefix
    assert (
        kms.decrypt(
            CiphertextBlob=base64.b64decode(envelope["encrypted_data_key"]),
            EncryptionContext=envelope["encryption_context"],
        )["KeyId"]
        == key
    )  # sealed under the vault key


def test_existing_objects_are_skipped_and_replace_applies_the_backup_over_them(
    project: Path, kubernetes_api: LocalKubernetes, api: KubeApi, seeded: SeededNamespace
) -> None:
    ctx = attach(project, kubernetes_api, seeded.namespace)
    backup_store(ctx, STORE, [])
    config_path = f"/api/v1/namespaces/{seeded.namespace}/configmaps/app-config"
    api.merge_patch(config_path, {"data": {"LOG_LEVEL": "debug"}})  # drift after the backup
    api.delete(f"/api/v1/namespaces/{seeded.namespace}/secrets/aws-credentials")

    report, out, outcomes = restore(ctx, project, RestoreK8sRequest(), yes=True)

    assert report.status is Status.SUCCEEDED, out
    by_name = {(o["kind"], o["name"]): o for o in outcomes}
    assert by_name[("Secret", "aws-credentials")]["outcome"] == "restored"
    assert by_name[("ConfigMap", "app-config")]["outcome"] == "skipped"
    assert "exists" in by_name[("ConfigMap", "app-config")]["detail"]
    assert api.get(config_path)["data"]["LOG_LEVEL"] == "debug"  # left alone
    assert report.figures["objects_skipped"] == 22 and report.figures["objects_restored"] == 1

    report, out, outcomes = restore(
        ctx, project, RestoreK8sRequest(replace=True, kinds=["configmaps", "Secret"]), yes=True
    )

    assert report.status is Status.SUCCEEDED, out
    assert api.get(config_path)["data"]["LOG_LEVEL"] == "info"  # the backup's value again
    assert {o["kind"] for o in outcomes} == {"Namespace", "ConfigMap", "Secret"}
    assert {o["outcome"] for o in outcomes if o["kind"] != "Namespace"} == {"replaced"}


def test_namespace_loss_restores_the_crd_before_its_custom_resources(
    project: Path, kubernetes_api: LocalKubernetes, api: KubeApi, seeded: SeededNamespace
) -> None:
    ctx = attach(project, kubernetes_api, seeded.namespace)
    before = namespace_state(api, seeded.namespace)
    backup_store(ctx, STORE, [])
    wipe_namespace(api, seeded.namespace, [seeded.crd])  # the disaster, CRD included
    assert not api.exists(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{seeded.crd}")

    report, out, outcomes = restore(ctx, project, RestoreK8sRequest(), yes=True)

    assert report.status is Status.SUCCEEDED, out
    kinds = [o["kind"] for o in outcomes]
    assert kinds.index("CustomResourceDefinition") < kinds.index("Venue")
    assert kinds[-2:] == ["Venue", "Venue"]
    assert [s.id for s in report.steps][:2] == ["restore.namespace", "restore.crds"]
    crd = api.get(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{seeded.crd}")
    assert {c["type"]: c["status"] for c in crd["status"]["conditions"]}["Established"] == "True"
    after = namespace_state(api, seeded.namespace)
    diff = compare_states(before, after, seeded.namespace, seeded.namespace)
    assert diff.ok, diff.summary()


class InjectingHandler(KubernetesHandler):
    """Writes one extra custom resource the CRD's schema rejects (``mic`` must be 4 capitals)."""

    group: str = ""

    def _stream(self, *args: Any, **kwargs: Any) -> Iterator[bytes]:
        yield from super()._stream(*args, **kwargs)
        resource = ApiResource(self.group, "v1", "venues", "Venue", True)
        bad = {
            "apiVersion": f"{self.group}/v1",
            "kind": "Venue",
            "metadata": {"name": "bad-venue", "namespace": self.namespace},
            "spec": {"mic": "not-a-mic", "maxOrderQty": 0},
        }
        yield Record(resource, True, bad).line()


def test_a_failed_object_is_reported_and_the_task_exits_non_zero(
    project: Path, kubernetes_api: LocalKubernetes, api: KubeApi, seeded: SeededNamespace
) -> None:
    ctx = attach(project, kubernetes_api, seeded.namespace)
    handler = InjectingHandler(
        kubernetes_api.api_client, seeded.namespace, ctx.outputs.vault_key_arn, ctx.aws("kms")
    )
    handler.group = seeded.group
    run_backup(STORE, "app-config", handler, ctx.destinations("app-config"))
    target = unique("aipx-partial")
    (project / "tasks.py").write_text(
        (ROOT / "tasks.py")
        .read_text()
        .replace("ROOT = Path(__file__).resolve().parent", f"ROOT = Path({str(project)!r})")
    )

    result = subprocess.run(
        [sys.executable, "-m", "invoke", "restore.k8s", "--namespace-to", target, "--yes"],
        capture_output=True,
        text=True,
        cwd=project,
        check=False,
    )

    assert result.returncode == 1, result.stdout + result.stderr
    assert f"failed    Venue {target}/bad-venue: 422 Invalid" in result.stdout
    assert "FAILED" in result.stdout and "failed: restore k8s app-state" in result.stdout
    outcomes = json.loads((project / "reports" / "latest" / OBJECTS_REPORT).read_text())
    failed = [o for o in outcomes if o["outcome"] == "failed"]
    assert [o["name"] for o in failed] == ["bad-venue"]
    assert "spec.mic" in failed[0]["detail"]
    assert api.exists(f"/apis/{seeded.group}/v1/namespaces/{target}/venues/xnys")  # the rest
    report = json.loads((project / "reports" / "latest" / "restore-k8s.json").read_text())
    assert report["status"] == "failed" and report["figures"]["objects_failed"] == 1
    verify = report["steps"][-1]
    assert verify["outcome"] == "failed" and "bad-venue" in verify["detail"]


def test_a_key_that_cannot_decrypt_refuses_before_touching_the_cluster(
    project: Path,
    kubernetes_api: LocalKubernetes,
    aws_emulator: LocalAws,
    api: KubeApi,
    seeded: SeededNamespace,
) -> None:
    ctx = attach(project, kubernetes_api, seeded.namespace)
    manifest: Manifest = backup_store(ctx, STORE, [])
    target = unique("aipx-never")
    other_key = aws_emulator.client("kms").create_key(Description="not the vault key")
    dr_key = aws_emulator.client("kms", "eu-west-1").create_key(Description="dr, no replica")
    cases = {
        "another key": {"vault_key_arn": other_key["KeyMetadata"]["Arn"]},
        "a region without the key": {
            "region": "eu-west-1",
            "vault_key_arn": dr_key["KeyMetadata"]["Arn"],
        },
    }
    for case, changes in cases.items():
        ctx = attach(project, kubernetes_api, seeded.namespace, **changes)
        with pytest.raises(RecoveryError, match=r"KMS Decrypt.*AccessDenied") as refused:
            build_plan(ctx, RestoreK8sRequest(namespace_to=target), RestoreEnv(project))
        assert "Nothing was changed" in str(refused.value), case
        assert manifest.consistent_point["secrets"]["kms_key_id"] in str(refused.value)
    assert not api.exists(f"/api/v1/namespaces/{target}")
    assert not (project / ".drkit" / "journal").exists()


def test_dry_run_shows_the_plan_and_changes_nothing(
    project: Path, kubernetes_api: LocalKubernetes, api: KubeApi, seeded: SeededNamespace
) -> None:
    ctx = attach(project, kubernetes_api, seeded.namespace)
    manifest = backup_store(ctx, STORE, [])
    target = unique("aipx-dry")
    (project / "tasks.py").write_text(
        (ROOT / "tasks.py")
        .read_text()
        .replace("ROOT = Path(__file__).resolve().parent", f"ROOT = Path({str(project)!r})")
    )
    command = [sys.executable, "-m", "invoke", "restore.k8s", "--namespace-to", target]

    result = subprocess.run(
        [*command, "--dry-run"], capture_output=True, text=True, cwd=project, check=False
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert manifest.backup_id in result.stdout
    assert "dry run: nothing was changed" in result.stdout
    lines = result.stdout.splitlines()
    order = [line.split("]")[0].split("[")[1] for line in lines if "* [restore." in line]
    assert order[0] == "restore.namespace" and order[-1] == "restore.custom-resources"
    assert "3 secrets" in result.stdout and "Why now: configuration that pods" in result.stdout
    assert not api.exists(f"/api/v1/namespaces/{target}")
    assert not (project / ".drkit" / "journal").exists()
    assert not (project / "reports").exists()  # a dry run writes no report

    with pytest.raises(RecoveryError, match="--kinds meteors: is not in this backup; the backup"):
        build_plan(ctx, RestoreK8sRequest(kinds=["configmaps", "meteors"]), RestoreEnv(project))


def test_an_interrupted_restore_resumes_where_it_stopped(
    project: Path, kubernetes_api: LocalKubernetes, api: KubeApi, seeded: SeededNamespace
) -> None:
    ctx = attach(project, kubernetes_api, seeded.namespace)
    before = namespace_state(api, seeded.namespace)
    backup_store(ctx, STORE, [])
    target = unique("aipx-resumed")
    script = f"""
import sys
from pathlib import Path
from drkit.context import OpsContext
from drkit.ops.restore_k8s import RestoreK8sRequest, build_plan
from drkit.ops.run import RunOptions, run_plan
from drkit.ops.verbs import RestoreEnv
import drkit.restore.kubernetes as restore
real, calls = restore.restore_object, []
def interrupted(record, *args, **kwargs):  # Ctrl-C in the middle of the Secrets
    calls.append(record.resource.key)
    if calls.count("secrets") == 2:
        raise KeyboardInterrupt
    return real(record, *args, **kwargs)
restore.restore_object = interrupted
project = Path({str(project)!r})
ctx = OpsContext.load("local", project_dir=project)
request = RestoreK8sRequest(namespace_to={target!r})
plan, prepared = build_plan(ctx, request, RestoreEnv(project, sys.stdout))
report = run_plan(ctx, plan, RunOptions(yes=True), project, sys.stdout, "r", prepared.figures)
print("RUN_ID", report.run_id, report.status.value)
sys.exit(report.exit_code)
"""
    first = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, check=False
    )
    assert first.returncode == 130, first.stdout + first.stderr
    run_id = first.stdout.split("RUN_ID ")[1].split()[0]
    secrets_path = f"/api/v1/namespaces/{target}/secrets"
    assert [s["metadata"]["name"] for s in api.get(secrets_path)["items"]] == ["aws-credentials"]
    assert not api.exists(f"/apis/apps/v1/namespaces/{target}/deployments/api-gateway")

    report, out, outcomes = restore(
        ctx, project, RestoreK8sRequest(namespace_to=target), yes=True, resume=run_id
    )

    assert report.status is Status.SUCCEEDED, out
    step_outcomes = {s.id: s.outcome for s in report.steps}
    assert step_outcomes["restore.namespace"] == step_outcomes["restore.access"] == "resumed"
    assert step_outcomes["restore.config"] == step_outcomes["restore.workloads"] == "done"
    by_name = {(o["kind"], o["name"]): o["outcome"] for o in outcomes}
    assert by_name[("Secret", "aws-credentials")] == "skipped"  # restored before the Ctrl-C
    assert by_name[("Secret", "postgres-credentials")] == "restored"
    diff = compare_states(before, namespace_state(api, target), seeded.namespace, target)
    assert diff.ok, diff.summary()
