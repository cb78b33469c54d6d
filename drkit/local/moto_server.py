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
- **S3 replication status.** AWS reports ``x-amz-replication-status`` on HEAD and GET: PENDING then
  COMPLETED on a replicated bucket's objects, REPLICA on their copies. moto does not replicate; the
  local stack's copier (``drkit.local.regions.VaultCopier``) does, and notes each copied key in
  ``$DRKIT_LOCAL_REPLICATION_DIR``: ``<source bucket>.completed`` and ``<target
  bucket>.replica``, one key a line. A bucket with a ``.completed`` file replicates: its objects
  not copied yet are PENDING.
"""

from __future__ import annotations

import hashlib
import os
import sys
import threading
from pathlib import Path
from typing import Any

REPLICA_TAG = "drkit-local:replica-of"
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

    utils._deserialize_ciphertext_blob = without_padding  # type: ignore[assignment]
    pending = threading.local()
    generate_key_id = models.generate_key_id

    def key_id(multi_region: bool = False) -> str:
        given = getattr(pending, "key_id", None)
        return str(given) if given else generate_key_id(multi_region)

    models.generate_key_id = key_id  # type: ignore[assignment]
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


def main(argv: list[str]) -> None:
    patch_kms()
    directory = os.environ.get(REPLICATION_DIR_ENV)
    if directory:
        patch_s3(Path(directory))
    from moto.server import main as serve

    serve(argv)


if __name__ == "__main__":
    main(sys.argv[1:])
