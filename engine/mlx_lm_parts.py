"""The parts of mlx-lm the engine reuses (KV caches, causal masks, samplers), imported without
running mlx-lm's package `__init__`.

Why: that `__init__` re-exports mlx-lm's loader, converter and generate loop, which import
transformers (and torch, when installed): seconds of start-up and hundreds of MB for code the
engine never calls. The package is entered as a plain folder of submodules; its own `__init__`
still runs the first time something asks `mlx_lm` for a name it defines (`mlx_lm.load`, as the
oracle tests do), so nothing else in the process sees a difference.
"""

from __future__ import annotations

import importlib.util
import sys
from typing import Any


def enter_mlx_lm() -> None:
    """Registers `mlx_lm` without executing its `__init__` (no-op if already imported)."""
    if "mlx_lm" in sys.modules:
        return
    spec = importlib.util.find_spec("mlx_lm")
    if spec is None or spec.loader is None:
        return  # not installed: the imports below raise the usual ModuleNotFoundError
    package = importlib.util.module_from_spec(spec)  # __path__ set, __init__ not executed
    loader = spec.loader

    def finish_init(name: str) -> Any:
        delattr(package, "__getattr__")  # run the real __init__ once
        loader.exec_module(package)
        return getattr(package, name)

    setattr(package, "__getattr__", finish_init)  # noqa: B010  (PEP 562 on a module object)
    sys.modules["mlx_lm"] = package


enter_mlx_lm()

from mlx_lm.models.base import create_causal_mask  # noqa: E402
from mlx_lm.models.cache import KVCache, QuantizedKVCache  # noqa: E402
from mlx_lm.sample_utils import make_sampler  # noqa: E402

__all__ = ["KVCache", "QuantizedKVCache", "create_causal_mask", "make_sampler"]
