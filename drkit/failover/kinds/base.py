"""The interface every protection kind implements (see ``drkit.failover.kinds``)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlsplit, urlunsplit

from drkit.local.lag import Lag
from drkit.local.names import StableName
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
class Replayed:
    """How far a standby is behind its answering primary, in the replication's own unit, read with
    the writers fenced: a planned switchover promotes only at ``behind == 0``."""

    behind: int
    unit: str
    detail: dict[str, Any] = field(default_factory=dict)


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

    @property
    def answering_source(self) -> str | None:
        """The source's URL where it answered when the switch started, else None."""
        source = self.sides.source
        return source.url if source.answers else None

    def target_health(
        self,
        role: str,
        planned: bool,
        errors: type[Exception] | tuple[type[Exception], ...],
        probe: Callable[[], str],
    ) -> Health:
        """The target (``role``: standby, replica...) as ``probe`` finds it; an error blocks a
        planned switch."""
        name = f"{self.store}: {self.sides.target.region} {role}"
        try:
            return Health(name, True, probe())
        except errors as error:
            return Health(name, False, one_line(error), planned)

    def source_health(self, role: str, planned: bool) -> Health:
        """Whether the source (``role``: primary, master...) answered when the switch started:
        a planned switch needs it, an unplanned one expects it not to."""
        answers = self.sides.source.answers
        return Health(
            f"{self.store}: {self.sides.source.region} {role}",
            answers,
            "answers" if answers else "does not answer",
            planned and not answers,
        )

    def fence_source(
        self,
        role: str,
        errors: type[Exception] | tuple[type[Exception], ...],
        fence: Callable[[], str],
    ) -> str:
        """``fence`` the old ``role`` where it answered at preflight and still does; what was
        done, or why nothing was."""
        if not self.sides.source.answers:
            return f"{self.store}: old {role} did not answer at preflight; nothing to fence"
        try:
            return fence()
        except errors as error:
            return f"{self.store}: old {role} unreachable ({one_line(error)}); nothing to fence"

    @classmethod
    def stable_name(cls, url: str, region: str) -> StableName:
        """Where the store's stable name leads once its server at ``url`` (its clients' URL in
        the local stack's state) in ``region`` is primary: the URL's host and port."""
        parts = urlsplit(url)
        host, port = parts.hostname or "127.0.0.1", parts.port or 0
        return StableName(region=region, host=host, port=port)

    @classmethod
    def through(cls, url: str, name: StableName) -> str:
        """The clients' URL ``url`` (its credentials) at the address ``name`` leads to."""
        parts = urlsplit(url)
        credentials = parts.netloc.rpartition("@")[0]
        netloc = f"{credentials}@{name.address}" if credentials else name.address
        return str(urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment)))

    @abstractmethod
    def health(self, planned: bool) -> list[Health]: ...

    @abstractmethod
    def lag(self) -> Lag: ...

    @abstractmethod
    def fence(self) -> str:
        """Fence the source where it answers; return what was done (or why nothing was)."""

    @abstractmethod
    def replayed(self) -> Replayed:
        """The source (fenced, answering) against the target: what the target has not replayed."""

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

    # -- failback: the old primary (the target here, answering again) rejoins ------------------

    @abstractmethod
    def rejoin(self) -> dict[str, Any]:
        """Re-seed the target, an old primary that answers again, as a standby of the source (the
        primary now), and lift the fence a failover left on it; what was done."""

    @abstractmethod
    def rejoined(self) -> bool:
        """The target replicates from the source (so ``rejoin`` is never repeated)."""

    def caught_up(self, rpo_seconds: float) -> tuple[bool, str]:
        """The failback's lag gate: the target's lag, read from the replication, is known and
        within ``rpo_seconds``."""
        lag = self.lag()
        if lag.seconds is None:
            return False, f"{self.store}: lag unknown ({lag.note})"
        within = lag.seconds <= rpo_seconds
        return within, (
            f"{self.store}: lag {lag.seconds}s {'within' if within else 'above'} its RPO "
            f"{rpo_seconds:.0f}s"
        )

    def reversed(self) -> Protection:
        """The same store with source and target swapped (both answering): after a failback's
        switch, the old primary's side rejoins as a standby of the new one through it."""
        sides = self.sides
        swapped = StoreSides(
            store=sides.store,
            kind=sides.kind,
            source=Endpoint(sides.target.region, sides.target.url, True),
            target=Endpoint(sides.source.region, sides.source.url, True),
            project_dir=sides.project_dir,
            state=sides.state,
            namespace=sides.namespace,
        )
        return type(self)(swapped)

    def process(self, name: str, region: str) -> dict[str, Any] | None:
        """The recorded process, read fresh (a failback starts some again, with new pids)."""
        from drkit.local.daemon import read_state
        from drkit.local.recorded import recorded

        return recorded(read_state(self.sides.project_dir) or self.sides.state, name, region)


def one_line(error: BaseException) -> str:
    return " ".join(str(error).split())
