"""The contract between each stack's real program and the backup its CronJobs run.

For prod and dr, the program runs under the recording mocks (``conftest``), and each CronJob's
dry run is taken as the pod would take it: the stack config and the outputs from the ConfigMap the
program declares (``/etc/drkit``), the store from the CronJob's arguments, and no credentials in
the environment. Every one must exit 0 and print its plan: which service serves the store (from
the outputs), how it is backed up, and where to. A store the stack exports no endpoint for, or
exports as another kind, fails here rather than at its first scheduled run in production.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from backup_jobs_harness import manifest
from program_harness import ACCOUNT, ROOT, StackRun

from drkit.__main__ import main
from drkit.backup.redis import ElastiCacheHandler
from drkit.context import OpsContext
from drkit.handlers import backup_handler
from stackmodels import StackOutputs
from stackmodels.outputs import SERVICE_NAMES, StoreService

pytestmark = pytest.mark.unit

CRONJOB = "kubernetes:batch/v1:CronJob"
CONFIG_MAP = "kubernetes:core/v1:ConfigMap"
EXPECTED_SERVICES = {
    "trading-db": StoreService.AURORA_POSTGRESQL,
    "event-stream": StoreService.MSK,
    "session-cache": StoreService.ELASTICACHE,
    "app-state": StoreService.KUBERNETES,
    "market-ticks": StoreService.TIMESTREAM_INFLUXDB,
}
"""What serves each store of the shipped config on AWS."""


def cronjob_stores(run: StackRun) -> dict[str, list[str]]:
    """Store -> the container's arguments (``backup STORE``), for every CronJob declared."""
    found = {}
    for resource in run.of_type(CRONJOB):
        body = manifest(resource)
        spec = body["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        [container] = spec["containers"]
        found[body["metadata"]["labels"]["app.kubernetes.io/instance"]] = container["args"]
    return found


def pod_files(run: StackRun, directory: Path) -> Path:
    """The ConfigMap's files, as mounted at ``/etc/drkit``; returns that directory."""
    [config_map] = [
        r for r in run.of_type(CONFIG_MAP) if manifest(r)["metadata"]["name"] == "drkit-stack"
    ]
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in manifest(config_map)["data"].items():
        (directory / name).write_text(text)
    return directory


@pytest.fixture(autouse=True)
def no_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("DRKIT_"):
            monkeypatch.delenv(name)


def dry_run(
    run: StackRun, args: list[str], etc: Path, capsys: pytest.CaptureFixture[str]
) -> tuple[int, str, str]:
    code = main(
        [
            *args,
            "--dry-run",
            "--stack",
            run.stack,
            "--outputs",
            str(etc / "outputs.json"),
            "--project-dir",
            str(etc),
        ]
    )
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_every_store_has_a_cronjob_in_both_stacks(prod: StackRun, dr: StackRun) -> None:
    for run in (prod, dr):
        assert set(cronjob_stores(run)) == set(run.config.stores) == set(EXPECTED_SERVICES)


def test_the_pods_outputs_are_the_stacks_exports(run: StackRun, tmp_path: Path) -> None:
    etc = pod_files(run, tmp_path / "etc")
    mounted = StackOutputs.from_file(etc / "outputs.json", run.stack)
    assert mounted == StackOutputs.parse(run.outputs, run.stack)
    assert {store: e.service for store, e in mounted.stores.items()} == {
        store: service
        for store, service in EXPECTED_SERVICES.items()
        if service is not StoreService.KUBERNETES  # read in-cluster, no endpoint exported
    }


def test_every_cronjobs_dry_run_prints_its_plan_without_credentials(
    run: StackRun, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    etc = pod_files(run, tmp_path / "etc")
    outputs = StackOutputs.from_file(etc / "outputs.json", run.stack)
    for store, args in cronjob_stores(run).items():
        assert args == ["backup", store]
        code, out, err = dry_run(run, args, etc, capsys)

        assert code == 0, f"{store}: {err}"
        stack_line, *lines = out.splitlines()
        assert stack_line == f"stack: {run.stack} (production; from --stack)"
        assert lines[0].startswith(f"plan: back up {store} (")
        assert f"of stack {run.stack} to s3://{outputs.backup_vault.name}, " in lines[0]
        assert f"gs://{outputs.gcs_mirror_bucket}" in lines[0]
        assert f"  source: {SERVICE_NAMES[EXPECTED_SERVICES[store]]}" in out
        assert "  method: " in out
        assert lines[-1] == "dry run: nothing was read or written"
        if store in outputs.stores:
            endpoint = outputs.stores[store]
            assert f"at {endpoint.host}:{endpoint.port}" in out


def test_a_missing_credential_is_reported_not_a_key_error(
    prod: StackRun, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    etc = pod_files(prod, tmp_path / "etc")
    code, out, _ = dry_run(prod, ["backup", "trading-db"], etc, capsys)
    assert code == 0
    assert (
        "  credentials: DRKIT_TRADING_DB_USER and DRKIT_TRADING_DB_PASSWORD MISSING "
        "(the CronJob takes them from Secret trading-db-backup-credentials)"
    ) in out
    assert "a real run would stop here" in out

    # The ElastiCache path reads no password: nothing is reported missing.
    code, out, _ = dry_run(prod, ["backup", "session-cache"], etc, capsys)
    assert code == 0 and "credentials" not in out
    assert "CopySnapshot" in out

    # A real run stops before reading or writing anything: one line, exit 2, no traceback.
    outputs = str(etc / "outputs.json")
    stack = ["--stack", "prod", "--yes"]
    code = main(["backup", "trading-db", *stack, "--outputs", outputs, "--project-dir", str(etc)])
    *before, last = capsys.readouterr().err.splitlines()
    assert code == 2
    assert last == (
        "error: no credentials for store 'trading-db': set DRKIT_TRADING_DB_USER and "
        "DRKIT_TRADING_DB_PASSWORD (the backup CronJobs take them from the store's Secret)"
    )
    # The refusal is journaled; with no AWS here, its events are spooled, with one warning.
    assert len(before) == 1 and before[0].startswith("WARNING drkit.audit: audit event "), before


def test_the_module_entrypoint_runs_the_same_dry_run(prod: StackRun, tmp_path: Path) -> None:
    """Once through ``python -m drkit`` itself, as the CronJob's image runs it."""
    etc = pod_files(prod, tmp_path / "etc")
    environment = {k: v for k, v in os.environ.items() if not k.startswith("DRKIT_")}
    result = subprocess.run(
        [
            *(sys.executable, "-m", "drkit", "backup", "session-cache", "--dry-run"),
            *("--stack", "prod", "--outputs", str(etc / "outputs.json"), "--project-dir", str(etc)),
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        env=environment,
    )
    assert result.returncode == 0, result.stderr
    assert "source: an ElastiCache replication group (elasticache)" in result.stdout


def test_outputs_of_another_kind_are_refused_at_load_naming_both(
    prod: StackRun, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    etc = pod_files(prod, tmp_path / "etc")
    values: dict[str, Any] = json.loads((etc / "outputs.json").read_text())
    cache = values["stores"]["session-cache"]
    values["stores"]["trading-db"] = cache  # an ElastiCache endpoint where postgres belongs
    (etc / "outputs.json").write_text(json.dumps(values))

    code, out, err = dry_run(prod, ["backup", "session-cache"], etc, capsys)

    assert code == 2 and out == "stack: prod (production; from --stack)\n"
    assert "Traceback" not in err
    assert err.splitlines() == [  # one line (drkit.cli_errors), naming both kinds
        "error: stack outputs of stack 'prod' are unusable: store 'trading-db' is of kind "
        "'postgres' in Pulumi.prod.yaml, but the outputs export an ElastiCache replication group "
        "for it (service 'elasticache', kind 'redis')"
    ]

    values["stores"]["trading-db"] = {**cache, "kind": "postgres"}  # the endpoint contradicts
    (etc / "outputs.json").write_text(json.dumps(values))
    code, out, err = dry_run(prod, ["backup", "session-cache"], etc, capsys)
    assert code == 2
    [line] = err.splitlines()
    assert line.startswith("error: ")
    assert line.endswith(
        "output 'stores.trading-db': service 'elasticache' (an ElastiCache replication "
        "group) serves kind 'redis', not the exported kind 'postgres'"
    )


def test_each_cronjob_gets_what_its_exported_service_needs(run: StackRun) -> None:
    """A credentials Secret only where the path reads a password (a missing Secret would keep
    the pod from starting); the ElastiCache job may snapshot and export its own group."""
    outputs = StackOutputs.parse(run.outputs, run.stack)
    for resource in run.of_type(CRONJOB):
        body = manifest(resource)
        store = body["metadata"]["labels"]["app.kubernetes.io/instance"]
        [container] = body["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
        secrets = {
            item["valueFrom"]["secretKeyRef"]["name"]
            for item in container["env"]
            if "secretKeyRef" in item.get("valueFrom", {})
        }
        wanted = store in ("trading-db", "market-ticks")
        assert (f"{store}-backup-credentials" in secrets) is wanted, store

    group = outputs.stores["session-cache"].resource_id
    name = f"aipx-backup-session-cache-{run.config.region}"
    [policy] = [r for r in run.of_type("aws:iam/rolePolicy:RolePolicy") if r.inputs["role"] == name]
    statements = {s["Sid"]: s for s in json.loads(policy.inputs["policy"])["Statement"]}
    assert statements["SnapshotOwnGroup"]["Resource"][0].endswith(f":replicationgroup:{group}")
    assert statements["ExportAndDeleteOwnSnapshots"]["Resource"].endswith(":snapshot:drkit-*")
    staged = statements["ReadAndClearOwnStagedExports"]["Resource"]
    bucket = f"-cache-export-{ACCOUNT}-{run.config.region}"
    assert staged.endswith(f"{bucket}/market-data/session-cache/*")
    others = [r for r in run.of_type("aws:iam/rolePolicy:RolePolicy") if r.inputs["role"] != name]
    assert all("SnapshotOwnGroup" not in r.inputs["policy"] for r in others)


def test_session_cache_backs_up_through_its_own_regions_elasticache_export(
    run: StackRun, tmp_path: Path
) -> None:
    """The handler a real run builds (no AWS call yet): this region's group, this region's vault."""
    etc = pod_files(run, tmp_path / "etc")
    ctx = OpsContext.load(run.stack, etc / "outputs.json", etc)

    handler = backup_handler(ctx, "session-cache")

    assert isinstance(handler, ElastiCacheHandler)
    group = f"aipx-session-cache-{'ue1' if run.config.region == 'us-east-1' else 'uw2'}"
    assert handler.replication_group_id == group == ctx.outputs.stores["session-cache"].resource_id
    assert handler.client.meta.region_name == run.config.region == ctx.outputs.backup_vault.region
