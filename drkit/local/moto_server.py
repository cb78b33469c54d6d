"""moto's server, with what the vault needs of AWS that moto 5.2.5 lacks. Run as
``python -m drkit.local.moto_server -H HOST -p PORT`` (``LocalAws`` does).

- **Multi-Region keys.** The vault key is a multi-Region primary in prod with its replica in dr
  (``components.keys``): a data key sealed in prod opens in dr after prod is lost. moto writes a
  36-character key id into its ciphertexts, which cuts an ``mrk-`` id (40) short, and it replicates
  a key only inside one server, while each local region runs a server of its own. Here the
  ciphertext header holds 40 characters; a ``CreateKey`` with the tag
  ``drkit-local:replica-of = <primary key ARN>`` makes that key's replica in this server's region
  (same id, REPLICA); and a multi-Region key's material is derived from its id, so a primary and
  its replicas, in whatever server, share it as AWS's do.
- **Keys across accounts, and a key's state.** KMS lets a principal of another account use a key
  by its ARN where the key policy allows it (the production writers wrap a Secrets data key under
  the isolated vault's key, ``kms:Encrypt``); moto looks every key up in the caller's own account.
  Here an ``Encrypt`` naming a key ARN of another account is served by that account's keys (the
  key policy, which moto does not enforce, is tested by its content:
  ``policy.isolated``). And KMS refuses a disabled key (``DisabledException``) or one pending
  deletion (``KMSInvalidStateException``) for every cryptographic operation; moto uses it
  anyway. Here ``Encrypt``, ``Decrypt`` and ``GenerateDataKey`` refuse it, as KMS does.
- **SSE-KMS writes under an unusable key.** S3 asks KMS for a data key on every SSE-KMS write and
  fails it when the key is disabled or pending deletion (``KMS.DisabledException``,
  ``KMS.KMSInvalidStateException``); moto's S3 never calls KMS. Here a PutObject or
  CreateMultipartUpload naming a key ARN of this server's accounts is refused the same way
  (``patch_s3_kms``): a vault whose key an attacker disabled takes no write, the lease of a
  restore included.
- **S3 replication status.** AWS reports ``x-amz-replication-status`` on HEAD and GET: PENDING then
  COMPLETED on a replicated bucket's objects, REPLICA on their copies. moto does not replicate; the
  local stack's copier (``drkit.local.regions.VaultCopier``) does, and notes each copied key in
  ``$DRKIT_LOCAL_REPLICATION_DIR``: ``<source bucket>.completed`` and ``<target
  bucket>.replica``, one key a line. A bucket with a ``.completed`` file replicates: its objects
  not copied yet are PENDING.
- **The isolated account's rules** (``$DRKIT_LOCAL_ISOLATED_ACCOUNT``, issue 22). moto keeps
  accounts apart (a key from ``sts:AssumeRole`` acts in the role's account) but enforces no bucket
  policy, and lets a COMPLIANCE retention be shortened. The server that stands for the isolated
  backup account refuses, as the vault stack's bucket policy and Object Lock do on AWS, every
  request that would remove or replace what a bucket holds, or loosen its rules, from any
  principal but the vault account's own administrator role (``isolated_refusal``): a delete of
  an object or a version (DeleteObject, DeleteObjects), a write that is not create-only (a
  PutObject or CompleteMultipartUpload without ``If-None-Match: *``; with it, moto's own 412
  refuses a taken key), a copy over a key, a retention or legal-hold change (also as object-lock
  headers on a PutObject or CreateMultipartUpload, which on AWS need ``s3:PutObjectRetention``:
  a writer's objects take the bucket's default retention), and any change to the bucket's
  policy, lock, versioning, lifecycle or the bucket itself.
- **Object Lock on multipart uploads.** moto locks a single PutObject, with its lock headers or
  the bucket's default retention, but neither a completed multipart upload: the vaults' large
  objects were unlocked locally. S3 applies the lock headers of the CreateMultipartUpload, else the
  bucket's default retention, to the object the CompleteMultipartUpload creates
  (``patch_multipart_lock``); so here, and its version then refuses a delete as moto's own lock
  check does for a single PUT's.
- **A real Aurora in dr.** With ``$DRKIT_LOCAL_AURORA_DIR``, a cluster registered there answers at
  a real PostgreSQL server (dr's standby), and a restore of it to the latest restorable time makes
  a real, writable copy on a free port, removed by ``DeleteDBCluster`` (``drkit.local.aurora``).
  The copies are stopped when the server gets SIGTERM.
"""

from __future__ import annotations

import atexit
import hashlib
import os
import re
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from drkit.local.aurora import AURORA_DIR_ENV, patch_rds

REPLICA_TAG = "drkit-local:replica-of"
ISOLATED_ACCOUNT_ENV = "DRKIT_LOCAL_ISOLATED_ACCOUNT"
VAULT_ADMIN_ROLE = "drkit-vault-admin"
"""The isolated account's own administrator role (locally: assumed to provision the vault)."""
LOCK_HEADERS = frozenset(
    {
        "x-amz-object-lock-mode",
        "x-amz-object-lock-retain-until-date",
        "x-amz-object-lock-legal-hold",
    }
)
"""A lock per object: the isolated vault's writers get the bucket's default retention only."""
BUCKET_RULES = ("policy", "object-lock", "versioning", "lifecycle", "encryption", "replication")
"""Bucket subresources whose change would loosen the vault's rules."""
REPLICATION_DIR_ENV = "DRKIT_LOCAL_REPLICATION_DIR"
COMPLETED, REPLICA = ".completed", ".replica"
KEY_ID_LEN = 40
"""``mrk-`` and a UUID; a single-Region key's 36-character UUID is padded with NULs."""


def mrk_material(key_id: str) -> bytes:
    """A multi-Region key's 32 bytes of material, the same in every region's server."""
    return hashlib.sha256(f"drkit-local-mrk/{key_id}".encode()).digest()


def patch_kms() -> None:
    from moto.kms import models, utils

    utils.KEY_ID_LEN = KEY_ID_LEN
    utils.HEADER_LEN = KEY_ID_LEN + utils.IV_LEN + utils.TAG_LEN
    utils.CIPHERTEXT_HEADER_FORMAT = f">{KEY_ID_LEN}s{utils.IV_LEN}s{utils.TAG_LEN}s"
    deserialize = utils._deserialize_ciphertext_blob

    def without_padding(ciphertext_blob: bytes) -> Any:
        parsed = deserialize(ciphertext_blob=ciphertext_blob)
        return parsed._replace(key_id=parsed.key_id.rstrip("\0"))

    utils._deserialize_ciphertext_blob = without_padding
    pending = threading.local()
    generate_key_id = models.generate_key_id  # type: ignore[attr-defined]

    def key_id(multi_region: bool = False) -> str:
        given = getattr(pending, "key_id", None)
        return str(given) if given else generate_key_id(multi_region)

    models.generate_key_id = key_id  # type: ignore[attr-defined]
    create_key = models.KmsBackend.create_key

    def create(self: Any, *args: Any, **kwargs: Any) -> Any:
        tags = kwargs.get("tags") if "tags" in kwargs else (args[4] if len(args) > 4 else None)
        primary = next((t["TagValue"] for t in tags or [] if t.get("TagKey") == REPLICA_TAG), None)
        pending.key_id = primary.rsplit("/", 1)[1] if primary else None
        try:
            key = create_key(self, *args, **kwargs)
        finally:
            pending.key_id = None
        if key.multi_region:
            key.key_material = mrk_material(key.id)
        if primary:
            key.multi_region_configuration = {
                "MultiRegionKeyType": "REPLICA",
                "PrimaryKey": {"Arn": primary, "Region": primary.split(":")[3]},
                "ReplicaKeys": [],
            }
        return key

    models.KmsBackend.create_key = create  # type: ignore[method-assign]
    patch_kms_use()


def patch_kms_use() -> None:
    """Cross-account ``Encrypt`` by key ARN, and a disabled key refused (module docstring)."""
    from moto.core.exceptions import JsonRESTError
    from moto.kms import models, responses, utils

    class Unusable(JsonRESTError):
        def __init__(self, code: str, message: str) -> None:
            super().__init__(code, message)

    def usable(backend: Any, key_id: str) -> None:
        key = backend.keys.get(key_id)
        if key is None:
            return
        if key.key_state == "Disabled":
            raise Unusable("DisabledException", f"{key.arn} is disabled.")
        if key.key_state != "Enabled":
            raise Unusable("KMSInvalidStateException", f"{key.arn} is {key.key_state}.")

    def owner(backend: Any, key_id: str | None) -> Any:
        """The backend of the account a key ARN names, when it is not the caller's."""
        if not key_id or not key_id.startswith("arn:"):
            return backend
        parts = key_id.split(":")
        account, region = parts[4], parts[3]
        if account == backend.account_id:
            return backend
        return models.kms_backends[account][region]

    validate = responses.KmsResponse._validate_key_id

    def validate_in_owner(self: Any, key_id: str) -> None:
        if key_id.startswith("arn:") and key_id.split(":")[4] != self.current_account:
            target = owner(self.kms_backend, key_id)
            if target.get_key_id(key_id) not in target.keys:
                raise Unusable("NotFoundException", f"Key '{key_id}' does not exist")
            return
        validate(self, key_id)

    encrypt = models.KmsBackend.encrypt
    decrypt = models.KmsBackend.decrypt
    generate = models.KmsBackend.generate_data_key

    def encrypt_checked(self: Any, key_id: str, *args: Any, **kwargs: Any) -> Any:
        target = owner(self, key_id)
        usable(target, target.any_id_to_key_id(key_id))
        return encrypt(target, key_id, *args, **kwargs)

    def decrypt_checked(self: Any, ciphertext_blob: bytes, *args: Any, **kwargs: Any) -> Any:
        try:
            found = utils._deserialize_ciphertext_blob(ciphertext_blob=ciphertext_blob).key_id
        except Exception:  # moto's own decrypt says what is wrong with it
            found = None
        if isinstance(found, bytes):
            found = found.decode(errors="replace")
        if found:
            usable(self, str(found).rstrip("\0"))
        return decrypt(self, ciphertext_blob, *args, **kwargs)

    def generate_checked(self: Any, key_id: str, *args: Any, **kwargs: Any) -> Any:
        usable(self, self.any_id_to_key_id(key_id))
        return generate(self, key_id, *args, **kwargs)

    responses.KmsResponse._validate_key_id = validate_in_owner  # type: ignore[method-assign]
    models.KmsBackend.encrypt = encrypt_checked  # type: ignore[method-assign]
    models.KmsBackend.decrypt = decrypt_checked  # type: ignore[method-assign]
    models.KmsBackend.generate_data_key = generate_checked  # type: ignore[method-assign]


def replication_status(directory: Path, bucket: str, key: str) -> str | None:
    def listed(suffix: str) -> bool | None:
        path = directory / f"{bucket}{suffix}"
        try:
            return key in path.read_text().splitlines()
        except FileNotFoundError:
            return None

    if listed(REPLICA):
        return "REPLICA"
    copied = listed(COMPLETED)
    return None if copied is None else ("COMPLETED" if copied else "PENDING")


def patch_s3(directory: Path) -> None:
    from moto.s3 import models

    response_dict = models.FakeKey.response_dict

    def with_replication(self: Any) -> dict[str, Any]:
        headers: dict[str, Any] = response_dict.fget(self)  # type: ignore[attr-defined]
        status = replication_status(directory, self.bucket_name, self.name)
        if status is not None:
            headers["x-amz-replication-status"] = status
        return headers

    models.FakeKey.response_dict = property(with_replication)  # type: ignore[assignment]


def patch_multipart_lock() -> None:
    """A completed multipart upload takes its CreateMultipartUpload's lock headers, else the
    bucket's default retention, as a PutObject does (moto 5.2.5 drops both)."""
    from moto.s3 import models, responses

    asked = threading.local()
    key_response_post = responses.S3Response._key_response_post
    create_upload = models.S3Backend.create_multipart_upload
    complete_upload = models.S3Backend.complete_multipart_upload

    def post(self: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
        headers = request.headers
        asked.lock = (
            headers.get("x-amz-object-lock-mode"),
            headers.get("x-amz-object-lock-retain-until-date"),
            headers.get("x-amz-object-lock-legal-hold"),
        )
        try:
            return key_response_post(self, request, *args, **kwargs)
        finally:
            asked.lock = None

    def create(self: Any, *args: Any, **kwargs: Any) -> Any:
        multipart: Any = create_upload(self, *args, **kwargs)
        multipart.drkit_lock = getattr(asked, "lock", None)
        return multipart

    def complete(self: Any, bucket_name: str, multipart_id: str, *args: Any, **kw: Any) -> Any:
        bucket = self.get_bucket(bucket_name)
        multipart = bucket.multiparts.get(multipart_id)
        key = complete_upload(self, bucket_name, multipart_id, *args, **kw)
        if key is None or multipart is None or not bucket.object_lock_enabled:
            return key
        mode, until, hold = getattr(multipart, "drkit_lock", None) or (None, None, None)
        if mode and until:
            key.lock_mode = mode
            key.lock_until = _retention_date(until)
        elif bucket.has_default_lock:
            key.lock_mode = bucket.default_lock_mode
            key.lock_until = bucket.default_retention()
        if hold:
            key.lock_legal_status = hold
        return key

    responses.S3Response._key_response_post = post  # type: ignore[method-assign]
    models.S3Backend.create_multipart_upload = create  # type: ignore[method-assign]
    models.S3Backend.complete_multipart_upload = complete  # type: ignore[method-assign]


def _retention_date(header: str) -> str:
    """A lock header's date (ISO 8601, as SDKs send it) in the form moto's lock check parses."""
    from datetime import UTC, datetime

    moment = datetime.fromisoformat(header.replace("Z", "+00:00"))
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def isolated_refusal(
    method: str, path: str, query: dict[str, str], headers: dict[str, str]
) -> str | None:
    """What a request to the isolated account's S3 would do that its rules forbid to anyone but
    the vault account's administrator, or None. Path-style requests (``/bucket/key``)."""
    parts = path.lstrip("/").split("/", 1)
    if not parts[0] or parts[0] == "moto-api":
        return None
    key = parts[1] if len(parts) > 1 else ""
    method = method.upper()
    if method == "DELETE":
        if key and "uploadId" in query:
            return None  # aborting an unfinished upload removes nothing that was written
        what = f"version {query['versionId']} of {key}" if "versionId" in query else key
        return f"DeleteObject {what}" if key else "a bucket change (DELETE)"
    if method == "POST" and not key and "delete" in query:
        return "DeleteObjects"
    if method in ("PUT", "POST") and key:
        if "retention" in query or "legal-hold" in query:
            return f"a retention change on {key}"
        if {h.lower() for h in headers} & LOCK_HEADERS:
            # on AWS these need s3:PutObjectRetention / s3:PutObjectLegalHold, denied to others
            return f"a write to {key} with object-lock headers"
        if method == "PUT" and "partNumber" in query:
            return None  # a part of an upload: nothing is visible until its completion
        if method == "POST" and "uploads" in query:
            return None
        if "x-amz-copy-source" in {h.lower() for h in headers}:
            return f"a copy over {key}"
        if method == "PUT" or "uploadId" in query:
            match = next((v for h, v in headers.items() if h.lower() == "if-none-match"), None)
            return None if match == "*" else f"a write to {key} without If-None-Match: *"
        return None
    if method == "PUT" and not key:
        changed = [rule for rule in BUCKET_RULES if rule in query]
        return f"a change to the bucket's {changed[0]}" if changed else None
    return None


def principal_of(environ: dict[str, Any]) -> tuple[str, str | None]:
    """(account, role ARN or None) of the access key that signed the request, as moto maps it."""
    from moto.iam.models import get_account_id_from
    from moto.sts.models import sts_backends

    header = str(environ.get("HTTP_AUTHORIZATION", ""))
    found = re.search(r"Credential=([^/]+)/", header) or re.search(
        r"X-Amz-Credential=([^/%]+)", str(environ.get("QUERY_STRING", ""))
    )
    access_key = found.group(1) if found else ""
    account = get_account_id_from(access_key)
    for partition in ("aws",):
        assumed = sts_backends[account][partition].get_assumed_role_from_access_key(access_key)
        if assumed is not None:
            return account, str(assumed.role_arn)
    return account, None


def guard_isolated(account: str) -> None:
    """Refuse, from anyone but ``account``'s administrator role, what ``isolated_refusal`` names;
    and any read or listing (GET, HEAD) of the vault from another account: the bucket policy
    grants the production writers creates only (the account's own roles, the reader, read)."""
    from urllib.parse import parse_qsl

    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    call = DomainDispatcherApplication.__call__
    admin = f"arn:aws:iam::{account}:role/{VAULT_ADMIN_ROLE}"

    def guarded(self: Any, environ: dict[str, Any], start_response: Any) -> Any:
        query = dict(parse_qsl(str(environ.get("QUERY_STRING", "")), keep_blank_values=True))
        headers = {k[5:].replace("_", "-"): str(v) for k, v in environ.items() if k[:5] == "HTTP_"}
        method, path = str(environ.get("REQUEST_METHOD", "")), str(environ.get("PATH_INFO", ""))
        refused = isolated_refusal(method, path, query, headers)
        signed = headers.get("AUTHORIZATION", "") + str(environ.get("QUERY_STRING", ""))
        s3 = "/s3/" in signed or "%2Fs3%2F" in signed or not signed
        if s3 and refused is None and method.upper() in ("GET", "HEAD"):
            bucket = path.lstrip("/").split("/", 1)[0]
            if bucket and bucket != "moto-api" and principal_of(environ)[0] != account:
                # The bucket policy grants other accounts creates only: no list, no read.
                refused = f"a read or listing of {path.lstrip('/')} ({method.upper()})"
        if refused is not None and s3:
            caller, role = principal_of(environ)
            if role != admin and not (caller == account and method.upper() in ("GET", "HEAD")):
                who = role or f"account {caller}"
                body = (
                    "<?xml version='1.0' encoding='UTF-8'?><Error><Code>AccessDenied</Code>"
                    f"<Message>{refused}: refused to {who}; in the isolated vault account "
                    f"{account} only its administrator may</Message></Error>"
                ).encode()
                start_response(
                    "403 Forbidden",
                    [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))],
                )
                return [body]
        return call(self, environ, start_response)

    DomainDispatcherApplication.__call__ = guarded  # type: ignore[method-assign]


def patch_s3_kms() -> None:
    """SSE-KMS writes refused under a disabled key, or one pending deletion (module docstring)."""
    from moto.kms import models as kms
    from moto.s3.exceptions import S3ClientError
    from moto.s3.models import S3Backend

    def usable(kms_key_id: str | None) -> None:
        found = re.fullmatch(r"arn:aws[a-z-]*:kms:([a-z0-9-]+):(\d{12}):key/(.+)", kms_key_id or "")
        if found is None:
            return  # an alias or a bare id: not what the vault's writers send
        region, account, key_id = found.groups()
        key = kms.kms_backends[account][region].keys.get(key_id)
        if key is None or key.key_state == "Enabled":
            return
        code = "DisabledException" if key.key_state == "Disabled" else "KMSInvalidStateException"
        raise S3ClientError(f"KMS.{code}", f"{kms_key_id} is {key.key_state.lower()}.")

    put, create = S3Backend.put_object, S3Backend.create_multipart_upload

    def put_object(self: Any, *args: Any, **kwargs: Any) -> Any:
        if kwargs.get("multipart") is None:  # a completion was checked at its creation
            usable(kwargs.get("kms_key_id"))
        return put(self, *args, **kwargs)

    def create_multipart_upload(self: Any, *args: Any, **kwargs: Any) -> Any:
        usable(kwargs.get("kms_key_id", args[7] if len(args) > 7 else None))
        return create(self, *args, **kwargs)

    S3Backend.put_object = put_object  # type: ignore[method-assign]
    S3Backend.create_multipart_upload = create_multipart_upload  # type: ignore[method-assign]


def main(argv: list[str]) -> None:
    patch_kms()
    patch_multipart_lock()
    patch_s3_kms()
    isolated = os.environ.get(ISOLATED_ACCOUNT_ENV)
    if isolated:
        guard_isolated(isolated)
    directory = os.environ.get(REPLICATION_DIR_ENV)
    if directory:
        patch_s3(Path(directory))
    aurora = os.environ.get(AURORA_DIR_ENV)
    if aurora:
        clusters = patch_rds(Path(aurora))

        def stop(signum: int, frame: Any) -> None:
            clusters.stop_all()
            raise SystemExit(0)

        signal.signal(signal.SIGTERM, stop)
        atexit.register(clusters.stop_all)
    from moto.server import main as serve

    serve(argv)


if __name__ == "__main__":
    main(sys.argv[1:])
