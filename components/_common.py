"""What every component shares: the args base model, Pulumi input fields, providers and tags."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Annotated, Any

import pulumi
from pydantic import AfterValidator, BaseModel, ConfigDict

PACKAGE = "trading-dr"
"""The first part of every component type token (``trading-dr:storage:BackupVault``)."""

TAG_PLATFORM = "trading-dr:platform"
TAG_ROLE = "trading-dr:stack-role"
TAG_PURPOSE = "trading-dr:purpose"
"""Tags the policy pack reads: what a bucket is for, and which stack role owns it."""

PURPOSE_VAULT = "backup-vault"
PURPOSE_AUDIT = "audit-journal"
PURPOSE_ACCESS_LOGS = "access-logs"
PURPOSE_CACHE_EXPORT = "cache-export-staging"


class ComponentArgs(BaseModel):
    """Base of every component's args: unknown fields and mutation are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)


def _checked(pattern: str | None, what: str) -> Any:
    regex = re.compile(pattern) if pattern else None

    def check(value: Any) -> Any:
        if value is None:
            raise ValueError(f"{what} is required")
        if isinstance(value, str):
            if not value.strip():
                raise ValueError(f"{what} must not be empty")
            if regex is not None and not regex.match(value):
                raise ValueError(f"{value!r} is not {what} (expected {pattern})")
        elif not isinstance(value, pulumi.Output):
            raise ValueError(f"{what} must be a string or a pulumi Output, got {type(value)}")
        return value

    return AfterValidator(check)


if TYPE_CHECKING:
    StrInput = pulumi.Input[str]
    KmsKeyArnInput = pulumi.Input[str]
    S3BucketArnInput = pulumi.Input[str]
    IamRoleArnInput = pulumi.Input[str]
else:
    StrInput = Annotated[Any, _checked(None, "a non-empty string")]
    KmsKeyArnInput = Annotated[
        Any, _checked(r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/", "a KMS key ARN")
    ]
    S3BucketArnInput = Annotated[Any, _checked(r"^arn:aws[a-z-]*:s3:::[a-z0-9.-]+$", "an S3 ARN")]
    IamRoleArnInput = Annotated[
        Any, _checked(r"^arn:aws[a-z-]*:iam::\d{12}:role/", "an IAM role ARN")
    ]


def require_provider(
    opts: pulumi.ResourceOptions | None, component: str
) -> pulumi.ProviderResource:
    """The explicit provider a component's children are created with (no default providers)."""
    if opts is None or opts.provider is None:
        raise ValueError(
            f"{component}: opts.provider is required; pass the region's explicit provider "
            "(default providers are disabled, so nothing may land in an implicit region)"
        )
    return opts.provider


def child_opts(
    parent: pulumi.Resource,
    provider: pulumi.ProviderResource,
    **extra: Any,
) -> pulumi.ResourceOptions:
    """Options of a child: parented to the component, with the component's explicit provider."""
    return pulumi.ResourceOptions(parent=parent, provider=provider, **extra)


def tags(platform: str, stack_role: str, purpose: str) -> dict[str, str]:
    return {TAG_PLATFORM: platform, TAG_ROLE: stack_role, TAG_PURPOSE: purpose}


def to_json(value: Any) -> str:
    """Stable JSON for policy documents (sorted keys keep diffs quiet)."""
    return json.dumps(value, sort_keys=True)


def policy_document(
    statements: list[dict[str, Any]], *, policy_id: str | None = None
) -> dict[str, Any]:
    """An IAM, key or resource policy: the 2012-10-17 language, ``statements``, an optional Id."""
    document: dict[str, Any] = {"Version": "2012-10-17"}
    if policy_id is not None:
        document["Id"] = policy_id
    document["Statement"] = statements
    return document


def unique_names(field: str) -> AfterValidator:
    """A validator for a list of named args (each has ``.name``): fails, naming ``field``, when
    names repeat (``Annotated[list[X], unique_names("data_classes")]``)."""

    def check(items: list[Any]) -> list[Any]:
        names = [item.name for item in items]
        if len(names) != len(set(names)):
            raise ValueError(f"{field}: names must be unique, got {names}")
        return items

    return AfterValidator(check)
