"""The bundled program's entry point: `--self-test` runs app.self_test, `--read-document` is a
document reader process, anything else the app.

app.main.main dispatches `--self-test` too; doing it here as well keeps the bundle's self-test
independent of the app's argument parsing.
"""

from __future__ import annotations

import sys
import types
from pathlib import Path


def main() -> int:
    args = sys.argv[1:]
    if args[:1] == ["--read-document"]:
        # A document reader process (engine/documents/sandbox.py): a bundle has no python to run
        # engine/documents/child.py with, so it starts itself; no Qt is ever imported here.
        return _read_document(args[1:])
    if args[:1] == ["--python-tool"]:
        # The python tool's sandboxed interpreter (engine/tools/python/session.py), likewise.
        return _python_tool(args[1:])
    if "--self-test" in args:
        from app.self_test import main as self_test

        return self_test(args)
    try:
        from app.main import main as app_main
    except ModuleNotFoundError as e:
        if e.name != "app.main":
            raise
        print("OSS Desk: this build has no app.main; try --self-test.", file=sys.stderr)
        return 2
    return app_main(args)


def _read_document(args: list[str]) -> int:
    # engine/__init__.py imports MLX (seconds, and address space the reader's limit counts): enter
    # engine.documents through a bare package, as child.py does when run as a script.
    root = Path(getattr(sys, "_MEIPASS", Path(__file__).resolve().parents[1]))
    package = types.ModuleType("engine")
    package.__path__ = [str(root / "engine")]
    sys.modules.setdefault("engine", package)
    from engine.documents.child import main as read_document

    return read_document(args)


def _python_tool(args: list[str]) -> int:
    root = Path(getattr(sys, "_MEIPASS", Path(__file__).resolve().parents[1]))
    for name in ("engine", "engine.tools", "engine.tools.python"):
        package = types.ModuleType(name)
        package.__path__ = [str(root.joinpath(*name.split(".")))]
        sys.modules.setdefault(name, package)
    from engine.tools.python.child import main as python_tool

    return python_tool(args)


if __name__ == "__main__":
    raise SystemExit(main())
