"""``tasks.py`` stays flags and one call per task: no short flags (invoke's automatic ones gave
``-t`` three meanings and failover a flag ``--``), one kind per long flag in every task, the
shared options declared once, and the file under 400 lines."""

from __future__ import annotations

import functools
import json
import os
import pty
import subprocess
import sys
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from invoke.collection import Collection
from invoke.context import Context
from invoke.exceptions import Exit
from invoke.tasks import Task

import tasks
from drkit import stack_choice
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
    task(Context(), stack="local", yes=True)
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


# --- the stack: always told, named first, a production one confirmed (issue 20 item 1) ----------


def stack_tasks() -> list[tuple[str, Task[Any]]]:
    """Every task with a --stack flag, but ``drill``: told none, it runs its own servers."""
    found = []
    for name, task in every_task(tasks.namespace):
        arguments = {a.name for a in task.get_arguments(ignore_unknown_help=True)}
        if "stack" in arguments and name != "drill":
            found.append((name, task))
    return found


def test_every_task_that_acts_on_a_stack_has_no_default_stack() -> None:
    names = [name for name, _ in stack_tasks()]
    assert {"backup.store", "config.check", "status", "failover", "restore.aurora"} <= set(names)
    for name, task in stack_tasks():
        stack = next(a for a in task.get_arguments(ignore_unknown_help=True) if a.name == "stack")
        assert stack.default == "", name
    assert "DRKIT_STACK" in tasks.SHARED["stack"][1]


def test_a_task_told_no_stack_refuses_in_one_line_naming_both_ways(monkeypatch: Any) -> None:
    monkeypatch.delenv("DRKIT_STACK", raising=False)
    for name, task in stack_tasks():
        with pytest.raises(Exit) as refused:
            task(Context(), *["x" for _ in task.positional])
        assert refused.value.code == 2, name
        message = str(refused.value.message)
        assert message.startswith("error: no stack given: pass --stack NAME or set DRKIT_STACK")
        assert "(stacks: local, dr, prod, vault)" in message and "\n" not in message, name


def recorder(name: str, called: list[dict[str, Any]]) -> Any:
    """A stand-in for the ``cli`` function ``name`` (its name says whether it only reads)."""

    def call(root: Path, **given: Any) -> None:
        called.append(given)

    call.__name__ = name
    return call


def test_drkit_stack_chooses_the_stack_and_the_first_line_names_it(
    monkeypatch: Any, capsys: Any
) -> None:
    called: list[dict[str, Any]] = []
    task = tasks.command("store", recorder("backup_store", called), "doc", *tasks.CHECK)
    monkeypatch.setenv("DRKIT_STACK", "local")
    task(Context())
    assert called[-1]["stack"] == "local"
    assert capsys.readouterr().out == "stack: local (local, on this machine; from DRKIT_STACK)\n"
    monkeypatch.setenv("DRKIT_STACK", "prod")
    task(Context(), stack="local")  # --stack wins over the environment
    assert called[-1]["stack"] == "local"
    assert (
        capsys.readouterr().out.splitlines()[0]
        == "stack: local (local, on this machine; from --stack)"
    )


def test_json_output_keeps_stdout_json_and_names_the_stack_on_stderr(capsys: Any) -> None:
    """``--format json`` and ``--json`` (audit.list, local.status) both print only JSON."""
    called: list[dict[str, Any]] = []
    for flag in ({"format": ("text", "f")}, {"json": (False, "j")}):
        task = tasks.command("list", recorder("audit_list", called), "doc", *tasks.READ, **flag)
        task(
            Context(),
            stack="local",
            **{name: "json" if name == "format" else True for name in flag},
        )
        printed = capsys.readouterr()
        assert printed.out == "" and printed.err.startswith("stack: local ("), flag
    # Reading the audit journal of a production stack asks for no confirmation.
    reader = tasks.command("list", recorder("audit_list", called), "doc", *tasks.READ)
    reader(Context(), stack="prod")
    assert called[-1]["stack"] == "prod"


def test_a_production_stack_is_refused_off_a_terminal_without_yes(
    monkeypatch: Any, capsys: Any
) -> None:
    """pytest's stdin is not a terminal: no question can be asked, so prod, dr and any stack but
    local need --yes; a command that only reads, or a dry run, needs none."""
    monkeypatch.delenv("DRKIT_STACK", raising=False)
    called: list[dict[str, Any]] = []
    changes = tasks.command("store", recorder("backup_store", called), "doc", *tasks.CHECK)
    for stack in ("prod", "dr", "vault"):
        with pytest.raises(Exit) as refused:
            changes(Context(), stack=stack)
        assert refused.value.code == 2
        assert refused.value.message == (
            f"error: {stack} is a production stack and this command can change it: confirm on "
            "a terminal, or pass --yes; nothing was done"
        )
    assert called == []
    changes(Context(), stack="prod", yes=True)
    changes(Context(), stack="dr", dry_run=True)
    reads = tasks.command("list", recorder("backups_list", called), "doc", *tasks.READ)
    reads(Context(), stack="prod")
    assert [given["stack"] for given in called] == ["prod", "dr", "prod"]
    first_lines = [
        line for line in capsys.readouterr().out.splitlines() if line.startswith("stack")
    ]
    told = [f"stack: {stack} (production; from --stack)" for stack in ("prod", "dr", "vault")]
    assert first_lines == [*told, *(told[index] for index in (0, 1, 0))]


def test_on_a_terminal_the_operator_types_the_production_stack_name() -> None:
    choice = stack_choice.StackChoice("prod", "--stack")
    stack_choice.confirm(choice, yes=False, read_only=False, ask=lambda prompt: "prod\n")
    with pytest.raises(stack_choice.StackRefused, match="not confirmed"):
        stack_choice.confirm(choice, yes=False, read_only=False, ask=lambda prompt: "yes")
    local = stack_choice.StackChoice("local", "--stack")
    stack_choice.confirm(local, yes=False, read_only=False, ask=lambda prompt: None)


def test_invoke_drill_told_no_stack_runs_its_own_servers(monkeypatch: Any, capsys: Any) -> None:
    monkeypatch.delenv("DRKIT_STACK", raising=False)
    flags = cli.on_stack(cli.drill, ROOT, {"stack": "", "yes": False, "dry_run": False})
    assert flags["stack"] == "local"
    assert capsys.readouterr().out.startswith("stack: none (the drill's own servers")
    monkeypatch.setenv("DRKIT_STACK", "prod")  # told a stack, it is the monthly drill's
    with pytest.raises(stack_choice.StackRefused, match="production"):
        cli.on_stack(cli.drill, ROOT, {"stack": "", "yes": False, "dry_run": False})


def test_a_resumed_run_keeps_its_journal_stack(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.delenv("DRKIT_STACK", raising=False)
    journal = tmp_path / ".drkit" / "journal"
    journal.mkdir(parents=True)
    event = {"event": "run_started", "parameters": {"stack": "local", "store": "trading-db"}}
    (journal / "restore-postgres-1.jsonl").write_text(json.dumps(event) + "\n")
    flags = {"stack": "", "resume": "restore-postgres-1", "yes": False, "dry_run": False}
    restore = functools.partial(cli.restore, "postgres")
    assert cli.on_stack(restore, tmp_path, flags)["stack"] == "local"
    with pytest.raises(stack_choice.StackRefused, match="ran on stack 'local', not 'prod'"):
        cli.on_stack(restore, tmp_path, flags | {"stack": "prod"})


def test_the_real_commands_refuse_without_a_stack_in_one_line() -> None:
    """Through invoke's and ``python -m drkit``'s own parsing, as an operator types them."""
    env = {key: value for key, value in os.environ.items() if key != "DRKIT_STACK"}
    commands = [
        [sys.executable, "-m", "invoke", "backups.list"],
        [sys.executable, "-m", "drkit", "backup", "trading-db", "--project-dir", str(ROOT)],
    ]
    for command in commands:
        result = subprocess.run(
            command, cwd=ROOT, env=env, capture_output=True, text=True, check=False, timeout=120
        )
        assert result.returncode == 2, result.stderr
        assert result.stdout == ""
        assert result.stderr.startswith("error: no stack given: pass --stack NAME or set DRKIT")
        assert result.stderr.count("\n") == 1


def test_on_a_terminal_a_production_stack_is_confirmed_by_typing_its_name() -> None:
    """A real terminal (a pty) on stdin: the answer ``prod`` lets the task go on (to the Pulumi
    CLI, absent here: its refusal shows the question was passed); another answer stops it."""
    env = {key: value for key, value in os.environ.items() if key != "DRKIT_STACK"}
    env["PATH"] = str(Path(sys.executable).parent)  # no pulumi
    outcomes = {}
    for answer in ("prod", "yes"):
        leader, follower = pty.openpty()
        try:
            process = subprocess.Popen(
                [sys.executable, "-m", "invoke", "kafka.topics", "--stack", "prod"],
                cwd=ROOT,
                env=env,
                stdin=follower,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            os.write(leader, f"{answer}\n".encode())
            out, err = process.communicate(timeout=120)
        finally:
            os.close(leader)
            os.close(follower)
        outcomes[answer] = (process.returncode, out, err)
    code, out, err = outcomes["prod"]
    assert out == (
        "stack: prod (production; from --stack)\n"
        "prod is a production stack; type its name to go on: "
    )
    assert code == 2 and "the pulumi CLI is not on PATH" in err
    code, out, err = outcomes["yes"]
    assert code == 2 and err == "error: not confirmed ('prod' not typed); nothing was done\n"
