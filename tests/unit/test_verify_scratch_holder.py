"""Which scratch targets of ``invoke verify`` may be removed: the holder tag in their name or
label, read back, and judged against the process table of this host and the clock."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime, timedelta

import pytest

from drkit.ops.scratch import (
    DRILL,
    Holder,
    database_name,
    host_digest,
    namespace_name,
    parse_database,
    parse_topic,
    pid_alive,
    topic_name,
)
from drkit.ops.verify_k8s import scratch_name
from drkit.ops.verify_timeseries import scratch_database

pytestmark = pytest.mark.unit
NOW = datetime(2026, 12, 3, 7, 0, tzinfo=UTC)


def gone_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def test_a_tag_reads_back_and_fits_a_namespace_and_a_database_name() -> None:
    holder = Holder.mine(NOW)
    assert Holder.parse(holder.tag) == holder and holder.started_at == NOW
    assert Holder.parse("not_a_tag") is None and Holder.parse(holder.tag + "x") is None
    name = scratch_name("a" * 80, holder)
    assert len(name) == 63 and name.endswith(f"-verify-{holder.token}")
    assert scratch_database("market_ticks", holder) == f"market_ticks_verify_{holder.tag}"


def test_a_live_run_keeps_its_targets_and_a_gone_one_loses_them() -> None:
    assert Holder.mine(NOW).orphaned(NOW) is None  # this very process
    gone = Holder(host_digest(), gone_pid(), int(NOW.timestamp()), "abcdef")
    assert not pid_alive(gone.pid)
    assert gone.orphaned(NOW) == f"its run (pid {gone.pid} on this host) is gone"


def test_a_holder_whose_pid_now_belongs_to_a_later_process_is_gone() -> None:
    """A pid reused after its run ended is not that run: the live process started after the
    holder named itself."""
    later = subprocess.Popen(["sleep", "30"])
    try:
        now = datetime.now(UTC)
        reused = Holder(host_digest(), later.pid, int(now.timestamp()) - 3600, "abcdef")
        assert reused.orphaned(now) == (
            f"its run (pid {later.pid} on this host) is gone: the pid is reused"
        )
        same = Holder(host_digest(), later.pid, int(now.timestamp()), "abcdef")
        assert same.orphaned(now) is None  # the run that named itself, still alive
    finally:
        later.kill()
        later.wait()


def test_the_host_digest_names_this_boot_and_pid_namespace_not_only_the_host_name() -> None:
    import socket

    assert host_digest() != host_digest(socket.gethostname())
    assert host_digest() == host_digest() and len(host_digest()) == 8


def test_another_hosts_targets_wait_for_the_bound_or_cleanup() -> None:
    elsewhere = Holder("ffffffff", 1, int(NOW.timestamp()), "abcdef")
    assert elsewhere.orphaned(NOW) is None
    assert elsewhere.orphaned(NOW, forced=True) == "--cleanup: made by a run on another host"
    late = elsewhere.orphaned(NOW + timedelta(hours=7))
    assert late == "started 7.0h ago on another host, past the 6.0h bound"


def test_the_drill_and_verify_name_their_targets_so_that_they_are_found_again() -> None:
    holder = Holder.mine(NOW)
    assert namespace_name("aipx", holder, DRILL) == "aipx-dr-test"  # the second seed's drill
    assert database_name("aipx", holder, DRILL) == f"aipx_dr_test_{holder.tag}"
    for purpose in ("verify", DRILL):
        name = database_name("aipx", holder, purpose)
        assert parse_database(name, "aipx") == holder
        assert parse_database(name, "aipx2") is None and parse_database(name, "aip") is None
        long = database_name("d" * 70, holder, purpose)
        assert len(long) == 63 and parse_database(long, "d" * 70) == holder
        topic = topic_name("order-events", holder, purpose)
        assert topic == f"{purpose}.{holder.tag}.order-events"
        assert parse_topic(topic) == (holder, "order-events")
    assert parse_topic("order-events") is None and parse_topic("verify.notatag.x") is None
    assert parse_database("aipx_verify_notatag", "aipx") is None
