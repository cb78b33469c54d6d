"""The contract every restore verb keeps (``restore.postgres``, ``.redis``, ``.kafka``, ``.k8s``,
``.aurora``, ``.all``), so one runner serves them all (``drkit.ops.cli.restore``) and resuming is
one mechanism.

A verb's module ends with ``VERB = RestoreVerb(<its request model>, build_plan, "restore-<name>")``:

- the request model is a ``RestoreRequest``. ``from_flags(**flags)`` builds it from the command
  line (a flag left blank is one not given). ``resumed(saved)`` builds it from the parameters a
  journaled run started with, pinned to what that run resolved (``pinned``: its backup rather than
  ``--at`` or "the newest", its target), so ``--resume`` restores the same backup into the same
  target even when a newer backup exists by then;
- ``build_plan(ctx, request, env) -> (Plan, Prepared)`` checks everything and changes nothing;
- the ``Prepared`` carries the figures of the run's report and ``close()``, called once the run is
  over, whatever its outcome (a Kubernetes restore wipes its data key there).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, Protocol, Self, TextIO, TypeVar

from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    from drkit.context import OpsContext
    from drkit.ops.plan import Plan


@dataclass(frozen=True)
class RestoreEnv:
    """What a restore verb uses besides the stack and its request."""

    project_dir: Path
    """Where the journals (``.drkit/journal``) and the reports (``reports/``) are."""
    out: TextIO | None = None
    """Where a verb writes as it goes: each Kubernetes object restored, Aurora's waits."""
    resume: str | None = None
    """The journaled run being resumed: its own leftovers are not a reason to refuse."""


class Prepared(Protocol):
    """What a verb resolved and checked, held until the run is over."""

    @property
    def figures(self) -> dict[str, Any]:
        """The report's figures (backup, recovery point and its age, counts); a verb may fill
        the dict while its steps run."""
        ...

    def close(self) -> None:
        """Release what the run held (keys, connections); called once, after the run."""
        ...


class Holds:
    """Base of a ``Prepared`` that holds nothing to release."""

    def close(self) -> None:
        return None


class RestoreRequest(BaseModel):
    """The base of every restore verb's request: frozen, no unknown field."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    @classmethod
    def from_flags(cls, **flags: Any) -> Self:
        """The request from command-line flags: a flag left blank ("", or ``None`` for a
        repeatable flag not given) leaves a field whose default is unset at that default."""
        return cls(**{name: value for name, value in flags.items() if not cls._blank(name, value)})

    @classmethod
    def resumed(cls, saved: Mapping[str, Any]) -> Self:
        """The request a journaled run started with (its plan's parameters, which also hold
        descriptions and what it resolved), with ``pinned`` over it."""
        fields = {key: value for key, value in saved.items() if key in cls.model_fields}
        return cls(**fields | cls.pinned(saved))

    @classmethod
    def pinned(cls, saved: Mapping[str, Any]) -> dict[str, Any]:
        """Fields that fix what the journaled run resolved: for a request with a ``backup`` field,
        the backup that run chose (``backup_id``), in place of ``--at`` or "the newest"."""
        backup_id = saved.get("backup_id")
        if backup_id and "backup" in cls.model_fields:
            return {"backup": backup_id, "at": None}
        return {}

    @classmethod
    def _blank(cls, name: str, value: Any) -> bool:
        field = cls.model_fields.get(name)
        if field is None or value not in ("", None):
            return False
        return field.default is None or field.default_factory is not None


def comma_list(text: str | Iterable[str] | None) -> list[str]:
    """``a, b,c`` as ``["a", "b", "c"]``; a list as it is, without blank entries."""
    parts = text.split(",") if isinstance(text, str) else list(text or [])
    return [part.strip() for part in parts if part.strip()]


R = TypeVar("R", bound=RestoreRequest)
P = TypeVar("P", bound=Prepared)


@dataclass(frozen=True)
class RestoreVerb(Generic[R, P]):
    """One restore verb: its request model, its plan builder and its report's name."""

    request: type[R]
    build_plan: Callable[[OpsContext, R, RestoreEnv], tuple[Plan, P]]
    report: str
