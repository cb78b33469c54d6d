"""The test restore of a Kafka backup for ``invoke verify`` and the monthly drill: its chain
restored into scratch topics ``<purpose>.<holder tag>.<topic>`` on the store's own cluster, records
counted per topic, the topics deleted; a killed run's topics are deleted by the next run or
``invoke verify --cleanup``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from confluent_kafka.admin import AdminClient

from drkit.context import OpsContext
from drkit.endpoints import endpoint, kafka_settings
from drkit.kafka_auth import client_settings
from drkit.ops.restore_kafka import chain_for
from drkit.ops.scratch import (
    VERIFY,
    CheckMissed,
    Holder,
    parse_topic,
    sweep,
    topic_name,
    topic_prefix,
)
from drkit.ops.selection import Chosen
from drkit.restore.kafka import restore_kafka


def test_restore(
    ctx: OpsContext, chosen: Chosen, holder: Holder, source: str, purpose: str = VERIFY
) -> tuple[str, dict[str, Any]]:
    chain = chain_for(chosen)
    host, port = endpoint(ctx, chosen.store)
    bootstrap = f"{host}:{port}"
    settings = kafka_settings(ctx, chosen.store)
    topics = sorted({t for m in chain for t in m.counts})
    rename = {t: topic_name(t, holder, purpose) for t in topics}
    try:
        result = restore_kafka(
            chain, chosen.objects, bootstrap, topics, rename, client_config=settings
        )
    finally:
        admin = AdminClient(client_settings(bootstrap, settings))
        futures = admin.delete_topics(list(rename.values()), operation_timeout=30)
        for future in futures.values():
            try:
                future.result()
            except Exception:  # a topic the failed restore never created
                continue
    counts = result.counts()
    found = {t: counts.get(rename[t], 0) for t in topics}
    expected = {t: sum(m.counts.get(t, 0) for m in chain) for t in topics}
    wrong = {t: (found[t], expected[t]) for t in topics if found[t] != expected[t]}
    if wrong:
        raise CheckMissed(f"records (restored, in the chain) differ: {wrong}")
    return (
        f"chain {chain[0].backup_id}..{chain[-1].backup_id} ({len(chain)} backups): "
        f"{sum(found.values()):,} records into scratch topics "
        f"{topic_prefix(holder, purpose)}* (deleted), counts match",
        {"records": found, "scratch_topics": sorted(rename.values())},
    )


def cleanup(ctx: OpsContext, store: str, now: datetime, forced: bool, dry_run: bool) -> list[str]:
    """Delete the scratch topics (``<purpose>.<holder tag>.<topic>``) killed runs left on the
    store's cluster; one line per one found."""
    host, port = endpoint(ctx, store)
    admin = AdminClient(client_settings(f"{host}:{port}", kafka_settings(ctx, store)))
    listed = admin.list_topics(timeout=30).topics
    found = [(t, parsed[0]) for t in sorted(listed) if (parsed := parse_topic(t)) is not None]

    def delete(topic: str) -> None:
        for future in admin.delete_topics([topic], operation_timeout=30).values():
            future.result()

    return sweep(found, now, forced, dry_run, delete, "topic", ("delete", "deleted"))
