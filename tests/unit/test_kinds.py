"""The registries of kinds are complete: every store kind has every part, every protection kind
is accounted for. A kind missing a part fails here, not as "no restore in this build yet" in a
run."""

from __future__ import annotations

import importlib
import inspect
from dataclasses import fields, is_dataclass, replace
from pathlib import Path
from typing import Any, get_args

import pytest

from drkit.drill.scenarios import SCENARIOS
from drkit.failover.kinds import NOTHING_TO_PROMOTE, PLAN_STEPS
from drkit.failover.kinds import REGISTRY as PROTECTIONS
from drkit.handlers import BACKUP_PATHS
from drkit.kinds import (
    REGISTRY,
    DrillHooks,
    KindEntry,
    NotYet,
    VerbPlan,
    drill_seeds,
    drill_writers,
    fresh_restores,
    restorable_kinds,
    restore_order,
)
from drkit.lazy import Lazy
from drkit.local.regions import selected_kinds
from drkit.ops.verbs import RestoreVerb
from stackmodels import StackConfig
from stackmodels.config import ProtectionKind, StoreKind
from stackmodels.outputs import SERVICE_KINDS

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]


def test_every_store_kind_has_an_entry_under_its_own_name() -> None:
    assert set(REGISTRY) == set(StoreKind)
    assert all(entry.kind is kind for kind, entry in REGISTRY.items())


OPTIONAL = {
    "backup.chains",
    "backup.history",
    "backup.implicit_service",
    "verify.scratch_cleanup",
    "local.lag",
    "local.missing",
    "drill.writer",
}
"""The hooks a kind may leave out (None): each field says what None means."""


def hooks(entry: KindEntry) -> dict[str, object]:
    """Every hook of an entry, ``part.field``: all the fields of its parts, so a hook added to a
    part is checked here without this test naming it."""
    found: dict[str, object] = {}
    for part in fields(entry):
        value = getattr(entry, part.name)
        if is_dataclass(value) and not isinstance(value, (type, NotYet)):
            found |= {f"{part.name}.{f.name}": getattr(value, f.name) for f in fields(value)}
        else:
            found[part.name] = value
    return found


def test_the_optional_hooks_are_hooks_of_the_registry() -> None:
    assert set(hooks(REGISTRY[StoreKind.POSTGRES])) >= OPTIONAL


def lacking(entry: KindEntry) -> list[str]:
    """The hooks of an entry that are neither given, nor optional, nor missing with a reason."""
    found = []
    for name, hook in hooks(entry).items():
        if isinstance(hook, NotYet):
            if not hook.reason:
                found.append(f"{entry.kind.value}: {name} is missing without a reason")
        elif name not in OPTIONAL and hook is None:
            found.append(f"{entry.kind.value}: no {name}")
    return found


@pytest.mark.parametrize("kind", list(StoreKind), ids=str)
def test_every_hook_of_an_entry_is_given_or_missing_with_a_reason(kind: StoreKind) -> None:
    entry = REGISTRY[kind]
    assert lacking(entry) == []
    assert entry.restore.reason, f"{kind.value}: a restore priority without a reason"
    for name in ("verify.test_restore", "local.servers", "local.served", "local.provision"):
        assert callable(hooks(entry)[name]), f"{kind.value}: {name}"
    assert callable(entry.local.probe)


def declared_arity(part: Any, field_name: str) -> int | None:
    """How many arguments the registry's type for ``part.field_name`` passes (a ``Callable``
    alias of ``drkit.kinds``), or None when the field is no such alias."""
    import drkit.kinds

    declared = next(f.type for f in fields(part) if f.name == field_name)
    alias = getattr(drkit.kinds, str(declared).split(" | ")[0], None)
    arguments = get_args(alias)
    return len(arguments[0]) if arguments and isinstance(arguments[0], list) else None


def typed_hooks(part: object, where: str) -> list[tuple[str, Lazy, int]]:
    """Every ``Lazy`` of a part whose field the registry types as a ``Callable`` alias, however
    deep (a drill writer's factory, a seed's function): (where, the hook, its declared arity)."""
    found: list[tuple[str, Lazy, int]] = []
    if not is_dataclass(part) or isinstance(part, (type, NotYet)):
        return found
    for f in fields(part):
        hook = getattr(part, f.name)
        arity = declared_arity(part, f.name)
        if isinstance(hook, Lazy) and arity is not None:
            found.append((f"{where}.{f.name}", hook, arity))
        found += typed_hooks(hook, f"{where}.{f.name}")
    return found


@pytest.mark.parametrize("kind", list(StoreKind), ids=str)
def test_every_function_an_entry_names_takes_the_arguments_its_hook_passes(kind: StoreKind) -> None:
    entry = REGISTRY[kind]
    checked = typed_hooks(entry, kind.value)
    for where, hook, arity in checked:
        parameters = inspect.signature(hook.load()).parameters.values()
        positional = [
            p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
        assert len(positional) == arity, f"{where} {hook.path}"
    assert len(checked) >= 5, kind.value


def lazy_parts(value: object) -> list[Lazy]:
    """Every ``Lazy`` in a registry entry, however deep."""
    if isinstance(value, Lazy):
        return [value]
    if is_dataclass(value) and not isinstance(value, type):
        return [found for f in fields(value) for found in lazy_parts(getattr(value, f.name))]
    return []


@pytest.mark.parametrize("kind", list(StoreKind), ids=str)
def test_every_function_an_entry_names_exists(kind: StoreKind) -> None:
    """The registry names its kinds' functions by import path: each must import and be a
    function (a renamed module or function fails here, not in a run)."""
    lazies = lazy_parts(REGISTRY[kind])
    assert len(lazies) >= 3, kind.value  # test restore, local servers, local provisioning
    for lazy in lazies:
        assert callable(lazy.load()), lazy.path
    plan = REGISTRY[kind].restore.plan
    if isinstance(plan, VerbPlan):
        verb = importlib.import_module(plan.module).VERB
        assert isinstance(verb, RestoreVerb) and plan.force in verb.request.model_fields


def test_a_local_stack_starts_the_servers_of_every_kind_it_can_run() -> None:
    assert selected_kinds(StackConfig.for_stack("prod", ROOT), None) == set(StoreKind)
    with pytest.raises(ValueError, match="or a kind: kafka, kubernetes, postgres, redis, time"):
        selected_kinds(StackConfig.for_stack("prod", ROOT), ["orders-db"])


@pytest.mark.parametrize("kind", list(StoreKind), ids=str)
def test_the_backup_paths_of_a_kind_are_those_of_its_services(kind: StoreKind) -> None:
    services = {service for service, served in SERVICE_KINDS.items() if served is kind}
    assert set(REGISTRY[kind].backup.paths) == services
    assert all(path.method for path in REGISTRY[kind].backup.paths.values())


def test_every_service_is_backed_up_by_exactly_one_kind() -> None:
    assert sum(len(entry.backup.paths) for entry in REGISTRY.values()) == len(BACKUP_PATHS)


def test_the_restore_order_is_total_with_a_reason_each() -> None:
    order = restore_order()
    assert len({entry.restore.priority for entry in order}) == len(StoreKind)
    assert order[0].kind is StoreKind.POSTGRES  # the system of record
    assert order[-1].kind is StoreKind.KUBERNETES  # workloads once their data is in place


def test_the_restorable_kinds_are_those_with_a_restore_in_registry_order() -> None:
    """What restore.all may restore and the monthly DR test's default kinds."""
    assert restorable_kinds() == [
        StoreKind.POSTGRES,
        StoreKind.KAFKA,
        StoreKind.REDIS,
        StoreKind.KUBERNETES,
    ]


def test_every_drill_hook_names_a_scenario_the_drill_plays() -> None:
    for kind, entry in REGISTRY.items():
        if isinstance(entry.drill, DrillHooks):
            assert entry.drill.scenario in SCENARIOS, kind.value
            assert entry.drill.writer is None or entry.drill.writer.rate > 0


def test_the_drill_seeds_and_restores_into_new_servers_every_kind_it_writes_into() -> None:
    """The whole-stack scenarios verify each store against its writer's ledger: the kinds they
    restore are the kinds the drill writes into and seeds, and the seeds share its size."""
    assert set(fresh_restores()) == set(drill_seeds()) == set(drill_writers())
    assert list(fresh_restores()) == [StoreKind.POSTGRES, StoreKind.KAFKA, StoreKind.REDIS]
    shares = [seed.share for seed in drill_seeds().values()]
    assert all(share > 0 for share in shares) and sum(shares) == pytest.approx(1.0)
    for kind, (new_server, _hooks) in fresh_restores().items():
        assert new_server is REGISTRY[kind].local.fresh_server


def test_a_drill_hook_left_out_fails_the_registry_not_a_run() -> None:
    """Each of the drill's parts is required: an entry that leaves one out does not construct,
    and one that gives None (or a reason-less NotYet) is named by the hooks test."""
    entry = REGISTRY[StoreKind.POSTGRES]
    drill = entry.drill
    assert isinstance(drill, DrillHooks)
    with pytest.raises(TypeError, match="fresh_restore"):
        DrillHooks(drill.scenario, drill.writer, drill.seed)  # type: ignore[call-arg]
    without = replace(entry, drill=replace(drill, seed=None, fresh_restore=NotYet("")))
    assert lacking(without) == [
        "postgres: no drill.seed",
        "postgres: drill.fresh_restore is missing without a reason",
    ]
    no_server = replace(entry, local=replace(entry.local, fresh_server=None))
    assert lacking(no_server) == ["postgres: no local.fresh_server"]


def test_every_protection_kind_is_a_local_module_a_plan_step_or_nothing_to_promote() -> None:
    groups = [set(PROTECTIONS), set(PLAN_STEPS), set(NOTHING_TO_PROMOTE)]
    assert set().union(*groups) == set(ProtectionKind)
    assert sum(len(g) for g in groups) == len(ProtectionKind)  # each in one group only
    assert all(module.kind is kind for kind, module in PROTECTIONS.items())
    assert all(step.kind is kind for kind, step in PLAN_STEPS.items())


@pytest.mark.parametrize("kind", list(PLAN_STEPS), ids=str)
def test_every_plan_step_kind_builds_its_own_step_for_the_store_of_its_section(
    kind: ProtectionKind,
) -> None:
    step = PLAN_STEPS[kind]
    assert isinstance(step.build, Lazy) and callable(step.build.load()), step.build
    config = StackConfig.for_stack("dr", ROOT)
    assert step.store(config) in config.stores  # the shipped dr stack protects a store with it
    assert len({s.step for s in PLAN_STEPS.values()}) == len(PLAN_STEPS)


def test_a_manifest_finds_its_kind_and_only_chained_kinds_check_continuity() -> None:
    from drkit.kinds import of_manifest

    chained = {k.value for k, item in REGISTRY.items() if item.backup.chains is not None}
    assert chained == {"kafka"}
    for kind in StoreKind:
        entry = of_manifest(kind.value)
        assert entry is not None and entry.kind is kind
    assert of_manifest("not-a-kind") is None
