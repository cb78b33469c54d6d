"""``--jobs``: parsed and checked against the server's room before anything is written."""

from __future__ import annotations

import pytest

from drkit.pg_jobs import ConnectionRoom, JobsRefused, parse_jobs

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(("given", "expected"), [("", None), ("auto", None), ("AUTO", None)])
def test_auto_or_blank_is_the_default(given: str, expected: None) -> None:
    assert parse_jobs(given) is expected


def test_a_number_is_that_many_jobs() -> None:
    assert parse_jobs("4") == 4
    assert parse_jobs(2) == 2


@pytest.mark.parametrize("given", ["0", "-1"])
def test_zero_or_fewer_jobs_are_refused(given: str) -> None:
    with pytest.raises(JobsRefused, match=rf"--jobs {given}: at least 1 job is needed"):
        parse_jobs(given)


def test_words_are_refused_naming_what_is_allowed() -> None:
    with pytest.raises(JobsRefused, match="--jobs many: give a number of parallel jobs"):
        parse_jobs("many")


def test_the_room_is_the_limit_less_the_reserved_and_the_used_slots() -> None:
    room = ConnectionRoom(max_connections=100, reserved=3, in_use=90)
    assert room.free == 7
    assert room.describe("db:5432") == (
        "PostgreSQL on db:5432 has 7 connection(s) free (max_connections 100, 3 reserved, "
        "90 in use)"
    )
    assert ConnectionRoom(10, 3, 20).free == 0
