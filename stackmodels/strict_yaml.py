"""Reading a stack file strictly: bounded, UTF-8, and no key given twice.

PyYAML's ``safe_load`` keeps the last of two equal keys in a mapping, so a stack file that sets
``trading-dr:retention_classes`` twice (a merge gone wrong, a paste) would be read with one of them
silently dropped. Here a duplicate key is a problem naming the key and both lines.

A config path that is a directory, a device such as ``/dev/zero``, a file larger than any stack
file, or bytes that are not UTF-8 are named too, in one line, and never read without a bound.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode

MAX_CONFIG_BYTES = 4 * 1024 * 1024
"""A stack file is a few kilobytes; a bigger one is not a stack file (or is ``/dev/zero``)."""


class UnreadableFile(ValueError):
    """A file that cannot be read as text: missing, a directory, too big, or not UTF-8."""

    def __init__(self, what: str, path: Path, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{what} {path} {reason}")


class DuplicateKey(yaml.YAMLError):
    """A mapping that gives one key twice; names the key and the lines of both."""

    def __init__(self, key: str, first_line: int, second_line: int) -> None:
        self.key = key
        self.first_line = first_line
        self.second_line = second_line
        super().__init__(
            f"duplicate key {key!r} at lines {first_line} and {second_line}; "
            "give each key once (YAML would keep only the last)"
        )


class StrictLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a key given twice in one mapping."""

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # "<<": merged keys may be overridden
                continue
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            try:
                first = seen.get(key)
            except TypeError:  # an unhashable key: SafeLoader refuses it itself
                continue
            if first is not None:
                raise DuplicateKey(str(key), first, line)
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


def load_strict(text: str) -> Any:
    """Parse one YAML document; ``DuplicateKey`` (a ``yaml.YAMLError``) for a key given twice."""
    return yaml.load(text, Loader=StrictLoader)  # a SafeLoader subclass: no tags run


def read_text(path: Path, limit: int = MAX_CONFIG_BYTES, what: str = "file") -> str:
    """The UTF-8 text of ``path``, read with a bound: ``UnreadableFile`` naming the path and why.

    Reads at most ``limit + 1`` bytes, so ``/dev/zero`` or a huge file is refused at once instead
    of filling memory or never returning.
    """
    try:
        with path.open("rb") as stream:
            data = stream.read(limit + 1)
    except FileNotFoundError:
        raise UnreadableFile(what, path, "not found") from None
    except IsADirectoryError:
        raise UnreadableFile(what, path, "is a directory, not a file") from None
    except PermissionError:
        raise UnreadableFile(what, path, "cannot be read: permission denied") from None
    except OSError as error:
        raise UnreadableFile(what, path, f"cannot be read: {error.strerror}") from None
    if len(data) > limit:
        raise UnreadableFile(
            what, path, f"is larger than {limit // 1024} KiB, more than any {what} (a device?)"
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise UnreadableFile(
            what, path, f"is not UTF-8 text (byte 0x{data[error.start]:02x} on line {line})"
        ) from None
