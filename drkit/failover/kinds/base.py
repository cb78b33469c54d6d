"""The interface every protection kind implements (see ``drkit.failover.kinds``)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from drkit.local.lag import Lag
from stackmodels.config import ProtectionKind

CONNECT_TIMEOUT_S = 3


@dataclass(frozen=True)
class Endpoint:
    """One side of a store: its region, the URL a client uses, and whether its server answered
    when the switch started (an unplanned failover expects the source not to)."""

    region: str
    url: str
    answers: bool


@dataclass(frozen=True)
class StoreSides:
    """Everything a protection kind needs about one store, both sides of it."""

    store: str
    kind: ProtectionKind
    source: Endpoint
    target: Endpoint
    project_dir: Path
    state: dict[str, Any] = field(repr=False)
    """The local stack's state (``.drkit/local/stack.json``): processes, kubeconfig, topics."""
    namespace: str = "default"
    """The applications' namespace (where the clients' ConfigMaps are)."""


@dataclass(frozen=True)
class Health:
    """A preflight finding: ``ok`` False with ``blocking`` False is a loud warning."""

    name: str
    ok: bool
    detail: str
    blocking: bool = False


class Protection(ABC):
    """One store's failover, for one protection kind."""

    kind: ClassVar[ProtectionKind]

    def __init__(self, sides: StoreSides) -> None:
        self.sides = sides

    @property
    def store(self) -> str:
        return self.sides.store

    @abstractmethod
    def health(self, planned: bool) -> list[Health]: ...

    @abstractmethod
    def lag(self) -> Lag: ...

    @abstractmethod
    def fence(self) -> str:
        """Fence the source where it answers; return what was done (or why nothing was)."""

    @abstractmethod
    def promoted(self) -> bool: ...

    @abstractmethod
    def promote(self, planned: bool) -> dict[str, Any]: ...

    def repoint(self, address: str) -> dict[str, Any]:
        """Clients' pointers other than the stable name (already moved to ``address``)."""
        return {}

    def repointed(self, address: str) -> bool:
        return True

    @abstractmethod
    def postcheck(self, url: str) -> dict[str, Any]:
        """Write through ``url`` (the target reached by its stable name); raise if refused."""


def one_line(error: BaseException) -> str:
    return " ".join(str(error).split())
