"""Reconcile each Kafka topic's retention and cleanup settings with its topic class in the config.

The stack config's ``msk`` section maps topics to classes (``critical`` 7 days, ``standard`` 3,
``archive`` 30 in tiered storage); :func:`wanted_settings` turns a class into topic configs. The
store's broker is read with ``DescribeConfigs`` (effective values, so a broker default that already
fits needs no override), the difference is printed as ``topic key: current -> wanted``, and only
then, confirmed, changed with ``IncrementalAlterConfigs``: each differing key is SET on its own,
every other setting of the topic stays as it is.

A topic on the broker that the config maps to no class is reported and left alone; a topic the
config names but the broker lacks is reported, not created (creating topics is the
application's job, with its partition count).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TextIO

from confluent_kafka import KafkaException
from confluent_kafka.admin import (  # type: ignore[attr-defined]  # not all names are in its stubs
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ResourceType,
)

from drkit.endpoints import endpoint, kafka_settings
from drkit.kafka_auth import client_settings
from drkit.storage.objectstore import Encryption, ObjectExists, ObjectStore, ObjectStoreError
from stackmodels.config import Msk, StoreKind, TopicClass

if TYPE_CHECKING:
    from drkit.context import OpsContext

REQUEST_TIMEOUT_S = 30.0
SETTLE_TIMEOUT_S = 30.0
RECONCILED_KEYS = ("retention.ms", "cleanup.policy", "remote.storage.enable", "local.retention.ms")
"""The topic configs a class decides; no other setting is read or written."""


def wanted_settings(topic_class: TopicClass) -> dict[str, str]:
    """The topic configs a class asks for. Retention by time means ``cleanup.policy=delete``;
    a tiered class also keeps its data in remote storage beyond ``local_retention``."""
    wanted = {
        "retention.ms": str(_ms(topic_class.retention)),
        "cleanup.policy": "delete",
    }
    if topic_class.tiered:
        wanted["remote.storage.enable"] = "true"
        if topic_class.local_retention is not None:
            wanted["local.retention.ms"] = str(_ms(topic_class.local_retention))
    return wanted


def _ms(duration: Any) -> int:
    return int(duration.total_seconds() * 1000)


@dataclass(frozen=True)
class Change:
    topic: str
    key: str
    current: str | None
    wanted: str

    def line(self) -> str:
        current = "(unset)" if self.current is None else self.current
        return f"  {self.topic} {self.key}: {current} -> {self.wanted}"


@dataclass(frozen=True)
class Reconciliation:
    changes: list[Change] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    """On the broker, mapped to no topic class: reported, never changed."""
    missing: list[str] = field(default_factory=list)
    """In the config, not on the broker: reported, never created."""

    def describe(self) -> str:
        lines = []
        if self.changes:
            topics = len({c.topic for c in self.changes})
            lines.append(f"{len(self.changes)} setting(s) to change on {topics} topic(s):")
            lines += [change.line() for change in self.changes]
        else:
            lines.append("nothing to change: every known topic matches its class")
        if self.unknown:
            lines.append(
                f"not in the config's topic classes, left as they are: {', '.join(self.unknown)}"
            )
        if self.missing:
            lines.append(f"in the config but not on the broker: {', '.join(self.missing)}")
        return "\n".join(lines) + "\n"


def diff(current: Mapping[str, Mapping[str, str | None]], msk: Msk) -> Reconciliation:
    """What differs between ``current`` (topic -> config -> effective value, as the broker
    reports it) and the classes ``msk`` maps the topics to; sorted by topic and key."""
    changes = []
    for topic in sorted(t for t in current if t in msk.topics):
        values = current[topic]
        for key, wanted in sorted(wanted_settings(msk.topic_classes[msk.topics[topic]]).items()):
            if values.get(key) != wanted:
                changes.append(Change(topic, key, values.get(key), wanted))
    return Reconciliation(
        changes=changes,
        unknown=sorted(t for t in current if t not in msk.topics),
        missing=sorted(t for t in msk.topics if t not in current),
    )


def broker_topics(admin: AdminClient) -> list[str]:
    """Every topic on the broker but Kafka's own (``__consumer_offsets`` and the like)."""
    metadata = admin.list_topics(timeout=REQUEST_TIMEOUT_S)
    return sorted(t for t in metadata.topics if not t.startswith("__"))


def read_settings(admin: AdminClient, topics: list[str]) -> dict[str, dict[str, str | None]]:
    """The effective value of each reconciled key per topic (``None``: the broker has no such
    config, as a broker without tiered storage may for ``remote.storage.enable``)."""
    if not topics:
        return {}
    futures = admin.describe_configs(
        [ConfigResource(ResourceType.TOPIC, topic) for topic in topics],
        request_timeout=REQUEST_TIMEOUT_S,
    )
    settings: dict[str, dict[str, str | None]] = {}
    for resource, future in futures.items():
        try:
            entries = future.result()
        except KafkaException as error:
            raise TopicConfigError(
                f"topic {resource.name}: reading its configs failed: {error}"
            ) from error
        settings[resource.name] = {
            key: entries[key].value if key in entries else None for key in RECONCILED_KEYS
        }
    return settings


class TopicConfigError(RuntimeError):
    """The broker refused to describe or change a topic's configs."""


def apply(admin: AdminClient, changes: list[Change]) -> None:
    """SET each changed key with IncrementalAlterConfigs, one request for all topics."""
    by_topic: dict[str, list[ConfigEntry]] = {}
    for change in changes:
        by_topic.setdefault(change.topic, []).append(
            ConfigEntry(change.key, change.wanted, incremental_operation=AlterConfigOpType.SET)
        )
    if not by_topic:
        return
    futures = admin.incremental_alter_configs(
        [
            ConfigResource(ResourceType.TOPIC, topic, incremental_configs=entries)
            for topic, entries in sorted(by_topic.items())
        ],
        request_timeout=REQUEST_TIMEOUT_S,
    )
    failed = []
    for resource, future in futures.items():
        try:
            future.result()
        except KafkaException as error:
            failed.append(f"{resource.name}: {error}")
    if failed:
        raise TopicConfigError(f"changing topic configs failed: {'; '.join(sorted(failed))}")


def inspect(admin: AdminClient, msk: Msk) -> Reconciliation:
    return diff(read_settings(admin, broker_topics(admin)), msk)


def reconcile(
    admin: AdminClient,
    msk: Msk,
    out: TextIO,
    *,
    dry_run: bool,
    yes: bool,
    confirm: Callable[[str], bool],
) -> int:
    """Print the diff, then (confirmed, not a dry run) apply it. The exit code: 0 done or
    nothing to do, 3 not confirmed (as the executor's aborted runs), 1 a change failed."""
    found = inspect(admin, msk)
    out.write(found.describe())
    if not found.changes:
        return 0
    if dry_run:
        out.write("dry run: nothing was changed\n")
        return 0
    if not yes and not confirm("Change these topic settings?"):
        out.write(
            "aborted: not confirmed (pass --yes to run without asking); nothing was changed\n"
        )
        return 3
    try:
        apply(admin, found.changes)
        settle(admin, found.changes)
    except TopicConfigError as error:
        out.write(f"error: {error}\n")
        return 1
    out.write(f"changed {len(found.changes)} setting(s)\n")
    return 0


def settle(admin: AdminClient, changes: list[Change], timeout_s: float = SETTLE_TIMEOUT_S) -> None:
    """Wait until the broker describes every change as made: it applies a committed change from
    its metadata log, so a describe right after the alter can still show the old value."""
    deadline = time.monotonic() + timeout_s
    while True:
        current = read_settings(admin, sorted({c.topic for c in changes}))
        pending = [c for c in changes if current[c.topic].get(c.key) != c.wanted]
        if not pending:
            return
        if time.monotonic() >= deadline:
            shown = ", ".join(f"{c.topic} {c.key}" for c in pending)
            raise TopicConfigError(f"accepted but not applied after {timeout_s:.0f} s: {shown}")
        time.sleep(0.2)


def admin_for(ctx: OpsContext) -> tuple[AdminClient, Msk]:
    """The admin client of the stack's MSK store (IAM auth on MSK) and its topic classes."""
    msk = ctx.config.msk
    if msk is None:
        raise ValueError(f"stack {ctx.stack!r}: its config has no msk section (no topic classes)")
    host, port = endpoint(ctx, msk.store)
    settings = client_settings(f"{host}:{port}", kafka_settings(ctx, msk.store))
    return AdminClient(settings), msk


# --- the topic configuration snapshot in the vault ----------------------------------------------

SNAPSHOT_FOLDER = "topic-configs/"
"""``<data class>/<store>/topic-configs/<UTC time>-<sha256 prefix>.json``, one object per change
and per day: under the store's own prefix, the only one its backup role may write and list
(components/backup_iam.py); too short a key for a backup's layout (``parse_backup_prefix``)."""
FIRST, CHANGED, DAILY = "first", "changed", "daily"


def snapshot_prefix(data_class: str, store: str) -> str:
    return f"{data_class}/{store}/{SNAPSHOT_FOLDER}"


def _digest_of(key: str) -> str:
    return key.rsplit("/", 1)[-1].removesuffix(".json").rsplit("-", 1)[-1]


def snapshot_time(key: str) -> datetime:
    """When the snapshot under ``key`` was taken (its name starts with the UTC time)."""
    stamp = key.rsplit("/", 1)[-1].split("-", 1)[0]
    return datetime.strptime(stamp, "%Y%m%dT%H%M%S%fZ").replace(tzinfo=UTC)


def snapshot_reason(keys: list[str], digest: str, now: datetime) -> str | None:
    """Why a snapshot with ``digest`` is due now, given the stored ``keys``, or None: the first
    one, the configuration changed since the newest, or the newest is of an earlier UTC day."""
    if not keys:
        return FIRST
    newest = max(keys)
    if _digest_of(newest) != digest:
        return CHANGED
    if snapshot_time(newest).date() < now.astimezone(UTC).date():
        return DAILY
    return None


@dataclass(frozen=True)
class StoredSnapshot:
    key: str
    reason: str
    """``first``, ``changed`` or ``daily``."""
    target: str = ""
    """The bucket it was stored in (``s3://vault``, ``gs://mirror``)."""


def store_snapshot(
    targets: Sequence[ObjectStore],
    data_class: str,
    store: str,
    body: bytes,
    now: datetime,
    encryption_of: Callable[[ObjectStore], Encryption] | None = None,
) -> list[StoredSnapshot]:
    """Put ``body`` (the topics' configuration) in each of ``targets`` (the vault, and the mirror
    when the stack has one) when it changed since the newest snapshot of ``store`` there, and
    once a day otherwise (the first seed's "on change + daily"); what was stored, where. Each
    target's objects are sealed as ``encryption_of`` says for it (the isolated vault: its own key
    and no lock per object).

    The digest and the time are in the key, so the decision lists the store's snapshots and
    reads none. Each target decides by its own listing, under one key, so a mirror that missed
    a snapshot (it was unreachable) gets the next one. Keys sort by time; a write is create-only
    (S3 ``If-None-Match: *``, GCS ``ifGenerationMatch=0``), never a replacement. Every target
    is tried; the first failure is raised after.
    """
    digest = hashlib.sha256(body).hexdigest()[:16]
    key = (
        f"{snapshot_prefix(data_class, store)}{now.astimezone(UTC):%Y%m%dT%H%M%S%fZ}-{digest}.json"
    )
    stored: list[StoredSnapshot] = []
    errors: list[ObjectStoreError] = []
    for target in targets:
        try:
            keys = [info.key for info in target.list_objects(snapshot_prefix(data_class, store))]
            reason = snapshot_reason(keys, digest, now)
            if reason is None:
                continue
            try:
                target.put_bytes(key, body, encryption_of(target) if encryption_of else None)
            except ObjectExists:
                continue  # a concurrent run stored this very snapshot: as good
            stored.append(StoredSnapshot(key, reason, target.name))
        except ObjectStoreError as error:
            errors.append(error)
    if errors:
        raise errors[0]
    return stored


def store_snapshot_as(
    target: ObjectStore,
    decided: Sequence[StoredSnapshot],
    body: bytes,
    encryption: Encryption | None = None,
) -> list[StoredSnapshot]:
    """Store in ``target`` what another target decided to store (``decided``: the vault's, by its
    own listing), under the same keys, create-only. For a store the writer may only create
    objects in (the isolated vault: its policy grants no list and no read); a snapshot already
    there is as good. A day the vault stores nothing, neither does ``target``: its backups carry
    their own ``topics.json``, and the next change or day brings the next snapshot."""
    stored = []
    for snapshot in decided:
        try:
            target.put_bytes(snapshot.key, body, encryption)
        except ObjectExists:
            continue
        stored.append(StoredSnapshot(snapshot.key, snapshot.reason, target.name))
    return stored


def take_snapshots(ctx: OpsContext, out: TextIO, now: datetime | None = None) -> int:
    """``invoke kafka.topics --snapshot``: each Kafka store's topic configuration, as its backup
    reads it, stored now by the same rule as a backup's (changed, or none yet today). The exit
    code: 0, or 1 when a store's topics could not be read or stored. In the vault and the mirror
    alike, each by its own listing (:func:`store_snapshot`)."""
    from drkit.backup.kafka import KafkaBackupError, _topics_json, describe_topics
    from drkit.endpoints import endpoint, kafka_settings
    from drkit.kafka_auth import client_settings

    moment = now or datetime.now(UTC)
    failed = 0
    for store in ctx.config.stores_of(StoreKind.KAFKA):
        config = ctx.config.stores[store]
        host, port = endpoint(ctx, store)
        admin = AdminClient(client_settings(f"{host}:{port}", kafka_settings(ctx, store)))
        try:
            body = _topics_json(describe_topics(admin, list(config.topics)))
        except KafkaBackupError as error:
            out.write(f"{store}: error: {error}; nothing stored\n")
            failed += 1
            continue
        destinations = ctx.destinations(config.data_class, moment)
        try:
            stored = store_snapshot(
                destinations.stores,
                config.data_class,
                store,
                body,
                moment,
                destinations.encryption_of,
            )
        except ObjectStoreError as error:
            out.write(f"{store}: error: {error}\n")
            failed += 1
            continue
        if not stored:
            newest = newest_snapshots(destinations.vault, config.data_class, store, 1)
            out.write(
                f"{store}: topic configuration unchanged since {newest[0] if newest else '?'} "
                "(stored today): nothing stored\n"
            )
        for snapshot in stored:
            out.write(f"{store}: stored {snapshot.key} ({snapshot.reason}) in {snapshot.target}\n")
    return 1 if failed else 0


def newest_snapshots(
    vault: ObjectStore, data_class: str, store: str, count: int = 2, until: datetime | None = None
) -> list[str]:
    """The keys of the store's newest ``count`` snapshots (taken at or before ``until``),
    oldest first. One LIST (a page per 1,000 snapshots: about three years of daily ones)."""
    keys = sorted(info.key for info in vault.list_objects(snapshot_prefix(data_class, store)))
    if until is not None:
        keys = [k for k in keys if snapshot_time(k) <= until]
    return keys[-count:]


def snapshot_diff(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """``topic key: before -> after`` per difference between two parsed snapshots
    (``drkit.backup.kafka.parse_topics_json``); topics added or removed as a whole."""
    lines = []
    for topic in sorted(set(old) | set(new)):
        if topic not in old:
            lines.append(f"{topic}: added ({_shape(new[topic])})")
            continue
        if topic not in new:
            lines.append(f"{topic}: removed (was {_shape(old[topic])})")
            continue
        before, after = old[topic], new[topic]
        for field_name in ("partitions", "replication_factor"):
            a, b = getattr(before, field_name), getattr(after, field_name)
            if a != b:
                lines.append(f"{topic} {field_name}: {a} -> {b}")
        for key in sorted(set(before.configs) | set(after.configs)):
            a, b = before.configs.get(key), after.configs.get(key)
            if a != b:
                lines.append(f"{topic} {key}: {_value(a)} -> {_value(b)}")
    return lines


def _shape(config: Any) -> str:
    settings = ", ".join(f"{k}={v}" for k, v in sorted(config.configs.items()))
    return f"{config.partitions} partitions, replication {config.replication_factor}" + (
        f", {settings}" if settings else ""
    )


def _value(value: str | None) -> str:
    return "(default)" if value is None else value
