"""The content judgement's rules, without a server: what differs is named; keys with a TTL are
compared exactly until the earliest of them may have expired, then by count only."""

from __future__ import annotations

import pytest

from drkit.ops.restore_redis import url_source
from drkit.recovery import RecoveryError
from drkit.redis_content import ServerDatabase, compare
from drkit.redis_rdb import ContentDigest, key_digest
from drkit.restore.redis_copy import masked, parse_target_url

pytestmark = pytest.mark.unit

NOW = 1_800_000_000_000


def recorded() -> dict[str, dict[str, object]]:
    content = ContentDigest()
    content.add("string", b"a", None)
    content.add("hash", b"h", None)
    content.add("string", b"t", NOW + 60_000)
    return {"db0": content.as_json()}


def server(**changes: object) -> dict[int, ServerDatabase]:
    state = ServerDatabase(
        persistent=2,
        persistent_digest=key_digest("string", b"a") ^ key_digest("hash", b"h"),
        expiring=1,
        expiring_digest=key_digest("string", b"t", NOW + 60_000),
    )
    for name, value in changes.items():
        setattr(state, name, value)
    return {0: state}


def test_the_same_keys_match_and_each_difference_is_named() -> None:
    assert compare(recorded(), server(), NOW) is None
    assert compare(recorded(), server(persistent=1), NOW) == (
        "db0 holds 1 keys without a TTL, the backup 2"
    )
    renamed = key_digest("string", b"b") ^ key_digest("hash", b"h")
    assert "names or types differ" in str(compare(recorded(), server(persistent_digest=renamed)))
    assert "keys with a TTL are not" in str(compare(recorded(), server(expiring_digest=1), NOW))
    extra = server() | {5: ServerDatabase(persistent=1)}
    assert compare(recorded(), extra, NOW) == "db5 holds 1 keys, the backup none"
    assert "sampled string values" in str(
        compare(recorded(), server(sample_mismatches=["'a'"]), NOW)
    )


def test_keys_with_a_ttl_are_counted_only_once_one_may_have_expired() -> None:
    later = NOW + 120_000
    assert compare(recorded(), server(expiring=0, expiring_digest=0), later) is None
    assert compare(recorded(), server(expiring=0, expiring_digest=0), NOW) is not None
    assert "more than the backup's 1" in str(compare(recorded(), server(expiring=2), later))


def test_target_urls() -> None:
    source = parse_target_url("rediss://app:p%40ss@cache.internal:6380")
    assert (source.host, source.port, source.username, source.password, source.tls) == (
        "cache.internal",
        6380,
        "app",
        "p@ss",
        True,
    )
    assert parse_target_url("redis://10.0.0.5").port == 6379
    assert masked("redis://app:secret@h:1") == "redis://app:***@h:1"
    with pytest.raises(ValueError, match="redis:// or rediss://"):
        parse_target_url("https://h:1")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://127.0.0.1:1", "redis:// or rediss://"),
        ("redis://127.0.0.1:1/2", "leave the database number out"),
        ("redis://127.0.0.1:1?foo=1", "unknown parameters"),
        ("redis://u:pw@127.0.0.1:1?ssl_ca_certs=/nope", "needs rediss://"),
        ("rediss://u:pw@127.0.0.1:1?ssl_ca_certs=/nope", "does not exist"),
        ("redis://u:***@127.0.0.1:1", "set REDISCLI_AUTH"),
    ],
)
def test_bad_target_urls_are_refused_naming_the_problem(
    url: str, message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("REDISCLI_AUTH", raising=False)
    with pytest.raises(RecoveryError, match=message):
        url_source(url)
