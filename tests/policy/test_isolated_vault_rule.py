"""``isolated-vault-grants-only-writes`` (issue 22): the real vault stack passes the whole pack;
each widening of what its bucket or key policy grants a principal outside the vault account,
applied alone to the recorded stack, fails it with a violation naming the statement and what it
grants. prod and dr (no isolated floor) are untouched by the rule."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from policy_harness import as_policy_resources, as_resource_records
from program_harness import StackRun, run_stack

from policy.check import run as check_run
from policy.floors import Floors, floors_for_stack
from policy.isolated import isolated_vault_grants_only_writes
from policy.registry import evaluate
from policy.rules import Resource

pytestmark = pytest.mark.policy

RULE = "isolated-vault-grants-only-writes"
VAULT_ACCOUNT = "210987654321"
PROD_ROOT = "arn:aws:iam::123456789012:root"
BUCKET_POLICY = ("aws:s3/bucketPolicy:BucketPolicy", "isolated-vault-policy")
AUDIT_POLICY = ("aws:s3/bucketPolicy:BucketPolicy", "isolated-vault-audit-policy")
KEY = ("aws:kms/key:Key", "isolated-vault-key")
VAULT_ARN = f"arn:aws:s3:::aipx-backup-vault-{VAULT_ACCOUNT}-us-east-2"

Statements = list[dict[str, Any]]


@pytest.fixture(scope="session")
def vault_run() -> StackRun:
    return run_stack("vault")


@pytest.fixture(scope="session")
def vault_resources(vault_run: StackRun) -> list[Resource]:
    return as_policy_resources(vault_run)


@pytest.fixture(scope="session")
def vault_floors() -> Floors:
    return floors_for_stack("vault")


def by_sid(sid: str, change: Callable[[dict[str, Any]], None]) -> Callable[[Statements], None]:
    def apply(statements: Statements) -> None:
        [statement] = [s for s in statements if s.get("Sid") == sid]
        change(statement)

    return apply


def added(statement: dict[str, Any]) -> Callable[[Statements], None]:
    return lambda statements: statements.append(statement)


def removed(sid: str) -> Callable[[Statements], None]:
    def apply(statements: Statements) -> None:
        statements[:] = [s for s in statements if s.get("Sid") != sid]

    return apply


def setting(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def apply(statement: dict[str, Any]) -> None:
        if value is None:
            statement.pop(key, None)
        else:
            statement[key] = value

    return apply


@dataclass(frozen=True)
class Mutation:
    id: str
    resource: tuple[str, str]
    change: Callable[[Statements], None]
    says: tuple[str, ...]


WRITER = "WriterProdCreatesUnderItsPrefixes"
WRITER_KEY = "WriterProdUploadsThroughS3"
WRAP_KEY = "WriterProdWrapsSecretsKeys"
PURPOSE = "kms:EncryptionContext:drkit:purpose"
BACKUP = "kms:EncryptionContext:drkit:backup"
DENY = "OutsideNeverDeletesOrReconfigures"

MUTATIONS = [
    Mutation(
        "writer-may-delete",
        BUCKET_POLICY,
        by_sid(WRITER, setting("Action", ["s3:PutObject", "s3:DeleteObject"])),
        (WRITER, "grants ['s3:DeleteObject'] beyond s3:PutObject"),
    ),
    Mutation(
        "writer-may-do-everything",
        BUCKET_POLICY,
        by_sid(WRITER, setting("Action", "s3:*")),
        (WRITER, "grants ['s3:*'] beyond s3:PutObject"),
    ),
    Mutation(
        "writer-may-change-the-policy",
        BUCKET_POLICY,
        by_sid(WRITER, setting("Action", ["s3:PutObject", "s3:PutBucketPolicy"])),
        (WRITER, "'s3:PutBucketPolicy'"),
    ),
    Mutation(
        "writer-may-write-anywhere",
        BUCKET_POLICY,
        by_sid(WRITER, setting("Resource", [f"{VAULT_ARN}/*"])),
        (WRITER, f"grants on ['{VAULT_ARN}/*'], beyond the writers' prefixes"),
    ),
    Mutation(
        "writer-not-by-role",
        BUCKET_POLICY,
        by_sid(WRITER, setting("Condition", None)),
        (WRITER, "no aws:PrincipalArn condition"),
    ),
    Mutation(
        "everyone-may-read",
        BUCKET_POLICY,
        added(
            {
                "Sid": "Anyone",
                "Effect": "Allow",
                "Principal": "*",
                "Action": "s3:GetObject",
                "Resource": f"{VAULT_ARN}/*",
            }
        ),
        ("'Anyone'", "grants to ['*'], not a writer account"),
    ),
    Mutation(
        "a-stranger-may-write",
        BUCKET_POLICY,
        by_sid(WRITER, setting("Principal", {"AWS": "arn:aws:iam::999999999999:root"})),
        (WRITER, "grants to ['arn:aws:iam::999999999999:root'], not a writer account"),
    ),
    Mutation(
        "outsiders-may-delete",
        BUCKET_POLICY,
        removed(DENY),
        ("does not deny", "'s3:DeleteObject'", "'s3:PutBucketPolicy'", VAULT_ACCOUNT),
    ),
    Mutation(
        "outsiders-may-change-retention",
        BUCKET_POLICY,
        by_sid(
            DENY,
            lambda s: s.update(
                Action=[a for a in s["Action"] if a not in ("s3:PutObjectRetention",)]
            ),
        ),
        ("does not deny ['s3:PutObjectRetention']",),
    ),
    Mutation(
        "the-deny-spares-a-production-account",
        BUCKET_POLICY,
        by_sid(
            DENY,
            setting(
                "Condition",
                {"StringNotEquals": {"aws:PrincipalAccount": [VAULT_ACCOUNT, "123456789012"]}},
            ),
        ),
        ("does not deny", "'s3:DeleteObjectVersion'"),
    ),
    Mutation(
        "outsiders-may-overwrite",
        BUCKET_POLICY,
        removed("OutsideCreatesOnly"),
        ("put without If-None-Match", "s3:if-none-match"),
    ),
    Mutation(
        "writer-may-write-the-trail",
        AUDIT_POLICY,
        added(
            {
                "Sid": "ProdWritesTrail",
                "Effect": "Allow",
                "Principal": {"AWS": PROD_ROOT},
                "Action": "s3:PutObject",
                "Resource": f"arn:aws:s3:::aipx-audit-{VAULT_ACCOUNT}-us-east-2/*",
            }
        ),
        ("'ProdWritesTrail'", "not the vault"),
    ),
    Mutation(
        "cloudtrail-for-anyone",
        AUDIT_POLICY,
        by_sid("CloudTrailDelivery", setting("Condition", None)),
        ("'CloudTrailDelivery'", "cloudtrail.amazonaws.com"),
    ),
    Mutation(
        "prod-may-decrypt-not-through-s3",
        KEY,
        by_sid(WRITER_KEY, lambda s: s["Condition"]["StringEquals"].pop("kms:ViaService")),
        (WRITER_KEY, "grants ['kms:Decrypt', 'kms:GenerateDataKey'] beyond kms:GenerateDataKey"),
    ),
    Mutation(
        "prod-may-decrypt-through-another-region",
        KEY,
        by_sid(
            WRITER_KEY,
            lambda s: s["Condition"]["StringEquals"].update(
                {"kms:ViaService": "s3.eu-west-1.amazonaws.com"}
            ),
        ),
        (WRITER_KEY, "grants ['kms:Decrypt', 'kms:GenerateDataKey'] beyond"),
    ),
    Mutation(
        "prod-may-decrypt-for-any-bucket",
        KEY,
        by_sid(WRITER_KEY, lambda s: s["Condition"].pop("StringLike")),
        (WRITER_KEY, "grants ['kms:Decrypt', 'kms:GenerateDataKey'] beyond"),
    ),
    Mutation(
        "prod-may-decrypt-for-another-bucket",
        KEY,
        by_sid(
            WRITER_KEY,
            lambda s: s["Condition"]["StringLike"].update(
                {"kms:EncryptionContext:aws:s3:arn": [VAULT_ARN, "arn:aws:s3:::other/*"]}
            ),
        ),
        (WRITER_KEY, "grants ['kms:Decrypt', 'kms:GenerateDataKey'] beyond"),
    ),
    Mutation(
        "prod-may-decrypt-a-second-statement",
        KEY,
        added(
            {
                "Sid": "ProdDecrypts",
                "Effect": "Allow",
                "Principal": {"AWS": PROD_ROOT},
                "Action": "kms:Decrypt",
                "Resource": "*",
                "Condition": {"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::123456789012:role/x"}},
            }
        ),
        ("'ProdDecrypts'", "grants ['kms:Decrypt'] beyond"),
    ),
    Mutation(
        "prod-may-manage-the-key",
        KEY,
        added(
            {
                "Sid": "ProdRoot",
                "Effect": "Allow",
                "Principal": {"AWS": PROD_ROOT},
                "Action": "kms:*",
                "Resource": "*",
            }
        ),
        ("'ProdRoot'", "grants ['kms:*'] beyond"),
    ),
    Mutation(
        "anyone-may-decrypt",
        KEY,
        added(
            {
                "Sid": "Anyone",
                "Effect": "Allow",
                "Principal": {"AWS": "*"},
                "Action": "kms:Decrypt",
                "Resource": "*",
            }
        ),
        ("'Anyone'", "grants to ['*']", "'kms:Decrypt'"),
    ),
    Mutation(
        "prod-may-wrap-anything",
        KEY,
        by_sid(WRAP_KEY, lambda s: s["Condition"].pop("StringEquals")),
        (WRAP_KEY, "grants ['kms:Encrypt'] beyond"),
    ),
    Mutation(
        "prod-may-wrap-for-another-purpose",
        KEY,
        by_sid(WRAP_KEY, lambda s: s["Condition"]["StringEquals"].update({PURPOSE: "other"})),
        (WRAP_KEY, "grants ['kms:Encrypt'] beyond"),
    ),
    Mutation(
        "prod-may-wrap-any-purpose-by-pattern",
        KEY,
        by_sid(
            WRAP_KEY,
            lambda s: s["Condition"].update(
                {"StringEquals": {}, "StringLike": s["Condition"]["StringLike"] | {PURPOSE: "*"}}
            ),
        ),
        (WRAP_KEY, "grants ['kms:Encrypt'] beyond"),
    ),
    Mutation(
        "prod-may-wrap-for-any-backup",
        KEY,
        by_sid(WRAP_KEY, lambda s: s["Condition"]["StringLike"].update({BACKUP: "*"})),
        (WRAP_KEY, "grants ['kms:Encrypt'] beyond"),
    ),
    Mutation(
        "prod-may-wrap-without-a-backup",
        KEY,
        by_sid(WRAP_KEY, lambda s: s["Condition"].pop("StringLike")),
        (WRAP_KEY, "grants ['kms:Encrypt'] beyond"),
    ),
    Mutation(
        "prod-may-wrap-widened-by-a-set-operator",
        KEY,
        by_sid(
            WRAP_KEY,
            lambda s: s["Condition"].update({"ForAnyValue:StringLike": {BACKUP: "*"}}),
        ),
        (WRAP_KEY, "grants ['kms:Encrypt'] beyond"),
    ),
    Mutation(
        "prod-may-unwrap",
        KEY,
        by_sid(WRAP_KEY, setting("Action", ["kms:Encrypt", "kms:Decrypt"])),
        (WRAP_KEY, "grants ['kms:Decrypt'] beyond"),
    ),
    Mutation(
        "prod-may-make-data-keys-directly",
        KEY,
        by_sid(WRAP_KEY, setting("Action", ["kms:Encrypt", "kms:GenerateDataKey"])),
        (WRAP_KEY, "grants ['kms:GenerateDataKey'] beyond"),
    ),
    Mutation(
        "wrap-without-principal-arn",
        KEY,
        by_sid(WRAP_KEY, lambda s: s["Condition"].pop("ArnLike")),
        (WRAP_KEY, "no aws:PrincipalArn condition"),
    ),
    Mutation(
        "writer-key-without-principal-arn",
        KEY,
        by_sid(WRITER_KEY, lambda s: s["Condition"].pop("ArnLike")),
        (WRITER_KEY, "no aws:PrincipalArn condition"),
    ),
]


def mutated(
    resources: list[Resource], target: tuple[str, str], change: Callable[[Statements], None]
) -> list[Resource]:
    out = []
    for resource in resources:
        if (resource.type, resource.name) == target:
            props = copy.deepcopy(dict(resource.props))
            document = json.loads(props["policy"])
            change(document["Statement"])
            props["policy"] = json.dumps(document)
            resource = Resource(resource.type, resource.name, resource.urn, props)
        out.append(resource)
    return out


def test_the_vault_stack_passes_the_whole_pack(
    vault_resources: list[Resource], vault_floors: Floors
) -> None:
    assert evaluate(vault_resources, vault_floors) == []


def test_prod_and_dr_are_not_vault_stacks(
    prod_resources: list[Resource],
    dr_resources: list[Resource],
    prod_floors: Floors,
    dr_floors: Floors,
) -> None:
    assert prod_floors.isolated is None and dr_floors.isolated is None
    assert isolated_vault_grants_only_writes(prod_resources, prod_floors) == []
    assert isolated_vault_grants_only_writes(dr_resources, dr_floors) == []


@pytest.mark.parametrize("mutation", MUTATIONS, ids=[m.id for m in MUTATIONS])
def test_each_widening_fails_the_pack(
    mutation: Mutation, vault_resources: list[Resource], vault_floors: Floors
) -> None:
    resources = mutated(vault_resources, mutation.resource, mutation.change)
    found = [v for name, v in evaluate(resources, vault_floors) if name == RULE]
    assert found, f"{mutation.id}: no {RULE} violation"
    text = "\n".join(v.message for v in found if v.resource == mutation.resource[1])
    missing = [s for s in mutation.says if s not in text]
    assert not missing, f"{mutation.id}: {missing} not in {text}"


def test_the_check_cli_reads_the_vault_stack(
    vault_run: StackRun, tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """``python -m policy check --stack vault``: the vault's floors, clean, then a widening."""
    import io

    records = copy.deepcopy(as_resource_records(vault_run))  # the run is shared: never mutated
    path = tmp_path / "vault.json"
    path.write_text(json.dumps(records))
    out = io.StringIO()
    assert check_run("vault", path, out) == 0, out.getvalue()
    for record in records:
        if (record["type"], record["name"]) == KEY:
            document = json.loads(record["inputs"]["policy"])
            for statement in document["Statement"]:
                if statement.get("Sid") == WRITER_KEY:  # Decrypt, but for any bucket
                    statement["Condition"].pop("StringLike")
            record["inputs"]["policy"] = json.dumps(document)
    path.write_text(json.dumps(records))
    out = io.StringIO()
    assert check_run("vault", path, out) == 1
    assert f"{RULE}: isolated-vault-key: key policy statement '{WRITER_KEY}'" in out.getvalue()
