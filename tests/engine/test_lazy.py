"""The lazy package namespaces (engine/lazy.py): every exported name resolves to the object its
module defines, the static imports mypy reads name the same modules, and a package import pulls
in none of MLX (checked in a fresh interpreter)."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LAZY_PACKAGES = ("engine", "engine.chat", "engine.harmony", "engine.documents")


def _static_imports(package: str) -> dict[str, str]:
    """name -> "module" or "module:attribute", from the `if TYPE_CHECKING:` block."""
    path = ROOT / package.replace(".", "/") / "__init__.py"
    found: dict[str, str] = {}
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module != "engine.lazy":
            for a in node.names:
                exported = a.asname or a.name
                found[exported] = node.module if exported == a.name else f"{node.module}:{a.name}"
    found.pop("TYPE_CHECKING", None)
    return found


@pytest.mark.parametrize("package", LAZY_PACKAGES)
def test_exports_match_the_static_imports_and_resolve(package: str) -> None:
    module = importlib.import_module(package)
    exports = module._EXPORTS
    assert _static_imports(package) == exports
    assert sorted(module.__all__) == sorted(exports)
    for name, target in exports.items():
        source, _, attribute = target.partition(":")
        assert getattr(module, name) is getattr(importlib.import_module(source), attribute or name)
    assert set(exports) <= set(dir(module))


def test_a_submodule_never_hides_the_function_of_the_same_name() -> None:
    code = (
        "import engine.download.fetch, engine.documents.extract, engine, engine.documents\n"
        "print(callable(engine.download), callable(engine.documents.extract))\n"
        "from engine import download, extract\n"
        "print(download.__module__, extract.__module__)"
    )
    assert _fresh(code).splitlines() == [
        "True True",
        "engine.download.fetch engine.documents.extract",
    ]


def test_an_unknown_name_is_an_attribute_error() -> None:
    import engine

    with pytest.raises(AttributeError, match="no attribute 'NoSuchThing'"):
        _ = engine.NoSuchThing  # type: ignore[attr-defined,unused-ignore]


def _fresh(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def test_the_ui_s_names_import_without_mlx() -> None:
    code = (
        "import sys\n"
        "from engine import ReasoningEffort, DOCUMENT_SUFFIXES, ReaderPool, ChatEvent, ToolStep,"
        " machine_budget, checkpoint_files, default_prompt_cache_folder, SamplingSettings\n"
        "print(sorted(m for m in ('mlx', 'mlx_lm', 'pypdf', 'docx') if m in sys.modules))"
    )
    assert _fresh(code) == "[]"


def test_the_engine_takes_mlx_lm_s_parts_without_transformers() -> None:
    code = (
        "import sys\n"
        "import engine.cache, engine.sampling\n"
        "print('transformers' in sys.modules, 'torch' in sys.modules)\n"
        "import mlx_lm\n"
        "print(callable(mlx_lm.load))"  # mlx-lm's own __init__ still runs when asked
    )
    assert _fresh(code).splitlines() == ["False False", "True"]
