"""The GCS emulator with the two rules the real mirror lives by, which the emulator ignores.

``python -m drkit.local.gcs_worm start ...`` runs ``gcp_storage_emulator`` (same arguments) with:

- **preconditions**: a write carrying ``ifGenerationMatch=0`` (create-only) fails with 412
  ``conditionNotMet`` when the object exists, as GCS answers. The resumable session URL keeps the
  query of the request that opened it, so a resumable upload is refused when its last chunk would
  create the object, as in GCS.
- **bucket retention policy**: in a bucket with a ``retentionPolicy`` (the mirror's is locked),
  an object younger than the retention period can be neither replaced nor deleted: 403, naming the
  object and when its retention ends, as GCS answers.

Everything else is the emulator's. Both rules are checked where the emulator stores or removes an
object (``Storage.create_file`` and ``Storage.delete_file``), so every route (JSON, XML, batch,
copy, compose, rewrite) goes through them.
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from typing import Any

from gcp_storage_emulator import server, storage  # type: ignore[import-untyped]
from gcp_storage_emulator.__main__ import main as emulator_main  # type: ignore[import-untyped]

_request = threading.local()


class Refused(Exception):
    def __init__(self, status: HTTPStatus, reason: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason


def _created(file_obj: dict[str, Any]) -> datetime | None:
    text = file_obj.get("timeCreated")
    if not isinstance(text, str):
        return None
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def _retained_until(store: Any, bucket_name: str, file_name: str) -> datetime | None:
    """When the bucket's retention policy lets go of an existing object (None: no policy)."""
    policy = (store.buckets.get(bucket_name) or {}).get("retentionPolicy") or {}
    seconds = int(policy.get("retentionPeriod") or 0)
    existing = store.objects.get(bucket_name, {}).get(file_name)
    if not seconds or existing is None:
        return None
    created = _created(existing)
    return created + timedelta(seconds=seconds) if created else None


def _check_write(store: Any, bucket_name: str, file_name: str) -> None:
    if file_name not in store.objects.get(bucket_name, {}):
        return
    query: dict[str, list[str]] = getattr(_request, "query", None) or {}
    if query.get("ifGenerationMatch") == ["0"]:
        raise Refused(
            HTTPStatus.PRECONDITION_FAILED,
            "conditionNotMet",
            f"At least one of the pre-conditions you specified did not hold: gs://{bucket_name}/"
            f"{file_name} exists (ifGenerationMatch=0)",
        )
    _check_retention(store, bucket_name, file_name, "overwritten")


def _check_retention(store: Any, bucket_name: str, file_name: str, verb: str) -> None:
    until = _retained_until(store, bucket_name, file_name)
    if until is not None and until > datetime.now(UTC):
        raise Refused(
            HTTPStatus.FORBIDDEN,
            "retentionPolicyNotMet",
            f"Object 'gs://{bucket_name}/{file_name}' is subject to bucket's retention policy "
            f"and cannot be {verb} until '{until.isoformat()}'",
        )


def _guarded_storage() -> None:
    create_file = storage.Storage.create_file
    delete_file = storage.Storage.delete_file

    def guarded_create(self: Any, bucket_name: str, file_name: str, *args: Any, **kw: Any) -> Any:
        _check_write(self, bucket_name, file_name)
        return create_file(self, bucket_name, file_name, *args, **kw)

    def guarded_delete(self: Any, bucket_name: str, file_name: str, *args: Any, **kw: Any) -> Any:
        _check_retention(self, bucket_name, file_name, "deleted")
        return delete_file(self, bucket_name, file_name, *args, **kw)

    storage.Storage.create_file = guarded_create
    storage.Storage.delete_file = guarded_delete


def _answering(handler: Callable[..., Any]) -> Callable[..., Any]:
    def run(request: Any, response: Any, *args: Any, **kw: Any) -> Any:
        _request.query = request.query
        try:
            return handler(request, response, *args, **kw)
        except Refused as refused:
            response.status = refused.status
            response["Content-type"] = "application/json"
            response._content = json.dumps(
                {
                    "error": {
                        "code": refused.status.value,
                        "message": str(refused),
                        "errors": [{"reason": refused.reason, "message": str(refused)}],
                    }
                }
            )
            return None
        finally:
            _request.query = None

    return run


def install() -> None:
    """Patch the emulator in this process (before it starts serving)."""
    _guarded_storage()
    server.HANDLERS = tuple(
        (regex, {method: _answering(handler) for method, handler in handlers.items()})
        for regex, handlers in server.HANDLERS
    )


if __name__ == "__main__":
    install()
    sys.exit(emulator_main())
