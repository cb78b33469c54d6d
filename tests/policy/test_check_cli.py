"""``python -m policy check``: the whole pack over a resources file, without the Pulumi CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from policy_harness import as_resource_records
from program_harness import ROOT, StackRun

from policy import check

pytestmark = pytest.mark.policy

LINE = r"^[a-z0-9-]+: [A-Za-z0-9_.-]+: .+$"


def write(path: Path, document: Any) -> Path:
    path.write_text(json.dumps(document))
    return path


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "policy", "check", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
        timeout=120,
    )


def weakened(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The issue's first example: the vault's Object Lock set to GOVERNANCE for 1 day."""
    records = json.loads(json.dumps(records))
    [lock] = [r for r in records if r["name"] == "backup-vault-object-lock"]
    lock["inputs"]["rule"]["defaultRetention"] = {"mode": "GOVERNANCE", "days": 1}
    return records


def as_preview(records: list[dict[str, Any]]) -> dict[str, Any]:
    """The shape of ``pulumi preview --json``: steps with the resource's new state."""
    steps = [
        {
            "op": "create",
            "urn": r["urn"],
            "newState": {
                "urn": r["urn"],
                "type": r["type"],
                "custom": True,
                "inputs": r["inputs"],
                "outputs": r["outputs"],
                "parent": r["parent"],
            },
        }
        for r in records
    ]
    steps.append(
        {
            "op": "delete",
            "urn": "urn:pulumi:prod::trading-dr::aws:kms/key:Key::retired-key",
            "oldState": {"type": "aws:kms/key:Key", "inputs": {"enableKeyRotation": False}},
        }
    )
    return {"steps": steps, "changeSummary": {"create": len(records), "delete": 1}}


def test_the_real_stacks_pass(tmp_path: Path, prod_run: StackRun, dr_run: StackRun) -> None:
    for run in (prod_run, dr_run):
        records = as_resource_records(run)
        assert all(r["parent"] for r in records if not r["type"].startswith("pulumi:providers:"))
        result = run_cli(
            "--stack", run.stack, "--resources", str(write(tmp_path / "r.json", records))
        )
        assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_a_weakening_exits_1_with_one_line_per_violation(
    tmp_path: Path, prod_run: StackRun
) -> None:
    path = write(tmp_path / "weak.json", weakened(as_resource_records(prod_run)))
    result = run_cli("--stack", "prod", "--resources", str(path))
    assert result.returncode == 1, result.stderr
    lines = result.stdout.splitlines()
    assert lines == [
        "object-lock-meets-retention: backup-vault-object-lock: Object Lock default retention "
        "mode is GOVERNANCE; floor: COMPLIANCE (retention class 'financial': COMPLIANCE, 2555 "
        "days, of data class 'trading-signals')",
        "object-lock-meets-retention: backup-vault-object-lock: Object Lock default retention "
        "is 1 day; floor: 2555 days (retention class 'financial': COMPLIANCE, 2555 days, of "
        "data class 'trading-signals')",
    ]


def test_preview_json_steps_are_read(
    tmp_path: Path, prod_run: StackRun, capsys: pytest.CaptureFixture[str]
) -> None:
    records = as_resource_records(prod_run)
    clean = write(tmp_path / "preview.json", as_preview(records))
    assert check.main(["--stack", "prod", "--resources", str(clean)]) == 0
    weak = write(tmp_path / "weak-preview.json", as_preview(weakened(records)))
    assert check.main(["--stack", "prod", "--resources", str(weak)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 2 and all(line.startswith("object-lock-meets-retention: ") for line in out)


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--stack", "prod", "--resources", "missing.json"], "missing.json not found"),
        (["--stack", "staging", "--resources", "{ok}"], "--stack 'staging': no usable"),
        (["--stack", "../etc", "--resources", "{ok}"], "not a stack name"),
        (["--stack", "prod", "--resources", "{bad}"], "not valid JSON"),
        (["--stack", "prod", "--resources", "{object}"], "expected a JSON list of resources"),
        (["--stack", "prod", "--resources", "{typeless}"], "resource 0: 'type' is missing"),
        (["--stack", "prod"], "the following arguments are required: --resources"),
    ],
    ids=[
        "missing-file",
        "unknown-stack",
        "bad-stack-name",
        "bad-json",
        "object",
        "typeless",
        "no-file",
    ],
)
def test_bad_input_exits_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], says: str
) -> None:
    files = {
        "{ok}": write(tmp_path / "ok.json", []),
        "{bad}": tmp_path / "bad.json",
        "{object}": write(tmp_path / "object.json", {"resources": []}),
        "{typeless}": write(tmp_path / "typeless.json", [{"name": "x", "inputs": {}}]),
    }
    files["{bad}"].write_text("[{")
    args = [str(files.get(a, tmp_path / a if a.endswith(".json") else a)) for a in args]
    assert exit_code(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and says in err and "Traceback" not in err


def exit_code(args: list[str]) -> int | str | None:
    """``check.main``'s exit status, whether returned or raised (argparse's usage errors)."""
    try:
        return check.main(args)
    except SystemExit as exit:
        return exit.code


def test_bad_input_through_the_entry_point_has_no_traceback(tmp_path: Path) -> None:
    result = run_cli("--stack", "prod", "--resources", str(tmp_path / "nope.json"))
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr == f"policy check: resources file {tmp_path / 'nope.json'} not found\n"
