"""What every operation starts from: the stack's config, its outputs, credentials and clients.

Ops never reads the Pulumi program: config comes from ``Pulumi.<stack>.yaml``, outputs from
Pulumi or a JSON file, and credentials from the environment (in Kubernetes, from Secrets) or, for
the local embedded default, from a file the local environment writes.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage  # type: ignore[import-untyped]

from drkit.backup.engine import Destinations
from drkit.bounds import io_bounds
from drkit.storage.gcs import GcsStore
from drkit.storage.objectstore import Encryption
from drkit.storage.s3 import S3Store
from stackmodels import OutputsError, StackConfig, StackOutputs
from stackmodels.config import StoreKind
from stackmodels.outputs import IsolatedVault

LOCAL_STACK = "local"
LOCAL_STATE = Path(".drkit/local")
"""Where the local environment writes its outputs and credentials (relative to the project)."""


def _local_config(root: Path) -> StackConfig:
    """The local stack's config (``local-stack.yaml`` over prod's), or prod's where a project
    directory has no ``local-stack.yaml`` (a test's scratch project)."""
    from drkit.local.local_config import LOCAL_CONFIG_FILE, local_stack_config

    if (root / LOCAL_CONFIG_FILE).exists():
        return local_stack_config(root)
    return StackConfig.for_stack("prod", root)


def _kinds(config: StackConfig) -> dict[str, StoreKind]:
    return {name: store.kind for name, store in config.stores.items()}


class UnknownStore(ValueError):
    """A store name that the stack config does not define."""


class MissingIsolatedVault(ValueError):
    """``--source isolated`` on a stack whose outputs have no isolated vault: a refusal."""


class MissingCredentials(KeyError, ValueError):
    """A store's credentials are not set; the message names the variables and the Secret.

    A ``KeyError`` for callers that treat a missing entry as absent, a ``ValueError`` for the
    entrypoints that turn bad input into one line and exit 2; printed without KeyError's quotes.
    """

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "no credentials"


@dataclass(frozen=True)
class StoreCredentials:
    user: str
    password: str


def env_prefix(store: str) -> str:
    """``trading-db`` -> ``DRKIT_TRADING_DB``: the variables a CronJob gets from its Secret."""
    return "DRKIT_" + store.upper().replace("-", "_")


@dataclass(frozen=True)
class Credentials:
    """Per-store credentials. Never written to a manifest, a log or a report."""

    stores: dict[str, StoreCredentials] = field(default_factory=dict)

    def has(self, store: str) -> bool:
        """Whether ``for_store`` would find credentials (a dry run reports it, reading none)."""
        prefix = env_prefix(store)
        return store in self.stores or (
            f"{prefix}_USER" in os.environ and f"{prefix}_PASSWORD" in os.environ
        )

    def for_store(self, store: str) -> StoreCredentials:
        if store in self.stores:
            return self.stores[store]
        prefix = env_prefix(store)
        user, password = os.environ.get(f"{prefix}_USER"), os.environ.get(f"{prefix}_PASSWORD")
        if user is None or password is None:
            raise MissingCredentials(
                f"no credentials for store {store!r}: set {prefix}_USER and {prefix}_PASSWORD "
                "(the backup CronJobs take them from the store's Secret)"
            )
        return StoreCredentials(user, password)

    @classmethod
    def from_file(cls, path: Path) -> Credentials:
        values = json.loads(path.read_text())
        return cls({name: StoreCredentials(**item) for name, item in values.items()})

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        body = {name: {"user": c.user, "password": c.password} for name, c in self.stores.items()}
        path.write_text(json.dumps(body, indent=2))


@dataclass(frozen=True)
class OpsContext:
    """One stack, ready to operate on."""

    stack: str
    config: StackConfig
    outputs: StackOutputs
    credentials: Credentials = Credentials()

    @classmethod
    def load(
        cls,
        stack: str,
        outputs_file: Path | None = None,
        project_dir: Path | None = None,
    ) -> OpsContext:
        """``local`` reads prod's objectives and the outputs the local environment wrote."""
        root = project_dir or Path.cwd()
        if stack == LOCAL_STACK:
            state = root / LOCAL_STATE
            config = _local_config(root)
            if outputs_file is None and not (state / "outputs.json").exists():
                raise OutputsError(
                    stack,
                    [
                        f"no local stack outputs (looked for {state / 'outputs.json'}): start "
                        "the local stack with `invoke local.up`, or pass --outputs FILE"
                    ],
                )
            outputs = StackOutputs.from_file(outputs_file or state / "outputs.json", stack)
            credentials_path = state / "credentials.json"
            credentials = (
                Credentials.from_file(credentials_path)
                if credentials_path.exists()
                else Credentials()
            )
            outputs.check_kinds(_kinds(config), "the local stack's config")
            return cls(stack, config, outputs, credentials)
        config = StackConfig.for_stack(stack, root)
        outputs = (
            StackOutputs.from_file(outputs_file, stack)
            if outputs_file is not None
            else StackOutputs.from_pulumi(stack, root)
        )
        outputs.check_kinds(_kinds(config), f"Pulumi.{stack}.yaml")
        return cls(stack, config, outputs)

    def store_config(self, store: str) -> Any:
        try:
            return self.config.stores[store]
        except KeyError:
            raise UnknownStore(
                f"unknown store {store!r}; this stack has: {', '.join(sorted(self.config.stores))}"
            ) from None

    def aws(self, service: str, region: str | None = None) -> Any:
        """A boto3 client; against the emulator when the outputs name one."""
        emulated = self.outputs.aws_endpoint_url is not None
        return boto3.client(
            service,  # type: ignore[call-overload]
            region_name=region or self.outputs.region,
            endpoint_url=self.outputs.aws_endpoint_url,
            # The emulator takes any keys; fixed ones keep real credentials away from it.
            aws_access_key_id="testing" if emulated else None,
            aws_secret_access_key="testing" if emulated else None,
            config=io_bounds().botocore_config(),  # explicit timeouts and retries
        )

    def vault(self) -> S3Store:
        return S3Store(self.aws("s3"), self.outputs.backup_vault.name)

    def isolated_writer(self) -> S3Store | None:
        """The isolated account's vault (issue 22) as the backup writer reaches it: this stack's
        own credentials, across accounts, which its bucket policy lets only create objects."""
        isolated = self.outputs.isolated_vault
        if isolated is None:
            return None
        client = self._isolated_client(isolated.bucket.region, isolated.endpoint_url, None)
        return S3Store(client, isolated.bucket.name)

    def isolated_kms(self) -> Any:
        """KMS in the isolated vault's account and region with this stack's own credentials:
        the backup wraps a Secrets data key there (``Encrypt`` only); None: no isolated vault."""
        isolated = self.outputs.isolated_vault
        if isolated is None:
            return None
        return self._isolated_client(isolated.bucket.region, isolated.endpoint_url, None, "kms")

    def isolated_reader(self) -> S3Store:
        """The isolated vault read as restores and verify do: through its reader role
        (``sts:AssumeRole``), never with the production account's own rights."""
        isolated, found = self._reader_credentials()
        client = self._isolated_client(isolated.bucket.region, isolated.endpoint_url, found)
        return S3Store(client, isolated.bucket.name)

    def isolated_reader_kms(self) -> tuple[Any, str]:
        """(KMS as the isolated vault's reader role, the isolated vault's key ARN): what opens a
        Secrets data key wrapped under that key, without prod's key."""
        isolated, found = self._reader_credentials()
        kms = self._isolated_client(isolated.bucket.region, isolated.endpoint_url, found, "kms")
        return kms, isolated.kms_key_arn

    def _reader_credentials(self) -> tuple[IsolatedVault, dict[str, Any]]:
        isolated = self.outputs.isolated_vault
        if isolated is None:
            raise MissingIsolatedVault(
                f"--source isolated: stack {self.stack!r} has no isolated vault (its "
                "isolated_vault output is null: deploy the vault stack, `pulumi up -s vault`, "
                "and refresh this stack); use --source vault or mirror"
            )
        sts = self._isolated_client(isolated.bucket.region, isolated.endpoint_url, None, "sts")
        found = sts.assume_role(
            RoleArn=isolated.reader_role_arn, RoleSessionName=f"drkit-{self.stack}-restore"
        )["Credentials"]
        return isolated, found

    def _isolated_client(
        self,
        region: str,
        endpoint: str | None,
        assumed: dict[str, Any] | None,
        service: str = "s3",
    ) -> Any:
        keys: dict[str, Any] = {}
        if assumed is not None:
            keys = {
                "aws_access_key_id": assumed["AccessKeyId"],
                "aws_secret_access_key": assumed["SecretAccessKey"],
                "aws_session_token": assumed["SessionToken"],
            }
        elif endpoint is not None:  # the emulator: fixed keys, never real ones
            keys = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
        return boto3.client(
            service,  # type: ignore[call-overload]
            region_name=region,
            endpoint_url=endpoint,
            config=io_bounds().botocore_config(),
            **keys,
        )

    def mirror(self) -> GcsStore | None:
        if not self.outputs.gcs_mirror_bucket:
            return None
        options = (
            ClientOptions(api_endpoint=self.outputs.gcs_endpoint_url)
            if self.outputs.gcs_endpoint_url
            else None
        )
        credentials = (
            AnonymousCredentials()  # type: ignore[no-untyped-call]
            if self.outputs.gcs_endpoint_url
            else None
        )
        client = storage.Client(
            project=self.config.gcp.project, credentials=credentials, client_options=options
        )
        return GcsStore(client, self.outputs.gcs_mirror_bucket)

    def destinations(
        self, data_class: str, now: datetime | None = None, isolated_optional: bool = False
    ) -> Destinations:
        """Where a backup of ``data_class`` goes, locked as its retention class requires.

        ``isolated_optional``: the store's ``isolated_copy: optional`` (a failed third copy is
        skipped, not a failed run).

        The vault's default retention is the strictest class's (compliance, longest), so a writer
        of any other class must ask for its own lock per object (components/backup_vault.py).
        """
        retention = self.config.retention_of(data_class)
        started = now or datetime.now(UTC)
        isolated = self.outputs.isolated_vault
        lock_until = started + timedelta(days=retention.days)
        return Destinations(
            vault=self.vault(),
            mirror=self.mirror(),
            encryption=Encryption(
                kms_key_id=self.outputs.vault_key_arn,
                lock_mode=retention.object_lock.value.upper(),
                lock_until=lock_until,
            ),
            isolated=self.isolated_writer(),
            # The isolated account's key and no lock per object: the bucket's default retention
            # (COMPLIANCE) applies; lock headers need s3:PutObjectRetention, denied to this account.
            isolated_encryption=Encryption(kms_key_id=isolated.kms_key_arn)
            if isolated is not None
            else None,
            isolated_optional=isolated_optional,
        )
