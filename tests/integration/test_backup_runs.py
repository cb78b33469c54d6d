"""A backup run as the CronJobs run it (``python -m drkit backup STORE``): exit codes, metrics
pushed to a real Pushgateway and to CloudWatch (the emulator), structured logs, dry runs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from drkit.backup.postgres import PostgresSource
from drkit.context import Credentials
from drkit.local.pushgateway import LocalPushgateway
from drkit.local.s3 import LocalAws
from drkit.seed.postgres import TradingDataSize, seed_trading_database
from stackmodels import StackOutputs

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def run_cli(project: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    command = [
        sys.executable,
        "-m",
        "drkit",
        "backup",
        *arguments,
        "--stack",
        "local",
        "--project-dir",
        str(project),
    ]
    return subprocess.run(command, capture_output=True, text=True, check=False, cwd=ROOT)


def gateway_samples(gateway: LocalPushgateway, component: str) -> dict[str, float]:
    samples = {}
    for family in text_string_to_metric_families(gateway.metrics_text()):
        for sample in family.samples:
            if sample.name.startswith("backup_") and sample.labels.get("component") == component:
                samples[sample.name] = sample.value
    return samples


def outputs_of(project: Path) -> StackOutputs:
    return StackOutputs.from_file(project / ".drkit" / "local" / "outputs.json", "local")


def test_a_run_commits_a_backup_and_reports_it_everywhere(
    project: Path, pushgateway: LocalPushgateway, aws_emulator: LocalAws
) -> None:
    outputs = outputs_of(project)
    endpoint = outputs.stores["trading-db"]
    credentials = Credentials.from_file(project / ".drkit" / "local" / "credentials.json")
    source = PostgresSource(
        endpoint.host,
        endpoint.port,
        endpoint.database or "",
        **vars(credentials.stores["trading-db"]),
    )
    seed_trading_database(source.conninfo(), TradingDataSize.for_megabytes(1))
    result = run_cli(
        project,
        "trading-db",
        "--pushgateway",
        pushgateway.url,
        "--cloudwatch",
        "--log-format",
        "json",
    )
    assert result.returncode == 0, result.stderr
    assert "committed" in result.stdout
    logs = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    finished = [entry for entry in logs if entry["message"] == "backup finished"]
    assert finished and finished[0]["store"] == "trading-db" and finished[0]["bytes"] > 0

    samples = gateway_samples(pushgateway, "trading-db")
    assert samples["backup_last_result"] == 1
    assert samples["backup_size_bytes"] == finished[0]["bytes"]
    assert samples["backup_last_success_timestamp_seconds"] > 1.7e9
    assert samples["backup_duration_seconds"] > 0

    cloudwatch = aws_emulator.client("cloudwatch")
    names = {
        m["MetricName"]
        for m in cloudwatch.list_metrics(  # type: ignore[attr-defined]
            Namespace="TradingDR/Backups", Dimensions=[{"Name": "Component", "Value": "trading-db"}]
        )["Metrics"]
    }
    assert {
        "BackupSuccess",
        "BackupSizeBytes",
        "BackupDurationSeconds",
        "BackupLastSuccessTimestamp",
    } <= names

    manifests = [
        key for key in _vault_objects(aws_emulator, outputs) if key.endswith("manifest.json")
    ]
    assert len(manifests) == 1
    head = aws_emulator.s3().head_object(Bucket=outputs.backup_vault.name, Key=manifests[0])
    assert head["ObjectLockMode"] == "COMPLIANCE"  # user-data is financial: 7 years, compliance
    locked_days = (head["ObjectLockRetainUntilDate"] - head["LastModified"]).days
    assert 2554 <= locked_days <= 2555


def _vault_objects(aws: LocalAws, outputs: StackOutputs) -> list[str]:
    response = aws.s3().list_objects_v2(Bucket=outputs.backup_vault.name)
    return [item["Key"] for item in response.get("Contents", [])]


def test_a_failed_run_exits_1_reports_failure_and_keeps_the_last_success(
    project: Path, pushgateway: LocalPushgateway, aws_emulator: LocalAws
) -> None:
    component = "trading-db"
    assert run_cli(project, component, "--pushgateway", pushgateway.url).returncode == 0
    before = gateway_samples(pushgateway, component)
    credentials_file = project / ".drkit" / "local" / "credentials.json"
    credentials = json.loads(credentials_file.read_text())
    credentials[component]["password"] = "wrong"
    credentials_file.write_text(json.dumps(credentials))

    result = run_cli(project, component, "--pushgateway", pushgateway.url)
    assert result.returncode == 1
    assert "FAILED: backup of trading-db" in result.stdout
    after = gateway_samples(pushgateway, component)
    assert after["backup_last_result"] == 0
    assert (
        after["backup_last_success_timestamp_seconds"]
        == (before["backup_last_success_timestamp_seconds"])
    )


def test_bad_input_exits_2_and_does_nothing(project: Path, aws_emulator: LocalAws) -> None:
    result = run_cli(project, "orders-db")
    assert result.returncode == 2
    assert "unknown store 'orders-db'; this stack has: app-state, event-stream" in result.stderr
    assert _vault_objects(aws_emulator, outputs_of(project)) == []


def test_dry_run_prints_the_plan_and_writes_nothing(project: Path, aws_emulator: LocalAws) -> None:
    result = run_cli(project, "trading-db", "--dry-run")
    assert result.returncode == 0, result.stderr
    outputs = outputs_of(project)
    assert f"to s3://{outputs.backup_vault.name}, gs://{outputs.gcs_mirror_bucket}" in result.stdout
    assert "dry run: nothing was read or written" in result.stdout
    assert _vault_objects(aws_emulator, outputs) == []
