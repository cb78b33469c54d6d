"""``invoke restore.all``: several stores restored together to one recovery point, as one plan.

The point: the newest time at which every store has a backup at or before it
(``BackupIndex.common_point``); each store restores its newest backup at or before that time, and
the report gives the skew between the stores' recovery points (the seconds of history one store
has and another lacks).

The order is an explicit priority list with a reason per entry, as Velero orders a restore; a
store waits for every store of the kinds before it, stores of one kind restore in parallel. Each
store's steps are exactly those of its own task (``restore.postgres``, ``restore.kafka``,
``restore.redis``, ``restore.k8s``). The order, the reasons and the plan builder of each kind are
its entry in ``drkit.kinds``; a kind without a builder (time series, being written), or one
restored only when named (Kubernetes state), is left out of the default selection and named in
the plan.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Self

from pydantic import Field

from drkit.context import OpsContext
from drkit.kinds import REGISTRY, NotYet, RestoreOf, restorable_kinds, restore_order
from drkit.ops.plan import Plan, Step
from drkit.ops.selection import object_store, readable
from drkit.ops.verbs import Prepared as Held
from drkit.ops.verbs import RestoreEnv, RestoreRequest, RestoreVerb, comma_list
from drkit.recovery import BackupIndex, RecoveryError, Selection, parse_timestamp
from stackmodels.config import StoreKind


class RestoreAllRequest(RestoreRequest):
    at: str | None = None
    stores: list[str] = Field(default_factory=list)
    backups: dict[str, str] = Field(default_factory=dict)
    """Store -> backup id, fixed: a resumed run restores what the first run chose."""
    force: bool = False
    source: str = Field(default="vault", pattern="^(vault|mirror|isolated)$")

    @classmethod
    def from_flags(cls, **flags: Any) -> Self:
        """``--stores`` given comma-separated."""
        return super().from_flags(**flags | {"stores": comma_list(flags.get("stores"))})

    @classmethod
    def pinned(cls, saved: Mapping[str, Any]) -> dict[str, Any]:
        """The journaled run's ``backups`` (store -> the backup it chose) are read as they are;
        they replace ``--at``."""
        return {"at": None} if saved.get("backups") else {}


@dataclass(frozen=True)
class Prepared:
    point: datetime
    selections: list[Selection]
    skew_seconds: float
    left_out: dict[str, str]
    members: list[Held] = field(default_factory=list)
    """Each store's own prepared restore, closed with this one."""
    figures: dict[str, Any] = field(default_factory=dict)

    def close(self) -> None:
        for member in self.members:
            member.close()


def prepare(ctx: OpsContext, request: RestoreAllRequest) -> Prepared:
    if request.at and request.backups:
        raise RecoveryError("give --at or fixed backups, not both")
    names = list(request.stores)
    left_out: dict[str, str] = {}
    for name in names:
        restore = REGISTRY[ctx.store_config(name).kind].restore.plan
        if isinstance(restore, NotYet):
            raise RecoveryError(
                f"store {name!r} is {ctx.store_config(name).kind.value}, which has "
                f"{restore.reason}; restorable stores: {', '.join(_restorable(ctx))}"
            )
    if not names:
        names = [
            n for n in _restorable(ctx) if not REGISTRY[ctx.store_config(n).kind].restore.named_only
        ]
        left_out = {
            name: _left_out(store.kind)
            for name, store in ctx.config.stores.items()
            if name not in names
        }
    if not names:
        raise RecoveryError(f"stack {ctx.stack!r} has no store this build can restore")
    objects = object_store(ctx, request.source)
    index = BackupIndex(ctx.config, objects)
    with readable(objects):
        if request.backups:
            missing = [n for n in names if n not in request.backups]
            if missing:
                raise RecoveryError(f"no backup id given for {', '.join(missing)}")
            chosen = [Selection(n, index.by_id(n, request.backups[n])) for n in names]
            points = [s.entry.recovery_point for s in chosen]
            point, skew = min(points), max(points) - min(points)
        else:
            at = parse_timestamp(request.at) if request.at else None
            point, chosen, skew = index.common_point(names, at)
    return Prepared(point, chosen, round(skew.total_seconds(), 3), left_out)


def _restorable(ctx: OpsContext) -> list[str]:
    kinds = restorable_kinds()
    return [name for name, store in ctx.config.stores.items() if store.kind in kinds]


def _left_out(kind: StoreKind) -> str:
    """Why a restore of "everything" leaves out the stores of ``kind``."""
    restore = REGISTRY[kind].restore.plan
    if isinstance(restore, NotYet):
        return f"{kind.value}: {restore.reason}"
    return (
        f"{kind.value}: restored only when named with --stores (it replaces the "
        "application's objects)"
    )


def build_plan(
    ctx: OpsContext, request: RestoreAllRequest, env: RestoreEnv
) -> tuple[Plan, Prepared]:
    """Each store's plan is its own verb's (``drkit.kinds.RestoreOf``), resuming when this run
    resumes, placed by priority."""
    prepared = prepare(ctx, request)
    prepared.figures.update(figures(prepared))
    kinds = {s.store: ctx.store_config(s.store).kind for s in prepared.selections}
    steps: list[Step] = []
    depends: dict[str, list[str]] = {}
    barrier: list[str] = []
    order: list[str] = []
    for entry in restore_order():
        group = [s for s in prepared.selections if kinds[s.store] is entry.kind]
        if not group or isinstance(entry.restore.plan, NotYet):
            continue
        ends: list[str] = []
        for selection in group:
            backup = selection.entry.backup_id
            member_env = RestoreEnv(env.project_dir, resume=env.resume)
            of = RestoreOf(selection.store, backup, request.force, request.source, member_env)
            try:
                plan, member = entry.restore.plan(ctx, of)
            except BaseException:
                prepared.close()  # the members prepared so far: a refusal leaves no key open
                raise
            prepared.members.append(member)
            previous = barrier
            for layer in plan.layers:
                for step in layer:
                    steps.append(step)
                    depends[step.id] = list(previous)
                previous = [step.id for step in layer]
            ends += previous
            order.append(
                f"{selection.store} ({entry.kind.value}, backup {backup}): {entry.restore.reason}"
            )
        barrier = ends
    parameters: dict[str, Any] = request.model_dump() | {
        "stack": ctx.stack,
        "recovery_point": prepared.point.isoformat(),
        "skew_seconds": prepared.skew_seconds,
        "backups": {s.store: s.entry.backup_id for s in prepared.selections},
        "order": order,
    }
    if prepared.left_out:
        parameters["not_restored"] = prepared.left_out
    return Plan.from_dependencies("restore all", steps, depends, parameters), prepared


def figures(prepared: Prepared, now: datetime | None = None) -> dict[str, Any]:
    moment = now or datetime.now(UTC)
    values: dict[str, Any] = {
        "recovery_point": prepared.point.isoformat(),
        "recovery_point_age_seconds": round((moment - prepared.point).total_seconds(), 1),
        "skew_seconds": prepared.skew_seconds,
    }
    for selection in prepared.selections:
        values[f"{selection.store}.backup_id"] = selection.entry.backup_id
        values[f"{selection.store}.recovery_point"] = selection.entry.recovery_point.isoformat()
    for name, why in prepared.left_out.items():
        values[f"{name}.not_restored"] = why
    return values


VERB = RestoreVerb(RestoreAllRequest, build_plan, "restore-all")
