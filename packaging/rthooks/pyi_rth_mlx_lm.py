"""PyInstaller runtime hook: `import mlx_lm.models.cache` without running mlx_lm/__init__.py.

That __init__ re-exports mlx-lm's loader, converter and generate loop, which import transformers
(and torch when it is installed). The engine uses none of them, so the bundle leaves them out
(packaging/bundle_contents.py, MLX_LM_MODULES) and enters the package as a plain folder of
submodules. Runs before the app's first import.
"""

import importlib.util
import sys


def _enter_mlx_lm_without_init() -> None:
    if "mlx_lm" in sys.modules:
        return
    spec = importlib.util.find_spec("mlx_lm")
    if spec is None:
        return
    package = importlib.util.module_from_spec(spec)  # __path__ set, __init__ not executed
    sys.modules["mlx_lm"] = package
    from mlx_lm._version import __version__

    package.__version__ = __version__  # type: ignore[attr-defined]


_enter_mlx_lm_without_init()
