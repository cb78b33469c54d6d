"""Kafka: the seed's hourly export (``kafka-console-consumer`` per topic, gzip, ``aws s3 cp``)
against our backup of the same three topics, and what of a record survives each round trip.

The seed's console consumer prints each record's value, one per line, and exits after
``--timeout-ms`` of silence; its restore pipes those lines into ``kafka-console-producer``. So a
record comes back as a new record with the same value, a new key (none), no headers, a new
timestamp, whatever partition the producer picks and a new offset. The round-trip table counts,
field by field, how many records came back equal.
"""

from __future__ import annotations

import fcntl
import gzip
import json
import secrets
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition
from confluent_kafka.admin import (  # type: ignore[attr-defined]  # NewTopic: not in its stubs
    AdminClient,
    NewTopic,
)

from benchmarks.environment import AWS_CLI, Bench
from benchmarks.measure import Figure, run_measured, shell
from benchmarks.report import PIPELINE_HEADERS, Runs, Section, Table, pipeline_rows, ratio, spread
from drkit.backup.kafka import read_range, reader
from drkit.local.kafka import KAFKA_VERSION, cache_root

TOPICS = ("strategy-signals", "order-events", "market-data")
PARTITIONS = 3
ROUND_TRIP_TOPIC = "order-events"
POM = Path(__file__).with_name("kafka-tools-pom.xml")
CONSOLE_CONSUMER = "org.apache.kafka.tools.consumer.ConsoleConsumer"
CONSOLE_PRODUCER = "org.apache.kafka.tools.ConsoleProducer"
# What kafka-run-class.sh gives the console tools: a 512 MiB heap and G1.
JVM = (
    "-Xmx512M -server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35"
    " -XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true"
    " -Dorg.slf4j.simpleLogger.defaultLogLevel=warn"
)
SYMBOLS = ("AAPL", "MSFT", "NVDA", "AMZN", "ES=F", "NQ=F", "EURUSD", "BTC-USD")
FIELDS = ("value", "key", "headers", "timestamp", "partition", "offset")


class KafkaToolsError(RuntimeError):
    """Maven could not fetch the Kafka command-line tools; the message quotes its output."""


def tools_lib() -> Path:
    """Kafka's tools jars (the console consumer and producer), fetched once into the cache."""
    home = cache_root() / f"kafka-tools-{KAFKA_VERSION}"
    lib, marker = home / "lib", home / "complete"
    if marker.is_file() and lib.is_dir():
        return lib
    home.mkdir(parents=True, exist_ok=True)
    with (home.parent / f"kafka-tools-{KAFKA_VERSION}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not marker.is_file():
            partial = home / "lib.partial"
            shutil.rmtree(partial, ignore_errors=True)
            shutil.rmtree(lib, ignore_errors=True)
            mvn = shutil.which("mvn") or "mvn"
            result = subprocess.run(
                [
                    mvn,
                    "-q",
                    "-B",
                    "-f",
                    str(POM),
                    f"-Dkafka.version={KAFKA_VERSION}",
                    "dependency:copy-dependencies",
                    "-DincludeScope=runtime",
                    f"-DoutputDirectory={partial}",
                ],
                capture_output=True,
                text=True,
                timeout=900,
                check=False,
            )
            if result.returncode != 0:
                tail = (result.stdout + result.stderr).strip().splitlines()[-30:]
                raise KafkaToolsError("mvn could not fetch kafka-tools:\n" + "\n".join(tail))
            partial.rename(lib)
            marker.write_text("ok\n")
    return lib


def console(main: str, arguments: str) -> str:
    """A console tool's command line, as ``kafka-run-class.sh`` builds it."""
    java = shutil.which("java") or "java"
    return f"{java} {JVM} -cp '{tools_lib()}/*' {main} {arguments}"


def seed_export(
    bench: Bench, topics: tuple[str, ...], directory: Path, stamp: str, bucket: str
) -> str:
    """The seed's CronJob script: one topic after another, each with its idle timeout."""
    consume = console(
        CONSOLE_CONSUMER,
        f"--bootstrap-server {bench.servers.kafka.bootstrap} --topic $topic --from-beginning"
        f" --max-messages 1000000 --timeout-ms {bench.options.kafka_idle_timeout_ms}",
    )
    export = f"{directory}/${{topic}}.json"
    return (
        f"for topic in {' '.join(topics)}; do {consume} > {export}; gzip {export};"
        f" {AWS_CLI} s3 cp {export}.gz s3://{bucket}/kafka/${{topic}}_{stamp}.json.gz; done"
    )


# -- data ------------------------------------------------------------------------------------


def topic_names(bench: Bench) -> tuple[str, ...]:
    """The seed's topic names; suffixed when a shared broker (the tests') already has them."""
    admin = AdminClient({"bootstrap.servers": bench.servers.kafka.bootstrap, "log_level": 3})
    existing = admin.list_topics(timeout=30).topics
    if any(topic in existing for topic in TOPICS):
        suffix = secrets.token_hex(3)
        return tuple(f"{topic}-{suffix}" for topic in TOPICS)
    return TOPICS


def produce_topics(bench: Bench, topics: tuple[str, ...], records: int) -> int:
    """Three topics of trading events: keyed, JSON values, three headers, explicit timestamps.
    Returns the bytes of values produced."""
    admin = AdminClient({"bootstrap.servers": bench.servers.kafka.bootstrap, "log_level": 3})
    fresh = [NewTopic(t, num_partitions=PARTITIONS, replication_factor=1) for t in topics]
    for future in admin.create_topics(fresh).values():
        future.result()
    for topic in topics:
        _wait_for_leaders(admin, topic)
    failures: list[str] = []

    def delivered(error: KafkaError | None, _message: Message) -> None:
        if error is not None:
            failures.append(error.str())

    producer = Producer(
        {
            "bootstrap.servers": bench.servers.kafka.bootstrap,
            "linger.ms": 50,
            "batch.size": 512 * 1024,
            "compression.type": "none",
            "queue.buffering.max.kbytes": 256 * 1024,
            "log_level": 3,
        }
    )
    # Producer timestamps from an hour ago on: not the broker's clock (so a restore that kept
    # only the broker's time would show), and recent, or the 7-day retention deletes them.
    base = int(time.time() * 1000) - 3_600_000
    value_bytes = 0
    for topic in topics:
        for n in range(records):
            value = json.dumps(
                {
                    "id": str(uuid.uuid4()),
                    "topic": topic,
                    "seq": n,
                    "symbol": SYMBOLS[n % len(SYMBOLS)],
                    "price": round(100 + secrets.randbelow(1_000_000) / 10_000, 4),
                    "qty": secrets.randbelow(10_000),
                    "strategy": f"strategy-{n % 97}",
                    "signal": ("buy", "sell", "hold")[n % 3],
                    "note": secrets.token_hex(24),
                },
                separators=(",", ":"),
            ).encode()
            value_bytes += len(value)
            headers: list[tuple[str, str | bytes | None]] = [
                ("trace-id", secrets.token_bytes(16)),
                ("schema", b"trading.v3"),
                ("source", b"strategy-engine"),
            ]
            while True:
                try:
                    producer.produce(
                        topic,
                        key=f"account-{n % 5_000}".encode(),
                        value=value,
                        headers=headers,
                        timestamp=base + n * 3,
                        on_delivery=delivered,
                    )
                    break
                except BufferError:
                    producer.poll(0.1)
            if n % 10_000 == 0:
                producer.poll(0)
    if producer.flush(120) or failures:
        raise RuntimeError(
            f"records were not all delivered to {topics}: {len(failures)} failed, first"
            f" {failures[:1]}"
        )
    return value_bytes


def _wait_for_leaders(admin: AdminClient, topic: str, timeout: float = 30.0) -> None:
    """A new topic takes writes once every partition has a leader; before, they fail."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = admin.list_topics(topic=topic, timeout=10).topics.get(topic)
        if (
            found is not None
            and found.error is None
            and len(found.partitions) == PARTITIONS
            and all(p.leader >= 0 for p in found.partitions.values())
        ):
            return
        time.sleep(0.1)
    raise RuntimeError(f"topic {topic!r} has no leader for every partition after {timeout:.0f}s")


@dataclass(frozen=True)
class Seen:
    key: bytes | None
    headers: tuple[tuple[str, bytes], ...]
    timestamp: int
    partition: int
    offset: int


def read_topic(bootstrap: str, topic: str) -> Iterator[tuple[bytes, Seen]]:
    """Every record of ``topic`` as (value, the rest), partition by partition."""
    consumer: Consumer = reader(bootstrap)
    try:
        metadata = consumer.list_topics(topic, timeout=30).topics[topic]
        for partition in sorted(metadata.partitions):
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=30)
            for message in read_range(consumer, topic, partition, low, high):
                raw = message.headers() or []
                pairs = raw.items() if isinstance(raw, dict) else raw
                headers = tuple(
                    (str(name), value if isinstance(value, bytes) else b"") for name, value in pairs
                )
                offset = message.offset()
                assert offset is not None
                yield (
                    message.value() or b"",
                    Seen(message.key(), headers, message.timestamp()[1], partition, offset),
                )
    finally:
        consumer.close()


def compare(bootstrap: str, source: str, target: str) -> dict[str, int]:
    """For each field, how many of the source's records came back with it equal."""
    original = dict(read_topic(bootstrap, source))
    survived = dict.fromkeys(FIELDS, 0)
    survived["records back"] = 0
    for value, seen in read_topic(bootstrap, target):
        before = original.get(value)
        if before is None:
            continue
        survived["records back"] += 1
        survived["value"] += 1
        survived["key"] += seen.key == before.key
        survived["headers"] += seen.headers == before.headers
        survived["timestamp"] += seen.timestamp == before.timestamp
        survived["partition"] += seen.partition == before.partition
        survived["offset"] += seen.offset == before.offset
    survived["records"] = len(original)
    return survived


def _create_topic(bench: Bench, name: str) -> None:
    """What the seed's scenario 3 does before its restore: ``kafka-topics --create``."""
    admin = AdminClient({"bootstrap.servers": bench.servers.kafka.bootstrap, "log_level": 3})
    for future in admin.create_topics([NewTopic(name, PARTITIONS, 1)]).values():
        future.result()
    _wait_for_leaders(admin, name)


# -- the section -----------------------------------------------------------------------------


def kafka_section(bench: Bench) -> Section:
    started = time.monotonic()
    records = bench.options.kafka_records
    topics = topic_names(bench)
    value_bytes = produce_topics(bench, topics, records)
    total = records * len(topics)
    directory = bench.workdir / "kafka-export"
    timeout_s = bench.options.kafka_idle_timeout_ms / 1000
    seed = Runs("seed", bench.show(seed_export(bench, topics, directory, "N", bench.bucket)))
    ours_args = [arg for topic in topics for arg in ("--topic", topic)]
    ours = Runs("ours", bench.show(bench.ours("kafka-backup", *ours_args)))
    env = bench.tool_env()
    seed_stamp = manifest_key = ""
    for run in range(bench.options.runs):
        last = run == bench.options.runs - 1

        def run_seed(run: int = run) -> None:
            nonlocal seed_stamp
            shutil.rmtree(directory, ignore_errors=True)
            directory.mkdir(parents=True)
            stamp = f"run{run}"
            sample = run_measured(
                shell(seed_export(bench, topics, directory, stamp, bench.bucket)), env=env
            )
            stored = sum(
                int(item.size) for item in bench.vault().list_objects("kafka/") if stamp in item.key
            )
            lines = 0
            for export in directory.glob("*.json.gz"):
                with gzip.open(export, "rb") as text:
                    lines += sum(1 for _ in text)
            seed.add(sample, stored=stored, records=lines)
            seed_stamp = stamp

        def run_ours() -> None:
            nonlocal manifest_key
            sample = run_measured(bench.ours("kafka-backup", *ours_args), env=env)
            result = json.loads(sample.stdout)
            ours.add(sample, stored=result["size"], records=sum(result["counts"].values()))
            if manifest_key:
                bench.clear(manifest_key.rsplit("/", 1)[0] + "/")
            manifest_key = str(result["manifest_key"])

        for step in (run_seed, run_ours) if run % 2 == 0 else (run_ours, run_seed):
            step()
        if not last:
            for item in list(bench.vault().list_objects("kafka/")):
                if seed_stamp not in item.key:
                    bench.clear(item.key)
    if ours.extra("records").low != total:
        raise RuntimeError(
            f"our backups held {ours.extra('records').values} records, not {total}: the"
            " comparison would be meaningless"
        )
    fields = _round_trip(bench, topics[1], seed_stamp, manifest_key, env)
    seed_rate, ours_rate = seed.rate(total), ours.rate(total)
    seed_busy = _less_idle(seed, timeout_s * len(TOPICS), total)
    rows = pipeline_rows(seed, ours, None, "stored")
    rows.insert(
        0,
        [
            "records exported (median)",
            f"{seed.extra('records').median:,.0f} of {total:,}",
            f"{ours.extra('records').median:,.0f} of {total:,}",
            "",
        ],
    )
    rows.insert(
        2,
        [
            "records per second",
            spread(seed_rate, digits=0),
            spread(ours_rate, digits=0),
            ratio(ours_rate, seed_rate, higher_is_better=True),
        ],
    )
    rows.insert(
        3,
        [
            "records per second, seed's idle wait taken out",
            spread(seed_busy, digits=0),
            spread(ours_rate, digits=0),
            ratio(ours_rate, seed_busy, higher_is_better=True),
        ],
    )
    field_rows = [
        [
            name,
            f"{fields['seed'][name]:,} of {fields['seed']['records']:,}",
            f"{fields['ours'][name]:,} of {fields['ours']['records']:,}",
        ]
        for name in ("records back", *FIELDS)
    ]
    lost = [name for name in FIELDS if fields["seed"][name] < fields["seed"]["records"]]
    seed_kept = [name for name in FIELDS if name not in lost]
    kept = [name for name in FIELDS if fields["ours"][name] == fields["ours"]["records"]]
    section = Section(
        key="kafka",
        title="Kafka topics",
        summary=(
            f"Three topics ({', '.join(topics)}), {PARTITIONS} partitions each, {records:,}"
            f" records per topic ({total:,} in all): keyed, JSON values of"
            f" {value_bytes / total:.0f} bytes on average, three"
            " headers (a binary trace id among them) and explicit producer timestamps. The seed's"
            " CronJob exports each topic with `kafka-console-consumer` (the real tool, Kafka"
            f" {KAFKA_VERSION}'s, from Maven Central), gzips and uploads it to S3; ours backs up"
            " all three, every record framed whole, to S3 and GCS at once."
        ),
        commands={
            "seed (`java ... ConsoleConsumer` is what `kafka-console-consumer` runs)": seed.command,
            "ours": ours.command,
        },
        tables=[
            Table(PIPELINE_HEADERS, rows, "Export / backup of the three topics"),
            Table(
                ["field of a record", "seed (console consumer -> console producer)", "ours"],
                field_rows,
                f"Round trip of `{ROUND_TRIP_TOPIC}` into a new topic: records whose field"
                " came back equal",
            ),
        ],
        notes=[
            "The seed's consumer exits only after"
            f" `--timeout-ms {bench.options.kafka_idle_timeout_ms}` of silence, once per topic:"
            f" {timeout_s * len(TOPICS):.0f} s of every seed run is that wait. The second row"
            " takes it out: the seed's best case.",
            "The seed goes to S3 only; ours writes S3 and GCS, so its figures include a second"
            " destination the seed does not have. Ours stores more bytes because it keeps what"
            " the seed drops: keys, headers (one a random, incompressible 16-byte trace id per"
            " record), timestamps, partitions and offsets.",
            "The seed's partition and offset matches are chance: its console producer sends"
            " records without their keys, so about one in three lands in its old partition, and"
            " a few of those at their old offset.",
            "The seed's restore is its own script: `aws s3 cp - | gunzip |"
            " kafka-console-producer` into a topic made with 3 partitions. Ours is"
            " `restore_kafka` into a new topic, exact by default: no header added (the"
            " `drkit.source` lineage header is opt-in, `--lineage-header`). Values here"
            " hold no newline; a binary value with one would"
            " be split in two by the seed's line-based export.",
            f"Fields the seed loses: {', '.join(lost) or 'none'}; fields ours keeps on every"
            f" record: {', '.join(kept) or 'none'}.",
        ],
        headlines=[
            "Kafka export: records per second"
            f" {ratio(ours_rate, seed_rate, higher_is_better=True)}"
            f" ({spread(ours_rate, digits=0)} vs {spread(seed_rate, digits=0)}); with the seed's"
            f" {timeout_s * len(TOPICS):.0f} s of idle timeouts taken out,"
            f" {ratio(ours_rate, seed_busy, higher_is_better=True)}; a round trip keeps"
            f" {', '.join(kept) or 'no field'} for ours, only {', '.join(seed_kept) or 'nothing'}"
            " for the seed.",
        ],
        data={"seed": seed.as_dict(), "ours": ours.as_dict(), "round_trip": fields},
    )
    shutil.rmtree(directory, ignore_errors=True)
    section.seconds = time.monotonic() - started
    return section


def _less_idle(seed: Runs, idle: float, total: int) -> Figure:
    return Figure([total / (s.seconds - idle) for s in seed.samples if s.seconds > idle])


def _round_trip(
    bench: Bench, topic: str, seed_stamp: str, manifest_key: str, env: dict[str, str]
) -> dict[str, dict[str, int]]:
    """``topic`` (the seed's order-events) back through each side's own restore."""
    bootstrap = bench.servers.kafka.bootstrap
    suffix = secrets.token_hex(3)
    seed_target = f"{ROUND_TRIP_TOPIC}-seed-restored-{suffix}"
    ours_target = f"{ROUND_TRIP_TOPIC}-ours-restored-{suffix}"
    _create_topic(bench, seed_target)
    produce = console(CONSOLE_PRODUCER, f"--bootstrap-server {bootstrap} --topic {seed_target}")
    key = f"kafka/{topic}_{seed_stamp}.json.gz"
    run_measured(
        shell(f"{AWS_CLI} s3 cp s3://{bench.bucket}/{key} - | gunzip | {produce}"), env=env
    )
    run_measured(
        bench.ours(
            "kafka-restore",
            "--manifest",
            manifest_key,
            "--topic",
            topic,
            "--into",
            ours_target,
        ),
        env=env,
    )
    return {
        "seed": compare(bootstrap, topic, seed_target),
        "ours": compare(bootstrap, topic, ours_target),
    }
