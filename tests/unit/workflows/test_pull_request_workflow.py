"""The pull-request workflow: valid for actionlint, and it previews every stack with the pack."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[3]
WORKFLOW = ROOT / ".github" / "workflows" / "pull-request.yml"
DEFAULT_CACHE = Path.home() / ".cache" / "trading-dr" / "actionlint-v1.7.7" / "actionlint"


def find_actionlint() -> str | None:
    """``$ACTIONLINT``, then PATH, then where ``scripts/install-actionlint.sh`` puts it."""
    explicit = os.environ.get("ACTIONLINT")
    if explicit and Path(explicit).is_file():
        return explicit
    found = shutil.which("actionlint")
    if found:
        return found
    return str(DEFAULT_CACHE) if DEFAULT_CACHE.is_file() else None


def test_workflow_passes_actionlint() -> None:
    actionlint = find_actionlint()
    if actionlint is None:
        message = "actionlint not found: run scripts/install-actionlint.sh (or set $ACTIONLINT)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    result = subprocess.run(
        [actionlint, "-no-color", str(WORKFLOW)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_workflow_previews_every_stack_with_the_policy_pack_and_comments() -> None:
    workflow = yaml.safe_load(WORKFLOW.read_text())
    preview = workflow["jobs"]["preview"]
    stacks = preview["strategy"]["matrix"]["stack"]
    assert sorted(stacks) == sorted(p.stem.split(".", 1)[1] for p in ROOT.glob("Pulumi.*.yaml"))
    [step] = [s for s in preview["steps"] if str(s.get("uses", "")).startswith("pulumi/actions@")]
    assert step["with"]["command"] == "preview"
    assert step["with"]["comment-on-pr"] is True
    assert step["with"]["diff"] is True
    assert step["with"]["policyPacks"] == "policy"
    assert preview["permissions"]["pull-requests"] == "write"
    test_steps = " ".join(str(s.get("run", "")) for s in workflow["jobs"]["test"]["steps"])
    assert "pytest" in test_steps and "install-actionlint.sh" in test_steps


def test_workflow_runs_the_mutation_tests_and_promtool() -> None:
    steps = yaml.safe_load(WORKFLOW.read_text())["jobs"]["test"]["steps"]
    runs = [str(s.get("run", "")) for s in steps]
    assert any("pytest -m policy tests/policy" in r for r in runs)
    assert any("pytest -m unit" in r for r in runs)
    assert any("apt-get install" in r and "prometheus" in r for r in runs)
    [promtool] = [r for r in runs if "promtool check rules" in r]
    assert "prometheus_render.py --out build/promtool" in promtool
    assert "promtool test rules build/promtool/backup-rules.test.yml" in promtool
    assert (ROOT / "tests" / "promtool" / "backup-rules.test.yml").is_file()


def test_preview_posts_the_violations_and_fails_on_any() -> None:
    steps = yaml.safe_load(WORKFLOW.read_text())["jobs"]["preview"]["steps"]
    by_id = {s["id"]: s for s in steps if "id" in s}
    assert by_id["preview"]["continue-on-error"] is True
    assert "python -m policy check --stack" in by_id["check"]["run"]
    assert "pulumi preview" in by_id["check"]["run"] and "--json" in by_id["check"]["run"]
    [post] = [s for s in steps if "gh pr comment" in str(s.get("run", ""))]
    assert post["if"] == "always()"
    last = steps[-1]
    assert last["if"] == ("steps.preview.outcome != 'success' || steps.check.outputs.status != '0'")
    assert "exit 1" in last["run"]
