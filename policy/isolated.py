"""The isolated vault's rule (issue 22): a ``vault`` stack grants principals outside its account
nothing beyond creating objects under their prefixes, and denies them everything destructive.

What the vault stack may grant another account (``components.isolated_vault``), and nothing more:

- bucket policies: an ``Allow`` of ``s3:PutObject`` only, to a writer account of the config
  (``trading-dr:writers``), only on ``<vault>/<prefix>*`` of that writer's prefixes, narrowed to
  its roles by an ``aws:PrincipalArn`` condition. Nothing on any other bucket of the stack;
- key policies: an ``Allow`` to a writer account, narrowed by ``aws:PrincipalArn``, of either
  ``kms:GenerateDataKey`` / ``kms:Encrypt`` / ``kms:Decrypt`` (Decrypt: what a multipart upload
  under SSE-KMS needs) only through S3 (``kms:ViaService`` = ``s3.<region>.amazonaws.com``, the
  stack's region) and only for the vault bucket (``kms:EncryptionContext:aws:s3:arn`` of the
  vault or its objects, nothing else); or ``kms:Encrypt`` alone, directly, only with the
  encryption context of a Kubernetes Secrets data key (``kms:EncryptionContext:drkit:purpose`` =
  ``kubernetes-secrets``) of that writer's own backups (``kms:EncryptionContext:drkit:backup``
  like ``<prefix>*`` of its prefixes, nothing wider): wrapping its data key, never unwrapping it.
  No other use of the key by another account;
- and the vault's policy must deny every principal outside the account deleting, changing
  retention, legal holds, governance bypass, the policy, the lifecycle and Object Lock (a Deny
  of ``Principal *`` conditioned on ``aws:PrincipalAccount`` not being the vault's), and a put
  without ``If-None-Match`` (create-only).

"Outside" is any principal of another account, ``*``, ``NotPrincipal``, a federated or canonical
user, and an AWS service unless the statement pins it to the vault account (``aws:SourceAccount``
or ``aws:SourceArn`` of that account: CloudTrail and S3 logging acting for the vault itself).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from policy.floors import Floors, IsolatedFloor
from policy.rules import BUCKET, KMS_KEY, PURPOSE_VAULT, Resource, Violation, _list, _of, _purpose
from policy.strength import BUCKET_POLICY, _matches, _statements, _violation
from stackmodels.sealing import (
    BACKUP_CONTEXT_KEY,
    KUBERNETES_SECRETS_PURPOSE,
    PURPOSE_CONTEXT_KEY,
    condition_key,
)

WRITER_S3_ACTIONS = frozenset({"s3:putobject"})
WRITER_KMS_ACTIONS = frozenset({"kms:encrypt", "kms:generatedatakey", "kms:decrypt"})
"""Allowed a writer only through S3 for the vault bucket (``_decrypts_only_through_s3``)."""
WRITER_WRAP_ACTIONS = frozenset({"kms:encrypt"})
"""Allowed a writer directly only for its Secrets data keys (``_wraps_only_secrets_keys``)."""
BUCKET_CONTEXT = "kms:EncryptionContext:aws:s3:arn"
PURPOSE_CONTEXT = condition_key(PURPOSE_CONTEXT_KEY)
BACKUP_CONTEXT = condition_key(BACKUP_CONTEXT_KEY)
REQUIRED_OUTSIDE_DENIALS = (
    "s3:DeleteObject",
    "s3:DeleteObjectVersion",
    "s3:PutObjectRetention",
    "s3:PutObjectLegalHold",
    "s3:BypassGovernanceRetention",
    "s3:PutBucketPolicy",
    "s3:DeleteBucketPolicy",
    "s3:PutLifecycleConfiguration",
    "s3:PutBucketObjectLockConfiguration",
    "s3:PutBucketVersioning",
)
"""What the vault's policy must deny to every principal outside the vault account."""
PRINCIPAL_ARN_OPERATORS = ("ArnLike", "ArnEquals", "StringLike", "StringEquals")
ACCOUNT_ARN = re.compile(r"^arn:aws[a-z-]*:(?:iam|sts)::(\d{12}):")


def _conditions(statement: Mapping[str, Any]) -> Mapping[str, Any]:
    condition = statement.get("Condition")
    return condition if isinstance(condition, Mapping) else {}


def _condition_values(
    statement: Mapping[str, Any], key: str, operators: Sequence[str]
) -> list[str]:
    values: list[str] = []
    for operator in operators:
        block = _conditions(statement).get(operator)
        if isinstance(block, Mapping):
            for name, value in block.items():
                if str(name).lower() == key.lower():
                    values += [str(v) for v in _list(value)]
    return values


def _pinned_to(statement: Mapping[str, Any], account: str) -> bool:
    """Whether a condition keeps the statement to requests of/for ``account``."""
    equals = ("StringEquals", "ArnEquals", "ArnLike", "StringLike")
    accounts = _condition_values(statement, "aws:SourceAccount", equals)
    accounts += _condition_values(statement, "aws:PrincipalAccount", equals)
    arns = _condition_values(statement, "aws:SourceArn", equals)
    return (bool(accounts) and set(accounts) == {account}) or (
        bool(arns) and all(f":{account}:" in arn for arn in arns)
    )


def outside_principals(statement: Mapping[str, Any], account: str) -> list[str]:
    """The statement's principals outside ``account`` (module docstring)."""
    if statement.get("NotPrincipal") is not None:
        return ["NotPrincipal"]
    principal = statement.get("Principal")
    pinned = _pinned_to(statement, account)
    if principal == "*" or principal is None:
        return [] if pinned else ["*"]
    if not isinstance(principal, Mapping):
        principal = {"AWS": principal}
    outside: list[str] = []
    for kind, values in principal.items():
        for value in (str(v) for v in _list(values)):
            if kind == "AWS":
                match = ACCOUNT_ARN.match(value)
                owner = match.group(1) if match else value if value.isdigit() else None
                if (value == "*" and not pinned) or (value != "*" and owner != account):
                    outside.append(value)
            elif kind == "Service":
                if not pinned:
                    outside.append(value)
            else:  # Federated, CanonicalUser
                outside.append(value)
    return outside


def _account_of(principal: str) -> str | None:
    match = ACCOUNT_ARN.match(principal)
    if match:
        return match.group(1)
    return principal if principal.isdigit() else None


def _grant_problems(
    statement: Mapping[str, Any],
    outside: list[str],
    floor: IsolatedFloor,
    allowed_actions: frozenset[str],
    what: str,
) -> list[str]:
    """Why an Allow to principals outside the vault account goes beyond a writer's grant."""
    problems = []
    strangers = [p for p in outside if _account_of(p) not in floor.writer_accounts]
    if strangers:
        problems.append(
            f"grants to {strangers}, not a writer account of the config "
            f"{sorted(floor.writer_accounts)}"
        )
    if statement.get("NotAction") is not None:
        problems.append("grants NotAction (everything but a list)")
    actions = [str(a) for a in _list(statement.get("Action"))]
    beyond = [a for a in actions if a.lower() not in allowed_actions]
    if beyond:
        problems.append(f"grants {beyond} beyond {what}")
    if not _condition_values(statement, "aws:PrincipalArn", PRINCIPAL_ARN_OPERATORS):
        problems.append(
            "has no aws:PrincipalArn condition, so it grants every principal of the account "
            "(its administrators too), not only its backup roles"
        )
    return problems


def _writer_prefixes(floor: IsolatedFloor, accounts: set[str]) -> set[str]:
    return {p for w in floor.writers if w.account_id in accounts for p in w.prefixes}


def _bucket_policy_problems(
    policy: Resource, bucket_arn: str, is_vault: bool, floor: IsolatedFloor
) -> list[Violation]:
    violations = []
    for statement in _statements(policy.props.get("policy")):
        if statement.get("Effect") != "Allow":
            continue
        outside = outside_principals(statement, floor.account_id)
        if not outside:
            continue
        sid = statement.get("Sid")
        if not is_vault:
            problems = [f"grants {outside} anything at all on a bucket that is not the vault"]
        else:
            problems = _grant_problems(statement, outside, floor, WRITER_S3_ACTIONS, "s3:PutObject")
            accounts = {a for a in (_account_of(p) for p in outside) if a}
            prefixes = _writer_prefixes(floor, accounts)
            allowed = {f"{bucket_arn}/{prefix}*" for prefix in prefixes}
            if statement.get("NotResource") is not None:
                problems.append("grants NotResource (everything but a list)")
            beyond = [str(r) for r in _list(statement.get("Resource")) if str(r) not in allowed]
            if beyond:
                problems.append(
                    f"grants on {beyond}, beyond the writers' prefixes {sorted(prefixes)}"
                )
        for problem in problems:
            violations.append(
                _violation(
                    policy,
                    f"bucket policy statement {sid!r} {problem}; floor: principals outside the "
                    f"vault account {floor.account_id} only create objects (s3:PutObject) under "
                    "their prefixes, by role",
                )
            )
    if is_vault:
        violations += _required_denials(policy, bucket_arn, floor)
    return violations


def _denies_outside(statement: Mapping[str, Any], account: str) -> bool:
    """A Deny to ``*`` that holds for every principal outside ``account`` (unconditional, or
    conditioned on ``aws:PrincipalAccount`` not being it)."""
    if statement.get("Effect") != "Deny" or statement.get("Principal") not in ("*", {"AWS": "*"}):
        return False
    not_equal = _conditions(statement).get("StringNotEquals")
    return not_equal is None or dict(not_equal) == {"aws:PrincipalAccount": account}


def _required_denials(policy: Resource, bucket_arn: str, floor: IsolatedFloor) -> list[Violation]:
    denied: set[str] = set()
    create_only = False
    for statement in _statements(policy.props.get("policy")):
        if not _denies_outside(statement, floor.account_id):
            continue
        resources = {str(r) for r in _list(statement.get("Resource"))}
        actions = [str(a) for a in _list(statement.get("Action"))]
        condition = _conditions(statement)
        extra = {k for k in condition if k != "StringNotEquals"}
        if not extra and {bucket_arn, f"{bucket_arn}/*"} <= resources:
            denied |= {a for a in REQUIRED_OUTSIDE_DENIALS if _matches(actions, a)}
        null = condition.get("Null") if isinstance(condition.get("Null"), Mapping) else {}
        if (
            _matches(actions, "s3:PutObject")
            and f"{bucket_arn}/*" in resources
            and str((null or {}).get("s3:if-none-match")).lower() == "true"
        ):
            create_only = True
    violations = []
    missing = [a for a in REQUIRED_OUTSIDE_DENIALS if a not in denied]
    if missing:
        violations.append(
            _violation(
                policy,
                f"vault bucket policy does not deny {missing} to principals outside the vault "
                f"account {floor.account_id}; floor: a Deny of them to Principal * unless "
                "aws:PrincipalAccount is the vault's, on the bucket and its objects",
            )
        )
    if not create_only:
        violations.append(
            _violation(
                policy,
                "vault bucket policy lets principals outside the vault account put without "
                "If-None-Match (overwrite); floor: a Deny of s3:PutObject when "
                "s3:if-none-match is null (create-only)",
            )
        )
    return violations


def _decrypts_only_through_s3(
    statement: Mapping[str, Any], region: str, vault_arns: set[str]
) -> bool:
    """Whether the statement's conditions keep it to S3 in ``region`` and to one vault bucket's
    encryption context (the bucket or its objects), so a Decrypt serves a multipart upload there
    and nothing else (the writers have no s3:GetObject)."""
    conditions = _conditions(statement)
    equals = conditions.get("StringEquals")
    via = (
        [str(v) for v in _list(equals.get("kms:ViaService"))] if isinstance(equals, Mapping) else []
    )
    if via != [f"s3.{region}.amazonaws.com"]:
        return False
    contexts = _condition_values(statement, BUCKET_CONTEXT, ("StringEquals", "StringLike"))
    return bool(contexts) and any(set(contexts) <= {arn, f"{arn}/*"} for arn in vault_arns)


def _wraps_only_secrets_keys(statement: Mapping[str, Any], prefixes: set[str]) -> bool:
    """Whether the statement's conditions keep a direct use of the key to wrapping a Kubernetes
    Secrets data key of the writer's own backups: the purpose exactly, the backup under one of
    its prefixes, and no other way to widen either (no other operator on those keys)."""
    purposes = _condition_values(statement, PURPOSE_CONTEXT, ("StringEquals",))
    backups = _condition_values(statement, BACKUP_CONTEXT, ("StringLike", "StringEquals"))
    widened = [
        operator
        for operator, block in _conditions(statement).items()
        if operator not in ("StringEquals", "StringLike", "ArnLike", "ArnEquals")
        and isinstance(block, Mapping)
        and any(str(k).lower() in (PURPOSE_CONTEXT.lower(), BACKUP_CONTEXT.lower()) for k in block)
    ]
    allowed = {f"{prefix}*" for prefix in prefixes}
    return (
        purposes == [KUBERNETES_SECRETS_PURPOSE]
        and bool(backups)
        and set(backups) <= allowed
        and not widened
    )


def _key_problems(
    key: Resource, floor: IsolatedFloor, region: str, vault_arns: set[str]
) -> list[Violation]:
    violations = []
    for statement in _statements(key.props.get("policy")):
        if statement.get("Effect") != "Allow":
            continue
        outside = outside_principals(statement, floor.account_id)
        if not outside:
            continue
        accounts = {a for a in (_account_of(p) for p in outside) if a}
        allowed: frozenset[str] = frozenset()
        if _decrypts_only_through_s3(statement, region, vault_arns):
            allowed = WRITER_KMS_ACTIONS
        elif _wraps_only_secrets_keys(statement, _writer_prefixes(floor, accounts)):
            allowed = WRITER_WRAP_ACTIONS
        for problem in _grant_problems(
            statement,
            outside,
            floor,
            allowed,
            "kms:GenerateDataKey / kms:Encrypt / kms:Decrypt through S3 for the vault bucket, "
            "or kms:Encrypt of the writer's own Kubernetes Secrets data keys",
        ):
            violations.append(
                _violation(
                    key,
                    f"key policy statement {statement.get('Sid')!r} {problem}; floor: principals "
                    f"outside the vault account {floor.account_id} only encrypt (writers' "
                    "roles), decrypt only through S3 for the vault bucket, never manage",
                )
            )
    return violations


def isolated_vault_grants_only_writes(
    resources: Sequence[Resource], floors: Floors
) -> list[Violation]:
    """A vault stack's bucket and key policies grant other accounts only the writers' creates
    and deny them everything destructive (module docstring); other stacks: nothing to check."""
    floor = floors.isolated
    if floor is None:
        return []
    violations: list[Violation] = []
    buckets = {str(b.props.get("bucket")): b for b in _of(resources, BUCKET)}
    for policy in _of(resources, BUCKET_POLICY):
        name = str(policy.props.get("bucket"))
        bucket = buckets.get(name)
        arn = str((bucket.props.get("arn") if bucket else None) or f"arn:aws:s3:::{name}")
        is_vault = bucket is not None and _purpose(bucket) == PURPOSE_VAULT
        violations += _bucket_policy_problems(policy, arn, is_vault, floor)
    vaults = [b for b in buckets.values() if _purpose(b) == PURPOSE_VAULT]
    with_policy = {str(p.props.get("bucket")) for p in _of(resources, BUCKET_POLICY)}
    for vault in vaults:
        if str(vault.props.get("bucket")) not in with_policy:
            violations.append(
                _violation(
                    vault,
                    "vault bucket has no bucket policy; floor: one that denies principals outside "
                    f"the vault account {floor.account_id} every delete and reconfiguration",
                )
            )
    vault_arns = {
        str(v.props.get("arn") or f"arn:aws:s3:::{v.props.get('bucket')}") for v in vaults
    }
    for key in _of(resources, (KMS_KEY,)):
        violations += _key_problems(key, floor, floors.region, vault_arns)
    return violations
