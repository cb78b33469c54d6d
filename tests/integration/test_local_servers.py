"""The local harness serves real traffic: each server stores what it is given and gives it back."""

from __future__ import annotations

import hashlib
import os
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from drkit.local.gcs import LocalGcs
from drkit.local.postgres import LocalPostgres
from drkit.local.redis import LocalRedis
from drkit.local.s3 import LocalAws

pytestmark = pytest.mark.integration

CHUNK = 256 * 1024  # GCS resumable chunks must be multiples of 256 KiB
BGSAVE_TIMEOUT = 30.0


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def test_postgres_row_round_trip(postgres_server: LocalPostgres) -> None:
    dsn = postgres_server.create_database(unique("orders").replace("-", "_"))
    import psycopg

    with psycopg.connect(dsn) as conn:
        conn.execute("CREATE TABLE orders (id int PRIMARY KEY, symbol text, qty numeric)")
        conn.execute("INSERT INTO orders VALUES (%s, %s, %s)", (1, "ESZ6", 25))
        conn.commit()
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT id, symbol, qty FROM orders").fetchone()
        auth = conn.execute("SHOW password_encryption").fetchone()
    assert row == (1, "ESZ6", 25)
    assert auth == ("scram-sha-256",)


def test_postgres_rejects_a_wrong_password(postgres_server: LocalPostgres) -> None:
    import psycopg

    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(
            host=postgres_server.host,
            port=postgres_server.port,
            user=postgres_server.user,
            password="wrong",
            dbname="postgres",
            connect_timeout=5,
        )


def test_redis_key_with_ttl(redis_server: LocalRedis) -> None:
    key = unique("session")
    with redis_server.client() as client:
        client.set(key, b"trader-42", ex=120)
        ttl = client.ttl(key)
        value = client.get(key)
    assert 0 < ttl <= 120
    assert value == b"trader-42"


def test_redis_restart_keeps_a_saved_snapshot(tmp_path: Path) -> None:
    with LocalRedis(tmp_path, persistence=True) as server:
        port = server.port
        with server.client() as client:
            client.set("positions:ESZ6", b"25")
            client.hset("account:7", mapping={"cash": "1000", "margin": "250"})
            client.bgsave()
            wait_for_bgsave(client)
            assert client.info("persistence")["rdb_last_bgsave_status"] == "ok"
        assert server.rdb_path.is_file()

        server.restart()

        assert server.port == port
        with server.client() as client:
            assert client.get("positions:ESZ6") == b"25"
            assert client.hgetall("account:7") == {b"cash": b"1000", b"margin": b"250"}


def wait_for_bgsave(client: Any) -> None:
    """Poll INFO until the background save is over (a fixed sleep would be slow or flaky)."""
    deadline = time.monotonic() + BGSAVE_TIMEOUT
    while client.info("persistence")["rdb_bgsave_in_progress"]:
        assert time.monotonic() < deadline, "BGSAVE did not finish"
        time.sleep(0.02)


def test_s3_object_with_sse_kms(aws_emulator: LocalAws) -> None:
    kms: Any = aws_emulator.client("kms")
    key_arn = kms.create_key(Description="backup key")["KeyMetadata"]["Arn"]
    s3 = aws_emulator.s3()
    bucket = unique("backups")
    s3.create_bucket(Bucket=bucket)
    body = os.urandom(64 * 1024)

    put = s3.put_object(
        Bucket=bucket,
        Key="pg/base.tar.zst",
        Body=body,
        ServerSideEncryption="aws:kms",
        SSEKMSKeyId=key_arn,
    )
    got = s3.get_object(Bucket=bucket, Key="pg/base.tar.zst")

    assert put["ServerSideEncryption"] == "aws:kms"
    assert put["SSEKMSKeyId"] == key_arn
    assert got["ServerSideEncryption"] == "aws:kms"
    assert got["SSEKMSKeyId"] == key_arn
    assert got["Body"].read() == body


def test_gcs_object_round_trip(gcs_emulator: LocalGcs) -> None:
    client = gcs_emulator.client()
    bucket = client.create_bucket(unique("mirror"))
    blob = bucket.blob("redis/dump.rdb")
    blob.upload_from_string(b"REDIS0011 snapshot", content_type="application/octet-stream")

    assert bucket.blob("redis/dump.rdb").download_as_bytes() == b"REDIS0011 snapshot"


def test_gcs_streamed_upload_in_many_chunks(gcs_emulator: LocalGcs) -> None:
    client = gcs_emulator.client()
    bucket = client.create_bucket(unique("mirror"))
    total = 20 * 1024 * 1024 + 12345  # not a chunk multiple: the last chunk is short
    digest = hashlib.sha256()
    blob = bucket.blob("pg/base.tar.zst")

    with blob.open("wb", chunk_size=4 * CHUNK, content_type="application/zstd") as stream:
        written = 0
        while written < total:
            piece = os.urandom(min(700_001, total - written))  # writes not aligned to chunks
            stream.write(piece)
            digest.update(piece)
            written += len(piece)

    stored = bucket.get_blob("pg/base.tar.zst")
    assert stored is not None
    assert stored.size == total
    assert hashlib.sha256(stored.download_as_bytes()).hexdigest() == digest.hexdigest()


@pytest.mark.parametrize(
    ("service", "call", "answer_key"),
    [
        ("rds", "describe_db_instances", "DBInstances"),
        ("route53", "list_hosted_zones", "HostedZones"),
        ("cloudwatch", "list_metrics", "Metrics"),
        ("sns", "list_topics", "Topics"),
        ("kms", "list_keys", "Keys"),
    ],
)
def test_aws_emulator_serves_the_other_services(
    aws_emulator: LocalAws, service: str, call: str, answer_key: str
) -> None:
    client: Any = aws_emulator.client(service, "eu-west-1")
    assert isinstance(getattr(client, call)()[answer_key], list)
