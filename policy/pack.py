"""Wrap the pure rules of ``policy.rules`` as pulumi_policy policies."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    Policy,
    PolicyResource,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from policy import rules

PACK_NAME = "trading-dr"


def to_rule_resource(resource: PolicyResource) -> rules.Resource:
    return rules.Resource(resource.resource_type, resource.name, resource.urn, resource.props)


StackCheck = Callable[[Sequence[rules.Resource]], list[rules.Violation]]


def stack_validator(check: StackCheck) -> Callable[[StackValidationArgs, ReportViolation], None]:
    """The pulumi_policy callback for a stack rule: every violation reported with its URN."""

    def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        for violation in check([to_rule_resource(r) for r in args.resources]):
            report_violation(violation.message, violation.urn)

    return validate


def stack_policy(name: str, check: StackCheck, description: str) -> StackValidationPolicy:
    return StackValidationPolicy(
        name=name,
        description=description,
        validate=stack_validator(check),
        enforcement_level=EnforcementLevel.MANDATORY,
    )


def kms_validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    for message in rules.kms_key_rotates(args.resource_type, args.props):
        report_violation(message, None)


ResourceCheck = Callable[[str, Mapping[str, Any]], list[str]]


def resource_validator(
    check: ResourceCheck,
) -> Callable[[ResourceValidationArgs, ReportViolation], None]:
    """The pulumi_policy callback for a rule over one resource's type and properties."""

    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        for message in check(args.resource_type, args.props):
            report_violation(message, None)

    return validate


def policies() -> list[Policy]:
    built: list[Policy] = [
        stack_policy(name, check, description)
        for name, (check, description) in rules.STACK_RULES.items()
    ]
    built.append(
        ResourceValidationPolicy(
            name="kms-keys-rotate",
            description="Customer-managed KMS keys rotate.",
            validate=kms_validate,
            enforcement_level=EnforcementLevel.MANDATORY,
        )
    )
    built += [
        ResourceValidationPolicy(
            name=name,
            description=description,
            validate=resource_validator(check),
            enforcement_level=EnforcementLevel.MANDATORY,
        )
        for name, (check, description) in rules.RESOURCE_RULES.items()
    ]
    return built
