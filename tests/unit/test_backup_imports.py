"""The backup CronJob (``python -m drkit backup STORE``, the image's ENTRYPOINT) imports only
what its store's kind needs: the registry of kinds names every kind's functions by import path
(``drkit.lazy``), so importing it imports none of them. Measured in a fresh interpreter."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]

KIND_MODULES = {
    "postgres": {"drkit.backup.postgres", "psycopg"},
    "kafka": {"drkit.backup.kafka", "drkit.kafka_frames", "drkit.kafka_auth", "confluent_kafka"},
    "redis": {"drkit.backup.redis", "drkit.redis_rdb", "redis"},
    "timeseries": {"drkit.backup.timeseries", "drkit.influx", "pyarrow"},
    "kubernetes": {"drkit.backup.kubernetes", "drkit.kubestate", "kubernetes"},
}
"""Each kind's backup handler, its own drkit modules and its client library."""
NOT_FOR_A_BACKUP = ("drkit.ops.restore_", "drkit.ops.verify", "drkit.local", "drkit.drill")
"""The restore, verify, local stack and drill modules the registry also names."""

SCRIPT = """
import json, sys
from datetime import UTC, datetime
from pathlib import Path

import drkit.__main__
import drkit.backups  # what main() imports before the run

at_start = sorted(sys.modules)

from drkit.context import Credentials, OpsContext, StoreCredentials
from drkit.handlers import backup_handler
from stackmodels import StackConfig, StackOutputs

outputs = StackOutputs.parse(
    {
        "stack": "prod",
        "role": "primary",
        "region": "us-east-1",
        "platform": "aipx",
        "backup_vault": {"name": "vault", "arn": "arn:aws:s3:::vault", "region": "us-east-1"},
        "vault_key_arn": "arn:aws:kms:us-east-1:123456789012:key/k",
        "audit_bucket": {"name": "audit", "arn": "arn:aws:s3:::audit", "region": "us-east-1"},
        "gcs_mirror_bucket": "mirror",
        "k8s_namespace": "aipx",
        "k8s_backup_namespace": "dr-backups",
        "stores": {"trading-db": {"kind": "postgres", "host": "db.example", "port": 5432}},
    },
    "prod",
)
config = StackConfig.for_stack("prod", Path(sys.argv[1]))
credentials = Credentials({"trading-db": StoreCredentials("backup", "secret")})
backup_handler(OpsContext("prod", config, outputs, credentials), "trading-db", datetime.now(UTC))
print(json.dumps({"entry": at_start, "postgres": sorted(sys.modules)}))
"""


def loaded(modules: list[str], names: set[str]) -> set[str]:
    return {m for m in modules for n in names if m == n or m.startswith(n + ".")}


@pytest.fixture(scope="module")
def imported() -> dict[str, list[str]]:
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(ROOT)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    )
    found: dict[str, list[str]] = json.loads(result.stdout.splitlines()[-1])
    return found


def test_the_entry_point_imports_no_kinds_modules(imported: dict[str, list[str]]) -> None:
    every_kind = set().union(*KIND_MODULES.values())
    assert loaded(imported["entry"], every_kind) == set()
    assert [m for m in imported["entry"] if m.startswith(NOT_FOR_A_BACKUP)] == []
    assert "drkit.kinds" in imported["entry"]  # the registry itself is there, and light


def test_a_postgres_backup_imports_its_own_kind_and_no_other(
    imported: dict[str, list[str]],
) -> None:
    modules = imported["postgres"]
    assert loaded(modules, KIND_MODULES["postgres"]) >= KIND_MODULES["postgres"]
    others = set().union(*(names for kind, names in KIND_MODULES.items() if kind != "postgres"))
    assert loaded(modules, others) == set()
    assert [m for m in modules if m.startswith(NOT_FOR_A_BACKUP)] == []
