"""``invoke restore.kafka``: topics from a chain of Kafka backups, as a plan.

The chain: the Kafka handler takes the first backup of each UTC day in full and later ones as
incrementals on the backup before (``consistent_point.incremental_from``). Restoring the backup
chosen (latest, ``--at`` or ``--backup``) means restoring the newest full at or before it and every
incremental up to it, in order. The chain is followed back through ``incremental_from`` using the
catalog segment of the chosen backup's day (one GET) and one manifest per link, which the restore
reads anyway.

Per topic, one step: records go back exactly (same partition and order, key, value, headers and
timestamp, nothing added); a re-run or a resumed run produces only what is missing, found from the
target partitions' offsets (``drkit.restore.kafka``). ``--lineage-header`` adds the
``drkit.source`` header to each record and resumes from it instead. Before anything is created, a
read-only step reads every object the restore will use and checks it against the manifest, so a
damaged backup fails with no topic created. A target topic that holds records not restored from
this source topic is refused unless ``--force`` (which appends the chain after them).

``--groups all`` (or ``--groups g1,g2``) also sets consumer groups: each named group's committed
offsets, as the chosen backup recorded them (``consumer-groups.json``), translated to the restored
records' offsets (``drkit.restore.kafka``), in a last step once every topic is restored. Refused
before anything changes: a backup that kept no groups, a group the backup does not have, a group
with offsets on a backed-up topic this run does not restore (a group is set whole or not at all),
and a group with members on the target (its consumers would overwrite the offsets, or be moved
under their feet).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Self

from confluent_kafka import KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient
from pydantic import Field

from drkit.backup.kafka import (
    GroupOffsets,
    KafkaPoint,
    parse_groups_json,
    read_range,
    reader,
)
from drkit.backup.manifest import Manifest, StoredObject
from drkit.catalog import CatalogEntry
from drkit.context import OpsContext
from drkit.endpoints import endpoint, kafka_settings
from drkit.kafka_auth import client_settings
from drkit.ops.plan import FunctionStep, Plan, StepContext
from drkit.ops.selection import (
    Chosen,
    TargetNotEmptyError,
    check_bound_objects,
    check_present,
    choose,
    readable,
    verify_checksums,
)
from drkit.ops.verbs import Holds, RestoreEnv, RestoreRequest, RestoreVerb
from drkit.progress import ByteProgress, RecordProgress, human_bytes
from drkit.recovery import RecoveryError, parse_timestamp
from drkit.restore.kafka import (
    GroupOffsetsError,
    KafkaRestoreError,
    KafkaRestoreFailed,
    active_groups,
    check_chain,
    parse_source,
    restore_kafka,
    set_group_offsets,
)
from drkit.restore.stream import raw_chunks
from drkit.storage.objectstore import read_all
from drkit.targets import kafka_renames, kafka_targets
from stackmodels.config import StoreKind

TOPIC = r"^[A-Za-z0-9._-]{1,249}$"


class RestoreKafkaRequest(RestoreRequest):
    store: str = "event-stream"
    at: str | None = None
    backup: str | None = None
    topics: list[str] = Field(default_factory=list)
    rename: dict[str, str] = Field(default_factory=dict)
    since: str | None = None
    until: str | None = None
    force: bool = False
    source: str = Field(default="vault", pattern="^(vault|mirror|isolated)$")
    lineage_header: bool = False
    groups: list[str] = Field(default_factory=list)
    """Consumer groups whose offsets to set: ``["all"]`` or names."""

    @classmethod
    def from_flags(cls, **flags: Any) -> Self:
        """``--topic`` (repeatable) gives ``topics``; ``--rename`` is ``SOURCE=TARGET`` pairs
        (``parse_renames``); ``--groups`` is ``all`` or comma-separated names."""
        topics = flags.pop("topic", None)
        renames = parse_renames(flags.pop("rename", None) or [])
        text = flags.pop("groups", None) or ""
        groups = [g.strip() for g in text.split(",") if g.strip()] if text else None
        return super().from_flags(**flags, topics=topics, rename=renames, groups=groups)


@dataclass(frozen=True)
class Prepared(Holds):
    chosen: Chosen
    chain: list[Manifest]
    topics: list[str]
    targets: dict[str, str]
    bootstrap: str
    client_config: dict[str, Any]
    """Authentication settings for the target cluster (:func:`drkit.endpoints.kafka_settings`)."""
    since: datetime | None
    until: datetime | None
    figures: dict[str, Any] = field(default_factory=dict)
    groups: GroupOffsets = field(default_factory=dict)
    """The consumer groups to set: group -> source topic -> partition -> committed offset."""

    @property
    def expected(self) -> dict[str, int]:
        """Records per topic in the chain (the whole chain; a time range restores fewer)."""
        return {t: sum(m.counts.get(t, 0) for m in self.chain) for t in self.topics}


def parse_renames(pairs: Iterable[str]) -> dict[str, str]:
    """``OLD=NEW`` pairs from the command line (``drkit.targets.kafka_renames``: a topic renamed
    twice, or two topics renamed onto one, is refused)."""
    return kafka_renames(pairs)


def chain_for(chosen: Chosen) -> list[Manifest]:
    """The full backup at or before the chosen one, then each incremental up to it."""
    store, index = chosen.store, chosen.index
    segments: dict[str, dict[str, CatalogEntry]] = {}

    def entry_of(backup_id: str) -> CatalogEntry:
        day = backup_id[:8]
        if day not in segments:
            moment = datetime.strptime(day, "%Y%m%d").date()
            with readable(chosen.objects):
                found = index.catalog.read_segment(store, moment)
            segments[day] = {e.backup_id: e for e in found}
        entry = segments[day].get(backup_id)
        return entry if entry is not None else index.by_id(store, backup_id)

    chain = [chosen.manifest]
    seen = {chosen.manifest.backup_id}
    while (parent := KafkaPoint.of(chain[-1]).incremental_from) is not None:
        if parent in seen:
            raise RecoveryError(f"backup chain of {store!r} loops at {parent}")
        try:
            entry = entry_of(parent)
        except RecoveryError:
            raise RecoveryError(
                f"backup {chain[-1].backup_id} is incremental on {parent}, which is not in "
                f"{chosen.objects.name}: the chain is broken; restore an earlier full backup "
                "(--at before it) instead. Nothing was changed."
            ) from None
        with readable(chosen.objects):
            chain.append(index.manifest(entry))
        check_bound_objects(chosen.objects, chain[-1])
        seen.add(parent)
    chain.reverse()
    try:
        check_chain(chain)
    except KafkaRestoreError as error:
        raise RecoveryError(str(error)) from None
    return chain


def objects_to_read(
    chain: list[Manifest], topics: list[str]
) -> list[tuple[Manifest, StoredObject]]:
    """The objects the restore of ``topics`` reads: their partitions' frames and topics.json
    (and the last backup's consumer groups, which a restore with ``--groups`` reads)."""
    wanted = []
    for manifest in chain:
        point = KafkaPoint.of(manifest)
        names = {point.topic_configs} | {
            p.object for p in point.partitions if p.object is not None and p.topic in topics
        }
        if manifest is chain[-1] and point.consumer_groups is not None:
            names.add(point.consumer_groups)
        wanted += [(manifest, item) for item in manifest.objects if item.name in names]
    return wanted


def prepare(ctx: OpsContext, request: RestoreKafkaRequest) -> Prepared:
    config = ctx.store_config(request.store)
    if config.kind is not StoreKind.KAFKA:
        raise RecoveryError(f"store {request.store!r} is {config.kind.value}, not kafka")
    since = parse_timestamp(request.since) if request.since else None
    until = parse_timestamp(request.until) if request.until else None
    if since and until and since >= until:
        raise RecoveryError(
            f"--since {since.isoformat()} is not before --until {until.isoformat()}"
        )
    chosen = choose(ctx, request.store, request.at, request.backup, request.source)
    chain = chain_for(chosen)
    backed_up = sorted({t for m in chain for t in m.counts})
    topics = list(request.topics) or backed_up
    unknown = [t for t in [*topics, *request.rename] if t not in backed_up]
    if unknown:
        raise RecoveryError(
            f"topic(s) {', '.join(unknown)} not in backup {chosen.entry.backup_id} of "
            f"{request.store!r}; it holds {', '.join(backed_up)}"
        )
    bad = [t for t in request.rename.values() if not _valid_topic(t)]
    if bad:
        raise RecoveryError(f"--rename target(s) {bad}: not valid Kafka topic names")
    targets = kafka_targets({t: request.rename.get(t, t) for t in topics})
    for manifest in chain:
        check_present(chosen.objects, manifest, [i for m, i in objects_to_read([manifest], topics)])
    host, port = endpoint(ctx, request.store)
    bootstrap = f"{host}:{port}"
    settings = kafka_settings(ctx, request.store)
    groups = chosen_groups(chosen, chain, topics, request.groups) if request.groups else {}
    if groups:
        refuse_active_groups(bootstrap, settings, sorted(groups))
    if not request.force:
        refuse_foreign_records(
            bootstrap, targets, settings, None if request.lineage_header else chain
        )
    return Prepared(
        chosen, chain, topics, targets, bootstrap, settings, since, until, groups=groups
    )


def chosen_groups(
    chosen: Chosen, chain: list[Manifest], topics: list[str], names: list[str]
) -> GroupOffsets:
    """The committed offsets of the groups ``names`` (``["all"]``: every group the backup has)
    as the chosen backup recorded them; refused (naming them) when the backup kept no groups, a
    group is not in it, or a group has offsets on a backed-up topic this restore leaves out."""
    manifest = chain[-1]
    name = KafkaPoint.of(manifest).consumer_groups
    item = next((o for o in manifest.objects if o.name == name), None)
    if name is None or item is None:
        raise RecoveryError(
            f"backup {manifest.backup_id} kept no consumer group offsets (taken before they were "
            "backed up); restore without --groups"
        )
    with readable(chosen.objects):
        recorded = parse_groups_json(read_all(raw_chunks(chosen.objects, item)), item.key)
    if names == ["all"]:
        wanted = sorted(recorded)
    else:
        missing = sorted(set(names) - set(recorded))
        if missing:
            raise RecoveryError(
                f"consumer group(s) {', '.join(missing)} not in backup {manifest.backup_id}: it "
                f"has offsets of {', '.join(sorted(recorded)) or 'no group'}"
            )
        wanted = sorted(set(names))
    left_out = {
        group: sorted(set(recorded[group]) - set(topics))
        for group in wanted
        if set(recorded[group]) - set(topics)
    }
    if left_out:
        named = "; ".join(f"{g} on {', '.join(t)}" for g, t in sorted(left_out.items()))
        raise RecoveryError(
            f"consumer group offsets on topics this restore does not restore: {named}. Restore "
            "those topics too (--topic) or leave the group out of --groups. Nothing was changed."
        )
    return {group: recorded[group] for group in wanted}


def refuse_active_groups(bootstrap: str, settings: Mapping[str, Any], groups: list[str]) -> None:
    admin = AdminClient(client_settings(bootstrap, settings))
    try:
        busy = active_groups(admin, groups)
    except KafkaException as error:
        raise RecoveryError(f"cannot describe consumer groups on {bootstrap}: {error}") from None
    if busy:
        named = ", ".join(f"{g} ({n} active members)" for g, n in sorted(busy.items()))
        raise TargetNotEmptyError(
            f"consumer group(s) active on the target {bootstrap}: {named}; setting their offsets "
            "would move live consumers. Stop those consumers (or leave the group out of "
            "--groups). Nothing was changed."
        )


def _valid_topic(name: str) -> bool:
    return bool(re.match(TOPIC, name)) and name not in (".", "..")


def refuse_foreign_records(
    bootstrap: str,
    targets: dict[str, str],
    client_config: Mapping[str, Any] | None = None,
    chain: list[Manifest] | None = None,
) -> None:
    """A target topic whose newest record in some partition was not restored from its source
    topic holds other data: restoring into it would mix the two.

    With ``chain`` (an exact restore, no lineage header), a partition is foreign when it holds
    more records than the chain has for it or its newest record's timestamp is outside the
    chain's; the restore compares that record itself before producing into the partition.
    Without, its newest record must carry the source topic's ``drkit.source`` header."""
    admin = AdminClient(client_settings(bootstrap, client_config))
    try:
        existing = admin.list_topics(timeout=30).topics
    except KafkaException as error:
        raise RecoveryError(f"cannot reach Kafka at {bootstrap}: {error}") from None
    consumer = reader(bootstrap, client_config)
    try:
        for source, target in targets.items():
            topic = existing.get(target)
            if topic is None or topic.error is not None:
                continue
            for partition in sorted(topic.partitions):
                low, high = consumer.get_watermark_offsets(
                    TopicPartition(target, partition), timeout=30
                )
                if high <= low:
                    continue
                last = list(read_range(consumer, target, partition, high - 1, high, 30))
                if chain is not None:
                    ours = _from_chain(chain, source, partition, high - low, last)
                else:
                    lineage = parse_source(last[-1].headers()) if last else None
                    ours = lineage is not None and lineage[0] == source
                if not ours:
                    raise TargetNotEmptyError(
                        f"target topic {target!r} partition {partition} holds {high - low} "
                        f"records not restored from {source!r}; restoring would mix them. "
                        "Restore into another topic (--rename) or pass --force to append. "
                        "Nothing was changed."
                    )
    finally:
        consumer.close()


def _from_chain(
    chain: list[Manifest], source: str, partition: int, held: int, last: list[Any]
) -> bool:
    """Could ``held`` records ending with ``last`` be a prefix of the chain's partition?"""
    pieces = [
        p
        for m in chain
        for p in KafkaPoint.of(m).partitions
        if (p.topic, p.partition) == (source, partition) and p.records
    ]
    low = min((p.min_timestamp for p in pieces if p.min_timestamp is not None), default=None)
    high = max((p.max_timestamp for p in pieces if p.max_timestamp is not None), default=None)
    if not last or held > sum(p.records for p in pieces) or low is None or high is None:
        return False
    return bool(low <= last[-1].timestamp()[1] <= high)


def build_plan(
    ctx: OpsContext, request: RestoreKafkaRequest, env: RestoreEnv
) -> tuple[Plan, Prepared]:
    prepared = prepare(ctx, request)
    prepared.figures.update(data_loss_figures(prepared))
    chosen, chain = prepared.chosen, prepared.chain
    to_read = objects_to_read(chain, prepared.topics)

    def check(context: StepContext) -> dict[str, int]:
        total = sum(item.size for _m, item in to_read)
        progress = ByteProgress(f"check {request.store}", total=total)
        try:
            count, size = verify_checksums(chosen.objects, [i for _m, i in to_read], progress)
        finally:
            progress.done()
        context.note(f"{count} objects, {human_bytes(size)}: sizes and SHA-256 match")
        return {"objects": count, "bytes": size}

    def restore_topic(topic: str) -> FunctionStep:
        target = prepared.targets[topic]

        def restore(context: StepContext) -> dict[str, Any]:
            progress = RecordProgress(f"restore {topic}")
            try:
                result = restore_kafka(
                    chain,
                    chosen.objects,
                    prepared.bootstrap,
                    topics=[topic],
                    rename={topic: target} if target != topic else None,
                    since=prepared.since,
                    until=prepared.until,
                    client_config=prepared.client_config,
                    progress=progress,
                    lineage_header=request.lineage_header,
                    append=request.force,
                    committed=prepared.groups,
                )
            except KafkaRestoreFailed as error:
                raise RecoveryError(str(error)) from None
            finally:
                progress.done()
            produced = result.produced
            present = sum(p.already_present for p in result.partitions)
            context.note(
                f"{produced:,} produced, {present:,} already there"
                + (f", created {', '.join(result.created_topics)}" if result.created_topics else "")
            )
            return {
                "expected": sum(p.expected for p in result.partitions),
                "verified": sum(p.verified or 0 for p in result.partitions),
                "produced": produced,
                "already_present": present,
                "group_offsets": result.group_offsets(),
            }

        def verify(context: StepContext) -> None:
            result = context.results.get(f"restore.{request.store}.{topic}") or {}
            expected, verified = result.get("expected"), result.get("verified")
            if expected != verified:
                raise RecoveryError(f"{target}: {verified} records verified, {expected} expected")
            whole = prepared.expected[topic]
            if prepared.since is None and prepared.until is None and expected != whole:
                raise RecoveryError(
                    f"{target}: {expected} records restored, the manifests count {whole}"
                )
            context.note(f"{verified:,} records verified in {target}")

        return FunctionStep(
            f"restore.{request.store}.{topic}",
            f"restore {topic} -> {target} from {len(chain)} backup(s) "
            f"{_chain_text(chain)} on {prepared.bootstrap}"
            + _range_text(prepared.since, prepared.until)
            + f" ({prepared.expected[topic]:,} records in the chain)",
            restore,
            confirm=verify,
        )

    checks = FunctionStep(
        f"check.{request.store}",
        f"read {len(to_read)} objects of the chain from {chosen.objects.name} and check sizes "
        "and SHA-256 against the manifests",
        check,
        mutates=False,
    )
    restores = [restore_topic(topic) for topic in prepared.topics]
    groups = _groups_step(request, prepared, [step.id for step in restores])
    parameters: dict[str, Any] = request.model_dump() | {
        "stack": ctx.stack,
        "backup_id": chosen.entry.backup_id,
        "recovery_point": chosen.entry.recovery_point.isoformat(),
        "chain": [m.backup_id for m in chain],
        "target": prepared.bootstrap,
    }
    dependencies = {step.id: [checks.id] for step in restores}
    if groups is not None:
        dependencies[groups.id] = [step.id for step in restores]
    plan = Plan.from_dependencies(
        f"restore kafka {request.store}",
        [checks, *restores, *([groups] if groups is not None else [])],
        dependencies,
        parameters,
    )
    return plan, prepared


def _groups_step(
    request: RestoreKafkaRequest, prepared: Prepared, restore_ids: list[str]
) -> FunctionStep | None:
    """Set the groups' translated offsets once every topic is restored, and read them back."""
    if not prepared.groups:
        return None
    names = sorted(prepared.groups)

    def apply(context: StepContext) -> dict[str, Any]:
        translated: GroupOffsets = {}
        for step_id in restore_ids:
            found = (context.results.get(step_id) or {}).get("group_offsets") or {}
            for group, by_topic in found.items():
                for topic, partitions in by_topic.items():
                    translated.setdefault(group, {}).setdefault(topic, {}).update(partitions)
        missing = [g for g in names if g not in translated]
        if missing:
            raise RecoveryError(f"no translated offsets for consumer group(s) {missing}")
        try:
            done = set_group_offsets(prepared.bootstrap, translated, prepared.client_config)
        except GroupOffsetsError as error:
            raise RecoveryError(str(error)) from None
        context.note(
            "; ".join(f"{g}: {n} partitions set and read back" for g, n in sorted(done.items()))
        )
        return {"groups": translated}

    targets = sorted({prepared.targets[t] for g in names for t in prepared.groups[g]})
    return FunctionStep(
        f"groups.{request.store}",
        f"set consumer group offsets of {', '.join(names)} on {', '.join(targets)}, translated "
        "to the restored records' offsets (refused if a group has members)",
        apply,
    )


def _chain_text(chain: list[Manifest]) -> str:
    if len(chain) == 1:
        return f"{chain[0].backup_id} (full)"
    return f"{chain[0].backup_id} (full) .. {chain[-1].backup_id}"


def _range_text(since: datetime | None, until: datetime | None) -> str:
    if since is None and until is None:
        return ""
    low = since.isoformat() if since else "the start"
    high = until.isoformat() if until else "the end"
    return f", records timestamped from {low} to before {high}"


def data_loss_figures(prepared: Prepared, now: datetime | None = None) -> dict[str, Any]:
    moment = now or datetime.now(UTC)
    entry = prepared.chosen.entry
    return {
        "backup_id": entry.backup_id,
        "chain": " ".join(m.backup_id for m in prepared.chain),
        "recovery_point": entry.recovery_point.isoformat(),
        "recovery_point_age_seconds": round((moment - entry.recovery_point).total_seconds(), 1),
        "records_in_chain": sum(prepared.expected.values()),
    }


VERB = RestoreVerb(RestoreKafkaRequest, build_plan, "restore-kafka")
