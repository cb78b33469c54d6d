"""Replication lag of the local stack's standbys, read from the replication itself.

One function per protection kind; each takes connection URLs (the ones ``local.status`` prints),
so ``local.status``, ``invoke status`` and the failover preflight read lag the same way:

- ``postgres_lag``: the standby's replay LSN against the primary's current WAL LSN; when behind,
  the primary's own ``pg_stat_replication.replay_lag`` (else the age of the last replayed
  transaction);
- ``redis_lag``: the replica's replication offset against the master's; when behind, how long the
  replica takes to reach the offset the master had when asked;
- ``kafka_lag``: each mirrored partition's end offset in dr against prod's; when behind, the age of
  the oldest prod record not yet in dr; plus the age of the newest MirrorMaker checkpoint and
  heartbeat (a MirrorMaker that stopped heartbeating makes the lag unknown: nothing is mirroring).

A figure that cannot be read is ``None`` ("unknown"), never 0: 0 means measured and caught up.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

import psycopg
import redis
from confluent_kafka import Consumer, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient

CONNECT_TIMEOUT_S = 3
REDIS_CATCH_UP_S = 2.0
HEARTBEATS_TOPIC = "heartbeats"
CHECKPOINTS_TOPIC = "prod.checkpoints.internal"
HEARTBEAT_STALE_S = 15.0
MIRROR_PROCESS = "mirror-maker"
"""MirrorMaker 2's process in the local stack's state (``drkit.local.regions``)."""
MIRROR_DEAD = "MirrorMaker 2 is not running: nothing mirrors, the lag is unknown"


@dataclass(frozen=True)
class Lag:
    """One standby's lag: ``seconds`` (None = unknown), and what it was computed from."""

    kind: str
    seconds: float | None
    detail: dict[str, Any] = field(default_factory=dict)
    note: str = ""

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


# --- PostgreSQL ------------------------------------------------------------------------------


def postgres_lag(primary_url: str | None, standby_url: str) -> Lag:
    """Replay LSN and timestamp on the standby against the primary's current WAL position."""
    try:
        with psycopg.connect(standby_url, connect_timeout=CONNECT_TIMEOUT_S) as standby:
            row = standby.execute(
                "SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn()::text, "
                "pg_last_xact_replay_timestamp(), "
                "extract(epoch from now() - pg_last_xact_replay_timestamp())"
            ).fetchone()
    except psycopg.Error as error:
        return Lag("postgres-streaming", None, note=f"standby unreadable: {_one_line(error)}")
    assert row is not None
    in_recovery, replay_lsn, replay_at, replay_age = row
    detail: dict[str, Any] = {
        "standby_replay_lsn": replay_lsn,
        "standby_replay_timestamp": replay_at.isoformat() if replay_at else None,
    }
    if not in_recovery:
        return Lag("postgres-streaming", None, detail, "not a standby (promoted?)")
    if primary_url is None:
        return Lag("postgres-streaming", None, detail, "no primary to compare with")
    try:
        with psycopg.connect(primary_url, connect_timeout=CONNECT_TIMEOUT_S) as primary:
            current = primary.execute(
                "SELECT pg_current_wal_lsn()::text, "
                "pg_wal_lsn_diff(pg_current_wal_lsn(), %s::pg_lsn)::bigint, "
                "(SELECT extract(epoch from max(replay_lag)) FROM pg_stat_replication)",
                (replay_lsn,),
            ).fetchone()
    except psycopg.Error as error:
        return Lag("postgres-streaming", None, detail, f"primary unreadable: {_one_line(error)}")
    assert current is not None
    primary_lsn, behind_bytes, replay_lag = current
    detail |= {"primary_lsn": primary_lsn, "behind_bytes": int(behind_bytes)}
    if behind_bytes <= 0:
        return Lag("postgres-streaming", 0.0, detail)
    if replay_lag is not None:
        return Lag("postgres-streaming", round(float(replay_lag), 3), detail)
    if replay_age is not None:
        return Lag("postgres-streaming", round(float(replay_age), 3), detail, "last replay age")
    return Lag("postgres-streaming", None, detail, "behind, and nothing replayed yet")


# --- Redis -----------------------------------------------------------------------------------


def _redis_client(url: str) -> redis.Redis[bytes]:
    parts = urlsplit(url)
    return redis.Redis(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 6379,
        password=unquote(parts.password) if parts.password else None,
        socket_timeout=CONNECT_TIMEOUT_S,
        socket_connect_timeout=CONNECT_TIMEOUT_S,
    )


def redis_lag(master_url: str | None, replica_url: str) -> Lag:
    """The replica's offset against the master's ``master_repl_offset``."""
    try:
        with _redis_client(replica_url) as replica:
            info = replica.info("replication")
            detail: dict[str, Any] = {
                "replica_offset": info.get("slave_repl_offset"),
                "master_link_status": info.get("master_link_status"),
            }
            if info.get("role") != "slave":
                return Lag("redis-replica", None, detail, "not a replica (promoted?)")
            if info.get("master_link_status") != "up":
                down = info.get("master_link_down_since_seconds")
                return Lag("redis-replica", None, detail, f"link to master down for {down}s")
            if master_url is None:
                return Lag("redis-replica", None, detail, "no master to compare with")
            with _redis_client(master_url) as master:
                master_offset = int(master.info("replication")["master_repl_offset"])
            detail["master_offset"] = master_offset
            started = time.monotonic()
            while True:
                offset = int(replica.info("replication").get("slave_repl_offset", -1))
                detail["replica_offset"] = offset
                waited = time.monotonic() - started
                if offset >= master_offset:
                    return Lag("redis-replica", round(waited, 3), detail)
                if waited > REDIS_CATCH_UP_S:
                    detail["behind_bytes"] = master_offset - offset
                    return Lag("redis-replica", round(waited, 3), detail, "at least; still behind")
                time.sleep(0.02)
    except redis.RedisError as error:
        return Lag("redis-replica", None, note=f"unreadable: {_one_line(error)}")


# --- Kafka (MirrorMaker 2) -------------------------------------------------------------------


def _consumer(bootstrap: str) -> Consumer:
    return Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "drkit-lag-reader",
            "enable.auto.commit": False,
            "log_level": 3,
            "socket.timeout.ms": CONNECT_TIMEOUT_S * 1000,
        }
    )


def _partitions(bootstrap: str, topics: Sequence[str]) -> list[TopicPartition]:
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 3})
    metadata = admin.list_topics(timeout=CONNECT_TIMEOUT_S)
    found: list[TopicPartition] = []
    for topic in topics:
        described = metadata.topics.get(topic)
        if described is None or described.error is not None:
            continue
        found += [TopicPartition(topic, p) for p in sorted(described.partitions)]
    return found


def _end_offsets(consumer: Consumer, partitions: Sequence[TopicPartition]) -> dict[str, int]:
    ends: dict[str, int] = {}
    for partition in partitions:
        _, high = consumer.get_watermark_offsets(partition, timeout=CONNECT_TIMEOUT_S)
        ends[f"{partition.topic}-{partition.partition}"] = int(high)
    return ends


def end_offsets(bootstrap: str, topics: Sequence[str]) -> dict[str, int]:
    """The end offset of every partition of ``topics`` in the cluster at ``bootstrap``."""
    consumer = _consumer(bootstrap)
    try:
        return _end_offsets(consumer, _partitions(bootstrap, topics))
    finally:
        consumer.close()


def _newest_timestamp(consumer: Consumer, bootstrap: str, topic: str) -> float | None:
    """The timestamp (seconds) of the newest record of ``topic``, or None if it has none."""
    newest: float | None = None
    for partition in _partitions(bootstrap, [topic]):
        _, high = consumer.get_watermark_offsets(partition, timeout=CONNECT_TIMEOUT_S)
        if high <= 0:
            continue
        stamp = _timestamp_at(consumer, TopicPartition(topic, partition.partition, high - 1))
        if stamp is not None and (newest is None or stamp > newest):
            newest = stamp
    return newest


def _timestamp_at(consumer: Consumer, position: TopicPartition) -> float | None:
    consumer.assign([position])
    try:
        deadline = time.monotonic() + CONNECT_TIMEOUT_S
        while time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None or message.error() is not None:
                continue
            _, stamp = message.timestamp()
            return float(stamp) / 1000.0
        return None
    finally:
        consumer.unassign()


def mirrored_lag(
    state: Mapping[str, Any],
    source_bootstrap: str | None,
    target_bootstrap: str,
    source_alias: str = "prod",
    target_region: str = "dr",
) -> Lag:
    """``kafka_lag`` of the topics MirrorMaker 2 mirrors on the local stack (``state``, its state
    file), unknown while the MirrorMaker process it recorded is not running: dr's offsets stop
    moving the moment it dies, which must never read as caught up."""
    from drkit.local.process import recorded_alive

    processes = state.get("processes", [])
    mirror = next(
        (
            p
            for p in processes
            if p["name"] == MIRROR_PROCESS and p.get("region", target_region) == target_region
        ),
        None,
    )
    if mirror is not None and not recorded_alive(mirror):
        return Lag("mirrormaker2", None, note=MIRROR_DEAD)
    # a mirror a failback started again begins at a fork (drkit.failover.kinds.mirrormaker2)
    fork = state.get("mirror_forks", {}).get(f"{source_alias}->{target_region}")
    topics = list(state.get("mirrored_topics", []))
    return kafka_lag(source_bootstrap, target_bootstrap, topics, source_alias, fork_shift(fork))


def kafka_lag(
    source_bootstrap: str | None,
    target_bootstrap: str,
    topics: Sequence[str],
    source_alias: str = "prod",
    shift: Mapping[str, int] | None = None,
) -> Lag:
    """End offsets of each mirrored partition, the target (dr) against the source (prod,
    ``source_alias`` in MirrorMaker's names), and MirrorMaker's freshness. ``shift`` is, per
    partition, the source offset of the target's offset 0 for a mirror started at a fork (a
    failback's: the two logs hold different records below it); none for a mirror from scratch."""
    shift = shift or {}
    detail: dict[str, Any] = {}
    try:
        target = _consumer(target_bootstrap)
        try:
            target_ends = _end_offsets(target, _partitions(target_bootstrap, topics))
            now = time.time()
            heartbeat = _newest_timestamp(target, target_bootstrap, HEARTBEATS_TOPIC)
            checkpoint = _newest_timestamp(
                target, target_bootstrap, checkpoints_topic(source_alias)
            )
        finally:
            target.close()
    except KafkaException as error:
        return Lag("mirrormaker2", None, note=f"dr cluster unreadable: {_one_line(error)}")
    detail["target_end_offsets"] = target_ends
    detail["heartbeat_age_seconds"] = None if heartbeat is None else round(now - heartbeat, 3)
    detail["checkpoint_age_seconds"] = None if checkpoint is None else round(now - checkpoint, 3)
    if heartbeat is None or now - heartbeat > HEARTBEAT_STALE_S:
        return Lag("mirrormaker2", None, detail, "no recent MirrorMaker 2 heartbeat in dr")
    if source_bootstrap is None:
        return Lag("mirrormaker2", None, detail, "no source cluster to compare with")
    try:
        source = _consumer(source_bootstrap)
        try:
            partitions = _partitions(source_bootstrap, topics)
            source_ends = _end_offsets(source, partitions)
            oldest_missing: float | None = None
            for partition in partitions:
                key = f"{partition.topic}-{partition.partition}"
                mirrored = target_ends.get(key, 0) + shift.get(key, 0)
                if source_ends[key] > mirrored:
                    stamp = _timestamp_at(
                        source, TopicPartition(partition.topic, partition.partition, mirrored)
                    )
                    if stamp is None:
                        return Lag("mirrormaker2", None, detail, f"{key}: unreadable record")
                    if oldest_missing is None or stamp < oldest_missing:
                        oldest_missing = stamp
        finally:
            source.close()
    except KafkaException as error:
        return Lag("mirrormaker2", None, detail, f"prod cluster unreadable: {_one_line(error)}")
    detail["source_end_offsets"] = source_ends
    detail["behind_records"] = sum(
        max(0, end - target_ends.get(key, 0) - shift.get(key, 0))
        for key, end in source_ends.items()
    )
    if not source_ends:
        return Lag("mirrormaker2", None, detail, "no mirrored topic in prod")
    if oldest_missing is None:
        return Lag("mirrormaker2", 0.0, detail)
    return Lag("mirrormaker2", round(max(0.0, time.time() - oldest_missing), 3), detail)


def fork_shift(fork: Mapping[str, Any] | None) -> dict[str, int]:
    """``kafka_lag``'s ``shift`` from a flow's fork record (``start``: the source's offsets where
    its mirror started, ``base``: the target's end offsets then); none for a mirror from scratch."""
    if not fork or "base" not in fork:
        return {}
    start, base = fork.get("start") or {}, fork["base"]
    return {key: int(start.get(key, 0)) - int(base.get(key, 0)) for key in {*start, *base}}


# --- MirrorMaker 2 checkpoints -----------------------------------------------------------------


@dataclass(frozen=True)
class Checkpoint:
    """One record of ``prod.checkpoints.internal``: a group's offset, upstream and translated."""

    group: str
    topic: str
    partition: int
    upstream_offset: int
    downstream_offset: int
    timestamp: float


def _string(buffer: bytes, at: int) -> tuple[str, int]:
    (length,) = struct.unpack_from(">h", buffer, at)
    at += 2
    return buffer[at : at + length].decode(), at + length


def parse_checkpoint(key: bytes, value: bytes, timestamp: float) -> Checkpoint:
    """MirrorMaker 2's ``Checkpoint`` wire format: key (group, topic, partition); value a version
    (int16), then upstream offset, downstream offset (int64) and metadata (string)."""
    group, at = _string(key, 0)
    topic, at = _string(key, at)
    (partition,) = struct.unpack_from(">i", key, at)
    upstream, downstream = struct.unpack_from(">qq", value, 2)
    return Checkpoint(group, topic, partition, upstream, downstream, timestamp)


def checkpoints_topic(source_alias: str) -> str:
    """Where MirrorMaker 2 writes the checkpoints of the flow from ``source_alias`` (in the
    target cluster): ``prod.checkpoints.internal`` for prod -> dr."""
    return f"{source_alias}.checkpoints.internal"


def read_checkpoints(
    target_bootstrap: str, source_alias: str = "prod"
) -> dict[tuple[str, str, int], Checkpoint]:
    """The newest checkpoint per (group, topic, partition) in the target (dr for the flow from
    prod), read from the beginning."""
    topic = checkpoints_topic(source_alias)
    consumer = _consumer(target_bootstrap)
    newest: dict[tuple[str, str, int], Checkpoint] = {}
    try:
        for partition in _partitions(target_bootstrap, [topic]):
            low, high = consumer.get_watermark_offsets(partition, timeout=CONNECT_TIMEOUT_S)
            if high <= low:
                continue
            consumer.assign([TopicPartition(topic, partition.partition, low)])
            position = low
            deadline = time.monotonic() + 10 * CONNECT_TIMEOUT_S
            while position < high and time.monotonic() < deadline:
                message = consumer.poll(0.5)
                if message is None or message.error() is not None:
                    continue
                position = (message.offset() or position) + 1
                key, value = message.key(), message.value()
                if key is None or value is None:
                    continue
                point = parse_checkpoint(key, value, message.timestamp()[1] / 1000.0)
                newest[(point.group, point.topic, point.partition)] = point
            consumer.unassign()
    finally:
        consumer.close()
    return newest


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split())
