"""``mirrormaker2``: Kafka's MirrorMaker 2 mirrors the critical topics into the dr cluster.

- fence, where the old cluster answers: ``max.message.bytes`` of each mirrored topic set to 1, so
  the broker refuses every batch produced to it (MSG_SIZE_TOO_LARGE, whatever the producer's
  ``acks``) until an operator deletes the override; consumers and MirrorMaker still read it. (A
  ``min.insync.replicas`` above the replica count does not fence: Kafka caps it at the replication
  factor.) The clients leave the old cluster when their bootstrap moves;
- replayed: each mirrored partition's end offset in the target against the fenced source's;
- promote: stop the mirroring (the ``connect-mirror-maker`` process, by recorded pid and start
  time), then translate each consumer group's committed offsets into the target cluster from MM2's
  newest checkpoints (a group never moves backwards); done when the mirroring is stopped;
- repoint: the ``kafka-bootstrap`` ConfigMap in the target cluster (the stable name map moves with
  every store);
- post-check: a record produced through the stable name and acknowledged by the target.
"""

from __future__ import annotations

import os
import signal
import time
from typing import Any

from confluent_kafka import ConsumerGroupTopicPartitions, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewTopic,
    ResourceType,
)

from drkit.failover.kinds.base import CONNECT_TIMEOUT_S, Health, Protection, Replayed
from drkit.local.lag import MIRROR_PROCESS, Lag, end_offsets, mirrored_lag, read_checkpoints
from drkit.local.names import StableName
from drkit.local.process import recorded_alive
from stackmodels.config import ProtectionKind

STOP_WAIT_S = 30.0
CHECK_TOPIC = "drkit.failover.checks"
FENCE_MAX_MESSAGE_BYTES = 1


class MirrorMaker2(Protection):
    kind = ProtectionKind.MIRRORMAKER2

    @classmethod
    def stable_name(cls, url: str, region: str) -> StableName:
        """A bootstrap, ``host:port``."""
        host, _, port = url.rpartition(":")
        return StableName(region=region, host=host, port=int(port))

    @classmethod
    def through(cls, url: str, name: StableName) -> str:
        """The bootstrap the name leads to (no credentials: a plain listener)."""
        return name.address

    def _mirror(self) -> dict[str, Any] | None:
        for process in self.sides.state.get("processes", []):
            if process["name"] == MIRROR_PROCESS:
                return dict(process)
        return None

    def _admin(self, bootstrap: str) -> AdminClient:
        return AdminClient(
            {"bootstrap.servers": bootstrap, "log_level": 3, "socket.timeout.ms": 5000}
        )

    def health(self, planned: bool) -> list[Health]:
        def answers() -> str:
            self._admin(self.sides.target.url).list_topics(timeout=CONNECT_TIMEOUT_S)
            return "answers"

        target = self.target_health("cluster", planned, KafkaException, answers)
        mirror = self._mirror()
        running = mirror is not None and recorded_alive(mirror)
        return [
            target,
            Health(
                f"{self.store}: MirrorMaker 2",
                running,
                "mirroring" if running else "not running (lag unknown)",
            ),
            self.source_health("cluster", planned),
        ]

    def lag(self) -> Lag:
        return mirrored_lag(self.sides.state, self.answering_source, self.sides.target.url)

    def _topics(self) -> list[str]:
        return list(self.sides.state.get("mirrored_topics", []))

    def fence(self) -> str:
        topics = self._topics()

        def refuse_writes() -> str:
            fenced = [
                ConfigResource(
                    ResourceType.TOPIC,
                    topic,
                    incremental_configs=[
                        ConfigEntry(
                            "max.message.bytes",
                            str(FENCE_MAX_MESSAGE_BYTES),
                            incremental_operation=AlterConfigOpType.SET,
                        )
                    ],
                )
                for topic in topics
            ]
            admin = self._admin(self.sides.source.url)  # kept until every future is done
            for future in admin.incremental_alter_configs(fenced).values():
                future.result()
            return (
                f"{self.store}: old cluster refuses writes to its {len(topics)} mirrored topics "
                f"(max.message.bytes {FENCE_MAX_MESSAGE_BYTES})"
            )

        return self.fence_source("cluster", KafkaException, refuse_writes)

    def replayed(self) -> Replayed:
        topics = self._topics()
        source = end_offsets(self.sides.source.url, topics)
        target = end_offsets(self.sides.target.url, topics)
        behind = sum(max(0, end - target.get(key, 0)) for key, end in source.items())
        detail = {"source_end_offsets": source, "target_end_offsets": target}
        return Replayed(behind, "records", detail)

    def promoted(self) -> bool:
        """Done when the mirroring is stopped and every group's offset is translated."""
        mirror = self._mirror()
        if mirror is not None and recorded_alive(mirror):
            return False
        return not self._behind_checkpoints()

    def promote(self, planned: bool) -> dict[str, Any]:
        mirror = self._mirror()
        stopped = None
        if mirror is not None and recorded_alive(mirror):
            os.kill(mirror["pid"], signal.SIGTERM)
            deadline = time.monotonic() + STOP_WAIT_S
            while recorded_alive(mirror) and time.monotonic() < deadline:
                time.sleep(0.2)
            if recorded_alive(mirror):
                os.kill(mirror["pid"], signal.SIGKILL)
            stopped = mirror["pid"]
        return {"mirror_maker_stopped": stopped, "groups": self.translate_offsets()}

    def _behind_checkpoints(self) -> dict[str, list[TopicPartition]]:
        """Per group, the partitions whose committed offset in the target is behind MM2's newest
        checkpoint (translated to the target's offsets), at that checkpoint's offset."""
        target = self.sides.target.url
        admin = self._admin(target)
        by_group: dict[str, list[TopicPartition]] = {}
        for (group, topic, partition), point in read_checkpoints(target).items():
            by_group.setdefault(group, []).append(
                TopicPartition(topic, partition, point.downstream_offset)
            )
        behind: dict[str, list[TopicPartition]] = {}
        for group, wanted in sorted(by_group.items()):
            asked = [TopicPartition(p.topic, p.partition) for p in wanted]
            [future] = admin.list_consumer_group_offsets(
                [ConsumerGroupTopicPartitions(group, asked)]
            ).values()
            committed = {(p.topic, p.partition): p.offset for p in future.result().topic_partitions}
            forward = [p for p in wanted if committed.get((p.topic, p.partition), -1) < p.offset]
            if forward:
                behind[group] = forward
        return behind

    def translate_offsets(self) -> dict[str, dict[str, int]]:
        """Move each group's committed offsets in the target up to MM2's newest checkpoint (never
        backwards: a group MM2 already synced, or that moved on in the target, is left alone)."""
        admin = self._admin(self.sides.target.url)
        moved: dict[str, dict[str, int]] = {}
        for group, forward in self._behind_checkpoints().items():
            [altered] = admin.alter_consumer_group_offsets(
                [ConsumerGroupTopicPartitions(group, forward)]
            ).values()
            altered.result()
            moved[group] = {f"{p.topic}-{p.partition}": p.offset for p in forward}
        return moved

    def _kube(self) -> Any | None:
        state, region = self.sides.state, self.sides.target.region
        if not state.get("kubeconfig"):  # written only when every region runs a cluster
            return None
        from pathlib import Path

        from drkit.failover.clients import KubeconfigClients

        return KubeconfigClients(Path(state["kubeconfig"])).api(f"local-{region}")

    def repoint(self, address: str) -> dict[str, Any]:
        from drkit.failover import kube

        api = self._kube()
        if api is None:
            return {"configmap": "none: no cluster in the target region"}
        kube.set_bootstrap_servers(
            api, self.sides.namespace, address, f"failover to {self.sides.target.region}"
        )
        return {"configmap": f"{self.sides.namespace}/{kube.BOOTSTRAP_CONFIGMAP} -> {address}"}

    def repointed(self, address: str) -> bool:
        from drkit.failover import kube

        api = self._kube()
        return api is None or kube.bootstrap_servers(api, self.sides.namespace) == address

    def postcheck(self, url: str) -> dict[str, Any]:
        admin = self._admin(url)
        [created] = admin.create_topics([NewTopic(CHECK_TOPIC, 1, 1)]).values()
        try:
            created.result()
        except KafkaException as error:
            if "TOPIC_ALREADY_EXISTS" not in str(error):
                raise
        producer = Producer(
            {"bootstrap.servers": url, "acks": "all", "message.timeout.ms": 15000, "log_level": 3}
        )
        delivered: list[Any] = []
        producer.produce(
            CHECK_TOPIC,
            value=b"failover post-check",
            on_delivery=lambda error, message: delivered.append((error, message)),
        )
        producer.flush(20)
        if not delivered or delivered[0][0] is not None:
            raise RuntimeError(
                f"{self.store}: the post-check record was not acknowledged: "
                f"{delivered[0][0] if delivered else 'no answer'}"
            )
        return {"wrote": f"{CHECK_TOPIC} offset {delivered[0][1].offset()}"}
