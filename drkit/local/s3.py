"""An AWS stand-in: moto in server mode, one HTTP port serving every AWS API the kit calls.

moto's server answers S3, KMS, RDS, Route 53, CloudWatch, SNS and the rest on the same endpoint,
telling them apart by the request, so one process covers everything. It runs as a subprocess (not
moto's in-process decorators) so that code under test talks real HTTP, through real boto3 clients,
exactly as it will to AWS; only the endpoint URL and the dummy credentials differ.
"""

from __future__ import annotations

import os
import sys
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING

import boto3
from botocore.client import BaseClient
from botocore.config import Config

from drkit.local.aurora import AURORA_DIR_ENV
from drkit.local.moto_server import ISOLATED_ACCOUNT_ENV, REPLICATION_DIR_ENV
from drkit.local.process import LOOPBACK, LocalServer, ManagedProcess, free_port

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

START_TIMEOUT = 60.0
DEFAULT_REGION = "us-east-1"
# moto accepts any credentials; fixed dummy ones keep real AWS credentials out of every test.
DUMMY_ACCESS_KEY = "testing"
DUMMY_SECRET_KEY = "testing"


class LocalAws(LocalServer):
    """``python -m moto.server`` in the foreground on a free loopback port."""

    def __init__(
        self,
        workdir: Path,
        replication_dir: Path | None = None,
        isolated_account: str | None = None,
        aurora_dir: Path | None = None,
    ) -> None:
        """``replication_dir``: where the local vault copier notes what it replicated, for the
        replication status S3 reports (``drkit.local.moto_server``). ``isolated_account``: this
        server stands for the isolated backup account, and enforces its vault's rules there.
        ``aurora_dir``: the clusters its RDS serves with real PostgreSQL servers."""
        self.aurora_dir = aurora_dir
        self.workdir = workdir
        self.replication_dir = replication_dir
        self.isolated_account = isolated_account
        self.host = LOOPBACK
        self.port = free_port()
        self._process: ManagedProcess | None = None

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def credentials_env(self) -> dict[str, str]:
        """Environment that points a subprocess (aws CLI, the engine) at the emulator."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": DUMMY_ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": DUMMY_SECRET_KEY,
            "AWS_DEFAULT_REGION": DEFAULT_REGION,
        }

    def client(self, service: str, region: str = DEFAULT_REGION) -> BaseClient:
        """A boto3 client for ``service`` talking to the emulator with dummy credentials."""
        # A private session: the default one would pick up ~/.aws or AWS_* from the environment.
        session = boto3.session.Session(
            aws_access_key_id=DUMMY_ACCESS_KEY,
            aws_secret_access_key=DUMMY_SECRET_KEY,
            region_name=region,
        )
        return session.client(  # type: ignore[call-overload,no-any-return]
            service,
            endpoint_url=self.endpoint_url,
            config=Config(retries={"max_attempts": 2, "mode": "standard"}),
        )

    def s3(self, region: str = DEFAULT_REGION) -> S3Client:
        """The S3 client, typed, since S3 is what the backup engine uses most."""
        return self.client("s3", region)  # type: ignore[return-value]

    def start(self) -> None:
        server = "drkit.local.moto_server"  # moto's, with multi-Region keys and replication status
        command = [sys.executable, "-m", server, "-H", self.host, "-p", str(self.port)]
        env = dict(os.environ)
        if self.replication_dir is not None:
            env[REPLICATION_DIR_ENV] = str(self.replication_dir)
        if self.isolated_account is not None:
            env[ISOLATED_ACCOUNT_ENV] = self.isolated_account
        if self.aurora_dir is not None:
            env[AURORA_DIR_ENV] = str(self.aurora_dir)
        self._process = ManagedProcess(
            "moto", command, self.workdir / "moto.log", cwd=self.workdir, env=env
        )
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._process.start()
        self._process.wait_until(self._answers, START_TIMEOUT, "answering /moto-api/")

    def stop(self) -> None:
        if self._process is not None:
            self._process.stop()
            self._process = None

    def reset(self) -> None:
        """Forget every resource in every service (moto's own reset API), between tests."""
        request = urllib.request.Request(f"{self.endpoint_url}/moto-api/reset", method="POST")
        with urllib.request.urlopen(request, timeout=10):
            pass

    def _answers(self) -> bool:
        with urllib.request.urlopen(f"{self.endpoint_url}/moto-api/", timeout=2) as response:
            return int(response.status) == 200
