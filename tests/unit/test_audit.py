"""``drkit.audit`` without a server: who (the pod's ServiceAccount from its projected token),
event keys, ``--since``, outcomes, the table ``audit.list`` prints."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from drkit import audit
from drkit.cli_errors import Ended
from drkit.context import UnknownStore


def token(claims: dict[str, object]) -> str:
    def part(value: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    return f"{part({'alg': 'RS256'})}.{part(claims)}.c2lnbmF0dXJl"


def test_the_service_account_comes_from_the_pods_projected_token(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text(token({"sub": "system:serviceaccount:dr-backups:trading-db-backup"}))
    missing = tmp_path / "missing"
    assert audit.service_account((missing, path)) == (
        "system:serviceaccount:dr-backups:trading-db-backup"
    )
    path.write_text("not a token")
    assert audit.service_account((path,)) is None
    assert audit.service_account((missing,)) is None


def test_irsa_token_file_is_read_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "irsa"
    path.write_text(token({"sub": "system:serviceaccount:dr-backups:app-state-backup"}))
    monkeypatch.setenv("AWS_WEB_IDENTITY_TOKEN_FILE", str(path))
    who = audit.caller_identity(None)
    assert who["kubernetes"] == "system:serviceaccount:dr-backups:app-state-backup"
    assert who["principal"] == who["kubernetes"]


def test_outside_a_pod_without_aws_the_principal_is_the_os_user(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("AWS_WEB_IDENTITY_TOKEN_FILE", raising=False)
    who = audit.caller_identity(None)
    assert who["principal"] == f"{who['user']}@{who['host']}"


def test_keys_sort_by_day_run_and_sequence() -> None:
    when = datetime(2026, 12, 3, 23, 59, tzinfo=UTC)
    assert audit.event_key(when, "RUN", 7) == "events/2026/12/03/RUN/00007.json"
    a, b = audit.new_run_id("restore.postgres", when), audit.new_run_id("restore.postgres", when)
    assert a != b and a.startswith("20261203T235900Z-restore-postgres-")


def test_since_takes_a_time_or_an_age() -> None:
    now = datetime(2026, 12, 3, 12, tzinfo=UTC)
    assert audit.parse_since("", now) is None
    assert audit.parse_since("90m", now) == now - timedelta(minutes=90)
    assert audit.parse_since("7d", now) == now - timedelta(days=7)
    assert audit.parse_since("2026-12-01T08:00:00", now) == datetime(2026, 12, 1, 8, tzinfo=UTC)
    with pytest.raises(ValueError, match="--since 'yesterday'"):
        audit.parse_since("yesterday", now)


@pytest.mark.parametrize(
    ("error", "outcome"),
    [
        (Ended(1), "failed"),
        (Ended(2, "error: refused"), "refused"),
        (Ended(0), "succeeded"),
        (UnknownStore("unknown store"), "refused"),
        (RuntimeError("boom"), "failed"),
        (KeyboardInterrupt(), "interrupted"),
    ],
)
def test_an_exception_is_an_outcome(error: BaseException, outcome: str) -> None:
    assert audit._outcome_of(error) == outcome


def test_a_dry_run_opens_no_trail() -> None:
    with audit.audited(None, "backup", {"store": "trading-db"}, dry_run=True) as trail:
        assert trail is None
        assert audit.current() is None


def test_the_table_shows_who_what_when_run_and_outcome() -> None:
    event = {
        "when": "2026-12-03T09:00:00+00:00",
        "run_id": "20261203T090000Z-backup-abc123",
        "sequence": 1,
        "operation": "backup",
        "stack": "prod",
        "event": "started",
        "outcome": "started",
        "who": {"principal": "arn:aws:sts::123456789012:assumed-role/x/y"},
        "arguments": {"store": "trading-db"},
    }
    text = audit.to_text([event])
    assert text.splitlines()[0].split() == [
        "when",
        "run",
        "id",
        "seq",
        "operation",
        "stack",
        "event",
        "outcome",
        "who",
        "what",
    ]
    assert "20261203T090000Z-backup-abc123" in text and "store=trading-db" in text
    assert "assumed-role/x/y" in text
    assert audit.to_text([]) == "no audit events\n"
