"""``invoke verify``: freshness against each data class's window, checksums of the newest backup in
the vault and the mirror, replication health, and a test restore per store into a scratch target;
Markdown and JSON reports; a non-zero exit when anything misses."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from confluent_kafka.admin import AdminClient

from drkit.backup.manifest import Manifest
from drkit.endpoints import postgres_source
from drkit.local.redis import LocalRedis
from drkit.ops.backups_info import ListRequest, list_backups
from drkit.ops.executor import Status
from drkit.ops.run import RunOptions
from drkit.ops.scratch import parse_topic
from drkit.ops.verify import VerifyRequest, exit_code, run_verify
from stackmodels import StackOutputs
from stackmodels.outputs import AuroraCluster, AuroraOutputs, Bucket, VaultReplication
from tests.integration.forgery import overwrite
from tests.integration.ops_helpers import (
    ROOT,
    attach_cache,
    cache_backup,
    cache_server,
    context,
    create_topics,
    database_backup,
    fill_cache,
    produce,
    stream_backup,
    unique_topics,
)

pytestmark = pytest.mark.integration
__all__ = ["cache_server"]
STORES = ["trading-db", "event-stream", "session-cache"]


def statuses(report: Any) -> dict[tuple[str, str], str]:
    return {(c.check, c.subject): c.status for c in report.checks}


def test_fresh_intact_restorable_backups_pass_and_are_marked_verified(
    project_with_kafka: Path, cache_server: LocalRedis
) -> None:
    project = project_with_kafka
    topics = unique_topics(project)
    attach_cache(project, cache_server)
    ctx = context(project)
    bootstrap = (
        f"{ctx.outputs.stores['event-stream'].host}:{ctx.outputs.stores['event-stream'].port}"
    )
    create_topics(bootstrap, topics)
    for topic in topics:
        produce(bootstrap, topic, 0, 20)
    with cache_server.client() as client:
        fill_cache(client, "v")
    database_backup(ctx)
    stream_backup(ctx)
    cache_backup(ctx)

    out = io.StringIO()
    run, report = run_verify(ctx, VerifyRequest(stores=STORES), RunOptions(yes=True), project, out)

    assert exit_code(run, report) == 0, out.getvalue()
    assert report.ok and run.status is Status.SUCCEEDED
    found = statuses(report)
    for store in STORES:
        for check in ("freshness", "checksums", "test-restore"):
            assert found[(check, store)] == "ok", (check, store, out.getvalue())
    assert found[("replication", "vault")] == "not_configured"  # said, never a fake OK
    assert found[("replication", "aurora")] == "not_configured"
    checksums = next(c for c in report.checks if c.check == "checksums")
    assert "s3://" in checksums.detail and "gs://" in checksums.detail  # both copies read
    listing = list_backups(ctx, ListRequest(stores=STORES))
    assert all(s.newest and s.newest["verified_at"] for s in listing.stores)
    body = json.loads((project / "reports" / "latest" / "verify.json").read_text())
    assert body["ok"] is True and body["misses"] == 0
    markdown = (project / "reports" / "latest" / "verify.md").read_text()
    assert "# Backup verification: PASS" in markdown
    # The scratch targets are gone.
    server = postgres_source(ctx, "trading-db")
    with psycopg.connect(server.conninfo("postgres")) as connection:
        left = connection.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE %s", ("%_verify_%",)
        ).fetchall()
    assert left == []
    listed = AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=10).topics
    scratch = [parsed[1] for t in listed if (parsed := parse_topic(t)) is not None]
    assert not set(scratch) & set(topics)


def tamper(ctx: Any, manifest: Manifest) -> str:
    """Replace the dump with other bytes of the same size: only its SHA-256 can tell."""
    item = next(i for i in manifest.objects if i.name == "database.dump")
    overwrite(ctx.vault(), item.key, b"\0" * item.size)
    return str(item.key)


def test_stale_missing_and_corrupt_backups_are_misses_with_a_non_zero_exit(
    project: Path,
) -> None:
    ctx = context(project)
    manifest = database_backup(ctx)
    key = tamper(ctx, manifest)
    out = io.StringIO()
    run, report = run_verify(
        ctx,
        VerifyRequest(stores=["trading-db", "session-cache"]),
        RunOptions(yes=True),
        project,
        out,
    )
    assert exit_code(run, report) == 1
    found = statuses(report)
    assert found[("freshness", "trading-db")] == "ok"
    assert found[("checksums", "trading-db")] == "miss"
    assert found[("test-restore", "trading-db")] == "miss"
    assert found[("freshness", "session-cache")] == "miss"
    detail = {(c.check, c.subject): c.detail for c in report.checks}
    assert (
        key in detail[("checksums", "trading-db")]
        and "SHA-256" in detail[("checksums", "trading-db")]
    )
    assert "no complete backup in the last 7 days" in detail[("freshness", "session-cache")]
    assert "MISS checksums trading-db" in out.getvalue()
    assert "FAIL" in (project / "reports" / "latest" / "verify.md").read_text()

    later = manifest.recovery_point + timedelta(hours=1)  # an hour on, nothing new: stale
    run, report = run_verify(
        ctx,
        VerifyRequest(stores=["trading-db"], test_restore=False),
        RunOptions(yes=True),
        project,
        io.StringIO(),
        now=later,
    )
    stale = next(c for c in report.checks if c.check == "freshness")
    assert stale.status == "miss" and "is 1h old, window 15m (RPO 15m of user-data" in stale.detail


def test_replication_health_reports_what_it_reads(project: Path) -> None:
    """The vault's replication status and Aurora's global lag, where the stack exports them.

    moto keeps no ReplicationStatus (it does not replicate), so a configured replication is a miss
    here, which is exactly what an unreplicated object in AWS would be. Aurora's lag is read back
    from the emulator's CloudWatch, where the test publishes it as RDS would.
    """
    ctx = context(project)
    database_backup(ctx)
    state = project / ".drkit" / "local" / "outputs.json"
    outputs = StackOutputs.from_file(state, "local")
    vault = outputs.backup_vault
    dr_vault = Bucket(
        name="aipx-backup-vault-us-west-2-x",
        arn="arn:aws:s3:::aipx-backup-vault-us-west-2-x",
        region="us-west-2",
    )
    cluster = f"aipx-dr-{datetime.now(UTC):%H%M%S%f}"
    aurora = AuroraOutputs(
        global_cluster_id="aipx-global",
        global_cluster_arn="arn:aws:rds::123456789012:global-cluster:aipx-global",
        primary_region="us-east-1",
        clusters={
            region: AuroraCluster(
                id=name,
                arn=f"arn:aws:rds:{region}:123456789012:cluster:{name}",
                region=region,
                endpoint=f"{name}.cluster",
                reader_endpoint=f"{name}.cluster-ro",
            )
            for region, name in (("us-east-1", "aipx-prod"), ("us-west-2", cluster))
        },
    )
    replication = VaultReplication(
        source=vault,
        destination=dr_vault,
        role_arn="arn:aws:iam::123456789012:role/vault-replication",
        destination_key_arn="arn:aws:kms:us-west-2:123456789012:key/dr",
        replication_time_minutes=15,
    )
    outputs.model_copy(update={"aurora": aurora, "vault_replication": replication}).write(state)
    ctx = context(project)

    def verify() -> dict[str, Any]:
        _run, report = run_verify(
            ctx,
            VerifyRequest(stores=["trading-db"], test_restore=False),
            RunOptions(yes=True),
            project,
            io.StringIO(),
        )
        return {c.subject: c for c in report.checks if c.check == "replication"}

    found = verify()
    assert found["aurora"].status == "unreachable"  # no datapoints: not a fake OK
    assert (
        f"{cluster} (us-west-2): no AuroraGlobalDBReplicationLag datapoints"
        in found["aurora"].detail
    )
    assert found["vault"].status == "miss"
    assert "replication status absent" in found["vault"].detail

    cloudwatch = ctx.aws("cloudwatch", "us-west-2")

    def publish(milliseconds: float) -> None:
        cloudwatch.put_metric_data(
            Namespace="AWS/RDS",
            MetricData=[
                {
                    "MetricName": "AuroraGlobalDBReplicationLag",
                    "Dimensions": [{"Name": "DBClusterIdentifier", "Value": cluster}],
                    "Value": milliseconds,
                    "Unit": "Milliseconds",
                }
            ],
        )

    publish(850.0)
    assert verify()["aurora"].status == "ok"
    publish(20 * 60 * 1000.0)  # 20 minutes behind: the trading-db RPO is 15 minutes
    lagging = verify()["aurora"]
    assert lagging.status == "miss" and "lags 20m, RPO 15m" in lagging.detail


def test_the_invoke_task_exits_non_zero_on_a_miss(project: Path) -> None:
    database_backup(context(project))
    (project / "tasks.py").write_text(
        (ROOT / "tasks.py")
        .read_text()
        .replace("ROOT = Path(__file__).resolve().parent", f"ROOT = Path({str(project)!r})")
    )
    command = [sys.executable, "-m", "invoke", "verify", "--stores"]
    ok = subprocess.run(
        [*command, "trading-db", "--yes"], capture_output=True, text=True, cwd=project, check=False
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "verify PASS" in ok.stdout
    missed = subprocess.run(
        [*command, "trading-db,session-cache", "--skip-test-restore"],
        capture_output=True,
        text=True,
        cwd=project,
        check=False,
    )
    assert missed.returncode == 1, missed.stdout + missed.stderr
    assert "MISS freshness session-cache" in missed.stdout
