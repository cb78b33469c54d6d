"""invoke's own parse errors as refusals: exit 2 and one line, like every other bad input.

An unknown flag or task, or a flag given without its value, is bad input and nothing was done,
so it ends as every refusal does (``drkit.cli_errors``): ``error: ...`` on one line, exit 2.
invoke's ``Program`` prints its ``ParseError`` and exits 1, the code of a failed run.

The tasks run under invoke's own program (``invoke ...``, ``python -m invoke``), which loads
``tasks.py`` before it parses the tasks' flags (core flags are parsed leniently: what it does not
know is left to that second parse). So ``tasks.py`` calls ``refuse_parse_errors()`` as it loads,
and from then on ``Program.parse_tasks`` turns a ``ParseError`` into ``Exit(line, code=2)``, which
the program prints and exits with. Nothing else of invoke changes.
"""

from __future__ import annotations

import re
from typing import Any

from invoke.exceptions import Exit, ParseError
from invoke.program import Program

REFUSED = 2
_NEEDS_VALUE = re.compile(r"^Flag <Argument: (?P<name>[\w-]+)(?: \((?P<short>\w)\))?> needed value")


def parse_error_line(error: ParseError) -> str:
    """``error: ...``: invoke's message, a flag named as typed, and where to read the flags."""
    text = " ".join(str(error).split())
    needs = _NEEDS_VALUE.match(text)
    if needs is not None:
        text = f"--{needs.group('name').replace('_', '-')} needs a value"
    context = getattr(error, "context", None)
    task = getattr(context, "name", None)
    hint = f"see `invoke --help {task}`" if task else "see `invoke --list`"
    return f"error: {text.rstrip('!')}; {hint}"


def refuse_parse_errors() -> None:
    """Make the running invoke program exit 2 on a parse error (idempotent)."""
    original: Any = Program.parse_tasks
    if getattr(original, "drkit_refuses", False):
        return

    def parse_tasks(self: Program) -> None:
        try:
            original(self)
        except ParseError as error:
            raise Exit(parse_error_line(error), code=REFUSED) from None

    parse_tasks.drkit_refuses = True  # type: ignore[attr-defined]
    Program.parse_tasks = parse_tasks  # type: ignore[method-assign]
