"""Wrap the one rule set of ``policy.registry`` as pulumi_policy policies (every one mandatory).

The floors come from the stack's config: the stack is read from a resource's URN
(``urn:pulumi:<stack>::...``) and ``Pulumi.<stack>.yaml`` is loaded from the repository root. A
stack whose config cannot be loaded is itself a violation: rules without floors would pass
anything.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

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

from policy.floors import Floors, floors_for_stack, stack_of_urn
from policy.registry import RULES, ResourceCheck, Rule, StackCheck
from policy.rules import Resource
from stackmodels.errors import ConfigError

PACK_NAME = "trading-dr"


def to_rule_resource(resource: PolicyResource) -> Resource:
    return Resource(resource.resource_type, resource.name, resource.urn, resource.props)


def floors_of(urns: Sequence[str]) -> Floors | str:
    """The floors of the stack the URNs belong to, or why they cannot be had."""
    stacks = {s for s in (stack_of_urn(u) for u in urns) if s}
    if len(stacks) != 1:
        return f"cannot tell the stack from the resource URNs (found {sorted(stacks)})"
    [stack] = stacks
    try:
        return floors_for_stack(stack)
    except ConfigError as error:
        return f"no floors for stack {stack!r}: {error}"


def stack_validator(check: StackCheck) -> Callable[[StackValidationArgs, ReportViolation], None]:
    """The pulumi_policy callback for a stack rule: every violation reported with its URN."""

    def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        resources = [to_rule_resource(r) for r in args.resources]
        floors = floors_of([r.urn for r in resources])
        if isinstance(floors, str):
            report_violation(floors, None)
            return
        for violation in check(resources, floors):
            report_violation(violation.message, violation.urn)

    return validate


def resource_validator(
    check: ResourceCheck,
) -> Callable[[ResourceValidationArgs, ReportViolation], None]:
    """The pulumi_policy callback for a rule over one resource."""

    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        floors = floors_of([args.urn])
        if isinstance(floors, str):
            report_violation(floors, None)
            return
        resource = Resource(args.resource_type, args.name, args.urn, args.props)
        for violation in check(resource, floors):
            report_violation(violation.message, None)

    return validate


def policy(rule: Rule) -> Policy:
    if rule.per_resource is not None:
        return ResourceValidationPolicy(
            name=rule.name,
            description=rule.description,
            validate=resource_validator(rule.per_resource),
            enforcement_level=EnforcementLevel.MANDATORY,
        )
    return StackValidationPolicy(
        name=rule.name,
        description=rule.description,
        validate=stack_validator(rule.check),
        enforcement_level=EnforcementLevel.MANDATORY,
    )


def policies() -> list[Policy]:
    return [policy(rule) for rule in RULES]
