"""Package namespaces that import a submodule only when one of its names is first used.

Why: importing MLX, mlx-lm and the model code takes seconds, and the app must show its window
before that (the engine thread imports them later). With eager package `__init__`s, any
`from engine import ReasoningEffort` in the UI would pull the whole engine in.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Mapping
from types import ModuleType
from typing import Any


def make_lazy(package: str, exports: Mapping[str, str]) -> None:
    """Turns the package `package` lazy. `exports` maps each public name to "module" (same name
    there) or "module:attribute" (exported under another name)."""
    module = sys.modules[package]
    module.__dict__["_lazy_exports"] = dict(exports)
    module.__class__ = _LazyPackage


def _resolve(target: str, name: str) -> Any:
    module_name, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module_name), attribute or name)


class _LazyPackage(ModuleType):
    def __getattr__(self, name: str) -> Any:
        target = self.__dict__["_lazy_exports"].get(name)
        if target is None:
            raise AttributeError(f"module {self.__name__!r} has no attribute {name!r}")
        value = _resolve(target, name)
        setattr(self, name, value)  # later lookups skip this method
        return value

    def __dir__(self) -> list[str]:
        return sorted(set(self.__dict__["_lazy_exports"]) | set(self.__dict__))

    def __setattr__(self, name: str, value: Any) -> None:
        # Importing a submodule binds it on its package: `engine.download` the module would hide
        # `engine.download` the function the package exports (an eager __init__ rebinds it).
        target = self.__dict__["_lazy_exports"].get(name)
        if (
            target is not None
            and isinstance(value, ModuleType)
            and value.__name__ == f"{self.__name__}.{name}"
        ):
            value = _resolve(target, name)
        super().__setattr__(name, value)
