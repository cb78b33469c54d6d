"""A function named by its import path, imported when it is first called.

The registries (``drkit.kinds``, ``drkit.failover.protections``) name every kind's functions
this way, so importing a registry imports none of its kinds' modules: a backup of one kind (the
CronJob, ``python -m drkit backup STORE``) imports only what that kind needs.
``tests/unit/test_kinds.py`` resolves every name.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any, Generic, ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")


class Lazy(Generic[P, R]):
    """``Lazy("package.module:function")``: called, it imports the module and calls the function
    (looked up at each call, so a test that replaces the module's function is obeyed)."""

    __slots__ = ("path",)

    def __init__(self, path: str) -> None:
        module, _, name = path.partition(":")
        if not module or not name:
            raise ValueError(f"{path!r}: a lazy function is named 'package.module:function'")
        self.path = path

    def load(self) -> Callable[P, R]:
        module, _, name = self.path.partition(":")
        found: Any = getattr(importlib.import_module(module), name)
        if not callable(found):
            raise TypeError(f"{self.path}: not callable")
        return found  # type: ignore[no-any-return]

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        return self.load()(*args, **kwargs)

    def __repr__(self) -> str:
        return f"Lazy({self.path!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Lazy) and other.path == self.path

    def __hash__(self) -> int:
        return hash(self.path)
