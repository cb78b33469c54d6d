"""The whole local stand-in for a trading platform's cloud: every server the kit backs up or uses.

One context manager starts them all, each in its own subdirectory of ``workdir``, and stops them
in reverse order on exit, including when a later one fails to start, so a failed start never
leaves servers running (an ``ExitStack`` of the servers' own context managers does exactly that).
"""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from drkit.local.gcs import LocalGcs
from drkit.local.influxdb import LocalInfluxDB
from drkit.local.isolated import ISOLATED_ACCOUNT
from drkit.local.postgres import LocalPostgres
from drkit.local.redis import LocalRedis
from drkit.local.s3 import LocalAws

if TYPE_CHECKING:
    from drkit.local.kafka import LocalKafka
    from drkit.local.kubernetes import LocalKubernetes


class LocalEnvironment:
    """PostgreSQL, Redis, the AWS and GCS emulators, and optionally Kafka, InfluxDB and a
    Kubernetes API server (kube-apiserver + etcd, for the Kubernetes-state store)."""

    def __init__(
        self,
        workdir: Path,
        *,
        with_kafka: bool = False,
        with_influxdb: bool = False,
        with_kubernetes: bool = False,
        with_isolated: bool = False,
    ) -> None:
        """``with_isolated``: the isolated backup account's own AWS emulator too (issue 22)."""
        self.workdir = workdir
        self.postgres = LocalPostgres(workdir / "postgres")
        self.redis = LocalRedis(workdir / "redis")
        self.aws = LocalAws(workdir / "aws")
        self.gcs = LocalGcs(workdir / "gcs")
        self.kafka = _local_kafka(workdir / "kafka") if with_kafka else None
        self.influxdb = LocalInfluxDB(workdir / "influxdb") if with_influxdb else None
        self.kubernetes = _local_kubernetes(workdir / "kubernetes") if with_kubernetes else None
        self.isolated = (
            LocalAws(workdir / "aws-vault", isolated_account=ISOLATED_ACCOUNT)
            if with_isolated
            else None
        )
        self._stack = ExitStack()

    def __enter__(self) -> LocalEnvironment:
        with ExitStack() as stack:
            servers = (
                self.postgres,
                self.redis,
                self.aws,
                self.gcs,
                self.kafka,
                self.influxdb,
                self.kubernetes,
                self.isolated,
            )
            for server in servers:
                if server is not None:
                    stack.enter_context(server)
            self._stack = stack.pop_all()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stack.close()


def _local_kafka(workdir: Path) -> LocalKafka:
    """``LocalKafka(workdir)``, imported only when asked for: it needs Java and its jars."""
    from drkit.local.kafka import LocalKafka

    return LocalKafka(workdir)


def _local_kubernetes(workdir: Path) -> LocalKubernetes:
    """``LocalKubernetes(workdir)``: its start fails naming scripts/build-kube-apiserver.sh when
    the kube-apiserver binary is not built."""
    from drkit.local.kubernetes import LocalKubernetes

    return LocalKubernetes(workdir)
