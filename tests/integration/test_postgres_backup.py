"""PostgreSQL through the engine: one dump to the S3 vault and the GCS mirror, manifest last,
restored byte-for-byte into a fresh database; failures leave nothing that looks like a backup."""

from __future__ import annotations

import json
import subprocess
import sys

import psycopg
import pytest

from drkit.backup.engine import BackupFailed, Destinations, run_backup
from drkit.backup.manifest import MANIFEST_NAME, Manifest
from drkit.backup.postgres import PostgresHandler, PostgresSource
from drkit.local.postgres import LocalPostgres
from drkit.local.s3 import LocalAws
from drkit.restore.postgres import TargetNotEmpty, restore_postgres
from drkit.restore.stream import IntegrityError
from tests.integration.forgery import overwrite

pytestmark = pytest.mark.integration

SCHEMA = """
CREATE TABLE accounts (id bigint PRIMARY KEY, name text NOT NULL, created timestamptz NOT NULL);
CREATE TABLE orders (
    id bigserial PRIMARY KEY, account_id bigint REFERENCES accounts(id), symbol text,
    side text, qty numeric(18, 4), price numeric(18, 6), payload jsonb, placed timestamptz);
"""


def source_for(server: LocalPostgres, database: str) -> PostgresSource:
    return PostgresSource(server.host, server.port, database, server.user, server.password)


def seed(server: LocalPostgres, database: str, orders: int) -> None:
    server.create_database(database)
    with server.connect(database) as connection:
        connection.execute(SCHEMA)
        connection.execute(
            "INSERT INTO accounts SELECT g, 'trader-' || g, now() FROM generate_series(1, 50) g"
        )
        connection.execute(
            "INSERT INTO orders (account_id, symbol, side, qty, price, payload, placed)"
            " SELECT 1 + g %% 50, (ARRAY['AAPL','MSFT','ES=F'])[1 + g %% 3],"
            " CASE WHEN g %% 2 = 0 THEN 'buy' ELSE 'sell' END, g %% 100 + 0.5, 100 + g * 0.01,"
            " jsonb_build_object('strategy', 'mean-revert', 'n', g), now()"
            " FROM generate_series(1, %s) g",
            (orders,),
        )


def table_digest(server: LocalPostgres, database: str, table: str) -> str:
    with server.connect(database) as connection:
        row = connection.execute(
            f"SELECT md5(string_agg(t::text, '|' ORDER BY t::text)) FROM {table} t"
        ).fetchone()
    assert row is not None
    return str(row[0])


def test_round_trip_restores_every_row(
    postgres_server: LocalPostgres, destinations: Destinations
) -> None:
    seed(postgres_server, "trading", orders=60_000)
    source = source_for(postgres_server, "trading")
    manifest = run_backup("trading-db", "user-data", PostgresHandler(source), destinations)

    assert manifest.counts == {"public.accounts": 50, "public.orders": 60_000}
    assert manifest.consistent_point["lsn"].count("/") == 1
    assert manifest.objects[0].size < manifest.objects[0].raw_size
    assert manifest.objects[0].raw_size > 5 * 1024 * 1024  # took the multipart path
    assert manifest.destinations == [destinations.vault.name, destinations.mirror.name]  # type: ignore[union-attr]
    for store in destinations.stores:
        stored = json.loads(store.get_bytes(manifest.prefix + MANIFEST_NAME))
        assert Manifest.model_validate(stored) == manifest
        assert store.pending_uploads(manifest.prefix) == []
    head = destinations.vault.client.head_object(  # type: ignore[attr-defined]
        Bucket=destinations.vault.bucket,
        Key=manifest.objects[0].key,  # type: ignore[attr-defined]
    )
    assert head["ServerSideEncryption"] == "aws:kms"
    assert head["SSEKMSKeyId"] == destinations.encryption.kms_key_id

    for index, store in enumerate(destinations.stores):
        target = f"restored_{index}"
        postgres_server.create_database(target)
        result = restore_postgres(manifest, store, source_for(postgres_server, target))
        assert result.counts == manifest.counts
        for table in ("accounts", "orders"):
            assert table_digest(postgres_server, target, table) == table_digest(
                postgres_server, "trading", table
            )


def test_selective_restore_and_refusing_a_non_empty_target(
    postgres_server: LocalPostgres, destinations: Destinations
) -> None:
    seed(postgres_server, "selective", orders=500)
    source = source_for(postgres_server, "selective")
    manifest = run_backup("trading-db", "user-data", PostgresHandler(source), destinations)
    postgres_server.create_database("only_accounts")
    target = source_for(postgres_server, "only_accounts")
    result = restore_postgres(manifest, destinations.vault, target, tables=["accounts"])
    assert result.counts == {"public.accounts": 50}
    with pytest.raises(TargetNotEmpty, match=r"'only_accounts' .* is not empty"):
        restore_postgres(manifest, destinations.vault, target)
    with postgres_server.connect("only_accounts") as connection:
        rows = connection.execute("SELECT count(*) FROM accounts").fetchone()
    assert rows == (50,)  # the refused restore changed nothing


def test_corrupted_object_fails_the_restore_and_changes_nothing(
    postgres_server: LocalPostgres, destinations: Destinations
) -> None:
    seed(postgres_server, "corrupt", orders=1000)
    manifest = run_backup(
        "trading-db",
        "user-data",
        PostgresHandler(source_for(postgres_server, "corrupt")),
        destinations,
    )
    vault = destinations.vault
    body = bytearray(vault.get_bytes(manifest.objects[0].key))
    body[len(body) // 2] ^= 0xFF
    overwrite(vault, manifest.objects[0].key, bytes(body))
    postgres_server.create_database("corrupt_target")
    target = source_for(postgres_server, "corrupt_target")
    with pytest.raises((IntegrityError, RuntimeError)):
        restore_postgres(manifest, vault, target)
    with psycopg.connect(target.conninfo()) as connection:
        tables = connection.execute(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
        ).fetchone()
    assert tables == (0,)


def test_source_that_disappears_mid_dump_fails_and_leaves_no_backup(
    postgres_server: LocalPostgres, destinations: Destinations
) -> None:
    seed(postgres_server, "vanishing", orders=200_000)
    source = source_for(postgres_server, "vanishing")

    class KillsTheSource(PostgresHandler):
        """Terminates the dump's server connection once the first megabytes have streamed."""

    progress_seen: list[int] = []

    def kill_dump(name: str, raw: int) -> None:
        if raw > 2 * 1024 * 1024 and not progress_seen:
            progress_seen.append(raw)
            with postgres_server.connect(autocommit=True) as admin:
                admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE application_name = 'pg_dump'"
                )

    with pytest.raises(BackupFailed, match="pg_dump exited"):
        run_backup("trading-db", "user-data", KillsTheSource(source), destinations, kill_dump)
    assert progress_seen
    for store in destinations.stores:
        assert list(store.list_objects("user-data/trading-db/")) == []
        assert store.pending_uploads("user-data/") == []


def test_killed_backup_process_leaves_no_manifest(
    postgres_server: LocalPostgres, destinations: Destinations, aws_emulator: LocalAws
) -> None:
    """SIGKILL mid-upload: no manifest, so nothing that looks like a backup."""
    seed(postgres_server, "killed", orders=1000)
    with postgres_server.connect("killed") as connection:  # poorly compressible: real parts
        connection.execute(
            "CREATE TABLE blobs AS SELECT g AS id, md5(random()::text) || md5(random()::text)"
            " || md5(random()::text) || md5(random()::text) AS body"
            " FROM generate_series(1, 150000) g"
        )
    script = f"""
import os, signal
from drkit.backup.engine import Destinations, run_backup
from drkit.backup.postgres import PostgresHandler, PostgresSource
from drkit.storage.s3 import S3Store
import boto3
s3 = boto3.client('s3', endpoint_url={aws_emulator.endpoint_url!r}, region_name='us-east-1',
                  aws_access_key_id='testing', aws_secret_access_key='testing')
source = PostgresSource({postgres_server.host!r}, {postgres_server.port}, 'killed',
                        {postgres_server.user!r}, {postgres_server.password!r})
from drkit.storage.s3 import S3MultipartWriter
send_part = S3MultipartWriter._send_part
def send_then_die(self, part):  # SIGKILL right after the first part reaches the vault
    send_part(self, part)
    os.kill(os.getpid(), signal.SIGKILL)
S3MultipartWriter._send_part = send_then_die
run_backup('trading-db', 'user-data', PostgresHandler(source),
           Destinations(vault=S3Store(s3, {destinations.vault.bucket!r}, 5 * 1024 * 1024)))
"""  # type: ignore[attr-defined]
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False
    )
    assert result.returncode == -9, result.stderr
    keys = [item.key for item in destinations.vault.list_objects("user-data/trading-db/")]
    assert not any(key.endswith(MANIFEST_NAME) for key in keys)
    assert destinations.vault.pending_uploads("user-data/trading-db/")  # the dead run's upload

    source = PostgresSource(
        postgres_server.host,
        postgres_server.port,
        "killed",
        postgres_server.user,
        postgres_server.password,
    )
    # The dead run still holds the store's lease (5 min): its pid is gone from this host, so
    # the next run takes it over at once (no --wait), and aborts the dead run's upload.
    manifest = run_backup("trading-db", "user-data", PostgresHandler(source), destinations)
    assert destinations.vault.pending_uploads("user-data/trading-db/") == []
    assert destinations.vault.exists(manifest.prefix + MANIFEST_NAME)
