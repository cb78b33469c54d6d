"""``invoke backup.store``: one backup of one store, now, through the engine."""

from __future__ import annotations

from pathlib import Path
from typing import TextIO

from pydantic import BaseModel, ConfigDict

from drkit.backup.engine import BackupFailed, run_backup
from drkit.context import OpsContext
from drkit.handlers import backup_handler
from drkit.progress import ByteProgress, human_bytes


class BackupRequest(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    stack: str
    store: str
    outputs: Path | None = None
    dry_run: bool = False


def take_backup(request: BackupRequest, project_dir: Path, out: TextIO) -> int:
    """Returns the exit code: 0 when the manifest was committed, 1 when the backup failed."""
    ctx = OpsContext.load(request.stack, request.outputs, project_dir)
    store = ctx.store_config(request.store)
    handler = backup_handler(ctx, request.store)
    destinations = ctx.destinations()
    targets = ", ".join(s.name for s in destinations.stores)
    out.write(
        f"plan: back up {request.store} ({store.kind.value}, data class {store.data_class}) "
        f"of stack {ctx.stack} to {targets}, encrypted with {destinations.encryption.kms_key_id}\n"
    )
    if request.dry_run:
        out.write("dry run: nothing was read or written\n")
        return 0
    progress = ByteProgress(request.store)
    try:
        manifest = run_backup(request.store, store.data_class, handler, destinations, progress)
    except BackupFailed as error:
        progress.done()
        out.write(f"FAILED: {error}\n")
        return 1
    progress.done()
    out.write(
        f"backup {manifest.backup_id} committed: {human_bytes(manifest.raw_size)} read, "
        f"{human_bytes(manifest.size)} stored, {manifest.duration_seconds:.1f}s, "
        f"consistent at {manifest.recovery_point.isoformat()}\n"
    )
    return 0
