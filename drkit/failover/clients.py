"""Clients built for an explicit region, through a factory the tests replace.

Nothing here falls back to a default region: a client for the wrong region is exactly the bug a
failover cannot afford. ``fast_fail`` clients are for the region that may be dark (the fence, and
``status`` reading the peer): a 3-second connect timeout and no retries, so a dead endpoint costs
seconds, not botocore's minutes of backoff.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Protocol

import boto3
import kubernetes.client  # type: ignore[import-untyped]
import kubernetes.config  # type: ignore[import-untyped]
from botocore.config import Config

FAST_CONNECT_TIMEOUT_S = 3.0
FAST_READ_TIMEOUT_S = 10.0
KUBE_FAST_TIMEOUT = (FAST_CONNECT_TIMEOUT_S, FAST_READ_TIMEOUT_S)
KUBE_TIMEOUT = (10.0, 60.0)
ROUTE53_REGION = "us-east-1"
"""Route 53's control plane answers in us-east-1 only, whatever region a client names."""

FAST_FAIL = Config(
    connect_timeout=FAST_CONNECT_TIMEOUT_S,
    read_timeout=FAST_READ_TIMEOUT_S,
    retries={"total_max_attempts": 1, "mode": "standard"},
)
NORMAL = Config(
    connect_timeout=10, read_timeout=60, retries={"max_attempts": 4, "mode": "standard"}
)


class AwsClients(Protocol):
    def client(self, service: str, region: str, *, fast_fail: bool = False) -> Any:
        """A client of ``service`` in ``region``; ``fast_fail`` for a region that may be dark."""
        ...


class KubeClients(Protocol):
    def api(self, context: str | None, *, fast_fail: bool = False) -> Any:
        """A ``kubernetes.client.ApiClient`` for a kubeconfig context (None: the current one)."""
        ...


class BotoClients:
    """boto3 clients, one per (service, region, fast_fail), against the emulator when the stack
    outputs name one (the local environment)."""

    def __init__(self, endpoint_url: str | None = None) -> None:
        self.endpoint_url = endpoint_url
        self._clients: dict[tuple[str, str, bool], Any] = {}
        self._lock = threading.Lock()

    def client(self, service: str, region: str, *, fast_fail: bool = False) -> Any:
        if not region:
            raise ValueError(f"a {service} client needs an explicit region")
        key = (service, region, fast_fail)
        with self._lock:
            if key not in self._clients:
                self._clients[key] = self.make(service, region, FAST_FAIL if fast_fail else NORMAL)
            return self._clients[key]

    def make(self, service: str, region: str, config: Config) -> Any:
        emulated = self.endpoint_url is not None
        session = boto3.session.Session(
            region_name=region,
            # The emulator takes any keys; fixed ones keep real credentials away from it.
            aws_access_key_id="testing" if emulated else None,
            aws_secret_access_key="testing" if emulated else None,
        )
        return session.client(  # type: ignore[call-overload]
            service, endpoint_url=self.endpoint_url, config=config
        )


class KubeconfigClients:
    """Kubernetes API clients from a kubeconfig file (``--kubeconfig``, else ``$KUBECONFIG`` or
    ``~/.kube/config``), one per context."""

    def __init__(self, kubeconfig: Path | None = None) -> None:
        self.kubeconfig = kubeconfig
        self._clients: dict[tuple[str | None, bool], Any] = {}
        self._lock = threading.Lock()

    def api(self, context: str | None, *, fast_fail: bool = False) -> Any:
        with self._lock:
            if (context, fast_fail) not in self._clients:
                self._clients[(context, fast_fail)] = self._make(context, fast_fail)
            return self._clients[(context, fast_fail)]

    def _make(self, context: str | None, fast_fail: bool) -> Any:
        configuration = kubernetes.client.Configuration()
        kubernetes.config.load_kube_config(
            config_file=str(self.kubeconfig) if self.kubeconfig else None,
            context=context,
            client_configuration=configuration,
        )
        if fast_fail:
            configuration.retries = 0  # urllib3 would retry a refused connection three times
        return kubernetes.client.ApiClient(configuration)


def request_timeout(fast_fail: bool) -> tuple[float, float]:
    return KUBE_FAST_TIMEOUT if fast_fail else KUBE_TIMEOUT
