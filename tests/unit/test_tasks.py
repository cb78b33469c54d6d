"""``tasks.py`` stays flags and one call per task: no short flags (invoke's automatic ones gave
``-t`` three meanings and failover a flag ``--``), one kind per long flag in every task, the
shared options declared once, and the file under 400 lines."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from invoke.collection import Collection
from invoke.context import Context
from invoke.tasks import Task

import tasks
from drkit.ops import cli

ROOT = Path(__file__).resolve().parents[2]
MAX_LINES = 400


def every_task(collection: Collection, prefix: str = "") -> Iterator[tuple[str, Task[Any]]]:
    for name, task in collection.tasks.items():
        yield prefix + name, task
    for name, child in collection.collections.items():
        yield from every_task(child, f"{prefix}{name}.")


def flags() -> dict[str, dict[str, tuple[str, ...]]]:
    """Task -> long flag -> every name invoke gives that argument."""
    found: dict[str, dict[str, tuple[str, ...]]] = {}
    for name, task in every_task(tasks.namespace):
        arguments = task.get_arguments(ignore_unknown_help=True)
        found[name] = {max(a.names, key=len): tuple(a.names) for a in arguments}
    return found


def test_no_task_has_a_short_flag_or_a_flag_that_is_only_dashes() -> None:
    short = {
        f"{task} {name}"
        for task, arguments in flags().items()
        for names in arguments.values()
        for name in names
        if len(name) == 1 or not name.strip("-_")
    }
    assert short == set()
    assert "dns-wait-seconds" in flags()["failover"]  # the flag once shown as `--`


def test_a_long_flag_takes_one_kind_of_value_in_every_task() -> None:
    kinds: dict[str, set[str]] = defaultdict(set)
    for _name, task in every_task(tasks.namespace):
        for argument in task.get_arguments(ignore_unknown_help=True):
            kinds[argument.name].add(argument.kind.__name__)
    assert {flag: kind for flag, kind in kinds.items() if len(kind) > 1} == {}
    assert kinds["stack"] == {"str"} and kinds["dry_run"] == {"bool"}


def test_the_shared_options_have_one_declaration() -> None:
    for option in ("stack", "outputs", "dry_run", "yes", "resume"):
        assert option in tasks.SHARED
    restores = [name for name in flags() if name.startswith("restore.")]
    assert len(restores) == len(cli.RESTORE_VERBS)
    for name in restores:
        assert {"stack", "outputs", "dry-run", "yes", "resume"} <= set(flags()[name]), name


def test_a_task_called_in_python_fills_the_flags_it_is_not_given(monkeypatch: Any) -> None:
    """Tests and scripts call tasks as functions with a few flags; invoke gives all of them."""
    called: list[tuple[Path, dict[str, Any]]] = []
    monkeypatch.setattr(cli, "kafka_topics", lambda root, **given: called.append((root, given)))
    task = tasks.command("topics", cli.kafka_topics, "doc", *tasks.CHECK)
    task(Context(), yes=True)
    given = {"stack": "local", "outputs": "", "dry_run": False, "yes": True}
    assert called == [(tasks.ROOT, given)]


def test_tasks_py_stays_under_400_lines() -> None:
    lines = (ROOT / "tasks.py").read_text().count("\n")
    assert lines < MAX_LINES, f"tasks.py has {lines} lines: move logic to drkit/ops/cli.py"


def test_a_task_called_in_python_takes_its_positional_arguments_in_order(monkeypatch: Any) -> None:
    """``invoke backups.info ID`` takes the id positionally, and so does
    ``tasks.backups_info(c, ID)``."""
    called: list[dict[str, Any]] = []
    monkeypatch.setattr(cli, "backups_info", lambda root, **given: called.append(given))
    task = tasks.command(
        "info",
        cli.backups_info,
        "doc",
        positional=("backup_id",),
        backup_id=(tasks.REQUIRED, "id"),
        store=("", "store"),
    )
    task(Context(), "20261121T041500Z-3f9a1c", store="trading-db")
    assert called == [{"backup_id": "20261121T041500Z-3f9a1c", "store": "trading-db"}]
    assert [a.name for a in task.get_arguments(ignore_unknown_help=True)] == ["backup_id", "store"]
    assert list(task.positional) == ["backup_id"]
