"""Restore Kafka topics from a chain of backups (one full, then its incrementals), resumably.

For each topic: create it if missing, with the saved partition count and config overrides (the
replication factor capped at the target's broker count). For each partition, in chain order, every
record goes back to the SAME partition number, in offset order, through an idempotent producer
(``enable.idempotence``, ``acks=all``, which keeps at most 5 requests in flight and their order).

Exact by default: a restored record is the original's key (``None`` stays ``None``, empty stays
empty), value (a tombstone stays ``None``), headers (the same list: order, repeated names, ``None``
values; nothing added) and timestamp, in the same partition and order. Its offset is the target's.
The timestamp type is what the producer API allows: a producer sets a record's timestamp, and the
broker keeps it as CreateTime in a topic with ``message.timestamp.type=CreateTime`` (Kafka's
default) but replaces it with its own clock in a ``LogAppendTime`` topic; no client can write a
LogAppendTime of its choosing. So an original LogAppendTime record comes back with the same
timestamp value, as CreateTime. A topic saved with ``LogAppendTime`` is created as CreateTime and
switched to LogAppendTime once all its partitions are restored (the records in it keep theirs; new
ones get the broker's clock as before). An EXISTING target topic configured LogAppendTime would
stamp the restored records with the broker's clock: the restore then fails verify, naming the
partition. A record that had no timestamp (pre-0.10 format) gets the producer's clock, which fails
the exact verify too: restore such a chain with ``--lineage-header``.

Re-runs and resumes without touching the records. A partition's restore produces the chain's
records in order, one partition at a time, through the idempotent producer: the broker appends a
producer's batches in order and exactly once, so whatever an interrupted run (Ctrl-C, a SIGKILL,
a failing broker) left in a target partition that held nothing when the restore began is a prefix
of the chain's records for it. Its length is the partition's end offset minus its start offset (a
non-transactional producer leaves no offset holes). A re-run reads those two numbers, checks that
the target's last record is the chain's record at that position (key, value, headers and
timestamp) and produces only the rest; a finished restore re-run produces nothing. This needs no
marker in the records, no state outside the target, and one read of one record per partition.

Someone else writing into the target partition (before the restore, between runs or during one)
breaks the prefix: the partition then holds more records than the chain has, or a last record
that is not the chain's at its position. The restore refuses that partition with one line naming
it (before producing into it) or, if the writes came while it produced, fails the partition's
verify; the other partitions go on. ``append=True`` (``--force``) instead leaves whatever the
target holds and appends every record of the chain after it (a re-run appends again). Retention
deleting restored records from a partition's start (original timestamps older than
``retention.ms``) shortens the prefix from below and is refused the same way. A re-run with
another time range (``since``/``until``) than the first run is refused too, unless the first
run's records happen to be a prefix of the new range's.

Lineage (``lineage_header=True``, ``--lineage-header``): each restored record gets one more header,
appended after its own, ``drkit.source`` = ``<source topic>/<partition>/<source offset>``
(UTF-8), and re-runs find where they stopped from it instead: the target partition's newest
records (a small window from the end, widened only if needed) give the highest source offset
already there, and everything up to it is skipped. That also works in a topic that holds other
records. When the source record itself came from a restore, the LAST ``drkit.source`` header is the
one that counts.

Corruption: a partition's objects are read twice. The first pass verifies each object completely
(SHA-256 and size against the manifest, the zstd stream, every frame checksum and the trailer) and
counts the records in the time range, keeping nothing; only then does the second pass produce. So a
damaged object fails its partition before a single record of it reaches the target, with memory
bounded by one record, at the cost of reading the partition's objects twice (no local spool disk
needed; a restore pod's ephemeral storage may be smaller than a partition). Other partitions go on;
the run raises :class:`KafkaRestoreFailed` at the end, with every partition's outcome.

Verify: after producing a partition, the target partition is read back. Exact: the records from
the offset where the chain starts must be as many as the backup's (in the time range) and their
running SHA-256 (key, value, headers, timestamp of each, in order) must equal the one the second
pass computed over the chain, so a changed, missing, extra or reordered record fails. Lineage: the
records carrying this partition's ``drkit.source`` within the restored offsets are counted (and
checked to be strictly increasing, so a duplicate fails); the count must equal the backup's.

Consumer-group offsets (``committed``, from the backup's ``consumer-groups.json``): a committed
offset C on a source partition means the group has consumed every record below C and resumes at
the first record at or past C. The restore writes the partition's records (those in the time
range) into the target partition in source-offset order, one after the other, from target offset
``base`` (the target partition's log start when it restores into a new or empty topic, or resumes
its own prefix; its end with ``append``). So the record the group reads next lands at
``base + n``, where n is the number of restored records with a source offset below C, and that is
the group's offset on the target. Where the source offsets have no holes, n is
``C - first backed-up source offset``; counting (during the first pass, which reads every record
anyway) stays exact where compaction, transaction markers or aborted records left holes. n lies
between 0 and the number of records restored, which is the clamp: a group behind the backup's
first record (its records were lost to retention before any backup) resumes at the first
restored record, a group past the backup's last record (it committed while the backup ran, past
the recorded end offsets) resumes just after the last restored one, where new records will go.
With the lineage header the target offsets are read back with the records' source offsets
instead: the group goes to the first restored record whose source offset is C or more, else just
past the last one. The offsets are set by ``set_group_offsets`` once every partition is restored.

Time range: ``since <= timestamp < until`` (record timestamps, milliseconds). Objects whose
timestamp range (kept in the manifest) misses it are not read at all. Records without a timestamp
are left out of a time-range restore.
"""

from __future__ import annotations

import hashlib
import logging
import struct
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from confluent_kafka import (
    Consumer,
    ConsumerGroupTopicPartitions,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import (  # type: ignore[attr-defined]  # NewTopic: not in its stubs
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewTopic,
    ResourceType,
)

from drkit.backup.kafka import (
    REQUEST_TIMEOUT_S,
    KafkaPoint,
    PartitionBackup,
    TopicConfig,
    parse_topics_json,
    read_range,
    reader,
    to_record,
)
from drkit.backup.manifest import Manifest, StoredObject
from drkit.kafka_auth import client_settings
from drkit.kafka_frames import TIMESTAMP_NOT_AVAILABLE, FrameError, FrameReader, Record
from drkit.restore.stream import IntegrityError, raw_chunks
from drkit.storage.objectstore import ObjectStore, read_all

log = logging.getLogger("drkit.restore.kafka")

SOURCE_HEADER = "drkit.source"
RESUME_WINDOW = 64
"""Records read from a target partition's end to find where a previous restore stopped."""
POLL_EVERY = 1000
"""Serve delivery reports every this many records: errors surface early, the queue stays short."""
TOPIC_READY_TIMEOUT_S = 30.0
TIMESTAMP_TYPE = "message.timestamp.type"
LOG_APPEND_TIME = "LogAppendTime"

Progress = Callable[[str, int, int], None]
"""Called with (source topic, partition, records produced so far for it) after each record."""


class KafkaRestoreError(RuntimeError):
    """The restore cannot start: a bad chain, an unknown topic, a target that cannot take it."""


class KafkaRestoreFailed(RuntimeError):
    """Some partitions failed; ``result`` has every partition's outcome."""

    def __init__(self, result: KafkaRestoreResult) -> None:
        failed = [p for p in result.partitions if p.status == "failed"]
        lines = [f"{p.source_topic}/{p.partition}: {p.error}" for p in failed]
        super().__init__(
            f"{len(failed)} of {len(result.partitions)} partitions failed to restore:\n"
            + "\n".join(lines)
        )
        self.result = result


@dataclass
class PartitionOutcome:
    source_topic: str
    partition: int
    target_topic: str
    status: str = "pending"
    """``restored``, ``skipped`` (nothing in the backup or the time range) or ``failed``."""
    expected: int = 0
    """Records of the backup in the time range: what the target must hold after the restore."""
    produced: int = 0
    already_present: int = 0
    """Skipped because an earlier run had restored them."""
    verified: int | None = None
    error: str | None = None
    group_offsets: dict[str, int] = field(default_factory=dict)
    """Consumer group -> its committed offset translated to this target partition."""


@dataclass
class KafkaRestoreResult:
    partitions: list[PartitionOutcome] = field(default_factory=list)
    created_topics: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(p.status != "failed" for p in self.partitions)

    @property
    def produced(self) -> int:
        return sum(p.produced for p in self.partitions)

    def group_offsets(self) -> dict[str, dict[str, dict[str, int]]]:
        """Group -> target topic -> partition (a string) -> translated offset."""
        found: dict[str, dict[str, dict[str, int]]] = {}
        for p in self.partitions:
            for group, offset in p.group_offsets.items():
                by_topic = found.setdefault(group, {}).setdefault(p.target_topic, {})
                by_topic[str(p.partition)] = offset
        return found

    def counts(self) -> dict[str, int]:
        """Verified records per target topic."""
        totals: dict[str, int] = {}
        for p in self.partitions:
            totals[p.target_topic] = totals.get(p.target_topic, 0) + (p.verified or 0)
        return totals


def source_header(topic: str, partition: int, offset: int) -> tuple[str, bytes]:
    return SOURCE_HEADER, f"{topic}/{partition}/{offset}".encode()


def record_digest(record: Record, running: Any | None = None) -> bytes:
    """SHA-256 of what a restore must keep of a record: key, value, headers, timestamp.

    ``None`` and empty are told apart; the offset, partition and timestamp type are left out (the
    target assigns the first, the caller compares the second, the third is CreateTime). With
    ``running`` (a ``hashlib.sha256()``), the same bytes are fed to it as well.
    """
    parts = [_field(record.key), _field(record.value), struct.pack(">q", record.timestamp)]
    parts.append(struct.pack(">I", len(record.headers)))
    for name, value in record.headers:
        parts += [_field(name.encode()), _field(value)]
    data = b"".join(parts)
    if running is not None:
        running.update(data)
    return hashlib.sha256(data).digest()


def _field(value: bytes | None) -> bytes:
    return b"\xff" if value is None else struct.pack(">I", len(value)) + value


def parse_source(
    headers: Sequence[tuple[str, Any]] | Mapping[str, Any] | None,
) -> tuple[str, int, int] | None:
    """(topic, partition, offset) of the last ``drkit.source`` header, if any."""
    pairs = list(headers.items()) if isinstance(headers, Mapping) else list(headers or [])
    for name, value in reversed(pairs):
        if name != SOURCE_HEADER:
            continue
        text = value.decode(errors="replace") if isinstance(value, bytes) else str(value)
        parts = text.rsplit("/", 2)
        if len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit():
            return parts[0], int(parts[1]), int(parts[2])
        return None
    return None


@dataclass(frozen=True)
class _Piece:
    """One backup's share of one partition, and the manifest that holds its object."""

    manifest: Manifest
    entry: PartitionBackup

    @property
    def stored(self) -> StoredObject:
        name = self.entry.object
        for item in self.manifest.objects:
            if item.name == name:
                return item
        raise KafkaRestoreError(
            f"backup {self.manifest.backup_id} lists {self.entry.topic}/{self.entry.partition} "
            f"in object {name!r} but has no such object"
        )


@dataclass(frozen=True)
class _Range:
    since_ms: int | None
    until_ms: int | None

    def wants(self, timestamp: int) -> bool:
        if self.since_ms is None and self.until_ms is None:
            return True
        if timestamp < 0:
            return False
        return (self.since_ms is None or timestamp >= self.since_ms) and (
            self.until_ms is None or timestamp < self.until_ms
        )

    def overlaps(self, entry: PartitionBackup) -> bool:
        if self.since_ms is None and self.until_ms is None:
            return True
        low, high = entry.min_timestamp, entry.max_timestamp
        if low is None or high is None:
            return False
        return (self.since_ms is None or high >= self.since_ms) and (
            self.until_ms is None or low < self.until_ms
        )


def _millis(moment: datetime | None, name: str) -> int | None:
    if moment is None:
        return None
    if moment.tzinfo is None:
        raise ValueError(f"{name}={moment.isoformat()} has no time zone; give one (e.g. UTC)")
    return int(moment.timestamp() * 1000)


def check_chain(manifests: Sequence[Manifest]) -> list[KafkaPoint]:
    """A full backup first, then each incremental built on the one before it."""
    if not manifests:
        raise KafkaRestoreError("no backups given to restore")
    points = [KafkaPoint.of(m) for m in manifests]
    if points[0].incremental_from is not None:
        raise KafkaRestoreError(
            f"backup {manifests[0].backup_id} is incremental on {points[0].incremental_from}; "
            f"a chain starts with a full backup"
        )
    for index in range(1, len(manifests)):
        before, manifest, point = manifests[index - 1], manifests[index], points[index]
        if manifest.store != before.store:
            raise KafkaRestoreError(
                f"backup {manifest.backup_id} is of store {manifest.store!r}, the chain's is "
                f"{before.store!r}"
            )
        if point.incremental_from != before.backup_id:
            raise KafkaRestoreError(
                f"backup {manifest.backup_id} follows {point.incremental_from or 'nothing (full)'}"
                f", not {before.backup_id}: the chain is broken or out of order"
            )
    return points


def restore_kafka(
    manifests: Sequence[Manifest],
    store: ObjectStore,
    bootstrap: str,
    topics: Sequence[str] | None = None,
    rename: Mapping[str, str] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    *,
    client_config: Mapping[str, Any] | None = None,
    progress: Progress | None = None,
    lineage_header: bool = False,
    append: bool = False,
    committed: Mapping[str, Mapping[str, Mapping[str, int]]] | None = None,
) -> KafkaRestoreResult:
    """Restore the chain's topics (or ``topics``) into the cluster at ``bootstrap``.

    ``rename`` maps a backed-up topic to the topic to restore it into. ``lineage_header`` adds
    the ``drkit.source`` header to each record; ``append`` (exact mode) appends the chain after
    whatever the target partitions hold instead of resuming. ``committed`` (group -> source topic
    -> partition -> offset) gives each partition's outcome ``group_offsets``, translated to the
    target (see the module's docstring); nothing is set on the cluster here. Raises
    KafkaRestoreError before producing anything when the request cannot work, and
    KafkaRestoreFailed after the run when any partition failed.
    """
    points = check_chain(manifests)
    window = _Range(_millis(since, "since"), _millis(until, "until"))
    pieces = _pieces_by_partition(manifests, points)
    backed_up = sorted({topic for topic, _ in pieces})
    chosen = list(topics) if topics is not None else backed_up
    unknown = [t for t in [*chosen, *(rename or {})] if t not in backed_up]
    if unknown:
        raise KafkaRestoreError(f"topics {unknown} are not in the backups (they hold {backed_up})")
    targets = {topic: (rename or {}).get(topic, topic) for topic in chosen}
    configs = _topic_configs(manifests, store)
    result = KafkaRestoreResult()
    admin = AdminClient(client_settings(bootstrap, client_config))
    for topic in chosen:
        if _ensure_topic(admin, targets[topic], configs[topic]):
            result.created_topics.append(targets[topic])
    append_time = [t for t in chosen if configs[t].configs.get(TIMESTAMP_TYPE) == LOG_APPEND_TIME]
    producer = Producer(
        {
            **client_settings(bootstrap, client_config),
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 20,
            "queue.buffering.max.kbytes": 64 * 1024,
        }
    )
    consumer = reader(bootstrap, client_config)
    try:
        for (topic, partition), chain in sorted(pieces.items()):
            if topic not in targets:
                continue
            outcome = PartitionOutcome(topic, partition, targets[topic])
            result.partitions.append(outcome)
            restore = _PartitionRestore(store, producer, consumer, outcome, chain, window, progress)
            restore.lineage, restore.append = lineage_header, append
            restore.committed = {
                group: by_partition[str(partition)]
                for group, by_topic in (committed or {}).items()
                if str(partition) in (by_partition := by_topic.get(topic, {}))
            }
            restore.run()
    finally:
        consumer.close()
    for topic in append_time:
        if all(p.status != "failed" for p in result.partitions if p.source_topic == topic):
            _set_log_append_time(admin, targets[topic])
    if not result.ok:
        raise KafkaRestoreFailed(result)
    return result


def _set_log_append_time(admin: AdminClient, name: str) -> None:
    entry = ConfigEntry(
        TIMESTAMP_TYPE, LOG_APPEND_TIME, incremental_operation=AlterConfigOpType.SET
    )
    resource = ConfigResource(ResourceType.TOPIC, name, incremental_configs=[entry])
    for future in admin.incremental_alter_configs([resource]).values():
        future.result(timeout=REQUEST_TIMEOUT_S)


def _pieces_by_partition(
    manifests: Sequence[Manifest], points: Sequence[KafkaPoint]
) -> dict[tuple[str, int], list[_Piece]]:
    pieces: dict[tuple[str, int], list[_Piece]] = {}
    for manifest, point in zip(manifests, points, strict=True):
        for entry in point.partitions:
            pieces.setdefault((entry.topic, entry.partition), []).append(_Piece(manifest, entry))
    return pieces


def _topic_configs(manifests: Sequence[Manifest], store: ObjectStore) -> dict[str, TopicConfig]:
    """Each topic as the newest backup of the chain saw it (partitions are only ever added)."""
    configs: dict[str, TopicConfig] = {}
    for manifest in manifests:
        name = KafkaPoint.of(manifest).topic_configs
        item = next((o for o in manifest.objects if o.name == name), None)
        if item is None:
            raise KafkaRestoreError(f"backup {manifest.backup_id} has no {name} object")
        configs.update(parse_topics_json(read_all(raw_chunks(store, item)), item.key))
    return configs


def _ensure_topic(admin: AdminClient, name: str, config: TopicConfig) -> bool:
    """Create ``name`` as saved unless it exists with enough partitions; True when created."""
    metadata = admin.list_topics(timeout=REQUEST_TIMEOUT_S)
    existing = metadata.topics.get(name)
    if existing is not None and existing.error is None:
        if len(existing.partitions) < config.partitions:
            raise KafkaRestoreError(
                f"target topic {name!r} has {len(existing.partitions)} partitions, the backup "
                f"has {config.partitions}: records must go back to the same partition numbers"
            )
        return False
    replication = max(1, min(config.replication_factor, len(metadata.brokers)))
    settings = dict(config.configs)
    if settings.get(TIMESTAMP_TYPE) == LOG_APPEND_TIME:
        settings[TIMESTAMP_TYPE] = "CreateTime"  # until restored: the records keep their times
    new = NewTopic(
        name,
        num_partitions=config.partitions,
        replication_factor=replication,
        config=settings,
    )
    future = admin.create_topics([new], request_timeout=REQUEST_TIMEOUT_S)[name]
    try:
        future.result()
    except Exception as error:
        code = (
            error.args[0].code() if error.args and isinstance(error.args[0], KafkaError) else None
        )
        if code != KafkaError.TOPIC_ALREADY_EXISTS:
            raise KafkaRestoreError(f"creating topic {name!r} failed: {error}") from error
        return False
    _wait_for_leaders(admin, name, config.partitions)
    log.info("created topic", extra={"topic": name, "partitions": config.partitions})
    return True


def _wait_for_leaders(admin: AdminClient, name: str, partitions: int) -> None:
    deadline = time.monotonic() + TOPIC_READY_TIMEOUT_S
    while time.monotonic() < deadline:
        topic = admin.list_topics(topic=name, timeout=REQUEST_TIMEOUT_S).topics.get(name)
        if (
            topic is not None
            and topic.error is None
            and len(topic.partitions) == partitions
            and all(p.leader >= 0 for p in topic.partitions.values())
        ):
            return
        time.sleep(0.1)
    raise KafkaRestoreError(f"topic {name!r} has no leader for every partition after creation")


def watermarks(consumer: Consumer, topic: str, partition: int) -> tuple[int, int]:
    """(log start, high watermark), retried while a new topic's leadership settles."""
    deadline = time.monotonic() + TOPIC_READY_TIMEOUT_S
    while True:
        try:
            low, high = consumer.get_watermark_offsets(
                TopicPartition(topic, partition), timeout=REQUEST_TIMEOUT_S
            )
            return int(low), int(high)
        except KafkaException as error:
            code = error.args[0].code() if error.args else None
            if code not in _SETTLING or time.monotonic() > deadline:
                raise
            time.sleep(0.2)


_SETTLING = {
    KafkaError.NOT_LEADER_FOR_PARTITION,
    KafkaError.LEADER_NOT_AVAILABLE,
    KafkaError.UNKNOWN_TOPIC_OR_PART,
}


class _PartitionRestore:
    """Verify, resume, produce and verify again, for one source partition."""

    def __init__(
        self,
        store: ObjectStore,
        producer: Producer,
        consumer: Consumer,
        outcome: PartitionOutcome,
        chain: list[_Piece],
        window: _Range,
        progress: Progress | None,
    ) -> None:
        self.store = store
        self.producer = producer
        self.consumer = consumer
        self.outcome = outcome
        self.pieces = [p for p in chain if p.entry.object is not None and window.overlaps(p.entry)]
        self.window = window
        self.progress = progress
        self.errors: list[str] = []
        self.first_wanted = -1
        self.last_wanted = -1
        self.lineage = False
        self.append = False
        self.base = 0
        """Exact mode: the target offset of the chain's first record (in the range)."""
        self.keep_at = -1
        """Exact mode: the index (among records in the range) whose digest the first pass keeps."""
        self.kept: bytes | None = None
        self.chain_digest = hashlib.sha256()
        self.committed: dict[str, int] = {}
        """Group -> committed source offset on this partition."""
        self.below: dict[str, int] = {}
        """Group -> records in the range with a source offset below its committed one."""

    @property
    def label(self) -> str:
        return f"{self.outcome.source_topic}/{self.outcome.partition}"

    def run(self) -> None:
        outcome = self.outcome
        try:
            if self.lineage:
                outcome.expected = self._verify_objects()
                if outcome.expected == 0:
                    self._skipped()
                    return
                self._produce(self._restored_up_to())
                counted = self._count_restored()
            else:
                present = self._present()
                outcome.expected = self._verify_objects()
                if outcome.expected == 0:
                    self._skipped()
                    return
                self._check_prefix(present)
                self._produce(present - 1, by_index=True)
                counted = self._count_exact()
                outcome.group_offsets = {
                    group: self.base + below for group, below in self.below.items()
                }
            outcome.verified = counted
            if counted != outcome.expected:
                raise IntegrityError(
                    f"{self.label} -> {outcome.target_topic}: the backup has {outcome.expected} "
                    f"records to restore, the target holds {counted}"
                )
            outcome.status = "restored"
        except Exception as error:  # a failed partition must not stop the others
            outcome.status = "failed"
            outcome.error = str(error)
            log.error("partition restore failed: %s", error)

    def _skipped(self) -> None:
        """Nothing to restore here: a group's offset is where the next record will go."""
        self.outcome.status = "skipped"
        if self.committed:
            _, high = watermarks(self.consumer, self.outcome.target_topic, self.outcome.partition)
            at = high if self.lineage else self.base
            self.outcome.group_offsets = dict.fromkeys(self.committed, at)

    def _records(self, piece: _Piece) -> Iterator[Record]:
        item = piece.stored
        frames = FrameReader(raw_chunks(self.store, item), f"{self.store.name}/{item.key}")
        try:
            header = frames.read_header()
            entry = piece.entry
            if (header.topic, header.partition) != (entry.topic, entry.partition):
                raise IntegrityError(
                    f"{item.key} holds {header.topic}/{header.partition}, the manifest of "
                    f"{piece.manifest.backup_id} says {entry.topic}/{entry.partition}"
                )
            yield from frames
        except FrameError as error:
            raise IntegrityError(str(error)) from error
        assert frames.trailer is not None
        if frames.trailer.records != piece.entry.records:
            raise IntegrityError(
                f"{item.key} holds {frames.trailer.records} records, its manifest says "
                f"{piece.entry.records}"
            )

    def _verify_objects(self) -> int:
        """First pass: every object read through and checked; the records in the range counted."""
        wanted = 0
        self.below = dict.fromkeys(self.committed, 0)
        for piece in self.pieces:
            for record in self._records(piece):
                if self.window.wants(record.timestamp):
                    if wanted == self.keep_at:
                        self.kept = record_digest(record)
                    wanted += 1
                    for group, offset in self.committed.items():
                        if record.offset < offset:
                            self.below[group] += 1
                    if self.first_wanted < 0:
                        self.first_wanted = record.offset
                    self.last_wanted = record.offset
        return wanted

    def _present(self) -> int:
        """Exact mode: how many of the chain's records the target partition holds already."""
        low, high = watermarks(self.consumer, self.outcome.target_topic, self.outcome.partition)
        if self.append:
            self.base = high
            return 0
        self.base = low
        self.keep_at = high - low - 1
        return high - low

    def _check_prefix(self, present: int) -> None:
        """What the target holds must be the chain's first ``present`` records (the last one
        compared): anything else was written by someone else; refuse before producing."""
        if present == 0:
            return
        target, partition = self.outcome.target_topic, self.outcome.partition
        where = f"target {target}/{partition}"
        advice = "restore into another topic (--rename) or pass --force to append"
        if present > self.outcome.expected:
            raise TargetMismatchError(
                f"{where} holds {present} records, the backup has {self.outcome.expected} for "
                f"it: it holds other records; {advice}"
            )
        last = self.base + present - 1
        found = list(read_range(self.consumer, target, partition, last, last + 1))
        if not found or record_digest(to_record(found[-1])) != self.kept:
            raise TargetMismatchError(
                f"{where}: its record at offset {last} is not the backup's record #{present} of "
                f"the partition (key, value, headers, timestamp): it holds other records; "
                f"{advice}"
            )

    def _count_exact(self) -> int:
        """Exact mode: the target's records from ``base``, counted and digested in order; the
        digest must be the chain's."""
        target, partition = self.outcome.target_topic, self.outcome.partition
        low, high = watermarks(self.consumer, target, partition)
        if low > self.base:
            raise IntegrityError(
                f"{target}/{partition}: records from offset {self.base} were deleted (log start "
                f"{low}), by retention or by someone else"
            )
        count, running = 0, hashlib.sha256()
        for message in read_range(self.consumer, target, partition, self.base, high):
            record_digest(to_record(message), running)
            count += 1
        if count == self.outcome.expected and running.digest() != self.chain_digest.digest():
            raise IntegrityError(
                f"{target}/{partition}: the {count} records from offset {self.base} differ from "
                f"the backup's (key, value, headers or timestamp changed, or another writer)"
            )
        return count

    def _restored_up_to(self) -> int:
        """The highest source offset of this partition already in the target, else -1."""
        target, partition = self.outcome.target_topic, self.outcome.partition
        low, high = watermarks(self.consumer, target, partition)
        size = RESUME_WINDOW
        while True:
            begin = max(low, high - size)
            found = -1
            for message in read_range(self.consumer, target, partition, begin, high):
                source = parse_source(message.headers())
                if source is not None and source[:2] == (self.outcome.source_topic, partition):
                    found = max(found, source[2])
            if found >= 0 or begin == low:
                return found
            size *= 8

    def _produce(self, done: int, by_index: bool = False) -> None:
        """Second pass: every record in the range past ``done`` (its source offset, or with
        ``by_index`` its index among the records in the range), in order."""
        outcome = self.outcome
        index = -1

        def delivered(error: KafkaError | None, _message: Message) -> None:
            if error is not None:
                self.errors.append(error.str())

        try:
            for piece in self.pieces:
                for record in self._records(piece):
                    if not self.window.wants(record.timestamp):
                        continue
                    index += 1
                    if not self.lineage:
                        record_digest(record, self.chain_digest)
                    if (index if by_index else record.offset) <= done:
                        outcome.already_present += 1
                        continue
                    self._send(record, delivered)
                    outcome.produced += 1
                    if self.progress is not None:
                        self.progress(outcome.source_topic, outcome.partition, outcome.produced)
                    if outcome.produced % POLL_EVERY == 0:
                        self.producer.poll(0)
                        self._raise_delivery_errors()
        except BaseException:
            # An interruption (Ctrl-C, a failing hook, a damaged object) stops the reading, not
            # the records already handed over: they are delivered, so the target holds an exact
            # prefix and a re-run continues right after it. A killed process leaves a prefix too.
            self.producer.flush(REQUEST_TIMEOUT_S)
            raise
        remaining = self.producer.flush(REQUEST_TIMEOUT_S * 4)
        if remaining:
            raise KafkaDeliveryError(f"{self.label}: {remaining} records still undelivered")
        self._raise_delivery_errors()

    def _send(
        self, record: Record, delivered: Callable[[KafkaError | None, Message], None]
    ) -> None:
        outcome = self.outcome
        headers: list[tuple[str, str | bytes | None]] = list(record.headers)
        if self.lineage:
            headers.append(source_header(outcome.source_topic, record.partition, record.offset))
        timestamp = 0 if record.timestamp_type == TIMESTAMP_NOT_AVAILABLE else record.timestamp
        while True:
            try:
                self.producer.produce(
                    outcome.target_topic,
                    key=record.key,
                    value=record.value,
                    partition=record.partition,
                    timestamp=max(timestamp, 0),
                    headers=headers,
                    on_delivery=delivered,
                )
                return
            except BufferError:
                self.producer.poll(0.5)  # the queue is full: wait for deliveries

    def _raise_delivery_errors(self) -> None:
        if self.errors:
            raise KafkaDeliveryError(
                f"{self.label} -> {self.outcome.target_topic}: {len(self.errors)} records not "
                f"delivered, first: {self.errors[0]}"
            )

    def _count_restored(self) -> int:
        """Records of this partition's restore in the target, checking each follows the last."""
        target, partition = self.outcome.target_topic, self.outcome.partition
        low, high = watermarks(self.consumer, target, partition)
        count, previous, last_target = 0, -1, -1
        groups: dict[str, int] = {}
        for message in read_range(self.consumer, target, partition, low, high):
            source = parse_source(message.headers())
            if source is None or source[:2] != (self.outcome.source_topic, partition):
                continue
            offset = source[2]
            if not self.first_wanted <= offset <= self.last_wanted:
                continue
            at = message.offset()
            assert at is not None
            last_target = at
            for group, committed in self.committed.items():
                if group not in groups and offset >= committed:
                    groups[group] = at
            if offset <= previous:
                raise IntegrityError(
                    f"{target}/{partition} at offset {message.offset()}: source offset {offset} "
                    f"after {previous}: a duplicate or out-of-order record"
                )
            previous = offset
            count += 1
        past = last_target + 1 if last_target >= 0 else high
        self.outcome.group_offsets = {g: groups.get(g, past) for g in self.committed}
        return count


class KafkaDeliveryError(RuntimeError):
    """The broker did not take some records."""


class TargetMismatchError(RuntimeError):
    """A target partition holds records that are not a prefix of the chain's: someone else's."""


class GroupOffsetsError(RuntimeError):
    """Setting a consumer group's offsets failed, or they read back different."""


def active_groups(admin: AdminClient, groups: Sequence[str]) -> dict[str, int]:
    """The groups among ``groups`` with members on the cluster, and how many each has. A group
    the cluster does not know has none."""
    if not groups:
        return {}
    active = {}
    futures = admin.describe_consumer_groups(list(groups), request_timeout=REQUEST_TIMEOUT_S)
    for group, future in futures.items():
        try:
            members = len(future.result().members or [])
        except KafkaException as error:
            code = error.args[0].code() if error.args else None
            if code == KafkaError.GROUP_ID_NOT_FOUND:
                continue
            raise
        if members:
            active[group] = members
    return active


def set_group_offsets(
    bootstrap: str,
    offsets: Mapping[str, Mapping[str, Mapping[str, int]]],
    client_config: Mapping[str, Any] | None = None,
) -> dict[str, int]:
    """Commit each group's translated offsets (group -> topic -> partition -> offset) on the
    cluster, refuse a group that has members, and read them back; partitions set per group."""
    admin = AdminClient(client_settings(bootstrap, client_config))
    busy = active_groups(admin, sorted(offsets))
    if busy:
        named = ", ".join(f"{g} ({n} members)" for g, n in sorted(busy.items()))
        raise GroupOffsetsError(
            f"consumer groups active on the target: {named}; stop their consumers first"
        )
    done = {}
    for group, by_topic in sorted(offsets.items()):
        wanted = [
            TopicPartition(topic, int(partition), offset)
            for topic, partitions in sorted(by_topic.items())
            for partition, offset in sorted(partitions.items())
        ]
        if not wanted:
            continue
        request = [ConsumerGroupTopicPartitions(group, wanted)]
        future = admin.alter_consumer_group_offsets(request, request_timeout=REQUEST_TIMEOUT_S)
        try:
            future[group].result()
            back = admin.list_consumer_group_offsets(
                [
                    ConsumerGroupTopicPartitions(
                        group, [TopicPartition(t.topic, t.partition) for t in wanted]
                    )
                ],
                request_timeout=REQUEST_TIMEOUT_S,
            )[group].result()
        except KafkaException as error:
            raise GroupOffsetsError(f"consumer group {group!r}: {error}") from error
        found = {(t.topic, t.partition): t.offset for t in back.topic_partitions or []}
        differ = [t for t in wanted if found.get((t.topic, t.partition)) != t.offset]
        if differ:
            first = differ[0]
            raise GroupOffsetsError(
                f"consumer group {group!r}: {first.topic}/{first.partition} reads back "
                f"{found.get((first.topic, first.partition))}, {first.offset} was set"
            )
        done[group] = len(wanted)
    return done


def describe(result: KafkaRestoreResult) -> str:
    """One line per partition, for a person."""
    lines = [f"created topics: {', '.join(result.created_topics) or 'none'}"]
    lines += [
        f"{p.source_topic}/{p.partition} -> {p.target_topic}/{p.partition}: {p.status}, "
        f"{p.produced} produced, {p.already_present} already there, {p.verified} verified"
        + (f" ({p.error})" if p.error else "")
        for p in result.partitions
    ]
    return "\n".join(lines)
