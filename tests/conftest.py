"""Shared by every test directory."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(scope="session", autouse=True)
def audit_spool(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Audit events a test's run could not upload are spooled here, not in the user's state
    directory (``drkit.audit``); each test's buckets have their own directory in it. A test that
    clears ``DRKIT_*`` (a pod's environment) spools under the session's ``XDG_STATE_HOME``."""
    spool = tmp_path_factory.mktemp("audit-spool")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DRKIT_AUDIT_SPOOL", str(spool))
        patch.setenv("XDG_STATE_HOME", str(tmp_path_factory.mktemp("state")))
        yield spool
