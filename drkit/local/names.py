"""The local stack's stable names: where each store's clients connect, moved by a failover.

Production reaches PostgreSQL and Redis through Route 53 failover records (``db.<zone>``,
``cache.<zone>``) and Kafka through the ``kafka-bootstrap`` ConfigMap. Locally, Kafka keeps the
ConfigMap (``local.up`` applies it to both clusters, pointing at prod's broker), and PostgreSQL and
Redis get the local stand-in of DNS: one small name map, ``.drkit/local/names.json``, outside both
regions. Like Route 53 (a global service whose data plane outlives a region), it must survive the
loss of either region, which a ConfigMap in one region's cluster would not; and like DNS it is
re-read by a client each time it connects (``resolve``), so a failover that moves a name
(``point``, an atomic rename) moves every new connection and nothing else.

It holds no secret: credentials stay in ``credentials.json``.
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

from drkit.context import LOCAL_STATE

if TYPE_CHECKING:
    from drkit.local.regions import LocalRegions

NAMES_FILE = "names.json"


class StableName(BaseModel):
    """Where a store's name leads now: a region and an address (``database`` for PostgreSQL)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    region: str
    host: str
    port: int
    database: str | None = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


def names_path(project_dir: Path) -> Path:
    return project_dir / LOCAL_STATE / NAMES_FILE


def read_names(project_dir: Path) -> dict[str, StableName]:
    return read_names_file(names_path(project_dir))


def read_names_file(path: Path) -> dict[str, StableName]:
    """The name map at ``path`` (a drill on its own servers keeps one in its workdir)."""
    body: dict[str, Any] = json.loads(path.read_text())
    return {store: StableName.model_validate(entry) for store, entry in body.items()}


def write_names_file(path: Path, names: dict[str, StableName]) -> None:
    """A whole name map at ``path``, in one atomic rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    _write(path, names)


def resolve(project_dir: Path, store: str) -> StableName:
    """Read the name now (never cached): a failover may have moved it since the last call."""
    names = read_names(project_dir)
    if store not in names:
        raise KeyError(f"no stable name for store {store!r}; names: {', '.join(sorted(names))}")
    return names[store]


def point(project_dir: Path, store: str, target: StableName) -> None:
    """Move ``store``'s name to ``target`` in one atomic rename (what a failover does).

    A failover moves several names at once, from parallel steps (threads) or processes: the read,
    change and write hold an exclusive lock on ``names.json.lock``, so no move is lost, and each
    writer has its own partial file."""
    point_file(names_path(project_dir), store, target)


def point_file(path: Path, store: str, target: StableName) -> None:
    """``point`` on the name map at ``path``."""
    with path.with_suffix(".json.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            names = read_names_file(path)
            names[store] = target
            _write(path, names)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _write(path: Path, names: dict[str, StableName]) -> None:
    partial = path.with_suffix(f".json.{os.getpid()}.{threading.get_ident()}.partial")
    partial.write_text(
        json.dumps({k: v.model_dump(exclude_none=True) for k, v in names.items()}, indent=2)
    )
    os.replace(partial, path)


def write_names(directory: Path, world: LocalRegions) -> Path:
    """The name of every store prod replicates into dr continuously (its kind has a ``local.lag``
    in ``drkit.kinds``: a failover moves it), pointing at prod, as ``local.up`` leaves it."""
    from drkit.kinds import REGISTRY
    from drkit.local.regions import PROD

    prod = world.regions[PROD]
    names: dict[str, StableName] = {}
    for store, endpoint in world.outputs[PROD].stores.items():
        if REGISTRY[endpoint.kind].local.lag is not None:
            names[store] = StableName(
                region=prod.name, host=endpoint.host, port=endpoint.port, database=endpoint.database
            )
    path = directory / NAMES_FILE
    _write(path, names)
    return path
