"""The ``region-failover`` scenario: the whole prod region SIGKILLed mid-write, the failover run as
the operator runs it, the writers carrying on in dr through the stable names.

It plays on a two-region local stack of its own (``local.up`` in a scratch project under the
drill's workdir, with the replicated stores only), never on one the operator keeps up in the
checkout: the scenario kills that stack's prod region. Its writers are the drill's writers,
connected through the stack's name map (``.drkit/local/names.json``), which the failover moves;
nothing tells them the region changed.

Measured per store:

- RTO: from the kill to the first write that the new primary accepted and the drill read back
  from it (a watcher reads each store's first write acknowledged in dr back from dr's server);
- RPO: the writes acknowledged by prod and missing from dr after the failover: how many, and the
  data-loss window, from the newest acknowledged write dr kept to the newest one it lost (0 when
  nothing was lost), as the backup scenarios measure it. Its distance before the kill is reported
  too (``newest_kept_before_kill_seconds``).

Both are judged against the store's objectives, RPO included: continuous protection is what the
objective relies on here, and this is where it is measured.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from drkit.drill.scenarios import ScenarioResult, StoreOutcome
from drkit.drill.verify import Verification
from drkit.drill.world import DrillWorld
from drkit.drill.writers import StableAddress, Write, Writer
from drkit.kinds import REGISTRY, DrillWriter, drill_writers
from drkit.local.names import names_path

if TYPE_CHECKING:
    from stackmodels.config import StoreKind

NAME = "region-failover"
SOAK_S = 4.0
AFTER_S = 2.0
RECOVERY_TIMEOUT_S = 180.0
REPO = Path(__file__).resolve().parents[2]
RATE = 20.0
"""Writes per second into each store (a writer whose default is lower keeps its own): two more
JVMs share the cores."""


@dataclass
class Recovery:
    """When each store's first write in dr was acknowledged, and when the drill read it back."""

    write: Write | None = None
    read_back_at: datetime | None = None
    error: str = ""


def scratch_project(world: DrillWorld) -> Path:
    """A project directory for the scenario's stack: the drill's config and the local overlay."""
    project = world.env.workdir / "two-regions"
    project.mkdir(parents=True, exist_ok=True)
    source = world.project_dir or REPO
    for name in ("Pulumi.prod.yaml", "local-stack.yaml"):
        found = source / name if (source / name).exists() else REPO / name
        shutil.copy(found, project / name)
    return project


def start_stack(world: DrillWorld) -> None:
    """``local.up`` of the scenario's stack in the background, from the drill's start: its JVMs
    start while the drill seeds and soaks, rather than on the scenario's clock."""
    from drkit.local.daemon import up

    project = scratch_project(world)
    pool = ThreadPoolExecutor(1, thread_name_prefix="region-failover-up")
    future = pool.submit(up, project, 2, _stores(world), io.StringIO())
    pool.shutdown(wait=False)
    world.background[NAME] = (project, future)


def stop_stack(world: DrillWorld) -> None:
    """``local.down`` of the scenario's stack, if it was started (whether or not it played)."""
    from drkit.local.daemon import down

    entry = world.background.pop(NAME, None)
    if entry is None:
        return
    project, future = entry
    with contextlib.suppress(Exception):
        future.result()
    with world.phase("region", "local.down"):
        down(project, out=io.StringIO())


def played_kinds() -> dict[StoreKind, DrillWriter]:
    """The kinds the scenario plays, in the registry's order: those the drill writes into that
    the local stack protects continuously into dr (``drkit.kinds``)."""
    return {
        kind: writer
        for kind, writer in drill_writers().items()
        if REGISTRY[kind].local.lag is not None
    }


def _stores(world: DrillWorld) -> list[str]:
    return [world.store(kind) for kind in played_kinds()]


def region_failover(world: DrillWorld) -> ScenarioResult:
    stores = {world.store(kind): writer for kind, writer in played_kinds().items()}
    result = ScenarioResult(
        NAME,
        "writers trade through the stable names; every process of the prod region is killed "
        "with SIGKILL mid-write; `invoke failover --stack local --to dr --yes` promotes the "
        "standbys and moves the names; the writers carry on in dr",
    )
    if NAME not in world.background:
        start_stack(world)
    project, future = world.background[NAME]
    world.stop_writers()  # the embedded world's writers rest: two more JVMs share the cores
    try:
        with world.phase("region", "local.up (2 regions)"):
            state = future.result()
        world.say(f"two-region stack up ({state['ready_seconds']}s to start; {project})")
        return _play(world, project, state, stores, result)
    finally:
        stop_stack(world)
        for writer in world.writers.values():
            writer.resume()


def _play(
    world: DrillWorld,
    project: Path,
    state: dict[str, Any],
    stores: dict[str, DrillWriter],
    result: ScenarioResult,
) -> ScenarioResult:
    from drkit.failover.command import switch_regions
    from drkit.ops.run import RunOptions

    prod, dr = state["stores"]["prod"], state["stores"]["dr"]
    names = names_path(project)
    topics = tuple(state["mirrored_topics"])  # what dr can be checked for: a writer writes those
    writers: dict[str, Any] = {}
    for store, kind_writer in stores.items():
        if kind_writer.prepare is not None:  # PostgreSQL: the schema its orders go into
            with world.phase(store, "seed (prod)"):
                kind_writer.prepare(prod[store]["url"])
        address = _address(names, store, prod[store], topics)
        rate = min(RATE, kind_writer.rate)
        writers[store] = kind_writer.factory(world.ctx, address, store, rate)
    for writer in writers.values():
        writer.start()
    try:
        with world.phase("region", "trading in prod"):
            time.sleep(SOAK_S)
        world.say(f"{NAME}: writes in prod {_counts(writers)}; killing the prod region")
        with world.phase("region", "disaster"):
            killed = _kill_region(state, "prod")
            disaster_at = datetime.now(UTC)
        world.say(f"disaster: {len(killed)} prod processes SIGKILLed ({', '.join(killed)})")
        recoveries = {store: Recovery() for store in writers}
        watcher = threading.Thread(
            target=_watch,
            args=(writers, dr, recoveries, disaster_at),
            name="recovery-watcher",
            daemon=True,
        )
        watcher.start()
        out = io.StringIO()
        with world.phase("region", "invoke failover --stack local --to dr --yes"):
            outcome = switch_regions(
                {"to": "dr"},
                stack="local",
                outputs=None,
                kubeconfig=None,
                options=RunOptions(yes=True),
                project_dir=project,
                out=out,
            )
        last = out.getvalue().strip().splitlines()[-1:] or ["(no output)"]
        world.say(f"failover exit {outcome.exit_code}: {last[0]}")
        with world.phase("region", "writers carry on in dr"):
            watcher.join(RECOVERY_TIMEOUT_S)
            time.sleep(AFTER_S)
    finally:
        for writer in writers.values():
            writer.stop()
    with world.phase("region", "verify (dr)"):
        checks = {
            store: _verify(writer, dr[store]["url"], store, disaster_at)
            for store, writer in writers.items()
        }
        verified_at = datetime.now(UTC)
    outcomes = [
        _outcome(world, store, checks[store], writers[store], recoveries[store], disaster_at, state)
        for store in writers
    ]
    result.detail = (
        f"failover {outcome.report.status.value} in {outcome.report.seconds:.1f}s; "
        f"lag at cut-over {outcome.report.figures.get('lag_at_cutover', 'not measured')}; "
        + "; ".join(
            f"{s}: {writers[s].next_n - 1} written, {writers[s].failures} refused or unanswered"
            for s in writers
        )
    )
    result.disaster_at = disaster_at.isoformat()
    result.verified_at = verified_at.isoformat()
    reached = [o.rto_seconds for o in outcomes if o.rto_seconds is not None]
    result.rto_seconds = max(reached) if len(reached) == len(outcomes) else None
    result.stores = outcomes
    result.status = (
        "passed"
        if outcome.exit_code == 0
        and result.verified
        and result.rto_met is True
        and result.rpo_met is True
        else "failed"
    )
    return result


def _address(
    names: Path, store: str, entry: dict[str, Any], topics: tuple[str, ...]
) -> StableAddress:
    """The writer's locator: the store's stable name, with the credentials of its URL (the same
    in both regions: the standbys are copies), and the mirrored topics (those of a Kafka store
    that dr can be checked for; the other kinds' writers have no topics to choose)."""
    parts = urlsplit(entry["url"] if "://" in entry["url"] else f"//{entry['url']}")
    return StableAddress(
        names,
        store,
        user=unquote(parts.username or ""),
        password=unquote(parts.password or ""),
        topics=topics,
    )


def _counts(writers: dict[str, Any]) -> dict[str, int]:
    return {store: writer.next_n - 1 for store, writer in writers.items()}


def _kill_region(state: dict[str, Any], region: str) -> list[str]:
    """SIGKILL every process of ``region`` that local.up recorded (by pid and start time)."""
    from drkit.local.process import alive

    killed = []
    for process in state.get("processes", []):
        if process["region"] == region and alive(process["pid"], process.get("start_time")):
            os.kill(process["pid"], signal.SIGKILL)
            killed.append(process["name"])
    return killed


def _in_dr(write: Write, dr_address: str) -> bool:
    return bool(write.detail.get("address") == dr_address)


def _watch(
    writers: dict[str, Any],
    dr: dict[str, Any],
    recoveries: dict[str, Recovery],
    disaster_at: datetime,
) -> None:
    """Until every store's first write in dr is read back from dr (or the timeout)."""
    deadline = time.monotonic() + RECOVERY_TIMEOUT_S
    while time.monotonic() < deadline:
        pending = [s for s, r in recoveries.items() if r.read_back_at is None]
        if not pending:
            return
        for store in pending:
            entry, recovery, writer = dr[store], recoveries[store], writers[store]
            address = writer.address_of(entry["url"])
            first = next(
                (
                    w
                    for w in list(writers[store].ledger)
                    if w.at > disaster_at and _in_dr(w, address)
                ),
                None,
            )
            if first is None:
                continue
            recovery.write = first
            try:
                if writer.read_back(entry["url"], first):
                    recovery.read_back_at = datetime.now(UTC)
            except Exception as error:
                recovery.error = " ".join(str(error).split())
        time.sleep(0.05)


# --- verification in dr ------------------------------------------------------------------------


def _split(
    ledger: list[Write], present: set[int], disaster_at: datetime, dr_address: str
) -> tuple[Verification, list[Write], list[Write]]:
    """Writes acknowledged by prod that dr lacks are lost (the RPO); a write acknowledged by dr
    itself and missing from it is a failure. Judged by the server that acknowledged the write,
    not by the clock: a write prod acknowledged as it was killed is stamped by its writer a
    moment later, after the disaster's own timestamp."""
    kept = [w for w in ledger if w.n in present]
    lost = [w for w in ledger if w.n not in present and not _in_dr(w, dr_address)]
    missing = [w for w in ledger if w.n not in present and _in_dr(w, dr_address)]
    check = Verification(expected=len(kept) + len(missing), missing=len(missing))
    for write in missing[:5]:
        check.example(f"write {write.n}, acknowledged at {write.at.isoformat()}, missing in dr")
    check.lost_writes = len(lost)
    check.lost = [w.n for w in lost]
    check.newest_restored = max((w.at for w in kept if w.at <= disaster_at), default=None)
    check.newest_lost = max((w.at for w in lost), default=None)
    return check, kept, lost


def _verify(writer: Writer, url: str, store: str, disaster_at: datetime) -> Verification:
    """Every write of ``writer`` against dr's server at ``url``: kept and equal, lost to the RPO
    (acknowledged by prod), or missing (acknowledged by dr)."""
    found = writer.found_in(url)
    check, kept, _ = _split(writer.ledger, set(found), disaster_at, writer.address_of(url))
    for write in kept:
        if found[write.n]:
            check.restored += 1
        else:
            check.mismatched += 1
            check.example(f"{store}: write {write.n} differs in dr")
    return check


def _outcome(
    world: DrillWorld,
    store: str,
    check: Verification,
    writer: Any,
    recovery: Recovery,
    disaster_at: datetime,
    state: dict[str, Any],
) -> StoreOutcome:
    config = world.config.stores[store]
    data_class = world.config.data_classes[config.data_class]
    if recovery.read_back_at is not None:
        rto = round((recovery.read_back_at - disaster_at).total_seconds(), 3)
    else:
        # not recovered: the time the drill waited, a lower bound; the store fails verification
        rto = round((datetime.now(UTC) - disaster_at).total_seconds(), 3)
        check.example(
            f"no write acknowledged in dr was read back within {RECOVERY_TIMEOUT_S:.0f}s"
            + (f" ({recovery.error})" if recovery.error else "")
        )
        check.missing += 1
    lost = set(check.lost)
    lost_at = [w.at for w in writer.ledger if w.n in lost]
    if not lost_at:
        rpo = 0.0
    elif check.newest_restored is None:
        # dr kept none of the drill's writes: the window opens at the drill's first lost write
        rpo = round((max(lost_at) - min(lost_at)).total_seconds(), 3)
    else:
        rpo = round(check.rpo_seconds, 3)
    protection = state["stores"]["dr"][store].get("protection")
    return StoreOutcome(
        store=store,
        data_class=config.data_class,
        backup_id=f"continuous ({protection})",
        recovery_point=(check.newest_restored or disaster_at).isoformat(),
        verification=check,
        rpo_seconds=rpo,
        rpo_schedule_seconds=rpo,  # replication runs in real time: nothing is compressed
        rpo_objective_seconds=data_class.rpo.total_seconds(),
        rto_objective_seconds=data_class.rto.total_seconds(),
        continuous_protection=protection,
        rto_seconds=rto,
        rpo_basis="replication",
        newest_kept_before_kill_seconds=(
            round((disaster_at - check.newest_restored).total_seconds(), 3)
            if check.newest_restored is not None
            else None
        ),
    )
