"""The local stack's config and the pure parts of its protections (no servers)."""

from __future__ import annotations

import shutil
import struct
from pathlib import Path

import pytest

from drkit.local.daemon import one_line
from drkit.local.lag import parse_checkpoint
from drkit.local.local_config import local_stack_config
from drkit.local.mirrormaker import mirror_properties
from drkit.local.process import ServerStartError
from drkit.local.regions import critical_topics, selected_kinds
from stackmodels.config import ProtectionKind, StoreKind
from stackmodels.errors import ConfigError

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]


def project(tmp_path: Path, local_yaml: str) -> Path:
    shutil.copy(ROOT / "Pulumi.prod.yaml", tmp_path / "Pulumi.prod.yaml")
    (tmp_path / "local-stack.yaml").write_text(local_yaml)
    return tmp_path


def test_the_local_stack_names_the_self_hosted_protections() -> None:
    config = local_stack_config(ROOT)
    protections = {name: store.continuous_protection for name, store in config.stores.items()}
    assert protections == {
        "trading-db": ProtectionKind.POSTGRES_STREAMING,
        "event-stream": ProtectionKind.MIRRORMAKER2,
        "session-cache": ProtectionKind.REDIS_REPLICA,
        "app-state": ProtectionKind.GITOPS,
        "market-ticks": None,
    }
    assert config.stores["trading-db"].schedule == "*/15 * * * *"  # the rest is prod's


def test_a_protection_of_another_store_kind_is_refused_naming_the_field(tmp_path: Path) -> None:
    local = (
        "config:\n  trading-dr:stores:\n    trading-db:\n"
        "      continuous_protection: redis-replica\n"
    )
    with pytest.raises(ConfigError) as error:
        local_stack_config(project(tmp_path, local))
    message = str(error.value)
    assert "trading-dr:stores.trading-db" in message
    assert "'redis-replica' does not protect a postgres store" in message
    assert "aurora-global-database, postgres-streaming" in message


def test_an_unknown_protection_kind_is_refused_listing_the_kinds(tmp_path: Path) -> None:
    local = "config:\n  trading-dr:stores:\n    event-stream:\n      continuous_protection: rsync\n"
    with pytest.raises(ConfigError, match="mirrormaker2"):
        local_stack_config(project(tmp_path, local))


def test_mirror_maker_mirrors_the_critical_topics_by_identity_with_second_intervals() -> None:
    config = local_stack_config(ROOT)
    topics = critical_topics(config, "event-stream")
    assert topics == ["strategy-signals", "order-events"]
    settings = mirror_properties("127.0.0.1:1", "127.0.0.1:2", topics)
    assert settings["prod->dr.topics"] == "strategy-signals|order-events"
    assert settings["dr->prod.enabled"] == "false"
    assert settings["replication.policy.class"].endswith("IdentityReplicationPolicy")
    assert settings["emit.checkpoints.interval.seconds"] == "1"
    assert settings["sync.group.offsets.enabled"] == "true"
    assert settings["sync.group.offsets.interval.seconds"] == "1"


def test_only_takes_store_names_or_kinds_and_names_the_allowed_ones() -> None:
    config = local_stack_config(ROOT)
    assert selected_kinds(config, ["trading-db", "kafka"]) == {StoreKind.POSTGRES, StoreKind.KAFKA}
    assert StoreKind.KUBERNETES in selected_kinds(config, None)
    with pytest.raises(ValueError, match=r"--only 'orders'.*session-cache"):
        selected_kinds(config, ["orders"])


def _string(text: str) -> bytes:
    return struct.pack(">h", len(text)) + text.encode()


def test_a_checkpoint_record_decodes_to_group_partition_and_both_offsets() -> None:
    key = _string("settlement") + _string("order-events") + struct.pack(">i", 2)
    value = struct.pack(">h", 0) + struct.pack(">qq", 41, 40) + _string("")
    point = parse_checkpoint(key, value, 1_700_000_000.5)
    assert (point.group, point.topic, point.partition) == ("settlement", "order-events", 2)
    assert (point.upstream_offset, point.downstream_offset) == (41, 40)


def test_a_start_failure_is_one_line_naming_a_taken_port() -> None:
    error = ServerStartError(
        "redis exited before answering PING (exit code 1); log /x/redis.log:\n"
        "1:M 02 Dec 2026 18:00:00.000 # Warning: Could not create server TCP listening socket "
        "127.0.0.1:6379: bind: Address already in use\n1:M 02 Dec 2026 # exiting"
    )
    assert one_line(error) == (
        "redis exited before answering PING (exit code 1); log /x/redis.log: "
        "1:M 02 Dec 2026 18:00:00.000 # Warning: Could not create server TCP listening socket "
        "127.0.0.1:6379: bind: Address already in use"
    )
    assert "\n" not in one_line(ServerStartError("kafka: did not answer\nlog tail"))


def test_up_refuses_a_kind_whose_server_is_not_built_before_starting_anything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The kind's ``local.missing`` hook (``drkit.kinds``): Kubernetes without kube-apiserver."""
    from drkit.local.daemon import LocalStackError, up
    from drkit.local.kubernetes import BINARY_ENV

    shutil.copy(ROOT / "local-stack.yaml", tmp_path / "local-stack.yaml")
    shutil.copy(ROOT / "Pulumi.prod.yaml", tmp_path / "Pulumi.prod.yaml")
    monkeypatch.setenv(BINARY_ENV, str(tmp_path / "no-kube-apiserver"))
    with pytest.raises(LocalStackError, match="kube-apiserver is not built: run scripts/build"):
        up(tmp_path, only=["app-state"])
    assert not (tmp_path / ".drkit").exists()  # nothing started, no state written
