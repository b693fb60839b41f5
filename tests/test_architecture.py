"""Structural rules of the code base (conventions 1 and 18), checked on every run."""

from __future__ import annotations

import ast
import importlib
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


def test_server_never_imports_qt_or_the_app() -> None:
    offenders = [
        str(p.relative_to(ROOT))
        for p in _py_files("server")
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
    for p in _py_files("engine", "metal_kernels", "app", "benchmarks", "server"):
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


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    """Every import statement at any depth: a function-level import, or one only for type
    checking, still ties the two modules together."""
    return [n for n in ast.walk(tree) if isinstance(n, ast.Import | ast.ImportFrom)]


def _import_graph() -> dict[str, set[str]]:
    """Module -> the project modules it imports. `from pkg import name` points at pkg.name when
    that is a module, else at the module a lazy package (engine/lazy.py) takes `name` from."""
    files = _py_files("engine", "metal_kernels", "app", "server")
    modules = {_module_name(p): p for p in files}
    lazy: dict[str, dict[str, str]] = {}
    for name, path in modules.items():
        if path.name == "__init__.py":  # a lazy namespace names the module of each export
            exports = importlib.import_module(name).__dict__.get("_EXPORTS")
            if exports is not None:
                lazy[name] = {k: v.partition(":")[0] for k, v in exports.items()}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        edges: set[str] = set()
        for node in _imports(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                edges |= {a.name for a in node.names if a.name in modules}
                continue
            base = node.module or ""
            if node.level:  # relative import
                package = name.split(".")[: -node.level if path.name != "__init__.py" else None]
                base = ".".join([*package, *([base] if base else [])])
            for alias in node.names:
                full = f"{base}.{alias.name}"
                if full in modules:
                    edges.add(full)
                elif base in lazy and alias.name in lazy[base]:
                    edges.add(lazy[base][alias.name])
                elif base in modules:
                    edges.add(base)
        edges.discard(name)
        graph[name] = edges
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return found


def test_no_import_circles() -> None:
    """Each module depends in one direction (issue 15): two modules that import each other,
    even from inside a function, cannot be understood or tested apart."""
    assert _cycles(_import_graph()) == []


def test_the_cycle_finder_finds_a_planted_circle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c"]]
