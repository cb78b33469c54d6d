"""``invoke failover --stack local --to dr``: the region switch on the two-region local stack.

The plan has the shape of the AWS one (``drkit.failover.plan``); each store's part comes from its
protection kind (``drkit.failover.kinds``), read from the local stack's state:

    1  fence.primary          each kind fences the old primary where it answers
    1b replayed               --planned only: wait until every standby has replayed all the fenced
                              primary wrote (PostgreSQL replay LSN = flush LSN, Redis offsets,
                              MirrorMaker 2 end offsets), so no acknowledged write is lost
    2  measure.lag            each store's replication lag into the target, just before cut-over
    3  promote.<store>        in parallel; each checks first whether it is already promoted
    4  names.<store>          the stable name (``.drkit/local/names.json``, the local DNS) and
                              any other client pointer (the kafka-bootstrap ConfigMap) move
    5  workloads.scale-up     the target cluster's pilot-light workloads, where it has a cluster
    6  postcheck              every new primary accepts a write, reached through its stable name

Every step is idempotent, so ``--resume`` after a killed run finishes it without promoting twice,
and a failover to the region that is already primary is a no-op that says so. ``--planned`` needs
both sides of every store answering and every standby's lag within its RPO (else it is refused
before anything changes).

``invoke failback --stack local --to prod`` (always planned) is refused while an old primary in
prod does not answer (bring the region back first: ``drkit.local.recorded.restart_region``);
otherwise its plan puts the rejoin first and the reverse rejoin last around the same switchover:

    0  rejoin.<store>         each kind re-seeds the old primary in prod as a standby of dr's
                              (pg_rewind or pg_basebackup; REPLICAOF; MirrorMaker 2 dr -> prod)
                              and lifts the fence the failover left on it
    0b caught-up.<store>      its lag, read from the replication, within the store's RPO
    1..6                      the planned switchover above, dr -> prod, plus dr's workloads back
                              to their pilot light
    7  restore.<store>        dr's old primaries rejoin as standbys of prod's (their fence lifted,
                              MirrorMaker 2 prod -> dr again): the stack's original shape, so a
                              second failover works
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from drkit.failover.kinds import (
    NOTHING_TO_PROMOTE,
    REGISTRY,
    Endpoint,
    Health,
    Protection,
    StoreSides,
    protection_for,
)
from drkit.failover.operation import Outcome, PreflightBlocked, lag_at_cutover, run_figures
from drkit.failover.plan import MEASURE, POSTCHECK
from drkit.failover.request import FailoverRequest
from drkit.local.names import StableName, point, read_names, resolve
from drkit.local.regions import PROD
from drkit.ops.executor import Confirm, Executor, RunReport, Status
from drkit.ops.journal import Journal, new_run_id
from drkit.ops.plan import FunctionStep, Plan, Step, StepContext
from drkit.ops.run import JOURNAL_DIR, RunOptions, execute, keep_report
from stackmodels import StackConfig
from stackmodels.config import ProtectionKind
from stackmodels.durations import format_duration

REPLAYED = "replayed"
NOT_FENCED = "nothing to fence"
"""What a kind's ``fence`` says when it could not fence an old primary."""
REPLAY_WAIT_S = 60.0
CATCH_UP_WAIT_S = 120.0
REPLAY_POLL_S = 0.2
WORKLOADS = "workloads.scale-up"


class LocalFailoverError(ValueError):
    """The local stack cannot do this switch; the message says why (exit 2, nothing changed)."""


def _answers(state: dict[str, Any], entry: dict[str, Any], region: str) -> bool:
    """The store's process is the one recorded and alive, and its server answers."""
    from drkit.local.process import alive
    from drkit.local.status import probe_role

    for process in state.get("processes", []):
        if process["name"] == entry["process"] and process["region"] == region:
            if not alive(process.get("pid"), process.get("start_time")):
                return False
            return probe_role(entry["kind"], entry["url"], region) != "down"
    return False


def _protection(entry: dict[str, Any]) -> type[Protection]:
    return REGISTRY[ProtectionKind(entry["protection"])]


def stable_target(entry: dict[str, Any], region: str) -> StableName:
    """Where the store's stable name must lead once ``region`` is primary (its protection kind
    reads the name from the store's URL)."""
    return _protection(entry).stable_name(entry["url"], region)


def through_name(entry: dict[str, Any], name: StableName) -> str:
    """The target's client URL (its credentials) at the address the stable name leads to."""
    return _protection(entry).through(entry["url"], name)


class LocalSwitch:
    """Source, target and one ``Protection`` per replicated store, from the local stack's state."""

    def __init__(self, project_dir: Path, request: FailoverRequest, resume: bool = False) -> None:
        from drkit.local.daemon import read_state
        from drkit.local.local_config import local_stack_config

        state = read_state(project_dir)
        if state is None or state.get("status") != "ready":
            raise LocalFailoverError(
                f"--stack local: no local stack is up in {project_dir} "
                f"(status: {'down' if state is None else state.get('status')}); invoke local.up"
            )
        regions = list(state.get("regions", []))
        if len(regions) < 2:
            raise LocalFailoverError(
                "--stack local: the local stack has one region; a failover needs two "
                "(invoke local.down, then local.up --regions 2)"
            )
        if request.to != "dr" and not resume:  # a resumed failback may have stopped them itself
            dark = sorted(
                store
                for store, entry in state["stores"][request.to].items()
                if entry.get("protection") not in (None, ProtectionKind.GITOPS.value)
                and not _answers(state, entry, request.to)
            )
            if dark:
                raise LocalFailoverError(
                    f"--to {request.to}: the old primaries of {', '.join(dark)} do not answer; "
                    f"a failback re-seeds them from the new ones: bring {request.to} back first"
                )
        self.project_dir = project_dir
        self.request = request
        self.state = state
        self.config: StackConfig = local_stack_config(project_dir)
        self.target = request.to
        self.source = next(r for r in regions if r != self.target)
        self.entries: dict[str, dict[str, Any]] = dict(state["stores"][self.target])
        self.skipped: list[str] = []
        self.kinds: list[Protection] = []
        for store, entry in sorted(self.entries.items()):
            protection = entry.get("protection")
            if protection is None or ProtectionKind(protection) in NOTHING_TO_PROMOTE:
                continue
            kind = ProtectionKind(protection)
            if kind not in REGISTRY:
                self.skipped.append(f"{store}: no failover module for {kind.value}")
                continue
            source_entry = state["stores"][self.source][store]
            sides = StoreSides(
                store=store,
                kind=kind,
                source=Endpoint(
                    self.source,
                    source_entry["url"],
                    _answers(state, source_entry, self.source),
                ),
                target=Endpoint(self.target, entry["url"], True),
                project_dir=project_dir,
                state=state,
                namespace=self.config.kubernetes.namespace,
            )
            self.kinds.append(protection_for(sides))

    @property
    def failback(self) -> bool:
        return self.target == PROD

    @property
    def has_cluster(self) -> bool:
        """The stack runs a cluster per region (``local.up`` writes a kubeconfig only then)."""
        return bool(self.state.get("kubeconfig"))

    def name_of(self, store: str) -> StableName:
        return stable_target(self.entries[store], self.target)

    def names_moved(self) -> bool:
        names = read_names(self.project_dir)
        return all(
            store in names and names[store] == self.name_of(store)
            for store in (k.store for k in self.kinds)
        )

    def already_primary(self) -> bool:
        try:
            return self.names_moved() and all(kind.promoted() for kind in self.kinds)
        except Exception:
            return False

    def rpo_seconds(self, store: str) -> float:
        data_class = self.config.stores[store].data_class
        return self.config.data_classes[data_class].rpo.total_seconds()

    def rto_objective(self) -> str:
        rtos = [
            self.config.data_classes[self.config.stores[k.store].data_class].rto for k in self.kinds
        ]
        return f"{int(min(rtos).total_seconds())}s" if rtos else "n/a"


# --- the plan ------------------------------------------------------------------------------------


def _fence_step(switch: LocalSwitch) -> FunctionStep:
    def apply(context: StepContext) -> dict[str, str]:
        done = {kind.store: kind.fence() for kind in switch.kinds}
        for note in done.values():
            context.note(note)
        unfenced = [note for note in done.values() if NOT_FENCED in note]
        if switch.request.planned and unfenced:
            # a planned switchover promises no lost write: an old primary that may still take
            # writes must not be cut over from
            raise RuntimeError("not fenced: " + "; ".join(unfenced))
        return done

    return FunctionStep(
        "fence.primary",
        f"fence each old primary in {switch.source} where it answers (read-only PostgreSQL, "
        "Redis refusing writes)",
        apply,
    )


def _replayed_step(switch: LocalSwitch) -> FunctionStep:
    def apply(context: StepContext) -> dict[str, Any]:
        started = time.monotonic()
        while True:
            readings = {kind.store: kind.replayed() for kind in switch.kinds}
            behind = {store: r for store, r in readings.items() if r.behind > 0}
            waited = time.monotonic() - started
            if not behind:
                break
            if waited > REPLAY_WAIT_S:
                raise RuntimeError(
                    f"not replayed within {REPLAY_WAIT_S:.0f}s: "
                    + "; ".join(f"{s} {r.behind} {r.unit} behind" for s, r in behind.items())
                    + "; the old primaries stay fenced, --resume retries"
                )
            time.sleep(REPLAY_POLL_S)
        for store, reading in readings.items():
            context.note(f"{store}: 0 {reading.unit} behind {reading.detail}")
        return {
            "waited_seconds": round(waited, 3),
            "stores": {s: {"unit": r.unit, **r.detail} for s, r in readings.items()},
        }

    return FunctionStep(
        REPLAYED,
        f"wait until every standby in {switch.target} has replayed all its fenced primary in "
        f"{switch.source} wrote (at most {REPLAY_WAIT_S:.0f}s)",
        apply,
        mutates=False,
    )


def _measure_step(switch: LocalSwitch) -> FunctionStep:
    def apply(context: StepContext) -> dict[str, Any]:
        readings = []
        for kind in switch.kinds:
            lag = kind.lag()
            seconds = lag.seconds
            shown = "unknown" if seconds is None else f"{seconds}s"
            context.note(f"{kind.store} {shown}{' (' + lag.note + ')' if lag.note else ''}")
            readings.append(
                {
                    "store": kind.store,
                    "kind": kind.kind.value,
                    "seconds": seconds,
                    "rpo_seconds": switch.rpo_seconds(kind.store),
                    "note": lag.note,
                    "detail": lag.detail,
                    "measured_at": datetime.now(UTC).isoformat(),
                }
            )
        return {"readings": readings}

    return FunctionStep(
        MEASURE,
        f"read each store's replication lag into {switch.target} just before cut-over (from the "
        "replication itself): the data-loss window",
        apply,
        mutates=False,
    )


def _promote_step(switch: LocalSwitch, kind: Protection) -> FunctionStep:
    return FunctionStep(
        f"promote.{kind.store}",
        f"promote {kind.store}'s {kind.kind.value} standby in {switch.target}",
        lambda context: kind.promote(switch.request.planned),
        check=lambda context: kind.promoted(),
    )


def _names_step(switch: LocalSwitch, kind: Protection) -> FunctionStep:
    target = switch.name_of(kind.store)

    def apply(context: StepContext) -> dict[str, Any]:
        point(switch.project_dir, kind.store, target)
        return {"name": target.model_dump(exclude_none=True), **kind.repoint(target.address)}

    def done(context: StepContext) -> bool:
        return resolve(switch.project_dir, kind.store) == target and kind.repointed(target.address)

    def verify(context: StepContext) -> None:
        if not done(context):
            raise RuntimeError(f"{kind.store}'s stable name does not lead to {target.address}")
        context.note(f"{kind.store} -> {switch.target} {target.address}")

    return FunctionStep(
        f"names.{kind.store}",
        f"move {kind.store}'s stable name (and its clients' pointers) to {switch.target} "
        f"{target.address}",
        apply,
        check=done,
        confirm=verify,
    )


def _workloads_step(switch: LocalSwitch) -> FunctionStep:
    from drkit.failover import kube
    from drkit.failover.clients import KubeconfigClients

    namespace = switch.config.kubernetes.namespace
    context_name = f"local-{switch.target}"

    def api() -> Any:
        return KubeconfigClients(Path(switch.state["kubeconfig"])).api(context_name)

    def done(context: StepContext) -> bool:
        return not kube.misscaled(api(), namespace, primary=True)

    def apply(context: StepContext) -> dict[str, list[int]]:
        changes = kube.scale_all(api(), namespace, primary=True)
        context.note(f"{len(changes)} workloads scaled up")
        return changes

    return FunctionStep(
        WORKLOADS,
        f"scale workloads labelled {kube.REPLICAS_LABEL}=<n> in {context_name}/{namespace} to n",
        apply,
        check=done,
    )


def _postcheck_step(switch: LocalSwitch) -> FunctionStep:
    def apply(context: StepContext) -> dict[str, Any]:
        wrote: dict[str, Any] = {}
        for kind in switch.kinds:
            name = resolve(switch.project_dir, kind.store)
            if name.region != switch.target:
                raise RuntimeError(f"{kind.store}'s stable name leads to {name.region}")
            wrote[kind.store] = kind.postcheck(through_name(switch.entries[kind.store], name))
            context.note(f"{kind.store}: {wrote[kind.store]['wrote']} through its stable name")
        return {"verified_at": datetime.now(UTC).isoformat(), "stores": wrote}

    return FunctionStep(
        POSTCHECK,
        f"write to every new primary in {switch.target} through its stable name",
        apply,
    )


def _rejoin_step(switch: LocalSwitch, kind: Protection, restore: bool = False) -> FunctionStep:
    """``kind``'s target rejoins as a standby of its source; ``restore``: after the switch, the
    reversed kind (dr's side rejoining prod), and its clients' pointers moved to prod."""
    joining = kind.reversed() if restore else kind
    source, target = joining.sides.source.region, joining.sides.target.region

    def apply(context: StepContext) -> dict[str, Any]:
        done = joining.rejoin()
        if restore:
            done |= joining.repoint(switch.name_of(kind.store).address)
        context.note(f"{kind.store}: {target} replicates from {source} {done}")
        return done

    return FunctionStep(
        f"{'restore' if restore else 'rejoin'}.{kind.store}",
        f"re-seed {kind.store}'s old primary in {target} as a {kind.kind.value} standby of "
        f"{source}, its fence lifted",
        apply,
        check=lambda context: joining.rejoined(),
    )


def _caught_up_step(switch: LocalSwitch, kind: Protection) -> FunctionStep:
    rpo = switch.rpo_seconds(kind.store)

    def apply(context: StepContext) -> dict[str, Any]:
        started = time.monotonic()
        while True:
            ok, detail = kind.caught_up(rpo)
            if ok:
                break
            if time.monotonic() - started > CATCH_UP_WAIT_S:
                raise RuntimeError(
                    f"not caught up within {CATCH_UP_WAIT_S:.0f}s: {detail}; --resume retries"
                )
            time.sleep(REPLAY_POLL_S)
        context.note(detail)
        return {"lag": detail, "waited_seconds": round(time.monotonic() - started, 3)}

    return FunctionStep(
        f"caught-up.{kind.store}",
        f"wait until {kind.store}'s lag into {switch.target} is within its RPO "
        f"({format_duration(rpo)}, at most {CATCH_UP_WAIT_S:.0f}s)",
        apply,
        mutates=False,
    )


def _pilot_light_step(switch: LocalSwitch) -> FunctionStep:
    from drkit.failover import kube
    from drkit.failover.clients import KubeconfigClients

    namespace = switch.config.kubernetes.namespace
    context_name = f"local-{switch.source}"

    def api() -> Any:
        return KubeconfigClients(Path(switch.state["kubeconfig"])).api(context_name)

    def apply(context: StepContext) -> dict[str, list[int]]:
        changes = kube.scale_all(api(), namespace, primary=False)
        context.note(f"{len(changes)} workloads scaled to 0 in {switch.source}")
        return changes

    return FunctionStep(
        "workloads.pilot-light",
        f"scale the workloads in {context_name}/{namespace} back to 0 (pilot light)",
        apply,
        check=lambda context: not kube.misscaled(api(), namespace, primary=False),
    )


def build_local_plan(switch: LocalSwitch, parameters: dict[str, Any]) -> Plan:
    fence, measure = _fence_step(switch), _measure_step(switch)
    promotions = {k.store: _promote_step(switch, k) for k in switch.kinds}
    names = {k.store: _names_step(switch, k) for k in switch.kinds}
    check = _postcheck_step(switch)
    depends: dict[str, list[str]] = {
        measure.id: [fence.id],
        **{p.id: [measure.id] for p in promotions.values()},
        **{n.id: [promotions[store].id] for store, n in names.items()},
    }
    steps: list[Step] = [fence, measure, *promotions.values(), *names.values()]
    if switch.request.planned:
        replayed = _replayed_step(switch)
        depends[replayed.id] = [fence.id]
        depends[measure.id] = [replayed.id]
        steps.insert(1, replayed)
    last = [n.id for n in names.values()] or [measure.id]
    if switch.has_cluster:
        workloads = _workloads_step(switch)
        depends[workloads.id] = last
        steps.append(workloads)
        last = [workloads.id]
    if switch.failback:
        rejoins = {k.store: _rejoin_step(switch, k) for k in switch.kinds}
        gates = {k.store: _caught_up_step(switch, k) for k in switch.kinds}
        for store, gate in gates.items():
            depends[gate.id] = [rejoins[store].id]
        depends[fence.id] = [gate.id for gate in gates.values()]
        steps = [*rejoins.values(), *gates.values(), *steps]
        if switch.has_cluster:
            lights = _pilot_light_step(switch)
            depends[lights.id] = last
            steps.append(lights)
            last = [lights.id]
        restores = [_rejoin_step(switch, k, restore=True) for k in switch.kinds]
        for kind, restore in zip(switch.kinds, restores, strict=True):
            depends[restore.id] = [names[kind.store].id]
        steps += restores
        last += [restore.id for restore in restores]
    depends[check.id] = last
    steps.append(check)
    mode = "planned switchover" if switch.request.planned else "unplanned"
    verb = "failback" if switch.failback else "failover"
    name = f"{verb} to {switch.target} (local, {mode})"
    return Plan.from_dependencies(name, steps, depends, parameters)


# --- the run -------------------------------------------------------------------------------------


def _preflight(switch: LocalSwitch, out: TextIO) -> list[Health]:
    findings = [h for kind in switch.kinds for h in kind.health(switch.request.planned)]
    out.write(f"preflight ({switch.source} -> {switch.target}):\n")
    for health in findings:
        mark = "ok" if health.ok else ("BLOCKING" if health.blocking else "WARNING")
        out.write(f"  {mark:9} {health.name}: {health.detail}\n")
    for skipped in switch.skipped:
        out.write(f"  WARNING   {skipped}; left alone\n")
    if switch.request.planned and not switch.failback:  # a failback's gate follows its rejoin
        unhealthy = {h.name.partition(":")[0] for h in findings if h.blocking}
        for kind in switch.kinds:
            if kind.store in unhealthy:
                continue
            gate = _lag_gate(switch, kind)
            mark = "ok" if gate.ok else "BLOCKING"
            out.write(f"  {mark:9} {gate.name}: {gate.detail}\n")
            findings.append(gate)
    return findings


def _lag_gate(switch: LocalSwitch, kind: Protection) -> Health:
    """A planned switchover waits for the standby to catch up once the writers are fenced: it
    starts only when the lag is measured and within the store's RPO."""
    lag = kind.lag()
    rpo = switch.rpo_seconds(kind.store)
    name = f"{kind.store}: lag"
    if lag.seconds is None:
        return Health(name, False, f"unknown ({lag.note}); RPO {format_duration(rpo)}", True)
    shown = format_duration(lag.seconds)
    if lag.seconds > rpo:
        return Health(name, False, f"{shown}, above its RPO {format_duration(rpo)}", blocking=True)
    return Health(name, True, f"{shown}, within its RPO {format_duration(rpo)}")


def run_local(
    request: FailoverRequest,
    project_dir: Path,
    out: TextIO,
    options: RunOptions,
    confirm: Confirm,
) -> Outcome:
    switch = LocalSwitch(project_dir, request, resume=bool(options.resume))
    now = datetime.now(UTC)
    parameters = {
        "stack": "local",
        "source": switch.source,
        "target": switch.target,
        **request.model_dump(mode="json"),
    }
    if options.resume:
        out.write(f"resuming {options.resume}: preflight not repeated\n")
    else:
        if switch.already_primary():
            out.write(
                f"{switch.target} is already the primary region: every stable name leads to it "
                "and its stores are promoted; nothing to do\n"
            )
            report = RunReport(
                "none",
                f"failover to {switch.target} (no-op)",
                parameters,
                Status.SUCCEEDED,
                now.isoformat(),
                finished_at=now.isoformat(),
                figures={"noop": f"{switch.target} already primary"},
            )
            return Outcome(report, None)
        findings = _preflight(switch, out)
        blocking = [h for h in findings if h.blocking]
        if blocking and not options.dry_run:
            raise PreflightBlocked(
                "preflight blocked the switch: "
                + "; ".join(f"{h.name}: {h.detail}" for h in blocking)
            )
    plan = build_local_plan(switch, parameters)
    journal_dir = project_dir / JOURNAL_DIR
    executor = Executor(journal_dir, out, confirm=confirm)
    run_id = options.resume or new_run_id(plan.name, now)
    report = execute(executor, plan, run_id, options)
    report.figures |= figures(Journal(journal_dir, run_id), switch)
    if switch.failback:
        report.figures["seconds_by_store"] = {
            kind.store: round(
                sum(
                    step.seconds or 0.0
                    for step in report.steps
                    if step.id.partition(".")[2] == kind.store
                ),
                3,
            )
            for kind in switch.kinds
        }
    markdown = keep_report(
        report, project_dir, "failback" if switch.failback else "failover", "local", options
    )
    out.write(
        f"{report.status.value}: {report.plan} in {format_duration(report.seconds)}; RTO "
        f"{report.figures.get('rto', 'not reached')}, lag at cut-over "
        f"{report.figures.get('lag_at_cutover', 'not measured')}"
        + (f"; report {markdown}; journal {report.journal}\n" if markdown else "\n")
    )
    return Outcome(report, None)


def figures(journal: Journal, switch: LocalSwitch) -> dict[str, Any]:
    head = {
        "direction": f"{switch.source} -> {switch.target}",
        "mode": "planned" if switch.request.planned else "unplanned",
        "stack": "local",
    }
    values, readings = run_figures(journal, head, switch.rto_objective)
    if readings is not None:
        values["lag_before_cutover"] = {
            r["store"]: {k: r[k] for k in ("kind", "seconds", "rpo_seconds", "note", "detail")}
            for r in readings
        }
        values["lag_at_cutover"] = lag_at_cutover(readings)
    return values
