"""``invoke kafka.topics`` against the session's broker: topics created with the wrong retention
and cleanup are shown as a diff, left alone by a dry run and by an unconfirmed run, fixed by
``--yes`` with every other setting kept, and a second run finds nothing to do. A topic the
config maps to no class is reported and never changed."""

from __future__ import annotations

import io
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AdminClient,
    ConfigResource,
    NewTopic,
    ResourceType,
)

from drkit.kafka_topics import admin_for, reconcile
from tests.integration.ops_helpers import ROOT, context, delete_topics

pytestmark = pytest.mark.integration

DAY_MS = 86_400_000
HOUR_MS = 3_600_000
PROD_TOPICS = (
    "      strategy-signals: critical\n      order-events: critical\n      market-data: standard\n"
)


def invoke(project: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    """The project's tasks.py (ROOT pointed at the project), run as an operator would."""
    tasks = project / "tasks.py"
    if not tasks.exists():
        tasks.write_text(
            (ROOT / "tasks.py")
            .read_text()
            .replace("ROOT = Path(__file__).resolve().parent", f"ROOT = Path({str(project)!r})")
        )
    command = [sys.executable, "-m", "invoke", "kafka.topics", "--stack", "local", *arguments]
    return subprocess.run(
        command, cwd=project, capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL
    )


def refuse(_prompt: str) -> bool:
    raise AssertionError("asked for confirmation")


def map_topics(project: Path, classes: dict[str, str]) -> None:
    """Give the project's msk section these topics (each test its own on the shared broker)."""
    path = project / "Pulumi.prod.yaml"
    text = path.read_text()
    assert PROD_TOPICS in text
    mapping = "".join(f"      {topic}: {name}\n" for topic, name in classes.items())
    path.write_text(text.replace(PROD_TOPICS, mapping))


def settings(admin: AdminClient, topic: str) -> dict[str, str]:
    futures = admin.describe_configs([ConfigResource(ResourceType.TOPIC, topic)])
    entries = next(iter(futures.values())).result(timeout=30)
    return {name: entry.value for name, entry in entries.items()}


def test_topics_are_reconciled_with_their_classes_after_a_dry_run_diff(
    project_with_kafka: Path,
) -> None:
    project = project_with_kafka
    suffix = secrets.token_hex(3)
    critical, standard, stray = (f"{n}-{suffix}" for n in ("signals", "ticks", "stray"))
    map_topics(project, {critical: "critical", standard: "standard"})
    endpoint = context(project).outputs.stores["event-stream"]
    bootstrap = f"{endpoint.host}:{endpoint.port}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    wrong = {"retention.ms": str(HOUR_MS), "cleanup.policy": "compact"}
    created = admin.create_topics(
        [
            NewTopic(critical, 1, 1, config={**wrong, "max.message.bytes": "2000000"}),
            NewTopic(standard, 1, 1, config={"retention.ms": str(HOUR_MS)}),
            NewTopic(stray, 1, 1, config=wrong),
        ]
    )
    for future in created.values():
        future.result(timeout=30)
    try:
        before = {t: settings(admin, t) for t in (critical, standard, stray)}

        dry = invoke(project, "--dry-run")
        assert dry.returncode == 0, dry.stdout + dry.stderr
        assert "3 setting(s) to change on 2 topic(s):" in dry.stdout
        assert f"  {critical} cleanup.policy: compact -> delete\n" in dry.stdout
        assert f"  {critical} retention.ms: {HOUR_MS} -> {7 * DAY_MS}\n" in dry.stdout
        assert f"  {standard} retention.ms: {HOUR_MS} -> {3 * DAY_MS}\n" in dry.stdout
        assert f"{standard} cleanup.policy" not in dry.stdout  # already delete (the default)
        assert stray in dry.stdout.split("left as they are: ")[1]
        assert "dry run: nothing was changed" in dry.stdout

        unconfirmed = invoke(project)  # no terminal, no --yes: refused
        assert unconfirmed.returncode == 3, unconfirmed.stdout + unconfirmed.stderr
        assert "aborted: not confirmed" in unconfirmed.stdout
        assert {t: settings(admin, t) for t in (critical, standard, stray)} == before

        # In process from here: the task's wiring is shown above; each invoke costs seconds.
        broker, msk = admin_for(context(project))
        out = io.StringIO()
        assert reconcile(broker, msk, out, dry_run=False, yes=True, confirm=refuse) == 0
        assert "changed 3 setting(s)" in out.getvalue()
        after = {t: settings(admin, t) for t in (critical, standard, stray)}
        assert after[critical]["retention.ms"] == str(7 * DAY_MS)
        assert after[critical]["cleanup.policy"] == "delete"
        assert after[critical]["max.message.bytes"] == "2000000"  # untouched: incremental
        assert after[standard]["retention.ms"] == str(3 * DAY_MS)
        assert after[stray] == before[stray]  # unknown to the config: never changed
        changed = {(critical, "retention.ms"), (critical, "cleanup.policy")}
        changed |= {(standard, "retention.ms")}
        assert {
            (t, k) for t in (critical, standard) for k in after[t] if after[t][k] != before[t][k]
        } == changed

        again = io.StringIO()  # nothing to confirm, so no --yes needed
        assert reconcile(broker, msk, again, dry_run=False, yes=False, confirm=refuse) == 0
        assert again.getvalue().startswith("nothing to change")
        assert stray in again.getvalue().split("left as they are: ")[1]
    finally:
        delete_topics(bootstrap, [critical, standard, stray])


def test_a_stack_without_topic_classes_is_refused_with_one_line(project_with_kafka: Path) -> None:
    path = project_with_kafka / "Pulumi.prod.yaml"
    text = path.read_text()
    start = text.index("  trading-dr:msk:\n")
    end = text.index("  trading-dr:elasticache:")
    comment = text.rindex("\n  #", 0, start) + 1
    path.write_text(text[:comment] + text[end:])
    refused = invoke(project_with_kafka, "--dry-run")
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert refused.stderr.strip().splitlines() == [
        "error: stack 'local': its config has no msk section (no topic classes)"
    ]
