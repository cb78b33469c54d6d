"""The session's Kubernetes API server: kube-apiserver + etcd, started once, stopped at the end.

Import ``kubernetes_api`` into ``tests/integration/conftest.py``, or into the test modules that
use it, or load this module as a plugin with ``-p tests.integration.kubernetes_fixture``. Each
import is a separate fixture definition to pytest, which would start one server per definition;
the server is therefore kept in the pytest config's stash, so there is one per session however
many modules import the fixture, and stopped when the session ends.

The binary is built by ``scripts/build-kube-apiserver.sh`` (bootstrap runs it). A developer who has
not built it gets a skip that says how; CI (``CI=true``) gets a failure instead, because there a
missing binary is a broken bootstrap, not a choice.
"""

from __future__ import annotations

import os

import pytest

from drkit.local.kubernetes import (
    BUILD_SCRIPT,
    LocalKubernetes,
    kube_apiserver_available,
    kube_apiserver_binary,
)

_SESSION_CLUSTER = pytest.StashKey[LocalKubernetes]()


def require_kube_apiserver() -> None:
    """Skip the calling test when the binary is not built, or fail it when ``CI=true``."""
    if not kube_apiserver_available():
        reason = f"kube-apiserver is not built at {kube_apiserver_binary()}: run {BUILD_SCRIPT}"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true and {reason}", pytrace=False)
        pytest.skip(reason)


@pytest.fixture(scope="session")
def kubernetes_api(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> LocalKubernetes:
    config = request.config
    cluster = config.stash.get(_SESSION_CLUSTER, None)
    if cluster is not None:
        return cluster
    require_kube_apiserver()
    cluster = LocalKubernetes(tmp_path_factory.mktemp("kubernetes"))
    config.add_cleanup(cluster.stop)  # before start: a half-started pair is stopped too
    cluster.start()
    config.stash[_SESSION_CLUSTER] = cluster
    return cluster
