"""The Kafka framed format's specification (``KAFKA_FORMAT.md``) and its standalone reader
(``read_drkf.py``, standard library only), both stored in the vault beside the data once per format
version (:func:`drkit.backup.kafka_reader.store_reader_once`)."""

from __future__ import annotations

from pathlib import Path

from drkit.kafka_frames import VERSION
from drkit.storage.objectstore import Encryption, ObjectExists, ObjectStore

HERE = Path(__file__).resolve().parent
SPECIFICATION = "KAFKA_FORMAT.md"
READER = "read_drkf.py"
FILES = (SPECIFICATION, READER)


def format_prefix(data_class: str, store: str, version: int = VERSION) -> str:
    """``<data class>/<store>/format/drkf-v1/``: beside the store's backups, one per version."""
    return f"{data_class}/{store}/format/drkf-v{version}/"


def store_reader_once(
    vault: ObjectStore, data_class: str, store: str, encryption: Encryption | None = None
) -> list[str]:
    """Put the specification and the reader of this format version where they are absent; return
    the keys written (none once they are there). Create-only: a stored copy is never replaced,
    and a concurrent writer that got there first is as good."""
    written = []
    for name in FILES:
        key = format_prefix(data_class, store) + name
        if vault.exists(key):
            continue
        try:
            vault.put_bytes(key, (HERE / name).read_bytes(), encryption)
        except ObjectExists:
            continue
        written.append(key)
    return written


def store_reader_blind(
    objects: ObjectStore, data_class: str, store: str, encryption: Encryption | None = None
) -> list[str]:
    """``store_reader_once`` for a store the writer may only create objects in (the isolated
    vault: no HEAD, no read): each file put create-only, a copy already there (HTTP 412) being as
    good; the keys newly written."""
    written = []
    for name in FILES:
        key = format_prefix(data_class, store) + name
        try:
            objects.put_bytes(key, (HERE / name).read_bytes(), encryption)
        except ObjectExists:
            continue
        written.append(key)
    return written
