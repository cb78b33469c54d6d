"""A function named by its import path, imported when it is first called.

The registries (``drkit.kinds``, ``drkit.failover.protections``) name every kind's functions
this way, so importing a registry imports none of its kinds' modules: a backup of one kind (the
CronJob, ``python -m drkit backup STORE``) imports only what that kind needs.
``tests/unit/test_kinds.py`` resolves every name.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any, cast


class Lazy:
    """``Lazy("package.module:function")``: called, it imports the module and calls the function
    (looked up at each call, so a test that replaces the module's function is obeyed).

    It takes any arguments: a registry field declares the function's type (a ``Callable``) and
    its callers are checked against that; that the path names such a function is the registry's
    unit test's to check."""

    __slots__ = ("path",)

    def __init__(self, path: str) -> None:
        module, _, name = path.partition(":")
        if not module or not name:
            raise ValueError(f"{path!r}: a lazy function is named 'package.module:function'")
        self.path = path

    def load(self) -> Callable[..., Any]:
        module, _, name = self.path.partition(":")
        found: Any = getattr(importlib.import_module(module), name)
        if not callable(found):
            raise TypeError(f"{self.path}: not callable")
        return cast("Callable[..., Any]", found)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.load()(*args, **kwargs)

    def __repr__(self) -> str:
        return f"Lazy({self.path!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Lazy) and other.path == self.path

    def __hash__(self) -> int:
        return hash(self.path)
