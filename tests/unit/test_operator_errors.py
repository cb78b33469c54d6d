"""The likeliest 3 a.m. failures end in one line that names what is missing, where it was looked
for and the command that fixes it, exit 2 (issue 20 item 2): the errors are raised by the real
clients (botocore, google-auth, the Pulumi lookup) and, where it is cheap, by the real command."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from drkit.cli_errors import describe

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
NO_RETRIES = Config(retries={"total_max_attempts": 1}, connect_timeout=2, read_timeout=2)


@pytest.fixture
def no_cloud_credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An operator's shell with no AWS or GCP credentials anywhere botocore or google-auth look
    (no instance metadata either: nothing leaves the machine)."""
    for name in list(os.environ):
        if name.startswith(("AWS_", "GOOGLE_", "CLOUDSDK_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "gcloud"))
    monkeypatch.setenv("NO_GCE_CHECK", "True")
    return tmp_path


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def raised(call: Any) -> BaseException:
    try:
        call()
    except Exception as error:
        return error
    raise AssertionError(f"{call} raised nothing")


def one_refusal(error: BaseException) -> str:
    code, line = describe(error)
    assert code == 2 and "\n" not in line and line.startswith("error: "), line
    return line


def test_no_aws_credentials(no_cloud_credentials: Path) -> None:
    s3 = boto3.session.Session().client(
        "s3", region_name="us-east-1", endpoint_url=f"http://127.0.0.1:{closed_port()}"
    )
    line = one_refusal(raised(s3.list_buckets))  # NoCredentialsError, before any request
    assert line == (
        "error: no AWS credentials: looked in AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, profile "
        f"'default' (AWS_PROFILE) in {no_cloud_credentials}/aws-credentials and "
        f"{no_cloud_credentials}/aws-config, the SSO cache and the instance role; run "
        "`aws sso login` (or export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)"
    )


def test_an_sso_session_never_started_or_expired(
    no_cloud_credentials: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (no_cloud_credentials / "aws-config").write_text(
        "[profile night]\nsso_session = corp\nsso_account_id = 123456789012\n"
        "sso_role_name = Ops\nregion = us-east-1\n[sso-session corp]\n"
        "sso_start_url = https://corp.awsapps.example/start\nsso_region = us-east-1\n"
    )
    monkeypatch.setenv("AWS_PROFILE", "night")
    s3 = boto3.session.Session().client("s3", endpoint_url=f"http://127.0.0.1:{closed_port()}")
    line = one_refusal(raised(s3.list_buckets))  # SSOTokenLoadError: no token in the cache
    assert line == (
        "error: the AWS SSO session of profile 'night' (AWS_PROFILE) has expired or was never "
        "started: run `aws sso login --profile night` (or export AWS_ACCESS_KEY_ID and "
        "AWS_SECRET_ACCESS_KEY)"
    )


class ExpiredToken(BaseHTTPRequestHandler):
    """What S3 answers a request signed with an expired session token."""

    def do_GET(self) -> None:
        body = (
            b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>ExpiredToken</Code>'
            b"<Message>The provided token has expired.</Message></Error>"
        )
        self.send_response(400)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return


@pytest.fixture
def expiring_endpoint() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), ExpiredToken)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_expired_aws_credentials(no_cloud_credentials: Path, expiring_endpoint: str) -> None:
    s3 = boto3.session.Session().client(
        "s3",
        region_name="us-east-1",
        endpoint_url=expiring_endpoint,
        aws_access_key_id="ASIAEXPIRED",
        aws_secret_access_key="secret",
        aws_session_token="expired",
        config=NO_RETRIES,
    )
    line = one_refusal(raised(s3.list_buckets))  # a real ClientError, parsed by botocore
    assert line.startswith(
        "error: AWS rejected the credentials as expired or invalid (ExpiredToken)"
    )
    assert "(AWS_PROFILE)" in line and line.endswith(
        "run `aws sso login` (or export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)"
    )


def test_an_endpoint_that_does_not_answer() -> None:
    endpoint = f"http://127.0.0.1:{closed_port()}"
    s3 = boto3.session.Session().client(
        "s3",
        region_name="us-east-1",
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=NO_RETRIES,
    )
    line = one_refusal(raised(s3.list_buckets))  # EndpointConnectionError: refused
    assert line == (
        f"error: cannot reach {endpoint}/ (connection refused, no such host or timed out): for "
        "--stack local, start the local stack with `invoke local.up` (`invoke local.status` "
        "shows what runs); otherwise check the network path to the region and the endpoints in "
        "--outputs"
    )


def test_no_gcp_credentials_for_the_mirror(no_cloud_credentials: Path) -> None:
    from google.cloud import storage

    line = one_refusal(raised(lambda: storage.Client(project="trading-dr")))
    assert line == (
        "error: no GCP credentials for the GCS mirror: looked in GOOGLE_APPLICATION_CREDENTIALS, "
        "~/.config/gcloud/application_default_credentials.json and the metadata server; run "
        "`gcloud auth application-default login` (or set GOOGLE_APPLICATION_CREDENTIALS to a "
        "key file)"
    )


def run(command: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, check=False, timeout=120
    )


def test_no_pulumi_cli_for_a_real_stack() -> None:
    """``invoke backups.list --stack prod`` with no ``--outputs`` asks the Pulumi CLI."""
    env = os.environ | {"PATH": str(Path(sys.executable).parent)}
    env.pop("DRKIT_STACK", None)
    assert shutil.which("pulumi", path=env["PATH"]) is None
    result = run([sys.executable, "-m", "invoke", "backups.list", "--stack", "prod"], ROOT, env)
    assert result.returncode == 2
    assert result.stdout == "stack: prod (production; from --stack)\n"
    assert result.stderr == (
        "error: stack outputs of stack 'prod' are unusable: the pulumi CLI is not on PATH "
        "(looked in $PATH): install it from https://www.pulumi.com/docs/install/ (it is not on "
        "PyPI) and run `pulumi login`, or pass --outputs FILE\n"
    )


def test_no_outputs_for_the_local_stack(tmp_path: Path) -> None:
    """``--stack local`` before ``invoke local.up`` ran: its outputs file does not exist."""
    for name in ("Pulumi.prod.yaml", "local-stack.yaml"):
        shutil.copy(ROOT / name, tmp_path / name)
    (tmp_path / "tasks.py").write_text(
        (ROOT / "tasks.py")
        .read_text()
        .replace("ROOT = Path(__file__).resolve().parent", f"ROOT = Path({str(tmp_path)!r})")
    )
    env = os.environ | {"DRKIT_STACK": "local"}
    result = run([sys.executable, "-m", "invoke", "backups.list"], tmp_path, env)
    assert result.returncode == 2
    assert result.stderr == (
        "error: stack outputs of stack 'local' are unusable: no local stack outputs (looked for "
        f"{tmp_path}/.drkit/local/outputs.json): start the local stack with `invoke local.up`, "
        "or pass --outputs FILE\n"
    )
