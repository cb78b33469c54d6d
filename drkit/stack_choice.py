"""Which stack a command acts on: always one it was told, and a production one only when confirmed.

- The stack comes from ``--stack``, else the ``DRKIT_STACK`` environment variable, else (for a
  ``--resume``) the journal of the run it resumes; with none of them the command refuses (one
  line, exit 2, naming both ways and the stacks there are). There is no default stack.
- Its first line of output names it, and where the choice came from.
- Every stack but ``local`` (``prod``, ``dr``, ``vault``, any other Pulumi stack) is production:
  a command that can change it asks first, on a terminal, for the stack's name; ``--yes`` skips
  the question, and without a terminal and without ``--yes`` it refuses (exit 2, nothing done).
  A command that only reads (``config.check``, ``backups.list``, ``backups.info``, ``status``,
  ``verify --skip-test-restore``, and every ``--dry-run``) asks nothing: it still needs the stack.

This module imports nothing heavy: the invoke tasks and ``python -m drkit`` call it first.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

STACK_VARIABLE = "DRKIT_STACK"
LOCAL = "local"


class StackRefused(ValueError):
    """No stack was given, or a production stack was not confirmed: exit 2, nothing done."""


@dataclass(frozen=True)
class StackChoice:
    name: str
    came_from: str
    """``--stack``, ``DRKIT_STACK`` or ``run <id>'s journal``."""

    @property
    def production(self) -> bool:
        return is_production(self.name)

    def line(self) -> str:
        kind = "production" if self.production else "local, on this machine"
        return f"stack: {self.name} ({kind}; from {self.came_from})"


def is_production(stack: str) -> bool:
    """Every stack but ``local`` runs in a cloud account: prod, dr, vault, any other."""
    return stack != LOCAL


def known_stacks(project_dir: Path) -> list[str]:
    """``local`` and every ``Pulumi.<stack>.yaml`` of the project."""
    found = sorted(
        path.name[len("Pulumi.") : -len(".yaml")] for path in project_dir.glob("Pulumi.*.yaml")
    )
    return [LOCAL, *(name for name in found if name != LOCAL)]


def choose(
    given: str | None,
    project_dir: Path,
    environ: Mapping[str, str] | None = None,
    journal_stack: str | None = None,
    journal_run: str = "",
) -> StackChoice:
    """The stack from ``--stack`` (``given``), ``DRKIT_STACK``, or the resumed run's journal;
    ``StackRefused`` naming both ways and the stacks there are when there is none. A resume on
    another stack than its journal's is refused too."""
    variable = (os.environ if environ is None else environ).get(STACK_VARIABLE, "").strip()
    if given:
        choice = StackChoice(given, "--stack")
    elif variable:
        choice = StackChoice(variable, STACK_VARIABLE)
    elif journal_stack:
        return StackChoice(journal_stack, f"run {journal_run}'s journal")
    else:
        stacks = ", ".join(known_stacks(project_dir))
        raise StackRefused(
            f"no stack given: pass --stack NAME or set {STACK_VARIABLE}=NAME "
            f"(stacks: {stacks}); nothing was done"
        )
    if journal_stack and journal_stack != choice.name:
        raise StackRefused(
            f"run {journal_run} ran on stack {journal_stack!r}, not {choice.name!r} "
            f"(from {choice.came_from}): resume it with --stack {journal_stack}; nothing was done"
        )
    return choice


def terminal_answer(prompt: str) -> str | None:
    """The operator's answer on the terminal; ``None`` without one."""
    if not sys.stdin.isatty():
        return None
    try:
        return input(prompt)
    except EOFError:
        return None


def confirm(
    choice: StackChoice,
    *,
    yes: bool,
    read_only: bool,
    ask: Callable[[str], str | None] = terminal_answer,
) -> None:
    """Nothing for the local stack, a read-only command or ``--yes``; otherwise the operator
    types the stack's name on the terminal, or ``StackRefused``."""
    if not choice.production or read_only or yes:
        return
    answer = ask(f"{choice.name} is a production stack; type its name to go on: ")
    if answer is None:
        raise StackRefused(
            f"{choice.name} is a production stack and this command can change it: confirm on a "
            "terminal, or pass --yes; nothing was done"
        )
    if answer.strip() != choice.name:
        raise StackRefused(f"not confirmed ({choice.name!r} not typed); nothing was done")
