"""The audit journal (``drkit.audit``, ``invoke audit.list``): every operation leaves create-only,
COMPLIANCE-locked events, as it runs, that no one can delete or replace; a run whose audit
writes fail keeps working and the next run uploads what it spooled; a dry run writes nothing."""

from __future__ import annotations

import io
import json
import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from drkit import audit
from drkit.context import UnknownStore
from drkit.endpoints import postgres_source
from drkit.local.faultproxy import Fault, FaultProxy
from drkit.local.gcs import LocalGcs
from drkit.local.postgres import LocalPostgres
from drkit.local.redis import LocalRedis
from drkit.local.s3 import LocalAws
from drkit.ops import cli
from drkit.ops.verify import run_cleanup
from drkit.seed.postgres import TradingDataSize, seed_trading_database
from stackmodels import StackOutputs
from tests.integration.conftest import SessionServers, provision_project
from tests.integration.ops_helpers import DATABASE, context

THREE_YEARS = timedelta(days=1095)


def audit_list(project: Path, capsys: pytest.CaptureFixture[str], **flags: Any) -> Any:
    capsys.readouterr()
    given = {"since": "", "operation": "", "json": True, "stack": "local", "outputs": ""}
    cli.audit_list(project, **(given | flags))
    out = capsys.readouterr().out
    return json.loads(out) if (given | flags)["json"] else out


def back_up(project: Path, dry_run: bool = False) -> None:
    cli.backup_store(project, store=DATABASE, wait=0, stack="local", outputs="", dry_run=dry_run)


def restore(project: Path, target: str, dry_run: bool = False) -> None:
    cli.restore(
        "postgres",
        project,
        stack="local",
        dry_run=dry_run,
        yes=True,
        store=DATABASE,
        target_database=target,
    )


def runs(events: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    by_run: dict[str, list[dict[str, Any]]] = {}
    for event in events:
        by_run.setdefault(event["run_id"], []).append(event)
    return by_run


def test_a_backup_and_a_restore_leave_events_that_audit_list_shows(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    seed_trading_database(
        postgres_source(context(project), DATABASE).conninfo(), TradingDataSize.for_megabytes(1)
    )
    before = datetime.now(UTC)
    back_up(project)
    restore(project, f"audited_{secrets.token_hex(3)}")

    events = audit_list(project, capsys)
    backup, restored = runs(events).values()
    assert [(e["event"], e["outcome"]) for e in backup] == [
        ("started", "started"),
        ("step", "committed"),
        ("finished", "succeeded"),
    ]
    assert [e["sequence"] for e in backup] == [1, 2, 3]
    assert backup[1]["detail"]["backup_id"]
    assert backup[0]["arguments"] == {"store": DATABASE}
    assert [e["operation"] for e in restored] == ["restore.postgres"] * len(restored)
    assert restored[0]["arguments"]["store"] == DATABASE
    assert (restored[0]["event"], restored[-1]["event"]) == ("started", "finished")
    assert restored[-1]["outcome"] == "succeeded"
    steps = [e for e in restored if e["event"] == "step"]
    assert ("run", "started") in [(e["detail"]["step"], e["outcome"]) for e in steps]
    assert len([e for e in steps if e["outcome"] == "done"]) >= 2  # each plan step, as it ended
    journal_id = steps[0]["detail"]["journal_run_id"]
    assert (project / ".drkit" / "journal" / f"{journal_id}.jsonl").exists()
    for event in events:
        who = event["who"]
        assert who["aws"].startswith("arn:aws:sts::") or who["aws"].startswith("arn:aws:iam::")
        assert who["principal"] == who["aws"] and who["user"] and who["host"]
        when = datetime.fromisoformat(event["when"])
        assert when.utcoffset() == timedelta(0) and event["when"].endswith("+00:00")
        assert before <= when <= datetime.now(UTC)
        assert event["stack"] == "local"

    table = audit_list(project, capsys, json=False, operation="backup")
    assert backup[0]["run_id"] in table and "committed" in table
    assert restored[0]["run_id"] not in table
    assert (
        audit_list(project, capsys, since=(datetime.now(UTC) + timedelta(days=2)).isoformat()) == []
    )
    assert len(audit_list(project, capsys, since="1h")) == len(events)


def test_an_event_can_be_neither_deleted_nor_replaced(
    project: Path, aws_emulator: LocalAws, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(UnknownStore):  # refused (exit 2): the store is unknown
        cli.backup_store(
            project, store="no-such-store", wait=0, stack="local", outputs="", dry_run=False
        )
    [started, finished] = audit_list(project, capsys)
    assert finished["outcome"] == "refused" and "no-such-store" in finished["detail"]["error"]
    bucket = context(project).outputs.audit_bucket.name
    s3 = aws_emulator.s3()
    head = s3.head_object(Bucket=bucket, Key=started["key"])
    assert head["ObjectLockMode"] == "COMPLIANCE"
    locked = head["ObjectLockRetainUntilDate"] - datetime.fromisoformat(started["when"])
    assert THREE_YEARS - timedelta(minutes=1) <= locked <= THREE_YEARS + timedelta(minutes=1)
    version = head["VersionId"]

    with pytest.raises(ClientError, match="AccessDenied"):
        s3.delete_object(Bucket=bucket, Key=started["key"], VersionId=version)
    with pytest.raises(ClientError, match="AccessDenied"):
        s3.delete_object(
            Bucket=bucket, Key=started["key"], VersionId=version, BypassGovernanceRetention=True
        )
    with pytest.raises(ClientError, match="PreconditionFailed"):  # create-only, as drkit writes
        s3.put_object(Bucket=bucket, Key=started["key"], Body=b"{}", IfNoneMatch="*")
    # A plain PUT or DELETE only stacks a version or a marker on top: the event stays as written.
    s3.put_object(Bucket=bucket, Key=started["key"], Body=b'{"forged": true}')
    s3.delete_object(Bucket=bucket, Key=started["key"])
    kept = s3.get_object(Bucket=bucket, Key=started["key"], VersionId=version)
    assert json.loads(kept["Body"].read())["run_id"] == started["run_id"]
    assert kept["ObjectLockMode"] == "COMPLIANCE"
    lock = s3.get_object_lock_configuration(Bucket=bucket)["ObjectLockConfiguration"]
    default = lock["Rule"]["DefaultRetention"]
    assert (default["Mode"], default["Days"]) == ("COMPLIANCE", 1095)


def test_a_dry_run_writes_no_event(project: Path, audit_spool: Path) -> None:
    ctx = context(project)
    s3, bucket = ctx.aws("s3"), ctx.outputs.audit_bucket.name

    def keys() -> list[str]:
        listed = s3.list_objects_v2(Bucket=bucket, Prefix=audit.PREFIX)
        return [item["Key"] for item in listed.get("Contents", [])]

    back_up(project, dry_run=True)
    assert keys() == []
    back_up(project)  # a backup for the restore's dry run to plan with
    written = keys()
    assert len(written) == 3
    restore(project, "never_created", dry_run=True)
    back_up(project, dry_run=True)
    assert keys() == written
    assert not (audit_spool / bucket).exists()


@pytest.fixture
def aws_behind_proxy(tmp_path: Path) -> Any:
    """A moto server of this test's own, reached through a fault proxy the test can cut."""
    with LocalAws(tmp_path / "aws") as aws, FaultProxy((aws.host, aws.port)) as proxy:
        yield aws, proxy


def test_events_a_run_cannot_write_are_spooled_and_uploaded_by_the_next_run(
    tmp_path: Path,
    postgres_server: LocalPostgres,
    redis_server: LocalRedis,
    gcs_emulator: LocalGcs,
    aws_behind_proxy: Any,
    audit_spool: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    aws, proxy = aws_behind_proxy
    (tmp_path / "project").mkdir()
    project = provision_project(
        tmp_path / "project", SessionServers(postgres_server, redis_server, aws, gcs_emulator)
    )
    state = project / ".drkit" / "local" / "outputs.json"
    host, port = proxy.address
    outputs = StackOutputs.from_file(state, "local")
    outputs.model_copy(update={"aws_endpoint_url": f"http://{host}:{port}"}).write(state)
    ctx = context(project)
    spool = audit_spool / ctx.outputs.audit_bucket.name

    # A run whose audit bucket goes away after its first event: it carries on and succeeds.
    out = io.StringIO()
    with audit.audited(ctx, "verify.cleanup", {"stores": DATABASE}) as trail:
        assert trail is not None
        proxy.arm(Fault.DISAPPEAR)  # the emulator is gone, mid-run
        code = run_cleanup(ctx, [DATABASE], out)
        audit.step("cleanup", "done", code=code)
    assert code == 0 and "scratch target(s) found" in out.getvalue()
    assert (trail.written, trail.spooled) == (1, 2)
    assert len(list(spool.glob("*.json"))) == 2

    # The next run, the bucket back: the spooled events go up first, keys and locks as planned.
    proxy.heal()
    back_up(project)
    assert list(spool.glob("*.json")) == []
    events = runs(audit_list(project, capsys))
    first = events[trail.run_id]
    assert [(e["sequence"], e["event"], e["outcome"]) for e in first] == [
        (1, "started", "started"),
        (2, "step", "done"),
        (3, "finished", "succeeded"),
    ]
    s3 = aws.s3()
    head = s3.head_object(Bucket=ctx.outputs.audit_bucket.name, Key=first[2]["key"])
    assert head["ObjectLockMode"] == "COMPLIANCE"
    assert head["ObjectLockRetainUntilDate"] >= datetime.fromisoformat(
        first[2]["when"]
    ) + THREE_YEARS - timedelta(seconds=1)
    [backup] = [run for run_id, run in events.items() if run_id != trail.run_id]
    assert [e["outcome"] for e in backup] == ["started", "committed", "succeeded"]
