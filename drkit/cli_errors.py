"""How every command ends when something is wrong: one line on stderr, and an exit code that says
which kind of wrong.

- exit 2, ``error: ...``: a **refusal**. The input is bad (an unknown store, a target that is not
  empty or not a plain name, a stack file that is a directory, not UTF-8 or gives a key twice, an
  outputs file that is not JSON, a vault bucket that does not exist) and nothing was changed.
  Every ``ValueError`` the ops package raises is one: ``RecoveryError``, ``ConfigError``,
  ``OutputsError``, ``TargetRefused``, pydantic's ``ValidationError``.
- exit 2 as well, ``error: ...``, for what an operator fixes with a command: no or expired AWS
  credentials, an AWS endpoint that does not answer, no GCP credentials
  (``drkit.operator_errors``: what is missing, where it was looked for, the command).
- exit 1, ``FAILED: ...``: a **failure**. The input was fine but the work could not be done
  (a server that does not answer mid-work, a bug); the line names the cause.

Never a traceback, unless ``DRKIT_DEBUG=1``: then the exception goes up as it is.

A command whose outcome, not an error, sets its exit code (a plan that failed, a drill that
missed an objective, a config check that found problems) raises ``Ended``: its code, and the line
of its own if it has one; never a traceback.

This module imports nothing heavy (the invoke tasks import it at load, ``invoke --list`` stays
fast) and nothing of invoke (``drkit`` does not depend on it): the invoke tasks hand ``guarded``
the exception that exits.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

from drkit.operator_errors import actionable
from drkit.storage.objectstore import is_missing_bucket

REFUSED = 2
FAILED = 1
DEBUG_VARIABLE = "DRKIT_DEBUG"
MAX_LINE = 2000
"""A cause longer than this is cut: one line on a terminal, not a server's whole error page."""


P = ParamSpec("P")
R = TypeVar("R")


class Ended(Exception):
    """The command ends with exit ``code`` and, if given, ``line`` on stderr."""

    def __init__(self, code: int, line: str = "") -> None:
        super().__init__(line or f"exit {code}")
        self.code = code
        self.line = line


def debug_enabled() -> bool:
    return os.environ.get(DEBUG_VARIABLE, "") not in ("", "0", "false", "no")


def exit_code(error: BaseException) -> int:
    """2 for a refusal (bad input, nothing changed), 1 for a failure."""
    if isinstance(error, ValueError):
        return REFUSED
    if is_missing_bucket(error):
        return REFUSED
    return FAILED


def one_line(error: BaseException) -> str:
    """The error's message on one line: each problem of a multi-problem error joined with "; "."""
    problems = getattr(error, "problems", None)
    if isinstance(problems, list) and problems:
        head = str(error).splitlines()[0].rstrip(":")
        text = f"{head}: {'; '.join(str(p) for p in problems)}"
    elif _is_validation_error(error):
        text = _validation_text(error)
    elif isinstance(error, KeyError) and not isinstance(error, ValueError):
        text = f"KeyError: {error}"
    else:
        text = str(error) or type(error).__name__
    flat = " ".join(text.split())
    return flat if len(flat) <= MAX_LINE else flat[: MAX_LINE - 3] + "..."


def describe(error: BaseException) -> tuple[int, str]:
    """(exit code, the one line to print) for an error that ended a command: the likeliest
    3 a.m. failures (no or expired credentials, an endpoint that does not answer) as a refusal
    that names the fix (``drkit.operator_errors``)."""
    fix = actionable(error)
    if fix is not None:
        return REFUSED, f"error: {fix}"
    code = exit_code(error)
    if code == REFUSED:
        line = one_line(error)
        if is_missing_bucket(error):
            line += "; check --stack and --outputs: they name a bucket that does not exist"
        return code, f"error: {line}"
    cause = one_line(error)
    name = type(error).__name__
    if not cause.startswith(name):
        cause = f"{name}: {cause}"
    return code, f"FAILED: {cause} (set {DEBUG_VARIABLE}=1 for the traceback)"


def guarded(body: Callable[P, R], exit_with: Callable[[str, int], BaseException]) -> Callable[P, R]:
    """``body`` that ends on any exception with ``exit_with(line, code)``: one line, exit 2 or 1.

    An exception that is already an exit (``exit_with``'s type) passes, its message made one
    line; ``Ended`` becomes one (``exit_with(line, code)``), even with ``DRKIT_DEBUG=1``;
    ``KeyboardInterrupt`` passes (the plan runner turns it into exit 130 and a resumable
    journal). ``DRKIT_DEBUG=1`` lets every other exception through with its traceback.
    """
    exit_type = type(exit_with("", 0))

    @functools.wraps(body)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return body(*args, **kwargs)
        except exit_type as exiting:
            message = getattr(exiting, "message", None)
            if isinstance(message, str) and "\n" in message:
                exiting.message = " ".join(message.split())  # type: ignore[attr-defined]
            raise
        except Ended as ended:
            line = " ".join(ended.line.split()) if "\n" in ended.line else ended.line
            raise exit_with(line, ended.code) from None
        except Exception as error:
            if debug_enabled():
                raise
            code, line = describe(error)
            raise exit_with(line, code) from None

    return run


def main_guarded(main: Callable[[], int], write: Callable[[str], Any]) -> int:
    """For ``python -m drkit``: ``main()``'s exit code, or the error's one line and 2 or 1."""
    try:
        return main()
    except Ended as ended:
        if ended.line:
            write(ended.line + "\n")
        return ended.code
    except Exception as error:
        if debug_enabled():
            raise
        code, line = describe(error)
        write(line + "\n")
        return code


def _is_validation_error(error: BaseException) -> bool:
    return type(error).__name__ == "ValidationError" and hasattr(error, "errors")


def _validation_text(error: Any) -> str:
    """pydantic's errors as ``field = value: why``, without its URLs and line breaks."""
    parts = []
    for item in error.errors(include_url=False):
        where = ".".join(str(part) for part in item["loc"]) or "(root)"
        message = str(item["msg"]).removeprefix("Value error, ")
        if item["type"] == "value_error":  # our own validators name the input themselves
            parts.append(message)
        else:
            parts.append(f"{where} = {item.get('input')!r}: {message}")
    return "; ".join(parts)
