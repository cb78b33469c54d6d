"""``python -m policy check --stack S --resources FILE.json``: the pack without the Pulumi CLI.

FILE is either a JSON list of resources shaped the way the test mocks record them (``type``,
``name``, ``urn``, ``inputs``, ``parent``; optional ``outputs``, merged over the inputs as the
engine does for a policy pack), or the output of ``pulumi preview --json`` (its ``steps``: each
step's ``newState``; deleted resources are not part of the stack the preview leads to).

Exit 0: no violation. Exit 1: one line per violation, ``policy-name: resource: message``.
Exit 2: bad input (missing or unreadable file, bad JSON, unknown stack), one line, no traceback.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

from policy.floors import ROOT, floors_for_stack
from policy.registry import evaluate
from policy.rules import Resource
from stackmodels.errors import ConfigError
from stackmodels.strict_yaml import UnreadableFile, read_text

MAX_RESOURCES_BYTES = 64 * 1024 * 1024
"""A preview of both stacks is a few MiB; anything near this is not a resources file."""
STACK_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
GONE = ("delete", "delete-replaced", "discard", "discard-replaced", "read-discard")
"""Preview steps whose resource is not in the stack the preview leads to."""


class BadInput(ValueError):
    """The resources file or the stack cannot be used; the message names which and why."""


def _name_of(urn: str) -> str:
    return urn.rsplit("::", 1)[-1]


def _props(record: Mapping[str, Any], where: str) -> dict[str, Any]:
    props: dict[str, Any] = {}
    for key in ("inputs", "outputs"):
        value = record.get(key)
        if value is None:
            continue
        if not isinstance(value, Mapping):
            raise BadInput(f"{where}: {key!r} must be an object, got {type(value).__name__}")
        props.update(value)
    return props


def _resource(record: Any, where: str, stack: str) -> Resource:
    if not isinstance(record, Mapping):
        raise BadInput(f"{where}: a resource must be an object, got {type(record).__name__}")
    kind = record.get("type")
    if not isinstance(kind, str) or not kind:
        raise BadInput(f"{where}: 'type' is missing")
    urn = record.get("urn")
    name = record.get("name")
    if not isinstance(urn, str) or not urn:
        if not isinstance(name, str) or not name:
            raise BadInput(f"{where}: needs a 'urn' or a 'name'")
        urn = f"urn:pulumi:{stack}::trading-dr::{kind}::{name}"
    if not isinstance(name, str) or not name:
        name = _name_of(urn)
    return Resource(kind, name, urn, _props(record, where))


def parse_resources(document: Any, stack: str) -> list[Resource]:
    """The resources of a mocks-shaped list or of ``pulumi preview --json`` output."""
    if isinstance(document, list):
        return [_resource(r, f"resource {i}", stack) for i, r in enumerate(document)]
    if isinstance(document, Mapping) and isinstance(document.get("steps"), list):
        resources = []
        for i, step in enumerate(document["steps"]):
            if not isinstance(step, Mapping):
                raise BadInput(f"step {i}: must be an object")
            state = step.get("newState")
            if step.get("op") in GONE or not isinstance(state, Mapping):
                continue
            record = {"urn": step.get("urn"), **state}
            if str(record.get("type", "")).startswith("pulumi:providers:"):
                continue
            resources.append(_resource(record, f"step {i} ({step.get('urn')})", stack))
        return resources
    raise BadInput(
        "expected a JSON list of resources (type, name, urn, inputs, parent) or the output of "
        "'pulumi preview --json' (an object with 'steps')"
    )


def load_resources(path: Path, stack: str) -> list[Resource]:
    try:
        text = read_text(path, limit=MAX_RESOURCES_BYTES, what="resources file")
    except UnreadableFile as error:
        raise BadInput(str(error)) from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise BadInput(
            f"resources file {path}: not valid JSON: {error.msg} (line {error.lineno}, "
            f"column {error.colno})"
        ) from None
    return parse_resources(document, stack)


def run(stack: str, resources_file: Path, out: TextIO, project_dir: Path = ROOT) -> int:
    if not STACK_NAME.match(stack):
        raise BadInput(f"--stack {stack!r}: not a stack name (letters, digits, '-', '_', '.')")
    try:
        floors = floors_for_stack(stack, project_dir)
    except ConfigError as error:
        reason = "; ".join(error.problems)
        known = sorted(p.name.split(".")[1] for p in project_dir.glob("Pulumi.*.yaml"))
        raise BadInput(
            f"--stack {stack!r}: no usable {error.source} ({reason}); known stacks: {known}"
        ) from None
    resources = load_resources(resources_file, stack)
    violations = evaluate(resources, floors)
    for name, violation in violations:
        message = " ".join(violation.message.split())
        out.write(f"{name}: {violation.subject}: {message}\n")
    return 1 if violations else 0


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # one line, not argparse's usage block
        print(f"policy check: {message}", file=sys.stderr)
        raise SystemExit(2)


def main(argv: Sequence[str] | None = None) -> int:
    parser = _Parser(
        prog="python -m policy check",
        description="Evaluate the policy pack over a resources file, without the Pulumi CLI.",
    )
    parser.add_argument("--stack", required=True, help="the stack whose config sets the floors")
    parser.add_argument(
        "--resources",
        required=True,
        type=Path,
        help="JSON list of resources, or the output of 'pulumi preview --json'",
    )
    args = parser.parse_args(argv)
    try:
        return run(args.stack, args.resources, sys.stdout)
    except BadInput as error:
        print(f"policy check: {error}", file=sys.stderr)
        return 2
