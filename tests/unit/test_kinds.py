"""The registries of kinds are complete: every store kind has every part, every protection kind
is accounted for. A kind missing a part fails here, not as "no restore in this build yet" in a
run."""

from __future__ import annotations

import importlib
import inspect
from dataclasses import fields, is_dataclass
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


@pytest.mark.parametrize("kind", list(StoreKind), ids=str)
def test_every_hook_of_an_entry_is_given_or_missing_with_a_reason(kind: StoreKind) -> None:
    for name, hook in hooks(REGISTRY[kind]).items():
        if isinstance(hook, NotYet):
            assert hook.reason, f"{kind.value}: {name} is missing without a reason"
        elif name not in OPTIONAL:
            assert hook is not None, f"{kind.value}: no {name}"
    entry = REGISTRY[kind]
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


@pytest.mark.parametrize("kind", list(StoreKind), ids=str)
def test_every_function_an_entry_names_takes_the_arguments_its_hook_passes(kind: StoreKind) -> None:
    entry = REGISTRY[kind]
    checked = 0
    for part_field in fields(entry):
        part = getattr(entry, part_field.name)
        if not is_dataclass(part) or isinstance(part, (type, NotYet)):
            continue
        for f in fields(part):
            hook = getattr(part, f.name)
            arity = declared_arity(part, f.name)
            if not isinstance(hook, Lazy) or arity is None:
                continue
            parameters = inspect.signature(hook.load()).parameters.values()
            positional = [
                p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
            ]
            assert len(positional) == arity, f"{kind.value}: {part_field.name}.{f.name} {hook.path}"
            checked += 1
    assert checked >= 4, kind.value


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
