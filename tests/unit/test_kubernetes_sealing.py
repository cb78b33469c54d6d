"""Envelope encryption of Secrets: sealed values open only with the same key, for the same
Secret, and the key is wiped when closed. KMS itself is exercised by the integration tests."""

from __future__ import annotations

import base64
import json
import os

import pytest

from drkit.kubestate.clean import LAST_APPLIED
from drkit.kubestate.sealing import (
    DataKey,
    SealingError,
    decrypt_data_key,
    seal_secret,
    secret_aad,
    unseal_secret,
)

pytestmark = pytest.mark.unit

PASSWORD = "pg-hunter2-7f3a9c"


def key() -> DataKey:
    return DataKey(os.urandom(32), b"kms-blob", "arn:aws:kms:us-east-1:111122223333:key/k", {})


def secret() -> dict[str, object]:
    data = {"password": base64.b64encode(PASSWORD.encode()).decode()}
    applied = json.dumps({"apiVersion": "v1", "kind": "Secret", "data": data})
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": "postgres-credentials",
            "namespace": "aipx",
            "annotations": {LAST_APPLIED: applied, "team": "trading"},
        },
        "type": "Opaque",
        "data": data,
        "stringData": {"extra": PASSWORD},
    }


def test_sealed_secret_holds_no_value_and_opens_to_the_original() -> None:
    original = secret()
    with key() as data_key:
        bare, sealed = seal_secret(original, data_key)
        text = json.dumps([bare, sealed])
        for needle in (PASSWORD, base64.b64encode(PASSWORD.encode()).decode(), "hunter2"):
            assert needle not in text
        assert bare["metadata"]["annotations"] == {"team": "trading"}
        assert "data" not in bare and "stringData" not in bare
        assert unseal_secret(bare, sealed, data_key) == original
    assert original["data"]  # the input was not changed


def test_a_payload_moved_to_another_secret_does_not_open() -> None:
    with key() as data_key:
        bare, sealed = seal_secret(secret(), data_key)
        moved = {**bare, "metadata": {**bare["metadata"], "name": "aws-credentials"}}
        with pytest.raises(SealingError, match="not authentic for this object"):
            unseal_secret(moved, sealed, data_key)


def test_another_key_does_not_open_it() -> None:
    with key() as first, key() as second:
        bare, sealed = seal_secret(secret(), first)
        with pytest.raises(SealingError, match="not authentic"):
            unseal_secret(bare, sealed, second)


def test_nonces_are_fresh_per_seal() -> None:
    with key() as data_key:
        nonces = {data_key.seal(b"x", secret_aad("aipx", "s"))["nonce"] for _ in range(50)}
    assert len(nonces) == 50


def test_closed_key_is_wiped_and_refuses_work() -> None:
    data_key = key()
    inner = data_key._key
    assert inner is not None
    data_key.close()
    assert inner == bytearray(32)  # zeroed in place
    assert "closed" in repr(data_key) and "kms-blob" not in repr(data_key)
    with pytest.raises(SealingError, match="closed"):
        data_key.seal(b"x", b"aad")


def test_envelope_carries_no_plaintext_key() -> None:
    material = os.urandom(32)
    with DataKey(material, b"blob", "arn:k", {"drkit:backup": "p/"}) as data_key:
        envelope = json.dumps(data_key.envelope())
    assert base64.b64encode(material).decode() not in envelope
    assert material.hex() not in envelope


def test_kms_refusal_names_key_and_permission() -> None:
    class Refusing:
        def decrypt(self, **_: object) -> dict[str, object]:
            from botocore.exceptions import ClientError

            raise ClientError(
                {"Error": {"Code": "AccessDeniedException", "Message": "not allowed"}}, "Decrypt"
            )

    envelope = {
        "cipher": "AES-256-GCM",
        "kms_key_id": "arn:aws:kms:us-east-1:1:key/a",
        "encrypted_data_key": base64.b64encode(b"blob").decode(),
        "encryption_context": {},
    }
    with pytest.raises(SealingError, match=r"AccessDeniedException.*needs kms:Decrypt"):
        decrypt_data_key(Refusing(), envelope, "arn:aws:kms:us-east-1:1:key/b")
