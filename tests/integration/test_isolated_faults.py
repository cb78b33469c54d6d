"""Faults of the isolated copy (issue 22, "Bad input and faults") on real servers: the isolated
account's emulator behind the loopback fault proxy, which resets its connections mid-stream or
refuses them (the endpoint gone).

The third copy's failure drops the third copy only: the vault and the mirror commit theirs (their
manifests, their catalog entries; ``backups.list`` shows the backup), the isolated vault has no
manifest. With ``isolated_copy: required`` (the default) the run fails, exit 1, naming the isolated
bucket and the cause; with ``optional`` it succeeds and says the copy was skipped and why. Every
failed run ends within its I/O bound; the next run through the healed path writes three copies.
"""

from __future__ import annotations

import dataclasses
import io
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from drkit.backup.engine import Destinations, IsolatedCopyFailed, run_backup
from drkit.backup.manifest import MANIFEST_NAME, Manifest
from drkit.backup.postgres import PostgresHandler, PostgresSource
from drkit.backups import BackupRequest, take_backup
from drkit.bounds import IoBounds
from drkit.catalog import Catalog
from drkit.context import OpsContext
from drkit.local.faultproxy import LOOPBACK, Direction, Fault, FaultProxy
from drkit.local.isolated import admin_client
from drkit.local.postgres import LocalPostgres
from drkit.local.s3 import LocalAws
from drkit.ops.backups_info import InfoRequest, ListRequest, backup_info, list_backups
from drkit.storage.s3 import S3Store
from stackmodels import StackOutputs
from tests.integration.ops_helpers import DATABASE, context, database_backup

pytestmark = [pytest.mark.integration, pytest.mark.reliability, pytest.mark.timeout(180)]

ENV = {"DRKIT_IO_TIMEOUT": "1", "DRKIT_IO_ATTEMPTS": "2", "DRKIT_STALL_TIMEOUT": "3"}
BOUNDS = IoBounds.from_env(ENV)
BOUND = BOUNDS.request + BOUNDS.stall + BOUNDS.grace + 30.0
"""As the reliability tests': the client timeouts plus 30 s."""
MiB = 1024 * 1024
BIG = "isolated_faults"
"""A database of about 10 MiB (5.5 MiB stored): two parts of 5 MiB in the isolated vault."""


@pytest.fixture(autouse=True)
def small_bounds(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def isolated_proxy(project_isolated: Path, isolated_aws: LocalAws) -> Iterator[FaultProxy]:
    """The project's isolated vault reached through a fault proxy (its outputs' endpoint)."""
    with FaultProxy((LOOPBACK, isolated_aws.port)) as proxy:
        state = project_isolated / ".drkit" / "local" / "outputs.json"
        outputs = StackOutputs.from_file(state, "local")
        assert outputs.isolated_vault is not None
        proxied = outputs.isolated_vault.model_copy(
            update={"endpoint_url": f"http://{LOOPBACK}:{proxy.port}"}
        )
        outputs.model_copy(update={"isolated_vault": proxied}).write(state)
        yield proxy


def optional_copy(project: Path, store: str = DATABASE) -> None:
    """The store's config says the third copy is optional."""
    path = project / "Pulumi.prod.yaml"
    document = yaml.safe_load(path.read_text())
    stores = document["config"]["trading-dr:stores"]
    stores[store]["isolated_copy"] = "optional"
    path.write_text(yaml.safe_dump(document, sort_keys=False))


def isolated_manifests(ctx: OpsContext, aws: LocalAws, store: str) -> list[str]:
    """The manifests of ``store`` in the isolated vault, read by its administrator directly."""
    isolated = ctx.outputs.isolated_vault
    assert isolated is not None
    s3 = admin_client(aws, "s3", isolated.bucket.region)
    listed = s3.list_objects_v2(Bucket=isolated.bucket.name, Prefix=f"user-data/{store}/")
    return [o["Key"] for o in listed.get("Contents", []) if o["Key"].endswith(MANIFEST_NAME)]


def pending_in_isolated(ctx: OpsContext, aws: LocalAws, store: str) -> list[str]:
    """Uploads left in the isolated vault: the writer can neither list nor abort them there (its
    policy), the vault's lifecycle rule aborts them after a day."""
    isolated = ctx.outputs.isolated_vault
    assert isolated is not None
    s3 = admin_client(aws, "s3", isolated.bucket.region)
    found = s3.list_multipart_uploads(Bucket=isolated.bucket.name, Prefix=f"user-data/{store}/")
    return [u["Key"] for u in found.get("Uploads", [])]


def two_copies_committed(ctx: OpsContext, manifest: Manifest) -> None:
    """The vault's and the mirror's commit stand: manifests, catalog entries, backups.list."""
    mirror = ctx.mirror()
    assert mirror is not None
    assert manifest.destinations == [ctx.vault().name, mirror.name]
    for target in (ctx.vault(), mirror):
        stored = Manifest.model_validate_json(target.get_bytes(manifest.prefix + MANIFEST_NAME))
        assert stored.skipped == manifest.skipped and stored.destinations == manifest.destinations
        entry = Catalog(target).read_entry(manifest.store, manifest.backup_id)
        assert entry is not None and entry.size == manifest.size


def take(project: Path) -> tuple[int, str, float]:
    """``invoke backup.store trading-db`` as the task runs it: (exit code, output, seconds)."""
    out = io.StringIO()
    started = time.monotonic()
    code = take_backup(BackupRequest(stack="local", store=DATABASE), project, out)
    elapsed = time.monotonic() - started
    assert elapsed < BOUND, f"the run took {elapsed:.1f}s, over its bound {BOUND:.0f}s"
    print(f"exit {code} in {elapsed:.1f}s:\n{out.getvalue()}")
    return code, out.getvalue(), elapsed


def committed_in(ctx: OpsContext, output: str) -> Manifest:
    """The backup the run's output names, read back from the vault."""
    listed = [
        Manifest.model_validate_json(ctx.vault().get_bytes(item.key))
        for item in ctx.vault().list_objects(f"user-data/{DATABASE}/")
        if item.key.endswith(MANIFEST_NAME)
    ]
    named = [m for m in listed if m.backup_id in output]
    assert len(named) == 1, (output, [m.backup_id for m in listed])
    return named[0]


def arm_mid_stream(project: Path, proxy: FaultProxy) -> int:
    """A clean run through the proxy gives the bytes the isolated vault receives; the next run's
    connections are reset a third of the way in: inside the dump's upload, which is most of
    them (the run's first request, a listing, and its manifest are a few kilobytes)."""
    proxy.arm(Fault.PASS)
    database_backup(context(project))
    clean = proxy.bytes_passed(Direction.UP)
    after = clean // 3
    proxy.arm(Fault.RESET, after=after, direction=Direction.UP)
    return after


@pytest.mark.parametrize("fault", ["mid-stream", "unreachable"])
def test_a_failing_isolated_copy_fails_the_backup_and_the_two_copies_commit(
    fault: str, project_isolated: Path, isolated_proxy: FaultProxy, isolated_aws: LocalAws
) -> None:
    ctx = context(project_isolated)
    bucket = ctx.outputs.isolated_vault.bucket.name  # type: ignore[union-attr]
    if fault == "mid-stream":
        arm_mid_stream(project_isolated, isolated_proxy)
    else:
        isolated_proxy.arm(Fault.DISAPPEAR)  # connections refused from the first request
    before = isolated_manifests(ctx, isolated_aws, DATABASE)

    code, output, _ = take(project_isolated)

    assert isolated_proxy.tripped.is_set()
    assert code == 1
    failed = output.strip().splitlines()[-1]
    assert failed.startswith("FAILED: backup of trading-db")
    assert f"s3://{bucket}" in failed and "isolated_copy: required" in failed
    if fault == "mid-stream":  # the object whose upload was cut, and how
        # the cut itself, or (when botocore's retry of the part met the proxy still cutting)
        # the reconnection it could not make: both name the object and the cause
        assert re.search(
            r"database\.dump\.zst: put_object failed: (Connection was closed|Could not connect)",
            failed,
        ), failed
    else:  # its first request, the first object's upload
        assert "database.dump.zst: put_object failed: Could not connect" in failed
    manifest = committed_in(ctx, failed)
    two_copies_committed(ctx, manifest)
    assert list(manifest.skipped) == [f"s3://{bucket}"]
    isolated_proxy.heal()
    assert isolated_manifests(ctx, isolated_aws, DATABASE) == before  # none there
    listed = ctx_list(project_isolated)
    assert manifest.backup_id in listed
    info = backup_info(context(project_isolated), InfoRequest(backup_id=manifest.backup_id))
    assert f"NOT COPIED    to s3://{bucket}: " in info.to_text()
    # the next run through the healed path writes three copies again
    code, output, _ = take(project_isolated)
    assert code == 0 and "SKIPPED" not in output
    again = committed_in(ctx, output)
    assert again.destinations[-1] == f"s3://{bucket}" and not again.skipped
    assert isolated_manifests(ctx, isolated_aws, DATABASE) == [
        *before,
        again.prefix + MANIFEST_NAME,
    ]


def ctx_list(project: Path) -> str:
    """``backups.list --stores trading-db --detail`` (the vault's catalog)."""
    listing = list_backups(context(project), ListRequest(stores=[DATABASE], detail=True))
    return listing.to_text()


@pytest.mark.parametrize("fault", ["mid-stream", "unreachable"])
def test_an_optional_isolated_copy_is_skipped_and_the_result_says_so(
    fault: str, project_isolated: Path, isolated_proxy: FaultProxy, isolated_aws: LocalAws
) -> None:
    optional_copy(project_isolated)
    ctx = context(project_isolated)
    bucket = ctx.outputs.isolated_vault.bucket.name  # type: ignore[union-attr]
    if fault == "mid-stream":
        arm_mid_stream(project_isolated, isolated_proxy)
    else:
        isolated_proxy.arm(Fault.DISAPPEAR)
    before = isolated_manifests(ctx, isolated_aws, DATABASE)

    code, output, _ = take(project_isolated)

    assert isolated_proxy.tripped.is_set()
    assert code == 0
    skipped = [line for line in output.splitlines() if "SKIPPED" in line]
    assert len(skipped) == 1 and f"none in s3://{bucket}" in skipped[0], output
    assert "isolated_copy: optional" in skipped[0]
    manifest = committed_in(ctx, output)
    two_copies_committed(ctx, manifest)
    assert manifest.skipped[f"s3://{bucket}"] in skipped[0]
    isolated_proxy.heal()
    assert isolated_manifests(ctx, isolated_aws, DATABASE) == before


def test_isolated_copy_metrics_count_the_skipped_copy(
    project_isolated: Path, isolated_proxy: FaultProxy
) -> None:
    """The outcome the alerts get: two copies committed, one skipped (``backup_copies``)."""
    from drkit.backup.metrics import BackupOutcome, cloudwatch_data, prometheus_registry
    from drkit.backups import backup_store

    optional_copy(project_isolated)
    ctx = context(project_isolated)
    isolated_proxy.arm(Fault.DISAPPEAR)
    outcomes: list[BackupOutcome] = []
    manifest = backup_store(ctx, DATABASE, [outcomes.append])
    isolated_proxy.heal()
    assert len(outcomes) == 1 and outcomes[0].success
    assert outcomes[0].copies == 2 and outcomes[0].skipped == manifest.skipped
    registry = prometheus_registry(outcomes[0])
    labels = {"component": DATABASE, "data_class": "user-data"}
    assert registry.get_sample_value("backup_copies", labels) == 2
    assert registry.get_sample_value("backup_copies_skipped", labels) == 1
    data = {d["MetricName"]: d["Value"] for d in cloudwatch_data(outcomes[0])}
    assert data["BackupCopies"] == 2


@pytest.fixture(scope="module")
def big_database(postgres_server: LocalPostgres) -> str:
    postgres_server.create_database(BIG)
    with postgres_server.connect(BIG) as connection:
        connection.execute(
            "CREATE TABLE blobs AS SELECT g AS id, md5(random()::text) || md5(random()::text)"
            " || md5(random()::text) || md5(random()::text) AS body"
            " FROM generate_series(1, 80000) g"
        )
    return BIG


@pytest.mark.parametrize(
    ("fault", "optional"),
    [(Fault.RESET, False), (Fault.RESET, True), (Fault.STALL, False)],
    ids=["reset-required", "reset-optional", "stall-required"],
)
def test_isolated_endpoint_failing_inside_a_multipart_upload(
    fault: Fault,
    optional: bool,
    project_isolated: Path,
    isolated_proxy: FaultProxy,
    isolated_aws: LocalAws,
    postgres_server: LocalPostgres,
    big_database: str,
) -> None:
    """The engine's mid-stream path: the isolated copy uploads in 5 MiB parts and its endpoint
    resets (or stalls: a black hole, bounded by the request timeouts) inside the first part,
    while the vault and the mirror stream on; they commit, the isolated vault gets no manifest and
    no upload is left once the next run has run."""
    ctx = context(project_isolated)
    base = ctx.destinations("user-data", isolated_optional=optional)
    assert base.isolated is not None
    isolated = S3Store(base.isolated.client, base.isolated.name[5:], part_size=5 * MiB)  # type: ignore[attr-defined]
    destinations: Destinations = dataclasses.replace(base, isolated=isolated)
    source = PostgresSource(
        postgres_server.host,
        postgres_server.port,
        big_database,
        postgres_server.user,
        postgres_server.password,
    )
    handler = PostgresHandler(source)
    store = "isolated-faults"
    isolated_proxy.arm(fault, after=3 * MiB, direction=Direction.UP)
    started = time.monotonic()
    manifest: Manifest
    if optional:
        manifest = run_backup(store, "user-data", handler, destinations)
    else:
        with pytest.raises(IsolatedCopyFailed) as failure:
            run_backup(store, "user-data", handler, destinations)
        message = str(failure.value)
        assert f"{isolated.name}" in message and "upload_part" in message, message
        manifest = failure.value.manifest
    elapsed = time.monotonic() - started
    mode = "optional" if optional else "required"
    print(f"{fault} {mode}: ended in {elapsed:.1f}s (bound {BOUND:.0f}s)")
    assert elapsed < BOUND
    assert isolated_proxy.tripped.is_set()
    assert manifest.destinations == [base.vault.name, base.mirror.name]  # type: ignore[union-attr]
    assert list(manifest.skipped) == [isolated.name]
    assert manifest.raw_size > 8 * MiB and manifest.size > 5 * MiB
    for target in (base.vault, base.mirror):
        assert target is not None and target.exists(manifest.prefix + MANIFEST_NAME)
        assert Catalog(target).read_entry(store, manifest.backup_id) is not None
    isolated_proxy.heal()
    assert isolated_manifests(ctx, isolated_aws, store) == []
    # at most the failed run's upload, under its own prefix, for the lifecycle rule
    left = pending_in_isolated(ctx, isolated_aws, store)
    assert all(key.startswith(manifest.prefix) for key in left) and len(left) <= 1, left
    again = run_backup(store, "user-data", handler, destinations)
    assert again.destinations[-1] == isolated.name and not again.skipped
    assert isolated_manifests(ctx, isolated_aws, store) == [again.prefix + MANIFEST_NAME]
    assert pending_in_isolated(ctx, isolated_aws, store) == left
