"""Errors that name the bad key, its value and what is allowed, one line per problem."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import ValidationError


def format_location(location: Sequence[int | str]) -> str:
    return ".".join(str(part) for part in location) or "(root)"


def problems_from(error: ValidationError, prefix: str = "") -> list[str]:
    """One line per pydantic error: ``key = value: what is allowed``."""
    lines = []
    for item in error.errors(include_url=False):
        key = format_location(item["loc"])
        key = f"{prefix}:{key}" if prefix else key
        if item["type"] == "missing":
            lines.append(f"{key}: missing; {item['msg'].lower()}")
            continue
        value = item.get("input")
        shown = repr(value) if not isinstance(value, dict) else "{...}"
        message = item["msg"].removeprefix("Value error, ")
        lines.append(f"{key} = {shown}: {message}")
    return lines


class ConfigError(ValueError):
    """The stack config is invalid; ``problems`` holds one message per problem."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        listing = "\n".join(f"  - {problem}" for problem in problems)
        super().__init__(
            f"invalid stack config in {source} ({len(problems)} problem(s)):\n{listing}"
        )


class OutputsError(ValueError):
    """Stack outputs are missing or mistyped; the message names each output and the stack."""

    def __init__(self, stack: str, problems: list[str]) -> None:
        self.stack = stack
        self.problems = problems
        listing = "\n".join(f"  - {problem}" for problem in problems)
        super().__init__(f"stack outputs of stack {stack!r} are unusable:\n{listing}")
