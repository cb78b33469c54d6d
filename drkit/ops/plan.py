"""Steps, and plans that order them into layers."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from drkit.human import iso_time
from stackmodels.durations import format_duration

if TYPE_CHECKING:
    from drkit.ops.journal import Journal


class PlanError(ValueError):
    """The plan itself is wrong: a dependency on an unknown step, a cycle, a duplicate id."""


@dataclass
class StepContext:
    """What a step sees while it runs: the run's id, shared results of earlier steps, output."""

    run_id: str
    results: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    journal: Journal | None = None
    """The run's journal, for a step that must record what it is about to do (a Redis restore
    records the file it swaps before it stops the server), so a resumed run can finish it."""

    def note(self, message: str) -> None:
        self.notes.append(message)


class Step(Protocol):
    """One unit of an operation. ``id`` is stable across runs: the journal resumes by it."""

    @property
    def id(self) -> str: ...

    @property
    def description(self) -> str:
        """What it will do, with the real ids (printed by --dry-run)."""
        ...

    @property
    def mutates(self) -> bool:
        """Whether applying it changes anything (read-only steps run without confirmation)."""
        ...

    def is_done(self, context: StepContext) -> bool:
        """True when the effect is already in place: running the plan twice is safe."""
        ...

    def apply(self, context: StepContext) -> Any:
        """Do it; the return value is kept in ``context.results[id]`` for later steps."""
        ...

    def verify(self, context: StepContext) -> None:
        """Raise if the effect is not what it should be."""
        ...


@dataclass
class FunctionStep:
    """A step made of plain functions: most steps need nothing more."""

    id: str
    description: str
    action: Callable[[StepContext], Any]
    check: Callable[[StepContext], bool] | None = None
    confirm: Callable[[StepContext], None] | None = None
    mutates: bool = True

    def is_done(self, context: StepContext) -> bool:
        return bool(self.check(context)) if self.check is not None else False

    def apply(self, context: StepContext) -> Any:
        return self.action(context)

    def verify(self, context: StepContext) -> None:
        if self.confirm is not None:
            self.confirm(context)


@dataclass(frozen=True)
class Plan:
    """Layers of steps: every step's dependencies are in earlier layers."""

    name: str
    layers: list[list[Step]]
    parameters: dict[str, Any] = field(default_factory=dict)
    depends_on: dict[str, list[str]] = field(default_factory=dict)
    """The dependency edges the layers were resolved from (step id -> the ids it waits for)."""
    eager: bool = False
    """Start each step as soon as its own dependencies have ended, not when its whole layer
    before has (the layers then only number the steps). A step whose dependency failed does not
    run; steps that do not depend on it go on."""

    @property
    def steps(self) -> list[Step]:
        return [step for layer in self.layers for step in layer]

    @property
    def mutates(self) -> bool:
        return any(step.mutates for step in self.steps)

    @classmethod
    def from_dependencies(
        cls,
        name: str,
        steps: Iterable[Step],
        depends_on: Mapping[str, Iterable[str]] | None = None,
        parameters: dict[str, Any] | None = None,
        eager: bool = False,
    ) -> Plan:
        """Resolve a dependency graph into layers (Kahn's algorithm), keeping the given order."""
        ordered = list(steps)
        by_id: dict[str, Step] = {}
        for step in ordered:
            if step.id in by_id:
                raise PlanError(f"plan {name!r}: step id {step.id!r} is used twice")
            by_id[step.id] = step
        needs = {step.id: set((depends_on or {}).get(step.id, ())) for step in ordered}
        for step_id, required in needs.items():
            unknown = required - by_id.keys()
            if unknown:
                raise PlanError(
                    f"plan {name!r}: step {step_id!r} depends on unknown {sorted(unknown)}"
                )
        layers: list[list[Step]] = []
        placed: set[str] = set()
        while len(placed) < len(ordered):
            layer = [s for s in ordered if s.id not in placed and needs[s.id] <= placed]
            if not layer:
                stuck = sorted(s.id for s in ordered if s.id not in placed)
                raise PlanError(f"plan {name!r}: dependency cycle among {stuck}")
            layers.append(layer)
            placed |= {s.id for s in layer}
        edges = {step.id: sorted(needs[step.id]) for step in ordered if needs[step.id]}
        return cls(name, layers, parameters or {}, edges, eager)

    def describe(self) -> str:
        lines = [f"plan: {self.name}"]
        for key, value in self.parameters.items():
            if is_set(value):
                lines.append(f"  {key}: {show(value)}")
        if self.eager:
            lines.append("  (each step starts once the steps it depends on have ended)")
        for number, layer in enumerate(self.layers, start=1):
            parallel = " (in parallel)" if len(layer) > 1 else ""
            lines.append(f"  layer {number}{parallel}:")
            for step in layer:
                marker = "*" if step.mutates else "-"
                after = self.depends_on.get(step.id) if self.eager else None
                waits = f" (after {', '.join(after)})" if after else ""
                lines.append(f"    {marker} [{step.id}] {step.description}{waits}")
        lines.append("  (* changes something, - reads only)")
        return "\n".join(lines)


def is_set(value: Any) -> bool:
    """Whether a plan shows this option: an option left unset (``None``, ``False``, blank,
    empty) is left out, so ``at: None``, ``tables: []`` or ``force: False`` never print."""
    if value is None or value is False:
        return False
    if isinstance(value, str | list | tuple | dict | set | frozenset):
        return bool(value)
    return True


def show(value: Any) -> str:
    """An option as a person reads it: times to the second with their offset, durations as
    the config writes them, lists comma-separated, mappings ``key=value``."""
    if value is True:
        return "yes"
    if isinstance(value, datetime):
        return iso_time(value)
    if isinstance(value, timedelta):
        return format_duration(value)
    if isinstance(value, list | tuple | set | frozenset):
        return ", ".join(show(item) for item in value)
    if isinstance(value, dict):
        shown = {key: item for key, item in value.items() if is_set(item)}
        return ", ".join(f"{key}={show(item)}" for key, item in shown.items())
    return str(value)
