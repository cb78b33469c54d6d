"""How our runner (``benchmarks.ours``) reaches the servers: a small file the harness writes.

Kept apart from ``environment`` so the runner imports nothing it does not use: its start-up is
part of what is measured.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass(frozen=True)
class Connections:
    """Endpoints and credentials of the servers under test; written to a 0600 file."""

    pg_host: str
    pg_port: int
    pg_user: str
    pg_password: str
    redis_host: str
    redis_port: int
    redis_password: str
    redis_rdb_path: str
    aws_endpoint: str
    gcs_endpoint: str
    kafka_bootstrap: str
    bucket: str
    kms_key_id: str

    def write(self, path: Path) -> Path:
        path.unlink(missing_ok=True)
        path.touch(mode=0o600)
        path.write_text(json.dumps(asdict(self), indent=2))
        return path

    @classmethod
    def read(cls, path: Path) -> Connections:
        return cls(**json.loads(path.read_text()))
