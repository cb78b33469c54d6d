"""Stack files are read strictly: a key given twice, a directory, /dev/zero, bytes that are not
UTF-8 are each refused in one line naming the file (stackmodels.strict_yaml)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from stackmodels import ConfigError, OutputsError, StackConfig, StackOutputs
from stackmodels.strict_yaml import DuplicateKey, UnreadableFile, load_strict, read_text

pytestmark = [pytest.mark.unit, pytest.mark.reliability]

ROOT = Path(__file__).resolve().parents[2]


def test_a_key_given_twice_is_named_with_both_lines() -> None:
    text = "config:\n  a: 1\n  b:\n    c: 2\n    d: 3\n    c: 4\n"
    with pytest.raises(DuplicateKey, match=r"duplicate key 'c' at lines 4 and 6") as refused:
        load_strict(text)
    assert (refused.value.key, refused.value.first_line, refused.value.second_line) == ("c", 4, 6)
    with pytest.raises(DuplicateKey, match="duplicate key 'a' at lines 1 and 1"):
        load_strict("{a: 1, a: 2}")
    with pytest.raises(DuplicateKey, match="duplicate key '1' at lines 1 and 2"):
        load_strict("1: x\n1: y\n")


def test_what_safe_load_reads_the_strict_loader_reads_the_same() -> None:
    for name in ("Pulumi.prod.yaml", "Pulumi.dr.yaml", "local-stack.yaml"):
        text = (ROOT / name).read_text()
        assert load_strict(text) == yaml.safe_load(text)
    merged = "base: &b {x: 1, y: 2}\nderived:\n  <<: *b\n  y: 3\n"  # an override, not a repeat
    assert load_strict(merged) == {"base": {"x": 1, "y": 2}, "derived": {"x": 1, "y": 3}}
    with pytest.raises(yaml.constructor.ConstructorError):
        load_strict("!!python/object:os.system {}")  # still a safe loader


def test_a_stack_file_with_a_key_given_twice_is_refused(tmp_path: Path) -> None:
    lines = (ROOT / "Pulumi.prod.yaml").read_text().splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("  trading-dr:platform:"))
    lines.insert(first + 2, "  trading-dr:platform: other")
    path = tmp_path / "Pulumi.dup.yaml"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ConfigError) as refused:
        StackConfig.load(path)
    assert refused.value.problems == [
        f"duplicate key 'trading-dr:platform' at lines {first + 1} and {first + 3}; "
        "give each key once (YAML would keep only the last)"
    ]


def test_files_that_cannot_be_read_are_named_at_once(tmp_path: Path) -> None:
    directory = tmp_path / "Pulumi.dir.yaml"
    directory.mkdir()
    binary = tmp_path / "Pulumi.bin.yaml"
    binary.write_bytes(b"config:\n  trading-dr:platform: caf\xe9\n")
    cases = {
        directory: "is a directory, not a file",
        binary: r"is not UTF-8 text \(byte 0xe9 on line 2\)",
        Path("/dev/zero"): "is larger than 4096 KiB, more than any stack config",
        tmp_path / "missing.yaml": "not found",
    }
    for path, why in cases.items():
        with pytest.raises(UnreadableFile, match=why):
            read_text(path, what="stack config")
    with pytest.raises(ConfigError, match=r"Pulumi.dir.yaml \(1 problem\(s\)\):\n  - is a dir"):
        StackConfig.load(directory)
    with pytest.raises(ConfigError, match="not UTF-8 text"):
        StackConfig.load(binary)
    with pytest.raises(OutputsError, match="outputs file /dev/zero is larger than 4096 KiB"):
        StackOutputs.from_file(Path("/dev/zero"), "prod")
    with pytest.raises(OutputsError, match=f"outputs file {directory} is a directory"):
        StackOutputs.from_file(directory, "prod")
