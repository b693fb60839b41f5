"""Structural rules of the code base (conventions 1 and 18), checked on every run."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
QT_OR_APP = re.compile(r"^\s*(from|import) (PySide6|app)\b", re.M)
# Convention 18: split a module at about 500 lines. Known exceptions carry their reason.
MAX_LINES = 500
EXCEPTIONS: dict[str, str] = {}


def _py_files(*folders: str) -> list[Path]:
    files = [p for f in folders for p in (ROOT / f).rglob("*.py")]
    assert files, f"no Python files found under {folders}"
    return files


def test_engine_and_kernels_never_import_qt_or_the_app() -> None:
    offenders = [
        str(p.relative_to(ROOT))
        for p in _py_files("engine", "metal_kernels")
        if QT_OR_APP.search(p.read_text(encoding="utf-8"))
    ]
    assert offenders == []


def test_kernels_know_no_model() -> None:
    """metal_kernels/ takes and returns arrays; the engine adapts it (engine.expert_backends).
    An import of engine from the kernels would make the two packages import each other."""
    engine_import = re.compile(r"^\s*(from|import) engine\b", re.M)
    offenders = [
        str(p.relative_to(ROOT))
        for p in _py_files("metal_kernels")
        if engine_import.search(p.read_text(encoding="utf-8"))
    ]
    assert offenders == []


def test_modules_stay_small() -> None:
    too_big = {}
    for p in _py_files("engine", "metal_kernels", "app", "benchmarks"):
        rel = str(p.relative_to(ROOT))
        n = len(p.read_text(encoding="utf-8").splitlines())
        if n > MAX_LINES and rel not in EXCEPTIONS:
            too_big[rel] = n
    assert too_big == {}


# The bundled --self-test builds a synthetic checkpoint and a loopback Hub with the engine's test
# kit (engine.testing), which is not part of the engine's API.
DEEP_IMPORT_EXCEPTIONS = {"app/self_test.py": re.compile(r"^\s*from engine\.testing import", re.M)}


def test_app_uses_the_engine_only_through_its_package() -> None:
    deep = re.compile(r"^\s*(from|import) engine\.(?!__init__)", re.M)
    offenders = []
    for p in (ROOT / "app").rglob("*.py"):
        rel = str(p.relative_to(ROOT))
        text = p.read_text(encoding="utf-8")
        allowed = DEEP_IMPORT_EXCEPTIONS.get(rel)
        if allowed is not None:
            text = allowed.sub("", text)
        if deep.search(text):
            offenders.append(rel)
    assert offenders == []
