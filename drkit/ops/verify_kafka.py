"""The test restore of a Kafka backup for ``invoke verify``: its chain restored into renamed
scratch topics on the store's own cluster, records counted per topic, the topics deleted."""

from __future__ import annotations

import secrets
from typing import Any

from confluent_kafka.admin import AdminClient

from drkit.context import OpsContext
from drkit.endpoints import endpoint, kafka_settings
from drkit.kafka_auth import client_settings
from drkit.ops.restore_kafka import chain_for
from drkit.ops.scratch import CheckMissed, Holder
from drkit.ops.selection import Chosen
from drkit.restore.kafka import restore_kafka


def test_restore(
    ctx: OpsContext, chosen: Chosen, holder: Holder, source: str
) -> tuple[str, dict[str, Any]]:
    chain = chain_for(chosen)
    host, port = endpoint(ctx, chosen.store)
    bootstrap = f"{host}:{port}"
    settings = kafka_settings(ctx, chosen.store)
    suffix = secrets.token_hex(3)
    topics = sorted({t for m in chain for t in m.counts})
    rename = {t: f"{t}.verify-{suffix}" for t in topics}
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
        f"{sum(found.values()):,} records into scratch topics *.verify-{suffix} (deleted), "
        "counts match",
        {"records": found},
    )
