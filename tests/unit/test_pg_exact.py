"""The pure parts of PostgreSQL's exact-restore checks: sequence states, versions, limits."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from drkit.backup.manifest import Manifest
from drkit.pg_exact import (
    FINGERPRINT_VERSION,
    VERSION_2_KINDS,
    VERSION_3_KINDS,
    _option_names,
    max_checksum_bytes,
    needed_without_privileges,
    not_recorded_in,
    sequence_matches,
    sequence_record,
)
from drkit.restore.postgres import backup_server_version


def test_a_sequence_that_moved_during_the_dump_matches_any_state_in_between() -> None:
    before = {"s": [10, True, 1], "still": [7, False, 1]}
    after = {"s": [14, True, 1], "still": [7, False, 1]}
    record = sequence_record(before, after)
    assert record == {"s": {"from": [10, True], "to": [14, True]}, "still": [7, False]}
    assert sequence_matches(record["still"], [7, False, 1])
    assert not sequence_matches(record["still"], [7, True, 1])
    assert all(sequence_matches(record["s"], [v, True, 1]) for v in (10, 12, 14))
    assert sequence_matches(record["s"], [11, False, 1])  # nextval gives 11: position 10
    assert not sequence_matches(record["s"], [1, False, 1])  # a lost value
    assert not sequence_matches(record["s"], [15, True, 1])
    descending = {"from": [-10, True], "to": [-14, True]}
    assert sequence_matches(descending, [-12, True, -1])
    assert not sequence_matches(descending, [-9, True, -1])


def manifest(**tool_versions: str) -> Manifest:
    now = datetime.now(UTC)
    return Manifest(
        backup_id="20261203T000000Z-000aaa",
        store="trading-db",
        kind="postgres",
        data_class="transactional",
        source={},
        tool_versions=tool_versions,
        started_at=now,
        finished_at=now,
        consistent_point={},
        objects=[],
        destinations=[],
        encryption={},
    )


def test_the_backups_server_version_from_its_number_or_from_an_older_manifests_text() -> None:
    assert backup_server_version(manifest(server="16.4", server_version_num="160004")) == (
        160004,
        "16.4",
    )
    assert backup_server_version(manifest(server="15.10 (Debian 15.10-0+deb12u1)")) == (
        150010,
        "15.10",
    )
    assert backup_server_version(manifest(pg_dump="pg_dump (PostgreSQL) 15")) is None


def test_the_checksum_limit_is_megabytes_and_a_bad_value_is_named() -> None:
    assert max_checksum_bytes({}) == 1024 * 1024 * 1024
    assert max_checksum_bytes({"DRKIT_PG_CHECKSUM_MAX_MB": "0.5"}) == 512 * 1024
    with pytest.raises(ValueError, match="DRKIT_PG_CHECKSUM_MAX_MB='lots' is not valid"):
        max_checksum_bytes({"DRKIT_PG_CHECKSUM_MAX_MB": "lots"})


def test_foreign_options_are_recorded_by_name_never_by_value() -> None:
    options = ["user=app", "password=s3cret=with=equals", "host=elsewhere"]
    assert _option_names(options) == ["host", "password", "user"]
    assert _option_names(None) == []


def test_the_roles_a_restore_without_privileges_still_needs() -> None:
    roles = [
        {"name": "app", "needed_without_privileges": []},
        {"name": "reader", "needed_without_privileges": ["policy p on s.t"]},
    ]
    assert needed_without_privileges(roles) == {"reader": ["policy p on s.t"]}
    # A manifest recorded before the list: its user mappings, from the fingerprint's keys.
    checks = {"schema": {"objects": {"user mapping for old server s": "a:b", "table s.t": "c:d"}}}
    older = [{"name": "old"}, {"name": "app"}]
    assert needed_without_privileges(older, checks) == {"old": ["user mapping for old server s"]}
    assert needed_without_privileges(older) == {}


def test_an_older_fingerprint_leaves_out_the_kinds_later_versions_added() -> None:
    assert FINGERPRINT_VERSION == 3
    assert not_recorded_in(3) == ()
    assert not_recorded_in(2) == VERSION_3_KINDS
    assert not_recorded_in(1) == VERSION_2_KINDS + VERSION_3_KINDS
    assert "operator class odd.ops using btree".startswith(not_recorded_in(2))
    assert not "operator odd.~~~(numeric, numeric)".startswith(not_recorded_in(2))
