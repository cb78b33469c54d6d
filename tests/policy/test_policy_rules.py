"""Each rule accepts what the components produce and rejects a bad resource or stack."""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from pulumi_policy import (
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    StackValidationArgs,
)

from policy import pack, rules
from policy.rules import Resource, Violation

pytestmark = pytest.mark.policy

Check = Callable[[Sequence[Resource]], list[Violation]]
VAULT = "backup-vault-bucket"
LOGS = "access-logs-bucket"


def edit(
    resources: list[Resource], name: str, change: Callable[[dict[str, Any]], None]
) -> list[Resource]:
    """A copy of the stack with one resource's props changed."""
    edited = []
    for resource in resources:
        if resource.name == name:
            props = copy.deepcopy(dict(resource.props))
            change(props)
            resource = Resource(resource.type, resource.name, resource.urn, props)
        edited.append(resource)
    return edited


def without(resources: list[Resource], name: str) -> list[Resource]:
    return [r for r in resources if r.name != name]


@pytest.mark.parametrize(
    "check", [c for c, _ in rules.STACK_RULES.values()], ids=list(rules.STACK_RULES)
)
def test_every_stack_rule_accepts_what_the_components_produce(
    check: Check, prod_resources: list[Resource], dr_resources: list[Resource]
) -> None:
    assert check(prod_resources) == []
    assert check(dr_resources) == []


def test_unversioned_or_suspended_bucket_is_rejected(prod_resources: list[Resource]) -> None:
    [violation] = rules.buckets_versioned(without(prod_resources, "backup-vault-versioning"))
    assert "backup-vault-bucket" in violation.message and violation.urn
    suspended = edit(
        prod_resources,
        "audit-versioning",
        lambda p: p.update(versioningConfiguration={"status": "Suspended"}),
    )
    [violation] = rules.buckets_versioned(suspended)
    assert "'audit-bucket' is not versioned" in violation.message


def test_bucket_without_customer_key_is_rejected(prod_resources: list[Resource]) -> None:
    sse_s3 = edit(
        prod_resources,
        "backup-vault-encryption",
        lambda p: p.update(
            rules=[{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"}}]
        ),
    )
    [violation] = rules.buckets_encrypted_with_customer_key(sse_s3)
    assert "customer-managed KMS key" in violation.message
    aws_managed = edit(
        prod_resources,
        "audit-encryption",
        lambda p: p.update(
            rules=[
                {
                    "applyServerSideEncryptionByDefault": {
                        "sseAlgorithm": "aws:kms",
                        "kmsMasterKeyId": "alias/aws/s3",
                    }
                }
            ]
        ),
    )
    assert len(rules.buckets_encrypted_with_customer_key(aws_managed)) == 1
    assert (
        len(rules.buckets_encrypted_with_customer_key(without(prod_resources, "audit-encryption")))
        == 1
    )


def test_sse_s3_is_allowed_only_for_a_real_access_log_target(
    prod_resources: list[Resource],
) -> None:
    not_a_target = [r for r in prod_resources if r.type not in rules.LOGGING]
    [violation] = rules.buckets_encrypted_with_customer_key(not_a_target)
    assert LOGS in violation.message
    untagged = edit(prod_resources, LOGS, lambda p: p.update(tags={}))
    assert len(rules.buckets_encrypted_with_customer_key(untagged)) == 1


def test_bucket_with_public_access_is_rejected(prod_resources: list[Resource]) -> None:
    loose = edit(
        prod_resources,
        "backup-vault-public-access-block",
        lambda p: p.update(restrictPublicBuckets=False),
    )
    [violation] = rules.buckets_block_public_access(loose)
    assert "does not block public access" in violation.message
    assert (
        len(rules.buckets_block_public_access(without(prod_resources, "audit-public-access-block")))
        == 1
    )


def test_vault_without_object_lock_is_rejected(dr_resources: list[Resource]) -> None:
    unlocked = edit(dr_resources, VAULT, lambda p: p.update(objectLockEnabled=False))
    [violation] = rules.vaults_object_locked(unlocked)
    assert "object_lock_enabled" in violation.message
    [violation] = rules.vaults_object_locked(without(dr_resources, "audit-object-lock"))
    assert "no Object Lock default retention" in violation.message


def test_vault_without_expiry_or_multipart_abort_is_rejected(
    prod_resources: list[Resource],
) -> None:
    no_abort = edit(
        prod_resources,
        "backup-vault-lifecycle",
        lambda p: p.update(rules=[r for r in p["rules"] if r["id"] != "housekeeping"]),
    )
    [violation] = rules.vaults_have_lifecycle(no_abort)
    assert "abort of incomplete multipart uploads" in violation.message
    [violation] = rules.vaults_have_lifecycle(without(prod_resources, "backup-vault-lifecycle"))
    assert "an expiration in days and an abort" in violation.message


def test_prod_vault_without_replication_is_rejected(prod_resources: list[Resource]) -> None:
    [violation] = rules.primary_vaults_replicate(
        without(prod_resources, "vault-replication-configuration")
    )
    assert "does not replicate to the dr vault" in violation.message

    def disable(props: dict[str, Any]) -> None:
        props["rules"][0]["status"] = "Disabled"

    disabled = edit(prod_resources, "vault-replication-configuration", disable)
    assert len(rules.primary_vaults_replicate(disabled)) == 1

    def unencrypted(props: dict[str, Any]) -> None:
        del props["rules"][0]["destination"]["encryptionConfiguration"]

    assert (
        len(
            rules.primary_vaults_replicate(
                edit(prod_resources, "vault-replication-configuration", unencrypted)
            )
        )
        == 1
    )


def test_dr_vault_need_not_replicate(dr_resources: list[Resource]) -> None:
    assert not any(r.type in rules.REPLICATION for r in dr_resources)
    assert rules.primary_vaults_replicate(dr_resources) == []


def test_kms_key_rotation(prod_resources: list[Resource]) -> None:
    [key] = [r for r in prod_resources if r.type == rules.KMS_KEY]
    assert rules.kms_key_rotates(key.type, key.props) == []
    assert rules.kms_key_rotates(key.type, {**key.props, "enableKeyRotation": False}) == [
        "KMS key does not rotate: set enable_key_rotation=True"
    ]
    assert (
        "cannot rotate"
        in rules.kms_key_rotates(key.type, {**key.props, "customerMasterKeySpec": "RSA_2048"})[0]
    )
    assert rules.kms_key_rotates(rules.KMS_REPLICA_KEY, {}) == []


# ---- the pulumi_policy wrappers, driven with pulumi_policy's own argument objects ------------


def _options() -> PolicyResourceOptions:
    return PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), [])


def _policy_resource(resource: Resource) -> PolicyResource:
    return PolicyResource(
        resource.type, resource.props, resource.urn, resource.name, _options(), None, None, [], {}
    )


def test_stack_wrapper_reports_each_violation_with_its_urn(
    prod_resources: list[Resource],
) -> None:
    reported: list[tuple[str, str | None]] = []
    validate = pack.stack_validator(rules.buckets_versioned)
    good = StackValidationArgs([_policy_resource(r) for r in prod_resources])
    validate(good, lambda message, urn=None: reported.append((message, urn)))
    assert reported == []
    bad = StackValidationArgs(
        [_policy_resource(r) for r in without(prod_resources, "backup-vault-versioning")]
    )
    validate(bad, lambda message, urn=None: reported.append((message, urn)))
    [(message, urn)] = reported
    assert "not versioned" in message and urn and urn.endswith("::backup-vault-bucket")


def test_resource_wrapper_reports_an_unrotated_key(prod_resources: list[Resource]) -> None:
    [key] = [r for r in prod_resources if r.type == rules.KMS_KEY]
    reported: list[str] = []
    for props, expected in ((key.props, 0), ({**key.props, "enableKeyRotation": False}, 1)):
        args = ResourceValidationArgs(key.type, props, key.urn, key.name, _options(), None)
        pack.kms_validate(args, lambda message, urn=None: reported.append(message))
        assert len(reported) == expected


def test_pack_holds_every_rule_as_mandatory() -> None:
    from pulumi_policy import EnforcementLevel

    built = pack.policies()
    assert {p.name for p in built} == {*rules.STACK_RULES, "kms-keys-rotate"}
    assert {p.enforcement_level for p in built} == {EnforcementLevel.MANDATORY}
