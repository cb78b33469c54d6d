"""How a restore task reaches a self-hosted Redis it must stop, refill and start again.

Restoring an RDB means the server is down while its file is replaced, so the task needs more than
the endpoint in the stack outputs: where the data file is, and how to stop and start the server.
That is a *control* entry per store:

- ``local-redis`` (``--stack local``): a ``LocalRedis`` the local environment started. The
  environment writes ``.drkit/local/control.json`` (``write_local_control``) with the server's work
  directory, port and flags; the password stays in ``credentials.json``. The task stops the server
  with ``SHUTDOWN NOSAVE`` (whoever started it, the server answers to its password) and starts it
  again as ``LocalRedis`` would, on the same port and directory. The restarted server is a child of
  the task in its own session, so it keeps running after the task exits, as a supervisor's would.
- A Kubernetes StatefulSet (scale to 0, mount the volume in the restore job, scale to 1) is the
  production form of the same three verbs; it is not built yet, and a store without a control entry
  is refused with a message that says so and names the ElastiCache alternative.

``scratch_redis`` is the third kind: a throwaway server ``invoke verify`` starts for a test restore.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

import redis
from pydantic import BaseModel, ConfigDict, ValidationError

from drkit.backup.redis import RedisSource
from drkit.context import LOCAL_STACK, LOCAL_STATE, OpsContext
from drkit.local.process import port_open
from drkit.local.redis import REDIS_SERVER, LocalRedis
from drkit.ops.scratch import Holder
from drkit.ops.throwaway import make_workdir, record
from drkit.recovery import RecoveryError
from drkit.restore.redis import VolumeTarget, local_redis_target

CONTROL_FILE = "control.json"
SCRATCH_KIND = "redis"
STOP_TIMEOUT_S = 30.0


class LocalRedisControl(BaseModel):
    """What it takes to stop and start one ``LocalRedis`` from another process."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["local-redis"] = "local-redis"
    workdir: Path
    host: str
    port: int
    persistence: bool = False
    executable: str = REDIS_SERVER


def control_path(project_dir: Path) -> Path:
    return project_dir / LOCAL_STATE / CONTROL_FILE


def write_local_control(project_dir: Path, store: str, server: LocalRedis) -> Path:
    """Record ``server`` as the self-hosted server of ``store`` (the local environment calls it)."""
    path = control_path(project_dir)
    entries = json.loads(path.read_text()) if path.exists() else {}
    entries[store] = LocalRedisControl(
        workdir=server.workdir,
        host=server.host,
        port=server.port,
        persistence=server.persistence,
        executable=server.executable,
    ).model_dump(mode="json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(entries, indent=2) + "\n")
    return path


def read_control(project_dir: Path, store: str) -> LocalRedisControl | None:
    path = control_path(project_dir)
    if not path.exists():
        return None
    try:
        entry = json.loads(path.read_text()).get(store)
        return None if entry is None else LocalRedisControl.model_validate(entry)
    except (ValueError, ValidationError) as error:
        raise RecoveryError(
            f"{path}: entry for {store!r} is not a server control: {error}"
        ) from None


def live_target(ctx: OpsContext, store: str, project_dir: Path) -> VolumeTarget:
    """The store's own self-hosted server as a restore target; refused when it cannot be
    stopped and started from here."""
    control = read_control(project_dir, store) if ctx.stack == LOCAL_STACK else None
    if control is None:
        raise RecoveryError(
            f"store {store!r} of stack {ctx.stack!r} has no self-hosted Redis this task can stop "
            f"and start (no entry in {control_path(project_dir)}; a Kubernetes StatefulSet target "
            "is not built yet). Restore into a new ElastiCache replication group with "
            "--replication-group NAME instead."
        )
    endpoint = ctx.outputs.stores.get(store)
    if endpoint is None or (endpoint.host, endpoint.port) != (control.host, control.port):
        raise RecoveryError(
            f"the control entry of {store!r} names {control.host}:{control.port}, the stack "
            f"outputs {endpoint and f'{endpoint.host}:{endpoint.port}'}: they must agree"
        )
    password = ctx.credentials.for_store(store).password
    server = LocalRedis(
        control.workdir, persistence=control.persistence, executable=control.executable
    )
    server.port, server.password = control.port, password
    source = RedisSource(control.host, control.port, password)

    def stop() -> None:
        shutdown(source)

    return VolumeTarget(
        name=f"redis {control.host}:{control.port} ({store})",
        source=source,
        rdb_path=server.rdb_path,
        stop_server=stop,
        start_server=server.start,
    )


def shutdown(source: RedisSource, timeout: float = STOP_TIMEOUT_S) -> None:
    """``SHUTDOWN NOSAVE`` (the file is about to be replaced), then wait for the port to close."""
    client = redis.Redis(
        host=source.host,
        port=source.port,
        password=source.password,
        username=source.username,
        socket_timeout=source.socket_timeout,
    )
    with client:
        client.shutdown(nosave=True)
    deadline = time.monotonic() + timeout
    while port_open(source.port, source.host):
        if time.monotonic() > deadline:
            raise RecoveryError(f"{source.name} still answers {timeout:.0f}s after SHUTDOWN")
        time.sleep(0.05)


def server_run_id(target: VolumeTarget) -> str:
    """Redis's ``run_id``: new at every start, so it tells whether the server restarted."""
    with target.source.client() as client:
        return str(client.info("server").get("run_id", ""))


@contextmanager
def scratch_redis(
    parent: Path | None = None, holder: Holder | None = None
) -> Iterator[VolumeTarget]:
    """A throwaway Redis on a free loopback port, removed with its files on exit. With the run's
    ``holder``, its directory is named for it and records the server, so the next run or
    ``invoke verify --cleanup`` stops one a killed run left (``drkit.ops.throwaway``)."""
    if shutil.which(REDIS_SERVER) is None:
        raise RecoveryError(
            f"a test restore of Redis needs {REDIS_SERVER} on this host's PATH (apt-get install "
            "redis-server)"
        )
    if holder is None:
        workdir = Path(tempfile.mkdtemp(prefix="drkit-scratch-redis-", dir=parent))
    else:
        workdir = make_workdir(SCRATCH_KIND, holder, parent)
    try:
        with LocalRedis(workdir) as server:
            if holder is not None:
                record(workdir, server, [])
            yield local_redis_target(server)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
