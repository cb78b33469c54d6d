"""The stack outputs: everything ops needs to find, exported by infra under exactly these names.

Ops reads them from Pulumi (``pulumi stack output --json --show-secrets -s STACK``) or from a JSON
file (``--outputs FILE``, which the local environment writes), so a renamed resource breaks a test
rather than a 3 a.m. failover.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from stackmodels.config import Role
from stackmodels.errors import OutputsError, format_location


class Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Bucket(Frozen):
    name: str = Field(min_length=3, max_length=63)
    arn: str = Field(pattern=r"^arn:aws[a-z-]*:s3:::")
    region: str


class StoreEndpoint(Frozen):
    """Where a protected store answers; the secret that holds its credentials, never the secret."""

    kind: str
    host: str
    port: int = Field(ge=1, le=65535)
    database: str | None = None
    credentials_secret: str | None = None
    resource_id: str | None = None


class StackOutputs(Frozen):
    """One stack's exports. Keys are the Pulumi output names, one to one."""

    stack: str
    role: Role
    region: str
    platform: str
    backup_vault: Bucket
    vault_key_arn: str = Field(pattern=r"^arn:aws[a-z-]*:kms:")
    audit_bucket: Bucket
    gcs_mirror_bucket: str
    k8s_namespace: str
    k8s_backup_namespace: str
    stores: dict[str, StoreEndpoint] = Field(default_factory=dict)
    aws_endpoint_url: str | None = None
    """Only the local environment sets it: the AWS API emulator's URL."""
    gcs_endpoint_url: str | None = None
    """Only the local environment sets it: the GCS emulator's URL."""

    @classmethod
    def output_names(cls) -> list[str]:
        return list(cls.model_fields)

    @classmethod
    def parse(cls, values: Any, stack: str) -> StackOutputs:
        """Validate raw outputs; each missing or mistyped output is named with the stack."""
        if not isinstance(values, dict):
            raise OutputsError(stack, [f"expected a JSON object of outputs, got {type(values)}"])
        try:
            return cls.model_validate(values)
        except ValidationError as error:
            raise OutputsError(stack, _describe(error)) from None

    @classmethod
    def from_file(cls, path: Path, stack: str | None = None) -> StackOutputs:
        name = stack or path.stem
        try:
            values = json.loads(path.read_text())
        except FileNotFoundError:
            raise OutputsError(name, [f"outputs file {path} not found"]) from None
        except json.JSONDecodeError as error:
            raise OutputsError(name, [f"outputs file {path} is not JSON: {error}"]) from None
        return cls.parse(values, name)

    @classmethod
    def from_pulumi(cls, stack: str, cwd: Path | None = None) -> StackOutputs:
        """Ask the Pulumi CLI; it reads the state backend, not the (possibly dead) region."""
        pulumi = shutil.which("pulumi")
        if pulumi is None:
            raise OutputsError(stack, ["the pulumi CLI is not on PATH; pass --outputs FILE"])
        command = [pulumi, "stack", "output", "--json", "--show-secrets", "--stack", stack]
        result = subprocess.run(command, capture_output=True, text=True, cwd=cwd, check=False)
        if result.returncode != 0:
            raise OutputsError(stack, [f"`{' '.join(command)}` failed: {result.stderr.strip()}"])
        return cls.parse(json.loads(result.stdout), stack)

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.model_dump_json(indent=2) + "\n")


def _describe(error: ValidationError) -> list[str]:
    lines = []
    for item in error.errors(include_url=False):
        name = format_location(item["loc"])
        if item["type"] == "missing":
            lines.append(f"output {name!r} is missing")
        elif item["type"] == "extra_forbidden":
            lines.append(f"output {name!r} is not one this kit knows (renamed in infra?)")
        else:
            lines.append(f"output {name!r} = {item.get('input')!r}: {item['msg']}")
    return lines
