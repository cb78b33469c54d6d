"""A small evaluator of IAM identity policies for S3 requests, for tests: which requests a role's
policy allows (the local S3 emulator enforces no IAM).

It follows IAM's rules for what it covers: a request is allowed when some Allow statement matches
its action, its resource and every condition, and no Deny statement does. Actions and resources
match with IAM's ``*`` and ``?`` wildcards. The one condition key an S3 request brings here is
``s3:prefix`` (on ListBucket), with ``StringLike`` and ``StringEquals``; a statement conditioned
on any other key is taken not to match (an Allow grants nothing, a Deny refuses nothing), which
only ever makes the evaluation stricter for the grants the tests look for.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

OPERATIONS = {
    "PutObject": "s3:PutObject",
    "CreateMultipartUpload": "s3:PutObject",
    "UploadPart": "s3:PutObject",
    "CompleteMultipartUpload": "s3:PutObject",
    "AbortMultipartUpload": "s3:AbortMultipartUpload",
    "ListParts": "s3:ListMultipartUploadParts",
    "GetObject": "s3:GetObject",
    "HeadObject": "s3:GetObject",
    "GetObjectTagging": "s3:GetObjectTagging",
    "GetObjectRetention": "s3:GetObjectRetention",
    "PutObjectRetention": "s3:PutObjectRetention",
    "DeleteObject": "s3:DeleteObject",
    "DeleteObjects": "s3:DeleteObject",
    "ListObjectsV2": "s3:ListBucket",
    "ListObjects": "s3:ListBucket",
    "HeadBucket": "s3:ListBucket",
    "ListObjectVersions": "s3:ListBucketVersions",
    "ListMultipartUploads": "s3:ListBucketMultipartUploads",
}
"""The IAM action each S3 API operation needs (AWS's "Actions, resources, and condition keys for
Amazon S3"). An operation missing here fails the test that meets it, naming it."""

BUCKET_LEVEL = {"s3:ListBucket", "s3:ListBucketVersions", "s3:ListBucketMultipartUploads"}


@dataclass(frozen=True)
class S3Request:
    action: str
    bucket: str
    key: str | None = None
    prefix: str | None = None

    @property
    def resource(self) -> str:
        if self.action in BUCKET_LEVEL or self.key is None:
            return f"arn:aws:s3:::{self.bucket}"
        return f"arn:aws:s3:::{self.bucket}/{self.key}"


def s3_requests(operation: str, params: dict[str, Any]) -> list[S3Request]:
    """The IAM view of one recorded botocore S3 call: the actions it needs. A write that sets
    Object Lock retention or a legal hold also needs ``s3:PutObjectRetention`` or
    ``s3:PutObjectLegalHold``."""
    if operation not in OPERATIONS:
        raise AssertionError(f"S3 operation {operation} has no IAM action in tests/iam_policy.py")
    bucket, key = str(params.get("Bucket", "")), params.get("Key")
    action = OPERATIONS[operation]
    prefix = str(params.get("Prefix", "")) if action == "s3:ListBucket" else None
    needed = [S3Request(action, bucket, key, prefix)]
    if "ObjectLockMode" in params or "ObjectLockRetainUntilDate" in params:
        needed.append(S3Request("s3:PutObjectRetention", bucket, key))
    if "ObjectLockLegalHoldStatus" in params:
        needed.append(S3Request("s3:PutObjectLegalHold", bucket, key))
    return needed


def _matches(pattern: str, value: str) -> bool:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, flags=re.DOTALL) is not None


def _listed(value: Any) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def _conditions_hold(conditions: dict[str, Any], request: S3Request) -> bool:
    for operator, tests in conditions.items():
        for key, wanted in tests.items():
            if key != "s3:prefix" or request.prefix is None:
                return False
            values = _listed(wanted)
            if operator == "StringLike":
                if not any(_matches(v, request.prefix) for v in values):
                    return False
            elif operator == "StringEquals":
                if request.prefix not in values:
                    return False
            else:
                return False
    return True


def _applies(statement: dict[str, Any], request: S3Request) -> bool:
    if not any(_matches(a, request.action) for a in _listed(statement.get("Action", []))):
        return False
    if not any(_matches(r, request.resource) for r in _listed(statement.get("Resource", []))):
        return False
    return _conditions_hold(statement.get("Condition", {}), request)


def allowed(policy: dict[str, Any], request: S3Request) -> bool:
    """Whether ``policy`` (an identity policy document) allows ``request``."""
    statements = policy["Statement"]
    if any(s["Effect"] == "Deny" and _applies(s, request) for s in statements):
        return False
    return any(s["Effect"] == "Allow" and _applies(s, request) for s in statements)
