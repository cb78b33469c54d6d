"""Apache Kafka's MirrorMaker 2 between the local regions' brokers: prod -> dr.

It runs as Kafka's own dedicated ``connect-mirror-maker`` process (main class
``org.apache.kafka.connect.mirror.MirrorMaker``, the one ``connect-mirror-maker.sh`` starts), from
the jars ``ensure_mirror_maker_jars`` fetched from Maven Central, the broker's version. It:

- mirrors the critical topics under the same names (``IdentityReplicationPolicy``), so clients
  that move to dr read and write the topics they know;
- emits checkpoints (``prod.checkpoints.internal`` in dr: per consumer group and partition, the
  upstream offset and the translated downstream one) and syncs the groups' committed offsets into
  dr, so a consumer that moves resumes where it stopped;
- emits heartbeats to dr's ``heartbeats`` topic, which the lag reading uses to tell a live
  mirror from a dead one.

The intervals are seconds, not minutes as in Kafka's defaults: on a laptop-sized stack the
checkpoints must be fresh enough to measure a 30-second RPO against. ``offset.lag.max=0`` makes
MirrorMaker write an offset sync for every record, so offsets translate exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from confluent_kafka.admin import AdminClient

from drkit.local.kafka import _java, ensure_mirror_maker_jars
from drkit.local.process import LocalServer, ManagedProcess

MAIN = "org.apache.kafka.connect.mirror.MirrorMaker"
SOURCE_ALIAS = "prod"
TARGET_ALIAS = "dr"
HEARTBEATS_TOPIC = "heartbeats"
CHECKPOINTS_TOPIC = f"{SOURCE_ALIAS}.checkpoints.internal"
START_TIMEOUT_S = 120.0
JVM_OPTIONS = (
    "-Xms64m",
    "-Xmx384m",
    "-XX:+UseSerialGC",
    "-XX:TieredStopAtLevel=1",
    "-Djava.awt.headless=true",
    "-Dorg.slf4j.simpleLogger.showDateTime=true",
    "-Dorg.slf4j.simpleLogger.dateTimeFormat=HH:mm:ss.SSS",
    "-Dorg.slf4j.simpleLogger.log.org.apache.kafka.common.config.AbstractConfig=warn",
    "-Dorg.slf4j.simpleLogger.log.org.apache.kafka.clients=warn",
)


def mirror_properties(
    source: str,
    target: str,
    topics: Sequence[str],
    source_alias: str = SOURCE_ALIAS,
    target_alias: str = TARGET_ALIAS,
) -> dict[str, str]:
    """The dedicated-mode config: one flow, prod -> dr (dr -> prod for a failback's reversed
    mirror), of ``topics`` and every group."""
    flow = f"{source_alias}->{target_alias}"
    single_replica = {
        f"{name}.replication.factor": "1"
        for name in (
            "checkpoints.topic",
            "heartbeats.topic",
            "offset-syncs.topic",
            "offset.storage",
            "status.storage",
            "config.storage",
        )
    }
    return {
        "clusters": f"{source_alias}, {target_alias}",
        f"{source_alias}.bootstrap.servers": source,
        f"{target_alias}.bootstrap.servers": target,
        f"{flow}.enabled": "true",
        f"{target_alias}->{source_alias}.enabled": "false",
        f"{flow}.topics": "|".join(topics) if topics else "^$",
        f"{flow}.groups": ".*",
        "replication.policy.class": "org.apache.kafka.connect.mirror.IdentityReplicationPolicy",
        "replication.factor": "1",
        **single_replica,
        "emit.checkpoints.enabled": "true",
        "emit.checkpoints.interval.seconds": "1",
        "sync.group.offsets.enabled": "true",
        "sync.group.offsets.interval.seconds": "1",
        "emit.heartbeats.enabled": "true",
        "emit.heartbeats.interval.seconds": "1",
        "refresh.topics.interval.seconds": "2",
        "refresh.groups.interval.seconds": "2",
        "offset.lag.max": "0",
        "sync.topic.configs.enabled": "true",
        "sync.topic.acls.enabled": "false",
        "tasks.max": "1",
        # The mirrored records keep their timestamps; a short linger keeps the lag small.
        f"{target_alias}.producer.linger.ms": "5",
        f"{source_alias}.consumer.fetch.max.wait.ms": "100",
        "dedicated.mode.enable.internal.rest": "false",
    }


class LocalMirrorMaker(LocalServer):
    """``connect-mirror-maker`` for the prod -> dr flow, ready once dr has a heartbeat."""

    def __init__(
        self, workdir: Path, source_bootstrap: str, target_bootstrap: str, topics: Sequence[str]
    ) -> None:
        self.workdir = workdir
        self.source_bootstrap = source_bootstrap
        self.target_bootstrap = target_bootstrap
        self.topics = list(topics)
        self._process: ManagedProcess | None = None

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    @property
    def log_path(self) -> Path:
        return self.workdir / "mirror-maker.log"

    @property
    def config_path(self) -> Path:
        return self.workdir / "mm2.properties"

    def start(self) -> None:
        lib = ensure_mirror_maker_jars()
        self.workdir.mkdir(parents=True, exist_ok=True)
        settings = mirror_properties(self.source_bootstrap, self.target_bootstrap, self.topics)
        self.config_path.write_text("".join(f"{k} = {v}\n" for k, v in settings.items()))
        command = [
            _java(),
            *JVM_OPTIONS,
            "-cp",
            f"{lib}/*",
            MAIN,
            str(self.config_path),
            # After the file: argparse4j's --clusters takes every argument that follows it.
            "--clusters",
            TARGET_ALIAS,
        ]
        self._process = ManagedProcess("mirror-maker", command, self.log_path, cwd=self.workdir)
        self._process.start()
        target = self.target_bootstrap
        self._process.wait_until(
            lambda: _topic_has_records(target, HEARTBEATS_TOPIC),
            START_TIMEOUT_S,
            f"heartbeats in {TARGET_ALIAS}'s {HEARTBEATS_TOPIC} topic",
        )

    def stop(self) -> None:
        if self._process is not None:
            self._process.stop(timeout=30.0)
            self._process = None


def _topic_has_records(bootstrap: str, topic: str) -> bool:
    from confluent_kafka import Consumer, TopicPartition

    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 3})
    metadata = admin.list_topics(topic=topic, timeout=2)
    found = metadata.topics.get(topic)
    if found is None or found.error is not None:
        return False
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "drkit-probe", "log_level": 3})
    try:
        for partition in found.partitions:
            _, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=2)
            if high > 0:
                return True
        return False
    finally:
        consumer.close()
