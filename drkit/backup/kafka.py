"""Kafka: every record of the configured topics, whole, up to offsets recorded at the start.

The consistent point is the set of end offsets (last stable offsets, i.e. the high watermark less
any open transaction) of every partition, read once before anything is consumed: the backup holds
exactly the committed records below those offsets, however much the application writes meanwhile.
Each partition is read with ``assign`` at an explicit offset and streamed through the framed
format of :mod:`drkit.kafka_frames` into one object, ``topics/<topic>/<partition>.kfr``. The
consumer has a throwaway ``group.id`` (librdkafka insists on one) but never joins a group and never
commits, so the application's consumer groups and their lag are untouched.

Incremental: given the previous backup's manifest, each partition starts at the end offset that
backup recorded. When the log start offset has moved past it (retention or ``DeleteRecords`` ran
between the two backups), the missing range is recorded in the manifest under
``lost_to_retention`` and in ``warnings``: that data is gone from Kafka, and failing the backup
would only lose the records that still exist too. A partition with nothing new writes no object.

Topic configuration (partition count, replication factor and the dynamic, non-default config
overrides) goes into ``topics.json``, so a restore can create the topic as it was.

Consumer groups: every group's committed offsets on the backed-up topics go into
``consumer-groups.json`` (listed in the manifest, written in the same run), read right after the
end offsets, so a restore can set each group where it was (``restore.kafka --groups``). A group
may commit past the recorded end offsets while the backup runs: the restore clamps those to the
end of what it restored, which is where the group resumes after the backup's last record.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import confluent_kafka
from confluent_kafka import (
    Consumer,
    ConsumerGroupTopicPartitions,
    IsolationLevel,
    KafkaError,
    KafkaException,
    Message,
    TopicCollection,
    TopicPartition,
)
from confluent_kafka.admin import (  # type: ignore[attr-defined]  # not all names are in its stubs
    AdminClient,
    ConfigResource,
    ConfigSource,
    OffsetSpec,
    ResourceType,
)
from pydantic import BaseModel, ConfigDict

from drkit.backup.engine import BackupSession, Capture
from drkit.backup.manifest import Manifest, parse_backup_prefix
from drkit.bounds import io_bounds
from drkit.kafka_auth import client_settings
from drkit.kafka_format import store_reader_blind, store_reader_once
from drkit.kafka_frames import VERSION as FRAME_VERSION
from drkit.kafka_frames import FrameWriter, ObjectHeader, Record, encode
from drkit.kafka_topics import StoredSnapshot, store_snapshot, store_snapshot_as
from drkit.storage.objectstore import ObjectStoreError
from stackmodels.kafka_access import READER_GROUP_PREFIX

log = logging.getLogger("drkit.backup.kafka")

KIND = "kafka"
TOPICS_OBJECT = "topics.json"
GROUPS_OBJECT = "consumer-groups.json"
GROUPS_CONTENT = "Kafka consumer groups' committed offsets on the backed-up topics (JSON)"
FRAMES_CONTENT = f"Kafka records, drkit framed format v{FRAME_VERSION} (drkit.kafka_frames)"
TOPICS_CONTENT = "Kafka topic configs: partitions, replication factor, config overrides (JSON)"
REQUEST_TIMEOUT_S = 30.0
IDLE_TIMEOUT_S = 60.0
"""``read_range``'s default: a partition that yields nothing for this long below its recorded end
offset fails the read. A backup uses the kit's stall bound instead (``DRKIT_STALL_TIMEOUT``)."""


class KafkaBackupError(RuntimeError):
    """The cluster did not give what the backup needs; the message names topic and partition."""


def partition_object(topic: str, partition: int) -> str:
    return f"topics/{topic}/{partition}.kfr"


# --- what the manifest's consistent_point holds --------------------------------------------------


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PartitionBackup(_Model):
    """One partition's share of a backup: the offsets read and what the object holds."""

    topic: str
    partition: int
    start_offset: int
    end_offset: int
    object: str | None
    records: int
    first_offset: int = -1
    last_offset: int = -1
    min_timestamp: int | None = None
    max_timestamp: int | None = None


class RetentionGap(_Model):
    """Offsets ``[from_offset, to_offset)`` were deleted from Kafka before a backup read them."""

    topic: str
    partition: int
    from_offset: int
    to_offset: int


class KafkaPoint(_Model):
    """The ``consistent_point`` of a Kafka manifest. Partition keys are strings (JSON's)."""

    end_offsets: dict[str, dict[str, int]]
    start_offsets: dict[str, dict[str, int]]
    incremental_from: str | None
    cluster_id: str | None
    topic_ids: dict[str, str] = {}
    """Kafka's id of each topic: a deleted and recreated topic gets a new one."""
    isolation_level: str = "read_committed"
    partitions: list[PartitionBackup]
    lost_to_retention: list[RetentionGap] = []
    warnings: list[str] = []
    topic_configs: str = TOPICS_OBJECT
    consumer_groups: str | None = None
    """The object with every consumer group's committed offsets on the backed-up topics
    (``GROUPS_OBJECT``); None in backups taken before groups were kept."""

    @classmethod
    def of(cls, manifest: Manifest) -> KafkaPoint:
        if manifest.kind != KIND:
            raise ValueError(
                f"backup {manifest.backup_id} is a {manifest.kind!r} backup, not Kafka"
            )
        return cls.model_validate(manifest.consistent_point)


class TopicConfig(_Model):
    partitions: int
    replication_factor: int
    configs: dict[str, str]


# --- talking to the cluster --------------------------------------------------------------------


def reader(bootstrap: str, extra: Mapping[str, Any] | None = None) -> Consumer:
    """A consumer that only reads assigned partitions: it never joins a group or commits."""
    return Consumer(
        {
            **client_settings(bootstrap, extra),
            "group.id": f"{READER_GROUP_PREFIX}{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "enable.partition.eof": True,
            "isolation.level": "read_committed",
            "auto.offset.reset": "error",
            # Bounded prefetch: memory stays small whatever the partition's size.
            "queued.max.messages.kbytes": 16 * 1024,
            "fetch.max.bytes": 16 * 1024 * 1024,
            # At the end of a log the broker holds a fetch this long before answering "nothing
            # new"; a range that ends in transaction markers waits for that answer.
            "fetch.wait.max.ms": 100,
        }
    )


def read_range(
    consumer: Consumer,
    topic: str,
    partition: int,
    start: int,
    end: int,
    idle_timeout: float = IDLE_TIMEOUT_S,
) -> Iterator[Message]:
    """The committed records of one partition with ``start <= offset < end``, in order.

    Offsets have holes (compaction, transaction markers, aborted transactions), so the range ends
    at the first record at or past ``end`` or when the reader reaches the end of the log there.
    """
    if start >= end:
        return
    consumer.assign([TopicPartition(topic, partition, start)])
    idle_since = time.monotonic()
    try:
        while True:
            # consume() waits for a full batch or its timeout, so wait for one message with
            # poll() and then take whatever else is already fetched without waiting.
            first = consumer.poll(0.5)
            messages = [] if first is None else [first, *consumer.consume(1000, 0)]
            if not messages:
                if time.monotonic() - idle_since > idle_timeout:
                    raise KafkaBackupError(
                        f"{topic}/{partition}: nothing read for {idle_timeout:.0f}s while reading "
                        f"offsets [{start}, {end})"
                    )
                continue
            idle_since = time.monotonic()
            for message in messages:
                if message.topic() != topic or message.partition() != partition:
                    continue  # left over from a previous assignment
                offset = message.offset()
                assert offset is not None
                error = message.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        if offset >= end:
                            return
                        continue
                    raise KafkaBackupError(
                        f"{topic}/{partition}: reading offsets [{start}, {end}): {error.str()}"
                    )
                if offset >= end:
                    return
                if offset >= start:
                    yield message
                if offset == end - 1:
                    return  # the last offset of the range: no need to wait for the log's end
    finally:
        consumer.unassign()


def to_record(message: Message) -> Record:
    timestamp_type, timestamp = message.timestamp()
    partition, offset = message.partition(), message.offset()
    assert partition is not None and offset is not None
    raw = message.headers() or []
    pairs = raw.items() if isinstance(raw, dict) else raw  # a consumer returns a list
    headers = tuple(
        (name, value.encode() if isinstance(value, str) else value) for name, value in pairs
    )
    return Record(
        partition=partition,
        offset=offset,
        timestamp=timestamp,
        timestamp_type=timestamp_type,
        key=message.key(),
        value=message.value(),
        headers=headers,
    )


def list_offsets(
    admin: AdminClient, partitions: list[TopicPartition], spec: Any
) -> dict[tuple[str, int], int]:
    """Offsets by (topic, partition) as the committed-read view sees them."""
    if not partitions:
        return {}
    futures = admin.list_offsets(
        {TopicPartition(p.topic, p.partition): spec for p in partitions},
        isolation_level=IsolationLevel.READ_COMMITTED,
        request_timeout=REQUEST_TIMEOUT_S,
    )
    result = {}
    for key, future in futures.items():
        try:
            result[(key.topic, key.partition)] = int(future.result().offset)
        except KafkaException as error:
            raise KafkaBackupError(
                f"{key.topic}/{key.partition}: listing offsets failed: {error}"
            ) from error
    return result


def topic_ids(admin: AdminClient, topics: list[str]) -> dict[str, str]:
    """Kafka's topic id (a UUID, new for each incarnation of a topic name) per topic."""
    futures = admin.describe_topics(TopicCollection(topics), request_timeout=REQUEST_TIMEOUT_S)
    return {name: str(future.result().topic_id) for name, future in futures.items()}


def describe_topics(admin: AdminClient, topics: list[str]) -> dict[str, TopicConfig]:
    """Partitions, replication factor and the overrides set on each topic (not the defaults)."""
    metadata = admin.list_topics(timeout=REQUEST_TIMEOUT_S)
    missing = [topic for topic in topics if topic not in metadata.topics]
    if missing:
        raise KafkaBackupError(
            f"topics {missing} do not exist on the cluster {metadata.cluster_id} "
            f"(it has {sorted(t for t in metadata.topics if not t.startswith('__'))})"
        )
    futures = admin.describe_configs(
        [ConfigResource(ResourceType.TOPIC, topic) for topic in topics],
        request_timeout=REQUEST_TIMEOUT_S,
    )
    overrides: dict[str, dict[str, str]] = {}
    for resource, future in futures.items():
        entries = {n: e for n, e in future.result().items() if _is_topic_override(e.source)}
        hidden = sorted(name for name, entry in entries.items() if entry.value is None)
        if hidden:  # sensitive values are never returned by the broker, so they cannot be saved
            log.warning("topic %s: sensitive overrides %s are not saved", resource.name, hidden)
        overrides[resource.name] = {
            name: entry.value for name, entry in sorted(entries.items()) if entry.value is not None
        }
    described = {}
    for topic in topics:
        partitions = metadata.topics[topic].partitions
        replicas = max((len(p.replicas) for p in partitions.values()), default=1)
        described[topic] = TopicConfig(
            partitions=len(partitions), replication_factor=replicas, configs=overrides[topic]
        )
    return described


def _is_topic_override(source: object) -> bool:
    expected = ConfigSource.DYNAMIC_TOPIC_CONFIG
    return source == expected or source == expected.value


GroupOffsets = dict[str, dict[str, dict[str, int]]]
"""Committed offsets: group -> topic -> partition (a string, JSON's) -> offset."""


def committed_offsets(admin: AdminClient, topics: list[str]) -> GroupOffsets:
    """Every consumer group's committed offsets on ``topics`` (groups with none there left out).

    The kit's own readers never commit, so they have none. A group the broker cannot answer for
    fails the backup, naming it: offsets silently missing would restore consumers to a guess."""
    listing = admin.list_consumer_groups(request_timeout=REQUEST_TIMEOUT_S).result()
    if listing.errors:
        raise KafkaBackupError(f"listing consumer groups failed: {listing.errors[0]}")
    wanted = set(topics)
    found: GroupOffsets = {}
    names = sorted(
        g.group_id for g in listing.valid if not g.group_id.startswith(READER_GROUP_PREFIX)
    )
    for group in names:
        request = [ConsumerGroupTopicPartitions(group)]
        future = admin.list_consumer_group_offsets(request, request_timeout=REQUEST_TIMEOUT_S)
        try:
            answer = future[group].result()
        except KafkaException as error:
            raise KafkaBackupError(
                f"consumer group {group!r}: reading its offsets failed: {error}"
            ) from error
        for tp in answer.topic_partitions or []:
            if tp.topic in wanted and tp.error is None and tp.offset >= 0:
                found.setdefault(group, {}).setdefault(tp.topic, {})[str(tp.partition)] = tp.offset
    return found


def groups_json(offsets: GroupOffsets) -> bytes:
    return json.dumps({"format": 1, "groups": offsets}, indent=2, sort_keys=True).encode()


def parse_groups_json(data: bytes, source: str) -> GroupOffsets:
    try:
        body = json.loads(data)
        return {
            str(group): {
                str(topic): {str(p): int(o) for p, o in partitions.items()}
                for topic, partitions in by_topic.items()
            }
            for group, by_topic in body["groups"].items()
        }
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise ValueError(f"{source}: not a consumer groups document: {error}") from error


def cluster_id(admin: AdminClient) -> str | None:
    cluster = admin.list_topics(timeout=REQUEST_TIMEOUT_S).cluster_id
    return str(cluster) if cluster else None


# --- the handler -------------------------------------------------------------------------------


@dataclass
class KafkaHandler:
    """Backs up the named topics of one cluster, in full or on top of ``previous``."""

    bootstrap: str
    topics: list[str]
    previous: Manifest | None = None
    client_config: dict[str, Any] = field(default_factory=dict)
    """Authentication settings (:func:`drkit.kafka_auth.client_auth`)."""
    idle_timeout: float | None = None
    """Seconds a partition may yield nothing below its end offset (a stalled broker or path)
    before the backup fails; None: the kit's stall bound, ``DRKIT_STALL_TIMEOUT``."""
    kind: str = KIND

    def backup(self, session: BackupSession) -> Capture:
        if not self.topics:
            raise KafkaBackupError("no topics to back up: the store's config lists none")
        idle_timeout = self.idle_timeout if self.idle_timeout is not None else io_bounds().stall
        admin = AdminClient(client_settings(self.bootstrap, self.client_config))
        cluster = cluster_id(admin)
        warnings: list[str] = []
        described = describe_topics(admin, self.topics)
        ids = topic_ids(admin, self.topics)
        previous = self._previous_end_offsets(cluster, ids, warnings)
        previous_end = previous[1] if previous is not None else {}
        partitions = [
            TopicPartition(topic, number)
            for topic in self.topics
            for number in range(described[topic].partitions)
        ]
        # The consistent point: read before any record is.
        end = list_offsets(admin, partitions, OffsetSpec.latest())  # type: ignore[no-untyped-call]
        log_start = list_offsets(admin, partitions, OffsetSpec.earliest())  # type: ignore[no-untyped-call]
        groups = committed_offsets(admin, self.topics)
        # Not needed past here: its connections go now, not when a failed run's traceback does.
        del admin
        topics_json = _topics_json(described)
        session.write_stream(TOPICS_OBJECT, iter([topics_json]), content=TOPICS_CONTENT)
        self._snapshot_topic_configs(session, topics_json)
        session.write_stream(GROUPS_OBJECT, iter([groups_json(groups)]), content=GROUPS_CONTENT)
        gaps: list[RetentionGap] = []
        starts: dict[tuple[str, int], int] = {}
        for tp in partitions:
            key = (tp.topic, tp.partition)
            before = previous_end.get(tp.topic, {}).get(str(tp.partition))
            starts[key] = self._start_offset(key, before, log_start[key], end[key], gaps, warnings)
        entries: list[PartitionBackup] = []
        counts: dict[str, int] = dict.fromkeys(self.topics, 0)
        consumer = reader(self.bootstrap, self.client_config)
        try:
            for tp in partitions:
                key = (tp.topic, tp.partition)
                entry = self._back_up_partition(
                    session, consumer, *key, starts[key], end[key], idle_timeout
                )
                entries.append(entry)
                counts[tp.topic] += entry.records
        finally:
            consumer.close()
        point = KafkaPoint(
            end_offsets=_by_topic(end),
            start_offsets=_by_topic(starts),
            incremental_from=previous[0] if previous is not None else None,
            cluster_id=cluster,
            topic_ids=ids,
            partitions=entries,
            lost_to_retention=gaps,
            warnings=warnings,
            consumer_groups=GROUPS_OBJECT,
        )
        for warning in warnings:
            log.warning(warning)
        return Capture(
            source={"bootstrap": self.bootstrap, "cluster_id": cluster, "topics": self.topics},
            tool_versions={
                "confluent-kafka": confluent_kafka.version()[0],
                "librdkafka": confluent_kafka.libversion()[0],
                "frame format": str(FRAME_VERSION),
            },
            consistent_point=point.model_dump(mode="json"),
            counts=counts,
        )

    @staticmethod
    def _snapshot_topic_configs(session: BackupSession, topics_json: bytes) -> None:
        """The topics' configuration in the store's ``topic-configs/`` folder when it changed
        since the last stored snapshot, and daily otherwise (drkit.kafka_topics); and the
        format's specification and standalone reader in ``format/drkf-v1/`` when absent
        (drkit.kafka_format). In the vault and the mirror alike, create-only, so a restore
        from the mirror alone has both; in the isolated vault too, where a failure drops the
        third copy only."""
        parsed = parse_backup_prefix(session.prefix + "x")
        if parsed is None:
            return
        errors: list[ObjectStoreError] = []
        moment = datetime.now(UTC)  # one snapshot key in every target
        vault_stored: list[StoredSnapshot] = []
        for target in session.stores:
            try:
                if target is session.isolated:
                    # The writer may only create there (no list, no read: its bucket policy):
                    # the vault's decision, written create-only; "already there" is done.
                    stored_here = store_snapshot_as(
                        target, vault_stored, topics_json, session.encryption_of(target)
                    )
                    readers = store_reader_blind(
                        target, parsed[0], parsed[1], session.encryption_of(target)
                    )
                else:
                    stored_here = store_snapshot(
                        [target],
                        parsed[0],
                        parsed[1],
                        topics_json,
                        moment,
                        session.encryption_of,
                    )
                    readers = store_reader_once(
                        target, parsed[0], parsed[1], session.encryption_of(target)
                    )
                if target is session.vault:
                    vault_stored = stored_here
            except ObjectStoreError as error:
                if target is session.isolated:  # drops the third copy only (drkit.backup.engine)
                    session.skip(target, f"topic configuration not stored: {error}")
                else:
                    errors.append(error)
                continue
            for stored in stored_here:
                log.info(
                    "topic configuration snapshot (%s): stored %s in %s",
                    stored.reason,
                    stored.key,
                    stored.target,
                    extra={"store": parsed[1]},
                )
            for key in readers:
                log.info(
                    "format specification and reader stored: %s in %s",
                    key,
                    target.name,
                    extra={"store": parsed[1]},
                )
        if errors:  # every target was tried; the vault's or the mirror's failure fails the run
            raise errors[0]

    def _previous_end_offsets(
        self, cluster: str | None, ids: dict[str, str], warnings: list[str]
    ) -> tuple[str, dict[str, dict[str, int]]] | None:
        """(previous backup id, its end offsets) to continue from; None for a full backup.

        A chain must mean one history per partition: when a topic was deleted and recreated
        since the previous backup (its Kafka topic id changed), offsets restart and old and new
        records would share offsets, so this backup is full instead.
        """
        if self.previous is None:
            return None
        point = KafkaPoint.of(self.previous)
        if point.cluster_id != cluster:
            warnings.append(
                f"previous backup {self.previous.backup_id} is of cluster {point.cluster_id}, this "
                f"is cluster {cluster}: its offsets mean nothing here, so this backup is full"
            )
            return None
        recreated = sorted(
            topic for topic, old in point.topic_ids.items() if ids.get(topic, old) != old
        )
        if recreated:
            warnings.append(
                f"topics {recreated} were recreated since backup {self.previous.backup_id} "
                "(new topic ids): this backup is full, starting a new chain"
            )
            return None
        return self.previous.backup_id, point.end_offsets

    @staticmethod
    def _start_offset(
        key: tuple[str, int],
        before: int | None,
        log_start: int,
        end: int,
        gaps: list[RetentionGap],
        warnings: list[str],
    ) -> int:
        topic, partition = key
        if before is None:
            return log_start
        if end < before:
            warnings.append(
                f"{topic}/{partition}: end offset {end} is below the previous backup's {before} "
                f"(topic deleted and recreated?): backing it up from its start, {log_start}"
            )
            return log_start
        if log_start > before:
            gap = RetentionGap(
                topic=topic, partition=partition, from_offset=before, to_offset=log_start
            )
            gaps.append(gap)
            warnings.append(
                f"{topic}/{partition}: offsets [{before}, {log_start}) were deleted by retention "
                f"before this backup could read them: up to {log_start - before} records lost "
                f"(data lost to retention, not a backup failure; back up more often than the "
                f"topic's retention)"
            )
            return log_start
        return before

    def _back_up_partition(
        self,
        session: BackupSession,
        consumer: Consumer,
        topic: str,
        partition: int,
        start: int,
        end: int,
        idle_timeout: float,
    ) -> PartitionBackup:
        if start >= end:
            return PartitionBackup(
                topic=topic,
                partition=partition,
                start_offset=start,
                end_offset=end,
                object=None,
                records=0,
            )
        writer = FrameWriter(ObjectHeader(topic, partition, start, end))
        records = (
            to_record(message)
            for message in read_range(consumer, topic, partition, start, end, idle_timeout)
        )
        stored = session.write_stream(
            partition_object(topic, partition), encode(writer, records), content=FRAMES_CONTENT
        )
        return PartitionBackup(
            topic=topic,
            partition=partition,
            start_offset=start,
            end_offset=end,
            object=stored.name,
            records=writer.records,
            first_offset=writer.first_offset,
            last_offset=writer.last_offset,
            min_timestamp=writer.min_timestamp,
            max_timestamp=writer.max_timestamp,
        )


def _by_topic(offsets: Mapping[tuple[str, int], int]) -> dict[str, dict[str, int]]:
    grouped: dict[str, dict[str, int]] = {}
    for (topic, partition), offset in sorted(offsets.items()):
        grouped.setdefault(topic, {})[str(partition)] = offset
    return grouped


def _topics_json(described: Mapping[str, TopicConfig]) -> bytes:
    body = {"format": 1, "topics": {t: c.model_dump() for t, c in sorted(described.items())}}
    return json.dumps(body, indent=2, sort_keys=True).encode()


def parse_topics_json(data: bytes, source: str) -> dict[str, TopicConfig]:
    try:
        body = json.loads(data)
        return {t: TopicConfig.model_validate(c) for t, c in body["topics"].items()}
    except (ValueError, KeyError, TypeError) as error:
        raise ValueError(f"{source}: not a topic config document: {error}") from error


def summary(manifest: Manifest) -> str:
    """One line for a person: records per topic, and what retention took before the backup."""
    point = KafkaPoint.of(manifest)
    kind = f"incremental on {point.incremental_from}" if point.incremental_from else "full"
    counts = ", ".join(f"{topic}: {n}" for topic, n in manifest.counts.items())
    lost = sum(gap.to_offset - gap.from_offset for gap in point.lost_to_retention)
    tail = f"; up to {lost} records lost to retention before this backup" if lost else ""
    return f"Kafka backup {manifest.backup_id} ({kind}): {counts}{tail}"
