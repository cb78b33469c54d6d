"""``mirrormaker2``: Kafka's MirrorMaker 2 mirrors the critical topics into the dr cluster.

- fence, where the old cluster answers: ``max.message.bytes`` of each mirrored topic set to 1, so
  the broker refuses every batch produced to it (MSG_SIZE_TOO_LARGE, whatever the producer's
  ``acks``) until an operator deletes the override; consumers and MirrorMaker still read it. (A
  ``min.insync.replicas`` above the replica count does not fence: Kafka caps it at the replication
  factor.) The clients leave the old cluster when their bootstrap moves;
- replayed: each mirrored partition's end offset in the target against the fenced source's;
- promote: stop the mirroring (the ``connect-mirror-maker`` process, by recorded pid and start
  time), then translate each consumer group's committed offsets into the target cluster from MM2's
  newest checkpoints (a group never moves backwards), and record the fork (below); done when
  the mirroring is stopped and the fork recorded (a run killed in between resumes by
  recording it: the fork is marked pending before the mirror stops);
- repoint: the ``kafka-bootstrap`` ConfigMap in the target cluster (the stable name map moves with
  every store);
- post-check: a record produced through the stable name and acknowledged by the target;
- rejoin (failback): the old cluster's fence is lifted and a MirrorMaker 2 mirrors back into it
  (dr -> prod after a failover; prod -> dr again once the failback has switched). It starts where
  the promotion left the new cluster (its end offsets, recorded in the state file as the flow's
  fork), written into the mirror's own offset store before it starts, so it copies only what was
  written since, not the history both clusters already hold. Where the two logs' offsets differ
  below the fork (records the old primary took and never mirrored), the lag and the replay
  compare them through the fork (``shift``). Done when the mirror of the flow runs.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
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
from drkit.killpoints import reached
from drkit.local.lag import (
    HEARTBEATS_TOPIC,
    MIRROR_PROCESS,
    Lag,
    end_offsets,
    fork_shift,
    mirrored_lag,
    read_checkpoints,
)
from drkit.local.names import StableName
from drkit.local.process import recorded_alive
from stackmodels.config import ProtectionKind

STOP_WAIT_S = 30.0
CHECK_TOPIC = "drkit.failover.checks"
FENCE_MAX_MESSAGE_BYTES = 1
FORKS = "mirror_forks"
"""The state file's record, per flow (``dr->prod``), of where its mirror started: ``start`` the
source's offsets, ``base`` the target's end offsets then."""
OFFSET_STORE_PARTITIONS = 25
"""Kafka Connect's default ``offset.storage.partitions``: the seed lands where Connect would."""
MIRROR_START_S = 120.0


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
        """The mirror into the target (the forward one, in dr, for a failover)."""
        return self.process(MIRROR_PROCESS, self.sides.target.region)

    @property
    def _flow(self) -> str:
        return f"{self.sides.source.region}->{self.sides.target.region}"

    def _fork(self, flow: str) -> dict[str, Any]:
        from drkit.local.daemon import read_state

        state = read_state(self.sides.project_dir) or self.sides.state
        return dict(state.get(FORKS, {}).get(flow) or {})

    def _shift(self) -> dict[str, int]:
        """Per partition, the source offset of the target's offset 0 (see ``kafka_lag``)."""
        return fork_shift(self._fork(self._flow))

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
        into = self.sides.target.region
        return [
            target,
            Health(
                f"{self.store}: MirrorMaker 2",
                running or mirror is None,
                "mirroring"
                if running
                else "not running (lag unknown)"
                if mirror is not None
                else f"none into {into} yet: a failback's rejoin starts one",
            ),
            self.source_health("cluster", planned),
        ]

    def lag(self) -> Lag:
        from drkit.local.daemon import read_state

        state = read_state(self.sides.project_dir) or self.sides.state  # pids a failback renewed
        return mirrored_lag(
            state,
            self.answering_source,
            self.sides.target.url,
            self.sides.source.region,
            self.sides.target.region,
        )

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
        shift = self._shift()
        behind = sum(
            max(0, end - target.get(key, 0) - shift.get(key, 0)) for key, end in source.items()
        )
        detail = {"source_end_offsets": source, "target_end_offsets": target}
        return Replayed(behind, "records", detail)

    def promoted(self) -> bool:
        """Done when the mirroring is stopped, the fork recorded and every group's offset is
        translated. A promotion killed after stopping the mirror but before recording the fork
        left the fork ``pending``: not done, so ``--resume`` promotes again and records it (the
        promoted cluster has taken nothing since: the names move only after this step)."""
        mirror = self._mirror()
        if mirror is not None and recorded_alive(mirror):
            return False
        if self._fork(self._back).get("pending"):
            return False
        return not self._behind_checkpoints()

    def promote(self, planned: bool) -> dict[str, Any]:
        mirror = self._mirror()
        stopped = None
        self._set_fork(self._back, {"pending": True})  # until the fork below is recorded
        if mirror is not None and recorded_alive(mirror):
            os.kill(mirror["pid"], signal.SIGTERM)
            deadline = time.monotonic() + STOP_WAIT_S
            while recorded_alive(mirror) and time.monotonic() < deadline:
                time.sleep(0.2)
            if recorded_alive(mirror):
                os.kill(mirror["pid"], signal.SIGKILL)
            stopped = mirror["pid"]
        reached("mirrormaker2.stopped")
        fork = self._record_fork()
        return {
            "mirror_maker_stopped": stopped,
            "groups": self.translate_offsets(),
            "fork": fork,
        }

    def _record_fork(self) -> dict[str, int]:
        """The promoted cluster's end offsets once nothing mirrors into it: where a failback's
        mirror back (target -> source) starts, so it copies only what is written from now on."""
        ends = end_offsets(self.sides.target.url, self._topics())
        self._set_fork(self._back, {"start": ends})
        return ends

    @property
    def _back(self) -> str:
        """The flow a failback mirrors along: from the promoted cluster back to the old one."""
        return f"{self.sides.target.region}->{self.sides.source.region}"

    def _set_fork(self, flow: str, fork: dict[str, Any]) -> None:
        from drkit.local.recorded import update_state

        update_state(
            self.sides.project_dir,
            lambda state: state.setdefault(FORKS, {}).__setitem__(flow, fork),
        )

    def _behind_checkpoints(self) -> dict[str, list[TopicPartition]]:
        """Per group, the partitions whose committed offset in the target is behind MM2's newest
        checkpoint (translated to the target's offsets), at that checkpoint's offset."""
        target = self.sides.target.url
        admin = self._admin(target)
        by_group: dict[str, list[TopicPartition]] = {}
        checkpoints = read_checkpoints(target, self.sides.source.region)
        for (group, topic, partition), point in checkpoints.items():
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

    # -- failback --------------------------------------------------------------------------------

    def rejoined(self) -> bool:
        mirror = self._mirror()
        return mirror is not None and recorded_alive(mirror) and "base" in self._fork(self._flow)

    def rejoin(self) -> dict[str, Any]:
        from drkit.local.recorded import start_recorded, update_state

        source, target = self.sides.source, self.sides.target
        topics = self._topics()
        started = time.monotonic()
        self._lift_fence(target.url, topics)
        start = {k: int(v) for k, v in self._fork(self._flow).get("start", {}).items()}
        base = end_offsets(target.url, topics)
        seeded = self._seed_offsets(target.url, source.region, start)
        flow = self._flow
        update_state(
            self.sides.project_dir,
            lambda state: state.setdefault(FORKS, {}).__setitem__(
                flow, {"start": start, "base": base}
            ),
        )
        if self._mirror() is not None:
            entry = start_recorded(self.sides.project_dir, MIRROR_PROCESS, target.region)
        else:
            entry = self._start_reversed(topics)
        deadline = time.monotonic() + MIRROR_START_S
        while not _heartbeat_since(target.url, started):
            if time.monotonic() > deadline or not recorded_alive(entry):
                raise RuntimeError(
                    f"{self.store}: MirrorMaker 2 {flow} gave no heartbeat within "
                    f"{MIRROR_START_S:.0f}s (log {entry['log']})"
                )
            time.sleep(0.5)
        return {
            "mirror": flow,
            "pid": entry["pid"],
            "fence": "lifted",
            "starts_at": start or "the beginning: no fork recorded (records may repeat)",
            "seeded_partitions": seeded,
            "start_seconds": round(time.monotonic() - started, 3),
        }

    def _lift_fence(self, bootstrap: str, topics: list[str]) -> None:
        resources = [
            ConfigResource(
                ResourceType.TOPIC,
                topic,
                incremental_configs=[
                    ConfigEntry(
                        "max.message.bytes", None, incremental_operation=AlterConfigOpType.DELETE
                    )
                ],
            )
            for topic in topics
        ]
        admin = self._admin(bootstrap)
        for future in admin.incremental_alter_configs(resources).values():
            future.result()

    def _seed_offsets(self, bootstrap: str, source_alias: str, start: dict[str, int]) -> int:
        """Write the mirror's starting point into its Connect offset store in the target
        (``mm2-offsets.<source>.internal``), in Connect's own format: MirrorSourceTask resumes
        at the stored offset + 1."""
        topic = f"mm2-offsets.{source_alias}.internal"
        admin = self._admin(bootstrap)
        if topic not in admin.list_topics(timeout=10).topics:
            new = NewTopic(topic, OFFSET_STORE_PARTITIONS, 1, config={"cleanup.policy": "compact"})
            [created] = admin.create_topics([new]).values()
            try:
                created.result()
            except KafkaException as error:
                if "TOPIC_ALREADY_EXISTS" not in str(error):
                    raise
        producer = Producer(
            {
                "bootstrap.servers": bootstrap,
                "partitioner": "murmur2_random",  # Java's: the partition Connect would use
                "acks": "all",
                "log_level": 3,
            }
        )
        failed: list[str] = []
        count = 0
        for key, offset in sorted(start.items()):
            if offset <= 0:
                continue  # from the beginning anyway
            name, _, partition = key.rpartition("-")
            record = ["MirrorSourceConnector", {"cluster": source_alias, "partition": int(partition), "topic": name}]  # fmt: skip  # noqa: E501
            producer.produce(
                topic,
                key=json.dumps(record, separators=(",", ":")).encode(),
                value=json.dumps({"offset": offset - 1}, separators=(",", ":")).encode(),
                on_delivery=lambda error, _: failed.append(str(error)) if error else None,
            )
            count += 1
        if producer.flush(30) or failed:
            raise RuntimeError(f"{self.store}: could not seed {topic}: {failed or 'timed out'}")
        return count

    def _start_reversed(self, topics: list[str]) -> dict[str, Any]:
        """A MirrorMaker 2 for the flow into the target, made from the other flow's: the same
        jars and JVM options, its own config and log beside it."""
        from drkit.local.mirrormaker import mirror_properties
        from drkit.local.recorded import start_recorded

        source, target = self.sides.source, self.sides.target
        like = self.process(MIRROR_PROCESS, source.region)
        if like is None:
            raise RuntimeError(f"{self.store}: no recorded MirrorMaker 2 to start one like")
        workdir = Path(like["log"]).parents[2] / target.region / "mirror-maker"
        workdir.mkdir(parents=True, exist_ok=True)
        settings = mirror_properties(source.url, target.url, topics, source.region, target.region)
        config = workdir / "mm2.properties"
        config.write_text("".join(f"{k} = {v}\n" for k, v in settings.items()))
        command = [*like["command"][:-3], str(config), "--clusters", target.region]
        return start_recorded(
            self.sides.project_dir,
            MIRROR_PROCESS,
            target.region,
            command=command,
            log=str(workdir / "mirror-maker.log"),
            like=like,
        )


def _heartbeat_since(bootstrap: str, started: float) -> bool:
    """A MirrorMaker 2 heartbeat in ``bootstrap`` newer than ``started`` (monotonic)."""
    from drkit.local.lag import _consumer, _newest_timestamp

    since = time.time() - (time.monotonic() - started)
    try:
        consumer = _consumer(bootstrap)
        try:
            newest = _newest_timestamp(consumer, bootstrap, HEARTBEATS_TOPIC)
        finally:
            consumer.close()
    except KafkaException:
        return False
    return newest is not None and newest >= since
