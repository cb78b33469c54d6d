"""Is this Redis server holding a backup's data? Judged by the data, against the manifest.

A backup records, from its RDB, each database's content fingerprint (``drkit.redis_rdb``): the
keys without a TTL and the keys with one, each counted and digested as name and type (plus the
absolute expiry for the second kind), and a sample of string values. ``server_content`` reads the
same from a live server: a short script (``DIGEST_SCRIPT``) runs one ``SCAN`` step of 1,000 keys
inside the server and returns that batch's counts and XOR-ed digests (``TYPE``, ``PEXPIRETIME``
and ``redis.sha1hex`` of each key), so only a few numbers cross the network per batch and the
server is never blocked for more than one batch; then ``GET`` of the sampled keys. Where scripts
are not allowed, the same is done from here with pipelined ``TYPE``/``PEXPIRETIME`` (slower).
``compare`` says whether they agree and, if not, the first difference. Needs Redis 7.0 or later
(``PEXPIRETIME``).

Keys with a TTL may expire at any moment after the backup: while none of them can have expired
yet (now before the earliest expiry the backup holds) they must match exactly; afterwards only
their count is bounded (no more than the backup had), and the keys without a TTL, which nothing
removes but a writer, carry the judgement.

Cost: proportional to the key count, one round trip per 1,000 keys, memory bounded by one batch
(figures measured in the README's Redis section).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import redis

from drkit.redis_rdb import TYPE_OF, key_digest

SCAN_BATCH = 1000
KNOWN_TYPES = frozenset(TYPE_OF.values())
DIGEST_SCRIPT = """
local known = {string=true, list=true, set=true, zset=true, hash=true, stream=true}
local reply = redis.call('SCAN', ARGV[1], 'COUNT', ARGV[2])
local out = {reply[1], 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
for _, key in ipairs(reply[2]) do
  local kind = redis.call('TYPE', key)['ok']
  local at = redis.call('PEXPIRETIME', key)
  if kind ~= 'none' and at ~= -2 then
    if not known[kind] then kind = 'module' end
    local text, base = kind .. '\0' .. key, 2
    if at ~= -1 then
      text = text .. '\0' .. string.format('%d', at)
      base = 7
    end
    out[base] = out[base] + 1
    local h = redis.sha1hex(text)
    for i = 1, 4 do
      local word = tonumber(string.sub(h, i * 8 - 7, i * 8), 16)
      out[base + i] = bit.bxor(out[base + i], word)
    end
  end
end
return out
"""
"""One SCAN step: {cursor, persistent count, 4 digest words, expiring count, 4 digest words}."""


@dataclass
class ServerDatabase:
    persistent: int = 0
    persistent_digest: int = 0
    expiring: int = 0
    expiring_digest: int = 0
    sample_mismatches: list[str] = field(default_factory=list)


def server_content(
    client_for: Callable[[int], redis.Redis[bytes]],
    databases: Mapping[int, Mapping[str, Any]],
    present: list[int],
) -> dict[int, ServerDatabase]:
    """What the server holds in each database of ``databases`` (the manifest's fingerprint, for
    its samples) and each of ``present`` (databases with keys on the server)."""
    found: dict[int, ServerDatabase] = {}
    for db in sorted(set(databases) | set(present)):
        state = found[db] = ServerDatabase()
        with client_for(db) as client:
            try:
                _scripted(client, state)
            except redis.ResponseError as error:
                if (
                    "unknown command" not in str(error).lower()
                    and "script" not in str(error).lower()
                ):
                    raise
                found[db] = state = ServerDatabase()
                _pipelined(client, state)
            sample = (databases.get(db) or {}).get("sample") or {}
            _check_sample(client, sample, state)
    return found


def _scripted(client: redis.Redis[bytes], state: ServerDatabase) -> None:
    script = client.register_script(DIGEST_SCRIPT)
    cursor: bytes | int = 0
    while True:
        reply = script(args=[cursor, SCAN_BATCH])
        cursor = reply[0]
        state.persistent += int(reply[1])
        state.persistent_digest ^= _words(reply[2:6])
        state.expiring += int(reply[6])
        state.expiring_digest ^= _words(reply[7:11])
        if int(cursor) == 0:
            return


def _words(words: list[Any]) -> int:
    """Four 32-bit words (Lua's ``bit`` library answers them signed) as one 128-bit number."""
    value = 0
    for word in words:
        value = (value << 32) | (int(word) & 0xFFFFFFFF)
    return value


def _pipelined(client: redis.Redis[bytes], state: ServerDatabase) -> None:
    cursor = 0
    while True:
        cursor, keys = client.scan(cursor, count=SCAN_BATCH)
        if keys:
            _digest(client, keys, state)
        if cursor == 0:
            return


def _digest(client: redis.Redis[bytes], keys: list[bytes], state: ServerDatabase) -> None:
    pipeline = client.pipeline(transaction=False)
    for key in keys:
        pipeline.type(key)
        pipeline.execute_command("PEXPIRETIME", key)  # type: ignore[no-untyped-call]
    replies = pipeline.execute()
    for index, key in enumerate(keys):
        kind = replies[2 * index]
        kind = kind.decode() if isinstance(kind, bytes) else str(kind)
        expiry = int(replies[2 * index + 1])
        if kind == "none" or expiry == -2:
            continue  # gone between SCAN and TYPE (expired or deleted)
        if kind not in KNOWN_TYPES:
            kind = "module"
        if expiry == -1:
            state.persistent += 1
            state.persistent_digest ^= key_digest(kind, key)
        else:
            state.expiring += 1
            state.expiring_digest ^= key_digest(kind, key, expiry)


def _check_sample(
    client: redis.Redis[bytes], sample: Mapping[str, str], state: ServerDatabase
) -> None:
    keys = [bytes.fromhex(k) for k in sorted(sample)]
    if not keys:
        return
    pipeline = client.pipeline(transaction=False)
    for key in keys:
        pipeline.get(key)
    values = pipeline.execute(raise_on_error=False)
    for key, value in zip(keys, values, strict=True):
        digest = hashlib.sha256(value).hexdigest() if isinstance(value, bytes) else None
        if digest != sample[key.hex()]:
            state.sample_mismatches.append(_shown(key))


def _shown(key: bytes) -> str:
    text = key.decode(errors="backslashreplace")
    return repr(text if len(text) <= 60 else text[:57] + "...")


def compare(
    recorded: Mapping[str, Mapping[str, Any]],
    server: Mapping[int, ServerDatabase],
    now_ms: int | None = None,
) -> str | None:
    """None when the server holds the backup's data; else the first difference, in words."""
    now = int(time.time() * 1000) if now_ms is None else now_ms
    wanted = {int(name[2:]): fields for name, fields in recorded.items()}
    for db in sorted(set(wanted) | set(server)):
        fields, state = wanted.get(db), server.get(db, ServerDatabase())
        if fields is None:
            if state.persistent or state.expiring:
                return f"db{db} holds {state.persistent + state.expiring} keys, the backup none"
            continue
        if state.persistent != fields["persistent"]:
            return (
                f"db{db} holds {state.persistent} keys without a TTL, the backup "
                f"{fields['persistent']}"
            )
        if f"{state.persistent_digest:032x}" != fields["persistent_digest"]:
            return f"db{db}: its keys without a TTL are not the backup's (names or types differ)"
        earliest = fields.get("min_expiry_ms")
        if earliest is None or earliest > now:  # none can have expired: exactly the backup's
            if state.expiring != fields["expiring"]:
                return (
                    f"db{db} holds {state.expiring} keys with a TTL, the backup "
                    f"{fields['expiring']}"
                )
            if f"{state.expiring_digest:032x}" != fields["expiring_digest"]:
                return f"db{db}: its keys with a TTL are not the backup's (names, types or TTLs)"
        elif state.expiring > fields["expiring"]:
            return (
                f"db{db} holds {state.expiring} keys with a TTL, more than the backup's "
                f"{fields['expiring']}"
            )
        if state.sample_mismatches:
            return (
                f"db{db}: sampled string values differ from the backup's, first "
                f"{state.sample_mismatches[0]}"
            )
    return None


def judge(
    client_for: Callable[[int], redis.Redis[bytes]],
    recorded: Mapping[str, Mapping[str, Any]],
    present: list[int],
) -> str | None:
    """``compare`` of what the server holds now with the fingerprint ``recorded``."""
    databases = {int(name[2:]): fields for name, fields in recorded.items()}
    return compare(recorded, server_content(client_for, databases, present))
