"""Envelope encryption of Secrets: one KMS data key per backup, AES-256-GCM per Secret.

The backup asks KMS for a data key under the vault key (``GenerateDataKey``, ``AES_256``) and
keeps only the KMS-encrypted copy (in the manifest). Each Secret's ``data``, ``stringData`` and
``last-applied-configuration`` annotation (``kubectl apply`` copies the whole Secret into it) are
sealed together with a random 96-bit nonce; the associated data is the Secret's identity
(``v1/Secret/<namespace>/<name>``), so a sealed payload cannot be moved onto another Secret.
A restore gets the data key back with KMS ``Decrypt``, which needs ``kms:Decrypt`` on the vault
key: without it nothing can be read, and the restore refuses before touching the cluster.

On a stack with an isolated vault (issue 22) the same data key is also wrapped under the isolated
vault's own key (KMS ``Encrypt``, same encryption context: ``DataKey.wrap``), and the manifest
keeps that envelope too (``isolated``): a restore from the isolated copy opens the Secrets with the
isolated key alone, so prod's key scheduled for deletion by whoever holds prod does not lock them.

The plaintext key lives in one ``bytearray`` that is zeroed when the key is closed. Python cannot
promise more: the KMS response's ``bytes`` and the cipher's own copy are freed, not wiped. The key
never appears in a repr, a log, a journal or a report.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Mapping
from types import TracebackType
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from drkit.kubestate.clean import LAST_APPLIED

CIPHER = "AES-256-GCM"
KEY_BYTES = 32
NONCE_BYTES = 12
SEALED_FIELDS = ("data", "stringData")


class SealingError(RuntimeError):
    """A data key could not be made or opened, or a sealed Secret does not open with it."""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


class DataKey:
    """A plaintext AES-256 data key with its KMS-encrypted form; wiped on ``close``."""

    def __init__(
        self,
        plaintext: bytes | bytearray,
        encrypted: bytes,
        kms_key_id: str,
        context: Mapping[str, str],
    ) -> None:
        if len(plaintext) != KEY_BYTES:
            raise SealingError(f"a data key must be {KEY_BYTES} bytes, got {len(plaintext)}")
        self._key: bytearray | None = bytearray(plaintext)
        self._cipher: AESGCM | None = AESGCM(self._key)
        self.encrypted = encrypted
        self.kms_key_id = kms_key_id
        self.context = dict(context)

    def __repr__(self) -> str:
        state = "closed" if self._key is None else "open"
        return f"DataKey(kms_key_id={self.kms_key_id!r}, {state})"

    def _aead(self) -> AESGCM:
        if self._cipher is None:
            raise SealingError("the data key was closed (wiped) and can no longer be used")
        return self._cipher

    def seal(self, payload: bytes, aad: bytes) -> dict[str, str]:
        nonce = os.urandom(NONCE_BYTES)
        ciphertext = self._aead().encrypt(nonce, payload, aad)
        return {"nonce": _b64(nonce), "ciphertext": _b64(ciphertext)}

    def open(self, sealed: Mapping[str, str], aad: bytes) -> bytes:
        try:
            nonce = base64.b64decode(sealed["nonce"], validate=True)
            ciphertext = base64.b64decode(sealed["ciphertext"], validate=True)
            return self._aead().decrypt(nonce, ciphertext, aad)
        except (KeyError, ValueError, InvalidTag) as error:
            what = "not authentic for this object" if isinstance(error, InvalidTag) else "malformed"
            raise SealingError(f"sealed payload for {aad.decode()!r} is {what}") from None

    def envelope(self) -> dict[str, Any]:
        """What the manifest keeps: enough for KMS to give the key back, nothing secret."""
        return {
            "cipher": CIPHER,
            "kms_key_id": self.kms_key_id,
            "encrypted_data_key": _b64(self.encrypted),
            "encryption_context": self.context,
        }

    def wrap(self, kms: Any, key_id: str) -> dict[str, Any]:
        """This data key encrypted under another KMS key (``Encrypt``, same encryption context):
        an envelope as ``envelope`` gives, which ``decrypt_data_key`` opens with that key."""
        if self._key is None:
            raise SealingError("the data key was closed (wiped) and can no longer be used")
        try:
            response = kms.encrypt(
                KeyId=key_id, Plaintext=bytes(self._key), EncryptionContext=dict(self.context)
            )
        except Exception as error:
            raise SealingError(
                f"KMS Encrypt of the data key under {key_id} failed: {_kms_message(error)}"
            ) from None
        return {
            "cipher": CIPHER,
            "kms_key_id": str(response.get("KeyId") or key_id),
            "encrypted_data_key": _b64(response["CiphertextBlob"]),
            "encryption_context": self.context,
        }

    def close(self) -> None:
        if self._key is not None:
            self._key[:] = bytes(len(self._key))
        self._key = None
        self._cipher = None

    def __enter__(self) -> DataKey:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def generate_data_key(kms: Any, key_id: str, context: Mapping[str, str]) -> DataKey:
    """A fresh data key from KMS under ``key_id``, bound to ``context``."""
    try:
        response = kms.generate_data_key(
            KeyId=key_id, KeySpec="AES_256", EncryptionContext=dict(context)
        )
    except Exception as error:
        raise SealingError(
            f"KMS GenerateDataKey with {key_id} failed: {_kms_message(error)}; the backup job "
            "needs kms:GenerateDataKey on the vault key"
        ) from None
    plaintext = response.pop("Plaintext")
    try:
        return DataKey(plaintext, response["CiphertextBlob"], response["KeyId"], context)
    finally:
        del plaintext


def decrypt_data_key(kms: Any, envelope: Mapping[str, Any], key_id: str) -> DataKey:
    """The backup's data key, opened by KMS with ``key_id`` (this region's vault key)."""
    if envelope.get("cipher") != CIPHER:
        raise SealingError(f"unknown Secrets cipher {envelope.get('cipher')!r}; expected {CIPHER}")
    try:
        encrypted = base64.b64decode(str(envelope["encrypted_data_key"]), validate=True)
        context = {str(k): str(v) for k, v in dict(envelope["encryption_context"]).items()}
    except (KeyError, ValueError, TypeError) as error:
        raise SealingError(f"the manifest's Secrets envelope is malformed: {error}") from None
    try:
        response = kms.decrypt(CiphertextBlob=encrypted, KeyId=key_id, EncryptionContext=context)
    except Exception as error:
        raise SealingError(
            f"KMS Decrypt of the backup's data key with {key_id} failed: {_kms_message(error)}. "
            f"The backup's Secrets were sealed under {envelope.get('kms_key_id')}; the restore "
            "needs kms:Decrypt on that key (or its multi-Region replica in this region)"
        ) from None
    plaintext = response.pop("Plaintext")
    try:
        return DataKey(plaintext, encrypted, str(envelope.get("kms_key_id")), context)
    finally:
        del plaintext


def _kms_message(error: Exception) -> str:
    details = getattr(error, "response", {}).get("Error", {})
    if details:
        return f"{details.get('Code')}: {details.get('Message')}"
    return f"{type(error).__name__}: {error}"


def secret_aad(namespace: str, name: str) -> bytes:
    """The Secret's identity, without its uid (which a restore changes)."""
    return f"v1/Secret/{namespace}/{name}".encode()


def seal_secret(obj: Mapping[str, Any], key: DataKey) -> tuple[dict[str, Any], dict[str, str]]:
    """(the Secret without its values, the sealed values). ``obj`` is not changed."""
    bare: dict[str, Any] = {k: v for k, v in obj.items() if k not in SEALED_FIELDS}
    metadata = dict(bare.get("metadata") or {})
    annotations = dict(metadata.get("annotations") or {})
    payload: dict[str, Any] = {field: obj[field] for field in SEALED_FIELDS if field in obj}
    if LAST_APPLIED in annotations:
        payload["lastApplied"] = annotations.pop(LAST_APPLIED)
        if annotations:
            metadata["annotations"] = annotations
        else:
            metadata.pop("annotations", None)
    bare["metadata"] = metadata
    aad = secret_aad(str(metadata.get("namespace", "")), str(metadata.get("name", "")))
    sealed = key.seal(json.dumps(payload, sort_keys=True).encode(), aad)
    return bare, sealed


def unseal_secret(
    bare: Mapping[str, Any], sealed: Mapping[str, str], key: DataKey
) -> dict[str, Any]:
    """The Secret as it was backed up (before any rename: the identity is the original one)."""
    metadata = dict(bare.get("metadata") or {})
    aad = secret_aad(str(metadata.get("namespace", "")), str(metadata.get("name", "")))
    payload = json.loads(key.open(sealed, aad))
    out: dict[str, Any] = dict(bare)
    for field in SEALED_FIELDS:
        if field in payload:
            out[field] = payload[field]
    if "lastApplied" in payload:
        metadata["annotations"] = dict(metadata.get("annotations") or {}) | {
            LAST_APPLIED: payload["lastApplied"]
        }
    out["metadata"] = metadata
    return out
