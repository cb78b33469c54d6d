"""Write the new primary into the stack files, so the next ``pulumi up`` agrees with reality.

``trading-dr:active_region`` is set in ``Pulumi.prod.yaml`` and ``Pulumi.dr.yaml`` by editing one
line (or inserting one after ``trading-dr:peer_region``, with a comment saying why): comments,
ordering, quoting and blank lines of the rest of the file are kept byte for byte, which a YAML
round trip would not do. The result is validated with the stack config model before anything is
written.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from stackmodels import StackConfig
from stackmodels.config import PROJECT, split_namespace

KEY = f"{PROJECT}:active_region"
_EXISTING = re.compile(
    rf"^(?P<head>\s*{re.escape(KEY)}:\s*)(?P<value>[^#\r\n]*?)(?P<tail>\s+#[^\r\n]*)?(?P<eol>\r?\n?)$"
)
_ANCHORS = (f"{PROJECT}:peer_region:", f"{PROJECT}:region:")


class StackConfigEditError(ValueError):
    """The stack file cannot be edited safely; it was left unchanged."""


@dataclass(frozen=True)
class ConfigChange:
    path: Path
    before: str
    after: str

    @property
    def changed(self) -> bool:
        return self.before != self.after

    def diff(self) -> str:
        return "".join(
            difflib.unified_diff(
                self.before.splitlines(keepends=True),
                self.after.splitlines(keepends=True),
                fromfile=f"{self.path.name} (now)",
                tofile=f"{self.path.name} (after)",
            )
        )

    def write(self) -> None:
        if self.changed:
            self.path.write_bytes(self.after.encode())


def active_region_change(path: Path, region: str, why: str) -> ConfigChange:
    """The edit that makes ``path`` say ``active_region: region``; validated, not yet written."""
    try:
        before = path.read_bytes().decode()  # bytes: read_text would turn CRLF into LF
    except FileNotFoundError:
        raise StackConfigEditError(f"{path}: not found") from None
    lines = before.splitlines(keepends=True)
    edited = None
    for number, line in enumerate(lines):
        match = _EXISTING.match(line)
        if match:
            edited = [
                *lines[:number],
                f"{match['head']}{region}{match['tail'] or ''}{match['eol']}",
                *lines[number + 1 :],
            ]
            break
    if edited is None:
        edited = _inserted(path, lines, region, why)
    after = "".join(edited)
    _validate(path, after, region)
    return ConfigChange(path, before, after)


def _inserted(path: Path, lines: list[str], region: str, why: str) -> list[str]:
    for anchor in _ANCHORS:
        for number, line in enumerate(lines):
            if line.lstrip().startswith(anchor):
                indent = line[: len(line) - len(line.lstrip())]
                eol = "\r\n" if line.endswith("\r\n") else "\n"
                if not line.endswith(("\n", "\r\n")):
                    lines = [*lines[:number], line + eol, *lines[number + 1 :]]
                added = [
                    f"{indent}# The region that writes now ({why}): the next `pulumi up` agrees "
                    f"with it.{eol}",
                    f"{indent}{KEY}: {region}{eol}",
                ]
                return [*lines[: number + 1], *added, *lines[number + 1 :]]
    raise StackConfigEditError(f"{path}: no {' or '.join(_ANCHORS)} line to put {KEY} after")


def _validate(path: Path, text: str, region: str) -> None:
    document = yaml.safe_load(text)
    values, _ = split_namespace(document["config"])
    config = StackConfig.from_pulumi_config(values, str(path))
    if config.active_region != region:
        raise StackConfigEditError(
            f"{path}: after the edit {KEY} reads {config.active_region!r}, not {region!r}"
        )


def stack_files(project_dir: Path, dr_stack: str, config: StackConfig) -> list[Path]:
    """Both stacks' files: the primary stack the dr stack reads, and the dr stack's own."""
    primary = config.primary_stack or "prod"
    return [project_dir / f"Pulumi.{primary}.yaml", project_dir / f"Pulumi.{dr_stack}.yaml"]
