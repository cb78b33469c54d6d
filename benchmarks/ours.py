"""Our side of each comparison, run as its own process so it is measured like the seed's pipeline:
``python -m benchmarks.ours --connections FILE ACTION ...`` prints one JSON line.

Each action calls the code a CronJob or a restore runs (``run_backup`` with the store's handler,
``restore_postgres``, ``restore_kafka``), with the vault (S3, SSE-KMS) and, unless
``--no-mirror``, the GCS mirror written at once, as production does. Object Lock is left out: the
benchmark deletes what each run wrote, and moto keeps locked objects forever.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path
from typing import Any

warnings.filterwarnings("ignore", category=FutureWarning)

import zstandard  # noqa: E402
from google.api_core.client_options import ClientOptions  # noqa: E402
from google.auth.credentials import AnonymousCredentials  # noqa: E402
from google.cloud import storage  # type: ignore[import-untyped]  # noqa: E402

from benchmarks.connections import Connections  # noqa: E402
from drkit.backup.engine import (  # noqa: E402
    COMPRESSED_CHUNK,
    ZSTD_LEVEL,
    Destinations,
    run_backup,
)
from drkit.backup.manifest import Manifest  # noqa: E402
from drkit.local.s3 import DUMMY_ACCESS_KEY, DUMMY_SECRET_KEY  # noqa: E402
from drkit.storage.gcs import GcsStore  # noqa: E402
from drkit.storage.objectstore import Encryption, ObjectStore  # noqa: E402
from drkit.storage.s3 import S3Store  # noqa: E402
from drkit.storage.tee import TeeWriter  # noqa: E402

CHUNK = 1024 * 1024


def vault(connections: Connections) -> S3Store:
    import boto3

    session = boto3.session.Session(
        aws_access_key_id=DUMMY_ACCESS_KEY,
        aws_secret_access_key=DUMMY_SECRET_KEY,
        region_name="us-east-1",
    )
    client = session.client("s3", endpoint_url=connections.aws_endpoint)
    return S3Store(client, connections.bucket)


def mirror(connections: Connections) -> GcsStore:
    client = storage.Client(
        project="local",
        credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
        client_options=ClientOptions(api_endpoint=connections.gcs_endpoint),
    )
    return GcsStore(client, connections.bucket)


def destinations(connections: Connections, with_mirror: bool) -> Destinations:
    return Destinations(
        vault=vault(connections),
        mirror=mirror(connections) if with_mirror else None,
        encryption=Encryption(kms_key_id=connections.kms_key_id),
    )


def load_manifest(store: ObjectStore, key: str) -> Manifest:
    return Manifest.model_validate(json.loads(store.get_bytes(key)))


def summary(manifest: Manifest) -> dict[str, Any]:
    return {
        "manifest_key": manifest.prefix + "manifest.json",
        "backup_id": manifest.backup_id,
        "size": manifest.size,
        "raw_size": manifest.raw_size,
        "counts": manifest.counts,
        "consistent_point": manifest.consistent_point,
    }


def pg_backup(connections: Connections, arguments: argparse.Namespace) -> dict[str, Any]:
    from drkit.backup.postgres import PostgresHandler

    handler = PostgresHandler(_pg_source(connections, arguments.database), jobs=arguments.jobs)
    target = destinations(connections, not arguments.no_mirror)
    return summary(run_backup("trading-db", "user-data", handler, target))


def pg_restore(connections: Connections, arguments: argparse.Namespace) -> dict[str, Any]:
    from drkit.restore.postgres import restore_postgres

    store = vault(connections)
    manifest = load_manifest(store, arguments.manifest)
    target = _pg_source(connections, arguments.database)
    result = restore_postgres(manifest, store, target, jobs=arguments.jobs)
    return {"counts": result.counts}


def redis_backup(connections: Connections, arguments: argparse.Namespace) -> dict[str, Any]:
    from drkit.backup.redis import RedisHandler, RedisSource

    source = RedisSource(
        connections.redis_host, connections.redis_port, password=connections.redis_password
    )
    handler = RedisHandler(source, rdb_path=Path(connections.redis_rdb_path))
    target = destinations(connections, not arguments.no_mirror)
    return summary(run_backup("session-cache", "market-data", handler, target))


def kafka_backup(connections: Connections, arguments: argparse.Namespace) -> dict[str, Any]:
    from drkit.backup.kafka import KafkaHandler

    handler = KafkaHandler(connections.kafka_bootstrap, list(arguments.topic))
    target = destinations(connections, not arguments.no_mirror)
    return summary(run_backup("event-stream", "trading-signals", handler, target))


def kafka_restore(connections: Connections, arguments: argparse.Namespace) -> dict[str, Any]:
    from drkit.restore.kafka import restore_kafka

    store = vault(connections)
    manifest = load_manifest(store, arguments.manifest)
    result = restore_kafka(
        [manifest],
        store,
        connections.kafka_bootstrap,
        topics=[arguments.topic],
        rename={arguments.topic: arguments.into},
    )
    return {"produced": result.produced, "counts": result.counts()}


def compress(connections: Connections, arguments: argparse.Namespace) -> dict[str, Any]:
    """The engine's compression stage alone: same level, threads and chunker, output dropped."""
    chunker = zstandard.ZstdCompressor(level=ZSTD_LEVEL, threads=2).chunker(
        chunk_size=COMPRESSED_CHUNK
    )
    size = 0
    with Path(arguments.file).open("rb") as source:
        while chunk := source.read(CHUNK):
            for piece in chunker.compress(chunk):
                size += len(piece)
    for piece in chunker.finish():  # type: ignore[no-untyped-call]
        size += len(piece)
    return {"compressed": size}


def upload(connections: Connections, arguments: argparse.Namespace) -> dict[str, Any]:
    """The engine's upload stage alone: a file through the tee to the vault (and the mirror)."""
    target = destinations(connections, not arguments.no_mirror)
    tee = TeeWriter(
        {store.name: store.writer(arguments.key, target.encryption) for store in target.stores}
    )
    with Path(arguments.file).open("rb") as source:
        while chunk := source.read(CHUNK):
            tee.write(chunk)
    tee.commit()
    return {"size": tee.size, "sha256": tee.sha256}


def _pg_source(connections: Connections, database: str) -> Any:
    from drkit.backup.postgres import PostgresSource

    return PostgresSource(
        connections.pg_host,
        connections.pg_port,
        database,
        connections.pg_user,
        connections.pg_password,
    )


ACTIONS = {
    "pg-backup": pg_backup,
    "pg-restore": pg_restore,
    "redis-backup": redis_backup,
    "kafka-backup": kafka_backup,
    "kafka-restore": kafka_restore,
    "compress": compress,
    "upload": upload,
}


def parser() -> argparse.ArgumentParser:
    main = argparse.ArgumentParser(prog="python -m benchmarks.ours", description=__doc__)
    main.add_argument("--connections", type=Path, required=True)
    actions = main.add_subparsers(dest="action", required=True)
    backup = actions.add_parser("pg-backup")
    backup.add_argument("--database", required=True)
    backup.add_argument("--no-mirror", action="store_true")
    backup.add_argument("--jobs", type=int, default=None, help="format 2, N streams at a time")
    restore = actions.add_parser("pg-restore")
    restore.add_argument("--manifest", required=True)
    restore.add_argument("--database", required=True)
    restore.add_argument("--jobs", type=int, default=1, help="a format-2 backup's jobs")
    redis = actions.add_parser("redis-backup")
    redis.add_argument("--no-mirror", action="store_true")
    kafka = actions.add_parser("kafka-backup")
    kafka.add_argument("--topic", action="append", required=True)
    kafka.add_argument("--no-mirror", action="store_true")
    kafka_back = actions.add_parser("kafka-restore")
    kafka_back.add_argument("--manifest", required=True)
    kafka_back.add_argument("--topic", required=True)
    kafka_back.add_argument("--into", required=True)
    squeeze = actions.add_parser("compress")
    squeeze.add_argument("file")
    send = actions.add_parser("upload")
    send.add_argument("file")
    send.add_argument("--key", required=True)
    send.add_argument("--no-mirror", action="store_true")
    return main


def main(argv: list[str] | None = None) -> int:
    arguments = parser().parse_args(argv)
    connections = Connections.read(arguments.connections)
    result = ACTIONS[arguments.action](connections, arguments)
    sys.stdout.write(json.dumps(result, default=str) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
