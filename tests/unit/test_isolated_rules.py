"""The isolated account emulator's rules (``drkit.local.moto_server.isolated_refusal``): which S3
requests it refuses to any principal but the vault account's administrator. The same rules are
exercised through real requests in ``tests/integration/test_isolated_vault.py``."""

from __future__ import annotations

import pytest

from drkit.local.moto_server import isolated_refusal

CREATE_ONLY = {"If-None-Match": "*"}
LOCK = {"X-Amz-Object-Lock-Mode": "COMPLIANCE", "X-Amz-Object-Lock-Retain-Until-Date": "2030-01-01"}


@pytest.mark.parametrize(
    ("method", "path", "query", "headers", "refused"),
    [
        ("DELETE", "/vault/a/b", {}, {}, "DeleteObject a/b"),
        ("DELETE", "/vault/a/b", {"versionId": "v1"}, {}, "DeleteObject version v1 of a/b"),
        ("POST", "/vault", {"delete": ""}, {}, "DeleteObjects"),
        ("PUT", "/vault/a/b", {}, {}, "a write to a/b without If-None-Match: *"),
        ("PUT", "/vault/a/b", {}, {"If-None-Match": "etag"}, "a write to a/b without"),
        ("POST", "/vault/a/b", {"uploadId": "u"}, {}, "a write to a/b without"),
        ("PUT", "/vault/a/b", {}, {"x-amz-copy-source": "/vault/a/c"}, "a copy over a/b"),
        ("PUT", "/vault/a/b", {"retention": ""}, {}, "a retention change on a/b"),
        ("PUT", "/vault/a/b", {"legal-hold": ""}, {}, "a retention change on a/b"),
        # object-lock headers, even on a create-only write: the bucket's default retention only
        ("PUT", "/vault/a/b", {}, {**CREATE_ONLY, **LOCK}, "a write to a/b with object-lock"),
        ("POST", "/vault/a/b", {"uploads": ""}, LOCK, "a write to a/b with object-lock"),
        ("PUT", "/vault/a/b", {}, {**CREATE_ONLY, "x-amz-object-lock-legal-hold": "ON"}, "a write"),
        ("PUT", "/vault", {"policy": ""}, {}, "a change to the bucket's policy"),
        ("PUT", "/vault", {"object-lock": ""}, {}, "a change to the bucket's object-lock"),
        ("PUT", "/vault", {"versioning": ""}, {}, "a change to the bucket's versioning"),
        ("PUT", "/vault", {"lifecycle": ""}, {}, "a change to the bucket's lifecycle"),
        ("DELETE", "/vault", {"policy": ""}, {}, "a bucket change (DELETE)"),
        ("DELETE", "/vault", {}, {}, "a bucket change (DELETE)"),
    ],
)
def test_what_only_the_vault_account_may_do_is_refused(
    method: str, path: str, query: dict[str, str], headers: dict[str, str], refused: str
) -> None:
    found = isolated_refusal(method, path, query, headers)
    assert found is not None and found.startswith(refused)


@pytest.mark.parametrize(
    ("method", "path", "query", "headers"),
    [
        ("PUT", "/vault/a/b", {}, CREATE_ONLY),  # a create-only write (a taken key: moto's 412)
        ("POST", "/vault/a/b", {"uploadId": "u"}, CREATE_ONLY),  # its multipart completion
        ("POST", "/vault/a/b", {"uploads": ""}, {}),  # starting an upload
        ("PUT", "/vault/a/b", {"partNumber": "1", "uploadId": "u"}, {}),  # a part
        ("DELETE", "/vault/a/b", {"uploadId": "u"}, {}),  # aborting an unfinished upload
        ("GET", "/vault/a/b", {}, {}),
        ("GET", "/vault", {"versions": ""}, {}),
        ("HEAD", "/vault/a/b", {}, {}),
        ("POST", "/", {}, {}),  # STS, KMS, IAM: not S3 object requests
        ("POST", "/moto-api/reset", {}, {}),
    ],
)
def test_reads_and_create_only_writes_pass(
    method: str, path: str, query: dict[str, str], headers: dict[str, str]
) -> None:
    assert isolated_refusal(method, path, query, headers) is None
